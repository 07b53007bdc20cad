"""snn-train: one tiny epoch, checkpoint/resume, a 2-process DDP (gloo) run, and the metrics."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import snnc
from snnc.models import zoo
from snnc.models.checkpoint import load_torch_file
from snnc.models.data.nmnist import nmnist_small_dir
from snnc.models.metrics import (ENERGY_MODELS, ActivityRecorder, accuracy, count_predictions,
                                 energy_per_inference, result_metrics)
from snnc.models.neurons import run_sequence

REPO = Path(__file__).resolve().parents[1]
needs_data = pytest.mark.skipif(not (nmnist_small_dir() / "labels.txt").is_file(),
                                reason=f"real N-MNIST-small data not found at {nmnist_small_dir()} (set SNNC_DATA)")
TINY = ["--limit-train", "24", "--limit-val", "12", "--steps", "25", "--batch-size", "8", "--quiet"]


def _train(tmp_path: Path, *args: str, launcher: tuple = ()) -> subprocess.CompletedProcess:
    code = "import sys; from snnc.models.train import main; sys.exit(main(sys.argv[1:]))"
    cmd = (list(launcher) if launcher else [sys.executable, "-c", code]) + list(args)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=240, env=env)


@needs_data
def test_train_one_tiny_epoch_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "mlp.pt"
    r = _train(tmp_path, "nmnist_mlp", "--data", "nmnist", "--epochs", "1", "--out", str(out), "--seed", "3",
               "--lr", "0.003", "--keep-resume", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    model, shape = load_torch_file(str(out))
    assert shape == (2, 34, 34)
    ck = torch.load(out, weights_only=True)
    assert ck["extra"]["epoch"] == 1 and ck["extra"]["dt_s"] == 1e-3 and ck["extra"]["n_steps"] == 25
    assert ck["extra"]["data"]["n_train"] == 24 and ck["extra"]["recipe"]["lr"] == 0.003
    assert "snn-train nmnist_mlp" in ck["extra"]["command"]
    assert (tmp_path / "mlp.pt.resume").exists()
    w1 = ck["state_dict"]["1.weight"].clone()
    r = _train(tmp_path, "nmnist_mlp", "--epochs", "2", "--out", str(out), "--seed", "3", "--lr", "0.003",
               "--resume", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    ck2 = torch.load(out, weights_only=True)
    assert ck2["extra"]["epoch"] == 2 and len(ck2["extra"]["history"]) == 2
    assert not torch.equal(ck2["state_dict"]["1.weight"], w1)
    assert not (tmp_path / "mlp.pt.resume").exists()  # removed after the last epoch
    # the checkpoint compiles and runs through the public API
    art = snnc.compile(str(out), target="cpu", dt_s=1e-3)
    assert art.manifest["input_shape"] == [2, 34, 34]


@needs_data
def test_train_is_reproducible_with_a_seed(tmp_path: Path) -> None:
    outs = []
    for name in ("a.pt", "b.pt"):
        r = _train(tmp_path, "nmnist_mlp", "--epochs", "1", "--out", name, "--seed", "5", *TINY)
        assert r.returncode == 0, r.stderr[-3000:]
        outs.append(torch.load(tmp_path / name, weights_only=True)["state_dict"])
    for k in outs[0]:
        assert torch.equal(outs[0][k], outs[1][k]), k


@needs_data
def test_train_rejects_bad_arguments(tmp_path: Path) -> None:
    r = _train(tmp_path, "no_such_model", "--out", "x.pt")
    assert r.returncode == 2 and "unknown zoo model" in r.stderr
    r = _train(tmp_path, "nmnist_mlp", "--out", "x.pt", "--resume")
    assert r.returncode == 2 and "nothing to resume" in r.stderr
    r = _train(tmp_path, "nmnist_mlp", "--out", "x.pt", "--stage", "2")
    assert r.returncode == 2 and "no training stages" in r.stderr


@needs_data
def test_ddp_two_processes_gloo(tmp_path: Path) -> None:
    launcher = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                "--nproc_per_node", "2", "-m", "snnc.models.train")
    r = _train(tmp_path, "nmnist_mlp", "--epochs", "1", "--out", "ddp.pt", "--seed", "1", *TINY, launcher=launcher)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    ck = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert ck["extra"]["world_size"] == 2 and ck["extra"]["epoch"] == 1
    # the validation accuracy summed over both ranks (all_reduce) is the single-process accuracy of the
    # saved weights on the same 12 validation samples
    from snnc.models.train import evaluate_checkpoint

    single = evaluate_checkpoint(str(tmp_path / "ddp.pt"), limit_val=12)["float"]
    assert single["n"] == 12 and ck["extra"]["data"]["n_val"] == 12
    assert ck["extra"]["history"][0]["val_accuracy"] == pytest.approx(single["accuracy"], abs=1e-9), single
    model, _ = load_torch_file(str(tmp_path / "ddp.pt"))
    assert isinstance(model, torch.nn.Module)


@needs_data
def test_skipsnn_two_stage_training(tmp_path: Path) -> None:
    common = ["--limit-train", "8", "--limit-val", "8", "--steps", "60", "--batch-size", "8", "--quiet",
              "--kwargs", '{"hidden": 16}']
    r = _train(tmp_path, "skipsnn", "--stage", "1", "--epochs", "1", "--out", "s1.pt", *common)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _train(tmp_path, "skipsnn", "--stage", "2", "--epochs", "1", "--init", "s1.pt", "--out", "s2.pt", *common)
    assert r.returncode == 0, r.stderr[-3000:]
    s1 = torch.load(tmp_path / "s1.pt", weights_only=True)
    s2 = torch.load(tmp_path / "s2.pt", weights_only=True)
    # stage 2 keeps the main net frozen and trains the controller
    assert torch.equal(s1["state_dict"]["fc1.weight"], s2["state_dict"]["fc1.weight"])
    assert not torch.equal(s1["state_dict"]["ctrl_o.weight"], s2["state_dict"]["ctrl_o.weight"])
    assert s1["extra"]["history"][0]["val_awake_ratio"] == 1.0
    assert 0.0 <= s2["extra"]["history"][0]["val_awake_ratio"] <= 1.0
    # stage 2's checkpoint carries stage 1's training: command, curve and time
    assert s2["extra"]["init"] == "s1.pt"
    assert s2["extra"]["init_command"] == s1["extra"]["command"]
    assert s2["extra"]["init_history"] == s1["extra"]["history"]
    assert s2["extra"]["init_train_seconds"] == s1["extra"]["train_seconds"]


# --------------------------------------------------------------------------- metrics
def test_count_predictions_and_accuracy() -> None:
    out = np.zeros((3, 4, 3))
    out[0, :, 2] = 1
    out[1, 0, 1] = out[1, 1, 0] = 1  # tie 1-1: first index wins, as Result.predictions
    np.testing.assert_array_equal(count_predictions(out), [2, 0, 0])
    assert accuracy([2, 0, 1], [2, 0, 0]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy([1, 2], [1])


def test_recorder_synops_equal_cpu_result_synops() -> None:
    torch.manual_seed(0)
    model = zoo.build("nmnist_mlp", hidden=20, init_gain=6.0).double()
    with torch.no_grad():
        model[1].weight[:, :100] = 0.0  # zero weights do not count as synaptic operations
    rng = np.random.default_rng(0)
    x = (rng.random((2, 30, 2, 34, 34)) < 0.05) * rng.integers(1, 3, (2, 30, 2, 34, 34))
    x = x.astype(np.float64)
    with ActivityRecorder(model) as rec, torch.no_grad():
        out = run_sequence(model, torch.as_tensor(x))
    st = rec.stats(samples=2, steps=30)
    res = snnc.Program(snnc.compile(model, target="cpu", dt_s=1e-3)).run(x)
    np.testing.assert_array_equal(res.output, out.numpy())
    summary = st.summary()
    m = result_metrics(res, labels=[0, 1])
    assert summary["synops"] == pytest.approx(m["synops"], rel=1e-12)
    assert summary["macs"] > 0 and summary["acs"] > 0  # counts of 2 are MACs, spikes are ACs
    assert summary["nasfr"] == pytest.approx(m["nasfr"], rel=1e-12) and 0 < m["nasfr"] < 1
    assert m["activation_sparsity"] == pytest.approx(1 - m["nasfr"])
    assert m["mflops"] == pytest.approx(m["synops"] / 1e6)


def test_energy_models_cite_sources() -> None:
    e = energy_per_inference({"acs": 1e6, "macs": 1e3}, "cmos45nm")
    assert e["energy_j"] == pytest.approx(1e6 * 0.9e-12 + 1e3 * 4.6e-12)
    sp = energy_per_inference({"acs": 1e6}, "speck", duration_s=0.3)
    assert sp["energy_j"] == pytest.approx(0.42e-3 * 0.3) and sp["unknown"] == ["ac"]
    for k, v in ENERGY_MODELS.items():
        assert len(v["source"]) > 40, k
    with pytest.raises(ValueError):
        energy_per_inference({}, "gpu")
