"""Compiled (numba) event-driven kernels for the Loihi reference simulator: synapse + CUBA LIF fused per layer.

One kernel, :func:`layer_run`, runs one dense / conv / pool layer of a chain over all steps: for
every sample (a contiguous range of samples per thread, see :func:`run_layer`) and step ``t`` it adds, for every input
that spiked at ``t - 1`` (Lava's one-step synaptic delay; step 0 sees nothing), that input's
weights into an integer accumulator, applies Lava's synapse output arithmetic and runs the
fixed-point LIF update, all in integers. Dense weights are laid out like a 1x1 convolution on a
(K, 1, 1) input; a dense step with many input spikes may instead do the dot product over all inputs
(see :func:`_sample`). Inputs that spiked are listed 8 at a time from uint64 words of 0/1 bytes
(``trailing_zeros``, numba's intrinsic in ``numba.cpython.unsafe.numbers``). The LIF step is
:func:`snnc.targets.loihi.chip.lif_step_of` built from the chip's int64 forms, with every wrap and
saturation applied unconditionally, so exactness does not rest on bounds; the synapse output:

* dense: ``a = sum`` (int64) shifted by ``weight_exp`` (left: modulo 2**64, whose low 32 bits are
  the true value's; right: arithmetic, i.e. floor), wrapped to int32, then ``a << 6`` wrapped to
  int32; conv/pool: ``a = sum`` wrapped to 24 bits (``signed_clamp``), then ``a << 6``.

Conv accumulators are channels-last (y, x, out channel) so the innermost loop over a kernel tap's
output channels is contiguous; spikes and states are written in the layer's C order (out channel,
y, x). :class:`KernelLayer` lays a prepared layer out for the kernel once per network and
:func:`run_chain` runs a chain layer by layer.

numba is imported here at module import; the simulator imports this module only when it uses the
kernel path (the Lava worker's Python 3.10 venv has no numba: there the simulator keeps its numpy
engine). Compiled code is cached on disk (``cache=True``): the first call in a fresh environment
compiles for a few seconds, later processes load it. numba's cache does not see edits to
:mod:`snnc.targets.loihi.chip` (the LIF arithmetic it inlines): after changing that file, delete
``snnc/targets/loihi/__pycache__/kernels*.nbi``/``.nbc`` (the numba-vs-numpy tests fail until then).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import numpy as np

from snnc.parallel import get_threads, run_split, set_threads  # noqa: F401 (get/set_threads: this module's API)
from snnc.targets.loihi import chip
from snnc.targets.loihi.engine_common import PreparedLayer, SimResult

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


_wrap = njit(inline="always")(chip.wrap_int)


@njit(inline="always")
def _wrap32(x):  # type: ignore[no-untyped-def]
    """Lava's int32 wrap of an int64 (:func:`snnc.targets.loihi.chip.wrap_int` at 32 bits)."""
    return _wrap(x, 32)


#: The chip's CUBA LIF step in int64 (every wrap and the saturation always applied).
_lif = njit(inline="always")(chip.lif_step_of(njit(inline="always")(chip.decay_int), _wrap32,
                                              njit(inline="always")(chip.wrap_u), njit(inline="always")(chip.saturate_v)))


@njit(cache=True, nogil=True)
def _lif_step(accb, ub, vb, sb, bias, mode, wexp, du, dv, vth):  # type: ignore[no-untyped-def]
    """Synapse output arithmetic and one LIF step of one sample, in place (channels-last)."""
    sl = wexp if wexp > 0 else 0
    sr = -wexp if wexp < 0 else 0
    for q in range(accb.shape[0]):  # ``sb`` may be longer (zero padding): left alone
        a = np.int64(accb[q])
        if mode == 0:  # dense: shift (left: mod 2**64, low 32 bits exact; right: floor), int32, << 6, int32
            a = _wrap32(_wrap32((a << sl) >> sr) << chip.INPUT_SHIFT)
        else:  # conv: signed_clamp to 24 bits, << 6 (fits int32)
            a = _wrap(a, chip.STATE_BITS) << chip.INPUT_SHIFT
        u, v, s = _lif(ub[q], vb[q], a, bias[q], du, dv, vth)
        ub[q] = u
        vb[q] = v
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
def _sample(xw, wr, wt, fan, ytab, ztab, out_w, in_c, cg, og, mode, wexp, du, dv, bias, vth,
            accb, ub, vb, sw, idx, sob, rub, rvb, record, out_off, n_valid):  # type: ignore[no-untyped-def]
    """Run one sample of one layer over all steps; return (output spikes, synops).

    ``xw`` (T, Kp / 8) uint64: the input spikes as 0/1 bytes (zero padded to a multiple of 8),
    read 8 at a time. ``sw`` (Np / 8) uint64 views the step's spikes (channels-last, padding zero)
    as a uint8 array ``sb`` does in :func:`_lif_step`; ``sob`` (T, Np) uint8 receives them in C
    order and must start zeroed. ``idx``: int64 scratch of at least max(Kp, Np) entries. ``wt``
    (N, Kp): a dense layer's weights transposed and zero padded, or (0, 0) when absent: then a
    step whose spike list would cost more than a full dot product (a cost model of the two loops,
    per spike ``8 + 0.06 * outputs`` against ``0.025`` per weight; measured: ``benchmarks/README.md``) sums
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
        _lif_step(accb, ub, vb, sb, bias, mode, wexp, du, dv, vth)
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
def layer_run(b0, b1, xw, wr, wt, fan, ytab, ztab, out_w, in_c, cg, og, mode, wexp, du, dv, bias, vth,
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
            s_c, syn_c = _sample(xw[b], wr[c], wt[c], fan, ytab, ztab, out_w, in_c, cg, og, mode, wexp, du,
                                 dv, bias[c], vth, acc[b], u[b, c], v[b, c], spkw[b], idx[b], s_out[b], rub, rvb,
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


def run_layer(*args: Any) -> None:
    """Run :func:`layer_run` on all samples, split into contiguous ranges over threads (:func:`snnc.parallel.run_split`)."""
    run_split(layer_run, int(args[0].shape[0]), *args)


def round8(n: int) -> int:
    """Return ``n`` rounded up to a multiple of 8 (spike buffers are read 8 bytes at a time)."""
    return -(-int(n) // 8) * 8


def pad8(x: np.ndarray) -> np.ndarray:
    """Return (B, T, K) uint8 ``x`` C-contiguous, last axis zero padded to a multiple of 8 (no copy if it is)."""
    k = x.shape[2]
    kp = round8(k)
    if kp == k and x.flags.c_contiguous:
        return x
    out = np.zeros(x.shape[:2] + (kp,), dtype=np.uint8)
    out[:, :, :k] = x
    return out


#: None, or a byte size: a dense layer whose weights take more bytes runs in chunks of outputs of about
#: this size (each chunk's weights stay in cache over all steps of a sample). Off by default: chunks
#: were slower than none where measured (``benchmarks/README.md``, "Tried and not kept").
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
    du: int
    dv: int
    bias: np.ndarray  # (chunks, chunk) int64, channels-last, zero padded
    vth: int
    acc_dtype: Any  # int32 when every sum fits, else int64

    @property
    def chunk(self) -> int:
        """Neurons per chunk (conv: all of them)."""
        return int(self.bias.shape[1])

    @classmethod
    def of(cls, pl: PreparedLayer, chunk_bytes: Optional[int] = None) -> "KernelLayer":
        """Lay out a prepared dense / conv / pool layer for the kernel (dense: in output chunks)."""
        ly = pl.layer
        assert pl.w_eff is not None and pl.fan is not None
        w = pl.w_eff
        bias = ly.effective_bias().astype(np.int64)
        zero = np.zeros((1, 1), dtype=np.int64)
        lo, hi = (int(w.min()), int(w.max())) if w.size else (0, 0)
        wdt = np.int16 if -(1 << 15) <= lo and hi < (1 << 15) else np.int32  # validated: within int32
        bound = float(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0.0
        acc_dtype = np.int32 if bound <= chip.INT32_RANGE[1] else np.int64
        fan = pl.fan.astype(np.int64)
        kp = round8(fan.shape[0])
        fan = np.pad(fan, (0, kp - fan.shape[0]))  # inputs are padded to a multiple of 8
        if ly.kind == "dense":
            n, k = w.shape
            budget = KERNEL_CHUNK_BYTES if chunk_bytes is None else chunk_bytes
            n_chunks = 1 if budget is None else max(1, -(-(k * n * np.dtype(wdt).itemsize) // max(budget, 1)))
            chunk = -(-(-(-n // n_chunks)) // 16) * 16 if n_chunks > 1 else round8(n)
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
                   int(ly.du), int(ly.dv), bias, int(ly.vth_mant) << chip.INPUT_SHIFT, acc_dtype)


def run_chain(layers: List[PreparedLayer], klayers: List[Optional[KernelLayer]], input_shape: Tuple[int, ...],
              x: np.ndarray, record_states: bool = False) -> SimResult:
    """Run a chain through the compiled kernels, batch-major (B, T, ...) throughout.

    ``klayers[i]``: layer ``i`` laid out by :meth:`KernelLayer.of` (None for a flatten layer).

    Every layer's spikes live in a (B, T, Np) uint8 buffer, ``Np`` = its neuron count rounded up
    to a multiple of 8 (zero padding), so the next layer can skip all-zero 8-byte words; results
    are views of it.
    """
    b, t_steps = x.shape[:2]
    res = SimResult(spikes=[], u=[], v=[], spike_counts=[], synops=[], weight_reports=[],
                    meta={"batch": b, "steps": t_steps, "simulator": "snnc.loihi.reference", "engine": "numba"})
    padded: List[np.ndarray] = []  # per layer: its spikes (B, T, Np) uint8, flatten: its source's
    k_in = int(np.prod(input_shape))
    x_pad = pad8(x.reshape(b, t_steps, k_in).view(np.uint8))
    dummy = np.zeros((1, 1, 1), dtype=np.int32)
    for pl, kl in zip(layers, klayers):
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
        n_pad = round8(n)
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
        run_layer(src.view(np.uint64), kl.wr, kl.wt, kl.fan, kl.ytab, kl.ztab, *kl.geometry, kl.du, kl.dv, kl.bias,
                  kl.vth, n, np.empty((b, ch), dtype=kl.acc_dtype), np.empty((b, n_chunks, ch), dtype=np.int64),
                  np.empty((b, n_chunks, ch), dtype=np.int64), spkw,
                  np.empty((b, max(src.shape[2], 8 * spkw.shape[1])), dtype=np.int64), s_out, rec_u, rec_v,
                  bool(record_states), counts, synops)
        padded.append(s_out)
        res.spikes.append(s_out.view(bool)[:, :, :n].reshape(shape))
        res.u.append(rec_u.reshape(shape) if record_states else None)
        res.v.append(rec_v.reshape(shape) if record_states else None)
        res.spike_counts.append(counts)
        res.synops.append(synops)
    return res
