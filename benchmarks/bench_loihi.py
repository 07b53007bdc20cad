"""Benchmark: snnc's Loihi reference simulator vs Lava's fixed_pt CPU models on a 784-512-10 LIF net.

Both run the same integer network (8-bit mixed-sign weights, CUBA LIF decays, thresholds) on the
same binary inputs: synthetic MNIST-like digits (random thick strokes on 28x28, about 20% of pixels
lit) rate-coded as Bernoulli spikes with a peak rate of 0.2 per step. The script first checks that
every layer's spikes agree exactly on the samples Lava ran, then prints sample-steps per second.
Lava runs the samples of a batch one after another in one process graph (state reset between
samples), so its throughput does not depend on the batch size; it is measured on a few samples
only (``--lava-samples``). Caution: Lava's ``run_s`` includes the compile and process start of
its first ``run`` call (0.3-1.5 s), which dominates with few samples; ``run_all.py`` times every
Lava ``run`` call (``lava_timed.py``) and quotes the steady-state rate instead.

    .venv/bin/python benchmarks/bench_loihi.py [--steps 100] [--lava-samples 3] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from snnc.targets.loihi.lava_backend import lava_status, run_lava
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork
from snnc.targets.loihi.simulator import LoihiSimulator, simulate


def build_network(seed: int = 0) -> LoihiNetwork:
    """784-512-10 CUBA LIF chain with 8-bit mixed weights (even mantissas, as Lava keeps them)."""
    rng = np.random.default_rng(seed)
    w1 = np.clip(np.rint(rng.normal(0.0, 40.0, (512, 784)) / 2) * 2, -256, 254).astype(np.int64)
    w2 = np.clip(np.rint(rng.normal(0.0, 60.0, (10, 512)) / 2) * 2, -256, 254).astype(np.int64)
    l1 = LoihiLayer.dense("hidden", w1, source=-1, sign_mode="mixed", du=1024, dv=256, vth_mant=1200,
                          bias_mant=rng.integers(-20, 20, 512), bias_exp=6)
    l2 = LoihiLayer.dense("out", w2, source=0, sign_mode="mixed", du=1024, dv=256, vth_mant=800)
    return LoihiNetwork((784,), [l1, l2], name="mlp784")


def digit_like_inputs(batch: int, steps: int, seed: int = 1, peak_rate: float = 0.2) -> np.ndarray:
    """Synthetic 28x28 'digits' (3-5 thick random strokes), Bernoulli rate-coded: (batch, steps, 784) bool."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    imgs = np.zeros((batch, 28, 28))
    for b in range(batch):
        for _ in range(int(rng.integers(3, 6))):
            (y0, x0), (y1, x1) = rng.uniform(5, 23, (2, 2))
            t = np.clip(((yy - y0) * (y1 - y0) + (xx - x0) * (x1 - x0)) / max((y1 - y0) ** 2 + (x1 - x0) ** 2, 1e-9), 0, 1)
            d = np.hypot(yy - (y0 + t * (y1 - y0)), xx - (x0 + t * (x1 - x0)))
            imgs[b] = np.maximum(imgs[b], np.clip(1.6 - d / 1.2, 0, 1))
    rates = peak_rate * imgs.reshape(batch, 1, 784)
    return rng.random((batch, steps, 784)) < rates


def best_time(fn, repeat: int) -> float:
    """Return the best wall time (s) of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    """Run the benchmark and print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lava-samples", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    net = build_network()
    x64 = digit_like_inputs(64, args.steps)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {load:.1f}; "
          f"input density {x64.mean():.3f} spikes/input/step; T = {args.steps}")
    sim = LoihiSimulator(net)  # weights prepared once, as a loaded program does
    sim.run(x64[:2])  # warm-up (imports, BLAS threads)
    sim_rate = {}
    for b in (1, 64):
        x = x64[:b]
        dt = best_time(lambda: sim.run(x), args.repeat)
        sim_rate[b] = b * args.steps / dt
    ok, why = lava_status()
    lava_rate = lava_total_rate = None
    agree = "not checked (no Lava)"
    if ok:
        xl = x64[:args.lava_samples]
        t0 = time.perf_counter()
        lres = run_lava(net, xl)
        wall = time.perf_counter() - t0
        lava_rate = xl.shape[0] * args.steps / lres.run_s
        lava_total_rate = xl.shape[0] * args.steps / wall
        ref = simulate(net, xl)
        for i in range(len(net.layers)):
            np.testing.assert_array_equal(ref.spikes[i], lres.spikes[i])
        agree = f"yes: all spikes of both layers equal on {xl.shape[0]} samples"
        hidden_rate = ref.spike_counts[0].sum() / (xl.shape[0] * args.steps * 512)
        print(f"hidden firing rate {hidden_rate:.3f} spikes/neuron/step; outputs agree: {agree}")
    else:
        print(f"Lava unavailable: {why}")
    print()
    print("| engine | batch | sample-steps/s | x Lava (run only) | x Lava (incl. start-up) |")
    print("|---|---:|---:|---:|---:|")
    if lava_rate:
        print(f"| Lava 0.10 fixed_pt, run only ({args.lava_samples} samples) | 1 | {lava_rate:,.0f} | 1.0 | |")
        print(f"| Lava 0.10 fixed_pt, incl. build + start-up | 1 | {lava_total_rate:,.0f} | | 1.0 |")
    for b in (1, 64):
        r1 = f"{sim_rate[b] / lava_rate:,.0f}" if lava_rate else "-"
        r2 = f"{sim_rate[b] / lava_total_rate:,.0f}" if lava_total_rate else "-"
        print(f"| snnc reference (numpy) | {b} | {sim_rate[b]:,.0f} | {r1} | {r2} |")


if __name__ == "__main__":
    main()
