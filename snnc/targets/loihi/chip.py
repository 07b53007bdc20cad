"""Loihi 2's numbers, in one place: register widths and limits, chip sizes, and the CUBA LIF arithmetic.

Register widths and state arithmetic are those of Lava's bit-accurate CPU models (lava-nc 0.10:
lava/proc/lif/models.py ``AbstractPyLifModelFixed``, ``PyLifModelBitAcc``; lava/proc/dense/models.py
``AbstractPyDenseModelBitAcc``; lava/proc/conv/models.py ``PyConvModelFixed``; lava/utils/weightutils.py),
which Intel describes as bit-accurate with the chip for these processes. Chip sizes: Intel Labs,
"Taking Neuromorphic Computing to the Next Level with Loihi 2", technology brief, 2021 (128 cores,
up to 1 million neurons and 120 million synapses per chip; snnc assumes 8192 neurons per core) and,
where Loihi 2's figures are not public, Loihi 1's (Davies et al., IEEE Micro 38(1), 2018).
"""
from __future__ import annotations

# ----------------------------------------------------------------------------- registers
#: Decays are 12-bit fractions of this: ``du``/``dv`` = 0 keeps the state, 4096 empties it every step.
DECAY_BITS = 12
DECAY_UNITY = 1 << DECAY_BITS
#: Lava's LIF adds every synaptic input to ``u`` as ``a_in << 6``; thresholds are ``vth_mant << 6``.
INPUT_SHIFT = 6
INPUT_SCALE = 1 << INPUT_SHIFT
#: ``u`` and ``v`` are 24-bit states: ``u`` wraps once at ``+-2**23``, ``v`` saturates at ``+-(2**23 - 1)``.
STATE_BITS = 24
UV_MAX = 1 << (STATE_BITS - 1)  # Lava's max_uv_val
U_WRAP = 1 << STATE_BITS
V_MIN, V_MAX = -UV_MAX + 1, UV_MAX - 1
#: Synaptic sums travel through int32 channels (and a conv's sum is clamped to 24 bits).
INT32_RANGE = (-(1 << 31), (1 << 31) - 1)
#: 8-bit weight mantissas: the range of each Lava sign mode (lava/utils/weightutils.py ``clip_weights``).
WEIGHT_BITS = 8
WEIGHT_RANGE = {"mixed": (-256, 255), "excitatory": (0, 255), "inhibitory": (-255, 0)}
#: Threshold mantissa: 17 bits, unsigned.
VTH_MANT_MAX = (1 << 17) - 1

# Limits of what Lava's CPU model computes well-defined; outside them Lava silently wraps (int16
# bias_mant, int32 weights) or overflows. These raise at construction of a LoihiLayer.
BIAS_MANT_RANGE_LAVA = (-(1 << 15), (1 << 15) - 1)  # the int16 Var in PyLifModelBitAcc
BIAS_EXP_RANGE = (0, 7)  # 3-bit unsigned (LIF docstring); netx uses 6
WEIGHT_EXP_RANGE_LAVA = (-16, 16)
# Documented hardware ranges (Lava docstrings, Loihi 1 figures): violations, not errors.
BIAS_MANT_RANGE_HW = (-(1 << 12), (1 << 12) - 1)  # "signed 13-bit integer (-4096 to 4095)"
WEIGHT_EXP_RANGE_HW = (-8, 7)  # Loihi 1 (Davies et al. 2018); Loihi 2's is not public

# ----------------------------------------------------------------------------- chip
CORES_PER_CHIP = 128
NEURONS_PER_CORE = 8192
NEURONS_PER_CHIP = CORES_PER_CHIP * NEURONS_PER_CORE
SYNAPSES_PER_CHIP = 120_000_000
#: Loihi 1's input (and output) axons per core; Loihi 2's are not public (fan-in warnings only).
LOIHI1_AXONS_PER_CORE = 4096
