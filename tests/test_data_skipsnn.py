"""SkipSNN noise-padded N-MNIST: determinism, noise statistics, pasted signal."""
from __future__ import annotations

import numpy as np
import pytest

from snnc.errors import ValueRangeError
from snnc.models.data.events import BinSpec, events_to_dense
from snnc.models.data.nmnist import NMNISTSmall, nmnist_small_dir
from snnc.models.data.skipsnn import SkipSNNNoiseSpec, load_skipsnn_nmnist, make_noise

pytestmark = pytest.mark.skipif(
    not (nmnist_small_dir() / "labels.txt").is_file(),
    reason=f"real N-MNIST-small data not found at {nmnist_small_dir()} (set SNNC_DATA)")


def test_noise_one_event_per_polarity_per_step_near_centre():
    spec = SkipSNNNoiseSpec(seq_len=400)
    x = make_noise(np.random.default_rng(0), spec)
    assert x.shape == (400, 2, 34, 34) and x.dtype == np.uint8
    np.testing.assert_array_equal(x.sum(axis=(2, 3)), np.ones((400, 2), dtype=np.int64))
    t, p, y, xx = np.nonzero(x)
    ys = y.reshape(400, 2)
    xs = xx.reshape(400, 2)
    # both polarities come from one centre in [2, 32) jittered by [-2, 2): at most 3 apart
    assert np.abs(ys[:, 0] - ys[:, 1]).max() <= 3 and np.abs(xs[:, 0] - xs[:, 1]).max() <= 3
    assert y.min() >= 0 and y.max() <= 33 and xx.min() >= 0 and xx.max() <= 33
    # the noise moves around the sensor (not a fixed pixel)
    assert np.unique(ys[:, 0]).size > 20


def test_signal_pasted_at_offset_and_deterministic(tmp_path):
    spec = SkipSNNNoiseSpec(seq_len=300, signal_steps=50, seed=7)
    data = load_skipsnn_nmnist(spec, cache_dir=tmp_path)
    assert len(data) == 1000
    ds = NMNISTSmall()
    sig_ref = events_to_dense(ds.events(4), 1000, (2, 34, 34), 50, mode="binary")
    x, y, off = data.sample(4)
    assert y == ds.label(4)
    assert 0 <= off <= 250 and off == data.offset(4)
    np.testing.assert_array_equal(x[off:off + 50], sig_ref)
    outside = np.concatenate([x[:off], x[off + 50:]])
    np.testing.assert_array_equal(outside.sum(axis=(2, 3)), np.ones((250, 2), dtype=np.int64))
    # deterministic and independent of access order
    x2, _, off2 = load_skipsnn_nmnist(spec, cache_dir=tmp_path).sample(4)
    assert off2 == off
    np.testing.assert_array_equal(x2, x)
    xb, yb, ob = data.batch([9, 4])
    np.testing.assert_array_equal(xb[1], x)
    assert yb.tolist() == [ds.label(9), ds.label(4)]
    # another seed gives other offsets / noise
    other = load_skipsnn_nmnist(SkipSNNNoiseSpec(seed=8), cache_dir=tmp_path)
    offs7 = [data.offset(i) for i in range(20)]
    offs8 = [other.offset(i) for i in range(20)]
    assert offs7 != offs8
    assert 0 <= min(offs7) and max(offs7) <= 250


def test_or_paste_keeps_noise_inside_window(tmp_path):
    data = load_skipsnn_nmnist(SkipSNNNoiseSpec(paste="or", seed=1), cache_dir=tmp_path)
    rep = load_skipsnn_nmnist(SkipSNNNoiseSpec(paste="replace", seed=1), cache_dir=tmp_path)
    xo, _, off = data.sample(0)
    xr, _, off_r = rep.sample(0)
    assert off == off_r
    assert np.all(xo >= xr) and int(xo.sum()) > int(xr.sum())


def test_spec_validation():
    with pytest.raises(ValueRangeError):
        SkipSNNNoiseSpec(seq_len=40, signal_steps=50)
    with pytest.raises(ValueRangeError):
        SkipSNNNoiseSpec(centre_low=1)
    with pytest.raises(ValueRangeError):
        SkipSNNNoiseSpec(offset_max=260)
    assert SkipSNNNoiseSpec().signal_bin_spec() == BinSpec(dt_us=1000, n_steps=50, mode="binary")


def test_torch_dataset(tmp_path):
    torch = pytest.importorskip("torch")
    from snnc.models.data import SkipSNNDataset
    data = load_skipsnn_nmnist(cache_dir=tmp_path)
    tds = SkipSNNDataset(data, indices=[3, 5], flatten=True)
    x, y, off = tds[1]
    assert x.shape == (300, 2312) and x.dtype == torch.float32
    assert y == int(data.labels[5]) and off == data.offset(5)
