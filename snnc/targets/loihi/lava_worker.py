"""Run snnc Loihi networks on Lava's bit-accurate CPU models (``Loihi2SimCfg(select_tag="fixed_pt")``).

This file runs inside the Lava virtual environment (Python 3.10, numpy < 2). It is a standalone
script: it imports nothing from snnc, so that snnc's own modules stay out of the Lava interpreter.
Usage::

    python lava_worker.py IN.npz OUT.npz

``IN.npz`` holds ``num_jobs`` and, per job ``j``, ``job{j}/net/<key>`` (a
``LoihiNetwork.to_dict()``), ``job{j}/spikes`` (B, T, *input_shape) and ``job{j}/record_states``.
``OUT.npz`` gets, per job and layer ``i`` with neurons, ``job{j}/spikes/{i}`` (B, T, *shape) uint8
and, if asked (always for readout layers), ``job{j}/u/{i}`` and ``job{j}/v/{i}`` int32, plus ``job{j}/build_s``,
``job{j}/run_s`` and ``lava_version``. Samples of a batch run one after another in one Lava run;
between samples every LIF's ``u``, ``v`` and every synapse's buffer are set back to zero.
A layer with ``bias_onset_step = k > 0`` starts with bias 0; the run pauses after the first ``k`` steps
of each sample and writes its bias (what a host does on the chip).
Layers with several inputs get one Dense/Conv process per input, all connected to the LIF's
``a_in`` (Lava sums them in int32); recurrent inputs are ordinary connections (Lava's Dense sends
its previous step's sum before it receives, so cycles do not deadlock and every hop costs a step).
A job with ``job{j}/netx_path`` instead of a network dict loads that lava-dl netx ``.net`` file with
``lava.lib.dl.netx.hdf5.Network`` (which imports lava-dl's slayer and so torch) and runs the network
netx built; its outputs are indexed by netx block ``k`` (one per dense/conv layer) and add
``job{j}/netx/{k}/<key>``: what netx put into each block's processes (:func:`netx_readback`).
Exit codes: 0 ok, 1 error (traceback on stderr), 3 Lava not importable.
"""
from __future__ import annotations

import sys
import time
import traceback
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NO_LAVA = 3


def _layers(net: Mapping[str, np.ndarray]) -> Tuple[Tuple[int, ...], List[Dict[str, Any]]]:
    """Parse the flat dict of ``LoihiNetwork.to_dict`` (format version 1) into plain dicts."""
    if str(net["format"]) != "snnc.loihi.network" or int(net["version"]) not in (1, 2):
        raise ValueError(f"unsupported network dict {str(net['format'])!r} v{int(net['version'])}")
    layers = []
    for i in range(int(net["num_layers"])):
        p = f"layers/{i}/"
        ly: Dict[str, Any] = {k[len(p):]: net[k] for k in net if k.startswith(p)}
        ly["kind"] = str(ly["kind"])
        ly["name"] = str(ly["name"])
        ly["source"] = int(ly["source"])
        ly["input_shape"] = tuple(int(s) for s in ly["input_shape"])
        ly["output_shape"] = tuple(int(s) for s in ly["output_shape"])
        syns = []
        if ly["kind"] != "flatten":
            syns.append(dict(ly))
            for k in range(int(ly.get("num_extra", 0))):
                q = f"extra/{k}/"
                syn: Dict[str, Any] = {key[len(q):]: val for key, val in ly.items() if key.startswith(q)}
                syn["kind"] = str(syn["kind"])
                syn["source"] = int(syn["source"])
                syn["input_shape"] = tuple(int(s) for s in syn["input_shape"])
                syns.append(syn)
        ly["synapses"] = syns
        layers.append(ly)
    return tuple(int(s) for s in net["input_shape"]), layers


def _to_lava_order(a: np.ndarray) -> np.ndarray:
    """(C, H, W) -> Lava's (W, H, C) for 3-D arrays; others unchanged."""
    return a.transpose(2, 1, 0) if a.ndim == 3 else a


def _input_source(spikes: np.ndarray, in_shape: Tuple[int, ...]) -> Tuple[Any, int, int]:
    """Return a RingBuffer playing every sample of ``spikes`` (B, T, *in_shape) back to back, B, T."""
    from lava.proc.io.source import RingBuffer

    b, t_steps = int(spikes.shape[0]), int(spikes.shape[1])
    total = b * t_steps
    x = np.asarray(spikes).reshape(total, *in_shape).astype(np.int32)
    # RingBuffer data: (*shape_in_lava_order, time); a flat input is C-major (PyTorch's flatten order)
    data = x.transpose(3, 2, 1, 0) if len(in_shape) == 3 else x.reshape(total, -1).T
    return RingBuffer(data=np.ascontiguousarray(data)), b, t_steps


def _monitor(lif: Any, out_port: Any, lava_shape: Tuple[int, ...], total: int, states: bool) -> Dict[str, Any]:
    """Connect a spike sink to ``out_port`` and, if ``states``, u and v monitors to ``lif``."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.monitor.process import Monitor

    mons: Dict[str, Any] = {"spikes": Sink(shape=lava_shape, buffer=total)}  # cheaper than a Monitor
    out_port.connect(mons["spikes"].a_in)
    if states:
        mons["u"], mons["v"] = Monitor(), Monitor()
        mons["u"].probe(lif.u, total)
        mons["v"].probe(lif.v, total)
    return mons


def _run_samples(first: Any, neurons: List[Any], synapses: List[Tuple[Any, str]], b: int, t_steps: int,
                 delayed: List[Tuple[int, Any, np.ndarray]]) -> None:
    """Run ``b`` samples of ``t_steps`` each; zero every u, v and synaptic buffer between samples.

    ``delayed`` holds ``(onset step, LIF, bias)``: that LIF's bias is 0 until the onset step of each sample.
    """
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    onsets = sorted({k for k, _, _ in delayed if k < t_steps})
    for s in range(b):
        done = 0
        for k in onsets:  # run up to each onset, then write the biases that switch on there
            if k > done:
                first.run(condition=RunSteps(num_steps=k - done), run_cfg=cfg)
                done = k
            for k2, lif, bias in delayed:
                if k2 == k:
                    lif.bias_mant.set(bias)
        first.run(condition=RunSteps(num_steps=t_steps - done), run_cfg=cfg)
        if s + 1 < b:
            for _, lif, bias in delayed:
                lif.bias_mant.set(np.zeros_like(bias))
            for lif in neurons:
                lif.u.set(np.zeros(lif.u.shape, dtype=np.int64))
                lif.v.set(np.zeros(lif.v.shape, dtype=np.int64))
            for syn, buf in synapses:
                var = getattr(syn, buf)
                var.set(np.zeros(var.shape, dtype=np.int64))


def _collect(monitors: Mapping[int, Mapping[str, Any]], shapes: Mapping[int, Tuple[int, ...]], b: int,
             t_steps: int) -> Dict[str, np.ndarray]:
    """Read every sink and monitor back as ``{key}/{index}`` arrays (B, T, *shape) in snnc's (C, H, W) order."""
    out: Dict[str, np.ndarray] = {}
    for i, mons in monitors.items():
        for key, mon in mons.items():
            if key == "spikes":
                arr = np.moveaxis(np.asarray(mon.data.get()), -1, 0)  # (total, *lava_shape)
            else:
                got = mon.get_data()
                proc = next(iter(got.values()))
                arr = np.asarray(next(iter(proc.values())))  # (total, *lava_shape), float
            if arr.ndim == 4:
                arr = arr.transpose(0, 3, 2, 1)
            arr = arr.reshape(b, t_steps, *shapes[i])
            dtype = np.uint8 if key == "spikes" else np.int32
            out[f"{key}/{i}"] = np.rint(arr).astype(dtype)
    return out


def run_job(net: Mapping[str, np.ndarray], spikes: np.ndarray, record_states: bool) -> Dict[str, np.ndarray]:
    """Build the Lava processes for one network, run every sample, return spikes (and u, v) per layer."""
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIF
    from lava.utils.weightutils import SignMode

    t0 = time.perf_counter()
    in_shape, layers = _layers(net)
    src, b, t_steps = _input_source(spikes, in_shape)
    total = b * t_steps
    ports: Dict[int, Tuple[Any, Tuple[int, ...]]] = {-1: (src.s_out, in_shape)}
    neurons: Dict[int, Any] = {}
    synapses: List[Tuple[Any, str]] = []
    monitors: Dict[int, Dict[str, Any]] = {}
    delayed: List[Tuple[int, Any, np.ndarray]] = []  # (bias onset step, LIF, bias in Lava order)
    # First every LIF (a synapse may read a later layer or its own layer: recurrence), then flatten
    # views (which read earlier layers), then one Dense/Conv per synaptic input.
    for i, ly in enumerate(layers):
        if ly["kind"] == "flatten":
            continue
        out_shape = ly["output_shape"]
        lava_shape = tuple(reversed(out_shape)) if len(out_shape) == 3 else out_shape
        bias = np.ascontiguousarray(_to_lava_order(np.broadcast_to(np.asarray(ly["bias_mant"], dtype=np.int64),
                                                                   out_shape)))
        onset = int(ly.get("bias_onset_step", 0))
        zero_bias = onset > 0 and np.any(bias != 0)  # host-side schedule: bias 0 until step `onset`
        lif = LIF(shape=lava_shape, du=int(ly["du"]) - 1, dv=int(ly["dv"]), vth=int(ly["vth_mant"]),
                  bias_mant=np.zeros_like(bias) if zero_bias else bias, bias_exp=int(ly["bias_exp"]))
        if zero_bias:
            delayed.append((onset, lif, bias))
        ports[i] = (lif.s_out, out_shape)
        neurons[i] = lif
        monitors[i] = _monitor(lif, lif.s_out, lava_shape, total,
                               record_states or bool(int(ly.get("readout", 0))))
    for i, ly in enumerate(layers):
        if ly["kind"] == "flatten":
            port, shape = ports[ly["source"]]
            flat = port.transpose([2, 1, 0]).flatten() if len(shape) == 3 else port
            ports[i] = (flat, ly["output_shape"])
    for i, ly in enumerate(layers):
        for syn_d in ly["synapses"]:
            port, _ = ports[syn_d["source"]]
            w = np.asarray(syn_d["weights"]).astype(np.int64)
            if syn_d["kind"] == "dense":
                syn = Dense(weights=w, weight_exp=int(syn_d["weight_exp"]),
                            num_weight_bits=int(syn_d["num_weight_bits"]), sign_mode=SignMode(int(syn_d["sign_mode"])))
                buf = "a_buff"
            else:
                c_in, h_in, w_in = syn_d["input_shape"]
                # PyTorch (O, I/g, kh, kw) cross-correlation -> Lava (O, kw, kh, I/g) convolution (as netx does)
                lw = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
                sh, sw = (int(s) for s in syn_d["stride"])
                ph, pw = (int(s) for s in syn_d["padding"])
                dh, dw = (int(s) for s in syn_d["dilation"])
                syn = Conv(weight=lw, input_shape=(w_in, h_in, c_in), stride=(sw, sh), padding=(pw, ph),
                           dilation=(dw, dh), groups=int(syn_d["groups"]))
                buf = "a_buf"
            port.connect(syn.s_in)
            syn.a_out.connect(neurons[i].a_in)
            synapses.append((syn, buf))
    first = neurons[min(neurons)]
    t1 = time.perf_counter()
    try:
        _run_samples(first, list(neurons.values()), synapses, b, t_steps, delayed)
        t2 = time.perf_counter()
        out = _collect(monitors, {i: layers[i]["output_shape"] for i in monitors}, b, t_steps)
    finally:
        first.stop()
    out["build_s"] = np.array(t1 - t0)
    out["run_s"] = np.array(t2 - t1)
    return out


def _init(var: Any) -> np.ndarray:
    """The value a Lava Var was created with (what netx gave the process)."""
    return np.asarray(var.init)


def netx_readback(block: Any) -> Dict[str, np.ndarray]:
    """Return what lava-dl netx put into one block: process types, weights, decays, threshold, bias."""
    syn, lif = block.synapse, block.neuron
    d: Dict[str, np.ndarray] = {"block": np.array(type(block).__name__), "synapse": np.array(type(syn).__name__),
                                "neuron": np.array(type(lif).__name__),
                                "du": _init(lif.du), "dv": _init(lif.dv), "vth": _init(lif.vth),
                                "bias_mant": _init(lif.bias_mant), "bias_exp": _init(lif.bias_exp),
                                "shape": np.array(block.shape)}
    if hasattr(syn, "weights"):  # Dense: exponent, precision and sign mode are process parameters
        d["weights"] = _init(syn.weights)
        d["weight_exp"] = np.array(int(syn.proc_params.get("weight_exp", 0)))
        d["num_weight_bits"] = np.array(int(syn.proc_params.get("num_weight_bits", 8)))
        mode = syn.proc_params.get("sign_mode", None)
        d["sign_mode"] = np.array(-1 if mode is None else int(mode))
    else:  # Conv
        for key in ("weight", "weight_exp", "stride", "padding", "dilation", "groups"):
            d[key] = _init(getattr(syn, key))
    return d


def run_netx_job(path: str, spikes: np.ndarray, record_states: bool) -> Dict[str, np.ndarray]:
    """Load a ``.net`` file with lava-dl netx, run every sample on it, return spikes (u, v) and read-back per block.

    Keys are indexed by netx block ``k`` (netx makes one block per dense/conv layer, none for flatten).
    """
    from lava.lib.dl.netx.hdf5 import Network

    t0 = time.perf_counter()
    net = Network(net_config=path)
    in_shape = tuple(int(s) for s in np.asarray(spikes).shape[2:])
    if len(in_shape) == 3 and len(net.inp.shape) == 1:
        in_shape = (int(np.prod(in_shape)),)  # the file flattens the input before its first dense block
    src, b, t_steps = _input_source(spikes, in_shape)
    src.s_out.connect(net.inp)
    total = b * t_steps
    monitors: Dict[int, Dict[str, Any]] = {}
    shapes: Dict[int, Tuple[int, ...]] = {}
    synapses: List[Tuple[Any, str]] = []
    out: Dict[str, np.ndarray] = {}
    for k, block in enumerate(net.layers):
        lava_shape = tuple(int(s) for s in block.shape)
        shapes[k] = tuple(reversed(lava_shape)) if len(lava_shape) == 3 else lava_shape
        monitors[k] = _monitor(block.neuron, block.out, lava_shape, total, record_states)
        synapses.append((block.synapse, "a_buff" if hasattr(block.synapse, "a_buff") else "a_buf"))
        out.update({f"netx/{k}/{key}": v for key, v in netx_readback(block).items()})
    out["num_blocks"] = np.array(len(net.layers))
    t1 = time.perf_counter()
    try:
        _run_samples(net, [blk.neuron for blk in net.layers], synapses, b, t_steps, [])
        t2 = time.perf_counter()
        out.update(_collect(monitors, shapes, b, t_steps))
    finally:
        net.stop()
    out["build_s"] = np.array(t1 - t0)
    out["run_s"] = np.array(t2 - t1)
    return out


def run_jobs(inp: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Run every job of an input mapping (see module doc) and return the output mapping."""
    import lava

    result: Dict[str, np.ndarray] = {"lava_version": np.array(getattr(lava, "__version__", "unknown"))}
    for j in range(int(inp["num_jobs"])):
        p = f"job{j}/"
        if p + "netx_path" in inp:
            res = run_netx_job(str(inp[p + "netx_path"]), np.asarray(inp[p + "spikes"]),
                               bool(inp[p + "record_states"]))
        else:
            net = {k[len(p) + 4:]: inp[k] for k in inp if k.startswith(p + "net/")}
            res = run_job(net, np.asarray(inp[p + "spikes"]), bool(inp[p + "record_states"]))
        result.update({p + k: v for k, v in res.items()})
    return result


def main(argv: List[str]) -> int:
    """Command-line entry: ``lava_worker.py IN.npz OUT.npz``."""
    if len(argv) != 3:
        sys.stderr.write("usage: lava_worker.py IN.npz OUT.npz\n")
        return EXIT_ERROR
    try:
        import lava  # noqa: F401
        import lava.proc.lif.models  # noqa: F401
    except ImportError as exc:
        sys.stderr.write(f"snnc-lava-worker: cannot import Lava: {exc}\n")
        return EXIT_NO_LAVA
    try:
        with np.load(argv[1], allow_pickle=False) as f:
            inp = {k: f[k] for k in f.files}
        out = run_jobs(inp)
        tmp = argv[2] + ".part.npz"
        np.savez(tmp, **out)
        import os

        os.replace(tmp, argv[2])
    except Exception:  # report everything to the caller, which raises a SnncError
        traceback.print_exc()
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv))
