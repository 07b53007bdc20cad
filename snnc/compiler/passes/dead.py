"""Dead-node removal: nodes on no path from an Input to an Output."""
from __future__ import annotations

from typing import Callable, Iterable, List, Set

from snnc.compiler.graph import Graph


def _closure(start: Iterable[str], step: Callable[[str], List[str]]) -> Set[str]:
    seen = set(start)
    todo = list(seen)
    while todo:
        for m in step(todo.pop()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def remove_dead(graph: Graph) -> Graph:
    """Return a copy without nodes that cannot influence an Output."""
    live = _closure(graph.inputs(), graph.successors) & _closure(graph.outputs(), graph.predecessors)
    live |= set(graph.inputs())
    out = graph.copy()
    for n in [n for n in graph.nodes if n not in live]:
        del out.nodes[n]
        out.shapes.pop(n, None)
        out.notes.append(f"{n}: removed (cannot reach an Output)")
    out.edges = [(s, d) for s, d in out.edges if s in live and d in live]
    return out
