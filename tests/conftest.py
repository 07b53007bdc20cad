"""Shared test fixtures, and CI's strict mode (``SNNC_STRICT=1``, set by ``.ci/run``).

Strict mode: on a machine where the README's set-up ran, CI may not pass by skipping. A skipped
test (or a skipped module) whose reason matches no entry of :data:`ALLOWED_SKIPS` is reported as
a failure; the session stops at once, with the reason, when the Lava interpreter or the real data
are missing. Only absent hardware and samna may skip (see :data:`ALLOWED_SKIPS`, the one list);
the skips that did happen are printed at the end with the entry that allowed them.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Environment variable that turns strict mode on (``.ci/run`` sets it to 1).
STRICT_ENV = "SNNC_STRICT"

#: The only skips a strict run allows: name -> regular expression searched in the skip reason.
ALLOWED_SKIPS: Dict[str, str] = {
    # SynSense's samna is a PyPI stub that installs the real one from a network we cannot reach.
    "samna absent": r"samna",
    # a chip that is not attached to this machine
    "hardware absent": r"no Speck devkit|no Loihi|hardware (is )?not (attached|connected|available)",
}

_SUMMARY: List[str] = []
_ALLOWED_SEEN: List[str] = []


def strict() -> bool:
    """True when CI's strict mode is on (``SNNC_STRICT`` set to anything but empty or 0)."""
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def allowed_skip(reason: str) -> Optional[str]:
    """Return the :data:`ALLOWED_SKIPS` entry that allows a skip with this reason, or None."""
    for name, pattern in ALLOWED_SKIPS.items():
        if re.search(pattern, reason):
            return name
    return None


def _skip_reason(report: pytest.BaseReport) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]).removeprefix("Skipped: ")
    return str(lr)


def _enforce(report: pytest.BaseReport) -> None:
    """In strict mode, turn a skip that no ALLOWED_SKIPS entry allows into a failure."""
    if not strict() or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    name = allowed_skip(reason)
    if name is not None:
        _ALLOWED_SEEN.append(f"{report.nodeid}: {name} ({reason})")
        return
    report.outcome = "failed"
    report.longrepr = (f"{STRICT_ENV}=1: this test skipped, and CI may skip only for "
                       f"{', '.join(ALLOWED_SKIPS)} (tests/conftest.py ALLOWED_SKIPS).\n"
                       f"Skip reason: {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    _enforce(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    outcome = yield
    _enforce(outcome.get_result())


def strict_preconditions() -> List[str]:
    """Return what the README's set-up should have provided and did not (empty when all is there)."""
    from snnc.models.data.fsdd import fsdd_dir
    from snnc.models.data.nmnist import nmnist_small_dir

    from loihi_helpers import lava_missing_reason

    problems = []
    lava = lava_missing_reason()
    if lava:
        problems.append(f"Lava: {lava} (run `make setup` with a Python 3.10 on PATH, or set SNNC_LAVA_PYTHON)")
    if not (nmnist_small_dir() / "labels.txt").is_file():
        problems.append(f"N-MNIST-small: no {nmnist_small_dir() / 'labels.txt'} (set SNNC_DATA)")
    if not fsdd_dir().is_dir():
        problems.append(f"FSDD: no {fsdd_dir()} (set SNNC_DATA)")
    return problems


def pytest_sessionstart(session: pytest.Session) -> None:
    if not strict():
        return
    problems = strict_preconditions()
    if problems:
        pytest.exit(f"{STRICT_ENV}=1 (CI): the set-up is incomplete, so tests would skip instead of running:\n  "
                    + "\n  ".join(problems), returncode=3)


def pytest_terminal_summary(terminalreporter: object, exitstatus: int, config: pytest.Config) -> None:
    tr = terminalreporter
    if _SUMMARY:
        tr.section("snnc")  # type: ignore[attr-defined]
        for line in _SUMMARY:
            tr.write_line(line)  # type: ignore[attr-defined]
    if strict():
        tr.section(f"{STRICT_ENV}=1: allowed skips")  # type: ignore[attr-defined]
        tr.write_line(f"{len(_ALLOWED_SEEN)} allowed (only {', '.join(ALLOWED_SKIPS)} may skip)")  # type: ignore[attr-defined]
        for line in _ALLOWED_SEEN:
            tr.write_line("  " + line)  # type: ignore[attr-defined]


@pytest.fixture
def ci_summary() -> Callable[[str], None]:
    """Append a line to the "snnc" section printed at the end of the run (e.g. how much was compared)."""
    return _SUMMARY.append


@pytest.fixture
def cli(tmp_path: Path):
    """Run an snnc console command in a subprocess; return CompletedProcess."""
    def run(tool: str, *args: str) -> subprocess.CompletedProcess:
        mod = {"snn-compile": "compile_main", "snn-run": "run_main"}[tool]
        code = f"import sys; from snnc.cli import {mod}; sys.exit({mod}(sys.argv[1:]))"
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=300)
    return run
