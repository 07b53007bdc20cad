"""Evaluate every shipped zoo checkpoint into ``results/zoo.json`` and generate the README's zoo tables from it.

    .venv/bin/python scripts/evaluate_zoo.py                  # evaluate all, write results/zoo.json and README.md
    .venv/bin/python scripts/evaluate_zoo.py --readme         # only regenerate README.md from results/zoo.json
    .venv/bin/python scripts/evaluate_zoo.py --check          # exit 1 when README.md is not what results/zoo.json gives
    .venv/bin/python scripts/evaluate_zoo.py --models a,b --out other.json   # a subset into another file
    .venv/bin/python scripts/evaluate_zoo.py --models a,b --update     # (re-)evaluate a,b into results/zoo.json

Per checkpoint, on the validation split it was trained with (one call of
:func:`snnc.models.train.evaluate_checkpoint`): the float model's accuracy, MFLOPs (effective synaptic
operations) and NASFR; the compiled cpu program's accuracy and the fraction of samples whose output
spikes equal the float64 torch model's; and the accuracy on its deployment target's reference
simulator (:data:`snnc.models.zoo.DEPLOY_TARGETS`; Loihi inputs clipped to one spike per bin). Every
figure of the README's zoo section and of the deployability table's cost notes is rendered from the
results file; the papers' own figures are quoted from :data:`PAPERS` (their source is named there).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
CKPT_DIR = REPO / "snnc" / "models" / "checkpoints"
RESULTS = REPO / "results" / "zoo.json"
MARKERS = {"zoo": ("<!-- zoo-table:start -->", "<!-- zoo-table:end -->"),
           "papers": ("<!-- zoo-papers:start -->", "<!-- zoo-papers:end -->"),
           "finetune": ("<!-- zoo-finetune:start -->", "<!-- zoo-finetune:end -->")}

#: What each model is, for the table (architecture only: every figure comes from the results file).
DESCRIPTIONS: Dict[str, str] = {
    "nmnist_mlp": "2312-128-10 LIF", "nmnist_cnn": "LIF CNN", "speck_cnn": "IF CNN, sum pooling",
    "fsdd_mlp": "64-ch. cochlea spikes", "fsdd_xylo": "16-ch. cochlea, Xylo CubaLIF, 8 outputs + host readout",
    "skipsnn": "noise-padded N-MNIST", "asa_snn_static": "ASA gains folded",
    "asa_snn_static_binary": "same, binary bins", "minlatency_cnn": "one time step",
    "minlatency_cnn_binary": "same, binary bin",
    "nmnist_cnn_ft_loihi": "nmnist_cnn fine-tuned through Loihi's integers",
    "speck_cnn_ft_speck": "speck_cnn fine-tuned through Speck's integers",
    "asa_snn_static_ft_loihi": "asa_snn_static fine-tuned through Loihi's integers",
    "minlatency_cnn_ft_loihi": "minlatency_cnn fine-tuned through Loihi's integers",
    "minlatency_cnn_binary_ft_loihi": "minlatency_cnn_binary fine-tuned through Loihi's integers",
}
#: Models that lose accuracy on their chip target (event counts in long bins, Loihi takes one spike per
#: bin): the README recommends the cpu target for them and names the variant trained for the chip.
CHIP_VARIANTS: Dict[str, str] = {"minlatency_cnn": "minlatency_cnn_binary", "asa_snn_static": "asa_snn_static_binary"}
#: The papers' own figures, quoted (not measured here): source file and the quoted line.
PAPERS: Dict[str, Dict[str, Any]] = {
    "skipsnn": {"source": "../shared/seeds/skipsnn-summary.md",
                "quote": "Achieves 94.47% accuracy on N-MNIST with only 0.75 MFLOPs "
                         "(vs 88.92% with 1.15 MFLOPs for traditional SNNs)",
                "accuracy": 0.9447, "mflops": 0.75, "plain_accuracy": 0.8892, "plain_mflops": 1.15},
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped() -> List[str]:
    """Return the names of the shipped checkpoints."""
    return sorted(p.stem for p in CKPT_DIR.glob("*.pt"))


def evaluate_model(name: str, limit_val: Optional[int] = None) -> Dict[str, Any]:
    """Evaluate one shipped checkpoint: float, compiled cpu and deployed (see the module doc)."""
    import torch

    from snnc.models.train import evaluate_checkpoint
    from snnc.models.zoo import DEPLOY_TARGETS

    path = CKPT_DIR / f"{name}.pt"
    obj = torch.load(path, map_location="cpu", weights_only=True)
    extra = obj["extra"]
    target = DEPLOY_TARGETS.get(name) or extra.get("finetune", {}).get("target")  # a fine-tuned model: its chip
    ev = evaluate_checkpoint(str(path), limit_val=limit_val, compiled=True, deploy_target=target)
    f, c = ev["float"], ev["compiled_cpu"]
    n = int(f["n"])
    row: Dict[str, Any] = {
        "checkpoint": str(path.relative_to(REPO)), "sha256": _sha256(path), "zoo_model": obj["model"],
        "kwargs": obj.get("kwargs", {}), "data": extra["data"]["data"], "dt_s": float(extra["dt_s"]),
        "n_steps": int(extra["n_steps"]), "train_seconds": extra.get("train_seconds"), "n_val": n,
        "float": {"accuracy": f["accuracy"], "correct": round(f["accuracy"] * n), "mflops": f.get("mflops"),
                  "nasfr": f.get("nasfr"), **({"awake_ratio": f["awake_ratio"]} if "awake_ratio" in f else {})},
        "compiled_cpu": {"accuracy": c["accuracy"], "correct": round(c["accuracy"] * n), "mflops": c["mflops"],
                         "spikes_equal_float64": c["equal_to_torch_float64"]},
    }
    row["evaluated_utc"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    ft = extra.get("finetune")
    if ft:
        row["finetune"] = {"from_model": ft["from_model"], "target": ft["target"], "epochs": int(extra["epochs"]),
                           "network_sha256": ft["network_sha256"]}
    if "deployed" in ev:
        d = ev["deployed"]
        row["deployed"] = {"target": d["target"], "accuracy": d["accuracy"], "correct": round(d["accuracy"] * d["n"]),
                           "n": int(d["n"]), "predictions_equal_float": d["predictions_equal_float"],
                           "latency_steps": int(d["latency_steps"])}
    return row


def evaluate(names: List[str], limit_val: Optional[int] = None) -> Dict[str, Any]:
    """Return the results document for ``names`` (see :func:`evaluate_model`)."""
    import numpy as np
    import torch

    import snnc

    torch.set_num_threads(1)
    models = {}
    for name in names:
        logging.getLogger("evaluate_zoo").warning("evaluating %s", name)
        models[name] = evaluate_model(name, limit_val)
    return {"generated_by": "scripts/evaluate_zoo.py", "date_utc": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%d %H:%M"), "limit_val": limit_val,
            "versions": {"snnc": snnc.__version__, "torch": str(torch.__version__), "numpy": np.__version__},
            "models": models, "papers": PAPERS}


def load_results(path: Path = RESULTS) -> Dict[str, Any]:
    """Return the results document (raises a clear error when the file is missing)."""
    if not path.is_file():
        raise SystemExit(f"{path} not found: run scripts/evaluate_zoo.py")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- rendering
def pct(x: float) -> str:
    """A fraction as a percentage with two decimals and a percent sign."""
    return f"{100 * x:.2f} %"


def _num(x: float) -> str:
    return f"{x:.3g}"


def _dt(dt_s: float) -> str:
    return f"{dt_s * 1e3:g} ms" if dt_s < 0.1 else f"{dt_s:g} s"


def _target(t: str) -> str:
    return {"loihi": "Loihi", "speck": "Speck", "xylo": "Xylo", "cpu": "cpu"}[t]


def deployed_cell(name: str, m: Dict[str, Any]) -> str:
    """The "deployed" cell: accuracy on the target the README recommends for this model."""
    d = m["deployed"]
    sim = f"{_target(d['target'])} sim {pct(d['accuracy'])}"
    if name in CHIP_VARIANTS:
        return f"cpu {pct(m['compiled_cpu']['accuracy'])} ({sim}: one spike per bin)"
    if name == "speck_cnn":  # tests/test_speck_zoo_oracle.py: every validation recording against sinabs
        return f"{sim} (= sinabs spike for spike)"
    if name == "skipsnn":
        return f"{sim} (gate exact; predictions equal float on {pct(d['predictions_equal_float'])})"
    return sim


def _dates(res: Dict[str, Any]) -> str:
    """When the rows were evaluated: one date, or the first and the last."""
    dates = sorted({m.get("evaluated_utc", res["date_utc"]) for m in res["models"].values()})
    return dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"


def zoo_table(res: Dict[str, Any]) -> str:
    """Return the README's zoo table rendered from the results document."""
    models = res["models"]
    rows = ["| model | dt × steps | float acc. | compiled cpu | deployed | MFLOPs | NASFR |",
            "|---|---|---|---|---|---|---|"]
    for name in sorted(models, key=lambda k: list(DESCRIPTIONS).index(k) if k in DESCRIPTIONS else 99):
        m = models[name]
        f = m["float"]
        acc = pct(f["accuracy"]) + (f", awake {pct(f['awake_ratio'])}" if "awake_ratio" in f else "")
        cpu = pct(m["compiled_cpu"]["accuracy"]) + \
            ("" if m["compiled_cpu"]["spikes_equal_float64"] == 1.0 else
             f" (spikes equal on {pct(m['compiled_cpu']['spikes_equal_float64'])})")
        rows.append(f"| `{name}` ({DESCRIPTIONS.get(name, '')}) | {_dt(m['dt_s'])} × {m['n_steps']} | {acc} | {cpu} "
                    f"| {deployed_cell(name, m)} | {_num(f['mflops'])} | {_num(f['nasfr'])} |")
    drops = {n: m["deployed"]["accuracy"] - m["float"]["accuracy"] for n, m in models.items() if n not in CHIP_VARIANTS}
    worst, best = min(drops, key=drops.get), max(drops, key=drops.get)
    lim = "" if res.get("limit_val") is None else f" (first {res['limit_val']} validation samples only)"
    rows.append("")
    rows.append(f"Deployed minus float, over the models deployed on their chip target: worst "
                f"{100 * drops[worst]:+.2f} points (`{worst}`), best {100 * drops[best]:+.2f} points (`{best}`). "
                f"Evaluated {_dates(res)} UTC by `scripts/evaluate_zoo.py` into `results/zoo.json`{lim}.")
    return "\n".join(rows)


def finetune_table(res: Dict[str, Any]) -> str:
    """Return the README's table of fine-tuned models: parent float, parent on the chip (before), fine-tuned on the
    chip (after), all on the same held-out split and reference simulator, and the training times."""
    models = res["models"]
    rows = ["| fine-tuned model | chip | parent float | parent on chip (before) | fine-tuned on chip (after) "
            "| after minus parent float | fine-tuned float | training time (parent + fine-tuning) |",
            "|---|---|---|---|---|---|---|---|"]
    gaps = {}
    for name in sorted(n for n, m in models.items() if "finetune" in m):
        m = models[name]
        p = models[m["finetune"]["from_model"]]
        d, pd = m["deployed"], p["deployed"]
        gap = d["accuracy"] - p["float"]["accuracy"]
        gaps[name] = gap
        rows.append(f"| `{name}` | {_target(d['target'])} | {pct(p['float']['accuracy'])} "
                    f"| {pct(pd['accuracy'])} ({pd['correct']}/{pd['n']}) | {pct(d['accuracy'])} ({d['correct']}/{d['n']}) "
                    f"| {100 * gap:+.2f} points | {pct(m['float']['accuracy'])} "
                    f"| {p['train_seconds'] / 60:.1f} + {m['train_seconds'] / 60:.1f} min |")
    if gaps:
        worst, best = min(gaps, key=gaps.get), max(gaps, key=gaps.get)
        rows.append("")
        rows.append(f"Fine-tuned on the chip minus the parent's float accuracy: worst {100 * gaps[worst]:+.2f} points "
                    f"(`{worst}`), best {100 * gaps[best]:+.2f} points (`{best}`); training times are one CPU thread "
                    "on the shared build machine.")
    return "\n".join(rows)


def papers_text(res: Dict[str, Any]) -> str:
    """Return the README's comparison with the papers' own figures."""
    p = res["papers"]["skipsnn"]
    s = res["models"]["skipsnn"]
    gap = 100 * (p["accuracy"] - s["float"]["accuracy"])
    return (f"Against the papers: SkipSNN reports {pct(p['accuracy'])} at {p['mflops']:g} MFLOPs on noise-padded "
            f"N-MNIST (plain SNN {pct(p['plain_accuracy'])} at {p['plain_mflops']:g}; quoted from `{p['source']}`); "
            f"ours, with a {s['kwargs'].get('hidden', '?')}-neuron hidden layer and minutes of CPU training, reaches "
            f"{pct(s['float']['accuracy'])} at {_num(s['float']['mflops'])} MFLOPs: {gap:.2f} points below the paper.")


def render_readme(readme: str, res: Dict[str, Any]) -> str:
    """Return README text with every generated block replaced by its rendering from ``res``."""
    from snnc.files import replace_between

    blocks = {"zoo": zoo_table(res), "papers": papers_text(res), "finetune": finetune_table(res)}
    for key, (start, end) in MARKERS.items():
        readme = replace_between(readme, start, end, blocks[key], "README.md")
    return readme


def main(argv: Optional[List[str]] = None) -> int:
    """Evaluate and/or render; see the module doc."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readme", action="store_true", help="only regenerate README.md from the results file")
    ap.add_argument("--check", action="store_true", help="exit 1 when README.md differs from its rendering")
    ap.add_argument("--models", default=None, help="comma-separated subset (needs --out)")
    ap.add_argument("--limit-val", type=int, default=None, help="first N validation samples (needs --out)")
    ap.add_argument("--out", default=None, help=f"results file (default {RESULTS.relative_to(REPO)})")
    ap.add_argument("--update", action="store_true",
                    help="with --models: evaluate those (full split) and replace or add their rows of the results "
                         "file; the other rows keep their evaluation (each row records its own date)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    readme_path = REPO / "README.md"
    if args.check or args.readme:
        readme = readme_path.read_text()
        new = render_readme(readme, load_results())
        if args.check:
            if new != readme:
                print("README.md is stale: run scripts/evaluate_zoo.py --readme", file=sys.stderr)
                return 1
            return 0
        readme_path.write_text(new)
        return 0
    if args.update:
        if args.models is None or args.limit_val is not None:
            ap.error("--update takes --models and evaluates the full split")
        path = Path(args.out) if args.out else RESULTS
        res = load_results(path)
        for m in res["models"].values():  # rows written before rows carried their own date
            m.setdefault("evaluated_utc", res["date_utc"])
        new_res = evaluate(args.models.split(","), None)
        res["models"].update(new_res["models"])
        res["models"] = {k: res["models"][k] for k in sorted(res["models"]) if (CKPT_DIR / f"{k}.pt").is_file()}
        res.update({k: new_res[k] for k in ("generated_by", "date_utc", "versions", "papers")})
        path.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
        if path == RESULTS:
            readme_path.write_text(render_readme(readme_path.read_text(), res))
        return 0
    partial = args.models is not None or args.limit_val is not None
    if partial and args.out is None:
        ap.error("--models / --limit-val write a partial evaluation: give --out (results/zoo.json is the full one)")
    names = args.models.split(",") if args.models else shipped()
    res = evaluate(names, args.limit_val)
    out = Path(args.out) if args.out else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    if not partial:
        readme_path.write_text(render_readme(readme_path.read_text(), res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
