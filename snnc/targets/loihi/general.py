"""Scheduling of general Loihi networks: several inputs per layer, recurrence, readouts.

Same arithmetic as the chains (:mod:`snnc.targets.loihi.numpy_engine`'s synapses, the LIF step of
:mod:`snnc.targets.loihi.chip`), for networks that are not chains of single-input layers:

* a layer with several synaptic inputs gets the sum of their outputs: Lava's ``a_in`` port adds
  its connections in int32, so the sum wraps at 32 bits (wrapping each ``a << 6`` and then the
  sum equals wrapping the shifted sum: both are arithmetic modulo 2**32);
* every hop, recurrent or not, delivers one step later: layer ``i`` at step ``t`` gets
  ``sum_k W_k s_{source_k}[t - 1]``;
* layers outside cycles run one whole layer at a time, in a topological order of the layer graph;
  the layers of one strongly connected component (a recurrent loop) run together step by step
  with the LIF step (every wrap applied), their inputs from outside the loop precomputed for all steps;
* readout layers (``readout=True``) always record ``u`` and ``v`` (``v`` is their output);
* a layer's bias is added from step ``bias_onset_step`` on (chains with such layers run here too).

The simulator (:class:`~snnc.targets.loihi.simulator.LoihiSimulator`) decides which networks run
here and hands over its prepared layers (``layers``, ``inputs``: :func:`prepared_inputs`).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from snnc.targets.loihi.chip import INPUT_SHIFT, wrap32_float
from snnc.targets.loihi.engine_common import PreparedLayer, SimResult
from snnc.targets.loihi.network import LoihiNetwork
from snnc.targets.loihi.numpy_engine import LIF_STEP, absmax, prepare, run_lif, synaptic_input

_TWO31 = float(1 << 31)


def layer_schedule(net: LoihiNetwork) -> List[List[int]]:
    """Return the layers with neurons grouped into strongly connected components, in dependency order.

    Edges go from each synapse's source (flatten layers resolved to the layer they reshape) to the
    layer it feeds. A group of one layer without a self-connection can run a whole layer at a time.
    """
    roots = [resolve_source(net, i) for i in range(len(net.layers))]
    idx = [i for i, ly in enumerate(net.layers) if ly.has_neurons]
    pos = {i: k for k, i in enumerate(idx)}
    n = len(idx)
    reach = np.zeros((n, n), dtype=bool)
    for i in idx:
        for s_ in net.layers[i].sources:
            r = roots[s_] if s_ >= 0 else -1
            if r >= 0:
                reach[pos[r], pos[i]] = True
    while True:  # transitive closure (n is the number of layers: small)
        nxt = reach | ((reach.astype(np.int64) @ reach.astype(np.int64)) > 0)
        if np.array_equal(nxt, reach):
            break
        reach = nxt
    comp = [-1] * n
    groups: List[List[int]] = []
    for a in range(n):
        if comp[a] >= 0:
            continue
        members = [b for b in range(n) if b == a or (reach[a, b] and reach[b, a])]
        for b in members:
            comp[b] = len(groups)
        groups.append(members)
    # Kahn's algorithm on the condensation, lowest layer index first for determinism
    deps = [set() for _ in groups]
    for a in range(n):
        for b in range(n):
            if reach[a, b] and comp[a] != comp[b]:
                deps[comp[b]].add(comp[a])
    order: List[List[int]] = []
    done: set = set()
    while len(order) < len(groups):
        ready = [g for g in range(len(groups)) if g not in done and deps[g] <= done]
        g = min(ready, key=lambda k: min(groups[k]))
        done.add(g)
        order.append([idx[m] for m in groups[g]])
    return order


def resolve_source(net: LoihiNetwork, i: int) -> int:
    """Return the layer with neurons whose spikes layer ``i`` outputs (follows flatten layers; -1 = input)."""
    while i >= 0 and not net.layers[i].has_neurons:
        i = net.layers[i].source
    return i


def prepared_inputs(net: LoihiNetwork, accumulate: str = "auto") -> List[List[PreparedLayer]]:
    """Return one prepared single-input view per synapse of every layer (computed once per network)."""
    return [[prepare(ly.synapse_view(k), accumulate) for k in range(len(ly.extra_inputs) + 1)]
            if ly.has_neurons else [] for ly in net.layers]


def _input_sum(net: LoihiNetwork, views: List[PreparedLayer], spikes_tm: Callable[[int], np.ndarray],
               use: Callable[[int], bool], accumulate: str, shape_tbn: Tuple[int, int, int]
               ) -> Tuple[np.ndarray, float]:
    """Return the summed ``a << 6`` (T, B, N) float64 of the inputs ``use(source)`` selects, and a bound."""
    act: Optional[np.ndarray] = None
    amax = 0.0
    n_used = 0
    for pv in views:
        ly = pv.layer
        if not use(ly.source):
            continue
        a, am = synaptic_input(ly, spikes_tm(ly.source), pv.w_eff, accumulate, pv.kernel)
        n_used += 1
        if act is None:
            act = a.astype(np.float64)  # exact integers; float32 sums of several inputs could round
        else:
            act += a
        amax += am
    if act is None:
        return np.zeros(shape_tbn), 0.0
    if n_used > 1 and amax >= _TWO31:  # Lava's a_in adds its connections in int32
        act = wrap32_float(act)
        amax = absmax(act)
    return act, amax


def run_general(sim: Any, x: np.ndarray, record_states: bool = False) -> SimResult:
    """Run a :class:`~snnc.targets.loihi.simulator.LoihiSimulator`'s network on checked binary ``x`` (B, T, ...)."""
    net: LoihiNetwork = sim.net
    views = sim.inputs
    b, t_steps = x.shape[:2]
    x_tm = np.ascontiguousarray(np.moveaxis(x, 1, 0))  # (T, B, ...)
    n_layers = len(net.layers)
    outs_tm: List[Optional[np.ndarray]] = [None] * n_layers
    states: Dict[int, Tuple[Optional[np.ndarray], Optional[np.ndarray]]] = {}

    def spikes_tm(i: int) -> np.ndarray:
        """Spikes of layer ``i`` (or the input), time-major, in layer i's output shape."""
        if i < 0:
            return x_tm
        r = resolve_source(net, i)
        src = x_tm if r < 0 else outs_tm[r]
        assert src is not None, f"layer {r} scheduled after its reader"
        return src.reshape(t_steps, b, *net.layers[i].output_shape)

    for group in layer_schedule(net):
        i = group[0]
        ly = net.layers[i]
        if len(group) == 1 and i not in [resolve_source(net, s_) for s_ in ly.sources]:
            pl = sim.layers[i]
            act, amax = _input_sum(net, views[i], spikes_tm, lambda s_: True, sim.accumulate,
                                   (t_steps, b, ly.num_neurons))
            k = min(int(ly.bias_onset_step), t_steps) if ly.delayed_bias else 0
            if k and np.any(act[:k]):  # input before the bias onset: step by step
                del act
                _run_loop(sim, views, group, spikes_tm, outs_tm, states, b, t_steps, record_states)
                continue
            # With no input and no bias the neurons stay at u = v = 0 and silent until step k.
            if k == t_steps:  # the bias never starts in this run (None would make run_lif add it)
                s, u, v = run_lif(act, ly, record_states or ly.readout, amax, np.zeros(ly.num_neurons), sim.threads)
            else:
                s, u, v = run_lif(act[k:], ly, record_states or ly.readout, amax, pl.bias, sim.threads)
            del act
            if 0 < k < t_steps:
                s, u, v = (None if a is None else np.concatenate([np.zeros((k, *a.shape[1:]), a.dtype), a])
                           for a in (s, u, v))
            outs_tm[i] = s.reshape(t_steps, b, *ly.output_shape)
            states[i] = (u, v)
        else:
            _run_loop(sim, views, group, spikes_tm, outs_tm, states, b, t_steps, record_states)

    res = SimResult(spikes=[], u=[], v=[], spike_counts=[], synops=[], weight_reports=[],
                    meta={"batch": b, "steps": t_steps, "simulator": "snnc.loihi.reference"})
    for i, ly in enumerate(net.layers):
        report: Dict[str, int] = {}
        for pv in views[i]:
            for key, val in pv.report.items():
                report[key] = report.get(key, 0) + val
        res.weight_reports.append(report)
        out = spikes_tm(i)
        res.spikes.append(np.moveaxis(out, 0, 1))
        if not ly.has_neurons:
            res.u.append(None)
            res.v.append(None)
            res.spike_counts.append(np.zeros(b, dtype=np.int64))
            res.synops.append(np.zeros(b, dtype=np.int64))
            continue
        u, v = states[i]
        shape = (b, t_steps, *ly.output_shape)
        res.u.append(None if u is None else np.moveaxis(u, 0, 1).reshape(shape))
        res.v.append(None if v is None else np.moveaxis(v, 0, 1).reshape(shape))
        res.spike_counts.append(np.count_nonzero(out.reshape(t_steps, b, -1), axis=(0, 2)).astype(np.int64))
        syn = np.zeros(b, dtype=np.int64)
        for pv in views[i]:
            k = int(np.prod(pv.layer.input_shape))
            src = spikes_tm(pv.layer.source).reshape(t_steps, b, k)
            syn += np.count_nonzero(src, axis=0).astype(np.int64) @ pv.fan  # (B, K) @ (K,)
        res.synops.append(syn)
    return res


def _run_loop(sim: Any, views: List[List[PreparedLayer]], group: List[int], spikes_tm: Callable[[int], np.ndarray],
              outs_tm: List[Optional[np.ndarray]], states: Dict[int, Tuple[Optional[np.ndarray], Optional[np.ndarray]]],
              b: int, t_steps: int, record_states: bool) -> None:
    """Run the layers of one recurrent loop together, step by step (inputs from outside precomputed)."""
    net: LoihiNetwork = sim.net
    members = set(group)
    ext: Dict[int, np.ndarray] = {}
    internal: Dict[int, List[PreparedLayer]] = {}
    for i in group:
        ly = net.layers[i]
        ext[i] = _input_sum(net, views[i], spikes_tm, lambda s_: resolve_source(net, s_) not in members,
                            sim.accumulate, (t_steps, b, ly.num_neurons))[0]
        internal[i] = [pv for pv in views[i] if resolve_source(net, pv.layer.source) in members]
        outs_tm[i] = np.zeros((t_steps, b, *ly.output_shape), dtype=bool)
    u = {i: np.zeros((b, net.layers[i].num_neurons)) for i in group}
    v = {i: np.zeros((b, net.layers[i].num_neurons)) for i in group}
    rec = {i: (np.empty((t_steps, b, net.layers[i].num_neurons), dtype=np.int32),
               np.empty((t_steps, b, net.layers[i].num_neurons), dtype=np.int32))
           for i in group if record_states or net.layers[i].readout}
    for t in range(t_steps):
        acts = {}
        for i in group:
            a = np.array(ext[i][t], dtype=np.float64)
            if t > 0:
                for pv in internal[i]:
                    r = resolve_source(net, pv.layer.source)
                    prev = outs_tm[r][t - 1].reshape(1, b, *pv.layer.input_shape)  # type: ignore[index]
                    pair = np.concatenate([prev, np.zeros_like(prev)])  # the sum of step t-1 arrives at t
                    a += synaptic_input(pv.layer, pair, pv.w_eff, sim.accumulate, pv.kernel)[0][1]
                a = wrap32_float(a)
            acts[i] = a
        for i in group:
            ly = net.layers[i]
            bias = sim.layers[i].bias if t >= ly.bias_onset_step and sim.layers[i].bias is not None else 0.0
            u[i], v[i], s = LIF_STEP(u[i], v[i], acts[i], bias, ly.du, ly.dv, float(ly.vth_mant << INPUT_SHIFT))
            outs_tm[i][t] = s.reshape(b, *net.layers[i].output_shape)  # type: ignore[index]
            if i in rec:
                rec[i][0][t] = u[i]
                rec[i][1][t] = v[i]
    for i in group:
        states[i] = rec.get(i, (None, None))  # type: ignore[assignment]
