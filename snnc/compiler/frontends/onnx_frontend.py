"""ONNX front end: a ReLU ANN in ONNX -> a rate-coded integrate-and-fire SNN :class:`Graph`.

Supported ONNX ops (a single chain from one input to one output): ``Conv``, ``Gemm``,
``MatMul`` (+ ``Add`` of a constant bias), ``BatchNormalization`` (folded into the Conv/Gemm
before it), ``Relu``, ``AveragePool``, ``GlobalAveragePool``, ``Flatten``, ``Reshape`` to
``(N, -1)``, and ``Identity``/``Dropout`` (inference no-ops). Anything else raises
:class:`~snnc.errors.UnsupportedError` naming the op.

Conversion (Diehl et al. 2015; Rueckauer et al. 2017, "data-based normalisation"):

* every ``Relu`` becomes a population of NIR ``IF`` neurons (``v_threshold = 1``, ``r = 1/dt``
  so that one step adds the input once: ``v' = v + x``); the last layer (the logits) becomes a
  non-spiking integrator ``I`` whose voltage accumulates the logits: read ``argmax`` of the
  output at the last step;
* weights are rescaled layer by layer with ``lambda_l``, the ``percentile`` (default 99.9th) of
  layer ``l``'s ReLU activations on the calibration data: ``W_l <- W_l lambda_{l-1}/lambda_l``,
  ``b_l <- b_l / lambda_l`` (``lambda_0 = 1``: the input is fed unscaled as a constant current
  every step, see :func:`rate_code`), so firing rates approximate ``a_l / lambda_l`` in [0, 1].

Accuracy cost of reset-to-zero: NIR's ``IF`` resets to ``v_reset`` (0), so whatever the voltage
exceeded the threshold by is lost at every spike; a neuron whose input per step is ``x`` fires at
``1/ceil(1/x)`` instead of ``x`` (e.g. ``x = 0.6`` fires every 2nd step: rate 0.5, a 17% loss),
which systematically lowers rates of strongly driven neurons, the more the deeper the net.
Reset-by-subtraction (not expressible in NIR) keeps the residue and has no such bias. The
percentile normalisation keeps most drives below 1 and so limits the loss; the measured
agreement with the ANN's argmax is in ``tests/test_interop_onnx.py``.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from snnc.compiler import graph as g
from snnc.errors import InputError, ShapeError, SnncError, UnsupportedError, ValueRangeError

log = logging.getLogger(__name__)

#: ONNX ops the converter reads (others raise UnsupportedError).
SUPPORTED_OPS = ("Conv", "Gemm", "MatMul", "Add", "BatchNormalization", "Relu", "AveragePool",
                 "GlobalAveragePool", "Flatten", "Reshape", "Identity", "Dropout")


@dataclass
class _Op:
    """One ANN layer of the parsed chain (internal)."""

    kind: str  # "affine", "conv", "relu", "avgpool", "flatten"
    name: str
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    attrs: Dict[str, Any] = field(default_factory=dict)


def _load(model: Any) -> Any:
    import onnx

    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise InputError("ONNX file not found", file=path)
        try:
            return onnx.load(path)
        except Exception as e:  # onnx raises DecodeError and others from protobuf
            raise InputError(f"cannot parse ONNX file ({type(e).__name__}: {e})", file=path,
                             hint="is this an .onnx model?") from None
    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as e:
            raise InputError(f"cannot parse ONNX bytes ({type(e).__name__}: {e})") from None
    if type(model).__name__ == "ModelProto":
        return model
    raise InputError(f"cannot read an ONNX model from {type(model).__name__}")


def _attrs(node: Any) -> Dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _sym_pads(pads: Sequence[int], name: str) -> Tuple[int, int]:
    p = [int(x) for x in pads] or [0, 0, 0, 0]
    if len(p) != 4 or p[0] != p[2] or p[1] != p[3]:
        raise UnsupportedError(f"asymmetric padding {p} is not supported", node=name,
                               hint="use symmetric padding (same on both sides)")
    return p[0], p[1]


def _parse(model: Any, source: str) -> Tuple[Tuple[int, ...], List[_Op]]:
    """Return the input shape (without batch) and the chain of ANN layers."""
    from onnx import numpy_helper

    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    for n in graph.node:  # Constant nodes hold shapes (Reshape) or weights
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(_attrs(n)["value"]).astype(np.float64)
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedError(f"ONNX graph has {len(inputs)} inputs and {len(graph.output)} outputs; "
                               "one of each is supported", file=source)
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in dims)
    if len(shape) < 2 or any(s <= 0 for s in shape[1:]):
        raise ShapeError(f"ONNX input shape {shape} must be (batch, ...) with fixed sizes", file=source)
    cur = inputs[0].name
    ops: List[_Op] = []
    for n in graph.node:
        if n.op_type == "Constant":
            continue
        name = n.name or f"{n.op_type}_{len(ops)}"
        data_in = [i for i in n.input if i and i not in consts]
        if data_in != [cur]:
            raise UnsupportedError(f"ONNX node {n.op_type} reads {data_in}; only a single chain is supported",
                                   file=source, node=name, hint="branches and skip connections are not converted")
        a = _attrs(n)
        p = [consts[i] for i in n.input if i in consts]
        op = n.op_type
        if op == "Conv":
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise UnsupportedError("Conv auto_pad is not supported", file=source, node=name)
            w = consts[n.input[1]]
            if w.ndim != 4:
                raise UnsupportedError(f"only 2-D convolutions are supported (weight {w.shape})", file=source,
                                       node=name)
            b = consts[n.input[2]] if len(n.input) > 2 and n.input[2] else np.zeros(w.shape[0])
            ops.append(_Op("conv", name, w, b, {"stride": tuple(a.get("strides", (1, 1))),
                                                "padding": _sym_pads(a.get("pads", ()), name),
                                                "dilation": tuple(a.get("dilations", (1, 1))),
                                                "groups": int(a.get("group", 1))}))
        elif op == "Gemm":
            w = consts[n.input[1]]
            if a.get("transA", 0):
                raise UnsupportedError("Gemm with transA is not supported", file=source, node=name)
            w = (w if a.get("transB", 0) else w.T) * float(a.get("alpha", 1.0))
            b = consts[n.input[2]] * float(a.get("beta", 1.0)) if len(n.input) > 2 and n.input[2] else np.zeros(w.shape[0])
            ops.append(_Op("affine", name, w, np.broadcast_to(b, (w.shape[0],)).copy()))
        elif op == "MatMul":
            if n.input[1] not in consts:
                raise UnsupportedError("MatMul with a non-constant right operand", file=source, node=name)
            w = consts[n.input[1]].T
            ops.append(_Op("affine", name, w, np.zeros(w.shape[0])))
        elif op == "Add":
            if not p or not ops or ops[-1].kind not in ("affine", "conv"):
                raise UnsupportedError("Add is supported only as a constant bias after MatMul/Gemm/Conv",
                                       file=source, node=name)
            prev = ops[-1]
            bias = p[0].reshape(-1)
            if bias.size not in (1, prev.bias.size):
                raise ShapeError(f"Add of {p[0].shape} does not match {prev.bias.size} outputs", file=source,
                                 node=name)
            prev.bias = prev.bias + bias
        elif op == "BatchNormalization":
            if not ops or ops[-1].kind not in ("affine", "conv"):
                raise UnsupportedError("BatchNormalization must follow a Conv or Gemm", file=source, node=name)
            scale, bias, mean, var = (consts[i] for i in n.input[1:5])
            gain = scale / np.sqrt(var + float(a.get("epsilon", 1e-5)))
            prev = ops[-1]
            prev.weight = prev.weight * gain.reshape((-1,) + (1,) * (prev.weight.ndim - 1))
            prev.bias = (prev.bias - mean) * gain + bias
        elif op == "Relu":
            ops.append(_Op("relu", name))
        elif op == "AveragePool":
            if a.get("ceil_mode", 0):
                raise UnsupportedError("AveragePool ceil_mode=1 is not supported", file=source, node=name)
            pads = _sym_pads(a.get("pads", ()), name)
            if any(pads) and not a.get("count_include_pad", 0):
                raise UnsupportedError("padded AveragePool must count the padding (count_include_pad=1)",
                                       file=source, node=name)
            k = tuple(int(x) for x in a["kernel_shape"])
            ops.append(_Op("avgpool", name, attrs={"kernel_size": k, "stride": tuple(a.get("strides", k)),
                                                   "padding": pads}))
        elif op == "GlobalAveragePool":
            ops.append(_Op("avgpool", name, attrs={"global": True}))
        elif op in ("Flatten", "Reshape"):
            if op == "Flatten" and int(a.get("axis", 1)) != 1:
                raise UnsupportedError("Flatten with axis != 1", file=source, node=name)
            if op == "Reshape" and (not p or p[0].size != 2 or p[0].reshape(-1)[1] != -1):
                raise UnsupportedError("Reshape other than to (batch, -1)", file=source, node=name)
            ops.append(_Op("flatten", name))
        elif op in ("Identity", "Dropout"):
            pass
        else:
            raise UnsupportedError(f"ONNX op '{op}' is not supported", file=source, node=name,
                                   hint=f"supported ops: {', '.join(SUPPORTED_OPS)}")
        cur = n.output[0]
    if cur != graph.output[0].name:
        raise UnsupportedError("the ONNX output is not the end of the chain", file=source)
    if not any(o.kind in ("affine", "conv") for o in ops):
        raise UnsupportedError("ONNX model has no Conv or Gemm layer", file=source)
    for o in ops:
        for a_ in (o.weight, o.bias):
            if a_ is not None and not np.all(np.isfinite(a_)):
                raise ValueRangeError("ONNX weights contain NaN or inf", file=source, node=o.name)
    return tuple(shape[1:]), ops


def _forward(ops: List[_Op], x: np.ndarray, record: bool = False) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Run the ANN chain (float64, torch); return the output and each ReLU's activations."""
    import torch
    import torch.nn.functional as F

    h = torch.as_tensor(np.asarray(x, dtype=np.float64))
    acts: List[np.ndarray] = []
    for o in ops:
        if o.kind == "affine":
            h = F.linear(h, torch.as_tensor(o.weight), torch.as_tensor(o.bias))
        elif o.kind == "conv":
            h = F.conv2d(h, torch.as_tensor(o.weight), torch.as_tensor(o.bias), stride=o.attrs["stride"],
                         padding=o.attrs["padding"], dilation=o.attrs["dilation"], groups=o.attrs["groups"])
        elif o.kind == "relu":
            h = torch.relu(h)
            if record:
                acts.append(h.numpy())
        elif o.kind == "avgpool":
            if o.attrs.get("global"):
                h = h.mean(dim=(2, 3), keepdim=True)
            else:
                h = F.avg_pool2d(h, o.attrs["kernel_size"], o.attrs["stride"], o.attrs["padding"])
        elif o.kind == "flatten":
            h = h.reshape(h.shape[0], -1)
    return h.numpy(), acts


def ann_forward(model: Any, x: np.ndarray) -> np.ndarray:
    """Return the ONNX ANN's output for ``x`` (batch, *input_shape), computed by snnc's own parser."""
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else "<onnx>"
    return _forward(_parse(_load(model), source)[1], x)[0]


def rate_code(x: np.ndarray, steps: int) -> np.ndarray:
    """Return ``x`` (batch, *shape) as a constant input current over ``steps``: (batch, steps, *shape)."""
    x = np.asarray(x, dtype=np.float64)
    return np.repeat(x[:, None], int(steps), axis=1)


def from_onnx(model: Any, calibration: np.ndarray, percentile: float = 99.9, dt_s: float = 1e-3,
              output_neuron: str = "I") -> g.Graph:
    """Convert a ReLU ANN (ONNX path, bytes or ModelProto) into a rate-coded IF SNN :class:`Graph`.

    ``calibration`` (batch, *input_shape) sets each layer's scale to the ``percentile`` of its
    activations; compile the result with the same ``dt_s``; ``output_neuron`` is ``"I"``
    (accumulated logits, read the argmax) or ``"IF"`` (output spikes, read the spike count).
    """
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else "<onnx>"
    if output_neuron not in ("I", "IF"):
        raise SnncError(f"output_neuron must be 'I' or 'IF', found {output_neuron!r}")
    if not (0 < percentile <= 100):
        raise ValueRangeError(f"percentile must be in (0, 100], found {percentile}")
    if not (np.isfinite(dt_s) and dt_s > 0):
        raise ValueRangeError(f"dt_s must be > 0, found {dt_s}")
    in_shape, ops = _parse(_load(model), source)
    cal = np.asarray(calibration, dtype=np.float64)
    if cal.ndim == len(in_shape):
        cal = cal[None]
    if tuple(cal.shape[1:]) != in_shape or cal.shape[0] == 0:
        raise ShapeError(f"calibration data has shape {cal.shape}; expected (batch, {', '.join(map(str, in_shape))})",
                         file=source)
    if not np.all(np.isfinite(cal)):
        raise InputError("calibration data contains NaN or inf", file=source)
    _, acts = _forward(ops, cal, record=True)
    lambdas = [max(float(np.percentile(a, percentile)), 0.0) for a in acts]
    graph = g.Graph(source=source)
    graph.nodes["input"] = g.Input(shape=in_shape)
    prev = "input"
    scale_in = 1.0  # lambda of the signal entering the current layer
    li = 0
    last_syn = max(i for i, o in enumerate(ops) if o.kind in ("affine", "conv"))
    shape = in_shape
    pending: List[_Op] = []

    def add(name: str, node: g.Node) -> None:
        nonlocal prev
        graph.nodes[name] = node
        graph.edges.append((prev, name))
        prev = name

    for i, o in enumerate(ops):
        if o.kind in ("affine", "conv"):
            if pending:
                raise UnsupportedError("two Conv/Gemm layers without a Relu between them are not converted",
                                       file=source, node=o.name, hint="fold them into one layer")
            pending.append(o)
            if i == last_syn and not any(p.kind == "relu" for p in ops[i + 1:]):
                lam = 1.0
                node = _weighted(o, o.weight * scale_in / lam, o.bias / lam)
                add(o.name, node)
                neuron = g.I(r=np.array([1.0 / dt_s])) if output_neuron == "I" else \
                    g.IF(r=np.array([1.0 / dt_s]), v_threshold=np.array([1.0]), v_reset=np.array([0.0]))
                add(f"{o.name}.out", neuron)
                graph.notes.append(f"{o.name}: output layer, weights x {scale_in:.6g} ({output_neuron} neurons)")
                pending = []
                continue
        elif o.kind == "relu":
            syn = pending[-1] if pending else None
            if syn is None:
                raise UnsupportedError("Relu without a Conv/Gemm before it", file=source, node=o.name)
            lam = lambdas[li]
            li += 1
            if lam <= 0:
                raise ValueRangeError(f"layer never activates on the calibration data (percentile {percentile} = 0)",
                                      file=source, node=syn.name, hint="give calibration data the ANN responds to")
            add(syn.name, _weighted(syn, syn.weight * scale_in / lam, syn.bias / lam))
            add(o.name, g.IF(r=np.array([1.0 / dt_s]), v_threshold=np.array([1.0]), v_reset=np.array([0.0])))
            graph.notes.append(f"{o.name}: lambda (p{percentile:g} of ReLU activations) = {lam:.6g}")
            scale_in = lam
            pending = []
        elif o.kind == "avgpool":
            if pending:
                raise UnsupportedError("pooling between a Conv/Gemm and its Relu is not converted",
                                       file=source, node=o.name, hint="pool after the Relu")
            if o.attrs.get("global"):
                sh = graph_shape(graph)
                add(o.name, g.AvgPool2d(kernel_size=sh[1:], stride=sh[1:], padding=(0, 0)))
            else:
                add(o.name, g.AvgPool2d(kernel_size=o.attrs["kernel_size"], stride=o.attrs["stride"],
                                        padding=o.attrs["padding"]))
        elif o.kind == "flatten":
            if pending:
                raise UnsupportedError("Flatten between a Conv/Gemm and its Relu is not converted",
                                       file=source, node=o.name)
            add(o.name, g.Flatten(start_dim=0, end_dim=-1))
    if pending:
        raise UnsupportedError("the ANN must end with a Conv/Gemm (the logits) or a Relu", file=source)
    graph.nodes["output"] = g.Output()
    graph.edges.append((prev, "output"))
    graph.notes.append(f"converted from ONNX: {len(lambdas)} IF layer(s), reset to 0, input as a constant current; "
                       f"compile with dt_s={dt_s:g}")
    return graph


def _weighted(o: _Op, w: np.ndarray, b: np.ndarray) -> g.Node:
    if o.kind == "affine":
        return g.Affine(weight=w, bias=b)
    return g.Conv2d(weight=w, bias=b, stride=o.attrs["stride"], padding=o.attrs["padding"],
                    dilation=o.attrs["dilation"], groups=o.attrs["groups"])


def graph_shape(graph: g.Graph) -> Tuple[int, ...]:
    """Return the output shape of the last node added to a chain ``graph`` (shape inference on a copy)."""
    from snnc.compiler.passes.shapes import infer_shapes

    last = list(graph.nodes)[-1]
    tmp = graph.copy()
    return infer_shapes(tmp).shapes[last]


__all__ = ["from_onnx", "ann_forward", "rate_code", "SUPPORTED_OPS"]
