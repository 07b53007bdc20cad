"""N-MNIST data sets and the cached binned loader (the ``.bin`` file format: :mod:`snnc.formats.nmnist`).

A recording lasts about 300 ms: three saccades of about 100 ms each, about 4k events.

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
from snnc.formats.events import BinSpec
from snnc.formats.nmnist import (BYTES_PER_EVENT, MAX_T_US, NMNIST_SENSOR_CHW, decode_nmnist_bytes,  # noqa: F401
                                 encode_nmnist_events, read_labels_txt, read_nmnist_bin, write_nmnist_bin)
from snnc.models.data.binned import BinnedSet, bin_source, cached
from snnc.models.data.paths import PathLike, default_data_dir, dir_fingerprint, file_sha1, require_dir
from snnc.models.data.splits import stratified_split

log = logging.getLogger(__name__)


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
