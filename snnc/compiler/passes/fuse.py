"""Fusion pass: each synapse chain and the neuron it drives become one Layer."""
from __future__ import annotations

from typing import List

from snnc.compiler.graph import Flatten, Graph, Layer, Neuron, Threshold


def _chainable(graph: Graph, name: str) -> bool:
    n = graph.nodes[name]
    return bool(n.synapse or isinstance(n, Flatten))


def fuse_layers(graph: Graph) -> Graph:
    """Fuse synapse chains (Affine/Conv/Pool/Scale/Flatten) with their single neuron into Layers."""
    out = graph.copy()
    consumed: set = set()
    for name in graph.topological_order():
        node = graph.nodes[name]
        is_neuron = isinstance(node, (Neuron, Threshold))
        if not (is_neuron or _chainable(graph, name)) or name in consumed:
            continue
        if not is_neuron:
            succ = graph.successors(name)
            # a chain that ends without a neuron becomes a neuron-less layer at its last synapse
            if len(succ) == 1 and len(graph.predecessors(succ[0])) == 1 and \
                    (_chainable(graph, succ[0]) or isinstance(graph.nodes[succ[0]], (Neuron, Threshold))):
                continue
        chain: List[str] = []
        cur = name if not is_neuron else None
        if is_neuron:
            preds = graph.predecessors(name)
            cur = preds[0] if len(preds) == 1 else None
        else:
            chain.append(name)
            preds = graph.predecessors(name)
            cur = preds[0] if len(preds) == 1 else None
        while cur is not None and cur not in consumed and _chainable(graph, cur) and len(graph.successors(cur)) == 1:
            chain.insert(0, cur)
            preds = graph.predecessors(cur)
            cur = preds[0] if len(preds) == 1 else None
        if not is_neuron and not chain:
            continue
        layer = Layer(synapses=tuple(graph.nodes[c] for c in chain), neuron=node if is_neuron else None)
        members = chain + ([name] if is_neuron else [])
        head = members[0]
        consumed.update(members)
        in_edges = [(s, d) for s, d in out.edges if d == head and s not in members]
        out_edges = [(s, d) for s, d in out.edges if s == members[-1] and d not in members]
        out.edges = [e for e in out.edges if e[0] not in members and e[1] not in members]
        out.edges += [(s, name) for s, _ in in_edges] + [(name, d) for _, d in out_edges]
        for m in members:
            out.nodes.pop(m, None)
        out.nodes[name] = layer
        out.shapes[name] = graph.shapes.get(name, ())
        if len(members) > 1:
            out.notes.append(f"{name}: fused {' -> '.join(members)}")
    # keep the original node order for determinism
    order = [n for n in graph.nodes if n in out.nodes] + [n for n in out.nodes if n not in graph.nodes]
    out.nodes = {n: out.nodes[n] for n in order}
    return out
