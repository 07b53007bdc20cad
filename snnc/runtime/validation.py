"""Accuracy validation at compile time: the float model against the target's reference simulator.

``snnc.compile(model, "loihi", validate="nmnist")`` (CLI: ``-O validate=nmnist``; a target offers
the option by listing ``validate`` in its ``-O`` options) runs, on a registered held-out data set
(:mod:`snnc.runtime.registry`; ``nmnist``: ``NMNISTSmall().split(0.2, seed=0)[1]``, binned at the
compile ``dt_s``):

* the float model (the cpu target on the same passed graph) on the inputs as binned for training
  (event counts per bin) and on the inputs the chip receives (counts clipped to 1 where the
  target takes single spikes);
* the target's reference simulator on those inputs, padded with the program's ``latency_steps``
  zero steps so that the delayed output sees the whole input.

Predictions are the argmax of the output summed over time (spike counts, or ``v`` of a readout).
The report gets the three accuracies, the gaps in percentage points and a warning when the chip
is more than ``GAP_WARN_PP`` below the float model. Options: ``validate_samples`` (first N samples
of the split; default all), ``validate_steps`` (steps per sample; default 300 ms / dt) and
``validate_batch`` (default 50).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, Mapping

import numpy as np

from snnc.compiler.graph import Graph
from snnc.errors import InputError
from snnc.formats.result import Result
from snnc.runtime.evaluate import array_batches, evaluate_batches
from snnc.runtime.registry import validation_set
from snnc.targets.base import CompileOptions, Lowered, Target, get_target

log = logging.getLogger(__name__)

#: Warn when the chip's accuracy is this many percentage points below the float model's.
GAP_WARN_PP = 1.0


def validate_accuracy(target: Target, graph: Graph, lowered: Lowered, options: CompileOptions,
                      manifest: Mapping[str, Any]) -> Dict[str, Any]:
    """Return the accuracy section of the compile report of ``lowered`` (see module doc)."""
    extra = options.extra
    name = str(extra.get("validate"))
    load = validation_set(name)
    t0 = time.perf_counter()
    data = load(options.dt_s, extra.get("validate_steps"), extra.get("validate_samples"))
    x, y = data["x"], data["labels"]
    if tuple(x.shape[2:]) != tuple(manifest["input_shape"]):
        raise InputError(f"validation inputs {tuple(x.shape[2:])} do not fit the model input "
                         f"{tuple(manifest['input_shape'])}")
    batch = int(extra.get("validate_batch", 50))
    cpu = get_target("cpu")
    float_opts = CompileOptions(dt_s=options.dt_s, method=options.method)
    float_payload = cpu.lower(graph, float_opts).payload
    float_manifest = {"options": float_opts.to_dict()}
    lat = int(lowered.report.get("latency_steps", 0))
    chip = target.name

    def chip_input(xb: np.ndarray) -> np.ndarray:
        return xb > 0 if target.binary_input else xb

    def float_model(xb: np.ndarray) -> Result:
        return cpu.simulate(float_payload, float_manifest, xb.astype(np.float64))

    def chip_model(xb: np.ndarray) -> Result:
        return target.simulate(lowered.payload, manifest, chip_input(xb))

    ev_count = evaluate_batches(float_model, array_batches(x, batch), y)
    ev_bin = evaluate_batches(lambda xb: float_model(chip_input(xb)), array_batches(x, batch), y)
    ev_chip = evaluate_batches(chip_model, array_batches(x, batch), y, latency_steps=lat)
    acc_count, acc_bin, acc_chip = float(ev_count.accuracy), float(ev_bin.accuracy), float(ev_chip.accuracy)
    agree = int(np.sum(ev_chip.predictions == ev_bin.predictions))
    gap = 100.0 * (acc_count - acc_chip)
    rep: Dict[str, Any] = {
        "data": f"{name}: {data['split']}, {len(y)} samples, {data['n_steps']} steps of {data['dt_us']} us",
        "samples": int(len(y)),
        "float_accuracy": float(acc_count),
        "float_binary_input_accuracy": float(acc_bin),
        f"{chip}_accuracy": float(acc_chip),
        "gap_pp": float(gap),
        "gap_binarisation_pp": float(100.0 * (acc_count - acc_bin)),
        "gap_quantisation_pp": float(100.0 * (acc_bin - acc_chip)),
        f"prediction_agreement_{chip}_vs_float_binary": float(agree / max(len(y), 1)),
        f"{chip}_padding_steps": lat,
        "seconds": round(time.perf_counter() - t0, 2),
        "notes": ["float: cpu target simulator on the inputs as binned for training (counts per bin)",
                  "float_binary_input: the same on the inputs the chip receives"
                  + (" (counts clipped to 1)" if target.binary_input else ""),
                  f"{chip}: its reference simulator ({target.description}) on those inputs + {lat} zero steps "
                  "(its output lags by that many steps)"],
    }
    if gap > GAP_WARN_PP:
        rep["warning"] = (f"{chip.capitalize()} accuracy {100 * acc_chip:.2f}% is {gap:.2f} percentage points below "
                          f"the float model's {100 * acc_count:.2f}% (limit {GAP_WARN_PP} pp)")
    log.info("validation: float %.4f, float/chip input %.4f, %s %.4f", acc_count, acc_bin, chip, acc_chip)
    return rep
