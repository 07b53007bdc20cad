"""NIR front end: ``.nir`` files (or in-memory ``nir.NIRGraph``s) from any framework -> :class:`Graph`.

The file is read with h5py into NIR's dictionary form and converted node by node, without
constructing ``nir`` objects (whose ``__post_init__`` asserts on the files exporters really
write). Import is forgiving where the intent is clear and records each repair in
``graph.notes``; it refuses what is ambiguous.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from snnc.compiler import graph as g
from snnc.compiler.repairs import repair_imported
from snnc.errors import InputError, ShapeError, SnncError, UnsupportedError

log = logging.getLogger(__name__)

NIR_MAGIC = b"\x89HDF\r\n\x1a\n"


def _s(x: Any) -> Any:
    if isinstance(x, bytes):
        return x.decode("utf8")
    if isinstance(x, np.ndarray) and x.dtype.kind == "S":
        return x.astype(str)
    return x


def _hdf_to_dict(node: Any) -> Dict[str, Any]:
    import h5py

    out: Dict[str, Any] = {}
    for key, item in node.items():
        if isinstance(item, h5py.Group):
            out[key] = _hdf_to_dict(item)
        else:
            out[key] = _s(item[()])
    return out


def read_nir_dict(path: str) -> Dict[str, Any]:
    """Read a ``.nir`` HDF5 file into NIR's nested dictionary form, with clear errors."""
    import h5py

    if not os.path.exists(path):
        raise InputError("file not found", file=path, hint="check the path")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as e:
        raise InputError(f"cannot read file: {e.strerror}", file=path) from None
    if head != NIR_MAGIC:
        raise InputError("not a NIR file (no HDF5 signature)", file=path,
                         hint="give a .nir file written by nir.write, or a torch .pt model")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise InputError("HDF5 file has no NIR 'node' group", file=path,
                                 hint="is this a NIR file? lava-dl .net files are not NIR")
            return _hdf_to_dict(f["node"])
    except SnncError:
        raise
    except Exception as e:  # h5py raises many kinds (OSError, KeyError, TypeError ...) on damaged files
        raise InputError(f"NIR file is truncated or corrupt ({type(e).__name__}: {e})", file=path,
                         hint="re-export the model; an exporter that failed half-way leaves such files") from None


def _arr(d: Dict[str, Any], key: str, default: Any = None) -> np.ndarray:
    v = d.get(key, default)
    if v is None:
        raise KeyError(key)
    return np.asarray(v, dtype=np.float64)


def _opt_tuple(v: Any) -> Optional[Tuple[int, ...]]:
    if v is None:
        return None
    a = np.asarray(v).reshape(-1)
    return tuple(int(x) for x in a) if a.size else None


def _padding(v: Any, name: str) -> Tuple[int, int]:
    if isinstance(v, str) or (isinstance(v, np.ndarray) and v.dtype.kind in "US"):
        raise UnsupportedError(f"string padding '{v}' is not supported", node=name,
                               hint="export with explicit integer padding")
    return g.pair(v)


def _conv2d(d: Dict[str, Any], name: str) -> g.Node:
    return g.Conv2d(weight=_arr(d, "weight"), bias=np.asarray(d.get("bias", np.zeros(0)), dtype=np.float64).reshape(-1),
                    stride=g.pair(d.get("stride", 1)), padding=_padding(d.get("padding", 0), name),
                    dilation=g.pair(d.get("dilation", 1)), groups=int(np.asarray(d.get("groups", 1))),
                    input_shape=_opt_tuple(d.get("input_shape")))


def _pool(cls: type) -> Callable[[Dict[str, Any], str], g.Node]:
    def make(d: Dict[str, Any], name: str) -> g.Node:
        k = d["kernel_size"]
        return cls(kernel_size=g.pair(k), stride=g.pair(d.get("stride", k)), padding=g.pair(d.get("padding", 0)))
    return make


def _neuron(cls: type, fields: Tuple[str, ...], defaults: Dict[str, float]) -> Callable[[Dict[str, Any], str], g.Node]:
    def make(d: Dict[str, Any], name: str) -> g.Node:
        kw = {}
        for f in fields:
            if f in d and d[f] is not None:
                kw[f] = np.asarray(d[f], dtype=np.float64)
            elif f in defaults:
                kw[f] = np.asarray(defaults[f], dtype=np.float64)
            else:
                raise KeyError(f)
        return cls(**kw)
    return make


#: How each NIR node type becomes an internal node; keyed by NIR's ``type`` string.
FROM_NIR: Dict[str, Callable[[Dict[str, Any], str], g.Node]] = {
    "Input": lambda d, n: g.Input(shape=_opt_tuple(d.get("shape")) or ()),
    "Output": lambda d, n: g.Output(shape=_opt_tuple(d.get("shape"))),
    "Affine": lambda d, n: g.Affine(weight=_arr(d, "weight"), bias=_arr(d, "bias").reshape(-1)),
    "Linear": lambda d, n: g.Linear(weight=_arr(d, "weight")),
    "Scale": lambda d, n: g.Scale(scale=_arr(d, "scale")),
    "Conv2d": _conv2d,
    "SumPool2d": _pool(g.SumPool2d),
    "AvgPool2d": _pool(g.AvgPool2d),
    "Flatten": lambda d, n: g.Flatten(start_dim=int(np.asarray(d.get("start_dim", 1))),
                                      end_dim=int(np.asarray(d.get("end_dim", -1)))),
    "Delay": lambda d, n: g.Delay(delay=_arr(d, "delay")),
    "Threshold": lambda d, n: g.Threshold(threshold=_arr(d, "threshold")),
    "I": _neuron(g.I, ("r",), {}),
    "IF": _neuron(g.IF, ("r", "v_threshold", "v_reset"), {"v_reset": 0.0}),
    "LI": _neuron(g.LI, ("tau", "r", "v_leak"), {}),
    "LIF": _neuron(g.LIF, ("tau", "r", "v_leak", "v_threshold", "v_reset"), {"v_reset": 0.0}),
    "CubaLI": _neuron(g.CubaLI, ("tau_syn", "tau_mem", "r", "v_leak", "w_in"), {"w_in": 1.0}),
    "CubaLIF": _neuron(g.CubaLIF, ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
                       {"w_in": 1.0, "v_reset": 0.0}),
}


def _type_name(v: Any) -> Optional[str]:
    """Return a node's ``type`` field as a string, or None when it is not one."""
    v = _s(v)
    if isinstance(v, np.ndarray) and v.size == 1:
        v = _s(v.reshape(-1)[0])
    return v if isinstance(v, str) else None


def _edge_pairs(d: Dict[str, Any]) -> List[Tuple[str, str]]:
    try:
        pairs = np.asarray(d.get("edges") if d.get("edges") is not None else np.zeros((0, 2), dtype=str))
        return [(str(_s(a)), str(_s(b))) for a, b in pairs.reshape(-1, 2)] if pairs.size else []
    except (ValueError, TypeError):
        return []  # reported with its reason where the edges are read


def _edge_name_repairs(d: Dict[str, Any], nodes: Dict[str, Any], prefix: str, source: str,
                       graph: g.Graph) -> Dict[str, str]:
    """Return ``{node key: edge name}`` where a graph's edges name its one unreferenced node otherwise.

    snnTorch's recurrent exporters write a subgraph whose neuron node is keyed by the parent's name
    (``lif1/nodes/lif1``) while its edges call it ``lif``: with exactly one unknown edge name and
    exactly one node no edge mentions, the intent is clear and the node takes the edge's name.
    """
    pairs = _edge_pairs(d)
    named = {x for pair in pairs for x in pair}
    unknown = sorted(named - set(nodes))
    if len(unknown) != 1:
        return {}
    io = ("Input", "Output")
    unused = [k for k in nodes if k not in named and isinstance(nodes[k], dict)
              and _type_name(nodes[k].get("type")) not in io]
    if len(unused) != 1 or unknown[0] in nodes:
        return {}
    graph.notes.append(f"{prefix}{unused[0]}: renamed to '{prefix}{unknown[0]}', the name this graph's edges use "
                       f"for it (its only unreferenced node; snnTorch's recurrent exporter writes such files)")
    log.info("NIR import: node %s%s renamed to %s%s to match the edges", prefix, unused[0], prefix, unknown[0])
    return {unused[0]: unknown[0]}


def _flatten_into(d: Dict[str, Any], prefix: str, graph: g.Graph, source: str,
                  passthrough: List[str]) -> Tuple[List[str], List[str]]:
    """Add the (possibly nested) NIR graph dict ``d`` to ``graph``; return its inputs and outputs."""
    nodes = d.get("nodes")
    if not isinstance(nodes, dict):
        raise InputError("NIR graph has no 'nodes'", file=source)
    ins: List[str] = []
    outs: List[str] = []
    sub_io: Dict[str, Tuple[List[str], List[str]]] = {}
    renames = _edge_name_repairs(d, nodes, prefix, source, graph)
    for key in sorted(nodes):
        nd = nodes[key]
        name = f"{prefix}{renames.get(key, key)}"
        typ = _type_name(nd.get("type")) if isinstance(nd, dict) else None
        if typ == "NIRGraph":
            sub_io[key] = _flatten_into(nd, f"{name}.", graph, source, passthrough)
            continue
        make = FROM_NIR.get(str(typ))
        if make is None:
            raise UnsupportedError(f"NIR node type '{typ}' is not supported", file=source, node=name,
                                   hint=f"supported types: {', '.join(sorted(FROM_NIR))}")
        try:
            node = make(nd, name)
        except KeyError as e:
            raise InputError(f"{typ} node lacks the field {e}", file=source, node=name) from None
        except SnncError:
            raise
        except (TypeError, ValueError, IndexError, AttributeError, OverflowError, ZeroDivisionError) as e:
            raise InputError(f"{typ} node has malformed fields ({type(e).__name__}: {e})", file=source,
                             node=name) from None
        if prefix and isinstance(node, (g.Input, g.Output)):
            # a nested graph's own Input/Output become pass-through points, removed below
            graph.nodes[name] = g.Scale(scale=np.ones(1))
            passthrough.append(name)
            (ins if isinstance(node, g.Input) else outs).append(name)
            continue
        graph.nodes[name] = node
        if isinstance(node, g.Input):
            ins.append(name)
        elif isinstance(node, g.Output):
            outs.append(name)
    edges = d.get("edges")
    if edges is None:
        edges = np.zeros((0, 2), dtype=str)
    try:
        pairs = np.asarray(edges)
        if pairs.dtype.kind not in "USO" and pairs.size:
            raise ValueError(f"edge names have dtype {pairs.dtype}")
        pairs = pairs.reshape(-1, 2)
    except ValueError as e:
        raise InputError(f"NIR graph's edges are malformed ({e})", file=source,
                         hint="edges are (source, destination) name pairs") from None
    for pair in pairs:
        src, dst = (str(_s(x)) for x in pair)
        srcs = sub_io[src][1] if src in sub_io else [f"{prefix}{src}"]
        dsts = sub_io[dst][0] if dst in sub_io else [f"{prefix}{dst}"]
        for s in srcs:
            for t in dsts:
                for end in (s, t):
                    if end not in graph.nodes:
                        raise InputError(f"edge {src} -> {dst} refers to unknown node '{end}'", file=source)
                graph.edges.append((s, t))
    return ins, outs


def _bypass_passthroughs(graph: g.Graph, passthrough: List[str]) -> None:
    for name in passthrough:
        preds, succs = graph.predecessors(name), graph.successors(name)
        graph.edges = [e for e in graph.edges if name not in e] + [(p, s) for p in preds for s in succs]
        del graph.nodes[name]


def from_nir_dict(d: Dict[str, Any], source: str = "<nir>") -> g.Graph:
    """Convert NIR's dictionary form of a graph into an internal :class:`Graph`."""
    graph = g.Graph(source=source)
    if _type_name(d.get("type")) != "NIRGraph":
        raise InputError(f"top-level NIR node is '{d.get('type')}', expected 'NIRGraph'", file=source)
    passthrough: List[str] = []
    _flatten_into(d, "", graph, source, passthrough)
    _bypass_passthroughs(graph, passthrough)
    if not graph.inputs():
        raise InputError("NIR graph has no Input node", file=source, hint="add nir.Input with the input shape")
    repair_imported(graph)
    return graph


def _nir_obj_to_dict(obj: Any) -> Dict[str, Any]:
    d = obj.to_dict()

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        return _s(x)
    return clean(d)


def load_nir(src: Any) -> g.Graph:
    """Load a ``.nir`` path or an in-memory ``nir.NIRGraph`` into a :class:`Graph`."""
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        return from_nir_dict(read_nir_dict(path), source=path)
    if type(src).__name__ == "NIRGraph":
        return from_nir_dict(_nir_obj_to_dict(src), source="<nir.NIRGraph>")
    raise InputError(f"cannot read a NIR graph from {type(src).__name__}")


__all__ = ["load_nir", "from_nir_dict", "read_nir_dict", "repair_imported", "FROM_NIR", "ShapeError"]
