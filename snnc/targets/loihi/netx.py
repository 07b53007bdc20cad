"""Write and read lava-dl netx HDF5 network files (``.net``) for a :class:`LoihiNetwork`.

Layout (what lava-dl 0.6's ``lava/lib/dl/netx/hdf5.py`` reads; checked against that file and
``netx/utils.py``): a group ``layer`` with children ``"0"``, ``"1"``, ...; each has ``type``
(``S10`` bytes, shape (1,)): ``input`` (``shape`` only), ``flatten``, ``dense`` or ``conv``. Dense
and conv layers hold ``shape`` (PyTorch order: ``[N]`` or ``[C, H, W]``), ``weight`` (int;
dense ``(out, in)``, conv ``(out, in/groups, kh, kw)`` PyTorch cross-correlation, which netx flips
and transposes into Lava's ``(out, W, H, in)``), conv ``stride``/``padding``/``dilation`` as
``[h, w]`` and ``groups``, optional ``bias``, and a ``neuron`` group: ``type`` = ``CUBA``,
``iDecay``, ``vDecay``, ``vThMant``, ``refDelay``, ``gradedSpike``.

How netx turns that into Lava processes, and so what the reader reproduces:

* ``LIF(du=iDecay - 1, dv=vDecay, vth=vThMant, bias_mant=bias, bias_exp=6)``: our effective
  ``du`` is ``iDecay``; bias must be ``(bias_mant << bias_exp) >> 6`` exactly and fit int16.
* Dense weights are *effective* integer weights: netx runs ``optimize_weight_bits`` on them
  (mantissa = weight shifted left, negative exponent) so the neuron input is ``sum(weight)``. So a
  dense layer is representable iff ``w_eff * 2**weight_exp`` is an integer matrix that netx's
  optimisation maps back exactly (the writer checks this and raises otherwise).
* Conv weights go to Lava's ``Conv`` unchanged (no exponent).
* only chains: a layer with several inputs, a recurrent or skip connection, or a readout layer
  (output ``v``) cannot be written (:class:`UnsupportedError`; the compiled artifact then omits
  the ``.net`` and its report says why);
* ``pool``, ``average`` and ``concat`` raise NotImplementedError in netx: snnc writes a pool
  layer as a grouped ``conv`` and marks it with the attribute ``snnc_kind = "pool"``.

Files are byte-for-byte deterministic (no timestamps). netx keeps its h5py file open, so a process
that loaded a ``.net`` with netx cannot rewrite that path.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import numpy as np

from snnc.errors import InputError, UnsupportedError
from snnc.targets.loihi.chip import BIAS_MANT_RANGE_LAVA
from snnc.targets.loihi.network import (LoihiLayer, LoihiNetwork, determine_sign_mode,
                                        effective_dense_weights)

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
NETX_BIAS_EXP = 6


def netx_optimize_weight_bits(weight: np.ndarray) -> Tuple[np.ndarray, int, int, str]:
    """Port of ``lava.lib.dl.netx.utils.optimize_weight_bits`` (lava-dl 0.6), minus its silent clipping.

    Returns ``(mantissas, num_weight_bits, weight_exponent, sign_mode)`` exactly as netx computes
    them from the effective integer weights of a ``.net`` file; raises where netx would clip
    (printing a warning) or fail.
    """
    w = np.asarray(weight, dtype=np.int64)
    if w.size == 0 or (w.max() == 0 and w.min() == 0):
        raise UnsupportedError("an all-zero weight matrix makes netx's optimize_weight_bits fail (log2 of inf)")
    max_w, min_w = int(w.max()), int(w.min())
    if (max_w > 254 and min_w < 0) or (min_w < -256 and max_w > 0):
        raise UnsupportedError(f"weights [{min_w}, {max_w}] would be clipped by netx to [-256, 254]")
    if max_w < 0:
        sign_mode, is_signed = "inhibitory", 0
        scale = -256 / min_w
    elif min_w >= 0:
        sign_mode, is_signed = "excitatory", 0
        scale = 255 / max_w
    else:
        sign_mode, is_signed = "mixed", 1
        pos = 127 / max_w if max_w != 0 else np.inf
        neg = -128 / min_w
        scale = min(pos, neg)
    scale_bits = int(np.floor(np.log2(scale))) + is_signed
    if scale_bits < 0:
        raise UnsupportedError(f"weights [{min_w}, {max_w}] exceed netx's 8-bit range")
    n = 8
    while n > 0 and np.sum(np.abs(w / (2 ** n) - np.round(w / (2 ** n)))) != 0:
        n -= 1
    n -= is_signed
    num_weight_bits = 8 - scale_bits - n
    return np.left_shift(w, scale_bits), int(num_weight_bits), -scale_bits, sign_mode


def _dense_to_netx(ly: LoihiLayer) -> np.ndarray:
    """Return the netx effective weights of a dense layer, or raise when netx cannot express it exactly."""
    w_eff, _ = ly.effective_weights()
    e = ly.weight_exp
    if e >= 0:
        w_h = w_eff << e
    else:
        if np.any(w_eff % (1 << -e)):
            raise UnsupportedError(
                f"weight_exp={e} with weights not divisible by {1 << -e}: netx stores integer effective weights "
                "and cannot express the floor of a shifted sum", node=ly.name,
                hint="quantize with weight_exp >= 0 for netx export")
        w_h = w_eff >> -e
    mant, nwb, exp, _ = netx_optimize_weight_bits(w_h)
    sign = determine_sign_mode(mant)  # netx does not pass sign_mode; Lava's Dense determines it
    eff_n, _ = effective_dense_weights(mant, sign, nwb)
    if exp > 0 or not np.array_equal(eff_n, w_h << -exp):
        raise UnsupportedError("netx's weight optimisation would change this layer's weights", node=ly.name,
                               hint="use 8-bit effective weights (|w| <= 254 mixed, <= 255 excitatory)")
    return w_h


def _netx_bias(ly: LoihiLayer) -> np.ndarray:
    eff = ly.effective_bias()
    if np.any(eff % (1 << NETX_BIAS_EXP)):
        bad = int(np.count_nonzero(eff % (1 << NETX_BIAS_EXP)))
        raise UnsupportedError(f"{bad} bias value(s) (bias_mant << {ly.bias_exp}) are not multiples of 64: netx "
                               f"fixes bias_exp={NETX_BIAS_EXP}", node=ly.name, hint="quantize with bias_exp >= 6")
    b = eff >> NETX_BIAS_EXP
    if b.size and (b.min() < BIAS_MANT_RANGE_LAVA[0] or b.max() > BIAS_MANT_RANGE_LAVA[1]):
        raise UnsupportedError("bias >> 6 does not fit Lava's int16 bias_mant", node=ly.name)
    return b


def _group(parent: Any, name: str) -> Any:
    import h5py

    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


def _ds(g: Any, name: str, data: Any, dtype: Any = None) -> None:
    g.create_dataset(name, data=np.asarray(data, dtype=dtype), track_times=False)


def _type(g: Any, value: str) -> None:
    g.create_dataset("type", data=np.array([value.encode("ascii")], dtype="S10"), track_times=False)


def check_netx(net: LoihiNetwork) -> None:
    """Raise :class:`UnsupportedError` when ``net`` cannot be written as a netx file that runs identically."""
    prev_kind = "input"
    for i, ly in enumerate(net.layers):
        if ly.extra_inputs:
            raise UnsupportedError(f"netx files describe chains only; this layer sums {len(ly.extra_inputs) + 1} "
                                   "synaptic inputs", node=ly.name, hint="use the snnc artifact (sim / lava backends)")
        if ly.readout:
            raise UnsupportedError("netx has no non-spiking readout (its output is spikes, this layer's is v)",
                                   node=ly.name, hint="use the snnc artifact (sim / lava backends)")
        if ly.source != i - 1:
            raise UnsupportedError("netx files describe chains only (each layer reads the previous one)",
                                   node=ly.name)
        if prev_kind == "flatten" and ly.kind != "dense":
            raise UnsupportedError("netx applies a flatten only before a dense layer", node=ly.name)
        if ly.kind == "dense":
            _dense_to_netx(ly)
        if ly.has_neurons:
            _netx_bias(ly)
        if ly.delayed_bias:
            raise UnsupportedError(f"netx has no bias schedule; this layer's bias starts at step {ly.bias_onset_step}",
                                   node=ly.name, hint="use the snnc artifact (sim / lava backends)")
        prev_kind = ly.kind


def write_netx(net: LoihiNetwork, path: PathLike) -> Dict[str, Any]:
    """Write ``net`` as a lava-dl netx ``.net`` file at ``path``; return a small report."""
    import h5py

    check_netx(net)
    path = Path(path)
    with h5py.File(path, "w", libver="earliest") as f:
        f.attrs["snnc_format"] = "snnc.loihi.netx"
        f.attrs["snnc_name"] = net.name
        root = _group(f, "layer")
        g0 = _group(root, "0")
        _type(g0, "input")
        _ds(g0, "shape", net.input_shape, np.int64)
        for i, ly in enumerate(net.layers, start=1):
            g = _group(root, str(i))
            g.attrs["snnc_name"] = ly.name
            g.attrs["snnc_kind"] = ly.kind
            if ly.kind == "flatten":
                _type(g, "flatten")
                _ds(g, "shape", ly.output_shape, np.int64)
                continue
            if ly.kind == "dense":
                _type(g, "dense")
                _ds(g, "shape", ly.output_shape, np.int64)
                _ds(g, "weight", _dense_to_netx(ly), np.int64)
            else:
                assert ly.weights is not None
                _type(g, "conv")
                _ds(g, "shape", ly.output_shape, np.int64)
                _ds(g, "weight", ly.weights, np.int64)
                _ds(g, "stride", ly.stride, np.int64)
                _ds(g, "padding", ly.padding, np.int64)
                _ds(g, "dilation", ly.dilation, np.int64)
                _ds(g, "groups", ly.groups, np.int64)
            b = _netx_bias(ly)
            if np.any(b != 0):
                if len(ly.output_shape) == 3:
                    per_ch = b.reshape(b.shape[0], -1)
                    if np.all(per_ch == per_ch[:, :1]):
                        _ds(g, "bias", per_ch[:, 0], np.int64)  # netx broadcasts (C,) over W, H
                    else:
                        _ds(g, "bias", b.transpose(2, 1, 0), np.int64)  # netx wants (W, H, C)
                else:
                    _ds(g, "bias", b, np.int64)
            ng = _group(g, "neuron")
            _type(ng, "CUBA")
            _ds(ng, "iDecay", ly.du, np.int64)
            _ds(ng, "vDecay", ly.dv, np.int64)
            _ds(ng, "vThMant", ly.vth_mant, np.int64)
            _ds(ng, "refDelay", 1, np.int64)
            _ds(ng, "gradedSpike", False, np.bool_)
    return {"path": str(path), "layers": len(net.layers), "bytes": path.stat().st_size}


def _str(ds: Any) -> str:
    v = ds[()]
    if isinstance(v, np.ndarray) and v.shape:
        v = v[0]
    return v.decode("ascii") if isinstance(v, bytes) else str(v)


def read_netx(path: PathLike) -> LoihiNetwork:
    """Read a netx ``.net`` file (CUBA dense/conv chains) into the network netx would run in Lava."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise InputError(f"netx file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"cannot open netx file {path}: {exc}") from exc
    with f:
        if "layer" not in f:
            raise InputError("not a netx file: no 'layer' group", file=str(path))
        root = f["layer"]
        keys = sorted(root.keys(), key=int)
        layers: List[LoihiLayer] = []
        input_shape: Tuple[int, ...] = ()
        shape: Tuple[int, ...] = ()
        for k in keys:
            g = root[k]
            kind = _str(g["type"])
            name = str(g.attrs.get("snnc_name", f"layer{k}"))
            src = len(layers) - 1
            if kind == "input":
                if "neuron" in g:
                    raise UnsupportedError("netx input layers with neurons are not supported", file=str(path))
                input_shape = shape = tuple(int(s) for s in g["shape"][()])
                continue
            if kind == "flatten":
                ly = LoihiLayer.flatten(name, shape, source=src)
            elif kind in ("dense", "conv"):
                if "neuron" not in g:
                    raise UnsupportedError(f"layer {k} has no neuron group", file=str(path))
                ng = g["neuron"]
                ntype = _str(ng["type"])
                if ntype not in ("CUBA", "LOIHI"):
                    raise UnsupportedError(f"neuron type '{ntype}' (only CUBA LIF)", file=str(path), node=name)
                neuron = dict(du=int(ng["iDecay"][()]), dv=int(ng["vDecay"][()]), vth_mant=int(ng["vThMant"][()]),
                              bias_exp=NETX_BIAS_EXP)
                out_shape = tuple(int(s) for s in g["shape"][()])
                w = g["weight"][()].astype(np.int64)
                bias = g["bias"][()].astype(np.int64) if "bias" in g else np.zeros((), dtype=np.int64)
                if kind == "dense":
                    w = w.reshape(int(np.prod(out_shape)), -1)
                    mant, nwb, exp, _ = netx_optimize_weight_bits(w)
                    ly = LoihiLayer.dense(name, mant, source=src, weight_exp=exp, num_weight_bits=nwb,
                                          sign_mode=determine_sign_mode(mant), bias_mant=bias, **neuron)
                else:
                    w = w.reshape(w.shape[:4])
                    hw = lambda key, d: tuple(int(s) for s in np.broadcast_to(g[key][()], (2,))) if key in g else d  # noqa: E731
                    if bias.ndim == 3:
                        bias = bias.transpose(2, 1, 0)
                    elif bias.ndim == 1:
                        bias = np.broadcast_to(bias[:, None, None], out_shape).copy()
                    ly = LoihiLayer.conv(name, w, shape, source=src, stride=hw("stride", (1, 1)),
                                         padding=hw("padding", (0, 0)), dilation=hw("dilation", (1, 1)),
                                         groups=int(g["groups"][()]) if "groups" in g else 1, bias_mant=bias,
                                         kind="pool" if str(g.attrs.get("snnc_kind", "")) == "pool" else "conv",
                                         **neuron)
                    if ly.output_shape != out_shape:
                        raise InputError(f"layer {k}: shape {out_shape} does not match the conv's "
                                         f"{ly.output_shape}", file=str(path))
            else:
                raise UnsupportedError(f"netx layer type '{kind}' is not supported by snnc (nor, for pool/"
                                       "average/concat, by netx itself)", file=str(path))
            layers.append(ly)
            shape = ly.output_shape
        return LoihiNetwork(input_shape=input_shape, layers=layers, name=str(f.attrs.get("snnc_name", path.stem)))
