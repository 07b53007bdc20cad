"""Lowering: the compiler's fused layers (NIR semantics, discretised with dt) -> a :class:`LoihiNetwork`.

Each fused :class:`~snnc.compiler.graph.Layer` with a neuron becomes one Loihi layer; a
neuron-less layer (a weighted synapse chain) is folded into the layers it feeds, or becomes a
readout when it feeds the graph output. General graphs are lowered:

* **summed inputs**: every path ``spiking source -> synapses -> neuron`` is one Loihi synapse
  (``LoihiSynapse``) of the layer; several edges into a node are summed, so a layer may have
  several synapses, each with its own source (NIR's ``Affine -> LIF <- Affine``, a neuron fed
  directly by a spiking node -- an identity synapse -- and mixtures). One scale per layer: all
  its synapses are quantised together. A path may hold at most one weighted node ([Flatten]
  Affine, Conv2d, SumPool2d) plus scalar Scales, or a SumPool2d (k x k, stride k, no padding)
  followed by a Conv2d or [Flatten] Affine, which :func:`fold_pool` composes into one exact
  synapse (k*k times the synapses; noted in the report); a path with none is one-to-one (a diagonal
  dense, or a 1x1 grouped conv for (C, H, W)), an elementwise Scale becoming its weights;
* **recurrence**: a source may be a later layer or the layer itself;
* **neurons**: LIF, CubaLIF, IF and Threshold (memoryless: ``du = dv = 4096``) spike; LI, CubaLI,
  I and neuron-less chains that feed the output are **readouts**: a CUBA LIF with the maximum
  threshold mantissa (the quantiser keeps ``v`` below it in the worst case where a leak bounds
  it), whose output is ``v / scale`` (``run.json`` holds the scale);
* **timing**: on Loihi *every* synaptic hop delivers one step later; the lowering looks for
  per-layer offsets that make the Loihi network the float model shifted per layer
  (:mod:`snnc.targets.loihi.paths`, reported as ``latency_steps`` and ``layer_lag_steps``), and a
  layer with a constant bias and lag ``tau > 0`` gets ``bias_onset_step = tau``.

Options (``CompileOptions.extra``): ``min_weight_bits`` (default 6: below it a dense layer may use a
negative weight exponent), ``netx`` (default True: also store a lava-dl netx ``.net`` file in the
artifact when the network is expressible in netx), ``validate`` (scored by the runtime after lowering:
:mod:`snnc.runtime.validation`). :func:`with_loihi_delays` (from :mod:`snnc.targets.loihi.paths`) and
the pool folds (:mod:`snnc.targets.loihi.fold`) are importable from here too.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

import numpy as np

from snnc.compiler.graph import (Affine, AvgPool2d, Conv2d, Delay, Flatten, Graph, Layer, Neuron, Node, Scale,
                                 SumPool2d, Threshold)
from snnc.errors import InputError, SnncError, Violation
from snnc.targets.loihi import rules
from snnc.targets.loihi.fold import fold_conv_pool, fold_pool
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork, LoihiSynapse, determine_sign_mode
from snnc.targets.loihi.paths import (Term, expand_paths, is_spiking_layer, min_hops, solve_offsets,
                                      with_loihi_delays)
from snnc.targets.loihi.quantize import QuantReport, quantize_layer

log = logging.getLogger(__name__)

__all__ = ["KNOWN_OPTIONS", "OPTION_HELP", "LoweringResult", "fold_conv_pool", "fold_pool", "lower_graph",
           "with_loihi_delays"]

#: The Loihi target's ``-O`` options and their one-line help.
OPTION_HELP = {
    "min_weight_bits": "fewest weight bits before a dense layer may use a negative weight exponent (default 6)",
    "netx": "true (default): also write a lava-dl netx .net file when the network is expressible",
    "validate": "'nmnist': report float vs Loihi accuracy on the held-out N-MNIST split",
    "validate_samples": "with validate: first N samples of the split (default all)",
    "validate_batch": "with validate: batch size (default 50)",
    "validate_steps": "with validate: steps per sample (default 300 ms / dt)",
}
KNOWN_OPTIONS = tuple(OPTION_HELP)


@dataclass
class LoweringResult:
    """The integer program (None when a rule is broken), every violation, reports and notes."""

    network: Optional[LoihiNetwork]
    violations: List[Violation]
    reports: Dict[str, QuantReport] = field(default_factory=dict)
    output_layer: int = -1
    latency_steps: int = 0
    notes: List[str] = field(default_factory=list)
    #: Per Loihi layer name: steps by which it lags the float model (only when consistent).
    layer_lag_steps: Dict[str, int] = field(default_factory=dict)
    #: True when the Loihi network is the float graph shifted per layer (see module doc).
    timing_exact: bool = True
    #: For a readout output layer: ``v_float = v_int / readout_scale``; else None.
    readout_scale: Optional[float] = None
    warnings: List[str] = field(default_factory=list)
    #: Per Loihi layer name: its float twin (unrounded weights per synapse, bias, decays, scales; see
    #: :class:`~snnc.targets.loihi.quantize.QuantizedLayer`), what the divergence report and fine-tuning use.
    float_twin: Dict[str, Dict[str, Any]] = field(default_factory=dict)


def _per_channel(a: Any, shape: Tuple[int, ...], name: str, what: str) -> np.ndarray:
    """Return a per-output-channel vector (or scalar) from a scalar, per-channel or per-neuron array."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.size <= 1 or arr.size == shape[0]:
        return arr.reshape(-1)
    if arr.size == int(np.prod(shape)):
        per = arr.reshape(shape[0], -1)
        if len(shape) == 1:
            return arr.reshape(-1)
        if not np.allclose(per, per[:, :1]):
            raise SnncError(f"{what} varies inside a channel; Loihi conv layers share it per channel", node=name)
        return per[:, 0]
    raise SnncError(f"{what} of size {arr.size} does not fit shape {shape}", node=name)


def _neuron_coefficients(name: str, neuron: Optional[Node], dt_s: float, method: str, shape: Tuple[int, ...]
                         ) -> Dict[str, Any]:
    if neuron is None:  # weighted readout: memoryless, v = input
        return dict(a_v=0.0, g_v=1.0, c_v=0.0, theta=1.0)
    if isinstance(neuron, Threshold):
        return dict(a_v=0.0, g_v=1.0, c_v=0.0, theta=_per_channel(neuron.threshold, shape, name, "threshold"))
    assert isinstance(neuron, Neuron)
    d = neuron.discrete(dt_s, method)
    out = dict(a_v=_per_channel(d.a_v, shape, name, "a_v"), g_v=_per_channel(d.g_v, shape, name, "g_v"),
               c_v=_per_channel(d.c_v, shape, name, "c_v"),
               theta=1.0 if d.v_threshold is None else _per_channel(d.v_threshold, shape, name, "threshold"))
    if d.a_i is not None:
        out["a_i"] = _per_channel(d.a_i, shape, name, "a_i")
        out["g_i"] = _per_channel(d.g_i, shape, name, "g_i")
    return out


@dataclass
class _Syn:
    """A term resolved to one Loihi synapse (float weights, before quantisation)."""

    source: str
    kind: str  # dense | conv | pool
    weight: np.ndarray  # float, already multiplied by the path's scalar gain
    bias: Optional[np.ndarray]  # per output (dense) or per channel (conv), or None
    needs_flatten: bool = False
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1


def _resolve_term(name: str, term: Term, src_shape: Tuple[int, ...], out_shape: Tuple[int, ...],
                  counted: Set[int], notes: Optional[List[str]] = None) -> _Syn:
    """Turn a path into one synapse with float weights; raises SnncError when Loihi cannot express it."""
    weighted_nodes = [s for s in term.chain if not isinstance(s, (Scale, Flatten))]
    owner: Dict[int, int] = {}  # composed node id -> original node id (a bias counts once per original)
    if len(weighted_nodes) == 2 and isinstance(weighted_nodes[0], SumPool2d) and \
            isinstance(weighted_nodes[1], (Conv2d, Affine)):
        pool, nxt = weighted_nodes
        if any(isinstance(s, Scale) and np.asarray(s.scale).size != 1 for s in term.chain):
            raise SnncError("per-element Scale in a pooled path", node=name,
                            hint="fold per-channel scales into the weights before export")
        composed, note = fold_pool(name, pool, nxt, src_shape)
        owner[id(composed)] = id(nxt)
        term = Term(term.source, [composed if s is nxt else s for s in term.chain if s is not pool],
                     term.float_delay, term.owner_ids)
        if notes is not None:
            notes.append(note)
    elif len(weighted_nodes) == 2 and isinstance(weighted_nodes[0], Conv2d) and \
            isinstance(weighted_nodes[1], SumPool2d):
        conv, pool = weighted_nodes
        if any(isinstance(s, Scale) and np.asarray(s.scale).size != 1 for s in term.chain):
            raise SnncError("per-element Scale in a pooled path", node=name,
                            hint="fold per-channel scales into the weights before export")
        composed, note = fold_conv_pool(name, conv, pool)
        owner[id(composed)] = id(conv)
        term = Term(term.source, [composed if s is conv else s for s in term.chain if s is not pool],
                     term.float_delay, term.owner_ids)
        if notes is not None:
            notes.append(note)
    gain = 1.0
    elem: Optional[np.ndarray] = None
    weighted: Optional[Node] = None
    flat = False
    for s in term.chain:
        if isinstance(s, Scale):
            sc = np.asarray(s.scale, dtype=np.float64)
            if sc.size == 1:
                gain *= float(sc.reshape(-1)[0])
            elif weighted is None and elem is None:
                elem = sc
            else:
                raise SnncError(f"Scale of size {sc.size} next to a weighted synapse", node=name,
                                hint="fold per-channel scales into the weights before export")
        elif isinstance(s, Flatten):
            flat = flat or len(src_shape) != 1
        else:
            weighted = s
    if isinstance(weighted, AvgPool2d):
        gain /= float(np.prod(weighted.kernel_size))
    bias = None
    wid = owner.get(id(weighted), id(weighted))
    if isinstance(weighted, (Affine, Conv2d)) and wid not in counted:  # W (x1 + x2) + b: b once
        counted.add(wid)
        if np.any(weighted.bias != 0):
            bias = np.asarray(weighted.bias, dtype=np.float64) * gain
    if weighted is None:  # one-to-one
        n = int(np.prod(out_shape))
        if int(np.prod(src_shape)) != n:
            raise SnncError(f"one-to-one path from {term.source} of size {int(np.prod(src_shape))} into {n} neurons",
                            node=name)
        if len(out_shape) == 3 and not flat:
            c = out_shape[0]
            per = np.ones(c) if elem is None else _per_channel(elem, out_shape, name, "elementwise scale")
            per = np.broadcast_to(per, (c,)) * gain
            return _Syn(term.source, "conv", per.reshape(c, 1, 1, 1), None, groups=c)
        diag = np.ones(n) if elem is None else np.broadcast_to(elem.reshape(-1) if elem.size == n else elem, (n,))
        return _Syn(term.source, "dense", np.diag(np.asarray(diag, dtype=np.float64) * gain), None,
                    needs_flatten=len(src_shape) != 1)
    if isinstance(weighted, Affine):
        return _Syn(term.source, "dense", np.asarray(weighted.weight, dtype=np.float64) * gain, bias,
                    needs_flatten=len(src_shape) != 1)
    if len(src_shape) != 3 or len(out_shape) != 3 or flat:
        raise SnncError(f"{weighted.kind} needs (C, H, W) input and output without a flatten in the path", node=name)
    if isinstance(weighted, Conv2d):
        return _Syn(term.source, "conv", np.asarray(weighted.weight, dtype=np.float64) * gain, bias,
                    stride=weighted.stride, padding=weighted.padding, dilation=weighted.dilation,
                    groups=weighted.groups)
    assert isinstance(weighted, SumPool2d)
    c = src_shape[0]
    kh, kw = weighted.kernel_size
    return _Syn(term.source, "pool", np.full((c, 1, kh, kw), gain), None, stride=weighted.stride,
                padding=weighted.padding, groups=c)


def lower_graph(graph: Graph, dt_s: float, method: str, extra: Optional[Mapping[str, Any]] = None) -> LoweringResult:
    """Lower a passed graph; collect every violation instead of stopping at the first."""
    extra = dict(extra or {})
    unknown = sorted(set(extra) - set(KNOWN_OPTIONS))
    if unknown:
        raise InputError(f"unknown Loihi option(s) {unknown}", hint=f"known: {list(KNOWN_OPTIONS)}")
    min_bits = int(extra.get("min_weight_bits", 6))
    violations = rules.rule_node_kinds(graph)
    violations = [v for v in violations if not (v.rule == "loihi.graph.node" and v.found == "Delay")]
    inputs = graph.inputs()
    outs = graph.outputs()
    if len(inputs) != 1:
        violations.append(Violation("loihi.graph.inputs", ",".join(inputs), f"{len(inputs)} inputs", "1"))
        return LoweringResult(None, violations)
    if len(outs) != 1:
        violations.append(Violation("loihi.graph.outputs", ",".join(outs), f"{len(outs)} outputs", "1"))
        return LoweringResult(None, violations)
    inp, out_name = inputs[0], outs[0]
    back = set(graph.recurrent_edges())
    order = graph.topological_order()
    # ---- which nodes become Loihi layers
    loihi_names: List[str] = []
    readouts: Set[str] = set()
    out_preds = graph.predecessors(out_name)
    for name in order:
        node = graph.nodes[name]
        if not isinstance(node, Layer):
            continue
        violations += rules.check_layer(graph, name)
        if is_spiking_layer(node):
            loihi_names.append(name)
        elif name in out_preds:
            loihi_names.append(name)
            readouts.add(name)
    if len(out_preds) != 1 or out_preds[0] not in loihi_names:
        violations.append(Violation("loihi.graph.output", out_name, f"fed by {out_preds}",
                                    "one spiking or readout layer", "the output must be one layer's spikes or v"))
    # ---- paths into every Loihi layer
    layer_terms: Dict[str, List[Term]] = {}
    for name in loihi_names:
        node = graph.nodes[name]
        terms: List[Term] = []
        own_ids = tuple(id(s) for s in node.synapses if isinstance(s, (Affine, Conv2d)))
        expand_paths(graph, name, list(node.synapses), 0, own_ids, back, dt_s, (name,), terms, violations, name)
        for t in terms:
            violations += rules.rule_synapse_nodes(name, t.chain)
        if not terms:
            violations.append(Violation("loihi.graph.unfed", name, "no spiking source", "at least one input"))
        layer_terms[name] = terms
    tau, timing_ok = solve_offsets(layer_terms, inp)
    has_delay_nodes = any(isinstance(n, Delay) for n in graph.nodes.values())
    if has_delay_nodes and not timing_ok:
        violations.append(Violation(
            "loihi.timing.delay", out_name, "Delay nodes with path delays that Loihi's one step per hop cannot "
            "reproduce", "a consistent per-layer lag", "on Loihi every synaptic hop takes one step; give each loop "
            "a float delay equal to its hop count and equal delays to parallel paths"))
    if violations:
        return LoweringResult(None, _dedupe(violations))
    # ---- flatten layers and indices
    shapes = graph.shapes
    syns: Dict[str, List[_Syn]] = {}
    fold_notes: List[str] = []
    onset_notes: List[str] = []
    for name in loihi_names:
        counted: Set[int] = set()
        try:
            syns[name] = [_resolve_term(name, t, tuple(shapes[t.source]), tuple(shapes[name]), counted, fold_notes)
                          for t in layer_terms[name]]
        except SnncError as exc:
            violations.append(Violation("loihi.layer.synapses", name, exc.message, "one Loihi synapse per path",
                                        exc.hint or ""))
    if violations:
        return LoweringResult(None, _dedupe(violations))
    need_flat = {s.source for ss in syns.values() for s in ss if s.needs_flatten}
    slots: List[Tuple[str, str]] = []  # (kind, graph name): ("flatten", src) or ("layer", name)
    if inp in need_flat:
        slots.append(("flatten", inp))
    for name in loihi_names:
        slots.append(("layer", name))
        if name in need_flat:
            slots.append(("flatten", name))
    index: Dict[Tuple[str, str], int] = {s: i for i, s in enumerate(slots)}
    index[("layer", inp)] = -1

    def src_index(s: _Syn) -> int:
        return index[("flatten", s.source)] if s.needs_flatten else index[("layer", s.source)]

    layers: List[LoihiLayer] = []
    reports: Dict[str, QuantReport] = {}
    twins: Dict[str, Dict[str, Any]] = {}
    readout_scale: Optional[float] = None
    warnings: List[str] = []
    for kind, name in slots:
        if kind == "flatten":
            layers.append(LoihiLayer.flatten(f"{name}.flatten", tuple(shapes[name]), source=index[("layer", name)]))
            continue
        node = graph.nodes[name]
        out_shape = tuple(shapes[name])
        is_readout = name in readouts
        try:
            ly, q = _quantize(name, node.neuron, syns[name], out_shape, dt_s, method, min_bits, is_readout,
                              [src_index(s) for s in syns[name]], [tuple(shapes[s.source]) for s in syns[name]])
        except SnncError as exc:
            violations.append(Violation("loihi.quantize", name, exc.message, "representable integers",
                                        exc.hint or ""))
            continue
        if ly.output_shape != out_shape:
            violations.append(Violation("loihi.layer.shape", name, ly.output_shape, out_shape))
            continue
        if tau.get(name, 0) > 0 and np.any(np.asarray(ly.bias_mant) != 0) and timing_ok:
            ly = ly.replace(bias_onset_step=int(tau[name]))
            onset_notes.append(f"{name}: bias switched on at step {tau[name]} (its lag), when its float-model copy "
                               "starts: a host-side write of the bias register after that many steps")
        layers.append(ly)
        reports[name] = q.report
        twins[name] = q.twin
        if is_readout:
            readout_scale = float(q.report.scale)
    if violations or not layers:
        return LoweringResult(None, _dedupe(violations), reports)
    net = LoihiNetwork(input_shape=tuple(shapes[inp]), layers=layers,
                       name=graph.source.rsplit("/", 1)[-1] if graph.source else "network")
    violations += rules.check_network(net)
    out_layer = out_preds[0]
    notes: List[str] = []
    lags = {n: int(tau[n]) for n in loihi_names if n in tau}
    if timing_ok:
        latency = lags.get(out_layer, 0)
        notes.append(f"Loihi output lags the float model by {latency} step(s): each synaptic hop adds one step "
                     "of delay" + ("" if not has_delay_nodes else "; the graph's Delay nodes are absorbed by the hops"))
    else:
        latency = min_hops(layer_terms, inp, back).get(out_layer, 0)
        notes.append("Loihi timing differs from the float model: every synaptic hop takes one step, and this graph "
                     "has paths of different hop counts or loops whose hop count differs from their float delay; "
                     f"the first output can react {latency} step(s) after the input. The float graph Loihi computes "
                     "is snnc.targets.loihi.lower.with_loihi_delays(graph, dt_s)")
        warnings.append("Loihi timing differs from the float model (see loihi_notes); compare against "
                        "with_loihi_delays(graph)")
    notes += fold_notes + onset_notes
    if net.has_recurrence():
        notes.append("recurrent connections: a loop of k synaptic hops takes k steps on Loihi")
    if readouts:
        notes.append(f"readout layer {out_layer}: a CUBA LIF with the maximum threshold; the output is v / scale "
                     f"(scale {readout_scale:.6g})")
    notes += rules.fan_warnings(net)
    return LoweringResult(None if violations else net, violations, reports, index[("layer", out_layer)], latency,
                          notes, lags, timing_ok, readout_scale, warnings, twins)


def _dedupe(vs: List[Violation]) -> List[Violation]:
    seen: Set[str] = set()
    out = []
    for v in vs:
        key = repr(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _quantize(name: str, neuron: Optional[Node], syns: List[_Syn], out_shape: Tuple[int, ...], dt_s: float,
              method: str, min_bits: int, readout: bool, sources: List[int], src_shapes: List[Tuple[int, ...]]
              ) -> Tuple[LoihiLayer, Any]:
    """Quantise all synapses of one layer together (one scale) and build the Loihi layer."""
    coef = _neuron_coefficients(name, neuron, dt_s, method, out_shape)
    conv = len(out_shape) == 3
    n_out = out_shape[0]
    mats = [s.weight.reshape(n_out, -1) for s in syns]
    if conv and any(s.kind == "dense" for s in syns) or not conv and any(s.kind != "dense" for s in syns):
        raise SnncError("dense and conv synapses into one layer", node=name)
    bias = None
    for s in syns:
        if s.bias is not None:
            bias = s.bias.copy() if bias is None else bias + s.bias
    q = quantize_layer(name, np.concatenate(mats, axis=1), bias=bias, conv=conv, min_weight_bits=min_bits,
                       readout=readout, **coef)
    cuts = np.cumsum([m.shape[1] for m in mats])[:-1]
    pieces = np.split(q.weights, cuts, axis=1)
    q.twin["weights"] = [w.reshape(s.weight.shape) for s, w in zip(syns, np.split(q.twin["weights"], cuts, axis=1))]
    bias_mant = _bias(q.bias_mant, out_shape)
    built: List[LoihiSynapse] = []
    for s, w, src, ss in zip(syns, pieces, sources, src_shapes):
        w = w.reshape(s.weight.shape).astype(np.int64)
        in_shape = (int(np.prod(ss)),) if s.needs_flatten else tuple(ss)
        if s.kind == "dense":
            built.append(LoihiSynapse(source=src, kind="dense", input_shape=in_shape, weights=w,
                                      weight_exp=q.weight_exp, sign_mode=q.sign_mode if w.any() else "excitatory"))
        else:
            kind = "pool" if s.kind == "pool" and np.all(w == w.reshape(-1)[0]) else "conv"
            built.append(LoihiSynapse(source=src, kind=kind, input_shape=in_shape, weights=w,
                                      sign_mode=determine_sign_mode(w), stride=s.stride, padding=s.padding,
                                      dilation=s.dilation, groups=s.groups))
    first = built[0]
    if first.kind == "dense":
        ly = LoihiLayer.dense(name, first.weights, source=first.source, weight_exp=first.weight_exp,
                              sign_mode=first.sign_mode, du=q.du, dv=q.dv, vth_mant=q.vth_mant, bias_mant=bias_mant,
                              bias_exp=q.bias_exp)
    else:
        ly = LoihiLayer.conv(name, first.weights, first.input_shape, source=first.source, stride=first.stride,
                             padding=first.padding, dilation=first.dilation, groups=first.groups, du=q.du, dv=q.dv,
                             vth_mant=q.vth_mant, bias_mant=bias_mant, bias_exp=q.bias_exp, kind=first.kind)
    return ly.replace(extra_inputs=built[1:], readout=readout), q


def _bias(b: np.ndarray, out_shape: Tuple[int, ...]) -> np.ndarray:
    """Return a scalar bias when uniform, else the per-neuron array (per-channel vectors broadcast)."""
    b = np.asarray(b, dtype=np.int64).reshape(-1)
    if b.size == 0 or np.all(b == b[0]):
        return np.array(int(b[0]) if b.size else 0, dtype=np.int64)
    if len(out_shape) == 3:
        return np.broadcast_to(b.reshape(-1, 1, 1), out_shape).copy()
    return b.reshape(out_shape)
