"""The README's claims tables come from results/claims/*.json, and those numbers from the shipped checkpoints.

``scripts/paper_claims.py evaluate`` wrote the results files; here the shipped checkpoints are
evaluated again the same way (float model on the whole held-out split; the Loihi rows on the
Loihi reference simulator) and must give the same numbers, the verdicts must follow from them,
and the README section must be what ``paper_claims.py readme`` renders from the files.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from snnc.models.data.nmnist import nmnist_small_dir

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "paper_claims.py"
needs_data = pytest.mark.skipif(not (nmnist_small_dir() / "labels.txt").is_file(),
                                reason=f"real N-MNIST-small data not found at {nmnist_small_dir()} (set SNNC_DATA)")


def _script():
    spec = importlib.util.spec_from_file_location("paper_claims", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


PC = _script()
ROWS = [(name, row["key"]) for name, spec in PC.CLAIMS.items() for row in spec["rows"]]


def _results(name: str) -> dict:
    f = PC.RESULTS / f"{name}.json"
    assert f.is_file(), f"missing {f}: run scripts/paper_claims.py evaluate"
    res = json.loads(f.read_text())
    assert res["limit_val"] is None, "results must cover the whole held-out split"
    return res


def _row(name: str, key: str) -> dict:
    return next(r for r in PC.CLAIMS[name]["rows"] if r["key"] == key)


def test_readme_claims_tables_are_current() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "readme", "--check"], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", list(PC.CLAIMS))
def test_every_row_is_shipped_evaluated_and_reproducible(name: str) -> None:
    res = _results(name)
    train_zoo = (REPO / "scripts" / "train_zoo.sh").read_text()
    for row in PC.CLAIMS[name]["rows"]:
        assert PC.ckpt_path(row).is_file(), row["ckpt"]
        assert row["key"] in res["rows"], row["key"]
        # the checkpoint is written by a line of scripts/train_zoo.sh
        out = f'"$CK/{row["ckpt"]}"'
        assert out in train_zoo, f"{row['ckpt']} is not produced by scripts/train_zoo.sh"
        assert res["rows"][row["key"]]["float"]["n"] == 199


@pytest.mark.parametrize("name", list(PC.CLAIMS))
def test_verdicts_follow_from_the_numbers(name: str) -> None:
    res = _results(name)
    assert PC.verdict(name, res["rows"]) == res["verdict"]


@needs_data
@pytest.mark.parametrize("name,key", ROWS)
def test_float_numbers_equal_the_shipped_checkpoint(name: str, key: str) -> None:
    import torch

    torch.set_num_threads(1)
    want = _results(name)["rows"][key]["float"]
    got = PC.evaluate_float(_row(name, key))
    assert got["n"] == want["n"]
    assert got["accuracy"] == want["accuracy"]
    for k in ("synops", "acs", "macs", "nasfr", "awake_ratio", "ctrl_rate"):
        if k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-9), k


#: Held-out recordings re-run on the Loihi simulator per row (the whole split takes minutes for SkipSNN).
N_LOIHI = 40


@needs_data
@pytest.mark.parametrize("name,key", [(n, k) for n, k in ROWS if _row(n, k)["loihi"]])
def test_loihi_numbers_equal_the_reference_simulator(name: str, key: str) -> None:
    import torch

    torch.set_num_threads(1)
    want = _results(name)["rows"][key]["loihi"]
    assert len(want["predictions"]) == want["n"] == 199
    assert want["accuracy"] == pytest.approx(sum(
        int(p == y) for p, y in zip(want["predictions"], _labels(name, key))) / want["n"])
    assert want["spikes"] == pytest.approx(sum(want["spikes_each"]) / want["n"])
    got = PC.evaluate_loihi(_row(name, key), limit_val=N_LOIHI)
    assert got["predictions"] == want["predictions"][:N_LOIHI]
    assert got["spikes_each"] == want["spikes_each"][:N_LOIHI]
    assert got["latency_steps"] == want["latency_steps"]


def _labels(name: str, key: str) -> list:
    import torch

    extra = torch.load(PC.ckpt_path(_row(name, key)), map_location="cpu", weights_only=True)["extra"]
    val = PC._val(extra, None)
    return [int(v) for v in val.labels[val.indices]]


#: Claims with extra seeds recorded (results/claims/<claim>_seeds.json); the others have none yet.
SEEDED = [name for name in PC.CLAIMS if (PC.RESULTS / f"{name}_seeds.json").is_file()]


def test_some_claim_has_extra_seeds() -> None:
    assert SEEDED, "no results/claims/*_seeds.json: the seed test below would check nothing"


@pytest.mark.parametrize("name", SEEDED)
def test_seed_runs_use_the_shipped_command(name: str) -> None:
    f = PC.RESULTS / f"{name}_seeds.json"
    runs = json.loads(f.read_text())["runs"]
    res = _results(name)
    for key, seeds in runs.items():
        shipped = res["rows"][key]["command"].split()
        for s, r in seeds.items():
            cmd = r["command"].split()
            assert cmd[cmd.index("--seed") + 1] == s
            strip = lambda c: [a for i, a in enumerate(c) if a not in ("--out", "--seed", "--quiet", "--threads", "--resume", "--keep-resume")  # noqa: E731
                               and (i == 0 or c[i - 1] not in ("--out", "--seed", "--threads"))]
            assert strip(cmd) == strip(shipped), (key, s)


def test_evaluate_rows_refuses_a_results_file_of_another_sample_count() -> None:
    with pytest.raises(SystemExit, match="limit-val"):
        PC.evaluate_claim("minlatency", limit_val=5, only=["plain_t1"])


def test_curves_come_from_the_checkpoints_histories() -> None:
    import torch

    res = _results("skipsnn")
    ck = torch.load(PC.ckpt_path(_row("skipsnn", "skipsnn")), map_location="cpu", weights_only=True)["extra"]
    # the plain SNN is SkipSNN's stage 1: its curve is the one stage 2 recorded from its --init checkpoint
    assert res["rows"]["skipsnn_plain"]["init_curve"]["val_accuracy"] == [h["val_accuracy"] for h in ck["init_history"]]
    assert res["rows"]["skipsnn"]["curve"]["val_awake_ratio"] == [h["val_awake_ratio"] for h in ck["history"]]
    table = PC.render_curves(res)
    assert "stage 1 (gate open)" in table and "stage 2" in table
    # a folded ASA model carries its parent's history and is shown once
    assert PC.render_curves(_results("asa")).count(" | 8 ep. | ") == 5
