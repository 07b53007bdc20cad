"""Import repairs whose intent is unambiguous, shared by the front ends and shape inference.

Exporters write graphs that NIR's own type check refuses or that say one thing two ways: a batch
dimension in an Input shape, a Conv2d without ``input_shape``, uniform per-neuron arrays, a Flatten
whose ``start_dim`` counted the batch, per-channel neuron parameters. :func:`repair_imported` runs
after a front end built the graph; :func:`check_flatten_conventions` runs during shape inference,
once each node's input shape is known. Every repair is noted in ``graph.notes``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from snnc.compiler import graph as g
from snnc.errors import InputError


def _expectation(graph: g.Graph, node_name: str, depth: int = 0) -> Optional[Tuple[str, Tuple[int, ...]]]:
    """Return what the consumers of ``node_name`` expect as input, when one of them says so.

    ``("flat", (n,))``: a dense layer (possibly behind a Flatten) wants ``n`` values in all;
    ``("chw", (c,) or (c, h, w))``: a convolution wants ``c`` channels (and ``h, w`` when declared);
    ``("exact", shape)``: a neuron with per-neuron parameters of that shape.
    """
    for succ in graph.successors(node_name):
        n = graph.nodes[succ]
        if isinstance(n, g.Affine) and n.weight.ndim == 2:
            return "flat", (int(n.weight.shape[1]),)
        if isinstance(n, g.Conv2d) and n.weight.ndim == 4:
            c = int(n.weight.shape[1] * n.groups)
            return "chw", (c,) + tuple(n.input_shape) if n.input_shape and len(n.input_shape) == 2 else (c,)
        if isinstance(n, g.Flatten) and depth < 4:
            inner = _expectation(graph, succ, depth + 1)
            if inner is not None and inner[0] == "flat":
                return inner
        if isinstance(n, g.Neuron):
            sizes = [a.shape for a in n.arrays().values() if a.size > 1]
            if sizes:
                return "exact", tuple(int(x) for x in sizes[0])
    return None


def _expected_input(graph: g.Graph, node_name: str) -> Optional[Tuple[int, ...]]:
    """Return the flat input size (``(n,)``) or exact shape the consumers of ``node_name`` expect."""
    e = _expectation(graph, node_name)
    if e is None or e[0] == "chw":
        return None
    return e[1]


def _drop_batch(shape: Tuple[int, ...], expect: Optional[Tuple[str, Tuple[int, ...]]]) -> bool:
    """Return True when ``shape[0]`` is a batch dimension the consumer cannot mean."""
    if len(shape) < 2 or expect is None:
        return False
    kind, want = expect
    tail = shape[1:]
    if kind == "flat":
        n = want[0]
        # a dense layer takes a 1-D input: (B, n) or (1, n) carry a batch dimension
        return int(np.prod(tail)) == n and (int(np.prod(shape)) != n or len(shape) == 2)
    if kind == "chw":
        return len(shape) == 4 and tail[0] == want[0] and (len(want) == 1 or tuple(tail[1:]) == tuple(want[1:]))
    return tuple(tail) == tuple(want) and tuple(shape) != tuple(want)


def repair_imported(graph: g.Graph) -> None:
    """Apply the import repairs whose intent is unambiguous, noting each in ``graph.notes``."""
    for name in graph.inputs():
        node = graph.nodes[name]
        shape = tuple(node.shape)
        if not shape:
            raise InputError("Input node has no shape", file=graph.source, node=name,
                             hint="give nir.Input a shape, e.g. np.array([2, 34, 34])")
        if any(d <= 0 for d in shape):
            raise InputError(f"Input shape {shape} has a zero or negative dimension", file=graph.source,
                             node=name)
        if _drop_batch(shape, _expectation(graph, name)):
            graph.nodes[name] = g.Input(shape=shape[1:])
            graph.notes.append(f"{name}: dropped batch dimension {shape[0]} from Input shape {shape} -> {shape[1:]}")
    for name, node in list(graph.nodes.items()):
        if isinstance(node, g.Output) and node.shape is not None:
            graph.nodes[name] = g.Output(shape=None)
        if isinstance(node, g.Conv2d) and node.input_shape is None:
            graph.notes.append(f"{name}: Conv2d had no input_shape; inferred from the graph")
        if isinstance(node, (g.Neuron, g.Threshold)):
            changes = {}
            for k, a in node.arrays().items():
                if a.size > 1 and np.all(a == a.reshape(-1)[0]):
                    changes[k] = a.reshape(-1)[:1].copy()
            if changes:
                graph.nodes[name] = node.replace(**changes)
                graph.notes.append(f"{name}: uniform per-neuron {', '.join(sorted(changes))} taken as scalar")


def _broadcast_neuron_params(graph: g.Graph, name: str, in_shape: Tuple[int, ...]) -> None:
    """Expand per-channel neuron parameters (e.g. shape (C, 1, 1)) to the population's shape."""
    node = graph.nodes[name]
    if not isinstance(node, (g.Neuron, g.Threshold)) or not in_shape:
        return
    n = int(np.prod(in_shape))
    changes = {}
    for k, a in node.arrays().items():
        if 1 < a.size < n and a.ndim == len(in_shape):
            try:
                changes[k] = np.broadcast_to(a, in_shape).copy()
            except ValueError:
                continue
    if changes:
        graph.nodes[name] = node.replace(**changes)
        graph.notes.append(f"{name}: per-channel {', '.join(sorted(changes))} broadcast to {tuple(in_shape)}")


def check_flatten_conventions(graph: g.Graph, name: str, in_shape: Tuple[int, ...]) -> None:
    """Repair node conventions once the input shape is known (called by shape inference).

    A Flatten whose ``start_dim`` counts a batch dimension (torch's ``start_dim=1``) flattens
    everything; per-channel neuron parameters are broadcast to the population's shape.
    """
    _broadcast_neuron_params(graph, name, in_shape)
    node = graph.nodes[name]
    if not isinstance(node, g.Flatten) or node.start_dim == 0 or len(in_shape) < 2:
        return
    out = node.infer_shape(in_shape)
    want = _expected_input(graph, name)
    if want is not None and len(want) == 1 and len(out) > 1 and int(np.prod(in_shape)) == want[0]:
        graph.nodes[name] = node.replace(start_dim=0, end_dim=-1)
        graph.notes.append(f"{name}: Flatten start_dim={node.start_dim} counted a batch dimension; "
                           f"flattening all of {tuple(in_shape)}")
