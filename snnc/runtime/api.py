"""The target-agnostic API: ``compile(model, target) -> Artifact``, ``load(path) -> Program``, ``run``."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np

from snnc.artifact import Artifact
from snnc.compiler.describe import layer_label, layer_rows, layer_what, relabel
from snnc.compiler.graph import Graph
from snnc.compiler.pipeline import run_pipeline
from snnc.errors import InputError, RuleViolationError
from snnc.runtime.inputs import to_dense_batch
from snnc.runtime.loading import ModelInfo

if TYPE_CHECKING:  # pragma: no cover
    from snnc.runtime.datasets import SampleReader
    from snnc.runtime.evaluate import Evaluation
from snnc.formats.result import Result
from snnc.targets.base import CompileOptions, Lowered, Target, get_target
from snnc.version import __version__

log = logging.getLogger(__name__)


def load_model(model: Any, input_shape: Optional[Sequence[int]] = None) -> Graph:
    """Return the internal graph of a ``.nir``/``.pt`` path, ``nir.NIRGraph``, torch module or Graph."""
    from snnc.runtime.loading import open_model

    return open_model(model, input_shape).graph


#: Step and integration used when neither the caller, the model nor a framework convention gives them.
DEFAULT_DT_S, DEFAULT_METHOD = 1e-3, "exact"
#: Relative difference below which a given ``dt_s`` counts as the model's own.
_DT_RTOL = 1e-9


def _resolve_time_base(info: ModelInfo, dt_s: Optional[float], method: Optional[str], bin_us: Optional[int],
                       source: str, warnings: List[str]) -> Dict[str, Any]:
    """Decide step, integration and event bin width; say where each came from (see :func:`compile`)."""
    from snnc.compiler.frontends.conventions import lookup

    conv = lookup(info.framework) if info.framework else None
    model_dt, dt_origin = info.dt_s, info.dt_origin
    if model_dt is None and conv is not None:
        model_dt, dt_origin = conv.dt_s, f"{conv.name} convention ({info.framework_origin})"
    model_method = info.method or (conv.method if conv is not None else None)
    physical = info.physical_dt and (conv is None or conv.physical_dt or info.dt_s is not None)
    if dt_s is not None:
        dt_s = float(dt_s)
        if not (math.isfinite(dt_s) and dt_s > 0):
            raise InputError(f"dt_s must be a positive number of seconds, found {dt_s}", hint="e.g. --dt 1e-3")
        if model_dt is not None and abs(dt_s - model_dt) > _DT_RTOL * model_dt:
            warnings.append(f"--dt {dt_s:g} s differs from the model's own step {model_dt:g} s (from {dt_origin}): "
                            f"compiled at {dt_s:g} s as asked, the program does not compute what the model "
                            f"computes at {model_dt:g} s; drop --dt to use the model's step")
        dt, dt_source = dt_s, "flag"
    elif model_dt is not None:
        dt, dt_source = float(model_dt), dt_origin
    else:
        dt, dt_source = DEFAULT_DT_S, "default"
    if method is not None:
        if model_method is not None and method != model_method:
            warnings.append(f"--method {method} differs from the model's own integration {model_method} "
                            f"(from {dt_origin or 'the model'}): compiled with {method} as asked")
        meth, method_source = method, "flag"
    elif model_method is not None:
        meth, method_source = model_method, dt_origin or "model"
    else:
        meth, method_source = DEFAULT_METHOD, "default"
    if dt_source == "default":
        warnings.append(f"{source}: no --dt and the model states no time base: ASSUMED dt = {dt:g} s, "
                        f"{meth} integration. NIR stores no time step, so the program may compute something "
                        "else than the model's framework did; give --dt SECONDS --method exact|euler, or "
                        "--framework NAME (snntorch, norse, sinabs, spikingjelly, rockpool) for the exporter's "
                        "convention")
    whole_us = abs(dt * 1e6 - round(dt * 1e6)) < 1e-6 and round(dt * 1e6) >= 1
    if bin_us is not None:
        b = int(bin_us)
        if b < 1 or b != bin_us:
            raise InputError(f"bin_us must be a positive whole number of microseconds, found {bin_us}",
                             hint="e.g. --bin-us 1000")
        bin_width: Optional[int] = b
        bin_source = "flag"
    elif physical and dt_source == "flag" and whole_us:
        bin_width, bin_source = int(round(dt * 1e6)), "dt"  # a step chosen by the user: bins follow it
    elif info.bin_us is not None:
        bin_width, bin_source = int(info.bin_us), dt_origin or "model"
    elif physical and whole_us:
        bin_width, bin_source = int(round(dt * 1e6)), "dt"
    else:
        bin_width = None
        bin_source = ("none: the model's step is one unit of time, not seconds; give --bin-us to feed events"
                      if not physical else "none: dt is not a whole number of microseconds; give --bin-us")
    return {"dt_s": dt, "dt_source": dt_source, "method": meth, "method_source": method_source,
            "bin_us": bin_width, "bin_source": bin_source, "physical_dt": bool(physical)}


def compile(model: Any, target: str = "cpu", dt_s: Optional[float] = None, method: Optional[str] = None,
            input_shape: Optional[Sequence[int]] = None, dump_ir: Optional[str] = None,
            framework: Optional[str] = None, bin_us: Optional[int] = None, model_name: Optional[str] = None,
            factory: Optional[str] = None, **options: Any) -> Artifact:
    """Compile ``model`` for ``target``; raise on any rule violation.

    The step ``dt_s`` (seconds) and ``method`` default to the model's own (an snnc checkpoint or
    neuron modules, a framework module's ``dt``, a NIR file's metadata), then to the
    ``framework`` convention (snntorch, norse, sinabs, spikingjelly, rockpool: its exporter's quirks
    are undone), then to 1 ms / exact with a warning. ``bin_us`` is the width (microseconds) of the
    time bins event input is cut into (default: the model's training bins, else ``dt_s``).
    ``model_name`` (a zoo name) or ``factory`` ("module:function") give the architecture of a
    plain ``state_dict`` file. ``options`` are the target's ``-O`` options; unknown ones are refused.
    ``diverge=DATA`` (with ``diverge_samples``, ``diverge_plot``) adds the divergence report of
    :mod:`snnc.runtime.diverge` (float model against the program, per layer, with causes) to the report.
    """
    from snnc.compiler.frontends.conventions import adapt, detect_convention, lookup
    from snnc.runtime.diverge import OPTION_HELP as DIVERGE_OPTIONS
    from snnc.runtime.loading import open_model

    tgt = get_target(target)
    diverge_opts = {k: options.pop(k) for k in list(options) if k in DIVERGE_OPTIONS}
    if diverge_opts and "diverge" not in diverge_opts:
        raise InputError(f"{sorted(diverge_opts)} need -O diverge=DATA", hint="e.g. -O diverge=nmnist")
    tgt.check_options(options)
    loaded = open_model(model, input_shape, model_name=model_name, factory=factory)
    graph, info = loaded.graph, loaded.info
    source = graph.source or "<model>"
    warnings: List[str] = []
    if framework is not None:
        conv = lookup(framework)
        if info.framework is not None and info.framework != conv.name:
            raise InputError(f"the model is a {info.framework} module, but --framework {conv.name} was given",
                             file=graph.source or None, hint="drop --framework: a module's own framework is used")
        info.framework, info.framework_origin = conv.name, info.framework_origin or "flag"
    elif info.framework is None and info.dt_s is None and dt_s is None and method is None:
        found, evidence = detect_convention(graph)
        if found is not None:
            info.framework, info.framework_origin = found, "file parameters"
            info.notes.append(f"identified as a {found} export: {evidence}")
    if info.framework is not None and not info.adapted:
        conv = lookup(info.framework)
        graph = adapt(graph, conv.name, export_dt_s=conv.export_dt_s(dt_s, info.dt_s))
    time_base = _resolve_time_base(info, dt_s, method, bin_us, source, warnings)
    for w in warnings:
        log.warning("%s", w)
    compile_options = CompileOptions(dt_s=float(time_base["dt_s"]), method=str(time_base["method"]),
                                     extra=dict(options))
    source_hash = graph.fingerprint()
    passed = run_pipeline(graph, tgt.passes(), dump_ir=dump_ir)
    labels = {n: layer_label(passed, n) for n in passed.nodes}
    try:
        lowered = tgt.lower(passed, compile_options)  # quantises once; raises every violation at once
    except RuleViolationError as e:
        raise RuleViolationError([dataclasses.replace(v, what=v.what or layer_what(passed, v.node))
                                  if v.node in passed.nodes else v for v in e.violations],
                                 target=tgt.name, file=graph.source or None) from None
    if compile_options.extra.get("validate"):
        _validate(tgt, passed, lowered, compile_options)
    ins, outs = passed.inputs(), passed.outputs()
    report = {"target": tgt.name, "notes": list(info.notes) + list(passed.notes),
              "passes": [n for n, _ in tgt.passes()], **lowered.report}
    report["warnings"] = warnings + [relabel(w, labels) for w in report.get("warnings", [])]
    report["time_base_warnings"] = len(warnings)  # the first ones, already logged
    rows = layer_rows(passed)
    extra = tgt.layer_summary(report, {r["name"]: r["neurons"] for r in rows})
    report["summary"] = [{**r, **extra.get(r["name"], {})} for r in rows]
    manifest: Dict[str, Any] = {
        "format": "snnc-artifact",
        "snnc_version": __version__,
        "target": tgt.name,
        "options": compile_options.to_dict(),
        "time_base": time_base,
        "model": info.to_manifest(),
        "framework": info.framework,
        "source_hash": source_hash,
        "compiled_hash": passed.fingerprint(),
        "input_shape": list(passed.shapes[ins[0]]),
        "output_shape": list(passed.shapes[outs[0]]),
        "report": report,
    }
    art = Artifact(manifest, lowered.payload)
    if diverge_opts:  # -O diverge=DATA: the float model against this program (snnc.runtime.diverge)
        from snnc.runtime.diverge import at_compile

        report["divergence"] = at_compile(graph, info.dt_s, Program(art), diverge_opts)
    return art


def _validate(tgt: Target, passed: Graph, lowered: Lowered, options: CompileOptions) -> None:
    """Add ``-O validate=NAME``'s accuracy section (and its warning) to ``lowered.report``."""
    from snnc.runtime.validation import validate_accuracy

    acc = validate_accuracy(tgt, passed, lowered, options, {"options": options.to_dict(),
                                                            "input_shape": list(passed.shapes[passed.inputs()[0]])})
    lowered.report["accuracy"] = acc
    if "warning" in acc:
        lowered.report.setdefault("warnings", []).append(acc["warning"])


class Program:
    """A loaded artifact, ready to run on the reference simulator or another backend."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.target = get_target(artifact.target)

    @property
    def manifest(self) -> Dict[str, Any]:
        """Return the artifact's manifest."""
        return self.artifact.manifest

    @property
    def input_shape(self) -> tuple:
        """Return the input shape (without batch and time)."""
        return tuple(self.manifest["input_shape"])

    @property
    def bin_us(self) -> Optional[int]:
        """Return the width (microseconds) of the bins event input is cut into; None when it must be given."""
        tb = self.manifest.get("time_base")
        if tb is None:  # artifacts written before the time base was recorded: bins of dt_s
            dt_us = float(self.manifest["options"]["dt_s"]) * 1e6
            return int(round(dt_us)) if abs(dt_us - round(dt_us)) < 1e-6 and round(dt_us) >= 1 else None
        return None if tb.get("bin_us") is None else int(tb["bin_us"])

    def run(self, inputs: Any, backend: str = "sim", record: bool = False, steps: Optional[int] = None,
            bin_us: Optional[int] = None) -> Result:
        """Run dense inputs (batch, T, *shape) or event lists (fields t [us], x, y, p) on ``backend``.

        Event lists are cut into bins of ``bin_us`` microseconds (default: the artifact's, see
        :attr:`bin_us`), counting events per bin, or marking one spike per bin on targets whose
        inputs are single spikes.
        """
        mode = "binary" if self.target.binary_input else "count"
        width = self.bin_us if bin_us is None else int(bin_us)
        x = to_dense_batch(inputs, self.input_shape, width, steps, mode, source=self._bin_source())
        return self.target.run(self.artifact.payload, self.manifest, x, backend=backend, record=record)

    @property
    def latency_steps(self) -> int:
        """Return how many steps late the output sees the input (Loihi's per-hop delay; 0 elsewhere)."""
        return int(self.manifest.get("report", {}).get("latency_steps", 0) or 0)

    def reader(self, steps: Optional[int] = None, bin_us: Optional[int] = None) -> "SampleReader":
        """Return a :class:`~snnc.runtime.datasets.SampleReader` shaping files for this program."""
        from snnc.runtime.datasets import SampleReader

        model = self.manifest.get("model", {})
        return SampleReader(self.input_shape, self.bin_us if bin_us is None else int(bin_us),
                            bool(self.target.binary_input),
                            steps if steps is not None else model.get("n_steps"), model.get("encoder"))

    def evaluate(self, inputs: Any, labels: Optional[Sequence[int]] = None, backend: str = "sim",
                 batch_size: int = 32, progress: Optional[bool] = False, steps: Optional[int] = None,
                 bin_us: Optional[int] = None, keep_outputs: bool = False) -> "Evaluation":
        """Run a data set and score it: accuracy, confusion, spikes and synops per layer, latency.

        ``inputs``: a dense array (batch, T, *shape), a list of per-sample arrays or event lists, or
        a list of file paths (``.bin``, ``.npy``, ``.npz``, ``.wav``; read in batches). Inputs are
        shaped as :class:`~snnc.runtime.datasets.SampleReader` does (one spike per bin where the
        target takes single spikes); each batch is padded with :attr:`latency_steps` zero steps.
        """
        from snnc.runtime.datasets import batch_samples
        from snnc.runtime.evaluate import evaluate_batches

        reader = self.reader(steps, bin_us)
        if isinstance(inputs, np.ndarray) and inputs.dtype.names is None:
            items: List[Any] = list(inputs)
        else:
            items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]

        def batches() -> Any:
            for a in range(0, len(items), max(1, int(batch_size))):
                part = []
                for it in items[a:a + batch_size]:
                    if isinstance(it, (str, os.PathLike)):
                        part += reader.read(os.fspath(it))
                    else:
                        from snnc.runtime.inputs import is_event_array

                        part.append(reader._events(it, "<events>") if is_event_array(it)
                                    else reader._dense(np.asarray(it), "<array>"))
                yield batch_samples(part, len(part))[0]

        ev = evaluate_batches(lambda x: self.run(x, backend=backend), batches(), labels, n=len(items),
                              latency_steps=self.latency_steps, progress=progress, keep_outputs=keep_outputs)
        ev.notes = list(reader.notes) + ev.notes
        ev.files = [os.fspath(i) for i in items if isinstance(i, (str, os.PathLike))]
        ev.meta = {"target": self.target.name, "backend": backend, "bin_us": reader.bin_us, "steps": reader.steps}
        ev.layer_labels = {r["name"]: r["label"] for r in self.manifest.get("report", {}).get("summary", [])}
        return ev

    def _bin_source(self) -> str:
        tb = self.manifest.get("time_base") or {}
        return str(tb.get("bin_source", "dt"))


def load(path: str) -> Program:
    """Load and verify an artifact file, returning a runnable :class:`Program`."""
    return Program(Artifact.load(path))


def diverge(model: Any, artifact: Any, inputs: Any, labels: Optional[Sequence[int]] = None, **kwargs: Any) -> Any:
    """Report where and why ``artifact`` (an Artifact, Program or artifact path; Loihi or Speck) departs from the
    float ``model`` on ``inputs``: a :class:`~snnc.runtime.diverge.DivergenceReport` (arguments: its ``diverge``)."""
    from snnc.runtime.diverge import diverge as _diverge

    if isinstance(artifact, (str, os.PathLike)):
        prog = load(os.fspath(artifact))
    elif isinstance(artifact, Artifact):
        prog = Program(artifact)
    elif isinstance(artifact, Program):
        prog = artifact
    else:
        raise InputError(f"cannot read a program from a {type(artifact).__name__}",
                         hint="give an Artifact, a Program or an artifact path")
    return _diverge(model, prog, inputs, labels, **kwargs)
