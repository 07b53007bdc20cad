"""sinabs 3.1.3 -> NIR (``sinabs.to_nir``) -> snnc (cpu, dt=1 step, exact) equals sinabs.

sinabs layers are discrete per-step models with ``tau`` in steps: ``LIF`` is
``v' = exp(-1/tau) v + (1 - exp(-1/tau)) x`` (``norm_input=True``), ``IAF`` is ``v' = v + x``.
Its exporter passes ``tau`` through with ``r = 1``, so the file is NIR's ODE in units of steps:
``convention("sinabs") == (1.0, "exact")``. NIR's spike/reset semantics are sinabs'
``SingleSpike`` (sinabs spikes at ``v >= threshold``, NIR at ``v > threshold``: equal unless a
voltage lands exactly on the threshold) with ``MembraneReset``; sinabs' defaults (``MultiSpike``,
``MembraneSubtract``) are not representable in NIR and are not stored in the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sinabs = pytest.importorskip("sinabs", reason="pip install --no-deps sinabs==3.1.3 pbr")
nir = pytest.importorskip("nir")

import snnc  # noqa: E402
from snnc.compiler.frontends.conventions import convention  # noqa: E402


def make() -> "torch.nn.Module":
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(12, 8),
        sl.IAF(spike_threshold=torch.tensor(1.0), spike_fn=SingleSpike, reset_fn=MembraneReset()),
        torch.nn.Linear(8, 4),
        sl.LIF(tau_mem=torch.linspace(2.0, 8.0, 4), spike_threshold=torch.full((4,), 0.3), spike_fn=SingleSpike,
               reset_fn=MembraneReset()))
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        net[2].weight.mul_(8.0)
    return net


def test_sinabs_nir_file_equals_sinabs(tmp_path: Path) -> None:
    net = make()
    sample = torch.zeros(1, 4, 12)  # sinabs layers take (batch, time, ...)
    net(sample)  # sinabs' exporter reads the layer shape from the state a forward pass created
    try:
        graph = sinabs.to_nir(net, sample)
    except Exception as e:  # pragma: no cover - depends on the installed nir/nirtorch
        pytest.skip(f"sinabs.to_nir cannot run with this nir/nirtorch: {type(e).__name__}: {e}")
    path = tmp_path / "sinabs.nir"
    try:
        nir.write(str(path), graph)
    except TypeError as e:  # pragma: no cover
        pytest.skip(f"nir.write cannot store this sinabs export: {e}")
    rng = np.random.default_rng(0)
    x = (rng.random((3, 40, 12)) < 0.4).astype(np.float32)
    for m in net:
        if hasattr(m, "reset_states"):
            m.reset_states()
    with torch.no_grad():
        ref = net(torch.as_tensor(x)).numpy()
    assert ref.sum() >= 10
    dt_s, method = convention("sinabs")
    assert (dt_s, method) == (1.0, "exact")
    art = snnc.compile(str(path), target="cpu", dt_s=dt_s, method=method)
    res = snnc.Program(art).run(x.astype(np.float64), record=True)
    np.testing.assert_array_equal(res.output, ref)
    assert all(c.sum() > 0 for c in res.spike_counts.values())
