"""Pictures of a run and of an evaluation, written exactly to the path given (format from its suffix).

* :func:`plot_sample`: one sample's input raster, every spiking layer's raster, the output raster
  with label and prediction, and membrane traces of a few neurons when states were recorded; time
  in milliseconds.
* :func:`plot_evaluation`: the confusion matrix and the per-layer firing rates over a data set.
"""
from __future__ import annotations

import os
from typing import Any, List, Optional

import numpy as np

from snnc.errors import InputError
from snnc.formats.result import Result


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_format(path: str) -> str:
    """Return the image format of ``path``'s suffix; raise :class:`InputError` for one matplotlib cannot write."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    plt = _plt()
    fig = plt.figure()
    try:
        supported = fig.canvas.get_supported_filetypes()
    finally:
        plt.close(fig)
    if ext not in supported:
        raise InputError(f"unknown picture format '.{ext}'" if ext else "the picture path has no suffix", file=path,
                         hint=f"use one of {', '.join('.' + k for k in sorted(supported))}")
    return ext


def _save(fig: Any, path: str) -> str:
    from snnc.files import atomic_target

    fmt = check_format(path)
    plt = _plt()
    try:
        with atomic_target(path, "picture") as tmp:
            fig.savefig(tmp, format=fmt, dpi=110, metadata={"Software": None} if fmt == "png" else None)
    finally:
        plt.close(fig)
    return path


def _raster(ax: Any, spikes: np.ndarray, dt_ms: float, title: str, color: str = "k", max_rows: int = 400,
            size: float = 2.0) -> None:
    """Draw a (T, ...) spike array as a raster (time in ms); rows above ``max_rows`` are subsampled."""
    s = np.asarray(spikes).reshape(spikes.shape[0], -1)
    n = s.shape[1]
    step = max(1, n // max_rows)
    t, i = np.nonzero(s[:, ::step])
    ax.scatter(t * dt_ms, i * step, s=size, marker="|", color=color, linewidths=0.6 if size <= 2 else 1.2)
    ax.set_xlim(0, s.shape[0] * dt_ms)
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_ylabel("neuron" if step == 1 else f"neuron (1 in {step})")
    ax.set_title(title, fontsize=9, loc="left")


def plot_sample(res: Result, x: np.ndarray, path: str, dt_s: float, label: Optional[int] = None,
                title: str = "", sample: int = 0, traces: int = 4) -> str:
    """Draw sample ``sample`` of ``res`` (input ``x`` (T, ...) as fed, rasters, output, traces) to ``path``."""
    from snnc.runtime.evaluate import predictions_of

    plt = _plt()
    dt_ms = dt_s * 1e3
    layers = [k for k, st in res.states.items() if "spikes" in st] if res.states else []
    has_v = [k for k in layers if "v" in res.states[k]]
    rows: List[str] = ["input"] + layers[:-1] + ["output"] + (["traces"] if has_v else [])
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.6 + 1.5 * len(rows)), sharex=True, squeeze=False)
    axes = axes[:, 0]
    xin = np.asarray(x)
    _raster(axes[0], (xin != 0).astype(np.uint8), dt_ms, f"input {tuple(xin.shape[1:])}: {int(np.count_nonzero(xin))} "
                                                             "non-zero entries", color="tab:gray")
    for ax, name in zip(axes[1:], layers[:-1]):
        sp = res.states[name]["spikes"][sample]
        _raster(ax, sp, dt_ms, f"layer {name}: {int(np.sum(sp))} spikes")
    pred = int(predictions_of(res)[sample])
    out = res.output[sample]
    head = f"output: prediction {'none (no spike)' if pred < 0 else pred}" + \
        ("" if label is None else f", label {label}" + (" (correct)" if label == pred else " (WRONG)"))
    ax = axes[len(layers[:-1]) + 1]
    _raster(ax, out, dt_ms, head, color="tab:red", size=30)
    flat = out.reshape(out.shape[0], -1)
    ax.set_yticks(range(flat.shape[1]) if flat.shape[1] <= 16 else [])
    if pred >= 0 and flat.shape[1] <= 64:
        ax.axhline(pred, color="tab:red", alpha=0.15, lw=6)
    if has_v:
        ax = axes[-1]
        name = has_v[-1]
        v = res.states[name]["v"][sample].reshape(res.states[name]["v"].shape[1], -1)
        first = [c for c in (pred, label) if c is not None and 0 <= c < v.shape[1] and name == layers[-1]]
        rest = [int(k) for k in np.argsort(-v.max(axis=0)) if int(k) not in first]
        pick = list(dict.fromkeys(first + rest))[:traces]
        t = np.arange(v.shape[0]) * dt_ms
        for k in pick:
            tag = " (prediction)" if k == pred and name == layers[-1] else \
                " (label)" if k == label and name == layers[-1] else ""
            ax.plot(t, v[:, k], lw=0.8, label=f"neuron {int(k)}{tag}")
        ax.set_ylabel("v (target units)")
        ax.set_title(f"membrane of layer {name}: {len(pick)} neurons", fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="upper right", ncol=len(pick))
    axes[-1].set_xlabel("time (ms)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_evaluation(ev: Any, path: str) -> str:
    """Draw an :class:`~snnc.runtime.evaluate.Evaluation`'s confusion matrix and per-layer firing rates."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1, 1.2]})
    if ev.confusion is not None:
        k = ev.classes
        conf = np.asarray(ev.confusion)[:, :k]
        im = ax1.imshow(conf, cmap="Blues")
        for (r, c), v in np.ndenumerate(conf):
            if v:
                ax1.text(c, r, str(int(v)), ha="center", va="center", fontsize=7,
                         color="white" if v > conf.max() / 2 else "black")
        ax1.set_xticks(range(k))
        ax1.set_yticks(range(k))
        ax1.set_xlabel("prediction")
        ax1.set_ylabel("label")
        ax1.set_title(f"accuracy {100 * ev.accuracy:.2f} % on {ev.n} samples"
                      + (f" ({ev.silent} silent)" if ev.silent else ""), fontsize=10)
        fig.colorbar(im, ax=ax1, fraction=0.046)
    else:
        ax1.text(0.5, 0.5, "no labels", ha="center", va="center")
        ax1.axis("off")
    names = list(ev.firing_rate)
    ax2.bar(range(len(names)), [ev.firing_rate[n] for n in names], color="tab:blue")
    ax2.set_xticks(range(len(names)))
    ax2.set_xticklabels([getattr(ev, "layer_labels", {}).get(n, n) for n in names], rotation=20, ha="right",
                        fontsize=7)
    ax2.set_ylabel("spikes / neuron / step")
    ax2.set_title("firing rate per layer (mean over samples)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
