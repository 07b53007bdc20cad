"""SynSense's samna, the SDK of the Speck and Xylo devkits: found and imported only when it is real.

The ``samna`` package on PyPI (0.48.x) is an installer stub whose ``__init__`` runs ``pip install``
from SynSense's own package index at import time; :func:`samna_status` detects that stub and refuses
to import it (it would try to reach the network and replace packages). Shared by the targets whose
``device`` backend talks to a SynSense devkit.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from snnc.errors import BackendUnavailableError

_INSTALL_HINT = ("install SynSense's samna (the PyPI 'samna' package is only an installer stub "
                 "that downloads the real one from SynSense's index at import time) and connect "
                 "a {chip} devkit")


def samna_status() -> tuple[bool, str]:
    """Return (usable, reason): whether a real samna can be imported here, without importing a stub."""
    spec = importlib.util.find_spec("samna")
    if spec is None:
        return False, "samna is not installed"
    origin = spec.origin or ""
    if origin.endswith("__init__.py"):
        try:
            text = Path(origin).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        if "install_real_samna" in text and "PYPI_SAMNA" in text:
            return False, ("the installed samna is PyPI's installer stub (it would pip-install "
                           "the real samna from another index on import)")
    return True, f"samna found at {origin}"


def import_samna(chip: str = "Speck") -> ModuleType:
    """Import samna or raise BackendUnavailableError naming samna, the ``chip`` whose backend needs it, and how."""
    ok, reason = samna_status()
    if not ok:
        raise BackendUnavailableError(f"{chip} device backend needs samna: {reason}",
                                      hint=_INSTALL_HINT.format(chip=chip))
    try:
        return importlib.import_module("samna")
    except Exception as exc:  # a broken binary install is "unavailable", not a crash
        raise BackendUnavailableError(f"{chip} device backend needs samna: import failed: {exc}",
                                      hint=_INSTALL_HINT.format(chip=chip)) from exc
