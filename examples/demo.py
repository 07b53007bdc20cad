"""The main job, end to end: shipped checkpoints -> NIR -> every target -> run on real N-MNIST events.

For each demo model (the baseline LIF MLP and the Speck-compatible IF CNN) and each target: export
the trained checkpoint to NIR, compile the NIR file (or show the refusal and its rules), save and
load the artifact, and run held-out N-MNIST recordings on the target's reference simulator.
Then the spoken-digit model for Xylo (``fsdd_xylo``, reset by subtraction, which NIR files cannot
store: compiled from its checkpoint) on every target, run on held-out FSDD utterances.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

import numpy as np

import snnc
from snnc.compiler.nir_export import write_nir
from snnc.errors import SnncError
from snnc.models import zoo
from snnc.models.demo_model import DEMO_MODELS, checkpoint_path, held_out_recordings
from snnc.targets.base import target_names

log = logging.getLogger("demo")


def main() -> int:
    """Compile the demo models for every target and report accuracy on held-out recordings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=50, help="held-out recordings to run (of 200)")
    ap.add_argument("--out", default=tempfile.mkdtemp(prefix="snnc-demo-"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    events, labels = held_out_recordings(args.samples)
    log.info("data: %d held-out N-MNIST-small recordings (Orchard et al. 2015, CC BY-SA 4.0)", len(labels))
    for name in DEMO_MODELS:
        rec = zoo.recipe(name)
        dt_s, steps = rec["dt_us"] * 1e-6, rec["n_steps"]
        nir_path = os.path.join(args.out, f"{name}.nir")
        write_nir(snnc.load_model(str(checkpoint_path(name))), nir_path)
        log.info("\n%s: exported %s -> %s (dt %.0f ms, %d steps)", name, checkpoint_path(name), nir_path,
                 dt_s * 1e3, steps)
        for target in target_names():
            t0 = time.perf_counter()
            try:
                art = snnc.compile(nir_path, target=target, dt_s=dt_s)
            except SnncError as e:
                rules = sorted({v.rule for v in getattr(e, "violations", [])})
                log.info("  [%s] refused (%s): see `snn-compile %s --target %s`", target, ", ".join(rules) or e.message,
                         nir_path, target)
                continue
            t_compile = time.perf_counter() - t0
            path = art.save(os.path.join(args.out, f"{name}.{target}.snnc"))
            res = snnc.load(path).run(events, steps=steps)
            acc = float(np.mean(res.predictions() == labels))
            log.info("  [%s] compiled in %.2f s -> %s; accuracy %.1f%%, %.0f spikes and %.0f synops per sample",
                     target, t_compile, path, 100 * acc, sum(float(np.mean(c)) for c in res.spike_counts.values()),
                     sum(float(np.mean(c)) for c in res.synops.values()))
    spoken_digits(args.out, args.samples)
    return 0


def spoken_digits(out: str, samples: int) -> None:
    """Compile the shipped ``fsdd_xylo`` checkpoint for every target; run held-out FSDD utterances."""
    from snnc.models.train import load_data

    name = "fsdd_xylo"
    rec = zoo.recipe(name)
    dt_s = rec["dt_us"] * 1e-6
    _, val, _ = load_data(rec["data"], rec["dt_us"], rec["n_steps"])
    x, y = val.batch(np.linspace(0, len(val) - 1, min(samples, len(val))).astype(int))
    log.info("\n%s: %s (dt %.0f ms, %d steps), %d held-out FSDD utterances (Jakobovski et al., CC BY-SA 4.0)",
             name, checkpoint_path(name), dt_s * 1e3, rec["n_steps"], len(y))
    for target in target_names():
        try:
            art = snnc.compile(str(checkpoint_path(name)), target=target, dt_s=dt_s)
        except SnncError as e:
            rules = sorted({v.rule for v in getattr(e, "violations", [])})
            log.info("  [%s] refused (%s)", target, ", ".join(rules) or e.message)
            continue
        lat = int(art.report.get("latency_steps", 0) or 0)  # the chip's output lags by this many steps
        xin = np.concatenate([x, np.zeros((x.shape[0], lat, *x.shape[2:]), x.dtype)], axis=1)
        path = art.save(os.path.join(out, f"{name}.{target}.snnc"))
        res = snnc.load(path).run(xin)
        log.info("  [%s] -> %s; accuracy %.1f%%", target, path, 100 * float(np.mean(res.predictions() == y)))


if __name__ == "__main__":
    sys.exit(main())
