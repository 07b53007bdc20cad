"""Compile-time accuracy validation (``validate="nmnist"``): float model vs Loihi reference simulator.

Uses whichever trained N-MNIST checkpoint the zoo has shipped (snnc/models/checkpoints/
nmnist_mlp.pt or nmnist_cnn.pt) on a subset of the held-out split to stay fast; the full split
is what ``snnc-compile ... -O validate=nmnist`` reports.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import snnc
from snnc.errors import InputError

CKPT_DIR = Path(__file__).resolve().parents[1] / "snnc" / "models" / "checkpoints"
CANDIDATES = ("nmnist_mlp.pt", "nmnist_cnn.pt")
SAMPLES = 40


def _checkpoint() -> Path:
    for name in CANDIDATES:
        p = CKPT_DIR / name
        if p.is_file() and p.stat().st_size > 0:
            return p
    pytest.skip(f"no trained N-MNIST checkpoint yet ({', '.join(CANDIDATES)} in {CKPT_DIR})")


def _data_or_skip() -> None:
    from snnc.models.data.nmnist import NMNISTSmall

    try:
        NMNISTSmall()
    except InputError as exc:
        pytest.skip(f"N-MNIST-small data not available: {exc}")


def _recipe(path: Path) -> tuple:
    import torch

    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    extra = obj.get("extra", {})
    data = extra.get("data", {})
    return float(extra.get("dt_s", 1e-3)), int(data.get("n_steps", extra.get("recipe", {}).get("n_steps", 300)))


def test_validate_reports_float_and_loihi_accuracy_on_the_held_out_split() -> None:
    _data_or_skip()
    path = _checkpoint()
    dt_s, steps = _recipe(path)
    art = snnc.compile(str(path), target="loihi", dt_s=dt_s, validate="nmnist", validate_samples=SAMPLES,
                       validate_steps=steps)
    acc = art.manifest["report"]["accuracy"]
    assert acc["samples"] == SAMPLES
    for key in ("float_accuracy", "float_binary_input_accuracy", "loihi_accuracy"):
        assert 0.0 <= acc[key] <= 1.0
        # accuracies of SAMPLES samples are multiples of 1/SAMPLES: the counts are real
        assert abs(acc[key] * SAMPLES - round(acc[key] * SAMPLES)) < 1e-9
    # measured on these 40 samples (nmnist_mlp): float 97.5 %, Loihi 97.5 %, predictions 40 of 40 equal;
    # thresholds one sample below
    assert acc["float_accuracy"] >= 0.95, acc
    np.testing.assert_allclose(acc["gap_pp"], 100 * (acc["float_accuracy"] - acc["loihi_accuracy"]))
    np.testing.assert_allclose(acc["gap_pp"], acc["gap_binarisation_pp"] + acc["gap_quantisation_pp"])
    # the compiled network must behave like the float model, sample by sample
    assert acc["prediction_agreement_loihi_vs_float_binary"] >= 0.975, acc
    assert abs(acc["gap_quantisation_pp"]) <= 2.5, acc
    warned = any("percentage points below" in w for w in art.manifest["report"]["warnings"])
    assert warned == (acc["gap_pp"] > 1.0)
    assert acc["loihi_padding_steps"] == art.manifest["report"]["latency_steps"]


def test_validate_rejects_unknown_data_sets() -> None:
    _data_or_skip()
    path = _checkpoint()
    dt_s, _ = _recipe(path)
    with pytest.raises(InputError, match="unknown validation data set"):
        snnc.compile(str(path), target="loihi", dt_s=dt_s, validate="cifar")
