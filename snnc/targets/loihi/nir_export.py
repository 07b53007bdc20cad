"""A Loihi artifact as NIR: the *deployed* integer network, written with NIR's float nodes.

Every weight, bias and threshold is an integer value in Lava's own state units:

each layer (Lava fixed_pt CUBA LIF) is ``Linear``/``Conv2d`` with weights ``w_eff * 2**(weight_exp + 6)`` (``w_eff``: Lava Dense's clipped and truncated 8-bit weight;
  ``<< 6``: the shift Lava applies to every synaptic input of ``u``; conv/pool: ``w * 64``), then a
  ``CubaLIF`` (``CubaLI`` for a non-spiking readout) with ``v_threshold = vth_mant << 6``,
  ``v_reset = 0``, ``tau_syn``/``tau_mem`` from the 12-bit decays at the artifact's ``dt``:
  ``tau = -dt / ln(1 - d/4096)`` (exact integration gives ``exp(-dt/tau) = 1 - d/4096``).
  ``d = 0`` (no decay) becomes ``tau = 1e9 * dt`` and ``d = 4096`` (memoryless) ``tau = dt / 40``
  (decay ``e**-40``). ``w_in = 1/(1 - a_syn)`` and ``r = 1/(1 - a_mem)`` make one step add the
  input as Lava does (``u' = a u + x``, ``v' = a v + u' + bias``); the bias
  ``bias_mant << bias_exp`` goes into ``v_leak = bias / (1 - a_mem)``, and the integers themselves
  are in each node's metadata (``threshold_int``, ``bias_int``, ``du``, ``dv``, ...).

What NIR's float semantics cannot express (also written to the graph's ``metadata["notes"]``):
Loihi's truncating decays (``trunc(u * (4096 - du) / 4096)``), the 24-bit wrap of ``u`` and
saturation of ``v``, the int32 wrap of synaptic sums, the floor shift of a negative
``weight_exp`` applied to the *sum*, and the one-step delay of every Loihi synaptic hop: a Loihi
export is the same network in float arithmetic, up to truncation and hop delays.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import numpy as np

from snnc.errors import UnsupportedError
from snnc.targets.loihi.chip import DECAY_UNITY, INPUT_SCALE, INPUT_SHIFT
from snnc.targets.loihi.network import LoihiSynapse, effective_dense_weights

#: ``tau`` used for a 12-bit decay of 0 (no decay), in steps of ``dt``.
TAU_NO_DECAY_STEPS = 1e9
#: ``tau`` used for a 12-bit decay of 4096 (memoryless), in steps of ``dt`` (decay ``e**-40``).
TAU_MEMORYLESS_STEPS = 1.0 / 40.0

#: Integer-semantics caveats of a Loihi export (written to the graph metadata).
LOIHI_NOTES = (
    "weights are w_eff * 2**(weight_exp + 6) and thresholds vth_mant << 6: Lava's own state units",
    "NIR floats cannot express Loihi's truncating decays trunc(u * (4096 - du) / 4096), the 24-bit wrap of u, "
    "the saturation of v, the int32 wrap of synaptic sums or the floor shift of a negative weight_exp",
    "every Loihi synaptic hop delays by one step; the exported graph has no such delay",
    "decay 0 is exported as tau = 1e9 * dt, decay 4096 as tau = dt / 40",
)


def tau_from_decay(decay_12bit: int, dt_s: float) -> float:
    """Return ``tau_s`` with ``exp(-dt_s/tau_s) = 1 - decay_12bit/4096`` (0 and 4096: see module doc)."""
    d = int(decay_12bit)
    if not 0 <= d <= DECAY_UNITY:
        raise UnsupportedError(f"12-bit decay {d} is outside 0..{DECAY_UNITY}")
    if d == 0:
        return TAU_NO_DECAY_STEPS * dt_s
    if d == DECAY_UNITY:
        return TAU_MEMORYLESS_STEPS * dt_s
    return -dt_s / math.log1p(-d / float(DECAY_UNITY))


def _unit_gain(tau_s: float, dt_s: float) -> float:
    """Return ``g`` with ``g * (1 - exp(-dt/tau)) == 1`` as the cpu simulator computes the decay."""
    a = float(np.exp(-dt_s / np.float64(tau_s)))
    return 1.0 / (1.0 - a)


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


def _loihi_synapse_node(syn: Any, layer_name: str) -> Tuple[Any, np.ndarray, Dict[str, Any]]:
    import nir

    if syn.kind == "dense":
        w_eff, _ = effective_dense_weights(syn.weights, syn.sign_mode, syn.num_weight_bits)
        shift = int(syn.weight_exp) + INPUT_SHIFT
        w = w_eff.astype(np.float64) * (2.0 ** shift)
        meta = {"weight_exp": int(syn.weight_exp), "integer_weights": bool(shift >= 0)}
        return nir.Linear(weight=w, metadata=meta), w, meta
    if syn.kind in ("conv", "pool"):
        w = _ungroup(np.asarray(syn.weights, dtype=np.float64), int(syn.groups)) * float(INPUT_SCALE)
        node = nir.Conv2d(input_shape=tuple(syn.input_shape[1:]), weight=w, stride=tuple(syn.stride),
                          padding=tuple(syn.padding), dilation=tuple(syn.dilation), groups=1,
                          bias=np.zeros(w.shape[0]), metadata={"loihi_kind": syn.kind, "groups": int(syn.groups)})
        return node, w, {}
    raise UnsupportedError(f"Loihi synapse kind '{syn.kind}' has no NIR export", node=layer_name)


def loihi_to_nir(net: Any, run: Dict[str, Any], dt_s: float) -> Any:
    """Return a ``nir.NIRGraph`` of a :class:`LoihiNetwork` in Lava's integer state units (see module doc)."""
    import nir

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
                "threshold_int": int(ly.vth_mant) << INPUT_SHIFT, "bias_int": np.array(bias, dtype=np.int64),
                "readout": int(bool(ly.readout))}
        if ly.readout:
            nodes[neuron] = nir.CubaLI(**common, metadata=meta)
        else:
            nodes[neuron] = nir.CubaLIF(**common, v_threshold=np.full(shape, float(int(ly.vth_mant) << INPUT_SHIFT)),
                                       v_reset=np.zeros(shape), metadata=meta)
        outs[i] = neuron
    edges += [(outs[src], dst) for src, dst in pending]
    out_i = int(run["output_layer"])
    nodes["output"] = nir.Output(output_type={"output": np.array(net.layers[out_i].output_shape)})
    edges.append((outs[out_i], "output"))
    meta = {"snnc_export": "loihi", "dt_s": float(dt_s), "latency_steps": int(run.get("latency_steps", 0)),
            "notes": "\n".join(LOIHI_NOTES)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


