"""Write the README's speed section and ``benchmarks/README.md``'s results from ``results.json``.

    .venv/bin/python benchmarks/speed_report.py [--results benchmarks/results/results.json] [--check]

Every speed figure in ``README.md`` and ``benchmarks/README.md`` comes from here: the blocks between
``<!-- speed:start -->``/``<!-- speed:end -->`` (README) and ``<!-- bench-results:start -->``/
``<!-- bench-results:end -->`` (benchmarks/README.md) are replaced by their rendering from the results
file that ``benchmarks/run_all.py`` writes. ``--check`` exits 1 when a block differs from its rendering
(``tests/test_speed_report.py`` runs the same check).

Per sweep configuration (network x input density) it reads the bars of issue 18 and says which hold:

* Loihi reference vs Lava's steady-state rate: >= 1000x at batch 64 and >= 300x at batch 1, unless
  the reference runs at half the machine's dense matmul ceiling or more (dense-equivalent
  multiply-accumulates per second = sample-steps/s x synapses, against half the best measured fp32
  GFLOP/s);
* Speck reference vs sinabs at batch 64: >= 10x (same ceiling escape), and at least snnTorch's
  float model of the same shape;
* the ``cpu`` float target vs snnTorch at batch 64 (only when the results file has ``cpu_rate``).

It also renders the results file's ``evaluate`` rows (a user's job: N held-out recordings end to
end per target, samples per second).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "results.json"
README = REPO / "README.md"
BENCH_README = REPO / "benchmarks" / "README.md"
MARKERS = {README: ("<!-- speed:start -->", "<!-- speed:end -->"),
           BENCH_README: ("<!-- bench-results:start -->", "<!-- bench-results:end -->")}

#: The bars of issue 18 (ratios of sample-steps per second, measured in the same run).
LAVA_BAR_B64 = 1000.0
LAVA_BAR_B1 = 300.0
SINABS_BAR_B64 = 10.0
CEILING_FRACTION = 0.5


def ceiling_macs(res: Dict[str, Any]) -> float:
    """Return half the best measured fp32 matmul rate, in multiply-accumulates per second (the file's own when it has one)."""
    if res.get("ceiling", {}).get("macs_per_s"):
        return float(res["ceiling"]["macs_per_s"])
    best = max(v for k, v in res["matmul"].items() if "float32" in k)
    return CEILING_FRACTION * best * 1e9


def configurations(res: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Return one row per sweep configuration (network x density) with its rates, ratios and verdicts."""
    lava = {(r["network"], r["density"]): r["lava_rate"] for r in res.get("lava", [])}
    ceiling = ceiling_macs(res)
    rows: Dict[Tuple[str, float], Dict[str, Any]] = {}
    for r in res["sweep"]:
        key = (r["network"], r["density"])
        row = rows.setdefault(key, {"network": r["network"], "density": r["density"], "synapses": r["synapses"]})
        for name in ("loihi", "speck", "sinabs", "snntorch", "cpu", "norse"):
            if r.get(f"{name}_rate") is not None:
                row[f"{name}_b{r['batch']}"] = float(r[f"{name}_rate"])
        if r.get("sinabs_equal") is not None:
            row["sinabs_equal"] = bool(row.get("sinabs_equal", True) and r["sinabs_equal"])
    out = []
    for key, row in rows.items():
        lr = lava.get(key)
        syn = row["synapses"]
        row["lava"] = lr
        for b in (1, 64):
            rate = row.get(f"loihi_b{b}")
            row[f"x_lava_b{b}"] = rate / lr if (rate and lr) else None
            row[f"loihi_ceiling_b{b}"] = rate * syn / ceiling if rate else None
        sp, sb, st = row.get("speck_b64"), row.get("sinabs_b64"), row.get("snntorch_b64")
        row["x_sinabs_b64"] = sp / sb if (sp and sb) else None
        row["speck_x_snntorch_b64"] = sp / st if (sp and st) else None
        row["speck_ceiling_b64"] = sp * syn / ceiling if sp else None
        cp, nr = row.get("cpu_b64"), row.get("norse_b64")
        row["cpu_x_snntorch_b64"] = cp / st if (cp and st) else None
        row["cpu_x_norse_b64"] = cp / nr if (cp and nr) else None
        row["loihi_ok"] = all(
            row[f"x_lava_b{b}"] is not None and (row[f"x_lava_b{b}"] >= bar or row[f"loihi_ceiling_b{b}"] >= 1.0)
            for b, bar in ((64, LAVA_BAR_B64), (1, LAVA_BAR_B1)))
        row["speck_ok"] = (row["x_sinabs_b64"] is not None and row["speck_x_snntorch_b64"] is not None
                           and (row["x_sinabs_b64"] >= SINABS_BAR_B64 or row["speck_ceiling_b64"] >= 1.0)
                           and row["speck_x_snntorch_b64"] >= 1.0)
        row["cpu_ok"] = None if row["cpu_x_snntorch_b64"] is None else row["cpu_x_snntorch_b64"] >= 1.0
        out.append(row)
    return out


def _x(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}x" if v >= 10 else f"{v:.2f}x"


def _extremes(rows: Sequence[Dict[str, Any]], key: str) -> str:
    vals = [(r[key], r) for r in rows if r.get(key) is not None]
    if not vals:
        return "not measured"
    (lo, rlo), (hi, rhi) = min(vals, key=lambda v: v[0]), max(vals, key=lambda v: v[0])
    return (f"worst {_x(lo)} ({rlo['network']}, {rlo['density']:.0%} input), "
            f"best {_x(hi)} ({rhi['network']}, {rhi['density']:.0%} input)")


def _load(v: Any) -> str:
    return "/".join(f"{x:.2f}" for x in v) if isinstance(v, (list, tuple)) else str(v)


def _num(v: Optional[float], spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _verdict(v: Optional[bool]) -> str:
    return "-" if v is None else ("yes" if v else "**no**")


def readme_block(res: Dict[str, Any]) -> str:
    """Return the README's speed section body, rendered from the results file ``res``."""
    rows = configurations(res)
    m = res["machine"]
    head = [h for h in res.get("headline", []) if h.get("ratio_b64") is not None]
    n = len(rows)
    stat = (f"the median of {res['calls']} timed calls per peer on the same inputs and steps"
            if res.get("calls") else "timed per peer")
    lines = [
        f"Generated by `benchmarks/speed_report.py` from `benchmarks/results/results.json` "
        f"({'quick' if res['quick'] else 'full'} `make bench` run of {res['date']}, {m['cpus']} CPUs, "
        f"load average {_load(m['loadavg'])} at start, {res['load_end'][0]:.2f} at the end); every ratio is between "
        f"peers measured in the same run, sample-steps per second, {stat}; Lava's is its steady-state rate.",
        "",
    ]
    for h in head:
        lines.append(f"* {h['case']}: {_x(h['ratio_b64'])} Lava at batch 64, {_x(h['ratio_b1'])} at batch 1 "
                     f"({'bit-exact' if h.get('bit_exact') else 'NOT bit-exact'}).")
    lines += [
        f"* Loihi reference vs Lava over the {n} sweep configurations, batch 64: "
        f"{_extremes(rows, 'x_lava_b64')}; batch 1: {_extremes(rows, 'x_lava_b1')}.",
        f"* Speck reference vs sinabs, batch 64: {_extremes(rows, 'x_sinabs_b64')}; vs snnTorch's float model: "
        f"{_extremes(rows, 'speck_x_snntorch_b64')}.",
        f"* `cpu` float target vs snnTorch, batch 64: {_extremes(rows, 'cpu_x_snntorch_b64')}; vs Norse: "
        f"{_extremes(rows, 'cpu_x_norse_b64')}.",
        f"* Issue 18's bars (Loihi >= {LAVA_BAR_B64:.0f}x Lava at batch 64 and >= {LAVA_BAR_B1:.0f}x at batch 1, "
        f"Speck >= {SINABS_BAR_B64:.0f}x sinabs and >= snnTorch, or at half the matmul ceiling): Loihi meets them "
        f"on {sum(r['loihi_ok'] for r in rows)} of {n} configurations, Speck on {sum(r['speck_ok'] for r in rows)} "
        f"of {n}, the `cpu` target (>= snnTorch at batch 64) on {sum(bool(r['cpu_ok']) for r in rows)} of "
        f"{sum(r['cpu_ok'] is not None for r in rows)}. Per configuration: `benchmarks/README.md`.",
    ]
    ev = res.get("evaluate") or []
    if ev:
        lines.append("* Evaluating held-out recordings end to end (`Program.evaluate` on the files: read, bin, "
                     "run, score): " + "; ".join(_evaluate_cell(r) for r in ev) + ".")
    return "\n".join(lines)


def _evaluate_cell(r: Dict[str, Any]) -> str:
    acc = "" if r.get("accuracy") is None else f", {100 * r['accuracy']:.1f} % correct"
    return f"{r['target']} ({r['model']}) {r['samples_per_s']:,.1f} samples/s on {r['n']}{acc}"


def bench_block(res: Dict[str, Any]) -> str:
    """Return ``benchmarks/README.md``'s per-configuration verdict table, rendered from ``res``."""
    rows = configurations(res)
    ceiling = ceiling_macs(res)
    lines = [
        f"From `results/results.json` ({res['date']}); ceiling = half the best fp32 matmul rate of the run = "
        f"{ceiling / 1e9:.1f} G multiply-accumulates/s; 'ceiling' columns = sample-steps/s x synapses / ceiling.",
        "",
        "| network | input | synapses | Lava | x Lava b=64 | x Lava b=1 | Loihi ceiling b=64 | Loihi bar | "
        "x sinabs b=64 | Speck x snnTorch b=64 | Speck bar | cpu x snnTorch b=64 | cpu x Norse b=64 |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['network']} | {r['density']:.0%} | {r['synapses']:.2e} | "
            f"{_num(r['lava'], ',.1f')} | {_x(r['x_lava_b64'])} | {_x(r['x_lava_b1'])} | "
            f"{_num(r['loihi_ceiling_b64'], '.2f')} | {_verdict(r['loihi_ok'])} | "
            f"{_x(r['x_sinabs_b64'])} | {_x(r['speck_x_snntorch_b64'])} | {_verdict(r['speck_ok'])} | "
            f"{_x(r['cpu_x_snntorch_b64'])} | {_x(r['cpu_x_norse_b64'])} |")
    ev = res.get("evaluate") or []
    if ev:
        lines += ["", "Evaluating N held-out recordings end to end (`snnc.compile(checkpoint, target)`, then "
                  "`Program.evaluate(files, labels)`: read, bin, run the reference simulator, score; one timed pass):",
                  "", "| target | checkpoint | recordings | N | steps | batch | samples/s | accuracy |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['target']} | {r['model']} | {r['data']} | {r['n']} | {r['steps']} | {r['batch_size']} | "
                  f"{r['samples_per_s']:,.1f} | {_num(None if r.get('accuracy') is None else 100 * r['accuracy'], '.1f')} % |"
                  for r in ev]
    return "\n".join(lines)


def render(text: str, path: Path, block: str) -> str:
    """Return ``text`` with the block between ``path``'s markers replaced by ``block``."""
    from snnc.files import replace_between

    return replace_between(text, *MARKERS[path], block, str(path))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Rewrite (or with ``--check`` compare) the generated speed blocks; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--check", action="store_true", help="exit 1 when a block differs from its rendering")
    args = p.parse_args(argv)
    res = json.loads(args.results.read_text())
    stale = []
    for path, block in ((README, readme_block(res)), (BENCH_README, bench_block(res))):
        old = path.read_text()
        new = render(old, path, block)
        if new != old:
            stale.append(str(path.relative_to(REPO)))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        sys.stderr.write(f"stale speed blocks in {', '.join(stale)}: run benchmarks/speed_report.py\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
