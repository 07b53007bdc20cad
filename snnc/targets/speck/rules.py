"""Speck hardware and model rules: small named functions, each returning a list of Violations.

Two families:
* network rules take a :class:`SpeckNetwork` (integer program) and are listed in
  :data:`NETWORK_RULES`; :func:`check_network` runs all of them.
* model rules take facts about one graph node before lowering (neuron kind, leak, reset,
  pooling kind) so that the lowering can report every unsupported construct at once.

A compile collects the violations of every rule and raises one
:class:`~snnc.errors.RuleViolationError` (see :func:`raise_if_any`).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

from snnc.errors import RuleViolationError, Violation
from snnc.fixedpoint import signed_range
from snnc.targets.speck import chip
from snnc.targets.speck.mapping import mapping_violations
from snnc.targets.speck.network import SpeckNetwork

NetworkRule = Callable[[SpeckNetwork], list[Violation]]


# ------------------------------------------------------------------ network rules
def rule_layer_count(net: SpeckNetwork) -> list[Violation]:
    """At most 9 layers (one core each)."""
    n = len(net.layers)
    if n <= chip.N_CORES:
        return []
    return [Violation("speck.cores.count", ",".join(l.name for l in net.layers), f"{n} layers",
                      f"{chip.N_CORES} cores", "every conv+IAF layer takes one core; remove layers")]


def rule_non_square_kernel(net: SpeckNetwork) -> list[Violation]:
    """Kernels must be square (kernel_size is one number on the chip)."""
    return [Violation("speck.kernel.square", l.name, f"kernel {l.kernel_size[0]}x{l.kernel_size[1]}",
                      "square kernels only", "pad the kernel with zeros to a square")
            for l in net.layers if l.kernel_size[0] != l.kernel_size[1]]


def rule_kernel_size(net: SpeckNetwork) -> list[Violation]:
    """Kernel side at most 16 (a Linear layer is a conv with a full-size kernel)."""
    out = []
    for l in net.layers:
        k = max(l.kernel_size)
        if k > chip.MAX_KERNEL_SIZE:
            out.append(Violation("speck.kernel.size", l.name, f"kernel {k}",
                                 f"<= {chip.MAX_KERNEL_SIZE}",
                                 "pool the input first (a Linear layer's kernel is the whole input map)"))
    return out


def rule_stride(net: SpeckNetwork) -> list[Violation]:
    """Stride per axis in {1, 2, 4, 8}."""
    return [Violation("speck.conv.stride", l.name, f"stride {l.stride}",
                      f"each of {chip.ALLOWED_STRIDES}", "use a power-of-two stride <= 8")
            for l in net.layers if any(s not in chip.ALLOWED_STRIDES for s in l.stride)]


def rule_padding(net: SpeckNetwork) -> list[Violation]:
    """Zero padding per side in 0..7."""
    return [Violation("speck.conv.padding", l.name, f"padding {l.padding}",
                      f"0..{chip.MAX_PADDING}", "reduce the padding")
            for l in net.layers if any(not 0 <= p <= chip.MAX_PADDING for p in l.padding)]


def rule_pooling(net: SpeckNetwork) -> list[Violation]:
    """Sum pooling per destination must be square, size in {1, 2, 4}, stride = size."""
    out = []
    for l in net.layers:
        for d in l.destinations:
            py, px = d.pooling
            if py != px:
                out.append(Violation("speck.pooling.square", l.name, f"pooling {py}x{px}",
                                     "square pooling only"))
            elif py not in chip.ALLOWED_POOLING:
                out.append(Violation("speck.pooling.size", l.name, f"pooling {py}x{px}",
                                     f"one of {chip.ALLOWED_POOLING}",
                                     "split into two pooling steps (e.g. 8 = 4 then 2 on the "
                                     "next core) or use stride"))
    return out


def rule_destinations(net: SpeckNetwork) -> list[Violation]:
    """At most 2 destinations per core (a readout route counts as one)."""
    out = []
    for i, l in enumerate(net.layers):
        n = len(l.destinations) + (1 if net.readout is not None and net.readout.layer == i else 0)
        if n > chip.MAX_DESTINATIONS:
            out.append(Violation("speck.destinations.count", l.name, f"{n} destinations",
                                 f"<= {chip.MAX_DESTINATIONS}",
                                 "insert a relay layer (identity conv) to fan out further"))
    if net.dvs is not None and len(net.dvs.destinations) > chip.MAX_DESTINATIONS:
        out.append(Violation("speck.destinations.count", "dvs", len(net.dvs.destinations),
                             f"<= {chip.MAX_DESTINATIONS}"))
    if net.dvs is None and len(net.input_layers) > chip.MAX_DESTINATIONS:
        out.append(Violation("speck.destinations.count", "input", len(net.input_layers),
                             f"<= {chip.MAX_DESTINATIONS}"))
    return out


def rule_input_size(net: SpeckNetwork) -> list[Violation]:
    """Input at most 2 x 128 x 128 (channels x height x width)."""
    c, h, w = net.input_shape
    mc, mh, mw = chip.MAX_INPUT_SHAPE
    if c <= mc and h <= mh and w <= mw:
        return []
    return [Violation("speck.input.size", "input", f"input {c}x{h}x{w}", f"<= {mc}x{mh}x{mw}",
                      "crop or pool the input before the chip (DVS pooling 2 or 4)")]


def rule_output_map(net: SpeckNetwork) -> list[Violation]:
    """Each core's neuron map at most 64 x 64."""
    out = []
    for l in net.layers:
        _, h, w = l.neuron_shape
        if h > chip.MAX_OUTPUT_SIZE or w > chip.MAX_OUTPUT_SIZE:
            s_need = max(h, w) / chip.MAX_OUTPUT_SIZE
            out.append(Violation("speck.output.size", l.name, f"output map {h}x{w}",
                                 f"<= {chip.MAX_OUTPUT_SIZE}x{chip.MAX_OUTPUT_SIZE}",
                                 f"stride or pool by >= {int(np.ceil(s_need))} before this layer"))
    return out


def rule_channels(net: SpeckNetwork) -> list[Violation]:
    """Input and output channels of a core at most 1024."""
    out = []
    for l in net.layers:
        for what, n in (("input", l.in_channels), ("output", l.out_channels)):
            if n > chip.MAX_CHANNELS:
                out.append(Violation("speck.channels", l.name, f"{n} {what} channels",
                                     f"<= {chip.MAX_CHANNELS}", "use fewer channels"))
    return out


def rule_readout(net: SpeckNetwork) -> list[Violation]:
    """Readout distinguishes at most 15 classes; the read layer has ``(n-1)*stride+1`` channels."""
    r = net.readout
    if r is None:
        return []
    out = []
    if r.num_classes > chip.MAX_READOUT_CLASSES:
        out.append(Violation("speck.readout.classes", net.layers[r.layer].name,
                             f"{r.num_classes} classes", f"<= {chip.MAX_READOUT_CLASSES}",
                             "read the output spikes by monitoring instead of the readout block"))
    if net.layers[r.layer].out_channels != r.channels:
        out.append(Violation("speck.readout.channels", net.layers[r.layer].name,
                             f"{net.layers[r.layer].out_channels} channels",
                             f"{r.channels} = ({r.num_classes} classes - 1) * {r.channel_stride} + 1"))
    return out


def rule_weight_range(net: SpeckNetwork) -> list[Violation]:
    """Weights and biases fit 8-bit signed integers."""
    lo, hi = signed_range(chip.WEIGHT_BITS)
    out = []
    for l in net.layers:
        for what, arr in (("weights", l.weights), ("biases", l.biases)):
            if arr.size and (arr.min() < lo or arr.max() > hi):
                out.append(Violation("speck.range.weights", l.name,
                                     f"{what} in [{arr.min()}, {arr.max()}]", f"[{lo}, {hi}]",
                                     "quantize with snnc.targets.speck.quantize"))
    return out


def rule_threshold_range(net: SpeckNetwork) -> list[Violation]:
    """Thresholds are 16-bit signed, threshold_high > 0 and threshold_low < threshold_high."""
    lo, hi = signed_range(chip.STATE_BITS)
    out = []
    for l in net.layers:
        for what, v in (("threshold_high", l.threshold_high), ("threshold_low", l.threshold_low)):
            if not lo <= v <= hi:
                out.append(Violation("speck.range.threshold", l.name, f"{what}={v}", f"[{lo}, {hi}]"))
        if l.threshold_high <= 0:
            out.append(Violation("speck.threshold.positive", l.name,
                                 f"threshold_high={l.threshold_high}", "> 0"))
        if l.threshold_low >= l.threshold_high:
            out.append(Violation("speck.threshold.order", l.name,
                                 f"threshold_low={l.threshold_low} >= threshold_high={l.threshold_high}",
                                 "threshold_low < threshold_high"))
    return out


def rule_dvs(net: SpeckNetwork) -> list[Violation]:
    """DVS input: 1 or 2 polarity channels, pooling per axis in {1, 2, 4}."""
    d = net.dvs
    if d is None:
        return []
    out = []
    if d.input_shape[0] not in (1, 2):
        out.append(Violation("speck.dvs.channels", "dvs", f"{d.input_shape[0]} channels", "1 or 2"))
    if any(p not in chip.ALLOWED_DVS_POOLING for p in d.pooling):
        out.append(Violation("speck.dvs.pooling", "dvs", f"pooling {d.pooling}",
                             f"each of {chip.ALLOWED_DVS_POOLING}"))
    return out


def rule_chip_readout(net: SpeckNetwork) -> list[Violation]:
    """The readout block exists on chips that have one (Speck 2E/2F, not the DYNAP-CNN devkit)."""
    variant = chip.CHIPS.get(net.chip_name)
    if net.readout is None or variant is None or variant.readout:
        return []
    return [Violation("speck.chip.readout", net.layers[net.readout.layer].name, f"readout on {net.chip_name}",
                      "a chip with a readout block (speck2e, speck2f)",
                      "read the output spikes by monitoring the output layer (drop the readout option)")]


def rule_memory(net: SpeckNetwork) -> list[Violation]:
    """All layers can be placed on distinct cores with enough kernel/neuron/bias memory."""
    if len(net.layers) > chip.N_CORES:
        return []  # rule_layer_count says it
    return mapping_violations(net.layers)[1]


#: All network rules, in the order they are reported.
NETWORK_RULES: tuple[NetworkRule, ...] = (
    rule_layer_count, rule_input_size, rule_dvs, rule_non_square_kernel, rule_kernel_size,
    rule_stride, rule_padding, rule_pooling, rule_destinations, rule_output_map, rule_channels,
    rule_readout, rule_chip_readout, rule_weight_range, rule_threshold_range, rule_memory,
)


def check_network(net: SpeckNetwork, rules: Sequence[NetworkRule] = NETWORK_RULES
                  ) -> list[Violation]:
    """Run every network rule and return all violations (empty list = the program fits)."""
    out: list[Violation] = []
    for rule in rules:
        out.extend(rule(net))
    return out


def raise_if_any(violations: Iterable[Violation], file: Optional[str] = None) -> None:
    """Raise one RuleViolationError listing all ``violations`` (if there are any)."""
    violations = list(violations)
    if violations:
        raise RuleViolationError(violations, target="speck", file=file)


# ------------------------------------------------------------------ model rules
def rule_leaky_neuron(node: str, kind: str, tau_s: Optional[float] = None,
                      v_leak: float = 0.0) -> list[Violation]:
    """Speck neurons are non-leaky IAF: a finite membrane time constant or a leak potential is refused."""
    out = []
    if tau_s is not None and np.isfinite(tau_s):
        out.append(Violation("speck.neuron.leaky", node, f"{kind} with tau={tau_s} s",
                             "non-leaky IF (tau = inf)",
                             "retrain with IF / sinabs IAF neurons; a leak exists only as a "
                             "constant bias on the slow clock"))
    if v_leak:
        out.append(Violation("speck.neuron.v_leak", node, f"v_leak={v_leak}", "0"))
    return out


def rule_memoryless_threshold(node: str, kind: str = "Threshold") -> list[Violation]:
    """A memoryless threshold (NIR Threshold, Heaviside of the input) has no Speck equivalent."""
    return [Violation("speck.neuron.memoryless", node, kind, "IF neurons (integrating state)",
                      "Speck neurons integrate; use an IF layer with return_to_zero and a "
                      "threshold, and reset every step (not exact)")]


def rule_neuron_kind(node: str, kind: str) -> list[Violation]:
    """Only IF (integrate-and-fire) neurons map to Speck cores."""
    if kind in ("IF",):
        return []
    return [Violation("speck.neuron.kind", node, kind, "IF",
                      "Speck has non-leaky IAF neurons only (no synaptic current, no leak)")]


def rule_reset(node: str, v_reset: float, subtract: bool = False) -> list[Violation]:
    """Reset must be to zero or by subtraction of the threshold."""
    if subtract or v_reset == 0:
        return []
    return [Violation("speck.neuron.reset", node, f"v_reset={v_reset}", "0 or reset by subtraction",
                      "shift the reset into the bias or use v_reset = 0")]


def rule_reset_mode(modes: Mapping[tuple[str, str], list[str]], extra: Mapping[str, Any]) -> list[Violation]:
    """One reset and one spike mode per network, agreeing with ``-O reset`` / ``-O spike_mode`` if given.

    ``modes`` maps ``(reset, spike_mode)`` ("zero"/"subtract", "single"/"multi") to the layers
    whose IF neurons carry it (sinabs modules and files; NIR's own neurons are ("zero", "single")).
    """
    if len(modes) > 1:
        found = "; ".join(f"reset {r}, {s} spikes: {', '.join(ns[:3])}" for (r, s), ns in sorted(modes.items()))
        return [Violation("speck.neuron.reset_mode", "network", found, "one reset and spike mode per network",
                          "build every IAF layer with the same reset_fn and spike_fn")]
    (reset, spike), = modes
    names = ", ".join(next(iter(modes.values()))[:3])
    if spike not in ("single", "multi"):
        return [Violation("speck.neuron.reset_mode", names, f"{spike} spikes per step",
                          "one spike per step, or as many as the state holds (sinabs' MultiSpike)",
                          "a capped multi-spike neuron (Rockpool's max_spikes_per_dt) has no Speck equivalent")]
    out = []
    if extra.get("reset") not in (None, reset):
        out.append(Violation("speck.neuron.reset_mode", names, f"neurons reset '{reset}', -O reset={extra['reset']}",
                             "the neurons' own reset", "drop -O reset"))
    if extra.get("spike_mode") not in (None, spike):
        out.append(Violation("speck.neuron.reset_mode", names,
                             f"neurons fire '{spike}' spikes per step, -O spike_mode={extra['spike_mode']}",
                             "the neurons' own spike mode", "drop -O spike_mode"))
    return out


def rule_unsupported_pooling(node: str, kind: str, kernel: Sequence[int],
                             stride: Optional[Sequence[int]] = None) -> list[Violation]:
    """Only sum pooling (or average pooling folded into the next weights) with stride = kernel."""
    out = []
    if kind not in ("SumPool2d", "AvgPool2d"):
        out.append(Violation("speck.pooling.kind", node, kind, "SumPool2d / AvgPool2d",
                             "max pooling does not exist on Speck; use sum pooling"))
    k = tuple(int(v) for v in kernel)
    if stride is not None and tuple(int(v) for v in stride) != k:
        out.append(Violation("speck.pooling.stride", node, f"stride {tuple(stride)}",
                             f"stride = kernel {k}"))
    return out
