"""Torch wrappers over the numpy data sets (this module imports torch; the rest do not)."""
from __future__ import annotations

from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from snnc.models.data.binned import BinnedSet, EventSource
from snnc.formats.events import BinSpec
from snnc.models.data.skipsnn import SkipSNNNoisyNMNIST


def _indices(n: int, indices: Optional[Sequence[int]]) -> np.ndarray:
    return np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)


class BinnedDataset(Dataset):
    """Map-style torch Dataset over a :class:`BinnedSet`: item -> (frames tensor, label)."""

    def __init__(self, binned: BinnedSet, indices: Optional[Sequence[int]] = None,
                 dtype: torch.dtype = torch.float32, flatten: bool = False,
                 transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> None:
        """Wrap ``binned`` restricted to ``indices``; ``flatten`` gives ``(T, C*H*W)`` items."""
        self.binned = binned
        self.indices = _indices(len(binned), indices)
        self.dtype = dtype
        self.flatten = flatten
        self.transform = transform

    def __len__(self) -> int:
        """Return the number of items."""
        return int(self.indices.size)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        """Return item ``k`` as ``(frames (T, C, H, W) or (T, C*H*W), label)``."""
        i = int(self.indices[k])
        x = torch.from_numpy(self.binned.dense(i)).to(self.dtype)
        if self.flatten:
            x = x.reshape(x.shape[0], -1)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.binned.labels[i])


class ArrayDataset(Dataset):
    """Map-style torch Dataset over a dense numpy array ``(N, T, ...)`` and labels."""

    def __init__(self, data: np.ndarray, labels: Sequence[int],
                 indices: Optional[Sequence[int]] = None,
                 dtype: torch.dtype = torch.float32) -> None:
        """Wrap ``data[indices]`` with ``labels[indices]``."""
        self.data = data
        self.labels = np.asarray(labels, dtype=np.int64)
        self.indices = _indices(len(self.labels), indices)
        self.dtype = dtype

    def __len__(self) -> int:
        """Return the number of items."""
        return int(self.indices.size)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        """Return item ``k`` as ``(tensor, label)``."""
        i = int(self.indices[k])
        return torch.from_numpy(np.asarray(self.data[i])).to(self.dtype), int(self.labels[i])


class EventFramesDataset(Dataset):
    """Map-style torch Dataset binning an event source on the fly (no cache)."""

    def __init__(self, source: EventSource, spec: BinSpec,
                 indices: Optional[Sequence[int]] = None,
                 dtype: torch.dtype = torch.float32) -> None:
        """Bin ``source`` samples with ``spec`` when they are requested."""
        self.source = source
        self.spec = spec
        self.indices = _indices(len(source), indices)
        self.dtype = dtype

    def __len__(self) -> int:
        """Return the number of items."""
        return int(self.indices.size)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        """Return item ``k`` as ``(frames (T, C, H, W), label)``."""
        from snnc.models.data.binned import bin_source
        i = int(self.indices[k])
        x = bin_source(self.source, self.spec, [i]).dense(0)
        return torch.from_numpy(x).to(self.dtype), self.source.label(i)


def iterate_batches(binned: BinnedSet, indices: Optional[Sequence[int]] = None,
                    batch_size: int = 64, shuffle: bool = True, seed: int = 0,
                    dtype: torch.dtype = torch.float32, flatten: bool = False
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x (B, T, C, H, W), y (B,))`` batches densified in one vectorised scatter each.

    Faster than a DataLoader over :class:`BinnedDataset`; the order is a permutation from
    ``numpy.random.default_rng(seed)`` when ``shuffle``.
    """
    ind = _indices(len(binned), indices)
    if shuffle:
        ind = ind[np.random.default_rng(seed).permutation(ind.size)]
    for a in range(0, ind.size, int(batch_size)):
        sel = ind[a:a + int(batch_size)]
        x = torch.from_numpy(binned.dense_batch(sel)).to(dtype)
        if flatten:
            x = x.reshape(x.shape[0], x.shape[1], -1)
        yield x, torch.from_numpy(binned.labels[sel].astype(np.int64))


class SkipSNNDataset(Dataset):
    """Map-style torch Dataset over SkipSNN noise-padded N-MNIST: item -> (x, label, offset)."""

    def __init__(self, source: SkipSNNNoisyNMNIST, indices: Optional[Sequence[int]] = None,
                 dtype: torch.dtype = torch.float32, flatten: bool = False) -> None:
        """Wrap ``source`` restricted to ``indices``; ``flatten`` gives ``(T, 2312)`` items."""
        self.source = source
        self.indices = _indices(len(source), indices)
        self.dtype = dtype
        self.flatten = flatten

    def __len__(self) -> int:
        """Return the number of items."""
        return int(self.indices.size)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int, int]:
        """Return item ``k`` as ``(x (T, 2, 34, 34) or (T, 2312), label, offset)``."""
        x, y, off = self.source.sample(int(self.indices[k]))
        t = torch.from_numpy(x).to(self.dtype)
        if self.flatten:
            t = t.reshape(t.shape[0], -1)
        return t, y, off
