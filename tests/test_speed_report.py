"""The speed figures of README.md and benchmarks/README.md are the rendering of the benchmark results file."""
from __future__ import annotations

import copy
import importlib.util
import json
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
    """Each configuration of the results file carries Lava, sinabs and snnTorch rates at batch 1 and 64."""
    rows = speed_report.configurations(_results())
    assert len(rows) == 16
    for r in rows:
        assert r["lava"] and r["x_lava_b1"] and r["x_lava_b64"], r["network"]
        assert r["sinabs_equal"] is True, r["network"]
        assert r["x_sinabs_b64"] and r["speck_x_snntorch_b64"], r["network"]


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
