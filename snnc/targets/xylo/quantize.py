"""Float -> Xylo integers: weights (8-bit), thresholds and biases (16-bit), weight shifts, decays.

The two methods of Rockpool's ``transform/quantize_methods.py``:

* ``"global"`` (``global_quantize``): one scale for all input and recurrent weights (they share
  the hidden neurons' state), ``s = 127 / max |w|``, and one for the output weights;
* ``"channel"`` (``channel_quantize``): one scale per target neuron, from the largest of its
  incoming input and recurrent weights (hidden) or output weights (outputs).

As there, weights become ``round(w * s)`` (half to even), thresholds ``th * s`` and the scale is
lowered where a threshold would leave 16 bits. Differences from Rockpool, on purpose (each shows in
the compile report):

* the threshold keeps NIR's strict ``v > th``: the chip fires at ``v >= threshold``, and for integer
  states ``v > t`` is ``v >= floor(t) + 1`` (option ``threshold_rounding="round"`` gives Rockpool's
  ``round(th * s)``);
* biases (16-bit on the chip, not 8) do not limit the weight scale (Rockpool's ``global_quantize``
  counts them in ``max |w|`` and scales output biases with the hidden scale; its
  ``channel_quantize`` leaves hidden biases unscaled when neurons have one synapse);
* a weight left-shift (``weight_shift="auto"``, the default) raises the state resolution by
  ``2**k``: the largest ``k <= 7`` that keeps every threshold and bias below 2**13 (a quarter of
  the 16-bit range, room for the state above threshold). Rockpool's mapper always uses 0
  (``weight_shift=0``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Union

import numpy as np

from snnc.fixedpoint import round_half_even, signed_range
from snnc.targets.xylo import chip

METHODS = ("channel", "global")
THRESHOLD_ROUNDINGS = ("strict", "round")
#: Largest threshold or bias (integer) the automatic weight shift may produce: a quarter of the state range.
AUTO_SHIFT_LIMIT = 1 << (chip.STATE_BITS - 3)

_W_LO, _W_HI = signed_range(chip.WEIGHT_BITS)
_S_LO, _S_HI = signed_range(chip.STATE_BITS)
_B_LO, _B_HI = signed_range(chip.BIAS_BITS)


@dataclass
class GroupReport:
    """What quantising one neuron group (hidden or output) did."""

    group: str
    method: str
    neurons: int
    weight_shift: int
    scale_min: float
    scale_max: float
    #: Neurons whose scale a threshold or bias (16 bits) lowered below the weights' 8-bit scale.
    limited_by_threshold: int = 0
    weights: int = 0
    weights_rounded_to_zero: int = 0
    weights_clipped: int = 0
    #: Largest |w_int * 2**shift / S - w| relative to the group's largest |w|.
    max_rel_weight_error: float = 0.0
    #: Root-mean-square weight error relative to the group's RMS weight.
    rms_rel_weight_error: float = 0.0
    max_threshold_error: float = 0.0
    bias_clipped: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return asdict(self)


@dataclass
class QuantizedGroup:
    """Integer weights (one matrix per incoming kind), thresholds, biases, the shift and per-neuron scales."""

    weights: list[np.ndarray]
    threshold: np.ndarray
    bias: np.ndarray
    weight_shift: int
    scale: np.ndarray
    report: GroupReport


def _threshold_int(th_scaled: np.ndarray, rounding: str) -> np.ndarray:
    if rounding == "round":
        return round_half_even(th_scaled)
    # strict v > t: v >= floor(t) + 1; a relative 1e-9 keeps an exact integer t*s from flooring below itself
    return np.floor(th_scaled + 1e-9 * np.abs(th_scaled)).astype(np.int64) + 1


def quantize_group(group: str, weights: list[np.ndarray], threshold: np.ndarray, bias: np.ndarray,
                   method: str = "channel", threshold_rounding: str = "strict",
                   weight_shift: Union[str, int] = "auto") -> QuantizedGroup:
    """Quantise one group: ``weights`` are float matrices (sources, neurons[, syn]) into its neurons.

    ``threshold`` and ``bias`` are per neuron, in the units of the float weights (the bias is added
    to the membrane every step). Returns the integers and the report.
    """
    th = np.asarray(threshold, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    n = th.size
    per_neuron = np.zeros(n)
    for w in weights:
        if w.size:
            per_neuron = np.maximum(per_neuron, np.abs(w).reshape(w.shape[0], n, -1).max(axis=(0, 2)))
    if method == "global":
        wmax = np.full(n, per_neuron.max() if n else 0.0)
    else:
        wmax = per_neuron
    with np.errstate(divide="ignore"):
        s = np.where(wmax > 0, _W_HI / np.where(wmax > 0, wmax, 1.0), 1.0)
    # 16-bit limits of thresholds and biases lower the scale (per neuron, or for the whole group)
    need = np.maximum(np.abs(th), np.abs(b))
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = np.where(need > 0, (_S_HI - 1) / np.where(need > 0, need, 1.0), np.inf)
    if method == "global" and n:
        cap = np.full(n, cap.min())
    limited = s > cap
    s = np.minimum(s, cap)
    if isinstance(weight_shift, str):
        k = 0
        top = float(np.max(need * s)) if n else 0.0
        while k < chip.MAX_WEIGHT_SHIFT and top * 2.0 ** (k + 1) <= AUTO_SHIFT_LIMIT:
            k += 1
    else:
        k = int(weight_shift)
    state_scale = s * 2.0 ** k
    rep = GroupReport(group=group, method=method, neurons=n, weight_shift=k,
                      scale_min=float(state_scale.min()) if n else 0.0,
                      scale_max=float(state_scale.max()) if n else 0.0,
                      limited_by_threshold=int(np.count_nonzero(limited)))
    q_weights = []
    err_max, sq_err, sq_w, n_w = 0.0, 0.0, 0.0, 0
    gmax = float(per_neuron.max()) if n else 0.0
    for w in weights:
        sh = (1, n) + (1,) * (w.ndim - 2)
        q = round_half_even(w * s.reshape(sh))
        clipped = (q < _W_LO) | (q > _W_HI)
        rep.weights_clipped += int(np.count_nonzero(clipped))
        q = np.clip(q, _W_LO, _W_HI)
        rep.weights += int(np.count_nonzero(w))
        rep.weights_rounded_to_zero += int(np.count_nonzero((q == 0) & (w != 0)))
        back = q / s.reshape(sh)
        err = np.abs(back - w)
        if w.size and gmax > 0:
            err_max = max(err_max, float(err.max()) / gmax)
        nz = w != 0
        sq_err += float((err[nz] ** 2).sum())
        sq_w += float((w[nz] ** 2).sum())
        n_w += int(nz.sum())
        q_weights.append(q.astype(np.int64))
    rep.max_rel_weight_error = err_max
    rep.rms_rel_weight_error = float(np.sqrt(sq_err / sq_w)) if sq_w > 0 else 0.0
    th_int = _threshold_int(th * state_scale, threshold_rounding)
    over = th_int > _S_HI
    if np.any(over):
        rep.notes.append(f"{int(over.sum())} threshold(s) saturated to {_S_HI}")
        th_int = np.minimum(th_int, _S_HI)
    rep.max_threshold_error = float(np.max(np.abs(th_int / state_scale - th))) if n else 0.0
    b_int = round_half_even(b * state_scale)
    rep.bias_clipped = int(np.count_nonzero((b_int < _B_LO) | (b_int > _B_HI)))
    b_int = np.clip(b_int, _B_LO, _B_HI)
    if threshold_rounding == "strict":
        rep.notes.append("threshold strict (NIR v > th): threshold = floor(th * S) + 1")
    return QuantizedGroup(q_weights, th_int.astype(np.int64), b_int.astype(np.int64), k, state_scale, rep)


def dash_from_decay(a: np.ndarray) -> np.ndarray:
    """Bit shift whose chip decay ``1 - 2**-dash`` is nearest (in log2) to the float decay ``a`` (float result)."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return -np.log2(np.clip(1.0 - a, 0.0, None))


def dash_from_tau(tau_s: np.ndarray, dt_s: float) -> np.ndarray:
    """Rockpool's rule (``Xylo2Neurons._convert_from``): ``dash = log2(tau / dt)`` (float result)."""
    return np.log2(np.asarray(tau_s, dtype=np.float64) / float(dt_s))


def round_dash(d: np.ndarray) -> np.ndarray:
    """Round float bit shifts half to even (as Rockpool's quantisers), infinities kept as a large int."""
    d = np.asarray(d, dtype=np.float64)
    return np.where(np.isfinite(d), np.rint(np.where(np.isfinite(d), d, 0.0)), 1 << 30).astype(np.int64)


def decay_error(a: np.ndarray, dash: np.ndarray) -> float:
    """Largest |a - (1 - 2**-dash)| over the neurons (0 where the chip's decay equals the float one)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    d = np.broadcast_to(np.asarray(dash), a.shape)
    chip_a = 1.0 - 2.0 ** -np.minimum(d, 62).astype(np.float64)
    return float(np.max(np.abs(a - chip_a))) if a.size else 0.0
