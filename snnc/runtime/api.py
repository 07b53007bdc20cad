"""The target-agnostic API: ``compile(model, target) -> Artifact``, ``load(path) -> Program``, ``run``."""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np

from snnc.artifact import Artifact
from snnc.compiler.graph import Graph
from snnc.compiler.pipeline import run_pipeline
from snnc.errors import InputError, RuleViolationError
from snnc.runtime.inputs import to_dense_batch
from snnc.runtime.result import Result
from snnc.targets.base import CompileOptions, get_target
from snnc.version import __version__

log = logging.getLogger(__name__)

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def load_model(model: Any, input_shape: Optional[Sequence[int]] = None) -> Graph:
    """Return the internal graph of a ``.nir``/``.pt`` path, ``nir.NIRGraph``, torch module or Graph."""
    from snnc.compiler.frontends.nir_frontend import load_nir

    if isinstance(model, Graph):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise InputError("model file not found", file=path, hint="check the path")
        if os.path.isdir(path):
            raise InputError("model path is a directory", file=path)
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head == HDF5_MAGIC:
            return load_nir(path)
        if head[:4] == ZIP_MAGIC or head[:1] == b"\x80":
            from snnc.models.checkpoint import load_torch_file

            module, shape = load_torch_file(path)
            from snnc.compiler.frontends.torch_frontend import from_torch

            return from_torch(module, input_shape or shape or (), source=path)
        raise InputError("file is neither a NIR (.nir, HDF5) nor a torch (.pt) model", file=path,
                         hint="export your model with nir.write(...) or torch.save(...)")
    if type(model).__name__ == "NIRGraph":
        return load_nir(model)
    try:
        from torch import nn
    except ImportError:  # pragma: no cover
        nn = None
    if nn is not None and isinstance(model, nn.Module):
        from snnc.compiler.frontends.torch_frontend import from_torch

        shape = input_shape or getattr(model, "input_shape", None) or ()
        return from_torch(model, shape)
    raise InputError(f"cannot compile an object of type {type(model).__name__}",
                     hint="give a .nir/.pt path, a nir.NIRGraph or a torch.nn.Module")


#: Step and integration used when neither the caller nor a ``framework`` convention gives them.
DEFAULT_DT_S, DEFAULT_METHOD = 1e-3, "exact"


def compile(model: Any, target: str = "cpu", dt_s: Optional[float] = None, method: Optional[str] = None,
            input_shape: Optional[Sequence[int]] = None, dump_ir: Optional[str] = None,
            framework: Optional[str] = None, **extra: Any) -> Artifact:
    """Compile ``model`` for ``target`` with step ``dt_s`` seconds; raise on any rule violation.

    ``framework`` (snntorch, norse, sinabs, spikingjelly, rockpool) names the exporter of a NIR file: its
    exporter's quirks are undone and its time-step convention is the default ``dt_s``/``method``.
    """
    tgt = get_target(target)
    graph = load_model(model, input_shape)
    if framework is not None:
        from snnc.compiler.frontends.conventions import adapt, convention

        fw_dt, fw_method = convention(framework)
        # Rockpool files store dt inside r: a given dt_s is the export dt, checked against the file.
        export_dt = float(dt_s) if dt_s is not None and str(framework).strip().lower() == "rockpool" else 0.0
        dt_s = fw_dt if dt_s is None else dt_s
        method = fw_method if method is None else method
        graph = adapt(graph, framework, export_dt_s=export_dt)
    options = CompileOptions(dt_s=float(DEFAULT_DT_S if dt_s is None else dt_s),
                             method=DEFAULT_METHOD if method is None else method,
                             extra=dict(extra))
    source_hash = graph.fingerprint()
    passed = run_pipeline(graph, tgt.passes(), dump_ir=dump_ir)
    violations = tgt.check(passed, options)
    if violations:
        raise RuleViolationError(violations, target=tgt.name, file=graph.source or None)
    lowered = tgt.lower(passed, options)
    ins, outs = passed.inputs(), passed.outputs()
    manifest: Dict[str, Any] = {
        "format": "snnc-artifact",
        "snnc_version": __version__,
        "target": tgt.name,
        "options": options.to_dict(),
        "framework": framework,
        "source_hash": source_hash,
        "compiled_hash": passed.fingerprint(),
        "input_shape": list(passed.shapes[ins[0]]),
        "output_shape": list(passed.shapes[outs[0]]),
        "report": {"target": tgt.name, "notes": list(passed.notes),
                   "passes": [n for n, _ in tgt.passes()], **lowered.report},
    }
    return Artifact(manifest, lowered.payload)


class Program:
    """A loaded artifact, ready to run on the reference simulator or another backend."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.target = get_target(artifact.target)

    @property
    def manifest(self) -> Dict[str, Any]:
        """Return the artifact's manifest."""
        return self.artifact.manifest

    @property
    def input_shape(self) -> tuple:
        """Return the input shape (without batch and time)."""
        return tuple(self.manifest["input_shape"])

    def run(self, inputs: Any, backend: str = "sim", record: bool = False, steps: Optional[int] = None) -> Result:
        """Run dense inputs (batch, T, *shape) or event lists (fields t [us], x, y, p) on ``backend``."""
        mode = "binary" if self.target.binary_input else "count"
        x = to_dense_batch(inputs, self.input_shape, float(self.manifest["options"]["dt_s"]), steps, mode)
        return self.target.run(self.artifact.payload, self.manifest, x, backend=backend, record=record)


def load(path: str) -> Program:
    """Load and verify an artifact file, returning a runnable :class:`Program`."""
    return Program(Artifact.load(path))
