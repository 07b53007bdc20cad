"""Where and why a deployed program departs from its float model: ``snnc.diverge`` and ``snn-compile -O diverge=DATA``.

The float model (the cpu target's simulator, float64, at the model's own time step, on the inputs as
given: event counts) and the chip (the target's arithmetic, bit-exact with its reference simulator)
run side by side on the same inputs. Per layer the report gives spike agreement, the first
diverging ``(sample, step, neuron)`` and its cause, and how many diverging entries each cause
introduced; :meth:`DivergenceReport.plot` draws agreement per layer over time.

Causes are found by a **ladder**: starting from the chip's *float twin* (every layer's unrounded
weights, bias and decays from the lowering, real arithmetic, float timing: the float model in the
chip's units), one chip effect after another is switched on, in this order, until the last rung
is the chip itself (checked equal to the reference simulator):

Loihi: ``binary_input`` (one spike per input and step), ``dt_mismatch`` (the artifact's step
instead of the model's), ``hop_delay`` (one step per synaptic hop; compared after shifting each
layer by its lag), ``weight_zero`` (weights that round to 0), ``weight_rounding`` (8-bit
mantissas), ``bias_rounding``, ``decay_rounding`` (12-bit ``du``/``dv``), ``decay_truncation``
(truncation toward zero of every decay), ``state_wrap`` (``u``'s one-sided 24-bit wrap, int32 and
24-bit sums), ``saturation`` (``v`` at +-(2**23 - 1)).
Speck: ``dt_mismatch``, ``weight_zero``, ``weight_rounding``, ``bias_rounding``,
``threshold_rounding``, ``spike_mode`` (several spikes per step), ``saturation`` (the 16-bit lower
bound of the state).

A diverging entry's cause is the first rung at which that entry departs from the float model
(``float_model`` when the float twin itself differs there, e.g. a bias into a current-based
neuron, which Loihi can only approximate). A layer whose input already departed earlier in the
same sample names that upstream layer (``inherited_from``): the cause is then the one that reached
it. Readouts (non-spiking outputs) are compared by their predictions (argmax of the summed output).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from snnc.errors import InputError

log = logging.getLogger(__name__)

#: Every cause the report names, with its one-line meaning.
CAUSES: Dict[str, str] = {
    "float_model": "the chip's float twin already differs from the float model here (the lowering approximates)",
    "binary_input": "binary input clipping: the chip takes one spike per input and step, counts above 1 are clipped",
    "dt_mismatch": "dt mismatch: the program was compiled at another time step than the model's own",
    "hop_delay": "per-hop delay: every synaptic hop takes one step on the chip, paths with different hop counts "
                 "no longer line up as in the float model",
    "weight_zero": "weight rounded to zero",
    "weight_rounding": "weight rounding (8-bit mantissas)",
    "bias_rounding": "bias rounding",
    "threshold_rounding": "threshold rounding",
    "decay_rounding": "decay rounding (12-bit decays)",
    "decay_truncation": "decay truncation (each step's decay rounds toward zero)",
    "state_wrap": "state wrap (u wraps at +-2**23, synaptic sums at 32/24 bits)",
    "saturation": "state saturation (v clipped at +-(2**23 - 1) on Loihi; the 16-bit lower bound on Speck)",
    "spike_mode": "several spikes per step (multi-spike mode) where the float neuron fires once",
}
#: Generic ``-O`` options of ``snn-compile`` for every target (handled by :func:`snnc.compile`, not the target).
OPTION_HELP: Dict[str, str] = {
    "diverge": "divergence report against the float model on DATA: 'nmnist' (held-out N-MNIST split), a .npy array "
               "(batch, T, ...) of event counts, or recording files (a folder, a glob)",
    "diverge_samples": "with diverge: first N samples (default 20)",
    "diverge_plot": "with diverge: write the agreement-per-layer-over-time picture to this path",
}
DEFAULT_SAMPLES = 20


# ----------------------------------------------------------------------------- report
@dataclass
class LayerDivergence:
    """How one chip layer compares with the float model (see the module doc); steps are float-model steps."""

    name: str
    label: str
    kind: str  # "spiking" or "readout"
    neurons: int
    lag_steps: int
    agreement: float  # fraction of (sample, step, neuron) entries equal (readout: predictions equal)
    jaccard: Optional[float]  # spikes in both / spikes in either (None: no spikes at all)
    float_spikes: int
    chip_spikes: int
    diverging: int
    first: Optional[Dict[str, Any]] = None
    causes: Dict[str, int] = field(default_factory=dict)
    per_step_agreement: List[Optional[float]] = field(default_factory=list)
    per_step_diverging: List[int] = field(default_factory=list)
    max_abs_error: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-able dict."""
        return dataclasses.asdict(self)


@dataclass
class DivergenceReport:
    """The float model against the chip, per layer, with causes (see the module doc)."""

    target: str
    dt_model_s: float
    dt_chip_s: float
    samples: int
    steps: int
    layers: List[LayerDivergence]
    ladder: List[str]
    predictions: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-able dict (the ``divergence`` section of a compile report)."""
        d = dataclasses.asdict(self)
        d["cause_meanings"] = {k: CAUSES[k] for k in ["float_model"] + self.ladder if k in CAUSES}
        return d

    def first_divergence(self) -> Optional[Tuple[str, Dict[str, Any]]]:
        """Return ``(layer name, first)`` of the earliest divergence not inherited from upstream, or None."""
        best = None
        for ly in self.layers:
            f = ly.first
            if f is None or f.get("inherited_from"):
                continue
            key = (f["step"], f["sample"])
            if best is None or key < best[0]:
                best = (key, ly.name, f)
        return None if best is None else (best[1], best[2])

    def format(self) -> str:
        """Return the text ``snn-compile`` prints."""
        lines = [f"divergence: float model (dt {self.dt_model_s:g} s) vs {self.target} (dt {self.dt_chip_s:g} s) "
                 f"on {self.samples} sample(s) x {self.steps} steps"]
        for ly in self.layers:
            head = (f"  {ly.label or ly.name}: agreement {100 * ly.agreement:.2f} %"
                    + ("" if ly.jaccard is None else f", spikes in both / either {100 * ly.jaccard:.1f} %")
                    + f", {ly.float_spikes} float vs {ly.chip_spikes} chip spikes")
            lines.append(head)
            if ly.first is None:
                lines.append("    no divergence")
                continue
            f = ly.first
            where = f"sample {f['sample']}, step {f['step']}" + ("" if f.get("neuron") is None else
                                                                   f", neuron {tuple(f['neuron'])}")
            inh = f" (its input departed first: {f['inherited_from']})" if f.get("inherited_from") else ""
            lines.append(f"    first: {where}: float {f['float']}, chip {f['chip']}; cause: {f['cause']}{inh}")
            if ly.causes:
                lines.append("    causes of all diverging entries: " +
                             ", ".join(f"{k} {v}" for k, v in sorted(ly.causes.items(), key=lambda kv: -kv[1])))
        p = self.predictions
        if p:
            acc = "" if p.get("float_accuracy") is None else \
                f"; accuracy float {100 * p['float_accuracy']:.2f} %, chip {100 * p['chip_accuracy']:.2f} %"
            lines.append(f"  predictions equal on {100 * p['agreement']:.2f} % of samples{acc}")
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])

    def plot(self, path: str) -> str:
        """Write agreement per layer over time (spikes in both / in either, per step) to ``path``; return it."""
        from snnc.files import atomic_target
        from snnc.runtime.plot import _plt, check_format

        fmt = check_format(path)
        plt = _plt()
        fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
        t = np.arange(self.steps)
        for ly in self.layers:
            if ly.kind != "spiking":
                continue
            y = np.array([np.nan if a is None else a for a in ly.per_step_agreement], dtype=np.float64)
            axes[0].plot(t[:len(y)], 100 * y, label=ly.label or ly.name, lw=1.2)
            if ly.first is not None:
                axes[0].axvline(ly.first["step"], color=axes[0].lines[-1].get_color(), ls=":", lw=0.8)
            axes[1].plot(t[:len(ly.per_step_diverging)], ly.per_step_diverging, lw=1.0)
        axes[0].set_ylabel("spikes in both / either (%)")
        axes[0].set_ylim(-2, 102)
        axes[0].legend(fontsize=7, loc="lower left")
        axes[0].set_title(f"float model vs {self.target}: agreement per layer (dotted: first divergence)")
        axes[1].set_ylabel("diverging entries")
        axes[1].set_xlabel("step (float model time)")
        fig.tight_layout()
        with atomic_target(path, "picture") as tmp:
            fig.savefig(tmp, format=fmt, dpi=110)
        plt.close(fig)
        return path


# ----------------------------------------------------------------------------- inputs
def read_inputs(prog: Any, data: Any, samples: Optional[int], n_steps: Optional[int]
                ) -> Tuple[np.ndarray, Optional[np.ndarray], str]:
    """Return event counts (B, T, *input_shape), labels or None, and a description, for ``data``.

    ``data``: ``"nmnist"`` (the held-out split of N-MNIST-small; any registered validation set), a dense array, a ``.npy`` file,
    or recording files (a folder, a glob, a list; read as ``snn-run --input`` does, but as counts).
    """
    from snnc.runtime.datasets import SampleReader, batch_samples, expand_inputs, find_labels
    from snnc.runtime.registry import validation_set, validation_sets

    dt = float(prog.manifest["options"]["dt_s"])
    if isinstance(data, str) and data in validation_sets():
        d = validation_set(data)(dt, n_steps, samples or DEFAULT_SAMPLES)
        return d["x"].astype(np.float64), np.asarray(d["labels"]), \
            f"nmnist: held-out split, {len(d['labels'])} samples, {d['n_steps']} steps of {d['dt_us']} us"
    if isinstance(data, np.ndarray):
        x = data if data.ndim == len(prog.input_shape) + 2 else data[None]
        x = x[: samples or None]
        return np.asarray(x, dtype=np.float64), None, f"array {tuple(x.shape)}"
    specs = [os.fspath(data)] if isinstance(data, (str, os.PathLike)) else [os.fspath(d) for d in data]
    if len(specs) == 1 and specs[0].endswith(".npy") and os.path.isfile(specs[0]):
        a = np.load(specs[0])
        if a.ndim == len(prog.input_shape) + 1:
            a = a[None]
        a = a[: samples or None]
        return np.asarray(a, dtype=np.float64), None, f"{specs[0]}: {tuple(a.shape)}"
    files = expand_inputs(specs)
    if samples:
        files = files[: int(samples)]
    model = prog.manifest.get("model", {})
    reader = SampleReader(prog.input_shape, prog.bin_us, False, n_steps or model.get("n_steps"), model.get("encoder"))
    items: List[np.ndarray] = []
    for f in files:
        items += reader.read(f)
    x = batch_samples(items, len(items))[0]
    labels, _ = find_labels(files)
    return np.asarray(x, dtype=np.float64), None if labels is None else np.asarray(labels), \
        f"{len(files)} file(s) from {', '.join(specs)}"


# ----------------------------------------------------------------------------- comparison
def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], a.shape[1], -1)


def _predictions(out: np.ndarray) -> np.ndarray:
    s = _flat(out).sum(axis=1)
    p = s.argmax(axis=-1).astype(np.int64)
    p[~np.any(s != 0, axis=-1)] = -1
    return p


def _compare_spiking(name: str, label: str, lag: int, ref: np.ndarray, rungs: List[np.ndarray], keys: List[str],
                     shape: Sequence[int]) -> LayerDivergence:
    """Compare float ``ref`` (B, T, N) with the chip (the last rung) and attribute each diverging entry to a rung."""
    chip = rungs[-1]
    diff = ref != chip
    n_div = int(diff.sum())
    both = int(np.sum((ref != 0) & (chip != 0)))
    either = int(np.sum((ref != 0) | (chip != 0)))
    per_step = []
    d_step = diff.sum(axis=(0, 2))
    e_step = ((ref != 0) | (chip != 0)).sum(axis=(0, 2))
    for t in range(ref.shape[1]):
        per_step.append(None if e_step[t] == 0 else float(1.0 - d_step[t] / e_step[t]))
    causes: Dict[str, int] = {}
    first = None
    if n_div:
        cause_idx, causes = _ladder(diff, rungs, ref, keys)
        pos = np.argwhere(diff.transpose(1, 0, 2))  # (step, sample, neuron), step-major
        t, b, n = (int(v) for v in pos[0])
        k = int(cause_idx[b, t, n])
        first = {"sample": b, "step": t, "neuron": [int(i) for i in np.unravel_index(n, tuple(shape))], "float": int(ref[b, t, n]), "chip": int(chip[b, t, n]),
                 "cause": keys[k] if k >= 0 else "unexplained", "inherited_from": None}
    return LayerDivergence(name=name, label=label, kind="spiking", neurons=int(ref.shape[2]), lag_steps=int(lag),
                         agreement=float(1.0 - n_div / max(diff.size, 1)),
                         jaccard=None if either == 0 else float(both / either), float_spikes=int(ref.sum()),
                         chip_spikes=int(chip.sum()), diverging=n_div, first=first, causes=causes,
                         per_step_agreement=per_step, per_step_diverging=d_step.astype(np.int64).tolist())


def _ladder(diff: np.ndarray, rungs: List[np.ndarray], ref: np.ndarray, keys: List[str]
            ) -> Tuple[np.ndarray, Dict[str, int]]:
    """Return, per diverging entry, the index of the first rung departing from ``ref`` (-1: none) and the count per key."""
    idx = np.full(diff.shape, -1, dtype=np.int16)
    undecided = diff.copy()
    for k, r in enumerate(rungs):
        hit = undecided & (r != ref)
        idx[hit] = k
        undecided &= ~hit
    counts = {key: int(np.sum(idx == k)) for k, key in enumerate(keys)}
    return idx, {key: c for key, c in counts.items() if c}


def _compare_readout(name: str, label: str, lag: int, ref: np.ndarray, rungs: List[np.ndarray], keys: List[str]
                     ) -> LayerDivergence:
    """Readouts: compare predictions (argmax of the summed output); cause = first rung whose prediction departs."""
    pf = _predictions(ref)
    preds = [_predictions(r) for r in rungs]
    chip = preds[-1]
    diff = pf != chip
    first = None
    idx, causes = _ladder(diff, preds, pf, keys)
    if diff.any():
        b = int(np.argmax(diff))
        k = int(idx[b])
        first = {"sample": b, "step": int(ref.shape[1]) - 1, "neuron": None, "float": int(pf[b]), "chip": int(chip[b]),
                 "cause": keys[k] if k >= 0 else "unexplained", "inherited_from": None}
    err = float(np.max(np.abs(ref - rungs[-1]))) if ref.size else 0.0
    return LayerDivergence(name=name, label=label, kind="readout", neurons=int(ref.shape[2]), lag_steps=int(lag),
                           agreement=float(1.0 - diff.mean()) if diff.size else 1.0, jaccard=None, float_spikes=0,
                           chip_spikes=0, diverging=int(diff.sum()), first=first, causes=causes, max_abs_error=err)


def _inherit(layers: List[LayerDivergence], divs: Dict[str, np.ndarray], sources: Dict[str, List[str]]) -> None:
    """Name, for each layer's first divergence, the upstream layer whose output departed first in that sample."""
    for ly in layers:
        f = ly.first
        if f is None:
            continue
        best = None
        stack = list(sources.get(ly.name, []))
        seen = set()
        while stack:  # every layer upstream, not only direct sources
            s = stack.pop()
            if s in seen or s not in divs:
                continue
            seen.add(s)
            stack += sources.get(s, [])
            d = divs[s]
            if d.ndim == 3:
                steps = np.flatnonzero(d[f["sample"]].any(axis=1))
                if steps.size and steps[0] <= f["step"] and (best is None or steps[0] < best[0]):
                    best = (int(steps[0]), s)
        if best is not None:
            f["inherited_from"] = best[1]


# ----------------------------------------------------------------------------- the public entry point
def diverge(model: Any, prog: Any, inputs: Any, labels: Optional[Sequence[int]] = None, *,
            samples: Optional[int] = None, n_steps: Optional[int] = None, model_name: Optional[str] = None,
            factory: Optional[str] = None, input_shape: Optional[Sequence[int]] = None,
            device: Any = None) -> DivergenceReport:
    """Run ``model`` (float) and program ``prog`` (the chip) side by side on ``inputs``; return the
    :class:`DivergenceReport` (users call :func:`snnc.diverge`, which also takes an artifact or its path).

    ``model``: what was compiled (a path, module, NIR graph); ``prog``: a loaded
    :class:`~snnc.runtime.api.Program` (Loihi or Speck); ``inputs``: event counts (B, T, ...) as an array, ``"nmnist"``, a
    ``.npy`` file or recording files (``samples``: at most that many; ``n_steps``: steps per
    recording, default the model's). ``labels`` add accuracies.
    """
    from snnc.runtime.loading import open_model

    loaded = open_model(model, input_shape, model_name=model_name, factory=factory)
    graph, info = loaded.graph, loaded.info
    fw = prog.manifest.get("framework")
    if fw and not info.adapted:
        from snnc.compiler.frontends.conventions import adapt

        graph = adapt(graph, fw, export_dt_s=0.0)
    return _run(graph, info.dt_s, prog, inputs, labels, samples, n_steps, device)


def _run(graph: Any, model_dt: Optional[float], prog: Any, inputs: Any, labels: Optional[Sequence[int]],
         samples: Optional[int], n_steps: Optional[int], device: Any) -> DivergenceReport:
    """The report for a float ``graph`` (its own step ``model_dt``, None: unknown) against program ``prog``.

    The target runs the ladder (:meth:`snnc.targets.base.Target.divergence_runs`); this compares every rung
    with the float model and attributes each diverging entry to the first rung where it departs.
    """
    x, y, desc = read_inputs(prog, inputs, samples, n_steps)
    if labels is not None:
        y = np.asarray(list(labels), dtype=np.int64)[: x.shape[0]]
    dt_chip = float(prog.manifest["options"]["dt_s"])
    method = str(prog.manifest["options"].get("method", "exact"))
    dt_model = float(model_dt) if model_dt is not None else dt_chip
    notes = [f"inputs: {desc}"]
    if model_dt is None:
        notes.append("the model states no time step: compared at the program's (no dt mismatch can be named)")
    runs = prog.target.divergence_runs(graph, prog.artifact.payload, prog.manifest, x, dt_model, device)
    notes += runs.notes
    fref = _float_reference(graph, x, dt_model, method)
    keys = runs.keys
    names = _labels(prog)
    layers: List[LayerDivergence] = []
    divs: Dict[str, np.ndarray] = {}
    for lr in runs.layers:
        rungs = lr.rungs
        ref = fref.get(lr.name)
        if ref is None:  # the float simulator records no state for memoryless layers: use the float twin
            ref = rungs[0]
            notes.append(f"layer {lr.name}: compared against the float twin (the float simulator records no "
                         "state for it)")
        label = names.get(lr.name, lr.name)
        if lr.kind == "readout":
            layers.append(_compare_readout(lr.name, label, lr.lag_steps, ref, rungs, keys))
            continue
        if lr.binary:
            ref, rungs = ref != 0, [r != 0 for r in rungs]
        layers.append(_compare_spiking(lr.name, label, lr.lag_steps, ref, rungs, keys, lr.shape))
        divs[lr.name] = ref != rungs[-1]
    _inherit(layers, divs, {lr.name: lr.sources for lr in runs.layers})
    pf = _predictions(fref["__output__"])
    pc = pf if runs.chip_output is None else _predictions(runs.chip_output)
    rep = DivergenceReport(target=prog.target.name, dt_model_s=dt_model, dt_chip_s=dt_chip, samples=int(x.shape[0]),
                           steps=int(x.shape[1]), layers=layers, ladder=keys[1:], notes=notes,
                           predictions={"agreement": float(np.mean(pf == pc))})
    if y is not None:
        rep.predictions["float_accuracy"] = float(np.mean(pf == y))
        rep.predictions["chip_accuracy"] = float(np.mean(pc == y))
    _cause_details(rep, prog)
    return rep


def _float_reference(graph: Any, x: np.ndarray, dt: float, method: str) -> Dict[str, np.ndarray]:
    """The float model: the cpu target's simulator (float64) on the cpu-passed graph; output per layer name."""
    from snnc.compiler.pipeline import run_pipeline
    from snnc.targets.base import CompileOptions, get_target

    cpu = get_target("cpu")
    passed = run_pipeline(graph, cpu.passes())
    opts = CompileOptions(dt_s=dt, method=method)
    res = cpu.simulate(cpu.lower(passed, opts).payload, {"options": opts.to_dict()}, x, record=True)
    out = {n: _flat(np.asarray(s["spikes"] if "spikes" in s else s["v"])) for n, s in res.states.items()
           if "spikes" in s or "v" in s}
    out["__output__"] = _flat(np.asarray(res.output))
    return out


def _labels(prog: Any) -> Dict[str, str]:
    return {r["name"]: r["label"] for r in prog.manifest.get("report", {}).get("summary", [])}


def _cause_details(rep: DivergenceReport, prog: Any) -> None:
    """Add what the compile report knows to each layer's first cause (rounded weights, decay errors)."""
    quant = prog.manifest.get("report", {}).get("quantization", {})
    for ly in rep.layers:
        f = ly.first
        if f is None:
            continue
        q = quant.get(ly.name, {})
        c = f["cause"]
        detail = CAUSES.get(c, c)
        if c == "weight_zero":
            z = q.get("weights_rounded_to_zero", q.get("rounded_to_zero", {}).get("weights") if isinstance(
                q.get("rounded_to_zero"), dict) else None)
            if z is not None:
                detail += f": {z} non-zero weight(s) of this layer are 0 on the chip (scale {q.get('scale', 0):.4g})"
        elif c == "decay_rounding" and q.get("tau_ratio_error"):
            detail += ": relative decay errors " + ", ".join(f"{k} {v:+.2e}" for k, v in q["tau_ratio_error"].items())
        elif c == "dt_mismatch":
            detail += f": compiled at {rep.dt_chip_s:g} s, the model's step is {rep.dt_model_s:g} s"
        f["cause_text"] = detail


# ----------------------------------------------------------------------------- compile-time (-O diverge=DATA)
def at_compile(graph: Any, model_dt: Optional[float], prog: Any, opts: Mapping[str, Any]) -> Dict[str, Any]:
    """Run the report for ``snnc.compile(..., diverge=DATA)`` on the compiled program ``prog``; return the compile
    report's ``divergence`` section."""
    unknown = sorted(set(opts) - set(OPTION_HELP))
    if unknown:
        raise InputError(f"unknown divergence option(s) {unknown}", hint=f"known: {sorted(OPTION_HELP)}")
    samples = int(opts.get("diverge_samples", DEFAULT_SAMPLES))
    plot = opts.get("diverge_plot")
    if plot:
        from snnc.runtime.plot import check_format

        check_format(str(plot))
    rep = _run(graph, model_dt, prog, opts["diverge"], None, samples, None, None)
    d = rep.to_dict()
    d["text"] = rep.format()
    if plot:
        d["plot"] = rep.plot(str(plot))
    return d
