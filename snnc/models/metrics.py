"""Accuracy, activity and cost metrics of spiking models, on the float model or on a ``snnc.Result``.

Definitions (all per inference = one sample over its whole sequence):

* **effective synaptic operations** (NeuroBench "effective ACs/MACs", the ``MFLOPs`` of SkipSNN):
  for every non-zero input element of a Linear/Conv2d layer, the number of non-zero weights it
  drives (its fan-out). Elements equal to 1 (spikes) count as accumulates (**ACs**), other
  non-zero elements (event counts > 1, analog values) as multiply-accumulates (**MACs**).
  ``synops = ACs + MACs`` is what :class:`snnc.Result` ``.synops`` counts on the cpu target.
* **MFLOPs** = synops / 1e6 (SkipSNN's convention: one effective AC or MAC = one FLOP).
* **NASFR** (ASA-SNN's network average spike firing rate) = total spikes / (T x neurons) over all
  spiking layers, averaged over samples.
* **activation sparsity** = 1 - NASFR (fraction of neuron-steps without a spike).
* **awake ratio** (SkipSNN): fraction of steps at which the gate was open.

Checked against NeuroBench 2.3.0's own metric code (``tests/test_metrics_neurobench.py``, zoo
checkpoints on real recordings): ``synops`` equals its ``Effective_ACs + Effective_MACs`` and
``activation sparsity`` its ``ActivationSparsity`` when only spiking populations are registered
with it. Where the definitions differ: NeuroBench classes a whole layer call (one step of a
batch) as MACs as soon as one input is not 0 or +-1, snnc each input element; its ``Dense``
counts zero weights, snnc's ``dense_macs`` does not; it sees only ``nn.Linear``/``nn.Conv*``
layers (snnc also modules with ``conv_spec``, e.g. the minimum-latency net's merged conv); it has
no MFLOPs and no NASFR (``1 - ActivationSparsity`` over spiking populations is NASFR).

Energy per inference (:func:`energy_per_inference`) multiplies the counts by published
per-operation energies; see :data:`ENERGY_MODELS` for the figures and their sources. These are
order-of-magnitude estimates, not measurements.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- predictions
def count_predictions(output: Any) -> np.ndarray:
    """Return argmax over classes of the output summed over time (first index wins ties).

    ``output`` is (batch, T, classes...) numpy or torch; this is :meth:`snnc.Result.predictions`.
    """
    out = output.detach().cpu().numpy() if hasattr(output, "detach") else np.asarray(output)
    out = out.reshape(out.shape[0], out.shape[1], -1)
    return out.sum(axis=1).argmax(axis=-1)


def accuracy(predictions: Any, labels: Any) -> float:
    """Return the fraction of ``predictions`` equal to ``labels``."""
    p = np.asarray(predictions).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if p.size != y.size:
        raise ValueError(f"{p.size} predictions for {y.size} labels")
    return float((p == y).mean()) if y.size else float("nan")


# --------------------------------------------------------------------------- float-model recorder
@dataclass
class ActivityStats:
    """Totals over ``samples`` samples of ``steps`` steps, per layer name.

    ``spikes[l]``: spikes emitted; ``neurons[l]``: population size; ``acs[l]``/``macs[l]``:
    effective accumulates / multiply-accumulates of synaptic layer ``l``; ``fanin_dense[l]``:
    dense MACs the same layer would do on every step (for comparison with an ANN).
    """

    samples: int = 0
    steps: int = 0
    spikes: Dict[str, float] = field(default_factory=dict)
    neurons: Dict[str, int] = field(default_factory=dict)
    acs: Dict[str, float] = field(default_factory=dict)
    macs: Dict[str, float] = field(default_factory=dict)
    dense_macs: Dict[str, float] = field(default_factory=dict)

    def merge(self, other: "ActivityStats") -> "ActivityStats":
        """Add ``other`` (same model, more samples) into this one and return self."""
        if self.steps and other.steps and self.steps != other.steps:
            raise ValueError(f"cannot merge stats of {self.steps} and {other.steps} steps")
        self.steps = self.steps or other.steps
        self.samples += other.samples
        for name in ("spikes", "acs", "macs", "dense_macs"):
            mine, theirs = getattr(self, name), getattr(other, name)
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0.0) + v
        self.neurons.update(other.neurons)
        return self

    def summary(self) -> Dict[str, Any]:
        """Return per-inference metrics: synops, MFLOPs, NASFR, sparsity, per-layer rates."""
        n = max(self.samples, 1)
        acs = sum(self.acs.values()) / n
        macs = sum(self.macs.values()) / n
        total_neurons = sum(self.neurons.values())
        total_spikes = sum(self.spikes.values()) / n
        nasfr = total_spikes / (self.steps * total_neurons) if self.steps and total_neurons else float("nan")
        return {
            "samples": self.samples, "steps": self.steps,
            "acs": acs, "macs": macs, "synops": acs + macs, "mflops": (acs + macs) / 1e6,
            "dense_macs": sum(self.dense_macs.values()) / n,
            "spikes": total_spikes, "neurons": total_neurons, "nasfr": nasfr,
            "neuron_updates": float(total_neurons * self.steps),
            "activation_sparsity": 1.0 - nasfr if nasfr == nasfr else float("nan"),
            "firing_rate": {k: self.spikes[k] / (n * self.steps * max(self.neurons[k], 1))
                            for k in self.spikes} if self.steps else {},
            "synops_per_layer": {k: (self.acs.get(k, 0.0) + self.macs.get(k, 0.0)) / n
                                 for k in sorted(set(self.acs) | set(self.macs))},
        }


class ActivityRecorder:
    """Context manager counting spikes and effective synaptic operations of a float model.

    Hooks every snnc neuron module (its outputs are spikes when it is a spiking kind) and every
    ``nn.Linear``/``nn.Conv2d`` (its inputs times fan-outs). Use as::

        with ActivityRecorder(model) as rec:
            out = run_sequence(model, x)
        stats = rec.stats(samples=x.shape[0], steps=x.shape[1])

    Models that are not step-wise (``forward_sequence``) may call :meth:`record_spikes` and
    :meth:`record_synapse` themselves; the hooks see (batch*T, ...) inputs then, which is fine.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self._handles: List[Any] = []
        self._fan: Dict[Tuple[str, tuple], Any] = {}
        self._stats = ActivityStats()

    # -- hooks
    def __enter__(self) -> "ActivityRecorder":
        from torch import nn

        from snnc.models.neurons import SpikingNeuron

        for name, m in self.model.named_modules():
            name = name or type(m).__name__
            if isinstance(m, SpikingNeuron) and m.node_cls.spiking:
                self._handles.append(m.register_forward_hook(self._neuron_hook(name)))
            elif isinstance(m, (nn.Linear, nn.Conv2d)) or hasattr(m, "conv_spec"):
                self._handles.append(m.register_forward_hook(self._synapse_hook(name)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _neuron_hook(self, name: str) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            self.record_spikes(name, output)
        return hook

    def _synapse_hook(self, name: str) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            self.record_synapse(name, module, inputs[0], output)
        return hook

    # -- recording
    def record_spikes(self, name: str, spikes: Any) -> None:
        """Add the spikes of one step (batch, *shape) of population ``name``."""
        s = spikes.detach()
        self._stats.spikes[name] = self._stats.spikes.get(name, 0.0) + float(s.sum())
        self._stats.neurons[name] = int(s[0].numel())

    def record_synapse(self, name: str, module: Any, x: Any, y: Any) -> None:
        """Add the effective ACs/MACs of ``module`` applied to ``x`` (batch, *in_shape).

        ``module`` is an ``nn.Linear``, an ``nn.Conv2d`` or any module with ``conv_spec()``
        returning a dict with ``weight``, ``stride``, ``padding``, ``dilation``, ``groups``.
        """
        import torch

        x = x.detach()
        spec = _conv_spec(module)
        fan = self._fanout(name, spec, tuple(x.shape[1:]), tuple(y.shape[1:]), x.dtype, x.device,
                           weight=getattr(module, "weight", None))
        b = x.shape[0]
        nz = (x != 0).to(fan.dtype)
        ones = (x == 1).to(fan.dtype)
        ac = float((ones * fan).reshape(b, -1).sum())
        total = float((nz * fan).reshape(b, -1).sum())
        self._stats.acs[name] = self._stats.acs.get(name, 0.0) + ac
        self._stats.macs[name] = self._stats.macs.get(name, 0.0) + (total - ac)
        dense = float(fan.sum()) * b if spec is None else float(y[0].numel()) * float(spec["weight"][0].numel()) * b
        self._stats.dense_macs[name] = self._stats.dense_macs.get(name, 0.0) + dense

    def _fanout(self, name: str, spec: Optional[Dict[str, Any]], in_shape: tuple, out_shape: tuple,
                dtype: Any, device: Any, weight: Any = None) -> Any:
        import torch
        import torch.nn.functional as F

        w = (spec["weight"] if spec is not None else weight).detach()
        nzw = (w != 0).to(dtype)
        key = (name, in_shape)
        cached = self._fan.get(key)
        if cached is not None and torch.equal(cached[0], nzw):
            return cached[1]
        if spec is None:
            fan = nzw.sum(0)
        else:
            st, pd, dl = spec["stride"], spec["padding"], spec["dilation"]
            ones = torch.ones((1,) + out_shape, dtype=dtype, device=device)
            full = [(out_shape[1 + d] - 1) * st[d] - 2 * pd[d] + dl[d] * (w.shape[2 + d] - 1) + 1 for d in range(2)]
            opad = (in_shape[1] - full[0], in_shape[2] - full[1])
            fan = F.conv_transpose2d(ones, nzw, stride=st, padding=pd, dilation=dl, groups=spec["groups"],
                                     output_padding=opad)[0]
        self._fan[key] = (nzw, fan)
        return fan

    def stats(self, samples: int, steps: int) -> ActivityStats:
        """Return the totals recorded so far for ``samples`` samples of ``steps`` steps; reset."""
        out = self._stats
        out.samples, out.steps = int(samples), int(steps)
        self._stats = ActivityStats()
        return out


def _conv_spec(module: Any) -> Optional[Dict[str, Any]]:
    """Return the conv description of ``module`` (None for a Linear layer)."""
    import torch

    if hasattr(module, "conv_spec"):
        return module.conv_spec()
    if isinstance(module, torch.nn.Conv2d):
        return {"weight": module.weight, "stride": module.stride, "padding": module.padding,
                "dilation": module.dilation, "groups": module.groups}
    return None


def measure(model: Any, x: Any, forward: Optional[Any] = None) -> Tuple[Any, ActivityStats]:
    """Run ``model`` over ``x`` (batch, T, ...) without gradients; return (output, ActivityStats).

    ``forward`` (default :func:`snnc.models.neurons.run_sequence`) is called as ``forward(model, x)``.
    """
    import torch

    from snnc.models.neurons import run_sequence

    fwd = forward or run_sequence
    with torch.no_grad(), ActivityRecorder(model) as rec:
        out = fwd(model, x)
    return out, rec.stats(samples=x.shape[0], steps=x.shape[1])


# --------------------------------------------------------------------------- Result metrics
def result_metrics(result: Any, labels: Optional[Sequence[int]] = None,
                   exclude: Sequence[str] = ()) -> Dict[str, Any]:
    """Return accuracy (if ``labels``), spikes, synops, MFLOPs, NASFR and sparsity of a ``snnc.Result``.

    ``exclude`` names layers left out of NASFR (e.g. helper populations such as gate neurons).
    """
    steps = int(result.output.shape[1])
    samples = int(result.output.shape[0])
    layers = [k for k in result.spike_counts if k not in set(exclude)]
    spikes = {k: float(np.mean(result.spike_counts[k])) for k in layers}
    neurons = {k: int(result.neurons.get(k, 0)) for k in layers}
    total_neurons = sum(neurons.values())
    nasfr = sum(spikes.values()) / (steps * total_neurons) if total_neurons else float("nan")
    synops = {k: float(np.mean(v)) for k, v in result.synops.items()}
    out: Dict[str, Any] = {
        "samples": samples, "steps": steps, "spikes": sum(spikes.values()), "neurons": total_neurons,
        "neuron_updates": float(total_neurons * steps),
        "nasfr": nasfr, "activation_sparsity": 1.0 - nasfr if nasfr == nasfr else float("nan"),
        "synops": sum(synops.values()), "mflops": sum(synops.values()) / 1e6,
        "synops_per_layer": synops,
        "firing_rate": {k: spikes[k] / (steps * max(neurons[k], 1)) for k in layers},
    }
    if labels is not None:
        out["accuracy"] = accuracy(result.predictions(), labels)
    return out


# --------------------------------------------------------------------------- energy
#: Per-operation energies in joules, with their sources. ``None`` = not published.
ENERGY_MODELS: Dict[str, Dict[str, Any]] = {
    "cmos45nm": {
        "ac_j": 0.9e-12, "mac_j": 4.6e-12, "spike_j": 0.0, "neuron_update_j": 0.0, "static_w": 0.0,
        "source": "M. Horowitz, 'Computing's energy problem', ISSCC 2014, 45 nm: 32-bit float add "
                  "0.9 pJ, multiply 3.7 pJ (MAC = 4.6 pJ). The convention of SkipSNN/ASA-SNN-style "
                  "energy estimates; arithmetic only, no memory access.",
    },
    "loihi": {
        "ac_j": 23.6e-12, "mac_j": 23.6e-12, "spike_j": 1.7e-12, "neuron_update_j": 52e-12, "static_w": 0.0,
        "source": "M. Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', "
                  "IEEE Micro 38(1), 2018, Table 1 (Loihi 1, 14 nm): 23.6 pJ per synaptic spike op, "
                  "52 pJ per active neuron update, 1.7 pJ per within-tile spike. Loihi 2 has no "
                  "published per-op table; these Loihi 1 figures are used as an upper-bound proxy. "
                  "Graded (count) inputs are charged as one synaptic op per event.",
    },
    "speck": {
        "ac_j": None, "mac_j": None, "spike_j": None, "neuron_update_j": None, "static_w": 0.42e-3,
        "source": "M. Yao et al., 'Spike-based dynamic computing with asynchronous sensing-computing "
                  "neuromorphic chip', Nature Communications 15:4464, 2024: processor resting power "
                  "0.42 mW (total real-time power down to 0.70 mW). No per-synaptic-op energy is "
                  "published there, so only the resting energy over the inference window is estimated.",
    },
}


def energy_per_inference(synops: Mapping[str, float], hardware: str = "cmos45nm",
                         duration_s: float = 0.0) -> Dict[str, Any]:
    """Return an energy estimate (joules) for one inference from per-inference counts.

    ``synops`` holds ``acs``, ``macs`` and optionally ``spikes`` and ``neuron_updates`` (e.g.
    :meth:`ActivityStats.summary` or :func:`result_metrics` output; a plain ``synops`` key is
    taken as ACs when ``acs`` is missing). ``duration_s`` (sequence length x dt) charges static
    power where the model has it. Unknown per-op figures contribute nothing and are listed under
    ``unknown``.
    """
    if hardware not in ENERGY_MODELS:
        raise ValueError(f"unknown hardware '{hardware}'; known: {sorted(ENERGY_MODELS)}")
    m = ENERGY_MODELS[hardware]
    acs = float(synops.get("acs", synops.get("synops", 0.0)))
    macs = float(synops.get("macs", 0.0))
    spikes = float(synops.get("spikes", 0.0))
    updates = float(synops.get("neuron_updates", 0.0))
    parts = {"ac": (acs, m["ac_j"]), "mac": (macs, m["mac_j"]), "spike": (spikes, m["spike_j"]),
             "neuron_update": (updates, m["neuron_update_j"])}
    energy = {k: n * e for k, (n, e) in parts.items() if e is not None}
    energy["static"] = float(m["static_w"]) * float(duration_s)
    unknown = [k for k, (n, e) in parts.items() if e is None and n]
    return {"hardware": hardware, "energy_j": float(sum(energy.values())), "parts_j": energy,
            "unknown": unknown, "source": m["source"]}


def iter_batches(n: int, batch_size: int) -> Iterator[slice]:
    """Yield consecutive slices covering ``range(n)`` in chunks of ``batch_size``."""
    for a in range(0, n, batch_size):
        yield slice(a, min(a + batch_size, n))
