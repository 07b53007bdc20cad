"""Lowering: the compiler's fused layers (NIR semantics, discretised with dt) -> a :class:`LoihiNetwork`.

Each fused :class:`~snnc.compiler.graph.Layer` becomes one Loihi layer (a ``flatten`` is inserted
before a dense layer whose input is not flat):

* ``[Flatten ->] Affine -> neuron`` -> ``dense``; ``Conv2d -> neuron`` -> ``conv``;
  ``SumPool2d -> neuron`` -> ``pool`` (a grouped conv with an all-ones kernel); scalar ``Scale``
  nodes fold into the gain;
* neurons: LIF, CubaLIF, IF (no leak) and Threshold (memoryless: full decays) map to Lava's CUBA
  LIF through :mod:`snnc.targets.loihi.quantize`;
* timing: every Loihi synapse delivers one step later, so an output ``L`` layers deep lags its
  input by ``L`` steps compared with the float model (reported as ``latency_steps``).

Options (``CompileOptions.extra``): ``min_weight_bits`` (default 6: below it a dense layer may use a
negative weight exponent), ``netx`` (default True: also store a lava-dl netx ``.net`` file in the
artifact when the network is expressible in netx).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from snnc.compiler.graph import Affine, Conv2d, Flatten, Graph, Layer, Neuron, Node, Scale, SumPool2d, Threshold
from snnc.errors import InputError, SnncError, Violation
from snnc.targets.loihi import rules
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork
from snnc.targets.loihi.quantize import QuantReport, quantize_layer

log = logging.getLogger(__name__)

KNOWN_OPTIONS = ("min_weight_bits", "netx")


@dataclass
class LoweringResult:
    """The integer program (None when a rule is broken), every violation, reports and notes."""

    network: Optional[LoihiNetwork]
    violations: List[Violation]
    reports: Dict[str, QuantReport] = field(default_factory=dict)
    output_layer: int = -1
    latency_steps: int = 0
    notes: List[str] = field(default_factory=list)


def _per_channel(a: Any, shape: Tuple[int, ...], name: str, what: str) -> np.ndarray:
    """Return a per-output-channel vector (or scalar) from a scalar, per-channel or per-neuron array."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.size <= 1 or arr.size == shape[0]:
        return arr.reshape(-1)
    if arr.size == int(np.prod(shape)):
        per = arr.reshape(shape[0], -1)
        if not np.allclose(per, per[:, :1]):
            raise SnncError(f"{what} varies inside a channel; Loihi conv layers share it per channel", node=name)
        return per[:, 0]
    raise SnncError(f"{what} of size {arr.size} does not fit shape {shape}", node=name)


def _neuron_coefficients(name: str, neuron: Node, dt_s: float, method: str, shape: Tuple[int, ...]
                         ) -> Dict[str, Any]:
    if isinstance(neuron, Threshold):
        return dict(a_v=0.0, g_v=1.0, c_v=0.0, theta=_per_channel(neuron.threshold, shape, name, "threshold"))
    assert isinstance(neuron, Neuron)
    d = neuron.discrete(dt_s, method)
    out = dict(a_v=_per_channel(d.a_v, shape, name, "a_v"), g_v=_per_channel(d.g_v, shape, name, "g_v"),
               c_v=_per_channel(d.c_v, shape, name, "c_v"),
               theta=_per_channel(d.v_threshold, shape, name, "threshold"))
    if d.a_i is not None:
        out["a_i"] = _per_channel(d.a_i, shape, name, "a_i")
        out["g_i"] = _per_channel(d.g_i, shape, name, "g_i")
    return out


def lower_graph(graph: Graph, dt_s: float, method: str, extra: Optional[Mapping[str, Any]] = None) -> LoweringResult:
    """Lower a passed graph; collect every violation instead of stopping at the first."""
    extra = dict(extra or {})
    unknown = sorted(set(extra) - set(KNOWN_OPTIONS))
    if unknown:
        raise InputError(f"unknown Loihi option(s) {unknown}", hint=f"known: {list(KNOWN_OPTIONS)}")
    min_bits = int(extra.get("min_weight_bits", 6))
    violations = rules.rule_feed_forward(graph) + rules.rule_single_input(graph)
    inputs = graph.inputs()
    if len(inputs) != 1:
        violations.append(Violation("loihi.graph.inputs", ",".join(inputs), f"{len(inputs)} inputs", "1"))
        return LoweringResult(None, violations)
    index: Dict[str, int] = {inputs[0]: -1}
    layers: List[LoihiLayer] = []
    reports: Dict[str, QuantReport] = {}
    notes: List[str] = []
    depth: Dict[str, int] = {inputs[0]: 0}
    failed: set = set()
    for name in graph.layers():
        node = graph.nodes[name]
        assert isinstance(node, Layer)
        vs = rules.rule_neuron_kind(name, node.neuron)
        if node.neuron is not None:
            vs += rules.rule_reset_to_zero(name, node.neuron) + rules.rule_positive_threshold(name, node.neuron)
            vs += rules.rule_uniform_decay(name, node.neuron)
        vs += rules.rule_synapse_chain(name, node)
        preds = graph.predecessors(name)
        if len(preds) == 1 and preds[0] in failed:
            failed.add(name)  # its source broke a rule already: no second report
            violations += vs
            continue
        if len(preds) != 1 or preds[0] not in index:
            vs.append(Violation("loihi.graph.source", name, f"inputs {preds}", "one lowered layer or the input"))
        violations += vs
        if vs:
            failed.add(name)
            continue
        src = index[preds[0]]
        in_shape = tuple(graph.shapes[preds[0]])
        out_shape = tuple(graph.shapes[name])
        gain = 1.0
        syn: Optional[Node] = None
        for s in node.synapses:
            if isinstance(s, Scale):
                sc = np.asarray(s.scale, dtype=np.float64)
                if sc.size != 1:
                    violations.append(Violation("loihi.layer.scale", name, f"Scale of size {sc.size}", "scalar",
                                                "fold per-channel scales into the weights before export"))
                    failed.add(name)
                    syn = None
                    break
                gain *= float(sc.reshape(-1)[0])
            elif isinstance(s, Flatten):
                if len(in_shape) != 1:
                    layers.append(LoihiLayer.flatten(f"{name}.flatten", in_shape, source=src))
                    src = len(layers) - 1
                    in_shape = layers[-1].output_shape
            else:
                syn = s
        if syn is None:
            continue
        try:
            coef = _neuron_coefficients(name, node.neuron, dt_s, method, out_shape)
            coef["g_v"] = np.asarray(coef["g_v"]) * gain
            if isinstance(syn, Affine):
                q = quantize_layer(name, syn.weight, bias=syn.bias, min_weight_bits=min_bits, **coef)
                ly = LoihiLayer.dense(name, q.weights, source=src, weight_exp=q.weight_exp, sign_mode=q.sign_mode,
                                      du=q.du, dv=q.dv, vth_mant=q.vth_mant, bias_mant=_bias(q.bias_mant, out_shape),
                                      bias_exp=q.bias_exp)
            elif isinstance(syn, Conv2d):
                q = quantize_layer(name, syn.weight, bias=syn.bias, conv=True, **coef)
                ly = LoihiLayer.conv(name, q.weights, in_shape, source=src, stride=syn.stride, padding=syn.padding,
                                     dilation=syn.dilation, groups=syn.groups, du=q.du, dv=q.dv,
                                     vth_mant=q.vth_mant, bias_mant=_bias(q.bias_mant, out_shape),
                                     bias_exp=q.bias_exp)
            else:
                assert isinstance(syn, SumPool2d)
                c = in_shape[0]
                kh, kw = syn.kernel_size
                ones = np.ones((c, 1, kh, kw))
                q = quantize_layer(name, ones, conv=True, **coef)
                if not np.all(q.weights == q.weights.reshape(-1)[0]):
                    violations.append(Violation("loihi.pool.uniform", name, "per-channel pooling gains", "one gain",
                                                "use one threshold and time constant for all channels"))
                    failed.add(name)
                    continue
                ly = LoihiLayer.pool(name, in_shape, (kh, kw), int(q.weights.reshape(-1)[0]), source=src,
                                     stride=syn.stride, padding=syn.padding, du=q.du, dv=q.dv, vth_mant=q.vth_mant,
                                     bias_mant=_bias(q.bias_mant, out_shape), bias_exp=q.bias_exp)
        except SnncError as exc:
            violations.append(Violation("loihi.quantize", name, exc.message, "representable integers",
                                        exc.hint or ""))
            failed.add(name)
            continue
        if ly.output_shape != out_shape:
            violations.append(Violation("loihi.layer.shape", name, ly.output_shape, out_shape))
            failed.add(name)
            continue
        layers.append(ly)
        index[name] = len(layers) - 1
        depth[name] = depth.get(preds[0], 0) + 1
        reports[name] = q.report
    outs = graph.outputs()
    out_src = graph.predecessors(outs[0]) if outs else []
    if len(out_src) != 1 or out_src[0] not in index or index[out_src[0]] < 0:
        if not violations:
            violations.append(Violation("loihi.graph.output", outs[0] if outs else "<none>", f"fed by {out_src}",
                                        "one spiking layer", "the output must be a spiking layer's spikes"))
    if violations or not layers:
        return LoihiLayerless(violations, reports)
    net = LoihiNetwork(input_shape=tuple(graph.shapes[inputs[0]]), layers=layers,
                       name=graph.source.rsplit("/", 1)[-1] if graph.source else "network")
    violations += rules.check_network(net)
    latency = depth[out_src[0]]
    notes.append(f"Loihi output lags the float model by {latency} step(s): each synapse adds one step of delay")
    notes += rules.fan_warnings(net)
    return LoweringResult(None if violations else net, violations, reports, index[out_src[0]], latency, notes)


def LoihiLayerless(violations: List[Violation], reports: Dict[str, QuantReport]) -> LoweringResult:
    """Return a failed lowering (no network)."""
    return LoweringResult(None, violations, reports)


def _bias(b: np.ndarray, out_shape: Tuple[int, ...]) -> np.ndarray:
    """Return a scalar bias when uniform, else the per-neuron array (per-channel vectors broadcast)."""
    b = np.asarray(b, dtype=np.int64).reshape(-1)
    if b.size == 0 or np.all(b == b[0]):
        return np.array(int(b[0]) if b.size else 0, dtype=np.int64)
    if len(out_shape) == 3:
        return np.broadcast_to(b.reshape(-1, 1, 1), out_shape).copy()
    return b.reshape(out_shape)
