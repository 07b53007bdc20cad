"""Compile a shipped zoo checkpoint for every target and run it on real N-MNIST recordings.

    python examples/compile_and_run.py [--model nmnist_cnn] [--samples 20] [--out DIR]

For each target: compile (or print the refusal with its rules), save the artifact, load it back
and run the held-out recordings on the reference simulator; prints accuracy and activity.
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile

import numpy as np

import snnc
from snnc.errors import SnncError
from snnc.models import zoo
from snnc.models.data.nmnist import NMNISTSmall
from snnc.targets.base import target_names

log = logging.getLogger("compile_and_run")
CKPT_DIR = os.path.join(os.path.dirname(snnc.__file__), "models", "checkpoints")


def main() -> int:
    """Compile and run one zoo model on every target."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="nmnist_mlp")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--out", default=tempfile.mkdtemp(prefix="snnc-example-"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rec = zoo.recipe(args.model)
    dt_s, steps = rec["dt_us"] * 1e-6, rec["n_steps"]
    ds = NMNISTSmall()
    val = ds.split(0.2, seed=0)[1][: args.samples]
    events = [ds.events(int(i)) for i in val]
    labels = np.array([ds.label(int(i)) for i in val])
    ckpt = os.path.join(CKPT_DIR, f"{args.model}.pt")
    for target in target_names():
        try:
            art = snnc.compile(ckpt, target=target, dt_s=dt_s)
        except SnncError as e:
            log.info("[%s] refused: %s", target, e.format())
            continue
        path = art.save(os.path.join(args.out, f"{args.model}.{target}.snnc"))
        res = snnc.load(path).run(events, steps=steps)
        acc = float(np.mean(res.predictions() == labels))
        spikes = sum(float(np.mean(c)) for c in res.spike_counts.values())
        log.info("[%s] accuracy %.1f%% on %d recordings, %.0f spikes/sample, %s", target, 100 * acc,
                 len(labels), spikes, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
