"""Float -> Speck integer discretisation, one scale per layer, bit-compatible with sinabs 3.1.3.

sinabs (``backend/dynapcnn/discretize.py``) picks for each conv + IAF pair

    s = min(scale(W, 8), scale(b, 8), scale([v_low, v_th], 16))

where ``scale(x, bits)`` maps the larger of ``|max(x)|`` and ``|min(x)|`` (the negative side
may use the one extra code, -2**(bits-1)) onto the signed range, and then rounds
``W*s, b*s, v_th*s, v_low*s`` half to even. It does this in float32 torch arithmetic, and
torch evaluates ``a / t`` as ``reciprocal(t) * a``: we repeat exactly those float32 steps in
numpy so that the integers are identical (``tests/test_speck_oracle.py`` checks it).

Differences from sinabs, on purpose:
* ``v_low=None`` does not mean ``-2**15`` *before* scaling (which forces s = 1 and rounds
  small weights to zero); it means "the lowest state the 16-bit register holds": the scale
  is chosen from W, b and v_th alone and the integer lower bound is ``-2**15``.
* Values that would leave the signed range after rounding are saturated and counted in the
  report (with sinabs' scale this cannot happen, but it is never silent).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

from snnc.errors import ValueRangeError
from snnc.fixedpoint import round_half_even, signed_range
from snnc.targets.speck import chip

log = logging.getLogger(__name__)


@dataclass
class QuantReport:
    """What the discretisation of one layer did: scale, what limited it, clipped and zeroed values."""

    name: str
    scale: float
    limited_by: str
    scale_weights: float
    scale_biases: float
    scale_thresholds: float
    clipped: dict[str, int] = field(default_factory=dict)
    rounded_to_zero: dict[str, int] = field(default_factory=dict)
    max_abs_error: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-able dict (an unlimited scale, e.g. of all-zero biases, is None)."""
        d = asdict(self)
        for key in ("scale_weights", "scale_biases", "scale_thresholds"):
            if not np.isfinite(d[key]):
                d[key] = None
        return d


@dataclass
class QuantizedLayer:
    """Integer parameters of one layer and the scale that produced them."""

    weights: np.ndarray
    biases: np.ndarray
    threshold_high: int
    threshold_low: int
    scale: float
    report: QuantReport


def discretization_scale(values: np.ndarray, bits: int) -> np.float32:
    """sinabs' ``determine_discretization_scale`` in float32: the factor mapping ``values`` onto ``bits`` signed bits."""
    x = np.asarray(values, dtype=np.float32).reshape(-1)
    if x.size == 0:
        return np.float32(np.inf)
    lo_d, hi_d = signed_range(bits)
    x_min, x_max = np.float32(x.min()), np.float32(x.max())
    ratio = np.float32(abs(lo_d / hi_d))  # torch casts the python float to float32
    with np.errstate(divide="ignore", invalid="ignore"):
        if abs(x_min) <= abs(x_max) * ratio:
            s = np.abs((np.float32(1.0) / x_max) * np.float32(hi_d))
        else:
            s = np.abs((np.float32(1.0) / x_min) * np.float32(lo_d))
    return np.float32(s)


def _discretize(name: str, what: str, x: np.ndarray, scale: np.float32, bits: int,
                report: QuantReport) -> np.ndarray:
    """Round ``x * scale`` (float32 product) half to even, saturating and counting out-of-range values."""
    xf = np.asarray(x, dtype=np.float32)
    scaled = xf * scale  # float32 * float32, as torch
    q = round_half_even(scaled)
    lo, hi = signed_range(bits)
    over = (q < lo) | (q > hi)
    n_over = int(np.count_nonzero(over))
    if n_over:
        log.warning("layer %s: %d %s values saturated to %d bits", name, n_over, what, bits)
        q = np.clip(q, lo, hi)
    report.clipped[what] = n_over
    report.rounded_to_zero[what] = int(np.count_nonzero((q == 0) & (xf != 0)))
    if xf.size:
        with np.errstate(invalid="ignore"):
            err = np.abs(q.astype(np.float64) / float(scale) - xf.astype(np.float64))
        report.max_abs_error[what] = float(np.nanmax(err)) if np.isfinite(scale) else 0.0
    else:
        report.max_abs_error[what] = 0.0
    return q.astype(np.int64)


def quantize_layer(name: str, weights: np.ndarray, biases: Optional[np.ndarray],
                   v_threshold: float, v_low: Optional[float] = None,
                   strict_threshold: bool = False) -> QuantizedLayer:
    """Discretise one conv+IAF layer (float weights [f][c][h][w], biases [f], threshold, lower bound) with one scale.

    ``strict_threshold=False`` rounds the threshold like sinabs (the chip fires at
    ``v >= threshold_high``, as sinabs' IAF does). ``strict_threshold=True`` keeps NIR's strict
    ``v > v_threshold``: for integer states ``v > t`` is ``v >= floor(t) + 1``, so
    ``threshold_high = floor(v_threshold * s) + 1`` (float32 product, with a 1e-6 relative
    tolerance so that float32 rounding of ``s`` cannot move an exact integer below itself).
    """
    w = np.asarray(weights, dtype=np.float32)
    f = w.shape[0] if w.ndim else 0
    b = np.zeros(f, dtype=np.float32) if biases is None else np.asarray(biases, dtype=np.float32)
    for what, arr in (("weights", w), ("biases", b),
                      ("v_threshold", np.asarray([v_threshold], dtype=np.float64))):
        if not np.all(np.isfinite(arr)):
            raise ValueRangeError(f"{what} contain NaN or infinite values", node=name)
    if not v_threshold > 0:
        raise ValueRangeError(f"threshold must be > 0 for Speck's IAF, got {v_threshold}",
                              node=name, hint="Speck neurons fire when v >= threshold_high > 0")
    if v_low is not None:
        if not np.isfinite(v_low):
            raise ValueRangeError(f"lower bound v_low={v_low} is not finite", node=name)
        if v_low >= v_threshold:
            raise ValueRangeError(f"lower bound v_low={v_low} must be below the threshold "
                                  f"{v_threshold}", node=name)
        thresholds = np.asarray([v_low, v_threshold], dtype=np.float32)
    else:
        thresholds = np.asarray([v_threshold], dtype=np.float32)
    s_w = discretization_scale(w, chip.WEIGHT_BITS)
    s_b = discretization_scale(b, chip.WEIGHT_BITS)
    s_t = discretization_scale(thresholds, chip.STATE_BITS)
    scale = min(s_w, s_b, s_t)  # python min as sinabs: first of equal values wins
    limited_by = ["weights", "biases", "thresholds"][[s_w, s_b, s_t].index(scale)]
    if not np.isfinite(scale) or scale <= 0:
        raise ValueRangeError("weights, biases and threshold are all zero: no scale exists",
                              node=name)
    report = QuantReport(name=name, scale=float(scale), limited_by=limited_by,
                         scale_weights=float(s_w), scale_biases=float(s_b),
                         scale_thresholds=float(s_t))
    wq = _discretize(name, "weights", w, scale, chip.WEIGHT_BITS, report)
    bq = _discretize(name, "biases", b, scale, chip.WEIGHT_BITS, report)
    tq = _discretize(name, "thresholds", thresholds, scale, chip.STATE_BITS, report)
    thr_high = int(tq[-1])
    if strict_threshold:
        # t*s carries float32 rounding error: an exact integer t*s_true may come out a hair
        # low; a relative tolerance of 1e-6 (about 8 float32 ulps) keeps v > t exact there.
        ts = float(np.float32(thresholds[-1]) * scale)
        thr_high = int(np.floor(ts + 1e-6 * abs(ts))) + 1
        if thr_high > signed_range(chip.STATE_BITS)[1]:
            report.clipped["thresholds"] = report.clipped.get("thresholds", 0) + 1
            thr_high = signed_range(chip.STATE_BITS)[1]
            report.notes.append("strict threshold floor(t*s)+1 saturated to the 16-bit maximum")
        report.notes.append("threshold strict (NIR v > v_threshold): threshold_high = floor(t*s)+1")
    if v_low is None:
        thr_low = signed_range(chip.STATE_BITS)[0]
        report.notes.append(f"v_low not given: lower bound set to the 16-bit minimum {thr_low}")
    else:
        thr_low = int(tq[0])
    if thr_high <= 0:
        raise ValueRangeError(f"threshold rounds to {thr_high} at scale {float(scale):.6g}",
                              node=name, hint="the weights are much larger than the threshold; "
                              "rescale the layer")
    if report.rounded_to_zero.get("weights", 0):
        report.notes.append(f"{report.rounded_to_zero['weights']} non-zero weights rounded to 0")
    return QuantizedLayer(weights=wq, biases=bq, threshold_high=thr_high,
                          threshold_low=thr_low, scale=float(scale), report=report)
