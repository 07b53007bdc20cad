"""The training and validation splits ``snn-train`` reads: N-MNIST-small (count or binary bins),
SkipSNN's noise-padded N-MNIST and FSDD through the cochlea, plus the shift augmentation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from snnc.errors import InputError

DATASETS = ("nmnist", "nmnist-binary", "nmnist-noise", "fsdd", "fsdd16")
#: The ``fsdd16`` cochlea (for Xylo's 16 input channels): 16 mel bands, up to 4 spikes per band and step.
FSDD16_COCHLEA = {"n_channels": 16, "max_rate": 4.0}


# --------------------------------------------------------------------------- data
@dataclass
class Split:
    """One split of a data set: ``fetch(indices, epoch) -> x (B, T, ...)`` plus labels."""

    indices: np.ndarray
    labels: np.ndarray
    fetch: Callable[[np.ndarray, int], np.ndarray]
    input_shape: Tuple[int, ...]

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.indices.size)

    def batch(self, positions: Sequence[int], epoch: int = -1) -> Tuple[np.ndarray, np.ndarray]:
        """Return ``(x float32 (B, T, ...), y int64 (B,))`` for ``positions`` into this split."""
        ind = self.indices[np.asarray(positions, dtype=np.int64)]
        x = np.asarray(self.fetch(ind, epoch), dtype=np.float32)
        return x, self.labels[ind].astype(np.int64)


def load_data(name: str, dt_us: int, n_steps: int, val_fraction: float = 0.2, split_seed: int = 0,
              limit_train: Optional[int] = None, limit_val: Optional[int] = None,
              noise_seed: int = 0) -> Tuple[Split, Split, Dict[str, Any]]:
    """Return ``(train, val, description)`` for data set ``name`` binned at ``dt_us`` x ``n_steps``."""
    from snnc.models.data import splits

    if name in ("nmnist", "nmnist-binary"):  # binary: 1 where a bin has an event (what Loihi takes)
        from snnc.models.data import BinSpec, load_nmnist_small_binned

        spec = BinSpec(dt_us=int(dt_us), n_steps=int(n_steps), mode="binary" if name == "nmnist-binary" else "count")
        binned = load_nmnist_small_binned(spec)
        labels = binned.labels
        tr, va = splits.stratified_split(labels, val_fraction, split_seed)
        fetch = lambda ind, epoch: binned.dense_batch(ind, np.float32)  # noqa: E731
        shape = tuple(binned.shape[1:])
        desc = {"data": name, "bin_spec": spec.to_dict(), "n_samples": len(binned),
                "dropped": {k: v for k, v in binned.report.items() if k.startswith("n_dropped")}}
        train_fetch = val_fetch = fetch
    elif name == "nmnist-noise":
        from snnc.models.data import SkipSNNNoiseSpec, load_skipsnn_nmnist
        from snnc.models.data.skipsnn import SkipSNNNoisyNMNIST

        spec = SkipSNNNoiseSpec(seq_len=int(n_steps), dt_us=int(dt_us), seed=noise_seed)
        val_ds = load_skipsnn_nmnist(spec)
        labels = val_ds.labels
        tr, va = splits.stratified_split(labels, val_fraction, split_seed)
        per_epoch: Dict[int, Any] = {}

        def train_fetch(ind: np.ndarray, epoch: int) -> np.ndarray:
            if epoch not in per_epoch:  # fresh noise and offsets every epoch
                per_epoch.clear()
                per_epoch[epoch] = SkipSNNNoisyNMNIST(val_ds.signal, SkipSNNNoiseSpec(
                    seq_len=int(n_steps), dt_us=int(dt_us), seed=noise_seed + 1000 + max(epoch, 0)))
            return per_epoch[epoch].batch(ind)[0]

        val_fetch = lambda ind, epoch: val_ds.batch(ind)[0]  # noqa: E731
        shape = (2, 34, 34)
        desc = {"data": name, "noise_spec": val_ds.describe(),
                "train_noise_seeds": f"{noise_seed} + 1000 + epoch"}
    elif name in ("fsdd", "fsdd16"):
        from snnc.models.data import CochleaSpec, load_fsdd_spikes

        hop = int(round(dt_us * 1e-6 * 8000))
        if abs(hop / 8000 - dt_us * 1e-6) > 1e-12:
            raise InputError(f"FSDD steps are hops of 1/8000 s; dt_us={dt_us} is not a whole number of samples")
        spec = CochleaSpec(hop_len=hop, n_steps=int(n_steps), **FSDD16_COCHLEA if name == "fsdd16" else {})
        sp = load_fsdd_spikes(spec)
        labels = sp.labels
        tr, va = sp.split("index")
        train_fetch = val_fetch = lambda ind, epoch: sp.spikes[ind]  # noqa: E731
        shape = (int(sp.spikes.shape[2]),)
        desc = {"data": name, "cochlea": {k: getattr(spec, k) for k in spec.__dataclass_fields__},
                "split": "index 5..9 = validation"}
    else:
        raise InputError(f"unknown data set '{name}'", hint=f"use one of {', '.join(DATASETS)}")
    if limit_train is not None:
        tr = tr[:int(limit_train)]
    if limit_val is not None:
        va = va[:int(limit_val)]
    desc.update({"n_train": int(tr.size), "n_val": int(va.size), "val_fraction": val_fraction,
                 "split_seed": split_seed, "dt_us": int(dt_us), "n_steps": int(n_steps)})
    return (Split(tr, labels, train_fetch, shape), Split(va, labels, val_fetch, shape), desc)


def random_shift(x: Any, max_px: int, rng: np.random.Generator) -> Any:
    """Translate each sample of ``x`` (B, T, C, H, W) by up to ``max_px`` pixels (zero fill)."""
    import torch.nn.functional as F

    if max_px <= 0 or x.dim() != 5:
        return x
    b, t, c, h, w = x.shape
    padded = F.pad(x.reshape(b, t * c, h, w), (max_px,) * 4)
    offs = rng.integers(0, 2 * max_px + 1, size=(b, 2))
    out = [padded[i, :, oy:oy + h, ox:ox + w] for i, (oy, ox) in enumerate(offs)]  # loop over samples
    import torch

    return torch.stack(out).reshape(b, t, c, h, w)


# --------------------------------------------------------------------------- model plumbing
