"""Fine-tuning through the chip's arithmetic, as a user runs it: ``snn-train --finetune-for``, ``snnc.finetune``.

The result is a checkpoint that compiles (``snn-compile``, the bare command) to exactly the integers the
fine-tuning ran last (their SHA-256 is in the checkpoint); the same holds for every shipped ``*_ft_*``
checkpoint. The forward pass itself is tested equal to the reference simulators in
tests/test_finetune_equality.py.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import snnc
from snnc.models.data.nmnist import nmnist_small_dir
from snnc.models.finetune import integer_arrays, network_sha256

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CKPT_DIR = REPO / "snnc" / "models" / "checkpoints"
needs_data = pytest.mark.skipif(not (nmnist_small_dir() / "labels.txt").is_file(),
                                reason=f"real N-MNIST-small data not found at {nmnist_small_dir()} (set SNNC_DATA)")


def _artifact_integers(path: Path) -> dict:
    art = snnc.load(str(path))
    if art.target.name == "loihi":
        from snnc.targets.loihi.target import network_from_payload

        net, _ = network_from_payload(art.artifact.payload)
    else:
        from snnc.targets.speck.target import SpeckTarget

        net, _ = SpeckTarget._load(art.artifact.payload)
    return integer_arrays(net)


@needs_data
@pytest.mark.parametrize("model,target,cmd", [("nmnist_cnn", "loihi", [str(BIN / "snn-train")]),
                                              ("speck_cnn", "speck", [sys.executable, "-m", "snnc.models.train"])])
def test_snn_train_finetune_for_compiles_to_the_integers_it_trained_with(model: str, target: str, cmd: list,
                                                                         tmp_path: Path) -> None:
    """``snn-train`` (README) and ``python -m snnc.models.train`` (scripts/train_zoo.sh) fine-tune the same way."""
    out = tmp_path / "ft.pt"
    r = subprocess.run(cmd + [model, "--finetune-for", target, "--epochs", "1", "--limit-train", "6",
                        "--limit-val", "4", "--batch-size", "3", "--out", str(out), "--quiet"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    obj = torch.load(out, map_location="cpu", weights_only=True)
    assert obj["model"] == f"{model}_ft_{target}"
    ft = obj["extra"]["finetune"]
    assert ft["target"] == target and ft["from"].endswith(f"{model}.pt") and len(ft["from_sha256"]) == 64
    parent = torch.load(CKPT_DIR / f"{model}.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert any(not torch.equal(parent[k], v) for k, v in obj["state_dict"].items()), "fine-tuning changed nothing"
    art = tmp_path / "ft.snnc"
    c = subprocess.run([str(BIN / "snn-compile"), str(out), "--target", target, "-o", str(art), "-q"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert c.returncode == 0, c.stderr[-3000:]
    assert network_sha256(_artifact_integers(art)) == ft["network_sha256"]
    assert obj["extra"]["dt_s"] == pytest.approx(snnc.load(str(art)).manifest["options"]["dt_s"])


def test_a_changed_weight_changes_the_recorded_integers(tmp_path: Path) -> None:
    """Control for the test above: the hash is of the integers, so a checkpoint edited after fine-tuning fails it."""
    from snnc.models.finetune import ChipBinding

    torch.manual_seed(0)
    from snnc.models.neurons import IF
    from snnc.models.zoo import SequentialSNN

    m = SequentialSNN((4,), nn.Linear(4, 3, bias=False), IF((3,), v_threshold=1.0, dt_s=1e-3))
    b = ChipBinding(m, "loihi", 1e-3)
    b.lower()
    h0 = network_sha256(b.integer_arrays())
    with torch.no_grad():
        m[0].weight[0, 0] += 0.5
    b.lower()
    assert network_sha256(b.integer_arrays()) != h0


def test_finetune_api_on_arrays_lowers_the_loss() -> None:
    """``snnc.finetune(module, "loihi", (x, y))``: a two-layer net learns a spike-timing task through Loihi's
    integers (chip accuracy after > before), and the returned hash is of the integers it ends with."""
    from snnc.models.finetune import ChipBinding, chip_predictions
    from snnc.models.neurons import LIF
    from snnc.models.zoo import SequentialSNN

    torch.manual_seed(1)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64)
    x = np.zeros((64, 20, 8))
    for i, c in enumerate(y):  # class 0: the first four inputs spike, class 1: the last four
        x[i, :, 4 * c:4 * c + 4] = rng.random((20, 4)) < 0.5
    model = SequentialSNN((8,), nn.Linear(8, 16, bias=False), LIF.from_beta((16,), beta=0.9, dt_s=1e-3),
                          nn.Linear(16, 2, bias=False), LIF.from_beta((2,), beta=0.9, dt_s=1e-3))

    def acc() -> float:
        b = ChipBinding(model, "loihi", 1e-3)
        b.lower()
        return float(np.mean(chip_predictions(b.forward(x, train=False)) == y))

    before = acc()
    res = snnc.finetune(model, "loihi", (x, y), dt_s=1e-3, epochs=4, lr=2e-2, batch_size=16, threads=1,
                        count_scale=1.0)
    after = acc()
    assert after > before and after >= 0.9, (before, after)
    b = ChipBinding(res.model, "loihi", 1e-3)
    b.lower()
    assert network_sha256(b.integer_arrays()) == res.network_sha256


def test_unsupported_targets_and_models_are_refused() -> None:
    from snnc.models.finetune import ChipBinding

    with pytest.raises(snnc.SnncError, match="xylo"):
        ChipBinding(nn.Sequential(), "xylo", 1e-3)
    with pytest.raises(snnc.SnncError, match="nn.Sequential"):
        ChipBinding(nn.Linear(2, 2), "loihi", 1e-3)


SHIPPED_FT = sorted(p.stem for p in CKPT_DIR.glob("*_ft_*.pt"))


@pytest.mark.parametrize("name", SHIPPED_FT)
def test_shipped_finetuned_checkpoint_compiles_to_its_recorded_integers(name: str) -> None:
    """Every shipped fine-tuned checkpoint: ``snnc.compile(path, target)`` gives the integers whose hash it records,
    at its own dt; it names its parent checkpoint and the command in scripts/train_zoo.sh reproduces it."""
    path = CKPT_DIR / f"{name}.pt"
    obj = torch.load(path, map_location="cpu", weights_only=True)
    ft = obj["extra"]["finetune"]
    art = snnc.compile(str(path), target=ft["target"])
    if ft["target"] == "loihi":
        from snnc.targets.loihi.target import network_from_payload

        net, _ = network_from_payload(art.payload)
    else:
        from snnc.targets.speck.target import SpeckTarget

        net, _ = SpeckTarget._load(art.payload)
    assert network_sha256(integer_arrays(net)) == ft["network_sha256"]
    assert (CKPT_DIR / f"{ft['from_model']}.pt").is_file()
    script = (REPO / "scripts" / "train_zoo.sh").read_text()
    assert f"--finetune-for {ft['target']}" in script and f"{name}.pt" in script
