"""Hierarchical NIR: a graph whose nodes are NIRGraphs compiles and runs like its flat twin.

snnTorch's recurrent layers (``RLeaky``, ``RSynaptic``) export as a nested ``NIRGraph``. The file exported here
is compiled as is, compared with snnTorch's own simulation, and with its flat twin (the same network
written back by ``snn-export`` without nesting). The NIR paper's published Braille file
(``paper/03_rnn/extras/braille_noDelay_bias_zero_subgraph.nir`` in neuromorphs/NIR, written by an
earlier snnTorch) keys the subgraph's neuron by the parent's name (``lif1/nodes/lif1``) while its edges
call it ``lif``; the second test renames the node of a fresh export the same way and checks the
import repairs it (the published file itself is not in this repository).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch", reason="installed by scripts/setup_env.sh")
nir = pytest.importorskip("nir")
h5py = pytest.importorskip("h5py")

import snnc  # noqa: E402


def make() -> "torch.nn.Module":
    torch.manual_seed(0)
    kw = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    net = torch.nn.Sequential(torch.nn.Linear(12, 6), snn.RLeaky(beta=0.9, threshold=0.5, linear_features=6, **kw),
                              torch.nn.Linear(6, 4), snn.Synaptic(alpha=0.7, beta=0.8, output=True, **kw))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[1].recurrent.weight.mul_(2.0)
        net[1].recurrent.bias.zero_()
        net[2].weight.mul_(3.0)
    return net


def export(net: "torch.nn.Module", path: Path) -> Path:
    """Write the network with its recurrent layer nested, as snnTorch's exporter builds it.

    ``_extract_snntorch_module`` turns ``RLeaky`` into a ``NIRGraph`` (input, lif, w_rec, output);
    nirtorch 2.6 flattens such graphs on extraction, earlier nirtorch (which wrote the NIR paper's
    files) kept them nested. The top level is assembled from the exporter's own node conversions.
    """
    from snntorch.export_nir import _extract_snntorch_module

    nodes = {"input": nir.Input(input_type={"input": np.array([12])}),
             "output": nir.Output(output_type={"output": np.array([4])})}
    for i, m in enumerate(net):
        nodes[str(i)] = _extract_snntorch_module(m)
    assert isinstance(nodes["1"], nir.NIRGraph), "the recurrent layer exports as a nested graph"
    edges = [("input", "0"), ("0", "1"), ("1", "2"), ("2", "3"), ("3", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    for node in [graph, nodes["1"]]:
        for n in node.nodes.values():  # nir.write cannot store 0-d arrays
            for k, v in list(vars(n).items()):
                if isinstance(v, np.ndarray) and v.ndim == 0:
                    setattr(n, k, v.reshape(1))
    nir.write(str(path), graph)
    return path


def run_snntorch(net: "torch.nn.Module", x: np.ndarray) -> np.ndarray:
    from snntorch import utils

    utils.reset(net)
    with torch.no_grad():
        return np.stack([net(torch.as_tensor(x[:, t], dtype=torch.float32))[0].numpy() for t in range(x.shape[1])], 1)


def spikes() -> np.ndarray:
    return (np.random.default_rng(0).random((3, 60, 12)) < 0.3).astype(np.float64)


def test_nested_snntorch_export_equals_snntorch_and_its_flat_twin(tmp_path: Path) -> None:
    net = make()
    path = export(net, tmp_path / "nested.nir")
    x = spikes()
    ref = run_snntorch(net, x)
    assert ref.sum() >= 10
    nested = snnc.compile(str(path), target="cpu")  # identified as snnTorch's convention from its parameters
    assert nested.manifest["time_base"]["dt_source"].startswith("snntorch convention")
    out = snnc.Program(nested).run(x, record=True)
    np.testing.assert_array_equal(out.output, ref)
    from snnc.runtime.export import write_artifact_nir

    flat_path = write_artifact_nir(nested, str(tmp_path / "flat.nir"))
    with h5py.File(flat_path, "r") as f:
        assert all(f[f"node/nodes/{k}/type"][()] != b"NIRGraph" for k in f["node/nodes"])
    flat = snnc.Program(snnc.compile(flat_path, target="cpu")).run(x)
    np.testing.assert_array_equal(flat.output, out.output)


def test_subgraph_whose_edges_misname_its_neuron_is_repaired(tmp_path: Path) -> None:
    net = make()
    path = export(net, tmp_path / "nested.nir")
    x = spikes()
    ref = snnc.Program(snnc.compile(str(path), target="cpu")).run(x, record=True)
    with h5py.File(path, "r+") as f:
        sub = [k for k in f["node/nodes"] if f[f"node/nodes/{k}/type"][()] == b"NIRGraph"][0]
        inner = f[f"node/nodes/{sub}/nodes"]
        neuron = [k for k in inner if inner[k]["type"][()] not in (b"Input", b"Output", b"Linear", b"Affine")][0]
        inner.move(neuron, sub)  # the neuron keyed by the parent's name, edges still say the old one
    art = snnc.compile(str(path), target="cpu")
    assert any("renamed to" in n for n in art.report["notes"])
    res = snnc.Program(art).run(x, record=True)
    np.testing.assert_array_equal(res.output, ref.output)
    assert sorted(res.spike_counts) == sorted(ref.spike_counts)
