"""SkipSNN's noise-padded N-MNIST (Yin et al. 2024; public demo ``Anonymous6369/SkipSNN``).

Each sample is a long sequence of noise frames with a short N-MNIST signal pasted in::

    x[t] = noise[t]                                  for t outside the window
    x[offset : offset + signal_steps] = signal       (paste='replace', as in the demo)

* signal: the first ``signal_steps`` (50) steps of the recording binned at ``dt_us``
  (1 ms), binary. The demo bins with SLAYER (``round(t_ms)``, ``sampleLength=50``); we use
  floor binning (``t_us // dt_us``), so an event can land one step earlier than there.
  A whole N-MNIST recording lasts about 300 ms (three saccades), so the 50-step signal is
  the first half of the first saccade, not the whole recording.
* noise, per step and independently per sample: a centre ``(cy, cx)`` uniform in
  ``[centre_low, centre_high)`` (2..31), then one event per polarity ``p`` at
  ``(cy + U[-jitter, jitter), cx + U[-jitter, jitter))`` drawn separately for each polarity
  (jitter 2, as ``randint(c-2, c+2)`` in the demo). Always inside 34x34.
* offset: uniform integer in ``[0, offset_max]``, default ``seq_len - signal_steps``. The demo
  draws ``randint(0, 250)`` for its evaluation and a fixed ``LOC`` in its script; its
  ``SEQ_LENGTH`` is a free parameter; we default to 300 steps.

Everything is deterministic: sample ``i`` uses ``numpy.random.default_rng([seed, i])`` (first
the offset, then the noise), so results do not depend on access order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from snnc.errors import ValueRangeError
from snnc.models.data.binned import BinnedSet
from snnc.formats.events import BinSpec
from snnc.models.data.nmnist import NMNIST_SENSOR_CHW, load_nmnist_small_binned
from snnc.models.data.paths import PathLike

PASTE_MODES = ("replace", "or")


@dataclass(frozen=True)
class SkipSNNNoiseSpec:
    """Parameters of the noise-padded sequences (defaults follow the SkipSNN demo)."""

    seq_len: int = 300
    signal_steps: int = 50
    dt_us: int = 1000
    centre_low: int = 2
    centre_high: int = 32
    jitter: int = 2
    offset_max: Optional[int] = None
    seed: int = 0
    paste: str = "replace"

    def __post_init__(self) -> None:
        if self.signal_steps < 1 or self.seq_len < self.signal_steps:
            raise ValueRangeError(f"need 1 <= signal_steps <= seq_len, found "
                                  f"signal_steps={self.signal_steps}, seq_len={self.seq_len}")
        if self.paste not in PASTE_MODES:
            raise ValueRangeError(f"paste must be one of {PASTE_MODES}, found {self.paste!r}")
        h, w = NMNIST_SENSOR_CHW[1:]
        if self.centre_low - self.jitter < 0 or self.centre_high - 1 + self.jitter - 1 >= min(h, w):
            raise ValueRangeError(
                f"noise centre range [{self.centre_low}, {self.centre_high}) with jitter "
                f"{self.jitter} leaves the 34x34 sensor", hint="use centre in [2, 32), jitter 2")
        if self.last_offset < 0 or self.last_offset > self.seq_len - self.signal_steps:
            raise ValueRangeError(f"offset_max must be in [0, {self.seq_len - self.signal_steps}],"
                                  f" found {self.offset_max}")

    @property
    def last_offset(self) -> int:
        """Return the largest allowed signal start step."""
        return self.seq_len - self.signal_steps if self.offset_max is None else int(self.offset_max)

    def signal_bin_spec(self) -> BinSpec:
        """Return the BinSpec of the pasted signal (binary, ``signal_steps`` x ``dt_us``)."""
        return BinSpec(dt_us=self.dt_us, n_steps=self.signal_steps, mode="binary")


def make_noise(rng: np.random.Generator, spec: SkipSNNNoiseSpec) -> np.ndarray:
    """Return one ``(seq_len, 2, 34, 34)`` uint8 noise sequence (one event per polarity per step)."""
    t_len = int(spec.seq_len)
    centre = rng.integers(spec.centre_low, spec.centre_high, size=(t_len, 1, 2))
    jit = rng.integers(-spec.jitter, spec.jitter, size=(t_len, 2, 2))
    yx = centre + jit  # (T, polarity, [y, x])
    out = np.zeros((t_len,) + NMNIST_SENSOR_CHW, dtype=np.uint8)
    t_idx = np.repeat(np.arange(t_len), 2)
    p_idx = np.tile(np.arange(2), t_len)
    out[t_idx, p_idx, yx[:, :, 0].reshape(-1), yx[:, :, 1].reshape(-1)] = 1
    return out


class SkipSNNNoisyNMNIST:
    """Noise-padded N-MNIST sequences built on demand from binned 50-step signals."""

    def __init__(self, signal: BinnedSet, spec: SkipSNNNoiseSpec) -> None:
        """Use ``signal`` (binary, ``spec.signal_steps`` steps, 2x34x34) with ``spec``."""
        want = (spec.signal_steps,) + NMNIST_SENSOR_CHW
        if tuple(signal.shape) != want:
            raise ValueRangeError(f"signal frames have shape {tuple(signal.shape)}, expected {want}")
        self.signal = signal
        self.spec = spec
        self.labels = signal.labels

    def __len__(self) -> int:
        """Return the number of samples."""
        return len(self.signal)

    def _rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([int(self.spec.seed), int(i)])

    def offset(self, i: int) -> int:
        """Return the step at which sample ``i``'s signal starts."""
        return int(self._rng(i).integers(0, self.spec.last_offset + 1))

    def sample(self, i: int) -> tuple[np.ndarray, int, int]:
        """Return ``(x (seq_len, 2, 34, 34) uint8, label, offset)`` for sample ``i``."""
        rng = self._rng(i)
        off = int(rng.integers(0, self.spec.last_offset + 1))
        x = make_noise(rng, self.spec)
        sig = self.signal.dense(i, np.uint8)
        window = slice(off, off + self.spec.signal_steps)
        if self.spec.paste == "replace":
            x[window] = sig
        else:
            x[window] |= sig
        return x, int(self.labels[i]), off

    def __getitem__(self, i: int) -> tuple[np.ndarray, int, int]:
        """Same as :meth:`sample`."""
        return self.sample(i)

    def batch(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return stacked ``(x (B, seq_len, 2, 34, 34), labels (B,), offsets (B,))``."""
        items = [self.sample(int(i)) for i in indices]  # loop over samples
        return (np.stack([it[0] for it in items]), np.asarray([it[1] for it in items]),
                np.asarray([it[2] for it in items]))

    def describe(self) -> dict[str, Any]:
        """Return the parameters as a dict (for reports)."""
        d = dict(self.spec.__dict__)
        d["n_samples"] = len(self)
        return d


def load_skipsnn_nmnist(spec: Optional[SkipSNNNoiseSpec] = None,
                        root: Optional[PathLike] = None,
                        cache_dir: Optional[PathLike] = None,
                        refresh: bool = False) -> SkipSNNNoisyNMNIST:
    """Return noise-padded N-MNIST-small built on the cached binary 50 x 1 ms signal."""
    spec = spec or SkipSNNNoiseSpec()
    signal = load_nmnist_small_binned(spec.signal_bin_spec(), root, cache_dir, refresh)
    return SkipSNNNoisyNMNIST(signal, spec)
