"""The ``cpu`` target: the float reference semantics of every NIR node, on torch."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from snnc.artifact import canonical_json, pack_arrays, split_graph_payload
from snnc.compiler.graph import Delay, Graph
from snnc.compiler.stored import graph_from_json_and_arrays
from snnc.dynamics import METHODS
from snnc.errors import RuleViolationError, Violation
from snnc.formats.result import Result
from snnc.targets.base import CompileOptions, Lowered, Target
from snnc.targets.cpu.simulator import GraphSimulator


def rule_known_method(graph: Graph, options: CompileOptions) -> List[Violation]:
    """The integration method must be one snnc implements."""
    if options.method not in METHODS:
        return [Violation("integration-method", "<options>", options.method, "/".join(METHODS),
                          "use --method exact or --method euler")]
    return []


def rule_positive_dt(graph: Graph, options: CompileOptions) -> List[Violation]:
    """The time step must be finite and positive."""
    if not (np.isfinite(options.dt_s) and options.dt_s > 0):
        return [Violation("time-step", "<options>", options.dt_s, "> 0 s", "pass --dt in seconds, e.g. 1e-3")]
    return []


#: Most whole steps a Delay may span (the simulator keeps one buffer per step).
MAX_DELAY_STEPS = 100_000


def rule_delay_steps(graph: Graph, options: CompileOptions) -> List[Violation]:
    """Each Delay must span a bounded number of whole time steps."""
    out = []
    for name, node in graph.nodes.items():
        if isinstance(node, Delay) and np.isfinite(options.dt_s) and options.dt_s > 0:
            steps = float(np.max(np.rint(np.asarray(node.delay) / options.dt_s)))
            if steps > MAX_DELAY_STEPS:
                out.append(Violation("delay-steps", name, f"{steps:.0f} steps of {options.dt_s} s",
                                     f"<= {MAX_DELAY_STEPS} steps", "use a larger --dt or a shorter delay"))
    return out


#: Float precisions the simulator runs in (``-O dtype=...``); float64 is the default.
DTYPES = ("float64", "float32")


def rule_dtype(graph: Graph, options: CompileOptions) -> List[Violation]:
    """The simulator's float precision must be one it runs in."""
    found = str(options.extra.get("dtype", "float64"))
    if found not in DTYPES:
        return [Violation("float-dtype", "<options>", found, "/".join(DTYPES), "use -O dtype=float32 or float64")]
    return []


RULES = [rule_known_method, rule_positive_dt, rule_delay_steps, rule_dtype]


class CpuTarget(Target):
    """Float reference simulation of the whole graph (any NIR node snnc knows)."""

    name = "cpu"
    description = "float reference simulator (torch; exact or forward-Euler integration)"
    backends = ("sim",)
    option_help = {"dtype": "float64 (default) or float32: the precision the float simulator runs in"}

    def __init__(self) -> None:
        self._sims: Dict[Any, Tuple[Mapping[str, bytes], GraphSimulator]] = {}

    def lower(self, graph: Graph, options: CompileOptions) -> Lowered:
        """Store the passed graph itself as the payload (RuleViolationError on the cpu rules: option sanity only,
        every node kind runs here)."""
        violations = [v for rule in RULES for v in rule(graph, options)]
        if violations:
            raise RuleViolationError(violations, target=self.name, file=graph.source or None)
        desc, arrays = graph.to_json_and_arrays()
        payload = {"graph.json": canonical_json(desc), **pack_arrays(arrays)}
        layers = {n: {"kind": graph.nodes[n].neuron.kind if graph.nodes[n].neuron else "none",
                      "synapses": [s.kind for s in graph.nodes[n].synapses],
                      "shape": list(graph.shapes[n])} for n in graph.layers()}
        return Lowered(payload, {"layers": layers, "integration": options.method, "dt_s": options.dt_s})

    def to_nir(self, payload: Mapping[str, bytes], manifest: Mapping[str, Any]) -> Any:
        """Return the stored (compiled) graph as NIR (refused for what NIR cannot store, e.g. reset by subtraction)."""
        from snnc.compiler.nir_export import to_nir

        opts = manifest["options"]
        graph = to_nir(self._graph(payload))
        graph.metadata = {"snnc_export": "cpu", "dt_s": float(opts["dt_s"]), "method": str(opts["method"])}
        return graph

    @staticmethod
    def _graph(payload: Mapping[str, bytes]) -> Graph:
        desc, arrays = split_graph_payload(payload)
        return graph_from_json_and_arrays(desc, arrays)

    def simulate(self, payload: Mapping[str, bytes], manifest: Mapping[str, Any], inputs: np.ndarray,
                 record: bool = False) -> Result:
        """Run the float graph simulator (in the artifact's ``dtype``, float64 by default)."""
        import torch

        opts = manifest["options"]
        dtype_name = str(opts.get("extra", {}).get("dtype", "float64"))
        dt_s, method = float(opts["dt_s"]), str(opts["method"])
        # the same payload object (a Program's artifact) runs many batches: build its simulator once
        key = (id(payload), tuple((k, id(v)) for k, v in payload.items()), dtype_name, dt_s, method)
        hit = self._sims.get(key)
        if hit is None:
            dtype = {"float64": torch.float64, "float32": torch.float32}[dtype_name]
            hit = (payload, GraphSimulator(self._graph(payload), dt_s, method, dtype=dtype))
            self._sims = {key: hit}  # one cached simulator; it holds the payload, so the key's ids stay its own
        return hit[1].run(inputs, record=record, progress=bool(manifest.get("progress", False)))
