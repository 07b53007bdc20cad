"""Speck's side of the divergence report (:mod:`snnc.runtime.diverge`): the ladder from the float twin to the chip.

Starting from every layer's float twin (weights, biases and thresholds times the scale, unrounded;
single spikes where the float neuron fires once; no 16-bit lower bound), one chip effect after
another is switched on (:class:`~snnc.targets.speck.torch_engine.SpeckRelax`): ``dt_mismatch``
(when compiled at another step), ``weight_zero``, ``weight_rounding``, ``bias_rounding``,
``threshold_rounding``, ``spike_mode``, ``saturation``. The last rung is the chip: its spikes are
checked equal to the reference simulator's.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from snnc.compiler.graph import Graph
from snnc.errors import InputError, SnncError
from snnc.targets.base import DivergenceRuns, LayerRuns
from snnc.targets.speck.lower import lower_graph
from snnc.targets.speck.network import SpeckNetwork
from snnc.targets.speck.simulator import simulate
from snnc.targets.speck.torch_engine import SpeckRelax, TorchSpeck

#: Compile options that do not change the integers (left out when the model is lowered again).
RUN_ONLY_OPTIONS = ("validate", "validate_samples", "validate_batch", "validate_steps", "core_map")


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], a.shape[1], -1)


def divergence_runs(passed: Graph, net_art: SpeckNetwork, run: Mapping[str, Any], manifest: Mapping[str, Any],
                    x: np.ndarray, dt_model: float, device: Any = None) -> DivergenceRuns:
    """The ladder (module doc) for the program ``net_art``/``run`` compiled from the Speck-passed graph ``passed``,
    on event counts ``x`` (batch, T, ...) at the model's step ``dt_model`` (seconds)."""
    dt_chip = float(manifest["options"]["dt_s"])
    extra = {k: v for k, v in dict(manifest["options"].get("extra", {})).items() if k not in RUN_ONLY_OPTIONS}
    notes: List[str] = []
    res_c = lower_graph(passed, dt_chip, extra)
    if res_c.network is None or res_c.network.to_json() != net_art.to_json():
        raise InputError("the program was not compiled from this model (its integers differ)",
                         hint="give the model the artifact was compiled from")
    res_m = res_c if dt_model == dt_chip else lower_graph(passed, dt_model, extra)
    if res_m.network is None:
        raise InputError(f"the model does not lower for Speck at its own step {dt_model:g} s")
    net = res_c.network
    b, t_in = int(x.shape[0]), int(x.shape[1])
    float_single = all(int(getattr(passed.nodes[n].neuron, "max_spikes_per_step", 1)) <= 1 for n in passed.layers())
    mode = run["spike_mode"]
    full = SpeckRelax(float_weights=True, float_bias=True, float_threshold=True, single_spike=float_single,
                      no_low_bound=True)
    ladder: List[Tuple[str, Any, SpeckRelax]] = [("float_model", res_m, full)]
    if dt_model != dt_chip:
        ladder.append(("dt_mismatch", res_c, full))
        notes.append(f"compiled at dt {dt_chip:g} s; the model's own step is {dt_model:g} s")
    rel = full
    for key, ch in [("weight_zero", dict(float_weights=False, zero_weights=True)),
                    ("weight_rounding", dict(zero_weights=False)), ("bias_rounding", dict(float_bias=False)),
                    ("threshold_rounding", dict(float_threshold=False)), ("spike_mode", dict(single_spike=False)),
                    ("saturation", dict(no_low_bound=False))]:
        rel = dataclasses.replace(rel, **ch)
        ladder.append((key, res_c, rel))
    outputs: List[Dict[str, np.ndarray]] = []
    for key, res, relax in ladder:
        r = TorchSpeck(res.network, mode, res.float_twin, relax, device=device).run(x)
        outputs.append({k: _flat(v.detach().cpu().numpy()) for k, v in r.spikes.items()})
    ref_sim = simulate(net, x.astype(np.int64), spike_mode=mode)  # the last rung is the chip
    for k, v in ref_sim.spikes.items():
        if not np.array_equal(outputs[-1][k], _flat(v)):
            raise SnncError(f"internal error: the torch engine departs from the reference simulator on layer {k}",
                            hint="please report this")
    over = {k: v for k, v in ref_sim.state_overflow.items() if v}
    if over:
        notes.append(f"the 16-bit state range was left (not modelled, chip behaviour undocumented): {over}")
    ro = net.readout
    layers: List[LayerRuns] = []
    for i, ly in enumerate(net.layers):
        rungs = [o[ly.name] for o in outputs]
        shape = tuple(ly.neuron_shape)
        if ro is not None and ro.layer == i:  # the readout's spread channels, back to one per class
            rungs = [r.reshape(b, t_in, -1, *ly.neuron_shape[1:])[:, :, ::ro.channel_stride].reshape(b, t_in, -1)
                     for r in rungs]
            shape = (ro.num_classes,) + tuple(ly.neuron_shape[1:])
        layers.append(LayerRuns(name=ly.name, kind="spiking", lag_steps=0, shape=shape, rungs=rungs,
                                sources=[net.layers[s].name for s, _ in net.sources(i)], binary=False))
    oc = outputs[-1][run["output_layer"]]
    if ro is not None:
        oc = oc.reshape(b, t_in, -1)[:, :, ::ro.channel_stride]
    return DivergenceRuns(keys=[k for k, _, _ in ladder], layers=layers, chip_output=oc, notes=notes)
