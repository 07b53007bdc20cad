"""The README tells the truth: its two commands, CI calling the test one, the generated deployability table."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_two_commands_and_ci() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert "demo: setup" in makefile and "test: setup" in makefile


def test_deployability_table_is_current() -> None:
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "deployability.py"), "--check"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "README's deployability table is stale: run scripts/deployability.py\n" + r.stderr
