"""Speck network spec, neutral JSON configuration, quantisation report and hardware rules."""
from __future__ import annotations

import json

import numpy as np
import pytest

from snnc.errors import ArtifactError, RuleViolationError, ShapeError, ValueRangeError
from snnc.targets.speck import chip, rules
from snnc.targets.speck.mapping import assign_cores
from snnc.targets.speck.network import (Destination, DvsInput, Readout, SpeckLayer, SpeckNetwork,
                                        network_from_config)
from snnc.targets.speck.quantize import discretization_scale, quantize_layer

CORE_FIELDS = {"dimensions", "weights", "biases", "leak_enable", "return_to_zero", "threshold_high",
               "threshold_low", "monitor_enable", "neurons_initial_value", "destinations"}


def small_net(seed: int = 0, dvs: bool = False) -> SpeckNetwork:
    rng = np.random.default_rng(seed)
    l0 = SpeckLayer("conv0", rng.integers(-128, 128, (4, 2, 3, 3)), np.zeros(4), 50, -200, (2, 16, 16),
                    stride=2, padding=1, destinations=[Destination(1, (2, 2))], return_to_zero=True)
    l1 = SpeckLayer("conv1", rng.integers(-128, 128, (6, 4, 3, 3)), rng.integers(-3, 4, 6), 40, -100,
                    (4, 4, 4), padding=1, destinations=[Destination(2)])
    l2 = SpeckLayer("fc", rng.integers(-128, 128, (3, 6, 4, 4)), None, 30, -60, (6, 4, 4))
    if dvs:
        return SpeckNetwork([l0, l1, l2], (2, 32, 32), dvs=DvsInput((2, 32, 32), pooling=(2, 2), destinations=[0]),
                            readout=Readout(2, 3))
    return SpeckNetwork([l0, l1, l2], (2, 16, 16), [0], readout=Readout(2, 3))


def test_config_has_exactly_samna_core_fields_and_roundtrips():
    net = small_net()
    assign_cores(net)
    cfg = net.to_config()
    assert len(cfg["cnn_layers"]) == chip.N_CORES
    used = [c for c in cfg["cnn_layers"] if c is not None]
    assert len(used) == 3
    for c in used:
        assert set(c) == CORE_FIELDS
        assert len(c["destinations"]) == chip.MAX_DESTINATIONS
        assert set(c["dimensions"]) == {"input_shape", "output_shape", "padding", "stride", "kernel_size"}
    c0 = cfg["cnn_layers"][net.layers[0].core]
    # samna order: weights [f][c][x][y], states [f][x][y]
    assert c0["weights"][1][0][2][0] == int(net.layers[0].weights[1, 0, 0, 2])
    assert np.asarray(c0["neurons_initial_value"]).shape == (4, 8, 8)
    assert c0["destinations"][0] == {"layer": net.layers[1].core, "enable": True, "pooling": 2}
    assert c0["return_to_zero"] is True and c0["leak_enable"] is False
    fc = cfg["cnn_layers"][net.layers[2].core]
    assert fc["destinations"][0] == {"layer": chip.READOUT_DESTINATION, "enable": True, "pooling": 1}
    back = network_from_config(net.to_json())
    assert back.to_json() == net.to_json()
    for a, b in zip(back.layers, net.layers):
        np.testing.assert_array_equal(a.weights, b.weights)


def test_json_is_deterministic_and_dvs_roundtrips():
    a, b = small_net(3, dvs=True), small_net(3, dvs=True)
    assign_cores(a)
    assign_cores(b)
    assert a.to_json() == b.to_json()
    cfg = json.loads(a.to_json())
    assert cfg["dvs_layer"]["pooling"] == {"x": 2, "y": 2}
    assert cfg["dvs_layer"]["destinations"][0] == {"layer": a.layers[0].core, "enable": True}
    back = network_from_config(cfg)
    assert back.dvs is not None and back.dvs.pooling == (2, 2) and back.readout == a.readout


def test_config_errors_are_artifact_errors():
    net = small_net()
    with pytest.raises(ArtifactError, match="no core"):
        net.to_config()
    with pytest.raises(ArtifactError, match="not a Speck configuration"):
        network_from_config('{"format": "other"}')
    with pytest.raises(ArtifactError, match="not valid JSON"):
        network_from_config("{nope")
    assign_cores(net)
    cfg = net.to_config()
    del cfg["cnn_layers"][net.layers[0].core]["weights"]
    with pytest.raises(ArtifactError, match="malformed"):
        network_from_config(cfg)


def test_structure_errors():
    with pytest.raises(ValueRangeError, match="must be integers"):
        SpeckLayer("x", np.full((1, 1, 1, 1), 0.7), None, 1, -1, (1, 4, 4))
    with pytest.raises(ShapeError, match="does not match"):
        SpeckLayer("x", np.zeros((2, 3, 1, 1)), None, 1, -1, (2, 4, 4))
    l0 = SpeckLayer("a", np.zeros((2, 1, 3, 3)), None, 1, -1, (1, 8, 8), destinations=[Destination(1, (2, 2))])
    l1 = SpeckLayer("b", np.zeros((1, 2, 1, 1)), None, 1, -1, (2, 6, 6))
    with pytest.raises(ShapeError, match="sends shape"):
        SpeckNetwork([l0, l1], (1, 8, 8), [0])
    l0 = SpeckLayer("a", np.zeros((1, 1, 1, 1)), None, 1, -1, (1, 4, 4), destinations=[Destination(1)])
    l1 = SpeckLayer("b", np.zeros((1, 1, 1, 1)), None, 1, -1, (1, 4, 4), destinations=[Destination(0)])
    with pytest.raises(ShapeError, match="cycle"):
        SpeckNetwork([l0, l1], (1, 4, 4), [0])


def _rule_names(net):
    return {v.rule for v in rules.check_network(net)}


def test_each_hardware_rule_fires():
    rng = np.random.default_rng(1)
    big = SpeckLayer("k17", np.zeros((2, 2, 17, 17)), None, 1, -1, (2, 20, 20), stride=3, padding=8,
                     destinations=[Destination(1, (3, 3)), Destination(2), Destination(3)])
    nxt = [SpeckLayer(f"n{i}", np.zeros((1, 2, 1, 1)), None, 1, -1, s)
           for i, s in enumerate([(2, 2, 2), (2, 7, 7), (2, 7, 7)])]
    net = SpeckNetwork([big] + nxt, (2, 20, 20), [0])
    names = _rule_names(net)
    assert {"speck.kernel.size", "speck.conv.stride", "speck.conv.padding", "speck.pooling.size",
            "speck.destinations.count"} <= names
    sq = SpeckLayer("ns", np.zeros((2, 2, 3, 5)), None, 1, -1, (2, 8, 8))
    assert "speck.kernel.square" in _rule_names(SpeckNetwork([sq], (2, 8, 8), [0]))
    wide = SpeckLayer("wide", rng.integers(-300, 300, (1100, 3, 1, 1)), None, 40000, 50000, (3, 130, 130))
    names = _rule_names(SpeckNetwork([wide], (3, 130, 130), [0], readout=Readout(0, 20)))
    assert {"speck.input.size", "speck.output.size", "speck.channels", "speck.readout.classes",
            "speck.readout.channels", "speck.range.weights", "speck.range.threshold",
            "speck.threshold.order"} <= names
    many = [SpeckLayer(f"l{i}", np.zeros((1, 1, 1, 1)), None, 1, -1, (1, 2, 2),
                       destinations=[Destination(i + 1)] if i < 9 else []) for i in range(10)]
    assert "speck.cores.count" in _rule_names(SpeckNetwork(many, (1, 2, 2), [0]))


def test_small_net_has_no_violations():
    assert rules.check_network(small_net()) == []
    assert rules.check_network(small_net(dvs=True)) == []


def test_model_rules():
    assert rules.rule_leaky_neuron("n", "LIF", tau_s=0.02)[0].rule == "speck.neuron.leaky"
    assert rules.rule_leaky_neuron("n", "IF", tau_s=None) == []
    assert rules.rule_memoryless_threshold("g")[0].rule == "speck.neuron.memoryless"
    assert rules.rule_neuron_kind("n", "CubaLIF")[0].rule == "speck.neuron.kind"
    assert rules.rule_reset("n", 0.5)[0].rule == "speck.neuron.reset"
    assert rules.rule_reset("n", 0.0) == []
    kinds = {v.rule for v in rules.rule_unsupported_pooling("p", "MaxPool2d", (2, 2), (1, 1))}
    assert kinds == {"speck.pooling.kind", "speck.pooling.stride"}
    with pytest.raises(RuleViolationError) as exc:
        rules.raise_if_any(rules.rule_memoryless_threshold("g") + rules.rule_reset("n", 1.0))
    assert "speck.neuron.memoryless" in str(exc.value) and "speck.neuron.reset" in str(exc.value)
    rules.raise_if_any([])


def test_quantize_report_and_errors():
    w = np.array([[[[1.0, -0.5, 1e-5]]]])
    q = quantize_layer("l", w, np.array([0.25]), 2.0, v_low=-1.0)
    assert q.report.limited_by == "weights" and q.weights.reshape(-1).tolist() == [127, -64, 0]
    assert q.report.rounded_to_zero["weights"] == 1 and q.report.clipped["weights"] == 0
    assert (q.threshold_high, q.threshold_low) == (254, -127)
    assert q.report.to_dict()["scale"] == pytest.approx(127.0)
    strict = quantize_layer("l", w, None, 2.0, v_low=-1.0, strict_threshold=True)
    assert strict.threshold_high == 255  # v > 254  <=>  v >= 255
    auto = quantize_layer("l", w, None, 2.0)
    assert auto.threshold_low == -(2 ** 15) and auto.scale == q.scale
    with pytest.raises(ValueRangeError, match="NaN"):
        quantize_layer("l", np.array([[[[np.nan]]]]), None, 1.0)
    with pytest.raises(ValueRangeError, match="> 0"):
        quantize_layer("l", w, None, 0.0)
    with pytest.raises(ValueRangeError, match="below the threshold"):
        quantize_layer("l", w, None, 1.0, v_low=2.0)
    with pytest.raises(ValueRangeError, match="rounds to 0"):
        quantize_layer("l", np.array([[[[1000.0]]]]), None, 1.0, v_low=-1.0)


def test_discretization_scale_uses_extra_negative_code():
    assert discretization_scale(np.array([-1.0, 0.5]), 8) == np.float32(128.0)
    assert discretization_scale(np.array([-1.0, 1.0]), 8) == np.float32(127.0)
    assert discretization_scale(np.array([-1.0, 1.0]), 16) == np.float32(32767.0)
    assert np.isinf(discretization_scale(np.zeros(3), 8))  # sinabs: an all-zero bias never limits
