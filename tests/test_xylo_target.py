"""The ``xylo`` target as users meet it: CLI compile and run of the shipped spoken-digit model, its
deployed accuracy on held-out FSDD utterances, rules reported together, recurrent graphs, options,
the configuration file and the device backend without samna (exit 3)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import snnc
from snnc.compiler import graph as g
from snnc.errors import ArtifactError, InputError, RuleViolationError
from snnc.models import zoo
from snnc.models.train import evaluate_checkpoint, load_data
from snnc.targets.xylo.network import XyloNetwork
from snnc.targets.xylo.target import network_from_payload
from xylo_helpers import xylosim_run

REPO = Path(__file__).resolve().parents[1]
CKPT = REPO / "snnc" / "models" / "checkpoints" / "fsdd_xylo.pt"


def test_cli_compiles_and_runs_the_spoken_digit_model(tmp_path: Path, cli) -> None:
    """``snn-compile fsdd_xylo.pt --target xylo`` then ``snn-run`` on held-out FSDD spikes (README's commands)."""
    _, val, _ = load_data("fsdd16", 10000, 100)
    x, y = val.batch(np.arange(0, len(val), 15))
    np.savez(tmp_path / "fsdd16_val.npz", x=x)
    art = tmp_path / "fsdd_xylo.xylo.snnc"
    r = cli("snn-compile", str(CKPT), "--target", "xylo", "--dt", "0.01", "-o", str(art),
            "--report", str(tmp_path / "report.json"))
    assert r.returncode == 0, r.stderr
    r = cli("snn-run", str(art), "--input", str(tmp_path / "fsdd16_val.npz"), "-o", str(tmp_path / "out.npz"))
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out.npz") as z:
        acc = float(np.mean(z["predictions"] == y))
    assert acc >= 0.7, acc
    import json

    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["latency_steps"] == 1 and rep["timing_exact"]
    assert {"hidden", "output"} <= set(rep["quantization"])
    assert "rms_rel_weight_error" in rep["quantization"]["hidden"]


def test_deployed_accuracy_within_1_5_points_of_float() -> None:
    """Held-out FSDD (indices 5..9, 300 utterances): Xylo reference simulator vs the float model."""
    ev = evaluate_checkpoint(str(CKPT), deploy_target="xylo")
    f, d = ev["float"]["accuracy"], ev["deployed"]["accuracy"]
    assert ev["deployed"]["n"] == 300
    assert abs(f - d) <= 0.015, (f, d)
    assert f >= 0.8


def test_device_backend_without_samna_exits_3(tmp_path: Path, cli) -> None:
    art = tmp_path / "m.snnc"
    snnc.compile(str(CKPT), target="xylo", dt_s=1e-2).save(str(art))
    np.save(tmp_path / "x.npy", np.zeros((1, 5, 16)))
    r = cli("snn-run", str(art), "--input", str(tmp_path / "x.npy"), "--backend", "device")
    assert r.returncode == 3, r.stderr
    assert "samna" in r.stderr and "Traceback" not in r.stderr


def _cuba(n: int, spikes: int, subtract: bool = True) -> g.CubaLIF:
    return g.CubaLIF(tau_syn=np.full(n, 0.02), tau_mem=np.full(n, 0.05), r=np.ones(n), v_leak=np.zeros(n),
                     w_in=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n),
                     reset_mode="subtract" if subtract else "to_v_reset", max_spikes_per_step=spikes)


def _graph(n_in: int, n_hidden: int, n_out: int, hidden: g.Node, out: g.Node) -> g.Graph:
    rng = np.random.default_rng(0)
    gr = g.Graph(source="test")
    gr.nodes.update(input=g.Input(shape=(n_in,)), w1=g.Linear(weight=rng.normal(size=(n_hidden, n_in))),
                    hidden=hidden, w2=g.Linear(weight=rng.normal(size=(n_out, n_hidden))), out=out, output=g.Output())
    gr.edges = [("input", "w1"), ("w1", "hidden"), ("hidden", "w2"), ("w2", "out"), ("out", "output")]
    return gr


def test_every_violation_is_reported_at_once() -> None:
    gr = _graph(20, 30, 10, _cuba(30, 1, subtract=False), _cuba(10, 1))
    with pytest.raises(RuleViolationError) as e:
        snnc.compile(gr, target="xylo", dt_s=1e-3)
    rules = {v.rule for v in e.value.violations}
    assert {"xylo.neuron.reset", "xylo.neuron.spikes"} <= rules
    gr = _graph(20, 30, 10, _cuba(30, 31), _cuba(10, 1))
    with pytest.raises(RuleViolationError) as e:
        snnc.compile(gr, target="xylo", dt_s=1e-3)
    assert {v.rule for v in e.value.violations} == {"xylo.input.channels", "xylo.output.count"}
    assert "hint" in str(e.value) or "--" in str(e.value)


def test_lif_model_is_refused_by_name() -> None:
    torch.manual_seed(0)
    m = zoo.build("fsdd_mlp", input_shape=(16,))
    with pytest.raises(RuleViolationError) as e:
        snnc.compile(m, target="xylo", dt_s=1e-2)
    assert {"xylo.neuron.kind"} <= {v.rule for v in e.value.violations}


def test_recurrent_graph_lowers_to_recurrent_weights() -> None:
    """NIR's recurrent edge hidden -> fc_rec -> hidden becomes Xylo's recurrent weights, timing kept."""
    torch.manual_seed(1)
    m = zoo.build("fsdd_xylo", hidden=24, recurrent=True)
    with torch.no_grad():
        m.fc_rec.weight.normal_(0.0, 0.2)
    art = snnc.compile(m, target="xylo", dt_s=1e-2)
    net, _ = network_from_payload(art.payload)
    rep = art.report
    assert rep["timing_exact"] and rep["population_lag_steps"] == {"hidden": 0, "out": 1}
    w = m.fc_rec.weight.detach().numpy().T  # (pre, post), as the chip's recurrent matrix
    q = net.weights_rec[:, :, 0]
    assert np.count_nonzero(q) > 0.9 * w.size
    assert np.all(np.sign(q) == np.where(q != 0, np.sign(w), 0))
    x = np.random.default_rng(0).integers(0, 3, size=(40, 16))
    res = snnc.Program(art).run(x[None].astype(float), record=True)
    ref = xylosim_run(net, x)
    assert int(ref["Spikes"].sum()) > 0
    np.testing.assert_array_equal(res.states["hidden"]["spikes"][0], ref["Spikes"])
    np.testing.assert_array_equal(res.states["out"]["spikes"][0], ref["output"])


def test_options_chips_and_quantisers() -> None:
    torch.manual_seed(0)
    m = zoo.build("fsdd_xylo", hidden=32)
    for opts in ({"quantize": "global"}, {"quantize": "channel", "weight_shift": 0}, {"chip": "imu"},
                 {"threshold_rounding": "round", "dash_from": "tau"}):
        art = snnc.compile(m, target="xylo", dt_s=1e-2, **opts)
        assert art.report["quantization"]["hidden"]["method"] == opts.get("quantize", "channel")
    with pytest.raises(InputError):
        snnc.compile(m, target="xylo", dt_s=1e-2, quantise="global")
    with pytest.raises(InputError):
        snnc.compile(m, target="xylo", dt_s=1e-2, weight_shift=9)


def test_configuration_file_round_trip() -> None:
    torch.manual_seed(0)
    art = snnc.compile(zoo.build("fsdd_xylo", hidden=16), target="xylo", dt_s=1e-2)
    net, _ = network_from_payload(art.payload)
    again = XyloNetwork.from_config(net.to_config())
    for k, v in net.spec().items():
        np.testing.assert_array_equal(np.asarray(getattr(again, k)), np.asarray(v))
    with pytest.raises(ArtifactError):
        XyloNetwork.from_config('{"format": "something else"}')
    with pytest.raises(ArtifactError):
        XyloNetwork.from_config(net.to_config().replace('"threshold_out":[', '"threshold_out":[1,'))
