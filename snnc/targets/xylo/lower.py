"""Lowering: the compiler's fused layers (NIR semantics, discretised with dt) -> a :class:`XyloNetwork`.

Every spiking fused :class:`~snnc.compiler.graph.Layer` is a *population*. The one that feeds the
graph output (directly, or through a trailing neuron-less linear layer: the **host readout**, run
on the host after the chip, e.g. 8 output neurons read as 10 class scores) is Xylo's output
population; all others are hidden neurons, placed one after another in the hidden array (input-fed
ones first, those that drive the outputs last). Every path ``spiking source -> [Flatten] [Linear |
Affine] [scalar Scale] -> population`` is one dense float matrix: from the graph input it goes
into the input weights, from a hidden population into the recurrent weights (hidden) or the
output weights (output). A recurrent NIR edge is a recurrent weight like any other.

Neurons are NIR CubaLIF, discretised by snnc (``i' = a_i i + g_i x``, ``v' = a_v v + g_v i' + c_v``).
Xylo computes ``i' = a_i (i + W x)``, ``v' = a_v v + i' + bias`` with ``a = 1 - 2**-dash``. With the
state scaled by ``S`` (``v_chip = S v``), the chip's weights are ``S (g_v g_i / a_i) W`` per target
neuron, its threshold ``S v_th`` and bias ``S c_v``; ``dash = round(-log2(1 - a))`` (option
``dash_from="tau"``: Rockpool's ``round(log2(tau / dt))``). The decay's error is in the report.

Timing: input spikes reach hidden neurons in the same step, every hidden->hidden and
hidden->output hop takes one step (xylosim ``XyloLayer::evolve``). A NIR recurrent edge carries the
previous step, so a self-recurrent population keeps the float model's timing; the lowering finds
per-population lags ``L_dst = L_src + hop - float_delay`` for every path and reports the output's
lag as ``latency_steps`` (1 for input -> hidden -> output). Where the lags disagree (paths of
unequal hop counts), the chip computes another network than the float graph and the report says so.

Options (``CompileOptions.extra``): ``chip`` ("audio2", "imu"), ``quantize`` ("channel", "global"),
``threshold_rounding`` ("strict", "round"), ``dash_from`` ("decay", "tau"), ``weight_shift``
("auto" or 0..7).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from snnc.compiler.graph import Affine, Flatten, Graph, Input, Layer, Node, Output, Scale
from snnc.errors import InputError, Violation
from snnc.targets.xylo import chip, rules
from snnc.targets.xylo.network import XyloNetwork
from snnc.targets.xylo.quantize import (METHODS, THRESHOLD_ROUNDINGS, GroupReport, dash_from_decay, dash_from_tau,
                                        decay_error, quantize_group, round_dash)


@dataclass(frozen=True)
class XyloOptions:
    """Xylo-specific compile options (read from ``CompileOptions.extra``)."""

    chip: str = chip.DEFAULT_CHIP
    quantize: str = "channel"
    threshold_rounding: str = "strict"
    dash_from: str = "decay"
    weight_shift: Union[str, int] = "auto"

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "XyloOptions":
        """Build from the compile ``extra`` options; unknown keys or values are an InputError."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(extra) - known)
        if unknown:
            raise InputError(f"unknown Xylo option(s) {unknown}", hint=f"known: {sorted(known)}")
        o = cls(**dict(extra))
        for key, allowed in (("chip", tuple(chip.CHIPS)), ("quantize", METHODS),
                             ("threshold_rounding", THRESHOLD_ROUNDINGS), ("dash_from", ("decay", "tau"))):
            if getattr(o, key) not in allowed:
                raise InputError(f"Xylo option {key}={getattr(o, key)!r} unknown", hint=f"use one of {allowed}")
        ws = o.weight_shift
        if not (ws == "auto" or (isinstance(ws, int) and not isinstance(ws, bool)
                                 and 0 <= ws <= chip.MAX_WEIGHT_SHIFT)):
            raise InputError(f"Xylo option weight_shift={ws!r}", hint=f"use 'auto' or 0..{chip.MAX_WEIGHT_SHIFT}")
        return o


@dataclass
class Population:
    """One spiking layer: its neurons' float coefficients and rules' facts."""

    name: str
    size: int
    role: str = "hidden"
    a_i: np.ndarray = field(default_factory=lambda: np.zeros(0))
    a_v: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gain: np.ndarray = field(default_factory=lambda: np.zeros(0))  # g_v g_i / a_i per neuron
    c_v: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v_th: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dash_syn: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    dash_mem: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    max_spikes: int = 1
    start: int = 0


@dataclass
class Term:
    """One path from a spiking source (``"input"`` or a population) into a population: a dense matrix."""

    source: str
    weight: np.ndarray  # (n_dst, n_src) float
    float_delay: int


@dataclass
class LoweringResult:
    """The integer program (None when a rule is broken), every violation, and the report's pieces."""

    network: Optional[XyloNetwork]
    violations: List[Violation]
    quantization: Dict[str, GroupReport] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    latency_steps: int = 0
    timing_exact: bool = True
    lags: Dict[str, int] = field(default_factory=dict)
    decays: Dict[str, Any] = field(default_factory=dict)
    readout: Optional[Dict[str, Any]] = None
    output_shape: Tuple[int, ...] = ()


def _per_neuron(a: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(a, dtype=np.float64).reshape(-1) if np.asarray(a).size > 1
                           else np.asarray(a, dtype=np.float64).reshape(()), (n,)).astype(np.float64)


def _chain_matrix(name: str, chain: List[Node], n_src: int, violations: List[Violation],
                  host: bool = False) -> Optional[np.ndarray]:
    """The dense matrix of a synapse chain (Flatten, Linear/Affine, scalar or per-element Scale).

    ``host``: the chain is the host readout, whose bias the host adds (no chip rule for it).
    """
    m = np.eye(n_src)
    for s in chain:
        v = rules.rule_synapse_kind(name, s.kind)
        if v:
            violations += v
            return None
        if isinstance(s, Affine):
            if not host:
                violations += rules.rule_synapse_bias(name, s.bias)
            m = np.asarray(s.weight, dtype=np.float64) @ m
        elif isinstance(s, Scale):
            sc = np.asarray(s.scale, dtype=np.float64).reshape(-1)
            m = (sc[:, None] if sc.size > 1 else sc) * m
    return m


def _terms(graph: Graph, name: str, back: set, pops: Dict[str, Any], violations: List[Violation],
           chain: Optional[List[Node]] = None, delay: int = 0, seen: Tuple[str, ...] = ()) -> List[Tuple[str, List[Node], int]]:
    """Paths (source, synapse chain, float delay) from spiking sources or the input into ``name``."""
    chain = chain or []
    out: List[Tuple[str, List[Node], int]] = []
    for p in graph.predecessors(name):
        d = delay + (1 if (p, name) in back else 0)
        node = graph.nodes[p]
        if isinstance(node, Input):
            out.append(("input", list(chain), d))
        elif p in pops:
            out.append((p, list(chain), d))
        elif p in seen:
            violations.append(Violation("xylo.graph.cycle", p, "a loop without neurons", "a neuron in every loop"))
        elif isinstance(node, Layer) and node.neuron is None:
            out += _terms(graph, p, back, pops, violations, list(node.synapses) + chain, d, seen + (p,))
        elif not isinstance(node, Layer):  # (spiking layers of other kinds are reported by rule_neuron_kind)
            violations.append(Violation("xylo.graph.node", p, node.kind, "Linear/Affine layers and CubaLIF neurons",
                                        "Delay and other nodes have no Xylo equivalent"))
    return out


def _population(name: str, layer: Layer, dt_s: float, method: str, opts: XyloOptions,
                violations: List[Violation]) -> Optional[Population]:
    """Read one CubaLIF layer's coefficients and check its neuron model."""
    neuron = layer.neuron
    v = rules.rule_neuron_kind(name, neuron.kind)
    if v:
        violations += v
        return None
    violations += rules.rule_reset_mode(name, neuron)
    d = neuron.discrete(dt_s, method)
    return Population(name=name, size=0, a_i=np.asarray(d.a_i, dtype=np.float64),
                      a_v=np.asarray(d.a_v, dtype=np.float64),
                      gain=np.asarray(d.g_v * d.g_i / np.where(d.a_i > 0, d.a_i, 1.0), dtype=np.float64),
                      c_v=np.asarray(d.c_v, dtype=np.float64), v_th=np.asarray(d.v_threshold, dtype=np.float64),
                      max_spikes=int(neuron.max_spikes_per_step))


def lower_graph(graph: Graph, dt_s: float, method: str, extra: Mapping[str, Any]) -> LoweringResult:
    """Lower a passed graph to a XyloNetwork; collect every violation (model and network rules)."""
    opts = XyloOptions.from_extra(extra)
    spec = chip.CHIPS[opts.chip]
    violations: List[Violation] = []
    res = LoweringResult(None, violations)
    ins, outs = graph.inputs(), graph.outputs()
    if len(ins) != 1 or len(outs) != 1:
        violations.append(Violation("xylo.graph.io", "graph", f"{len(ins)} inputs, {len(outs)} outputs",
                                    "one input, one output"))
        return res
    in_name, out_name = ins[0], outs[0]
    n_in = int(np.prod(graph.shapes[in_name]))
    order = graph.topological_order()
    violations += rules.input_channel_violations(n_in, spec)
    pops: Dict[str, Population] = {}
    spiking: Dict[str, Any] = {}  # every neuron layer, also those whose kind is refused (structure rules)
    for n in order:
        node = graph.nodes[n]
        if isinstance(node, Layer) and node.neuron is not None:
            spiking[n] = node
            p = _population(n, node, dt_s, method, opts, violations)
            if p is not None:
                p.size = int(np.prod(graph.shapes[n]))
                pops[n] = p
        elif not isinstance(node, (Layer, Input, Output)):
            violations.append(Violation("xylo.graph.node", n, node.kind, "Linear/Affine layers and CubaLIF neurons",
                                        "Delay and other nodes have no Xylo equivalent"))
    back = set(graph.recurrent_edges())
    # ---- the output population and the host readout
    readout = None
    src = graph.predecessors(out_name)
    out_pop: Optional[str] = None
    if len(src) == 1 and src[0] in spiking:
        out_pop = src[0]
    elif len(src) == 1 and isinstance(graph.nodes[src[0]], Layer) and graph.nodes[src[0]].neuron is None:
        rd = graph.nodes[src[0]]
        feeders = graph.predecessors(src[0])
        if len(feeders) == 1 and feeders[0] in spiking:
            out_pop = feeders[0]
            m = _chain_matrix(src[0], list(rd.synapses), int(np.prod(graph.shapes[out_pop])), violations, host=True)
            bias = np.zeros(0)
            for s in rd.synapses:
                if isinstance(s, Affine):
                    bias = np.asarray(s.bias, dtype=np.float64)
            if m is not None:
                readout = {"layer": src[0], "weight": m.tolist(),
                           "bias": (bias if bias.size else np.zeros(m.shape[0])).tolist()}
    if out_pop is None:
        violations.append(Violation("xylo.output.source", out_name, f"fed by {src}",
                                    "one spiking CubaLIF population (optionally through a linear readout)"))
    violations += rules.rule_population_count([n for n in spiking if n != out_pop], [out_pop] if out_pop else [])
    sizes = {n: int(np.prod(graph.shapes[n])) for n in spiking}
    violations += rules.size_violations(sum(v for n, v in sizes.items() if n != out_pop), sizes.get(out_pop, 0),
                                        spec, ",".join(n for n in spiking if n != out_pop) or "hidden",
                                        out_pop or "output")
    if len(pops) < len(spiking):  # refused neuron kinds: the weights cannot be read as Xylo's
        return res
    hidden = [n for n in pops if n != out_pop]
    # ---- paths into every population
    terms: Dict[str, List[Term]] = {}
    for name, p in pops.items():
        p.role = "output" if name == out_pop else "hidden"
        violations += rules.rule_spike_limit(name, graph.nodes[name].neuron, p.role)
        cap = chip.MAX_HIDDEN_SPIKES if p.role == "hidden" else chip.MAX_OUTPUT_SPIKES
        if p.max_spikes > cap:
            res.warnings.append(f"{name}: {p.max_spikes} spikes per step allowed in the graph, the chip's {p.role} "
                                f"neurons fire at most {cap}: steps where the float neuron fires more differ")
        lst = []
        for s, chain, d in _terms(graph, name, back, spiking, violations, list(graph.nodes[name].synapses)):
            n_src = n_in if s == "input" else pops[s].size
            m = _chain_matrix(name, chain, n_src, violations)
            if m is not None:
                if m.shape != (p.size, n_src):
                    violations.append(Violation("xylo.synapse.shape", name, f"{m.shape}", f"({p.size}, {n_src})"))
                    continue
                lst.append(Term(s, m, d))
        terms[name] = lst
    if out_pop is not None:
        violations += rules.rule_output_source(out_pop, [t.source for t in terms.get(out_pop, [])])
        violations += rules.rule_output_not_recurrent(
            out_pop, sorted({n for n, ts in terms.items() for t in ts if t.source == out_pop}))
    # ---- decays
    for name, p in pops.items():
        node = graph.nodes[name].neuron
        if opts.dash_from == "tau":
            ds, dm = dash_from_tau(node.tau_syn, dt_s), dash_from_tau(node.tau_mem, dt_s)
        else:
            ds, dm = dash_from_decay(p.a_i), dash_from_decay(p.a_v)
        p.dash_syn = round_dash(_per_neuron(ds, p.size))
        p.dash_mem = round_dash(_per_neuron(dm, p.size))
        violations += rules.rule_dash_range(name, "synaptic", p.dash_syn)
        violations += rules.rule_dash_range(name, "membrane", p.dash_mem)
        violations += rules.rule_dash_syn_zero(name, p.dash_syn)
        res.decays[name] = {
            "dash_syn": sorted(set(int(x) for x in p.dash_syn)), "dash_mem": sorted(set(int(x) for x in p.dash_mem)),
            "max_decay_error_syn": decay_error(_per_neuron(p.a_i, p.size), p.dash_syn),
            "max_decay_error_mem": decay_error(_per_neuron(p.a_v, p.size), p.dash_mem)}
    if violations:
        return res
    # ---- timing: per-population lags
    lags: Dict[str, int] = {}
    exact = True
    for name in order:
        if name not in pops:
            continue
        cands = []
        for t in terms[name]:
            hop = 0 if t.source == "input" else 1
            if t.source == "input":
                cands.append(hop - t.float_delay)
            elif t.source in lags:
                cands.append(lags[t.source] + hop - t.float_delay)
        lag = max(cands) if cands else 0
        lags[name] = lag
    for name in pops:  # every path must agree, recurrent ones included
        for t in terms[name]:
            src_lag = 0 if t.source == "input" else lags[t.source]
            if src_lag + (0 if t.source == "input" else 1) - t.float_delay != lags[name]:
                exact = False
    res.lags, res.timing_exact = lags, exact
    res.latency_steps = int(lags.get(out_pop, 0)) if out_pop else 0
    if not exact:
        res.warnings.append("timing: paths into a population take different numbers of chip steps than in the float "
                            "graph (every hidden hop is one step on Xylo); the chip computes a different network")
    if any(lag < 0 for lag in lags.values()):
        res.warnings.append("timing: a population would have to run ahead of its inputs")
    # ---- placement: input-fed hidden populations first, output-driving ones last
    out_sources = {t.source for t in terms.get(out_pop, [])}
    fed = {n for n, ts in terms.items() for t in ts if t.source == "input"}
    hidden.sort(key=lambda n: (n in out_sources, n not in fed, order.index(n)))
    start = 0
    for n in hidden:
        pops[n].start = start
        start += pops[n].size
    nh = start
    no = pops[out_pop].size
    w_in = np.zeros((n_in, nh))
    w_rec = np.zeros((nh, nh))
    w_out = np.zeros((nh, no))
    for name in hidden + [out_pop]:
        p = pops[name]
        for t in terms[name]:
            wt = t.weight.T * _per_neuron(p.gain, p.size).reshape(1, -1)
            if t.source == "input":
                w_in[:, p.start:p.start + p.size] += wt
            elif p.role == "hidden":
                s = pops[t.source]
                w_rec[s.start:s.start + s.size, p.start:p.start + p.size] += wt
            else:
                s = pops[t.source]
                w_out[s.start:s.start + s.size, :] += wt
    def cat(attr: str, names: List[str]) -> np.ndarray:  # noqa: E306
        return np.concatenate([_per_neuron(getattr(pops[n], attr), pops[n].size) for n in names]) if names \
            else np.zeros(0)

    hq = quantize_group("hidden", [w_in, w_rec], cat("v_th", hidden), cat("c_v", hidden), opts.quantize,
                        opts.threshold_rounding, opts.weight_shift)
    oq = quantize_group("output", [w_out], cat("v_th", [out_pop]), cat("c_v", [out_pop]), opts.quantize,
                        opts.threshold_rounding, opts.weight_shift)
    res.quantization = {"hidden": hq.report, "output": oq.report}
    for q in (hq.report, oq.report):
        if q.weights_rounded_to_zero:
            res.warnings.append(f"{q.group}: {q.weights_rounded_to_zero} of {q.weights} non-zero weight(s) rounded to 0")
        if q.weights_clipped or q.bias_clipped:
            res.warnings.append(f"{q.group}: {q.weights_clipped} weight(s), {q.bias_clipped} bias(es) saturated")
    dint = lambda attr, names: np.concatenate([getattr(pops[n], attr) for n in names]).astype(np.int64)  # noqa: E731
    net = XyloNetwork(
        weights_in=hq.weights[0][:, :, None], weights_rec=hq.weights[1][:, :, None], weights_out=oq.weights[0],
        dash_mem=dint("dash_mem", hidden), dash_syn=dint("dash_syn", hidden),
        dash_syn_2=np.zeros(nh, dtype=np.int64), threshold=hq.threshold, bias=hq.bias,
        dash_mem_out=dint("dash_mem", [out_pop]), dash_syn_out=dint("dash_syn", [out_pop]),
        threshold_out=oq.threshold, bias_out=oq.bias, weight_shift_in=hq.weight_shift,
        weight_shift_rec=hq.weight_shift, weight_shift_out=oq.weight_shift, chip_name=spec.name,
        populations={**{n: [pops[n].start, pops[n].start + pops[n].size] for n in hidden}, out_pop: ["output", no]})
    violations += rules.check_network(net, spec)
    res.readout = readout
    res.output_shape = tuple(graph.shapes[out_name])
    res.notes.append(f"{spec.description}: {nh} hidden neuron(s) {[(n, pops[n].size) for n in hidden]}, "
                     f"{no} output neuron(s) '{out_pop}', {n_in} input channel(s)")
    if readout is not None:
        res.notes.append(f"host readout '{readout['layer']}': the {no} output spike trains are mapped to "
                         f"{len(readout['weight'])} values on the host (float, after the chip)")
    if not violations:
        res.network = net
    return res
