"""N-MNIST's native ``.bin`` event files and ``labels.txt`` (reader and writer; numpy only).

File format (Orchard et al. 2015), 5 bytes per event, big-endian bit fields::

    x = b[0]; y = b[1]; p = b[2] >> 7; t_us = ((b[2] & 0x7F) << 16) | (b[3] << 8) | b[4]

Sensor 2 x 34 x 34 (polarity, y, x). The data sets built on these files are in
:mod:`snnc.models.data.nmnist`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from snnc.errors import InputError
from snnc.files import PathLike, require_file
from snnc.formats.events import EVENT_DTYPE, as_events

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
