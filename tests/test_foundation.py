"""Issue 2: torch -> NIR -> snn-compile (cpu) -> snn-run equals snnc's torch modules; determinism; bad inputs.

The torch reference here is snnc's own neuron modules (``snnc.models.neurons``), which step with
``snnc.dynamics`` as the cpu target does: these tests check the user's path (export to NIR, the CLI,
the artifact, the run), not the neuron arithmetic against an outside framework. Equality with the
frameworks, computed by the frameworks, is in tests/test_interop_*.py.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch
from torch import nn

import snnc
from snnc.compiler.nir_export import write_nir
from snnc.models.neurons import IF, LIF, CubaLIF, run_sequence


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1), LIF.from_beta((6, 8, 8), beta=0.8, v_threshold=0.5),
        nn.AvgPool2d(2), IF((6, 4, 4), v_threshold=0.4),
        nn.Flatten(), nn.Linear(96, 10),
        CubaLIF((10,), tau_syn_s=5e-3, tau_mem_s=2e-2, r=20.0, w_in=5.0, v_threshold=0.3))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(2.0)
    return m.double()


def spikes_in(seed: int = 1, batch: int = 4, steps: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps, 2, 8, 8)) < 0.25).astype(np.float64)


def test_torch_nir_compile_run_equals_snnc_torch_modules(tmp_path: Path, cli) -> None:
    model = make_model()
    x = spikes_in()
    with torch.no_grad():
        ref = run_sequence(model, torch.as_tensor(x)).numpy()
    assert ref.sum() > 10, "test model must spike to be meaningful"
    write_nir(snnc.load_model(model, (2, 8, 8)), str(tmp_path / "m.nir"))
    np.save(tmp_path / "x.npy", x)
    r = cli("snn-compile", "m.nir", "--target", "cpu", "-o", "m.snnc", "--report", "rep.json", "--dump-ir", "ir")
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "ir").glob("*.json"))) >= 8
    r = cli("snn-run", "m.snnc", "--input", "x.npy", "-o", "out.npz", "--plot", "raster.png")
    assert r.returncode == 0, r.stderr
    out = np.load(tmp_path / "out.npz")["output"]
    np.testing.assert_array_equal(out, ref)
    assert (tmp_path / "raster.png").stat().st_size > 1000
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["integration"] == "exact" and set(rep["layers"]) and rep["notes"]


def test_direct_torch_and_euler_recorded_equal_snnc_torch_modules() -> None:
    model = nn.Sequential(nn.Linear(20, 8), LIF.from_beta((8,), beta=0.9, method="euler", v_threshold=0.5)).double()
    x = (np.random.default_rng(0).random((2, 25, 20)) < 0.4).astype(np.float64)
    with torch.no_grad():
        ref = run_sequence(model, torch.as_tensor(x)).numpy()
    art = snnc.compile(model, target="cpu", input_shape=(20,), method="euler")
    assert art.manifest["options"]["method"] == "euler"
    res = snnc.Program(art).run(x, record=True)
    np.testing.assert_array_equal(res.output, ref)
    assert ref.sum() > 0
    (layer,) = res.states
    assert res.states[layer]["v"].shape == (2, 25, 8)
    # the same NIR node integrated exactly gives a different voltage trace
    exact = snnc.Program(snnc.compile(model, target="cpu", input_shape=(20,), method="exact")).run(x, record=True)
    assert not np.array_equal(exact.states[layer]["v"], res.states[layer]["v"])


def test_compile_is_byte_identical(tmp_path: Path) -> None:
    a = snnc.compile(make_model(), target="cpu", input_shape=(2, 8, 8)).save(str(tmp_path / "a.snnc"))
    b = snnc.compile(make_model(), target="cpu", input_shape=(2, 8, 8)).save(str(tmp_path / "b.snnc"))
    assert Path(a).read_bytes() == Path(b).read_bytes()
    c = snnc.compile(make_model(seed=3), target="cpu", input_shape=(2, 8, 8)).to_bytes()
    assert c != Path(a).read_bytes()


def test_event_input_binned_by_dt() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3), LIF.from_beta((3,), beta=0.5, v_threshold=0.1))
    art = snnc.compile(model, target="cpu", input_shape=(2, 4, 4), dt_s=1e-3)
    from snnc.models.data.events import make_events

    ev = make_events([100, 1500, 1600], [0, 3, 3], [1, 2, 2], [0, 1, 1])
    from snnc.runtime.inputs import to_dense_batch

    dense = to_dense_batch(ev, (2, 4, 4), 1000, steps=4)
    assert dense.shape == (1, 4, 2, 4, 4)
    assert dense[0, 0, 0, 1, 0] == 1 and dense[0, 1, 1, 2, 3] == 2 and dense.sum() == 3
    res = snnc.Program(art).run(ev, steps=4)
    assert res.output.shape == (1, 4, 3)


def test_recurrent_nir_graph_uses_previous_step() -> None:
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([1])), "fc": nir.Affine(np.array([[1.0]]), np.zeros(1)),
               "lif": nir.LIF(tau=np.array([1e3]), r=np.array([1e6]), v_leak=np.zeros(1),
                              v_threshold=np.array([1.0]), v_reset=np.zeros(1)),
               "rec": nir.Linear(np.array([[-1.0]])), "out": nir.Output(np.array([1]))},
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")], type_check=False)
    art = snnc.compile(graph, target="cpu", dt_s=1e-3, method="exact")
    # tau = 1000 s leaks 1e-6 per step and r = tau/dt makes the input gain r*(1 - exp(-dt/tau)) ~ 1, so
    # v(t) = v(t-1) + 0.6 - z(t-1): the recurrent edge delivers the previous step's spike. From v = 0:
    # 0.6, 1.2 (spike, reset to 0), -0.4 (the spike arrives), 0.2, 0.8, 1.4 (spike, 0), -0.4, ...
    # (if the edge delivered the same step's spike, the step after a spike would read 0.6 - 1 + 0.6).
    res = snnc.Program(art).run(np.full((1, 10, 1), 0.6), record=True)
    np.testing.assert_array_equal(res.output[0, :, 0], [0, 1, 0, 0, 0, 1, 0, 0, 0, 1])
    np.testing.assert_allclose(res.states["lif"]["v"][0, :, 0], [0.6, 0, -0.4, 0.2, 0.8, 0, -0.4, 0.2, 0.8, 0],
                               atol=1e-5)
    assert art.report["layers"]["lif"]["kind"] == "LIF"


# ----------------------------------------------------------------------------- bad inputs
def _nir_file(path: Path, **over) -> Path:
    w = over.get("w", np.ones((3, 4)))
    nodes = {"in": nir.Input(np.array([4])), "fc": nir.Affine(w, np.zeros(w.shape[0])),
             "lif": nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)),
             "out": nir.Output(np.array([3]))}
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")], type_check=False))
    return path


def _check_error(r, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert "error:" in r.stderr
    for w in words:
        assert w.lower() in r.stderr.lower(), (w, r.stderr)


def test_missing_file(cli) -> None:
    _check_error(cli("snn-compile", "nope.nir", "--target", "cpu"), "nope.nir", "not found")


def test_neither_nir_nor_torch(tmp_path: Path, cli) -> None:
    (tmp_path / "m.txt").write_text("hello")
    _check_error(cli("snn-compile", "m.txt"), "neither a NIR", "m.txt")


def test_truncated_nir(tmp_path: Path, cli) -> None:
    data = _nir_file(tmp_path / "full.nir").read_bytes()
    (tmp_path / "cut.nir").write_bytes(data[: len(data) // 2])
    _check_error(cli("snn-compile", "cut.nir"), "truncated", "cut.nir")


def test_unknown_nir_node_type(tmp_path: Path, cli) -> None:
    p = _nir_file(tmp_path / "m.nir")
    with h5py.File(p, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif/type"] = np.bytes_("Izhikevich")
    _check_error(cli("snn-compile", "m.nir"), "Izhikevich", "lif", "not supported")


def test_shape_mismatch(tmp_path: Path, cli) -> None:
    p = tmp_path / "m.nir"
    nodes = {"in": nir.Input(np.array([4])), "fc": nir.Affine(np.ones((3, 4)), np.zeros(3)),
             "fc2": nir.Affine(np.ones((2, 5)), np.zeros(2)), "out": nir.Output(np.array([2]))}
    nir.write(str(p), nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "fc2"), ("fc2", "out")], type_check=False))
    _check_error(cli("snn-compile", "m.nir"), "fc2", "expects input (5,)", "(3,)")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_weights(tmp_path: Path, cli, bad: float) -> None:
    w = np.ones((3, 4))
    w[1, 2] = bad
    _nir_file(tmp_path / "m.nir", w=w)
    _check_error(cli("snn-compile", "m.nir"), "fc", "weight", "nan" if np.isnan(bad) else "inf")


def test_artifact_with_one_byte_changed(tmp_path: Path, cli) -> None:
    _nir_file(tmp_path / "m.nir")
    assert cli("snn-compile", "m.nir", "-o", "m.snnc").returncode == 0
    np.save(tmp_path / "x.npy", np.ones((1, 5, 4)))
    assert cli("snn-run", "m.snnc", "--input", "x.npy").returncode == 0
    data = bytearray((tmp_path / "m.snnc").read_bytes())
    for pos in (3, len(data) // 2, len(data) - 40, len(data) - 1):
        mod = bytearray(data)
        mod[pos] ^= 0x01
        (tmp_path / "bad.snnc").write_bytes(bytes(mod))
        _check_error(cli("snn-run", "bad.snnc", "--input", "x.npy"), "bad.snnc")


def test_unknown_target(tmp_path: Path, cli) -> None:
    _nir_file(tmp_path / "m.nir")
    _check_error(cli("snn-compile", "m.nir", "--target", "truenorth"), "unknown target", "truenorth", "cpu")


def test_foreign_artifact(tmp_path: Path, cli) -> None:
    (tmp_path / "f.snnc").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    np.save(tmp_path / "x.npy", np.ones((1, 5, 4)))
    _check_error(cli("snn-run", "f.snnc", "--input", "x.npy"), "not an snnc artifact")


def test_framework_flag_sets_convention(tmp_path: Path, cli) -> None:
    _nir_file(tmp_path / "m.nir")
    assert cli("snn-compile", "m.nir", "--framework", "snntorch", "-o", "m.snnc").returncode == 0
    art = snnc.artifact.Artifact.load(str(tmp_path / "m.snnc"))
    assert art.manifest["options"]["dt_s"] == 1e-4 and art.manifest["options"]["method"] == "euler"
    assert art.manifest["framework"] == "snntorch"
    assert cli("snn-compile", "m.nir", "--framework", "snntorch", "--dt", "1e-3", "-o", "n.snnc").returncode == 0
    assert snnc.artifact.Artifact.load(str(tmp_path / "n.snnc")).manifest["options"]["dt_s"] == 1e-3
