"""Fusion pass: each synapse chain and the neuron it drives become one Layer."""
from __future__ import annotations

from typing import List, Optional

from snnc.compiler.graph import Flatten, Graph, Layer, Neuron, Threshold


def _chainable(graph: Graph, name: str) -> bool:
    n = graph.nodes[name]
    return bool(n.synapse or isinstance(n, Flatten))


def _is_neuron(graph: Graph, name: str) -> bool:
    return isinstance(graph.nodes[name], (Neuron, Threshold))


def _single(xs: List[str]) -> Optional[str]:
    return xs[0] if len(xs) == 1 else None


def _continues(graph: Graph, name: str) -> bool:
    """True when ``name``'s only successor reads only it and extends the chain or ends it in a neuron."""
    nxt = _single(graph.successors(name))
    return nxt is not None and len(graph.predecessors(nxt)) == 1 and \
        (_chainable(graph, nxt) or _is_neuron(graph, nxt))


def fuse_layers(graph: Graph) -> Graph:
    """Fuse synapse chains (Affine/Conv/Pool/Scale/Flatten) with the single neuron they drive into Layers.

    A chain that ends without a neuron becomes a neuron-less Layer (a weighted readout).
    """
    out = graph.copy()
    consumed: set = set()
    for end in graph.topological_order():
        neuron = _is_neuron(graph, end)
        if not (neuron or _chainable(graph, end)) or (not neuron and _continues(graph, end)):
            continue
        chain: List[str] = [] if neuron else [end]
        cur = _single(graph.predecessors(chain[0] if chain else end))
        while cur is not None and cur not in consumed and _chainable(graph, cur) and len(graph.successors(cur)) == 1:
            chain.insert(0, cur)
            cur = _single(graph.predecessors(cur))
        members = chain + ([end] if neuron else [])
        consumed.update(members)
        layer = Layer(synapses=tuple(graph.nodes[c] for c in chain), neuron=graph.nodes[end] if neuron else None)
        inside = set(members)
        ins = [s for s, d in out.edges if d == members[0] and s not in inside]
        outs = [d for s, d in out.edges if s == members[-1] and d not in inside]
        loops = [(end, end)] * sum(1 for s, d in out.edges if s == members[-1] and d == members[0])
        out.edges = [e for e in out.edges if e[0] not in inside and e[1] not in inside]
        out.edges += [(s, end) for s in ins] + [(end, d) for d in outs] + loops
        for m in members:
            out.nodes.pop(m, None)
        out.nodes[end] = layer
        out.shapes[end] = graph.shapes.get(end, ())
        if len(members) > 1:
            out.notes.append(f"{end}: fused {' -> '.join(members)}")
    # keep the original node order for determinism
    out.nodes = {n: out.nodes[n] for n in list(graph.nodes) if n in out.nodes}
    return out
