"""The Loihi simulator's compiled numba engine gives exactly the numpy engine's integers (and Lava's literal port's)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loihi_helpers import literal_lava, random_conv_net, random_dense_chain, random_spikes
from snnc.errors import InputError
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork
from snnc.targets.loihi.simulator import ENGINE_ENV, LoihiSimulator, SimResult, resolve_engine, simulate

kernels = pytest.importorskip("snnc.targets.loihi.kernels")
if not kernels.AVAILABLE:  # pragma: no cover - numba is a dependency of the main venv
    pytest.skip("numba is not installed: the kernel engine is unavailable", allow_module_level=True)


def assert_same(a: SimResult, b: SimResult, net: LoihiNetwork, states: bool) -> None:
    """Spikes, counts, synops (and u, v when recorded) of two results are identical."""
    assert len(a.spikes) == len(b.spikes) == len(net.layers)
    for i, ly in enumerate(net.layers):
        np.testing.assert_array_equal(a.spikes[i], b.spikes[i], err_msg=f"layer {i} spikes")
        assert a.spikes[i].dtype == b.spikes[i].dtype == np.bool_
        np.testing.assert_array_equal(a.spike_counts[i], b.spike_counts[i], err_msg=f"layer {i} counts")
        np.testing.assert_array_equal(a.synops[i], b.synops[i], err_msg=f"layer {i} synops")
        if states and ly.has_neurons:
            assert a.u[i] is not None and b.u[i] is not None
            assert b.u[i].dtype == b.v[i].dtype == np.int32
            np.testing.assert_array_equal(a.u[i], b.u[i], err_msg=f"layer {i} u")
            np.testing.assert_array_equal(a.v[i], b.v[i], err_msg=f"layer {i} v")
        else:
            assert b.u[i] is None and b.v[i] is None


def both(net: LoihiNetwork, x: np.ndarray, states: bool) -> Any:
    """Run both engines; check they agree; return the numba result."""
    ref = LoihiSimulator(net, engine="numpy").run(x, states)
    sim = LoihiSimulator(net, engine="numba")
    assert sim.engine == "numba"
    out = sim.run(x, states)
    assert out.meta["engine"] == "numba" and ref.meta["engine"] == "numpy"
    assert_same(ref, out, net, states)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2 ** 32 - 1), regime=st.sampled_from(["normal", "wrap_u", "saturate_v", "int32", "conv"]),
       sizes=st.lists(st.integers(1, 40), min_size=2, max_size=4), batch=st.integers(1, 4),
       steps=st.integers(1, 25), states=st.booleans())
def test_numba_engine_equals_numpy_engine(seed: int, regime: str, sizes: list, batch: int, steps: int,
                                          states: bool) -> None:
    # dense chains (all sign modes, weight_exp -4..2 and 16, num_weight_bits 1..8, u wrap, v saturation,
    # int32 wraps, bias) and conv -> pool -> flatten -> dense nets (stride, padding, dilation, groups)
    rng = np.random.default_rng(seed)
    net = random_conv_net(rng) if regime == "conv" else random_dense_chain(rng, sizes, regime)
    both(net, random_spikes(rng, net, batch, steps), states)


@pytest.mark.parametrize("seed", range(4))
def test_numba_engine_equals_literal_lava_port(seed: int) -> None:
    # an oracle independent of the numpy engine: a line-by-line port of Lava's int32 code
    rng = np.random.default_rng(100 + seed)
    net = random_conv_net(rng) if seed % 2 else random_dense_chain(rng, [23, 17, 9], ["normal", "int32"][seed // 2])
    x = random_spikes(rng, net, 2, 20)
    res = simulate(net, x, record_states=True, engine="numba")
    s, u, v = literal_lava(net, x)
    for i, ly in enumerate(net.layers):
        if ly.has_neurons:
            np.testing.assert_array_equal(res.spikes[i], s[i])
            np.testing.assert_array_equal(res.u[i], u[i])
            np.testing.assert_array_equal(res.v[i], v[i])


def multichannel_conv_net(rng: np.random.Generator, big: bool) -> LoihiNetwork:
    """3-channel 9x11 input -> conv 5 ch (stride 2, padding 1) -> conv 4 ch -> pool -> flatten -> dense.

    ``big``: weights up to 2**24 in magnitude, so conv sums pass 2**23 (Lava's 24-bit ``signed_clamp``)
    and the weights need int32 in the kernel.
    """
    hi = (1 << 24) if big else 128
    c1 = LoihiLayer.conv("c1", rng.integers(-hi, hi, (5, 3, 3, 3)), (3, 9, 11), source=-1, stride=2, padding=1,
                         du=int(rng.integers(0, 4097)), dv=int(rng.integers(0, 4097)),
                         vth_mant=int(rng.integers(0, 50)),
                         bias_mant=rng.integers(-30, 30, (5, 5, 6)), bias_exp=3)
    c2 = LoihiLayer.conv("c2", rng.integers(-hi, hi, (4, 5, 2, 3)), c1.output_shape, source=0, stride=(1, 2),
                         padding=(1, 0), du=4096, dv=410, vth_mant=int(rng.integers(0, 50)))
    p = LoihiLayer.pool("p", c2.output_shape, 2, 37, source=1, du=100, dv=0, vth_mant=40)
    f = LoihiLayer.flatten("f", p.output_shape, source=2)
    d = LoihiLayer.dense("d", rng.integers(-256, 256, (7, f.output_shape[0])), source=3, weight_exp=-2, du=10,
                         dv=300, vth_mant=5, bias_mant=rng.integers(-9, 9, 7), bias_exp=2)
    return LoihiNetwork((3, 9, 11), [c1, c2, p, f, d])


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("batch", [1, 5])
def test_multichannel_conv_pool_flatten(big: bool, batch: int) -> None:
    rng = np.random.default_rng(7 + batch + 10 * big)
    net = multichannel_conv_net(rng, big)
    x = random_spikes(rng, net, batch, 18, density=0.35)
    for states in (False, True):
        out = both(net, x, states)
    assert all(s.any() for s in out.spikes)  # every layer spikes: the comparison is not vacuous
    if big:
        assert out.u[0] is not None and int(np.abs(out.u[0]).max()) > (1 << 22)


def test_flatten_of_the_input_and_odd_sizes() -> None:
    # a flatten reading the network input (source -1), sizes that are not multiples of 8 (zero padding)
    rng = np.random.default_rng(5)
    f = LoihiLayer.flatten("f", (3, 5, 7), source=-1)
    d1 = LoihiLayer.dense("d1", rng.integers(-256, 256, (13, 105)), source=0, du=50, dv=20, vth_mant=3,
                          bias_mant=4, bias_exp=5, weight_exp=1)
    d2 = LoihiLayer.dense("d2", rng.integers(0, 256, (3, 13)), source=1, sign_mode="excitatory", du=0, dv=0,
                          vth_mant=20)
    net = LoihiNetwork((3, 5, 7), [f, d1, d2])
    x = random_spikes(rng, net, 3, 16, density=0.3)
    out = both(net, x, True)
    np.testing.assert_array_equal(out.spikes[0], x.reshape(3, 16, 105))
    assert out.spikes[1].any() and out.spikes[2].any()


@pytest.mark.parametrize("seed", range(3))
def test_dense_layers_in_output_chunks(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # large dense layers run in chunks of outputs (cache blocking); force tiny chunks on small layers
    monkeypatch.setattr(kernels, "KERNEL_CHUNK_BYTES", 200)
    rng = np.random.default_rng(50 + seed)
    net = random_dense_chain(rng, [37, 45, 70, 21], ["normal", "wrap_u", "saturate_v"][seed])
    sim = LoihiSimulator(net, engine="numba")
    assert sim._klayers is not None
    dense = [kl for kl in sim._klayers if kl is not None and kl.geometry[4] == 0]
    assert dense and all(kl.wr.shape[0] > 1 for kl in dense)  # really chunked
    assert any(kl.wr.shape[0] * kl.chunk > ly.num_neurons  # a zero-padded last chunk
               for kl, ly in zip(sim._klayers, net.layers) if kl is not None and kl.geometry[4] == 0)
    x = random_spikes(rng, net, 3, 15)
    for states in (False, True):
        ref = LoihiSimulator(net, engine="numpy").run(x, states)
        assert_same(ref, sim.run(x, states), net, states)


def test_int64_accumulator_variant() -> None:
    # the kernel's int64-accumulator variant (used when a layer's sum(|w|) can reach 2**31) gives the same
    rng = np.random.default_rng(9)
    net = random_dense_chain(rng, [30, 20, 6], "int32")
    x = random_spikes(rng, net, 3, 12)
    ref = LoihiSimulator(net, engine="numpy").run(x, True)
    sim = LoihiSimulator(net, engine="numba")
    assert sim._klayers is not None
    for kl in sim._klayers:
        assert kl is not None and kl.acc_dtype == np.int32
        kl.acc_dtype = np.int64
    assert_same(ref, sim.run(x, True), net, True)


def test_one_step_and_repeat_runs() -> None:
    rng = np.random.default_rng(2)
    net = random_conv_net(rng)
    both(net, random_spikes(rng, net, 2, 1), True)  # T = 1: nothing is delivered yet
    sim = LoihiSimulator(net, engine="numba")
    x = random_spikes(rng, net, 3, 10, density=0.4)
    first = sim.run(x, True)
    assert_same(first, sim.run(x, True), net, True)  # no state leaks between runs


def test_engine_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    net = random_dense_chain(np.random.default_rng(1), [4, 3])
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert resolve_engine() == "numba" and LoihiSimulator(net).engine == "numba"
    monkeypatch.setenv(ENGINE_ENV, "numpy")
    assert resolve_engine() == "numpy" and LoihiSimulator(net).engine == "numpy"
    assert LoihiSimulator(net, engine="numba").engine == "numba"  # the argument wins over the variable
    monkeypatch.setenv(ENGINE_ENV, "fast")
    with pytest.raises(InputError, match="engine"):
        LoihiSimulator(net)
