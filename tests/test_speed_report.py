"""The speed figures of README.md and benchmarks/README.md are the rendering of the benchmark results file."""
from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("speed_report", REPO / "benchmarks" / "speed_report.py")
speed_report = importlib.util.module_from_spec(_spec)
assert _spec.loader is not None
_spec.loader.exec_module(speed_report)


def _results() -> dict:
    return json.loads(speed_report.RESULTS.read_text())


def test_readme_speed_blocks_are_the_rendering_of_the_results_file() -> None:
    """Both generated blocks are current (regenerate with `benchmarks/speed_report.py`)."""
    assert speed_report.main(["--check"]) == 0
    res = _results()
    assert speed_report.readme_block(res) in speed_report.README.read_text()
    assert speed_report.bench_block(res) in speed_report.BENCH_README.read_text()


def test_every_sweep_configuration_has_its_peers() -> None:
    """Each configuration of the results file carries Lava, sinabs, snnTorch, Norse and cpu rates at batch 1 and 64."""
    res = _results()
    rows = speed_report.configurations(res)
    assert len(rows) == 16
    for r in rows:
        assert r["lava"] and r["x_lava_b1"] and r["x_lava_b64"], r["network"]
        assert r["sinabs_equal"] is True, r["network"]
        assert r["x_sinabs_b64"] and r["speck_x_snntorch_b64"], r["network"]
        assert r["cpu_b1"] and r["cpu_b64"] and r["cpu_x_snntorch_b64"] and r["cpu_x_norse_b64"], r["network"]
    assert res["ceiling"]["macs_per_s"] > 0 and speed_report.ceiling_macs(res) == res["ceiling"]["macs_per_s"]
    assert all(r["cpu_rate"] > 0 for r in res["sweep"])
    for r in res["sweep"]:  # the float peers' equality is not empty: their readouts spike on every row
        assert r["cpu_out_rate"] > 0 and r["cpu_equal_snntorch"] == 1.0, (r["network"], r["density"], r["batch"])
        assert r["norse_equal_snntorch"] >= 0.999, (r["network"], r["density"], r["batch"])  # Norse rounds otherwise


def test_the_comparison_is_like_for_like() -> None:
    """Every peer of a configuration ran the same steps, timed by the same statistic; Lava equal to snnc's timed runs."""
    res = _results()
    lava = {(r["network"], r["density"]): r for r in res["lava"]}
    for r in res["sweep"]:
        lv = lava[(r["network"], r["density"])]
        assert lv["steps"] == r["steps"], r["network"]
        assert lv["statistic"] == r["statistic"] == "median" and lv["timed_calls"] == r["timed_calls"] == res["calls"]
        assert lv["equal_to_snnc_b64"] is True and lv["equal_to_snnc_b1"] is True, r["network"]
        assert all(len(r[f"{k}_calls_s"]) == res["calls"] for k in ("loihi", "speck", "sinabs", "snntorch", "cpu",
                                                                     "norse"))
    for h in res["headline"]:
        assert "trained checkpoint" in h["case"] and h["checkpoint"].endswith(".pt")
        assert h["bit_exact"] is True and not h["silent_layers"], h["case"]
        assert len(h["snnc_calls_s"]) == len(h["snnc_calls_b1_s"]) == len(h["lava_run_calls_s"]) - 1 == res["calls"]


def test_evaluate_rows_are_rendered() -> None:
    """The user's job (N held-out recordings end to end) is in the results for every target, and in both blocks."""
    res = _results()
    assert sorted(r["target"] for r in res["evaluate"]) == ["cpu", "loihi", "speck", "xylo"]
    for r in res["evaluate"]:
        assert r["n"] >= 32 and r["samples_per_s"] > 0 and 0 <= r["accuracy"] <= 1
        cell = f"{r['samples_per_s']:,.1f}"
        assert cell in speed_report.readme_block(res) and cell in speed_report.bench_block(res)


#: A decimal percentage, a speed-up, a rate or a decimal duration (as tests/test_readme.py's).
FIGURE = re.compile(r"\d+\.\d+\s?%|\b\d[\d,]*(\.\d+)?\s?x\b|\d+(\.\d+)?k?\s+(sample-steps|samples)/s|\b\d+\.\d+\s?s\b")


def test_no_typed_in_figures_in_benchmarks_readme() -> None:
    """Outside its generated block benchmarks/README.md quotes no measured figure (history lives in LOG.md)."""
    text = speed_report.BENCH_README.read_text()
    start, end = speed_report.MARKERS[speed_report.BENCH_README]
    head, rest = text.split(start, 1)
    found = [m.group(0) for m in FIGURE.finditer(head + rest.split(end, 1)[1])]
    assert not found, f"benchmarks/README.md figures outside the generated block: {found}"


def test_the_bars_and_the_ceiling_escape() -> None:
    """A row passes on its ratios or at half the matmul ceiling, and fails otherwise (worst case named)."""
    res = copy.deepcopy(_results())
    res["matmul"] = {"numpy float32": 2.0, "torch float32": 1.0}  # ceiling: 1e9 MAC/s
    res["lava"] = [{"network": "n", "density": 0.3, "lava_rate": 100.0}]
    base = {"network": "n", "density": 0.3, "synapses": 1000, "sinabs_equal": True}
    res["sweep"] = [dict(base, batch=64, loihi_rate=150_000.0, speck_rate=1000.0, sinabs_rate=100.0,
                         snntorch_rate=1000.0),
                    dict(base, batch=1, loihi_rate=30_000.0, speck_rate=10.0, sinabs_rate=1.0, snntorch_rate=10.0)]
    (row,) = speed_report.configurations(res)
    assert row["x_lava_b64"] == 1500.0 and row["x_lava_b1"] == 300.0
    assert row["loihi_ok"] and row["speck_ok"]
    res["sweep"][1]["loihi_rate"] = 29_000.0  # 290x at batch 1, far below the ceiling: fails
    (row,) = speed_report.configurations(res)
    assert not row["loihi_ok"]
    res["sweep"][1]["synapses"] = res["sweep"][0]["synapses"] = 10_000_000  # 2.9e11 MAC/s: at the ceiling
    base["synapses"] = 10_000_000
    (row,) = speed_report.configurations(res)
    assert row["loihi_ok"]
    res["sweep"][0]["snntorch_rate"] = 2000.0  # Speck slower than snnTorch: fails whatever the sinabs ratio
    (row,) = speed_report.configurations(res)
    assert not row["speck_ok"]
    assert "worst 1,500x" in speed_report.readme_block(res)
