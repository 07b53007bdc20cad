"""results/zoo.json is current: it covers the shipped checkpoints (by hash), each checkpoint records its own
accuracy, and re-evaluating the checkpoints with ``scripts/evaluate_zoo.py`` (as its doc says) gives the file.

The README's zoo figures are rendered from this file (tests/test_readme.py checks the rendering).
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "zoo.json"
CKPT_DIR = REPO / "snnc" / "models" / "checkpoints"


def _data_missing() -> str:
    from snnc.models.data.fsdd import fsdd_dir
    from snnc.models.data.nmnist import nmnist_small_dir

    for d in (nmnist_small_dir() / "labels.txt", fsdd_dir()):
        if not d.exists():
            return f"real data not found at {d} (set SNNC_DATA)"
    return ""


def _results() -> Dict[str, Any]:
    return json.loads(RESULTS.read_text())


def test_results_cover_every_shipped_checkpoint_as_shipped() -> None:
    res = _results()
    assert res["limit_val"] is None, "results/zoo.json must be the full evaluation"
    assert sorted(res["models"]) == sorted(p.stem for p in CKPT_DIR.glob("*.pt"))
    for name, m in res["models"].items():
        data = (REPO / m["checkpoint"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == m["sha256"], \
            f"{name}: checkpoint changed since results/zoo.json was written: run scripts/evaluate_zoo.py"
        assert m["n_val"] == (300 if m["data"].startswith("fsdd") else 199), (name, m["n_val"])
        assert m["deployed"]["n"] == m["n_val"]


def test_each_checkpoint_records_its_own_validation_accuracy() -> None:
    for name, m in _results()["models"].items():
        extra = torch.load(REPO / m["checkpoint"], map_location="cpu", weights_only=True)["extra"]
        assert extra["val_accuracy"] == pytest.approx(m["float"]["accuracy"], abs=1e-12), \
            (name, extra["val_accuracy"], m["float"]["accuracy"], extra.get("derived_from"))


def _close(name: str, key: str, got: Dict[str, Any], want: Dict[str, Any], n: int, samples: int) -> None:
    """Equal counts; float-valued models may differ by ``samples`` samples (float32 sums on another CPU)."""
    assert abs(got["correct"] - want["correct"]) <= samples, (name, key, got, want)
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=samples / n + 1e-12), (name, key)


@pytest.mark.skipif(bool(_data_missing()), reason=_data_missing() or "data present")
def test_reevaluating_every_checkpoint_reproduces_the_results_file(tmp_path: Path) -> None:
    """The user's path: ``scripts/evaluate_zoo.py --models ... --out FILE``; every checkpoint, full split.

    The integer reference simulators (Loihi, Speck) must give exactly the file's counts; the float
    model (torch float32) and the compiled cpu program (float64) may move by one sample on another
    CPU (a sum rounded differently can move a voltage across a threshold), not more.
    """
    res = _results()
    names = sorted(res["models"])
    out = tmp_path / "zoo.json"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate_zoo.py"), "--models", ",".join(names),
                        "--out", str(out)], capture_output=True, text=True, timeout=3600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    new = json.loads(out.read_text())["models"]
    for name in names:
        got, want = new[name], res["models"][name]
        n = want["n_val"]
        assert got["sha256"] == want["sha256"] and got["n_val"] == n
        _close(name, "float", got["float"], want["float"], n, 1)
        _close(name, "compiled_cpu", got["compiled_cpu"], want["compiled_cpu"], n, 1)
        assert got["compiled_cpu"]["spikes_equal_float64"] == pytest.approx(
            want["compiled_cpu"]["spikes_equal_float64"], abs=1 / n + 1e-12), name
        assert got["deployed"]["target"] == want["deployed"]["target"]
        assert got["deployed"]["correct"] == want["deployed"]["correct"], (name, got["deployed"], want["deployed"])
        assert got["deployed"]["predictions_equal_float"] == pytest.approx(
            want["deployed"]["predictions_equal_float"], abs=1 / n + 1e-12), name
        for key in ("mflops", "nasfr"):
            assert got["float"][key] == pytest.approx(want["float"][key], rel=0.01), (name, key)
