"""The cpu target's simulator runs a feed-forward graph node by node over chunks of steps.

Both sides of these equalities are snnc's own code: the chunked run (the default) against the same
simulator forced to one step per chunk (the step-by-step order every graph had before, and that
graphs with recurrent edges keep). Spikes, counts and synaptic operations must be equal; float
membrane states agree to rounding: torch's convolutions and matrix products round the last bit
differently with the number of rows they get, as they already did between one and many samples. The float semantics themselves are checked against snnTorch,
Norse, Rockpool, sinabs and SpikingJelly in ``tests/test_interop_*.py``.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import pytest

import snnc
from snnc.compiler import graph as G
from snnc.targets.cpu import simulator as cpu_sim


def _neuron(kind: str, shape: Tuple[int, ...], rng: np.random.Generator) -> G.Node:
    n = int(np.prod(shape))
    tau = lambda: rng.uniform(2e-3, 3e-2, 1 if rng.random() < 0.5 else n)  # noqa: E731
    if kind == "LIF":
        return G.LIF(tau=tau(), r=rng.uniform(0.5, 2.0, 1), v_leak=np.zeros(1), v_threshold=rng.uniform(0.2, 1.0, n),
                     v_reset=np.zeros(1))
    if kind == "CubaLIF":
        return G.CubaLIF(tau_syn=tau(), tau_mem=tau(), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.full(1, 0.3),
                         v_reset=np.zeros(1), w_in=np.ones(1))
    if kind == "IF":  # dv/dt = r x: r = 1/dt adds the input once per step
        return G.IF(r=np.full(1, 1e3), v_threshold=rng.uniform(0.5, 2.0, 1), v_reset=np.zeros(1))
    return G.LI(tau=tau(), r=np.ones(1), v_leak=np.zeros(1))


def _graph(seed: int) -> Tuple[G.Graph, Tuple[int, ...]]:
    """A random valid feed-forward graph: conv/pool/affine layers, spiking neurons, a delay, a readout."""
    rng = np.random.default_rng(seed)
    g = G.Graph(source=f"<chunks {seed}>")
    shape: Tuple[int, ...] = (int(rng.integers(1, 3)), 10, 10)
    g.nodes["in"] = G.Input(shape=shape)
    chain = []
    c_out = int(rng.integers(2, 5))
    conv = G.Conv2d(weight=rng.normal(0, 3.0, (c_out, shape[0], 3, 3)), bias=rng.normal(0, 0.1, c_out),
                    stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)))
    chain.append(("conv", conv))
    s = conv.infer_shape(shape)
    chain.append(("n1", _neuron(str(rng.choice(["LIF", "IF", "CubaLIF"])), s, rng)))
    if rng.random() < 0.5:
        chain.append(("pool", G.SumPool2d(kernel_size=2, stride=2, padding=0)))
        s = chain[-1][1].infer_shape(s)
    if rng.random() < 0.6:
        chain.append(("delay", G.Delay(delay=np.array([float(rng.integers(1, 4)) * 1e-3]))))
    chain.append(("flat", G.Flatten(start_dim=0, end_dim=-1)))
    n = int(np.prod(s))
    hidden = int(rng.integers(3, 12))
    chain.append(("fc", G.Affine(weight=rng.normal(0, 4.0, (hidden, n)), bias=rng.normal(0, 0.1, hidden))))
    chain.append(("n2", _neuron(str(rng.choice(["LIF", "LI"])), (hidden,), rng)))
    prev = "in"
    for name, node in chain:
        g.nodes[name] = node
        g.edges.append((prev, name))
        prev = name
    g.nodes["out"] = G.Output()
    g.edges.append((prev, "out"))
    return g, shape


#: Relative and absolute tolerance of float states between chunk sizes (last-bit rounding of the synapses).
TOL = {"float64": 1e-12, "float32": 1e-5}


def _run(art: snnc.Artifact, x: np.ndarray, chunk_bytes: int, monkeypatch: pytest.MonkeyPatch) -> snnc.Result:
    monkeypatch.setattr(cpu_sim, "CHUNK_BYTES", chunk_bytes)
    return snnc.Program(art).run(x, record=True)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cpu_chunked_run_equals_its_own_step_by_step_run(seed: int, dtype: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    graph, shape = _graph(seed)
    art = snnc.compile(graph, target="cpu", dt_s=1e-3, dtype=dtype)
    rng = np.random.default_rng(100 + seed)
    x = (rng.random((3, 23) + shape) < 0.3).astype(np.float64) * rng.integers(1, 3, (3, 23) + shape)
    one = _run(art, x, 1, monkeypatch)  # a chunk of one step
    assert one.meta["chunk_steps"] == 1
    for chunk_bytes in (3 * 400 * 8 * 5, 2 ** 30):  # a few steps per chunk (nodes <= 400 values), all of them
        many = _run(art, x, chunk_bytes, monkeypatch)
        assert many.meta["chunk_steps"] > 1
        np.testing.assert_array_equal(many.output, one.output)
        assert sorted(many.states) == sorted(one.states) and many.states
        for node in one.states:
            assert sorted(many.states[node]) == sorted(one.states[node])
            for k in one.states[node]:
                if k == "spikes":
                    np.testing.assert_array_equal(many.states[node][k], one.states[node][k], err_msg=f"{node}.{k}")
                else:  # float states: torch's kernels round differently by batch size (so do one and many samples)
                    np.testing.assert_allclose(many.states[node][k], one.states[node][k], rtol=TOL[dtype],
                                               atol=TOL[dtype], err_msg=f"{node}.{k}")
        for d in ("spike_counts", "synops"):
            a, b = getattr(many, d), getattr(one, d)
            assert sorted(a) == sorted(b)
            for node in a:
                np.testing.assert_array_equal(a[node], b[node], err_msg=f"{d} {node}")
    assert one.output.shape[:2] == (3, 23)
    assert any(np.any(one.spike_counts[n] > 0) for n in one.spike_counts)  # the network is not silent


def test_cpu_recurrent_graph_runs_step_by_step() -> None:
    rng = np.random.default_rng(0)
    g = G.Graph(source="<recurrent>")
    g.nodes["in"] = G.Input(shape=(4,))
    g.nodes["fc"] = G.Affine(weight=rng.normal(size=(5, 4)), bias=np.zeros(5))
    g.nodes["lif"] = G.LIF(tau=np.full(1, 1e-2), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.full(1, 0.5),
                           v_reset=np.zeros(1))
    g.nodes["rec"] = G.Affine(weight=rng.normal(size=(5, 5)), bias=np.zeros(5))
    g.nodes["out"] = G.Output()
    g.edges += [("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")]
    res = snnc.Program(snnc.compile(g, target="cpu", dt_s=1e-3)).run(rng.random((2, 9, 4)))
    assert res.meta["chunk_steps"] == 1
    assert res.output.shape[:2] == (2, 9)


def test_cpu_program_reuses_its_simulator_and_artifacts_do_not_share_one() -> None:
    """A Program's later calls reuse the simulator built on the first; another artifact gets its own."""
    g1, shape = _graph(1)
    g2, _ = _graph(1)
    g2.nodes["fc"].weight = -g2.nodes["fc"].weight
    a1, a2 = (snnc.compile(g, target="cpu", dt_s=1e-3) for g in (g1, g2))
    x = (np.random.default_rng(0).random((2, 15) + shape) < 0.4).astype(np.float64)
    p1, p2 = snnc.Program(a1), snnc.Program(a2)
    r1 = p1.run(x)
    r2 = p2.run(x)
    np.testing.assert_array_equal(p1.run(x).output, r1.output)
    np.testing.assert_array_equal(snnc.Program(snnc.compile(g2, target="cpu", dt_s=1e-3)).run(x).output, r2.output)
    assert not np.array_equal(r1.output, r2.output)


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF", "IF", "LI"])
@pytest.mark.parametrize("variant", ["zero", "subtract", "multi", "v_min", "per_neuron_reset"])
def test_in_place_neuron_step_equals_snnc_own_step_bit_for_bit(kind: str, variant: str) -> None:
    """``TorchNeuron.step_inplace`` (the simulator's) gives :meth:`TorchNeuron.step`'s (training's) values exactly."""
    import torch

    from snnc.dynamics import TorchNeuron

    rng = np.random.default_rng(hash((kind, variant)) % 2 ** 32)
    shape = (3, 4, 5)
    node = _neuron(kind, shape, rng)
    if kind != "LI":
        node.reset_mode = "subtract" if variant in ("subtract", "multi") else node.reset_mode
        node.max_spikes_per_step = 4 if variant == "multi" else node.max_spikes_per_step
        if variant == "per_neuron_reset":
            node.v_reset = rng.normal(0, 0.1, int(np.prod(shape)))
    if variant == "v_min":
        node.v_min = -0.25
    for dtype in (torch.float64, torch.float32):
        n = TorchNeuron(node.discrete(1e-3, "exact"), shape, dtype, torch.device("cpu"))
        v = torch.zeros((2,) + shape, dtype=dtype)
        i = torch.zeros_like(v) if n.a_i is not None else None
        v2, i2 = v.clone(), None if i is None else i.clone()
        spikes = 0.0
        for t in range(30):
            x = torch.as_tensor(rng.normal(0.4, 2.0, (2,) + shape), dtype=dtype)
            z, i, v = n.step(x, i, v)
            z2, _, _ = n.step_inplace(x, i2, v2)
            np.testing.assert_array_equal(z2.numpy(), z.numpy(), err_msg=f"step {t} output")
            np.testing.assert_array_equal(v2.numpy(), v.numpy(), err_msg=f"step {t} v")
            if i is not None:
                np.testing.assert_array_equal(i2.numpy(), i.numpy(), err_msg=f"step {t} i")
            spikes += float(z.sum()) if n.v_threshold is not None else 0.0
        assert n.v_threshold is None or spikes > 0
