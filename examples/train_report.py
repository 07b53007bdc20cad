"""Evaluate every shipped zoo checkpoint on its validation split, float and compiled (cpu target).

    python examples/train_report.py [--limit-val N] [--json out.json] [--deployed]

Per model: validation accuracy of the float model and of the compiled cpu program, the fraction
of samples whose compiled output spikes equal the float64 torch model's, effective synaptic
operations (MFLOPs), NASFR, training time and an energy estimate per inference from published
per-operation energies (:data:`snnc.models.metrics.ENERGY_MODELS`: 45 nm CMOS and Loihi).
With ``--deployed`` also the accuracy on the model's deployment target
(:data:`snnc.models.zoo.DEPLOY_TARGETS`), on that target's bit-exact reference simulator. The README's
tables are generated from ``results/zoo.json``, which ``scripts/evaluate_zoo.py`` writes with this evaluation.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from snnc.models.metrics import energy_per_inference
from snnc.models.train import evaluate_checkpoint
from snnc.models.zoo import DEPLOY_TARGETS

CKPT_DIR = Path(__file__).resolve().parents[1] / "snnc" / "models" / "checkpoints"


def main() -> None:
    """Print one row per shipped checkpoint."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-val", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--deployed", action="store_true", help="also run each model on its deployment target's simulator")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    rows = {}
    for path in sorted(CKPT_DIR.glob("*.pt")):
        obj = torch.load(path, map_location="cpu", weights_only=True)
        ev = evaluate_checkpoint(str(path), limit_val=args.limit_val, compiled=True,
                                 deploy_target=DEPLOY_TARGETS.get(path.stem) if args.deployed else None)
        f, c = ev["float"], ev["compiled_cpu"]
        extra = obj["extra"]
        dur = extra["dt_s"] * extra["n_steps"]
        rows[path.stem] = {
            "val_acc_float": f["accuracy"], "val_acc_compiled": c["accuracy"],
            "spikes_equal_float64": c["equal_to_torch_float64"], "n_val": f["n"],
            "mflops_float": f.get("mflops"), "mflops_compiled": c["mflops"], "nasfr": f.get("nasfr"),
            "dt_s": extra["dt_s"], "steps": extra["n_steps"], "train_seconds": extra.get("train_seconds"),
            "energy_uJ_45nm": 1e6 * energy_per_inference(f, "cmos45nm")["energy_j"],
            "energy_uJ_loihi1": 1e6 * energy_per_inference(
                {"acs": f["acs"] + f["macs"], "spikes": f["spikes"]}, "loihi")["energy_j"],
            "duration_s": dur,
        }
        if "deployed" in ev:
            d = ev["deployed"]
            rows[path.stem].update({"deployed_target": d["target"], "val_acc_deployed": d["accuracy"],
                                    "predictions_equal_float": d["predictions_equal_float"]})
        print(path.stem, json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[path.stem].items()}))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
