"""Float layer parameters (after discretisation with step dt) -> Loihi 2's integers, with a report.

Start: a synapse with float weights ``W`` (and bias ``b``) feeding neurons in snnc's two-stage form
(:mod:`snnc.dynamics`): ``i' = a_i i + g_i x`` (CubaLIF; else ``i' = x``), ``v' = a_v v + g_v i' +
c_v``, spike when ``v > theta``, then ``v = 0``. Loihi (lava/proc/lif/models.py) computes
``u' = trunc(u (4096 - du) / 4096) + (a << 6)``, ``v' = trunc(v (4096 - dv) / 4096) + u' + bias``,
spike when ``v > vth_mant << 6``. With a per-neuron scale ``s_n = K / theta_n`` (``K = vth_mant *
64``; one ``vth_mant`` per layer, per-neuron thresholds fold into the scale) the integer states
are ``v_int = s v`` and ``u_int = s g_v i``, so:

* ``du = round(4096 (1 - a_i))`` (4096 when there is no current stage), ``dv = round(4096 (1 - a_v))``;
* weight mantissas ``w = s g_v g_i W / 2**(weight_exp + 6)``, rounded (to even for mixed signs,
  whose lowest bit Lava drops) and clipped to the sign mode's 8-bit range;
* ``bias = s (c_v + g_v b)`` per step for neurons without a current stage; for CubaLIF a bias
  enters the current, which Loihi cannot do: it is mapped to its steady-state voltage increment
  ``s g_v g_i b / (1 - a_i)`` and reported as an approximation;
* ``K`` (hence the scale) is the largest value that keeps ``vth_mant <= 2**17 - 1``, the largest
  weight mantissa within 8 bits at the chosen exponent and, by a worst-case bound (every input
  spiking every step), ``|u| < 2**23`` so that u never wraps.

Readouts (``readout=True``, non-spiking layers whose output is ``v``): ``theta`` is 1 (no
threshold), ``vth_mant`` is the maximum and one more bound chooses ``K``: in the worst case ``v``
stays below ``vth_mant << 6`` so the layer never fires (impossible to guarantee without a voltage
leak, ``dv = 0``: then the report says so). ``v_float = v_int / scale``.

``weight_exp`` is 0 when possible (what lava-dl netx can express, and the only value Lava's
``Conv`` honours); dense layers use a negative exponent only when the 0-exponent weights would use
fewer than ``min_weight_bits`` bits. Nothing is clipped or rounded away silently: every count is
in the :class:`QuantReport`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

import numpy as np

from snnc.errors import ValueRangeError
from snnc.fixedpoint import round_half_even
from snnc.targets.loihi.chip import (BIAS_EXP_RANGE, BIAS_MANT_RANGE_HW, DECAY_UNITY, INPUT_SCALE, INPUT_SHIFT,
                                     V_MAX, VTH_MANT_MAX, WEIGHT_EXP_RANGE_HW)

#: Largest |u| and |v| that neither wraps nor saturates.
UV_LIMIT = V_MAX


@dataclass
class QuantReport:
    """What quantising one layer did: scale, bits, clipping, rounding, worst-case states."""

    scale: float
    vth_mant: int
    weight_exp: int
    weight_bits_used: int
    sign_mode: str
    limited_by: str
    du: int
    dv: int
    tau_ratio_error: Dict[str, float] = field(default_factory=dict)
    weights_clipped: int = 0
    weights_rounded_to_zero: int = 0
    weight_rms_rel_error: float = 0.0
    bias_exp: int = 0
    bias_clipped: int = 0
    bias_approximated: bool = False
    worst_u: float = 0.0
    worst_v: float = 0.0
    uv_limit: int = UV_LIMIT
    notes: list = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-able dict."""
        return {k: (float(v) if isinstance(v, (np.floating,)) else v) for k, v in asdict(self).items()}


@dataclass
class QuantizedLayer:
    """The integers of one layer and its report."""

    weights: np.ndarray
    weight_exp: int
    sign_mode: str
    du: int
    dv: int
    vth_mant: int
    bias_mant: np.ndarray
    bias_exp: int
    report: QuantReport
    #: The float twin (what the integers round): unrounded, unclipped weight mantissas ``wf`` (same shape as
    #: ``weights``), bias per output in v units (``bias_mant << bias_exp`` rounds it), the float decays
    #: ``a_i`` (0 without a current stage) and ``a_v``, u units per unit of float synaptic input
    #: (``act_scale``, per output) and v units per float v (``v_scale``, per output).
    twin: Dict[str, Any] = field(default_factory=dict)


def decay_to_int(a: Any, name: str, node: str) -> int:
    """Return the 12-bit decay ``round(4096 (1 - a))`` of a uniform per-step factor ``a`` in [0, 1]."""
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    if arr.size and not np.allclose(arr, arr[0], rtol=0, atol=1e-12):
        raise ValueRangeError(f"{name} differs between neurons; Loihi has one {name} per layer", node=node)
    x = float(arr[0]) if arr.size else 1.0
    if not 0.0 <= x <= 1.0:
        raise ValueRangeError(f"{name} factor {x} outside [0, 1]", node=node)
    return int(min(DECAY_UNITY, max(0, int(round_half_even(DECAY_UNITY * (1.0 - x))))))


def quantize_layer(name: str, weight: np.ndarray, *, a_v: Any, g_v: Any, c_v: Any, theta: Any,
                   a_i: Optional[Any] = None, g_i: Optional[Any] = None, bias: Optional[np.ndarray] = None,
                   conv: bool = False, min_weight_bits: int = 6, allow_negative_exp: bool = True,
                   readout: bool = False) -> QuantizedLayer:
    """Quantise one layer (weights ``(out, ...)``; neuron coefficients scalar or per output neuron/channel).

    ``conv``: weights are a convolution kernel (per-output-channel scalars; exponent fixed at 0).
    Raises :class:`ValueRangeError` for non-positive thresholds or non-uniform decays.
    """
    w = np.asarray(weight, dtype=np.float64)
    n_out = w.shape[0]

    def per_out(x: Any, default: float) -> np.ndarray:
        if x is None:
            return np.full(n_out, default)
        a = np.asarray(x, dtype=np.float64).reshape(-1)
        if a.size == 1:
            return np.full(n_out, float(a[0]))
        if a.size == n_out:
            return a
        raise ValueRangeError(f"per-neuron parameters of size {a.size} cannot map to {n_out} outputs "
                              "(Loihi needs them per output channel)", node=name)

    th = per_out(theta, 1.0)
    if np.any(th <= 0):
        raise ValueRangeError(f"threshold must be > 0 on Loihi (spike when v > vth_mant << 6 with "
                              f"vth_mant >= 0 and a positive scale), found min {th.min()}", node=name)
    gv, cv = per_out(g_v, 1.0), per_out(c_v, 0.0)
    cuba = a_i is not None
    gi = per_out(g_i, 1.0) if cuba else np.ones(n_out)
    ai = float(np.asarray(a_i).reshape(-1)[0]) if cuba else 0.0
    du = decay_to_int(a_i, "current decay", name) if cuba else DECAY_UNITY
    dv = decay_to_int(a_v, "voltage decay", name)
    gain = gv * gi / th  # per-output factor; integer weights = K * gain * W / 2**(e+6)
    wg = w * gain.reshape((-1,) + (1,) * (w.ndim - 1))
    wmax = float(np.abs(wg).max()) if w.size else 0.0
    mixed = bool((w > 0).any() and (w < 0).any())
    sign_mode = "mixed" if mixed else ("inhibitory" if w.size and (w <= 0).all() and (w < 0).any() else "excitatory")
    mant_max = 254.0 if mixed else 255.0
    # worst case |u|: all inputs spike every step, accumulated with the current decay
    fan_abs = np.abs(wg).reshape(n_out, -1).sum(axis=1).max() if w.size else 0.0
    growth = 1.0 / (du / DECAY_UNITY) if du > 0 else float("inf")
    candidates = {"threshold": VTH_MANT_MAX * float(INPUT_SCALE)}
    if wmax > 0:
        candidates["weights at exponent 0"] = mant_max * float(INPUT_SCALE) / wmax
    if fan_abs > 0 and math.isfinite(growth):
        candidates["no u wrap (worst case)"] = UV_LIMIT / (fan_abs * growth)
    b_all = (per_out(c_v, 0.0) + per_out(g_v, 1.0) * (0.0 if bias is None else per_out(bias, 0.0))) / th
    if not cuba and float(np.abs(b_all).max()) > 0:  # the bias must fit 13-bit mantissa << 3-bit exponent
        candidates["bias range"] = BIAS_MANT_RANGE_HW[1] * 2.0 ** BIAS_EXP_RANGE[1] / float(np.abs(b_all).max())
    readout_note = ""
    if readout:
        candidates.pop("threshold")
        b_unit = float(np.abs((per_out(c_v, 0.0) + per_out(g_v, 1.0) * (0.0 if bias is None else
                                                                          per_out(bias, 0.0))) / th).max())
        dv_unit = decay_to_int(a_v, "voltage decay", name) / DECAY_UNITY
        v_unit = ((fan_abs * growth if math.isfinite(growth) else float("inf")) + b_unit) / dv_unit \
            if dv_unit > 0 else float("inf")
        if math.isfinite(v_unit) and v_unit > 0:
            candidates["readout v below threshold (worst case)"] = (VTH_MANT_MAX - 1) * float(INPUT_SCALE) / v_unit
        else:
            readout_note = ("readout without a voltage leak (or current decay): v is unbounded, so it may reach "
                            "the maximum threshold and spike (then v resets to 0); watch the readout's spikes")
        if not candidates:
            candidates["readout default"] = float(INPUT_SCALE) * INPUT_SCALE
    limited_by = min(candidates, key=candidates.get)
    k = candidates[limited_by]
    if readout:
        vth_mant = VTH_MANT_MAX
        k = max(1.0, math.floor(k))
    else:
        vth_mant = int(max(1, min(VTH_MANT_MAX, math.floor(k / INPUT_SCALE))))
        k = vth_mant * float(INPUT_SCALE)
    e = 0
    used = k * wmax / INPUT_SCALE  # largest |mantissa| at exponent 0
    if not conv and allow_negative_exp and 0 < used < 2 ** (min_weight_bits - 1):
        e = max(WEIGHT_EXP_RANGE_HW[0], min(0, math.ceil(math.log2(used / mant_max))))
    wf = k * wg / 2.0 ** (e + INPUT_SHIFT)
    if mixed:
        wq = 2 * round_half_even(wf / 2.0)
        lo, hi = -256, 254
    elif sign_mode == "inhibitory":
        wq, lo, hi = round_half_even(wf), -255, 0
    else:
        wq, lo, hi = round_half_even(wf), 0, 255
    clipped = int(np.count_nonzero((wq < lo) | (wq > hi)))
    wq = np.clip(wq, lo, hi).astype(np.int64)
    zeroed = int(np.count_nonzero((wq == 0) & (w != 0)))
    rms = float(np.sqrt(np.mean(wf ** 2))) if wf.size else 0.0
    rel = float(np.sqrt(np.mean((wq - wf) ** 2)) / rms) if rms > 0 else 0.0
    top = float(np.abs(wq).max()) if wq.size else 0.0
    # bits of the stored mantissa incl. sign; mixed mantissas are even (Lava drops the low bit)
    bits = int(math.ceil(math.log2(top / 2 + 1))) + 1 if mixed else int(math.ceil(math.log2(top + 1)))
    # bias per step in v units
    notes = []
    b = np.zeros(n_out) if bias is None else per_out(bias, 0.0)
    approx = False
    if cuba and np.any(b != 0):
        approx = True
        b_v = gv * gi * b / max(1.0 - ai, 1e-12)
        notes.append("bias into a current-based neuron mapped to its steady-state voltage increment "
                     "(Loihi adds bias to v, not to u): approximate during the first ~tau_syn steps")
    else:
        b_v = gv * b
    bias_int = k * (cv + b_v) / th
    bexp = BIAS_EXP_RANGE[0]
    bmax = float(np.abs(bias_int).max()) if bias_int.size else 0.0
    while bexp < BIAS_EXP_RANGE[1] and bmax / 2 ** bexp > BIAS_MANT_RANGE_HW[1]:
        bexp += 1
    bm = round_half_even(bias_int / 2 ** bexp)
    bclip = int(np.count_nonzero((bm < BIAS_MANT_RANGE_HW[0]) | (bm > BIAS_MANT_RANGE_HW[1])))
    bm = np.clip(bm, *BIAS_MANT_RANGE_HW).astype(np.int64)
    # worst-case states with the integers chosen
    w_in = (np.abs(wq).reshape(n_out, -1).sum(axis=1).max() if wq.size else 0) * 2.0 ** (e + INPUT_SHIFT)
    worst_u = w_in * (growth if math.isfinite(growth) else float("inf"))
    dv_frac = dv / DECAY_UNITY
    worst_v = (worst_u + float(np.abs(bm).max() if bm.size else 0) * 2 ** bexp) / dv_frac if dv_frac > 0 \
        else float("inf")
    tau_err = {}
    if cuba and ai > 0:
        tau_err["current"] = float((1 - du / DECAY_UNITY) / ai - 1.0)
    a_v0 = float(np.asarray(a_v).reshape(-1)[0])
    if a_v0 > 0:
        tau_err["voltage"] = float((1 - dv / DECAY_UNITY) / a_v0 - 1.0)
    rep = QuantReport(scale=float(k / th.max()), vth_mant=vth_mant, weight_exp=e, weight_bits_used=bits,
                      sign_mode=sign_mode, limited_by=limited_by, du=du, dv=dv, tau_ratio_error=tau_err,
                      weights_clipped=clipped, weights_rounded_to_zero=zeroed, weight_rms_rel_error=rel,
                      bias_exp=bexp, bias_clipped=bclip, bias_approximated=approx,
                      worst_u=float(min(worst_u, 1e300)), worst_v=float(min(worst_v, 1e300)), notes=notes)
    if worst_v > UV_LIMIT:
        rep.notes.append("v may saturate at +-(2**23 - 1) in the worst case (Lava clips v)")
    if readout_note:
        rep.notes.append(readout_note)
    twin = {"weights": wf, "bias": np.asarray(bias_int, dtype=np.float64), "a_i": ai, "a_v": a_v0,
            "act_scale": k * gain, "v_scale": k / th}
    return QuantizedLayer(weights=wq, weight_exp=e, sign_mode=sign_mode if wq.any() else "excitatory", du=du,
                          dv=dv, vth_mant=vth_mant, bias_mant=bm, bias_exp=bexp, report=rep, twin=twin)
