"""A Speck artifact as NIR: the deployed integer network (non-leaky IAF), written with NIR's float nodes.

Each layer is ``Conv2d`` (integer weights and biases) then
  ``IF(r = 1/dt, v_threshold = threshold_high - 1, v_reset = 0)``: one step adds the input, and
  ``v > threshold_high - 1`` equals the chip's ``v >= threshold_high`` for integer ``v``. Pooled
  routes are ``SumPool2d`` nodes; DVS-layer polarity merging is a 1x1 ``Conv2d`` of ones.


What NIR's float semantics cannot express (also written to the graph's ``metadata["notes"]``):
Speck's ``threshold_low`` floor, reset by subtraction (exported as reset to 0 and flagged),
multi-spike mode, 16-bit state limits and readout channel spreading. So a Speck network without
reset by subtraction whose states stay above ``threshold_low`` runs identically on the cpu target.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Tuple

import numpy as np

log = logging.getLogger(__name__)

#: Integer-semantics caveats of a Speck export (written to the graph metadata).
SPECK_NOTES = (
    "IF v_threshold = threshold_high - 1 with v_reset = 0: equal to Speck's single-spike v >= threshold_high "
    "with return to zero, for integer states",
    "NIR cannot express Speck's threshold_low floor, reset by subtraction, multi-spike mode, 16-bit state "
    "limits or readout channel spreading",
)


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


