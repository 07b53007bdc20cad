"""The main job, end to end: a model -> NIR -> compile for each target -> run on real N-MNIST events.

Uses the shipped checkpoint when present (``snnc/models/checkpoints/``); until one is shipped it
builds the baseline N-MNIST MLP untrained, so the pipeline (not the accuracy) is what this shows.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile

import numpy as np

import snnc
from snnc.errors import SnncError

log = logging.getLogger("demo")


def main() -> int:
    """Compile the default model for every target and run it on a few real N-MNIST recordings."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from snnc.models.demo_model import default_model_and_samples

    model_path, events, labels, dt_s, steps = default_model_and_samples()
    out_dir = tempfile.mkdtemp(prefix="snnc-demo-")
    nir_path = os.path.join(out_dir, "model.nir")
    from snnc.compiler.nir_export import write_nir

    write_nir(snnc.load_model(model_path), nir_path)
    log.info("exported %s -> %s", model_path, nir_path)
    from snnc.targets.base import target_names

    for target in target_names():
        try:
            art = snnc.compile(nir_path, target=target, dt_s=dt_s)
        except SnncError as e:
            log.info("[%s] refused:\n%s", target, e.format())
            continue
        path = art.save(os.path.join(out_dir, f"model.{target}.snnc"))
        res = snnc.load(path).run(events, steps=steps)
        acc = float(np.mean(res.predictions() == labels))
        log.info("[%s] %s: accuracy %.1f%% on %d held-out recordings", target, path, 100 * acc, len(labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
