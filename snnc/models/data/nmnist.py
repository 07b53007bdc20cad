"""N-MNIST in its native ``.bin`` format: reader, writer, datasets and the cached binned loader.

File format (Orchard et al. 2015), 5 bytes per event, big-endian bit fields::

    x = b[0]; y = b[1]; p = b[2] >> 7; t_us = ((b[2] & 0x7F) << 16) | (b[3] << 8) | b[4]

Sensor 2 x 34 x 34 (polarity, y, x). A recording lasts about 300 ms: three saccades of
about 100 ms each, about 4k events.

* :class:`NMNISTSmall`: the 1,000-sample folder (``*.bin`` plus ``labels.txt`` with
  ``sample_id<TAB>class`` lines; ``#`` starts a comment), by default
  ``<data>/nmnist-small/train``.
* :class:`NMNISTFolder`: the full data set as distributed (``Train/<digit>/<id>.bin``,
  ``Test/<digit>/<id>.bin``), bring your own copy; nothing is downloaded.
* :func:`load_nmnist_small_binned`: bins all samples once and caches them under the cache
  directory, so training does not re-read 1,000 files each epoch.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np

from snnc.errors import InputError
from snnc.models.data.binned import BinnedSet, bin_source, cached
from snnc.models.data.events import EVENT_DTYPE, BinSpec, as_events
from snnc.models.data.paths import (PathLike, default_data_dir, dir_fingerprint, file_sha1,
                                    require_dir, require_file)
from snnc.models.data.splits import stratified_split

log = logging.getLogger(__name__)

#: N-MNIST sensor as (polarities, height, width).
NMNIST_SENSOR_CHW = (2, 34, 34)
#: Bytes per event in the .bin format.
BYTES_PER_EVENT = 5
#: Largest timestamp the 23-bit field can hold, in microseconds.
MAX_T_US = (1 << 23) - 1


def decode_nmnist_bytes(buf: bytes, where: str = "") -> np.ndarray:
    """Decode raw N-MNIST ``.bin`` bytes into an EVENT_DTYPE array (vectorised)."""
    if len(buf) % BYTES_PER_EVENT:
        raise InputError(f"N-MNIST .bin size {len(buf)} bytes is not a multiple of "
                         f"{BYTES_PER_EVENT}", file=where or None,
                         hint="the file is truncated or not in the N-MNIST .bin format")
    b = np.frombuffer(buf, dtype=np.uint8).reshape(-1, BYTES_PER_EVENT)
    ev = np.empty(b.shape[0], dtype=EVENT_DTYPE)
    ev["x"] = b[:, 0]
    ev["y"] = b[:, 1]
    ev["p"] = b[:, 2] >> 7
    ev["t_us"] = ((b[:, 2].astype(np.int64) & 0x7F) << 16) | (b[:, 3].astype(np.int64) << 8) \
        | b[:, 4].astype(np.int64)
    return ev


def read_nmnist_bin(path: PathLike) -> np.ndarray:
    """Read one N-MNIST ``.bin`` file into an EVENT_DTYPE array (t_us, x, y, p)."""
    p = require_file(path, "N-MNIST event file")
    return decode_nmnist_bytes(p.read_bytes(), where=str(p))


def encode_nmnist_events(events: Any) -> bytes:
    """Encode events into N-MNIST ``.bin`` bytes; raises if a field does not fit its bits."""
    ev = as_events(events)
    for name, lo, hi in (("x", 0, 255), ("y", 0, 255), ("p", 0, 1), ("t_us", 0, MAX_T_US)):
        v = ev[name]
        if v.size and (int(v.min()) < lo or int(v.max()) > hi):
            raise InputError(f"cannot encode field '{name}' in N-MNIST .bin: found "
                             f"[{int(v.min())}, {int(v.max())}], limit [{lo}, {hi}]")
    t = ev["t_us"].astype(np.int64)
    out = np.empty((ev.size, BYTES_PER_EVENT), dtype=np.uint8)
    out[:, 0] = ev["x"]
    out[:, 1] = ev["y"]
    out[:, 2] = ((t >> 16) & 0x7F) | (ev["p"].astype(np.int64) << 7)
    out[:, 3] = (t >> 8) & 0xFF
    out[:, 4] = t & 0xFF
    return out.tobytes()


def write_nmnist_bin(path: PathLike, events: Any) -> None:
    """Write events to an N-MNIST ``.bin`` file."""
    Path(path).write_bytes(encode_nmnist_events(events))


def read_labels_txt(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read ``sample_id<TAB>class`` lines (``#`` comments allowed) into (ids, labels)."""
    p = require_file(path, "N-MNIST labels file")
    ids: list[int] = []
    labels: list[int] = []
    for lineno, raw in enumerate(p.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            ids.append(int(parts[0]))
            labels.append(int(parts[1]))
        except ValueError:
            raise InputError(f"line {lineno}: expected 'sample_id<TAB>class', found {raw!r}",
                             file=str(p)) from None
    if not ids:
        raise InputError("no samples listed", file=str(p))
    return np.asarray(ids, dtype=np.int64), np.asarray(labels, dtype=np.int64)


def nmnist_small_dir() -> Path:
    """Return the default N-MNIST-small folder: ``<data>/nmnist-small/train``."""
    return default_data_dir() / "nmnist-small" / "train"


class NMNISTSmall:
    """The N-MNIST subset folder: ``<id>.bin`` files plus ``labels.txt``."""

    sensor_chw = NMNIST_SENSOR_CHW
    n_classes = 10

    def __init__(self, root: Optional[PathLike] = None) -> None:
        """Index ``root`` (default ``<data>/nmnist-small/train``) and check every file exists."""
        self.root = require_dir(root if root is not None else nmnist_small_dir(),
                                "N-MNIST-small folder")
        self.sample_ids, self.labels = read_labels_txt(self.root / "labels.txt")
        if self.labels.min() < 0 or self.labels.max() >= self.n_classes:
            raise InputError(f"class out of range: found [{self.labels.min()}, "
                             f"{self.labels.max()}], limit [0, 9]", file=str(self.root / "labels.txt"))
        missing = [int(i) for i in self.sample_ids if not (self.root / f"{int(i)}.bin").is_file()]
        if missing:
            raise InputError(f"{len(missing)} sample file(s) listed in labels.txt are missing, "
                             f"e.g. {missing[:5]}", file=str(self.root),
                             hint="the folder must hold '<sample_id>.bin' for every listed id")

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.sample_ids.size)

    def path(self, i: int) -> Path:
        """Return the file of sample index ``i`` (0-based position in labels.txt)."""
        return self.root / f"{int(self.sample_ids[i])}.bin"

    def events(self, i: int) -> np.ndarray:
        """Return the events of sample index ``i``."""
        return read_nmnist_bin(self.path(i))

    def label(self, i: int) -> int:
        """Return the class of sample index ``i``."""
        return int(self.labels[i])

    def frames(self, i: int, spec: BinSpec) -> np.ndarray:
        """Return sample ``i`` binned with ``spec`` as a dense ``(T, C, H, W)`` array."""
        return bin_source(self, spec, [i]).dense(0)

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Return (train, val) sample indices, stratified by class, deterministic by seed."""
        return stratified_split(self.labels, val_fraction, seed)

    def fingerprint(self) -> dict[str, Any]:
        """Return a cheap identity of the folder contents for cache keys."""
        fp = dir_fingerprint(self.path(i) for i in range(len(self)))
        fp["labels_sha1"] = file_sha1(self.root / "labels.txt")
        fp["root"] = str(self.root.resolve())
        return fp


def load_nmnist_small_binned(spec: Optional[BinSpec] = None, root: Optional[PathLike] = None,
                             cache_dir: Optional[PathLike] = None, refresh: bool = False
                             ) -> BinnedSet:
    """Bin every N-MNIST-small sample once with ``spec`` and cache it as .npz.

    Default spec: 1 ms steps, 300 steps (covers the ~300 ms recordings; events after
    300 ms are counted in ``report['n_dropped_after']``), count mode, full 34x34.
    ``sample_ids`` of the result are the ids from labels.txt.
    """
    spec = spec or BinSpec(dt_us=1000, n_steps=300, mode="count")
    ds = NMNISTSmall(root)
    key = {"dataset": "nmnist-small", "spec": spec.to_dict(), "data": ds.fingerprint()}
    return cached("nmnist-small", key, lambda: bin_source(ds, spec, sample_ids=ds.sample_ids),
                  cache_dir, refresh)


class NMNISTFolder:
    """Full N-MNIST as distributed: ``<root>/Train|Test/<digit>/<id>.bin`` (bring your own)."""

    sensor_chw = NMNIST_SENSOR_CHW
    n_classes = 10

    def __init__(self, root: PathLike, split: str = "train") -> None:
        """Index ``<root>/<Train|Test>`` (split ``train`` or ``test``, case-insensitive)."""
        base = require_dir(root, "N-MNIST root",
                           hint="download N-MNIST yourself (Train/ and Test/ folders of "
                                "<digit>/<id>.bin) and pass its folder; snnc never downloads")
        want = split.lower()
        if want not in ("train", "test"):
            raise InputError(f"split must be 'train' or 'test', found {split!r}")
        cands = [d for d in base.iterdir() if d.is_dir() and d.name.lower() == want]
        if not cands:
            raise InputError(f"no '{want.capitalize()}' folder", file=str(base),
                             hint="expected <root>/Train/<digit>/*.bin and <root>/Test/<digit>/*.bin")
        self.root = cands[0]
        files: list[Path] = []
        labels: list[int] = []
        for digit in range(self.n_classes):
            d = self.root / str(digit)
            if d.is_dir():
                found = sorted(d.glob("*.bin"))
                files.extend(found)
                labels.extend([digit] * len(found))
        if not files:
            raise InputError("no <digit>/*.bin files found", file=str(self.root))
        self.files = files
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        """Return the number of samples."""
        return len(self.files)

    def events(self, i: int) -> np.ndarray:
        """Return the events of sample ``i``."""
        return read_nmnist_bin(self.files[i])

    def label(self, i: int) -> int:
        """Return the class of sample ``i``."""
        return int(self.labels[i])
