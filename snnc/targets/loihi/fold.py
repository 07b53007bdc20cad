"""Pooling composed with the next (or previous) synapse into one exact Loihi synapse.

A SumPool2d (k x k, stride k, no padding) has no neurons of its own on Loihi: next to a Conv2d or
a [Flatten] Affine it is folded into that synapse, which then reads k*k times the synapses
(the compile report says so). Both compositions are exact.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from snnc.compiler.graph import Affine, AvgPool2d, Conv2d, Node, SumPool2d
from snnc.errors import SnncError


def fold_pool(name: str, pool: SumPool2d, nxt: Node, src_shape: Tuple[int, ...]) -> Tuple[Node, str]:
    """Compose ``pool`` (k x k, stride k, no padding) with the following Conv2d or Affine into one node.

    Conv2d: ``W'[o, c, k*i + a, k*j + b] = W[o, c, i, j]``, stride ``s*k``, padding ``p*k``; Affine after
    a Flatten: ``W'[o, (c, y, x)] = W[o, (c, y // k, x // k)]``, 0 on the rows/cols the pool drops
    (``H % k``). An AvgPool2d's ``1/k**2`` goes into the weights. Exact: the composed synapse sums the
    same inputs with the same weights. Returns the node and a compile-report note (synapse cost);
    raises SnncError where the composition would not be exact.
    """
    kh, kw = (int(x) for x in pool.kernel_size)
    k = kh
    if kh != kw or tuple(int(x) for x in pool.stride) != (k, k) or any(int(x) for x in pool.padding):
        raise SnncError(f"{pool.kind} kernel {tuple(pool.kernel_size)} stride {tuple(pool.stride)} padding "
                        f"{tuple(pool.padding)} before {nxt.kind}: only k x k, stride k, no padding compose",
                        node=name, hint="put a neuron between the pool and the next synapse")
    if len(src_shape) != 3:
        raise SnncError(f"{pool.kind} needs a (C, H, W) source, found {src_shape}", node=name)
    gain = 1.0 / (k * k) if isinstance(pool, AvgPool2d) else 1.0
    c, h, w = (int(x) for x in src_shape)
    hp, wp = h // k, w // k
    if isinstance(nxt, Conv2d):
        if tuple(int(x) for x in nxt.dilation) != (1, 1):
            raise SnncError(f"Conv2d dilation {tuple(nxt.dilation)} after {pool.kind}", node=name,
                            hint="a dilated conv after a pool does not compose into one strided conv")
        wt = np.asarray(nxt.weight, dtype=np.float64)
        ckh, ckw = wt.shape[2:]
        (sh, sw), (ph, pw) = (tuple(int(x) for x in nxt.stride), tuple(int(x) for x in nxt.padding))
        for size, pooled, kk, st, pd, axis in ((h, hp, ckh, sh, ph, "rows"), (w, wp, ckw, sw, pw, "cols")):
            n_out = (pooled + 2 * pd - kk) // st + 1
            # The composed conv's output size equals the pooled conv's (floor arithmetic, see tests); it
            # reads the H % k dropped rows only where the pooled conv reads its bottom/right padding.
            if size % k and st * (n_out - 1) + kk - 1 - pd >= pooled:
                raise SnncError(f"{pool.kind}(k={k}) drops {size % k} input {axis} that the composed conv "
                                f"(padding {pd * k}) would read in place of the conv's zero padding", node=name,
                                hint=f"make the input {axis} a multiple of {k} or the conv padding 0")
        composed = Conv2d(weight=np.repeat(np.repeat(wt, k, axis=2), k, axis=3) * gain,
                          bias=np.asarray(nxt.bias), stride=(sh * k, sw * k), padding=(ph * k, pw * k),
                          dilation=(1, 1), groups=int(nxt.groups))
        fan = int(np.prod(wt.shape[1:]))
        note = (f"{name}: {pool.kind}(k={k}) -> Conv2d composed into one Conv2d (kernel {ckh}x{ckw} -> "
                f"{ckh * k}x{ckw * k}, stride {(sh, sw)} -> {(sh * k, sw * k)}, padding {(ph, pw)} -> "
                f"{(ph * k, pw * k)}): each neuron reads k*k = {k * k}x more synapses (fan-in {fan} -> "
                f"{fan * k * k}), stored kernel {wt.size} -> {wt.size * k * k} weights")
        return composed, note
    assert isinstance(nxt, Affine)
    wt = np.asarray(nxt.weight, dtype=np.float64)
    if wt.shape[1] != c * hp * wp:
        raise SnncError(f"Affine with {wt.shape[1]} inputs after {pool.kind}(k={k}) of {src_shape} "
                        f"({c * hp * wp} values)", node=name)
    full = np.zeros((wt.shape[0], c, h, w))
    full[:, :, :hp * k, :wp * k] = np.repeat(np.repeat(wt.reshape(-1, c, hp, wp), k, axis=2), k, axis=3)
    composed = Affine(weight=full.reshape(wt.shape[0], -1) * gain, bias=np.asarray(nxt.bias))
    note = (f"{name}: {pool.kind}(k={k}) -> Flatten -> {nxt.kind} composed into one Affine ({wt.shape[1]} -> "
            f"{c * h * w} inputs): each neuron reads k*k = {k * k}x more synapses ({wt.size} -> "
            f"{wt.size * k * k} weights)" + (f"; the {h % k} row(s)/{w % k} col(s) the pool drops get weight 0"
                                             if h % k or w % k else ""))
    return composed, note


def fold_conv_pool(name: str, conv: Conv2d, pool: SumPool2d) -> Tuple[Conv2d, str]:
    """Compose ``conv`` followed by ``pool`` (k x k, stride k, no padding) into one Conv2d.

    ``W''[o, c, s*a + u, s*b + v] = sum over a, b in 0..k-1 of W[o, c, u, v]`` (s the conv stride), stride
    ``s*k``, same padding, bias ``k*k*b`` (an AvgPool2d's ``1/k**2`` goes into weights and bias). The
    output size is the pooled one (floor arithmetic; the rows/cols the pool drops are never computed),
    so this is exact. Returns the node and a compile-report note; raises SnncError otherwise.
    """
    k = int(pool.kernel_size[0])
    if tuple(int(x) for x in pool.kernel_size) != (k, k) or tuple(int(x) for x in pool.stride) != (k, k) or \
            any(int(x) for x in pool.padding):
        raise SnncError(f"{pool.kind} kernel {tuple(pool.kernel_size)} stride {tuple(pool.stride)} padding "
                        f"{tuple(pool.padding)} after Conv2d: only k x k, stride k, no padding compose",
                        node=name, hint="put a neuron between the conv and the pool")
    if tuple(int(x) for x in conv.dilation) != (1, 1):
        raise SnncError(f"Conv2d dilation {tuple(conv.dilation)} before {pool.kind}", node=name,
                        hint="a dilated conv before a pool does not compose into one strided conv")
    gain = 1.0 / (k * k) if isinstance(pool, AvgPool2d) else 1.0
    wt = np.asarray(conv.weight, dtype=np.float64)
    o, ci, kh, kw = wt.shape
    sh, sw = (int(x) for x in conv.stride)
    w2 = np.zeros((o, ci, sh * (k - 1) + kh, sw * (k - 1) + kw))
    for a in range(k):  # k*k shifted copies of the kernel (a loop over the pool window, not over synapses)
        for b in range(k):
            w2[:, :, sh * a:sh * a + kh, sw * b:sw * b + kw] += wt
    composed = Conv2d(weight=w2 * gain, bias=np.asarray(conv.bias, dtype=np.float64) * (k * k) * gain,
                      stride=(sh * k, sw * k), padding=tuple(int(x) for x in conv.padding), dilation=(1, 1),
                      groups=int(conv.groups))
    fan, fan2 = ci * kh * kw, ci * w2.shape[2] * w2.shape[3]
    note = (f"{name}: Conv2d -> {pool.kind}(k={k}) composed into one Conv2d (kernel {kh}x{kw} -> "
            f"{w2.shape[2]}x{w2.shape[3]}, stride {(sh, sw)} -> {(sh * k, sw * k)}): each neuron reads "
            f"{fan2 / fan:.3g}x more synapses (fan-in {fan} -> {fan2}; k*k = {k * k} pooled conv outputs)")
    return composed, note
