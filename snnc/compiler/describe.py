"""Human-readable names and per-layer facts of a passed (fused) graph, for reports and messages.

A layer is named by the name the user gave its neuron (a module attribute or NIR node name) and,
because ``nn.Sequential`` names are bare indices, labelled with what it is:
``4 (Conv2d 16->32 3x3 -> IF 32x8x8)``.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from snnc.compiler import graph as g


def _part(node: g.Node) -> str:
    if isinstance(node, g.Conv2d):
        w = node.weight
        s = f"Conv2d {w.shape[1] * node.groups}->{w.shape[0]} {w.shape[2]}x{w.shape[3]}"
        return s + (f"/{node.stride[0]}" if tuple(node.stride) != (1, 1) else "")
    if isinstance(node, g.Affine):
        return f"Linear {node.weight.shape[1]}->{node.weight.shape[0]}"
    if isinstance(node, g.SumPool2d):
        return f"{node.kind} {node.kernel_size[0]}x{node.kernel_size[1]}"
    return node.kind


def _shape(shape: Any) -> str:
    return "x".join(str(int(s)) for s in shape) if shape else "?"


def layer_what(graph: g.Graph, name: str) -> str:
    """Return what a node of a fused graph is (``Conv2d 16->32 3x3 -> IF 32x8x8``), or "" for I/O nodes."""
    label = layer_label(graph, name)
    return label[len(name) + 2:-1] if label != name else ""


def layer_label(graph: g.Graph, name: str) -> str:
    """Return ``name (parts -> neuron shape)`` for a node of a fused graph (plain ``name`` otherwise)."""
    node = graph.nodes.get(name)
    if not isinstance(node, g.Layer):
        return f"{name} ({node.kind})" if node is not None and not isinstance(node, (g.Input, g.Output)) \
            else name
    parts = [_part(s) for s in node.synapses if not isinstance(s, g.Flatten)]
    shape = _shape(graph.shapes.get(name, ()))
    tail = f"{node.neuron.kind} {shape}" if node.neuron is not None else f"readout {shape}"
    return f"{name} ({' -> '.join(parts + [tail])})"


def _connections(node: g.Layer, in_shape: Any, out_shape: Any) -> int:
    """Synaptic connections (weights applied per output neuron, padding included) of a layer's first weights."""
    for s in node.synapses:
        if isinstance(s, g.Conv2d):
            w = s.weight
            out = s.infer_shape(tuple(in_shape)) if in_shape else ()
            return int(np.prod(out[1:])) * int(w.size) if out else int(w.size)
        if isinstance(s, g.Affine):
            return int(s.weight.size)
        in_shape = s.infer_shape(tuple(in_shape)) if in_shape else in_shape
    return 0


def layer_rows(graph: g.Graph) -> List[Dict[str, Any]]:
    """Return one row per fused layer: name, label, neuron kind, neurons, weights, connections."""
    rows = []
    for name in graph.layers():
        node = graph.nodes[name]
        preds = graph.predecessors(name)
        in_shape = graph.shapes.get(preds[0]) if len(preds) == 1 else None
        weights = sum(int(s.weight.size) for s in node.synapses if isinstance(s, (g.Conv2d, g.Affine)))
        rows.append({"name": name, "label": layer_label(graph, name),
                     "neuron": node.neuron.kind if node.neuron is not None else None,
                     "neurons": int(np.prod(graph.shapes.get(name, ()) or (0,))),
                     "weights": weights, "connections": _connections(node, in_shape, graph.shapes.get(name))})
    return rows


def relabel(message: str, labels: Dict[str, str]) -> str:
    """Return ``message`` with a leading ``'<layer>: '`` replaced by that layer's label."""
    head, sep, rest = message.partition(": ")
    if sep and head in labels:
        return f"{labels[head]}: {rest}"
    return message
