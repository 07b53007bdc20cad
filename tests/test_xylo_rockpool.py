"""Rockpool's NIR route to Xylo: a Rockpool network exported with ``to_nir`` compiles for Xylo, and
Rockpool's own mapper + quantiser produce the same configuration; XyloSim runs it as snnc's simulator does.

Rockpool side: ``net.as_graph()`` -> ``syns61201.mapper`` (float spec) -> ``channel_quantize`` /
``global_quantize`` (``rockpool/transform/quantize_methods.py``). snnc side: ``to_nir`` file ->
``snnc.compile(..., framework="rockpool", target="xylo")`` with Rockpool's conventions
(``threshold_rounding="round"``: Rockpool fires at ``v >= th``; ``dash_from="tau"``:
``round(log2(tau/dt))``; ``weight_shift=0``). snnc's defaults differ from Rockpool on purpose
(strict NIR threshold, the dash nearest the discretised decay, an automatic weight shift):
:func:`test_default_options_differ_only_as_documented` pins down by how much.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

import snnc  # noqa: E402
from snnc.targets.xylo.simulator import simulate  # noqa: E402
from snnc.targets.xylo.target import network_from_payload  # noqa: E402
from xylo_helpers import rockpool_xylo, xylosim_run  # noqa: E402

FIELDS = ("weights_in", "weights_out", "threshold", "threshold_out", "dash_mem", "dash_syn", "dash_mem_out",
          "dash_syn_out")
ROCKPOOL_OPTIONS = {"threshold_rounding": "round", "dash_from": "tau", "weight_shift": 0}


def rockpool_net(seed: int, n_in: int = 12, n_hidden: int = 20, n_out: int = 6):
    """A Rockpool LinearTorch -> LIFTorch -> LinearTorch -> LIFTorch network (per-neuron taus and thresholds)."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    return Sequential(
        LinearTorch((n_in, n_hidden), has_bias=False),
        LIFTorch(n_hidden, tau_mem=0.005 + 0.05 * torch.rand(n_hidden, generator=g),
                 tau_syn=0.002 + 0.02 * torch.rand(n_hidden, generator=g),
                 threshold=0.5 + torch.rand(n_hidden, generator=g)),
        LinearTorch((n_hidden, n_out), has_bias=False),
        LIFTorch(n_out, tau_mem=0.01, tau_syn=0.004, threshold=torch.full((n_out,), 0.9)))


def both_ways(net, path: Path, method: str, **options):
    """Return (Rockpool's quantised spec, snnc's XyloNetwork, the artifact) for ``net``."""
    from rockpool.nn.modules import to_nir
    from rockpool.transform.quantize_methods import channel_quantize, global_quantize

    mods = rockpool_xylo()
    nir.write(str(path), to_nir(net))
    spec = mods["syns61201.xylo_mapper"].mapper(net.as_graph(), weight_dtype="float", threshold_dtype="float",
                                                dash_dtype="float")
    q = {"channel": channel_quantize, "global": global_quantize}[method](**spec)
    art = snnc.compile(str(path), target="xylo", framework="rockpool", quantize=method, **options)
    return {**spec, **q}, network_from_payload(art.payload)[0], art


@pytest.mark.parametrize("method", ["channel", "global"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rockpool_mapper_and_quantiser_agree(tmp_path: Path, method: str, seed: int) -> None:
    q, net, art = both_ways(rockpool_net(seed), tmp_path / "net.nir", method, **ROCKPOOL_OPTIONS)
    for k in FIELDS:
        ours = getattr(net, k)
        if k == "weights_in":
            ours = ours[:, :, 0]
        np.testing.assert_array_equal(ours, np.asarray(q[k]).reshape(ours.shape), err_msg=k)
    np.testing.assert_array_equal(net.weights_rec, 0)
    assert art.report["latency_steps"] == 1


def test_xylosim_on_rockpools_spec_equals_snnc_on_the_nir_file(tmp_path: Path) -> None:
    """XyloSim built from Rockpool's own spec runs like snnc's simulator on the compiled NIR file."""
    q, net, _ = both_ways(rockpool_net(4), tmp_path / "net.nir", "channel", **ROCKPOOL_OPTIONS)
    XyloSim = rockpool_xylo()["syns61201.xylo_sim"].XyloSim
    spec = {k: np.asarray(q[k]) for k in FIELDS + ("weights_rec", "dash_syn_2")}
    sim = XyloSim.from_specification(**spec, dt=1e-3)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(60, 12))
    out, _, rec = sim(x, record=True)
    ours = simulate(net, x[None], record=True)
    np.testing.assert_array_equal(ours.output[0], out)
    np.testing.assert_array_equal(ours.states["Vmem"][0], rec["Vmem"])
    assert int(out.sum()) > 0 and int(rec["Spikes"].sum()) > 0  # the comparison saw activity
    np.testing.assert_array_equal(xylosim_run(net, x)["output"], out)


def test_default_options_differ_only_as_documented(tmp_path: Path) -> None:
    """snnc's defaults: thresholds floor(th*S)+1 (strict) instead of round(th*S), dash from the decay, a shift."""
    netr = rockpool_net(5)
    q, strict, _ = both_ways(netr, tmp_path / "a.nir", "channel", weight_shift=0)
    for k in ("threshold", "threshold_out"):
        d = getattr(strict, k) - np.asarray(q[k])
        assert set(np.unique(d)) <= {0, 1}, k  # strict is round + 0 or 1
    for k in ("weights_in", "weights_out"):
        ours = getattr(strict, k)[:, :, 0] if k == "weights_in" else getattr(strict, k)
        np.testing.assert_array_equal(ours, np.asarray(q[k]).reshape(ours.shape))
    # dash: nearest the exact decay exp(-dt/tau) in log2 vs Rockpool's log2(tau/dt): at most 1 apart
    for k in ("dash_mem", "dash_syn"):
        assert np.max(np.abs(getattr(strict, k) - np.asarray(q[k]))) <= 1
    _, auto, art = both_ways(netr, tmp_path / "b.nir", "channel")
    assert auto.weight_shift_in == art.report["chip"]["weight_shift"]["in"] >= 0


def test_rockpool_nir_file_compiles_from_the_command_line(tmp_path: Path, cli) -> None:
    from rockpool.nn.modules import to_nir

    path = tmp_path / "rp.nir"
    nir.write(str(path), to_nir(rockpool_net(6)))
    r = cli("snn-compile", str(path), "--target", "xylo", "--framework", "rockpool", "-o", str(tmp_path / "rp.snnc"))
    assert r.returncode == 0, r.stderr
    assert "spikes per step allowed in the graph" in r.stderr  # the chip's spike limits are reported
