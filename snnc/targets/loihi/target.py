"""The ``loihi`` target: Intel Loihi 2 through Lava's bit-accurate CUBA LIF model (lava-nc 0.10).

Artifact payload: ``loihi/network/<key>.npy`` (the :class:`LoihiNetwork` dict), ``loihi/run.json``
(output layer, latency, and for a non-spiking readout ``readout_scale``: the output is then
``v / readout_scale``, a float like the float model's readout) and, when the network is expressible there, ``loihi/network.net`` (a
lava-dl netx HDF5 file for Lava users). Backends: ``sim`` (snnc's reference simulator, equal to
Lava's fixed_pt model spike for spike), ``lava`` (Lava itself, through its own interpreter) and
``netx`` (the artifact's ``.net`` file loaded by lava-dl netx and run on the same Lava models).
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from snnc.artifact import canonical_json, pack_arrays, unpack_arrays
from snnc.compiler.graph import Graph
from snnc.errors import ArtifactError, RuleViolationError, SnncError, UnsupportedError
from snnc.formats.result import Result
from snnc.targets.base import CompileOptions, Lowered, Target
from snnc.targets.loihi import chip, rules
from snnc.targets.loihi.lower import OPTION_HELP, LoweringResult, lower_graph
from snnc.targets.loihi.network import LoihiNetwork

NET_PREFIX = "loihi/network/"
RUN_BLOB = "loihi/run.json"
NETX_BLOB = "loihi/network.net"

MODEL_NOTES = (
    "bit-exact with Lava's Loihi2SimCfg(select_tag='fixed_pt') CPU model (lava-nc 0.10), which Intel "
    "describes as bit-accurate with the chip for these processes; not checked against a physical Loihi 2",
    "every synaptic hop (recurrent ones too) adds one step of delay: an L-layer network's output lags its input "
    "by L steps and a loop of k hops takes k steps",
    "inputs must be binary spikes (Dense/Conv with num_message_bits = 0)",
)


def network_from_payload(payload: Mapping[str, bytes]) -> Tuple[LoihiNetwork, Dict[str, Any]]:
    """Return the network and run settings stored by :meth:`LoihiTarget.lower`."""
    if RUN_BLOB not in payload:
        raise ArtifactError(f"Loihi artifact lacks {RUN_BLOB}")
    arrays = unpack_arrays(payload, prefix=NET_PREFIX)
    return LoihiNetwork.from_dict(arrays), json.loads(payload[RUN_BLOB])


def _netx_bytes(net: LoihiNetwork) -> bytes:
    from snnc.targets.loihi.netx import write_netx

    fd, path = tempfile.mkstemp(prefix="snnc-", suffix=".net")
    os.close(fd)
    try:
        write_netx(net, path)
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)


class LoihiTarget(Target):
    """Loihi 2: CUBA LIF layers with 8-bit weights, 12-bit decays and 24-bit states."""

    name = "loihi"
    description = "Intel Loihi 2 (Lava fixed_pt CUBA LIF; bit-exact reference simulator, Lava backend)"
    backends = ("sim", "lava", "netx")
    binary_input = True
    option_help = OPTION_HELP

    def layer_summary(self, report: Mapping[str, Any], neurons: Mapping[str, int]) -> Dict[str, Dict[str, Any]]:
        """Per layer: estimated cores (of one chip's), weights rounded to zero, weight bits, lag in steps."""
        out: Dict[str, Dict[str, Any]] = {}
        lag = report.get("layer_lag_steps", {})
        for name, q in report.get("quantization", {}).items():
            cores = -(-int(neurons.get(name, 0)) // chip.NEURONS_PER_CORE)
            out[name] = {"resource": f"{cores} core(s) of {chip.CORES_PER_CHIP}",
                         "rounded_to_zero": int(q.get("weights_rounded_to_zero", 0)),
                         "weight_bits": q.get("weight_bits_used"), "latency_steps": lag.get(name)}
        return out
    chip_formats = {"netx": "lava-dl netx HDF5 network (.net) for lava.lib.dl.netx.hdf5.Network"}

    def chip_file(self, fmt: str, payload: Mapping[str, bytes], manifest: Mapping[str, Any]) -> bytes:
        """Return the artifact's netx ``.net`` file (``fmt="netx"``); refuse when netx cannot express it."""
        if fmt != "netx":
            return super().chip_file(fmt, payload, manifest)
        if NETX_BLOB not in payload:
            why = manifest.get("report", {}).get("netx", "no netx file in the artifact")
            raise UnsupportedError(f"this Loihi artifact has no lava-dl netx file ({why})",
                                   hint="export it as NIR (--format nir), or run it with snnc (sim / lava backends)")
        return payload[NETX_BLOB]

    def _lower(self, graph: Graph, options: CompileOptions) -> LoweringResult:
        """Lower once; raise every model and hardware rule the graph breaks on Loihi 2 at once."""
        res = lower_graph(graph, options.dt_s, options.method, options.extra)
        if res.network is None:
            raise RuleViolationError(res.violations, target=self.name, file=graph.source or None)
        return res

    def quantize(self, graph: Graph, options: CompileOptions) -> Any:
        """Return the integer :class:`LoihiNetwork` (RuleViolationError if it does not fit)."""
        return self._lower(graph, options).network

    def lower(self, graph: Graph, options: CompileOptions) -> Lowered:
        """Return the integer network (+ netx file) as payload, with the compile report."""
        res = self._lower(graph, options)
        net = res.network
        assert net is not None
        run: Dict[str, Any] = {"output_layer": res.output_layer, "latency_steps": res.latency_steps}
        if res.readout_scale is not None:
            run["readout_scale"] = res.readout_scale
        payload = {**pack_arrays(net.to_dict(), prefix=NET_PREFIX), RUN_BLOB: canonical_json(run)}
        netx_status = "not written (option netx=False)"
        if options.extra.get("netx", True):
            try:
                payload[NETX_BLOB] = _netx_bytes(net)
                netx_status = f"written as {NETX_BLOB}"
            except SnncError as exc:
                netx_status = f"not expressible in netx: {exc.message}"
        warnings = []
        for n, q in res.reports.items():
            if q.weights_clipped:
                warnings.append(f"{n}: {q.weights_clipped} weight(s) clipped to 8 bits")
            if q.weights_rounded_to_zero:
                warnings.append(f"{n}: {q.weights_rounded_to_zero} non-zero weight(s) rounded to 0 "
                                f"(scale {q.scale:.4g}, limited by {q.limited_by})")
            if q.bias_clipped:
                warnings.append(f"{n}: {q.bias_clipped} bias value(s) clipped")
            warnings += [f"{n}: {t}" for t in q.notes]
        warnings += res.warnings
        report = {
            "warnings": warnings + [t for t in res.notes if "fan-in" in t],
            "timing_exact": res.timing_exact,
            "layer_lag_steps": dict(res.layer_lag_steps),
            "quantization": {n: r.to_dict() for n, r in res.reports.items()},
            "latency_steps": res.latency_steps,
            "chip": {"neurons": sum(ly.num_neurons for ly in net.layers),
                     "synapses": rules.synapse_count(net),
                     "cores_estimate": sum(-(-ly.num_neurons // chip.NEURONS_PER_CORE)
                                           for ly in net.layers if ly.has_neurons)},
            "layers": [{"name": ly.name, "kind": ly.kind, "shape": list(ly.output_shape)} for ly in net.layers],
            "netx": netx_status,
            "loihi_notes": list(res.notes),
            "simulator_model": list(MODEL_NOTES),
        }
        return Lowered(payload, report)

    def to_nir(self, payload: Mapping[str, bytes], manifest: Mapping[str, Any]) -> Any:
        """Return the deployed integer network as NIR in Lava's state units (:mod:`snnc.targets.loihi.nir_export`)."""
        from snnc.targets.loihi.nir_export import loihi_to_nir

        net, run = network_from_payload(payload)
        return loihi_to_nir(net, run, float(manifest["options"]["dt_s"]))

    def torch_lowering(self, graph: Graph, dt_s: float, method: str, options: Mapping[str, Any], device: Any
                       ) -> Tuple[Any, Any]:
        """Return the lowering of the (passed) graph and a :class:`~snnc.targets.loihi.torch_engine.TorchLoihi`
        running its integers (fine-tuning)."""
        from snnc.targets.loihi.torch_engine import TorchLoihi

        res = lower_graph(graph, dt_s, method, dict(options))
        if res.network is None:
            raise RuleViolationError(res.violations, target=self.name)
        return res, TorchLoihi(res.network, device=device)

    def divergence_runs(self, graph: Graph, payload: Mapping[str, bytes], manifest: Mapping[str, Any],
                        x: np.ndarray, dt_model_s: float, device: Any = None) -> Any:
        """Return the ladder from the float twin to the chip (:mod:`snnc.targets.loihi.diverge`)."""
        from snnc.compiler.pipeline import run_pipeline
        from snnc.targets.loihi.diverge import divergence_runs

        net, run = network_from_payload(payload)
        return divergence_runs(run_pipeline(graph, self.passes()), net, run, manifest, x, dt_model_s, device)

    def simulate(self, payload: Mapping[str, bytes], manifest: Mapping[str, Any], inputs: np.ndarray,
                 record: bool = False) -> Result:
        """Run the bit-exact reference simulator on binary spikes (batch, T, *input_shape)."""
        from snnc.targets.loihi.simulator import simulate

        net, run = network_from_payload(payload)
        res = simulate(net, np.asarray(inputs), record_states=record)
        outs = list(res.spikes)
        states = {}
        if record:
            states = {ly.name: {"spikes": res.spikes[i], "u": res.u[i], "v": res.v[i]}
                      for i, ly in enumerate(net.layers) if ly.has_neurons}
        return self._result(net, run, outs, states, res.spike_counts, res.synops,
                            {"backend": "sim", "target": self.name, "latency_steps": run["latency_steps"]},
                            res.v)

    def run_backend(self, backend: str, payload: Mapping[str, bytes], manifest: Mapping[str, Any],
                    inputs: np.ndarray, record: bool) -> Result:
        """Run on ``"lava"`` (Lava's fixed_pt CPU models built from the network) or ``"netx"`` (the
        artifact's ``.net`` file loaded by lava-dl netx, on the same models), in Lava's own interpreter."""
        net, run = network_from_payload(payload)
        x = np.asarray(inputs)
        if backend == "netx":
            return self._run_netx(net, run, payload, manifest, x, record)
        from snnc.targets.loihi.lava_backend import run_lava

        res = run_lava(net, x, record_states=record)
        b = x.shape[0]
        counts, states = [], {}
        for i, ly in enumerate(net.layers):
            s = res.spikes[i]
            counts.append(np.zeros(b, dtype=np.int64) if s is None else s.reshape(b, -1).sum(1).astype(np.int64))
            if record and s is not None:
                states[ly.name] = {"spikes": s, "u": res.u[i], "v": res.v[i]}
        spikes = [s if s is not None else np.zeros((b, x.shape[1], *ly.output_shape), dtype=bool)
                  for s, ly in zip(res.spikes, net.layers)]
        return self._result(net, run, spikes, states, counts, None,
                            {"backend": "lava", "target": self.name, "latency_steps": run["latency_steps"],
                             "lava_build_s": res.build_s, "lava_run_s": res.run_s, **res.meta}, res.v)

    def _run_netx(self, net: LoihiNetwork, run: Mapping[str, Any], payload: Mapping[str, bytes],
                  manifest: Mapping[str, Any], x: np.ndarray, record: bool) -> Result:
        from snnc.targets.loihi.lava_backend import run_netx_many

        blob = self.chip_file("netx", payload, manifest)
        with tempfile.TemporaryDirectory(prefix="snnc-netx-") as tmp:
            path = os.path.join(tmp, "network.net")
            with open(path, "wb") as fh:
                fh.write(blob)
            res = run_netx_many([(path, x)], record_states=record)[0]
        b, t = x.shape[0], x.shape[1]
        blocks = iter(range(len(res.spikes)))
        spikes, us, vs, counts, states = [], [], [], [], {}
        for ly in net.layers:
            if not ly.has_neurons:  # netx makes no block for a flatten: a view of its source
                src = x != 0 if ly.source < 0 else spikes[ly.source]
                spikes.append(src.reshape(b, t, *ly.output_shape))
                us.append(None)
                vs.append(None)
                counts.append(np.zeros(b, dtype=np.int64))
                continue
            k = next(blocks)
            spikes.append(res.spikes[k])
            us.append(res.u[k])
            vs.append(res.v[k])
            counts.append(res.spikes[k].reshape(b, -1).sum(1).astype(np.int64))
            if record:
                states[ly.name] = {"spikes": res.spikes[k], "u": res.u[k], "v": res.v[k]}
        return self._result(net, run, spikes, states, counts, None,
                            {"backend": "netx", "target": self.name, "latency_steps": run["latency_steps"],
                             "lava_build_s": res.build_s, "lava_run_s": res.run_s}, vs)

    @staticmethod
    def _result(net: LoihiNetwork, run: Mapping[str, Any], spikes: List[np.ndarray], states: Dict[str, Any],
                counts: List[np.ndarray], synops: Any, meta: Dict[str, Any], vs: Any = None) -> Result:
        names = [ly.name for ly in net.layers]
        out_i = int(run["output_layer"])
        output = spikes[out_i]
        if run.get("readout_scale") and net.layers[out_i].readout and vs is not None and vs[out_i] is not None:
            output = vs[out_i].astype(np.float64) / float(run["readout_scale"])  # the readout's v, in float units
            meta = dict(meta, output="readout v / readout_scale")
        neurons = {ly.name: ly.num_neurons for ly in net.layers if ly.has_neurons}
        return Result(output=output,
                      states=states,
                      spike_counts={n: c for n, c, ly in zip(names, counts, net.layers) if ly.has_neurons},
                      synops={} if synops is None else {n: s for n, s, ly in zip(names, synops, net.layers)
                                                        if ly.has_neurons},
                      neurons=neurons, meta=meta)
