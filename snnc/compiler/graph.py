"""The internal graph: named nodes (:mod:`snnc.compiler.nodes`) and directed edges.

A :class:`Graph` holds named nodes and directed edges; several edges into one node are summed and
cycles are allowed (the edges that close them are the graph's *recurrent edges*). The node kinds
are importable from here too (``from snnc.compiler.graph import Conv2d``); a graph stored in an
artifact is rebuilt and checked by :func:`snnc.compiler.stored.graph_from_json_and_arrays`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Tuple

import numpy as np

from snnc.compiler.nodes import (NODE_KINDS, RESET_MODES, I, IF, LI, LIF, Affine, AvgPool2d, BatchNorm, Conv2d,
                                 CubaLI, CubaLIF, Delay, Flatten, Input, Layer, Linear, Neuron, Node, Output,
                                 Scale, Shape, SpikeModeMixin, SumPool2d, Threshold, node_from, node_kinds, pair)

__all__ = ["NODE_KINDS", "RESET_MODES", "Affine", "AvgPool2d", "BatchNorm", "Conv2d", "CubaLI", "CubaLIF", "Delay",
           "Flatten", "Graph", "I", "IF", "Input", "LI", "LIF", "Layer", "Linear", "Neuron", "Node", "Output", "Scale",
           "Shape", "SpikeModeMixin", "SumPool2d", "Threshold", "iter_all_arrays", "node_from", "node_kinds", "pair"]


@dataclass
class Graph:
    """Named nodes and directed edges (summed at their destination); may contain cycles."""

    nodes: Dict[str, Node] = field(default_factory=dict)
    edges: List[Tuple[str, str]] = field(default_factory=list)
    #: Shapes (without batch) of each node's output, filled by shape inference.
    shapes: Dict[str, Shape] = field(default_factory=dict)
    #: What import and the passes changed or assumed, for the compile report.
    notes: List[str] = field(default_factory=list)
    #: Where the graph came from (file path or description), for error messages.
    source: str = ""

    # ---- structure
    def copy(self) -> "Graph":
        """Return a shallow structural copy (nodes are shared; passes replace, not mutate, nodes)."""
        return Graph(dict(self.nodes), list(self.edges), dict(self.shapes), list(self.notes), self.source)

    def predecessors(self, name: str) -> List[str]:
        """Return the sources of edges into ``name``, in edge order."""
        return [s for s, d in self.edges if d == name]

    def successors(self, name: str) -> List[str]:
        """Return the destinations of edges out of ``name``, in edge order."""
        return [d for s, d in self.edges if s == name]

    def inputs(self) -> List[str]:
        """Return the names of Input nodes."""
        return [n for n, v in self.nodes.items() if isinstance(v, Input)]

    def outputs(self) -> List[str]:
        """Return the names of Output nodes."""
        return [n for n, v in self.nodes.items() if isinstance(v, Output)]

    def _order_and_back_edges(self) -> Tuple[List[str], List[Tuple[str, str]]]:
        succ: Dict[str, List[str]] = {n: [] for n in self.nodes}
        for s, d in self.edges:
            succ[s].append(d)
        state: Dict[str, int] = {}
        post: List[str] = []
        back: List[Tuple[str, str]] = []
        roots = self.inputs() + [n for n in self.nodes if n not in self.inputs()]
        for root in roots:
            if root in state:
                continue
            stack = [(root, iter(succ[root]))]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    state[node] = 2
                    post.append(node)
                elif state.get(nxt) == 1:
                    back.append((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
        return post[::-1], back

    def topological_order(self) -> List[str]:
        """Return node names in execution order (inputs first; recurrent edges ignored)."""
        return self._order_and_back_edges()[0]

    def recurrent_edges(self) -> List[Tuple[str, str]]:
        """Return the edges that close cycles; they carry the previous step's value."""
        return self._order_and_back_edges()[1]

    def layers(self) -> List[str]:
        """Return the names of fused :class:`Layer` nodes in execution order."""
        return [n for n in self.topological_order() if isinstance(self.nodes[n], Layer)]

    # ---- serialisation
    def to_json_and_arrays(self) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
        """Return a JSON-able description and the arrays it refers to (``node/param`` keys)."""
        arrays: Dict[str, np.ndarray] = {}
        nodes = []
        for name, node in self.nodes.items():
            for k, v in node.arrays().items():
                arrays[f"{name}/{k}"] = np.asarray(v, order="C")
            nodes.append({"name": name, "kind": node.kind, "attrs": node.attrs(),
                          "arrays": sorted(node.arrays())})
        desc = {"nodes": nodes, "edges": [list(e) for e in self.edges],
                "shapes": {k: list(v) for k, v in self.shapes.items()}, "notes": list(self.notes)}
        return desc, arrays

    def fingerprint(self) -> str:
        """Return a sha256 hex digest of the graph's structure and parameters."""
        desc, arrays = self.to_json_and_arrays()
        desc = dict(desc, notes=[])
        h = hashlib.sha256(json.dumps(desc, sort_keys=True).encode())
        for k in sorted(arrays):
            a = arrays[k]
            h.update(k.encode() + str(a.dtype).encode() + str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


def iter_all_arrays(graph: Graph) -> Iterable[Tuple[str, str, np.ndarray]]:
    """Yield ``(node, param, array)`` for every numeric parameter in the graph."""
    for name, node in graph.nodes.items():
        for k, v in node.arrays().items():
            yield name, k, v
