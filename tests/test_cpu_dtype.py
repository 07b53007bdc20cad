"""The cpu target's ``-O dtype=float32``: the float simulator in single precision, as the CLI gives it.

The reference is snnc's own neuron modules (``snnc.models.neurons``) run by torch in float32, so
this checks the option's path (CLI, artifact, run), not the neuron arithmetic against a framework
(that is tests/test_interop_*.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

import snnc
from snnc.compiler.nir_export import write_nir
from snnc.errors import RuleViolationError
from snnc.models.neurons import LIF, run_sequence


def _model() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), LIF.from_beta((6, 8, 8), beta=0.8, v_threshold=0.5),
                      nn.Flatten(), nn.Linear(384, 10), LIF.from_beta((10,), beta=0.9, v_threshold=0.3))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(2.0)
    return m


def test_cli_dtype_float32_runs_in_float32_and_equals_torch_float32(tmp_path: Path, cli) -> None:
    """``snn-compile m.nir --target cpu -O dtype=float32`` then ``snn-run``: float32 output, spikes of torch float32."""
    model = _model().float()
    x = (np.random.default_rng(1).random((4, 30, 2, 8, 8)) < 0.25).astype(np.float32)
    with torch.no_grad():
        ref = run_sequence(model, torch.as_tensor(x)).numpy()
    assert ref.sum() > 10, "the test model must spike to be meaningful"
    write_nir(snnc.load_model(model, (2, 8, 8)), str(tmp_path / "m.nir"))
    np.save(tmp_path / "x.npy", x)
    r = cli("snn-compile", "m.nir", "--target", "cpu", "-O", "dtype=float32", "-o", "m.snnc")
    assert r.returncode == 0, r.stderr
    r = cli("snn-run", "m.snnc", "--input", "x.npy", "-o", "out.npz")
    assert r.returncode == 0, r.stderr
    out = np.load(tmp_path / "out.npz")["output"]
    np.testing.assert_array_equal(out, ref)
    res = snnc.load(str(tmp_path / "m.snnc")).run(x)
    assert res.output.dtype == np.float32
    assert snnc.Program(snnc.compile(str(tmp_path / "m.nir"), "cpu")).run(x).output.dtype == np.float64


def test_unknown_dtype_is_refused_with_the_rule(tmp_path: Path, cli) -> None:
    """A precision the simulator does not run in is a rule violation naming the found value and the choices."""
    write_nir(snnc.load_model(_model(), (2, 8, 8)), str(tmp_path / "m.nir"))
    try:
        snnc.compile(str(tmp_path / "m.nir"), "cpu", dtype="float16")
    except RuleViolationError as e:
        assert [v.rule for v in e.violations] == ["float-dtype"]
        assert "float16" in str(e) and "float32" in str(e)
    else:
        raise AssertionError("dtype=float16 was accepted")
    r = cli("snn-compile", "m.nir", "--target", "cpu", "-O", "dtype=float16", "-o", "m.snnc")
    assert r.returncode != 0 and "Traceback" not in r.stderr and "float-dtype" in r.stderr
