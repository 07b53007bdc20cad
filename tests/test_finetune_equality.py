"""The torch forward that fine-tuning trains through equals snnc's reference simulators bit for bit.

References: :func:`snnc.targets.loihi.simulator.simulate` (snnc's own Loihi reference simulator, itself
tested against Lava's ``fixed_pt`` models in test_loihi_lava_equality.py) and
:func:`snnc.targets.speck.simulator.simulate` (snnc's own Speck reference, tested against sinabs).
Spikes and every state are compared with ``assert_array_equal`` on hypothesis-drawn random integer
networks, in evaluation and in training mode (the differentiable scan), and on the zoo models with
the fine-tuning bindings active (float shadows and surrogate spikes); negative controls (a floor
instead of Lava's truncation, ``>`` instead of Speck's ``>=``) make the comparison fail.
"""
from __future__ import annotations

import math
from typing import Any, List

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loihi_helpers import random_conv_net, random_dense_chain, random_spikes
from snnc.targets.loihi.simulator import simulate as loihi_simulate
from snnc.targets.loihi.network import VTH_MANT_MAX, LoihiLayer, LoihiNetwork
from snnc.targets.loihi import torch_engine as lte
from snnc.targets.speck.network import Destination, DvsInput, SpeckLayer, SpeckNetwork
from snnc.targets.speck.simulator import simulate as speck_simulate
from snnc.targets.speck import torch_engine as ste

FAMILIES = ("normal", "wrap_u", "saturate_v", "int32", "conv", "onsets", "readout", "recurrent", "dag")


def _heaviside(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


def loihi_net(seed: int, family: str) -> LoihiNetwork:
    """A random Loihi network of one family (dense regimes, conv/pool, bias onsets, readouts, loops, DAGs)."""
    from test_loihi_graphs import random_multi_input_net, random_recurrent_net

    rng = np.random.default_rng(seed)
    if family in ("normal", "wrap_u", "saturate_v", "int32"):
        return random_dense_chain(rng, [int(k) for k in rng.integers(1, 30, 3)], family)
    if family == "conv":
        return random_conv_net(rng)
    if family == "onsets":  # a bias switched on after each layer's lag (host-side schedule)
        net = random_dense_chain(rng, [int(k) for k in rng.integers(2, 20, 4)])
        for i, ly in enumerate(net.layers):
            ly.bias_onset_step = int(rng.integers(0, 6))
            ly.bias_mant = np.asarray(int(rng.integers(1, 60)))
        return net
    if family == "readout":
        net = random_dense_chain(rng, [int(k) for k in rng.integers(2, 20, 3)])
        last = net.layers[-1]
        net.layers[-1] = last.replace(vth_mant=VTH_MANT_MAX, readout=True)
        return LoihiNetwork(net.input_shape, net.layers)
    if family == "recurrent":
        return random_recurrent_net(rng, big=bool(seed % 2))
    return random_multi_input_net(rng)


def _assert_loihi_equal(net: LoihiNetwork, x: np.ndarray, train: bool) -> None:
    ref = loihi_simulate(net, x, record_states=True)
    eng = lte.TorchLoihi(net)
    fns = {i: _heaviside for i, ly in enumerate(net.layers) if ly.has_neurons} if train else None
    if train and net.has_recurrence():
        train, fns = False, None  # fine-tuning takes feed-forward networks only
    run = eng.run(torch.as_tensor(x, dtype=torch.float64).requires_grad_(train), record=True, spike_fns=fns)
    sp, uu, vv = run.numpy(net)
    for i, ly in enumerate(net.layers):
        np.testing.assert_array_equal(sp[i], ref.spikes[i], err_msg=f"spikes of layer {i} ({ly.name})")
        if ly.has_neurons:
            np.testing.assert_array_equal(uu[i], ref.u[i], err_msg=f"u of layer {i} ({ly.name})")
            np.testing.assert_array_equal(vv[i], ref.v[i], err_msg=f"v of layer {i} ({ly.name})")


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2 ** 31 - 1), family=st.sampled_from(FAMILIES), batch=st.integers(1, 3),
       steps=st.integers(1, 24), train=st.booleans())
def test_loihi_torch_forward_equals_snnc_reference_simulator(seed: int, family: str, batch: int, steps: int,
                                                             train: bool) -> None:
    net = loihi_net(seed, family)
    x = random_spikes(np.random.default_rng(seed + 1), net, batch, steps)
    _assert_loihi_equal(net, x, train)


def test_loihi_negative_control_floor_instead_of_truncation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lava truncates decayed states toward zero; a floor (what an arithmetic shift would do) must be caught."""
    orig = lte._decay

    def floored(x: torch.Tensor, keep: float, r: Any) -> torch.Tensor:
        return torch.floor(x * keep) if keep not in (0.0, 1.0) else orig(x, keep, r)

    monkeypatch.setattr(lte, "_decay", floored)
    failures = 0
    for seed in range(12):
        net = loihi_net(seed, "normal")
        x = random_spikes(np.random.default_rng(seed), net, 2, 20)
        try:
            _assert_loihi_equal(net, x, False)
        except AssertionError:
            failures += 1
    assert failures >= 6, f"the comparison missed a floor in place of truncation ({failures}/12 caught)"


def random_speck_net(rng: np.random.Generator) -> SpeckNetwork:
    """Three cores: a strided conv, a 1x1 conv of its pooled spikes, and a layer summing both (a DAG), with or
    without a DVS layer (pooling, merged polarities); random thresholds, lower bounds, resets and biases."""
    c, h = int(rng.integers(1, 3)), int(rng.integers(6, 12))
    pool_in = int(rng.integers(1, 3))
    merge = bool(rng.random() < 0.4) and c == 2
    cin, hin = (1 if merge else c), h // pool_in

    def core(name: str, f: int, cc: int, k: int, hw: int, stride: int, pad: int) -> SpeckLayer:
        b = rng.integers(-3, 4, f) if rng.random() < 0.5 else None
        return SpeckLayer(name, rng.integers(-20, 30, (f, cc, k, k)), b, int(rng.integers(1, 40)),
                          -int(rng.integers(1, 60)), (cc, hw, hw), stride=stride, padding=pad,
                          return_to_zero=bool(rng.random() < 0.5))

    f0 = int(rng.integers(1, 4))
    l0 = core("a", f0, cin, int(rng.integers(1, 4)), hin, int(rng.integers(1, 3)), int(rng.integers(0, 2)))
    oh = l0.neuron_shape[1]
    pl = int(rng.integers(1, 3)) if oh >= 2 else 1
    h1 = oh // pl
    l1 = core("b", f0, f0, 1, h1, 1, 0)
    l2 = core("c", int(rng.integers(1, 4)), f0, h1, h1, 1, 0)
    l0.destinations = [Destination(1, (pl, pl)), Destination(2, (pl, pl))]
    l1.destinations = [Destination(2, (1, 1))]
    if pool_in > 1 or merge:
        return SpeckNetwork([l0, l1, l2], (c, h, h), dvs=DvsInput((c, h, h), pooling=pool_in, merge_polarities=merge,
                                                                   destinations=[0]))
    return SpeckNetwork([l0, l1, l2], (c, h, h), [0])


def _assert_speck_equal(net: SpeckNetwork, x: np.ndarray, mode: str, saturate: bool, train: bool) -> None:
    ref = speck_simulate(net, x, spike_mode=mode, record_states=True, saturate_state=saturate)
    eng = ste.TorchSpeck(net, mode, saturate_state=saturate)
    fns = {i: _heaviside for i in range(len(net.layers))} if train else None
    run = eng.run(x, record=True, spike_fns=fns)
    for k in ref.spikes:
        np.testing.assert_array_equal(run.spikes[k].detach().numpy(), ref.spikes[k], err_msg=f"spikes of {k}")
        np.testing.assert_array_equal(run.states[k].detach().numpy(), ref.states[k], err_msg=f"states of {k}")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2 ** 31 - 1), mode=st.sampled_from(["multi", "single"]), saturate=st.booleans(),
       steps=st.integers(1, 16), rate=st.floats(0.05, 3.0), train=st.booleans())
def test_speck_torch_forward_equals_snnc_reference_simulator(seed: int, mode: str, saturate: bool, steps: int,
                                                             rate: float, train: bool) -> None:
    rng = np.random.default_rng(seed)
    net = random_speck_net(rng)
    x = rng.poisson(rate, (2, steps) + tuple(net.input_shape))
    _assert_speck_equal(net, x, mode, saturate, train)


def test_speck_negative_control_strict_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Speck fires at v >= threshold_high; a strict v > threshold_high must be caught."""
    orig = ste._iaf_step

    def strict(core: Any, eng: Any, v: torch.Tensor, drive: torch.Tensor) -> Any:
        import dataclasses

        return orig(dataclasses.replace(core, strict=True), eng, v, drive)

    monkeypatch.setattr(ste, "_iaf_step", strict)
    failures = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        net = random_speck_net(rng)
        try:
            _assert_speck_equal(net, rng.poisson(1.0, (2, 10) + tuple(net.input_shape)), "single", False, False)
        except AssertionError:
            failures += 1
    assert failures >= 5, f"the comparison missed > in place of >= ({failures}/10 caught)"


# ----------------------------------------------------------------------------- the zoo, as fine-tuning runs it
ZOO = [("nmnist_cnn", "loihi"), ("asa_snn_static", "loihi"), ("minlatency_cnn", "loihi"), ("speck_cnn", "speck")]


@pytest.mark.parametrize("name,target", ZOO)
def test_finetune_forward_on_zoo_models_equals_the_compiled_program(name: str, target: str) -> None:
    """With the fine-tuning binding active (float shadows, surrogate spikes, gradients), the chip forward's
    output equals the compiled artifact run on snnc's reference simulator (``Program.run``, as ``snn-run``),
    and the integers it ran are the artifact's."""
    import snnc
    from snnc.models.checkpoint import load_torch_file
    from snnc.models.data.nmnist import nmnist_small_dir
    from snnc.models.finetune import ChipBinding, integer_arrays
    from snnc.models.train import load_data
    from snnc.runtime.evaluate import pad_latency

    if not (nmnist_small_dir() / "labels.txt").is_file():
        pytest.skip(f"real N-MNIST-small data not found at {nmnist_small_dir()} (set SNNC_DATA)")
    torch.set_num_threads(1)
    path = f"snnc/models/checkpoints/{name}.pt"
    obj = torch.load(path, map_location="cpu", weights_only=True)
    d = obj["extra"]["data"]
    _, val, _ = load_data(d["data"], d["dt_us"], d["n_steps"], 0.2, 0, 0, 3)
    x, _ = val.batch(np.arange(3))
    model, _ = load_torch_file(path)
    b = ChipBinding(model, target, obj["extra"]["dt_s"])
    b.lower()
    out = b.forward(torch.from_numpy(x), train=True)
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    art = snnc.compile(path, target=target)
    prog = snnc.Program(art)
    xin = (x > 0).astype(np.float64) if target == "loihi" else x
    res = prog.run(pad_latency(xin, prog.latency_steps))
    np.testing.assert_array_equal(out.detach().numpy(), res.output)
    assert np.count_nonzero(res.output) > 0
    if target == "loihi":
        from snnc.targets.loihi.target import network_from_payload

        net, _ = network_from_payload(art.payload)
    else:
        from snnc.targets.speck.target import SpeckTarget

        net, _ = SpeckTarget._load(art.payload)
    want, got = integer_arrays(net), b.integer_arrays()
    assert list(want) == list(got)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_reference_adds_no_bias_when_the_run_ends_before_the_bias_onset() -> None:
    """Regression (found by the torch forward above): a run of ``T <= bias_onset_step`` steps never switches the
    bias on; the reference simulator added it from step 0 (``lif_run`` read ``bias=None`` as "compute it")."""
    ly = LoihiLayer.dense("d", np.zeros((3, 2), dtype=np.int64), source=-1, du=4096, dv=0, vth_mant=100,
                          bias_mant=5, bias_exp=3).replace(bias_onset_step=4)
    net = LoihiNetwork((2,), [ly])
    for steps in (1, 4, 6):
        ref = loihi_simulate(net, np.zeros((1, steps, 2), dtype=bool), record_states=True)
        want = np.array([0 if t < 4 else 40 * (t - 3) for t in range(steps)])
        np.testing.assert_array_equal(ref.v[0][0, :, 0], want)
        _assert_loihi_equal(net, np.zeros((1, steps, 2), dtype=bool), False)
