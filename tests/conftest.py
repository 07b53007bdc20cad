"""Shared test fixtures."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cli(tmp_path: Path):
    """Run an snnc console command in a subprocess; return CompletedProcess."""
    def run(tool: str, *args: str) -> subprocess.CompletedProcess:
        mod = {"snn-compile": "compile_main", "snn-run": "run_main"}[tool]
        code = f"import sys; from snnc.cli import {mod}; sys.exit({mod}(sys.argv[1:]))"
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300)
    return run
