"""General Loihi networks (summed inputs, recurrence, memoryless and readout layers) and graph lowering.

Oracles: a literal step-by-step port of Lava's fixed_pt Dense/Conv/LIF processes wired as a general
graph (every synaptic hop delivers one step later), Lava itself (these generators feed the volume test
of test_loihi_lava_equality.py; the gated network below also runs on Lava here), and the float cpu
target run on the same graph with the Loihi delays inserted.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np
import pytest

from loihi_helpers import assert_states_equal, lava_missing_reason, literal_lava
from snnc.targets.loihi.network import VTH_MANT_MAX, LoihiLayer, LoihiNetwork, LoihiSynapse
from snnc.targets.loihi.simulator import simulate

LAVA_MISSING = lava_missing_reason()


# ----------------------------------------------------------------------------- random general networks
def _dense_syn(rng: np.random.Generator, source: int, k: int, n: int, big: bool = False) -> LoihiSynapse:
    mode = str(rng.choice(["mixed", "excitatory", "inhibitory"]))
    lo, hi = {"mixed": (-300, 300), "excitatory": (0, 300), "inhibitory": (-300, 0)}[mode]
    return LoihiSynapse(source=source, kind="dense", input_shape=(k,), weights=rng.integers(lo, hi + 1, (n, k)),
                        weight_exp=7 if big else int(rng.integers(-3, 3)), num_weight_bits=int(rng.integers(5, 9)),
                        sign_mode=mode)


def _neurons(rng: np.random.Generator, n: int, memoryless: bool = False) -> dict:
    du, dv = (4096, 4096) if memoryless else (int(rng.choice([0, 1, 300, 2000, 4096])),
                                               int(rng.choice([0, 7, 500, 4096])))
    return dict(du=du, dv=dv, vth_mant=int(rng.integers(1, 200)),
                bias_mant=rng.integers(-100, 100, n) if rng.random() < 0.5 else int(rng.integers(-30, 30)),
                bias_exp=int(rng.integers(0, 7)))


def _layer(name: str, syns: List[LoihiSynapse], n: int, **neur: Any) -> LoihiLayer:
    first = syns[0]
    ly = LoihiLayer.dense(name, first.weights, source=first.source, weight_exp=first.weight_exp,
                          num_weight_bits=first.num_weight_bits, sign_mode=first.sign_mode, **neur)
    return ly.replace(extra_inputs=list(syns[1:]))


def random_recurrent_net(rng: np.random.Generator, big: bool = False) -> LoihiNetwork:
    """in -> A (self loop) -> B -> C -> back to A and B; C also reads the input (a skip)."""
    k, a, bn, c = (int(x) for x in rng.integers(2, 12, 4))
    la = _layer("A", [_dense_syn(rng, -1, k, a), _dense_syn(rng, 0, a, a), _dense_syn(rng, 2, c, a, big)], a,
                **_neurons(rng, a))
    lb = _layer("B", [_dense_syn(rng, 0, a, bn), _dense_syn(rng, 2, c, bn)], bn, **_neurons(rng, bn))
    lc = _layer("C", [_dense_syn(rng, 1, bn, c, big), _dense_syn(rng, -1, k, c)], c, **_neurons(rng, c))
    out = _layer("R", [_dense_syn(rng, 2, c, 3)], 3, du=int(rng.choice([0, 4096])), dv=int(rng.choice([0, 100])),
                 vth_mant=VTH_MANT_MAX).replace(readout=True)
    return LoihiNetwork((k,), [la, lb, lc, out], name="recurrent")


def random_multi_input_net(rng: np.random.Generator) -> LoihiNetwork:
    """A DAG: conv and pool branches summed into one conv layer, flatten, a gate-like memoryless dense
    layer summing the input's flatten and a hidden layer, and a layer that reads a *later* layer."""
    c, h, w = 2, int(rng.integers(5, 8)), int(rng.integers(5, 8))
    c1 = LoihiLayer.conv("c1", rng.integers(-100, 100, (3, c, 3, 3)), (c, h, w), source=-1, padding=1,
                         **_neurons(rng, 1))
    c1 = c1.replace(bias_mant=np.asarray(c1.bias_mant).reshape(-1)[0] if np.ndim(c1.bias_mant) else c1.bias_mant)
    p = LoihiLayer.pool("p", (c, h, w), 1, int(rng.integers(20, 200)), source=-1, du=4096, dv=4096,
                        vth_mant=int(rng.integers(1, 100)))
    # summed: conv from c1 (3 -> 2 channels) plus conv from p (2 -> 2 channels, 1x1)
    c2 = LoihiLayer.conv("c2", rng.integers(-100, 100, (2, 3, 3, 3)), (3, h, w), source=0, padding=1,
                         **{k_: v_ for k_, v_ in _neurons(rng, 1).items() if k_ != "bias_mant"})
    c2 = c2.replace(extra_inputs=[LoihiSynapse(source=1, kind="conv", input_shape=(c, h, w),
                                               weights=rng.integers(-100, 100, (2, c, 1, 1)))])
    f = LoihiLayer.flatten("f", (2, h, w), source=2)
    fi = LoihiLayer.flatten("fi", (c, h, w), source=-1)
    n = 2 * h * w
    hid = _layer("hid", [_dense_syn(rng, 3, n, 6), _dense_syn(rng, 7, 5, 6)], 6, **_neurons(rng, 6))
    gate = _layer("gate", [LoihiSynapse(source=4, kind="dense", input_shape=(c * h * w,),
                                        weights=np.eye(c * h * w, dtype=np.int64)[:n] * 2, sign_mode="excitatory"),
                           _dense_syn(rng, 5, 6, n)], n, **_neurons(rng, n, memoryless=True))
    last = _layer("last", [_dense_syn(rng, 6, n, 5)], 5, **_neurons(rng, 5))
    return LoihiNetwork((c, h, w), [c1, p, c2, f, fi, hid, gate, last], name="dag")


def _assert_equal(net: LoihiNetwork, ref: Any, got: Tuple[List[Any], List[Any], List[Any]], what: str) -> None:
    for i, ly in enumerate(net.layers):
        if not ly.has_neurons:
            continue
        np.testing.assert_array_equal(ref.spikes[i], got[0][i], err_msg=f"{what}: spikes of {ly.name}")
        np.testing.assert_array_equal(ref.u[i], got[1][i], err_msg=f"{what}: u of {ly.name}")
        np.testing.assert_array_equal(ref.v[i], got[2][i], err_msg=f"{what}: v of {ly.name}")


@pytest.mark.parametrize("seed", range(6))
def test_reference_equals_literal_port_on_general_networks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    spiked = 0
    for net in (random_recurrent_net(rng, big=seed % 2 == 1), random_multi_input_net(rng)):
        x = rng.random((2, 40) + net.input_shape) < rng.uniform(0.1, 0.6)
        ref = simulate(net, x, record_states=True)
        _assert_equal(net, ref, literal_lava(net, x), f"seed {seed} {net.name}")
        spiked += sum(int(r.sum()) for r in ref.spikes)
    assert spiked, "no spikes at all: the comparison proves little"


# ----------------------------------------------------------------------------- graph lowering
def gated_graph(rng: np.random.Generator, n_in: int = 12, hidden: int = 10, n_out: int = 4) -> Any:
    """input -> gate (Threshold 1.5: a*x for binary x, a) -> hidden IF -> controller IF -> back to the gate.

    The hidden layer also drives a spiking output layer.

    Weights are in {-1, 0, 1} and thresholds integers, with IF (non-leaky) neurons, so that Loihi's
    integers represent the float model exactly (a leak would truncate on Loihi and not in float).
    """
    from snnc.compiler import graph as g

    dt = 1e-3
    gr = g.Graph(source="gated")
    gr.nodes["input"] = g.Input(shape=(n_in,))
    gr.nodes["gate"] = g.Threshold(threshold=np.full(n_in, 1.5))
    gr.nodes["fc1"] = g.Linear(weight=rng.choice([-1.0, 0.0, 1.0, 1.0], size=(hidden, n_in)))
    gr.nodes["hid"] = g.IF(r=np.full(hidden, 1 / dt), v_threshold=np.full(hidden, 2.0), v_reset=np.zeros(hidden))
    # the controller's bias (0.5 per step) opens the gate now and then; hidden spikes push it further
    gr.nodes["fc_c"] = g.Affine(weight=rng.choice([-1.0, 1.0, 1.0], size=(1, hidden)), bias=np.full(1, 0.5))
    gr.nodes["ctl"] = g.IF(r=np.full(1, 1 / dt), v_threshold=np.full(1, 1.0), v_reset=np.zeros(1))
    gr.nodes["bcast"] = g.Linear(weight=np.ones((n_in, 1)))
    gr.nodes["fc2"] = g.Linear(weight=rng.choice([-1.0, 0.0, 1.0], size=(n_out, hidden)))
    gr.nodes["out_lif"] = g.IF(r=np.full(n_out, 1 / dt), v_threshold=np.full(n_out, 1.0), v_reset=np.zeros(n_out))
    gr.nodes["output"] = g.Output()
    gr.edges = [("input", "gate"), ("gate", "fc1"), ("fc1", "hid"), ("hid", "fc_c"), ("fc_c", "ctl"),
                ("ctl", "bcast"), ("bcast", "gate"), ("hid", "fc2"), ("fc2", "out_lif"), ("out_lif", "output")]
    return gr


def _gated_inputs(rng: np.random.Generator, n_in: int, batch: int, steps: int) -> np.ndarray:
    return rng.random((batch, steps, n_in)) < 0.5


def test_gated_network_lowers_with_exact_gate_and_matches_the_float_model_with_loihi_delays() -> None:
    import snnc
    from snnc.targets.loihi.lower import with_loihi_delays
    from snnc.targets.loihi.target import network_from_payload

    rng = np.random.default_rng(7)
    gr = gated_graph(rng)
    art = snnc.compile(gr, target="loihi", dt_s=1e-3)
    rep = art.manifest["report"]
    net, run = network_from_payload(art.payload)
    assert net.has_recurrence() and not rep["timing_exact"]
    assert rep["netx"].startswith("not expressible in netx")
    gate = next(ly for ly in net.layers if ly.name == "gate")
    assert (gate.du, gate.dv) == (4096, 4096) and len(gate.extra_inputs) == 1  # memoryless, input + controller
    x = _gated_inputs(rng, 12, 3, 120)
    prog = snnc.Program(art)
    lo = prog.run(x, record=True)
    # the gate computes a * x exactly: gate(t) = x(t-1) * ctl(t-1) (one step per hop)
    a = lo.states["ctl"]["spikes"][:, :, 0]
    want = np.zeros_like(x)
    want[:, 1:] = x[:, :-1] & a[:, :-1, None]
    np.testing.assert_array_equal(lo.states["gate"]["spikes"], want)
    assert a.any() and not a.all() and lo.states["gate"]["spikes"].any()  # the gate opens and closes
    # the float cpu target on the same graph with Loihi's delays inserted gives the same spikes
    fl = snnc.Program(snnc.compile(with_loihi_delays(gr, 1e-3), target="cpu", dt_s=1e-3)).run(
        x.astype(np.float64), record=True)
    for name in ("hid", "ctl", "out_lif"):
        np.testing.assert_array_equal(lo.states[name]["spikes"], fl.states[name]["spikes"].astype(bool),
                                      err_msg=f"{name}: Loihi vs float with Loihi delays")
    np.testing.assert_array_equal(lo.output, fl.output.astype(bool))
    # without the delays the float model computes something else (the loop takes 1 step, not 3)
    plain = snnc.Program(snnc.compile(gr, target="cpu", dt_s=1e-3)).run(x.astype(np.float64), record=True)
    assert not np.array_equal(lo.states["ctl"]["spikes"], plain.states["ctl"]["spikes"].astype(bool))
    if not LAVA_MISSING:  # and Lava agrees with the reference, state for state
        lv = prog.run(x, backend="lava", record=True)
        assert_states_equal(lo, lv)


def test_summed_inputs_and_readout_lower() -> None:
    """NIR's Affine -> LI <- Affine summation into a readout (output v / scale, never spiking)."""
    import snnc
    from snnc.compiler import graph as g
    from snnc.targets.loihi.target import network_from_payload

    rng = np.random.default_rng(3)
    dt = 1e-3
    lif = lambda n: g.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n),  # noqa: E731
                          v_threshold=np.full(n, 0.3), v_reset=np.zeros(n))
    gr = g.Graph(source="sum")
    gr.nodes["input"] = g.Input(shape=(6,))
    gr.nodes["a1"] = g.Linear(weight=rng.normal(size=(8, 6)))
    gr.nodes["l1"] = lif(8)
    gr.nodes["b1"] = g.Linear(weight=rng.normal(size=(7, 6)))
    gr.nodes["m1"] = lif(7)
    gr.nodes["a2"] = g.Linear(weight=rng.normal(size=(5, 8)))
    gr.nodes["a3"] = g.Affine(weight=rng.normal(size=(5, 7)), bias=np.full(5, 0.1))
    gr.nodes["ro"] = g.LI(tau=np.full(5, 0.02), r=np.ones(5), v_leak=np.zeros(5))
    gr.nodes["output"] = g.Output()
    gr.edges = [("input", "a1"), ("a1", "l1"), ("input", "b1"), ("b1", "m1"), ("l1", "a2"), ("a2", "ro"),
                ("m1", "a3"), ("a3", "ro"), ("ro", "output")]
    art = snnc.compile(gr, target="loihi", dt_s=dt)
    rep = art.manifest["report"]
    net, run = network_from_payload(art.payload)
    ro = net.layers[run["output_layer"]]
    assert ro.readout and ro.vth_mant == VTH_MANT_MAX and len(ro.extra_inputs) == 1
    assert rep["timing_exact"] and rep["latency_steps"] == 2 and rep["layer_lag_steps"]["l1"] == 1
    x = rng.random((2, 60, 6)) < 0.4
    lo = snnc.Program(art).run(x, record=True)
    assert not lo.states["ro"]["spikes"].any()  # a readout never fires
    fl = snnc.Program(snnc.compile(gr, target="cpu", dt_s=dt)).run(x.astype(np.float64))
    # the readout's v tracks the float LI's v two steps later (up to quantisation) from the first step:
    # its bias is switched on after its lag of two steps (a note says so), as the float copy starts
    assert any("bias switched on at step 2" in n for n in rep["loihi_notes"]), rep["loihi_notes"]
    assert ro.bias_onset_step == 2 and not lo.output[:, :2].any()
    err = np.abs(lo.output[:, 2:] - fl.output[:, :-2]).max()
    assert err < 0.1 * np.abs(fl.output).max(), err


def test_delay_nodes_in_a_loop_are_absorbed_by_the_hops() -> None:
    """A two-hop loop whose float delay is two steps (a Delay plus the recurrent edge) maps exactly."""
    import snnc
    from snnc.compiler import graph as g

    rng = np.random.default_rng(5)
    dt = 1e-3
    if_ = lambda n, th: g.IF(r=np.full(n, 1 / dt), v_threshold=np.full(n, th), v_reset=np.zeros(n))  # noqa: E731
    gr = g.Graph(source="loop")
    gr.nodes["input"] = g.Input(shape=(6,))
    gr.nodes["a1"] = g.Linear(weight=rng.choice([-1.0, 1.0, 1.0], size=(8, 6)))
    gr.nodes["l1"] = if_(8, 2.0)
    gr.nodes["a2"] = g.Linear(weight=rng.choice([-1.0, 0.0, 1.0], size=(5, 8)))
    gr.nodes["l2"] = if_(5, 1.0)
    gr.nodes["d"] = g.Delay(delay=np.array([dt]))
    gr.nodes["ab"] = g.Linear(weight=rng.choice([-1.0, 1.0], size=(8, 5)))
    gr.nodes["output"] = g.Output()
    gr.edges = [("input", "a1"), ("a1", "l1"), ("l1", "a2"), ("a2", "l2"), ("l2", "d"), ("d", "ab"), ("ab", "l1"),
                ("l2", "output")]
    art = snnc.compile(gr, target="loihi", dt_s=dt)
    rep = art.manifest["report"]
    assert rep["timing_exact"] and rep["latency_steps"] == 2, rep["loihi_notes"]
    x = rng.random((2, 80, 6)) < 0.4
    lo = snnc.Program(art).run(x, record=True)
    fl = snnc.Program(snnc.compile(gr, target="cpu", dt_s=dt)).run(x.astype(np.float64), record=True)
    for name, lag in (("l1", 1), ("l2", 2)):
        got, want = lo.states[name]["spikes"], fl.states[name]["spikes"].astype(bool)
        np.testing.assert_array_equal(got[:, lag:], want[:, :-lag], err_msg=name)
        assert not got[:, :lag].any() and want.any()
    # a Delay that Loihi cannot reproduce is a rule violation
    gr.nodes["d"] = g.Delay(delay=np.array([3 * dt]))
    with pytest.raises(Exception, match="loihi.timing.delay"):
        snnc.compile(gr, target="loihi", dt_s=dt)


def test_general_networks_serialise_and_old_chains_stay_readable() -> None:
    rng = np.random.default_rng(11)
    for net in (random_recurrent_net(rng), random_multi_input_net(rng)):
        d = net.to_dict()
        back = LoihiNetwork.from_dict(d)
        assert back.equals(net) and back.has_recurrence() == net.has_recurrence()
        x = rng.random((1, 30) + net.input_shape) < 0.4
        for a, b in zip(simulate(net, x).spikes, simulate(back, x).spikes):
            np.testing.assert_array_equal(a, b)
    # a version-1 dict (chains, before extra inputs and readouts) still loads
    chain = LoihiNetwork((3,), [LoihiLayer.dense("d", np.ones((2, 3), dtype=np.int64), source=-1)])
    d1 = {k: v for k, v in chain.to_dict().items() if not k.endswith(("readout", "num_extra"))}
    d1["version"] = np.array(1, dtype=np.int64)
    assert LoihiNetwork.from_dict(d1).equals(chain)
    # a flatten must read an earlier layer (it is a reshape, without delay)
    with pytest.raises(Exception, match="flatten source"):
        LoihiNetwork((4,), [LoihiLayer.dense("d", np.ones((4, 4), dtype=np.int64), source=1),
                            LoihiLayer.flatten("f", (4,), source=1)])
