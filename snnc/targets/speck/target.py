"""The ``speck`` target: SynSense Speck / DynapCNN (9 conv cores, non-leaky IAF, 8-bit weights)."""
from __future__ import annotations

import json
from typing import Any, Dict, Mapping

import numpy as np

from snnc.artifact import canonical_json
from snnc.compiler.graph import Graph
from snnc.errors import ArtifactError, RuleViolationError, UnsupportedError
from snnc.formats.result import Result
from snnc.targets.base import CompileOptions, Lowered, Target
from snnc.targets.speck.lower import lower_graph, memory_report

#: Payload blob with the neutral chip configuration (samna field names).
CONFIG_BLOB = "speck/config.json"
#: Payload blob with how the reference simulator runs the program.
RUN_BLOB = "speck/run.json"

#: What the reference simulator is and is not (copied into every compile report).
MODEL_NOTES = (
    "time-step model of an asynchronous chip: spikes reach the next core in the same step; "
    "the chip checks the threshold after every input event (within a time bin the order of "
    "events matters on the chip, not here)",
    "bias is added once per time step here; the chip adds it on its slow clock",
    "16-bit state overflow is counted, not modelled (chip behaviour undocumented)",
)


class SpeckTarget(Target):
    """Speck / DynapCNN: sinabs-compatible discretisation, core mapping, integer reference simulator."""

    name = "speck"
    description = "SynSense Speck/DynapCNN: 9 conv cores, IAF neurons, 8-bit weights (sinabs-compatible)"
    backends = ("sim", "device")
    option_help = {
        "spike_mode": "'single' (one spike per step, NIR) or 'multi' (sinabs' MultiSpike)",
        "reset": "'zero' (NIR's reset) or 'subtract' (sinabs' IAF default)",
        "v_low": "lower bound of the membrane (float units; default the 16-bit minimum)",
        "strict_threshold": "true (default): keep NIR's v > threshold with the chip's >=",
        "readout": "true: route the output layer to the readout block",
        "dvs_input": "true: feed the first layer from the on-chip DVS sensor",
        "layer_to_core": "JSON dict layer -> core, instead of the automatic matching",
        "chip": "chip variant (speck2f default)",
        "core_map": "write a PNG of the core map to this path",
    }

    def layer_summary(self, report: Mapping[str, Any], neurons: Mapping[str, int]) -> Dict[str, Dict[str, Any]]:
        """Per layer: its core, kernel and neuron memory against that core's, weights rounded to zero."""
        out: Dict[str, Dict[str, Any]] = {}
        quant = report.get("quantization", {})
        for name, mem in report.get("memory", {}).items():
            k, n = mem.get("kernel", {}), mem.get("neuron", {})
            out[name] = {"resource": f"core {mem.get('core')}: kernel {k.get('need')}/{k.get('limit')}, "
                                     f"neurons {n.get('need')}/{n.get('limit')}",
                         "rounded_to_zero": int(quant.get(name, {}).get("rounded_to_zero", {}).get("weights", 0)),
                         "latency_steps": 0}
        return out
    chip_formats = {"speck-config": "snnc's Speck configuration (JSON, samna field names) for "
                                    "snnc.targets.speck.device.build_samna_config"}

    def chip_file(self, fmt: str, payload: Mapping[str, bytes], manifest: Mapping[str, Any]) -> bytes:
        """Return the chip configuration JSON (``fmt="speck-config"``)."""
        if fmt != "speck-config":
            return super().chip_file(fmt, payload, manifest)
        self._load(payload)  # refuses a malformed artifact
        return payload[CONFIG_BLOB]

    def _lower(self, graph: Graph, options: CompileOptions) -> Any:
        """Lower once; raise every model and hardware rule the graph breaks on Speck (memory mapping included)."""
        res = lower_graph(graph, options.dt_s, options.extra)
        if res.network is None:
            raise RuleViolationError(res.violations, target=self.name, file=graph.source or None)
        return res

    def quantize(self, graph: Graph, options: CompileOptions) -> Any:
        """Return the integer, core-mapped :class:`SpeckNetwork` (RuleViolationError if it does not fit)."""
        return self._lower(graph, options).network

    def lower(self, graph: Graph, options: CompileOptions) -> Lowered:
        """Return the neutral chip configuration and run settings as payload, with the compile report."""
        res = self._lower(graph, options)
        net = res.network
        stride = net.readout.channel_stride if net.readout is not None else 1
        run = {"spike_mode": res.spike_mode,
               "output_layer": res.output_layer, "output_shape": list(res.output_shape),
               "output_channel_stride": stride}
        payload = {CONFIG_BLOB: net.to_json().encode(), RUN_BLOB: canonical_json(run)}
        warnings = []
        for n, q in res.quant_reports.items():
            if sum(q.clipped.values()):
                warnings.append(f"{n}: {sum(q.clipped.values())} value(s) saturated in quantisation")
            zeroed = q.rounded_to_zero.get("weights", 0)
            if zeroed:
                warnings.append(f"{n}: {zeroed} non-zero weight(s) rounded to 0 (scale {q.scale:.4g}, "
                                f"limited by {q.limited_by})")
        report = {
            "warnings": warnings,
            "chip": net.chip_name,
            "mapping": {lyr.name: lyr.core for lyr in net.layers},
            "memory": memory_report(net),
            "quantization": {n: r.to_dict() for n, r in res.quant_reports.items()},
            "speck_notes": list(res.notes),
            "simulator_model": list(MODEL_NOTES),
        }
        core_map = options.extra.get("core_map")
        if core_map:
            from snnc.targets.speck.mapping import draw_core_map

            report["core_map_png"] = str(draw_core_map(net, str(core_map)))
        return Lowered(payload, report)

    def to_nir(self, payload: Mapping[str, bytes], manifest: Mapping[str, Any]) -> Any:
        """Return the deployed integer network as NIR (:mod:`snnc.targets.speck.nir_export`)."""
        from snnc.targets.speck.nir_export import speck_to_nir

        net, run = self._load(payload)
        return speck_to_nir(net, run, float(manifest["options"]["dt_s"]))

    def torch_lowering(self, graph: Graph, dt_s: float, method: str, options: Mapping[str, Any], device: Any
                       ) -> tuple[Any, Any]:
        """Return the lowering of the (passed) graph and a :class:`~snnc.targets.speck.torch_engine.TorchSpeck`
        running its integers (fine-tuning; ``method`` does not apply: IAF neurons)."""
        from snnc.targets.speck.torch_engine import TorchSpeck

        res = lower_graph(graph, dt_s, dict(options))
        if res.network is None:
            raise RuleViolationError(res.violations, target=self.name)
        return res, TorchSpeck(res.network, res.spike_mode, device=device)

    def divergence_runs(self, graph: Graph, payload: Mapping[str, bytes], manifest: Mapping[str, Any],
                        x: np.ndarray, dt_model_s: float, device: Any = None) -> Any:
        """Return the ladder from the float twin to the chip (:mod:`snnc.targets.speck.diverge`)."""
        from snnc.compiler.pipeline import run_pipeline
        from snnc.targets.speck.diverge import divergence_runs

        net, run = self._load(payload)
        return divergence_runs(run_pipeline(graph, self.passes()), net, run, manifest, x, dt_model_s, device)

    @staticmethod
    def _load(payload: Mapping[str, bytes]) -> tuple[Any, dict]:
        from snnc.targets.speck.network import network_from_config

        if CONFIG_BLOB not in payload or RUN_BLOB not in payload:
            raise ArtifactError(f"Speck artifact lacks {CONFIG_BLOB} or {RUN_BLOB}")
        return network_from_config(payload[CONFIG_BLOB].decode()), json.loads(payload[RUN_BLOB])

    def simulate(self, payload: Mapping[str, bytes], manifest: Mapping[str, Any], inputs: np.ndarray,
                 record: bool = False) -> Result:
        """Run the integer reference simulator on dense event counts (batch, T, C, H, W)."""
        from snnc.targets.speck.simulator import simulate

        net, run = self._load(payload)
        res = simulate(net, np.asarray(inputs), spike_mode=run["spike_mode"], record_states=record)
        out = res.spikes[run["output_layer"]][:, :, :: int(run.get("output_channel_stride", 1))]
        output = out.reshape(out.shape[0], out.shape[1], *run["output_shape"])
        states = {}
        if record and res.states is not None:
            states = {n: {"spikes": res.spikes[n], "v": res.states[n]} for n in res.spikes}
        return Result(output=output, states=states, spike_counts=dict(res.spike_counts),
                      synops=dict(res.synops),
                      neurons={l.name: int(np.prod(l.neuron_shape)) for l in net.layers},
                      meta={"backend": "sim", "target": self.name, "spike_mode": run["spike_mode"],
                            "state_overflow": dict(res.state_overflow)})

    def run_backend(self, backend: str, payload: Mapping[str, bytes], manifest: Mapping[str, Any],
                    inputs: np.ndarray, record: bool) -> Result:
        """Run on ``"device"``: stream each batch item to a Speck devkit and bin the output spikes by step."""
        from snnc.targets.speck.device import SpeckDevice

        if record:
            raise UnsupportedError("recording states is not possible on the Speck device",
                                   hint="use backend 'sim' for states")
        net, run = self._load(payload)
        if net.dvs is not None:
            raise UnsupportedError("device runs with DVS-layer input pooling are not implemented",
                                   hint="pool the input events before the chip, or use backend 'sim'")
        dev = SpeckDevice()  # raises BackendUnavailableError without samna or devkit
        try:
            dev.upload(payload[CONFIG_BLOB].decode())
            dt_s = float(manifest["options"]["dt_s"])
            x = np.asarray(inputs)
            out_layer = net.layers[net.layer_index(run["output_layer"])]
            f, h, w = out_layer.neuron_shape
            outputs = np.zeros((x.shape[0], x.shape[1], f, h, w), dtype=np.int64)
            for b in range(x.shape[0]):
                for t_us, core, feat, yy, xx in dev.run(x[b], net.layers[net.entry_layers()[0]].core, dt_s):
                    step = int(t_us // (dt_s * 1e6))
                    if core == out_layer.core and 0 <= step < x.shape[1]:
                        outputs[b, step, feat, yy, xx] += 1
        finally:
            dev.close()
        outputs = outputs[:, :, :: int(run.get("output_channel_stride", 1))]
        output = outputs.reshape(x.shape[0], x.shape[1], *run["output_shape"])
        return Result(output=output, meta={"backend": "device", "device": dev.device})
