"""Loihi 2's numbers, in one place: register widths and limits, chip sizes, and the CUBA LIF arithmetic.

Register widths and state arithmetic are those of Lava's bit-accurate CPU models (lava-nc 0.10:
lava/proc/lif/models.py ``AbstractPyLifModelFixed``, ``PyLifModelBitAcc``; lava/proc/dense/models.py
``AbstractPyDenseModelBitAcc``; lava/proc/conv/models.py ``PyConvModelFixed``; lava/utils/weightutils.py),
which Intel describes as bit-accurate with the chip for these processes. Chip sizes: Intel Labs,
"Taking Neuromorphic Computing to the Next Level with Loihi 2", technology brief, 2021 (128 cores,
up to 1 million neurons and 120 million synapses per chip; snnc assumes 8192 neurons per core) and,
where Loihi 2's figures are not public, Loihi 1's (Davies et al., IEEE Micro 38(1), 2018).

The CUBA LIF step (:func:`lif_step_of`), per neuron, in int32 arithmetic (every engine of the
reference simulator runs this one definition)::

    u = wrap_u(wrap32(trunc(u * (4096 - du) / 4096) + (a << 6)))
    v = saturate_v(wrap32(trunc(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp)))
    spike where v > vth_mant << 6, then v = 0 there (u is not reset; no refractory time)

``wrap_u`` wraps ``u`` *once*: values ``> 2**23`` lose ``2**24``, values ``<= -2**23`` gain ``2**24``
(so the range is ``[-2**23, 2**23]``, not a two's-complement 24-bit wrap); ``saturate_v`` clips
``v`` to ``[-2**23 + 1, 2**23 - 1]``. The truncating decay and the two's-complement wraps come in
two forms, one per representation of the integers, with the same values: float64 arrays for the
numpy engine (every intermediate is an integer below 2**53 in magnitude, so float arithmetic is
exact, and numpy's float ufuncs are fast) and int64 scalars for the compiled kernels (shifts and
masks): :func:`decay_float`/:func:`decay_int`, :func:`wrap_float`/:func:`wrap_int`.
"""
from __future__ import annotations

from typing import Any, Callable, Tuple

import numpy as np

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


# ----------------------------------------------------------------------------- CUBA LIF arithmetic
def decay_float(x: Any, d: int, out: Any = None) -> Any:
    """Return ``trunc(x * (4096 - d) / 4096)`` of float64-held integers (exact: ``|x * 4096| < 2**53``).

    ``out`` (an array, ``x`` itself allowed) receives the result; ``d = 0`` returns ``x`` unchanged.
    """
    if d == 0:
        return x
    if d == DECAY_UNITY:  # memoryless: nothing is kept
        if out is None:
            return np.zeros_like(x)
        out[...] = 0.0
        return out
    y = np.multiply(x, (DECAY_UNITY - d) / DECAY_UNITY, out=out)
    return np.trunc(y, out=y)


def decay_int(x: Any, d: Any) -> Any:
    """Return ``trunc(x * (4096 - d) / 4096)`` of an int64 as Lava computes it: ``sign(p) * (|p| >> 12)``."""
    p = x * (DECAY_UNITY - d)
    q = np.abs(p) >> DECAY_BITS
    return -q if p < 0 else q


def wrap_float(x: Any, bits: int) -> Any:
    """Return float64-held integers wrapped to ``bits``-bit two's complement (exact for ``|x| < 2**53``)."""
    full = float(1 << bits)
    return x - full * np.floor((x + full / 2) / full)


def wrap_int(x: Any, bits: int) -> Any:
    """Return an int64 wrapped to ``bits``-bit two's complement."""
    half = 1 << (bits - 1)
    return ((x + half) & (2 * half - 1)) - half


def wrap32_float(x: Any) -> Any:
    """Return float64-held integers wrapped to int32 (Lava's int32 sums)."""
    return wrap_float(x, 32)


def wrap_u(u: Any) -> Any:
    """Return ``u`` wrapped once into ``[-2**23, 2**23]`` as Lava's LIF does (any integer representation)."""
    return u - U_WRAP * (u > UV_MAX) + U_WRAP * (u <= -UV_MAX)


def saturate_v(v: Any) -> Any:
    """Return ``v`` clipped to ``[-2**23 + 1, 2**23 - 1]`` (any integer representation)."""
    return np.minimum(np.maximum(v, V_MIN), V_MAX)


def same(x: Any) -> Any:
    """Return ``x``: the stand-in for a wrap that bounds prove can never happen."""
    return x


LifStep = Callable[[Any, Any, Any, Any, Any, Any, Any], Tuple[Any, Any, Any]]


def lif_step_of(decay: Callable[[Any, Any], Any], wrap32: Callable[[Any], Any],
                wrap_u: Callable[[Any], Any] = wrap_u, saturate_v: Callable[[Any], Any] = saturate_v) -> LifStep:
    """Return Loihi's CUBA LIF step (module doc) built from one integer representation's ``decay`` and ``wrap32``.

    ``step(u, v, a, bias, du, dv, vth) -> (u, v, spikes)``: ``a`` is the synaptic input already
    shifted (``a << 6``), ``bias`` is ``bias_mant << bias_exp``, ``vth`` is ``vth_mant << 6``. Arrays
    ``u`` and ``v`` may be updated in place (a ``decay`` that writes into its argument makes the
    numpy engine's step allocate nothing). An engine passes :func:`same` for a wrap its bounds prove
    never fires (the numpy engine does).
    """
    def lif_step(u: Any, v: Any, a: Any, bias: Any, du: Any, dv: Any, vth: Any) -> Tuple[Any, Any, Any]:
        u = decay(u, du)
        u += a
        u = wrap_u(wrap32(u))
        v = decay(v, dv)
        v += u
        v += bias
        v = saturate_v(wrap32(v))
        s = v > vth
        v *= v <= vth  # reset to 0 where it spiked
        return u, v, s
    return lif_step
