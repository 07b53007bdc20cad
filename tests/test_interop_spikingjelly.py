"""SpikingJelly 2.0.0 -> NIR (``export_to_nir``, dt=1e-4) -> snnc (cpu, dt=1e-4, euler) equals SpikingJelly.

SpikingJelly's exporter writes ``LIF(tau = tau_steps*dt, r = 1, v_leak = v_reset)`` and
``IF(r = 1/dt)``, i.e. NIR's ODEs whose forward-Euler step at ``dt`` is SpikingJelly's
``v' = v + (x - (v - v_reset))/tau`` and ``v' = v + x``: ``convention("spikingjelly")``.
SpikingJelly spikes at ``v >= threshold``, NIR at ``v > threshold`` (equal unless a voltage lands
exactly on the threshold). Installed with ``pip install --no-deps spikingjelly==2.0.0 loguru==0.7.3``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly", reason="pip install --no-deps spikingjelly==2.0.0 loguru==0.7.3")
nir = pytest.importorskip("nir")

import snnc  # noqa: E402
from snnc.compiler.frontends.conventions import convention  # noqa: E402


def test_spikingjelly_nir_file_equals_spikingjelly(tmp_path: Path) -> None:
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1), neuron.LIFNode(tau=2.0, v_threshold=0.5), layer.AvgPool2d(2),
        layer.Flatten(), layer.Linear(4 * 4 * 4, 8), neuron.IFNode(v_threshold=0.7),
        layer.Linear(8, 4), neuron.LIFNode(tau=3.0, v_threshold=0.3))
    with torch.no_grad():
        for m in net:
            if hasattr(m, "weight"):
                m.weight.mul_(3.0)
    path = tmp_path / "sj.nir"
    try:
        export_to_nir(net, torch.zeros(1, 2, 8, 8), save_path=str(path), dt=1e-4)
    except Exception as e:  # pragma: no cover - depends on the installed nir/nirtorch
        pytest.skip(f"spikingjelly export_to_nir cannot run here: {type(e).__name__}: {e}")
    functional.reset_net(net)
    rng = np.random.default_rng(0)
    x = (rng.random((3, 40, 2, 8, 8)) < 0.3).astype(np.float32)
    with torch.no_grad():
        ref = np.stack([net(torch.as_tensor(x[:, t])).numpy() for t in range(x.shape[1])], 1)
    assert ref.sum() >= 10
    dt_s, method = convention("spikingjelly")
    art = snnc.compile(str(path), target="cpu", dt_s=dt_s, method=method)
    res = snnc.Program(art).run(x.astype(np.float64))
    np.testing.assert_array_equal(res.output, ref)
    assert len(res.spike_counts) == 3 and all(c.sum() > 0 for c in res.spike_counts.values())
