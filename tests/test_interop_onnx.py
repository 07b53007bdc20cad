"""ONNX ANN -> rate-coded IF SNN (data-based normalisation) -> cpu; agreement with the ANN's argmax.

A small conv ANN is trained on a synthetic 4-class bar-orientation task, exported with
``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter works offline with torch 2.13;
the default dynamo exporter needs ``onnxscript``, which is not installed), converted with
:func:`snnc.compiler.frontends.onnx_frontend.from_onnx` and simulated on the cpu target. The
reset-to-zero cost is measured against the same converted network with reset-by-subtraction
(computed here, since NIR's IF cannot express it).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import snnc  # noqa: E402
from snnc.compiler import graph as G  # noqa: E402
from snnc.compiler.frontends.onnx_frontend import ann_forward, from_onnx, rate_code  # noqa: E402
from snnc.errors import SnncError, UnsupportedError  # noqa: E402

log = logging.getLogger(__name__)
DT = 1e-3


def bars(n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Images 1x8x8 with a horizontal, vertical, diagonal or anti-diagonal bar plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.random((n, 1, 8, 8)) * 0.3
    idx = np.arange(8)
    for i in range(n):
        k = rng.integers(1, 7)
        if y[i] == 0:
            x[i, 0, k, :] += 0.7
        elif y[i] == 1:
            x[i, 0, :, k] += 0.7
        elif y[i] == 2:
            x[i, 0, idx, idx] += 0.7
        else:
            x[i, 0, idx, 7 - idx] += 0.7
    return np.clip(x, 0, 1), y


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: torch's threads only contend on the shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(one_thread: None, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, object]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    x, y = bars(512, 0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    for _ in range(120):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
    net.eval()
    path = tmp_path_factory.mktemp("onnx") / "ann.onnx"
    torch.onnx.export(net, torch.zeros(1, 1, 8, 8), str(path), dynamo=False, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE, input_names=["x"], output_names=["y"])
    return {"net": net, "path": path, "x_cal": x[:256]}


def _ann(net: "torch.nn.Module", x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.as_tensor(x, dtype=torch.float32)).numpy()


def subtract_reset_sim(graph: G.Graph, x: np.ndarray) -> np.ndarray:
    """The converted network with reset-by-subtraction (not NIR), for the reset-to-zero cost."""
    import torch.nn.functional as F

    h_in = torch.as_tensor(x)
    state: Dict[str, torch.Tensor] = {}
    out = None
    order = graph.topological_order()
    for t in range(x.shape[1]):
        h = h_in[:, t]
        for n in order:
            node = graph.nodes[n]
            if isinstance(node, G.Affine):
                h = F.linear(h, torch.as_tensor(node.weight), torch.as_tensor(node.bias))
            elif isinstance(node, G.Conv2d):
                h = F.conv2d(h, torch.as_tensor(node.weight), torch.as_tensor(node.bias), stride=node.stride,
                             padding=node.padding)
            elif isinstance(node, G.AvgPool2d):
                h = F.avg_pool2d(h, node.kernel_size, node.stride, node.padding)
            elif isinstance(node, G.Flatten):
                h = h.reshape(h.shape[0], -1)
            elif isinstance(node, G.IF):
                v = state.get(n, torch.zeros_like(h)) + h
                z = (v > 1.0).to(h.dtype)
                state[n] = v - z
                h = z
            elif isinstance(node, G.I):
                state[n] = state.get(n, torch.zeros_like(h)) + h
                h = state[n]
        out = h
    return out.numpy()


def test_onnx_parser_matches_torch(trained: Dict[str, object]) -> None:
    model = onnx.load(str(trained["path"]))
    ops = {n.op_type for n in model.graph.node}
    assert {"Conv", "BatchNormalization", "Relu", "AveragePool", "Flatten", "Gemm"} <= ops, ops
    x, _ = bars(64, 1)
    np.testing.assert_allclose(ann_forward(trained["path"], x), _ann(trained["net"], x), rtol=1e-4, atol=1e-4)


def test_onnx_to_snn_agrees_with_ann(trained: Dict[str, object]) -> None:
    graph = from_onnx(trained["path"], trained["x_cal"], percentile=99.9, dt_s=DT)
    assert sum(isinstance(n, G.IF) for n in graph.nodes.values()) == 3
    assert any("lambda" in n for n in graph.notes)
    art = snnc.compile(graph, target="cpu", dt_s=DT, method="euler")
    prog = snnc.Program(art)
    x, y = bars(200, 2)
    x = np.clip(x + np.random.default_rng(5).random(x.shape) * 0.5, 0, 1)  # extra noise: smaller margins
    ann_logits = _ann(trained["net"], x)
    ann = ann_logits.argmax(1)
    assert (ann == y).mean() >= 0.795, "the ANN must have learnt the task (measured 80.5 %)"
    results = {}
    for steps in (30, 150):
        snn_v = prog.run(rate_code(x, steps)).output[:, -1]
        sub_v = subtract_reset_sim(graph, rate_code(x, steps))
        rel = lambda v: float(np.abs(v / steps - ann_logits).mean() / np.abs(ann_logits).mean())  # noqa: E731
        results[steps] = {"agree_zero": float((snn_v.argmax(1) == ann).mean()),
                          "agree_subtract": float((sub_v.argmax(1) == ann).mean()),
                          "logit_relerr_zero": rel(snn_v), "logit_relerr_subtract": rel(sub_v)}
    log.warning("ONNX->SNN vs ANN (reset-to-zero = NIR IF; reset-by-subtraction for comparison): %s", results)
    r = results[150]
    # measured: agreement 94.0 % (reset to zero) and 98.5 % (subtraction) of 200; thresholds 2 samples below
    assert r["agree_zero"] >= 0.93 and r["agree_subtract"] >= 0.975, results
    # the cost of reset-to-zero: rates stay biased (logit error does not shrink with T), subtraction converges
    # (measured relative logit errors at 150 steps: 0.024 with subtraction, 0.57 with reset to zero)
    assert r["logit_relerr_subtract"] < 0.03 and r["logit_relerr_zero"] > 0.5, results
    assert results[150]["logit_relerr_subtract"] < results[30]["logit_relerr_subtract"], results


def test_onnx_helper_gemm_batchnorm_and_errors(tmp_path: Path) -> None:
    """A hand-built ONNX (Gemm, BatchNormalization, Relu, MatMul+Add); unsupported ops are refused."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(6, 5)), rng.normal(size=6)
    gamma, beta, mean, var = rng.random(6) + 0.5, rng.normal(size=6), rng.normal(size=6), rng.random(6) + 0.5
    w2 = rng.normal(size=(6, 3))
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for a, n in
             [(w1, "w1"), (b1, "b1"), (gamma, "g"), (beta, "be"), (mean, "m"), (var, "v"), (w2, "w2"),
              (np.ones(3), "b2")]]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1, name="fc1"),
             helper.make_node("BatchNormalization", ["h1", "g", "be", "m", "v"], ["h2"], name="bn"),
             helper.make_node("Relu", ["h2"], ["h3"], name="relu"),
             helper.make_node("MatMul", ["h3", "w2"], ["h4"], name="fc2"),
             helper.make_node("Add", ["h4", "b2"], ["y"], name="bias2")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(g)
    x = rng.random((50, 5))
    h = x @ w1.T + b1
    h = np.maximum((h - mean) / np.sqrt(var + 1e-5) * gamma + beta, 0)
    np.testing.assert_allclose(ann_forward(model, x), h @ w2 + 1, rtol=1e-5, atol=1e-5)
    graph = from_onnx(model.SerializeToString(), x, dt_s=DT)
    res = snnc.Program(snnc.compile(graph, target="cpu", dt_s=DT, method="euler")).run(rate_code(x, 200))
    agree = (res.output[:, -1].argmax(1) == (h @ w2 + 1).argmax(1)).mean()
    assert agree >= 0.98, agree  # measured 50 of 50
    # unsupported op, two inputs, garbage bytes, bad calibration shape
    bad = helper.make_graph([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2])], "b",
                            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4])],
                            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2])])
    with pytest.raises(UnsupportedError, match="MaxPool"):
        from_onnx(helper.make_model(bad), np.ones((1, 1, 4)))
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(SnncError):
        from_onnx(str(tmp_path / "junk.onnx"), x)
    with pytest.raises(SnncError, match="calibration"):
        from_onnx(model, np.ones((4, 7)))
