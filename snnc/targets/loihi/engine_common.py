"""What both engines of the Loihi reference simulator share: the result, the input check, each layer's integers.

A :class:`PreparedLayer` holds what a layer needs at run time, computed once per network: Lava's
effective weights, the fan-out of every input (for synops), the effective bias and the report of
what Lava changed in the weights.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from snnc.errors import InputError, ShapeError
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork

log = logging.getLogger(__name__)


@dataclass
class SimResult:
    """Per-layer outputs of :func:`simulate`; lists are indexed like ``network.layers``.

    ``spikes[i]``: (B, T, *output_shape) bool (flatten layers: the reshaped source spikes).
    ``u[i]``, ``v[i]``: (B, T, *output_shape) int32 states after each step, or None (not recorded,
    or a flatten layer). ``spike_counts[i]``, ``synops[i]``: (B,) int64 totals per sample; synops are
    NeuroBench's effective accumulates: for every input spike, the number of non-zero effective
    weights it drives. ``weight_reports[i]``: how many weights Lava clipped or truncated.
    """

    spikes: List[np.ndarray]
    u: List[Optional[np.ndarray]]
    v: List[Optional[np.ndarray]]
    spike_counts: List[np.ndarray]
    synops: List[np.ndarray]
    weight_reports: List[Dict[str, int]] = field(default_factory=list)
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def output(self) -> np.ndarray:
        """Spikes of the last layer, (B, T, *output_shape)."""
        return self.spikes[-1]


def check_input(net: LoihiNetwork, spikes: np.ndarray) -> np.ndarray:
    """Return binary input spikes (B, T, *input_shape) as bool; raise on a wrong shape or non-binary values."""
    x = np.asarray(spikes)
    if x.ndim != 2 + len(net.input_shape) or tuple(x.shape[2:]) != tuple(net.input_shape):
        raise ShapeError(f"input spikes must be (batch, T, {', '.join(map(str, net.input_shape))}), "
                         f"found {tuple(x.shape)}")
    if x.dtype != np.bool_:
        if x.dtype.kind not in "iuf":
            raise InputError(f"input spikes must be bool or 0/1 numbers, found dtype {x.dtype}")
        if x.size and not np.all((x == 0) | (x == 1)):
            raise InputError("input spikes must be binary (0 or 1); Loihi's Dense/Conv here take unary spikes",
                             hint="encode graded inputs as spike trains first")
        x = x != 0
    return x


def fan_out(layer: LoihiLayer, w_eff: np.ndarray) -> np.ndarray:
    """Return, per input neuron (input shape), the number of non-zero effective weights it drives."""
    if layer.kind == "dense":
        return np.count_nonzero(w_eff, axis=0).astype(np.int64)
    c, h, w = layer.input_shape
    o, oh, ow = layer.output_shape
    g = layer.groups
    cg, og = c // g, o // g
    kh, kw = layer.kernel_size
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    nzc = (w_eff != 0).reshape(g, og, cg, kh, kw).sum(axis=1).reshape(c, kh, kw)  # per input channel
    fan = np.zeros((c, h, w), dtype=np.int64)
    for i in range(kh):  # loop over kernel offsets only
        rows = np.arange(oh) * sh - ph + i * dh
        rows = rows[(rows >= 0) & (rows < h)]
        for j in range(kw):
            cols = np.arange(ow) * sw - pw + j * dw
            cols = cols[(cols >= 0) & (cols < w)]
            fan[:, rows[:, None], cols[None, :]] += nzc[:, i, j][:, None, None]
    return fan


def count_over_time(s_tm: np.ndarray) -> np.ndarray:
    """Return the number of True entries over axis 0 of a bool array (T, ...), as int32 (or int64 if T >= 2**31).

    Sums the bytes with an integer accumulator (faster than ``np.count_nonzero(axis=0)``: benchmarks/README.md).
    """
    acc = np.int32 if s_tm.shape[0] < (1 << 31) else np.int64
    return s_tm.view(np.uint8).sum(axis=0, dtype=acc)


@dataclass
class PreparedLayer:
    """What a layer needs at run time, computed once: effective weights, fan-out, bias, report."""

    layer: LoihiLayer
    w_eff: Optional[np.ndarray]
    fan: Optional[np.ndarray]
    bias: Optional[np.ndarray]
    report: Dict[str, int]
    kernel: Optional[Any] = None  # the numpy engine's DenseKernel or ConvKernel

    @classmethod
    def of(cls, layer: LoihiLayer, kernel: Optional[Callable[[LoihiLayer, np.ndarray], Any]] = None
           ) -> "PreparedLayer":
        """Prepare one layer; ``kernel(layer, w_eff)`` (the numpy engine's) converts its weights once."""
        if not layer.has_neurons:
            return cls(layer, None, None, None, {})
        w_eff, report = layer.effective_weights()
        if any(report.values()):
            log.info("layer %s: Lava changes weights: %s", layer.name, report)
        bias = layer.effective_bias().reshape(-1).astype(np.float64)
        return cls(layer, w_eff, fan_out(layer, w_eff).reshape(-1), bias if np.any(bias) else None, report,
                   None if kernel is None else kernel(layer, w_eff))
