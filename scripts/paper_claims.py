"""The three papers' claims on our data: each seed model against its same-size plain baseline.

    python scripts/paper_claims.py evaluate [--claims skipsnn asa minlatency] [--limit-val N]
    python scripts/paper_claims.py seeds --claims minlatency --seeds 1 2 3 4   # extra training seeds
    python scripts/paper_claims.py readme [--check]

``evaluate`` runs every shipped checkpoint of a claim (``CLAIMS``) on the held-out N-MNIST-small
split it was trained with (20 %, split seed 0, 199 recordings): the float model (accuracy,
effective synaptic operations = MFLOPs, NASFR, SkipSNN's gate awake fraction) and, where the row
says so, the model compiled for Loihi on its reference simulator through
:meth:`snnc.Program.evaluate` (binary inputs, latency padding, silent outputs counted wrong):
accuracy, synaptic operations and spikes counted by the simulator, NASFR over the same
populations as the float model, chip steps per inference and an energy estimate from published
Loihi per-operation figures (:data:`snnc.models.metrics.ENERGY_MODELS`). It also compiles each
row for Speck and records whether it deploys or which rules refuse it. Results go to
``results/claims/<claim>.json``.

``seeds`` trains further seeds of a claim's rows with the same ``snn-train`` command as the
shipped checkpoint (``scripts/train_zoo.sh``) except ``--seed``, and records each run's final
held-out accuracy (and activity) in ``results/claims/<claim>_seeds.json``.

``readme`` writes the tables generated from those files into README.md between the
``<!-- claims:start -->``/``<!-- claims:end -->`` markers (``--check``: exit 1 when stale).
Every number of that README section comes from here; tests/test_paper_claims.py re-evaluates the
shipped checkpoints and compares them with the results files.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
CK = REPO / "snnc" / "models" / "checkpoints"
CKC = CK / "claims"
RESULTS = REPO / "results" / "claims"
START, END = "<!-- claims:start -->", "<!-- claims:end -->"

#: Helper populations of a compiled graph that the float model does not count as neurons
#: (SkipSNN's gate: one Threshold neuron per input pixel, the exact a * x).
HELPERS = ("gate",)

#: Per claim: the paper's numbers, and the rows (checkpoint, label, whether it runs on Loihi).
#: Issue 14's bar for SkipSNN: at most this fraction of the plain SNN's synaptic operations (the paper's ratio).
SKIPSNN_SYNOPS_BAR = 0.65
#: SkipSNN's published accuracy on N-MNIST (quoted in CLAIMS["skipsnn"]["paper"]).
SKIPSNN_PAPER_ACCURACY = 0.9447

CLAIMS: Dict[str, Dict[str, Any]] = {
    "skipsnn": {
        "title": "SkipSNN against the same-size plain SNN (noise-padded N-MNIST, 300 x 1 ms)",
        "paper": "SkipSNN 94.47 % at 0.75 MFLOPs vs plain SNN 88.92 % at 1.15 MFLOPs (0.65x, +5.5 points), "
                 "full N-MNIST, hidden 800",
        "rows": [
            {"key": "skipsnn", "ckpt": "claims/skipsnn.pt", "label": "SkipSNN (2312-800-10, gate)", "loihi": True},
            {"key": "skipsnn_plain", "ckpt": "claims/skipsnn.pt", "override": {"gate": False, "stage": 1},
             "label": "plain SNN: the same trained net, gate removed", "loihi": True},
            {"key": "clean_signal", "ckpt": "claims/skipsnn_plain_clean50.pt",
             "label": "bound: plain SNN on the 50-step signal alone (no noise)", "loihi": False},
        ],
    },
    "asa": {
        "title": "ASA-SNN against its vanilla network (N-MNIST, 10 x 30 ms)",
        "paper": "DVS Gesture, 3-layer LIF-SNN: vanilla 91.3 % at NASFR 0.176; + ASA-1 95.2 % (+3.9) at 0.038 (-78 %)",
        "rows": [
            {"key": "asa_snn", "ckpt": "claims/asa_snn.pt", "label": "ASA-1 (dynamic attention)", "loihi": False},
            {"key": "asa_snn_vanilla", "ckpt": "claims/asa_snn_vanilla.pt", "label": "vanilla (same layers)",
             "loihi": False},
            {"key": "asa_snn_gain2", "ckpt": "claims/asa_snn_gain2.pt", "label": "ablation: ASA-1, init gain 2",
             "loihi": False},
            {"key": "asa_snn_static", "ckpt": "claims/asa_snn_static.pt", "label": "ASA-1 folded (static gains)",
             "loihi": False},
            {"key": "asa_snn_static_binary", "ckpt": "claims/asa_snn_static_binary.pt",
             "label": "ASA-1 folded, binary bins", "loihi": True},
            {"key": "asa_snn_vanilla_binary", "ckpt": "claims/asa_snn_vanilla_binary.pt",
             "label": "vanilla, binary bins", "loihi": True},
            {"key": "asa_snn_binary", "ckpt": "claims/asa_snn_binary.pt", "label": "ASA-1 (dynamic), binary bins",
             "loihi": False},
        ],
    },
    "minlatency": {
        "title": "Minimum-latency SNN against the same-size plain CNN (N-MNIST, 300 ms window)",
        "paper": "CIFAR-100, T = 1: 72.41 % (CNN); the paper compares against other methods, not a plain net of its size",
        "rows": [
            {"key": "minlatency_cnn", "ckpt": "minlatency_cnn.pt", "label": "min-latency (partition + projection)",
             "loihi": False},
            {"key": "ml_partition_only", "ckpt": "claims/minlatency_partition_only.pt",
             "label": "ablation: partition, plain threshold", "loihi": False},
            {"key": "ml_projection_only", "ckpt": "claims/minlatency_projection_only.pt",
             "label": "ablation: 3x3 conv + projection", "loihi": False},
            {"key": "plain_t1", "ckpt": "claims/minlatency_plain_t1.pt", "label": "plain CNN 3x3, T = 1", "loihi": False},
            {"key": "plain_k5_t1", "ckpt": "claims/minlatency_plain_k5_t1.pt", "label": "plain CNN 5x5, T = 1",
             "loihi": False},
            {"key": "plain_t2", "ckpt": "claims/minlatency_plain_t2.pt", "label": "plain CNN 3x3, T = 2", "loihi": False},
            {"key": "plain_t4", "ckpt": "claims/minlatency_plain_t4.pt", "label": "plain CNN 3x3, T = 4", "loihi": False},
            {"key": "plain_t8", "ckpt": "claims/minlatency_plain_t8.pt", "label": "plain CNN 3x3, T = 8", "loihi": False},
            {"key": "minlatency_cnn_binary", "ckpt": "minlatency_cnn_binary.pt",
             "label": "min-latency, binary bin", "loihi": True},
            {"key": "plain_t1_binary", "ckpt": "claims/minlatency_plain_t1_binary.pt",
             "label": "plain CNN 3x3, T = 1, binary bin", "loihi": True},
        ],
    },
}


def ckpt_path(row: Dict[str, Any]) -> Path:
    """Return the checkpoint file of a claim row."""
    return CK / row["ckpt"]


def load_row(row: Dict[str, Any]) -> Any:
    """Return (model, checkpoint extra) of a claim row: the checkpoint's zoo model, rebuilt with the
    row's constructor ``override`` (SkipSNN's plain SNN: the same weights without the gate)."""
    import torch

    from snnc.models import zoo

    obj = torch.load(ckpt_path(row), map_location="cpu", weights_only=True)
    model = zoo.build(obj["model"], **{**obj["kwargs"], **row.get("override", {})})
    model.load_state_dict(obj["state_dict"])
    model.eval()
    return model, obj["extra"]


# --------------------------------------------------------------------------- evaluation
def _val(extra: Dict[str, Any], limit_val: Optional[int]) -> Any:
    from snnc.models.train import load_data

    d = extra["data"]
    _, val, _ = load_data(d["data"], d["dt_us"], d["n_steps"], d["val_fraction"], d["split_seed"], 0, limit_val)
    return val


def evaluate_float(row: Dict[str, Any], limit_val: Optional[int] = None) -> Dict[str, Any]:
    """Return float accuracy, synops (ACs, MACs), MFLOPs, NASFR (and awake fraction) on the held-out split."""
    import numpy as np
    import torch

    from snnc.models.train import evaluate

    model, extra = load_row(row)
    val = _val(extra, limit_val)
    ev = evaluate(model, val, batch_size=50)
    out = {k: float(ev[k]) for k in ("accuracy", "synops", "acs", "macs", "mflops", "nasfr", "spikes")}
    out["n"] = int(ev["n"])
    if "awake_ratio" in ev:
        out["awake_ratio"] = float(ev["awake_ratio"])
    if hasattr(model, "gate_active") and model.gate_active:  # controller spikes per step (compare with the chip)
        rates = []
        with torch.no_grad():
            for a in range(0, len(val), 50):
                x, _ = val.batch(np.arange(a, min(a + 50, len(val))))
                _, aux = model.forward_sequence(torch.from_numpy(x))
                rates.append(aux["a"].reshape(x.shape[0], -1).mean(1).numpy())
        out["ctrl_rate"] = float(np.concatenate(rates).mean())
    return out


def evaluate_loihi(row: Dict[str, Any], limit_val: Optional[int] = None) -> Dict[str, Any]:
    """Return accuracy and activity of a row's model compiled for Loihi, on its reference simulator."""
    import numpy as np

    import snnc
    from snnc.models.metrics import energy_per_inference

    model, extra = load_row(row)
    val = _val(extra, limit_val)
    prog = snnc.Program(snnc.compile(model, target="loihi", dt_s=float(extra["dt_s"])))
    x, y = val.batch(np.arange(len(val)))
    t0 = time.perf_counter()
    ev = prog.evaluate(x, y, batch_size=50, keep_outputs=True)
    seconds = time.perf_counter() - t0
    neurons = dict(prog.run(np.zeros((1,) + x.shape[1:], dtype=x.dtype)).neurons)
    steps = int(x.shape[1])
    lag = int(ev.latency_steps)
    layers = [k for k in ev.spikes_per_sample if k not in HELPERS]
    spikes = sum(ev.spikes_per_sample[k] for k in layers)
    n_neurons = sum(int(neurons[k]) for k in layers)
    synops = float(sum(ev.synops_per_sample.values()))
    helper_synops = float(sum(v for k, v in ev.synops_per_sample.items() if k in HELPERS or k == "bcast"))
    out: Dict[str, Any] = {
        "accuracy": float(ev.accuracy), "n": int(ev.n), "silent": int(ev.silent), "latency_steps": lag,
        "chip_steps": steps + lag, "synops": synops, "synops_per_layer": dict(ev.synops_per_sample),
        "spikes": float(spikes), "neurons": n_neurons,
        "nasfr": float(spikes / (steps * n_neurons)) if n_neurons else float("nan"),
        "energy_uj": 1e6 * energy_per_inference(
            {"acs": synops, "spikes": spikes + sum(ev.spikes_per_sample.get(k, 0.0) for k in HELPERS),
             "neuron_updates": float(sum(neurons.values()) * (steps + lag))}, "loihi")["energy_j"],
        "sim_seconds": seconds,
    }
    if helper_synops:
        out["gate_synops"] = helper_synops
    if "ctrl" in ev.spike_counts:  # SkipSNN: controller spikes per step on the chip (lag removed)
        c = np.asarray(ev.spike_counts["ctrl"], dtype=np.float64).reshape(ev.n, -1)
        out["ctrl_rate"] = float(c.sum(1).mean() / steps)
    # per sample, so that a test can check a subset against the simulator
    out["predictions"] = [int(p) for p in ev.predictions]
    out["spikes_each"] = [int(round(float(np.sum([np.sum(ev.spike_counts[k][i]) for k in layers]))))
                          for i in range(ev.n)]
    return out


def speck_status(row: Dict[str, Any]) -> str:
    """Return 'deploys' or 'refused: rule, rule' for a row's model compiled for Speck."""
    import snnc
    from snnc.errors import RuleViolationError, SnncError

    model, extra = load_row(row)
    try:
        snnc.compile(model, target="speck", dt_s=float(extra["dt_s"]))
    except RuleViolationError as e:
        return "refused: " + ", ".join(f"`{r}`" for r in sorted({v.rule for v in e.violations}))
    except SnncError as e:
        return f"refused: {e.message.splitlines()[0]}"
    return "deploys"


def row_facts(path: Path) -> Dict[str, Any]:
    """Return what the checkpoint says about its training: seed, epochs, time, command, data."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    e = obj["extra"]
    return {"model": obj["model"], "kwargs": obj["kwargs"], "seed": e.get("seed"), "epochs": e.get("epochs"),
            "train_seconds": e.get("train_seconds"), "command": e.get("command"), "dt_s": e["dt_s"],
            "n_steps": e["n_steps"], "data": e["data"]["data"], "n_train": e["data"].get("n_train"),
            "stage": e.get("stage"), "init_train_seconds": e.get("init_train_seconds"),
            "init_command": e.get("init_command"), "curve": curve(e.get("history", [])),
            "init_curve": curve(e.get("init_history", []))}


#: Per-epoch figures of a training history kept as the row's training curve (held-out split).
CURVE_KEYS = ("val_accuracy", "train_accuracy", "val_nasfr", "val_awake_ratio", "val_mflops")


def curve(history: List[Dict[str, Any]]) -> Dict[str, List[float]]:
    """Return the training curve of a checkpoint's history: per epoch, each of ``CURVE_KEYS`` it recorded."""
    return {k: [float(h[k]) for h in history] for k in CURVE_KEYS if history and all(k in h for h in history)}


def evaluate_claim(name: str, limit_val: Optional[int] = None, only: Optional[List[str]] = None) -> Dict[str, Any]:
    """Evaluate every row of claim ``name`` (with ``only``: those rows, the others kept from the results
    file, which must have the same ``limit_val``); return the results dict (also the verdict)."""
    spec = CLAIMS[name]
    old: Dict[str, Any] = {}
    if only:
        f = RESULTS / f"{name}.json"
        prev = json.loads(f.read_text()) if f.is_file() else {"rows": {}, "limit_val": limit_val}
        if prev["limit_val"] != limit_val:
            raise SystemExit(f"{f} was evaluated with --limit-val {prev['limit_val']}, not {limit_val}")
        old = prev["rows"]
    rows: Dict[str, Any] = {}
    for row in spec["rows"]:
        if only and row["key"] not in only:
            if row["key"] in old:
                rows[row["key"]] = old[row["key"]]
            continue
        path = ckpt_path(row)
        if not path.is_file():
            logging.warning("%s: missing checkpoint %s (train it: scripts/train_zoo.sh)", name, path)
            continue
        logging.info("%s: %s", name, row["key"])
        r: Dict[str, Any] = {"label": row["label"], "ckpt": row["ckpt"], **row_facts(path),
                             "override": row.get("override", {}), "float": evaluate_float(row, limit_val)}
        if row["loihi"]:
            r["loihi"] = evaluate_loihi(row, limit_val)
        r["speck"] = speck_status(row)
        rows[row["key"]] = r
    res = {"claim": name, "title": spec["title"], "paper": spec["paper"], "rows": rows,
           "limit_val": limit_val, "torch_threads": 1}
    res["verdict"] = verdict(name, rows)
    return res


# --------------------------------------------------------------------------- verdicts
def verdict(name: str, rows: Dict[str, Any]) -> Dict[str, Any]:
    """Return the issue's test of the claim on these numbers: what was compared and whether it held."""
    def acc(k: str, where: str = "float") -> Optional[float]:
        return rows.get(k, {}).get(where, {}).get("accuracy")

    def syn(k: str, where: str = "float") -> Optional[float]:
        return rows.get(k, {}).get(where, {}).get("synops")

    v: Dict[str, Any] = {}
    if name == "skipsnn" and {"skipsnn", "skipsnn_plain"} <= set(rows):
        for where in ("float", "loihi"):
            a, b = acc("skipsnn", where), acc("skipsnn_plain", where)
            s, p = syn("skipsnn", where), syn("skipsnn_plain", where)
            if None in (a, b, s, p):
                continue
            v[where] = {"accuracy_gain_points": 100 * (a - b), "synops_ratio": s / p,
                        "held": bool(a > b and s / p <= SKIPSNN_SYNOPS_BAR)}
        lo = rows["skipsnn"].get("loihi", {})
        if "gate_synops" in lo and "skipsnn_plain" in rows and "loihi" in rows["skipsnn_plain"]:
            v["loihi_without_gate_synops_ratio"] = (lo["synops"] - lo["gate_synops"]) / rows["skipsnn_plain"]["loihi"]["synops"]
        v["float_at_least_90"] = bool((acc("skipsnn") or 0.0) >= 0.90)
        v["held"] = bool(v.get("float", {}).get("held") and v.get("loihi", {}).get("held") and v["float_at_least_90"])
    elif name == "asa" and {"asa_snn", "asa_snn_vanilla"} <= set(rows):
        for a_key, b_key, where, tag in (("asa_snn", "asa_snn_vanilla", "float", "dynamic_float"),
                                         ("asa_snn_gain2", "asa_snn_vanilla", "float", "gain2_float"),
                                         ("asa_snn_static", "asa_snn_vanilla", "float", "folded_float"),
                                         ("asa_snn_binary", "asa_snn_vanilla_binary", "float", "binary_dynamic_float"),
                                         ("asa_snn_static_binary", "asa_snn_vanilla_binary", "loihi", "folded_loihi")):
            if a_key not in rows or b_key not in rows or where not in rows[a_key] or where not in rows[b_key]:
                continue
            ra, rb = rows[a_key][where], rows[b_key][where]
            v[tag] = {"nasfr_ratio": ra["nasfr"] / rb["nasfr"], "accuracy_change_points": 100 * (ra["accuracy"] - rb["accuracy"]),
                      "held": bool(ra["nasfr"] <= 0.5 * rb["nasfr"] and ra["accuracy"] >= rb["accuracy"] - 0.005)}
        v["held"] = bool(v.get("dynamic_float", {}).get("held"))
    elif name == "minlatency" and {"minlatency_cnn", "plain_t1"} <= set(rows):
        a = acc("minlatency_cnn")
        for k in ("plain_t1", "plain_k5_t1", "plain_t2", "plain_t4", "plain_t8", "ml_partition_only",
                  "ml_projection_only"):
            if k in rows:
                v[f"gain_vs_{k}_points"] = 100 * (a - acc(k))
        if {"minlatency_cnn_binary", "plain_t1_binary"} <= set(rows):
            v["loihi_gain_points"] = 100 * (acc("minlatency_cnn_binary", "loihi") - acc("plain_t1_binary", "loihi"))
        v["held"] = bool(a > acc("plain_t1") and ("plain_k5_t1" not in rows or a > acc("plain_k5_t1")))
    return v


# --------------------------------------------------------------------------- seeds
def seed_runs(name: str) -> List[Dict[str, Any]]:
    """Return the (row key, snn-train argv without --out/--seed) of every row of claim ``name``."""
    runs = []
    for row in CLAIMS[name]["rows"]:
        path = ckpt_path(row)
        if not path.is_file():
            continue
        cmd = shlex.split(row_facts(path)["command"] or "")
        if (not cmd or cmd[0] != "snn-train" or row_facts(path).get("stage") == 2 or "static" in row["key"]
                or row.get("override")):
            continue  # multi-stage and folded models: their own procedure (scripts/train_zoo.sh)
        argv, skip = [], False
        for a in cmd[1:]:
            if skip:
                skip = False
                continue
            if a in ("--out", "--seed", "--threads"):
                skip = True
                continue
            if a not in ("--resume", "--keep-resume", "--quiet"):  # how it ran, not what it trained
                argv.append(a)
        runs.append({"key": row["key"], "argv": argv})
    return runs


def train_seeds(name: str, seeds: List[int], workdir: Path, only: Optional[List[str]] = None) -> Dict[str, Any]:
    """Train ``seeds`` of every single-stage row of claim ``name`` (or of the rows ``only``); return
    {key: {seed: metrics}}."""
    from snnc.models.train import main as snn_train

    out_file = RESULTS / f"{name}_seeds.json"
    res = json.loads(out_file.read_text()) if out_file.is_file() else {"claim": name, "runs": {}}
    for run in seed_runs(name):
        if only and run["key"] not in only:
            continue
        for s in seeds:
            ck = workdir / f"{run['key']}_seed{s}.pt"
            argv = run["argv"] + ["--seed", str(s), "--out", str(ck), "--quiet", "--threads", "1"]
            t0 = time.perf_counter()
            if snn_train(argv) != 0:
                raise SystemExit(f"training failed: snn-train {' '.join(argv)}")
            f = evaluate_float({"ckpt": str(ck)})
            f["train_seconds"] = time.perf_counter() - t0
            f["command"] = "snn-train " + " ".join(argv)
            res["runs"].setdefault(run["key"], {})[str(s)] = f
            RESULTS.mkdir(parents=True, exist_ok=True)
            out_file.write_text(json.dumps(res, indent=1, sort_keys=True))
    return res


# --------------------------------------------------------------------------- README
def _pct(x: Optional[float]) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f} %"


def _num(x: Optional[float], fmt: str = "{:.3f}") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def _seed_summary(name: str, key: str, shipped: Optional[float]) -> str:
    f = RESULTS / f"{name}_seeds.json"
    if not f.is_file():
        return ""
    runs = json.loads(f.read_text())["runs"].get(key, {})
    accs = [shipped] if shipped is not None else []
    accs += [r["accuracy"] for s, r in sorted(runs.items()) if s != "0"]
    if len(accs) < 2:
        return ""
    m = sum(accs) / len(accs)
    sd = math.sqrt(sum((a - m) ** 2 for a in accs) / (len(accs) - 1))
    return f"{100 * m:.2f} ± {100 * sd:.2f} ({len(accs)} seeds, {100 * min(accs):.1f}–{100 * max(accs):.1f})"


def render(name: str, res: Dict[str, Any]) -> str:
    """Return the README table of one claim from its results dict."""
    lines = [f"**{res['title']}.** Paper: {res['paper']}.", "",
             "| model | T x dt | float acc. | seeds: mean ± sd (range) | Loihi sim acc. | Speck | MFLOPs float "
             "| synops on Loihi | NASFR float / Loihi | energy on Loihi | chip steps | trained |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in res["rows"].items():
        f, lo = r["float"], r.get("loihi")
        awake = f" (awake {100 * f['awake_ratio']:.1f} %)" if "awake_ratio" in f and f["awake_ratio"] < 1 else ""
        lo_acc = _pct(lo["accuracy"]) + (f" ({lo['silent']} silent)" if lo and lo.get("silent") else "") if lo else "—"
        lo_syn = _num(lo["synops"] / 1e6, "{:.3f} M") if lo else "—"
        if lo and "gate_synops" in lo:
            lo_syn += f" ({lo['gate_synops'] / 1e6:.3f} M gate)"
        nasfr = f"{_num(f['nasfr'], '{:.4f}')} / {_num(lo['nasfr'], '{:.4f}') if lo else '—'}"
        train = f"seed {r['seed']}, {r['epochs']} ep., {(r['train_seconds'] or 0) / 60:.1f} min"
        ini = len(r.get("init_curve", {}).get("val_accuracy", []))
        if ini and r.get("override", {}).get("stage") == 1:  # the plain net is the initialising stage's network
            train = f"seed {r['seed']}, stage 1: {ini} ep., {(r.get('init_train_seconds') or 0) / 60:.1f} min"
        elif ini:
            train = (f"seed {r['seed']}, {ini} + {r['epochs']} ep., {(r.get('init_train_seconds') or 0) / 60:.1f} + "
                     f"{(r['train_seconds'] or 0) / 60:.1f} min")
        lines.append(
            f"| {r['label']} | {r['n_steps']} x {1000 * r['dt_s']:g} ms | {_pct(f['accuracy'])}{awake} "
            f"| {_seed_summary(name, key, f['accuracy']) or '—'} | {lo_acc} | {r['speck']} "
            f"| {_num(f['mflops'])} | {lo_syn} | {nasfr} | {_num(lo['energy_uj'], '{:.1f} µJ') if lo else '—'} "
            f"| {lo['chip_steps'] if lo else '—'} | {train} |")
    n = next(iter(res["rows"].values()))["float"]["n"] if res["rows"] else 0
    lines += ["", f"Held-out recordings: {n} (N-MNIST-small, 20 % split, seed 0). " + verdict_text(name, res["verdict"])]
    ev = evidence_text(name, res)
    if ev:
        lines += ["", ev]
    curves = render_curves(res)
    if curves:
        lines += ["", "Training curves (the held-out split after each epoch, as the checkpoints recorded them):", "",
                  curves]
    return "\n".join(lines)


def _series(xs: List[float], scale: float = 100.0, fmt: str = "{:.1f}", most: int = 12) -> str:
    """Return a per-epoch series as 'a, b, ... (epochs i, j, ...)' with at most ``most`` evenly spaced epochs."""
    n = len(xs)
    idx = list(range(n)) if n <= most else sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})
    vals = ", ".join(fmt.format(scale * xs[i]) for i in idx)
    return vals if n <= most else f"{vals} (epochs {', '.join(str(i + 1) for i in idx)})"


def render_curves(res: Dict[str, Any]) -> str:
    """Return the training-curve table of a claim: held-out accuracy (and NASFR, awake fraction) per epoch,
    from the histories the checkpoints recorded while training."""
    lines = ["| model | training | held-out accuracy per epoch (%) | best / last | NASFR per epoch | "
             "awake per epoch (%) |", "|---|---|---|---|---|---|"]
    seen = set()
    for key, r in res["rows"].items():
        stages = []
        if r.get("override", {}).get("stage") == 1 and r.get("init_curve"):
            stages.append(("stage 1 (gate open)", r["init_curve"]))  # the plain net is stage 1's network
        else:
            shown_as_plain = any(o is not r and o["ckpt"] == r["ckpt"] and o.get("override", {}).get("stage") == 1
                                 for o in res["rows"].values())
            if r.get("init_curve") and not shown_as_plain:
                stages.append(("stage 1", r["init_curve"]))
            if r.get("curve"):
                stages.append((f"stage {r['stage']}" if r.get("stage") else "", r["curve"]))
        for tag, c in stages:  # a folded model carries its parent's history: shown once
            ident = tuple(tuple(c.get(k, [])) for k in ("val_accuracy", "val_nasfr", "val_awake_ratio"))
            if ident in seen or "val_accuracy" not in c:
                continue
            seen.add(ident)
            va = c["val_accuracy"]
            best = max(range(len(va)), key=lambda i: va[i])
            lines.append(
                f"| {r['label']} | {tag + ', ' if tag else ''}{len(va)} ep. | {_series(va)} "
                f"| {100 * va[best]:.1f} (ep. {best + 1}) / {100 * va[-1]:.1f} "
                f"| {_series(c['val_nasfr'], 1.0, '{:.4f}', 6) if 'val_nasfr' in c else '—'} "
                f"| {_series(c['val_awake_ratio'], most=6) if 'val_awake_ratio' in c else '—'} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def _held(ok: Optional[bool]) -> str:
    return "**holds**" if ok else "**does not hold**"


def verdict_text(name: str, v: Dict[str, Any]) -> str:
    """Return one sentence per claim test, generated from the verdict dict."""
    if not v:
        return ""
    if name == "skipsnn":
        parts = []
        for where, tag in (("float", "float"), ("loihi", "on the Loihi simulator")):
            if where in v:
                w = v[where]
                parts.append(f"{tag}: {w['accuracy_gain_points']:+.2f} points at {w['synops_ratio']:.2f}x the plain "
                             f"SNN's synaptic operations")
        extra = (f" ({v['loihi_without_gate_synops_ratio']:.2f}x without the gate's own synapses)"
                 if "loihi_without_gate_synops_ratio" in v else "")
        return (f"Test (more accurate than the plain SNN at <= {SKIPSNN_SYNOPS_BAR:g}x its synaptic operations, float and on Loihi, "
                f"and >= 90 % float): {'; '.join(parts)}{extra}; >= 90 % float: "
                f"{'yes' if v.get('float_at_least_90') else 'no'}. The claim {_held(v.get('held'))} here.")
    if name == "asa":
        names = {"dynamic_float": "ASA-1 vs vanilla (float)", "gain2_float": "ASA-1 at init gain 2 vs vanilla (float)",
                 "folded_float": "folded ASA-1 vs vanilla (float)",
                 "binary_dynamic_float": "ASA-1 vs vanilla on binary bins (float)",
                 "folded_loihi": "folded ASA-1 vs vanilla on the Loihi simulator (binary bins)"}
        parts = [f"{names[k]}: NASFR x{v[k]['nasfr_ratio']:.2f}, accuracy {v[k]['accuracy_change_points']:+.2f} points"
                 for k in names if k in v]
        return (f"Test (NASFR at most half the vanilla network's at no more than 0.5 points lower accuracy): "
                f"{'; '.join(parts)}. The claim {_held(v.get('held'))} here (ASA-1 vs vanilla, float).")
    if name == "minlatency":
        labels = {"plain_t1": "plain 3x3 at T = 1", "plain_k5_t1": "plain 5x5 at T = 1", "plain_t2": "plain at T = 2",
                  "plain_t4": "plain at T = 4", "plain_t8": "plain at T = 8",
                  "ml_partition_only": "partition only", "ml_projection_only": "projection only"}
        parts = [f"{labels[k]} {v[f'gain_vs_{k}_points']:+.2f}" for k in labels if f"gain_vs_{k}_points" in v]
        lo = f"; on the Loihi simulator (binary bin) {v['loihi_gain_points']:+.2f} points vs plain" if "loihi_gain_points" in v else ""
        return (f"Test (beats the plain same-size CNN at T = 1): min-latency minus "
                f"{', '.join(parts)} points (float){lo}. The claim {_held(v.get('held'))} here.")
    return ""


def evidence_text(name: str, res: Dict[str, Any]) -> str:
    """Return the generated evidence for a claim's verdict: bounds, ablations and curves in numbers."""
    rows = res["rows"]
    acc = lambda k: rows[k]["float"]["accuracy"] if k in rows else None  # noqa: E731
    out = []
    if name == "skipsnn" and "skipsnn" in rows:
        r = rows["skipsnn"]
        out.append(f"SkipSNN reaches {_pct(acc('skipsnn'))} float (paper {_pct(SKIPSNN_PAPER_ACCURACY)})")
        if "clean_signal" in rows:
            out.append(f"the same plain net trained and tested on the 50-step signal alone, without the noise, "
                       f"reaches {_pct(acc('clean_signal'))} (the noise-free reference at the same size and budget)")
        c = r.get("init_curve", {}).get("val_accuracy")
        if c and len(c) >= 4:
            out.append(f"stage 1 (the main net, {len(c)} epochs, {(r.get('init_train_seconds') or 0) / 60:.0f} min) "
                       f"ended at {100 * c[-1]:.1f} % having gained {100 * (c[-1] - c[-4]):+.1f} points over its "
                       f"last 3 epochs (still rising when training stopped)"
                       if c[-1] > c[-4] else
                       f"stage 1 ({len(c)} epochs) ended at {100 * c[-1]:.1f} %, flat over its last 3 epochs")
        if "ctrl_rate" in r["float"] and "ctrl_rate" in r.get("loihi", {}):
            out.append(f"the gate is awake (controller spikes per step) {100 * r['loihi']['ctrl_rate']:.1f} % of the "
                       f"steps on the Loihi simulator vs {100 * r['float']['ctrl_rate']:.1f} % in float")
        p = rows.get("skipsnn_plain", {}).get("loihi")
        if "energy_uj" in r.get("loihi", {}) and p:
            out.append(f"the estimated energy per inference on Loihi is {r['loihi']['energy_uj']:.1f} µJ for SkipSNN vs "
                       f"{p['energy_uj']:.1f} µJ for the plain SNN ({r['loihi']['energy_uj'] / p['energy_uj']:.2f}x): "
                       f"the exact gate's helper neurons, one per input pixel, are updated every step")
        aw = r.get("curve", {}).get("val_awake_ratio")
        if aw:
            out.append(f"stage 2's awake fraction went {100 * aw[0]:.1f} % -> {100 * aw[-1]:.1f} % over "
                       f"{len(aw)} annealed epochs")
    if name == "asa" and {"asa_snn", "asa_snn_vanilla"} <= set(rows):
        a = rows["asa_snn"].get("curve", {}).get("val_nasfr")
        b = rows["asa_snn_vanilla"].get("curve", {}).get("val_nasfr")
        if a and b and len(a) == len(b):
            ratios = [x / y for x, y in zip(a, b)]
            trend = (": the attention raised firing from the first epoch on and training did not bring it down"
                     if min(ratios) > 1 else "")
            out.append(f"over the {len(a)} training epochs (same seed, data and recipe) ASA-1's NASFR was "
                       f"{min(ratios):.2f}x to {max(ratios):.2f}x the vanilla network's{trend}")
        g = rows.get("asa_snn_gain2", {}).get("float")
        if g:
            out.append(f"a smaller initial attention gain (2) gave NASFR {g['nasfr']:.4f} at {_pct(g['accuracy'])} "
                       f"(vanilla {rows['asa_snn_vanilla']['float']['nasfr']:.4f} at {_pct(acc('asa_snn_vanilla'))})")
    if name == "minlatency" and "minlatency_cnn" in rows:
        plain = {k: acc(k) for k in ("plain_t1", "plain_k5_t1", "plain_t2", "plain_t4", "plain_t8") if k in rows}
        if plain:
            worst, best = min(plain, key=plain.get), max(plain, key=plain.get)
            out.append(f"plain CNNs range from {_pct(plain[worst])} ({rows[worst]['label']}) to {_pct(plain[best])} "
                       f"({rows[best]['label']}); the min-latency net {_pct(acc('minlatency_cnn'))}")
        f = RESULTS / "minlatency_seeds.json"
        seeds = json.loads(f.read_text())["runs"] if f.is_file() else {}
        if "plain_t1" in rows and {"minlatency_cnn", "plain_t1"} <= set(seeds):
            acc_all = {k: [acc(k)] + [r["accuracy"] for s, r in sorted(seeds[k].items()) if s != "0"]
                       for k in ("minlatency_cnn", "plain_t1")}
            m, p = (sum(v) / len(v) for v in acc_all.values())
            out.append(f"over {len(acc_all['minlatency_cnn'])} training seeds the min-latency net averages "
                       f"{100 * m:.2f} % (worst {100 * min(acc_all['minlatency_cnn']):.2f} %) and the plain 3x3 CNN "
                       f"at T = 1 {100 * p:.2f} % (worst {100 * min(acc_all['plain_t1']):.2f} %, best "
                       f"{100 * max(acc_all['plain_t1']):.2f} %): the verdict above compares the shipped seed-0 "
                       f"checkpoints only")
        if "plain_t1" in rows:
            m, p = rows["minlatency_cnn"]["float"]["mflops"], rows["plain_t1"]["float"]["mflops"]
            out.append(f"at T = 1 the min-latency net costs {m:.3f} MFLOPs per sample, the plain 3x3 CNN {p:.3f} "
                       f"({m / p:.2f}x)")
    return ("Evidence: " + "; ".join(out) + ".") if out else ""


def render_all() -> str:
    """Return the whole generated README section (every claim with a results file)."""
    parts = []
    for name in CLAIMS:
        f = RESULTS / f"{name}.json"
        if f.is_file():
            parts.append(render(name, json.loads(f.read_text())))
    return "\n\n".join(parts)


def write_readme(check: bool) -> int:
    """Replace the README section between the markers; with ``check`` only compare. Return exit code."""
    readme = REPO / "README.md"
    from snnc.files import replace_between

    text = readme.read_text()
    new = replace_between(text, START, END, render_all(), "README.md")
    if check:
        if new != text:
            print("README's claims tables are stale: run scripts/paper_claims.py readme", file=sys.stderr)
            return 1
        return 0
    readme.write_text(new)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ev = sub.add_parser("evaluate", help="evaluate the shipped checkpoints; write results/claims/<claim>.json")
    ev.add_argument("--claims", nargs="+", default=list(CLAIMS), choices=list(CLAIMS))
    ev.add_argument("--limit-val", type=int, default=None)
    ev.add_argument("--rows", nargs="+", default=None,
                    help="re-evaluate only these row keys; keep the other rows from the results file")
    sd = sub.add_parser("seeds", help="train more seeds; write results/claims/<claim>_seeds.json")
    sd.add_argument("--claims", nargs="+", default=["minlatency"], choices=list(CLAIMS))
    sd.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4])
    sd.add_argument("--workdir", default=str(REPO / "runs" / "claims"))
    sd.add_argument("--rows", nargs="+", default=None, help="only these row keys")
    rd = sub.add_parser("readme", help="write the tables into README.md")
    rd.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(1)
    if args.cmd == "evaluate":
        RESULTS.mkdir(parents=True, exist_ok=True)
        for name in args.claims:
            res = evaluate_claim(name, args.limit_val, args.rows)
            (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=1, sort_keys=True))
            print(name, json.dumps(res["verdict"]))
        return 0
    if args.cmd == "seeds":
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        for name in args.claims:
            train_seeds(name, args.seeds, Path(args.workdir), args.rows)
        return 0
    return write_readme(args.check)


if __name__ == "__main__":
    sys.exit(main())
