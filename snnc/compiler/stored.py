"""Graphs stored in artifacts: rebuilt from :meth:`Graph.to_json_and_arrays`'s form and checked.

The check runs shape inference on the rebuilt graph and compares it with the stored shapes, so
this module sits above :mod:`snnc.compiler.passes.shapes` (the graph itself does not import it).
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from snnc.compiler.graph import Graph, node_from
from snnc.compiler.passes.shapes import infer_shapes
from snnc.errors import ArtifactError, SnncError


def _rebuild(desc: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Graph:
    g = Graph()
    for nd in desc["nodes"]:
        g.nodes[nd["name"]] = node_from(nd["kind"], nd["attrs"], {k: arrays[f"{nd['name']}/{k}"] for k in nd["arrays"]})
    g.edges = [tuple(e) for e in desc["edges"]]  # type: ignore[misc]
    g.shapes = {k: tuple(v) for k, v in desc.get("shapes", {}).items()}
    g.notes = list(desc.get("notes", []))
    return g


def graph_from_json_and_arrays(desc: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Graph:
    """Rebuild a graph written by :meth:`Graph.to_json_and_arrays`; ArtifactError if it is malformed.

    The stored shapes are checked against shape inference on the rebuilt graph.
    """
    try:
        g = _rebuild(desc, arrays)
    except ArtifactError:
        raise
    except SnncError as e:
        raise ArtifactError(f"artifact graph is malformed: {e.message}", node=e.node) from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
        raise ArtifactError(f"artifact graph is malformed ({type(e).__name__}: {e})") from None
    for e in g.edges:
        if len(e) != 2 or any(not isinstance(n, str) or n not in g.nodes for n in e):
            raise ArtifactError(f"artifact graph has an edge {list(e)!r:.80} to or from an unknown node")
    if not g.inputs() or not g.outputs():
        raise ArtifactError("artifact graph has no Input or no Output node")
    try:
        inferred = infer_shapes(g).shapes
    except SnncError as e:
        raise ArtifactError(f"artifact graph is inconsistent: {e.message}", node=e.node) from None
    if g.shapes and inferred != g.shapes:
        raise ArtifactError("artifact graph's stored shapes disagree with its nodes")
    g.shapes = inferred
    return g
