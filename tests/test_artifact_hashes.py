"""Artifacts stay byte-identical: every shipped checkpoint and a few NIR graphs, compiled for every target.

The reference digests in ``artifact_hashes.json`` beside this file were recorded by this test's own
code (``SNNC_RECORD_HASHES=1 pytest tests/test_artifact_hashes.py`` rewrites them) before a refactor
that must not change what snnc writes. Per model and target the file holds the sha256 of the saved
artifact, of its NIR export (a canonical digest of the graph ``snn-export`` writes) and of each chip
file ``snn-export --format`` writes, or the sorted rule ids a refusal names. A change that alters
any of these on purpose re-records the file in the same commit and says why.

Models shipped after the digests were recorded (a checkpoint not in the file) are compiled too
and only listed in the test's output, so a new checkpoint does not fail this test until recorded.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict

import nir
import numpy as np
import pytest

import snnc
from snnc.errors import RuleViolationError
from snnc.runtime.export import export_artifact_nir
from snnc.targets.base import get_target, target_names

ROOT = Path(__file__).resolve().parents[1]
CKPT_DIR = ROOT / "snnc" / "models" / "checkpoints"
HASHES = Path(__file__).resolve().parent / "artifact_hashes.json"
RECORD = os.environ.get("SNNC_RECORD_HASHES", "") not in ("", "0")


def _digest_value(h: Any, v: Any) -> None:
    """Feed a NIR attribute (array, number, string, dict) into ``h`` canonically."""
    if isinstance(v, dict):
        for k in sorted(v):
            h.update(f"<{k}>".encode())
            _digest_value(h, v[k])
    elif isinstance(v, (str, bytes)):
        h.update(v.encode() if isinstance(v, str) else v)
    elif v is None or isinstance(v, (list, tuple)) and not all(isinstance(x, (int, float, np.generic)) for x in v):
        h.update(repr(v).encode())
    else:
        a = np.ascontiguousarray(np.asarray(v))
        assert a.dtype.kind in "biuf", f"no canonical digest for {type(v).__name__}"
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())


def nir_digest(graph: Any) -> str:
    """Return a sha256 over a ``nir.NIRGraph``'s nodes (type and every field), edges and metadata."""
    h = hashlib.sha256()
    for name in sorted(graph.nodes):
        node = graph.nodes[name]
        h.update(f"[{name}:{type(node).__name__}]".encode())
        for key in sorted(vars(node)):
            h.update(f"({key})".encode())
            _digest_value(h, getattr(node, key))
    for a, b in sorted(graph.edges):
        h.update(f"{a}->{b};".encode())
    _digest_value(h, dict(graph.metadata or {}))
    return h.hexdigest()


def digests(model: Any, target: str, **kwargs: Any) -> Dict[str, Any]:
    """Compile ``model`` for ``target``; return the digests of what snnc writes, or the refusal's rules."""
    try:
        art = snnc.compile(model, target=target, **kwargs)
    except RuleViolationError as e:
        return {"refused": sorted({v.rule for v in e.violations})}
    out: Dict[str, Any] = {"artifact": hashlib.sha256(art.to_bytes()).hexdigest()}
    try:
        out["nir"] = nir_digest(export_artifact_nir(art))
    except snnc.SnncError as e:
        out["nir"] = f"refused: {type(e).__name__}"
    tgt = get_target(target)
    for fmt in sorted(tgt.chip_formats):
        try:
            out[fmt] = hashlib.sha256(tgt.chip_file(fmt, art.payload, art.manifest)).hexdigest()
        except snnc.SnncError as e:
            out[fmt] = f"refused: {type(e).__name__}"
    return out


# ----------------------------------------------------------------------------- NIR fixtures
def _lif(n: int, rng: np.random.Generator, thr: float = 1.0) -> nir.LIF:
    return nir.LIF(tau=np.full(n, rng.uniform(5e-3, 3e-2)), r=np.ones(n), v_leak=np.zeros(n),
                   v_threshold=np.full(n, thr), v_reset=np.zeros(n))


def _cuba(n: int, rng: np.random.Generator) -> nir.CubaLIF:
    return nir.CubaLIF(tau_syn=np.full(n, rng.uniform(5e-3, 2e-2)), tau_mem=np.full(n, rng.uniform(1e-2, 4e-2)), r=np.ones(n),
                       v_leak=np.zeros(n), v_threshold=np.full(n, 0.8), v_reset=np.zeros(n), w_in=np.ones(n))


def nir_mlp() -> nir.NIRGraph:
    """Two LIF layers with an Affine bias (cpu, Loihi)."""
    rng = np.random.default_rng(11)
    return nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([20])}),
        nir.Affine(weight=rng.normal(0.0, 0.4, (16, 20)), bias=rng.normal(0.0, 0.05, 16)), _lif(16, rng),
        nir.Linear(weight=rng.normal(0.0, 0.5, (5, 16))), _lif(5, rng, 0.7),
        nir.Output(output_type={"output": np.array([5])}))


def nir_recurrent() -> nir.NIRGraph:
    """A recurrent CubaLIF population with a readout population (cpu, Loihi, Xylo)."""
    rng = np.random.default_rng(12)
    nodes = {"input": nir.Input(input_type={"input": np.array([8])}),
             "w_in": nir.Linear(weight=rng.normal(0.0, 0.6, (12, 8))), "hid": _cuba(12, rng),
             "w_rec": nir.Linear(weight=rng.normal(0.0, 0.3, (12, 12))),
             "w_out": nir.Linear(weight=rng.normal(0.0, 0.6, (4, 12))), "out": _cuba(4, rng),
             "output": nir.Output(output_type={"output": np.array([4])})}
    edges = [("input", "w_in"), ("w_in", "hid"), ("hid", "w_rec"), ("w_rec", "hid"), ("hid", "w_out"),
             ("w_out", "out"), ("out", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def nir_conv() -> nir.NIRGraph:
    """Conv, IF, sum pooling, flatten, dense IF (cpu, Loihi, Speck)."""
    rng = np.random.default_rng(13)

    def if_(shape: Any, thr: float) -> nir.IF:
        return nir.IF(r=np.full(shape, 1e3), v_threshold=np.full(shape, thr), v_reset=np.zeros(shape))

    return nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([2, 12, 12])}),
        nir.Conv2d(input_shape=(12, 12), weight=rng.normal(0.3, 0.5, (4, 2, 3, 3)), stride=1, padding=1,
                   dilation=1, groups=1, bias=np.zeros(4)), if_((4, 12, 12), 1.2),
        nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        nir.Flatten(input_type={"input": np.array([4, 6, 6])}, start_dim=0, end_dim=-1),
        nir.Linear(weight=rng.normal(0.0, 0.2, (6, 144))), if_((6,), 1.5),
        nir.Output(output_type={"output": np.array([6])}))


NIR_FIXTURES = {"nir_mlp": nir_mlp, "nir_recurrent": nir_recurrent, "nir_conv": nir_conv}


def all_digests() -> Dict[str, Dict[str, Any]]:
    """Return ``{model: {target: digests}}`` for every shipped checkpoint and NIR fixture."""
    out: Dict[str, Dict[str, Any]] = {}
    cwd = os.getcwd()
    os.chdir(ROOT)  # the artifact records the model's path as given: keep it relative and stable
    try:
        for ckpt in sorted(CKPT_DIR.glob("*.pt")):
            rel = str(ckpt.relative_to(ROOT))
            out[ckpt.stem] = {t: digests(rel, t) for t in target_names()}
        for name, build in NIR_FIXTURES.items():
            out[name] = {t: digests(build(), t, dt_s=1e-3) for t in target_names()}
    finally:
        os.chdir(cwd)
    return out


def test_every_artifact_is_byte_identical_to_the_recorded_one() -> None:
    got = all_digests()
    if RECORD:
        HASHES.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"recorded {sum(len(v) for v in got.values())} digests into {HASHES.name}")
    want = json.loads(HASHES.read_text())
    missing = sorted(set(want) - set(got))
    assert not missing, f"recorded models no longer compiled: {missing}"
    new = sorted(set(got) - set(want))
    if new:
        print(f"not recorded yet (compiled, not compared): {new}")
    compiled = sum(1 for m in want for d in want[m].values() if "artifact" in d)
    assert compiled >= 15, f"only {compiled} artifacts recorded: the comparison would prove little"
    diffs = [f"{m}/{t}: {want[m].get(t)} -> {got[m].get(t)}" for m in sorted(want)
             for t in sorted(set(want[m]) | set(got[m])) if want[m].get(t) != got[m].get(t)]
    assert not diffs, "artifacts changed:\n" + "\n".join(diffs)
