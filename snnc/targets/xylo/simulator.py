"""snnc's reference simulator of the Xylo SNN core, integer for integer equal to Rockpool's XyloSim.

The model is xylosim 0.1.3's (``src/v2/cpp/XyloLayer.cpp`` ``evolve``, ``XyloIAFNeuron.cpp``), which
Rockpool's ``XyloSim.from_specification`` runs. Per time step ``t``, vectorised over the batch:

1. **Synaptic input**, in this order into each synaptic current (16-bit, *saturating after every
   spike*: the order matters once a sum saturates): input channel ``c = 0..Nin-1`` delivers
   ``min(x[t, c], 15)`` times ``w_in[c] << shift_in``; then hidden neuron ``p = 0..Nh-1`` delivers
   its spikes of step ``t - 1`` (at most 31) times ``w_rec[p] << shift_rec``; output neurons
   receive the same hidden spikes of step ``t - 1`` times ``w_out[p] << shift_out``.
   Repeated saturating adds of one value equal one saturating add of their sum, so a sum whose
   positive and negative parts both stay in range is exact as one matrix product; only the
   (rare) others are replayed term by term.
2. **Neurons** (hidden, then output; no aliases): each synaptic current decays first,
   ``i -= decay(i, dash_syn)``; ``dv = -decay(v, dash_mem)`` (16-bit wrap of the negation);
   ``dv = sat(dv + sum_s i_s)``; ``dv = sat(dv + bias)``; ``v = sat(v + dv)``; then while
   ``v >= threshold`` and fewer than the limit (31 hidden, 1 output): one more spike,
   ``v -= threshold``. ``decay(x, d) = x >> d`` (arithmetic), or ``sign(x)`` where that is 0.

Hidden spikes reach other neurons one step later (every hidden->hidden and hidden->output hop
is one step); input spikes reach hidden neurons in the same step. Recorded states are those after
the step, as XyloSim records them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from snnc.errors import ShapeError, ValueRangeError
from snnc.fixedpoint import signed_range, wrap
from snnc.targets.xylo import chip
from snnc.targets.xylo.network import XyloNetwork

_LO, _HI = signed_range(chip.STATE_BITS)


@dataclass
class XyloSimResult:
    """Spikes (batch, T, N) of outputs and hidden neurons, recorded states, and counters."""

    output: np.ndarray
    hidden_spikes: np.ndarray
    states: Optional[Dict[str, np.ndarray]] = None
    #: Input counts above 15 that the chip clipped.
    input_clipped: int = 0
    #: Synaptic sums that hit the 16-bit limit (replayed term by term), and membrane saturations.
    isyn_saturated: int = 0
    vmem_saturated: int = 0
    synops: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def bitshift_decay(x: np.ndarray, dash: np.ndarray) -> np.ndarray:
    """Xylo's decay step ``x >> dash`` (floor), replaced by ``sign(x)`` where it is 0 (xylosim ``decay``)."""
    d = x >> dash
    return np.where(d == 0, np.sign(x), d)


def _shifted(w: np.ndarray, shift: int) -> np.ndarray:
    """Weights as delivered: ``w << shift`` converted to ``int16`` (xylosim passes it as ``int16_t``)."""
    return wrap(np.asarray(w, dtype=np.int64) << int(shift), chip.STATE_BITS)


def _accumulate(acc: np.ndarray, counts: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, int]:
    """Saturating delivery of ``counts (B, P)`` spikes through ``weights (P, K)`` onto ``acc (B, K)``.

    Returns the new accumulators and how many of them saturated (replayed in presynaptic order).
    """
    if counts.shape[1] == 0:
        return acc, 0
    c = counts.astype(np.float64)  # sums stay far below 2**53: float64 BLAS is exact here
    pos = c @ np.maximum(weights, 0).astype(np.float64)
    neg = c @ np.minimum(weights, 0).astype(np.float64)
    hi = acc + pos.astype(np.int64)
    lo = acc + neg.astype(np.int64)
    out = hi + lo - acc
    bad = (hi > _HI) | (lo < _LO)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        bi, ki = np.nonzero(bad)
        a = acc[bi, ki].copy()
        for p in range(counts.shape[1]):  # presynaptic order, as the chip delivers
            a = np.clip(a + counts[bi, p] * weights[p, ki], _LO, _HI)
        out[bi, ki] = a
    return out, n_bad


def _neurons(i: np.ndarray, v: np.ndarray, dash_syn: np.ndarray, dash_mem: np.ndarray, bias: np.ndarray,
             threshold: np.ndarray, max_spikes: int) -> tuple[np.ndarray, int]:
    """One neuron update in place on ``i (B, N, S)`` and ``v (B, N)``; return spikes (B, N) and saturations."""
    i -= bitshift_decay(i, dash_syn)
    dv = wrap(-bitshift_decay(v, dash_mem), chip.STATE_BITS)
    dv = np.clip(dv + i.sum(axis=-1), _LO, _HI)
    dv = np.clip(dv + bias, _LO, _HI)
    raw = v + dv
    sat = int(np.count_nonzero((raw > _HI) | (raw < _LO)))
    np.clip(raw, _LO, _HI, out=v)
    n = np.clip(v // threshold, 0, max_spikes)
    v -= n * threshold
    return n, sat


def simulate(net: XyloNetwork, inputs: np.ndarray, record: bool = False) -> XyloSimResult:
    """Run ``net`` on input spike counts ``(B, T, Nin)`` (or ``(T, Nin)``) from the reset state."""
    x = np.asarray(inputs)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[2] != net.n_in:
        raise ShapeError(f"Xylo input must be (batch, time, {net.n_in}) spike counts, found {x.shape}")
    if x.size and (not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(x != np.floor(x))):
        raise ValueRangeError("Xylo inputs must be non-negative integer spike counts")
    if np.any(net.threshold < 1) or np.any(net.threshold_out < 1):
        raise ValueRangeError("Xylo thresholds must be >= 1 (a threshold <= 0 fires the spike limit every step)")
    x = x.astype(np.int64)
    b, steps, _ = x.shape
    nh, no, ns = net.n_hidden, net.n_out, net.n_syn
    w_in = _shifted(net.dense_in(), net.weight_shift_in).reshape(net.n_in, nh * ns)
    w_rec = _shifted(net.dense_rec(), net.weight_shift_rec).reshape(nh, nh * ns)
    w_out = _shifted(net.dense_out(), net.weight_shift_out)
    w_hidden = np.concatenate([w_in, w_rec], axis=0)  # input channels first, then hidden neurons
    dash_syn = np.stack([net.dash_syn, net.dash_syn_2][:ns], axis=-1)
    dash_syn_out = net.dash_syn_out[:, None]
    i = np.zeros((b, nh, ns), dtype=np.int64)
    v = np.zeros((b, nh), dtype=np.int64)
    i_out = np.zeros((b, no, 1), dtype=np.int64)
    v_out = np.zeros((b, no), dtype=np.int64)
    prev = np.zeros((b, nh), dtype=np.int64)
    out = np.zeros((b, steps, no), dtype=np.int64)
    hid = np.zeros((b, steps, nh), dtype=np.int64)
    rec = {k: np.zeros((b, steps, n), dtype=np.int64) for k, n in
           (("Vmem", nh), ("Isyn", nh), ("Isyn2", nh), ("Vmem_out", no), ("Isyn_out", no))} if record else None
    fanout_in = np.count_nonzero(w_in, axis=1)
    fanout_h = np.count_nonzero(w_rec, axis=1) + np.count_nonzero(w_out, axis=1)
    synops = np.zeros(b, dtype=np.int64)
    clipped = isyn_sat = vmem_sat = 0
    for t in range(steps):  # loop over time; every step is vectorised over batch and neurons
        xt = x[:, t]
        clipped += int(np.count_nonzero(xt > chip.MAX_INPUT_SPIKES))
        xt = np.minimum(xt, chip.MAX_INPUT_SPIKES)
        kt = np.minimum(prev, chip.MAX_HIDDEN_SPIKES)
        synops += xt @ fanout_in + kt @ fanout_h
        acc, n_bad = _accumulate(i.reshape(b, nh * ns), np.concatenate([xt, kt], axis=1), w_hidden)
        i = acc.reshape(b, nh, ns)
        acc_o, n_bad_o = _accumulate(i_out[:, :, 0], kt, w_out)
        i_out = acc_o[:, :, None]
        isyn_sat += n_bad + n_bad_o
        prev, s1 = _neurons(i, v, dash_syn, net.dash_mem, net.bias, net.threshold, chip.MAX_HIDDEN_SPIKES)
        o, s2 = _neurons(i_out, v_out, dash_syn_out, net.dash_mem_out, net.bias_out, net.threshold_out,
                         chip.MAX_OUTPUT_SPIKES)
        vmem_sat += s1 + s2
        out[:, t] = o
        hid[:, t] = prev
        if rec is not None:
            rec["Vmem"][:, t] = v
            rec["Isyn"][:, t] = i[:, :, 0]
            if ns > 1:
                rec["Isyn2"][:, t] = i[:, :, 1]
            rec["Vmem_out"][:, t] = v_out
            rec["Isyn_out"][:, t] = i_out[:, :, 0]
    return XyloSimResult(output=out, hidden_spikes=hid, states=rec, input_clipped=clipped,
                         isyn_saturated=isyn_sat, vmem_saturated=vmem_sat, synops=synops)
