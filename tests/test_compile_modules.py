"""``snn-compile model.pt`` with models as each framework's users save them, through the bare command.

Each model is saved the way its framework allows (``torch.save(net)`` where the framework's modules
pickle; a ``state_dict`` with ``--factory`` where they do not: snnTorch's default surrogate, Norse's
parameter classes and Rockpool's modules cannot be pickled whole), compiled with the installed
``snn-compile`` console script, run with ``snnc.load(...).run``, and compared spike for spike with
the framework's own simulation of the same module.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import snnc  # noqa: E402

BIN = Path(sys.executable).parent


def bare(tool: str, *args: str, cwd: Path, env_path: str = "") -> subprocess.CompletedProcess:
    """Run an installed console script exactly as a user types it."""
    import os

    env = dict(os.environ)
    if env_path:
        env["PYTHONPATH"] = env_path + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, cwd=cwd, timeout=600, env=env)


def spikes(shape: tuple, batch: int = 3, steps: int = 40, p: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps) + shape) < p).astype(np.float32)


def compile_and_run(model: Path, x: np.ndarray, tmp_path: Path, *flags: str, env_path: str = "") -> Any:
    out = tmp_path / "m.snnc"
    r = bare("snn-compile", str(model), "--target", "cpu", "-o", str(out), *flags, cwd=tmp_path, env_path=env_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return snnc.load(str(out)).run(x.astype(np.float64)), r


def step_all(fn: Callable[[Any], Any], x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.stack([np.asarray(fn(torch.as_tensor(x[:, t]))) for t in range(x.shape[1])], 1)


def test_snnc_zoo_module_pickled_whole(tmp_path: Path) -> None:
    """A zoo model saved with torch.save(model) (its default surrogate pickles) compiles at its own dt."""
    from snnc.models.neurons import run_sequence
    from snnc.models.zoo import build

    torch.manual_seed(0)
    model = build("nmnist_cnn")
    torch.save(model, tmp_path / "cnn.pt")
    x = spikes((2, 34, 34), batch=2, steps=20, p=0.05)
    res, r = compile_and_run(tmp_path / "cnn.pt", x, tmp_path)
    with torch.no_grad():
        ref = run_sequence(model.double(), torch.as_tensor(x, dtype=torch.float64)).numpy()
    np.testing.assert_array_equal(res.output, ref)
    assert "dt 0.002 s from snnc neuron modules" in r.stdout


def test_snntorch_module_pickled_whole(tmp_path: Path) -> None:
    snn = pytest.importorskip("snntorch", reason="installed by scripts/setup_env.sh")
    from snntorch import surrogate, utils

    torch.manual_seed(0)
    kw = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False, spike_grad=surrogate.StraightThroughEstimator.apply)
    net = torch.nn.Sequential(torch.nn.Linear(12, 8), snn.Leaky(beta=0.9, threshold=0.5, **kw),
                              torch.nn.Linear(8, 4), snn.Leaky(beta=0.8, threshold=0.3, output=True, **kw))
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(2.0)
    torch.save(net, tmp_path / "snntorch.pt")
    x = spikes((12,))
    utils.reset(net)
    ref = step_all(lambda t: net(t)[0], x)
    assert ref.sum() >= 10
    res, r = compile_and_run(tmp_path / "snntorch.pt", x, tmp_path, "--input-shape", "12")
    np.testing.assert_array_equal(res.output, ref)
    assert "snntorch convention (module classes)" in r.stdout


def test_snntorch_subtract_reset_refused_with_the_fix(tmp_path: Path) -> None:
    snn = pytest.importorskip("snntorch")
    from snntorch import surrogate

    net = torch.nn.Sequential(torch.nn.Linear(12, 4),
                              snn.Leaky(beta=0.9, init_hidden=True, output=True, spike_grad=surrogate.StraightThroughEstimator.apply))
    torch.save(net, tmp_path / "sub.pt")
    r = bare("snn-compile", "sub.pt", "--input-shape", "12", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "reset_mechanism='zero'" in r.stderr and "node '1'" in r.stderr


def test_sinabs_module_pickled_whole_keeps_its_own_semantics(tmp_path: Path) -> None:
    """sinabs' defaults (MultiSpike, MembraneSubtract) and a min_v_mem floor travel from the module."""
    pytest.importorskip("sinabs", reason="installed by scripts/setup_env.sh")
    import sinabs.layers as sl

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(12, 8), sl.IAF(min_v_mem=-0.5), torch.nn.Linear(8, 4), sl.IAF())
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        net[2].weight.mul_(3.0)
    torch.save(net, tmp_path / "sinabs.pt")
    x = spikes((12,), p=0.5)
    with torch.no_grad():
        ref = net(torch.as_tensor(x)).numpy()
    assert ref.max() >= 2, "the test needs several spikes per step somewhere"
    res, r = compile_and_run(tmp_path / "sinabs.pt", x, tmp_path, "--input-shape", "12")
    np.testing.assert_array_equal(res.output, ref)
    assert "sinabs convention (module classes)" in r.stdout


def test_spikingjelly_module_pickled_whole(tmp_path: Path) -> None:
    pytest.importorskip("spikingjelly", reason="installed by scripts/setup_env.sh")
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(0)
    net = torch.nn.Sequential(layer.Linear(12, 8), neuron.LIFNode(tau=2.0, v_threshold=0.5), layer.Linear(8, 4),
                              neuron.IFNode(v_threshold=0.7))
    with torch.no_grad():
        for m in net:
            if hasattr(m, "weight"):
                m.weight.mul_(3.0)
    torch.save(net, tmp_path / "sj.pt")
    x = spikes((12,))
    functional.reset_net(net)
    ref = step_all(net, x)
    assert ref.sum() >= 10
    res, _ = compile_and_run(tmp_path / "sj.pt", x, tmp_path, "--input-shape", "12")
    np.testing.assert_array_equal(res.output, ref)


FACTORIES = textwrap.dedent('''
    import torch


    def norse_net():
        import norse.torch as norse
        p = lambda n, **kw: {k: torch.full((n,), float(v)) for k, v in kw.items()}
        return norse.SequentialState(
            torch.nn.Linear(12, 8),
            norse.LIFBoxCell(norse.LIFBoxParameters(**p(8, tau_mem_inv=100.0, v_th=0.3, v_leak=0.0, v_reset=0.0))),
            torch.nn.Linear(8, 4),
            norse.LIFCell(norse.LIFParameters(**p(4, tau_syn_inv=200.0, tau_mem_inv=100.0, v_th=0.2, v_leak=0.0,
                                                  v_reset=0.0))))


    def rockpool_net():
        from rockpool.nn.combinators import Sequential
        from rockpool.nn.modules import LinearTorch, LIFTorch
        return Sequential(LinearTorch((12, 8)), LIFTorch(8), LinearTorch((8, 4)), LIFTorch(4))
''')


def _factory(tmp_path: Path) -> Any:
    (tmp_path / "mynets.py").write_text(FACTORIES)
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        import mynets  # type: ignore[import-not-found]
        return importlib.reload(mynets)
    finally:
        sys.path.remove(str(tmp_path))


def test_norse_state_dict_with_factory(tmp_path: Path) -> None:
    pytest.importorskip("norse", reason="installed by scripts/setup_env.sh")
    mynets = _factory(tmp_path)
    torch.manual_seed(0)
    net = mynets.norse_net()
    with torch.no_grad():
        for prm in net.parameters():
            prm.mul_(3.0)
    with pytest.raises(Exception):  # Norse's parameter classes do not pickle: a state_dict is how it is saved
        torch.save(net, tmp_path / "whole.pt")
    torch.save(net.state_dict(), tmp_path / "norse_sd.pt")
    x = spikes((12,))
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[1]):
            o, state = net(torch.as_tensor(x[:, t]), state)
            outs.append(o.numpy())
    ref = np.stack(outs, 1)
    assert ref.sum() >= 10
    res, r = compile_and_run(tmp_path / "norse_sd.pt", x, tmp_path, "--factory", "mynets:norse_net",
                             "--input-shape", "12", env_path=str(tmp_path))
    np.testing.assert_array_equal(res.output, ref)
    assert "dt 0.001 s from norse module's dt" in r.stdout


def test_rockpool_state_dict_with_factory(tmp_path: Path) -> None:
    pytest.importorskip("rockpool", reason="installed by scripts/setup_env.sh")
    mynets = _factory(tmp_path)
    torch.manual_seed(0)
    net = mynets.rockpool_net()
    with torch.no_grad():
        for prm in torch.nn.Module.parameters(net):  # Rockpool's own parameters() returns a dict
            if prm.ndim == 2:
                prm.mul_(4.0)
    torch.save(net.state_dict(), tmp_path / "rp_sd.pt")
    x = spikes((12,), steps=30)
    net.reset_state()
    with torch.no_grad():
        ref, _, _ = net(torch.as_tensor(x, dtype=torch.float64).float())
    ref = ref.detach().numpy()
    assert ref.sum() >= 10
    res, _ = compile_and_run(tmp_path / "rp_sd.pt", x, tmp_path, "--factory", "mynets:rockpool_net",
                             "--input-shape", "12", env_path=str(tmp_path))
    np.testing.assert_array_equal(res.output, ref)


def test_state_dict_with_zoo_model_name(tmp_path: Path) -> None:
    """weights.pt + --model ZOO_NAME: the zoo recipe's step, equal to the checkpoint compiled directly."""
    ck = torch.load(snnc_checkpoint("speck_cnn"), weights_only=True)
    torch.save(ck["state_dict"], tmp_path / "weights.pt")
    r = bare("snn-compile", "weights.pt", "--model", "speck_cnn", "--target", "speck", "-o", "a.snnc", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    art = snnc.load(str(tmp_path / "a.snnc")).artifact
    ref = snnc.compile(snnc_checkpoint("speck_cnn"), target="speck")
    assert art.manifest["time_base"]["dt_s"] == 5e-3
    assert art.payload == ref.payload


def test_state_dict_without_architecture_says_what_to_do(tmp_path: Path) -> None:
    ck = torch.load(snnc_checkpoint("speck_cnn"), weights_only=True)
    torch.save(ck["state_dict"], tmp_path / "weights.pt")
    r = bare("snn-compile", "weights.pt", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--model ZOO_NAME" in r.stderr and "--factory" in r.stderr
    r = bare("snn-compile", "weights.pt", "--model", "nmnist_mlp", cwd=tmp_path)
    assert r.returncode == 2 and "does not fit zoo model 'nmnist_mlp'" in r.stderr


def snnc_checkpoint(name: str) -> str:
    return str(Path(snnc.__file__).parent / "models" / "checkpoints" / f"{name}.pt")


def test_live_objects_compile_in_python() -> None:
    """snnc.compile(obj) takes live framework objects too (no file)."""
    snn = pytest.importorskip("snntorch")
    net = torch.nn.Sequential(torch.nn.Linear(12, 4), snn.Leaky(beta=0.9, init_hidden=True, output=True,
                                                                reset_mechanism="zero"))
    art = snnc.compile(net, target="cpu", input_shape=(12,))
    assert art.manifest["framework"] == "snntorch"
    assert art.manifest["time_base"]["bin_us"] is None  # a snnTorch step is one unit: events need bin_us

