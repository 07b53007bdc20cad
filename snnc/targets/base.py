"""The Target interface and the registry: adding a target is adding a folder under ``snnc/targets``.

A target answers: what its artifact payload is (:meth:`Target.lower`, which also says which graphs
it takes: it raises every rule the graph breaks at once; :meth:`Target.check` lists them), how
floats become its integers (:meth:`Target.quantize`), what its chip computes
(:meth:`Target.simulate`, the reference simulator), how to run elsewhere (:meth:`Target.run`
with another backend) and which files it writes for its chip and for NIR (:meth:`Target.chip_file`,
:meth:`Target.to_nir`). Each target package exposes ``TARGET`` (its class).
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Type

import numpy as np

from snnc.compiler.graph import Graph
from snnc.compiler.pipeline import DEFAULT_PASSES, Pass
from snnc.errors import BackendUnavailableError, InputError, RuleViolationError, UnsupportedError, Violation
from snnc.formats.result import Result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompileOptions:
    """Options common to every target: step ``dt_s`` (seconds), integration ``method``, extras."""

    dt_s: float = 1e-3
    method: str = "exact"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-able dict (keys sorted when written)."""
        d = asdict(self)
        d["extra"] = dict(sorted(self.extra.items()))
        return d


@dataclass
class Lowered:
    """What a target produces: named payload blobs (bytes) and its compile report section."""

    payload: Dict[str, bytes]
    report: Dict[str, Any]


@dataclass
class LayerRuns:
    """One chip layer on every rung of a divergence ladder (:meth:`Target.divergence_runs`).

    ``rungs``: the layer's output per rung, (batch, float-model steps, neurons), already shifted by
    ``lag_steps`` where the rung has chip timing; ``binary``: compare as spike / no spike;
    ``kind``: ``"spiking"`` or ``"readout"`` (compared by predictions); ``sources``: upstream layer names.
    """

    name: str
    kind: str
    lag_steps: int
    shape: Tuple[int, ...]
    rungs: List[np.ndarray]
    sources: List[str]
    binary: bool = True


@dataclass
class DivergenceRuns:
    """A target's side of the divergence report (:mod:`snnc.runtime.diverge`): the ladder's rung names (first the
    float twin, ``"float_model"``; last the chip, checked equal to the reference simulator), every layer's outputs
    on every rung, the chip's output (batch, steps, classes) for its predictions, and notes."""

    keys: List[str]
    layers: List[LayerRuns]
    chip_output: Optional[np.ndarray]  # None: the output layer is not compared
    notes: List[str] = field(default_factory=list)


class Target(ABC):
    """One compilation target (a chip family or the float CPU reference)."""

    #: Registry name, e.g. ``"loihi"``.
    name: ClassVar[str] = ""
    #: One-line description.
    description: ClassVar[str] = ""
    #: Backends ``Program.run`` accepts for this target; ``"sim"`` is the reference simulator.
    backends: ClassVar[Tuple[str, ...]] = ("sim",)
    #: True when inputs are single spikes per step: event lists are then binned in binary mode.
    binary_input: ClassVar[bool] = False
    #: The target's ``-O KEY=VALUE`` options: key -> one-line help (unknown keys are refused).
    option_help: ClassVar[Dict[str, str]] = {}

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise :class:`InputError` for any option key this target does not know (with the known ones)."""
        import difflib

        unknown = sorted(set(options) - set(self.option_help))
        if not unknown:
            return
        generic = {"dt": "dt_s", "timestep": "dt_s", "time_step": "dt_s", "bin": "bin_us", "binwidth": "bin_us"}
        tips = []
        for k in unknown:
            near = difflib.get_close_matches(k, list(self.option_help) + ["dt_s", "method", "bin_us", "framework"], 1)
            alias = generic.get(k.lower().replace("-", "_"))
            if alias or near:
                tips.append(f"'{k}': did you mean '{alias or near[0]}'?")
        known = ", ".join(sorted(self.option_help)) or "none"
        raise InputError(f"unknown option(s) {', '.join(repr(k) for k in unknown)} for target '{self.name}'",
                         hint=" ".join(tips + [f"options of '{self.name}': {known}; common arguments: dt_s, method, "
                                               "bin_us, framework, input_shape, model_name, factory"]))

    def layer_summary(self, report: Mapping[str, Any], neurons: Mapping[str, int]) -> Dict[str, Dict[str, Any]]:
        """Return per-layer chip facts from a compile ``report`` (resource use against its limit, weights
        rounded to zero, latency in steps) for the summary ``snn-compile`` prints; ``neurons`` per layer."""
        return {}

    #: Chip files ``snn-export --format NAME`` writes for this target: format name -> one-line description.
    chip_formats: ClassVar[Dict[str, str]] = {}

    def chip_file(self, fmt: str, payload: Mapping[str, bytes], manifest: Mapping[str, Any]) -> bytes:
        """Return the bytes of the chip file ``fmt`` (one of :attr:`chip_formats`) for this artifact."""
        raise UnsupportedError(f"target '{self.name}' writes no '{fmt}' file",
                               hint=f"formats of this target: {', '.join(['nir', *self.chip_formats])}")

    def to_nir(self, payload: Mapping[str, bytes], manifest: Mapping[str, Any]) -> Any:
        """Return the deployed program of an artifact as a ``nir.NIRGraph`` (``snn-export``'s default format)."""
        files = ", ".join(self.chip_formats)
        raise UnsupportedError(f"NIR export of '{self.name}' artifacts is not implemented",
                               hint=f"this target's chip files: {files}" if files else
                               "compile for the cpu target to export the float graph")

    def passes(self) -> List[Tuple[str, Pass]]:
        """Return the compiler passes this target needs, in order."""
        return list(DEFAULT_PASSES)

    def check(self, graph: Graph, options: CompileOptions) -> List[Violation]:
        """Return every rule the (passed) graph breaks on this target; empty when it fits (lowers it once)."""
        try:
            self.lower(graph, options)
        except RuleViolationError as e:
            return list(e.violations)
        return []

    def quantize(self, graph: Graph, options: CompileOptions) -> Any:
        """Return the target's integer form of the graph (targets with integers override this)."""
        return graph

    @abstractmethod
    def lower(self, graph: Graph, options: CompileOptions) -> Lowered:
        """Return the artifact payload and report; raise :class:`RuleViolationError` with every rule it breaks."""

    @abstractmethod
    def simulate(self, payload: Mapping[str, bytes], manifest: Mapping[str, Any], inputs: np.ndarray,
                 record: bool = False) -> Result:
        """Run the reference simulator on dense inputs (batch, T, *input_shape)."""

    def run(self, payload: Mapping[str, bytes], manifest: Mapping[str, Any], inputs: np.ndarray,
            backend: str = "sim", record: bool = False) -> Result:
        """Run on ``backend``: ``"sim"`` is the reference simulator, others go to :meth:`run_backend`."""
        if self.binary_input:
            check_binary_input(inputs, self.name)
        if backend == "sim":
            return self.simulate(payload, manifest, inputs, record=record)
        if backend not in self.backends:
            raise BackendUnavailableError(f"target '{self.name}' has no backend '{backend}'",
                                          hint=f"available backends: {', '.join(self.backends)}")
        return self.run_backend(backend, payload, manifest, inputs, record)

    def run_backend(self, backend: str, payload: Mapping[str, bytes], manifest: Mapping[str, Any],
                    inputs: np.ndarray, record: bool) -> Result:
        """Run on a non-simulator backend listed in :attr:`backends` (targets that have one override this)."""
        raise BackendUnavailableError(f"target '{self.name}' does not implement backend '{backend}'")

    def torch_lowering(self, graph: Graph, dt_s: float, method: str, options: Mapping[str, Any], device: Any
                       ) -> Tuple[Any, Any]:
        """Return ``(lowering result, torch engine)``: the (passed) graph lowered as :meth:`lower` does, and an
        engine running its integers batched and differentiably in torch (fine-tuning, :mod:`snnc.models.finetune`);
        raise :class:`RuleViolationError` with every rule it breaks."""
        raise UnsupportedError(f"fine-tuning through '{self.name}' is not implemented",
                               hint="targets with a torch engine: loihi, speck")

    def divergence_runs(self, graph: Graph, payload: Mapping[str, bytes], manifest: Mapping[str, Any],
                        x: np.ndarray, dt_model_s: float, device: Any = None) -> DivergenceRuns:
        """Return the ladder from the float twin to the chip (:class:`DivergenceRuns`) of the program
        ``payload``/``manifest`` compiled from the (unpassed) ``graph``, on event counts ``x`` (batch, T, ...)
        at the model's own step ``dt_model_s`` (:mod:`snnc.runtime.diverge`)."""
        raise UnsupportedError(f"the divergence report covers loihi and speck, not '{self.name}'")


def parse_option(text: str) -> Tuple[str, Any]:
    """Return ``(key, value)`` of a ``-O KEY=VALUE`` option: the value read as JSON when it is JSON, else the text."""
    import argparse
    import json

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"bad option '{text}', expected KEY=VALUE")
    k, v = text.split("=", 1)
    try:
        return k, json.loads(v)
    except ValueError:
        return k, v


def check_binary_input(inputs: np.ndarray, target: str) -> None:
    """Raise :class:`InputError` unless every input value is 0 or 1 (targets that take single spikes)."""
    x = np.asarray(inputs)
    if x.size and x.dtype != bool and not np.all((x == 0) | (x == 1)):
        vals = np.unique(x[(x != 0) & (x != 1)])[:5]
        raise InputError(f"target '{target}' takes single spikes (0 or 1 per input per step); the input holds "
                         f"{int(np.count_nonzero((x != 0) & (x != 1)))} other value(s), e.g. "
                         f"{', '.join(f'{v:g}' for v in vals)}",
                         hint="give event lists (binned one spike per bin), or clip a count array with "
                              "(x > 0); snn-run --input does this for you with a note")


_REGISTRY: Dict[str, Type[Target]] = {}


def _discover() -> None:
    if _REGISTRY:
        return
    import snnc.targets as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.ispkg:
            continue
        mod = importlib.import_module(f"snnc.targets.{info.name}")
        cls = getattr(mod, "TARGET", None)
        if cls is not None:
            _REGISTRY[cls.name] = cls


def target_names() -> Sequence[str]:
    """Return the names of all registered targets."""
    _discover()
    return sorted(_REGISTRY)


def get_target(name: str) -> Target:
    """Return a new instance of the target called ``name``, or raise a clear error."""
    _discover()
    cls = _REGISTRY.get(name)
    if cls is None:
        raise UnsupportedError(f"unknown target '{name}'", hint=f"known targets: {', '.join(sorted(_REGISTRY))}")
    return cls()
