"""Paths into Loihi layers and their timing: which spiking source feeds a layer through which synapses.

A path runs from a spiking source (the Input or a spiking layer) through neuron-less nodes
(synapse chains, ``Delay`` nodes) into a layer; :func:`expand_paths` collects them (a :class:`Term`
each) with their float-model delay. On Loihi every such path is one synaptic hop of one step:

on Loihi *every* synaptic hop delivers one step later. In the float model a forward
  edge is instantaneous, a recurrent edge carries the previous step and a ``Delay`` node its
  steps. The lowering looks for per-layer offsets ``tau`` with ``loihi_L(t) = float_L(t - tau_L)``
  (``tau_L = tau_source + 1 - float_delay(path)`` for every path): when they exist the Loihi
  network is the float model shifted per layer (reported as ``latency_steps`` for the output and
  ``layer_lag_steps``), and explicit ``Delay`` nodes are absorbed into the hops. When they do not
  (paths of unequal hop counts, loops whose hop count differs from their float delay), the Loihi
  network computes something else than the float graph -- which ``with_loihi_delays`` turns into
  the float graph that Loihi does compute -- and the report says so; a graph with ``Delay`` nodes
  must then be made consistent (the rule ``loihi.timing.delay``). A layer with a constant bias
  and ``tau > 0`` gets ``bias_onset_step = tau``: its bias is written after ``tau`` steps, when its
  float-model copy starts, so it does not integrate ``tau`` extra bias steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Set, Tuple

import numpy as np

from snnc.compiler.graph import Affine, Conv2d, Delay, Graph, Input, Layer, Node
from snnc.errors import SnncError, UnsupportedError, Violation
from snnc.targets.loihi import rules


@dataclass
class Term:
    """One path from a spiking source (Input or spiking layer) into a Loihi layer."""

    source: str
    chain: List[Node]
    float_delay: int
    #: Weighted nodes (by id) whose bias this path carries (a bias counts once per node and layer).
    owner_ids: Tuple[int, ...] = ()


def is_spiking_layer(node: Node) -> bool:
    """True for a fused layer whose neurons spike on Loihi (not a readout, not neuron-less)."""
    return isinstance(node, Layer) and node.neuron is not None and node.neuron.kind not in rules.READOUT_NEURONS


def delay_steps(node: Delay, dt_s: float, name: str) -> int:
    """Return a Delay node's delay in whole steps of ``dt_s`` (UnsupportedError if it differs per element)."""
    steps = np.unique(np.rint(np.asarray(node.delay, dtype=np.float64) / dt_s))
    if steps.size != 1:
        raise UnsupportedError("Delay with differing per-element delays", node=name)
    return int(steps[0])


def expand_paths(graph: Graph, name: str, chain: List[Node], delay: int, owners: Tuple[int, ...], back: Set[Tuple[str, str]],
            dt_s: float, seen: Tuple[str, ...], terms: List[Term], violations: List[Violation], at: str) -> None:
    """Collect the paths from spiking sources into ``name`` (a layer's input side) as terms."""
    for p in graph.predecessors(name):
        d = delay + (1 if (p, name) in back else 0)
        node = graph.nodes[p]
        if isinstance(node, Input) or is_spiking_layer(node):
            terms.append(Term(p, list(chain), d, owners))
        elif p in seen:
            violations.append(Violation("loihi.graph.cycle", p, "a loop without neurons", "a neuron in every loop"))
        elif isinstance(node, Layer) and node.neuron is None:
            ids = tuple(id(s) for s in node.synapses if isinstance(s, (Affine, Conv2d)))
            expand_paths(graph, p, list(node.synapses) + chain, d, owners + ids, back, dt_s, seen + (p,), terms,
                    violations, at)
        elif isinstance(node, Delay):
            try:
                steps = delay_steps(node, dt_s, p)
            except SnncError as exc:
                violations.append(Violation("loihi.graph.delay", p, exc.message, "one delay per node"))
                continue
            expand_paths(graph, p, chain, d + steps, owners, back, dt_s, seen + (p,), terms, violations, at)
        elif isinstance(node, Layer):
            violations.append(Violation("loihi.readout.fanout", p, f"non-spiking {node.neuron.kind} feeds {at}",
                                        "only the graph output",
                                        "Loihi layers exchange binary spikes; make this layer spiking"))
        else:
            violations.append(Violation("loihi.graph.node", p, node.kind, "fused layers, Delay, Input"))


def solve_offsets(layer_terms: Dict[str, List[Term]], inp: str) -> Tuple[Dict[str, int], bool]:
    """Return offsets tau (float -> Loihi lag per layer) and whether every path agrees with them."""
    tau: Dict[str, int] = {inp: 0}
    ok = True
    changed = True
    rounds = 0
    while changed and rounds < len(layer_terms) + 2:
        changed = False
        rounds += 1
        for name, terms in layer_terms.items():
            for t in terms:
                if t.source in tau:
                    want = tau[t.source] + 1 - t.float_delay
                    if name not in tau:
                        tau[name] = want
                        changed = True
    for name, terms in layer_terms.items():
        for t in terms:
            if name not in tau or t.source not in tau or tau[name] != tau[t.source] + 1 - t.float_delay:
                ok = False
    return tau, ok


def min_hops(layer_terms: Dict[str, List[Term]], inp: str, back: Set[Tuple[str, str]]) -> Dict[str, int]:
    """Return the fewest synaptic hops from the input to every layer."""
    dist = {inp: 0}
    changed = True
    while changed:
        changed = False
        for name, terms in layer_terms.items():
            for t in terms:
                if t.source in dist and dist[t.source] + 1 < dist.get(name, 1 << 30):
                    dist[name] = dist[t.source] + 1
                    changed = True
    return dist


def with_loihi_delays(graph: Graph, dt_s: float) -> Graph:
    """Return the float graph that Loihi computes: the passed graph with one-step ``Delay`` nodes inserted.

    On Loihi every synaptic hop (a path from a spiking source through synapses into a layer) takes
    one step; in the float model a forward edge takes none and a recurrent edge one. For every
    edge into a Loihi layer whose paths have float delay 0, a ``Delay`` of ``dt_s`` is inserted on
    that edge (recurrent edges already carry one step). Simulating the result on the cpu target
    gives, step for step, the spikes the Loihi network emits (up to quantisation). Raises
    :class:`UnsupportedError` where a path's float delay exceeds one step or the paths through one
    edge disagree (Loihi cannot be slower per hop than one step here).
    """
    from snnc.compiler.pipeline import run_pipeline
    from snnc.targets.base import get_target

    g = run_pipeline(graph, get_target("loihi").passes())
    back = set(g.recurrent_edges())
    outs = g.outputs()
    out_preds = set(g.predecessors(outs[0])) if outs else set()
    targets = [n for n in g.topological_order() if isinstance(g.nodes[n], Layer) and
               (is_spiking_layer(g.nodes[n]) or n in out_preds)]
    res = g.copy()
    res.edges = list(g.edges)
    k = 0
    for name in targets:
        for q in dict.fromkeys(g.predecessors(name)):
            d0 = 1 if (q, name) in back else 0
            node = g.nodes[q]
            if isinstance(node, Input) or is_spiking_layer(node):
                delays = {d0}
            else:
                terms: List[Term] = []
                vs: List[Violation] = []
                extra_d = delay_steps(node, dt_s, q) if isinstance(node, Delay) else 0
                expand_paths(g, q, [], d0 + extra_d, (), back, dt_s, (name, q), terms, vs, name)
                if vs:
                    raise UnsupportedError(f"cannot time the paths into {name}: {vs[0].found}", node=name)
                delays = {t.float_delay for t in terms}
            if delays == {1}:
                continue
            if delays != {0}:
                raise UnsupportedError(f"paths through {q} -> {name} have float delays {sorted(delays)}; Loihi "
                                       "gives each hop exactly one step", node=name)
            for j, e in enumerate(res.edges):
                if e == (q, name):
                    dn = f"loihi_delay_{k}"
                    k += 1
                    res.nodes[dn] = Delay(delay=np.array([dt_s]))
                    res.shapes[dn] = tuple(g.shapes[q])
                    res.edges[j] = (q, dn)
                    res.edges.append((dn, name))
    res.notes.append(f"with_loihi_delays: {k} one-step Delay node(s) inserted (one step per synaptic hop)")
    return res
