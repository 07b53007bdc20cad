"""Speck reference simulator vs sinabs on three of the sweep's networks (~20 s; a quick recheck of that claim).

    .venv/bin/python benchmarks/bench_speck_vs_sinabs.py [--repeat 3] [--steps 100]

Networks, inputs and the sinabs runner are ``run_all.py``'s (``speck_net``, ``inputs``,
``bench_speck.sinabs_layers``/``run_sinabs``); batch 1 and 64, Bernoulli input at 2 % and 30 %;
both timed interleaved round by round (median of ``--repeat`` after a warm-up); sinabs' spikes checked equal to snnc's.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_speck  # noqa: E402
from run_all import CNNS, MLPS, inputs, speck_net, timed_many  # noqa: E402

from snnc.targets.speck.simulator import simulate  # noqa: E402

NETS = ["mlp 784-512-10", "cnn 1x16x16 c4k3s2", "cnn 2x34x34 c12k5s2-c32k3s2 (nmnist_cnn shape)"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Time snnc's Speck simulator and sinabs; print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args(argv)
    up0 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    topos = {**MLPS, **CNNS}
    print("| network | batch | density | snnc Speck sim | sinabs | x sinabs | spikes equal |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in NETS:
        topo = topos[name]
        net = speck_net(topo)
        s_shape = tuple(topo[0]) if len(topo[0]) == 3 else (int(topo[0][0]), 1, 1)
        for batch in (1, 64):
            sl = bench_speck.sinabs_layers(net, [1] * len(net.layers), batch)
            for density in (0.02, 0.3):
                t = args.steps
                xs = inputs(topo, batch, t, density).reshape(batch, t, *s_shape).astype(np.int64)
                xf = xs.astype(np.float32)
                simulate(net, xs[:1, :2])
                bench_speck.run_sinabs(sl, xf[:, :2])
                (tn, _, rn), (tb, _, rb) = timed_many(
                    [lambda: simulate(net, xs), lambda: bench_speck.run_sinabs(sl, xf)], args.repeat)
                eq = all(np.array_equal(bench_speck.pooled(rn.spikes[ly.name], 1), r.astype(np.int64))
                         for ly, r in zip(net.layers, rb))
                n = batch * t
                print(f"| {name} | {batch} | {density:.0%} | {n / tn:,.0f} | {n / tb:,.0f} | {tb / tn:.2f} | {eq} |",
                      flush=True)
    up1 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\nLoad at start: `{up0}`; at end: `{up1}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
