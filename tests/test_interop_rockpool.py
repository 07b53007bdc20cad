"""Rockpool 3.1.0 -> NIR (``rockpool.nn.modules.to_nir``) -> snnc (cpu, ``framework="rockpool"``) equals Rockpool.

Rockpool's ``LIFTorch`` steps ``i' = beta (i + x)``, ``v' = alpha v + i' + bias``, emits
``n = min(floor(v'/threshold), max_spikes_per_dt)`` spikes where ``v' >= threshold`` and subtracts
``n * threshold``; its exporter writes ``CubaLIF(r = tau_mem alpha / dt, w_in = 1)``. The
``rockpool`` convention (dt = 1e-3 s, exact) rewrites ``r`` and ``w_in`` and marks the neurons
reset-by-subtraction / multi-spike (see ``snnc/compiler/frontends/conventions.py``).

Precision: Rockpool's modules are converted to float64 (``.to(torch.float64)``), but its spike
functions return float32 (``.float()``) spike counts, so (1) each module is evolved in turn with
the spike counts cast back to float64 between modules (what ``Sequential.evolve`` does, plus a
cast that is exact for integer counts), and (2) ``w_rec`` (all zeros without ``has_rec``) and the
initial ``spikes`` state stay float32 so that Rockpool's recurrent product ``F.linear(spikes,
w_rec)`` sees equal dtypes. Thresholds are per-neuron tensors: a 0-d threshold does not take
part in torch's type promotion, so Rockpool's reset ``vmem - spikes * threshold`` would round
``spikes * threshold`` to float32 (an error of ~1e-7 per reset, not snnc's). Spikes are then compared exactly; Rockpool records ``vmem``/``isyn``
into float32 buffers, so those are compared to within float32 rounding of snnc's float64 values.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")
pytest.importorskip("rockpool", reason="pip install --no-deps rockpool==3.1.0 scipy==1.17.1")

from rockpool.nn.combinators import Sequential  # noqa: E402
from rockpool.nn.modules import (ExpSynTorch, LIFNeuronTorch, LIFTorch, LinearTorch,  # noqa: E402
                                 to_nir)

from rockpool.parameters import Constant  # noqa: E402

import snnc  # noqa: E402
from snnc.artifact import Artifact  # noqa: E402
from snnc.compiler import graph as g  # noqa: E402
from snnc.compiler.frontends.conventions import adapt, convention  # noqa: E402
from snnc.errors import RuleViolationError, SnncError, UnsupportedError  # noqa: E402
from snnc.runtime.api import Program, load_model  # noqa: E402


def lif_net(max_spikes: float = 2.0 ** 16) -> Sequential:
    """Two LIFTorch layers with non-trivial taus, thresholds and a Linear bias (float32, as built)."""
    torch.manual_seed(1)
    return Sequential(
        LinearTorch((5, 8), has_bias=True),
        LIFTorch(8, tau_mem=0.02, tau_syn=0.005, threshold=torch.full((8,), 0.7), max_spikes_per_dt=torch.tensor(float(max_spikes))),
        LinearTorch((8, 4)),
        LIFTorch(4, tau_mem=torch.tensor([0.004, 0.01, 0.03, 0.08]), tau_syn=torch.tensor([[0.002], [0.01], [0.02], [0.05]]),
                 threshold=torch.tensor([0.5, 0.9, 1.3, 2.0]), max_spikes_per_dt=torch.tensor(float(max_spikes))))


def export(net: Sequential, path: Path) -> Path:
    """Write Rockpool's own NIR export of ``net`` to ``path``."""
    nir.write(str(path), to_nir(net))
    return path


def to_float64(net: Sequential) -> Sequential:
    """Return ``net`` in float64 with fresh state (see the module docstring for the float32 buffers)."""
    net.reset_state()  # to_nir's trace ran the net; reset_state() makes float32 states: reset first
    net = net.to(torch.float64)
    for m in net.modules().values():
        if isinstance(m, LIFTorch):
            m.w_rec = m.w_rec.float()
            m.spikes = m.spikes.float()
    return net


def evolve(net: Sequential, x: np.ndarray) -> Tuple[np.ndarray, Dict[str, dict]]:
    """Evolve ``net``'s modules in turn on ``x`` (B, T, N); return the output and each module's record."""
    h = torch.as_tensor(x, dtype=torch.float64)
    recs = {}
    with torch.no_grad():
        for name, m in net.modules().items():
            h, _, rec = m(h, record=True)
            recs[name] = {k: v.detach().numpy() for k, v in rec.items()}
            h = h.detach().to(torch.float64)
    return h.numpy(), recs


def assert_float32_record(rock: np.ndarray, ours: np.ndarray) -> None:
    """Rockpool's float32 record equals snnc's float64 trace up to the float32 rounding of the record."""
    tol = np.spacing(np.abs(ours).astype(np.float32)).astype(np.float64)
    err = np.abs(rock.astype(np.float64) - ours)
    assert np.all(err <= tol), f"max error {err.max()} above float32 spacing"


def inputs(b: int, t: int, n: int, scale: float, seed: int = 0) -> np.ndarray:
    """Non-negative random input of shape (b, t, n)."""
    return np.random.default_rng(seed).random((b, t, n)) * scale


def test_convention_is_registered() -> None:
    assert convention("rockpool") == (1e-3, "exact")
    assert convention("Rockpool") == (1e-3, "exact")


def test_lif_net_multi_spike_equals_rockpool(tmp_path: Path) -> None:
    net = lif_net()
    path = export(net, tmp_path / "lif.nir")
    net = to_float64(net)
    x = inputs(3, 150, 5, 2.0)
    ref, recs = evolve(net, x)
    art = snnc.compile(str(path), "cpu", framework="rockpool")
    notes = " ".join(art.report["notes"])
    assert "reset by subtraction" in notes and "bias" in notes
    res = Program(art).run(x, record=True)
    np.testing.assert_array_equal(res.output, ref)
    assert ref.max() > 1, "the test must exercise several spikes per step"
    assert 0 < ref.mean() and (ref == 0).mean() > 0.2
    for name in ("1_LIFTorch", "3_LIFTorch"):
        np.testing.assert_array_equal(res.states[name]["spikes"], recs[name]["spikes"])
        assert_float32_record(recs[name]["vmem"], res.states[name]["v"])
        assert_float32_record(recs[name]["isyn"][..., 0], res.states[name]["i"])


def test_native_float32_rockpool_agrees_within_rounding(tmp_path: Path) -> None:
    """Rockpool as normally used (float32 ``Sequential``): a count may differ by one where float32
    rounding moves a voltage across a multiple of the threshold (2 of 1800 here)."""
    net = lif_net()
    path = export(net, tmp_path / "lif.nir")
    net.reset_state()
    x = inputs(3, 150, 5, 2.0)
    with torch.no_grad():
        ref = net(torch.as_tensor(x, dtype=torch.float32))[0].numpy().astype(np.float64)
    out = Program(snnc.compile(str(path), "cpu", framework="rockpool")).run(x).output
    diff = np.abs(out - ref)
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.01
    assert abs(out.sum() - ref.sum()) <= 1e-3 * ref.sum() and ref.max() > 1


def test_max_spikes_per_dt_is_given_to_adapt(tmp_path: Path) -> None:
    net = lif_net(max_spikes=2)
    path = export(net, tmp_path / "lif2.nir")
    net = to_float64(net)
    x = inputs(2, 120, 5, 2.0, seed=1)
    ref, _ = evolve(net, x)
    assert ref.max() == 2
    graph = adapt(load_model(str(path)), "rockpool", max_spikes_per_step=2)
    res = Program(snnc.compile(graph, "cpu", dt_s=1e-3, method="exact")).run(x)
    np.testing.assert_array_equal(res.output, ref)
    # the file does not store max_spikes_per_dt: Rockpool's default (2**16) gives other counts
    default = Program(snnc.compile(str(path), "cpu", framework="rockpool")).run(x)
    assert default.output.max() > 2


def test_lif_neuron_and_exp_syn_equal_rockpool(tmp_path: Path) -> None:
    torch.manual_seed(2)
    net = Sequential(LinearTorch((5, 6)),
                     LIFNeuronTorch(6, tau_mem=torch.linspace(0.005, 0.05, 6), threshold=torch.full((6,), 0.8)),
                     LinearTorch((6, 3)),
                     ExpSynTorch(3, tau=Constant(torch.tensor([0.003, 0.01, 0.04]))))
    path = export(net, tmp_path / "lifn.nir")
    net = to_float64(net)
    x = inputs(2, 100, 5, 3.0, seed=2)
    ref, recs = evolve(net, x)
    res = Program(snnc.compile(str(path), "cpu", framework="rockpool")).run(x, record=True)
    np.testing.assert_array_equal(res.states["1_LIFNeuronTorch"]["spikes"], recs["1_LIFNeuronTorch"]["spikes"])
    assert recs["1_LIFNeuronTorch"]["spikes"].max() > 1
    assert_float32_record(recs["1_LIFNeuronTorch"]["vmem"], res.states["1_LIFNeuronTorch"]["v"])
    # ExpSynTorch returns its synaptic current, recorded into a float32 buffer
    assert_float32_record(ref, res.output)
    assert np.abs(ref).max() > 0.1


def test_other_dt_is_refused_then_accepted_with_it(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = Sequential(LinearTorch((4, 5)), LIFTorch(5, tau_mem=0.01, tau_syn=0.004, dt=5e-4))
    path = export(net, tmp_path / "dt.nir")
    with pytest.raises(UnsupportedError, match=r"dt in \[0.0005") as e:
        snnc.compile(str(path), "cpu", framework="rockpool")
    assert e.value.node == "1_LIFTorch"
    net = to_float64(net)
    x = inputs(2, 80, 4, 3.0, seed=3)
    ref, _ = evolve(net, x)
    graph = adapt(load_model(str(path)), "rockpool", export_dt_s=5e-4)
    res = Program(snnc.compile(graph, "cpu", dt_s=5e-4, method="exact")).run(x)
    np.testing.assert_array_equal(res.output, ref)
    assert ref.sum() > 0


def test_cli_cpu_equals_rockpool_and_loihi_refuses(tmp_path: Path, cli) -> None:
    net = lif_net()
    export(net, tmp_path / "net.nir")
    net = to_float64(net)
    x = inputs(2, 60, 5, 2.0, seed=4)
    ref, _ = evolve(net, x)
    p = cli("snn-compile", "net.nir", "--target", "cpu", "--framework", "rockpool", "-o", "net.snnc")
    assert p.returncode == 0, p.stderr
    art = Artifact.load(str(tmp_path / "net.snnc"))
    assert art.manifest["framework"] == "rockpool"
    np.testing.assert_array_equal(Program(art).run(x).output, ref)
    p = cli("snn-compile", "net.nir", "--target", "loihi", "--framework", "rockpool", "-o", "net.loihi.snnc")
    assert p.returncode == 2
    assert "loihi.neuron.reset" in p.stderr and "1_LIFTorch" in p.stderr and "subtract" in p.stderr
    assert not (tmp_path / "net.loihi.snnc").exists()


def test_loihi_refuses_by_rule_and_nir_export_refuses(tmp_path: Path) -> None:
    path = export(lif_net(), tmp_path / "net.nir")
    with pytest.raises(RuleViolationError) as e:
        snnc.compile(str(path), "loihi", framework="rockpool")
    rules = {(v.rule, v.node) for v in e.value.violations}
    assert ("loihi.neuron.reset", "1_LIFTorch") in rules and ("loihi.neuron.reset", "3_LIFTorch") in rules
    from snnc.runtime.export import export_artifact_nir

    art = snnc.compile(str(path), "cpu", framework="rockpool")
    with pytest.raises(UnsupportedError, match="subtraction") as e:
        export_artifact_nir(art)
    assert e.value.node == "1_LIFTorch"


def _speck_graph(**neuron: object) -> g.Graph:
    rng = np.random.default_rng(5)
    gr = g.Graph(source="<speck test>")
    gr.nodes["input"] = g.Input(shape=(1, 8, 8))
    gr.nodes["conv"] = g.Conv2d(weight=rng.normal(size=(2, 1, 3, 3)), bias=np.zeros(2), stride=(1, 1),
                                padding=(1, 1), dilation=(1, 1), groups=1)
    gr.nodes["if"] = g.IF(r=np.array([1e3]), v_threshold=np.array([1.0]), v_reset=np.array([0.0]), **neuron)
    gr.nodes["output"] = g.Output()
    gr.edges = [("input", "conv"), ("conv", "if"), ("if", "output")]
    return gr


def test_speck_refuses_capped_multi_spike_neurons() -> None:
    snnc.compile(_speck_graph(), "speck")  # control: NIR's reset to zero maps
    art = snnc.compile(_speck_graph(reset_mode="subtract"), "speck")  # sinabs' MembraneSubtract: Speck's own reset
    assert "reset 'subtract' and spike mode 'single' taken from the neurons" in " ".join(art.report["speck_notes"])
    with pytest.raises(RuleViolationError) as e:  # Rockpool's capped multi-spike has no Speck equivalent
        snnc.compile(_speck_graph(reset_mode="subtract", max_spikes_per_step=3), "speck")
    assert [(v.rule, v.node) for v in e.value.violations] == [("speck.neuron.reset_mode", "if")]


def test_neuron_spike_mode_attributes() -> None:
    # NIR's defaults are not serialised: existing graphs keep their fingerprints
    for kind in (g.IF, g.LIF, g.CubaLIF):
        attrs = kind().attrs()
        assert "reset_mode" not in attrs and "max_spikes_per_step" not in attrs
    node = g.CubaLIF(reset_mode="subtract", max_spikes_per_step=4)
    assert node.attrs() == {"reset_mode": "subtract", "max_spikes_per_step": 4}
    back = g.node_from("CubaLIF", node.attrs(), node.arrays())
    assert back.reset_mode == "subtract" and back.max_spikes_per_step == 4
    for bad in ({"reset_mode": "bogus"}, {"max_spikes_per_step": 2}, {"max_spikes_per_step": 0},
                {"reset_mode": "subtract", "v_reset": np.array([0.5])},
                {"reset_mode": "subtract", "max_spikes_per_step": 2, "v_threshold": np.array([-1.0])}):
        with pytest.raises(SnncError):
            g.LIF(**bad).infer_shape((3,))


def test_multi_spike_step_counts_and_subtracts() -> None:
    node = g.IF(r=np.array([1.0]), v_threshold=np.array([0.5]), reset_mode="subtract", max_spikes_per_step=3)
    gr = g.Graph(nodes={"input": g.Input(shape=(4,)), "n": node, "output": g.Output()},
                 edges=[("input", "n"), ("n", "output")])
    x = np.array([[[0.4, 0.6, 1.3, 2.9], [0.2, 0.0, 0.0, 0.0]]])  # (batch 1, T 2, 4) in v units (dt=1)
    res = Program(snnc.compile(gr, "cpu", dt_s=1.0)).run(x, record=True)
    np.testing.assert_array_equal(res.output[0, 0], [0, 1, 2, 3])
    np.testing.assert_allclose(res.states["n"]["v"][0, 0], [0.4, 0.1, 0.3, 1.4])
    np.testing.assert_array_equal(res.output[0, 1], [1, 0, 0, 2])
