"""Accuracy validation at compile time: the float model against the Loihi reference simulator.

``snnc.compile(model, "loihi", validate="nmnist")`` (CLI: ``-O validate=nmnist``) runs, on the
held-out N-MNIST-small split (``NMNISTSmall().split(0.2, seed=0)[1]``, binned at the compile
``dt_s``):

* the float model (the cpu target's simulator on the same passed graph) on the inputs as binned
  for training (event counts per bin) and on the binary spikes Loihi takes (counts clipped to 1);
* the Loihi reference simulator on the binary spikes, padded with ``latency_steps`` zero steps so
  that the delayed output sees the whole input.

Predictions are the argmax of the output summed over time (spike counts, or ``v`` of a readout).
The report gets the three accuracies, the gaps in percentage points and a warning when Loihi is
more than ``GAP_WARN_PP`` below the float model. Options: ``validate_samples`` (first N samples
of the split; default all) and ``validate_steps`` is the model's (``n_steps``, default 300 ms /
dt).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, Mapping, Optional

import numpy as np

from snnc.compiler.graph import Graph
from snnc.errors import InputError
from snnc.targets.loihi.network import LoihiNetwork

log = logging.getLogger(__name__)

#: Warn when the Loihi accuracy is this many percentage points below the float model's.
GAP_WARN_PP = 1.0
DATASETS = ("nmnist",)


def nmnist_validation_set(dt_s: float, n_steps: Optional[int] = None, samples: Optional[int] = None
                          ) -> Dict[str, Any]:
    """Return the held-out N-MNIST-small split binned at ``dt_s``: counts (B, T, 2, 34, 34) and labels."""
    from snnc.models.data import BinSpec, load_nmnist_small_binned
    from snnc.models.data.nmnist import NMNISTSmall

    dt_us = int(round(dt_s * 1e6))
    if dt_us <= 0 or abs(dt_us - dt_s * 1e6) > 1e-6:
        raise InputError(f"dt_s={dt_s} is not a whole number of microseconds", hint="use e.g. 1e-3 or 2e-3")
    steps = int(n_steps) if n_steps else int(round(0.3 / dt_s))
    binned = load_nmnist_small_binned(BinSpec(dt_us=dt_us, n_steps=steps, mode="count"))
    val = NMNISTSmall().split(0.2, seed=0)[1]
    if samples:
        val = val[: int(samples)]
    return {"x": binned.dense_batch(val, np.float32), "labels": binned.labels[val], "indices": val,
            "dt_us": dt_us, "n_steps": steps}


def validate_accuracy(graph: Graph, net: LoihiNetwork, run: Mapping[str, Any], dt_s: float, method: str,
                      extra: Mapping[str, Any]) -> Dict[str, Any]:
    """Return the accuracy section of the report (see module doc)."""
    from snnc.runtime.evaluate import array_batches, evaluate_batches
    from snnc.runtime.result import Result
    from snnc.targets.cpu.simulator import GraphSimulator
    from snnc.targets.loihi.general import simulate_any
    from snnc.targets.loihi.simulator import LoihiSimulator

    name = str(extra.get("validate"))
    if name not in DATASETS:
        raise InputError(f"unknown validation data set '{name}'", hint=f"known: {list(DATASETS)}")
    t0 = time.perf_counter()
    data = nmnist_validation_set(dt_s, extra.get("validate_steps"), extra.get("validate_samples"))
    x, y = data["x"], data["labels"]
    if tuple(x.shape[2:]) != tuple(net.input_shape):
        raise InputError(f"validation inputs {tuple(x.shape[2:])} do not fit the model input {net.input_shape}")
    batch = int(extra.get("validate_batch", 50))
    fsim = GraphSimulator(graph, dt_s, method)
    lsim = LoihiSimulator(net)
    lat = int(run.get("latency_steps", 0))
    out_layer = int(run["output_layer"])
    scale = run.get("readout_scale")

    def loihi(xb: np.ndarray) -> Result:
        res = simulate_any(net, xb > 0, sim=lsim)
        return Result(output=res.v[out_layer] / float(scale) if scale else res.spikes[out_layer])

    ev_count = evaluate_batches(lambda xb: fsim.run(xb.astype(np.float64)), array_batches(x, batch), y)
    ev_bin = evaluate_batches(lambda xb: fsim.run((xb > 0).astype(np.float64)), array_batches(x, batch), y)
    ev_loihi = evaluate_batches(loihi, array_batches(x, batch), y, latency_steps=lat)
    acc_count, acc_bin, acc_loihi = float(ev_count.accuracy), float(ev_bin.accuracy), float(ev_loihi.accuracy)
    agree = int(np.sum(ev_loihi.predictions == ev_bin.predictions))
    gap = 100.0 * (acc_count - acc_loihi)
    rep: Dict[str, Any] = {
        "data": f"{name}: NMNISTSmall().split(0.2, seed=0)[1], {len(y)} samples, {data['n_steps']} steps of "
                f"{data['dt_us']} us",
        "samples": int(len(y)),
        "float_accuracy": float(acc_count),
        "float_binary_input_accuracy": float(acc_bin),
        "loihi_accuracy": float(acc_loihi),
        "gap_pp": float(gap),
        "gap_binarisation_pp": float(100.0 * (acc_count - acc_bin)),
        "gap_quantisation_pp": float(100.0 * (acc_bin - acc_loihi)),
        "prediction_agreement_loihi_vs_float_binary": float(agree / max(len(y), 1)),
        "loihi_padding_steps": lat,
        "seconds": round(time.perf_counter() - t0, 2),
        "notes": ["float: cpu target simulator on the inputs as binned for training (counts per bin)",
                  "float_binary_input: the same on binary spikes (counts clipped to 1), what Loihi receives",
                  f"loihi: reference simulator (bit-exact with Lava fixed_pt) on binary spikes + {lat} zero steps "
                  "(its output lags by that many steps)"],
    }
    if gap > GAP_WARN_PP:
        rep["warning"] = (f"Loihi accuracy {100 * acc_loihi:.2f}% is {gap:.2f} percentage points below the float "
                          f"model's {100 * acc_count:.2f}% (limit {GAP_WARN_PP} pp)")
    log.info("validation: float %.4f, float/binary %.4f, loihi %.4f", acc_count, acc_bin, acc_loihi)
    return rep
