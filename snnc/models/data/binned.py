"""A compact store of many binned samples (sparse), its construction and its .npz cache.

Binned event data are very sparse (N-MNIST at 1 ms: about 4k non-zeros in 300x2x34x34),
so a :class:`BinnedSet` keeps, per sample, the sorted flat indices of the non-zero bins and
their counts; :meth:`BinnedSet.dense` scatters one sample (or a batch) on demand.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

import numpy as np

from snnc.errors import InputError
from snnc.formats.events import BinSpec, events_to_sparse, sparse_to_dense
from snnc.models.data.paths import PathLike, cache_key, resolve_cache_dir

log = logging.getLogger(__name__)

#: Bump when the on-disk layout of cached BinnedSets changes.
CACHE_FORMAT_VERSION = 1


class EventSource(Protocol):
    """Anything that lists labelled event samples on a fixed sensor."""

    sensor_chw: tuple[int, int, int]

    def __len__(self) -> int:
        """Return the number of samples."""
        ...

    def events(self, i: int) -> np.ndarray:
        """Return the EVENT_DTYPE events of sample ``i``."""
        ...

    def label(self, i: int) -> int:
        """Return the class of sample ``i``."""
        ...


@dataclass
class BinnedSet:
    """Many binned samples in sparse form; ``dense(i)`` returns one ``shape`` array."""

    shape: tuple[int, ...]
    flat_idx: np.ndarray
    values: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    sample_ids: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.labels.shape[0])

    @property
    def value_dtype(self) -> np.dtype:
        """Return the dtype dense arrays are given (uint8 for binary, uint16 for counts)."""
        return np.dtype(np.uint8) if self.meta.get("mode") == "binary" else np.dtype(np.uint16)

    def nnz(self, i: int) -> int:
        """Return the number of non-zero bins of sample ``i``."""
        return int(self.offsets[i + 1] - self.offsets[i])

    def dense(self, i: int, dtype: Any = None) -> np.ndarray:
        """Return sample ``i`` as a dense ``shape`` array."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return sparse_to_dense(self.flat_idx[a:b], self.values[a:b], self.shape,
                               dtype or self.value_dtype)

    def dense_batch(self, indices: Sequence[int], dtype: Any = None) -> np.ndarray:
        """Return samples ``indices`` stacked as a dense ``(B,) + shape`` array."""
        ind = np.asarray(indices, dtype=np.int64)
        per = int(np.prod(self.shape))
        out = np.zeros((ind.size, per), dtype=np.dtype(dtype or self.value_dtype))
        starts = self.offsets[ind]
        lens = self.offsets[ind + 1] - starts
        rows = np.repeat(np.arange(ind.size), lens)
        # positions into flat_idx/values for every selected entry, without a Python loop
        pos = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens) \
            + np.arange(int(lens.sum()))
        out[rows, self.flat_idx[pos]] = self.values[pos]
        return out.reshape((ind.size,) + tuple(self.shape))

    def subset(self, indices: Sequence[int]) -> "BinnedSet":
        """Return a new BinnedSet holding only ``indices`` (in that order)."""
        ind = np.asarray(indices, dtype=np.int64)
        starts = self.offsets[ind]
        lens = self.offsets[ind + 1] - starts
        pos = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens) \
            + np.arange(int(lens.sum()))
        offsets = np.concatenate(([0], np.cumsum(lens))).astype(np.int64)
        return BinnedSet(tuple(self.shape), self.flat_idx[pos], self.values[pos], offsets,
                         self.labels[ind], self.sample_ids[ind], dict(self.meta),
                         dict(self.report))

    def save(self, path: PathLike) -> None:
        """Write the set to ``path`` (.npz) atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        with open(tmp, "wb") as fh:
            np.savez(fh, shape=np.asarray(self.shape, dtype=np.int64), flat_idx=self.flat_idx,
                     values=self.values, offsets=self.offsets, labels=self.labels,
                     sample_ids=self.sample_ids,
                     meta=np.asarray(json.dumps(self.meta, sort_keys=True)),
                     report=np.asarray(json.dumps(self.report, sort_keys=True)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: PathLike) -> "BinnedSet":
        """Read a set written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(tuple(int(v) for v in z["shape"]), z["flat_idx"], z["values"],
                           z["offsets"], z["labels"], z["sample_ids"],
                           json.loads(str(z["meta"])), json.loads(str(z["report"])))
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"unreadable binned cache ({exc})", file=str(path),
                             hint="delete the file; it is rebuilt on the next call") from exc


def bin_source(source: EventSource, spec: BinSpec, indices: Optional[Sequence[int]] = None,
               sample_ids: Optional[Sequence[int]] = None) -> BinnedSet:
    """Bin every sample of ``source`` (or ``indices``) with ``spec`` into a BinnedSet."""
    ind = np.arange(len(source)) if indices is None else np.asarray(indices, dtype=np.int64)
    report: dict[str, Any] = {}
    shape = spec.out_shape(source.sensor_chw)
    n_flat = int(np.prod(shape))
    idx_dtype = np.int32 if n_flat < 2**31 else np.int64
    idx_parts: list[np.ndarray] = []
    val_parts: list[np.ndarray] = []
    lens = np.zeros(ind.size, dtype=np.int64)
    labels = np.zeros(ind.size, dtype=np.int64)
    t_start = time.perf_counter()
    for k, i in enumerate(ind):  # loop over samples (files), not neurons
        idx, counts, _ = events_to_sparse(source.events(int(i)), spec, source.sensor_chw,
                                          report, where=str(i))
        idx_parts.append(idx.astype(idx_dtype))
        val_parts.append(counts)
        lens[k] = idx.size
        labels[k] = source.label(int(i))
    values = np.concatenate(val_parts) if val_parts else np.zeros(0, np.int64)
    vmax = int(values.max()) if values.size else 0
    val_dtype = np.uint8 if vmax <= 255 else (np.uint16 if vmax <= 65535 else np.uint32)
    report["max_count"] = vmax
    report["seconds"] = round(time.perf_counter() - t_start, 3)
    meta = dict(spec.to_dict())
    meta["sensor_chw"] = list(source.sensor_chw)
    return BinnedSet(
        shape=shape,
        flat_idx=np.concatenate(idx_parts) if idx_parts else np.zeros(0, idx_dtype),
        values=values.astype(val_dtype),
        offsets=np.concatenate(([0], np.cumsum(lens))).astype(np.int64),
        labels=labels,
        sample_ids=np.asarray(sample_ids if sample_ids is not None else ind, dtype=np.int64),
        meta=meta, report=report)


def cached(name: str, key_params: dict[str, Any], build: Callable[[], BinnedSet],
           cache_dir: Optional[PathLike] = None, refresh: bool = False) -> BinnedSet:
    """Return the BinnedSet cached under ``<cache>/<name>-<hash(key_params)>.npz``, building it once."""
    params = dict(key_params, cache_format=CACHE_FORMAT_VERSION)
    path = resolve_cache_dir(cache_dir) / f"{name}-{cache_key(params)}.npz"
    if path.is_file() and not refresh:
        t0 = time.perf_counter()
        out = BinnedSet.load(path)
        if out.meta.get("cache_params") == json.loads(json.dumps(params, default=str)):
            log.info("loaded %s from cache %s in %.2f s", name, path, time.perf_counter() - t0)
            out.meta["cache_path"] = str(path)
            return out
        log.warning("cache %s does not match its parameters; rebuilding", path)
    out = build()
    out.meta["cache_params"] = json.loads(json.dumps(params, default=str))
    out.save(path)
    out.meta["cache_path"] = str(path)
    log.info("built %s (%d samples) in %.2f s, cached at %s", name, len(out),
             float(out.report.get("seconds", 0.0)), path)
    return out
