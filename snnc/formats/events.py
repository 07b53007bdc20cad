"""Event lists and their conversion to dense frames (numpy only, vectorised).

An event list is a structured numpy array with fields ``t_us`` (int64, microseconds),
``x`` and ``y`` (int16, pixel column and row) and ``p`` (int8, polarity or channel).
Dense frames are ``(T, C, H, W)`` arrays: step ``k`` holds events with
``t0_us + k*dt_us <= t_us < t0_us + (k+1)*dt_us``, channel ``C`` is the polarity, ``H`` is
``y`` and ``W`` is ``x``. One-dimensional sensors (audio cochleas) use ``H = 1`` and put the
channel number in ``x``.

Nothing is dropped silently: events outside the time window (or a crop) are counted in the
optional ``report`` dict, counts that do not fit the output dtype are saturated and counted
there too. Events outside the sensor are an error.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from snnc.errors import InputError, ValueRangeError
from snnc.fixedpoint import saturate

log = logging.getLogger(__name__)

#: The structured dtype of every event list in snnc.
EVENT_DTYPE = np.dtype([("t_us", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])

#: Binning modes: ``count`` (events per bin) and ``binary`` (1 where at least one event).
MODES = ("count", "binary")


def make_events(t_us: Any, x: Any, y: Any, p: Any) -> np.ndarray:
    """Build an event list from equally long arrays (``y`` or ``p`` may be scalars)."""
    t_arr = np.asarray(t_us)
    n = t_arr.shape[0] if t_arr.ndim else 1
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["t_us"] = t_arr
    ev["x"] = x
    ev["y"] = y
    ev["p"] = p
    return ev


def as_events(arr: Any) -> np.ndarray:
    """Return ``arr`` as an EVENT_DTYPE array.

    Accepts a structured array with fields ``t_us``/``t``, ``x``, ``y`` (optional) and ``p``
    (optional), or a plain ``(N, 4)`` array with columns ``(t_us, x, y, p)``.
    """
    a = np.asarray(arr)
    if a.dtype == EVENT_DTYPE:
        return a
    if a.dtype.names:
        names = a.dtype.names
        tname = "t_us" if "t_us" in names else ("t" if "t" in names else None)
        if tname is None or "x" not in names:
            raise InputError(f"event array has fields {names}; need 't_us' (or 't') and 'x'",
                             hint="fields t_us, x, y, p are expected")
        return make_events(a[tname], a["x"], a["y"] if "y" in names else 0,
                           a["p"] if "p" in names else 0)
    if a.ndim != 2 or a.shape[1] != 4:
        raise InputError(f"event array has shape {a.shape}; expected (N, 4) columns t_us, x, y, p "
                         "or a structured array")
    if a.size and np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise InputError("event array holds NaN or infinite values")
    return make_events(a[:, 0], a[:, 1], a[:, 2], a[:, 3])


def _count_into(report: Optional[dict[str, Any]], key: str, n: int) -> None:
    if report is not None:
        report[key] = int(report.get(key, 0)) + int(n)


def check_in_sensor(events: np.ndarray, sensor_chw: Sequence[int], where: str = "") -> None:
    """Raise InputError if any event lies outside a ``(C, H, W)`` sensor."""
    c, h, w = (int(v) for v in sensor_chw)
    for name, lim in (("p", c), ("y", h), ("x", w)):
        v = events[name]
        if v.size and (int(v.min()) < 0 or int(v.max()) >= lim):
            raise InputError(
                f"event field '{name}' out of sensor range: found [{int(v.min())}, "
                f"{int(v.max())}], limit [0, {lim - 1}] for sensor (C,H,W)={tuple(sensor_chw)}",
                file=where or None, hint="pass the right sensor size or crop the events first")


def crop_events(events: np.ndarray, y0: int, x0: int, h: int, w: int,
                report: Optional[dict[str, Any]] = None) -> np.ndarray:
    """Keep events inside the ``h x w`` window at ``(y0, x0)`` and shift them to its origin.

    The number of removed events is added to ``report['n_dropped_crop']``.
    """
    keep = ((events["y"] >= y0) & (events["y"] < y0 + h)
            & (events["x"] >= x0) & (events["x"] < x0 + w))
    _count_into(report, "n_dropped_crop", int(events.size - keep.sum()))
    out = events[keep].copy()
    out["y"] -= y0
    out["x"] -= x0
    return out


def pool_events(events: np.ndarray, k: int) -> np.ndarray:
    """Sum-pool events spatially by ``k`` (``x // k``, ``y // k``); ceil-sized output sensor."""
    if k == 1:
        return events
    out = events.copy()
    out["x"] //= k
    out["y"] //= k
    return out


@dataclass(frozen=True)
class BinSpec:
    """How events become frames: time step, number of steps, mode, crop and pooling.

    ``crop_yxhw`` (optional) crops before pooling; ``pool`` sum-pools by an integer factor
    (output size ``ceil(size / pool)``); ``t0_us`` is the start of step 0.
    """

    dt_us: int = 1000
    n_steps: int = 300
    mode: str = "count"
    pool: int = 1
    crop_yxhw: Optional[tuple[int, int, int, int]] = None
    t0_us: int = 0

    def __post_init__(self) -> None:
        if int(self.dt_us) <= 0 or int(self.dt_us) != self.dt_us:
            raise ValueRangeError(f"dt_us must be a positive integer, found {self.dt_us}")
        if int(self.n_steps) <= 0:
            raise ValueRangeError(f"n_steps must be positive, found {self.n_steps}")
        if self.mode not in MODES:
            raise ValueRangeError(f"mode must be one of {MODES}, found {self.mode!r}")
        if int(self.pool) < 1:
            raise ValueRangeError(f"pool must be >= 1, found {self.pool}")
        if self.crop_yxhw is not None:
            if len(self.crop_yxhw) != 4 or min(self.crop_yxhw[2:]) < 1 or min(self.crop_yxhw[:2]) < 0:
                raise ValueRangeError(f"crop_yxhw must be (y0, x0, h>0, w>0), found {self.crop_yxhw}")
            object.__setattr__(self, "crop_yxhw", tuple(int(v) for v in self.crop_yxhw))

    def out_sensor(self, sensor_chw: Sequence[int]) -> tuple[int, int, int]:
        """Return the ``(C, H, W)`` after cropping and pooling a ``sensor_chw`` sensor."""
        c, h, w = (int(v) for v in sensor_chw)
        if self.crop_yxhw is not None:
            y0, x0, ch, cw = self.crop_yxhw
            if y0 + ch > h or x0 + cw > w:
                raise ValueRangeError(f"crop {self.crop_yxhw} exceeds sensor (H,W)=({h},{w})")
            h, w = ch, cw
        k = int(self.pool)
        return c, -(-h // k), -(-w // k)

    def out_shape(self, sensor_chw: Sequence[int]) -> tuple[int, int, int, int]:
        """Return the ``(T, C, H, W)`` frame shape for a ``sensor_chw`` sensor."""
        return (int(self.n_steps),) + self.out_sensor(sensor_chw)

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as a JSON-friendly dict."""
        return {"dt_us": int(self.dt_us), "n_steps": int(self.n_steps), "mode": self.mode,
                "pool": int(self.pool),
                "crop_yxhw": list(self.crop_yxhw) if self.crop_yxhw is not None else None,
                "t0_us": int(self.t0_us)}


def events_to_sparse(events: np.ndarray, spec: BinSpec, sensor_chw: Sequence[int],
                     report: Optional[dict[str, Any]] = None, where: str = ""
                     ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Bin events into a sparse frame: sorted flat indices into ``(T,C,H,W)``, counts, shape.

    Counts are int64 (``binary`` mode: all ones). Dropped events are counted in ``report``
    under ``n_dropped_before`` / ``n_dropped_after`` (outside the time window) and
    ``n_dropped_crop``.
    """
    ev = as_events(events)
    check_in_sensor(ev, sensor_chw, where)
    _count_into(report, "n_events", ev.size)
    if spec.crop_yxhw is not None:
        ev = crop_events(ev, *spec.crop_yxhw, report=report)
    ev = pool_events(ev, int(spec.pool))
    shape = spec.out_shape(sensor_chw)
    t_steps, c, h, w = shape
    step = (ev["t_us"] - int(spec.t0_us)) // int(spec.dt_us)
    before = step < 0
    after = step >= t_steps
    _count_into(report, "n_dropped_before", int(before.sum()))
    _count_into(report, "n_dropped_after", int(after.sum()))
    keep = ~(before | after)
    if not keep.all():
        ev = ev[keep]
        step = step[keep]
    flat = ((step * c + ev["p"].astype(np.int64)) * h + ev["y"].astype(np.int64)) * w \
        + ev["x"].astype(np.int64)
    idx, counts = np.unique(flat, return_counts=True)
    if spec.mode == "binary":
        counts = np.ones_like(counts)
    return idx, counts.astype(np.int64), shape


def sparse_to_dense(idx: np.ndarray, counts: np.ndarray, shape: Sequence[int],
                    dtype: Any = np.uint8, report: Optional[dict[str, Any]] = None
                    ) -> np.ndarray:
    """Scatter sparse counts into a dense array, saturating into ``dtype`` (counted in report)."""
    dtype = np.dtype(dtype)
    out = np.zeros(int(np.prod(shape)), dtype=dtype)
    vals = np.asarray(counts)
    if np.issubdtype(dtype, np.integer):
        hi = int(np.iinfo(dtype).max)
        if vals.size and int(vals.max()) > hi:
            n_sat = int((vals > hi).sum())
            _count_into(report, "n_saturated", n_sat)
            log.warning("saturated %d bin counts above %d (dtype %s)", n_sat, hi, dtype)
            vals = saturate(vals, 0, hi)
    out[np.asarray(idx, dtype=np.int64)] = vals
    return out.reshape(tuple(int(s) for s in shape))


def events_to_dense(events: Any, dt_us: int, sensor_chw: Sequence[int],
                    n_steps: Optional[int] = None, *, t0_us: int = 0, mode: str = "count",
                    dtype: Any = None, report: Optional[dict[str, Any]] = None) -> np.ndarray:
    """Convert an event list ``(t_us, x, y, p)`` to dense ``(T, C, H, W)`` frames.

    ``sensor_chw`` is ``(channels/polarities, height, width)``. ``n_steps`` defaults to just
    enough steps to hold the last event. ``dtype`` defaults to uint8 for ``binary`` and
    uint16 for ``count``; counts that do not fit saturate and are counted in
    ``report['n_saturated']``.
    """
    ev = as_events(events)
    if n_steps is None:
        t_last = int(ev["t_us"].max()) if ev.size else int(t0_us)
        n_steps = max(1, (t_last - int(t0_us)) // int(dt_us) + 1)
    spec = BinSpec(dt_us=int(dt_us), n_steps=int(n_steps), mode=mode, t0_us=int(t0_us))
    idx, counts, shape = events_to_sparse(ev, spec, sensor_chw, report)
    if dtype is None:
        dtype = np.uint8 if mode == "binary" else np.uint16
    return sparse_to_dense(idx, counts, shape, dtype, report)


def dense_to_events(frames: np.ndarray, dt_us: int, t0_us: int = 0) -> np.ndarray:
    """Convert dense ``(T, C, H, W)`` counts back to an event list (one event per count).

    Each event gets the start time of its step; a count of ``n`` gives ``n`` equal events.
    Events are ordered by step, then channel, row, column.
    """
    f = np.asarray(frames)
    if f.ndim != 4:
        raise InputError(f"frames must be (T, C, H, W), found shape {f.shape}")
    if f.size and np.issubdtype(f.dtype, np.floating):
        if not np.all(np.isfinite(f)) or np.any(f != np.round(f)):
            raise InputError("frames must hold whole-number counts")
    if f.size and f.min() < 0:
        raise InputError(f"frames must be non-negative, found {f.min()}")
    nz = np.flatnonzero(f)
    reps = f.reshape(-1)[nz].astype(np.int64)
    flat = np.repeat(nz, reps)
    t, c, y, x = np.unravel_index(flat, f.shape)
    return make_events(int(t0_us) + t.astype(np.int64) * int(dt_us), x, y, c)
