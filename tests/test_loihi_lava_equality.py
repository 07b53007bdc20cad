"""The Loihi reference simulator against Lava's own fixed_pt CPU models (lava-nc 0.10), state for state, at volume.

Every run compares :data:`PLAN`'s random networks (109) with Lava: spikes, ``u`` and ``v`` of every
layer at every step, for every engine and code path of the reference simulator (the numba kernels,
their output-chunked layout, the numpy engine, its row-chunked conv sums, the general-graph runner).
The networks come from one seed (``$SNNC_LAVA_SEED``, default :data:`DEFAULT_SEED`; ``random`` draws
one): case ``i`` is rebuilt alone by ``build_case(seed, i)``, and a failure prints the seed, the case
and how to rerun it. Families: dense chains in every sign mode and weight precision, forced u wrapping,
v saturation and int32 channel wraps; conv -> pool -> flatten -> dense with random strides, paddings,
dilations and groups; host-side bias onsets; recurrent and multi-input graphs with readouts; gated
graphs (a Threshold gate opened by a controller) and pooling composed into conv / affine synapses, both
compiled from graphs by snnc; small torch CNNs compiled by snnc; and networks at the sizes where the
compiled kernels switch paths (wide dense layers, whose steps go event-driven or dense by input
count; conv sums near the int32 limit). The kernels' int64 accumulators serve dense layers with over
2**31 / 256 inputs, which Lava cannot run in a test (and conv sums that large are refused by
validation), so every chain also runs with those accumulators forced.

Lava builds one OS process per Lava process and synchronises them every step, so a network costs
about a second; the cases are split over :data:`WORKERS` concurrent worker calls (one Lava
interpreter each, every case of a call run in it in turn).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Set, Tuple

import numpy as np
import pytest

from loihi_helpers import lava_missing_reason, random_conv_net, random_dense_chain, random_spikes
from snnc.targets.loihi import kernels, numpy_engine
from snnc.targets.loihi.lava_backend import run_lava_many
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork
from snnc.targets.loihi.simulator import V_MAX, LoihiSimulator, SimResult

LAVA_MISSING = lava_missing_reason()
pytestmark = pytest.mark.skipif(bool(LAVA_MISSING), reason=LAVA_MISSING or "lava present")

SEED_ENV = "SNNC_LAVA_SEED"
DEFAULT_SEED = 19
#: Concurrent Lava worker calls (``$SNNC_LAVA_WORKERS``).
WORKERS = int(os.environ.get("SNNC_LAVA_WORKERS", "2"))
#: (family, number of networks), in case order.
PLAN: List[Tuple[str, int]] = [
    ("dense", 20), ("wrap_u", 9), ("saturate_v", 9), ("int32", 7), ("conv", 13), ("onset", 7), ("onset_conv", 5),
    ("recurrent", 8), ("dag", 5), ("gated", 6), ("poolfold", 5), ("torch_cnn", 5), ("wide_dense", 6),
    ("big_conv", 4),
]
FAMILIES: List[str] = [f for f, n in PLAN for _ in range(n)]
BATCH = 2  # every network runs two samples: the reset between samples is compared too


@dataclass
class Case:
    """One random network, its input spikes and what it is meant to exercise."""

    index: int
    family: str
    net: LoihiNetwork
    x: np.ndarray
    notes: List[str] = field(default_factory=list)


def seed_from_env() -> int:
    """Return the run's seed: ``$SNNC_LAVA_SEED``, a fresh one for ``random``, else :data:`DEFAULT_SEED`."""
    env = os.environ.get(SEED_ENV, "").strip()
    if env == "random":
        return int(np.random.SeedSequence().entropy % (2 ** 31))
    return int(env) if env else DEFAULT_SEED


def _onsets(net: LoihiNetwork, rng: np.random.Generator) -> LoihiNetwork:
    """Switch each layer's bias on later (host-side schedule); the first layer at its lag 1."""
    for i, ly in enumerate(net.layers):
        if ly.has_neurons:
            ly.bias_onset_step = 1 if i == 0 else int(rng.integers(0, 6))
            if not np.any(np.asarray(ly.bias_mant) != 0):
                ly.bias_mant = np.asarray(int(rng.integers(1, 50)))
    return net


def _compiled(graph_or_model: Any, **kw: Any) -> Tuple[LoihiNetwork, List[str]]:
    import snnc
    from snnc.targets.loihi.target import network_from_payload

    art = snnc.compile(graph_or_model, target="loihi", dt_s=1e-3, **kw)
    net, _ = network_from_payload(art.payload)
    return net, list(art.manifest["report"].get("loihi_notes", []))


def _torch_cnn(rng: np.random.Generator) -> Any:
    """A small conv -> LIF -> avg-pool -> IF -> linear -> LIF torch model with random weights (snnc's modules)."""
    import torch
    from torch import nn

    from snnc.models.neurons import IF, LIF

    torch.manual_seed(int(rng.integers(0, 2 ** 31)))
    c, h = int(rng.integers(2, 5)), 2 * int(rng.integers(3, 5))
    m = nn.Sequential(nn.Conv2d(2, c, 3, padding=1), LIF.from_beta((c, h, h), beta=float(rng.uniform(0.5, 0.95)),
                                                                    v_threshold=0.5),
                      nn.AvgPool2d(2), IF((c, h // 2, h // 2), v_threshold=0.4), nn.Flatten(),
                      nn.Linear(c * (h // 2) ** 2, 5), LIF.from_beta((5,), beta=0.9, v_threshold=0.3))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(float(rng.uniform(1.5, 3.0)))
    return m, (2, h, h)


def _big_conv(rng: np.random.Generator) -> LoihiNetwork:
    """conv with weights up to 2**26: sums near the int32 limit Lava casts to (27 * 2**26 < 2**31), 24-bit wraps."""
    hi = 1 << 26
    c1 = LoihiLayer.conv("c1", rng.integers(-hi, hi, (4, 3, 3, 3)), (3, 7, 8), source=-1, padding=1,
                         stride=int(rng.integers(1, 3)), du=int(rng.integers(0, 4097)), dv=int(rng.integers(0, 4097)),
                         vth_mant=int(rng.integers(0, 1 << 16)), bias_mant=int(rng.integers(-100, 100)), bias_exp=6)
    p = LoihiLayer.pool("p", c1.output_shape, 2, int(rng.integers(1, 100)), source=0, du=100, dv=0, vth_mant=20)
    f = LoihiLayer.flatten("f", p.output_shape, source=1)
    d = LoihiLayer.dense("d", rng.integers(-256, 256, (6, f.output_shape[0])), source=2, weight_exp=-1, du=10,
                         dv=300, vth_mant=5, bias_mant=rng.integers(-9, 9, 6), bias_exp=2)
    return LoihiNetwork((3, 7, 8), [c1, p, f, d], name="big_conv")


def build_case(seed: int, index: int) -> Case:
    """Return case ``index`` of the run with ``seed`` (depends on nothing else)."""
    from test_loihi_graphs import gated_graph, random_multi_input_net, random_recurrent_net
    from test_loihi_poolfold import pooled_graph

    family = FAMILIES[index]
    rng = np.random.default_rng([seed, index])
    notes: List[str] = []
    steps = int(rng.integers(20, 50))
    density = None
    if family in ("dense", "wrap_u", "saturate_v", "int32", "onset"):
        sizes = [int(s) for s in rng.integers(1, 41, int(rng.integers(2, 5)))]
        if family != "dense":  # big enough that the forced regime surely shows up
            sizes = [max(s, 4) for s in sizes]
        net = random_dense_chain(rng, sizes, "normal" if family == "onset" else family)
        if family == "onset":
            net = _onsets(net, rng)
    elif family in ("conv", "onset_conv"):
        net = random_conv_net(rng)
        if family == "onset_conv":
            net = _onsets(net, rng)
    elif family == "recurrent":
        net = random_recurrent_net(rng, big=bool(rng.random() < 0.5))
    elif family == "dag":
        net = random_multi_input_net(rng)
    elif family == "gated":
        net, notes = _compiled(gated_graph(rng, int(rng.integers(6, 16)), int(rng.integers(6, 14)),
                                           int(rng.integers(2, 6))))
        steps, density = 40, 0.5
    elif family == "poolfold":
        net, notes = _compiled(pooled_graph(rng))
        density = 0.4
    elif family == "torch_cnn":
        model, shape = _torch_cnn(rng)
        net, notes = _compiled(model, input_shape=shape)
        density = 0.3
    elif family == "wide_dense":  # big enough for the numpy engine's GEMM and the kernels' dense steps
        net = random_dense_chain(rng, [int(rng.integers(350, 500)), int(rng.integers(250, 320)), 10], "normal")
        steps, density = 50, float(rng.choice([0.01, 0.05, 0.2, 0.5]))
    elif family == "big_conv":
        net = _big_conv(rng)
        density = 0.35
    else:  # pragma: no cover - PLAN and this function list the same families
        raise AssertionError(family)
    return Case(index, family, net, random_spikes(rng, net, BATCH, steps, density), notes)


def references(net: LoihiNetwork, x: np.ndarray) -> Iterator[Tuple[str, SimResult, Any]]:
    """Run the reference simulator every way it can run this network; yield (label, result, simulator)."""
    chain = net.is_chain_like()
    engines = ["numba", "numpy"] if chain else ["numpy"]
    for engine in engines:
        sim = LoihiSimulator(net, engine=engine)
        yield engine, sim.run(x, record_states=True), sim
    if chain:  # the int64-accumulator variant of the kernels (chosen when a sum can reach 2**31)
        sim = LoihiSimulator(net, engine="numba")
        for kl in sim._klayers or []:
            if kl is not None:
                kl.acc_dtype = np.int64
        yield "numba, int64 accumulators", sim.run(x, record_states=True), sim
    with pytest.MonkeyPatch.context() as mp:  # small chunks on small layers: the paths large layers take
        mp.setattr(numpy_engine, "_MAX_CHUNK_BYTES", 512)  # numpy engine: conv sums in row chunks
        mp.setattr(kernels, "KERNEL_CHUNK_BYTES", 64)  # numba engine: dense layers in output chunks
        for engine in engines:
            sim = LoihiSimulator(net, engine=engine)
            yield f"{engine}, chunked", sim.run(x, record_states=True), sim


def _kernel_steps(sim: LoihiSimulator, x: np.ndarray, ref: SimResult) -> Set[str]:
    """Which per-step paths the numba kernel took in dense layers (kernels._sample's cost model)."""
    seen: Set[str] = set()
    if sim._klayers is None:
        return seen
    for i, (ly, kl) in enumerate(zip(sim.net.layers, sim._klayers)):
        if kl is None:
            continue
        if kl.acc_dtype == np.int64:
            seen.add("int64 accumulators")
        if kl.wr.shape[0] > 1:
            seen.add("output chunks")
        if ly.kind != "dense" or kl.wt.shape[0] == 0:
            continue
        src = x if ly.source < 0 else ref.spikes[ly.source]
        counts = src.reshape(src.shape[0], src.shape[1], -1).sum(axis=2)[:, :-1]
        dense = counts * (8.0 + 0.06 * kl.chunk) > 0.025 * kl.wt.shape[1] * kl.wt.shape[2]
        if dense.any():
            seen.add("dense kernel steps")
        if (~dense & (counts > 0)).any():
            seen.add("event kernel steps")
    return seen


def _coverage(case: Case, label: str, ref: SimResult, sim: LoihiSimulator) -> Set[str]:
    seen: Set[str] = set()
    net = case.net
    for i, ly in enumerate(net.layers):
        if not ly.has_neurons:
            continue
        umax = int(np.abs(ref.u[i]).max()) if ref.u[i].size else 0
        if umax > (1 << 23) // 2:
            seen.add("large u")
        if umax > (1 << 24):
            seen.add("int32 u")
        if ref.v[i].size and (int(ref.v[i].max()) == V_MAX or int(ref.v[i].min()) == -V_MAX):
            seen.add("saturated v")
        spiked = bool(ref.spikes[i].any())
        if spiked:
            seen.add("spikes")
            if ly.kind in ("conv", "pool"):
                seen.add(f"{ly.kind} spikes")
            if any(s >= i for s in ly.sources):
                seen.add("recurrent spikes")
            if ly.extra_inputs:
                seen.add("summed-input spikes")
            if ly.name == "gate" and not ref.spikes[i].all():
                seen.add("gate opens and closes")
        if ly.du in (0, 4096) or ly.dv in (0, 4096):
            seen.add("extreme decay")
        if ly.delayed_bias:
            seen.add("bias onset")
        if ly.readout:
            seen.add("readout")
    if any("composed" in n for n in case.notes):
        seen.add("composed pooling")
    if label.startswith("numba"):
        seen |= _kernel_steps(sim, case.x, ref)
    if label == "numpy" and net.is_chain_like():  # which dense sum the numpy engine chose
        for pl in sim.layers:
            kern = pl.kernel
            if not isinstance(kern, numpy_engine.DenseKernel):
                continue
            src = case.x if pl.layer.source < 0 else ref.spikes[pl.layer.source]
            rows = np.moveaxis(src, 1, 0)[:-1].reshape(-1, kern.k)
            if kern._use_gather(rows):
                seen.add("numpy-engine gather")
            elif kern._w_t is not None and rows.shape[0] * kern.k * kern.n >= numpy_engine._TORCH_GEMM_MIN:
                seen.add("numpy-engine GEMM")
    return seen


def _mismatch(case: Case, label: str, ref: SimResult, got: Any) -> str:
    for i, ly in enumerate(case.net.layers):
        if not ly.has_neurons:
            continue
        for key, a, b in (("spikes", ref.spikes[i], got.spikes[i]), ("u", ref.u[i], got.u[i]),
                          ("v", ref.v[i], got.v[i])):
            if b is None or a.shape != b.shape or not np.array_equal(a, b):
                where = "shape" if b is None or a.shape != b.shape else \
                    f"first at (sample, step, neuron) {tuple(int(k) for k in np.argwhere(a != b)[0][:3])}"
                return (f"layer {i} '{ly.name}' ({ly.kind}: du={ly.du} dv={ly.dv} vth={ly.vth_mant} "
                        f"w_exp={ly.weight_exp} bits={ly.num_weight_bits} {ly.sign_mode} "
                        f"onset={ly.bias_onset_step}): {key} differs, {where}")
    return ""


REQUIRED = {"large u", "int32 u", "saturated v", "spikes", "conv spikes", "pool spikes", "recurrent spikes",
            "summed-input spikes", "gate opens and closes", "extreme decay", "bias onset", "readout",
            "composed pooling", "int64 accumulators", "output chunks", "dense kernel steps", "event kernel steps",
            "numpy-engine GEMM", "numpy-engine gather"}


def test_reference_equals_lava_on_random_networks(ci_summary: Any) -> None:
    seed = seed_from_env()
    t0 = time.perf_counter()
    cases = [build_case(seed, i) for i in range(len(FAMILIES))]
    assert len(cases) >= 100
    # deal the cases over the workers by estimated cost (Lava processes x steps)
    order = sorted(cases, key=lambda c: -len(c.net.layers) * c.x.shape[1])
    shares: List[List[Case]] = [order[w::WORKERS] for w in range(WORKERS)]
    t1 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outs = list(pool.map(lambda share: run_lava_many([(c.net, c.x) for c in share], record_states=True,
                                                         timeout_s=3600), shares))
    lava_s = time.perf_counter() - t1
    lava: Dict[int, Any] = {c.index: r for share, out in zip(shares, outs) for c, r in zip(share, out)}
    failures: List[str] = []
    seen: Set[str] = set()
    compared = 0
    for case in cases:
        for label, ref, sim in references(case.net, case.x):
            compared += 1
            seen |= _coverage(case, label, ref, sim)
            msg = _mismatch(case, label, ref, lava[case.index])
            if msg:
                failures.append(f"case {case.index} ({case.family}), reference '{label}' vs Lava: {msg}")
                break
    total_s = time.perf_counter() - t0
    rerun = (f"rerun: {SEED_ENV}={seed} pytest tests/test_loihi_lava_equality.py; one case alone: "
             f"build_case({seed}, INDEX) in tests/test_loihi_lava_equality.py")
    assert not failures, f"{len(failures)} of {len(cases)} networks differ from Lava (seed {seed}):\n  " + \
        "\n  ".join(failures[:20]) + "\n" + rerun
    # the comparison must have covered the awkward regimes and every code path, or it proves little
    assert REQUIRED <= seen, f"seed {seed} did not cover {sorted(REQUIRED - seen)}\n{rerun}"
    ci_summary(f"Lava equality: {len(cases)} random networks (seed {seed}, {len(PLAN)} families) equal to Lava "
               f"0.10 fixed_pt in spikes, u and v at every step ({compared} reference runs: numba and numpy engines, "
               f"chunked and not); {total_s:.0f} s, of which Lava {lava_s:.0f} s in {WORKERS} workers")
