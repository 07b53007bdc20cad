"""Speck / DynapCNN chip constants, memory formulas, and the chip variants (speck2e, speck2f, dynapcnn).

Every number here was checked against sinabs 3.1.3
(``sinabs/backend/dynapcnn/chips/dynapcnn.py`` ``get_constraints``,
``dynapcnn_layer.py`` ``memory_summary``, ``discretize.py``) and the test
``tests/test_speck_oracle.py`` compares the formulas with sinabs' own code.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Number of convolutional cores ("cnn_layers") on the chip.
N_CORES = 9

_KI = 1024


@dataclass(frozen=True)
class CoreMemory:
    """Memory of one core, in entries: kernel (weights), neuron (states) and bias."""

    kernel_entries: int
    neuron_entries: int
    bias_entries: int


#: Memory per core, index = core id (sinabs ``DynapcnnConfigBuilder.get_constraints``).
CORES: tuple[CoreMemory, ...] = (
    CoreMemory(16 * _KI, 64 * _KI, _KI),  # 0
    CoreMemory(16 * _KI, 64 * _KI, _KI),  # 1
    CoreMemory(16 * _KI, 64 * _KI, _KI),  # 2
    CoreMemory(32 * _KI, 32 * _KI, _KI),  # 3
    CoreMemory(32 * _KI, 32 * _KI, _KI),  # 4
    CoreMemory(64 * _KI, 16 * _KI, _KI),  # 5
    CoreMemory(64 * _KI, 16 * _KI, _KI),  # 6
    CoreMemory(16 * _KI, 16 * _KI, _KI),  # 7
    CoreMemory(16 * _KI, 16 * _KI, _KI),  # 8
)

#: Names of the three memories, in the order used in diagnostics.
MEMORY_KINDS: tuple[str, ...] = ("kernel", "neuron", "bias")

#: Weight and bias precision (signed), sinabs ``DYNAPCNN_WEIGHT_PRECISION_BITS``.
WEIGHT_BITS = 8
#: Neuron state and threshold precision (signed), sinabs ``DYNAPCNN_STATE_PRECISION_BITS``.
STATE_BITS = 16

#: Largest square convolution kernel side.
MAX_KERNEL_SIZE = 16
#: Allowed convolution strides (per axis).
ALLOWED_STRIDES: tuple[int, ...] = (1, 2, 4, 8)
#: Largest zero padding per side.
MAX_PADDING = 7
#: Allowed square sum-pooling sizes per destination (stride = size).
ALLOWED_POOLING: tuple[int, ...] = (1, 2, 4)
#: Destinations (output routes) per core.
MAX_DESTINATIONS = 2
#: Largest input: (channels, height, width) of the DVS / input layer.
MAX_INPUT_SHAPE: tuple[int, int, int] = (2, 128, 128)
#: Largest output feature map side (height and width) of a core.
MAX_OUTPUT_SIZE = 64
#: Largest number of input or output channels of a core.
MAX_CHANNELS = 1024
#: Largest number of classes the readout layer distinguishes.
MAX_READOUT_CLASSES = 15
#: Destination index that routes a core's spikes to the readout block (samna numbering).
READOUT_DESTINATION = 12
#: Spike models of a time-binned simulation: sinabs ``MultiSpike`` ("multi", several spikes
#: per bin, the chip's behaviour when many events arrive within a bin) and ``SingleSpike``
#: ("single", at most one spike per bin, NIR's semantics).
SPIKE_MODES: tuple[str, ...] = ("multi", "single")
#: A neuron's spike limit from which "multi" holds: a 16-bit state over a threshold >= 1 cannot
#: emit more spikes in one step (sinabs' MultiSpike has no limit; snnc marks it 2**16).
UNCAPPED_SPIKES = 2 ** 16
#: DVS input pooling sizes allowed per axis.
ALLOWED_DVS_POOLING: tuple[int, ...] = (1, 2, 4)


def ceil_log2(n: int) -> int:
    """Return ``ceil(log2(n))`` for a positive integer ``n`` (exact integer arithmetic)."""
    if n < 1:
        raise ValueError(f"ceil_log2 needs n >= 1, got {n}")
    return (int(n) - 1).bit_length()


def kernel_memory_entries(out_channels: int, in_channels: int, kernel_h: int, kernel_w: int) -> int:
    """Kernel memory a conv needs: ``c * 2**(ceil(log2(h*w)) + ceil(log2(f)))`` entries."""
    return int(in_channels) * (1 << (ceil_log2(kernel_h * kernel_w) + ceil_log2(out_channels)))


def neuron_memory_entries(out_channels: int, out_h: int, out_w: int) -> int:
    """Neuron memory a conv output needs: ``f * 2**(ceil(log2 H) + ceil(log2 W))`` entries."""
    return int(out_channels) * (1 << (ceil_log2(out_h) + ceil_log2(out_w)))


def bias_memory_entries(out_channels: int, has_bias: bool) -> int:
    """Bias memory a layer needs: one entry per output channel when it has a bias, else 0."""
    return int(out_channels) if has_bias else 0


def conv_output_size(in_size: int, kernel: int, stride: int, padding: int) -> int:
    """Output side of a convolution (no dilation), as in sinabs ``_get_conv_output_shape``."""
    return (int(in_size) + 2 * int(padding) - int(kernel)) // int(stride) + 1


def largest_memory(kind: str) -> int:
    """Largest memory of ``kind`` ('kernel', 'neuron', 'bias') over all cores, in entries."""
    return max(core_limit(c, kind) for c in range(N_CORES))


def core_limit(core: int, kind: str) -> int:
    """Memory of ``kind`` ('kernel', 'neuron', 'bias') of core ``core``, in entries."""
    mem = CORES[core]
    return {"kernel": mem.kernel_entries, "neuron": mem.neuron_entries,
            "bias": mem.bias_entries}[kind]


@dataclass(frozen=True)
class ChipVariant:
    """One chip of the family (``--chip`` / ``-O chip=NAME``): samna module, devkits, configuration differences.

    All three share the 9 cores, memories and rules above (sinabs uses one ``get_constraints``).
    ``readout``: the chip has the readout block that sinabs' ``extend_readout_layer`` serves ("For
    Speck 2E and 2F"). ``kill_bits``: its configuration also carries ``weights_kill_bit``,
    ``biases_kill_bit`` and ``neurons_value_kill_bit`` (sinabs <= 2.0.3's DYNAP-CNN builder writes
    them; its Speck builders do not; sinabs 2.0.4+ dropped the DYNAP-CNN devkit).
    """

    name: str
    samna_module: str
    configuration_class: str
    devkits: tuple[str, ...]
    readout: bool
    kill_bits: bool


#: The chips snnc configures, by ``chip`` option value.
CHIPS: dict[str, ChipVariant] = {
    "speck2e": ChipVariant("speck2e", "speck2e", "SpeckConfiguration", ("speck2edevkit", "speck2e"), True, False),
    "speck2f": ChipVariant("speck2f", "speck2f", "SpeckConfiguration", ("speck2fdevkit", "speck2fmodule"), True,
                           False),
    "dynapcnn": ChipVariant("dynapcnn", "dynapcnn", "DynapcnnConfiguration", ("dynapcnndevkit",), False, True),
}


def chip_variant(name: str) -> ChipVariant:
    """Return the chip called ``name`` (KeyError names the known ones)."""
    if name not in CHIPS:
        raise KeyError(f"unknown chip {name!r}; known: {sorted(CHIPS)}")
    return CHIPS[name]
