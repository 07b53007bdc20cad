"""Generate the deployability table (zoo model x target) and write it into README.md.

For every zoo model and every registered target, compile the model (the shipped checkpoint
when there is one, else freshly built with its recipe's constructor arguments) at its recipe's
time step. A cell says ``deploys`` (with compile time), or ``refused`` with the rules broken and
the zoo variant that deploys instead. Run: ``.venv/bin/python scripts/deployability.py [--check]``.
``--check`` exits 1 when README.md's table differs from the generated one.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- deployability:start -->", "<!-- deployability:end -->"

#: For a model a target refuses, the zoo model that is its deployable variant there, and its cost.
VARIANTS: Dict[Tuple[str, str], str] = {
    ("asa_snn", "loihi"): "asa_snn_static (static per-channel gain folded into weights)",
    ("asa_snn", "speck"): "asa_snn_static needs IF neurons: retrain with IF for Speck",
    ("skipsnn", "speck"): "skipsnn_plain (no gate: Speck has only non-leaky IAF, no exact a·x)",
    ("minlatency_cnn", "speck"): "retrain with IF neurons and sum pooling (speck_cnn shape)",
}


def costly(name: str, target: str) -> Optional[str]:
    """For a model a target runs with a large accuracy cost, the cost and the variant to use there instead.

    Figures from ``results/zoo.json`` (``scripts/evaluate_zoo.py``: held-out split, reference simulators).
    """
    from evaluate_zoo import CHIP_VARIANTS, load_results, pct

    if name not in CHIP_VARIANTS:
        return None
    models = load_results()["models"]
    m, v = models[name], models[CHIP_VARIANTS[name]]
    if m["deployed"]["target"] != target:
        return None
    ft = models.get(f"{name}_ft_{target}")  # fine-tuned through the chip's integers (snnc.models.finetune)
    return (f"{target.capitalize()} takes one spike per bin: {pct(m['deployed']['accuracy'])} vs "
            f"{pct(m['float']['accuracy'])} float on counts; variant: {CHIP_VARIANTS[name]} (trained on binary "
            f"bins) {pct(v['deployed']['accuracy'])}"
            + (f"; fine-tuned: {name}_ft_{target} {pct(ft['deployed']['accuracy'])}" if ft else ""))


def _model(name: str):
    import torch

    from snnc.models import zoo
    from snnc.models.checkpoint import load_torch_file

    ckpt = REPO / "snnc" / "models" / "checkpoints" / f"{name}.pt"
    if ckpt.exists():
        model, _ = load_torch_file(str(ckpt))
        return model, True
    torch.manual_seed(0)
    return zoo.build(name, **zoo.recipe(name)["kwargs"]), False


def cell(name: str, target: str) -> str:
    """Return the table cell for zoo model ``name`` on ``target``."""
    import snnc
    from snnc.errors import RuleViolationError, SnncError
    from snnc.models import zoo

    model, _ = _model(name)
    dt_s = zoo.recipe(name)["dt_us"] * 1e-6
    t0 = time.perf_counter()
    try:
        snnc.compile(model, target=target, dt_s=dt_s)
    except RuleViolationError as e:
        rules = sorted({v.rule for v in e.violations})
        text = "refused: " + ", ".join(f"`{r}`" for r in rules)
        variant = VARIANTS.get((name, target))
        return text + (f"; variant: {variant}" if variant else "")
    except SnncError as e:
        return f"refused: {e.message.splitlines()[0]}"
    cost = costly(name, target)
    return f"deploys ({time.perf_counter() - t0:.2f} s compile)" + (f"; {cost}" if cost else "")


def table() -> str:
    """Return the markdown deployability table."""
    from snnc.models import zoo
    from snnc.targets.base import target_names

    targets = list(target_names())
    rows = ["| model | trained checkpoint | " + " | ".join(targets) + " |",
            "|---|---|" + "---|" * len(targets)]
    for name in zoo.names():
        shipped = (REPO / "snnc" / "models" / "checkpoints" / f"{name}.pt").exists()
        cells = [cell(name, t) for t in targets]
        cells = [c.split(" (", 1)[0] + (";" + c.split(";", 1)[1] if ";" in c else "") if c.startswith("deploys") else c
                 for c in cells]
        rows.append(f"| `{name}` | {'yes' if shipped else 'no'} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: Optional[List[str]] = None) -> int:
    """Write (or with --check, verify) the table in README.md."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    from snnc.files import replace_between

    readme = (REPO / "README.md").read_text()
    new = replace_between(readme, START, END, table(), "README.md")
    if args.check:
        return 0 if new == readme else 1
    (REPO / "README.md").write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
