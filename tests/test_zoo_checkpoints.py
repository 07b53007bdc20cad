"""Shipped checkpoints: small, loadable, documented, and compiled spikes equal snnc's torch modules'.

Their accuracies (float, compiled, deployed, on the full validation split) are checked against
results/zoo.json in tests/test_zoo_results.py, which re-evaluates every checkpoint.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import snnc
from snnc.models import zoo
from snnc.models.checkpoint import load_torch_file
from snnc.models.data.nmnist import nmnist_small_dir
from snnc.models.train import _sequence_runner, load_data

CKPT_DIR = Path(__file__).resolve().parents[1] / "snnc" / "models" / "checkpoints"
#: The shipped checkpoints.
SHIPPED = ["asa_snn_static", "asa_snn_static_binary", "fsdd_mlp", "fsdd_xylo", "minlatency_cnn", "minlatency_cnn_binary",
           "nmnist_cnn", "nmnist_mlp", "skipsnn", "speck_cnn",
           # fine-tuned through a chip's integers (snnc.models.finetune; tests/test_finetune.py checks their integers)
           "asa_snn_static_ft_loihi", "minlatency_cnn_binary_ft_loihi", "minlatency_cnn_ft_loihi", "nmnist_cnn_ft_loihi",
           "speck_cnn_ft_speck"]
#: Size limit of a shipped checkpoint; SkipSNN may have the paper's 800 hidden neurons (2312 x 800 float32 weights).
MAX_BYTES = {"skipsnn": 8 * 1024 * 1024}
needs_data = pytest.mark.skipif(not (nmnist_small_dir() / "labels.txt").is_file(),
                                reason=f"real N-MNIST-small data not found at {nmnist_small_dir()} (set SNNC_DATA)")


def _load(name: str):
    path = CKPT_DIR / f"{name}.pt"
    assert path.is_file(), f"missing shipped checkpoint {path}"
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return path, obj


@pytest.mark.parametrize("name", SHIPPED)
def test_checkpoint_is_small_documented_and_loads(name: str) -> None:
    path, obj = _load(name)
    assert path.stat().st_size < MAX_BYTES.get(name, 3 * 1024 * 1024)
    assert obj["model"] == name and obj["model"] in zoo.names()
    extra = obj["extra"]
    for key in ("dt_s", "n_steps", "val_accuracy", "command", "data", "history"):
        assert key in extra, key
    model, shape = load_torch_file(str(path))
    assert shape == {"fsdd": (64,), "fsdd16": (16,)}.get(extra["data"]["data"], (2, 34, 34))
    assert isinstance(model, torch.nn.Module)


@needs_data
@pytest.mark.parametrize("name", SHIPPED)
def test_compiled_cpu_spikes_equal_snnc_torch_modules(name: str) -> None:
    """The compiled cpu program reproduces the checkpoint's float64 torch model (snnc's own neuron modules,
    the reference here) spike for spike on the first 4 validation samples."""
    path, obj = _load(name)
    extra = obj["extra"]
    d = extra["data"]
    if d["data"] in ("fsdd", "fsdd16"):
        from snnc.models.data.fsdd import fsdd_dir

        if not fsdd_dir().is_dir():
            pytest.skip(f"FSDD recordings not found at {fsdd_dir()} (set SNNC_DATA)")
    _, val, _ = load_data(d["data"], d["dt_us"], d["n_steps"], d["val_fraction"], d["split_seed"], 0, 4)
    model, _ = load_torch_file(str(path))
    x, _ = val.batch(np.arange(4))
    x = x.astype(np.float64)
    prog = snnc.Program(snnc.compile(str(path), target="cpu", dt_s=extra["dt_s"]))
    res = prog.run(x)
    with torch.no_grad():
        ref = _sequence_runner(model.double())(torch.from_numpy(x))[0].numpy()
    np.testing.assert_array_equal(res.output, ref)
    assert np.count_nonzero(ref) > 0


def test_demo_models_are_shipped() -> None:
    from snnc.models import demo_model

    for name in demo_model.DEMO_MODELS:
        assert demo_model.checkpoint_path(name) == CKPT_DIR / f"{name}.pt"
        assert name in SHIPPED


@needs_data
@pytest.mark.parametrize("name,target", [("nmnist_cnn", "loihi"), ("speck_cnn", "speck")])
def test_deployable_checkpoint_compiles_for_its_chip(name: str, target: str) -> None:
    from snnc.targets.base import get_target

    try:
        get_target(target)
    except snnc.SnncError as e:
        pytest.skip(f"target {target} not available: {e}")
    path, obj = _load(name)
    d = obj["extra"]["data"]
    _, val, _ = load_data(d["data"], d["dt_us"], d["n_steps"], d["val_fraction"], d["split_seed"], 0, 16)
    x, y = val.batch(np.arange(16))
    prog = snnc.Program(snnc.compile(str(path), target=target, dt_s=obj["extra"]["dt_s"]))
    res = prog.run((x > 0).astype(np.float32) if target == "loihi" else x)
    assert res.output.shape[:2] == x.shape[:2] and res.output.any()
    # (its accuracy on the chip's reference simulator: results/zoo.json, checked in test_zoo_results.py)
