"""Spiking Heidelberg Digits (SHD) reader (bring your own ``shd_train.h5`` / ``shd_test.h5``).

HDF5 layout (Cramer et al. 2020): ``spikes/times`` (variable-length float arrays, seconds),
``spikes/units`` (variable-length integer arrays, channel 0..699), ``labels`` (class 0..19),
optional ``extra/speaker`` and ``extra/keys``. Events get ``x = unit``, ``y = 0``, ``p = 0``
and ``t_us = round_half_even(times * 1e6)``; the sensor is ``(C, H, W) = (1, 1, 700)``.
Needs h5py (imported when a file is opened).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from snnc.errors import BackendUnavailableError, InputError
from snnc.fixedpoint import round_half_even
from snnc.formats.events import BinSpec, events_to_dense, make_events
from snnc.models.data.paths import PathLike, require_file

#: SHD sensor as (channels, height, width): 700 cochlea channels along x.
SHD_SENSOR_CHW = (1, 1, 700)
SHD_N_CLASSES = 20


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendUnavailableError("reading SHD needs h5py", hint="pip install h5py") from exc
    return h5py


class SHD:
    """One SHD HDF5 file (``split`` picks ``shd_<split>.h5`` when ``path`` is a folder)."""

    sensor_chw = SHD_SENSOR_CHW
    n_classes = SHD_N_CLASSES

    def __init__(self, path: PathLike, split: str = "train") -> None:
        """Open ``path`` (an .h5 file, or a folder holding ``shd_train.h5``/``shd_test.h5``)."""
        p = Path(path)
        if p.is_dir():
            if split not in ("train", "test"):
                raise InputError(f"split must be 'train' or 'test', found {split!r}")
            p = p / f"shd_{split}.h5"
        self.path = require_file(p, "SHD HDF5 file",
                                 hint="download SHD yourself (shd_train.h5, shd_test.h5) and pass "
                                      "the file or its folder; snnc never downloads")
        h5py = _h5py()
        try:
            with h5py.File(self.path, "r") as f:
                for key in ("spikes/times", "spikes/units", "labels"):
                    if key not in f:
                        raise InputError(f"missing dataset '{key}'", file=str(self.path),
                                         hint="expected spikes/times, spikes/units, labels")
                self.labels = np.asarray(f["labels"][()], dtype=np.int64)
                n_t, n_u = len(f["spikes/times"]), len(f["spikes/units"])
                self.speakers = (np.asarray(f["extra/speaker"][()], dtype=np.int64)
                                 if "extra/speaker" in f else None)
        except OSError as exc:
            raise InputError(f"unreadable HDF5 ({exc})", file=str(self.path)) from exc
        if not (n_t == n_u == self.labels.size):
            raise InputError(f"sample counts disagree: times {n_t}, units {n_u}, "
                             f"labels {self.labels.size}", file=str(self.path))
        self._file: Any = None

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.labels.size)

    def _h5(self) -> Any:
        if self._file is None:
            self._file = _h5py().File(self.path, "r")
        return self._file

    def close(self) -> None:
        """Close the HDF5 file if open."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, Any]:
        """Drop the open file handle when pickled (DataLoader workers reopen it)."""
        state = dict(self.__dict__)
        state["_file"] = None
        return state

    def events(self, i: int) -> np.ndarray:
        """Return the spikes of sample ``i`` as events (x = channel)."""
        f = self._h5()
        times = np.asarray(f["spikes/times"][i], dtype=np.float64)
        units = np.asarray(f["spikes/units"][i], dtype=np.int64)
        if times.shape != units.shape:
            raise InputError(f"sample {i}: {times.size} times but {units.size} units",
                             file=str(self.path))
        if times.size and (not np.all(np.isfinite(times)) or times.min() < 0):
            raise InputError(f"sample {i}: spike times must be finite and >= 0", file=str(self.path))
        return make_events(round_half_even(times * 1e6), units, 0, 0)

    def label(self, i: int) -> int:
        """Return the class (0..19) of sample ``i``."""
        return int(self.labels[i])

    def frames(self, i: int, spec: BinSpec, report: Optional[dict[str, Any]] = None) -> np.ndarray:
        """Return sample ``i`` binned as ``(T, 700)`` counts (uint16)."""
        d = events_to_dense(self.events(i), spec.dt_us, self.sensor_chw, spec.n_steps,
                            t0_us=spec.t0_us, mode=spec.mode, report=report)
        return d.reshape(d.shape[0], -1)
