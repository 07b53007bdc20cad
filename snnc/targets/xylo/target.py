"""The ``xylo`` target: SynSense Xylo Audio 2 / IMU SNN core, bit-exact against Rockpool's XyloSim.

Artifact payload: ``xylo/config.json`` (the configuration file: Rockpool's specification, see
:mod:`snnc.targets.xylo.network`) and ``xylo/run.json`` (latency, host readout). Backends: ``sim``
(snnc's reference simulator, equal to xylosim's C++ model spike for spike and state for state) and
``device`` (a devkit through samna; exit code 3 without samna or devkit).
"""
from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from snnc.artifact import canonical_json
from snnc.compiler.graph import Graph
from snnc.errors import ArtifactError, RuleViolationError, UnsupportedError
from snnc.formats.result import Result
from snnc.targets.base import CompileOptions, Lowered, Target
from snnc.targets.xylo import chip
from snnc.targets.xylo.lower import LoweringResult, lower_graph
from snnc.targets.xylo.network import XyloNetwork

#: Payload blob with the configuration file.
CONFIG_BLOB = "xylo/config.json"
#: Payload blob with how to run the program (latency, host readout).
RUN_BLOB = "xylo/run.json"

#: What the reference simulator is and is not (copied into every compile report).
MODEL_NOTES = (
    "integer for integer equal to Rockpool 3.1.0's XyloSim (xylosim 0.1.3 C++ model), spikes and every "
    "recorded state; not checked against a physical Xylo",
    "input counts above 15 per channel and step are clipped (counted in the run's meta)",
    "every hidden->hidden and hidden->output hop takes one step; input reaches hidden neurons in the same step",
)


def network_from_payload(payload: Mapping[str, bytes]) -> Tuple[XyloNetwork, Dict[str, Any]]:
    """Return the network and run settings stored by :meth:`XyloTarget.lower`."""
    if CONFIG_BLOB not in payload or RUN_BLOB not in payload:
        raise ArtifactError(f"Xylo artifact lacks {CONFIG_BLOB} or {RUN_BLOB}")
    return XyloNetwork.from_config(payload[CONFIG_BLOB].decode()), json.loads(payload[RUN_BLOB])


class XyloTarget(Target):
    """Xylo: 16 inputs, up to 1000 recurrent hidden CubaLIF neurons, 8 outputs, 8-bit weights, bit-shift decays."""

    name = "xylo"
    description = "SynSense Xylo Audio 2 / IMU SNN core (bit-exact reference simulator against Rockpool's XyloSim)"
    backends = ("sim", "device")
    option_help = {
        "chip": "'audio2' (Xylo Audio 2, default) or 'imu' (Xylo IMU)",
        "quantize": "'channel' (per output neuron, default) or 'global' (one scale), as Rockpool offers",
        "threshold_rounding": "'strict' (NIR's v > threshold, default) or 'round' (Rockpool's rounding)",
        "dash_from": "'decay' (from the discretised decay, default) or 'tau' (Rockpool's round(log2(tau/dt)))",
        "weight_shift": "'auto' (default) or 0..7",
    }

    def layer_summary(self, report: Mapping[str, Any], neurons: Mapping[str, int]) -> Dict[str, Dict[str, Any]]:
        """Per population: hidden or output neurons used of the chip's, weights rounded to zero, lag in steps."""
        chip_rep = report.get("chip", {})
        limits = chip_rep.get("limits", {})
        quant = report.get("quantization", {})
        lags = report.get("population_lag_steps", {})
        out: Dict[str, Dict[str, Any]] = {}
        for name, (where, _) in report.get("populations", {}).items():
            group = "output" if where == "output" else "hidden"
            kind = "outputs" if group == "output" else "hidden"
            out[name] = {"resource": f"{group}: {chip_rep.get(kind)} of {limits.get(kind)} neurons on the chip",
                         "rounded_to_zero": int(quant.get(group, {}).get("weights_rounded_to_zero", 0)),
                         "latency_steps": lags.get(name)}
        return out

    def _lower(self, graph: Graph, options: CompileOptions) -> LoweringResult:
        """Lower once; raise every model and hardware rule the graph breaks on Xylo at once."""
        res = lower_graph(graph, options.dt_s, options.method, options.extra)
        if res.network is None:
            raise RuleViolationError(res.violations, target=self.name, file=graph.source or None)
        return res

    def quantize(self, graph: Graph, options: CompileOptions) -> Any:
        """Return the integer :class:`XyloNetwork` (RuleViolationError if the graph does not fit)."""
        return self._lower(graph, options).network

    def lower(self, graph: Graph, options: CompileOptions) -> Lowered:
        """Return the configuration file and run settings as payload, with the compile report."""
        res = self._lower(graph, options)
        net = res.network
        run = {"latency_steps": res.latency_steps, "readout": res.readout, "output_shape": list(res.output_shape)}
        payload = {CONFIG_BLOB: net.to_config().encode(), RUN_BLOB: canonical_json(run)}
        spec = chip.CHIPS[net.chip_name]
        report = {
            "warnings": list(res.warnings),
            "chip": {"name": spec.description, "inputs": net.n_in, "hidden": net.n_hidden, "outputs": net.n_out,
                     "limits": {"inputs": spec.inputs, "hidden": spec.hidden, "outputs": spec.outputs,
                                "recurrent_synapses": spec.recurrent_synapses},
                     "recurrent_synapses": int(np.count_nonzero(np.any(net.weights_rec != 0, axis=2))),
                     "weight_shift": {"in": net.weight_shift_in, "rec": net.weight_shift_rec,
                                      "out": net.weight_shift_out}},
            "populations": dict(net.populations),
            "quantization": {k: r.to_dict() for k, r in res.quantization.items()},
            "decays": res.decays,
            "latency_steps": res.latency_steps,
            "timing_exact": res.timing_exact,
            "population_lag_steps": res.lags,
            "xylo_notes": list(res.notes),
            "simulator_model": list(MODEL_NOTES),
        }
        return Lowered(payload, report)

    @staticmethod
    def _output(net: XyloNetwork, run: Mapping[str, Any], spikes: np.ndarray) -> np.ndarray:
        rd = run.get("readout")
        if not rd:
            return spikes
        w = np.asarray(rd["weight"], dtype=np.float64)
        return spikes.astype(np.float64) @ w.T + np.asarray(rd["bias"], dtype=np.float64)

    def simulate(self, payload: Mapping[str, bytes], manifest: Mapping[str, Any], inputs: np.ndarray,
                 record: bool = False) -> Result:
        """Run the reference simulator on input spike counts (batch, T, *input_shape)."""
        from snnc.targets.xylo.simulator import simulate

        net, run = network_from_payload(payload)
        x = np.asarray(inputs)
        x = x.reshape(x.shape[0], x.shape[1], -1)
        res = simulate(net, x, record=record)
        states: Dict[str, Dict[str, np.ndarray]] = {}
        counts: Dict[str, np.ndarray] = {}
        neurons: Dict[str, int] = {}
        for name, (a, b) in net.populations.items():
            if a == "output":
                counts[name] = res.output.reshape(x.shape[0], -1).sum(axis=1)
                neurons[name] = int(b)
                if record and res.states is not None:
                    states[name] = {"spikes": res.output, "v": res.states["Vmem_out"], "i": res.states["Isyn_out"]}
            else:
                counts[name] = res.hidden_spikes[:, :, a:b].reshape(x.shape[0], -1).sum(axis=1)
                neurons[name] = int(b - a)
                if record and res.states is not None:
                    states[name] = {"spikes": res.hidden_spikes[:, :, a:b], "v": res.states["Vmem"][:, :, a:b],
                                    "i": res.states["Isyn"][:, :, a:b], "i2": res.states["Isyn2"][:, :, a:b]}
        return Result(output=self._output(net, run, res.output), states=states, spike_counts=counts,
                      synops={"network": res.synops}, neurons=neurons,
                      meta={"backend": "sim", "target": self.name, "latency_steps": run["latency_steps"],
                            "input_clipped": res.input_clipped, "isyn_saturated": res.isyn_saturated,
                            "vmem_saturated": res.vmem_saturated})

    def run_backend(self, backend: str, payload: Mapping[str, bytes], manifest: Mapping[str, Any],
                    inputs: np.ndarray, record: bool) -> Result:
        """Run on ``"device"``: a Xylo devkit through samna (BackendUnavailableError without one)."""
        from snnc.targets.xylo.device import run_on_device

        if record:
            raise UnsupportedError("recording states on the Xylo device is not implemented",
                                   hint="use backend 'sim' for states")
        net, run = network_from_payload(payload)
        x = np.asarray(inputs)
        spikes = run_on_device(net, x.reshape(x.shape[0], x.shape[1], -1), float(manifest["options"]["dt_s"]))
        return Result(output=self._output(net, run, spikes), meta={"backend": "device", "target": self.name})
