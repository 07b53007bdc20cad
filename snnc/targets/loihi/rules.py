"""Loihi 2 rules: small named functions, each returning a list of :class:`~snnc.errors.Violation`.

The chip's figures and register widths are in :mod:`snnc.targets.loihi.chip` (with their sources).
snnc assumes every layer takes whole cores and reports fan-in/out against Loihi 1's figures as
warnings only (Loihi 2's are not public).

Two families, each run as a list: model rules (:data:`MODEL_RULES`) look at one fused graph layer
before lowering (what the chip's CUBA LIF can compute), network rules (:data:`NETWORK_RULES`) look
at the integer :class:`LoihiNetwork` (registers and sizes).
"""
from __future__ import annotations

import math
from typing import Callable, List

import numpy as np

from snnc.compiler.graph import Affine, Conv2d, Flatten, Graph, Layer, Node, Scale, SumPool2d
from snnc.errors import Violation
from snnc.targets.loihi.chip import (BIAS_MANT_RANGE_HW, CORES_PER_CHIP, LOIHI1_AXONS_PER_CORE,  # noqa: F401
                                     NEURONS_PER_CHIP, NEURONS_PER_CORE, SYNAPSES_PER_CHIP, WEIGHT_EXP_RANGE_HW,
                                     WEIGHT_RANGE)
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork

#: Neuron kinds the CUBA LIF of Lava's fixed_pt model can express.
SUPPORTED_NEURONS = ("LIF", "CubaLIF", "IF", "Threshold")
#: Non-spiking kinds that map to a readout layer (a CUBA LIF with the maximum threshold, output v).
READOUT_NEURONS = ("LI", "CubaLI", "I")

NetworkRule = Callable[[LoihiNetwork], List[Violation]]
#: A model rule looks at one fused layer ``name`` of the passed graph.
ModelRule = Callable[[Graph, str], List[Violation]]


# ------------------------------------------------------------------ model rules
def _neuron(graph: Graph, name: str) -> Node:
    """Return the neuron of fused layer ``name`` (None for a weighted readout without one)."""
    node = graph.nodes[name]
    return node.neuron if isinstance(node, Layer) else None


def rule_neuron_kind(graph: Graph, name: str) -> List[Violation]:
    """Spiking kinds a CUBA LIF can express (LIF, CubaLIF, IF, Threshold), or readouts (LI, CubaLI, I, none)."""
    neuron = _neuron(graph, name)
    if neuron is None or neuron.kind in READOUT_NEURONS:
        return []  # readouts: lower_graph checks that they feed only the graph output
    if neuron.kind not in SUPPORTED_NEURONS:
        return [Violation("loihi.neuron.kind", name, neuron.kind, "/".join(SUPPORTED_NEURONS + READOUT_NEURONS),
                          "use a spiking neuron, or a non-spiking one only as the output readout")]
    return []


def rule_readout_feeds_output(graph: Graph, name: str) -> List[Violation]:
    """A non-spiking layer (LI/CubaLI/I) sends a voltage, not spikes: on Loihi it can only be the output."""
    node = graph.nodes[name]
    if not isinstance(node, Layer) or node.neuron is None or node.neuron.kind not in READOUT_NEURONS:
        return []
    bad = [d for d in graph.successors(name) if graph.nodes[d].kind != "Output"]
    if not bad:
        return []
    return [Violation("loihi.readout.fanout", name, f"non-spiking {node.neuron.kind} feeds {bad}",
                      "only the graph output", "Loihi layers exchange binary spikes; make this layer spiking")]


def rule_reset_to_zero(graph: Graph, name: str) -> List[Violation]:
    """Loihi's LIF resets v to 0 after a spike and emits at most one spike per step."""
    neuron = _neuron(graph, name)
    mode = getattr(neuron, "reset_mode", "to_v_reset")
    max_spikes = int(getattr(neuron, "max_spikes_per_step", 1))
    v_min = getattr(neuron, "v_min", None)
    if mode != "to_v_reset" or max_spikes != 1 or v_min is not None:
        found = f"reset_mode={mode!r}, max_spikes_per_step={max_spikes}" + \
            (f", floor v_min={v_min:g}" if v_min is not None else "")
        return [Violation("loihi.neuron.reset", name, found, "reset to v_reset = 0, 1 spike per step, no floor",
                          "Lava's LIF sets v = 0 after one spike and has no membrane floor. A sinabs NIR file: "
                          "compile with --dt 1 --method exact instead of --framework sinabs (NIR's reset to "
                          "zero, the deployable variant); a sinabs module: build it with SingleSpike, "
                          "MembraneReset and min_v_mem=None; Rockpool's LIFTorch runs on the cpu target only. "
                          "Or retrain with reset to zero and one spike per step")]
    reset = getattr(neuron, "v_reset", None)
    if reset is not None and np.any(np.asarray(reset) != 0):
        return [Violation("loihi.neuron.reset", name, f"v_reset in [{np.min(reset)}, {np.max(reset)}]", "0",
                          "train with reset to zero (Lava's LIF sets v = 0 after a spike)")]
    return []


def rule_positive_threshold(graph: Graph, name: str) -> List[Violation]:
    """Thresholds must be positive (the integer threshold is vth_mant << 6 >= 0 on a positive scale)."""
    neuron = _neuron(graph, name)
    th = getattr(neuron, "v_threshold", getattr(neuron, "threshold", None))
    if th is not None and np.any(np.asarray(th) <= 0):
        return [Violation("loihi.neuron.threshold", name, f"min threshold {np.min(th)}", "> 0")]
    return []


def rule_uniform_decay(graph: Graph, name: str) -> List[Violation]:
    """du and dv are one value per layer in Lava's LIF: time constants must be uniform."""
    neuron = _neuron(graph, name)
    out = []
    for field in ("tau", "tau_mem", "tau_syn"):
        tau = getattr(neuron, field, None)
        if tau is not None and np.asarray(tau).size > 1 and not np.allclose(tau, np.asarray(tau).reshape(-1)[0]):
            out.append(Violation("loihi.neuron.decay", name, f"{field} varies over neurons", "one value per layer",
                                 "split the layer or train with a shared time constant"))
    return out


#: The rules every fused layer of the passed graph is checked against, in report order.
MODEL_RULES: List[ModelRule] = [rule_neuron_kind, rule_reset_to_zero, rule_positive_threshold, rule_uniform_decay,
                                rule_readout_feeds_output]


def check_layer(graph: Graph, name: str) -> List[Violation]:
    """Return the violations of every model rule for fused layer ``name``."""
    return [v for rule in MODEL_RULES for v in rule(graph, name)]


def rule_synapse_chain(name: str, layer: Layer) -> List[Violation]:
    """A layer's synapses: [Flatten] Affine, Conv2d, or SumPool2d (each Loihi synapse feeds neurons directly)."""
    return rule_synapse_nodes(name, list(layer.synapses))


def rule_synapse_nodes(name: str, synapses: List[Node]) -> List[Violation]:
    """One Loihi synapse: at most one weighted node ([Flatten] Affine, Conv2d, SumPool2d) plus Scales.

    A SumPool2d (k x k, stride k, no padding) followed by a Conv2d or [Flatten] Affine, or a Conv2d followed
    by such a pool, is accepted: the lowering composes the two into one exact synapse (see
    :func:`rule_pool_fold`).

    No weighted node at all is a one-to-one connection (identity, or an elementwise Scale).
    """
    kinds = [type(s) for s in synapses if not isinstance(s, Scale)]
    if len(kinds) >= 2 and issubclass(kinds[0], SumPool2d) and (
            kinds[1:] == [Conv2d] or (len(kinds) == 3 and kinds[1] is Flatten and issubclass(kinds[2], Affine)) or
            (len(kinds) == 2 and issubclass(kinds[1], Affine))):
        return rule_pool_fold(name, [s for s in synapses if not isinstance(s, Scale)])
    if kinds == [Conv2d] + kinds[1:] and len(kinds) == 2 and issubclass(kinds[1], SumPool2d):
        return rule_pool_fold(name, [s for s in synapses if not isinstance(s, Scale)][::-1])
    ok = kinds in ([], [Flatten], [Affine], [Flatten, Affine], [Conv2d], [SumPool2d], [Flatten, SumPool2d]) or \
        (len(kinds) == 2 and kinds[0] is Flatten and issubclass(kinds[1], Affine)) or \
        (len(kinds) == 1 and issubclass(kinds[0], (Affine, Conv2d, SumPool2d)))
    if ok:
        return []
    found = " -> ".join(s.kind for s in synapses) or "no synapse"
    return [Violation("loihi.layer.synapses", name, found, "[Flatten ->] Affine | Conv2d | SumPool2d",
                      "on Loihi every synapse feeds LIF neurons; put a neuron between stacked synapses")]


def rule_pool_fold(name: str, weighted: List[Node]) -> List[Violation]:
    """SumPool2d -> Conv2d / [Flatten] Affine (or Conv2d -> SumPool2d, passed as ``[pool, conv]``) composes
    into one synapse only for k x k pools of stride k, no padding, and (for a conv) dilation 1."""
    pool, last = weighted[0], weighted[-1]
    kh, kw = (int(x) for x in pool.kernel_size)
    out: List[Violation] = []
    if kh != kw or tuple(int(x) for x in pool.stride) != (kh, kw) or any(int(p) for p in pool.padding):
        out.append(Violation("loihi.layer.poolfold", name,
                             f"{pool.kind}(kernel={tuple(pool.kernel_size)}, stride={tuple(pool.stride)}, "
                             f"padding={tuple(pool.padding)}) next to {last.kind}",
                             f"{pool.kind} with kernel (k, k), stride (k, k), padding (0, 0) next to {last.kind}",
                             "only non-overlapping square pools compose exactly with the following synapse; "
                             "put a neuron between the pool and the next synapse"))
    if isinstance(last, Conv2d) and tuple(int(x) for x in last.dilation) != (1, 1):
        out.append(Violation("loihi.layer.poolfold", name, f"Conv2d dilation {tuple(last.dilation)} next to "
                             f"{pool.kind}", "dilation (1, 1)", "a dilated conv next to a pool does not compose "
                             "into one strided conv"))
    return out


def rule_feed_forward(graph: Graph) -> List[Violation]:
    """List recurrent edges as violations, for callers that need feed-forward graphs (lowering accepts them)."""
    return [Violation("loihi.graph.recurrent", d, f"recurrent edge {s} -> {d}", "feed-forward graphs",
                      "the Loihi lowering supports recurrence; this rule is for feed-forward-only uses")
            for s, d in graph.recurrent_edges()]


def rule_node_kinds(graph: Graph) -> List[Violation]:
    """Only fused layers (plus Input/Output); Delay nodes have no Loihi form here (each hop already costs a step)."""
    out = []
    for name, node in graph.nodes.items():
        if node.kind in ("Input", "Output") or isinstance(node, Layer):
            continue
        hint = ("Loihi delivers every synaptic hop one step later by itself; explicit Delay nodes (synaptic "
                "delays) are not lowered" if node.kind == "Delay" else
                "the compiler could not fuse this node into a synapse -> neuron layer")
        out.append(Violation("loihi.graph.node", name, node.kind, "fused layers only", hint))
    for name in graph.nodes:
        if not graph.predecessors(name) and graph.nodes[name].kind != "Input":
            out.append(Violation("loihi.graph.unfed", name, "no inputs", "every layer reads something"))
    return out


# ------------------------------------------------------------------ network rules
def layer_register_violations(layer: LoihiLayer) -> List[Violation]:
    """Return values of one layer that Lava's CPU model accepts but Loihi's documented registers do not hold."""
    out: List[Violation] = []
    if not layer.has_neurons:
        return out
    if layer.extra_inputs:
        for k in range(len(layer.extra_inputs) + 1):
            out += layer_register_violations(layer.synapse_view(k) if k else layer.replace(extra_inputs=[]))
        seen = set()
        return [v for v in out if not (repr(v) in seen or seen.add(repr(v)))]
    _, rep = layer.effective_weights()
    if rep["weights_clipped"]:
        out.append(Violation("weight-range", layer.name, f"{rep['weights_clipped']} weights",
                             f"8-bit {layer.sign_mode} range", "rescale the weights (a larger weight_exp)"))
    if rep["weights_truncated"]:
        out.append(Violation("weight-bits", layer.name, f"{rep['weights_truncated']} weights with low bits",
                             f"num_weight_bits={layer.num_weight_bits}", "quantize to the declared precision"))
    if layer.kind != "dense" and layer.weights is not None and layer.weights.size:
        lo, hi = WEIGHT_RANGE[layer.sign_mode]
        if layer.weights.min() < lo or layer.weights.max() > hi:
            out.append(Violation("weight-range", layer.name,
                                 f"[{int(layer.weights.min())}, {int(layer.weights.max())}]", f"[{lo}, {hi}]",
                                 "conv weights must be 8-bit mantissas"))
    if layer.kind == "dense" and not WEIGHT_EXP_RANGE_HW[0] <= layer.weight_exp <= WEIGHT_EXP_RANGE_HW[1]:
        out.append(Violation("weight-exponent", layer.name, layer.weight_exp, list(WEIGHT_EXP_RANGE_HW),
                             "Loihi 1's range; Loihi 2's is not public"))
    b = np.asarray(layer.bias_mant)
    if b.size and (b.min() < BIAS_MANT_RANGE_HW[0] or b.max() > BIAS_MANT_RANGE_HW[1]):
        out.append(Violation("bias-mantissa", layer.name, f"[{int(b.min())}, {int(b.max())}]",
                             list(BIAS_MANT_RANGE_HW), "use a larger bias_exp"))
    return out


def rule_registers(net: LoihiNetwork) -> List[Violation]:
    """Every integer fits Loihi's documented registers (weights, exponents, bias mantissa)."""
    return [v for ly in net.layers for v in layer_register_violations(ly)]


def rule_neurons_per_chip(net: LoihiNetwork) -> List[Violation]:
    """At most 128 x 8192 neurons on one chip."""
    n = sum(ly.num_neurons for ly in net.layers)
    if n <= NEURONS_PER_CHIP:
        return []
    return [Violation("loihi.chip.neurons", net.name, n, NEURONS_PER_CHIP, "use fewer neurons or several chips")]


def rule_cores_per_chip(net: LoihiNetwork) -> List[Violation]:
    """Layers take whole cores of 8192 neurons; at most 128 cores."""
    cores = sum(math.ceil(ly.num_neurons / NEURONS_PER_CORE) for ly in net.layers if ly.has_neurons)
    if cores <= CORES_PER_CHIP:
        return []
    return [Violation("loihi.chip.cores", net.name, f"{cores} cores", CORES_PER_CHIP, "merge small layers")]


def synapse_count(net: LoihiNetwork) -> int:
    """Stored synapses: non-zero dense weights plus conv kernels (shared weights stored once per core)."""
    total = 0
    for ly in net.layers:
        if not ly.has_neurons:
            continue
        w, _ = ly.effective_weights()
        if ly.kind == "dense":
            total += int(np.count_nonzero(w))
        else:
            total += int(np.count_nonzero(w)) * math.ceil(ly.num_neurons / NEURONS_PER_CORE)
    return total


def rule_synapses_per_chip(net: LoihiNetwork) -> List[Violation]:
    """At most 120 million synapses on one chip."""
    n = synapse_count(net)
    if n <= SYNAPSES_PER_CHIP:
        return []
    return [Violation("loihi.chip.synapses", net.name, n, SYNAPSES_PER_CHIP, "prune or share weights")]


NETWORK_RULES: List[NetworkRule] = [rule_registers, rule_neurons_per_chip, rule_cores_per_chip,
                                    rule_synapses_per_chip]


def check_network(net: LoihiNetwork) -> List[Violation]:
    """Return the violations of every network rule."""
    return [v for rule in NETWORK_RULES for v in rule(net)]


def fan_warnings(net: LoihiNetwork) -> List[str]:
    """Return warnings where a layer's fan-in exceeds Loihi 1's 4096 input axons per core (Loihi 2: not public)."""
    out = []
    for ly in net.layers:
        if ly.kind == "dense" and ly.input_shape[0] > LOIHI1_AXONS_PER_CORE:
            out.append(f"{ly.name}: fan-in {ly.input_shape[0]} exceeds Loihi 1's {LOIHI1_AXONS_PER_CORE} input "
                       "axons per core (Loihi 2's limit is not public)")
    return out
