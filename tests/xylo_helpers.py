"""Rockpool's Xylo code as the tests' oracle, and random integer Xylo networks.

``rockpool.devices.xylo``'s package ``__init__`` imports the Xylo Audio 3 package, which imports
samna unconditionally; the SNN-core modules themselves do not need samna. :func:`rockpool_xylo`
imports those modules without running the package ``__init__`` files (empty package objects stand
in for the packages; no samna class is faked): ``syns61201.xylo_sim`` (``XyloSim`` on xylosim's
C++ model), ``syns61201.xylo_mapper``, ``syns63300.xylo_sim`` and ``syns63300.xylo_mapper``.
"""
from __future__ import annotations

import importlib
import os
import sys
import types
from typing import Any, Dict

import numpy as np
import pytest

from snnc.targets.xylo.network import XyloNetwork

_MODULES = ("syns61201.xylo_sim", "syns61201.xylo_mapper", "syns63300.xylo_sim", "syns63300.xylo_mapper")


def rockpool_xylo() -> Dict[str, Any]:
    """Return Rockpool's Xylo SNN-core modules by short name (skip the test if rockpool/xylosim are absent)."""
    pytest.importorskip("xylosim.v2", reason="xylosim is built by scripts/setup_env.sh")
    rd = pytest.importorskip("rockpool.devices", reason="rockpool is installed by scripts/setup_env.sh")
    base = os.path.join(os.path.dirname(rd.__file__), "xylo")
    for pkg, path in (("rockpool.devices.xylo", base),
                      *((f"rockpool.devices.xylo.{s}", os.path.join(base, s)) for s in ("syns61300", "syns61201",
                                                                                          "syns63300"))):
        mod = sys.modules.get(pkg)
        if mod is None or not hasattr(mod, "__path__"):
            mod = types.ModuleType(pkg)
            mod.__path__ = [path]
            sys.modules[pkg] = mod
    a2 = sys.modules["rockpool.devices.xylo.syns61201"]
    if not hasattr(a2, "Xylo2Neurons"):  # syns63300's graph modules import it from the package
        gm = importlib.import_module("rockpool.devices.xylo.syns61201.xylo_graph_modules")
        for name in gm.__all__:
            setattr(a2, name, getattr(gm, name))
    return {name: importlib.import_module(f"rockpool.devices.xylo.{name}") for name in _MODULES}


def xylosim_run(net: XyloNetwork, x: np.ndarray, module: str = "syns61201.xylo_sim") -> Dict[str, np.ndarray]:
    """Run Rockpool's ``XyloSim.from_specification`` on one sample ``x (T, Nin)``; return spikes and states."""
    XyloSim = rockpool_xylo()[module].XyloSim
    spec = net.spec()
    if spec["weights_in"].shape[2] == 1:
        spec["weights_in"] = spec["weights_in"][:, :, 0]
        spec["weights_rec"] = spec["weights_rec"][:, :, 0]
    sim = XyloSim.from_specification(**spec, dt=1e-3)
    out, _, rec = sim(np.asarray(x, dtype=np.int64), record=True)
    res = {"output": np.asarray(out, dtype=np.int64), "Spikes": np.asarray(rec["Spikes"], dtype=np.int64)}
    for k in ("Vmem", "Isyn", "Isyn2", "Vmem_out", "Isyn_out"):
        if k in rec:
            res[k] = np.asarray(rec[k], dtype=np.int64)
    return res


def random_network(rng: np.random.Generator, n_in: int, n_hidden: int, n_out: int, n_syn: int,
                   density: float = 0.5, weight_max: int = 127, shifts: tuple = (0, 0, 0),
                   thr_max: int = 2000, biases: bool = False) -> XyloNetwork:
    """A random integer Xylo network (weights sparse with ``density``, all parameters in chip range)."""
    def w(*shape: int) -> np.ndarray:
        vals = rng.integers(-weight_max - 1, weight_max + 1, size=shape)
        return np.where(rng.random(shape) < density, vals, 0).astype(np.int64)

    return XyloNetwork(
        weights_in=w(n_in, n_hidden, n_syn), weights_rec=w(n_hidden, n_hidden, n_syn),
        weights_out=w(n_hidden, n_out),
        dash_mem=rng.integers(0, 16, n_hidden), dash_syn=rng.integers(0, 16, n_hidden),
        dash_syn_2=rng.integers(0, 16, n_hidden) if n_syn == 2 else np.zeros(n_hidden, dtype=np.int64),
        threshold=rng.integers(1, thr_max + 1, n_hidden),
        bias=rng.integers(-200, 201, n_hidden) if biases else np.zeros(n_hidden, dtype=np.int64),
        dash_mem_out=rng.integers(0, 16, n_out), dash_syn_out=rng.integers(0, 16, n_out),
        threshold_out=rng.integers(1, thr_max + 1, n_out),
        bias_out=rng.integers(-200, 201, n_out) if biases else np.zeros(n_out, dtype=np.int64),
        weight_shift_in=shifts[0], weight_shift_rec=shifts[1], weight_shift_out=shifts[2])
