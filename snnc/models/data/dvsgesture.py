"""IBM DVS128 Gesture readers (bring your own download; nothing is fetched).

Two layouts are read:

* tonic's preprocessed copy (``ibmGestureTrain/`` and ``ibmGestureTest/`` folders, one
  sub-folder per recording such as ``user01_fluorescent``, one ``<class>.npy`` per gesture):
  each ``.npy`` is an ``(N, 4)`` array with columns ``x, y, p, t`` where ``t`` is in
  milliseconds (float). We convert to microseconds with round-half-even. The class is the
  file stem (0..10).
* the original release (``DvsGesture/``): ``userNN_<lighting>.aedat`` files in AEDAT 3.1
  with ``userNN_<lighting>_labels.csv`` (``class,startTime_usec,endTime_usec``, classes
  1..11) and optional ``trials_to_train.txt`` / ``trials_to_test.txt``. Each labelled
  interval ``[start, end)`` is one sample, class ``class - 1``, times relative to ``start``.
  Without trial lists, users 1..23 are train and 24..29 test (the published split).

AEDAT 3.1 (:func:`read_aedat31`): ASCII header lines starting with ``#`` (first
``#!AER-DAT3.1``), ended by ``#!END-HEADER\\r\\n``; then packets, each a 28-byte
little-endian header ``int16 eventType, int16 eventSource, int32 eventSize,
eventTSOffset, eventTSOverflow, eventCapacity, eventNumber, eventValid`` followed by
``eventCapacity * eventSize`` bytes. Polarity events (type 1, 8 bytes): ``uint32 data``
(bit 0 valid, bit 1 polarity, bits 2..16 y, bits 17..31 x) and ``int32 timestamp``;
the full timestamp is ``(eventTSOverflow << 31) | timestamp`` microseconds. Invalid events
and non-polarity packets are skipped and counted in the returned info dict.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

import numpy as np

from snnc.errors import InputError
from snnc.fixedpoint import round_half_even
from snnc.formats.events import EVENT_DTYPE, make_events
from snnc.models.data.paths import PathLike, require_dir, require_file

log = logging.getLogger(__name__)

#: DVS128 sensor as (polarities, height, width).
GESTURE_SENSOR_CHW = (2, 128, 128)
#: Class names, index = class id used here (0..10).
GESTURE_CLASSES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
    "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
    "arm_roll", "air_drums", "air_guitar", "other_gestures",
)
AEDAT31_MAGIC = b"#!AER-DAT3.1"
AEDAT_END_HEADER = b"#!END-HEADER\r\n"
POLARITY_EVENT = 1
_HEADER_DTYPE = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"),
                          ("ts_offset", "<i4"), ("ts_overflow", "<i4"), ("capacity", "<i4"),
                          ("number", "<i4"), ("valid", "<i4")])
_USER_RE = re.compile(r"user(\d+)", re.IGNORECASE)
_SPLIT_FOLDERS = {"train": "ibmGestureTrain", "test": "ibmGestureTest"}


def _check_split(split: str) -> str:
    s = split.lower()
    if s not in _SPLIT_FOLDERS:
        raise InputError(f"split must be 'train' or 'test', found {split!r}")
    return s


def read_gesture_npy(path: PathLike) -> np.ndarray:
    """Read one tonic-layout ``.npy`` (columns x, y, p, t_ms) into an EVENT_DTYPE array."""
    p = require_file(path, "DVS Gesture .npy sample")
    try:
        a = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable .npy ({exc})", file=str(p)) from exc
    if a.ndim != 2 or a.shape[1] != 4:
        raise InputError(f"expected an (N, 4) array of x, y, p, t_ms, found shape {a.shape}",
                         file=str(p))
    if a.size and not np.all(np.isfinite(a)):
        raise InputError("array holds NaN or infinite values", file=str(p))
    return make_events(round_half_even(a[:, 3] * 1000.0), a[:, 0], a[:, 1], a[:, 2])


class DVSGestureNpy:
    """tonic's preprocessed DVS Gesture: ``<root>/ibmGesture{Train,Test}/<rec>/<class>.npy``."""

    sensor_chw = GESTURE_SENSOR_CHW
    n_classes = 11

    def __init__(self, root: PathLike, split: str = "train") -> None:
        """Index the ``split`` folder under ``root`` (the folder holding ibmGestureTrain/Test)."""
        base = require_dir(root, "DVS Gesture root",
                           hint="pass the folder that holds ibmGestureTrain/ and ibmGestureTest/ "
                                "(tonic layout); snnc never downloads")
        folder = require_dir(base / _SPLIT_FOLDERS[_check_split(split)], "DVS Gesture split folder")
        files = sorted(folder.rglob("*.npy"), key=lambda f: (str(f.parent), int(f.stem)
                                                              if f.stem.isdigit() else -1))
        bad = [f.name for f in files if not f.stem.isdigit()]
        if bad:
            raise InputError(f"sample names must be '<class>.npy', found {bad[:3]}", file=str(folder))
        if not files:
            raise InputError("no .npy samples", file=str(folder))
        self.files = files
        self.labels = np.asarray([int(f.stem) for f in files], dtype=np.int64)
        if self.labels.max() >= self.n_classes:
            raise InputError(f"class out of range: found {self.labels.max()}, limit 10",
                             file=str(folder))
        self.recordings = np.asarray([f.parent.name for f in files])

    def __len__(self) -> int:
        """Return the number of samples."""
        return len(self.files)

    def events(self, i: int) -> np.ndarray:
        """Return the events of sample ``i``."""
        return read_gesture_npy(self.files[i])

    def label(self, i: int) -> int:
        """Return the class (0..10) of sample ``i``."""
        return int(self.labels[i])


def read_aedat31(path: PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Read the polarity events of an AEDAT 3.1 file; returns (events, info).

    ``info`` holds ``header`` (list of header lines), ``n_packets``,
    ``n_skipped_packets`` (non-polarity), ``n_invalid`` (events with the valid bit clear).
    """
    p = require_file(path, "AEDAT 3.1 file")
    buf = p.read_bytes()
    if not buf.startswith(AEDAT31_MAGIC):
        raise InputError(f"not an AEDAT 3.1 file: starts with {buf[:12]!r}", file=str(p),
                         hint="expected the first line '#!AER-DAT3.1'")
    end = buf.find(AEDAT_END_HEADER)
    if end < 0:
        raise InputError("AEDAT header has no '#!END-HEADER' line", file=str(p))
    header = buf[:end].decode("ascii", errors="replace").splitlines()
    pos = end + len(AEDAT_END_HEADER)
    hsize = _HEADER_DTYPE.itemsize
    chunks: list[np.ndarray] = []
    info: dict[str, Any] = {"header": header, "n_packets": 0, "n_skipped_packets": 0,
                            "n_invalid": 0}
    while pos < len(buf):  # loop over packets
        if pos + hsize > len(buf):
            raise InputError(f"truncated packet header at byte {pos}", file=str(p))
        h = np.frombuffer(buf, dtype=_HEADER_DTYPE, count=1, offset=pos)[0]
        size, cap, num = int(h["size"]), int(h["capacity"]), int(h["number"])
        if size <= 0 or cap < 0 or num < 0 or num > cap:
            raise InputError(f"malformed packet header at byte {pos}: eventSize={size}, "
                             f"eventCapacity={cap}, eventNumber={num}", file=str(p))
        body = pos + hsize
        nxt = body + cap * size
        if nxt > len(buf):
            raise InputError(f"truncated packet at byte {pos}: needs {cap * size} bytes, "
                             f"{len(buf) - body} left", file=str(p))
        info["n_packets"] += 1
        if int(h["type"]) == POLARITY_EVENT:
            if size < 8 or int(h["ts_offset"]) != 4:
                raise InputError(f"polarity packet at byte {pos} has eventSize={size}, "
                                 f"eventTSOffset={int(h['ts_offset'])}; expected 8 and 4",
                                 file=str(p))
            raw = np.frombuffer(buf, dtype=np.uint8, count=num * size, offset=body)
            words = raw.reshape(num, size)[:, :8].copy().view("<u4").reshape(num, 2)
            data = words[:, 0].astype(np.int64)
            ts = words[:, 1].astype(np.int64) | (int(h["ts_overflow"]) << 31)
            valid = (data & 1).astype(bool)
            info["n_invalid"] += int(num - valid.sum())
            data, ts = data[valid], ts[valid]
            chunks.append(make_events(ts, (data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF,
                                      (data >> 1) & 1))
        else:
            info["n_skipped_packets"] += 1
        pos = nxt
    events = np.concatenate(chunks) if chunks else np.zeros(0, dtype=EVENT_DTYPE)
    if events.size and np.any(np.diff(events["t_us"]) < 0):
        events = events[np.argsort(events["t_us"], kind="stable")]
        info["sorted"] = True
    if info["n_invalid"] or info["n_skipped_packets"]:
        log.info("%s: skipped %d invalid event(s) and %d non-polarity packet(s)", p,
                 info["n_invalid"], info["n_skipped_packets"])
    return events, info


def read_gesture_labels_csv(path: PathLike) -> np.ndarray:
    """Read ``class,startTime_usec,endTime_usec`` rows into an int64 ``(n, 3)`` array."""
    p = require_file(path, "DVS Gesture labels csv")
    rows: list[list[int]] = []
    for lineno, raw in enumerate(p.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line[0].isalpha():  # header line
            continue
        try:
            vals = [int(v) for v in line.split(",")]
            if len(vals) != 3:
                raise ValueError
        except ValueError:
            raise InputError(f"line {lineno}: expected 'class,startTime_usec,endTime_usec', "
                             f"found {raw!r}", file=str(p)) from None
        rows.append(vals)
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


@lru_cache(maxsize=2)
def _read_aedat_cached(path: str, mtime_ns: int) -> np.ndarray:
    return read_aedat31(path)[0]


class DVSGestureAedat:
    """The original DVS Gesture release: AEDAT 3.1 recordings cut by their labels csv."""

    sensor_chw = GESTURE_SENSOR_CHW
    n_classes = 11

    def __init__(self, root: PathLike, split: str = "train") -> None:
        """Index the ``split`` recordings under ``root`` (the ``DvsGesture`` folder)."""
        base = require_dir(root, "DVS Gesture (aedat) folder",
                           hint="pass the extracted DvsGesture/ folder; snnc never downloads")
        split = _check_split(split)
        trials = base / f"trials_to_{split}.txt"
        if trials.is_file():
            names = [ln.strip() for ln in trials.read_text().splitlines() if ln.strip()]
            aedats = [base / n for n in names]
        else:
            users = range(1, 24) if split == "train" else range(24, 30)
            aedats = []
            for f in sorted(base.glob("*.aedat")):
                m = _USER_RE.search(f.name)
                if m and int(m.group(1)) in users:
                    aedats.append(f)
        if not aedats:
            raise InputError(f"no {split} .aedat recordings", file=str(base))
        samples: list[tuple[int, int, int, int]] = []
        for k, f in enumerate(aedats):
            require_file(f, "DVS Gesture recording")
            rows = read_gesture_labels_csv(f.with_name(f.stem + "_labels.csv"))
            bad = (rows[:, 0] < 1) | (rows[:, 0] > self.n_classes) | (rows[:, 2] <= rows[:, 1])
            if bad.any():
                raise InputError(f"bad label rows (class outside 1..11 or end <= start): "
                                 f"{rows[bad][:3].tolist()}", file=str(f.stem + "_labels.csv"))
            samples.extend((k, int(c) - 1, int(s), int(e)) for c, s, e in rows)
        self.recordings = aedats
        self.samples = np.asarray(samples, dtype=np.int64).reshape(-1, 4)
        self.labels = self.samples[:, 1]

    def __len__(self) -> int:
        """Return the number of labelled gesture samples."""
        return int(self.samples.shape[0])

    def events(self, i: int) -> np.ndarray:
        """Return the events of sample ``i`` (times relative to its start)."""
        k, _, start, end = (int(v) for v in self.samples[i])
        f = self.recordings[k]
        ev = _read_aedat_cached(str(f), f.stat().st_mtime_ns)
        lo, hi = np.searchsorted(ev["t_us"], [start, end], side="left")
        out = ev[lo:hi].copy()
        out["t_us"] -= start
        return out

    def label(self, i: int) -> int:
        """Return the class (0..10) of sample ``i``."""
        return int(self.labels[i])
