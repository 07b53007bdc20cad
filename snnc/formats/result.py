"""The result of running a compiled program, whatever the target or backend."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict

import numpy as np


@dataclass
class Result:
    """Output spikes (or values) of a run, with optional recorded states and activity counts.

    ``output`` is (batch, T, *output_shape). ``states[layer][var]`` is (batch, T, *shape) for each
    recorded state variable. ``spike_counts[layer]`` and ``synops[layer]`` are per-sample totals
    (batch,): spikes emitted by the layer, and synaptic operations (accumulates) it performed.
    """

    output: np.ndarray
    states: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    spike_counts: Dict[str, np.ndarray] = field(default_factory=dict)
    synops: Dict[str, np.ndarray] = field(default_factory=dict)
    neurons: Dict[str, int] = field(default_factory=dict)
    meta: Dict[str, Any] = field(default_factory=dict)

    def predictions(self) -> np.ndarray:
        """Return per-sample class predictions: argmax of output spike counts (or summed values)."""
        out = self.output.reshape(self.output.shape[0], self.output.shape[1], -1)
        return out.sum(axis=1).argmax(axis=-1)

    def firing_rates(self) -> Dict[str, float]:
        """Return mean spikes per neuron per step for each layer."""
        steps = self.output.shape[1]
        return {k: float(np.mean(v)) / (steps * max(self.neurons.get(k, 1), 1))
                for k, v in self.spike_counts.items()}
