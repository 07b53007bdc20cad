"""Export back to NIR: the deployed integer program of cpu, Loihi and Speck artifacts, read back and rerun."""
from __future__ import annotations

import math
import os

import nir
import numpy as np
import pytest

import snnc.runtime.api as api
from snnc.cli_export import main as export_main
from snnc.errors import InputError
from snnc.runtime.export import export_artifact_nir, write_artifact_nir
from snnc.targets.loihi.network import effective_dense_weights
from snnc.targets.loihi.nir_export import tau_from_decay
from snnc.targets.loihi.target import network_from_payload
from snnc.targets.speck.target import SpeckTarget
from test_loihi_target import convnet, mlp
from test_speck_lower import chain, conv

DT_S = 1e-3


def _if(n: int, thr: float) -> nir.IF:
    return nir.IF(r=np.full(n, 1.0 / DT_S), v_threshold=np.full(n, float(thr)), v_reset=np.zeros(n))


def speck_model(seed: int = 0) -> nir.NIRGraph:
    """Float weights (so the Speck scale is not 1), a bias, sum pooling and a dense readout."""
    rng = np.random.default_rng(seed)
    nodes = [conv(rng.normal(0.3, 0.5, (4, 2, 3, 3)), stride=2, padding=1, input_shape=(16, 16)), _if(4, 1.3),
             nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             conv(rng.normal(0.2, 0.5, (6, 4, 3, 3)), padding=1, input_shape=(4, 4), bias=rng.normal(0, 0.1, 6)),
             _if(6, 1.5),
             nir.Flatten(input_type={"input": np.array([6, 4, 4])}, start_dim=0, end_dim=-1),
             nir.Affine(weight=rng.normal(0.0, 0.3, (5, 96)), bias=np.zeros(5)), _if(5, 2.0)]
    return chain(nodes, (2, 16, 16))


def _is_integer(a: np.ndarray) -> bool:
    a = np.asarray(a, dtype=np.float64)
    return bool(np.all(np.isfinite(a)) and np.all(a == np.round(a)))


def test_speck_export_reads_back_and_reproduces_the_chip_simulator_exactly(tmp_path) -> None:
    art = api.compile(speck_model(), target="speck", dt_s=DT_S)
    path = str(tmp_path / "speck.nir")
    art_path = art.save(str(tmp_path / "m.snnc"))
    assert write_artifact_nir(art_path, path) == path
    back = nir.read(path)
    assert back.metadata["snnc_export"] == "speck" and int(back.metadata["exact"]) == 1
    net, _ = SpeckTarget._load(art.payload)
    for ly in net.layers:
        cv, nf = back.nodes[f"{ly.name}.conv"], back.nodes[f"{ly.name}.if"]
        assert _is_integer(cv.weight) and _is_integer(cv.bias) and _is_integer(nf.v_threshold)
        np.testing.assert_array_equal(np.asarray(cv.weight).astype(np.int64), ly.weights)
        np.testing.assert_array_equal(np.asarray(cv.bias).astype(np.int64), ly.biases)
        np.testing.assert_array_equal(np.asarray(nf.v_threshold).astype(np.int64), ly.threshold_high - 1)
        assert np.all(np.asarray(nf.r) * DT_S == 1.0)
    assert any(isinstance(n, nir.SumPool2d) for n in back.nodes.values())
    assert any(np.any(ly.biases != 0) for ly in net.layers)
    cpu = api.Program(api.compile(back, target="cpu", dt_s=DT_S))
    chip = api.Program(art)
    rng = np.random.default_rng(3)
    for rate in (0.3, 0.8):
        x = rng.poisson(rate, (3, 20, 2, 16, 16)).astype(np.float64)
        ref = chip.run(x, record=True)
        got = cpu.run(x)
        out_ref = np.asarray(ref.output).reshape(3, 20, -1)
        out_got = np.asarray(got.output).reshape(3, 20, -1).astype(np.int64)
        assert 0 < out_ref.sum() < out_ref.size  # a real comparison, not all-silent or all-firing
        np.testing.assert_array_equal(out_got, out_ref)
        # the chip's lower bound threshold_low never acted (else NIR could not be exact)
        for ly in net.layers:
            assert ref.states[ly.name]["v"].min() > ly.threshold_low
        for name, counts in ref.spike_counts.items():
            np.testing.assert_array_equal(np.asarray(got.spike_counts[f"{name}.if"]).astype(np.int64), counts)


def test_loihi_export_has_the_artifacts_integers_and_compiles_on_cpu(tmp_path) -> None:
    for graph in (mlp(), convnet()):
        art = api.compile(graph, target="loihi", dt_s=DT_S)
        net, run = network_from_payload(art.payload)
        path = write_artifact_nir(art, str(tmp_path / "loihi.nir"))
        back = nir.read(path)
        assert back.metadata["snnc_export"] == "loihi" and "truncat" in str(back.metadata["notes"])
        n_checked = 0
        for ly in net.layers:
            if not ly.has_neurons:
                assert isinstance(back.nodes[ly.name], nir.Flatten)
                continue
            syn, neu = back.nodes[f"{ly.name}.syn0"], back.nodes[f"{ly.name}.lif"]
            if ly.kind == "dense":
                w_eff, _ = effective_dense_weights(ly.weights, ly.sign_mode, ly.num_weight_bits)
                want = w_eff << (ly.weight_exp + 6)
            else:  # grouped (pool) kernels are exported block-diagonal, groups=1
                want = np.zeros(np.asarray(syn.weight).shape, dtype=np.int64)
                per_out, in_per = ly.weights.shape[0] // ly.groups, ly.weights.shape[1]
                for gi in range(ly.groups):
                    want[gi * per_out:(gi + 1) * per_out, gi * in_per:(gi + 1) * in_per] = \
                        ly.weights[gi * per_out:(gi + 1) * per_out] << 6
            assert _is_integer(syn.weight)
            np.testing.assert_array_equal(np.asarray(syn.weight).astype(np.int64), want)
            assert isinstance(neu, nir.CubaLIF)
            assert _is_integer(neu.v_threshold)
            np.testing.assert_array_equal(np.asarray(neu.v_threshold).astype(np.int64), ly.vth_mant << 6)
            np.testing.assert_array_equal(np.asarray(neu.metadata["bias_int"]),
                                          np.broadcast_to(ly.bias_mant << ly.bias_exp, ly.output_shape))
            for d, tau in ((ly.du, neu.tau_syn), (ly.dv, neu.tau_mem)):
                a = np.exp(-DT_S / np.asarray(tau))
                if 0 < d < 4096:
                    np.testing.assert_allclose(a, 1 - d / 4096, rtol=0, atol=1e-12)
            n_checked += 1
        assert n_checked >= 2
        prog = api.Program(api.compile(back, target="cpu", dt_s=DT_S))
        x = (np.random.default_rng(1).random((2, 10) + tuple(net.input_shape)) < 0.3).astype(np.float64)
        out = prog.run(x).output
        assert np.asarray(out).shape[:2] == (2, 10)


def test_tau_from_decay_edges() -> None:
    assert tau_from_decay(0, DT_S) > 1e5 * DT_S
    assert math.exp(-DT_S / tau_from_decay(4096, DT_S)) < 1e-15
    assert math.isclose(math.exp(-DT_S / tau_from_decay(1024, DT_S)), 0.75, rel_tol=1e-14)


def test_cpu_export_and_cli(tmp_path) -> None:
    art = api.compile(mlp(), target="cpu", dt_s=DT_S)
    src = art.save(str(tmp_path / "cpu.snnc"))
    out = str(tmp_path / "out.nir")
    assert export_main([src, "-o", out]) == 0
    back = nir.read(out)
    assert back.metadata["snnc_export"] == "cpu"
    x = (np.random.default_rng(2).random((2, 15, 40)) < 0.4).astype(np.float64)
    again = api.Program(api.compile(back, target="cpu", dt_s=DT_S)).run(x).output
    np.testing.assert_array_equal(np.asarray(again), np.asarray(api.Program(art).run(x).output))
    assert export_main([str(tmp_path / "missing.snnc"), "-o", out]) != 0
    with pytest.raises(InputError):
        export_artifact_nir(str(tmp_path / "missing.snnc"))
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def test_loihi_export_semantics_track_the_chip_spike_counts() -> None:
    """Same units and time constants: float cpu spike counts within 5% of Lava's (truncation, hop delays)."""
    art = api.compile(mlp(), target="loihi", dt_s=DT_S)
    cpu = api.Program(api.compile(export_artifact_nir(art), target="cpu", dt_s=DT_S))
    x = (np.random.default_rng(1).random((4, 200, 40)) < 0.3).astype(np.float64)
    chip, flt = api.Program(art).run(x), cpu.run(x)
    for name, counts in chip.spike_counts.items():
        got = np.asarray(flt.spike_counts[f"{name}.lif"]).sum()
        assert counts.sum() > 100 and abs(got - counts.sum()) <= 0.05 * counts.sum(), (name, got, counts.sum())


def test_cpu_export_of_mixed_scalar_and_per_neuron_cubalif_parameters() -> None:
    """Uniform parameters imported as scalars are broadcast back: NIR wants one shape per node."""
    n = 5
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Linear(weight=np.random.default_rng(0).normal(size=(n, 3))),
        "lif": nir.CubaLIF(tau_syn=np.full(n, 5e-3), tau_mem=np.full(n, 2e-2), r=np.full(n, 20.0),
                           v_leak=np.zeros(n), v_threshold=np.linspace(0.5, 1.0, n), v_reset=np.zeros(n),
                           w_in=np.full(n, 5.0)),
        "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    art = api.compile(graph, target="cpu", dt_s=DT_S)
    back = export_artifact_nir(art)
    lif = next(v for v in back.nodes.values() if isinstance(v, nir.CubaLIF))
    assert {np.asarray(getattr(lif, k)).shape for k in ("tau_syn", "tau_mem", "r", "v_threshold", "w_in")} == {(n,)}
    x = (np.random.default_rng(2).random((2, 40, 3)) < 0.5).astype(np.float64)
    again = api.Program(api.compile(back, target="cpu", dt_s=DT_S)).run(x).output
    np.testing.assert_array_equal(np.asarray(again), np.asarray(api.Program(art).run(x).output))
