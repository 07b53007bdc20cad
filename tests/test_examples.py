"""Every script in examples/ runs to completion (with small settings where it has them)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: Arguments that keep each example short in the test suite.
ARGS = {
    "demo.py": [],
    "compile_and_run.py": ["--samples", "4"],
    "import_nir_from_snntorch.py": [],
    "train_report.py": ["--limit-val", "4", "--deployed"],
    "train_skipsnn.py": ["--epochs1", "1", "--epochs2", "1", "--limit-train", "16", "--limit-val", "8", "--hidden", "16"],
    "train_asa.py": ["--ckpt", "asa.pt", "--out", "asa_static.pt", "--epochs", "1", "--limit-train", "32",
                     "--limit-val", "16"],
}


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(ARGS)


@pytest.mark.parametrize("script", sorted(ARGS))
def test_example_runs(script: str, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(EXAMPLES / script), *ARGS[script]], capture_output=True, text=True,
                       cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "Traceback" not in r.stderr
