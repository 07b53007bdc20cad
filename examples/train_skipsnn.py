"""Train SkipSNN in two stages on noise-padded N-MNIST and report accuracy, MFLOPs and awake ratio.

    python examples/train_skipsnn.py --runs runs --out snnc/models/checkpoints/skipsnn.pt
    python examples/train_skipsnn.py --epochs1 1 --epochs2 1 --limit-train 16 --limit-val 8 --hidden 16  # smoke

Stage 1 trains the main network with the gate open (this *is* the plain SNN baseline);
stage 2 freezes it and trains the controller. The report compares, on the validation split
(fixed noise seed 0): the plain SNN, the gated SkipSNN as a float model, and the gated
SkipSNN compiled for the cpu target (its gate neurons and broadcast synapses included).
"""
from __future__ import annotations

import argparse
import json
import logging
import os

import numpy as np
import torch

from snnc.models.checkpoint import load_torch_file
from snnc.models.skipsnn import skipsnn_report
from snnc.models.train import evaluate_checkpoint, load_data
from snnc.models.train import main as snn_train


def main() -> None:
    """Run both stages (unless their checkpoints exist) and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--out", default="runs/skipsnn.pt")
    ap.add_argument("--epochs1", type=int, default=None)
    ap.add_argument("--epochs2", type=int, default=4)
    ap.add_argument("--lr2", type=float, default=0.005)
    ap.add_argument("--limit-val", type=int, default=None)
    ap.add_argument("--limit-train", type=int, default=None, help="train on the first N recordings only")
    ap.add_argument("--hidden", type=int, default=None, help="hidden neurons (default: the recipe's 800)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    os.makedirs(args.runs, exist_ok=True)
    s1 = os.path.join(args.runs, "skipsnn_s1.pt")
    small = (["--limit-train", str(args.limit_train)] if args.limit_train else []) + \
        (["--limit-val", str(args.limit_val)] if args.limit_val else [])
    hidden = {"hidden": args.hidden} if args.hidden else {}
    if not os.path.exists(s1):
        extra = ["--epochs", str(args.epochs1)] if args.epochs1 else []
        extra += ["--kwargs", json.dumps(hidden)] if hidden else []
        assert snn_train(["skipsnn", "--stage", "1", "--out", s1, "--quiet", *extra, *small]) == 0
    if not os.path.exists(args.out):  # as scripts/train_zoo.sh: the surrogate anneals every epoch
        extra = ["--epochs", str(args.epochs2), "--lr", str(args.lr2),
                 "--kwargs", json.dumps({**hidden, "anneal_every": 1})]
        assert snn_train(["skipsnn", "--stage", "2", "--init", s1, "--out", args.out, "--quiet", *extra, *small]) == 0
    torch.set_num_threads(1)
    gated, _ = load_torch_file(args.out)
    plain, _ = load_torch_file(s1)
    plain.set_stage(1)  # gate open
    _, val, _ = load_data("nmnist-noise", 1000, 300, limit_val=args.limit_val)
    rows = {}
    for name, model in (("plain_snn", plain), ("skipsnn_float", gated)):
        parts = [skipsnn_report(model, torch.from_numpy(x), y)
                 for x, y in (val.batch(np.arange(a, min(a + 50, len(val)))) for a in range(0, len(val), 50))]
        n = [min(50, len(val) - a) for a in range(0, len(val), 50)]
        rows[name] = {k: float(np.average([p[k] for p in parts], weights=n))
                      for k in ("accuracy", "mflops", "awake_ratio", "nasfr")}
    rows["skipsnn_compiled_cpu"] = evaluate_checkpoint(args.out, limit_val=args.limit_val, compiled=True)["compiled_cpu"]
    print(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
