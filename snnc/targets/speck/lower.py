"""Lowering: the compiler's fused layers (NIR semantics) -> a quantised, mapped :class:`SpeckNetwork`.

Each fused :class:`~snnc.compiler.graph.Layer` becomes one core when it is
``SumPool2d* -> [Flatten] -> Conv2d | Affine -> IF``:

* leading sum pooling (stride = kernel) becomes the pooling of every route into the core
  (for the graph input: the DVS layer's pooling);
* an ``Affine`` becomes a conv whose kernel covers the whole (pooled) input map, NIR's
  C-major flatten order being the conv weight order;
* the IF step ``v += dt * r * x`` folds ``g = dt * r`` (uniform per output channel) into the
  weights and bias; threshold and lower bound are then discretised with one scale per layer
  (:mod:`snnc.targets.speck.quantize`);
* NIR fires on ``v > v_threshold`` and resets to ``v_reset``: the integer threshold keeps the
  strict comparison (``floor(t*s) + 1``), ``v_reset = 0`` becomes ``return_to_zero``.

Options (``CompileOptions.extra``): ``spike_mode`` ("single" = one spike per step as NIR,
"multi" = sinabs' MultiSpike), ``reset`` ("subtract" to reset by subtraction as sinabs' IAF
does by default, instead of NIR's reset to ``v_reset``), ``v_low`` (float lower bound of the
membrane; default: the 16-bit minimum), ``strict_threshold`` (default True), ``readout``
(route the output layer to the readout block), ``dvs_input`` (feed from the sensor),
``layer_to_core`` (dict layer -> core instead of the automatic matching), ``chip``,
``core_map`` (write a PNG of the core map to this path at compile time).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from snnc.compiler.graph import (Affine, Conv2d, Flatten, Graph, IF, Input, Layer, Node, SumPool2d,
                                 Threshold)
from snnc.errors import InputError, SnncError, Violation
from snnc.targets.speck import chip, rules
from snnc.targets.speck.mapping import assign_cores, layer_memory_need
from snnc.targets.speck.network import Destination, DvsInput, Readout, SpeckLayer, SpeckNetwork
from snnc.targets.speck.quantize import QuantReport, quantize_layer

log = logging.getLogger(__name__)

#: Channel spacing of classes for Speck 2E/2F's readout block (sinabs ``extend_readout_layer``).
READOUT_CHANNEL_STRIDE = 4


@dataclass(frozen=True)
class SpeckOptions:
    """Speck-specific compile options (read from ``CompileOptions.extra``)."""

    spike_mode: str = "single"
    reset: Optional[str] = None
    v_low: Optional[float] = None
    strict_threshold: bool = True
    readout: bool = False
    dvs_input: bool = False
    layer_to_core: Optional[Mapping[str, int]] = None
    chip: str = "speck2f"
    core_map: Optional[str] = None

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "SpeckOptions":
        """Build from the compile ``extra`` options; unknown keys are an InputError."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(extra) - known)
        if unknown:
            raise InputError(f"unknown Speck option(s) {unknown}", hint=f"known: {sorted(known)}")
        opts = cls(**dict(extra))
        if opts.spike_mode not in chip.SPIKE_MODES:
            raise InputError(f"spike_mode {opts.spike_mode!r} unknown",
                             hint=f"use one of {chip.SPIKE_MODES}")
        if opts.chip not in chip.CHIPS:
            raise InputError(f"chip {opts.chip!r} unknown", hint=f"use one of {sorted(chip.CHIPS)}")
        if opts.reset not in (None, "zero", "subtract"):
            raise InputError(f"reset {opts.reset!r} unknown", hint="use 'zero' or 'subtract'")
        return opts


@dataclass
class LoweringResult:
    """The integer program (when the graph fits), every violation, and what was done on the way."""

    network: Optional[SpeckNetwork]
    violations: list[Violation]
    quant_reports: dict[str, QuantReport] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    output_layer: str = ""
    output_shape: tuple[int, ...] = ()
    spike_mode: str = "single"
    #: Per layer name: its float twin, what the integers round (weights and biases times the scale,
    #: the threshold and lower bound times the scale, and the scale itself).
    float_twin: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Parsed:
    """One fused layer after structural checks, before quantisation."""

    name: str
    pooling: tuple[int, int]
    in_shape: tuple[int, int, int]
    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]
    gain: np.ndarray
    v_threshold: float
    return_to_zero: bool
    v_low: Optional[float] = None


def _as3(shape: tuple[int, ...]) -> Optional[tuple[int, int, int]]:
    """(C, H, W) of a tensor shape; 1-D (n,) becomes (n, 1, 1); None when impossible."""
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), int(shape[2])
    if len(shape) == 1:
        return int(shape[0]), 1, 1
    return None


def _uniform(a: np.ndarray) -> Optional[float]:
    """The single value of ``a`` if all entries are equal, else None."""
    flat = np.asarray(a, dtype=np.float64).reshape(-1)
    if flat.size == 0 or not np.all(flat == flat[0]):
        return None
    return float(flat[0])


def _neuron_violations(name: str, neuron: Optional[Node]) -> list[Violation]:
    """Model rules for the neuron of a fused layer."""
    if neuron is None:
        return [Violation("speck.layer.no_neuron", name, "synapses without a neuron",
                          "conv -> IF on every core",
                          "Speck cores always end in IAF neurons; remove the trailing linear layer "
                          "or add an IF neuron")]
    if isinstance(neuron, Threshold):
        return rules.rule_memoryless_threshold(name, neuron.kind)
    if isinstance(neuron, IF):
        return []  # its reset and spike mode: _neuron_modes (network-wide on Speck)
    out = []
    tau = getattr(neuron, "tau", getattr(neuron, "tau_mem", None))
    if tau is not None:
        out += rules.rule_leaky_neuron(name, neuron.kind, float(np.min(tau)))
    return out + rules.rule_neuron_kind(name, neuron.kind)


def _parse_layer(name: str, layer: Layer, in_shape: tuple[int, ...], dt_s: float,
                 opts: SpeckOptions) -> tuple[Optional[_Parsed], list[Violation]]:
    """Check one fused layer's structure and read its float parameters."""
    out: list[Violation] = []
    shape3 = _as3(tuple(in_shape))
    if shape3 is None:
        return None, [Violation("speck.layer.input_rank", name, f"input shape {tuple(in_shape)}",
                                "(C, H, W) or (N,)")]
    pool = [1, 1]
    weight_node: Optional[Node] = None
    stage = 0  # 0: pools, 1: after flatten, 2: after the weight
    for syn in layer.synapses:
        if isinstance(syn, SumPool2d) and stage == 0:
            k, s, p = syn.kernel_size, syn.stride, syn.padding
            out += rules.rule_unsupported_pooling(name, "SumPool2d", k, s)
            if tuple(p) != (0, 0):
                out.append(Violation("speck.pooling.padding", name, f"padding {tuple(p)}", "(0, 0)"))
            pool = [pool[0] * int(k[0]), pool[1] * int(k[1])]
        elif isinstance(syn, Flatten) and stage == 0:
            stage = 1
        elif isinstance(syn, (Conv2d, Affine)) and stage in (0, 1):
            weight_node = syn
            stage = 2
        else:
            out.append(Violation("speck.layer.structure", name,
                                 " -> ".join(s.kind for s in layer.synapses),
                                 "SumPool2d* -> [Flatten] -> Conv2d|Affine -> IF",
                                 "pooling of currents before the neuron, a second weight layer or "
                                 f"a {syn.kind} inside a core is not possible on Speck"))
            break
    out += _neuron_violations(name, layer.neuron)
    if weight_node is None:
        out.append(Violation("speck.layer.no_weights", name,
                             " -> ".join(s.kind for s in layer.synapses) or "(none)",
                             "a Conv2d or Affine per core"))
    if out or weight_node is None or not isinstance(layer.neuron, IF):
        return None, out
    c, h, w = shape3
    pooled = (c, h // pool[0], w // pool[1])
    if isinstance(weight_node, Conv2d):
        if weight_node.groups != 1:
            out.append(Violation("speck.conv.groups", name, f"groups={weight_node.groups}", "1"))
        if tuple(weight_node.dilation) != (1, 1):
            out.append(Violation("speck.conv.dilation", name, f"dilation={weight_node.dilation}",
                                 "(1, 1)"))
        weight = np.asarray(weight_node.weight, dtype=np.float64)
        stride, padding = tuple(weight_node.stride), tuple(weight_node.padding)
    else:
        n_in = int(np.prod(pooled))
        weight = np.asarray(weight_node.weight, dtype=np.float64)
        if weight.shape[1] != n_in:
            return None, [Violation("speck.layer.shape", name, f"Affine fan-in {weight.shape[1]}",
                                    f"{n_in} = pooled input {pooled}")]
        weight = weight.reshape(weight.shape[0], *pooled)
        stride, padding = (1, 1), (0, 0)
    f = weight.shape[0]
    bias = np.asarray(weight_node.bias, dtype=np.float64).reshape(-1)
    if bias.size == 0:
        bias = np.zeros(f)
    neuron = layer.neuron
    thr = _uniform(neuron.v_threshold)
    if thr is None:
        out.append(Violation("speck.neuron.threshold_uniform", name, "per-neuron thresholds",
                             "one threshold per core",
                             "fold the threshold ratios into the weights before export"))
    r = np.asarray(neuron.r, dtype=np.float64)
    gain = np.full(f, np.nan)
    if r.size == 1:
        gain[:] = float(r.reshape(-1)[0]) * dt_s
    else:
        try:
            per_ch = r.reshape(f, -1)
        except ValueError:
            per_ch = None
        if per_ch is not None and np.all(per_ch == per_ch[:, :1]):
            gain = per_ch[:, 0] * dt_s
        else:
            out.append(Violation("speck.neuron.r_uniform", name, "r varies within a channel",
                                 "r uniform per output channel (folded into the weights)"))
    v_reset = _uniform(neuron.v_reset)
    if opts.reset == "subtract":
        rtz = False
    else:
        rtz = True
        if v_reset is None or v_reset != 0.0:
            out += rules.rule_reset(name, v_reset if v_reset is not None else float("nan"))
    if out:
        return None, out
    v_min = getattr(neuron, "v_min", None)
    return _Parsed(name, (pool[0], pool[1]), pooled, weight, bias, (int(stride[0]), int(stride[1])),
                   (int(padding[0]), int(padding[1])), gain, float(thr), rtz,
                   opts.v_low if v_min is None else float(v_min)), []


def _neuron_modes(graph: Graph, opts: SpeckOptions, extra: Mapping[str, Any]
                  ) -> tuple[SpeckOptions, list[Violation], list[str]]:
    """Take the reset and spike mode the IF neurons carry (sinabs modules and files) as the network's.

    Speck has one reset (``return_to_zero``) per core and one spike model per simulation; neurons
    that reset by subtraction or fire several spikes per step (sinabs' ``MembraneSubtract`` /
    ``MultiSpike``) set ``reset=subtract`` / ``spike_mode=multi`` unless ``-O`` says otherwise.
    """
    modes: dict[tuple[str, str], list[str]] = {}
    for n in graph.layers():
        neuron = graph.nodes[n].neuron
        if isinstance(neuron, IF):
            m = int(getattr(neuron, "max_spikes_per_step", 1))
            key = ("subtract" if getattr(neuron, "reset_mode", "to_v_reset") == "subtract" else "zero",
                   "single" if m == 1 else "multi" if m >= chip.UNCAPPED_SPIKES else f"at most {m}")
            modes.setdefault(key, []).append(n)
    if not modes or set(modes) == {("zero", "single")}:
        return opts, [], []
    violations = rules.rule_reset_mode(modes, extra)
    if violations:
        return opts, violations, []
    (reset, spike), = modes
    note = (f"reset '{reset}' and spike mode '{spike}' taken from the neurons (sinabs' "
            f"{'MembraneSubtract' if reset == 'subtract' else 'MembraneReset'}/"
            f"{'MultiSpike' if spike == 'multi' else 'SingleSpike'})")
    return dataclasses.replace(opts, reset=reset, spike_mode=spike), [], [note]


def lower_graph(graph: Graph, dt_s: float, extra: Mapping[str, Any]) -> LoweringResult:
    """Lower a passed graph to a quantised, core-mapped SpeckNetwork; collect every violation."""
    opts = SpeckOptions.from_extra(extra)
    opts, violations, notes = _neuron_modes(graph, opts, extra)
    recurrent = graph.recurrent_edges()
    if recurrent:
        violations.append(Violation("speck.graph.recurrent", ", ".join(f"{a}->{b}" for a, b in recurrent),
                                    "recurrent edges", "feed-forward only",
                                    "Speck routes can loop, but snnc's Speck path and its "
                                    "oracle (sinabs) are feed-forward"))
    ins, outs = graph.inputs(), graph.outputs()
    if len(ins) != 1 or len(outs) != 1:
        violations.append(Violation("speck.graph.io", "graph", f"{len(ins)} inputs, {len(outs)} outputs",
                                    "one input, one output"))
        return LoweringResult(None, violations)
    in_name, out_name = ins[0], outs[0]
    in_shape = _as3(tuple(graph.shapes[in_name]))
    if in_shape is None or len(graph.shapes[in_name]) != 3:
        violations.append(Violation("speck.input.size", in_name, f"input shape {tuple(graph.shapes[in_name])}",
                                    f"(C<={chip.MAX_INPUT_SHAPE[0]}, H<={chip.MAX_INPUT_SHAPE[1]}, "
                                    f"W<={chip.MAX_INPUT_SHAPE[2]}) events",
                                    "give the model an image-shaped (C, H, W) input"))
    order = graph.layers()
    index = {n: i for i, n in enumerate(order)}
    for n in graph.topological_order():
        node = graph.nodes[n]
        if not isinstance(node, (Layer, Input)) and n != out_name:
            violations.append(Violation("speck.graph.node", n, node.kind, "fused conv/linear + IF layers",
                                        "this node was not fused into a layer"))
    parsed: dict[str, _Parsed] = {}
    for n in order:
        preds = graph.predecessors(n)
        src_shape = graph.shapes[preds[0]] if preds else ()
        p, v = _parse_layer(n, graph.nodes[n], tuple(src_shape), dt_s, opts)
        violations += v
        if p is not None:
            parsed[n] = p
    out_preds = graph.predecessors(out_name)
    if len(out_preds) != 1 or out_preds[0] not in index:
        violations.append(Violation("speck.output.source", out_name, f"fed by {out_preds}",
                                    "exactly one spiking layer"))
    if violations or in_shape is None:
        return LoweringResult(None, violations, notes=notes)

    # ---- quantise, build the network
    reports: dict[str, QuantReport] = {}
    twins: dict[str, dict[str, Any]] = {}
    layers: list[SpeckLayer] = []
    entry: list[int] = []
    entry_pool: set[tuple[int, int]] = set()
    dests: dict[str, list[Destination]] = {n: [] for n in order}
    for n in order:
        p = parsed[n]
        for src in graph.predecessors(n):
            if src == in_name:
                entry.append(index[n])
                entry_pool.add(p.pooling)
            else:
                dests[src].append(Destination(index[n], p.pooling))
    if len(entry_pool) > 1:
        violations.append(Violation("speck.dvs.pooling", in_name, f"input pooled by {sorted(entry_pool)}",
                                    "one input pooling for all entry layers"))
    for n in order:
        p = parsed[n]
        w = p.weight * p.gain.reshape(-1, 1, 1, 1)
        b = p.bias * p.gain
        try:
            q = quantize_layer(n, w, b, p.v_threshold, v_low=p.v_low,
                               strict_threshold=opts.strict_threshold)
        except SnncError as exc:
            violations.append(Violation("speck.quantize", n, exc.message, "representable in 8/16 bits",
                                        exc.hint or ""))
            continue
        reports[n] = q.report
        twins[n] = {"weights": w * q.scale, "biases": b * q.scale, "threshold": p.v_threshold * q.scale,
                    "v_low": None if p.v_low is None else p.v_low * q.scale, "scale": q.scale,
                    "act_scale": q.scale * p.gain}
        in_lyr = p.in_shape
        layers.append(SpeckLayer(name=n, weights=q.weights, biases=q.biases,
                                 threshold_high=q.threshold_high, threshold_low=q.threshold_low,
                                 input_shape=in_lyr, stride=p.stride, padding=p.padding,
                                 return_to_zero=p.return_to_zero, destinations=dests[n],
                                 monitor=(n == out_preds[0])))
    if violations:
        return LoweringResult(None, violations, reports, notes)
    pool = next(iter(entry_pool)) if entry_pool else (1, 1)
    dvs = None
    if opts.dvs_input or pool != (1, 1):
        dvs = DvsInput(input_shape=in_shape, pooling=pool, destinations=entry,
                       pass_sensor_events=opts.dvs_input)
        notes.append(f"input pooling {pool} done by the DVS layer")
    exit_idx = index[out_preds[0]]
    readout = None
    if opts.readout:
        readout = _spread_for_readout(layers, exit_idx)
        notes.append(f"readout: output layer spread to {layers[exit_idx].out_channels} channels, "
                     f"class i on channel {readout.channel_stride}*i (sinabs extend_readout_layer)")
    net = SpeckNetwork(layers=layers, input_shape=in_shape, input_layers=[] if dvs else entry,
                       dvs=dvs, readout=readout, chip_name=opts.chip)
    violations += rules.check_network(net)
    if opts.layer_to_core is not None and not violations:
        try:
            assign_cores(net, dict(opts.layer_to_core))
        except SnncError as exc:
            violations += list(getattr(exc, "violations", []))
    elif not violations:
        assign_cores(net)
    if opts.reset == "subtract":
        notes.append("reset by subtraction (sinabs' IAF default), not NIR's reset to v_reset")
    notes.append(f"simulator spike mode '{opts.spike_mode}'")
    return LoweringResult(None if violations else net, violations, reports, notes,
                          output_layer=out_preds[0], output_shape=tuple(graph.shapes[out_name]),
                          spike_mode=opts.spike_mode, float_twin=twins)


def _spread_for_readout(layers: list[SpeckLayer], idx: int) -> Readout:
    """Spread the output layer's channels so that class i sits on channel 4*i (Speck 2E/2F readout)."""
    lyr = layers[idx]
    n, stride = lyr.out_channels, READOUT_CHANNEL_STRIDE
    readout = Readout(idx, n, stride)
    w = np.zeros((readout.channels, *lyr.weights.shape[1:]), dtype=np.int64)
    b = np.zeros(readout.channels, dtype=np.int64)
    w[::stride], b[::stride] = lyr.weights, lyr.biases
    layers[idx] = SpeckLayer(lyr.name, w, b, lyr.threshold_high, lyr.threshold_low, lyr.input_shape,
                             stride=lyr.stride, padding=lyr.padding, return_to_zero=lyr.return_to_zero,
                             destinations=lyr.destinations, monitor=lyr.monitor)
    return readout


def memory_report(net: SpeckNetwork) -> dict[str, Any]:
    """Per layer: core, and need vs that core's limit for each memory."""
    out: dict[str, Any] = {}
    for lyr in net.layers:
        need = layer_memory_need(lyr)
        out[lyr.name] = {"core": lyr.core, **{
            k: {"need": need.get(k), "limit": chip.core_limit(lyr.core, k) if lyr.core is not None else None}
            for k in chip.MEMORY_KINDS}}
    return out
