"""Shared helpers for the test_loihi_* tests: random integer networks and a literal Lava port.

The literal port takes from a network only what is handed to Lava's processes (raw weight mantissas,
``weight_exp``, ``num_weight_bits``, sign mode, ``du``/``dv``/``vth``/``bias_mant``/``bias_exp``) and
applies Lava's own conversions itself (:func:`lava_dense_weights`, :func:`lava_bias`), written from
lava/utils/weightutils.py and lava/proc/{dense,conv,lif}/models.py, not from snnc's code under test.
"""
from __future__ import annotations

import functools
import subprocess
from typing import Any, List, Optional, Tuple

import numpy as np

from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork


def random_dense_chain(rng: np.random.Generator, sizes: List[int], regime: str = "normal") -> LoihiNetwork:
    """Return a dense LIF chain with random integer parameters; ``regime`` pushes u/v to their limits."""
    layers = []
    for i in range(len(sizes) - 1):
        k, n = sizes[i], sizes[i + 1]
        mode = rng.choice(["mixed", "excitatory", "inhibitory"])
        lo, hi = {"mixed": (-300, 300), "excitatory": (0, 300), "inhibitory": (-300, 0)}[str(mode)]
        w = rng.integers(lo, hi + 1, (n, k))
        e = int(rng.integers(-4, 3))
        du, dv = int(rng.choice([0, 1, 100, 2000, 4095, 4096])), int(rng.choice([0, 1, 300, 4096]))
        vth = int(rng.integers(0, 4000))
        bias = rng.integers(-200, 200, n) if rng.random() < 0.7 else int(rng.integers(-50, 50))
        bexp = int(rng.integers(0, 8))
        if regime == "wrap_u":
            e, du, mode, w = 7, int(rng.choice([0, 1, 5])), "mixed", rng.integers(-256, 256, (n, k))
            vth = (1 << 17) - 1
        elif regime == "saturate_v":
            dv, bias, bexp, vth = 0, rng.integers(2000, 4000, n), 7, (1 << 17) - 1
        elif regime == "int32":
            e, w, mode = 16, rng.integers(-256, 256, (n, k)), "mixed"
        layers.append(LoihiLayer.dense(f"fc{i}", w, source=i - 1, weight_exp=e,
                                       num_weight_bits=int(rng.integers(1, 9)), sign_mode=str(mode), du=du, dv=dv,
                                       vth_mant=vth, bias_mant=bias, bias_exp=bexp))
    return LoihiNetwork((sizes[0],), layers)


def random_conv_net(rng: np.random.Generator) -> LoihiNetwork:
    """Return conv -> pool -> flatten -> dense with random strides, paddings, dilations and groups."""
    g = int(rng.choice([1, 2]))
    c = 2 * int(rng.integers(1, 3))
    o = g * int(rng.integers(1, 3))
    h, w = int(rng.integers(6, 11)), int(rng.integers(6, 11))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    c1 = LoihiLayer.conv("c1", rng.integers(-128, 128, (o, c // g, kh, kw)), (c, h, w), source=-1,
                         stride=tuple(rng.integers(1, 3, 2)), padding=tuple(rng.integers(0, 2, 2)),
                         dilation=tuple(rng.integers(1, 3, 2)), groups=g, du=int(rng.integers(0, 4097)),
                         dv=int(rng.integers(0, 4097)), vth_mant=int(rng.integers(0, 300)),
                         bias_mant=int(rng.integers(-20, 20)), bias_exp=int(rng.integers(0, 8)))
    pk = min(int(rng.integers(1, 3)), *c1.output_shape[1:])
    p = LoihiLayer.pool("p1", c1.output_shape, pk, int(rng.integers(1, 100)), source=0,
                        du=int(rng.integers(0, 4097)), dv=int(rng.integers(0, 4097)), vth_mant=int(rng.integers(0, 200)))
    f = LoihiLayer.flatten("f", p.output_shape, source=1)
    d = LoihiLayer.dense("fc", rng.integers(-256, 256, (5, f.output_shape[0])), source=2,
                         du=int(rng.integers(0, 4097)), dv=int(rng.integers(0, 4097)), vth_mant=int(rng.integers(0, 500)),
                         bias_mant=rng.integers(-100, 100, 5), bias_exp=int(rng.integers(0, 8)))
    return LoihiNetwork((c, h, w), [c1, p, f, d])


def random_spikes(rng: np.random.Generator, net: LoihiNetwork, batch: int, steps: int,
                  density: Optional[float] = None) -> np.ndarray:
    """Return binary input spikes (batch, steps, *input_shape)."""
    p = float(rng.uniform(0.05, 0.6)) if density is None else density
    return rng.random((batch, steps) + tuple(net.input_shape)) < p


def lava_dense_weights(weights: np.ndarray, sign_mode: str, num_weight_bits: int) -> np.ndarray:
    """Lava Dense's weights after its first ``run_spk``: ``clip_weights(w, sign_mode, num_bits=8)`` then
    ``truncate_weights(w, sign_mode, num_weight_bits)`` (lava/utils/weightutils.py), int32 like Lava."""
    mixed, inhibitory = int(sign_mode == "mixed"), int(sign_mode == "inhibitory")
    w = np.array(weights).astype(np.int32)  # clip_weights
    if inhibitory:
        w = -w
    w = np.clip(w, (-2 ** 8) * mixed, 2 ** 8 - 1)
    if inhibitory:
        w = -w
    w = w.copy().astype(np.int32)  # truncate_weights (max_num_weight_bits = 8)
    if inhibitory:
        w = -w
    n = 8 - int(num_weight_bits) + mixed
    w = (w >> n) << n
    if inhibitory:
        w = -w
    return w


def lava_bias(ly: LoihiLayer) -> np.ndarray:
    """What Lava's fixed-point LIF adds to v per step: ``bias_mant << bias_exp`` on every neuron (int32)."""
    mant = np.broadcast_to(np.asarray(ly.bias_mant), tuple(ly.output_shape))
    return np.left_shift(mant.astype(np.int16).astype(np.int32), int(ly.bias_exp))


def lava_weights(ly: Any) -> np.ndarray:
    """The weights a Dense (clipped and truncated) or Conv (as given) process of this synapse computes with."""
    if ly.kind == "dense":
        return lava_dense_weights(ly.weights, ly.sign_mode, ly.num_weight_bits)
    return np.asarray(ly.weights).astype(np.int64)


def literal_lava(net: LoihiNetwork, spikes: np.ndarray) -> Tuple[List[Any], List[Any], List[Any]]:
    """Step-by-step port of Lava's fixed_pt Dense/Conv/LIF processes wired as the network is (test oracle).

    Written to mirror lava/proc/{dense,conv,lif}/models.py line by line, with Lava's int32 dtypes,
    rather than to be fast; chains and general graphs (several inputs, recurrence) alike.

    Each step: every LIF receives the sum (int32) of its synapses' buffers, updates and spikes; then
    every synapse computes its buffer from its source's spikes of this step.
    """
    b, t_steps = spikes.shape[:2]
    layers = net.layers
    out_s = [np.zeros((b, t_steps) + tuple(ly.output_shape), dtype=bool) for ly in layers]
    out_u = [np.zeros((b, t_steps) + tuple(ly.output_shape), dtype=np.int32) for ly in layers]
    out_v = [np.zeros((b, t_steps) + tuple(ly.output_shape), dtype=np.int32) for ly in layers]
    u = {i: np.zeros((b,) + tuple(ly.output_shape), dtype=np.int32) for i, ly in enumerate(layers) if ly.has_neurons}
    v = {i: np.zeros_like(u[i]) for i in u}
    views = {(i, k): ly.synapse_view(k) for i, ly in enumerate(layers) if ly.has_neurons
             for k in range(len(ly.extra_inputs) + 1)}
    weights = {key: lava_weights(vw).astype(np.int32) for key, vw in views.items()}
    buf = {key: np.zeros((b,) + tuple(layers[key[0]].output_shape), dtype=np.int32) for key in views}
    for t in range(t_steps):
        cur = {-1: spikes[:, t]}
        for i in u:
            ly = layers[i]
            a_in = np.zeros(u[i].shape, dtype=np.int16)
            for k in range(len(ly.extra_inputs) + 1):
                a_in = a_in + buf[(i, k)]  # PyInPortVectorDense.recv: int32 sum of the connections
            decayed = np.int64(1) * u[i].astype(np.int64) * (4096 - ly.du)
            decayed = (np.sign(decayed) * np.right_shift(np.abs(decayed), 12)).astype(np.int32)
            decayed += np.left_shift(a_in, 6)
            wrapped = np.where(decayed > (1 << 23), decayed - 2 * (1 << 23), decayed)
            wrapped = np.where(wrapped <= -(1 << 23), decayed + 2 * (1 << 23), wrapped)
            u[i] = wrapped.astype(np.int32)
            dvol = v[i].astype(np.int64) * (4096 - ly.dv)
            dvol = (np.sign(dvol) * np.right_shift(np.abs(dvol), 12)).astype(np.int32)
            v[i] = np.clip(dvol + u[i] + lava_bias(ly), -(1 << 23) + 1, (1 << 23) - 1).astype(np.int32)
            s = v[i] > (ly.vth_mant << 6)
            v[i][s] = 0
            cur[i] = s
            out_s[i][:, t], out_u[i][:, t], out_v[i][:, t] = s, u[i], v[i]
        for i, ly in enumerate(layers):  # flatten views of this step's spikes
            if not ly.has_neurons:
                cur[i] = cur[ly.source].reshape((b,) + tuple(ly.output_shape))
                out_s[i][:, t] = cur[i]
        for (i, k), vw in views.items():
            s_in = cur[vw.source].reshape((b,) + tuple(vw.input_shape))
            w = weights[(i, k)]
            if vw.kind == "dense":
                acc = np.stack([w[:, s_in[j].reshape(-1).astype(bool)].sum(axis=1) for j in range(b)])
                e = vw.weight_exp
                acc = np.left_shift(acc, e) if e > 0 else np.right_shift(acc, -e)
                buf[(i, k)] = acc.astype(np.int32)
            else:
                acc = _literal_conv(s_in.astype(np.int64), w.astype(np.int64), vw)
                buf[(i, k)] = ((acc + (1 << 23)) % (1 << 24) - (1 << 23)).astype(np.int32)
    return out_s, out_u, out_v


def _literal_conv(x: np.ndarray, w: np.ndarray, ly: LoihiLayer) -> np.ndarray:
    """Direct cross-correlation (B, C, H, W) -> (B, O, H', W'), loops over outputs (slow, obvious)."""
    b = x.shape[0]
    o, oh, ow = ly.output_shape
    c = ly.input_shape[0]
    g = ly.groups
    cg, og = c // g, o // g
    kh, kw = ly.kernel_size
    (sh, sw), (ph, pw), (dh, dw) = ly.stride, ly.padding, ly.dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((b, o, oh, ow), dtype=np.int64)
    for oc in range(o):
        grp = oc // og
        for y in range(oh):
            for z in range(ow):
                patch = xp[:, grp * cg:(grp + 1) * cg, y * sh:y * sh + dh * (kh - 1) + 1:dh,
                           z * sw:z * sw + dw * (kw - 1) + 1:dw]
                out[:, oc, y, z] = (patch * w[oc]).reshape(b, -1).sum(axis=1)
    return out


@functools.lru_cache(maxsize=None)
def lava_missing_reason() -> str:
    """Return why Lava cannot run here ("" when it can): checked once per test session."""
    from snnc.targets.loihi.lava_backend import lava_in_process, lava_python

    if lava_in_process():
        return ""
    py = lava_python()
    if not py.exists():
        return f"no Lava interpreter at {py}"
    r = subprocess.run([str(py), "-c", "import lava.proc.lif.models, lava.proc.conv.models"],
                       capture_output=True, text=True, timeout=120)
    return "" if r.returncode == 0 else f"Lava does not import in {py}: {r.stderr.strip()[-300:]}"


def lava_worker_pids() -> list:
    """Return pids whose command line runs snnc's Lava worker (Lava's forked helpers included)."""
    import os

    from snnc.targets.loihi.lava_backend import WORKER_PATH

    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                cmd = fh.read().decode(errors="replace")
        except OSError:
            continue
        if str(WORKER_PATH) in cmd and "snnc-lava-" in cmd:
            pids.append(int(d))
    return pids


def assert_states_equal(ref: Any, other: Any) -> None:
    """Assert two run results have equal spikes, u and v in every recorded layer (integer equality)."""
    assert set(ref.states) == set(other.states), (sorted(ref.states), sorted(other.states))
    for name, st in ref.states.items():
        for key in ("spikes", "u", "v"):
            np.testing.assert_array_equal(st[key], other.states[name][key], err_msg=f"{name}.{key}")
