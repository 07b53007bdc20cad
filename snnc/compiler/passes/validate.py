"""Validation pass: structure, reachability and finite parameters."""
from __future__ import annotations

import numpy as np

from snnc.compiler.graph import Graph, iter_all_arrays
from snnc.errors import InputError, ValueRangeError


def validate(graph: Graph) -> Graph:
    """Check edges, inputs/outputs and that every parameter is finite; return the graph unchanged."""
    for s, d in graph.edges:
        for end in (s, d):
            if end not in graph.nodes:
                raise InputError(f"edge {s} -> {d} refers to unknown node '{end}'", file=graph.source)
    if not graph.inputs():
        raise InputError("graph has no Input node", file=graph.source)
    if not graph.outputs():
        raise InputError("graph has no Output node", file=graph.source,
                         hint="add a nir.Output after the last layer")
    for node, param, a in iter_all_arrays(graph):
        if a.dtype.kind not in "biuf":
            raise InputError(f"parameter '{param}' is not numeric (dtype {a.dtype})", file=graph.source, node=node)
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueRangeError(
                f"parameter '{param}' has {int(np.isnan(a).sum())} NaN and {int(np.isinf(a).sum())} inf "
                f"value(s) out of {a.size}", file=graph.source, node=node,
                hint="the model diverged in training or was exported from uninitialised weights")
    reach = set(graph.inputs())
    frontier = list(reach)
    while frontier:
        n = frontier.pop()
        for m in graph.successors(n):
            if m not in reach:
                reach.add(m)
                frontier.append(m)
    if not any(o in reach for o in graph.outputs()):
        raise InputError("no Output node is reachable from an Input node", file=graph.source)
    return graph
