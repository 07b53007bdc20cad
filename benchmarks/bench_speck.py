"""Benchmark: snnc's Speck reference simulator vs sinabs (DynapcnnLayer chain) on one network and input.

Both run the same integer network (snnc's quantiser, sinabs-compatible) in sinabs' default
neuron model (MultiSpike, reset by subtraction); the script checks that every layer's pooled
spikes agree exactly, then prints wall times, steps/s, spikes and synaptic operations.

    .venv/bin/python benchmarks/bench_speck.py [--batch 8] [--steps 100] [--size 64] [--repeat 3]
"""
from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

from snnc.targets.speck.mapping import assign_cores
from snnc.targets.speck.network import Destination, SpeckLayer, SpeckNetwork
from snnc.targets.speck.quantize import quantize_layer
from snnc.targets.speck.simulator import simulate


def build_network(size: int, seed: int = 0) -> tuple[SpeckNetwork, list[int]]:
    """A DVS-gesture-like stack: 2xSxS -> conv16/2 -> pool2 -> conv32 -> pool2 -> conv32 -> fc11."""
    rng = np.random.default_rng(seed)
    specs = [(16, 3, 2, 1, 2, 1.0), (32, 3, 1, 1, 2, 3.0), (32, 3, 1, 1, 1, 4.0)]  # f k stride pad pool thr
    in_shape = (2, size, size)
    layers, pools = [], []
    for i, (f, k, s, p, pool, thr) in enumerate(specs):
        w = rng.normal(0.0, 0.5, size=(f, in_shape[0], k, k))
        q = quantize_layer(f"conv{i}", w, None, v_threshold=thr, v_low=-2.0 * thr)
        lyr = SpeckLayer(f"conv{i}", q.weights, q.biases, q.threshold_high, q.threshold_low, in_shape,
                         stride=s, padding=p, destinations=[Destination(i + 1, (pool, pool))])
        layers.append(lyr)
        pools.append(pool)
        fo, ho, wo = lyr.neuron_shape
        in_shape = (fo, ho // pool, wo // pool)
    w = rng.normal(0.0, 0.3, size=(11, *in_shape))
    q = quantize_layer("fc", w, None, v_threshold=4.0, v_low=-8.0)
    layers.append(SpeckLayer("fc", q.weights, q.biases, q.threshold_high, q.threshold_low, in_shape))
    pools.append(1)
    net = SpeckNetwork(layers, (2, size, size), [0])
    assign_cores(net)
    return net, pools


def sinabs_layers(net: SpeckNetwork, pools: list[int], batch: int) -> list:
    """sinabs DynapcnnLayers holding the same integers (sinabs' dynapcnn __init__ needs samna: skipped)."""
    import sinabs
    import sinabs.activation as sa
    import sinabs.layers as sl

    pkg = "sinabs.backend.dynapcnn"
    if pkg not in sys.modules:
        parent = types.ModuleType(pkg)  # empty namespace: only the package path
        parent.__path__ = [str(Path(sinabs.__file__).parent / "backend" / "dynapcnn")]
        sys.modules[pkg] = parent
    mod = importlib.import_module(pkg + ".dynapcnn_layer")
    out = []
    for lyr, pool in zip(net.layers, pools):
        f, c, kh, kw = lyr.weights.shape
        conv = torch.nn.Conv2d(c, f, (kh, kw), stride=lyr.stride, padding=lyr.padding, bias=True)
        conv.weight.data = torch.from_numpy(lyr.weights.astype(np.float32))
        conv.bias.data = torch.from_numpy(lyr.biases.astype(np.float32))
        spk = sl.IAFSqueeze(batch_size=batch, spike_threshold=float(lyr.threshold_high),
                            min_v_mem=float(lyr.threshold_low), spike_fn=sa.MultiSpike,
                            reset_fn=sa.MembraneSubtract())
        out.append(mod.DynapcnnLayer(conv, spk, lyr.input_shape, [[pool, pool]], discretize=False))
    return out


def run_sinabs(layers: list, x: np.ndarray) -> list[np.ndarray]:
    """Forward (batch*time, C, H, W) through the sinabs layers; pooled outputs per layer."""
    cur = torch.from_numpy(x.reshape(-1, *x.shape[2:]).astype(np.float32))
    outs = []
    with torch.no_grad():
        for lyr in layers:
            lyr.spk_layer.reset_states()
            cur = lyr(cur)
            outs.append(cur.numpy())
    return outs


def pooled(spikes: np.ndarray, pool: int) -> np.ndarray:
    """Sum-pool snnc's (B, T, f, H, W) spikes like the chip's destination (for the comparison)."""
    b, t, f, h, w = spikes.shape
    s = spikes.reshape(b * t, f, h, w)
    if pool == 1:
        return s
    return s[:, :, : h // pool * pool, : w // pool * pool].reshape(
        b * t, f, h // pool, pool, w // pool, pool).sum(axis=(3, 5))


def main() -> None:
    """Run both simulators, check agreement, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rate", type=float, default=0.05, help="input events per pixel per step")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    net, pools = build_network(args.size)
    x = np.random.default_rng(1).poisson(args.rate, (args.batch, args.steps, *net.input_shape))
    layers = sinabs_layers(net, pools, args.batch)

    t_snnc, t_sinabs = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = simulate(net, x, spike_mode="multi")
        t_snnc.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = run_sinabs(layers, x)
        t_sinabs.append(time.perf_counter() - t0)
    for lyr, pool, r in zip(net.layers, pools, ref):
        np.testing.assert_array_equal(pooled(res.spikes[lyr.name], pool), r.astype(np.int64))

    steps = args.batch * args.steps
    print(f"# Speck reference simulator vs sinabs 3.1.3 -- {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# network {' -> '.join(f'{l.name}{l.neuron_shape}@core{l.core}' for l in net.layers)}")
    print(f"# input batch={args.batch} steps={args.steps} shape={net.input_shape} rate={args.rate}; "
          f"spikes identical in every layer: yes")
    print(f"{'simulator':<22}{'best s':>10}{'median s':>10}{'sample-steps/s':>16}")
    for name, ts in (("snnc speck (int)", t_snnc), ("sinabs DynapcnnLayer", t_sinabs)):
        print(f"{name:<22}{min(ts):>10.3f}{float(np.median(ts)):>10.3f}{steps / min(ts):>16.0f}")
    print(f"{'layer':<8}{'core':>5}{'spikes':>12}{'spikes/neuron/step':>20}{'synops':>14}")
    for lyr in net.layers:
        n = int(res.spike_counts[lyr.name].sum())
        rate = n / (steps * int(np.prod(lyr.neuron_shape)))
        print(f"{lyr.name:<8}{lyr.core:>5}{n:>12}{rate:>20.3f}{int(res.synops[lyr.name].sum()):>14}")
    print(f"speedup snnc/sinabs: {min(t_sinabs) / min(t_snnc):.2f}x")


if __name__ == "__main__":
    main()
