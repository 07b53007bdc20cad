"""The Loihi reference simulator against a literal port of Lava's code, and its own invariants."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loihi_helpers import literal_lava, random_conv_net, random_dense_chain, random_spikes
from snnc.errors import InputError, ShapeError
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork, effective_dense_weights
from snnc.targets.loihi.numpy_engine import _torch
from snnc.targets.loihi.simulator import dense_accumulate, simulate


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2 ** 32 - 1), regime=st.sampled_from(["normal", "wrap_u", "saturate_v", "int32", "conv"]),
       sizes=st.lists(st.integers(1, 25), min_size=2, max_size=4), batch=st.integers(1, 3))
def test_reference_equals_literal_lava_port(seed: int, regime: str, sizes: list, batch: int) -> None:
    rng = np.random.default_rng(seed)
    net = random_conv_net(rng) if regime == "conv" else random_dense_chain(rng, sizes, regime)
    x = random_spikes(rng, net, batch, 30)
    ref = simulate(net, x, record_states=True)
    s, u, v = literal_lava(net, x)
    for i, ly in enumerate(net.layers):
        if ly.has_neurons:
            np.testing.assert_array_equal(ref.spikes[i], s[i], err_msg=f"layer {i} spikes")
            np.testing.assert_array_equal(ref.u[i], u[i], err_msg=f"layer {i} u")
            np.testing.assert_array_equal(ref.v[i], v[i], err_msg=f"layer {i} v")


@pytest.mark.parametrize("density", [0.0, 0.02, 0.5, 1.0])
def test_dense_accumulate_methods_agree(density: float) -> None:
    rng = np.random.default_rng(3)
    x = rng.random((300, 70)) < density
    for w in (rng.integers(-256, 256, (40, 70)), rng.integers(-(1 << 30), 1 << 30, (40, 70))):  # f32 and f64 paths
        expect = x.astype(np.int64) @ w.T
        np.testing.assert_array_equal(dense_accumulate(x, w, "blas"), expect)
        np.testing.assert_array_equal(dense_accumulate(x, w, "auto"), expect)
        if _torch() is not None:
            np.testing.assert_array_equal(dense_accumulate(x, w, "gather"), expect)


def test_each_synapse_adds_one_step_of_delay() -> None:
    # Identity weights, no leak, threshold 0: a spike passes one layer per step.
    eye = np.eye(3, dtype=np.int64) * 2
    layers = [LoihiLayer.dense(f"l{i}", eye, source=i - 1, du=4096, dv=4096, vth_mant=0) for i in range(3)]
    net = LoihiNetwork((3,), layers)
    x = np.zeros((1, 8, 3), dtype=bool)
    x[0, 0, 1] = True
    res = simulate(net, x)
    for i in range(3):
        fired = np.argwhere(res.spikes[i][0])
        np.testing.assert_array_equal(fired, [[i + 1, 1]])


def test_counts_and_synops_are_brute_force_counts() -> None:
    rng = np.random.default_rng(11)
    net = random_conv_net(rng)
    x = random_spikes(rng, net, 3, 20, density=0.3)
    res = simulate(net, x)
    src = x
    for i, ly in enumerate(net.layers):
        np.testing.assert_array_equal(res.spike_counts[i], res.spikes[i].reshape(3, -1).sum(1) * ly.has_neurons)
        if ly.has_neurons:
            w, _ = ly.effective_weights()
            # brute force: drive every single input neuron alone through the synapse, count non-zero weights
            if ly.kind == "dense":
                fan = (w != 0).sum(0)
            else:
                fan = np.zeros(ly.input_shape, dtype=np.int64)
                for idx in np.ndindex(*ly.input_shape):
                    probe = np.zeros((1, 1) + ly.input_shape, dtype=bool)
                    probe[(0, 0) + idx] = True
                    single = LoihiNetwork(ly.input_shape, [ly.replace(source=-1, weights=(w != 0).astype(np.int64))])
                    # with 0/1 weights the conv sum per output counts the synapses that input drives
                    from snnc.targets.loihi.simulator import conv_accumulate
                    fan[idx] = conv_accumulate(probe[0], single.layers[0], (w != 0).astype(np.int64)).sum()
            expect = src.reshape(3, 20, -1).sum(1).astype(np.int64) @ fan.reshape(-1)
            np.testing.assert_array_equal(res.synops[i], expect)
        src = res.spikes[i]


def test_effective_weights_follow_lava_clip_and_truncate() -> None:
    w = np.array([[-300, -256, -3, 3, 255, 300]])
    eff, rep = effective_dense_weights(w, "mixed", 8)  # clip to [-256, 255], then drop 1 bit (floor)
    np.testing.assert_array_equal(eff, [[-256, -256, -4, 2, 254, 254]])
    assert rep["weights_clipped"] == 2 and rep["weights_truncated"] == 4
    eff, _ = effective_dense_weights(np.array([[-300, -255, -7, 0]]), "inhibitory", 6)  # on magnitudes
    np.testing.assert_array_equal(eff, [[-252, -252, -4, 0]])
    eff, rep = effective_dense_weights(np.array([[-5, 1, 7, 300]]), "excitatory", 7)
    np.testing.assert_array_equal(eff, [[0, 0, 6, 254]])
    assert rep["weights_truncated_to_zero"] == 1


def test_bad_inputs_raise() -> None:
    net = LoihiNetwork((4,), [LoihiLayer.dense("a", np.ones((2, 4), dtype=np.int64), source=-1)])
    with pytest.raises(ShapeError):
        simulate(net, np.zeros((1, 5, 3)))
    with pytest.raises(InputError, match="binary"):
        simulate(net, np.full((1, 5, 4), 2))
    assert simulate(net, np.zeros((2, 0, 4), dtype=bool)).spikes[0].shape == (2, 0, 2)
