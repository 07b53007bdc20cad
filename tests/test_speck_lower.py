"""Lowering NIR graphs to Speck: exact agreement with the float reference where integers are exact,
every violation collected, options, and the artifact round trip."""
from __future__ import annotations

import json

import nir
import numpy as np
import pytest

import snnc.runtime.api as api
from snnc.errors import InputError, RuleViolationError
from snnc.targets.base import get_target, target_names


def conv(w, stride=1, padding=0, bias=None, input_shape=None):
    return nir.Conv2d(input_shape=input_shape, weight=w, stride=stride, padding=padding, dilation=1, groups=1,
                      bias=np.zeros(w.shape[0]) if bias is None else bias)


def if_(n, thr, reset=0.0):
    return nir.IF(r=np.ones(n), v_threshold=np.full(n, float(thr)), v_reset=np.full(n, reset))


def chain(nodes, in_shape):
    """A linear NIR graph input -> nodes... -> output (shapes left to snnc's own inference)."""
    names = ["input"] + [f"n{i}_{type(n).__name__.lower()}" for i, n in enumerate(nodes)] + ["output"]
    all_nodes = {"input": nir.Input(input_type={"input": np.array(in_shape)}),
                 **{nm: n for nm, n in zip(names[1:-1], nodes)},
                 "output": nir.Output(output_type={"output": np.array([1])})}
    return nir.NIRGraph(nodes=all_nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)


def integer_model(seed=0):
    """Integer weights with max |w| = 127 (scale 1): Speck's integers equal the float model's."""
    rng = np.random.default_rng(seed)
    w0 = rng.integers(-4, 40, (4, 2, 3, 3)).astype(float)
    w0[0, 0, 0, 0] = 127
    w1 = rng.integers(-4, 30, (6, 4, 3, 3)).astype(float)
    w1[1, 1, 1, 1] = 127
    w2 = rng.integers(-10, 60, (5, 6 * 4 * 4)).astype(float)
    w2[2, 3] = 127
    nodes = [conv(w0, stride=2, padding=1, input_shape=(16, 16)), if_(4, 60),
             nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             conv(w1, padding=1, input_shape=(4, 4)), if_(6, 150),
             nir.Flatten(input_type={"input": np.array([6, 4, 4])}, start_dim=0, end_dim=-1),
             nir.Affine(weight=w2, bias=np.zeros(5)), if_(5, 200)]
    return chain(nodes, (2, 16, 16))


def test_target_registered():
    assert "speck" in target_names()
    t = get_target("speck")
    assert t.backends == ("sim", "device")


def test_integer_model_equals_float_reference_exactly():
    g = integer_model()
    art = api.compile(g, target="speck", dt_s=1.0)
    ref = api.compile(g, target="cpu", dt_s=1.0)
    x = np.random.default_rng(5).poisson(0.6, (3, 25, 2, 16, 16)).astype(float)
    out = api.Program(art).run(x, record=True)
    exp = api.Program(ref).run(x)
    assert out.output.shape == exp.output.shape == (3, 25, 5)
    np.testing.assert_array_equal(out.output, exp.output.astype(np.int64))
    assert exp.output.sum() > 0 and out.spike_counts  # the comparison must involve spikes
    spk = {n: c for n, c in exp.spike_counts.items()}
    for name, counts in out.spike_counts.items():
        np.testing.assert_array_equal(counts, spk[name].astype(np.int64))
    rep = art.manifest["report"]
    assert set(rep["mapping"]) == set(out.spike_counts) and len(set(rep["mapping"].values())) == 3
    assert all(q["scale"] == pytest.approx(1.0) for q in rep["quantization"].values())
    assert "v" in next(iter(out.states.values()))


def test_artifact_roundtrip_and_config_blob(tmp_path):
    art = api.compile(integer_model(1), target="speck", dt_s=1.0)
    path = art.save(str(tmp_path / "m.snnc"))
    prog = api.load(path)
    x = np.random.default_rng(2).poisson(0.5, (1, 10, 2, 16, 16))
    np.testing.assert_array_equal(prog.run(x).output, api.Program(art).run(x).output)
    cfg = json.loads(art.payload["speck/config.json"])
    assert cfg["format"] == "snnc-speck-config" and len(cfg["cnn_layers"]) == 9
    # same model, same bytes
    assert api.compile(integer_model(1), target="speck", dt_s=1.0).payload == art.payload


def test_all_violations_reported_together():
    rng = np.random.default_rng(0)
    nodes = [conv(rng.normal(size=(4, 2, 3, 5)), padding=1), if_(4, 1.0),          # non-square kernel
             conv(rng.normal(size=(128, 4, 3, 3)), padding=1),                       # too much neuron memory
             nir.LIF(tau=np.full(128, 0.02), r=np.ones(128), v_leak=np.zeros(128),
                     v_threshold=np.ones(128), v_reset=np.zeros(128))]              # leaky
    g = chain(nodes, (2, 64, 64))
    with pytest.raises(RuleViolationError) as exc:
        api.compile(g, target="speck", dt_s=1e-3)
    rules = {v.rule for v in exc.value.violations}
    assert {"speck.neuron.leaky", "speck.neuron.kind"} <= rules
    # structural rules first; once the neurons are IF the hardware rules appear together
    nodes[3] = if_(128, 1.0)
    with pytest.raises(RuleViolationError) as exc:
        api.compile(chain(nodes, (2, 64, 64)), target="speck", dt_s=1e-3)
    msg = str(exc.value)
    assert "[speck.kernel.square]" in msg and "[speck.memory.neuron]" in msg and "n2_conv2d" not in msg
    assert "n3_if" in msg and "524288" in msg


def test_memoryless_threshold_and_reset_and_input_rules():
    rng = np.random.default_rng(1)
    g = chain([conv(rng.normal(size=(2, 2, 3, 3))), nir.Threshold(threshold=np.zeros((2, 6, 6)))], (2, 8, 8))
    with pytest.raises(RuleViolationError, match=r"speck.neuron.memoryless"):
        api.compile(g, target="speck")
    g = chain([conv(rng.normal(size=(2, 2, 3, 3))), if_(2, 1.0, reset=0.5)], (2, 8, 8))
    with pytest.raises(RuleViolationError, match=r"speck.neuron.reset"):
        api.compile(g, target="speck")
    assert api.compile(g, target="speck", reset="subtract").manifest["report"]["speck_notes"]
    g = chain([nir.Affine(weight=rng.normal(size=(3, 20)), bias=np.zeros(3)), if_(3, 1.0)], (20,))
    with pytest.raises(RuleViolationError, match=r"speck.input.size"):
        api.compile(g, target="speck")


def test_options():
    g = integer_model(2)
    with pytest.raises(InputError, match="unknown option"):
        api.compile(g, target="speck", dt_s=1.0, colour="red")
    art = api.compile(g, target="speck", dt_s=1.0, spike_mode="multi", readout=True,
                      layer_to_core={"n1_if": 3, "n4_if": 4, "n7_if": 8})
    assert art.manifest["report"]["mapping"] == {"n1_if": 3, "n4_if": 4, "n7_if": 8}
    cfg = json.loads(art.payload["speck/config.json"])
    assert cfg["readout"] == {"enable": True, "source_core": 8, "num_classes": 5, "channel_stride": 4}
    assert len(cfg["cnn_layers"][8]["weights"]) == 17  # (5 - 1) * 4 + 1, class i on channel 4 i
    assert json.loads(art.payload["speck/run.json"])["spike_mode"] == "multi"
    x = np.random.default_rng(0).poisson(0.6, (2, 15, 2, 16, 16))
    plain = api.Program(api.compile(g, target="speck", dt_s=1.0, spike_mode="multi")).run(x)
    np.testing.assert_array_equal(api.Program(art).run(x).output, plain.output)


def test_quantize_returns_network_and_core_map_option(tmp_path):
    from snnc.compiler.pipeline import run_pipeline
    from snnc.targets.base import CompileOptions

    t = get_target("speck")
    graph = run_pipeline(api.load_model(integer_model(4)), t.passes())
    net = t.quantize(graph, CompileOptions(dt_s=1.0))
    assert [l.core for l in net.layers] == [0, 1, 2] and net.layers[-1].monitor
    png = tmp_path / "cores.png"
    art = api.compile(integer_model(4), target="speck", dt_s=1.0, core_map=str(png))
    assert png.read_bytes()[:4] == b"\x89PNG" and art.manifest["report"]["warnings"] == []
    # a tiny dt makes the threshold dominate the scale: small weights vanish, and the report says so
    art = api.compile(integer_model(4), target="speck", dt_s=1e-4)
    assert any("rounded to 0" in w for w in art.manifest["report"]["warnings"])


def test_avgpool_input_goes_to_dvs_pooling():
    rng = np.random.default_rng(3)
    nodes = [nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             conv(rng.normal(size=(3, 2, 3, 3))), if_(3, 1.0)]
    art = api.compile(chain(nodes, (2, 32, 32)), target="speck")
    cfg = json.loads(art.payload["speck/config.json"])
    assert cfg["dvs_layer"]["pooling"] == {"x": 2, "y": 2}
    out = api.Program(art).run(np.ones((1, 3, 2, 32, 32)))
    assert out.output.shape == (1, 3, 3, 14, 14)


def test_device_backend_unavailable_without_samna():
    from snnc.targets.speck.device import samna_status

    if samna_status()[0]:
        pytest.skip("samna is installed: the unavailable path cannot be exercised")
    art = api.compile(integer_model(), target="speck", dt_s=1.0)
    with pytest.raises(Exception) as exc:
        api.Program(art).run(np.zeros((1, 2, 2, 16, 16)), backend="device")
    assert type(exc.value).__name__ == "BackendUnavailableError" and "samna" in str(exc.value)
