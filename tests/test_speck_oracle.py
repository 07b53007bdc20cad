"""snnc's Speck target against sinabs 3.1.3 as the oracle (discretisation, memory, mapping, config, spikes).

sinabs' ``sinabs.backend.dynapcnn`` package imports samna in its ``__init__``; where samna is
absent we load its ``discretize``, ``dynapcnn_layer`` and ``mapping`` modules under an empty
parent package (a namespace holding only the package path: nothing of samna or sinabs is
replaced). The chip constants and the config writer live in ``chips/dynapcnn.py``, which
imports samna at module level: we read them from that file's source with ``ast`` and run
sinabs' own ``get_dynapcnn_layer_config_dict`` body.
"""
from __future__ import annotations

import ast
import importlib
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

torch = pytest.importorskip("torch")
sinabs = pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the oracle (pip install --no-deps sinabs==3.1.3 pbr nirtorch)")

import sinabs.activation as sa  # noqa: E402
import sinabs.layers as sl  # noqa: E402

from snnc.errors import ValueRangeError  # noqa: E402
from snnc.targets.speck import chip, kernels  # noqa: E402
from snnc.targets.speck.device import samna_status  # noqa: E402
from snnc.targets.speck.mapping import layer_memory_need, mapping_violations  # noqa: E402
from snnc.targets.speck.network import Destination, SpeckLayer, SpeckNetwork, _core_config  # noqa: E402
from snnc.targets.speck.quantize import quantize_layer  # noqa: E402
from snnc.targets.speck.simulator import simulate  # noqa: E402

PKG = "sinabs.backend.dynapcnn"
DYNAPCNN_DIR = Path(sinabs.__file__).parent / "backend" / "dynapcnn"


def _settings(n: int) -> settings:
    """Modest example counts, no deadline (sinabs' per-step loop is slow on 2 cores)."""
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sinabs_dynapcnn() -> SimpleNamespace:
    """sinabs' discretize / dynapcnn_layer / mapping modules, without running the samna-importing __init__."""
    if PKG not in sys.modules and not samna_status()[0]:
        import sinabs.backend  # noqa: F401  (its __init__ is empty)

        parent = types.ModuleType(PKG)
        parent.__path__ = [str(DYNAPCNN_DIR)]  # an empty namespace: only the package path
        sys.modules[PKG] = parent
    return SimpleNamespace(discretize=importlib.import_module(PKG + ".discretize"),
                           layer=importlib.import_module(PKG + ".dynapcnn_layer"),
                           mapping=importlib.import_module(PKG + ".mapping"))


def _dynapcnn_chip_source() -> ast.Module:
    return ast.parse((DYNAPCNN_DIR / "chips" / "dynapcnn.py").read_text())


def _method(tree: ast.Module, name: str) -> ast.FunctionDef:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise LookupError(name)


def sinabs_constraints() -> list:
    """LayerConstraints built from the literal memory lists in sinabs' ``get_constraints``."""
    fn = _method(_dynapcnn_chip_source(), "get_constraints")
    values = {}
    for stmt in fn.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            if name.endswith("memory_size"):
                values[name] = eval(compile(ast.Expression(stmt.value), "<sinabs>", "eval"),
                                    {"__builtins__": {}})
    mod = sinabs_dynapcnn().mapping
    return [mod.LayerConstraints(k, n, b) for k, n, b in zip(
        values["weight_memory_size"], values["neurons_memory_size"], values["bias_memory_size"])]


def sinabs_config_dict_fn():
    """sinabs' ``DynapcnnConfigBuilder.get_dynapcnn_layer_config_dict`` as a plain function."""
    fn = _method(_dynapcnn_chip_source(), "get_dynapcnn_layer_config_dict")
    fn.decorator_list = []
    module = ast.Module(body=[fn], type_ignores=[])
    ast.fix_missing_locations(module)
    ns = {"torch": torch, "sinabs": sinabs, "Dict": dict, "List": list,
          "DynapcnnLayer": sinabs_dynapcnn().layer.DynapcnnLayer}
    exec(compile(module, str(DYNAPCNN_DIR / "chips" / "dynapcnn.py"), "exec"), ns)
    return ns["get_dynapcnn_layer_config_dict"]


# ------------------------------------------------------------------ chip constants
def test_core_memories_match_sinabs_source():
    cons = sinabs_constraints()
    assert len(cons) == chip.N_CORES
    for core, c in enumerate(cons):
        assert (c.kernel_memory, c.neuron_memory, c.bias_memory) == (
            chip.core_limit(core, "kernel"), chip.core_limit(core, "neuron"), chip.core_limit(core, "bias"))


def test_precisions_match_sinabs():
    d = sinabs_dynapcnn().discretize
    assert d.DYNAPCNN_WEIGHT_PRECISION_BITS == chip.WEIGHT_BITS
    assert d.DYNAPCNN_STATE_PRECISION_BITS == chip.STATE_BITS


# ------------------------------------------------------------------ discretisation
def _float_params(seed: int, f: int, c: int, k: int, grid: bool):
    rng = np.random.default_rng(seed)
    if grid:  # coarse grid: many exact ties after scaling
        w = rng.integers(-16, 17, size=(f, c, k, k)) / 8.0
        b = rng.integers(-8, 9, size=f) / 8.0
    else:
        w = rng.normal(0, 10.0 ** rng.uniform(-3, 1), size=(f, c, k, k))
        b = rng.normal(0, 10.0 ** rng.uniform(-3, 1), size=f)
    return w.astype(np.float32), b.astype(np.float32)


def _sinabs_discretize(w, b, thr, low):
    d = sinabs_dynapcnn().discretize
    f, c, k, _ = w.shape
    conv = torch.nn.Conv2d(c, f, k, bias=b is not None)
    conv.weight.data = torch.from_numpy(w.copy())
    if b is not None:
        conv.bias.data = torch.from_numpy(b.copy())
    spk = sl.IAFSqueeze(batch_size=1, spike_threshold=thr, min_v_mem=low)
    conv_q, spk_q = d.discretize_conv_spike(conv, spk, to_int=True)
    bias = conv_q.bias.detach().numpy() if b is not None else np.zeros(f)
    return (conv_q.weight.detach().numpy().astype(np.int64), bias.astype(np.int64),
            int(spk_q.spike_threshold), int(spk_q.min_v_mem))


@_settings(150)
@given(f=st.integers(1, 6), c=st.integers(1, 3), k=st.integers(1, 4), seed=st.integers(0, 2**31 - 1),
       has_bias=st.booleans(), grid=st.booleans(), thr=st.floats(0.01, 50.0),
       low_ratio=st.floats(0.01, 100.0))
def test_discretize_same_integers_as_sinabs(f, c, k, seed, has_bias, grid, thr, low_ratio):
    w, b = _float_params(seed, f, c, k, grid)
    if not has_bias:
        b = None
    low = -thr * low_ratio
    ref_w, ref_b, ref_thr, ref_low = _sinabs_discretize(w, b, thr, low)
    if ref_thr <= 0:  # sinabs silently makes a neuron that fires at v >= 0; snnc refuses
        with pytest.raises(ValueRangeError, match="threshold rounds to"):
            quantize_layer("l", w, b, thr, v_low=low)
        return
    q = quantize_layer("l", w, b, thr, v_low=low)
    np.testing.assert_array_equal(q.weights, ref_w)
    np.testing.assert_array_equal(q.biases, ref_b)
    assert (q.threshold_high, q.threshold_low) == (ref_thr, ref_low)
    assert sum(q.report.clipped.values()) == 0


def test_discretize_tie_rounds_half_to_even_like_sinabs():
    w = np.array([[[[1.0, 0.5 / 127, 1.5 / 127, 2.5 / 127]]]], dtype=np.float32)  # ties at 0.5, 1.5, 2.5
    ref_w, *_ = _sinabs_discretize(w, None, 1.0, -1.0)
    q = quantize_layer("l", w, None, 1.0, v_low=-1.0)
    np.testing.assert_array_equal(q.weights, ref_w)
    np.testing.assert_array_equal(q.weights.reshape(-1), [127, 0, 2, 2])


def test_sinabs_default_lower_bound_equals_explicit_minus_2_15():
    w, b = _float_params(3, 4, 2, 3, False)
    ref = _sinabs_discretize(w, b, 1.0, None)  # sinabs: min_v_mem None -> -2**15 before scaling
    q = quantize_layer("l", w, b, 1.0, v_low=-(2.0 ** 15))
    np.testing.assert_array_equal(q.weights, ref[0])
    assert (q.threshold_high, q.threshold_low) == ref[2:]
    # ...which is the trap the docs warn about: scale <= 1, small weights vanish
    assert q.scale <= 1.0 and q.report.rounded_to_zero["weights"] > 0
    # snnc's default (v_low=None) keeps the precision and still uses the full negative range
    q_auto = quantize_layer("l", w, b, 1.0)
    assert q_auto.threshold_low == -(2 ** 15) and q_auto.report.rounded_to_zero["weights"] < w.size // 4


# ------------------------------------------------------------------ memory and mapping
_CHANNELS = st.sampled_from([1, 2, 3, 4, 6, 8, 16, 24, 32, 64, 128])
layer_st = st.tuples(_CHANNELS, _CHANNELS, st.sampled_from([1, 2, 3, 5]),
                     st.integers(5, 64), st.sampled_from([1, 2]))


def _speck_layer(i, c, f, k, hw, stride):
    return SpeckLayer(name=f"l{i}", weights=np.zeros((f, c, k, k), dtype=np.int64),
                      biases=np.ones(f, dtype=np.int64), threshold_high=1, threshold_low=-1,
                      input_shape=(c, hw, hw), stride=stride)


def _sinabs_layer(c, f, k, hw, stride):
    mod = sinabs_dynapcnn().layer
    conv = torch.nn.Conv2d(c, f, k, stride=stride, bias=True)
    return mod.DynapcnnLayer(conv, sl.IAFSqueeze(batch_size=1), (c, hw, hw), [[1, 1]], discretize=False)


@_settings(80)
@given(specs=st.lists(layer_st, min_size=1, max_size=9))
def test_memory_and_core_assignment_same_as_sinabs(specs):
    ours = [_speck_layer(i, *s) for i, s in enumerate(specs)]
    theirs = {i: _sinabs_layer(*s) for i, s in enumerate(specs)}
    for lyr, ref in zip(ours, theirs.values()):
        mem = ref.memory_summary()
        need = layer_memory_need(lyr)
        assert (need.kernel, need.neuron, need.bias) == (int(mem["kernel"]), int(mem["neuron"]), int(mem["bias"]))
    cores, violations = mapping_violations(ours)
    try:
        ref_map = sinabs_dynapcnn().mapping.get_valid_mapping(theirs, sinabs_constraints())
    except ValueError as exc:
        assert "No valid mapping" in str(exc)
        assert cores is None and violations, "sinabs found no mapping, snnc must not either"
        assert all(v.rule.startswith("speck.memory") for v in violations)
        return
    assert cores is not None, f"sinabs mapped {ref_map}, snnc said {violations}"
    assert cores == [ref_map[i] for i in range(len(specs))]


def test_a_mapping_that_needs_augmenting_paths_matches_sinabs():
    # three layers that only fit cores 0-2 (neuron memory > 32Ki) plus small ones
    specs = [(2, 16, 3, 64, 1), (16, 16, 3, 64, 1), (4, 8, 1, 16, 1), (16, 12, 3, 64, 1),
             (8, 32, 3, 34, 1), (32, 32, 3, 32, 2)]
    ours = [_speck_layer(i, *s) for i, s in enumerate(specs)]
    ref_map = sinabs_dynapcnn().mapping.get_valid_mapping(
        {i: _sinabs_layer(*s) for i, s in enumerate(specs)}, sinabs_constraints())
    cores, _ = mapping_violations(ours)
    assert cores == [ref_map[i] for i in range(len(specs))]


# ------------------------------------------------------------------ configuration fields
def test_core_config_fields_equal_sinabs_config_dict():
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, size=(6, 3, 3, 3))
    b = rng.integers(-5, 6, size=6)
    ours = SpeckLayer("c", w, b, threshold_high=77, threshold_low=-300, input_shape=(3, 20, 24),
                      stride=(2, 2), padding=(1, 1), return_to_zero=True,
                      destinations=[Destination(1, (2, 2))])
    nxt = SpeckLayer("n", np.zeros((2, 6, 1, 1)), None, 1, -1, input_shape=(6, 5, 6))
    net = SpeckNetwork([ours, nxt], (3, 20, 24), [0])
    net.layers[0].core, net.layers[1].core = 4, 7
    mine = _core_config(net.layers[0], {0: 4, 1: 7}, readout=False)

    conv = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)
    conv.weight.data = torch.from_numpy(w.astype(np.float32))
    conv.bias.data = torch.from_numpy(b.astype(np.float32))
    spk = sl.IAFSqueeze(batch_size=1, spike_threshold=77.0, min_v_mem=-300.0, reset_fn=sa.MembraneReset())
    layer = sinabs_dynapcnn().layer.DynapcnnLayer(conv, spk, (3, 20, 24), [[2, 2]], discretize=False)
    ref = sinabs_config_dict_fn()(None, layer=layer, layer2core_map={0: 4, 1: 7}, destination_indices=[1])
    assert mine["dimensions"] == ref["dimensions"]
    assert mine["weights"] == ref["weights"]
    assert mine["biases"] == ref["biases"]
    assert mine["leak_enable"] == bool(ref["leak_enable"])
    for key in ("return_to_zero", "threshold_high", "threshold_low", "monitor_enable", "neurons_initial_value"):
        assert mine[key] == ref[key], key
    assert mine["destinations"][: len(ref["destinations"])] == ref["destinations"]
    assert all(not d["enable"] for d in mine["destinations"][len(ref["destinations"]):])


# ------------------------------------------------------------------ spikes, step for step
def _random_network(seed, spike_mode_multi, return_to_zero, with_bias, pool, stride):
    rng = np.random.default_rng(seed)
    c0, c1, c2, n_out = 2, int(rng.integers(2, 5)), int(rng.integers(2, 5)), 5
    h = 16
    shapes = []
    layers = []
    in_shape = (c0, h, h)
    specs = [(c1, 3, stride, 1, pool), (c2, 3, 1, 1, 1)]
    for i, (f, k, s, p, pl) in enumerate(specs):
        w = rng.normal(0.2, 1.0, size=(f, in_shape[0], k, k))
        b = rng.normal(0, 0.3, size=f) if with_bias else None
        q = quantize_layer(f"c{i}", w, b, v_threshold=float(rng.uniform(1.0, 4.0)),
                           v_low=-float(rng.uniform(1.0, 6.0)))
        lyr = SpeckLayer(f"c{i}", q.weights, q.biases, q.threshold_high, q.threshold_low, in_shape,
                         stride=s, padding=p, return_to_zero=return_to_zero,
                         destinations=[Destination(i + 1, (pl, pl))])
        layers.append(lyr)
        shapes.append(pl)
        fo, ho, wo = lyr.neuron_shape
        in_shape = (fo, ho // pl, wo // pl)
    w = rng.normal(0.1, 1.0, size=(n_out, *in_shape))
    q = quantize_layer("fc", w, None, v_threshold=2.0, v_low=-4.0)
    layers.append(SpeckLayer("fc", q.weights, q.biases, q.threshold_high, q.threshold_low, in_shape,
                             return_to_zero=return_to_zero))
    shapes.append(1)
    return SpeckNetwork(layers, (c0, h, h), [0]), shapes


def _sinabs_run(net, pools, x, multi, batch):
    mod = sinabs_dynapcnn().layer
    spikes, states = [], []
    cur = torch.from_numpy(x.reshape(-1, *x.shape[2:]).astype(np.float32))
    for lyr, pool in zip(net.layers, pools):
        f, c, kh, kw = lyr.weights.shape
        conv = torch.nn.Conv2d(c, f, (kh, kw), stride=lyr.stride, padding=lyr.padding, bias=True)
        conv.weight.data = torch.from_numpy(lyr.weights.astype(np.float32))
        conv.bias.data = torch.from_numpy(lyr.biases.astype(np.float32))
        spk = sl.IAFSqueeze(batch_size=batch, spike_threshold=float(lyr.threshold_high),
                            min_v_mem=float(lyr.threshold_low), record_states=True,
                            spike_fn=sa.MultiSpike if multi else sa.SingleSpike,
                            reset_fn=sa.MembraneReset() if lyr.return_to_zero else sa.MembraneSubtract())
        dl = mod.DynapcnnLayer(conv, spk, lyr.input_shape, [[pool, pool]], discretize=False)
        with torch.no_grad():
            out = dl(cur)  # conv -> IAF -> sum pooling (sinabs' own forward)
        states.append(dl.spk_layer.recordings["v_mem"].numpy())
        spikes.append(out)
        cur = out
    return spikes, states


@pytest.mark.parametrize("engine", ["auto", "event", "dense", "numpy"] if kernels.AVAILABLE else ["numpy"])
@_settings(20)
@given(seed=st.integers(0, 2**31 - 1), multi=st.booleans(), rtz=st.booleans(), bias=st.booleans(),
       pool=st.sampled_from([1, 2]), stride=st.sampled_from([1, 2]), rate=st.sampled_from([0.05, 0.4, 1.5]))
def test_simulator_spikes_and_states_equal_sinabs_layers(engine, seed, multi, rtz, bias, pool, stride, rate):
    net, pools = _random_network(seed, multi, rtz, bias, pool, stride)
    batch, steps = 2, 12
    rng = np.random.default_rng(seed + 1)
    x = rng.poisson(rate, size=(batch, steps, *net.input_shape)).astype(np.int64)
    res = simulate(net, x, spike_mode="multi" if multi else "single", record_states=True, engine=engine)
    ref_out, ref_states = _sinabs_run(net, pools, x, multi, batch)
    total = 0
    for lyr, pool, out, v in zip(net.layers, pools, ref_out, ref_states):
        ours = res.spikes[lyr.name]
        b, t, f, h, w = ours.shape
        pooled = ours.reshape(b * t, f, h, w)
        if pool > 1:
            pooled = pooled[:, :, : h // pool * pool, : w // pool * pool].reshape(
                b * t, f, h // pool, pool, w // pool, pool).sum(axis=(3, 5))
        np.testing.assert_array_equal(pooled, out.numpy().astype(np.int64))
        np.testing.assert_array_equal(res.states[lyr.name], v.astype(np.int64))
        total += int(ours.sum())
    assert total > 0, "the random network must spike for this test to mean anything"
