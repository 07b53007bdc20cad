"""sinabs 3.1.3 -> NIR (``sinabs.to_nir``) -> snnc, against sinabs' own simulation.

sinabs layers are discrete per-step models with ``tau`` in steps: ``LIF`` is
``v' = exp(-1/tau) v + (1 - exp(-1/tau)) x`` (``norm_input=True``), ``IAF`` is ``v' = v + x``.
Its exporter passes ``tau`` through with ``r = 1``, so the file is NIR's ODE in units of steps
(``convention("sinabs") == (1.0, "exact")``). The file stores no spike or reset function:

* ``--framework sinabs`` reads spiking and reset as sinabs itself does (``sinabs.from_nir``:
  ``MultiSpike``, ``MembraneSubtract``, IF floor ``min_v_mem = -v_threshold``): equal to
  ``from_nir``'s simulation (IF layers; for LIF ``from_nir`` drops the input normalisation that
  sinabs' exporter wrote ``r = 1`` for, and snnc keeps the file's ``r``);
* ``--dt 1 --method exact`` reads it with NIR's semantics (one spike, reset to ``v_reset``): equal
  to sinabs modules built with ``SingleSpike``/``MembraneReset`` (the deployable variant for Loihi).

sinabs spikes at ``v >= threshold``, NIR at ``v > threshold``: equal unless a voltage lands exactly
on the threshold (random float weights here).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sinabs = pytest.importorskip("sinabs", reason="pip install --no-deps sinabs==3.1.3 pbr")
nir = pytest.importorskip("nir")

import snnc  # noqa: E402
from snnc.compiler.frontends.conventions import convention  # noqa: E402


def make(single: bool) -> "torch.nn.Module":
    """IAF/LIF with SingleSpike+MembraneReset, or (``single=False``) the Squeeze layers with sinabs'
    defaults, whose export (sample (1, 12)) sinabs' own ``from_nir`` can read back."""
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    torch.manual_seed(0)
    if single:
        kw = dict(spike_fn=SingleSpike, reset_fn=MembraneReset())
        iaf, lif = sl.IAF, sl.LIF
    else:
        kw, iaf, lif = dict(batch_size=1), sl.IAFSqueeze, sl.LIFSqueeze
    last = lif(tau_mem=torch.linspace(2.0, 8.0, 4), spike_threshold=torch.full((4,), 0.3), **kw) if single \
        else iaf(spike_threshold=torch.tensor(0.3), **kw)
    net = torch.nn.Sequential(torch.nn.Linear(12, 8), iaf(spike_threshold=torch.tensor(1.0), **kw),
                              torch.nn.Linear(8, 4), last)
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        net[2].weight.mul_(8.0)
    return net


def export(net: Any, path: Path, squeeze: bool = False) -> Path:
    sample = torch.zeros(1, 12) if squeeze else torch.zeros(1, 4, 12)  # IAF takes (batch, time, ...)
    net(sample)  # sinabs' exporter reads the layer shape from the state a forward pass created
    nir.write(str(path), sinabs.to_nir(net, sample))
    for m in net:
        if hasattr(m, "reset_states"):
            m.reset_states()
    return path


def inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((3, 40, 12)) < 0.4).astype(np.float32)


def test_framework_sinabs_equals_sinabs_from_nir(tmp_path: Path) -> None:
    from sinabs.nir import from_nir

    path = export(make(single=False), tmp_path / "sinabs.nir", squeeze=True)
    x = inputs()
    ref_net = from_nir(nir.read(str(path)), batch_size=1)
    outs = []
    for b in range(x.shape[0]):
        for m in ref_net.modules():
            if hasattr(m, "reset_states"):
                m.reset_states()
        with torch.no_grad():
            o = ref_net(torch.as_tensor(x[b]))
        outs.append((o[0] if isinstance(o, tuple) else o).numpy())
    ref = np.stack(outs)
    assert ref.max() >= 2, "several spikes in one step somewhere: MultiSpike is exercised"
    art = snnc.compile(str(path), target="cpu", framework="sinabs")
    assert art.manifest["time_base"]["dt_s"] == 1.0 and art.manifest["time_base"]["bin_us"] is None
    res = snnc.Program(art).run(x.astype(np.float64))
    np.testing.assert_array_equal(res.output, ref)


def test_nir_semantics_equal_single_spike_reset_modules(tmp_path: Path) -> None:
    net = make(single=True)
    path = export(net, tmp_path / "sinabs.nir")
    x = inputs()
    with torch.no_grad():
        ref = net(torch.as_tensor(x)).numpy()
    assert ref.sum() >= 10
    dt_s, method = convention("sinabs")
    assert (dt_s, method) == (1.0, "exact")
    art = snnc.compile(str(path), target="cpu", dt_s=dt_s, method=method)
    res = snnc.Program(art).run(x.astype(np.float64), record=True)
    np.testing.assert_array_equal(res.output, ref)
    assert all(c.sum() > 0 for c in res.spike_counts.values())
