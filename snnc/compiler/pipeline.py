"""The pass pipeline: named pure functions graph -> graph, optionally dumping the IR after each."""
from __future__ import annotations

import json
import logging
import os
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from snnc.compiler.graph import Graph
from snnc.compiler.passes.dead import remove_dead
from snnc.compiler.passes.fold import avgpool_to_sumpool, fold_batchnorm, fold_scale
from snnc.compiler.passes.fuse import fuse_layers
from snnc.compiler.passes.shapes import infer_shapes
from snnc.compiler.passes.validate import validate

log = logging.getLogger(__name__)

Pass = Callable[[Graph], Graph]

#: The default pipeline, in order, by name.
DEFAULT_PASSES: List[Tuple[str, Pass]] = [
    ("validate", validate),
    ("infer_shapes", infer_shapes),
    ("remove_dead", remove_dead),
    ("fold_batchnorm", fold_batchnorm),
    ("avgpool_to_sumpool", avgpool_to_sumpool),
    ("fold_scale", fold_scale),
    ("fuse_layers", fuse_layers),
    ("infer_shapes_final", infer_shapes),
]


def describe(graph: Graph) -> dict:
    """Return a JSON-able summary of a graph (arrays as shape, range and digest) for IR dumps."""
    import hashlib

    desc, arrays = graph.to_json_and_arrays()
    summ = {}
    for k in sorted(arrays):
        a = arrays[k]
        summ[k] = {"shape": list(a.shape), "dtype": str(a.dtype),
                   "min": float(a.min()) if a.size else None, "max": float(a.max()) if a.size else None,
                   "sha256": hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]}
    desc["order"] = graph.topological_order()
    desc["recurrent_edges"] = [list(e) for e in graph.recurrent_edges()]
    desc["arrays"] = summ
    return desc


def run_pipeline(graph: Graph, passes: Optional[Sequence[Tuple[str, Pass]]] = None,
                 dump_ir: Optional[str] = None) -> Graph:
    """Run ``passes`` (default :data:`DEFAULT_PASSES`) in order; write each result to ``dump_ir``."""
    passes = list(DEFAULT_PASSES if passes is None else passes)
    if dump_ir:
        if os.path.exists(dump_ir) and not os.path.isdir(dump_ir):
            from snnc.errors import InputError

            raise InputError("--dump-ir path exists and is not a directory", file=dump_ir, hint="give a folder")
        _dump(graph, os.path.join(dump_ir, "00_import.json"))
    for i, (name, fn) in enumerate(passes, start=1):
        log.debug("pass %s", name)
        graph = fn(graph)
        if dump_ir:
            _dump(graph, os.path.join(dump_ir, f"{i:02d}_{name}.json"))
    return graph


def _dump(graph: Graph, path: str) -> None:
    from snnc.files import write_text

    write_text(path, json.dumps(describe(graph), indent=1, sort_keys=True, default=str), "IR dump")
