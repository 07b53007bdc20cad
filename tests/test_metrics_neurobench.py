"""snnc's synaptic operations, activation sparsity and MFLOPs against NeuroBench 2.3.0's own metric code.

The reference is NeuroBench (``neurobench.benchmarks.Benchmark`` with its ``SynapticOperations``
and ``ActivationSparsity`` workload metrics and ``ChooseMaxCount`` post-processor), run on the
shipped zoo checkpoints and real held-out N-MNIST recordings, as a NeuroBench user runs it. The
numbers compared are snnc's :class:`snnc.models.metrics.ActivityRecorder` figures (the
``MFLOPs``/``synops``/``NASFR`` of the README tables).

Definitions that differ (documented in the README, "Metrics and NeuroBench"):

* NeuroBench decides AC or MAC once per layer call (a whole batch at one step): the call is ACs
  when every input is 0 or +-1, else every operation of the call is a MAC. snnc decides per input
  element (a count of 2 drives MACs, a 1 in the same frame ACs). The totals
  (``Effective_ACs + Effective_MACs`` = snnc ``synops``) are equal; the split is equal where the
  inputs are binary.
* NeuroBench's activation sparsity counts the outputs of every registered activation module
  (by default every ``nn.ReLU`` and ``nn.Sigmoid``, e.g. the ReLU in ASA's time FC); snnc's
  ``1 - NASFR`` counts spiking populations only (the LI readout's voltage is not a spike): equal
  when only the spiking neuron classes are registered with NeuroBench, as here.
* NeuroBench sees only ``nn.Linear``/``nn.Conv*`` layers: the minimum-latency net's
  multi-receptive conv (one merged 5x5 kernel) is invisible to it, so it is compared on an
  ``nn.Conv2d`` copy holding the merged kernel.
* MFLOPs (SkipSNN's unit) = snnc synops / 1e6; NeuroBench has no MFLOPs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import pytest
import torch
from torch import nn

from snnc.models.checkpoint import load_torch_file
from snnc.models.data.nmnist import nmnist_small_dir
from snnc.models.metrics import ActivityRecorder
from snnc.models.neurons import IF, LIF, Threshold, run_sequence

from neurobench.benchmarks import Benchmark  # scripts/setup_env.sh: neurobench==2.3.0 --no-deps
from neurobench.metrics.workload import ActivationSparsity, ClassificationAccuracy, SynapticOperations
from neurobench.models import TorchModel
from neurobench.processors.postprocessors import ChooseMaxCount

CKPT_DIR = Path(__file__).resolve().parents[1] / "snnc" / "models" / "checkpoints"
N_SAMPLES = 8
needs_data = pytest.mark.skipif(not (nmnist_small_dir() / "labels.txt").is_file(),
                                reason=f"real N-MNIST-small data not found at {nmnist_small_dir()} (set SNNC_DATA)")


class _Sequence(nn.Module):
    """A NeuroBench-callable wrapper: (batch, T, ...) -> output (batch, T, classes)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self.net, "forward_sequence"):
            return self.net.forward_sequence(x)[0]
        return run_sequence(self.net, x)


def _merged_conv_copy(model: nn.Module) -> nn.Module:
    """Return ``model`` with every multi-receptive conv replaced by an ``nn.Conv2d`` of its merged kernel."""
    from snnc.models.minlatency import MultiReceptiveConv2d

    layers = []
    for m in model:
        if isinstance(m, MultiReceptiveConv2d):
            w = m.merged_weight().detach()
            conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride=m.stride, padding=2, bias=False,
                             dtype=w.dtype)
            conv.weight.data.copy_(w)
            m = conv
        layers.append(m)
    from snnc.models.zoo import SequentialSNN

    return SequentialSNN(model.input_shape, *layers).eval()


def _data(ckpt: str) -> Tuple[np.ndarray, np.ndarray]:
    from snnc.models.train import load_data

    d = torch.load(CKPT_DIR / ckpt, map_location="cpu", weights_only=True)["extra"]["data"]
    _, val, _ = load_data(d["data"], d["dt_us"], d["n_steps"], d["val_fraction"], d["split_seed"], 0, N_SAMPLES)
    return val.batch(np.arange(N_SAMPLES))


def _neurobench(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int) -> Dict[str, Any]:
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)
    nb_model = TorchModel(_Sequence(model))
    # spiking populations only: not the LI readout, nor NeuroBench's defaults ReLU and Sigmoid (the
    # ReLU inside ASA's time FC would count as an activation layer)
    nb_model.activation_modules = [LIF, IF, Threshold]
    bench = Benchmark(nb_model, loader, [], [ChooseMaxCount()],
                      [[], [SynapticOperations, ActivationSparsity, ClassificationAccuracy]])
    with torch.no_grad():
        return bench.run(quiet=True)


def _snnc(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int) -> Dict[str, Any]:
    from snnc.models.metrics import ActivityStats, count_predictions

    stats, correct = ActivityStats(), 0
    for a in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[a:a + batch_size])
        with torch.no_grad(), ActivityRecorder(model) as rec:
            out = _Sequence(model)(xb)
        stats.merge(rec.stats(samples=xb.shape[0], steps=xb.shape[1]))
        correct += int((count_predictions(out) == y[a:a + batch_size]).sum())
    s = stats.summary()
    s["accuracy"] = correct / len(x)
    return s


#: Shipped checkpoints compared (the claims' models and baselines among them).
CHECKPOINTS = ["nmnist_mlp.pt", "nmnist_cnn.pt", "skipsnn.pt", "asa_snn_static.pt", "claims/asa_snn.pt",
               "claims/asa_snn_vanilla.pt", "minlatency_cnn.pt", "claims/minlatency_plain_t4.pt"]


@needs_data
@pytest.mark.parametrize("ckpt", CHECKPOINTS)
def test_synops_sparsity_and_accuracy_equal_neurobench(ckpt: str) -> None:
    model, _ = load_torch_file(str(CKPT_DIR / ckpt))
    model = model.double().eval()
    x, y = _data(ckpt)
    x = x.astype(np.float64)
    batch = 4
    ours = _snnc(model, x, y, batch)
    nb_net = _merged_conv_copy(model) if ckpt.startswith("minlatency_cnn") else model
    nb = _neurobench(nb_net, x, y, batch)
    syn = nb["SynapticOperations"]
    # totals: effective ACs + MACs per sample are the same count
    assert ours["synops"] > 0
    assert syn["Effective_ACs"] + syn["Effective_MACs"] == pytest.approx(ours["synops"], rel=1e-12, abs=1e-9)
    assert ours["mflops"] == pytest.approx(ours["synops"] / 1e6)
    binary_input = bool(np.all((x == 0) | (x == 1)))
    if binary_input:  # then both split AC/MAC the same way
        assert syn["Effective_ACs"] == pytest.approx(ours["acs"], abs=1e-9)
        assert syn["Effective_MACs"] == pytest.approx(ours["macs"], abs=1e-9)
    else:  # NeuroBench charges a whole call with one count > 1 as MACs: never fewer MACs than snnc
        assert syn["Effective_MACs"] >= ours["macs"] - 1e-9
    # activation sparsity = 1 - NASFR over the spiking populations
    assert nb["ActivationSparsity"] == pytest.approx(ours["activation_sparsity"], abs=1e-12)
    assert nb["ClassificationAccuracy"] == pytest.approx(ours["accuracy"])
    # "Dense" differs by definition (README): NeuroBench counts every weight, zero or not, on in-bounds
    # inputs; snnc's dense_macs counts non-zero weights over the full kernel, padding included
    assert syn["Dense"] > 0 and ours["dense_macs"] > 0


@needs_data
def test_neurobench_count_input_differs_only_in_the_ac_mac_split() -> None:
    """On event counts (values > 1) NeuroBench moves whole calls to MACs; snnc splits per element."""
    model, _ = load_torch_file(str(CKPT_DIR / "nmnist_mlp.pt"))
    model = model.double().eval()
    x, y = _data("nmnist_mlp.pt")
    x = x.astype(np.float64)
    assert np.any(x > 1), "the nmnist_mlp data are event counts"
    ours = _snnc(model, x, y, 4)
    nb = _neurobench(model, x, y, 4)["SynapticOperations"]
    assert ours["macs"] > 0 and ours["acs"] > 0
    assert nb["Effective_MACs"] > ours["macs"]
    assert nb["Effective_ACs"] + nb["Effective_MACs"] == pytest.approx(ours["synops"], rel=1e-12)
