"""The numpy engine of the Loihi reference simulator (always available: also in the Lava worker's interpreter).

Everything is vectorised over batch and neurons; time is the only Python loop (per layer, because
a feed-forward layer's whole input is known once its source is done). Integer arithmetic is done
in float64, which is exact: every intermediate is an integer below 2**46 in magnitude. Synaptic
sums of binary spikes are computed in float32 only when the layer's largest ``sum(|w|)`` over an
output is below 2**24 (then every partial sum is an exactly representable integer), else float64.
int32 overflow and the 24-bit wraps are emulated only when a per-layer bound says they can happen:
the LIF step (:mod:`snnc.targets.loihi.chip`) is run with the wraps that can fire.

Synapses, as Lava computes them:

* Dense: weights clipped to the sign mode's 8-bit range and truncated to ``num_weight_bits``;
  ``a = sum(w over spiking inputs)`` shifted by ``weight_exp`` (arithmetic), sent through an int32
  channel (wraps at 32 bits).
* Conv: true convolution in Lava's (W, H, C) order with flipped kernels = cross-correlation in
  PyTorch's order (what we store); no exponent, no clipping; the sum is cast to int32 and wrapped
  to 24 bits (``signed_clamp``).
* Every synapse delivers its output one step later (its ``a_buff`` holds the previous step's sum),
  so layer ``l`` at step ``t`` sees the spikes its source emitted at ``t - 1``; step 0 sees zero.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from snnc.errors import ShapeError
from snnc.targets.loihi.chip import (DECAY_UNITY, INPUT_SCALE, INPUT_SHIFT, STATE_BITS, U_WRAP, UV_MAX, V_MAX,
                                     decay_float, lif_step_of, same, saturate_v, wrap32_float, wrap_float, wrap_u)
from snnc.targets.loihi.engine_common import PreparedLayer, SimResult, count_over_time
from snnc.targets.loihi.network import LoihiLayer

log = logging.getLogger(__name__)

_F32_EXACT = float(1 << 24)
_TWO31 = float(1 << 31)
_MAX_CHUNK_BYTES = 64 << 20
_TORCH_GEMM_MIN = 1 << 23  # multiply-adds from which torch runs a dense GEMM (smaller: numpy, less thread overhead)
#: The LIF step with every wrap and the saturation (the int32 regime, and recurrent loops).
LIF_STEP = lif_step_of(decay_float, wrap32_float)


def _decay_in_place(x: np.ndarray, d: int) -> np.ndarray:
    """:func:`~snnc.targets.loihi.chip.decay_float` into ``x`` (:func:`lif_run` owns its states)."""
    return decay_float(x, d, out=x)


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

        A cost model of the two kernels, linear in spikes, inputs and outputs (its constants were
        measured: ``benchmarks/README.md``, "Cost models"). Few outputs (< ~14): BLAS always.
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
            # numpy converts bool faster than torch (benchmarks/README.md) and writes channels-last directly
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


def absmax(a: np.ndarray) -> float:
    """Return max |a| without an abs temporary (0 for empty arrays)."""
    return max(float(a.max()), -float(a.min())) if a.size else 0.0


def prepare(layer: LoihiLayer, accumulate: str = "auto") -> PreparedLayer:
    """Return ``layer`` prepared for this engine (its synaptic-sum kernel built once)."""
    return PreparedLayer.of(layer, lambda ly, w: DenseKernel(w, accumulate) if ly.kind == "dense" else ConvKernel(ly, w))


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
        static = (kernel.bound * scale + 1.0) * INPUT_SCALE
    else:
        kernel = kernel if isinstance(kernel, ConvKernel) else ConvKernel(layer, w_eff)
        static = kernel.bound * INPUT_SCALE
    act_dtype = np.float32 if static < _F32_EXACT else np.float64
    if layer.kind == "dense" and t > 1 and e >= 0 and act_dtype == np.float32:
        # Sparse spikes: gather weight rows pre-scaled by ``2**e * 64`` (exact: every partial sum is an
        # integer below ``static`` < 2**24, so no int32 wrap either); step 0's zero rows are empty bags.
        rows2 = x_tm[:-1].reshape((t - 1) * b, int(np.prod(layer.input_shape)))
        out = kernel.gather_into(rows2, b, scale * INPUT_SCALE)
        if out is not None:
            act = out.reshape(t, b, n)
            if static_bound_suffices(layer, static, t):
                return act, static
            return act, absmax(act[1:])
    act = np.empty((t, b, n), dtype=act_dtype)
    if t == 0:
        return act, 0.0
    act[0] = 0.0
    dst = act[1:].reshape((t - 1) * b, n)
    rows = x_tm[:-1].reshape((t - 1) * b, *layer.input_shape)  # the last step's sum is never delivered
    if layer.kind == "dense":
        acc = kernel(rows.reshape((t - 1) * b, int(np.prod(layer.input_shape))))
        if static_bound_suffices(layer, static, t):
            bound = static / INPUT_SCALE  # skips a pass over ``acc``: the weights alone prove no wrap or clip
        else:
            bound = absmax(acc) * scale + (1.0 if e < 0 else 0.0)  # floor may add one in magnitude
        if bound < _TWO31 / INPUT_SCALE:
            if e >= 0:
                np.multiply(acc, scale * INPUT_SCALE, out=dst)
            else:
                np.multiply(acc, scale, out=dst)
                np.floor(dst, out=dst)
                dst *= INPUT_SCALE
            return act, bound * INPUT_SCALE
        a = acc.astype(np.float64) * scale
        if e < 0:
            np.floor(a, out=a)
        dst[...] = wrap32_float(wrap32_float(a) * INPUT_SCALE)  # the int32 channel and the int32 ``<< 6`` wrap
        return act, absmax(dst)
    dst4 = dst.reshape((t - 1) * b, *layer.output_shape)
    if kernel.bound < UV_MAX:  # no wrap possible: write ``a << 6`` straight into ``act``
        kernel(rows, out=dst4, scale=float(INPUT_SCALE))
        if static_bound_suffices(layer, static, t):
            return act, static
        return act, absmax(dst)
    a = kernel(rows, out=np.empty(dst4.shape, dtype=np.float64))
    if absmax(a) >= UV_MAX:  # signed_clamp(x, bits=24)
        a = wrap_float(a, STATE_BITS)
    np.multiply(a, INPUT_SCALE, out=dst4)
    return act, absmax(dst)


def _decay_factor(d: int, t_steps: int) -> float:
    """Bound on how many steps' inputs a state with decay ``d`` (of 4096) accumulates (|trunc(x)| <= |x|)."""
    return float(t_steps) if d == 0 else min(float(t_steps), float(DECAY_UNITY) / d)


def static_bound_suffices(layer: LoihiLayer, static: float, t_steps: int) -> bool:
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
    """Run the fixed-point LIF (:func:`snnc.targets.loihi.chip.lif_step_of`) over time on ``act`` (T, B, N).

    Returns spikes and states. The wraps that per-run bounds prove can never fire are left out
    (the step is built with :func:`~snnc.targets.loihi.chip.same` in their place).

    Spikes are (T, B, N) bool; states (T, B, N) int32 or None. ``act`` may be overwritten.
    ``amax`` (max |act|) and ``bias`` (effective bias per neuron, float64, None if all zero) are
    computed when not given.
    """
    t_steps, b, n = act.shape
    vth = float(layer.vth_mant << INPUT_SHIFT)
    if bias is None:
        eb = layer.effective_bias().reshape(n).astype(np.float64)
        bias = eb if np.any(eb) else None
    bias_bn = 0.0 if bias is None else np.ascontiguousarray(np.broadcast_to(bias, (b, n)))  # same-shape add is faster
    bmax = absmax(bias) if bias is not None else 0.0
    if amax is None:
        amax = absmax(act)
    # Bounds decide which of Lava's wraps can ever happen in this run (|trunc(x)| <= |x|).
    u_bound = amax * _decay_factor(layer.du, t_steps)
    if u_bound >= UV_MAX and act.size:  # a tighter, per-neuron bound: the sum of |act| over time
        u_bound = min(u_bound, float(np.abs(act).sum(axis=0, dtype=np.float64).max()))
    if u_bound < UV_MAX:
        regime = "plain"
    elif amax <= float(U_WRAP):
        regime = "wrap"
        u_bound = float(UV_MAX)
    else:
        regime = "int32"
        u_bound = _TWO31
    v_bound = (u_bound + bmax) * _decay_factor(layer.dv, t_steps)
    need_clip = regime == "int32" or v_bound > V_MAX
    step = lif_step_of(_decay_in_place, wrap32_float if regime == "int32" else same,
                       wrap_u if regime != "plain" else same, saturate_v if need_clip else same)
    spikes = np.zeros((t_steps, b, n), dtype=bool)
    rec_u = np.empty((t_steps, b, n), dtype=np.float64) if record_states else None
    rec_v = np.empty((t_steps, b, n), dtype=np.float64) if record_states else None
    u = np.zeros((b, n), dtype=np.float64)
    v = np.zeros((b, n), dtype=np.float64)
    for t in range(t_steps):
        u, v, spikes[t] = step(u, v, act[t], bias_bn, layer.du, layer.dv, vth)
        if record_states:
            rec_u[t] = u  # type: ignore[index]
            rec_v[t] = v  # type: ignore[index]
    if record_states:
        return spikes, rec_u.astype(np.int32), rec_v.astype(np.int32)  # type: ignore[union-attr]
    return spikes, None, None


def run_lif(act: np.ndarray, ly: LoihiLayer, record_states: bool, amax: float, bias: Optional[np.ndarray],
            threads: int = 1) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Run :func:`lif_run`, splitting the batch over ``threads`` when the work is large enough."""
    t_steps, b, n = act.shape
    parts = min(threads, b) if b * n >= 16384 and t_steps > 1 else 1
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


def run_chain(layers: List[PreparedLayer], x: np.ndarray, record_states: bool = False, accumulate: str = "auto",
              threads: int = 1) -> SimResult:
    """Run a chain of single-input layers on checked binary ``x`` (B, T, ...), one whole layer at a time."""
    b, t_steps = x.shape[:2]
    x_tm = np.ascontiguousarray(np.moveaxis(x, 1, 0))  # (T, B, ...)
    outs_tm: List[np.ndarray] = []
    res = SimResult(spikes=[], u=[], v=[], spike_counts=[], synops=[], weight_reports=[],
                    meta={"batch": b, "steps": t_steps, "simulator": "snnc.loihi.reference", "engine": "numpy"})
    for pl in layers:
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
        act, amax = synaptic_input(ly, src, pl.w_eff, accumulate, pl.kernel)
        s, u, v = run_lif(act, ly, record_states, amax, pl.bias, threads)
        del act
        out = s.reshape(t_steps, b, *ly.output_shape)
        outs_tm.append(out)
        res.spikes.append(np.moveaxis(out, 0, 1))
        shape = (b, t_steps, *ly.output_shape)
        res.u.append(None if u is None else np.moveaxis(u, 0, 1).reshape(shape))
        res.v.append(None if v is None else np.moveaxis(v, 0, 1).reshape(shape))
        res.spike_counts.append(count_over_time(s).sum(axis=1, dtype=np.int64))
        k = int(np.prod(ly.input_shape))
        per_input = count_over_time(src.reshape(t_steps, b, k)).astype(np.int64)  # (B, K)
        res.synops.append(per_input @ pl.fan)
    return res
