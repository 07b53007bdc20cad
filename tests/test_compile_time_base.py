"""The time base travels with the model: ``snn-compile X.pt --target T`` with no other flag is right.

Driven through the installed ``snn-compile`` / ``snn-run`` commands as the README shows them.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

import snnc
from snnc.errors import InputError, RuleViolationError

BIN = Path(sys.executable).parent
CKPTS = Path(snnc.__file__).parent / "models" / "checkpoints"
TARGETS = ("cpu", "loihi", "speck")


def bare(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def shipped() -> List[Tuple[str, str]]:
    """(checkpoint name, target) for every shipped checkpoint and every target that accepts it."""
    out = []
    for ck in sorted(CKPTS.glob("*.pt")):
        for t in TARGETS:
            try:
                snnc.compile(str(ck), target=t, netx=False) if t == "loihi" else snnc.compile(str(ck), target=t)
            except RuleViolationError:
                continue
            out.append((ck.stem, t))
    return out


@pytest.mark.parametrize("name,target", shipped())
def test_bare_command_compiles_at_the_recipe_step(tmp_path: Path, name: str, target: str) -> None:
    """The bare command's program is the program compiled with the recipe's dt (so it scores the same)."""
    import torch

    from snnc.models.zoo import recipe

    r = bare("snn-compile", str(CKPTS / f"{name}.pt"), "--target", target, "-o", "a.snnc", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "ASSUMED" not in r.stderr and "differs" not in r.stderr
    art = snnc.load(str(tmp_path / "a.snnc")).artifact
    ck = torch.load(CKPTS / f"{name}.pt", weights_only=True)
    dt = float(recipe(ck["model"])["dt_us"]) * 1e-6
    assert art.manifest["time_base"]["dt_s"] == pytest.approx(dt, rel=1e-12)
    assert art.manifest["time_base"]["dt_source"] == "snnc checkpoint"
    assert art.manifest["time_base"]["bin_us"] == int(recipe(ck["model"])["dt_us"])
    assert art.manifest["model"]["zoo_model"] == ck["model"]
    explicit = snnc.compile(str(CKPTS / f"{name}.pt"), target=target, dt_s=dt)
    assert art.payload == explicit.payload


def test_nir_without_dt_warns_loudly(tmp_path: Path) -> None:
    art = snnc.compile(str(CKPTS / "nmnist_mlp.pt"), target="cpu")
    from snnc.runtime.export import write_artifact_nir

    path = write_artifact_nir(art, str(tmp_path / "m.nir"))
    import h5py

    with h5py.File(path, "r+") as f:  # a NIR file as other exporters write it: no statement of its step
        del f["node/metadata"]
    r = bare("snn-compile", "m.nir", "-o", "m.snnc", cwd=tmp_path)
    assert r.returncode == 0
    assert "ASSUMED dt = 0.001 s, exact integration" in r.stderr and "--framework NAME" in r.stderr
    assert snnc.load(str(tmp_path / "m.snnc")).manifest["time_base"]["dt_source"] == "default"
    r = bare("snn-compile", "m.nir", "-o", "m.snnc", "--dt", "1e-3", "--method", "exact", cwd=tmp_path)
    assert r.returncode == 0 and "ASSUMED" not in r.stderr


def test_snnc_nir_export_states_its_step(tmp_path: Path) -> None:
    """snn-export writes dt into the file's metadata; compiling the file back needs no flag."""
    bare("snn-compile", str(CKPTS / "nmnist_cnn.pt"), "--target", "loihi", "-o", "c.snnc", cwd=tmp_path)
    r = bare("snn-export", "c.snnc", "-o", "c.nir", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = bare("snn-compile", "c.nir", "-o", "back.snnc", cwd=tmp_path)
    assert r.returncode == 0 and "ASSUMED" not in r.stderr
    tb = snnc.load(str(tmp_path / "back.snnc")).manifest["time_base"]
    assert tb["dt_s"] == 2e-3 and tb["dt_source"] == "the NIR file's metadata"


def test_dt_mismatch_is_honoured_with_a_warning(tmp_path: Path) -> None:
    r = bare("snn-compile", str(CKPTS / "speck_cnn.pt"), "--target", "speck", "--dt", "1e-3", "-o", "a.snnc",
             "--report", "r.json", cwd=tmp_path)
    assert r.returncode == 0
    assert "--dt 0.001 s differs from the model's own step 0.005 s" in r.stderr
    tb = snnc.load(str(tmp_path / "a.snnc")).manifest["time_base"]
    assert tb["dt_s"] == 1e-3 and tb["dt_source"] == "flag" and tb["bin_us"] == 1000
    report = json.loads((tmp_path / "r.json").read_text())
    assert any("differs from the model's own step" in w for w in report["warnings"])


def test_snntorch_file_identified_and_events_need_a_bin_width(tmp_path: Path) -> None:
    """A file whose parameters are snnTorch's convention is read as such; its unit step needs --bin-us."""
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    import nir
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(torch.nn.Linear(2 * 34 * 34, 3),  # per-neuron beta: snnTorch's type check passes
                              snn.Leaky(beta=torch.full((3,), 0.9), threshold=torch.full((3,), 1.0), init_hidden=True,
                                        output=True, reset_mechanism="zero"))
    graph = export_to_nir(net, torch.zeros(2 * 34 * 34))
    nir.write(str(tmp_path / "s.nir"), graph)
    r = bare("snn-compile", "s.nir", "-o", "s.snnc", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    tb = snnc.load(str(tmp_path / "s.snnc")).manifest["time_base"]
    assert (tb["dt_s"], tb["method"], tb["bin_us"]) == (1e-4, "euler", None)
    from snnc.models.data.events import make_events

    ev = make_events([10, 1500, 2600], [1, 2, 3], [4, 5, 6], [0, 1, 0])
    np.savez(tmp_path / "ev.npz", t=ev["t_us"], x=ev["x"], y=ev["y"], p=ev["p"])
    r = bare("snn-run", "s.snnc", "--input", "ev.npz", cwd=tmp_path)
    assert r.returncode == 2 and "--bin-us" in r.stderr and "Traceback" not in r.stderr
    bare("snn-compile", "s.nir", "-o", "s.snnc", "--bin-us", "1000", cwd=tmp_path)
    r = bare("snn-run", "s.snnc", "--input", "ev.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert snnc.load(str(tmp_path / "s.snnc")).bin_us == 1000


def test_unknown_keyword_refused_on_every_target() -> None:
    for target in TARGETS:
        with pytest.raises(InputError, match="did you mean 'dt_s'"):
            snnc.compile(str(CKPTS / "speck_cnn.pt"), target=target, dt=5e-3)


@pytest.mark.lava
def test_count_input_gets_the_same_answer_on_sim_and_lava() -> None:
    """A count-valued dense input is refused alike by Loihi's simulator and its Lava backend; its binary
    version runs on both with equal spikes."""
    from loihi_helpers import lava_missing_reason

    missing = lava_missing_reason()
    if missing:
        pytest.skip(missing)
    prog = snnc.Program(snnc.compile(str(CKPTS / "nmnist_mlp.pt"), target="loihi"))
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.05, size=(1, 12, 2, 34, 34)).astype(np.float64)
    assert counts.max() >= 2
    messages = []
    for backend in ("sim", "lava"):
        with pytest.raises(InputError) as e:
            prog.run(counts, backend=backend)
        messages.append(e.value.message)
    assert messages[0] == messages[1] and "single spikes" in messages[0]
    binary = (counts > 0).astype(np.float64)
    sim, lava = prog.run(binary, backend="sim"), prog.run(binary, backend="lava")
    np.testing.assert_array_equal(sim.output, lava.output)


def test_help_lists_examples_options_and_zoo() -> None:
    r = subprocess.run([str(BIN / "snn-compile"), "--help"], capture_output=True, text=True)
    assert "examples:" in r.stdout and "-O keys of --target loihi" in r.stdout and "validate_samples" in r.stdout
    r = subprocess.run([str(BIN / "snn-train"), "--help"], capture_output=True, text=True)
    assert "nmnist_cnn" in r.stdout and "examples:" in r.stdout
    r = subprocess.run([str(BIN / "snn-run"), "--help"], capture_output=True, text=True)
    assert "examples:" in r.stdout
