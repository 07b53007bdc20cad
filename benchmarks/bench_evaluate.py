"""A user's job, end to end: evaluate N held-out recordings on each target (load, bin, run, score).

    .venv/bin/python benchmarks/bench_evaluate.py [--n 100] [--batch-size 32]

For each target, a trained zoo checkpoint that deploys there is compiled with ``snnc.compile`` (its
own dt and bins) and :meth:`snnc.Program.evaluate` (the path of ``snn-run --input``) is timed on
the checkpoint's held-out recordings, given as file paths: reading the ``.bin``/``.wav`` files,
binning (or the artifact's cochlea), the reference simulator, scoring. One timed pass after a
warm-up pass on two files; samples per second = N / the pass's wall time. ``run_all.py`` puts the
rows into ``results.json`` (``evaluate``).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

CKPT_DIR = Path(__file__).resolve().parents[1] / "snnc" / "models" / "checkpoints"

#: (target, zoo checkpoint, held-out data set): the targets' reference simulators on a model that deploys there.
JOBS: Tuple[Tuple[str, str, str], ...] = (
    ("cpu", "nmnist_cnn", "nmnist"),
    ("loihi", "nmnist_cnn", "nmnist"),
    ("speck", "speck_cnn", "nmnist"),
    ("xylo", "fsdd_xylo", "fsdd"),
)


def held_out(data: str, count: int) -> Tuple[List[str], List[int], str]:
    """Return (files, labels, description) of ``count`` held-out recordings of ``data`` (nmnist or fsdd).

    N-MNIST-small: the first ``count`` of the 20 % stratified split (seed 0) the checkpoints were
    validated on; FSDD: recordings with index 5..9 (the zoo's validation split), evenly spaced in
    name order so that every digit is present.
    """
    if data == "nmnist":
        from snnc.models.data.nmnist import NMNISTSmall
        from snnc.models.data.splits import stratified_split

        ds = NMNISTSmall()
        _, val = stratified_split(ds.labels, 0.2, 0)
        val = val[:count]
        return ([str(ds.path(int(i))) for i in val], [ds.label(int(i)) for i in val],
                "N-MNIST-small, held-out 20 % split (seed 0)")
    if data == "fsdd":
        from snnc.models.data.fsdd import FSDD

        ds = FSDD()
        idx = [i for i in range(len(ds)) if 5 <= int(ds.indices[i]) <= 9]
        pick = [idx[int(k)] for k in np.linspace(0, len(idx) - 1, min(count, len(idx))).round().astype(int)]
        return ([str(ds.files[i]) for i in pick], [ds.label(i) for i in pick],
                "FSDD, held-out utterances (index 5..9)")
    raise ValueError(f"unknown data set {data!r}")


def evaluate_jobs(n: int, batch_size: int, jobs: Sequence[Tuple[str, str, str]] = JOBS) -> List[Dict[str, Any]]:
    """Compile each job's checkpoint for its target and time ``Program.evaluate`` on ``n`` held-out files."""
    import snnc

    rows = []
    for target, model, data in jobs:
        files, labels, desc = held_out(data, n)
        t0 = time.perf_counter()
        prog = snnc.Program(snnc.compile(str(CKPT_DIR / f"{model}.pt"), target))
        compile_s = time.perf_counter() - t0
        prog.evaluate(files[:2], labels[:2], batch_size=batch_size)  # warm-up (imports, first-call costs)
        t0 = time.perf_counter()
        ev = prog.evaluate(files, labels, batch_size=batch_size)
        wall = time.perf_counter() - t0
        rows.append({"target": target, "model": model, "checkpoint": f"snnc/models/checkpoints/{model}.pt",
                     "data": desc, "n": int(ev.n), "batch_size": int(batch_size), "steps": int(ev.steps),
                     "wall_s": wall, "samples_per_s": ev.n / wall, "accuracy": ev.accuracy,
                     "silent": int(ev.silent), "compile_s": compile_s,
                     "path": "snnc.compile(checkpoint, target); Program.evaluate(files, labels)"})
        logging.getLogger("snnc.bench").info("evaluate %s", rows[-1])
    return rows


def main() -> None:
    """Print the rows as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    print(json.dumps(evaluate_jobs(args.n, args.batch_size), indent=1))


if __name__ == "__main__":
    main()
