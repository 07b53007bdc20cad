"""Issue 3: snn-compile --target loihi writes an artifact; snn-run gives the same output on sim and lava."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from snnc.models.checkpoint import save_checkpoint
from snnc.models.data.nmnist import nmnist_small_dir
from snnc.models.zoo import build

LAVA_PY = Path(__file__).resolve().parents[1] / ".lava-venv" / "bin" / "python"


@pytest.mark.skipif(not (LAVA_PY.exists() or os.environ.get("SNNC_LAVA_PYTHON")), reason="no Lava venv")
def test_cli_loihi_sim_equals_lava_on_real_events(tmp_path: Path, cli) -> None:
    torch.manual_seed(0)
    model = build("nmnist_mlp", hidden=32)
    with torch.no_grad():
        model[1].weight.mul_(40.0)   # strong enough that the hidden layer spikes on real events
        model[3].weight.mul_(20.0)
    save_checkpoint(str(tmp_path / "m.pt"), "nmnist_mlp", {"hidden": 32}, model)
    r = cli("snn-compile", "m.pt", "--target", "loihi", "-o", "m.snnc", "--report", "rep.json")
    assert r.returncode == 0, r.stderr
    sample = str(nmnist_small_dir() / "1.bin")
    outs = {}
    for backend in ("sim", "lava"):
        r = cli("snn-run", "m.snnc", "--input", sample, "--steps", "120", "--backend", backend, "-o", f"{backend}.npz")
        assert r.returncode == 0, r.stderr
        outs[backend] = np.load(tmp_path / f"{backend}.npz")["output"]
    assert outs["sim"].sum() > 0, "the test network must spike at the output"
    np.testing.assert_array_equal(outs["sim"], outs["lava"])


def test_cli_lava_missing_interpreter_is_exit_3(tmp_path: Path, cli, monkeypatch) -> None:
    model = build("nmnist_mlp", hidden=8)
    save_checkpoint(str(tmp_path / "m.pt"), "nmnist_mlp", {"hidden": 8}, model)
    assert cli("snn-compile", "m.pt", "--target", "loihi", "-o", "m.snnc").returncode == 0
    np.save(tmp_path / "x.npy", np.zeros((1, 5, 2, 34, 34)))
    monkeypatch.setenv("SNNC_LAVA_PYTHON", str(tmp_path / "no-such-python"))
    r = cli("snn-run", "m.snnc", "--input", "x.npy", "--backend", "lava")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "no-such-python" in r.stderr
