"""Loihi's side of the divergence report (:mod:`snnc.runtime.diverge`): the ladder from the float twin to the chip.

Starting from every layer's float twin (unrounded weights, bias and decays, real arithmetic, float
timing), one chip effect after another is switched on (:class:`~snnc.targets.loihi.torch_engine.Relax`):
``binary_input``, ``dt_mismatch`` (when compiled at another step), ``hop_delay``, ``weight_zero``,
``weight_rounding``, ``bias_rounding``, ``decay_rounding``, ``decay_truncation``, ``state_wrap``,
``saturation``. The last rung is the chip: its spikes are checked equal to the reference simulator's.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from snnc.compiler.graph import Graph
from snnc.errors import InputError, SnncError
from snnc.targets.base import DivergenceRuns, LayerRuns
from snnc.targets.loihi.simulator import simulate
from snnc.targets.loihi.lower import lower_graph
from snnc.targets.loihi.network import LoihiNetwork
from snnc.targets.loihi.torch_engine import Relax, TorchLoihi

#: Compile options that do not change the integers (left out when the model is lowered again).
RUN_ONLY_OPTIONS = ("validate", "validate_samples", "validate_batch", "validate_steps", "netx", "core_map")


def lowering_options(manifest: Mapping[str, Any]) -> Dict[str, Any]:
    """Return the ``-O`` options of a program that shape its integers."""
    return {k: v for k, v in dict(manifest["options"].get("extra", {})).items() if k not in RUN_ONLY_OPTIONS}


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], a.shape[1], -1)


def _root(net: LoihiNetwork, i: int) -> int:
    while i >= 0 and not net.layers[i].has_neurons:
        i = net.layers[i].source
    return i


def hop_counts(net: LoihiNetwork) -> Dict[str, int]:
    """Return the fewest synaptic hops from the input to every Loihi layer."""
    dist: Dict[int, int] = {-1: 0}
    changed = True
    while changed:
        changed = False
        for i, ly in enumerate(net.layers):
            if not ly.has_neurons:
                continue
            for s in ly.sources:
                r = _root(net, s)
                if r in dist and dist[r] + 1 < dist.get(i, 1 << 30):
                    dist[i] = dist[r] + 1
                    changed = True
    return {net.layers[i].name: d for i, d in dist.items() if i >= 0}


def divergence_runs(passed: Graph, net_art: LoihiNetwork, run: Mapping[str, Any], manifest: Mapping[str, Any],
                    x: np.ndarray, dt_model: float, device: Any = None) -> DivergenceRuns:
    """The ladder (module doc) for the program ``net_art``/``run`` compiled from the Loihi-passed graph ``passed``,
    on event counts ``x`` (batch, T, ...) at the model's step ``dt_model`` (seconds)."""
    dt_chip = float(manifest["options"]["dt_s"])
    method = str(manifest["options"].get("method", "exact"))
    extra = lowering_options(manifest)
    notes: List[str] = []
    res_c = lower_graph(passed, dt_chip, method, extra)
    if res_c.network is None:
        raise InputError("the model does not lower for Loihi with the program's options", hint=str(res_c.violations[:2]))
    strip = lambda d: {k: v for k, v in d.items() if k != "name"}  # noqa: E731
    a, b_ = strip(res_c.network.to_dict()), strip(net_art.to_dict())
    if list(a) != list(b_) or not all(np.array_equal(np.asarray(a[k]), np.asarray(b_[k])) for k in a):
        raise InputError("the program was not compiled from this model (its integers differ)",
                         hint="give the model the artifact was compiled from")
    net = res_c.network
    res_m = res_c if dt_model == dt_chip else lower_graph(passed, dt_model, method, extra)
    if res_m.network is None:
        raise InputError(f"the model does not lower for Loihi at its own step {dt_model:g} s")
    b, t_in = int(x.shape[0]), int(x.shape[1])
    names = [ly.name for ly in net.layers]
    if res_c.timing_exact:
        lags = {n: int(v) for n, v in res_c.layer_lag_steps.items()}
    else:
        lags = hop_counts(net)
        notes.append("Loihi's timing differs from the float graph (paths of unequal hop counts): layers are "
                     "aligned by their fewest hops from the input")
    pad = max([lags.get(n, 0) for n in names if n in lags] + [int(run.get("latency_steps", 0))])
    xp = np.concatenate([x, np.zeros((b, pad) + x.shape[2:])], axis=1) if pad else x
    xb = (xp > 0).astype(np.float64)
    clipped = int(np.sum(x > 1))
    if clipped:
        notes.append(f"{clipped} input entries ({100 * clipped / max(int(np.sum(x > 0)), 1):.2f} % of non-zero "
                     "ones) hold more than one event: clipped to 1 on Loihi")
    if dt_model != dt_chip:
        notes.append(f"compiled at dt {dt_chip:g} s; the model's own step is {dt_model:g} s")
    full = Relax(zero_weights=False, float_weights=True, float_bias=True, float_decay=True, no_trunc=True,
                 no_wrap=True, no_saturation=True, float_timing=True)
    ladder: List[Tuple[str, Any, Relax, Any]] = [  # (cause, network/twin lowering, relaxation, input)
        ("float_model", res_m, full, xp),
        ("binary_input", res_m, full, xb),
    ]
    if dt_model != dt_chip:
        ladder.append(("dt_mismatch", res_c, full, xb))
    steps = [("hop_delay", dict(float_timing=False)),
             ("weight_zero", dict(float_weights=False, zero_weights=True)),
             ("weight_rounding", dict(zero_weights=False)),
             ("bias_rounding", dict(float_bias=False)),
             ("decay_rounding", dict(float_decay=False)),
             ("decay_truncation", dict(no_trunc=False)),
             ("state_wrap", dict(no_wrap=False)),
             ("saturation", dict(no_saturation=False))]
    rel = full
    for key, ch in steps:
        rel = dataclasses.replace(rel, **ch)
        ladder.append((key, res_c, rel, xb))
    assert rel.exact
    outputs: List[Dict[str, np.ndarray]] = []
    for key, res, relax, xin in ladder:
        eng = TorchLoihi(res.network, res.float_twin, relax, device=device)
        r = eng.run(xin, record=True)
        per: Dict[str, np.ndarray] = {}
        for i, ly in enumerate(res.network.layers):
            if not ly.has_neurons:
                continue
            shift = 0 if relax.float_timing else lags.get(ly.name, 0)
            if ly.readout:
                vscale = float(np.asarray(res.float_twin[ly.name]["v_scale"]).reshape(-1)[0])
                o = r.v[i].detach().cpu().numpy().reshape(b, -1, ly.num_neurons) / vscale
            else:
                o = r.spikes[i].detach().cpu().numpy().reshape(b, -1, ly.num_neurons)
            per[ly.name] = o[:, shift:shift + t_in]
        outputs.append(per)
    ref_sim = simulate(net, xb)  # the last rung is the chip: check it against the reference simulator
    for i, ly in enumerate(net.layers):
        if ly.has_neurons and not ly.readout:
            want = _flat(ref_sim.spikes[i])[:, lags.get(ly.name, 0):lags.get(ly.name, 0) + t_in]
            if not np.array_equal(outputs[-1][ly.name] != 0, want):
                raise SnncError(f"internal error: the torch engine departs from the reference simulator on layer "
                                f"{ly.name}", hint="please report this")
    layers = [LayerRuns(name=ly.name, kind="readout" if ly.readout else "spiking", lag_steps=lags.get(ly.name, 0),
                        shape=tuple(ly.output_shape), rungs=[o[ly.name] for o in outputs],
                        sources=[net.layers[_root(net, s)].name for s in ly.sources if _root(net, s) >= 0])
              for ly in net.layers if ly.has_neurons]
    out_name = net.layers[int(run["output_layer"])].name
    return DivergenceRuns(keys=[k for k, _, _, _ in ladder], layers=layers,
                          chip_output=outputs[-1].get(out_name), notes=notes)
