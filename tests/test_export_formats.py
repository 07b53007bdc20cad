"""``snn-export --format netx|speck-config|nir``: the chip files, written as the README says and loaded as it shows."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import snnc
from snnc.models import zoo
from snnc.targets.loihi.lava_backend import lava_python

REPO = Path(__file__).resolve().parents[1]
CKPT = REPO / "snnc" / "models" / "checkpoints"


def snn_export(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the ``snn-export`` console command as a user would (a subprocess)."""
    code = "import sys; from snnc.cli_export import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _artifact(tmp_path: Path, name: str, target: str) -> Path:
    art = snnc.compile(str(CKPT / f"{name}.pt"), target=target, dt_s=zoo.recipe(name)["dt_us"] * 1e-6)
    path = tmp_path / f"{name}.{target}.snnc"
    art.save(str(path))
    return path


def _readme_block(marker: str) -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(rf"<!-- {marker}:start -->\n(.*?)<!-- {marker}:end -->", text, re.S)
    assert m, f"README lacks the {marker} block"
    return m.group(1)


def test_netx_export_loads_with_the_readme_lava_code_and_runs_like_the_artifact(tmp_path) -> None:
    art_path = _artifact(tmp_path, "nmnist_mlp", "loihi")
    r = snn_export(tmp_path, str(art_path), "-o", "model.net", "--format", "netx")
    assert r.returncode == 0, r.stderr
    prog = snnc.load(str(art_path))
    assert (tmp_path / "model.net").read_bytes() == prog.artifact.payload["loihi/network.net"]
    from snnc.models.data.nmnist import NMNISTSmall
    from snnc.runtime.inputs import to_dense_batch

    x = (to_dense_batch(NMNISTSmall().events(3), prog.input_shape, prog.bin_us, 40,
                        mode="binary") > 0).astype(np.uint8)
    np.save(tmp_path / "input.npy", x[0])
    code = _readme_block("netx-snippet").split("```python\n", 1)[1].split("```", 1)[0]
    r = subprocess.run([str(lava_python()), "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = np.load(tmp_path / "output.npy").astype(bool)
    ref = prog.run(x, backend="sim").output[0].astype(bool)
    assert ref.any(), "the recording must make the network answer"
    np.testing.assert_array_equal(got, ref.reshape(x.shape[1], -1))


def test_speck_config_export_is_the_artifacts_configuration(tmp_path) -> None:
    art_path = _artifact(tmp_path, "speck_cnn", "speck")
    r = snn_export(tmp_path, str(art_path), "-o", "speck.json", "--format", "speck-config")
    assert r.returncode == 0, r.stderr
    prog = snnc.load(str(art_path))
    assert (tmp_path / "speck.json").read_bytes() == prog.artifact.payload["speck/config.json"]
    cfg = json.loads((tmp_path / "speck.json").read_text())
    assert cfg["format"] == "snnc-speck-config" and sum(c is not None for c in cfg["cnn_layers"]) >= 2


def test_export_refuses_formats_the_artifact_has_not(tmp_path) -> None:
    speck = _artifact(tmp_path, "speck_cnn", "speck")
    r = snn_export(tmp_path, str(speck), "-o", "x.net", "--format", "netx")
    assert r.returncode == 2 and "writes no 'netx' file" in r.stderr and "Traceback" not in r.stderr
    loihi = _artifact(tmp_path, "minlatency_cnn", "loihi")  # its readout is v: netx cannot express it
    r = snn_export(tmp_path, str(loihi), "-o", "x.net", "--format", "netx")
    assert r.returncode == 2 and "no lava-dl netx file" in r.stderr and "readout" in r.stderr
    assert not (tmp_path / "x.net").exists()
    r = snn_export(tmp_path, str(loihi), "-o", "x.json", "--format", "speck-config")
    assert r.returncode == 2 and "writes no 'speck-config' file" in r.stderr


def test_readme_lava_setup_cost_is_the_measured_one() -> None:
    m = json.loads((REPO / "benchmarks" / "results" / "lava_setup.json").read_text())
    text = " ".join(_readme_block("lava-setup").split())
    for key in ("lava_only_s", "lava_only_mb", "netx_deps_s", "venv_total_mb", "netx_first_import_s",
                "cold_download_mb", "cold_download_s"):
        assert re.search(rf"\b{m[key]} (s|MB)\b", text), (key, m[key])
