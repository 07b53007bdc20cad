"""Fold a trained ASA-SNN into its deployable static form and compare NASFR and accuracy.

    python examples/train_asa.py --ckpt runs/asa_snn.pt --out snnc/models/checkpoints/asa_snn_static.pt
    python examples/train_asa.py --ckpt asa.pt --out asa_static.pt --epochs 1 --limit-train 32 --limit-val 16  # smoke
    snn-train asa_snn --data nmnist-binary --out runs/asa_snn_binary.pt   # the Loihi variant (binary bins)
    python examples/train_asa.py --ckpt runs/asa_snn_binary.pt --out snnc/models/checkpoints/asa_snn_static_binary.pt

When ``--ckpt`` does not exist it is first trained with ``snn-train asa_snn`` (``--epochs``,
``--limit-train``, ``--limit-val`` passed on).

Calibrates the per-channel ASA gains on the training split (the data the model was trained
on, never the validation split), folds them and BatchNorm into the conv weights, saves the
static model as an snnc checkpoint (zoo name ``asa_snn_static``) and prints validation
accuracy and NASFR of the dynamic model, the static model and the static model compiled for
the cpu target.
"""
from __future__ import annotations

import argparse
import json
import logging
import os

import numpy as np
import torch

from snnc.models.asa import make_static
from snnc.models.checkpoint import load_torch_file, save_checkpoint
from snnc.models.train import evaluate, evaluate_checkpoint, load_data
from snnc.models.train import main as snn_train


def main() -> None:
    """Calibrate, fold, save and report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True, help="trained asa_snn checkpoint")
    ap.add_argument("--out", required=True, help="where to write the asa_snn_static checkpoint")
    ap.add_argument("--name", default=None, help="zoo name recorded in the checkpoint (default: asa_snn_static, "
                    "asa_snn_static_binary when the ASA net was trained on binary bins)")
    ap.add_argument("--calib", type=int, default=400, help="training samples used to calibrate the gains")
    ap.add_argument("--epochs", type=int, default=None, help="epochs when --ckpt must be trained first")
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--limit-val", type=int, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    if not os.path.exists(args.ckpt):
        extra_args = [f for k, v in (("--epochs", args.epochs), ("--limit-train", args.limit_train),
                                     ("--limit-val", args.limit_val)) if v is not None for f in (k, str(v))]
        if snn_train(["asa_snn", "--out", args.ckpt, "--quiet", *extra_args]) != 0:
            raise SystemExit("training asa_snn failed")
    torch.set_num_threads(1)
    obj = torch.load(args.ckpt, map_location="cpu", weights_only=True)
    model, _ = load_torch_file(args.ckpt)
    extra = obj["extra"]
    train, val, desc = load_data(extra["data"].get("data", "nmnist"), extra["data"]["dt_us"], extra["data"]["n_steps"],
                                 limit_train=args.calib, limit_val=args.limit_val)
    calib = [torch.from_numpy(train.batch(np.arange(a, min(a + 50, len(train))))[0])
             for a in range(0, len(train), 50)]
    static = make_static(model, calib)
    kwargs = {k: v for k, v in model.cfg.items()}
    kwargs["channels"] = list(kwargs["channels"])
    kwargs["input_shape"] = list(kwargs["input_shape"])
    name = args.name or ("asa_snn_static_binary" if extra["data"].get("data") == "nmnist-binary" else "asa_snn_static")
    ev_parent, ev_static = evaluate(model, val), evaluate(static, val)
    # the static model records its own validation accuracy; the parent's (and its training history) are kept
    # under their own names
    save_checkpoint(args.out, name, kwargs, static,
                    {**extra, "derived_from": args.ckpt, "calibration_samples": int(sum(len(c) for c in calib)),
                     "val_accuracy": ev_static["accuracy"], "val_samples": ev_static["n"],
                     "parent_val_accuracy": extra.get("val_accuracy"),
                     "command": "python examples/train_asa.py --ckpt %s --out %s" % (args.ckpt, args.out)})
    report = {"asa_snn": ev_parent, "asa_snn_static": ev_static,
              "asa_snn_static_compiled": evaluate_checkpoint(args.out, limit_val=args.limit_val,
                                                             compiled=True)["compiled_cpu"]}
    print(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
