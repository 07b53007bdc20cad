"""snnTorch 1.0.0 -> NIR file -> snnc (cpu, dt=1e-4, euler) equals snnTorch's own simulation.

The NIR files are exported fresh with ``snntorch.export_nir.export_to_nir`` as users call it.
With the documented call (a batched ``sample_data`` and scalar ``beta``) export_to_nir fails in
its own final ``nir_graph.infer_types()``; the graph it built up to there (nirtorch's
``extract_nir_graph``, the same call without the type check) is what users then save, batch
dimension in the Input shape, Conv2d ``input_shape=None`` and all. nir 1.0.8's ``nir.write``
cannot store 0-d arrays (scalar ``beta``), so those are written as 1-element arrays.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch", reason="pip install --no-deps snntorch==1.0.0")
nir = pytest.importorskip("nir")

import snnc  # noqa: E402
from snnc.compiler.frontends.conventions import convention  # noqa: E402

from snntorch import utils as snn_utils  # noqa: E402
from snntorch.export_nir import _extract_snntorch_module, export_to_nir  # noqa: E402

KW = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)


def export(net: Any, sample: Any) -> Tuple[Any, Optional[str]]:
    """Return (NIR graph, export_to_nir's error or None) the way a user gets a graph out."""
    import nirtorch

    try:
        return export_to_nir(net, sample), None
    except (ValueError, IndexError, AssertionError) as e:
        raw = nirtorch.extract_nir_graph(net, _extract_snntorch_module, sample, model_name="snntorch",
                                         ignore_submodules_of=[snn.RLeaky, snn.RSynaptic])
        return raw, f"{type(e).__name__}: {e}"


def write(graph: Any, path: Path) -> Path:
    """``nir.write`` the graph as exported, working around two nir 1.0.8 writer limits.

    ``nir.write`` cannot store 0-d arrays (scalar ``beta``): they become 1-element arrays. It
    cannot store ``None`` either (snnTorch's ``Conv2d(input_shape=None)``): such fields are
    left out of the file, which is what an exporter writing a conv without its input shape gives.
    """
    import h5py

    missing = []

    def fix(node: Any, prefix: str) -> None:
        if isinstance(node, nir.NIRGraph):
            for k, n in node.nodes.items():
                fix(n, f"{prefix}nodes/{k}/")
            return
        for k, v in list(vars(node).items()):
            if isinstance(v, np.ndarray) and v.ndim == 0:
                setattr(node, k, v.reshape(1))
            elif v is None:
                setattr(node, k, np.zeros(0))
                missing.append(prefix + k)
            elif isinstance(v, dict) and any(vv is None for vv in v.values()):  # Flatten(input_type={"input": None})
                setattr(node, k, {kk: np.zeros(0) if vv is None else vv for kk, vv in v.items()})
                missing.append(prefix + k)
    fix(graph, "node/")
    nir.write(str(path), graph)
    with h5py.File(path, "r+") as f:
        for m in missing:
            if m in f:  # fields not written by to_dict (e.g. Conv2d.output_type) need nothing
                del f[m]
    return path


def run_snntorch(net: Any, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Step the snnTorch net over x (batch, T, ...); return output spikes, mem and syn (Synaptic)."""
    spk, mem, syn, _ = run_snntorch_layers(net, x)
    return spk, mem, syn


def run_snntorch_layers(net: Any, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], dict]:
    """As :func:`run_snntorch`, plus every spiking layer's spikes and membrane: {module name: (spk, mem)}."""
    snn_utils.reset(net)
    kinds = (snn.Leaky, snn.Synaptic, snn.RLeaky)
    layers = {name: m for name, m in net.named_modules() if isinstance(m, kinds)}
    rec: dict = {name: ([], []) for name in layers}

    def hook(name: str) -> Any:
        def fn(module: Any, inp: Any, out: Any) -> None:
            rec[name][0].append((out[0] if isinstance(out, tuple) else out).numpy().copy())
            rec[name][1].append(module.mem.numpy().copy())  # after this step's reset, as snnTorch returns it
        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in layers.items()]
    spk, mem, syn = [], [], []
    try:
        with torch.no_grad():
            for t in range(x.shape[1]):
                o = net(torch.as_tensor(x[:, t], dtype=torch.float32))
                spk.append(o[0].numpy())
                mem.append(o[-1].numpy())
                if len(o) == 3:
                    syn.append(o[1].numpy())
    finally:
        for h in handles:
            h.remove()
    per_layer = {name: (np.stack(s, 1), np.stack(v, 1)) for name, (s, v) in rec.items()}
    return np.stack(spk, 1), np.stack(mem, 1), (np.stack(syn, 1) if syn else None), per_layer


def spikes(shape: Tuple[int, ...], seed: int = 0, batch: int = 3, steps: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps) + shape) < 0.3).astype(np.float64)


def _scaled(net: Any, gain: float) -> Any:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(gain)
    return net


def make(kind: str) -> Tuple[Any, Tuple[int, ...]]:
    torch.manual_seed(0)
    if kind == "leaky_synaptic":
        return _scaled(torch.nn.Sequential(
            torch.nn.Linear(12, 8), snn.Leaky(beta=0.9, threshold=0.5, **KW),
            torch.nn.Linear(8, 4), snn.Synaptic(alpha=0.8, beta=0.7, output=True, **KW)), 2.0), (12,)
    if kind == "per_neuron":  # per-neuron beta and thresholds; exports cleanly with an unbatched sample
        return _scaled(torch.nn.Sequential(
            torch.nn.Linear(12, 8), snn.Leaky(beta=torch.linspace(0.5, 0.95, 8), threshold=torch.linspace(0.3, 1.0, 8), **KW),
            torch.nn.Linear(8, 4), snn.Synaptic(alpha=torch.full((4,), 0.6), beta=torch.linspace(0.6, 0.9, 4),
                                                threshold=torch.linspace(0.5, 1.5, 4), output=True, **KW)), 2.0), (12,)
    if kind == "conv":
        return _scaled(torch.nn.Sequential(
            torch.nn.Conv2d(2, 4, 3, padding=1), snn.Leaky(beta=0.8, threshold=0.5, **KW), torch.nn.AvgPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5), snn.Leaky(beta=0.9, output=True, **KW)), 3.0), (2, 8, 8)
    if kind == "rleaky":
        net = torch.nn.Sequential(
            torch.nn.Linear(12, 8), snn.RLeaky(beta=0.9, threshold=0.5, linear_features=8, **KW),
            torch.nn.Linear(8, 4), snn.Leaky(beta=0.8, output=True, **KW))
        with torch.no_grad():
            net[1].recurrent.weight.mul_(3.0)
            net[1].recurrent.bias.zero_()  # see test_rleaky_recurrent_bias_at_first_step
        return _scaled(net, 2.0), (12,)
    raise ValueError(kind)


@pytest.mark.parametrize("kind,batched", [("leaky_synaptic", True), ("per_neuron", False), ("conv", True),
                                          ("rleaky", True)])
def test_snntorch_nir_file_equals_snntorch(tmp_path: Path, kind: str, batched: bool) -> None:
    net, shape = make(kind)
    sample = torch.randn(((1,) if batched else ()) + shape)
    graph, err = export(net, sample)
    if kind == "per_neuron":
        assert err is None, err
    path = write(graph, tmp_path / f"{kind}.nir")
    x = spikes(shape)
    ref_spk, ref_mem, ref_syn, ref_layers = run_snntorch_layers(net, x)
    assert ref_spk.sum() >= 10, "the test net must spike to be meaningful"

    dt_s, method = convention("snntorch")
    assert (dt_s, method) == (1e-4, "euler")
    art = snnc.compile(str(path), target="cpu", dt_s=dt_s, method=method)
    notes = " ".join(art.report["notes"])
    if batched:
        assert "dropped batch dimension" in notes
    if kind == "conv":
        assert "Conv2d had no input_shape" in notes
    res = snnc.Program(art).run(x, record=True)
    np.testing.assert_array_equal(res.output, ref_spk)
    last = [n for n in res.states if "spikes" in res.states[n]][-1]
    np.testing.assert_allclose(res.states[last]["v"], ref_mem, rtol=1e-5, atol=1e-5)
    if ref_syn is not None:
        np.testing.assert_allclose(res.states[last]["i"], ref_syn, rtol=1e-5, atol=1e-5)
    # every spiking layer's spikes and membrane are snnTorch's too, not only the output layer's
    spiking = sorted(n for n in res.states if "spikes" in res.states[n])
    matched = []
    for name, (spk_l, mem_l) in ref_layers.items():
        key = next(n for n in spiking if n == name or n.startswith(name + "."))
        matched.append(key)
        got = res.states[key]
        np.testing.assert_array_equal(got["spikes"].reshape(spk_l.shape), spk_l, err_msg=f"spikes of layer {key}")
        np.testing.assert_allclose(got["v"].reshape(mem_l.shape), mem_l, rtol=1e-5, atol=1e-5,
                                   err_msg=f"membrane of layer {key}")
        assert spk_l.any(), f"layer {key} never spikes: its comparison proves little"
    assert sorted(matched) == spiking, (matched, spiking)


def test_documented_export_call_fails_its_own_type_check() -> None:
    """export_to_nir(net, torch.randn(1, n)) as in its docstring raises in infer_types (batch dim)."""
    net, shape = make("leaky_synaptic")
    graph, err = export(net, torch.randn((1,) + shape))
    assert err is not None and "type mismatch" in err
    art = snnc.compile(graph, target="cpu", dt_s=1e-4, method="euler")  # in memory, 0-d params kept
    x = spikes(shape, seed=5)
    np.testing.assert_array_equal(snnc.Program(art).run(x).output, run_snntorch(net, x)[0])


def test_subtract_reset_is_not_in_the_file() -> None:
    """snnTorch's default reset-by-subtraction is lost by the exporter; NIR's reset is to v_reset."""
    torch.manual_seed(1)
    lin = torch.nn.Linear(6, 5)
    with torch.no_grad():
        lin.weight.mul_(4.0)
    sub = torch.nn.Sequential(lin, snn.Leaky(beta=0.9, threshold=0.3, init_hidden=True, output=True))
    zero = torch.nn.Sequential(copy.deepcopy(lin), snn.Leaky(beta=0.9, threshold=0.3, output=True, **KW))
    x = spikes((6,), seed=2, steps=60)
    g_sub, _ = export(sub, torch.randn(1, 6))
    g_zero, _ = export(zero, torch.randn(1, 6))
    out_sub = snnc.Program(snnc.compile(g_sub, dt_s=1e-4, method="euler")).run(x).output
    out_zero = snnc.Program(snnc.compile(g_zero, dt_s=1e-4, method="euler")).run(x).output
    np.testing.assert_array_equal(out_sub, out_zero)  # the files are the same model
    np.testing.assert_array_equal(out_zero, run_snntorch(zero, x)[0])
    assert not np.array_equal(out_sub, run_snntorch(sub, x)[0])


def test_rleaky_recurrent_bias_at_first_step() -> None:
    net, shape = make("rleaky")
    with torch.no_grad():
        net[1].recurrent.bias.fill_(0.3)
    graph, _ = export(net, torch.randn((1,) + shape))
    x = spikes(shape, seed=3)
    art = snnc.compile(graph, dt_s=1e-4, method="euler")
    np.testing.assert_array_equal(snnc.Program(art).run(x).output, run_snntorch(net, x)[0])
