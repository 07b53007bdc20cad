"""SynSense Xylo chip constants: the SNN core of Xylo Audio 2 (SYNS61201) and Xylo IMU (SYNS63300).

Every number names the file it was read from: Rockpool 3.1.0 (``rockpool/devices/xylo/...``) or
the xylosim 0.1.3 sources (``src/v2/cpp/XyloIAFNeuron.h``, ``XyloLayer.cpp``), the C++ model that
Rockpool's ``XyloSim`` runs. Where neither states a limit, the constant says so.

The core (both chips): ``Nin`` input channels feed ``Nhidden`` hidden neurons through 8-bit input
weights; hidden neurons feed each other through 8-bit recurrent weights and the ``Nout`` output
neurons through 8-bit output weights. A neuron has one or two synaptic currents and a membrane,
all 16-bit, decaying by bit shifts; it fires when ``v >= threshold`` and subtracts the threshold
per spike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

#: Signed width of every weight (xylosim ``XyloIAFNeuron.h``: ``BITS_WEIGHT 8``; Rockpool
#: ``transform/quantize_methods.py``: ``bits_per_weight = 8``).
WEIGHT_BITS = 8
#: Signed width of synaptic currents, membrane potentials and thresholds (xylosim
#: ``XyloIAFNeuron.h``: ``BITS_STATE 16``, ``int16_t v_th``; Rockpool ``quantize_methods.py``:
#: ``bits_per_threshold = 16``).
STATE_BITS = 16
#: Signed width of a neuron's membrane bias (xylosim ``XyloIAFNeuron.h``: ``int16_t bias``).
BIAS_BITS = 16
#: Width of a decay bit shift (``dash``): 0..15 (xylosim ``XyloIAFNeuron.h``: ``uint8_t dash_mem;
#: // should be 4 bits``, the same for ``dash_syns``).
DASH_BITS = 4
#: Largest weight left-shift per weight matrix. Not stated by Rockpool or xylosim (Rockpool's mapper
#: always writes 0); snnc's bound: an 8-bit weight shifted by 7 still fits xylosim's ``int16_t``
#: synaptic input (``weight << weight_bitshift`` is passed as ``int16_t``).
MAX_WEIGHT_SHIFT = 7
#: Most input spikes per channel and step (xylosim ``XyloIAFNeuron.h``: ``MAX_NUM_INP_SPIKES 15``;
#: ``XyloLayer.cpp`` ``deliver_spikes`` clips larger counts).
MAX_INPUT_SPIKES = 15
#: Most spikes per hidden neuron and step (xylosim ``XyloIAFNeuron.h``: ``MAX_NUM_SPIKES 31``).
MAX_HIDDEN_SPIKES = 31
#: Most spikes per output neuron and step (xylosim ``XyloIAFNeuron.h``: ``MAX_NUM_OUT_SPIKES 1``).
MAX_OUTPUT_SPIKES = 1


@dataclass(frozen=True)
class ChipSpec:
    """Sizes of one Xylo SNN core."""

    name: str
    description: str
    #: Input channels.
    inputs: int
    #: Hidden (recurrent) neurons.
    hidden: int
    #: Output (readout) neurons.
    outputs: int
    #: Synaptic currents per hidden neuron (output neurons have one).
    hidden_synapses: int
    #: Recurrent synapses the chip stores in all (sparse fan-out memory), None where unpublished.
    recurrent_synapses: Optional[int]
    #: Hidden neurons that can receive input weights (the first ones: "input expansion neurons").
    input_expansion: int
    #: Hidden neurons that can drive output neurons (the last ones: "output expansion neurons").
    output_expansion: int
    #: Where the numbers come from.
    source: str


#: Xylo Audio 2 (SYNS61201): Rockpool ``devices/xylo/syns61201/xylo_mapper.py`` (``mapper``: input
#: and output weights reach every hidden neuron;
#: ``max_hidden_neurons = 1000``, ``max_output_neurons = 8``; design rules ``le_16_input_channels``,
#: ``le_8_output_channels``), ``devices/xylo/__init__.py`` ("two synapses per neuron"),
#: ``syns61201/xa2_devkit_utils.py`` ``read_allram_state``: the memory map gives 1000 entries per
#: neuron RAM and 32,000 recurrent fan-out/weight entries (``RWTRAM - RFORAM = 0x12620 - 0xA920``).
XYLO_AUDIO2 = ChipSpec(
    name="audio2", description="Xylo Audio 2 (SYNS61201)", inputs=16, hidden=1000, outputs=8,
    hidden_synapses=2, recurrent_synapses=0x12620 - 0xA920, input_expansion=1000, output_expansion=1000,
    source="rockpool 3.1.0 devices/xylo/syns61201/xylo_mapper.py, xa2_devkit_utils.py; xylosim 0.1.3")

#: Xylo IMU (SYNS63300): Rockpool ``devices/xylo/syns63300/xylo_mapper.py`` (``mapper``:
#: ``max_hidden_neurons = 496``, ``max_output_neurons = 16``), ``devices/xylo/__init__.py`` ("one
#: synapse per neuron"; ``max_synapses_per_neuron``), input channels: ``le_16_input_channels``;
#: input and output expansion neurons: the rule names ``le_128_input_expansion_neurons`` and
#: ``le_128_output_expansion_neurons`` (their bodies are empty in 3.1.0; snnc enforces the 128).
XYLO_IMU = ChipSpec(
    name="imu", description="Xylo IMU (SYNS63300)", inputs=16, hidden=496, outputs=16,
    hidden_synapses=1, recurrent_synapses=None, input_expansion=128, output_expansion=128,
    source="rockpool 3.1.0 devices/xylo/syns63300/xylo_mapper.py; xylosim 0.1.3")

#: The chips by name (``-O chip=NAME``).
CHIPS = {c.name: c for c in (XYLO_AUDIO2, XYLO_IMU)}
#: The chip compiled for when none is named.
DEFAULT_CHIP = XYLO_AUDIO2.name


def dash_range() -> tuple[int, int]:
    """Smallest and largest decay bit shift (``dash``)."""
    return 0, (1 << DASH_BITS) - 1


def decay_factor(dash: int) -> float:
    """The per-step decay factor ``1 - 2**-dash`` of a bit-shift decay (away from the +-1 floor)."""
    return 1.0 - 2.0 ** -int(dash)
