"""Compiled (numba) event-driven kernels for the Loihi reference simulator: synapse + CUBA LIF fused per layer.

One kernel, :func:`layer_run`, runs one dense / conv / pool layer of a chain over all steps: for
every sample (a contiguous range of samples per thread, see :func:`run_layer`) and step ``t`` it adds, for every input
that spiked at ``t - 1`` (Lava's one-step synaptic delay; step 0 sees nothing), that input's
weights into an integer accumulator, applies Lava's synapse output arithmetic and runs the
fixed-point LIF update, all in integers. Dense weights are laid out like a 1x1 convolution on a
(K, 1, 1) input; a dense step with many input spikes may instead do the dot product over all inputs
(see :func:`_sample`). Inputs that spiked are listed 8 at a time from uint64 words of 0/1 bytes
(``trailing_zeros``, numba's intrinsic in ``numba.cpython.unsafe.numbers``). The arithmetic is exactly :mod:`snnc.targets.loihi.simulator`'s (see its module
docstring), but every wrap and saturation is applied unconditionally, so exactness does not rest on
bounds:

* dense: ``a = sum`` (int64) shifted by ``weight_exp`` (left: modulo 2**64, whose low 32 bits are
  the true value's; right: arithmetic, i.e. floor), wrapped to int32, then ``a << 6`` wrapped to
  int32; conv/pool: ``a = sum`` wrapped to 24 bits (``signed_clamp``), then ``a << 6``;
* ``u = wrap32(trunc(u * (4096 - du) / 4096) + (a << 6))``, then once: ``u > 2**23`` loses
  ``2**24``, ``u <= -2**23`` gains ``2**24``;
* ``v = clip(wrap32(trunc(v * (4096 - dv) / 4096) + u + bias), -2**23 + 1, 2**23 - 1)``; spike
  when ``v > vth_mant << 6``, then ``v = 0``.

``trunc(x * (4096 - d) / 4096)`` is computed as ``sign(p) * (|p| >> 12)`` with ``p = x * (4096 - d)``
in int64 (|p| < 2**44), as Lava does. Conv accumulators are channels-last (y, x, out channel) so the
innermost loop over a kernel tap's output channels is contiguous; spikes and states are written in
the layer's C order (out channel, y, x).

numba is imported here at module import; :mod:`snnc.targets.loihi.simulator` imports this module
only when it uses the kernel path (the Lava worker's Python 3.10 venv has no numba: there the
simulator keeps its numpy path). Compiled code is cached on disk (``cache=True``): the first call
in a fresh environment compiles for a few seconds, later processes load it.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List

import numpy as np

try:  # numba is optional: without it this module imports but AVAILABLE is False
    from numba import njit
    from numba.cpython.unsafe.numbers import trailing_zeros

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only in the Lava venv
    AVAILABLE = False
    trailing_zeros = None

    def njit(*args: Any, **kwargs: Any) -> Any:  # type: ignore[no-redef]
        """Stand-in decorator when numba is absent: the function stays plain Python (never called)."""
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

#: ``mode`` argument of :func:`layer_run`.
MODE_DENSE = 0
MODE_CONV = 1


@njit(inline="always")
def _wrap32(x):  # type: ignore[no-untyped-def]
    """Two's-complement int32 wrap of an int64."""
    return ((x + 2147483648) & 4294967295) - 2147483648


@njit(inline="always")
def _decay(x, keep):  # type: ignore[no-untyped-def]
    """``trunc(x * keep / 4096)`` in int64, as Lava's ``sign(p) * (|p| >> 12)``."""
    p = x * keep
    q = np.abs(p) >> 12
    return -q if p < 0 else q


@njit(cache=True, nogil=True)
def _lif_step(accb, ub, vb, sb, bias, mode, wexp, keep_u, keep_v, vth):  # type: ignore[no-untyped-def]
    """Synapse output arithmetic and one LIF step of one sample, in place (channels-last)."""
    sl = wexp if wexp > 0 else 0
    sr = -wexp if wexp < 0 else 0
    for q in range(accb.shape[0]):  # ``sb`` may be longer (zero padding): left alone
        a = np.int64(accb[q])
        if mode == 0:  # dense: shift (left: mod 2**64, low 32 bits exact; right: floor), int32, << 6, int32
            a = _wrap32(_wrap32((a << sl) >> sr) << 6)
        else:  # conv: signed_clamp to 24 bits, << 6 (fits int32)
            a = (((a + 8388608) & 16777215) - 8388608) << 6
        uu = _wrap32(_decay(ub[q], keep_u) + a)
        uu = uu - 16777216 if uu > 8388608 else uu
        uu = uu + 16777216 if uu <= -8388608 else uu
        ub[q] = uu
        vv = _wrap32(_decay(vb[q], keep_v) + uu + bias[q])
        vv = min(max(vv, -8388607), 8388607)
        s = vv > vth
        vb[q] = 0 if s else vv
        sb[q] = s


@njit(inline="always")
def _spike_list(xw, idx):  # type: ignore[no-untyped-def]
    """Write the indices of the non-zero bytes of ``xw`` (uint64 words of 0/1 bytes) to ``idx``; return their count.

    Zero words are skipped; in the others each set byte is found with a trailing-zero count
    (little-endian: byte ``j`` of word ``i`` is input ``8 * i + j``, its bit ``8 * j``).
    """
    m = 0
    for kq in range(xw.shape[0]):
        w = xw[kq]
        while w != 0:
            idx[m] = kq * 8 + (trailing_zeros(w) >> 3)
            m += 1
            w &= w - np.uint64(1)
    return m


@njit(cache=True, nogil=True)
def _sample(xw, wr, wt, fan, ytab, ztab, out_w, in_c, cg, og, mode, wexp, keep_u, keep_v, bias, vth,
            accb, ub, vb, sw, idx, sob, rub, rvb, record, out_off, n_valid):  # type: ignore[no-untyped-def]
    """Run one sample of one layer over all steps; return (output spikes, synops).

    ``xw`` (T, Kp / 8) uint64: the input spikes as 0/1 bytes (zero padded to a multiple of 8),
    read 8 at a time. ``sw`` (Np / 8) uint64 views the step's spikes (channels-last, padding zero)
    as a uint8 array ``sb`` does in :func:`_lif_step`; ``sob`` (T, Np) uint8 receives them in C
    order and must start zeroed. ``idx``: int64 scratch of at least max(Kp, Np) entries. ``wt``
    (N, Kp): a dense layer's weights transposed and zero padded, or (0, 0) when absent: then a
    step whose spike list would cost more than a full dot product (a cost model of the two loops
    measured on AMD EPYC: ~8 ns + 0.06 ns per output per spike against 0.025 ns per weight) sums
    ``x[k] * w[o, k]`` over all inputs instead, in ``accb``'s dtype. A dense layer may be run
    in chunks of its outputs (one call per chunk, so the chunk's weights stay in cache over all
    steps): neuron ``q`` of the chunk is output ``out_off + q``; only the first ``n_valid`` are
    real (the rest have zero weights and bias, and are never written out).
    """
    use_dot = mode == 0 and wt.shape[0] > 0
    dot_cost = 0.025 * wt.shape[0] * wt.shape[1]
    spike_cost = 8.0 + 0.06 * og
    nt = xw.shape[0]
    kh = wr.shape[1]
    kw = wr.shape[2]
    in_h = ytab.shape[0]
    in_w = ztab.shape[0]
    hw_in = in_h * in_w
    n_out = accb.shape[0]
    sb = sw.view(np.uint8)
    p_out = 1
    o_all = n_out
    if mode == 1:
        o_all = wr.shape[3] * (in_c // cg)
        p_out = n_out // o_all
    ub[:] = 0
    vb[:] = 0
    n_spk = 0
    n_syn = 0
    for t in range(nt):
        accb[:] = 0
        if t > 0:
            dense_step = False
            if use_dot:  # count the spikes (vectorised byte sum) to pick the cheaper loop
                xin = xw[t - 1].view(np.uint8)
                cnt = 0
                for k in range(xin.shape[0]):
                    cnt += xin[k]
                if cnt * spike_cost > dot_cost:
                    dense_step = True
                    for k in range(xin.shape[0]):
                        n_syn += xin[k] * fan[k]
                    for o in range(og):
                        sacc = accb[o]  # zero, of the accumulator's dtype
                        for k in range(wt.shape[1]):
                            sacc += xin[k] * wt[o, k]
                        accb[o] = sacc
            m = 0 if dense_step else _spike_list(xw[t - 1], idx)
            if mode == 0:  # two weight rows per pass: half the accumulator loads and stores
                mm = 0
                while mm + 1 < m:
                    k1 = idx[mm]
                    k2 = idx[mm + 1]
                    n_syn += fan[k1] + fan[k2]
                    for o in range(og):
                        accb[o] += wr[k1, 0, 0, o] + wr[k2, 0, 0, o]
                    mm += 2
                if mm < m:
                    k = idx[mm]
                    n_syn += fan[k]
                    for o in range(og):
                        accb[o] += wr[k, 0, 0, o]
                m = 0
            for mm in range(m):
                k = idx[mm]
                n_syn += fan[k]
                if mode == 0:
                    for o in range(og):
                        accb[o] += wr[k, 0, 0, o]
                else:
                    c = k // hw_in
                    r = k - c * hw_in
                    y = r // in_w
                    z = r - y * in_w
                    obase = (c // cg) * og
                    for i in range(kh):
                        oy = ytab[y, i]
                        if oy < 0:
                            continue
                        for j in range(kw):
                            oz = ztab[z, j]
                            if oz < 0:
                                continue
                            dst = (oy * out_w + oz) * o_all + obase
                            for o in range(og):
                                accb[dst + o] += wr[c, i, j, o]
        _lif_step(accb, ub, vb, sb, bias, mode, wexp, keep_u, keep_v, vth)
        # ---- write the spikes in C order (channel, y, x)
        so = sob[t]
        m = _spike_list(sw, idx)
        for mm in range(m):
            q = idx[mm]
            if q < n_valid:
                p = q // o_all
                so[out_off + (q - p * o_all) * p_out + p] = 1
                n_spk += 1
        if record:
            ru = rub[t]
            rv = rvb[t]
            for p in range(p_out):
                base = p * o_all
                for o in range(min(o_all, n_valid)):
                    ru[out_off + o * p_out + p] = ub[base + o]
                    rv[out_off + o * p_out + p] = vb[base + o]
    if nt > 0:  # the last step's input spikes count as synops too (delivered after the run)
        m = _spike_list(xw[nt - 1], idx)
        for mm in range(m):
            n_syn += fan[idx[mm]]
    return n_spk, n_syn


@njit(cache=True, nogil=True)
def layer_run(b0, b1, xw, wr, wt, fan, ytab, ztab, out_w, in_c, cg, og, mode, wexp, keep_u, keep_v, bias, vth,
              n_neurons, acc, u, v, spkw, idx, s_out, rec_u, rec_v, record, counts, synops
              ):  # type: ignore[no-untyped-def]
    """Run one layer over samples ``b0 .. b1 - 1`` and all steps; fills those samples' outputs.

    ``xw`` (B, T, Kp / 8) uint64: the input spikes as 0/1 bytes, zero padded to ``Kp`` = a
    multiple of 8 >= C*H*W (a uint64 view of a (B, T, Kp) uint8 array). Per output chunk ``c``
    (conv: one chunk): ``wr[c]`` (C, kh, kw, og) weights (input channel, tap, output channel
    within the input channel's group; dense: (K, 1, 1, chunk)), ``wt[c]`` see :func:`_sample`,
    ``bias[c]`` (chunk,) int64 channels-last. ``fan``: (Kp,) int64 synops per input spike;
    ``ytab`` (H, kh) / ``ztab`` (W, kw): the output row / column an input row / column reaches
    through each kernel tap, -1 if none (dense: (1, 1) zeros); ``out_w``: output columns;
    ``n_neurons``: N. Scratch: ``acc`` (B, chunk) int32/int64, ``u``, ``v`` (B, chunks, chunk)
    int64, ``spkw`` (B, ceil(chunk / 8)) uint64 zeros, ``idx`` (B, max(Kp, 8 * spkw.shape[1]))
    int64. Outputs: ``s_out`` (B, T, Np) uint8 zeros (spikes written in C order),
    ``rec_u``/``rec_v`` (B, T, N) int32 (written when ``record``), ``counts``/``synops`` (B,) int64.
    """
    n_chunks = wr.shape[0]
    chunk = u.shape[2]
    for b in range(b0, b1):
        rub = rec_u[b] if record else rec_u[0]
        rvb = rec_v[b] if record else rec_v[0]
        n_spk = 0
        n_syn = 0
        for c in range(n_chunks):
            s_c, syn_c = _sample(xw[b], wr[c], wt[c], fan, ytab, ztab, out_w, in_c, cg, og, mode, wexp, keep_u,
                                 keep_v, bias[c], vth, acc[b], u[b, c], v[b, c], spkw[b], idx[b], s_out[b], rub, rvb,
                                 record, c * chunk, min(chunk, n_neurons - c * chunk))
            n_spk += s_c
            if c == 0:
                n_syn = syn_c
        counts[b] = n_spk
        synops[b] = n_syn


def tap_table(n_in: int, n_out: int, k: int, stride: int, pad: int, dil: int) -> np.ndarray:
    """Return (n_in, k) int64: the output index input index ``y`` reaches through tap ``i``, -1 if none.

    Output ``oy`` reads input ``oy * stride - pad + i * dil`` through tap ``i`` (cross-correlation).
    """
    y = np.arange(n_in)[:, None] + pad - np.arange(k)[None, :] * dil
    oy = np.where(y >= 0, y // stride, -1)
    ok = (y >= 0) & (y % stride == 0) & (oy < n_out)
    return np.where(ok, oy, -1).astype(np.int64)


_THREADS = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)]
_POOL: List[Any] = [None, -1]  # (executor, pid that made it): a forked child makes its own
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    with _POOL_LOCK:
        if _POOL[1] != os.getpid():
            _POOL[0] = ThreadPoolExecutor(max_workers=max(_THREADS[0] - 1, 1), thread_name_prefix="snnc-loihi")
            _POOL[1] = os.getpid()
        return _POOL[0]


def run_layer(*args: Any) -> None:
    """Run :func:`layer_run` on all samples, split into contiguous ranges over threads.

    The kernel is compiled with ``nogil`` and without numba's own threading layer, so calls from
    several Python threads run concurrently and a forked child process can run it too (numba's
    OpenMP layer terminates a child forked after it ran). The calling thread takes the first range.
    """
    batch = int(args[0].shape[0])
    n = min(_THREADS[0], batch)
    if n <= 1:
        layer_run(0, batch, *args)
        return
    edges = [batch * i // n for i in range(n + 1)]
    pool = _pool()
    futures = [pool.submit(layer_run, edges[i], edges[i + 1], *args) for i in range(1, n)]
    try:
        layer_run(edges[0], edges[1], *args)
    finally:
        for f in futures:
            f.result()


def get_threads() -> int:
    """Return how many threads (samples in parallel) the kernels use."""
    return _THREADS[0]


def set_threads(n: int) -> None:
    """Set how many threads (samples in parallel) the kernels use; default: the CPUs this process may use."""
    _THREADS[0] = max(1, int(n))
    with _POOL_LOCK:
        if _POOL[0] is not None and _POOL[1] == os.getpid():
            _POOL[0].shutdown(wait=False)
        _POOL[0], _POOL[1] = None, -1
