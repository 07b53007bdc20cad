"""Norse 1.1.0 -> NIR (``norse.torch.to_nir``) -> snnc (cpu, dt=1e-3, euler) equals Norse.

Norse's exporter writes parameters in its own convention (see
:mod:`snnc.compiler.frontends.conventions`): the graph is imported, ``adapt(graph, "norse")``
undoes the exporter's quirks, and the result is simulated at Norse's dt.
Norse cells are single-step modules: the reference runs them step by step with their state.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
norse = pytest.importorskip("norse.torch", reason="pip install --no-deps norse==1.1.0")
nir = pytest.importorskip("nir")

import snnc  # noqa: E402
from snnc.compiler.frontends.conventions import adapt, convention  # noqa: E402
from snnc.errors import SnncError, ValueRangeError  # noqa: E402


def P(n: int, **kw: float) -> dict:
    """Per-neuron parameter tensors (nir 1.0.8's nir.write cannot store Norse's 0-d defaults)."""
    return {k: torch.full((n,), float(v)) for k, v in kw.items()}


def make_dense(per_neuron: bool = True) -> Any:
    torch.manual_seed(0)
    p = P if per_neuron else (lambda n, **kw: {k: torch.as_tensor(float(v)) for k, v in kw.items()})
    net = norse.SequentialState(
        torch.nn.Linear(12, 8),
        norse.LIFBoxCell(norse.LIFBoxParameters(**p(8, tau_mem_inv=100.0, v_th=0.3, v_leak=0.0, v_reset=0.0))),
        torch.nn.Linear(8, 6),
        norse.IAFCell(norse.IAFParameters(**p(6, v_th=0.5, v_reset=0.0))),
        torch.nn.Linear(6, 4),
        norse.LIFCell(norse.LIFParameters(**p(4, tau_syn_inv=200.0, tau_mem_inv=100.0, v_th=0.2, v_leak=0.0,
                                              v_reset=0.0))))
    with torch.no_grad():
        for prm in net.parameters():
            prm.mul_(3.0)
    return net


def run_norse(net: Any, x: np.ndarray) -> Tuple[np.ndarray, List[Any]]:
    """Step the Norse net over x (batch, T, ...); return spikes (batch, T, ...) and last states."""
    state = None
    outs, states = [], []
    with torch.no_grad():
        for t in range(x.shape[1]):
            o, state = net(torch.as_tensor(x[:, t], dtype=torch.float32), state)
            outs.append(o.numpy())
            states.append(list(state))  # SequentialState updates its state list in place
    return np.stack(outs, 1), states


def spikes(shape: Tuple[int, ...], seed: int = 0, batch: int = 3, steps: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps) + shape) < 0.3).astype(np.float64)


def test_norse_nir_file_equals_norse(tmp_path: Path) -> None:
    net = make_dense()
    path = tmp_path / "norse.nir"
    nir.write(str(path), norse.to_nir(net, torch.randn(1, 12)))
    x = spikes((12,))
    ref, states = run_norse(net, x)
    assert ref.sum() >= 10
    dt_s, method = convention("norse")
    assert (dt_s, method) == (1e-3, "euler")
    graph = adapt(snnc.load_model(str(path)), "norse")
    assert any("norse convention" in n for n in graph.notes)
    art = snnc.compile(graph, target="cpu", dt_s=dt_s, method=method)
    assert any("dropped batch dimension" in n for n in art.report["notes"])
    res = snnc.Program(art).run(x, record=True)
    np.testing.assert_array_equal(res.output, ref)
    # hidden layers spike too, and the CubaLIF voltages agree (Norse records v after reset)
    assert len(res.spike_counts) == 3 and all(c.sum() > 0 for c in res.spike_counts.values())
    v_norse = np.stack([s[-1].v.numpy() for s in states], 1)
    last = [n for n in res.states if "spikes" in res.states[n]][-1]
    np.testing.assert_allclose(res.states[last]["v"], v_norse, rtol=1e-5, atol=1e-5)
    # Norse stores the current after its decay, snnc the current the voltage step used
    i_norse = np.stack([s[-1].i.numpy() for s in states], 1)
    np.testing.assert_allclose(res.states[last]["i"] * (1 - 1e-3 * 200.0), i_norse, rtol=1e-5, atol=1e-5)


def test_norse_scalar_parameters_in_memory() -> None:
    """Norse's default 0-d parameters cannot be written by nir 1.0.8 but import in memory."""
    net = make_dense(per_neuron=False)
    g = norse.to_nir(net, torch.randn(1, 12))
    with pytest.raises(TypeError):
        nir.write("/dev/null", g)
    x = spikes((12,), seed=4)
    art = snnc.compile(adapt(snnc.load_model(g), "norse"), target="cpu", dt_s=1e-3, method="euler")
    np.testing.assert_array_equal(snnc.Program(art).run(x).output, run_norse(net, x)[0])


def test_norse_file_without_adapt_is_rejected_or_differs(tmp_path: Path) -> None:
    """Read literally, Norse's tau = dt*tau (1e-5 s) cannot be Euler-stepped at dt = 1e-3 s."""
    net = make_dense()
    path = tmp_path / "norse.nir"
    nir.write(str(path), norse.to_nir(net, torch.randn(1, 12)))
    with pytest.raises(ValueRangeError, match="negative"):
        snnc.Program(snnc.compile(str(path), target="cpu", dt_s=1e-3, method="euler")).run(spikes((12,)))
    # exact integration runs but is not Norse's model
    out = snnc.Program(snnc.compile(str(path), target="cpu", dt_s=1e-3, method="exact")).run(spikes((12,))).output
    assert not np.array_equal(out, run_norse(net, spikes((12,)))[0])


def test_unknown_framework() -> None:
    with pytest.raises(SnncError, match="unknown framework"):
        convention("tensorflow")
