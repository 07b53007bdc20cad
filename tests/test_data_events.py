"""Event-list helpers: binning, sparse store, cache (snnc.models.data.events / binned)."""
from __future__ import annotations

import numpy as np
import pytest

from snnc.errors import InputError, ValueRangeError
from snnc.models.data.binned import BinnedSet, bin_source, cached
from snnc.models.data.events import (EVENT_DTYPE, BinSpec, as_events, dense_to_events,
                                     events_to_dense, events_to_sparse, make_events)


def _random_events(rng: np.random.Generator, n: int, sensor_chw, t_max_us: int) -> np.ndarray:
    c, h, w = sensor_chw
    return make_events(np.sort(rng.integers(0, t_max_us, n)), rng.integers(0, w, n),
                       rng.integers(0, h, n), rng.integers(0, c, n))


def _reference_dense(ev, dt_us, sensor_chw, n_steps, t0_us=0, binary=False):
    """Slow, obviously-correct reference: one event at a time."""
    out = np.zeros((n_steps,) + tuple(sensor_chw), dtype=np.int64)
    for e in ev:
        k = (int(e["t_us"]) - t0_us) // dt_us
        if 0 <= k < n_steps:
            out[k, e["p"], e["y"], e["x"]] += 1
    return (out > 0).astype(np.int64) if binary else out


def test_events_to_dense_matches_reference_and_reports_drops():
    rng = np.random.default_rng(1)
    sensor = (2, 5, 7)
    ev = _random_events(rng, 400, sensor, 10_000)
    report: dict = {}
    got = events_to_dense(ev, 700, sensor, n_steps=9, t0_us=500, report=report)
    ref = _reference_dense(ev, 700, sensor, 9, t0_us=500)
    assert got.shape == (9, 2, 5, 7) and got.dtype == np.uint16
    np.testing.assert_array_equal(got, ref)
    n_before = int((ev["t_us"] < 500).sum())
    n_after = int((ev["t_us"] >= 500 + 9 * 700).sum())
    assert n_before > 0 and n_after > 0
    assert report["n_dropped_before"] == n_before
    assert report["n_dropped_after"] == n_after
    assert report["n_events"] == 400
    assert int(got.sum()) == 400 - n_before - n_after


def test_binary_mode_and_default_steps():
    ev = make_events([0, 10, 999, 1000, 2500], [1, 1, 1, 1, 0], [0, 0, 0, 0, 2], [1, 1, 1, 1, 0])
    d = events_to_dense(ev, 1000, (2, 3, 2), mode="binary")
    assert d.shape == (3, 2, 3, 2) and d.dtype == np.uint8
    assert d[0, 1, 0, 1] == 1 and d[1, 1, 0, 1] == 1 and d[2, 0, 2, 0] == 1
    assert int(d.sum()) == 3
    c = events_to_dense(ev, 1000, (2, 3, 2))
    assert c[0, 1, 0, 1] == 3


def test_out_of_sensor_raises_with_limits():
    ev = make_events([0], [34], [0], [0])
    with pytest.raises(InputError, match=r"'x' out of sensor range.*limit \[0, 33\]"):
        events_to_dense(ev, 1000, (2, 34, 34), 1)


def test_saturation_is_reported():
    ev = make_events(np.zeros(300, dtype=np.int64), 0, 0, 0)
    report: dict = {}
    d = events_to_dense(ev, 1000, (1, 1, 1), 1, dtype=np.uint8, report=report)
    assert d[0, 0, 0, 0] == 255
    assert report["n_saturated"] == 1


def test_dense_to_events_roundtrip():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 3, size=(6, 2, 4, 5)).astype(np.uint8)
    ev = dense_to_events(frames, dt_us=250, t0_us=1000)
    assert ev.dtype == EVENT_DTYPE and ev.size == int(frames.sum())
    back = events_to_dense(ev, 250, (2, 4, 5), 6, t0_us=1000, dtype=np.uint8)
    np.testing.assert_array_equal(back, frames)


def test_as_events_accepts_plain_and_structured():
    plain = np.array([[5, 1, 2, 1], [7, 0, 0, 0]])
    ev = as_events(plain)
    assert ev["t_us"].tolist() == [5, 7] and ev["y"].tolist() == [2, 0]
    tonic_like = np.zeros(2, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    tonic_like["t"] = [3, 4]
    tonic_like["x"] = [9, 8]
    ev2 = as_events(tonic_like)
    assert ev2["t_us"].tolist() == [3, 4] and ev2["x"].tolist() == [9, 8]
    with pytest.raises(InputError):
        as_events(np.zeros((3, 3)))


def test_crop_and_pool():
    ev = make_events([0, 0, 0, 0], [0, 3, 4, 33], [0, 3, 5, 33], [0, 1, 1, 1])
    report: dict = {}
    spec = BinSpec(dt_us=1000, n_steps=1, crop_yxhw=(2, 2, 30, 30), pool=4)
    idx, counts, shape = events_to_sparse(ev, spec, (2, 34, 34), report)
    assert shape == (1, 2, 8, 8)  # ceil(30 / 4)
    assert report["n_dropped_crop"] == 2  # (0,0) and (33,33) are outside rows/cols 2..31
    d = np.zeros(int(np.prod(shape)), dtype=np.int64)
    d[idx] = counts
    d = d.reshape(shape)
    # (y,x)=(3,3)->(1,1)->pool 0,0 ; (5,4)->(3,2)->pool 0,0 : both polarity 1
    assert d[0, 1, 0, 0] == 2 and int(d.sum()) == 2
    with pytest.raises(ValueRangeError):
        BinSpec(dt_us=1000, n_steps=1, crop_yxhw=(10, 10, 30, 30)).out_shape((2, 34, 34))


def test_binspec_validation():
    with pytest.raises(ValueRangeError):
        BinSpec(dt_us=0)
    with pytest.raises(ValueRangeError):
        BinSpec(mode="rate")


class _ToySource:
    sensor_chw = (2, 3, 4)

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(3)
        self._ev = [_random_events(rng, int(rng.integers(0, 50)), self.sensor_chw, 5000)
                    for _ in range(n)]

    def __len__(self) -> int:
        return len(self._ev)

    def events(self, i: int) -> np.ndarray:
        return self._ev[i]

    def label(self, i: int) -> int:
        return i % 3


def test_binned_set_dense_batch_subset_and_save(tmp_path):
    src = _ToySource(12)
    spec = BinSpec(dt_us=1000, n_steps=5)
    b = bin_source(src, spec)
    assert len(b) == 12 and b.shape == (5, 2, 3, 4)
    for i in range(12):
        np.testing.assert_array_equal(
            b.dense(i), events_to_dense(src.events(i), 1000, src.sensor_chw, 5))
    sel = [7, 0, 11, 3]
    batch = b.dense_batch(sel)
    for k, i in enumerate(sel):
        np.testing.assert_array_equal(batch[k], b.dense(i))
    sub = b.subset(sel)
    np.testing.assert_array_equal(sub.dense_batch(range(4)), batch)
    np.testing.assert_array_equal(sub.labels, [1, 0, 2, 0])
    b.save(tmp_path / "x.npz")
    b2 = BinnedSet.load(tmp_path / "x.npz")
    np.testing.assert_array_equal(b2.dense_batch(range(12)), b.dense_batch(range(12)))
    assert b2.meta["dt_us"] == 1000 and b2.shape == b.shape


def test_cached_builds_once(tmp_path):
    src = _ToySource(4)
    calls = []

    def build():
        calls.append(1)
        return bin_source(src, BinSpec(dt_us=1000, n_steps=5))

    a = cached("toy", {"k": 1}, build, cache_dir=tmp_path)
    b = cached("toy", {"k": 1}, build, cache_dir=tmp_path)
    assert len(calls) == 1
    np.testing.assert_array_equal(a.dense_batch(range(4)), b.dense_batch(range(4)))
    cached("toy", {"k": 2}, build, cache_dir=tmp_path)
    assert len(calls) == 2
    cached("toy", {"k": 1}, build, cache_dir=tmp_path, refresh=True)
    assert len(calls) == 3
