"""Speck integer reference simulator: hand-computed traces and exact counters (no sinabs needed)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snnc.errors import ShapeError, UnsupportedError, ValueRangeError
from snnc.targets.speck.network import Destination, DvsInput, SpeckLayer, SpeckNetwork
from snnc.targets.speck import kernels
from snnc.targets.speck.simulator import classify, simulate

#: Every engine of the simulator on its own (``"auto"`` mixes them per layer); hand-computed references.
ENGINES = ("event", "dense", "numpy") if kernels.AVAILABLE else ("numpy",)


def one_neuron(rtz: bool, thr: int = 3, low: int = -2, bias: int = 0) -> SpeckNetwork:
    lyr = SpeckLayer("n", np.ones((1, 1, 1, 1)), np.array([bias]), thr, low, (1, 1, 1), return_to_zero=rtz)
    return SpeckNetwork([lyr], (1, 1, 1), [0])


DRIVE = [2, 2, 7, 0, 1]  # input events per step to a weight-1 neuron, threshold 3


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode, rtz, spikes, states", [
    ("multi", False, [0, 1, 2, 0, 1], [2, 1, 2, 2, 0]),   # v=2 | 4->1 | 8->2 (2 spikes) | 2 | 3->0
    ("multi", True, [0, 1, 2, 0, 0], [2, 0, 0, 0, 1]),
    ("single", False, [0, 1, 1, 1, 1], [2, 1, 5, 2, 0]),   # 8 -> one spike, 5 left
    ("single", True, [0, 1, 1, 0, 0], [2, 0, 0, 0, 1]),
])
def test_hand_computed_trace(engine, mode, rtz, spikes, states):
    x = np.array(DRIVE).reshape(1, 5, 1, 1, 1)
    res = simulate(one_neuron(rtz), x, spike_mode=mode, record_states=True, engine=engine)
    np.testing.assert_array_equal(res.spikes["n"].reshape(-1), spikes)
    np.testing.assert_array_equal(res.states["n"].reshape(-1), states)
    np.testing.assert_array_equal(res.spike_counts["n"], [sum(spikes)])
    np.testing.assert_array_equal(res.synops["n"], [sum(DRIVE)])


@pytest.mark.parametrize("engine", ENGINES)
def test_lower_bound_and_bias_every_step(engine):
    res = simulate(one_neuron(True, thr=5, low=-2, bias=-1), np.zeros((1, 4, 1, 1, 1), dtype=int),
                   record_states=True, engine=engine)
    np.testing.assert_array_equal(res.states["n"].reshape(-1), [-1, -2, -2, -2])
    res = simulate(one_neuron(True, thr=2, low=-9, bias=1), np.zeros((1, 4, 1, 1, 1), dtype=int),
                   record_states=True, engine=engine)
    np.testing.assert_array_equal(res.spikes["n"].reshape(-1), [0, 1, 0, 1])


def _net(seed=0, stride=2, padding=1):
    rng = np.random.default_rng(seed)
    l0 = SpeckLayer("c0", rng.integers(-3, 6, (3, 2, 3, 3)), rng.integers(-1, 2, 3), 4, -20, (2, 11, 11),
                    stride=stride, padding=padding, destinations=[Destination(1, (2, 2))])
    f, h, w = l0.neuron_shape
    l1 = SpeckLayer("fc", rng.integers(-3, 6, (4, 3, h // 2, w // 2)), None, 5, -20, (3, h // 2, w // 2))
    return SpeckNetwork([l0, l1], (2, 11, 11), [0])


@pytest.mark.parametrize("engine", ENGINES)
def test_synops_exact_against_brute_force(engine):
    net = _net()
    x = np.random.default_rng(1).poisson(0.7, (2, 3, 2, 11, 11))
    res = simulate(net, x, engine=engine)
    lyr = net.layers[0]
    f, oh, ow = lyr.neuron_shape
    expect = np.zeros(2, dtype=np.int64)
    for b in range(2):  # count (event, output neuron) pairs directly
        for oy in range(oh):
            for ox in range(ow):
                y0, x0 = oy * 2 - 1, ox * 2 - 1
                win = x[b, :, :, max(y0, 0):y0 + 3, max(x0, 0):x0 + 3]
                expect[b] += win.sum() * f
    np.testing.assert_array_equal(res.synops["c0"], expect)


@pytest.mark.parametrize("engine", ENGINES)
def test_batch_items_are_independent_and_deterministic(engine):
    net = _net(2)
    x = np.random.default_rng(3).poisson(0.8, (3, 6, 2, 11, 11))
    full = simulate(net, x, record_states=True, engine=engine)
    for b in range(3):
        one = simulate(net, x[b], record_states=True, engine=engine)  # (T, C, H, W) input
        for name in ("c0", "fc"):
            np.testing.assert_array_equal(full.spikes[name][b], one.spikes[name][0])
            np.testing.assert_array_equal(full.states[name][b], one.states[name][0])
    assert full.total_spikes > 0 and full.total_synops > 0
    assert classify(full, net).shape == (3,)


@pytest.mark.parametrize("engine", ENGINES)
def test_float64_path_stays_exact(engine):
    rng = np.random.default_rng(4)
    w = rng.integers(-128, 128, (2, 64, 5, 5))
    lyr = SpeckLayer("big", w, None, 30000, -32768, (64, 8, 8))
    net = SpeckNetwork([lyr], (64, 8, 8), [0])
    x = rng.integers(0, 40, (1, 2, 64, 8, 8))  # 128 * 1600 * 40 > 2**24 -> float64 path
    res = simulate(net, x, record_states=True, spike_mode="multi", engine=engine)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x[0]), torch.from_numpy(w))
    v0 = ref[0].numpy()
    n0 = np.where(v0 > 0, v0 // 30000, 0)
    np.testing.assert_array_equal(res.spikes["big"][0, 0], n0)
    np.testing.assert_array_equal(res.states["big"][0, 0], np.maximum(v0 - n0 * 30000, -32768))


@pytest.mark.parametrize("engine", ENGINES)
def test_state_overflow_counted_and_optionally_saturated(engine):
    net = one_neuron(False, thr=30000, low=-32768)
    x = np.full((1, 3, 1, 1, 1), 20000)
    res = simulate(net, x, record_states=True, engine=engine)
    assert res.state_overflow["n"] == 1  # 20000 -> 40000 (out of range, spikes) -> ...
    sat = simulate(net, np.full((1, 2, 1, 1, 1), 40000), record_states=True, saturate_state=True, engine=engine)
    assert sat.state_overflow["n"] == 2
    np.testing.assert_array_equal(sat.spikes["n"].reshape(-1), [1, 1])  # 32767 -> 1 spike, 2767 left
    np.testing.assert_array_equal(sat.states["n"].reshape(-1), [2767, 2767])


@pytest.mark.parametrize("engine", ENGINES)
def test_dvs_merge_and_pooling(engine):
    lyr = SpeckLayer("n", np.ones((1, 1, 1, 1)), None, 100, -1, (1, 2, 2))
    net = SpeckNetwork([lyr], (2, 4, 4), dvs=DvsInput((2, 4, 4), pooling=2, merge_polarities=True, destinations=[0]))
    x = np.arange(32).reshape(1, 1, 2, 4, 4)
    res = simulate(net, x, record_states=True, engine=engine)
    expect = x[0, 0].sum(0).reshape(2, 2, 2, 2).sum(axis=(1, 3))
    np.testing.assert_array_equal(res.states["n"][0, 0, 0], expect % 100)
    np.testing.assert_array_equal(res.spikes["n"][0, 0, 0], expect // 100)  # multi-spike mode


def test_input_validation():
    net = one_neuron(True)
    with pytest.raises(ShapeError):
        simulate(net, np.zeros((1, 2, 2, 1, 1)))
    with pytest.raises(ValueRangeError, match=">= 0"):
        simulate(net, -np.ones((1, 2, 1, 1, 1)))
    with pytest.raises(ValueRangeError, match="integers"):
        simulate(net, np.full((1, 2, 1, 1, 1), 0.5))
    with pytest.raises(UnsupportedError):
        simulate(net, np.zeros((1, 2, 1, 1, 1)), spike_mode="burst")


def test_auto_engine_mixes_per_layer_with_the_same_integers():
    """A sparse input (event path for the first layer) and dense hidden spikes give the integers of each engine alone."""
    net = _net(5)
    x = (np.random.default_rng(6).random((2, 8, 2, 11, 11)) < 0.03).astype(np.int64)
    ref = simulate(net, x, record_states=True, engine="numpy")
    auto = simulate(net, x, record_states=True)
    for name in ("c0", "fc"):
        np.testing.assert_array_equal(auto.spikes[name], ref.spikes[name])
        np.testing.assert_array_equal(auto.states[name], ref.states[name])
    with pytest.raises(UnsupportedError, match="engine 'gpu' unknown"):
        simulate(net, x, engine="gpu")
