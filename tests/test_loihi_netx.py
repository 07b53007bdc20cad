"""lava-dl netx ``.net`` files: layout, determinism, round trip, and netx's own reading where it imports."""
from __future__ import annotations

import json
import subprocess
import textwrap

import h5py
import numpy as np
import pytest

from loihi_helpers import lava_missing_reason
from snnc.errors import UnsupportedError
from snnc.targets.loihi.lava_backend import lava_python
from snnc.targets.loihi.netx import netx_optimize_weight_bits, read_netx, write_netx
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork
from snnc.targets.loihi.simulator import simulate


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


def _netx_reason() -> str:
    if LAVA_MISSING:
        return LAVA_MISSING
    r = _run_in_lava("import lava.lib.dl.netx")
    if r.returncode:
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "unknown error"
        return f"lava.lib.dl.netx does not import in {lava_python()} ({last}); netx needs torch there"
    return ""


NETX_MISSING = _netx_reason()


@pytest.mark.skipif(bool(NETX_MISSING), reason=NETX_MISSING or "netx present")
def test_netx_loads_and_runs_our_file_like_the_reference(tmp_path) -> None:
    net = netx_net(1)
    write_netx(net, tmp_path / "n.net")
    steps = 30
    x = np.random.default_rng(1).random((1, steps, 2, 9, 8)) < 0.4
    np.save(tmp_path / "x.npy", x[0].transpose(3, 2, 1, 0).astype(np.int32))  # Lava (W, H, C, T)
    script = """
        import sys, numpy as np
        from lava.lib.dl.netx.hdf5 import Network
        from lava.proc.io.source import RingBuffer
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.magma.core.run_conditions import RunSteps
        x = np.load(sys.argv[2]); steps = x.shape[-1]
        net = Network(net_config=sys.argv[1])
        src = RingBuffer(data=x); src.s_out.connect(net.inp)
        sink = Sink(shape=net.out.shape, buffer=steps); net.out.connect(sink.a_in)
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = sink.data.get(); net.stop(); np.save(sys.argv[3], out)
    """
    r = _run_in_lava(script, str(tmp_path / "n.net"), str(tmp_path / "x.npy"), str(tmp_path / "o.npy"))
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "o.npy").T.astype(bool)  # (T, N)
    ref = simulate(net, x).spikes[-1][0]
    np.testing.assert_array_equal(got, ref)
