"""Shape inference pass: each node kind infers its own output shape."""
from __future__ import annotations

import math
from typing import Dict, Tuple

from snnc.compiler.graph import Conv2d, Graph, Input
from snnc.compiler.repairs import check_flatten_conventions
from snnc.errors import ShapeError, SnncError


#: Largest number of elements one node may output (a sanity bound: 2**28 float64 is 2 GiB per sample).
MAX_NODE_ELEMENTS = 2 ** 28


def _check_size(shape: Tuple[int, ...], graph: Graph, name: str) -> None:
    """Refuse empty, negative and absurdly large shapes."""
    if any(d <= 0 for d in shape):
        raise ShapeError(f"shape {tuple(shape)} has an empty or negative dimension", file=graph.source, node=name)
    n = math.prod(shape)
    if n > MAX_NODE_ELEMENTS:
        raise ShapeError(f"shape {tuple(shape)} has {n} elements, limit {MAX_NODE_ELEMENTS}",
                         file=graph.source, node=name, hint="is a dimension wrong?")


def infer_shapes(graph: Graph) -> Graph:
    """Return a copy of ``graph`` with ``shapes`` filled for every node, or raise ShapeError."""
    out = graph.copy()
    back = set(out.recurrent_edges())
    shapes: Dict[str, Tuple[int, ...]] = {}
    node_in: Dict[str, Tuple[int, ...]] = {}
    for name in out.topological_order():
        node = out.nodes[name]
        if isinstance(node, Input):
            shapes[name] = tuple(int(x) for x in node.shape)
            _check_size(shapes[name], graph, name)
            continue
        preds = [p for p in out.predecessors(name) if (p, name) not in back]
        if not preds:
            raise ShapeError("node has no input", file=graph.source, node=name)
        in_shapes = {p: shapes[p] for p in preds}
        first = in_shapes[preds[0]]
        for p, s in in_shapes.items():
            if s != first:
                raise ShapeError(f"inputs disagree: {preds[0]} gives {first}, {p} gives {s}",
                                 file=graph.source, node=name, hint="edges into one node are summed")
        node_in[name] = first
        check_flatten_conventions(out, name, first)
        node = out.nodes[name]
        if isinstance(node, Conv2d) and node.input_shape is not None and tuple(node.input_shape) != tuple(first[1:]):
            raise ShapeError(f"Conv2d declares input_shape {tuple(node.input_shape)} but receives {first}",
                             file=graph.source, node=name)
        try:
            shapes[name] = tuple(int(x) for x in node.infer_shape(first))
        except SnncError as e:
            e.file, e.node = graph.source, name
            raise type(e)(e.message, file=graph.source, node=name, hint=e.hint) from None
        _check_size(shapes[name], graph, name)
    for s, d in back:
        if shapes[s] != node_in[d]:
            raise ShapeError(f"recurrent edge {s} -> {d} carries {shapes[s]}, expected {node_in[d]}",
                             file=graph.source, node=d)
    out.shapes = shapes
    return out
