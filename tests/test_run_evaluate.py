"""``snn-run ARTIFACT --input DIR`` scores a data set; every bad path and signal ends cleanly.

Driven through the installed ``snn-compile`` / ``snn-run`` / ``snn-train`` commands on real
N-MNIST recordings and FSDD audio, as the README shows.
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import numpy as np
import pytest

import snnc

BIN = Path(sys.executable).parent
CKPTS = Path(snnc.__file__).parent / "models" / "checkpoints"


def bare(tool: str, *args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def nmnist_heldout(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The held-out N-MNIST-small recordings (split 0.2, seed 0) as files plus a labels file for them."""
    from snnc.models.data.nmnist import NMNISTSmall

    ds = NMNISTSmall()
    val = ds.split(0.2, seed=0)[1]
    files = [str(ds.path(i)) for i in val]
    d = tmp_path_factory.mktemp("labels")
    lab = d / "heldout_labels.txt"
    lab.write_text("".join(f"{os.path.basename(f)}\t{ds.label(i)}\n" for f, i in zip(files, val)))
    return files, str(lab), [ds.label(i) for i in val]


@pytest.fixture(scope="module")
def cnn_loihi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cnn")
    r = bare("snn-compile", str(CKPTS / "nmnist_cnn.pt"), "--target", "loihi", "-o", "cnn.snnc", cwd=d)
    assert r.returncode == 0, r.stderr
    return d / "cnn.snnc"


def test_snn_run_scores_heldout_nmnist_like_evaluate_and_snn_train(tmp_path: Path, nmnist_heldout: tuple,
                                                                   cnn_loihi: Path) -> None:
    files, labels_file, labels = nmnist_heldout
    r = bare("snn-run", str(cnn_loihi), "--input", *files, "--labels", labels_file, "--json", "e.json",
             "--progress", "--plot-eval", "eval.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "confusion matrix" in r.stdout and "latency: 3 step(s)" in r.stdout
    assert "sample/s" in r.stderr or "it/s" in r.stderr or "%|" in r.stderr  # the progress bar
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["n"] == len(files) == 199
    assert f"accuracy: {100 * ev['accuracy']:.2f} %" in r.stdout
    assert np.asarray(ev["confusion"]).sum() == 199
    assert (tmp_path / "eval.png").stat().st_size > 10_000
    # the same number from Python and from snn-train's deployed evaluation (one evaluation module)
    prog = snnc.load(str(cnn_loihi))
    assert prog.evaluate(files, labels).accuracy == ev["accuracy"]
    from snnc.models.train import evaluate_checkpoint

    dep = evaluate_checkpoint(str(CKPTS / "nmnist_cnn.pt"), deploy_target="loihi")["deployed"]
    assert dep["n"] == 199 and dep["accuracy"] == ev["accuracy"]
    assert ev["accuracy"] >= 0.93  # the shipped checkpoint's Loihi accuracy (93.47 % measured)


def test_snn_run_scores_fsdd_wav_through_the_artifact_cochlea(tmp_path: Path) -> None:
    from snnc.models.data.fsdd import fsdd_dir
    from snnc.models.train import evaluate_checkpoint

    r = bare("snn-compile", str(CKPTS / "fsdd_mlp.pt"), "-o", "f.snnc", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pattern = str(fsdd_dir() / "*_[5-9].wav")  # the held-out utterances (indices 5..9)
    r = bare("snn-run", "f.snnc", "--input", pattern, "--json", "e.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "audio encoded with the artifact's cochlea" in r.stdout and "FSDD file names" in r.stdout
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["n"] == 300
    ref = evaluate_checkpoint(str(CKPTS / "fsdd_mlp.pt"))["float"]
    assert ev["accuracy"] == pytest.approx(ref["accuracy"], abs=1e-9)


def test_plot_of_one_sample_writes_exactly_the_named_file(tmp_path: Path, nmnist_heldout: tuple,
                                                          cnn_loihi: Path) -> None:
    files = nmnist_heldout[0]
    for name in ("one.png", "one.svg", "one.pdf"):
        r = bare("snn-run", str(cnn_loihi), "--input", files[0], "--plot", name, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / name).is_file()
    assert (tmp_path / "one.svg").read_text().lstrip().startswith("<?xml")
    r = bare("snn-run", str(cnn_loihi), "--input", files[0], "--plot", "one.xyz", cwd=tmp_path)
    assert r.returncode == 2 and "unknown picture format '.xyz'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "one.xyz").exists()


# ----------------------------------------------------------------------------- bad output paths
def _compile(tmp_path: Path, out: str) -> subprocess.CompletedProcess:
    return bare("snn-compile", str(CKPTS / "speck_cnn.pt"), "--target", "speck", "-o", out, "-q", cwd=tmp_path)


def test_output_to_dev_null_or_a_directory_is_refused_and_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    for out in ("/dev/null", "adir"):
        r = _compile(tmp_path, out)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert "refusing to replace it" in r.stderr or "is a directory" in r.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert (tmp_path / "adir").is_dir() and not os.listdir(tmp_path / "adir")


def test_missing_parent_folders_are_created_and_files_get_the_umask(tmp_path: Path) -> None:
    r = _compile(tmp_path, "new/deeper/a.snnc")
    assert r.returncode == 0, r.stderr
    mode = stat.S_IMODE(os.stat(tmp_path / "new/deeper/a.snnc").st_mode)
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask
    (tmp_path / "afile").write_text("x")
    r = _compile(tmp_path, "afile/a.snnc")
    assert r.returncode == 2 and "not a directory" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "afile").read_text() == "x"


def test_snn_train_checks_its_output_before_training(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    r = bare("snn-train", "speck_cnn", "--out", "/dev/null", "--epochs", "1", cwd=tmp_path)
    assert r.returncode == 2 and "refusing to replace it" in r.stderr and "Traceback" not in r.stderr
    assert time.perf_counter() - t0 < 60  # refused before loading data or training
    assert "epoch" not in r.stderr


def test_evaluation_json_into_a_directory_is_refused_before_running(tmp_path: Path, cnn_loihi: Path,
                                                                    nmnist_heldout: tuple) -> None:
    (tmp_path / "d").mkdir()
    r = bare("snn-run", str(cnn_loihi), "--input", nmnist_heldout[0][0], "--json", "d", cwd=tmp_path)
    assert r.returncode == 2 and "is a directory" in r.stderr and "accuracy" not in r.stdout


# ----------------------------------------------------------------------------- degenerate inputs
def test_empty_zero_step_and_silent_inputs(tmp_path: Path, cnn_loihi: Path) -> None:
    (tmp_path / "empty.bin").write_bytes(b"")
    r = bare("snn-run", str(cnn_loihi), "--input", "empty.bin", cwd=tmp_path)
    assert r.returncode == 2 and "holds no event" in r.stderr and "Traceback" not in r.stderr
    np.save(tmp_path / "zeros.npy", np.zeros((20, 2, 34, 34), np.float32))  # a recording in which nothing happens
    r = bare("snn-run", str(cnn_loihi), "--input", "zeros.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "prediction none (no output spike)" in r.stdout and "no output spike" in r.stdout
    r = bare("snn-run", str(cnn_loihi), "--input", "zeros.npy", "--steps", "0", cwd=tmp_path)
    assert r.returncode == 2 and "--steps must be >= 1" in r.stderr
    np.save(tmp_path / "nosteps.npy", np.zeros((0, 2, 34, 34), np.float32))
    r = bare("snn-run", str(cnn_loihi), "--input", "nosteps.npy", cwd=tmp_path)
    assert r.returncode == 2 and "zero time steps" in r.stderr and "Traceback" not in r.stderr
    r = bare("snn-run", str(cnn_loihi), "--input", str(tmp_path / "nothing-here"), cwd=tmp_path)
    assert r.returncode == 2 and "input not found" in r.stderr


def test_api_refuses_empty_and_ragged_batches(cnn_loihi: Path) -> None:
    prog = snnc.load(str(cnn_loihi))
    for bad, msg in ((np.zeros((0, 5, 2, 34, 34)), "no sample"), (np.zeros((1, 0, 2, 34, 34)), "zero time steps"),
                     ([np.zeros((3, 2, 34, 34)), np.zeros((4, 2, 34, 34))], "different shapes")):
        with pytest.raises(snnc.SnncError, match=msg):
            prog.run(bad)


# ----------------------------------------------------------------------------- signals
def _lava_workers() -> List[int]:
    from loihi_helpers import lava_worker_pids

    return lava_worker_pids()


def _snnc_temp_dirs() -> set:
    import tempfile

    base = tempfile.gettempdir()
    return {d for d in os.listdir(base) if d.startswith("snnc-lava-")}


@pytest.mark.lava
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_during_a_lava_run_leaves_nothing(tmp_path: Path, cnn_loihi: Path, nmnist_heldout: tuple,
                                                 sig: int) -> None:
    from loihi_helpers import lava_missing_reason

    missing = lava_missing_reason()
    if missing:
        pytest.skip(missing)
    before_dirs = _snnc_temp_dirs()
    before = set(_lava_workers())
    proc = subprocess.Popen([str(BIN / "snn-run"), str(cnn_loihi), "--input", *nmnist_heldout[0][:8],
                             "--backend", "lava", "--json", "e.json"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (set(_lava_workers()) - before):
        time.sleep(0.2)
    assert set(_lava_workers()) - before, "the Lava worker never started"
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert f"terminated by {signal.Signals(sig).name}" in err and "Traceback" not in err
    time.sleep(0.5)
    assert set(_lava_workers()) - before == set()
    assert _snnc_temp_dirs() - before_dirs == set()
    assert not (tmp_path / "e.json").exists()
    assert [f for f in os.listdir(tmp_path) if f.startswith(".snnc-")] == []
