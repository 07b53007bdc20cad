"""Reference simulator of a :class:`LoihiNetwork`: Lava's fixed-point CUBA LIF, Dense and Conv, bit for bit.

What it reproduces (read from lava-nc 0.10: lava/proc/lif/models.py ``AbstractPyLifModelFixed`` and
``PyLifModelBitAcc``, lava/proc/dense/models.py ``AbstractPyDenseModelBitAcc``,
lava/proc/conv/models.py ``PyConvModelFixed``, lava/proc/conv/utils.py, lava/utils/weightutils.py):

* Dense: weights clipped to the sign mode's 8-bit range and truncated to ``num_weight_bits``;
  ``a = sum(w over spiking inputs)`` shifted by ``weight_exp`` (arithmetic), sent through an int32
  channel (wraps at 32 bits).
* Conv: true convolution in Lava's (W, H, C) order with flipped kernels = cross-correlation in
  PyTorch's order (what we store); no exponent, no clipping; the sum is cast to int32 and wrapped
  to 24 bits (``signed_clamp``).
* Every synapse delivers its output one step later (its ``a_buff`` holds the previous step's sum),
  so layer ``l`` at step ``t`` sees the spikes its source emitted at ``t - 1``; step 0 sees zero.
* LIF per step, in int32 arithmetic: ``u = trunc(u * (4096 - du) / 4096) + (a << 6)``, wrapped
  *once*: values ``> 2**23`` lose ``2**24``, values ``<= -2**23`` gain ``2**24`` (so the range is
  ``[-2**23, 2**23]``, not a two's-complement 24-bit wrap); ``v = trunc(v * (4096 - dv) / 4096) + u
  + (bias_mant << bias_exp)`` saturated to ``[-2**23 + 1, 2**23 - 1]``; spike when
  ``v > vth_mant << 6``; then ``v = 0`` for spiking neurons (``u`` is not reset, no refractory time).

Networks that are not chains of single-input layers (several inputs per layer, recurrence,
readouts) are run by :mod:`snnc.targets.loihi.general` with these same building blocks.

Two engines give identical integers (``engine=`` of :class:`LoihiSimulator`, or the
``SNNC_LOIHI_ENGINE`` environment variable: ``auto``, ``numba``, ``numpy``):

* ``numba`` (the default when numba imports): chains run layer by layer through the compiled,
  event-driven kernel of :mod:`snnc.targets.loihi.kernels` (samples in parallel; per step, the
  weight rows / conv taps of the inputs that spiked are added into integer accumulators and the
  LIF update is done in int64 with every wrap and saturation applied unconditionally);
* ``numpy`` (always available, e.g. in the Lava worker's interpreter, which has no numba; and
  for non-chain graphs, :mod:`snnc.targets.loihi.general`), described below.

In the numpy engine everything is vectorised over batch and neurons; time is the only Python loop
(per layer, because a feed-forward layer's whole input is known once its source is done). Integer arithmetic is done
in float64, which is exact: every intermediate is an integer below 2**46 in magnitude. Synaptic
sums of binary spikes are computed in float32 only when the layer's largest ``sum(|w|)`` over an
output is below 2**24 (then every partial sum is an exactly representable integer), else float64.
int32 overflow and the 24-bit wraps are emulated only when a per-layer bound says they can happen.
"""
from __future__ import annotations

import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from snnc.errors import InputError, ShapeError
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork

log = logging.getLogger(__name__)

UV_MAX = 1 << 23  # Lava's max_uv_val
V_MIN, V_MAX = -(1 << 23) + 1, (1 << 23) - 1
_F32_EXACT = float(1 << 24)
_TWO32 = float(1 << 32)
_TWO31 = float(1 << 31)
_MAX_CHUNK_BYTES = 64 << 20
_TORCH_GEMM_MIN = 1 << 23  # multiply-adds from which torch runs a dense GEMM (smaller: numpy, less thread overhead)


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


def _round8(n: int) -> int:
    """Return ``n`` rounded up to a multiple of 8 (spike buffers are read 8 bytes at a time)."""
    return -(-int(n) // 8) * 8


def _pad8(x: np.ndarray) -> np.ndarray:
    """Return (B, T, K) uint8 ``x`` C-contiguous, last axis zero padded to a multiple of 8 (no copy if it is)."""
    k = x.shape[2]
    kp = _round8(k)
    if kp == k and x.flags.c_contiguous:
        return x
    out = np.zeros(x.shape[:2] + (kp,), dtype=np.uint8)
    out[:, :, :k] = x
    return out


def _check_input(net: LoihiNetwork, spikes: np.ndarray) -> np.ndarray:
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


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of snnc, but keep numpy-only use working
        return None
    return torch


class DenseKernel:
    """Exact synaptic sums ``x @ w.T`` of binary rows ``x`` for one integer weight matrix (N, K).

    The matrix is converted once. Sums come back as float32 when every partial sum is an integer
    below 2**24 in magnitude (the largest ``sum(|w|)`` over outputs is below 2**24), else float64
    (below 2**53, else :class:`ShapeError`): either way every value is an exact integer.
    Methods: ``"blas"`` (matmul), ``"gather"`` (torch ``embedding_bag`` summing the weight rows of
    the spiking inputs; fast for sparse spikes), ``"auto"`` (gather when torch is present and the
    measured input density of this call is below :meth:`gather_density_limit`, a cost model of the
    two kernels that depends on the number of outputs; BLAS otherwise).
    """

    def __init__(self, w_eff: np.ndarray, method: str = "auto") -> None:
        if method not in ("auto", "blas", "gather"):
            raise ValueError(f"unknown accumulate method {method!r}")
        self.n, self.k = int(w_eff.shape[0]), int(w_eff.shape[1])
        bound = float(np.abs(w_eff).sum(axis=1).max()) if w_eff.size else 0.0
        self.bound = bound  # largest sum(|w|) over outputs: a bound on |sum| for binary inputs
        if bound >= float(1 << 53):
            raise ShapeError("dense fan-in too large for exact float64 accumulation")
        self.dtype = np.float32 if bound < _F32_EXACT else np.float64
        self.w = np.ascontiguousarray(w_eff, dtype=self.dtype)  # (N, K): ``x @ w.T`` is BLAS's fast layout
        self.method = method
        torch = _torch() if method != "blas" and self.dtype == np.float32 else None
        self._torch = torch
        self.wt = np.ascontiguousarray(self.w.T) if torch is not None else self.w.T  # (K, N) gather table
        self._table = torch.from_numpy(self.wt) if torch is not None else None
        self._scaled: Dict[float, Any] = {}
        self._w_t = torch.from_numpy(self.w) if torch is not None else None  # (N, K) for F.linear

    def gather_density_limit(self) -> float:
        """Input density below which ``"auto"`` gathers weight rows instead of calling BLAS.

        Rough costs measured on the 2-core dev box: the gather pays ~30 ns per spike plus ~0.13 ns
        per spike and output, plus ~0.45 ns per input for finding the spikes; BLAS pays ~0.1 ns
        per input plus ~0.025 ns per input and output. Few outputs (< ~14): BLAS always.
        """
        if self._table is None:
            return 0.0
        return max(0.0, (0.025 * self.n - 0.35) / (30.0 + 0.13 * self.n))

    def _use_gather(self, x: np.ndarray) -> bool:
        if self._table is None or self.method == "blas":
            return False
        if self.method == "gather":
            return True
        limit = self.gather_density_limit()
        return limit > 0.0 and np.count_nonzero(x) <= limit * x.size

    def _table_scaled(self, scale: float) -> Any:
        """The gather table times ``scale`` (an integer keeping every partial sum below 2**24: exact)."""
        if scale not in self._scaled:
            self._scaled[scale] = self._torch.from_numpy(self.wt * np.float32(scale))
        return self._scaled[scale]

    def gather_into(self, x: np.ndarray, lead: int, scale: float) -> Optional[np.ndarray]:
        """Return ``scale * x @ w.T`` (float32) after ``lead`` zero rows, or None when this path does not apply.

        Applies when the gather is chosen for ``x`` and ``bound * scale < 2**24`` with an integer
        ``scale`` (every partial sum of the pre-scaled weights is then an exact float32 integer).
        The ``lead`` zero rows are empty bags, so the result needs no copy into a larger buffer.
        """
        if (self._table is None or not float(scale).is_integer() or self.bound * scale >= _F32_EXACT
                or x.shape[0] == 0 or self.n == 0 or self.k == 0 or not self._use_gather(x)):
            return None
        m = x.shape[0]
        idx = np.flatnonzero(x)  # row-major, so rows ascend
        offsets = np.empty(lead + m, dtype=np.int64)
        offsets[:lead] = 0
        offsets[lead:] = np.searchsorted(idx, np.arange(m, dtype=np.int64) * self.k)
        torch = self._torch
        out = torch.nn.functional.embedding_bag(torch.from_numpy(idx % self.k), self._table_scaled(scale),
                                                torch.from_numpy(offsets), mode="sum")
        return out.numpy()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return the exact sums (M, N) for binary ``x`` (M, K) as float32 or float64."""
        m = x.shape[0]
        if m == 0 or self.n == 0 or self.k == 0:
            return np.zeros((m, self.n), dtype=self.dtype)
        if self._use_gather(x):
            torch = self._torch
            idx = np.flatnonzero(x)  # row-major, so rows ascend
            offsets = np.searchsorted(idx, np.arange(m, dtype=np.int64) * self.k)
            out = torch.nn.functional.embedding_bag(torch.from_numpy(idx % self.k), self._table,
                                                    torch.from_numpy(offsets), mode="sum")
            return out.numpy()
        if self._w_t is not None and self.method == "auto" and m * self.k * self.n >= _TORCH_GEMM_MIN:
            # torch's GEMM keeps to one thread pool with the gather (numpy's OpenBLAS threads spin after
            # each call and slow the single-threaded LIF scan on few cores); sums of integers below
            # 2**24 are exact in float32 in any order, provided oneDNN may not use bf16/tf32.
            torch = self._torch
            prec = torch.get_float32_matmul_precision()
            try:
                if prec != "highest":
                    torch.set_float32_matmul_precision("highest")
                with torch.no_grad():
                    return torch.nn.functional.linear(torch.from_numpy(x.astype(self.dtype)), self._w_t).numpy()
            finally:
                if prec != "highest":
                    torch.set_float32_matmul_precision(prec)
        return x.astype(self.dtype) @ self.w.T


def dense_accumulate(x: np.ndarray, w_eff: np.ndarray, method: str = "auto") -> np.ndarray:
    """Return ``x @ w_eff.T`` exactly (float holding integers) for binary ``x`` (M, K); see :class:`DenseKernel`."""
    return DenseKernel(w_eff, method)(x)


class ConvKernel:
    """Exact cross-correlation sums of binary inputs (M, C, H, W) for one integer conv layer.

    The weights are converted once. Like :class:`DenseKernel`, sums are computed in float32 when
    the layer's largest ``sum(|w|)`` over an output is below 2**24 (every partial sum is then an
    exactly representable integer, whatever the summation order), else in float64 (below 2**53,
    else :class:`ShapeError`). With torch the convolution is ``torch.nn.functional.conv2d`` on
    channels-last tensors (direct / GEMM algorithms only: they add products of integers, so the
    result is exact); without torch, an im2col + matmul in numpy. Rows are processed in chunks
    of at most ~64 MiB of temporaries.
    """

    def __init__(self, layer: LoihiLayer, w_eff: np.ndarray) -> None:
        self.layer = layer
        o = int(w_eff.shape[0])
        self.bound = float(np.abs(w_eff).reshape(o, -1).sum(axis=1).max()) if w_eff.size else 0.0
        if self.bound >= float(1 << 53):
            raise ShapeError("conv fan-in too large for exact float64 accumulation", node=layer.name)
        self.dtype = np.float32 if self.bound < _F32_EXACT else np.float64
        self.w_eff = w_eff
        torch = _torch()
        self._torch = torch
        self._w = None if torch is None else torch.from_numpy(np.ascontiguousarray(w_eff, dtype=self.dtype))
        #: Run torch's conv on channels-last tensors (oneDNN's faster layout for few channels).
        self.channels_last = True
        self._scaled: Dict[float, Any] = {}

    def _weights(self, scale: float) -> Tuple[Any, float]:
        """Return (torch weights times ``scale`` when that stays exact, else unscaled; the scale left to apply)."""
        if scale == 1.0 or self._w is None:
            return self._w, scale
        limit = _F32_EXACT if self.dtype == np.float32 else float(1 << 53)
        if self.bound * abs(scale) >= limit or not float(scale).is_integer():
            return self._w, scale
        if scale not in self._scaled:
            self._scaled[scale] = self._w * scale  # exact: integers times an integer, below the limit
        return self._scaled[scale], 1.0

    def __call__(self, x: np.ndarray, out: Optional[np.ndarray] = None, scale: float = 1.0) -> np.ndarray:
        """Return ``scale *`` the sums (M, O, H', W') of binary ``x`` (M, C, H, W), written to ``out`` if given."""
        ly = self.layer
        m = x.shape[0]
        c, h, w = ly.input_shape
        o, oh, ow = ly.output_shape
        if out is None:
            out = np.empty((m, o, oh, ow), dtype=self.dtype)
        if m == 0:
            return out
        item = np.dtype(self.dtype).itemsize
        if self._torch is None:
            row_bytes = oh * ow * c * ly.kernel_size[0] * ly.kernel_size[1] * item
        else:
            row_bytes = (c * h * w + 2 * o * oh * ow) * item
        chunk = max(1, min(m, _MAX_CHUNK_BYTES // max(row_bytes, 1)))
        wt, rest = self._weights(scale)
        for s in range(0, m, chunk):
            res = self._chunk(x[s:s + chunk], wt)
            dst = out[s:s + res.shape[0]]
            if self._torch is not None:  # torch also turns channels-last results into C order quickly
                if rest == 1.0:
                    if res.is_contiguous():
                        np.copyto(dst, res.numpy())
                    else:
                        self._torch.from_numpy(dst).copy_(res)
                else:
                    self._torch.mul(res, rest, out=self._torch.from_numpy(dst))
            elif scale == 1.0:
                dst[...] = res
            else:
                np.multiply(res, scale, out=dst)
        return out

    def _chunk(self, x: np.ndarray, wt: Any = None) -> Any:
        ly = self.layer
        if self._torch is not None:
            torch = self._torch
            wt = self._w if wt is None else wt
            # numpy converts bool ~5x faster than torch here, and can write channels-last directly
            if self.channels_last:
                xt = torch.from_numpy(x.transpose(0, 2, 3, 1).astype(self.dtype, order="C")).permute(0, 3, 1, 2)
            else:
                xt = torch.from_numpy(x.astype(self.dtype))
            prec = torch.get_float32_matmul_precision()
            try:  # "high"/"medium" would let oneDNN round float32 products to bf16/tf32: not exact
                if prec != "highest":
                    torch.set_float32_matmul_precision("highest")
                with torch.no_grad():
                    return torch.nn.functional.conv2d(xt, wt, None, stride=ly.stride, padding=ly.padding,
                                                      dilation=ly.dilation, groups=ly.groups)
            finally:
                if prec != "highest":
                    torch.set_float32_matmul_precision(prec)
        m = x.shape[0]
        c, h, w = ly.input_shape
        o, oh, ow = ly.output_shape
        g = ly.groups
        cg, og = c // g, o // g
        kh, kw = ly.kernel_size
        (sh, sw), (ph, pw), (dh, dw) = ly.stride, ly.padding, ly.dilation
        dt = self.dtype
        wmat = self.w_eff.reshape(g, og, cg * kh * kw).transpose(0, 2, 1).astype(dt)  # (G, Cg*kh*kw, Og)
        ext_h, ext_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        xb = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))).astype(dt)
        win = np.lib.stride_tricks.sliding_window_view(xb, (ext_h, ext_w), axis=(2, 3))
        win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :oh, :ow]  # (m, C, oh, ow, kh, kw)
        pat = win.reshape(m, g, cg, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
        pat = pat.reshape(g, m * oh * ow, cg * kh * kw)
        res = np.matmul(pat, wmat)  # (G, m*oh*ow, Og)
        return res.reshape(g, m, oh, ow, og).transpose(1, 0, 4, 2, 3).reshape(m, o, oh, ow)


def conv_accumulate(x: np.ndarray, layer: LoihiLayer, w_eff: np.ndarray) -> np.ndarray:
    """Return the exact cross-correlation (int64, (M, O, H', W')) of binary inputs (M, C, H, W)."""
    return ConvKernel(layer, w_eff)(np.asarray(x) != 0).astype(np.int64)


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


def _wrap32(a: np.ndarray) -> np.ndarray:
    """Wrap float64-held integers into int32 two's complement (exact for |a| < 2**53)."""
    return a - _TWO32 * np.floor((a + _TWO31) / _TWO32)


def _count_over_time(s_tm: np.ndarray) -> np.ndarray:
    """Return the number of True entries over axis 0 of a bool array (T, ...), as int32 (or int64 if T >= 2**31).

    Summing the bytes with an integer accumulator is ~2x faster than ``np.count_nonzero(axis=0)``.
    """
    acc = np.int32 if s_tm.shape[0] < (1 << 31) else np.int64
    return s_tm.view(np.uint8).sum(axis=0, dtype=acc)


def _absmax(a: np.ndarray) -> float:
    """Return max |a| without an abs temporary (0 for empty arrays)."""
    return max(float(a.max()), -float(a.min())) if a.size else 0.0


@dataclass
class PreparedLayer:
    """What a layer needs at run time, computed once: effective weights, fan-out, bias, report."""

    layer: LoihiLayer
    w_eff: Optional[np.ndarray]
    fan: Optional[np.ndarray]
    bias: Optional[np.ndarray]
    report: Dict[str, int]
    kernel: Optional[Any] = None  # DenseKernel or ConvKernel

    @classmethod
    def of(cls, layer: LoihiLayer, accumulate: str = "auto", with_kernel: bool = True) -> "PreparedLayer":
        """Prepare one layer (``with_kernel=False``: without the numpy engine's converted weights)."""
        if not layer.has_neurons:
            return cls(layer, None, None, None, {})
        w_eff, report = layer.effective_weights()
        if any(report.values()):
            log.info("layer %s: Lava changes weights: %s", layer.name, report)
        bias = layer.effective_bias().reshape(-1).astype(np.float64)
        kernel = None
        if with_kernel:
            kernel = DenseKernel(w_eff, accumulate) if layer.kind == "dense" else ConvKernel(layer, w_eff)
        return cls(layer, w_eff, fan_out(layer, w_eff).reshape(-1), bias if np.any(bias) else None, report, kernel)


def synaptic_input(layer: LoihiLayer, x_tm: np.ndarray, w_eff: np.ndarray, method: str = "auto",
                   kernel: Optional[Any] = None) -> Tuple[np.ndarray, float]:
    """Return what Lava's LIF adds to ``u`` each step, ``a << 6`` as (T, B, N), and a bound on |.|.

    ``x_tm``: the source's spikes, time-major (T, B, *input_shape) bool. Includes the one-step
    delay (step 0 gets zero) and Lava's int32 channel / 24-bit conv wraps. The result is float32
    when a static bound (from the weights) keeps every value below 2**24, else float64; either
    way it holds exact integers.
    """
    t, b = x_tm.shape[:2]
    n = layer.num_neurons
    if layer.kind == "dense":
        kernel = kernel if isinstance(kernel, DenseKernel) else DenseKernel(w_eff, method)
        e = layer.weight_exp
        scale = float(2 ** e) if e >= 0 else 1.0 / float(2 ** -e)
        static = (kernel.bound * scale + 1.0) * 64.0
    else:
        kernel = kernel if isinstance(kernel, ConvKernel) else ConvKernel(layer, w_eff)
        static = kernel.bound * 64.0
    act_dtype = np.float32 if static < _F32_EXACT else np.float64
    if layer.kind == "dense" and t > 1 and e >= 0 and act_dtype == np.float32:
        # Sparse spikes: gather weight rows pre-scaled by ``2**e * 64`` (exact: every partial sum is an
        # integer below ``static`` < 2**24, so no int32 wrap either); step 0's zero rows are empty bags.
        rows2 = x_tm[:-1].reshape((t - 1) * b, int(np.prod(layer.input_shape)))
        out = kernel.gather_into(rows2, b, scale * 64.0)
        if out is not None:
            act = out.reshape(t, b, n)
            if _static_bound_suffices(layer, static, t):
                return act, static
            return act, _absmax(act[1:])
    act = np.empty((t, b, n), dtype=act_dtype)
    if t == 0:
        return act, 0.0
    act[0] = 0.0
    dst = act[1:].reshape((t - 1) * b, n)
    rows = x_tm[:-1].reshape((t - 1) * b, *layer.input_shape)  # the last step's sum is never delivered
    if layer.kind == "dense":
        acc = kernel(rows.reshape((t - 1) * b, int(np.prod(layer.input_shape))))
        if _static_bound_suffices(layer, static, t):
            bound = static / 64.0  # skips a pass over ``acc``: the weights alone prove no wrap or clip
        else:
            bound = _absmax(acc) * scale + (1.0 if e < 0 else 0.0)  # floor may add one in magnitude
        if bound < _TWO31 / 64:
            if e >= 0:
                np.multiply(acc, scale * 64.0, out=dst)
            else:
                np.multiply(acc, scale, out=dst)
                np.floor(dst, out=dst)
                dst *= 64.0
            return act, bound * 64.0
        a = acc.astype(np.float64) * scale
        if e < 0:
            np.floor(a, out=a)
        dst[...] = _wrap32(_wrap32(a) * 64.0)  # the int32 channel and the int32 ``<< 6`` wrap
        return act, _absmax(dst)
    dst4 = dst.reshape((t - 1) * b, *layer.output_shape)
    if kernel.bound < UV_MAX:  # no wrap possible: write ``a << 6`` straight into ``act``
        kernel(rows, out=dst4, scale=64.0)
        if _static_bound_suffices(layer, static, t):
            return act, static
        return act, _absmax(dst)
    a = kernel(rows, out=np.empty(dst4.shape, dtype=np.float64))
    if _absmax(a) >= UV_MAX:  # signed_clamp(x, bits=24)
        a = np.mod(a + UV_MAX, float(1 << 24)) - UV_MAX
    np.multiply(a, 64.0, out=dst4)
    return act, _absmax(dst)


def _decay_factor(d: int, t_steps: int) -> float:
    """Bound on how many steps' inputs a state with decay ``d`` (of 4096) accumulates (|trunc(x)| <= |x|)."""
    return float(t_steps) if d == 0 else min(float(t_steps), 4096.0 / d)


def _static_bound_suffices(layer: LoihiLayer, static: float, t_steps: int) -> bool:
    """True when a bound ``static`` on |act| already proves :func:`lif_run`'s plain regime without clipping.

    Then the exact max |act| would not change what :func:`lif_run` does, so it need not be computed.
    """
    u_bound = static * _decay_factor(layer.du, t_steps)
    if u_bound >= UV_MAX:
        return False
    bmax = float(np.abs(layer.effective_bias()).max()) if np.size(layer.bias_mant) else 0.0
    return (u_bound + bmax) * _decay_factor(layer.dv, t_steps) <= V_MAX


def lif_run(act: np.ndarray, layer: LoihiLayer, record_states: bool = False, amax: Optional[float] = None,
            bias: Optional[np.ndarray] = None) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Run the fixed-point LIF over time on activations ``act`` (T, B, N); return spikes and states.

    Spikes are (T, B, N) bool; states (T, B, N) int32 or None. ``act`` may be overwritten.
    ``amax`` (max |act|) and ``bias`` (effective bias per neuron, float64, None if all zero) are
    computed when not given.
    """
    t_steps, b, n = act.shape
    fu = (4096 - layer.du) / 4096.0
    fv = (4096 - layer.dv) / 4096.0
    vth = float(layer.vth_mant << 6)
    if bias is None:
        eb = layer.effective_bias().reshape(n).astype(np.float64)
        bias = eb if np.any(eb) else None
    has_bias = bias is not None
    bias_bn = np.ascontiguousarray(np.broadcast_to(bias, (b, n))) if has_bias else None  # same-shape add is faster
    bmax = _absmax(bias) if bias is not None else 0.0
    if amax is None:
        amax = _absmax(act)
    # Bounds decide which of Lava's wraps can ever happen in this run (|trunc(x)| <= |x|).
    u_bound = amax * (t_steps if layer.du == 0 else min(t_steps, 4096.0 / layer.du))
    if u_bound >= UV_MAX and act.size:  # a tighter, per-neuron bound: the sum of |act| over time
        u_bound = min(u_bound, float(np.abs(act).sum(axis=0, dtype=np.float64).max()))
    if u_bound < UV_MAX:
        regime = "plain"
    elif amax <= float(1 << 24):
        regime = "wrap"
        u_bound = float(UV_MAX)
    else:
        regime = "int32"
        u_bound = _TWO31
    v_bound = (u_bound + bmax) * (t_steps if layer.dv == 0 else min(t_steps, 4096.0 / layer.dv))
    need_clip = regime == "int32" or v_bound > V_MAX
    spikes = np.zeros((t_steps, b, n), dtype=bool)
    rec_u = np.empty((t_steps, b, n), dtype=np.float64) if record_states else None
    rec_v = np.empty((t_steps, b, n), dtype=np.float64) if record_states else None
    u = np.zeros((b, n), dtype=np.float64)
    v = np.zeros((b, n), dtype=np.float64)
    # Full current decay, no wrap, states not recorded: u is just this step's input, used in place.
    u_is_act = layer.du == 4096 and regime == "plain" and not record_states
    for t in range(t_steps):
        # ---- current
        if u_is_act:
            u = act[t]
        elif layer.du == 4096:
            np.copyto(u, act[t])
        else:
            if layer.du != 0:
                np.multiply(u, fu, out=u)
                np.trunc(u, out=u)
            np.add(u, act[t], out=u)
        if regime == "int32":
            u = _wrap32(u)
        if regime != "plain" and (u.max() > UV_MAX or u.min() <= -UV_MAX):
            np.subtract(u, float(1 << 24), out=u, where=u > UV_MAX)
            np.add(u, float(1 << 24), out=u, where=u <= -UV_MAX)
        # ---- voltage
        if layer.dv == 4096:
            np.copyto(v, u)
        else:
            if layer.dv != 0:
                np.multiply(v, fv, out=v)
                np.trunc(v, out=v)
            np.add(v, u, out=v)
        if has_bias:
            np.add(v, bias_bn, out=v)
        if regime == "int32":
            v = _wrap32(v)
        if need_clip:
            np.clip(v, V_MIN, V_MAX, out=v)
        s = np.greater(v, vth, out=spikes[t])
        np.copyto(v, 0.0, where=s)
        if record_states:
            rec_u[t] = u  # type: ignore[index]
            rec_v[t] = v  # type: ignore[index]
    if record_states:
        return spikes, rec_u.astype(np.int32), rec_v.astype(np.int32)  # type: ignore[union-attr]
    return spikes, None, None


#: Values of ``engine`` (:class:`LoihiSimulator`) and of the ``SNNC_LOIHI_ENGINE`` environment variable.
ENGINES: Tuple[str, ...] = ("auto", "numba", "numpy")
ENGINE_ENV = "SNNC_LOIHI_ENGINE"


def _kernels() -> Any:
    """Return :mod:`snnc.targets.loihi.kernels` when numba is importable (little-endian hosts), else None."""
    if sys.byteorder != "little":  # the kernels read 8 spike bytes as one little-endian word
        return None
    try:
        from snnc.targets.loihi import kernels
    except ImportError:  # pragma: no cover - numba's own import failing in an odd way
        return None
    return kernels if kernels.AVAILABLE else None


def resolve_engine(engine: Optional[str] = None) -> str:
    """Return the engine to use: ``"numba"`` (compiled kernels) or ``"numpy"``.

    ``engine`` None reads ``SNNC_LOIHI_ENGINE`` (default ``"auto"``); ``"auto"`` is ``"numba"``
    when numba imports, else ``"numpy"`` (logged at debug level); ``"numba"`` without numba raises.
    """
    name = (engine if engine is not None else os.environ.get(ENGINE_ENV, "auto")).strip().lower() or "auto"
    if name not in ENGINES:
        raise InputError(f"Loihi simulator engine {name!r} is not one of {ENGINES}",
                         hint=f"pass engine= or set {ENGINE_ENV} to auto, numba or numpy")
    if name == "numpy":
        return name
    if _kernels() is None:
        if name == "numba":
            from snnc.errors import BackendUnavailableError

            raise BackendUnavailableError("the numba engine of the Loihi simulator needs numba",
                                          hint="pip install numba, or use engine='numpy'")
        log.debug("numba not importable: the Loihi simulator uses its numpy engine")
        return "numpy"
    return "numba"


#: None, or a byte size: a dense layer whose weights take more bytes runs in chunks of outputs of about
#: this size (each chunk's weights stay in cache over all steps of a sample). Off by default: on the
#: 2-core dev box 1 MiB and 4 MiB chunks were slower than none on 2312-1024-10 and 4096-2048-10 at
#: 2 % and 30 % input (re-walking the spike lists per chunk costs more than the cache misses).
KERNEL_CHUNK_BYTES: Optional[int] = None


@dataclass
class KernelLayer:
    """One neuron layer's arrays for :func:`snnc.targets.loihi.kernels.layer_run`, computed once."""

    wr: np.ndarray  # (chunks, C, kh, kw, out channels per group), int16 / int32; dense: (chunks, K, 1, 1, chunk)
    wt: np.ndarray  # dense with int32 sums: (chunks, chunk, Kp) weights, zero padded; else (1, 0, 0)
    fan: np.ndarray  # (Kp,) int64 synops per input spike, zero padded to a multiple of 8
    ytab: np.ndarray  # (H, kh) int64 output row per input row and tap, -1 = none
    ztab: np.ndarray  # (W, kw) int64 output column per input column and tap
    geometry: Tuple[int, ...]  # out_w, in_c, cg, og, mode, wexp
    keep_u: int
    keep_v: int
    bias: np.ndarray  # (chunks, chunk) int64, channels-last, zero padded
    vth: int
    acc_dtype: Any  # int32 when every sum fits, else int64

    @property
    def chunk(self) -> int:
        """Neurons per chunk (conv: all of them)."""
        return int(self.bias.shape[1])

    @classmethod
    def of(cls, pl: "PreparedLayer", chunk_bytes: Optional[int] = None) -> "KernelLayer":
        """Lay out a prepared dense / conv / pool layer for the kernel (dense: in output chunks)."""
        from snnc.targets.loihi.kernels import MODE_CONV, MODE_DENSE, tap_table

        ly = pl.layer
        assert pl.w_eff is not None and pl.fan is not None
        w = pl.w_eff
        bias = ly.effective_bias().astype(np.int64)
        zero = np.zeros((1, 1), dtype=np.int64)
        lo, hi = (int(w.min()), int(w.max())) if w.size else (0, 0)
        wdt = np.int16 if -(1 << 15) <= lo and hi < (1 << 15) else np.int32  # validated: within int32
        bound = float(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0.0
        acc_dtype = np.int32 if bound < float(1 << 31) else np.int64
        fan = pl.fan.astype(np.int64)
        kp = _round8(fan.shape[0])
        fan = np.pad(fan, (0, kp - fan.shape[0]))  # inputs are padded to a multiple of 8
        if ly.kind == "dense":
            n, k = w.shape
            budget = KERNEL_CHUNK_BYTES if chunk_bytes is None else chunk_bytes
            n_chunks = 1 if budget is None else max(1, -(-(k * n * np.dtype(wdt).itemsize) // max(budget, 1)))
            chunk = -(-(-(-n // n_chunks)) // 16) * 16 if n_chunks > 1 else _round8(n)
            n_chunks = -(-n // chunk)
            npad = n_chunks * chunk
            wpad = np.zeros((npad, k), dtype=wdt)
            wpad[:n] = w
            wr = np.ascontiguousarray(wpad.reshape(n_chunks, chunk, k).transpose(0, 2, 1)).reshape(
                n_chunks, k, 1, 1, chunk)
            wt = np.zeros((1, 0, 0), dtype=wdt)
            if acc_dtype == np.int32:
                wt = np.zeros((n_chunks, chunk, kp), dtype=wdt)
                wt[:, :, :k] = wpad.reshape(n_chunks, chunk, k)
            geom = (1, k, k, chunk, MODE_DENSE, int(ly.weight_exp))
            ytab, ztab = zero, zero
            bias = np.pad(bias.reshape(-1), (0, npad - n)).reshape(n_chunks, chunk)
        else:
            c, h, wd = ly.input_shape
            o, oh, ow = ly.output_shape
            g = ly.groups
            cg, og = c // g, o // g
            kh, kw = ly.kernel_size
            wr = w.reshape(g, og, cg, kh, kw).transpose(0, 2, 3, 4, 1).reshape(1, c, kh, kw, og)
            wt = np.zeros((1, 0, 0), dtype=wdt)
            (sh, sw), (ph, pw), (dh, dw) = ly.stride, ly.padding, ly.dilation
            ytab, ztab = tap_table(h, oh, kh, sh, ph, dh), tap_table(wd, ow, kw, sw, pw, dw)
            geom = (ow, c, cg, og, MODE_CONV, 0)
            bias = np.ascontiguousarray(bias.reshape(o, oh * ow).T).reshape(1, -1)
        return cls(np.ascontiguousarray(wr, dtype=wdt), wt, fan, ytab, ztab, geom,
                   4096 - int(ly.du), 4096 - int(ly.dv), bias, int(ly.vth_mant) << 6, acc_dtype)


class LoihiSimulator:
    """The reference simulator prepared for one network (effective weights etc. computed once).

    ``engine``: ``"numba"`` runs chains through the compiled event-driven kernels of
    :mod:`snnc.targets.loihi.kernels`, ``"numpy"`` through the vectorised numpy/torch path,
    ``"auto"``/None: see :func:`resolve_engine`. Both give identical integers.
    """

    def __init__(self, net: LoihiNetwork, accumulate: str = "auto", threads: Optional[int] = None,
                 engine: Optional[str] = None) -> None:
        self.net = net
        self.accumulate = accumulate
        #: Threads for the neuron updates (numpy releases the GIL); None = 1 (the synaptic sums already
        #: use BLAS / torch threads; on a busy 2-core machine more threads were not faster).
        self.threads = 1 if threads is None else max(1, min(int(threads), os.cpu_count() or 1))
        self.engine = resolve_engine(engine)
        use_kernels = self.engine == "numba" and net.is_chain_like()
        self.layers = [PreparedLayer.of(ly, accumulate, with_kernel=not use_kernels) for ly in net.layers]
        self._klayers: Optional[List[Optional[KernelLayer]]] = None
        if use_kernels:
            self._klayers = [KernelLayer.of(pl) if pl.layer.has_neurons else None for pl in self.layers]

    def run(self, spikes: np.ndarray, record_states: bool = False) -> SimResult:
        """Run on binary input spikes (B, T, *input_shape); see :func:`simulate`."""
        net = self.net
        x = _check_input(net, spikes)
        if not net.is_chain_like():  # several inputs, recurrence or readouts: snnc.targets.loihi.general
            from snnc.targets.loihi.general import run_general

            return run_general(self, x, record_states)
        if self._klayers is not None:
            return self._run_kernels(x, record_states)
        b, t_steps = x.shape[:2]
        x_tm = np.ascontiguousarray(np.moveaxis(x, 1, 0))  # (T, B, ...)
        outs_tm: List[np.ndarray] = []
        res = SimResult(spikes=[], u=[], v=[], spike_counts=[], synops=[], weight_reports=[],
                        meta={"batch": b, "steps": t_steps, "simulator": "snnc.loihi.reference", "engine": "numpy"})
        for pl in self.layers:
            ly = pl.layer
            src = x_tm if ly.source < 0 else outs_tm[ly.source]
            res.weight_reports.append(dict(pl.report))
            if not ly.has_neurons:
                out = src.reshape(t_steps, b, *ly.output_shape)
                outs_tm.append(out)
                res.spikes.append(np.moveaxis(out, 0, 1))
                res.u.append(None)
                res.v.append(None)
                res.spike_counts.append(np.zeros(b, dtype=np.int64))
                res.synops.append(np.zeros(b, dtype=np.int64))
                continue
            assert pl.w_eff is not None and pl.fan is not None
            act, amax = synaptic_input(ly, src, pl.w_eff, self.accumulate, pl.kernel)
            s, u, v = self._lif(act, ly, record_states, amax, pl.bias)
            del act
            out = s.reshape(t_steps, b, *ly.output_shape)
            outs_tm.append(out)
            res.spikes.append(np.moveaxis(out, 0, 1))
            shape = (b, t_steps, *ly.output_shape)
            res.u.append(None if u is None else np.moveaxis(u, 0, 1).reshape(shape))
            res.v.append(None if v is None else np.moveaxis(v, 0, 1).reshape(shape))
            res.spike_counts.append(_count_over_time(s).sum(axis=1, dtype=np.int64))
            k = int(np.prod(ly.input_shape))
            per_input = _count_over_time(src.reshape(t_steps, b, k)).astype(np.int64)  # (B, K)
            res.synops.append(per_input @ pl.fan)
        return res

    def _run_kernels(self, x: np.ndarray, record_states: bool) -> SimResult:
        """Run a chain through the compiled kernels, batch-major (B, T, ...) throughout.

        Every layer's spikes live in a (B, T, Np) uint8 buffer, ``Np`` = its neuron count rounded up
        to a multiple of 8 (zero padding), so the next layer can skip all-zero 8-byte words; results
        are views of it.
        """
        kern = _kernels()
        assert kern is not None and self._klayers is not None
        b, t_steps = x.shape[:2]
        res = SimResult(spikes=[], u=[], v=[], spike_counts=[], synops=[], weight_reports=[],
                        meta={"batch": b, "steps": t_steps, "simulator": "snnc.loihi.reference", "engine": "numba"})
        padded: List[np.ndarray] = []  # per layer: its spikes (B, T, Np) uint8, flatten: its source's
        k_in = int(np.prod(self.net.input_shape))
        x_pad = _pad8(x.reshape(b, t_steps, k_in).view(np.uint8))
        dummy = np.zeros((1, 1, 1), dtype=np.int32)
        for pl, kl in zip(self.layers, self._klayers):
            ly = pl.layer
            src = x_pad if ly.source < 0 else padded[ly.source]
            res.weight_reports.append(dict(pl.report))
            if kl is None:  # flatten: a reshape of the source's spikes
                padded.append(src)
                res.spikes.append(res.spikes[ly.source].reshape(b, t_steps, *ly.output_shape) if ly.source >= 0
                                  else x.reshape(b, t_steps, *ly.output_shape))
                res.u.append(None)
                res.v.append(None)
                res.spike_counts.append(np.zeros(b, dtype=np.int64))
                res.synops.append(np.zeros(b, dtype=np.int64))
                continue
            n = ly.num_neurons
            n_pad = _round8(n)
            s_out = np.zeros((b, t_steps, n_pad), dtype=np.uint8)  # the kernel writes only the spikes
            shape = (b, t_steps, *ly.output_shape)
            ch = kl.chunk
            n_chunks = int(kl.wr.shape[0])
            spkw = np.zeros((b, -(-ch // 8)), dtype=np.uint64)
            rec_u = np.empty((b, t_steps, n), dtype=np.int32) if record_states else dummy
            rec_v = np.empty((b, t_steps, n), dtype=np.int32) if record_states else dummy
            counts = np.empty(b, dtype=np.int64)
            synops = np.empty(b, dtype=np.int64)
            assert src.shape[2] == kl.fan.shape[0]  # both: the input size rounded up to a multiple of 8
            kern.run_layer(src.view(np.uint64), kl.wr, kl.wt, kl.fan, kl.ytab, kl.ztab, *kl.geometry, kl.keep_u,
                           kl.keep_v, kl.bias, kl.vth, n, np.empty((b, ch), dtype=kl.acc_dtype),
                           np.empty((b, n_chunks, ch), dtype=np.int64), np.empty((b, n_chunks, ch), dtype=np.int64),
                           spkw, np.empty((b, max(src.shape[2], 8 * spkw.shape[1])), dtype=np.int64), s_out,
                           rec_u, rec_v, bool(record_states), counts, synops)
            padded.append(s_out)
            res.spikes.append(s_out.view(bool)[:, :, :n].reshape(shape))
            res.u.append(rec_u.reshape(shape) if record_states else None)
            res.v.append(rec_v.reshape(shape) if record_states else None)
            res.spike_counts.append(counts)
            res.synops.append(synops)
        return res

    def _lif(self, act: np.ndarray, ly: LoihiLayer, record_states: bool, amax: float,
             bias: Optional[np.ndarray]) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
        """Run :func:`lif_run`, splitting the batch over threads when the work is large enough."""
        t_steps, b, n = act.shape
        parts = min(self.threads, b) if b * n >= 16384 and t_steps > 1 else 1
        if parts <= 1:
            return lif_run(act, ly, record_states, amax=amax, bias=bias)
        edges = np.linspace(0, b, parts + 1).astype(int)
        with ThreadPoolExecutor(max_workers=parts) as pool:
            outs = list(pool.map(lambda i: lif_run(act[:, edges[i]:edges[i + 1]], ly, record_states, amax=amax,
                                                   bias=bias), range(parts)))
        s = np.concatenate([o[0] for o in outs], axis=1)
        if not record_states:
            return s, None, None
        return (s, np.concatenate([o[1] for o in outs], axis=1),  # type: ignore[misc]
                np.concatenate([o[2] for o in outs], axis=1))  # type: ignore[misc]


def simulate(net: LoihiNetwork, spikes: np.ndarray, record_states: bool = False,
             accumulate: str = "auto", engine: Optional[str] = None) -> SimResult:
    """Run ``net`` on binary input spikes (B, T, *input_shape); return every layer's spikes and counts.

    ``record_states`` also returns ``u`` and ``v`` per layer and step. ``accumulate`` selects the
    numpy engine's dense synaptic-sum kernel (``"auto"``, ``"blas"``, ``"gather"``); ``engine``
    the engine (see :class:`LoihiSimulator`); all give identical integers. To run one network
    many times, build a :class:`LoihiSimulator` once instead.
    """
    return LoihiSimulator(net, accumulate, engine=engine).run(spikes, record_states)
