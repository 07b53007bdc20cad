"""LoihiNetwork: validation, range reports and deterministic dict serialisation."""
from __future__ import annotations

import io

import numpy as np
import pytest

from loihi_helpers import random_conv_net, random_dense_chain
from snnc.errors import ArtifactError, ShapeError, UnsupportedError, ValueRangeError
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork
from snnc.targets.loihi import rules as loihi_rules


def _savez_bytes(d: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **d)
    return buf.getvalue()


@pytest.mark.parametrize("seed", range(4))
def test_dict_round_trip_is_exact_and_deterministic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    net = random_conv_net(rng) if seed % 2 else random_dense_chain(rng, [7, 5, 3])
    d = net.to_dict()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in d.values())
    buf = io.BytesIO(_savez_bytes(d))
    with np.load(buf, allow_pickle=False) as f:
        back = LoihiNetwork.from_dict({k: f[k] for k in f.files})
    assert back.equals(net)
    assert _savez_bytes(back.to_dict()) == _savez_bytes(d)
    for a, b in zip(net.layers, back.layers):
        assert (a.name, a.kind, a.source, a.input_shape, a.output_shape) == (b.name, b.kind, b.source,
                                                                              b.input_shape, b.output_shape)


def test_from_dict_rejects_foreign_or_broken_dicts() -> None:
    d = random_dense_chain(np.random.default_rng(0), [3, 2]).to_dict()
    with pytest.raises(ArtifactError, match="lacks"):
        LoihiNetwork.from_dict({k: v for k, v in d.items() if not k.endswith("vth_mant")})
    with pytest.raises(ArtifactError, match="format"):
        LoihiNetwork.from_dict({**d, "format": np.array("something else")})


def _dense(**kw: object) -> LoihiLayer:
    return LoihiLayer.dense("d", np.ones((2, 3), dtype=np.int64), source=-1, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("make, err", [
    (lambda: LoihiNetwork((4,), [_dense()]), ShapeError),
    (lambda: LoihiNetwork((3,), [_dense(du=4097)]), ValueRangeError),
    (lambda: LoihiNetwork((3,), [_dense(dv=-1)]), ValueRangeError),
    (lambda: LoihiNetwork((3,), [_dense(vth_mant=1 << 17)]), ValueRangeError),
    (lambda: LoihiNetwork((3,), [_dense(bias_mant=np.zeros(3, dtype=np.int64))]), ShapeError),
    (lambda: LoihiNetwork((3,), [_dense(bias_mant=40000)]), ValueRangeError),
    (lambda: LoihiNetwork((3,), [_dense(bias_exp=8)]), ValueRangeError),
    (lambda: LoihiNetwork((3,), [_dense(num_weight_bits=9)]), ValueRangeError),
    (lambda: LoihiNetwork((3,), [_dense().replace(source=1)]), UnsupportedError),
    (lambda: LoihiNetwork((3,), [_dense().replace(weights=np.ones((2, 3)) * 0.5)]), ValueRangeError),
    (lambda: LoihiNetwork((1, 4, 4), [LoihiLayer.conv("c", np.ones((1, 1, 2, 2), dtype=np.int64), (1, 4, 4),
                                                      source=-1).replace(weight_exp=1)]), UnsupportedError),
    (lambda: LoihiNetwork((2, 4, 4), [LoihiLayer.conv("c", np.ones((3, 1, 2, 2), dtype=np.int64), (2, 4, 4),
                                                      source=-1, groups=2)]), ShapeError),
    (lambda: LoihiNetwork((3,), [LoihiLayer.flatten("f", (3,), source=-1)]), UnsupportedError),
])
def test_invalid_layers_raise_named_errors(make: object, err: type) -> None:
    with pytest.raises(err) as info:
        make()  # type: ignore[operator]
    assert "node '" in str(info.value)


def test_range_violations_report_what_lava_would_change() -> None:
    w = np.array([[300, -3, 4]], dtype=np.int64)
    net = LoihiNetwork((3,), [LoihiLayer.dense("d", w, source=-1, weight_exp=9, bias_mant=5000)])
    found = sorted(v.rule for v in loihi_rules.rule_registers(net))
    assert found == ["bias-mantissa", "weight-bits", "weight-exponent", "weight-range"]
    ok = LoihiNetwork((3,), [LoihiLayer.dense("d", np.array([[254, -4, 4]]), source=-1)])
    assert loihi_rules.rule_registers(ok) == []


def test_pool_and_flatten_shapes() -> None:
    p = LoihiLayer.pool("p", (3, 7, 6), 2, 5, source=-1)
    assert p.output_shape == (3, 3, 3) and p.groups == 3 and p.kind == "pool"
    f = LoihiLayer.flatten("f", p.output_shape, source=0)
    net = LoihiNetwork((3, 7, 6), [p, f, LoihiLayer.dense("d", np.ones((2, 27), dtype=np.int64), source=1)])
    assert net.output_shape == (2,)
