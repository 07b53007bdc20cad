"""Integer, synchronous time-step reference model of Speck's cores (the "living definition" here).

Per time step ``t``, layers run in topological order, so spikes reach the next core in the
same step (as sinabs' ``DynapcnnNetwork`` forward pass does). For every layer::

    x   = sum over sources of sum-pooled source spikes (+ the input events for entry layers)
    v  += conv2d(x, W, stride, padding) + b              # integer, exact
    n   = spikes(v)                                      # see spike modes below
    v   = 0 where n > 0      (return_to_zero)            # or  v -= n * threshold_high
    v   = max(v, threshold_low)                          # lower bound, after the reset

Spike modes (sinabs ``spike_fn``):
* ``"multi"`` (sinabs ``MultiSpike``, default): ``n = v // threshold_high`` for ``v > 0``
  (several spikes per step). This is the time-binned view of the chip, which checks the
  threshold after every input event and so can fire many times within one time bin.
* ``"single"`` (sinabs ``SingleSpike``): ``n = 1`` where ``v >= threshold_high``.

What this model is not (sinabs docs, "dangers"): the chip is asynchronous and event driven;
within a bin the order of events matters on the chip but not here; the chip adds the bias
on its slow clock, not once per time step as here; the 16-bit state register's behaviour
on overflow is not documented — states leaving the 16-bit range are counted
(``state_overflow``) and, with ``saturate_state=True``, clipped to it (never silently).

Engines (the same integers; ``simulate(..., engine=)``): with numba (:mod:`snnc.targets.speck.kernels`)
each layer runs either *event-driven* (every non-zero input count adds its weights into an
accumulator, then the IAF update, per sample and step: cost proportional to the input events) or
*dense* (torch's convolution or GEMM over chunks of steps, float32 or float64 chosen so that every
integer sum is exact, else an error, then a compiled IAF scan); ``auto`` picks per layer from the
input's measured event count (:data:`kernels.EVENT_COST`). Without numba, the whole run's
convolution and a numpy scan over time. States are held in float32 (when a bound keeps them below
2**22), float64 (below 2**50) or, on the numpy path only, int64; in the float cases
``floor(v / threshold)`` of a non-negative integer ``v`` and a positive integer threshold is exact
(the correctly rounded quotient cannot reach the next integer: its distance to it, at least
``1/threshold``, exceeds half an ulp). Everything is time-major, so each step's slice is contiguous.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from snnc.errors import ShapeError, UnsupportedError, ValueRangeError
from snnc.fixedpoint import signed_range
from snnc.targets.speck import chip, kernels
from snnc.targets.speck.network import SpeckLayer, SpeckNetwork

log = logging.getLogger(__name__)

SPIKE_MODES = chip.SPIKE_MODES
#: ``simulate``'s engine choices.
ENGINES = ("auto", "event", "dense", "numpy")
_EXACT_F32 = 1 << 24
_EXACT_F64 = 1 << 53
#: Bytes of a dense chunk's widest array (input, im2col buffer or drive): the compiled path runs the
#: convolution over as many steps at once as fit (a whole run's im2col falls out of cache).
CHUNK_BYTES = 4 << 20


@dataclass
class SimResult:
    """Spikes (and optionally states) per layer name, shaped (batch, time, f, H, W), plus counters."""

    spikes: dict[str, np.ndarray]
    states: Optional[dict[str, np.ndarray]] = None
    spike_counts: dict[str, np.ndarray] = field(default_factory=dict)
    synops: dict[str, np.ndarray] = field(default_factory=dict)
    state_overflow: dict[str, int] = field(default_factory=dict)

    @property
    def total_spikes(self) -> int:
        """Spikes emitted by all layers, all batch items."""
        return int(sum(int(v.sum()) for v in self.spike_counts.values()))

    @property
    def total_synops(self) -> int:
        """Synaptic operations (input event x reached output neuron), all layers and batch items."""
        return int(sum(int(v.sum()) for v in self.synops.values()))


def _drive_bound(x_max: int, w: np.ndarray, b: np.ndarray) -> int:
    """Upper bound of |conv2d(x, w) + b| for integer inputs 0 <= x <= ``x_max``."""
    w_abs = max(int(w.max()), -int(w.min())) if w.size else 0  # no |w| temporary
    return w_abs * int(np.prod(w.shape[1:])) * x_max + int(np.abs(b).max(initial=0))


def _is_dense(layer: SpeckLayer, in_hw: tuple[int, ...]) -> bool:
    """True when the kernel covers the whole (H, W) input without padding: a dense layer, one GEMM."""
    return tuple(layer.neuron_shape[1:]) == (1, 1) and tuple(layer.padding) == (0, 0) \
        and tuple(layer.kernel_size) == tuple(in_hw)


def _exact_conv(x: torch.Tensor, layer: SpeckLayer, x_max: int, out_dtype: torch.dtype,
                bound: Optional[int] = None) -> torch.Tensor:
    """``conv2d(x, W) + b`` of non-negative integer ``x``, computed in float32 or float64 only
    where every partial sum is an exactly representable integer (so no rounding happens).
    ``bound``: :func:`_drive_bound` of this layer and ``x_max`` when already known."""
    if bound is None:
        bound = _drive_bound(x_max, layer.weights, layer.biases)
    if bound < _EXACT_F32:
        dtype = torch.float32
    elif bound < _EXACT_F64:
        dtype = torch.float64
    else:
        raise ValueRangeError(f"conv sums may reach {bound}, beyond exact float64 integers",
                              node=layer.name)
    npdt = np.float32 if dtype == torch.float32 else np.float64  # numpy converts faster than torch
    xf = torch.from_numpy(x.numpy().astype(npdt)) if not x.is_floating_point() else x.to(dtype)
    wt = torch.from_numpy(kernels.prepared(layer.weights, np.dtype(npdt).name, lambda w: w.astype(npdt)))
    bt = torch.from_numpy(np.asarray(layer.biases).astype(npdt))
    if _is_dense(layer, tuple(xf.shape[2:])):
        # the kernel covers the whole input (a dense layer): one GEMM, no conv weight reorder
        y = F.linear(xf.reshape(xf.shape[0], -1), wt.reshape(wt.shape[0], -1), bt).reshape(-1, wt.shape[0], 1, 1)
    else:
        y = F.conv2d(xf, wt, bt, stride=layer.stride, padding=layer.padding)
    return y if y.dtype == out_dtype else y.to(out_dtype)


def _coverage(size: int, kernel: int, stride: int, padding: int, out_size: int) -> np.ndarray:
    """How many output positions along one axis see each input position (receptive-field count)."""
    starts = np.arange(out_size) * stride - padding
    idx = (starts[:, None] + np.arange(kernel)[None, :]).reshape(-1)
    cov = np.zeros(size, dtype=np.int64)
    np.add.at(cov, idx[(idx >= 0) & (idx < size)], 1)
    return cov


def _synops(x: torch.Tensor, layer: SpeckLayer, batch: int, x_max: int) -> np.ndarray:
    """Exact (input event, output neuron) pairs per batch item: f * sum of events x receptive-field count.

    ``x``: time-major (T*B, c, H, W) integer event counts, none above ``x_max``.
    """
    (c, h, w), (f, oh, ow) = layer.input_shape, layer.neuron_shape
    cov = np.outer(_coverage(h, layer.kernel_size[0], layer.stride[0], layer.padding[0], oh),
                   _coverage(w, layer.kernel_size[1], layer.stride[1], layer.padding[1], ow))
    xn = x.numpy()
    xn = xn.reshape(-1, batch, xn.shape[1] * h * w)  # (T, B, c*H*W)
    # the narrowest exact accumulator of the sum over steps (numpy reduces integer arrays faster than torch)
    top = xn.shape[0] * x_max
    acc = np.uint16 if top < (1 << 16) else np.int32 if top < (1 << 31) else np.int64
    per = xn.sum(axis=0, dtype=acc).reshape(batch, -1, h * w).sum(axis=1, dtype=np.int64)  # (B, H*W)
    return per @ cov.reshape(-1) * f


def _sum_pool(x: torch.Tensor, pooling: tuple[int, int]) -> torch.Tensor:
    """Sum pooling with stride = kernel on integer (N, C, H, W), floor of the map size (as sinabs)."""
    py, px = pooling
    if (py, px) == (1, 1):
        return x
    if x.numel() and not x.is_floating_point():
        # torch's integer reductions are slow on CPU: sum in float32/float64 where exact
        bound = int(x.abs().max().item()) * py * px
        if bound < _EXACT_F64:
            xf = x.to(torch.float32 if bound < _EXACT_F32 else torch.float64)
            return F.avg_pool2d(xf, (py, px), stride=(py, px), divisor_override=1).to(
                torch.int32 if bound < (1 << 31) - 1 else torch.int64)
    n, c, h, w = x.shape
    hh, ww = h // py, w // px
    x = x[:, :, : hh * py, : ww * px]
    return x.reshape(n, c, hh, py, ww, px).sum(dim=(3, 5))


def _narrowest(x: np.ndarray) -> Any:
    """The narrowest of uint8, int32, int64 (types torch computes with) that holds counts ``x >= 0``
    (every later pass over the input reads fewer bytes)."""
    top = int(x.max()) if x.size else 0
    return np.uint8 if top < (1 << 8) else np.int32 if top < (1 << 31) else np.int64


def _prepare_input(net: SpeckNetwork, inputs: np.ndarray) -> torch.Tensor:
    """Validate (B, T, C, H, W) input counts and apply the DVS layer (merge, pooling); -> (T*B, c, h, w)."""
    x = np.asarray(inputs)
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5 or tuple(x.shape[2:]) != tuple(net.input_shape):
        raise ShapeError(f"input must be (batch, time, {', '.join(map(str, net.input_shape))}), "
                         f"got {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.equal(np.mod(x, 1), 0)):
            raise ValueRangeError("input event counts must be integers")
    if x.size and x.min() < 0:
        raise ValueRangeError(f"input event counts must be >= 0, got min {x.min()}")
    b, t = x.shape[:2]
    # time-major (T*B, ...): every step's slice of a layer's drive is then contiguous
    xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 1, 0), dtype=_narrowest(x))).reshape(t * b, *x.shape[2:])
    if net.dvs is not None:
        if net.dvs.merge_polarities:
            xt = xt.sum(dim=1, keepdim=True)  # int64
        xt = _sum_pool(xt, net.dvs.pooling)
    return xt


def _initial_state(lyr: SpeckLayer, batch: int, dtype: Any) -> np.ndarray:
    """The layer's initial state for ``batch`` items, (B, f, H, W) in ``dtype`` (zeros unless the layer sets it)."""
    shape = (batch, *lyr.neuron_shape)
    if lyr.neurons_initial_value is None:
        return np.zeros(shape, dtype=dtype)
    return np.broadcast_to(np.asarray(lyr.neurons_initial_value).astype(dtype), shape).copy()


def _state_dtype(reach: int, thr: int) -> Any:
    """The float type that holds every reachable state and drive exactly (see the module doc), or int64."""
    if reach < (1 << 22) and thr > 0:
        return np.float32
    if reach < (1 << 50) and thr > 0:
        return np.float64
    return np.int64


def _run_compiled(lyr: SpeckLayer, xl: torch.Tensor, b: int, t: int, spike_mode: str, record: bool,
                  saturate: bool, check: bool, bound: int, st_range: tuple[int, int], out_np: Any,
                  event: bool, sdt: Any, x_max: int) -> tuple[np.ndarray, Optional[np.ndarray], int]:
    """One layer with the compiled kernels (state in float ``sdt``): event by event (``event``), else
    dense convolutions over chunks of steps, each followed by the compiled IAF scan.
    Returns time-major spikes and states (T, B, f, H, W) and the overflow count."""
    f, h, w = lyr.neuron_shape
    n = f * h * w
    spikes = np.empty((t * b, n), dtype=out_np)
    states = np.empty((t * b, n), dtype=out_np) if record else None
    args = (int(lyr.threshold_high), int(lyr.threshold_low), bool(lyr.return_to_zero), spike_mode == "multi",
            st_range, check, saturate)
    if event:
        v0 = _initial_state(lyr, 1, sdt).reshape(-1)
        overflow = kernels.event_layer(np.ascontiguousarray(xl.numpy()), b, lyr.weights, np.asarray(lyr.biases), v0,
                                       tuple(lyr.stride), tuple(lyr.padding), (f, h, w), spikes, states, *args,
                                       x_max=x_max)
    else:
        v = _initial_state(lyr, b, sdt).reshape(-1)
        itemsize = np.dtype(sdt).itemsize
        row_bytes = itemsize * max(int(np.prod(xl.shape[1:])), n,
                                   n // f * int(np.prod(lyr.weights.shape[1:])))  # input, output, im2col
        steps = max(1, CHUNK_BYTES // (b * row_bytes))
        overflow = 0
        for t0 in range(0, t, steps):
            rows = slice(t0 * b, min(t, t0 + steps) * b)
            drive = _exact_conv(xl[rows], lyr, 0, torch.float32 if sdt == np.float32 else torch.float64, bound=bound)
            overflow += kernels.scan(drive.numpy().reshape(-1, b * n), v, spikes[rows].reshape(-1, b * n),
                                     None if states is None else states[rows].reshape(-1, b * n), *args)
    sh = (t, b, f, h, w)
    return spikes.reshape(sh), None if states is None else states.reshape(sh), overflow


def _run_numpy(lyr: SpeckLayer, xl: torch.Tensor, b: int, t: int, spike_mode: str, record: bool,
               saturate: bool, may_overflow: bool, step_max: int, reach: int, st_range: tuple[int, int],
               out_np: Any, x_max: int) -> tuple[np.ndarray, Optional[np.ndarray], int]:
    """One layer without numba: the whole run's convolution, then a numpy scan over time.
    Returns time-major spikes and states (T, B, f, H, W) and the overflow count."""
    st_lo, st_hi = st_range
    thr, low = int(lyr.threshold_high), int(lyr.threshold_low)
    f, h, w = lyr.neuron_shape
    sdt = _state_dtype(reach, thr)
    drive_t = _exact_conv(xl, lyr, x_max, torch.float32 if sdt == np.float32 else torch.float64
                          if sdt == np.float64 else torch.int64, bound=step_max)
    drive = drive_t.numpy().reshape(t, b, f, h, w)  # time-major, contiguous per step
    v = _initial_state(lyr, b, sdt)
    spikes_tm = np.empty((t, b, f, h, w), dtype=out_np)
    states_tm = np.empty((t, b, f, h, w), dtype=out_np) if record else None
    n = np.empty_like(v)
    tmp = np.empty_like(v)
    is_float = sdt != np.int64
    fthr = sdt(thr) if is_float else thr
    overflow = 0
    for step in range(t):
        np.add(v, drive[step], out=v)
        if may_overflow:
            v_min, v_max = v.min(), v.max()
            if v_min < st_lo or v_max > st_hi:  # rare: count only then
                overflow += int(np.count_nonzero((v < st_lo) | (v > st_hi)))
                if saturate:
                    np.clip(v, st_lo, st_hi, out=v)
        if spike_mode == "multi":
            np.maximum(v, 0, out=n)
            if is_float:
                np.divide(n, fthr, out=n)
                np.floor(n, out=n)
            else:
                np.floor_divide(n, thr, out=n)
        else:
            np.greater_equal(v, thr, out=n, casting="unsafe")
        if lyr.return_to_zero:
            np.copyto(v, 0, where=n > 0)
        else:
            np.multiply(n, fthr, out=tmp)
            np.subtract(v, tmp, out=v)
        np.maximum(v, low, out=v)
        spikes_tm[step] = n
        if states_tm is not None:
            states_tm[step] = v
    return spikes_tm, states_tm, overflow


def simulate(net: SpeckNetwork, inputs: np.ndarray, *, spike_mode: str = "multi",
             record_states: bool = False, saturate_state: bool = False, engine: str = "auto") -> SimResult:
    """Run the integer Speck model on input event counts (B, T, C, H, W) or (T, C, H, W).

    ``engine``: ``"auto"`` (per layer: event-driven when its measured input events make that
    cheaper, else dense; numpy where numba is absent), or one of ``"event"``, ``"dense"``,
    ``"numpy"`` for every layer (the same integers; for tests and benchmarks).
    """
    if spike_mode not in SPIKE_MODES:
        raise UnsupportedError(f"spike_mode {spike_mode!r} unknown; use one of {SPIKE_MODES}")
    if engine not in ENGINES:
        raise UnsupportedError(f"engine {engine!r} unknown; use one of {ENGINES}")
    if engine in ("event", "dense") and not kernels.AVAILABLE:
        raise UnsupportedError(f"engine {engine!r} needs numba, which is not installed")
    x_in = _prepare_input(net, inputs)
    arr = np.asarray(inputs)
    b, t = (1, arr.shape[0]) if arr.ndim == 4 else arr.shape[:2]
    st_lo, st_hi = signed_range(chip.STATE_BITS)
    entry = set(net.entry_layers())
    outgoing: dict[int, torch.Tensor] = {}  # layer index -> spikes (T*B, f, H, W), integer, time-major
    result = SimResult(spikes={}, states={} if record_states else None)
    for i in net.topological_order():
        lyr = net.layers[i]
        parts = [_sum_pool(outgoing[src], d.pooling) for src, d in net.sources(i)]
        if i in entry:
            parts.append(x_in)
        if not parts:
            raise ShapeError("layer receives no input (not an entry layer and no source)",
                             node=lyr.name)
        xl = parts[0]
        for extra in parts[1:]:  # several sources into one core: events add up (in int64: no wrap)
            xl = xl.to(torch.int64) + extra
        x_max = int(xl.numpy().max()) if xl.numel() else 0
        result.synops[lyr.name] = _synops(xl, lyr, b, x_max)
        thr, low = int(lyr.threshold_high), int(lyr.threshold_low)
        # int32 state when it provably fits: after a step v < max(thr, |v0|) (multi or
        # return_to_zero), else it can grow by one drive per step
        step_max = _drive_bound(x_max, lyr.weights, lyr.biases)
        v0_max = 0 if lyr.neurons_initial_value is None else int(np.abs(lyr.neurons_initial_value).max())
        reach = max(abs(thr), abs(low), v0_max, st_hi) + step_max * (
            1 if (spike_mode == "multi" or lyr.return_to_zero) else t)
        dtype = torch.int32 if reach < (1 << 31) - 1 else torch.int64
        # the 16-bit range check per step can be skipped where the bounds prove it holds
        bounded = spike_mode == "multi" or lyr.return_to_zero
        may_overflow = (not bounded or low - step_max < st_lo
                        or max(thr - 1, v0_max, 0) + step_max > st_hi)
        f, h, w = lyr.neuron_shape
        out_np = np.int32 if dtype == torch.int32 else np.int64
        st_range = (st_lo, st_hi)
        sdt = _state_dtype(reach, thr)
        if kernels.AVAILABLE and sdt != np.int64 and engine != "numpy":
            synops = int(result.synops[lyr.name].sum())
            macs = t * b * f * h * w * int(np.prod(lyr.weights.shape[1:]))
            event = engine == "event" or (engine == "auto" and synops * kernels.EVENT_COST < macs)
            spikes_tm, states_tm, overflow = _run_compiled(lyr, xl, b, t, spike_mode, record_states, saturate_state,
                                                           may_overflow, step_max, st_range, out_np, event, sdt,
                                                           x_max)
        else:
            spikes_tm, states_tm, overflow = _run_numpy(lyr, xl, b, t, spike_mode, record_states, saturate_state,
                                                        may_overflow, step_max, reach, st_range, out_np, x_max)
        if overflow:
            log.warning("layer %s: %d neuron-steps left the 16-bit state range%s", lyr.name,
                        overflow, " (saturated)" if saturate_state else "")
        result.state_overflow[lyr.name] = overflow
        outgoing[i] = torch.from_numpy(spikes_tm.reshape(t * b, f, h, w))
        result.spikes[lyr.name] = np.moveaxis(spikes_tm, 0, 1)  # (B, T, ...) view of the time-major array
        # per row, then over steps: row sums exact in int32 while a row's spikes stay below 2**31
        n_max = 1 if spike_mode == "single" else reach // max(thr, 1) + 1
        row_acc = np.int32 if f * h * w * n_max < (1 << 31) else np.int64
        result.spike_counts[lyr.name] = spikes_tm.reshape(t * b, -1).sum(axis=1, dtype=row_acc).reshape(t, b).sum(
            axis=0, dtype=np.int64)
        if states_tm is not None and result.states is not None:
            result.states[lyr.name] = np.moveaxis(states_tm, 0, 1)
    return result


def classify(result: SimResult, net: SpeckNetwork) -> np.ndarray:
    """Class per batch item: argmax of the readout (or last exit) layer's spike counts per class channel."""
    idx = net.readout.layer if net.readout is not None else net.exit_layers()[-1]
    s = result.spikes[net.layers[idx].name]
    if net.readout is not None:
        s = s[:, :, :: net.readout.channel_stride]
    return s.sum(axis=(1, 3, 4)).argmax(axis=1)
