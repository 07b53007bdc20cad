"""Compiled (numba) kernels of the Speck reference simulator: the IAF scan, and event-driven layers.

:func:`scan` runs the IAF update of :mod:`snnc.targets.speck.simulator` over a time-major chunk of
precomputed drive (``v += drive``; the 16-bit range check and optional saturation; ``n`` spikes
where ``v >= threshold_high``: ``floor(v / threshold_high)`` in ``multi`` mode, 1 in ``single``;
reset to zero or by subtraction; the lower bound) in one pass per step, with the state in a float
type that holds every reachable integer exactly (the simulator's choice), so the loop vectorises.
:func:`event_layer` computes the drive itself, event by event: for every step and sample, each
non-zero input count ``c`` adds ``c x`` its weight rows into an accumulator (a dense layer: one row
of F output channels; a convolution: one row per output position its receptive field reaches,
from a table made once per geometry, :func:`taps`), then runs the same IAF update. Its cost is
proportional to the input events, the dense path's to the input size; the simulator picks one per
layer (:data:`EVENT_COST`).

Both equal sinabs' layers and the numpy scan (``tests/test_speck_oracle.py``,
``tests/test_speck_simulator.py``, every engine). numba is optional: without it :data:`AVAILABLE`
is False and the simulator keeps its numpy scan and convolutions. Compiled code is cached on disk
(``cache=True``).
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, Tuple

import numpy as np

from snnc.parallel import run_split

try:  # numba is optional: without it this module imports but AVAILABLE is False
    from numba import njit

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    AVAILABLE = False

    def njit(*args: Any, **kwargs: Any) -> Any:  # type: ignore[no-redef]
        """Stand-in decorator when numba is absent: the function stays plain Python (never called)."""
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

#: Relative cost of one event-driven add (an input event times one reached output neuron) against
#: one multiply-accumulate of the dense float32 convolution or GEMM: the event path is chosen when
#: ``synops * EVENT_COST < dense MACs`` (measured on this machine: ``benchmarks/LOG.md``).
EVENT_COST = 6.0


@njit(inline="always")
def _iaf(x, thr, low, rtz, multi):  # type: ignore[no-untyped-def]
    """One IAF step of one neuron whose state plus drive is ``x`` (a float holding an exact integer).

    Returns (spikes, new state); every argument but the flags has the state's float type, so the
    loop vectorises (no integer division, selects rather than branches).
    """
    z = thr - thr
    if multi:
        n = np.floor(x / thr)  # exact for integers below 2**22 (float32) / 2**50 (float64)
        n = n if n > z else z
    else:
        n = thr / thr if x >= thr else z
    if rtz:
        x = z if n > z else x
    else:
        x = x - n * thr
    return n, (x if x > low else low)


@njit(inline="always")
def _iaf_checked(x, thr, low, rtz, multi, st_lo, st_hi, saturate):  # type: ignore[no-untyped-def]
    """:func:`_iaf` after the 16-bit range check (and saturation); returns (spikes, state, 1 if out of range)."""
    ov = np.int64(x < st_lo) + np.int64(x > st_hi)  # branch-free
    if saturate:
        x = st_lo if x < st_lo else x
        x = st_hi if x > st_hi else x
    n, x = _iaf(x, thr, low, rtz, multi)
    return n, x, ov


@njit(cache=True, nogil=True)
def _scan(lo, hi, drive, v, spikes, states, record, thr, low, rtz, multi, st_lo, st_hi, check,
          saturate):  # type: ignore[no-untyped-def]
    """IAF over the steps of ``drive`` (S, M) for elements ``lo:hi``; state ``v`` (M,) in place (drive's dtype).

    A copy of the loop per case (states recorded, range checked, plain), so that each has few
    flags for the compiler to hoist and vectorises.
    """
    ov = 0
    vv = v[lo:hi]  # slices, not range(lo, hi): a loop from a non-zero start does not vectorise in numba
    if record:
        for s in range(drive.shape[0]):
            d, sp, st = drive[s, lo:hi], spikes[s, lo:hi], states[s, lo:hi]
            for m in range(hi - lo):
                if check:
                    n, x, o = _iaf_checked(vv[m] + d[m], thr, low, rtz, multi, st_lo, st_hi, saturate)
                    ov += o
                else:
                    n, x = _iaf(vv[m] + d[m], thr, low, rtz, multi)
                vv[m] = x
                sp[m] = n
                st[m] = x
    elif check:  # one flag per loop nest, so that each vectorises
        for s in range(drive.shape[0]):
            d, sp = drive[s, lo:hi], spikes[s, lo:hi]
            for m in range(hi - lo):
                n, x, o = _iaf_checked(vv[m] + d[m], thr, low, rtz, multi, st_lo, st_hi, saturate)
                ov += o
                vv[m] = x
                sp[m] = n
    else:
        for s in range(drive.shape[0]):
            d, sp = drive[s, lo:hi], spikes[s, lo:hi]
            for m in range(hi - lo):
                n, x = _iaf(vv[m] + d[m], thr, low, rtz, multi)
                vv[m] = x
                sp[m] = n
    return ov


def _typed(dtype: Any, thr: int, low: int, st_range: Tuple[int, int]) -> Tuple[Any, ...]:
    """The scalar arguments of the IAF step in the state's float type."""
    t = np.dtype(dtype).type
    return t(thr), t(low), t(st_range[0]), t(st_range[1])


def scan(drive: np.ndarray, v: np.ndarray, spikes: np.ndarray, states: np.ndarray | None, thr: int, low: int,
         rtz: bool, multi: bool, st_range: Tuple[int, int], check: bool, saturate: bool) -> int:
    """Run the IAF update over time-major drive (S, M); return how many neuron-steps left the 16-bit range.

    ``drive`` and the state ``v`` (M,, updated in place) share a float dtype (float32 when every
    state stays below 2**22 and every drive below 2**24, else float64 below 2**50); ``spikes`` /
    ``states`` (S, M) integer arrays receive each step's spike counts and states (``states`` None:
    not recorded). ``thr`` must be positive.
    """
    rec = states is not None
    st = states if rec else np.empty((1, 1), dtype=spikes.dtype)
    t_thr, t_low, t_lo, t_hi = _typed(v.dtype, thr, low, st_range)
    return int(sum(run_split(_scan, v.shape[0], drive, v, spikes, st, rec, t_thr, t_low, bool(rtz),
                             bool(multi), t_lo, t_hi, bool(check), bool(saturate))))


@njit(inline="always")
def _iaf_row(v, a, sp, thr, low, rtz, multi):  # type: ignore[no-untyped-def]
    """IAF of one contiguous row: ``v`` (state) and ``a`` (drive) in place, spikes to ``sp``."""
    for f in range(v.shape[0]):
        n, xv = _iaf(v[f] + a[f], thr, low, rtz, multi)
        v[f] = xv
        sp[f] = n


@njit(cache=True, nogil=True)
def _iaf_out(acc, v, sp, thr, low, rtz, multi):  # type: ignore[no-untyped-def]
    """IAF of one sample-step of a conv layer: channels-last drive ``acc`` (P, F); state ``v`` and spikes in C order (F, P)."""
    hw_out, nf = acc.shape
    for f in range(nf):  # long inner loops over positions (a strided read of acc) rather than over F
        vf, sf = v[f * hw_out:(f + 1) * hw_out], sp[f * hw_out:(f + 1) * hw_out]
        for p in range(hw_out):
            n, xv = _iaf(vf[p] + acc[p, f], thr, low, rtz, multi)
            vf[p] = xv
            sf[p] = n


@njit(cache=True, nogil=True)
def _iaf_out_full(acc, v, sp, st, record, check, thr, low, rtz, multi, st_lo, st_hi, saturate):  # type: ignore[no-untyped-def]
    """:func:`_iaf_out` with the range check and / or recorded states (``st``); returns the overflow count."""
    hw_out, nf = acc.shape
    ov = 0
    for f in range(nf):
        for p in range(hw_out):
            q = f * hw_out + p
            if check:
                n, xv, o = _iaf_checked(v[q] + acc[p, f], thr, low, rtz, multi, st_lo, st_hi, saturate)
                ov += o
            else:
                n, xv = _iaf(v[q] + acc[p, f], thr, low, rtz, multi)
            v[q] = xv
            sp[q] = n
            if record:
                st[q] = xv
    return ov


@njit(inline="always")
def _add(acc, w, c):  # type: ignore[no-untyped-def]
    """``acc += c * w`` over one contiguous row (adds only when ``c`` is 1, as most events are)."""
    if c == 1:
        for f in range(acc.shape[0]):
            acc[f] += w[f]
    else:
        for f in range(acc.shape[0]):
            acc[f] += c * w[f]


@njit(cache=True, nogil=True)
def _event(lo, hi, x, xw, nt, nb, wc, bias, v0, ptr, tap_p, tap_r, spikes, states, record, thr, low, rtz, multi,
           st_lo, st_hi, check, saturate):  # type: ignore[no-untyped-def]
    """Event-driven drive + IAF for samples ``lo:hi`` of a time-major flat input ``x`` (T*B, K).

    ``xw`` views the same bytes as uint64 words (``K * itemsize`` a multiple of 8): a zero word
    skips ``8 / itemsize`` inputs at once.

    Input ``k`` reaches, through taps ``ptr[k]:ptr[k + 1]``, output position ``tap_p[j]`` with
    weight row ``wc[tap_r[j]]`` (``wc``: (rows, F), one row of F output channels per kernel tap;
    a dense layer: one tap per input). The accumulator is channels-last (position, F); state and
    outputs (T*B, F * positions) are in C order.
    """
    nf = wc.shape[1]
    n_out = spikes.shape[1]
    hw_out = n_out // nf
    per = x.shape[1] // xw.shape[1]
    acc = np.empty((hw_out, nf), dtype=wc.dtype)
    vs = np.empty((hi - lo, n_out), dtype=wc.dtype)  # states of this thread's samples, C order (F, P)
    for i in range(hi - lo):
        for q in range(n_out):
            vs[i, q] = v0[q]
    ov = 0
    for t in range(nt):  # step-major, so that consecutive samples read and write consecutive rows
        for b in range(lo, hi):
            row = t * nb + b
            v = vs[b - lo]
            for p in range(hw_out):
                ap = acc[p]
                for f in range(nf):  # a loop, not a slice assignment (numba's costs ~0.4 us)
                    ap[f] = bias[f]
            xr, wr = x[row], xw[row]
            for q in range(wr.shape[0]):
                if wr[q] == 0:
                    continue
                for k in range(q * per, q * per + per):
                    c = xr[k]
                    if c != 0:
                        for j in range(ptr[k], ptr[k + 1]):
                            _add(acc[tap_p[j]], wc[tap_r[j]], c)
            sp = spikes[row]
            if check or record:
                ov += _iaf_out_full(acc, v, sp, states[row] if record else states[0], record, check, thr, low,
                                    rtz, multi, st_lo, st_hi, saturate)
            elif hw_out == 1:  # dense: outputs contiguous too
                _iaf_row(v, acc[0], sp, thr, low, rtz, multi)
            else:
                _iaf_out(acc, v, sp, thr, low, rtz, multi)
    return ov


def taps(in_shape: Tuple[int, int, int], kernel: Tuple[int, int], stride: Tuple[int, int],
         padding: Tuple[int, int], out_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR table of a convolution's fan-out: per flat input ``(c, y, x)``, the (output position ``oy * OW + ox``,
    weight row ``(c * kh + ky) * kw + kx``) pairs it reaches (``i = o * stride - pad + k`` on each axis)."""
    c, h, w = in_shape
    kh, kw = kernel
    oh, ow = out_hw
    if (kh, kw) == (h, w) and (oh, ow) == (1, 1) and tuple(padding) == (0, 0):  # dense: input k -> row k
        k = c * h * w
        return np.arange(k + 1, dtype=np.int64), np.zeros(k, dtype=np.int64), np.arange(k, dtype=np.int64)
    ci, yy, xx, ky, kx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), np.arange(kh), np.arange(kw),
                                     indexing="ij")
    ny, nx = yy + padding[0] - ky, xx + padding[1] - kx
    oy, ox = ny // stride[0], nx // stride[1]
    ok = ((ny >= 0) & (ny % stride[0] == 0) & (oy < oh) & (nx >= 0) & (nx % stride[1] == 0) & (ox < ow))
    k_in = ((ci * h + yy) * w + xx)[ok]  # already in increasing order (C order of the meshgrid)
    ptr = np.zeros(c * h * w + 1, dtype=np.int64)
    np.add.at(ptr, k_in + 1, 1)
    return (np.cumsum(ptr), (oy * ow + ox)[ok].astype(np.int64),
            ((ci * kh + ky) * kw + kx)[ok].astype(np.int64))


_PREPARED: Dict[Tuple[int, str], Tuple[Any, np.ndarray]] = {}  # (id(weights), layout) -> (weak reference, array)


def prepared(weights: np.ndarray, layout: str, make: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``make(weights)``, made once per weights array object and layout name (a cache).

    A layer's weights are its own copy, made when the layer is built: write a new array to the
    layer rather than into its weights, or the cached layouts go stale.
    """
    key = (id(weights), layout)
    hit = _PREPARED.get(key)
    if hit is not None and hit[0]() is weights:
        return hit[1]
    out = make(weights)
    _PREPARED[key] = (weakref.ref(weights, lambda _r, k=key: _PREPARED.pop(k, None)), out)
    return out


def channels_last(weights: np.ndarray, dtype: Any) -> np.ndarray:
    """``weights`` (F, C, kh, kw) as a contiguous (C, kh, kw, F) array of ``dtype`` (cached: :func:`prepared`)."""
    return prepared(weights, f"channels_last:{np.dtype(dtype).name}",
                    lambda w: np.ascontiguousarray(np.transpose(w, (1, 2, 3, 0)), dtype=dtype))


def event_layer(x: np.ndarray, batch: int, weights: np.ndarray, bias: np.ndarray, v0: np.ndarray,
                stride: Tuple[int, int], padding: Tuple[int, int], neuron_shape: Tuple[int, int, int],
                spikes: np.ndarray, states: np.ndarray | None, thr: int, low: int, rtz: bool, multi: bool,
                st_range: Tuple[int, int], check: bool, saturate: bool, x_max: int | None = None) -> int:
    """Run one layer event by event on time-major input counts ``x`` (T*B, C, H, W); return overflows.

    ``weights`` (F, C, kh, kw) integer; ``v0`` (F*OH*OW,) initial state in the state's float type
    (as :func:`scan`; the drive is accumulated in it, exact below 2**24 / 2**53); ``spikes`` /
    ``states`` (T*B, F*OH*OW) are written (``states`` None: not recorded). ``thr`` must be positive;
    ``x_max``: the largest count in ``x`` when known.
    """
    f, oh, ow = neuron_shape
    wc = channels_last(weights, v0.dtype).reshape(-1, f)
    ptr, tap_p, tap_r = _taps_cached(tuple(x.shape[1:]), tuple(weights.shape[2:]), tuple(stride),
                                     tuple(padding), (oh, ow))
    nt = x.shape[0] // batch
    rec = states is not None
    st = states if rec else np.empty((1, 1), dtype=spikes.dtype)
    t_thr, t_low, t_lo, t_hi = _typed(v0.dtype, thr, low, st_range)
    xf = _padded(x.reshape(x.shape[0], -1), x_max)
    return int(sum(run_split(_event, batch, xf, xf.view(np.uint64), nt, batch, wc,
                             np.asarray(bias, dtype=v0.dtype).reshape(-1), np.ascontiguousarray(v0), ptr, tap_p, tap_r, spikes, st, rec,
                             t_thr, t_low, bool(rtz), bool(multi), t_lo, t_hi, bool(check), bool(saturate))))


def _padded(x: np.ndarray, top: int | None = None) -> np.ndarray:
    """Input counts (rows, K) as the narrowest unsigned type that holds them, rows zero padded to whole 8-byte words."""
    if x.dtype == np.uint8 and x.shape[1] % 8 == 0:
        return np.ascontiguousarray(x)  # already narrow (the simulator's input)
    top = int(x.max(initial=0)) if top is None else int(top)
    dt = np.uint8 if top < 1 << 8 else np.uint16 if top < 1 << 16 else np.uint32 if top < 1 << 32 else np.uint64
    per = 8 // np.dtype(dt).itemsize
    k = -(-x.shape[1] // per) * per
    out = np.zeros((x.shape[0], k), dtype=dt)
    out[:, :x.shape[1]] = x
    return out


_TAPS: Dict[Tuple[Any, ...], Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _taps_cached(*key: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`taps` of a layer geometry, made once per geometry."""
    hit = _TAPS.get(key)
    if hit is None:
        if len(_TAPS) > 64:
            _TAPS.clear()
        hit = _TAPS[key] = taps(*key)
    return hit
