"""NIR import repairs for files as exporters write them (each repair is noted in the report)."""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest

import snnc
from snnc.compiler.frontends.conventions import adapt, convention, framework_names
from snnc.errors import InputError, SnncError


def _lif(shape: tuple, thr: np.ndarray) -> nir.LIF:
    return nir.LIF(tau=np.full(shape, 0.02), r=np.ones(shape), v_leak=np.zeros(shape), v_threshold=thr,
                   v_reset=np.zeros(shape))


@pytest.mark.parametrize("in_shape", [(4, 2, 6, 6), (1, 2, 6, 6)])
def test_batched_conv_input_and_per_channel_thresholds(tmp_path: Path, in_shape: tuple) -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2, 3, 3))
    thr = np.array([0.2, 0.5, 1.0]).reshape(3, 1, 1)  # per channel, broadcast by the exporter's framework
    nodes = {"in": nir.Input(np.array(in_shape)),
             "conv": nir.Conv2d(input_shape=None, weight=w, stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(3)),
             "lif": nir.LIF(tau=np.full((3, 1, 1), 0.02), r=np.ones((3, 1, 1)), v_leak=np.zeros((3, 1, 1)),
                            v_threshold=thr, v_reset=np.zeros((3, 1, 1))),
             "out": nir.Output(np.array([3, 6, 6]))}
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "conv"), ("conv", "lif"), ("lif", "out")], type_check=False)
    art = snnc.compile(graph, target="cpu", dt_s=1e-3)
    notes = " ".join(art.report["notes"])
    assert "dropped batch dimension" in notes and "per-channel" in notes and "uniform per-neuron" in notes
    assert art.manifest["input_shape"] == [2, 6, 6]
    x = (rng.random((2, 20, 2, 6, 6)) < 0.4).astype(float)
    res = snnc.Program(art).run(x, record=True)
    # the reference: the same LIF with the threshold array expanded by hand
    thr_full = np.broadcast_to(thr, (3, 6, 6)).copy()
    nodes["lif"] = _lif((3, 6, 6), thr_full)
    nodes["in"] = nir.Input(np.array([2, 6, 6]))
    ref = snnc.Program(snnc.compile(nir.NIRGraph(nodes=nodes, edges=[("in", "conv"), ("conv", "lif"), ("lif", "out")],
                                                 type_check=False), target="cpu", dt_s=1e-3)).run(x)
    np.testing.assert_array_equal(res.output, ref.output)
    assert ref.output.sum() > 0


def test_batched_input_before_flatten_and_dense() -> None:
    w = np.random.default_rng(1).normal(size=(5, 2 * 4 * 4))
    graph = nir.NIRGraph(nodes={"in": nir.Input(np.array([8, 2, 4, 4])),
                                "flat": nir.Flatten(input_type={"input": np.array([8, 2, 4, 4])}, start_dim=0, end_dim=-1),
                                "fc": nir.Affine(w, np.zeros(5)), "out": nir.Output(np.array([5]))},
                         edges=[("in", "flat"), ("flat", "fc"), ("fc", "out")], type_check=False)
    art = snnc.compile(graph, target="cpu")
    assert art.manifest["input_shape"] == [2, 4, 4]
    x = np.random.default_rng(2).random((1, 3, 2, 4, 4))
    np.testing.assert_allclose(snnc.Program(art).run(x).output, x.reshape(1, 3, -1) @ w.T)


def test_zero_input_dimension_is_refused() -> None:
    graph = nir.NIRGraph(nodes={"in": nir.Input(np.array([0, 4])), "out": nir.Output(np.array([4]))},
                         edges=[("in", "out")], type_check=False)
    with pytest.raises(InputError, match="zero or negative"):
        snnc.compile(graph, target="cpu")


def test_convention_table() -> None:
    assert set(framework_names()) >= {"snntorch", "norse", "sinabs", "spikingjelly", "snnc"}
    assert convention("snnTorch") == (1e-4, "euler")
    assert convention("sinabs") == (1.0, "exact")
    g = snnc.load_model(nir.NIRGraph(nodes={"in": nir.Input(np.array([2])), "out": nir.Output(np.array([2]))},
                                     edges=[("in", "out")], type_check=False))
    assert adapt(g, "snntorch").nodes.keys() == g.nodes.keys()
    with pytest.raises(SnncError, match="export time step"):
        adapt(g, "norse", export_dt_s=-1.0)
