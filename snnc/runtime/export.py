"""Export a compiled artifact: its deployed program as NIR, or a chip file its target writes.

Each target says how (:meth:`~snnc.targets.base.Target.to_nir`, :meth:`~snnc.targets.base.Target.chip_file`):
``cpu`` artifacts give back their stored (compiled) graph; ``loihi`` (:mod:`snnc.targets.loihi.nir_export`)
and ``speck`` (:mod:`snnc.targets.speck.nir_export`) the integer network the chip runs, written with
NIR's float nodes so that every weight, bias and threshold is an integer value in the chip's own
state units, with what NIR cannot express listed in the graph's ``metadata["notes"]``.
"""
from __future__ import annotations

import os
from typing import Any, List, Union

from snnc.artifact import Artifact
from snnc.errors import InputError
from snnc.files import atomic_target, write_bytes
from snnc.targets.base import get_target, target_names


def _as_artifact(artifact_or_path: Any) -> Artifact:
    if isinstance(artifact_or_path, Artifact):
        return artifact_or_path
    if hasattr(artifact_or_path, "artifact") and isinstance(artifact_or_path.artifact, Artifact):
        return artifact_or_path.artifact  # a runtime Program
    if isinstance(artifact_or_path, (str, os.PathLike)):
        return Artifact.load(os.fspath(artifact_or_path))
    raise InputError(f"cannot export an object of type {type(artifact_or_path).__name__}",
                     hint="give an Artifact, a Program or an artifact file path")


def export_artifact_nir(artifact_or_path: Union[Artifact, str, "os.PathLike[str]", Any]) -> Any:
    """Return the deployed program of an artifact (object, Program or path) as a ``nir.NIRGraph``."""
    art = _as_artifact(artifact_or_path)
    return get_target(art.target).to_nir(art.payload, art.manifest)


def write_artifact_nir(artifact_or_path: Any, path: str) -> str:
    """Write :func:`export_artifact_nir`'s graph to ``path`` atomically (temp file + rename); return it."""
    import nir

    graph = export_artifact_nir(artifact_or_path)
    with atomic_target(path, "NIR file") as tmp:
        nir.write(tmp, graph)
    return path


def export_formats() -> List[str]:
    """Return the formats of ``snn-export --format``: ``nir`` for every target, then each target's chip files."""
    return ["nir"] + [fmt for name in target_names() for fmt in get_target(name).chip_formats]


def write_artifact_file(artifact_or_path: Any, path: str, fmt: str = "nir") -> str:
    """Write an artifact's deployed program as ``fmt``: ``nir``, or a chip file its target writes; return ``path``."""
    if fmt == "nir":
        return write_artifact_nir(artifact_or_path, path)
    art = _as_artifact(artifact_or_path)
    return write_bytes(path, get_target(art.target).chip_file(fmt, art.payload, art.manifest))
