"""Xylo rules: small named functions, each returning a list of Violations (empty when it holds).

Two families, as in Rockpool's design rule checks (``devices/xylo/syns61201/xylo_mapper.py``
``xylo_drc``):

* **model rules** take one graph population or synapse path before quantisation (neuron kind,
  reset, spike limit, decays, synapse kinds, the roles of populations);
* **network rules** take the integer :class:`XyloNetwork` and the chip (:data:`NETWORK_RULES`):
  sizes, value ranges, memories, the expansion windows.

:func:`check_network` runs every network rule; the lowering collects the model rules' violations
with them, so one compile reports everything that is wrong.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from snnc.errors import Violation
from snnc.fixedpoint import signed_range
from snnc.targets.xylo import chip
from snnc.targets.xylo.network import XyloNetwork

NetworkRule = Callable[[XyloNetwork, chip.ChipSpec], list[Violation]]
#: Neuron kinds Xylo's neurons implement (a synaptic current and a membrane, both leaky).
NEURON_KINDS = ("CubaLIF",)


# ------------------------------------------------------------------ model rules
def rule_neuron_kind(node: str, kind: str) -> list[Violation]:
    """Only current-based LIF neurons: Xylo's synaptic current decays before it reaches the membrane."""
    if kind in NEURON_KINDS:
        return []
    hints = {"LIF": "a LIF has no synaptic current; Xylo's input always passes a decaying current: use CubaLIF",
             "IF": "Xylo neurons always leak (decay of at least 1 per step): use CubaLIF",
             "Threshold": "Xylo has no memoryless threshold",
             "LI": "non-spiking readouts are not mapped; use spiking CubaLIF outputs",
             "CubaLI": "non-spiking readouts are not mapped; use spiking CubaLIF outputs"}
    return [Violation("xylo.neuron.kind", node, kind, "CubaLIF", hints.get(kind, "use CubaLIF neurons"))]


def rule_reset_mode(node: str, neuron: Any) -> list[Violation]:
    """Xylo resets by subtracting the threshold (xylosim ``XyloIAFNeuron::evolve``): NIR's reset to v_reset is refused."""
    if getattr(neuron, "reset_mode", "to_v_reset") == "subtract":
        return []
    return [Violation("xylo.neuron.reset", node, "reset to v_reset", "reset by subtraction",
                      "train with reset by subtraction (snnc.models.xylo_models.XyloCubaLIF, or Rockpool's "
                      "LIFTorch imported with --framework rockpool)")]


def rule_spike_limit(node: str, neuron: Any, role: str) -> list[Violation]:
    """A neuron may not allow fewer spikes per step than the chip fires (31 hidden, 1 output); more is capped."""
    limit = chip.MAX_HIDDEN_SPIKES if role == "hidden" else chip.MAX_OUTPUT_SPIKES
    m = int(getattr(neuron, "max_spikes_per_step", 1))
    if m >= limit:
        return []
    return [Violation("xylo.neuron.spikes", node, f"max_spikes_per_step={m} ({role})", f">= {limit}",
                      f"Xylo {role} neurons fire up to {limit} spike(s) per step; train with that limit")]


def rule_dash_range(node: str, what: str, dash: np.ndarray) -> list[Violation]:
    """Decays are bit shifts 0..15: ``1 - 2**-dash`` (xylosim ``dash`` 4 bits)."""
    lo, hi = chip.dash_range()
    d = np.asarray(dash)
    if d.size == 0 or (d.min() >= lo and d.max() <= hi):
        return []
    return [Violation("xylo.neuron.dash", node, f"{what} bit shift {int(d.min())}..{int(d.max())}", f"{lo}..{hi}",
                      "the time constant is longer than dt * 2**15 or shorter than dt; change tau or --dt")]


def rule_dash_syn_zero(node: str, dash_syn: np.ndarray) -> list[Violation]:
    """A synaptic bit shift of 0 empties the current before it reaches the membrane: the input is lost."""
    if np.all(np.asarray(dash_syn) > 0):
        return []
    return [Violation("xylo.neuron.dash_syn", node, "synaptic bit shift 0 (tau_syn < dt / ln 2)", ">= 1",
                      "Xylo decays the synaptic current before adding it to the membrane; use tau_syn >= dt / ln 2")]


def rule_synapse_kind(node: str, kind: str) -> list[Violation]:
    """Synapses are dense weight matrices (Linear/Affine, scalar Scale, Flatten)."""
    if kind in ("Linear", "Affine", "Scale", "Flatten"):
        return []
    return [Violation("xylo.synapse.kind", node, kind, "Linear/Affine (dense weights)",
                      "Xylo has input, recurrent and output weight matrices only")]


def rule_synapse_bias(node: str, bias: np.ndarray) -> list[Violation]:
    """Weights carry no bias (Rockpool ``weight_nodes_have_no_biases``): a constant current has no register."""
    if not np.any(np.asarray(bias) != 0):
        return []
    return [Violation("xylo.synapse.bias", node, "Affine bias", "no bias",
                      "use bias-free Linear weights; a membrane bias goes into the neuron (v_leak)")]


def rule_output_not_recurrent(node: str, targets: Sequence[str]) -> list[Violation]:
    """Output neurons drive nothing on the chip (Rockpool ``output_neurons_cannot_be_recurrent``)."""
    if not targets:
        return []
    return [Violation("xylo.output.recurrent", node, f"output neurons feed {list(targets)}", "the graph output only",
                      "read a hidden population out through another output population")]


def rule_output_source(node: str, sources: Sequence[str]) -> list[Violation]:
    """Output neurons take only hidden spikes (Rockpool ``at_least_two_neuron_layers_needed``)."""
    if "input" not in sources:
        return []
    return [Violation("xylo.output.source", node, "input channels feed the output neurons", "hidden neurons only",
                      "Xylo has no input-to-output weights: add a hidden layer")]


def rule_population_count(hidden: Sequence[str], outputs: Sequence[str]) -> list[Violation]:
    """One output population and at least one hidden one (Rockpool ``at_least_two_neuron_layers_needed``)."""
    out = []
    if len(outputs) != 1:
        out.append(Violation("xylo.output.populations", ",".join(outputs) or "graph",
                             f"{len(outputs)} output populations", "exactly 1",
                             "the graph output must be one spiking population (optionally through a linear readout)"))
    if not hidden:
        out.append(Violation("xylo.hidden.populations", "graph", "no hidden population", ">= 1",
                             "Xylo maps at least two neuron layers: hidden and output"))
    return out


# ------------------------------------------------------------------ network rules
def input_channel_violations(n_in: int, spec: chip.ChipSpec) -> list[Violation]:
    """At most 16 input channels (Rockpool ``le_16_input_channels``), for a channel count."""
    if n_in <= spec.inputs:
        return []
    return [Violation("xylo.input.channels", "input", f"{n_in} channels", f"<= {spec.inputs}",
                      "reduce the front end to 16 channels")]


def rule_input_channels(net: XyloNetwork, spec: chip.ChipSpec) -> list[Violation]:
    """At most 16 input channels (Rockpool ``le_16_input_channels``)."""
    return input_channel_violations(net.n_in, spec)


def size_violations(n_hidden: int, n_out: int, spec: chip.ChipSpec, where: str = "hidden",
                    out_name: str = "output") -> list[Violation]:
    """Hidden and output neuron counts against the chip (Rockpool ``mapper`` ``max_hidden_neurons``,
    ``le_8_output_channels`` / ``le_16_output_channels``)."""
    out = []
    if n_hidden > spec.hidden:
        out.append(Violation("xylo.hidden.count", where, f"{n_hidden} neurons",
                             f"<= {spec.hidden} ({spec.description})", "use fewer hidden neurons"))
    if n_out > spec.outputs:
        out.append(Violation("xylo.output.count", out_name, f"{n_out} neurons",
                             f"<= {spec.outputs} ({spec.description})",
                             "read more classes as a linear code of the output spikes (a Linear after the output "
                             "neurons runs on the host)"))
    return out


def rule_neuron_counts(net: XyloNetwork, spec: chip.ChipSpec) -> list[Violation]:
    """At most 1000 (Audio 2) / 496 (IMU) hidden and 8 (Audio 2) / 16 (IMU) output neurons."""
    return size_violations(net.n_hidden, net.n_out, spec, ",".join(net.populations) or "hidden")


def rule_synapses_per_neuron(net: XyloNetwork, spec: chip.ChipSpec) -> list[Violation]:
    """Hidden neurons have 2 synaptic currents on Audio 2, 1 on IMU (Rockpool ``max_synapses_per_neuron``)."""
    if net.n_syn <= spec.hidden_synapses:
        return []
    return [Violation("xylo.neuron.synapses", "hidden", f"{net.n_syn} synapses per neuron",
                      f"<= {spec.hidden_synapses} ({spec.description})")]


def _range(name: str, node: str, a: np.ndarray, bits: int, hint: str) -> list[Violation]:
    lo, hi = signed_range(bits)
    a = np.asarray(a)
    if a.size == 0 or (a.min() >= lo and a.max() <= hi):
        return []
    return [Violation(name, node, f"values in [{int(a.min())}, {int(a.max())}]", f"[{lo}, {hi}] ({bits}-bit)", hint)]


def rule_weight_range(net: XyloNetwork, spec: chip.ChipSpec) -> list[Violation]:
    """Weights are 8-bit signed (xylosim ``BITS_WEIGHT``)."""
    hint = "quantise with snnc.targets.xylo.quantize"
    return (_range("xylo.range.weights", "weights_in", net.weights_in, chip.WEIGHT_BITS, hint)
            + _range("xylo.range.weights", "weights_rec", net.weights_rec, chip.WEIGHT_BITS, hint)
            + _range("xylo.range.weights", "weights_out", net.weights_out, chip.WEIGHT_BITS, hint))


def rule_threshold_range(net: XyloNetwork, spec: chip.ChipSpec) -> list[Violation]:
    """Thresholds are 16-bit and at least 1 (a threshold <= 0 fires the spike limit every step)."""
    out = []
    for node, th in (("hidden", net.threshold), ("output", net.threshold_out)):
        out += _range("xylo.range.threshold", node, th, chip.STATE_BITS, "rescale the population")
        if th.size and th.min() < 1:
            out.append(Violation("xylo.threshold.positive", node, f"threshold {int(th.min())}", ">= 1",
                                 "thresholds must be positive"))
    return out


def rule_bias_range(net: XyloNetwork, spec: chip.ChipSpec) -> list[Violation]:
    """Membrane biases are 16-bit (xylosim ``int16_t bias``)."""
    return (_range("xylo.range.bias", "hidden", net.bias, chip.BIAS_BITS, "reduce v_leak")
            + _range("xylo.range.bias", "output", net.bias_out, chip.BIAS_BITS, "reduce v_leak"))


def rule_dash_values(net: XyloNetwork, spec: chip.ChipSpec) -> list[Violation]:
    """Every decay bit shift is in 0..15."""
    out = []
    for what in ("dash_mem", "dash_syn", "dash_syn_2", "dash_mem_out", "dash_syn_out"):
        out += rule_dash_range("output" if what.endswith("_out") else "hidden", what, getattr(net, what))
    return out


def rule_weight_shift(net: XyloNetwork, spec: chip.ChipSpec) -> list[Violation]:
    """Weight shifts are 0..7 (snnc's bound: ``w << shift`` must fit xylosim's ``int16_t``)."""
    out = []
    for what in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
        k = int(getattr(net, what))
        if not 0 <= k <= chip.MAX_WEIGHT_SHIFT:
            out.append(Violation("xylo.range.weight_shift", what, k, f"0..{chip.MAX_WEIGHT_SHIFT}"))
    return out


def rule_recurrent_memory(net: XyloNetwork, spec: chip.ChipSpec) -> list[Violation]:
    """Recurrent synapses fit the fan-out memory (Audio 2: 32,000 entries, ``xa2_devkit_utils`` memory map)."""
    if spec.recurrent_synapses is None:
        return []
    n = int(np.count_nonzero(np.any(net.weights_rec != 0, axis=2)))
    if n <= spec.recurrent_synapses:
        return []
    return [Violation("xylo.recurrent.synapses", ",".join(net.populations) or "hidden", f"{n} recurrent synapses",
                      f"<= {spec.recurrent_synapses} ({spec.description})", "prune the recurrent/hidden-to-hidden weights")]


def rule_expansion(net: XyloNetwork, spec: chip.ChipSpec) -> list[Violation]:
    """Input weights reach only the first, output weights come only from the last expansion neurons (IMU: 128)."""
    out = []
    w_in = np.any(net.dense_in() != 0, axis=(0, 2))
    if np.any(w_in[spec.input_expansion:]):
        out.append(Violation("xylo.input.expansion", "hidden",
                             f"input weights to hidden neuron {int(np.flatnonzero(w_in).max())}",
                             f"< {spec.input_expansion} ({spec.description})",
                             "fewer input-driven hidden neurons"))
    w_out = np.any(net.dense_out() != 0, axis=1)
    first = net.n_hidden - spec.output_expansion
    if first > 0 and np.any(w_out[:first]):
        out.append(Violation("xylo.output.expansion", "hidden",
                             f"output weights from hidden neuron {int(np.flatnonzero(w_out).min())}",
                             f">= {first} (the last {spec.output_expansion})", "fewer output-driving hidden neurons"))
    return out


#: All network rules, in the order they are reported.
NETWORK_RULES: tuple[NetworkRule, ...] = (
    rule_input_channels, rule_neuron_counts, rule_synapses_per_neuron, rule_weight_range,
    rule_threshold_range, rule_bias_range, rule_dash_values, rule_weight_shift, rule_recurrent_memory,
    rule_expansion,
)


def check_network(net: XyloNetwork, spec: chip.ChipSpec,
                  rules: Sequence[NetworkRule] = NETWORK_RULES) -> list[Violation]:
    """Run every network rule and return all violations (empty list = the program fits)."""
    out: list[Violation] = []
    for rule in rules:
        out.extend(rule(net, spec))
    return out
