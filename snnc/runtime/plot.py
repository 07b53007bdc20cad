"""Plots of a run: output spike raster and per-layer firing rates."""
from __future__ import annotations

import numpy as np

from snnc.runtime.result import Result


def plot_result(res: Result, path: str, sample: int = 0) -> str:
    """Draw sample ``sample``'s output raster and each layer's firing rate to a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    out = res.output[sample].reshape(res.output.shape[1], -1)
    t, n = np.nonzero(out)
    ax1.scatter(t, n, s=6, marker="|", color="k")
    ax1.set_xlabel("time step")
    ax1.set_ylabel("output neuron")
    ax1.set_title(f"output spikes, sample {sample}")
    ax1.set_xlim(-0.5, out.shape[0] - 0.5)
    rates = res.firing_rates()
    names = list(rates)
    ax2.bar(range(len(names)), [rates[k] for k in names], color="tab:blue")
    ax2.set_xticks(range(len(names)))
    ax2.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax2.set_ylabel("spikes / neuron / step")
    ax2.set_title("firing rate per layer")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
