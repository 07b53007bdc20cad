"""Loihi reference simulator: numba kernel engine vs numpy engine vs Lava fixed_pt on the two headline cases.

    .venv/bin/python benchmarks/bench_engines.py [--repeat 5] [--no-lava] [--lava-samples 2]
    .venv/bin/python benchmarks/bench_engines.py --sweep     # numba vs numpy engine on run_all's sweep (~3 min)

Cases (run_all.py's earlier headline, before it moved to the trained checkpoints): the 784-512-10 LIF MLP of ``bench_loihi.py``
on digit-like rate-coded input (100 steps) and the zoo's ``nmnist_cnn`` (seed-0 init, compiled
by ``snnc.compile``) on real N-MNIST-small events (2 ms bins, 150 steps); batch 64 and 1. Both
engines are timed interleaved round by round (median of ``--repeat`` after a warm-up), their spikes, states, spike
counts and synops checked equal; Lava runs 1 + ``--lava-samples`` samples through
``lava_timed.py`` in the same run (rate = steps / median of the later samples' ``run`` calls) and
its spikes are checked equal to snnc's. Also reports the numba first-call cost in this process
(cache load or compile) and the load average.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_loihi  # noqa: E402
from run_all import run_lava_timed, timed_many  # noqa: E402

from snnc.targets.loihi.simulator import LoihiSimulator  # noqa: E402

log = logging.getLogger("snnc.bench.engines")


def cases(batch: int, steps_mlp: int, steps_cnn: int) -> List[Any]:
    """Return [(label, network, input spikes (B, T, ...) bool)] of the two headline cases."""
    import snnc
    from snnc.models import zoo
    from snnc.models.data.events import BinSpec
    from snnc.models.data.nmnist import load_nmnist_small_binned
    from snnc.targets.loihi.target import network_from_payload

    out = [("784-512-10 MLP", bench_loihi.build_network(), bench_loihi.digit_like_inputs(batch, steps_mlp))]
    torch.manual_seed(0)
    art = snnc.compile(zoo.build("nmnist_cnn"), "loihi", dt_s=2e-3)
    cnn, _ = network_from_payload(art.payload)
    data = load_nmnist_small_binned(BinSpec(dt_us=2000, n_steps=steps_cnn, mode="binary"))
    out.append(("nmnist_cnn N-MNIST", cnn, data.dense_batch(list(range(batch))).astype(bool)))
    return out


def check_equal(a: Any, b: Any) -> None:
    """Raise AssertionError unless two SimResults hold identical integers."""
    for i in range(len(a.spikes)):
        np.testing.assert_array_equal(a.spikes[i], b.spikes[i])
        np.testing.assert_array_equal(a.spike_counts[i], b.spike_counts[i])
        np.testing.assert_array_equal(a.synops[i], b.synops[i])
        if a.u[i] is not None or b.u[i] is not None:
            np.testing.assert_array_equal(a.u[i], b.u[i])
            np.testing.assert_array_equal(a.v[i], b.v[i])


def sweep(repeat: int) -> None:
    """Print numba vs numpy engine rates on ``run_all.py``'s sweep networks (batch 1 / 64, 2 % / 30 % input)."""
    from run_all import CNNS, MLPS, inputs, loihi_net

    up0 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print("| network | batch | steps | density | numba | numpy | numba / numpy | equal |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, topo in {**MLPS, **CNNS}.items():
        net = loihi_net(topo)
        sims = [LoihiSimulator(net, engine="numba"), LoihiSimulator(net, engine="numpy")]
        for b in (1, 64):
            for d in (0.02, 0.3):
                t = 20 if ("4096" in name or "64x64" in name) and b == 64 else 40
                x = inputs(topo, b, t, d)
                for sim in sims:
                    sim.run(x[:1, :2])
                (tk, _, rk), (tn, _, rn) = timed_many([lambda: sims[0].run(x), lambda: sims[1].run(x)], repeat)
                check_equal(rn, rk)
                print(f"| {name} | {b} | {t} | {d:.0%} | {b * t / tk:,.0f} | {b * t / tn:,.0f} | {tn / tk:.2f} | yes |",
                      flush=True)
    up1 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\nLoad at start: `{up0}`; at end: `{up1}`")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Time both engines (and Lava) on the headline cases; print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--no-lava", action="store_true")
    ap.add_argument("--lava-samples", type=int, default=2)
    ap.add_argument("--sweep", action="store_true", help="numba vs numpy engine on run_all's sweep networks instead")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.sweep:
        sweep(max(1, min(args.repeat, 2)))
        return 0
    up0 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    t0 = time.perf_counter()
    from snnc.targets.loihi import kernels

    t_imp = time.perf_counter() - t0
    cs = cases(args.batch, 100, 150)
    rows: List[Dict[str, Any]] = []
    lava: List[Any] = [None] * len(cs)
    if not args.no_lava:
        lava = run_lava_timed([(net, x[:1 + args.lava_samples]) for _, net, x in cs])
    first_call: Dict[str, float] = {}
    for (label, net, x), lv in zip(cs, lava):
        sims = {"numba": LoihiSimulator(net, engine="numba"), "numpy": LoihiSimulator(net, engine="numpy")}
        t1 = time.perf_counter()
        sims["numba"].run(x[:1, :2])
        first_call[label] = time.perf_counter() - t1
        sims["numpy"].run(x[:2])
        check_equal(sims["numpy"].run(x[:4], True), sims["numba"].run(x[:4], True))
        row: Dict[str, Any] = {"case": label, "steps": int(x.shape[1])}
        for b in (args.batch, 1):
            xb = np.ascontiguousarray(x[:b])
            (dt_k, _, rk), (dt_n, _, rn) = timed_many([lambda: sims["numba"].run(xb), lambda: sims["numpy"].run(xb)],
                                                      args.repeat)
            check_equal(rn, rk)
            row[f"numba_b{b}"] = b * x.shape[1] / dt_k
            row[f"numpy_b{b}"] = b * x.shape[1] / dt_n
            if b == args.batch:
                row["res"] = rk
        if lv is not None:
            lres, calls = lv
            n = 1 + args.lava_samples
            row["lava"] = x.shape[1] / float(np.median(calls[1:]))
            row["lava_equal"] = all(s is None or np.array_equal(row["res"].spikes[i][:n], s)
                                    for i, s in enumerate(lres.spikes))
        rows.append(row)
    up1 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    b = args.batch
    print(f"\nLoad at start: `{up0}`; at end: `{up1}`. kernel threads: {kernels.get_threads()}; "
          f"kernels module import {t_imp:.2f} s; first numba call per network (cache load or compile): "
          + ", ".join(f"{k} {v:.2f} s" for k, v in first_call.items()) + "\n")
    print(f"| case | numba b={b} | numpy b={b} | numba/numpy | numba b=1 | numpy b=1 | Lava | numba x Lava (b={b}) "
          f"| numba x Lava (b=1) | numpy x Lava (b={b}) | Lava spikes equal |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        lv = r.get("lava")
        rat = (lambda k: f"{r[k] / lv:,.0f}") if lv else (lambda k: "-")
        print(f"| {r['case']} | {r[f'numba_b{b}']:,.0f} | {r[f'numpy_b{b}']:,.0f} | "
              f"{r[f'numba_b{b}'] / r[f'numpy_b{b}']:.1f} | {r['numba_b1']:,.0f} | {r['numpy_b1']:,.0f} | "
              f"{'-' if lv is None else f'{lv:,.1f}'} | {rat(f'numba_b{b}')} | {rat('numba_b1')} | "
              f"{rat(f'numpy_b{b}')} | {r.get('lava_equal', '-')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
