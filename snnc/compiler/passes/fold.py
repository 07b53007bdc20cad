"""Folding passes: BatchNorm and Scale into weights, AvgPool into SumPool + Scale."""
from __future__ import annotations

from typing import Optional

import numpy as np

from snnc.compiler.graph import (AvgPool2d, BatchNorm, Conv2d, CubaLI, Graph, I, LI, Node, Scale,
                                 SumPool2d, Threshold, Affine)
from snnc.errors import UnsupportedError


def _only_succ(graph: Graph, name: str) -> Optional[str]:
    s = graph.successors(name)
    return s[0] if len(s) == 1 else None


def _only_pred(graph: Graph, name: str) -> Optional[str]:
    p = graph.predecessors(name)
    return p[0] if len(p) == 1 else None


def _remove_node(graph: Graph, name: str) -> None:
    """Bypass and delete a single-input node (in place on a copy)."""
    preds, succs = graph.predecessors(name), graph.successors(name)
    graph.edges = [e for e in graph.edges if name not in e] + [(p, s) for p in preds for s in succs]
    del graph.nodes[name]
    graph.shapes.pop(name, None)


def _scale_out(node: Node, gain: np.ndarray, shift: Optional[np.ndarray] = None) -> Node:
    """Return an Affine/Conv2d whose output is multiplied per output channel by ``gain`` (+ ``shift``)."""
    g = np.broadcast_to(np.asarray(gain, dtype=np.float64).reshape(-1), (node.weight.shape[0],))
    w = node.weight * g.reshape((-1,) + (1,) * (node.weight.ndim - 1))
    b = node.bias * g + (0.0 if shift is None else shift)
    return node.replace(weight=w, bias=b)


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold each BatchNorm into the Affine or Conv2d that feeds only it."""
    out = graph.copy()
    for name in [n for n, v in out.nodes.items() if isinstance(v, BatchNorm)]:
        bn = out.nodes[name]
        pred = _only_pred(out, name)
        if pred is None or not isinstance(out.nodes[pred], (Affine, Conv2d)) or _only_succ(out, pred) != name:
            raise UnsupportedError("BatchNorm is not directly after a Conv2d or Affine it alone reads",
                                   file=graph.source, node=name,
                                   hint="place BatchNorm right after a convolution or linear layer")
        gain, shift = bn.gain_shift()
        out.nodes[pred] = _scale_out(out.nodes[pred], gain, shift)
        _remove_node(out, name)
        out.notes.append(f"{name}: BatchNorm folded into {pred}")
    return out


def avgpool_to_sumpool(graph: Graph) -> Graph:
    """Replace each AvgPool2d by a SumPool2d followed by a Scale of 1/(kh*kw)."""
    out = graph.copy()
    for name in [n for n, v in out.nodes.items() if isinstance(v, AvgPool2d)]:
        node = out.nodes[name]
        kh, kw = node.kernel_size
        out.nodes[name] = SumPool2d(kernel_size=node.kernel_size, stride=node.stride, padding=node.padding)
        sname = f"{name}.scale"
        out.nodes[sname] = Scale(scale=np.array([1.0 / (kh * kw)]))
        out.edges = [(sname, d) if s == name else (s, d) for s, d in out.edges] + [(name, sname)]
        if name in out.shapes:
            out.shapes[sname] = out.shapes[name]
    return out


def _fold_into_neuron(node: Node, s: float) -> Optional[Node]:
    if isinstance(node, CubaLI):
        return node.replace(w_in=node.w_in * s)
    if isinstance(node, (LI, I)):
        return node.replace(r=node.r * s)
    if isinstance(node, Threshold) and s > 0:
        return node.replace(threshold=node.threshold / s)
    return None


def fold_scale(graph: Graph) -> Graph:
    """Fold each Scale into the weights before it, the weights after it, or the neuron after it."""
    out = graph.copy()
    for name in [n for n, v in out.nodes.items() if isinstance(v, Scale)]:
        sc = out.nodes[name].scale
        pred, succ = _only_pred(out, name), _only_succ(out, name)
        if pred is not None and isinstance(out.nodes[pred], (Affine, Conv2d)) and _only_succ(out, pred) == name \
                and sc.size in (1, out.nodes[pred].weight.shape[0]):
            out.nodes[pred] = _scale_out(out.nodes[pred], sc)
            where = pred
        elif succ is not None and sc.size == 1 and _only_pred(out, succ) == name and \
                isinstance(out.nodes[succ], (Affine, Conv2d)):
            nxt = out.nodes[succ]
            out.nodes[succ] = nxt.replace(weight=nxt.weight * float(sc.reshape(-1)[0]))
            where = succ
        elif succ is not None and sc.size == 1 and _only_pred(out, succ) == name and \
                _fold_into_neuron(out.nodes[succ], float(sc.reshape(-1)[0])) is not None:
            out.nodes[succ] = _fold_into_neuron(out.nodes[succ], float(sc.reshape(-1)[0]))
            where = succ
        else:
            continue
        _remove_node(out, name)
        out.notes.append(f"{name}: Scale folded into {where}")
    return out
