"""Run snnc's Lava worker jobs and time every Lava ``run`` call (runs inside the Lava interpreter).

    <lava-python> benchmarks/lava_timed.py IN.npz OUT.npz

Same input and output as ``snnc/targets/loihi/lava_worker.py`` (which it imports and calls), plus
``job{j}/run_calls_s``: the wall time of each ``AbstractProcess.run`` call of job ``j``, one per
sample. The first call of a job includes Lava's compile and process start; the later ones are the
steady-state run of one sample (the state resets between samples happen outside ``run``).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

WORKER_DIR = Path(__file__).resolve().parents[1] / "snnc" / "targets" / "loihi"


def main(argv: List[str]) -> int:
    """Patch ``AbstractProcess.run`` with a timer, run the worker's jobs, save outputs and timings."""
    if len(argv) != 3:
        sys.stderr.write("usage: lava_timed.py IN.npz OUT.npz\n")
        return 1
    sys.path.insert(0, str(WORKER_DIR))
    import lava_worker  # the standalone worker script (imports nothing from snnc)
    from lava.magma.core.process.process import AbstractProcess

    calls: List[float] = []
    orig_run = AbstractProcess.run

    def timed_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return orig_run(self, *args, **kwargs)
        finally:
            calls.append(time.perf_counter() - t0)

    AbstractProcess.run = timed_run  # type: ignore[method-assign]
    orig_job = lava_worker.run_job

    def run_job(*args: Any, **kwargs: Any) -> Dict[str, np.ndarray]:
        calls.clear()
        out = orig_job(*args, **kwargs)
        out["run_calls_s"] = np.array(calls, dtype=np.float64)
        return out

    lava_worker.run_job = run_job
    with np.load(argv[1], allow_pickle=False) as f:
        inp = {k: f[k] for k in f.files}
    out = lava_worker.run_jobs(inp)
    np.savez(argv[2], **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
