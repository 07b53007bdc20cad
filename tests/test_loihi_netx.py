"""lava-dl netx ``.net`` files: layout, determinism, round trip, and netx itself loading and running them.

netx (``lava.lib.dl.netx.hdf5.Network``) runs in the Lava venv, which the set-up gives lava-dl's
import dependencies (torch 2.3.1 and its NVIDIA runtime wheels, torchvision, matplotlib, OpenCV):
nothing here is skipped on a machine that ran it. Each netx run costs seconds (netx imports torch),
so every test hands all its files to one worker (:func:`run_netx_many`).
"""
from __future__ import annotations

import functools
import json
import subprocess
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from loihi_helpers import lava_missing_reason
from snnc.errors import SnncError, UnsupportedError
from snnc.targets.loihi.lava_backend import NetxResult, lava_python, run_netx_many
from snnc.targets.loihi.netx import check_netx, netx_optimize_weight_bits, read_netx, write_netx
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork, determine_sign_mode, effective_dense_weights
from snnc.targets.loihi.simulator import V_MAX, simulate
from snnc.targets.loihi.target import network_from_payload


def netx_net(seed: int) -> LoihiNetwork:
    """A conv/pool/flatten/dense chain whose integers netx can express exactly."""
    rng = np.random.default_rng(seed)
    c1 = LoihiLayer.conv("c1", rng.integers(-128, 128, (4, 2, 3, 3)), (2, 9, 8), source=-1, stride=(1, 2),
                         padding=(1, 0), dilation=(2, 1), du=int(rng.integers(0, 4097)), dv=int(rng.integers(0, 4097)),
                         vth_mant=int(rng.integers(50, 400)),
                         bias_mant=rng.integers(-40, 40, (4, 1, 1)) * np.ones((1, 7, 3), dtype=np.int64), bias_exp=6)
    p1 = LoihiLayer.pool("p1", c1.output_shape, 2, 40, source=0, du=4096, dv=0, vth_mant=60,
                         bias_mant=rng.integers(-40, 40, (4, 3, 1)), bias_exp=7)
    fl = LoihiLayer.flatten("fl", p1.output_shape, source=1)
    d1 = LoihiLayer.dense("d1", rng.integers(-127, 128, (10, fl.output_shape[0])), source=2, weight_exp=1,
                          num_weight_bits=8, du=300, dv=200, vth_mant=300, bias_mant=rng.integers(-9, 9, 10),
                          bias_exp=6)
    d2 = LoihiLayer.dense("d2", rng.integers(0, 256, (3, 10)), source=3, weight_exp=0, num_weight_bits=8,
                          du=0, dv=4096, vth_mant=100)
    return LoihiNetwork((2, 9, 8), [c1, p1, fl, d1, d2], name=f"netx{seed}")


@pytest.mark.parametrize("seed", range(3))
def test_round_trip_runs_identically_and_rewrites_identical_bytes(tmp_path, seed: int) -> None:
    net = netx_net(seed)
    a, b = tmp_path / "a.net", tmp_path / "b.net"
    write_netx(net, a)
    back = read_netx(a)
    write_netx(back, b)
    assert a.read_bytes() == b.read_bytes()
    assert [ly.kind for ly in back.layers] == ["conv", "pool", "flatten", "dense", "dense"]
    x = np.random.default_rng(seed).random((2, 40, 2, 9, 8)) < 0.4
    r1, r2 = simulate(net, x, record_states=True), simulate(back, x, record_states=True)
    assert r1.spikes[-1].any()
    for i, ly in enumerate(net.layers):
        np.testing.assert_array_equal(r1.spikes[i], r2.spikes[i])
        if ly.has_neurons:
            np.testing.assert_array_equal(r1.u[i], r2.u[i])
            np.testing.assert_array_equal(r1.v[i], r2.v[i])


def test_files_are_deterministic_and_laid_out_for_netx(tmp_path) -> None:
    net = netx_net(7)
    write_netx(net, tmp_path / "a.net")
    write_netx(net, tmp_path / "b.net")
    assert (tmp_path / "a.net").read_bytes() == (tmp_path / "b.net").read_bytes()
    with h5py.File(tmp_path / "a.net", "r") as f:
        layer = f["layer"]
        assert sorted(layer.keys(), key=int) == ["0", "1", "2", "3", "4", "5"]
        types = [layer[k]["type"][0].decode("ascii") for k in sorted(layer.keys(), key=int)]
        assert types == ["input", "conv", "conv", "flatten", "dense", "dense"]
        assert layer["0/type"].dtype == np.dtype("S10") and layer["0/type"].shape == (1,)
        np.testing.assert_array_equal(layer["0/shape"][()], [2, 9, 8])
        c = layer["1"]
        np.testing.assert_array_equal(c["weight"][()], net.layers[0].weights)
        np.testing.assert_array_equal(c["stride"][()], [1, 2])
        assert c["bias"].shape == (4,)  # per channel, broadcast by netx
        assert layer["2/bias"].shape == (1, 3, 4)  # per neuron, in netx's (W, H, C)
        n = layer["4/neuron"]
        assert n["type"][0] == b"CUBA" and int(n["iDecay"][()]) == 300 and int(n["vDecay"][()]) == 200
        assert int(n["vThMant"][()]) == 300
        # dense weights are netx's effective integers: mantissa (low bit dropped, mixed) << weight_exp
        np.testing.assert_array_equal(layer["4/weight"][()], (net.layers[3].weights >> 1) << 2)


def test_unrepresentable_networks_are_refused(tmp_path) -> None:
    w = np.array([[3, -5], [7, 1]], dtype=np.int64)
    cases = [
        LoihiNetwork((2,), [LoihiLayer.dense("d", np.abs(w), source=-1, weight_exp=-1)]),  # floor of a shifted sum
        LoihiNetwork((2,), [LoihiLayer.dense("d", w, source=-1, bias_mant=3, bias_exp=2)]),  # bias_exp < 6
        LoihiNetwork((2,), [LoihiLayer.dense("d", w * 60, source=-1, weight_exp=2)]),  # > 8 bits effective
        LoihiNetwork((2,), [LoihiLayer.dense("d", w * 0, source=-1)]),  # netx fails on all-zero weights
        LoihiNetwork((2,), [LoihiLayer.dense("a", w, source=-1), LoihiLayer.dense("b", w, source=-1)]),  # no chain
    ]
    for net in cases:
        with pytest.raises(UnsupportedError):
            write_netx(net, tmp_path / "x.net")


LAVA_MISSING = lava_missing_reason()


def _run_in_lava(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(lava_python()), "-c", textwrap.dedent(script), *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(bool(LAVA_MISSING), reason=LAVA_MISSING or "lava present")
def test_weight_optimisation_port_equals_netx_utils(tmp_path) -> None:
    rng = np.random.default_rng(0)
    mats = [rng.integers(lo, hi, (6, 5)) << int(rng.integers(0, 4)) for lo, hi in
            [(-128, 127), (0, 256), (-256, 0), (-64, 64), (1, 30), (-30, -1), (-3, 3), (0, 2)] * 4]
    mats = [m for m in mats if m.any() and not (m.max() > 254 and m.min() < 0) and m.min() >= -256 and m.max() <= 255]
    np.savez(tmp_path / "w.npz", *mats)
    # netx/utils.py needs only numpy and h5py; load it by path because netx/__init__ imports torch
    script = """
        import importlib.util, json, sys, numpy as np, lava.lib.dl as dl, os
        path = os.path.join(list(dl.__path__)[0], "netx", "utils.py")
        spec = importlib.util.spec_from_file_location("netx_utils", path)
        utils = importlib.util.module_from_spec(spec); spec.loader.exec_module(utils)
        ws = np.load(sys.argv[1])
        out = []
        for k in sorted(ws.files, key=lambda s: int(s.split("_")[1])):
            w, bits, exp, mode = utils.optimize_weight_bits(ws[k])
            out.append([w.tolist(), int(bits), int(exp), mode.name.lower()])
        print(json.dumps(out))
    """
    r = _run_in_lava(script, str(tmp_path / "w.npz"))
    assert r.returncode == 0, r.stderr
    theirs = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(theirs) == len(mats) > 20
    for m, (w, bits, exp, mode) in zip(mats, theirs):
        mine = netx_optimize_weight_bits(m)
        np.testing.assert_array_equal(mine[0], np.array(w))
        assert (mine[1], mine[2], mine[3]) == (bits, exp, mode)


#: Lava's SignMode values (lava/utils/weightutils.py).
SIGN_MODES = {1: "mixed", 2: "excitatory", 3: "inhibitory"}


def _lava_to_chw(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.transpose(2, 1, 0) if a.ndim == 3 else a


def assert_netx_built(rb_list: list, net: LoihiNetwork) -> None:
    """Assert the processes netx built (read back from them) carry exactly ``net``'s integers."""
    layers = [ly for ly in net.layers if ly.has_neurons]
    assert len(rb_list) == len(layers), f"netx built {len(rb_list)} blocks for {len(layers)} layers"
    for rb, ly in zip(rb_list, layers):
        where = f"layer '{ly.name}' ({ly.kind})"
        assert rb["neuron"] == "LIF", where
        assert tuple(_lava_to_chw(np.zeros(tuple(rb["shape"]))).shape) == tuple(ly.output_shape), where
        if ly.kind == "dense":
            assert (rb["block"], rb["synapse"]) == ("Dense", "Dense"), where
            mant = rb["weights"].astype(np.int64)
            mode = int(rb["sign_mode"])  # netx passes none: Lava's Dense then determines it from the weights
            sign = SIGN_MODES[mode] if mode > 0 else determine_sign_mode(mant)
            theirs, _ = effective_dense_weights(mant, sign, int(rb["num_weight_bits"]))
            ours, _ = ly.effective_weights()
            # the synaptic sum of both is sum(w) * 2**exp: compare the per-synapse dyadic values exactly
            np.testing.assert_array_equal(np.ldexp(theirs.astype(np.float64), int(rb["weight_exp"])),
                                          np.ldexp(ours.astype(np.float64), ly.weight_exp), err_msg=where)
        else:
            assert (rb["block"], rb["synapse"]) == ("Conv", "Conv"), where
            w = rb["weight"].astype(np.int64).transpose(0, 3, 2, 1)[:, :, ::-1, ::-1]  # Lava (O,W,H,I) -> torch
            np.testing.assert_array_equal(w, ly.weights, err_msg=where)
            assert int(np.asarray(rb["weight_exp"]).reshape(-1)[0]) == 0, where
            for key in ("stride", "padding", "dilation"):
                assert tuple(int(s) for s in rb[key][::-1]) == tuple(getattr(ly, key)), (where, key)
            assert int(np.asarray(rb["groups"]).reshape(-1)[0]) == ly.groups, where
        assert int(np.asarray(rb["du"]).reshape(-1)[0]) + 1 == ly.du, where  # netx: du = iDecay - 1
        assert int(np.asarray(rb["dv"]).reshape(-1)[0]) == ly.dv, where
        assert int(np.asarray(rb["vth"]).reshape(-1)[0]) == ly.vth_mant, where
        bias = np.broadcast_to(rb["bias_mant"].astype(np.int64) << rb["bias_exp"].astype(np.int64), rb["shape"])
        np.testing.assert_array_equal(_lava_to_chw(bias), ly.effective_bias(), err_msg=where)


def assert_runs_like_reference(got: NetxResult, net: LoihiNetwork, x: np.ndarray, what: str) -> None:
    """Assert netx's spikes, u and v equal snnc's reference simulator, layer for layer."""
    ref = simulate(net, x, record_states=True)
    k = 0
    for i, ly in enumerate(net.layers):
        if not ly.has_neurons:
            continue
        where = f"{what}, layer {i} '{ly.name}' ({ly.kind})"
        np.testing.assert_array_equal(got.spikes[k], ref.spikes[i], err_msg=f"spikes differ in {where}")
        np.testing.assert_array_equal(got.u[k], ref.u[i], err_msg=f"u differs in {where}")
        np.testing.assert_array_equal(got.v[k], ref.v[i], err_msg=f"v differs in {where}")
        k += 1


# ------------------------------------------------------------------ the zoo's .net files in netx
#: Zoo models whose Loihi artifact carries a .net file, the real input each runs on, and its step cap.
ZOO_NETX = ["asa_snn_static", "asa_snn_static_binary", "asa_snn_vanilla", "fsdd_mlp", "nmnist_cnn", "nmnist_mlp",
            "skipsnn_plain", "speck_cnn",
            # fine-tuned variants (snnc.models.finetune): their parents' architectures; asa_snn_static_ft_loihi has
            # none: its trained biases are not multiples of 64 (netx fixes bias_exp = 6), its report says so
            "nmnist_cnn_ft_loihi", "speck_cnn_ft_speck"]
MAX_STEPS = 25


@functools.lru_cache(maxsize=None)
def _zoo_artifact(name: str):
    """The zoo model (shipped checkpoint, else its recipe) compiled for Loihi as the deployability table does."""
    import sys

    import snnc
    from snnc.models import zoo

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        from deployability import _model
    finally:
        sys.path.pop(0)
    model, _ = _model(name)
    return snnc.compile(model, target="loihi", dt_s=zoo.recipe(name)["dt_us"] * 1e-6)


def _real_input(name: str, art) -> np.ndarray:
    """One real recording binned (binary) at the model's dt: N-MNIST, or FSDD cochlea spikes."""
    from snnc.models import zoo
    from snnc.runtime.inputs import to_dense_batch

    steps = min(int(zoo.recipe(name).get("n_steps", MAX_STEPS)), MAX_STEPS)
    if tuple(art.manifest["input_shape"]) == (64,):
        from snnc.models.data.fsdd import FSDD, CochleaSpec, encode_fsdd

        x = encode_fsdd(FSDD(), CochleaSpec(), positions=[3]).spikes[:, :steps]
        return (x > 0).astype(np.uint8)
    from snnc.models.data.nmnist import NMNISTSmall

    ev = NMNISTSmall().events(7)
    return (to_dense_batch(ev, art.manifest["input_shape"], int(round(art.manifest["options"]["dt_s"] * 1e6)), steps,
                           mode="binary") > 0).astype(np.uint8)


def test_zoo_model_list_is_every_zoo_model_with_a_netx_file() -> None:
    from snnc.models import zoo

    have = []
    for name in zoo.names():
        try:
            art = _zoo_artifact(name)
        except SnncError:
            continue
        if "loihi/network.net" in art.payload:
            have.append(name)
        else:
            assert art.report["netx"].startswith("not expressible"), (name, art.report["netx"])
    assert sorted(have) == sorted(ZOO_NETX)


def test_netx_loads_every_zoo_file_and_runs_it_like_the_reference(tmp_path) -> None:
    jobs, nets = [], []
    for name in ZOO_NETX:
        art = _zoo_artifact(name)
        path = tmp_path / f"{name}.net"
        path.write_bytes(art.payload["loihi/network.net"])
        nets.append(network_from_payload(art.payload)[0])
        jobs.append((path, _real_input(name, art)))
    results = run_netx_many(jobs, record_states=True)
    active = 0
    for name, net, (_, x), got in zip(ZOO_NETX, nets, jobs, results):
        assert_netx_built(got.readback, net)
        assert_runs_like_reference(got, net, x, name)
        active += int(any(s.any() for s in got.spikes[1:]))
    assert active >= len(ZOO_NETX) - 1, "the real inputs must drive the deeper layers of (nearly) every model"


# ------------------------------------------------------------------ random networks in netx
def _netx_dense(rng: np.random.Generator, name: str, n_in: int, n_out: int, source: int, slot: str) -> LoihiLayer:
    mode = str(rng.choice(["mixed", "excitatory", "inhibitory"]))
    lo, hi = {"mixed": (-128, 128), "excitatory": (0, 256), "inhibitory": (-256, 0)}[mode]
    w = rng.integers(lo, hi, (n_out, n_in))
    e = int(rng.integers(0, 2)) if mode == "mixed" else 0
    du, dv = int(rng.choice([0, 1, 100, 2000, 4095, 4096])), int(rng.choice([0, 1, 300, 4096]))
    vth, bias, bexp = int(rng.integers(1, 3000)), rng.integers(-200, 200, n_out), int(rng.integers(6, 8))
    if slot == "wrap_u":  # strong excitation, no decay: u passes 2**22 and wraps at 2**23
        w, mode, e = rng.integers(60, 128, (n_out, n_in)), "mixed", 1
        du, vth = int(rng.choice([0, 1, 5])), (1 << 17) - 1
    elif slot == "saturate_v":
        dv, bias, bexp, vth = 0, rng.integers(2000, 4000, n_out), 7, (1 << 17) - 1
    return LoihiLayer.dense(name, w, source=source, weight_exp=e, num_weight_bits=8, sign_mode=mode, du=du, dv=dv,
                            vth_mant=vth, bias_mant=bias if rng.random() < 0.7 else int(rng.integers(-50, 50)),
                            bias_exp=bexp)


def random_netx_net(rng: np.random.Generator, slot: str) -> LoihiNetwork:
    """A random chain netx can express: dense chains, flat-input dense, conv/pool -> flatten -> dense."""
    for _ in range(50):
        layers: list = []
        if slot in ("dense", "wrap_u", "saturate_v"):
            sizes = [int(s) for s in rng.integers(30 if slot == "wrap_u" else 2, 48, int(rng.integers(3, 5)))]
            in_shape: tuple = (sizes[0],)
            for i in range(len(sizes) - 1):
                layers.append(_netx_dense(rng, f"fc{i}", sizes[i], sizes[i + 1], i - 1, slot))
        else:
            c, h, w = int(rng.integers(1, 4)), int(rng.integers(5, 11)), int(rng.integers(5, 11))
            in_shape = (c, h, w)
            shape = in_shape
            if slot == "conv":
                g = int(rng.choice([1, c])) if c > 1 else 1
                o = g * int(rng.integers(1, 3))
                kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
                per_channel = rng.random() < 0.5  # netx stores a per-channel bias as (C,), else per neuron
                c1 = LoihiLayer.conv("c1", rng.integers(-128, 128, (o, c // g, kh, kw)), shape, source=-1,
                                     stride=tuple(rng.integers(1, 3, 2)), padding=tuple(rng.integers(0, 2, 2)),
                                     dilation=tuple(rng.integers(1, 3, 2)), groups=g,
                                     du=int(rng.integers(0, 4097)), dv=int(rng.integers(0, 4097)),
                                     vth_mant=int(rng.integers(1, 300)), bias_mant=int(rng.integers(-40, 40)),
                                     bias_exp=6)
                if min(c1.output_shape[1:]) < 1:
                    continue
                if per_channel:
                    c1.bias_mant = rng.integers(-40, 40, (o, 1, 1)) * np.ones(c1.output_shape, dtype=np.int64)
                layers.append(c1)
                shape = c1.output_shape
                if rng.random() < 0.7 and min(shape[1:]) >= 2:
                    p = LoihiLayer.pool("p1", shape, 2, int(rng.integers(1, 100)), source=0,
                                        du=int(rng.integers(0, 4097)), dv=int(rng.integers(0, 4097)),
                                        vth_mant=int(rng.integers(1, 200)),
                                        bias_mant=rng.integers(-30, 30, (shape[0], shape[1] // 2, shape[2] // 2)),
                                        bias_exp=7)
                    layers.append(p)
                    shape = p.output_shape
            layers.append(LoihiLayer.flatten("flat", shape, source=len(layers) - 1))
            n = int(np.prod(shape))
            for i, n_out in enumerate(int(s) for s in rng.integers(2, 20, int(rng.integers(1, 3)))):
                layers.append(_netx_dense(rng, f"fc{i}", n, n_out, len(layers) - 1, "dense"))
                n = n_out
        net = LoihiNetwork(in_shape, layers)
        try:
            check_netx(net)
        except UnsupportedError:
            continue
        return net
    raise AssertionError(f"no netx-expressible network drawn for slot {slot}")


#: One slot per network in the netx batch.
SLOTS = ["dense", "dense", "wrap_u", "saturate_v", "conv", "conv", "conv", "flat", "flat", "dense", "wrap_u"]
STEPS, BATCH = 50, 2


@settings(max_examples=1, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
@given(st.lists(st.integers(0, 2 ** 32 - 1), min_size=len(SLOTS), max_size=len(SLOTS)))
def test_netx_runs_random_networks_like_the_reference(tmp_path_factory, seeds: list) -> None:
    tmp = tmp_path_factory.mktemp("netx")
    jobs, nets = [], []
    for j, (slot, seed) in enumerate(zip(SLOTS, seeds)):
        rng = np.random.default_rng([seed, j])  # distinct networks even when hypothesis draws equal seeds
        net = random_netx_net(rng, slot)
        write_netx(net, tmp / f"n{j}.net")
        nets.append(net)
        jobs.append((tmp / f"n{j}.net", rng.random((BATCH, STEPS) + tuple(net.input_shape)) < rng.uniform(0.1, 0.6)))
    results = run_netx_many(jobs, record_states=True)
    seen = set()
    for j, (net, (_, x), got) in enumerate(zip(nets, jobs, results)):
        assert_netx_built(got.readback, net)
        assert_runs_like_reference(got, net, x, f"network {j} ({SLOTS[j]})")
        for k, ly in enumerate(ly for ly in net.layers if ly.has_neurons):
            seen |= {"spikes"} if got.spikes[k].any() else set()
            seen |= {"large u"} if int(np.abs(got.u[k]).max()) > (1 << 23) // 2 else set()
            seen |= {"saturated v"} if int(np.abs(got.v[k]).max()) == V_MAX else set()
            seen |= {"extreme decay"} if ly.du in (0, 4096) or ly.dv in (0, 4096) else set()
            seen |= {"conv"} if ly.kind == "conv" else set()
            seen |= {"pool"} if ly.kind == "pool" else set()
    assert {"spikes", "large u", "saturated v", "extreme decay", "conv"} <= seen, seen


# ------------------------------------------------------------------ negative control
def _perturbed(src, dst, layer: str, key: str, index: tuple, delta: int) -> None:
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        ds = f[f"layer/{layer}/{key}"]
        a = ds[()]
        if np.ndim(a) == 0:
            ds[()] = a + delta
        else:
            a[index] += delta
            ds[...] = a


def test_a_changed_weight_or_threshold_in_the_file_fails_both_checks(tmp_path) -> None:
    net = netx_net(1)
    x = np.random.default_rng(1).random((1, 30, 2, 9, 8)) < 0.4
    good = tmp_path / "good.net"
    write_netx(net, good)
    ref = simulate(net, x).spikes
    # the perturbations are chosen so that they change the reference's spikes
    cases = {}
    for idx in [(r, c) for r in range(3) for c in range(10)]:
        _perturbed(good, tmp_path / "w.net", "5", "weight", idx, 120 if net.layers[4].weights[idx] < 128 else -120)
        if not np.array_equal(simulate(read_netx(tmp_path / "w.net"), x).spikes[-1], ref[-1]):
            cases["weight"] = tmp_path / "w.net"
            break
    _perturbed(good, tmp_path / "t.net", "4/neuron", "vThMant", (), 150)
    assert not np.array_equal(simulate(read_netx(tmp_path / "t.net"), x).spikes[-1], ref[-1])
    cases["threshold"] = tmp_path / "t.net"
    assert set(cases) == {"weight", "threshold"}
    results = run_netx_many([(good, x)] + [(p, x) for p in cases.values()], record_states=True)
    assert_netx_built(results[0].readback, net)
    assert_runs_like_reference(results[0], net, x, "unchanged file")
    for (what, path), got in zip(cases.items(), results[1:]):
        with pytest.raises(AssertionError):
            assert_netx_built(got.readback, net)
        with pytest.raises(AssertionError):
            assert_runs_like_reference(got, net, x, what)
        # ...and netx read the changed file exactly as snnc's reader does
        assert_runs_like_reference(got, read_netx(path), x, f"{what} changed")
