"""Evaluating a compiled program on a data set: accuracy, confusion, activity, latency.

One loop (:func:`evaluate_batches`) serves ``snn-run --input DIR``, :meth:`snnc.Program.evaluate`,
``snn-train``'s deployed evaluation and the compile-time ``-O validate=...``: it runs batches
through any ``run(x) -> Result`` function, pads each batch with the program's latency (so the
output of a program whose spikes arrive ``latency_steps`` late still sees the whole input), and
accumulates predictions, per-layer spikes and synaptic operations.

A sample whose output emitted nothing has no prediction: it is counted wrong, reported as
``silent`` and predicted ``-1`` (never silently class 0).
"""
from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from snnc.errors import InputError
from snnc.formats.result import Result

log = logging.getLogger(__name__)

#: Prediction given to a sample whose output emitted no spike (and has no value to rank).
NO_PREDICTION = -1


@dataclass
class Evaluation:
    """What a program did on a labelled (or unlabelled) set of samples.

    ``predictions`` per sample (``-1``: the output emitted nothing); ``accuracy`` and
    ``confusion[label, prediction]`` (last column: no prediction) when labels are known;
    ``spikes_per_sample`` and ``synops_per_sample`` per layer (means over samples);
    ``latency_steps`` of the program; ``steps`` per sample (input steps, before the latency padding).
    """

    n: int
    predictions: np.ndarray
    labels: Optional[np.ndarray] = None
    accuracy: Optional[float] = None
    confusion: Optional[np.ndarray] = None
    classes: int = 0
    silent: int = 0
    spikes_per_sample: Dict[str, float] = field(default_factory=dict)
    synops_per_sample: Dict[str, float] = field(default_factory=dict)
    firing_rate: Dict[str, float] = field(default_factory=dict)
    latency_steps: int = 0
    steps: int = 0
    files: List[str] = field(default_factory=list)
    #: What each layer is ("Conv2d 2->12 5x5/2 -> LIF 12x15x15"), from the compile report.
    layer_labels: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    meta: Dict[str, Any] = field(default_factory=dict)
    #: With ``keep_outputs``: output (n, T, ...) (zero-padded to the longest sample) and per-layer spike counts.
    outputs: Optional[np.ndarray] = None
    spike_counts: Dict[str, np.ndarray] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-able dict (arrays as lists; outputs left out)."""
        d = asdict(self)
        d.pop("outputs")
        d.pop("spike_counts")
        for k in ("predictions", "labels", "confusion"):
            if d[k] is not None:
                d[k] = np.asarray(d[k]).tolist()
        return d

    def format(self) -> str:
        """Return the text ``snn-run`` prints: accuracy, confusion matrix, activity per layer."""
        lines = []
        if self.accuracy is not None:
            lines.append(f"accuracy: {100 * self.accuracy:.2f} % ({int(round(self.accuracy * self.n))}/{self.n})")
        else:
            lines.append(f"{self.n} sample(s), no labels (give --labels, a DIR/<class>/file layout or FSDD names)")
        if self.silent:
            lines.append(f"warning: {self.silent} sample(s) with no output spike: no prediction (counted wrong)")
        if self.confusion is not None:
            k = self.classes
            head = "true\\pred " + " ".join(f"{c:>4d}" for c in range(k)) + ("  none" if self.silent else "")
            lines += ["confusion matrix (rows: label, columns: prediction):", head]
            for r in range(k):
                row = self.confusion[r]
                cells = " ".join(f"{int(v):>4d}" for v in row[:k])
                lines.append(f"{r:>9d} {cells}" + (f"  {int(row[k]):>4d}" if self.silent else ""))
        lines.append(f"latency: {self.latency_steps} step(s) ({self.steps} input steps per sample)")
        if self.spikes_per_sample:
            names = {n: self.layer_labels.get(n, n) for n in self.spikes_per_sample}
            w = max(len(n) for n in names.values())
            lines.append(f"{'layer':{w}s}  {'spikes/sample':>13s}  {'synops/sample':>13s}  {'rate':>8s}")
            for name in self.spikes_per_sample:
                lines.append(f"{names[name]:{w}s}  {self.spikes_per_sample[name]:13.1f}  "
                             f"{self.synops_per_sample.get(name, float('nan')):13.0f}  "
                             f"{self.firing_rate.get(name, float('nan')):8.4f}")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def predictions_of(result: Result) -> np.ndarray:
    """Return per-sample predictions (argmax of the output summed over time); ``-1`` where it is all zero."""
    out = result.output.reshape(result.output.shape[0], result.output.shape[1], -1).sum(axis=1)
    pred = out.argmax(axis=-1).astype(np.int64)
    pred[~np.any(out != 0, axis=-1)] = NO_PREDICTION
    return pred


def pad_latency(x: np.ndarray, latency_steps: int) -> np.ndarray:
    """Return ``x`` (batch, T, ...) with ``latency_steps`` zero steps appended."""
    if latency_steps <= 0:
        return x
    return np.concatenate([x, np.zeros((x.shape[0], latency_steps) + x.shape[2:], dtype=x.dtype)], axis=1)


def _progress(total: int, show: Optional[bool], desc: str) -> Any:
    """Return a tqdm bar on stderr when it is a terminal (or ``show=True``), else a silent stand-in."""
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        class _Null:
            def update(self, n: int) -> None: ...
            def close(self) -> None: ...
        return _Null()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", file=sys.stderr, leave=False)


def evaluate_batches(run: Callable[[np.ndarray], Result], batches: Iterable[np.ndarray],
                     labels: Optional[Sequence[int]] = None, *, n: Optional[int] = None, latency_steps: int = 0,
                     classes: Optional[int] = None, progress: Optional[bool] = None,
                     desc: str = "evaluating", keep_outputs: bool = False) -> Evaluation:
    """Run every batch (batch, T, *shape) through ``run`` and return the :class:`Evaluation`."""
    preds: List[np.ndarray] = []
    spikes: Dict[str, float] = {}
    synops: Dict[str, float] = {}
    rate_sum: Dict[str, float] = {}
    neurons: Dict[str, int] = {}
    outputs: List[np.ndarray] = []
    counts: Dict[str, List[np.ndarray]] = {}
    seen = 0
    steps = 0
    out_classes = 0
    bar = _progress(int(n or 0), progress, desc)
    try:
        for x in batches:
            x = np.asarray(x)
            if x.shape[0] == 0:
                continue
            if x.shape[1] == 0:
                raise InputError("an input has zero time steps", hint="check the recording and --steps")
            steps = max(steps, int(x.shape[1]))
            res = run(pad_latency(x, latency_steps))
            preds.append(predictions_of(res))
            if keep_outputs:
                outputs.append(res.output)
                for k, c in res.spike_counts.items():
                    counts.setdefault(k, []).append(np.asarray(c))
            out_classes = int(np.prod(res.output.shape[2:]))
            b = x.shape[0]
            for k, c in res.spike_counts.items():
                spikes[k] = spikes.get(k, 0.0) + float(np.sum(c))
                rate_sum[k] = rate_sum.get(k, 0.0) + float(np.sum(c)) / max(res.output.shape[1], 1)
            for k, c in res.synops.items():
                synops[k] = synops.get(k, 0.0) + float(np.sum(c))
            neurons.update(res.neurons)
            seen += b
            bar.update(b)
    finally:
        bar.close()
    if seen == 0:
        raise InputError("no samples to evaluate", hint="check --input (and --limit)")
    pred = np.concatenate(preds)
    ev = Evaluation(n=seen, predictions=pred, classes=int(classes or out_classes), latency_steps=int(latency_steps),
                    steps=steps, silent=int(np.sum(pred == NO_PREDICTION)))
    ev.spikes_per_sample = {k: v / seen for k, v in spikes.items()}
    ev.synops_per_sample = {k: v / seen for k, v in synops.items()}
    ev.firing_rate = {k: v / seen / max(neurons.get(k, 1), 1) for k, v in rate_sum.items()}
    if keep_outputs:
        t = max(o.shape[1] for o in outputs)
        ev.outputs = np.concatenate([np.pad(o, [(0, 0), (0, t - o.shape[1])] + [(0, 0)] * (o.ndim - 2))
                                     for o in outputs])
        ev.spike_counts = {k: np.concatenate(v) for k, v in counts.items()}
    if labels is not None:
        y = np.asarray(list(labels), dtype=np.int64).reshape(-1)
        if y.size != seen:
            raise InputError(f"{y.size} labels for {seen} samples", hint="one label per input sample")
        ev.labels = y
        ev.accuracy = float(np.mean(pred == y))
        k = max(ev.classes, int(y.max()) + 1 if y.size else 0)
        ev.classes = k
        conf = np.zeros((k, k + 1), dtype=np.int64)
        for t, p in zip(y, pred):
            conf[int(t), k if p == NO_PREDICTION or p >= k else int(p)] += 1
        ev.confusion = conf
    if ev.silent:
        log.warning("%d of %d sample(s) produced no output spike: no prediction, counted wrong", ev.silent, seen)
    return ev


def array_batches(x: np.ndarray, batch_size: int) -> Iterable[np.ndarray]:
    """Yield consecutive batches of at most ``batch_size`` samples of ``x``."""
    for a in range(0, x.shape[0], max(1, int(batch_size))):
        yield x[a:a + batch_size]
