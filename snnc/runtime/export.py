"""Export a compiled artifact back to NIR: the *deployed* program, with integer-valued parameters.

``cpu`` artifacts give back their stored (compiled) graph (refused when it has neurons that reset
by subtraction or fire several spikes per step, e.g. from ``--framework rockpool``: NIR cannot
store that). ``loihi`` and ``speck`` artifacts give the
integer network the chip runs, written with NIR's float nodes so that every weight, bias and
threshold is an integer value in the chip's own state units:

* Loihi (Lava fixed_pt CUBA LIF): each layer is ``Linear``/``Conv2d`` with weights
  ``w_eff * 2**(weight_exp + 6)`` (``w_eff``: Lava Dense's clipped and truncated 8-bit weight;
  ``<< 6``: the shift Lava applies to every synaptic input of ``u``; conv/pool: ``w * 64``), then a
  ``CubaLIF`` (``CubaLI`` for a non-spiking readout) with ``v_threshold = vth_mant << 6``,
  ``v_reset = 0``, ``tau_syn``/``tau_mem`` from the 12-bit decays at the artifact's ``dt``:
  ``tau = -dt / ln(1 - d/4096)`` (exact integration gives ``exp(-dt/tau) = 1 - d/4096``).
  ``d = 0`` (no decay) becomes ``tau = 1e9 * dt`` and ``d = 4096`` (memoryless) ``tau = dt / 40``
  (decay ``e**-40``). ``w_in = 1/(1 - a_syn)`` and ``r = 1/(1 - a_mem)`` make one step add the
  input as Lava does (``u' = a u + x``, ``v' = a v + u' + bias``); the bias
  ``bias_mant << bias_exp`` goes into ``v_leak = bias / (1 - a_mem)``, and the integers themselves
  are in each node's metadata (``threshold_int``, ``bias_int``, ``du``, ``dv``, ...).
* Speck (non-leaky IAF): each layer is ``Conv2d`` (integer weights and biases) then
  ``IF(r = 1/dt, v_threshold = threshold_high - 1, v_reset = 0)``: one step adds the input, and
  ``v > threshold_high - 1`` equals the chip's ``v >= threshold_high`` for integer ``v``. Pooled
  routes are ``SumPool2d`` nodes; DVS-layer polarity merging is a 1x1 ``Conv2d`` of ones.

What NIR's float semantics cannot express (also written to the graph's ``metadata["notes"]``):
Loihi's truncating decays (``trunc(u * (4096 - du) / 4096)``), the 24-bit wrap of ``u`` and
saturation of ``v``, the int32 wrap of synaptic sums, the floor shift of a negative
``weight_exp`` applied to the *sum*, and the one-step delay of every Loihi synaptic hop; Speck's
``threshold_low`` floor, reset by subtraction (exported as reset to 0 and flagged), multi-spike
mode, 16-bit state limits and readout channel spreading. So a Speck network without reset by
subtraction whose states stay above ``threshold_low`` runs identically on the cpu target; a Loihi
export is the same network in float arithmetic, up to truncation and hop delays.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Dict, List, Tuple, Union

import numpy as np

from snnc.artifact import Artifact, split_graph_payload
from snnc.errors import InputError, UnsupportedError

log = logging.getLogger(__name__)

#: ``tau`` used for a 12-bit decay of 0 (no decay), in steps of ``dt``.
TAU_NO_DECAY_STEPS = 1e9
#: ``tau`` used for a 12-bit decay of 4096 (memoryless), in steps of ``dt`` (decay ``e**-40``).
TAU_MEMORYLESS_STEPS = 1.0 / 40.0
#: Shift Lava applies to every synaptic input of the current ``u`` (``a_in << 6``).
LOIHI_INPUT_SHIFT = 6

#: Integer-semantics caveats of a Loihi export (written to the graph metadata).
LOIHI_NOTES = (
    "weights are w_eff * 2**(weight_exp + 6) and thresholds vth_mant << 6: Lava's own state units",
    "NIR floats cannot express Loihi's truncating decays trunc(u * (4096 - du) / 4096), the 24-bit wrap of u, "
    "the saturation of v, the int32 wrap of synaptic sums or the floor shift of a negative weight_exp",
    "every Loihi synaptic hop delays by one step; the exported graph has no such delay",
    "decay 0 is exported as tau = 1e9 * dt, decay 4096 as tau = dt / 40",
)
#: Integer-semantics caveats of a Speck export (written to the graph metadata).
SPECK_NOTES = (
    "IF v_threshold = threshold_high - 1 with v_reset = 0: equal to Speck's single-spike v >= threshold_high "
    "with return to zero, for integer states",
    "NIR cannot express Speck's threshold_low floor, reset by subtraction, multi-spike mode, 16-bit state "
    "limits or readout channel spreading",
)


def _as_artifact(artifact_or_path: Any) -> Artifact:
    if isinstance(artifact_or_path, Artifact):
        return artifact_or_path
    if hasattr(artifact_or_path, "artifact") and isinstance(artifact_or_path.artifact, Artifact):
        return artifact_or_path.artifact  # a runtime Program
    if isinstance(artifact_or_path, (str, os.PathLike)):
        return Artifact.load(os.fspath(artifact_or_path))
    raise InputError(f"cannot export an object of type {type(artifact_or_path).__name__}",
                     hint="give an Artifact, a Program or an artifact file path")


def tau_from_decay(decay_12bit: int, dt_s: float) -> float:
    """Return ``tau_s`` with ``exp(-dt_s/tau_s) = 1 - decay_12bit/4096`` (0 and 4096: see module doc)."""
    d = int(decay_12bit)
    if not 0 <= d <= 4096:
        raise UnsupportedError(f"12-bit decay {d} is outside 0..4096")
    if d == 0:
        return TAU_NO_DECAY_STEPS * dt_s
    if d == 4096:
        return TAU_MEMORYLESS_STEPS * dt_s
    return -dt_s / math.log1p(-d / 4096.0)


def _unit_gain(tau_s: float, dt_s: float) -> float:
    """Return ``g`` with ``g * (1 - exp(-dt/tau)) == 1`` as the cpu simulator computes the decay."""
    a = float(np.exp(-dt_s / np.float64(tau_s)))
    return 1.0 / (1.0 - a)


def _arr(x: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=np.float64))


def _ungroup(w: np.ndarray, groups: int) -> np.ndarray:
    """Return the equivalent ``groups=1`` conv weight (block diagonal): nir 1.0 mistypes grouped convs."""
    if groups == 1:
        return w
    out_c, in_per, kh, kw = w.shape
    per_out = out_c // groups
    full = np.zeros((out_c, in_per * groups, kh, kw), dtype=w.dtype)
    for gi in range(groups):  # loop over groups (channels), not neurons or synapses
        full[gi * per_out:(gi + 1) * per_out, gi * in_per:(gi + 1) * in_per] = w[gi * per_out:(gi + 1) * per_out]
    return full


# ----------------------------------------------------------------------------- Loihi
def _loihi_synapse_node(syn: Any, layer_name: str) -> Tuple[Any, np.ndarray, Dict[str, Any]]:
    import nir

    from snnc.targets.loihi.network import effective_dense_weights

    if syn.kind == "dense":
        w_eff, _ = effective_dense_weights(syn.weights, syn.sign_mode, syn.num_weight_bits)
        shift = int(syn.weight_exp) + LOIHI_INPUT_SHIFT
        w = w_eff.astype(np.float64) * (2.0 ** shift)
        meta = {"weight_exp": int(syn.weight_exp), "integer_weights": bool(shift >= 0)}
        return nir.Linear(weight=w, metadata=meta), w, meta
    if syn.kind in ("conv", "pool"):
        w = _ungroup(np.asarray(syn.weights, dtype=np.float64), int(syn.groups)) * float(1 << LOIHI_INPUT_SHIFT)
        node = nir.Conv2d(input_shape=tuple(syn.input_shape[1:]), weight=w, stride=tuple(syn.stride),
                          padding=tuple(syn.padding), dilation=tuple(syn.dilation), groups=1,
                          bias=np.zeros(w.shape[0]), metadata={"loihi_kind": syn.kind, "groups": int(syn.groups)})
        return node, w, {}
    raise UnsupportedError(f"Loihi synapse kind '{syn.kind}' has no NIR export", node=layer_name)


def loihi_to_nir(net: Any, run: Dict[str, Any], dt_s: float) -> Any:
    """Return a ``nir.NIRGraph`` of a :class:`LoihiNetwork` in Lava's integer state units (see module doc)."""
    import nir

    from snnc.targets.loihi.network import LoihiSynapse

    nodes: Dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(net.input_shape)})}
    edges: List[Tuple[str, str]] = []
    outs: Dict[int, str] = {-1: "input"}
    pending: List[Tuple[int, str]] = []  # (source layer, destination node): sources may come later
    for i, ly in enumerate(net.layers):
        if not ly.has_neurons:
            nodes[ly.name] = nir.Flatten(input_type={"input": np.array(ly.input_shape)}, start_dim=0, end_dim=-1)
            pending.append((ly.source, ly.name))
            outs[i] = ly.name
            continue
        neuron = f"{ly.name}.lif"
        for k, syn in enumerate([LoihiSynapse.of_layer(ly)] + list(ly.extra_inputs)):
            sname = f"{ly.name}.syn{k}"
            nodes[sname], _, _ = _loihi_synapse_node(syn, ly.name)
            pending.append((syn.source, sname))
            edges.append((sname, neuron))
        tau_syn, tau_mem = tau_from_decay(ly.du, dt_s), tau_from_decay(ly.dv, dt_s)
        shape = tuple(ly.output_shape)
        bias = np.broadcast_to(np.asarray(ly.bias_mant, dtype=np.int64) << int(ly.bias_exp), shape)
        r = _unit_gain(tau_mem, dt_s)
        common = dict(tau_syn=np.full(shape, tau_syn), tau_mem=np.full(shape, tau_mem), r=np.full(shape, r),
                      v_leak=bias.astype(np.float64) * r, w_in=np.full(shape, _unit_gain(tau_syn, dt_s)))
        meta = {"du": int(ly.du), "dv": int(ly.dv), "vth_mant": int(ly.vth_mant),
                "threshold_int": int(ly.vth_mant) << LOIHI_INPUT_SHIFT, "bias_int": np.array(bias, dtype=np.int64),
                "readout": int(bool(ly.readout))}
        if ly.readout:
            nodes[neuron] = nir.CubaLI(**common, metadata=meta)
        else:
            nodes[neuron] = nir.CubaLIF(**common, v_threshold=np.full(shape, float(int(ly.vth_mant) << LOIHI_INPUT_SHIFT)),
                                       v_reset=np.zeros(shape), metadata=meta)
        outs[i] = neuron
    edges += [(outs[src], dst) for src, dst in pending]
    out_i = int(run["output_layer"])
    nodes["output"] = nir.Output(output_type={"output": np.array(net.layers[out_i].output_shape)})
    edges.append((outs[out_i], "output"))
    meta = {"snnc_export": "loihi", "dt_s": float(dt_s), "latency_steps": int(run.get("latency_steps", 0)),
            "notes": "\n".join(LOIHI_NOTES)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


# ----------------------------------------------------------------------------- Speck
def _if_gain(dt_s: float) -> float:
    """Return ``r`` with ``dt_s * r == 1.0`` exactly in float64 (so one step adds the input)."""
    r = 1.0 / dt_s
    for cand in (r, np.nextafter(r, np.inf), np.nextafter(r, 0.0)):
        if dt_s * float(cand) == 1.0:
            return float(cand)
    log.warning("no float64 r with dt * r == 1 for dt = %r; IF gain is approximate", dt_s)
    return r


def speck_to_nir(net: Any, run: Dict[str, Any], dt_s: float) -> Any:
    """Return a ``nir.NIRGraph`` of a :class:`SpeckNetwork` with integer weights/biases/thresholds."""
    import nir

    nodes: Dict[str, Any] = {"input": nir.Input(input_type={"input": np.array(net.input_shape)})}
    edges: List[Tuple[str, str]] = []
    notes = list(SPECK_NOTES)
    entry = "input"
    if net.dvs is not None:
        c, h, w = net.dvs.input_shape
        if net.dvs.merge_polarities:
            nodes["dvs.merge"] = nir.Conv2d(input_shape=(h, w), weight=np.ones((1, c, 1, 1)), stride=1, padding=0,
                                            dilation=1, groups=1, bias=np.zeros(1))
            edges.append((entry, "dvs.merge"))
            entry = "dvs.merge"
        if tuple(net.dvs.pooling) != (1, 1):
            p = np.array(net.dvs.pooling)
            nodes["dvs.pool"] = nir.SumPool2d(kernel_size=p, stride=p, padding=np.zeros(2, dtype=np.int64))
            edges.append((entry, "dvs.pool"))
            entry = "dvs.pool"
    r = _if_gain(dt_s)
    inexact: List[str] = []
    for i, ly in enumerate(net.layers):
        conv, neuron = f"{ly.name}.conv", f"{ly.name}.if"
        nodes[conv] = nir.Conv2d(input_shape=tuple(ly.input_shape[1:]), weight=ly.weights.astype(np.float64),
                                 stride=tuple(ly.stride), padding=tuple(ly.padding), dilation=1, groups=1,
                                 bias=ly.biases.astype(np.float64))
        shape = tuple(ly.neuron_shape)
        nodes[neuron] = nir.IF(r=np.full(shape, r), v_threshold=np.full(shape, float(ly.threshold_high - 1)),
                               v_reset=np.zeros(shape),
                               metadata={"threshold_high": int(ly.threshold_high),
                                         "threshold_low": int(ly.threshold_low),
                                         "return_to_zero": int(ly.return_to_zero)})
        if not ly.return_to_zero:
            inexact.append(ly.name)
        edges.append((conv, neuron))
        if i in net.entry_layers():
            edges.append((entry, conv))
        for k, d in enumerate(ly.destinations):
            dst = f"{net.layers[d.layer].name}.conv"
            if tuple(d.pooling) == (1, 1):
                edges.append((neuron, dst))
            else:
                pool = f"{ly.name}.pool{k}"
                p = np.array(d.pooling)
                nodes[pool] = nir.SumPool2d(kernel_size=p, stride=p, padding=np.zeros(2, dtype=np.int64))
                edges += [(neuron, pool), (pool, dst)]
    if inexact:
        notes.append(f"layers {inexact} reset by subtraction on Speck; exported with reset to 0 (not exact)")
        log.warning("Speck layers %s reset by subtraction; NIR export resets to 0 (not exact)", inexact)
    if str(run.get("spike_mode", "single")) != "single":
        notes.append(f"artifact uses spike mode '{run['spike_mode']}'; NIR IF emits one spike per step")
    stride = int(run.get("output_channel_stride", 1))
    if stride != 1:
        notes.append(f"readout spreads classes every {stride} channels; the exported output has all channels")
    out = net.layers[net.layer_index(run["output_layer"])]
    nodes["output"] = nir.Output(output_type={"output": np.array(out.neuron_shape)})
    edges.append((f"{out.name}.if", "output"))
    meta = {"snnc_export": "speck", "dt_s": float(dt_s), "spike_mode": str(run.get("spike_mode", "single")),
            "exact": int(not inexact and run.get("spike_mode", "single") == "single" and stride == 1),
            "notes": "\n".join(notes)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


# ----------------------------------------------------------------------------- entry points
def export_artifact_nir(artifact_or_path: Union[Artifact, str, "os.PathLike[str]", Any]) -> Any:
    """Return the deployed program of an artifact (object, Program or path) as a ``nir.NIRGraph``."""
    art = _as_artifact(artifact_or_path)
    dt_s = float(art.manifest["options"]["dt_s"])
    if art.target == "cpu":
        from snnc.compiler.nir_export import to_nir
        from snnc.compiler.stored import graph_from_json_and_arrays

        desc, arrays = split_graph_payload(art.payload)
        graph = to_nir(graph_from_json_and_arrays(desc, arrays))
        graph.metadata = {"snnc_export": "cpu", "dt_s": dt_s, "method": str(art.manifest["options"]["method"])}
        return graph
    if art.target == "loihi":
        from snnc.targets.loihi.target import network_from_payload

        net, run = network_from_payload(art.payload)
        return loihi_to_nir(net, run, dt_s)
    if art.target == "speck":
        from snnc.targets.speck.target import SpeckTarget

        net, run = SpeckTarget._load(art.payload)
        return speck_to_nir(net, run, dt_s)
    raise UnsupportedError(f"NIR export of '{art.target}' artifacts is not implemented",
                           hint="export cpu, loihi or speck artifacts")


def write_artifact_nir(artifact_or_path: Any, path: str) -> str:
    """Write :func:`export_artifact_nir`'s graph to ``path`` atomically (temp file + rename); return it."""
    import nir

    from snnc.files import atomic_target

    graph = export_artifact_nir(artifact_or_path)
    with atomic_target(path, "NIR file") as tmp:
        nir.write(tmp, graph)
    return path


#: Formats of ``snn-export --format``: NIR for every target, plus each target's chip files.
EXPORT_FORMATS = ("nir", "netx", "speck-config")


def write_artifact_file(artifact_or_path: Any, path: str, fmt: str = "nir") -> str:
    """Write an artifact's deployed program as ``fmt``: ``nir``, or a chip file its target writes; return ``path``."""
    from snnc.artifact import atomic_target
    from snnc.targets.base import get_target

    if fmt == "nir":
        return write_artifact_nir(artifact_or_path, path)
    art = _as_artifact(artifact_or_path)
    data = get_target(art.target).chip_file(fmt, art.payload, art.manifest)
    with atomic_target(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return path
