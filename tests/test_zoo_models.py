"""Model zoo: every model builds, runs, compiles for the cpu target and matches torch spike for spike."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import pytest
import torch

import snnc
from snnc.errors import UnsupportedError
from snnc.models import zoo
from snnc.models.asa import make_static
from snnc.models.metrics import ActivityRecorder
from snnc.models.data.nmnist import nmnist_small_dir
from snnc.models.neurons import run_sequence

HAVE_NMNIST = (nmnist_small_dir() / "labels.txt").is_file()

#: Small constructor arguments per model (shapes as deployed, fewer channels/neurons).
SMALL: Dict[str, Dict[str, Any]] = {
    "nmnist_mlp": {"hidden": 24},
    "nmnist_cnn": {"channels": (4, 6)},
    "speck_cnn": {"channels": (4, 6)},
    "fsdd_mlp": {"hidden": 24},
    "skipsnn": {"hidden": 24},
    "skipsnn_plain": {"hidden": 24},
    "asa_snn": {"channels": (4, 6, 6), "hidden": 16},
    "asa_snn_vanilla": {"channels": (4, 6, 6), "hidden": 16},
    "asa_snn_static": {"channels": (4, 6, 6), "hidden": 16},
    "minlatency_cnn": {"channels": (4, 6)},
    "minlatency_cnn_binary": {"channels": (4, 6)},
    "asa_snn_static_binary": {"channels": (4, 6, 6), "hidden": 16},
    "fsdd_xylo": {"hidden": 24, "recurrent": True},
    "minlatency_plain": {"channels": (4, 6)},
}
STEPS_MAX = 60


def _inputs(name: str, batch: int = 3) -> np.ndarray:
    """Real N-MNIST validation samples binned with the model's recipe (else random events)."""
    r = zoo.recipe(name)
    steps = min(int(r["n_steps"]), STEPS_MAX)
    rng = np.random.default_rng(0)
    if r["data"] in ("fsdd", "fsdd16"):
        n = 64 if r["data"] == "fsdd" else 16
        return (rng.random((batch, steps, n)) * (rng.random((batch, steps, n)) < 0.3) * 4).round()
    if HAVE_NMNIST and r["data"] in ("nmnist", "nmnist-binary"):
        from snnc.models.data import BinSpec, load_nmnist_small_binned

        mode = "binary" if r["data"] == "nmnist-binary" else "count"
        b = load_nmnist_small_binned(BinSpec(dt_us=int(r["dt_us"]), n_steps=int(r["n_steps"]), mode=mode))
        return b.dense_batch(np.arange(batch) * 97, np.float64)[:, :steps]
    return (rng.random((batch, steps, 2, 34, 34)) < 0.03).astype(np.float64)


def _forward(model: Any, x: torch.Tensor) -> torch.Tensor:
    if hasattr(model, "forward_sequence"):
        return model.forward_sequence(x)[0]
    return run_sequence(model, x)


def _activate(model: Any, x: np.ndarray) -> np.ndarray:
    """Scale weights up (x2 at a time) until the output layer is active; return the torch output."""
    xt = torch.as_tensor(x)
    for _ in range(8):
        with torch.no_grad():
            out = _forward(model, xt).numpy()
        if np.count_nonzero(out) >= 3:
            return out
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "weight" in n or n.endswith(("local", "dilated")):
                    p.mul_(2.0)
    raise AssertionError("model stays silent: the comparison would be meaningless")


def test_registry_lists_every_model() -> None:
    assert set(SMALL) <= set(zoo.names())
    for name in zoo.names():
        r = zoo.recipe(name)
        assert r["data"] in ("nmnist", "nmnist-binary", "nmnist-noise", "fsdd", "fsdd16") and r["dt_us"] > 0 and r["n_steps"] > 0


@pytest.mark.parametrize("kwargs", [{"partition": False}, {"projection": False}, {"kernel": 5, "steps": 4}])
def test_minlatency_claim_variants_compile_exactly(kwargs: Dict[str, Any]) -> None:
    """The min-latency ablations and the plain CNN (5x5, T = 4) compile to the cpu target spike for spike."""
    kw = dict(kwargs)
    steps = kw.pop("steps", 1)
    name = "minlatency_plain" if "kernel" in kw else "minlatency_cnn"
    torch.manual_seed(0)
    dt_s = 0.3 / steps
    model = zoo.build(name, channels=(4, 6), dt_s=dt_s, **kw).double().eval()
    x = np.stack([_inputs("minlatency_cnn")[:, 0] / steps] * steps, 1).round()
    ref = _activate(model, x)
    res = snnc.Program(snnc.compile(model, target="cpu", dt_s=dt_s)).run(x)
    np.testing.assert_array_equal(res.output, ref)


def test_unknown_model_is_an_input_error() -> None:
    with pytest.raises(snnc.SnncError, match="known models"):
        zoo.build("no_such_model")


@pytest.mark.parametrize("name", [n for n in SMALL if n != "asa_snn"])
def test_cpu_compile_equals_torch_float64(name: str) -> None:
    torch.manual_seed(0)
    r = zoo.recipe(name)
    kw = dict(SMALL[name], dt_s=r["dt_us"] * 1e-6)
    model = zoo.build(name, **kw).double().eval()
    x = _inputs(name)
    ref = _activate(model, x)
    art = snnc.compile(model, target="cpu", dt_s=r["dt_us"] * 1e-6)
    res = snnc.Program(art).run(x)
    np.testing.assert_array_equal(res.output, ref)
    # hidden populations agree too: spike totals of the layers torch and the graph both name
    with ActivityRecorder(model) as rec, torch.no_grad():
        _forward(model, torch.as_tensor(x))
    torch_spikes = rec.stats(samples=x.shape[0], steps=x.shape[1]).spikes
    graph_spikes = {k: float(v.sum()) for k, v in res.spike_counts.items()}
    common = set(torch_spikes) & set(graph_spikes)
    if common:
        for layer in common:
            assert torch_spikes[layer] == graph_spikes[layer], layer
    else:  # sequence models export through another module: compare the per-layer totals as multisets
        assert sorted(torch_spikes.values()) == sorted(graph_spikes.values())
    assert sum(torch_spikes.values()) > sum(torch_spikes.get(k, 0.0) for k in ("lif2", "lif_out"))


def test_asa_dynamic_refuses_to_compile_and_static_matches() -> None:
    torch.manual_seed(0)
    model = zoo.build("asa_snn", **SMALL["asa_snn"]).double()
    x = torch.as_tensor(_inputs("asa_snn"))
    with pytest.raises(UnsupportedError, match="make_static"):
        snnc.compile(model, target="cpu", dt_s=0.03)
    model.train()
    with torch.no_grad():
        model.forward_sequence(x)  # BatchNorm running statistics from this batch
    model.eval()
    static = make_static(model, [x]).double()
    ref = _activate(static, x.numpy())
    res = snnc.Program(snnc.compile(static, target="cpu", dt_s=0.03)).run(x.numpy())
    np.testing.assert_array_equal(res.output, ref)


def test_asa_vanilla_sequence_model_equals_its_static_form() -> None:
    torch.manual_seed(1)
    model = zoo.build("asa_snn_vanilla", **SMALL["asa_snn_vanilla"]).double()
    x = torch.as_tensor(_inputs("asa_snn_vanilla"))
    model.train()
    with torch.no_grad():
        model.forward_sequence(x)
    model.eval()
    out = _activate(model, x.numpy())
    static = make_static(model, None).double()
    with torch.no_grad():
        np.testing.assert_array_equal(run_sequence(static, x).numpy(), out)


def test_skipsnn_gate_uses_controller_output_loop_delay_steps_earlier() -> None:
    torch.manual_seed(0)
    for delay in (1, 3):
        m = zoo.build("skipsnn", hidden=16, loop_delay=delay).double()
        with torch.no_grad():
            m.ctrl_z.weight.zero_()
            m.ctrl_o.weight.copy_(torch.tensor([[0.0, 1.0, 0.0, 0.0]]))  # awake iff t odd (P=2 fires at t = 1, 3, ...)
        x = torch.ones((1, 12, 2, 34, 34), dtype=torch.float64)
        with torch.no_grad():
            _, aux = m.forward_sequence(x)
        awake = aux["awake"][0].numpy()
        a = aux["a"][0].numpy()
        np.testing.assert_array_equal(a, (np.arange(12) % 2 == 1).astype(float))
        expect = np.concatenate([np.zeros(delay), a[:12 - delay]])
        np.testing.assert_array_equal(awake, expect)
        g = m.to_graph()
        assert ("delay" in g.nodes) == (delay > 1)
        res = snnc.Program(snnc.compile(m, target="cpu", dt_s=1e-3)).run(x.numpy())
        with torch.no_grad():
            np.testing.assert_array_equal(res.output, run_sequence(m, x).numpy())


def test_sumpool_module_exports_sumpool_node() -> None:
    from snnc.compiler import graph as g

    node = zoo.SumPool2d(2).to_node()
    assert isinstance(node, g.SumPool2d) and node.kernel_size == (2, 2) and node.stride == (2, 2)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(zoo.SumPool2d(2)(x).numpy()[0, 0], [[10.0, 18.0], [42.0, 50.0]])
