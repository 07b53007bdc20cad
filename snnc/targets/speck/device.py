"""Backend 'device': a real Speck devkit through SynSense's samna (guarded import, never faked).

samna is imported only inside :func:`import_samna`. Without it every entry point raises
:class:`~snnc.errors.BackendUnavailableError` naming samna. Note: the ``samna`` package on
PyPI (0.48.x) is an installer stub whose ``__init__`` runs ``pip install`` from SynSense's
own package index at import time; :func:`samna_status` detects that stub and refuses to
import it (it would try to reach the network and replace packages).

:func:`build_samna_config` turns the neutral JSON of
:meth:`snnc.targets.speck.network.SpeckNetwork.to_config` into samna's
``SpeckConfiguration`` the same way sinabs' ``DynapcnnConfigBuilder`` fills it, and
validates it with ``samna.<chip>.validate_configuration``.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from snnc.errors import ArtifactError, BackendUnavailableError, InputError, RuleViolationError, Violation
from snnc.targets.samna import import_samna, samna_status  # noqa: F401  (importable from here too)
from snnc.targets.speck.chip import CHIPS
from snnc.targets.speck.network import CONFIG_FORMAT

#: Configuration keys only DYNAP-CNN configurations carry (see :class:`snnc.targets.speck.chip.ChipVariant`).
KILL_BITS = ("weights_kill_bit", "biases_kill_bit", "neurons_value_kill_bit")

log = logging.getLogger(__name__)

#: samna device_type_name of each supported devkit (sinabs ``io.device_types``).
DEVICE_TYPES = {
    "speck2edevkit": "Speck2eDevKit",
    "speck2e": "Speck2eTestBoard",
    "speck2fmodule": "Speck2fModuleDevKit",
    "speck2fdevkit": "Speck2fDevKit",
    "dynapcnndevkit": "DynapcnnDevKit",  # sinabs <= 2.0.3
}
#: samna sub-module holding the configuration classes of each devkit type.
CHIP_MODULE = {"speck2edevkit": "speck2e", "speck2e": "speck2e",
               "speck2fmodule": "speck2f", "speck2fdevkit": "speck2f", "dynapcnndevkit": "dynapcnn"}
def _load_config(config: dict[str, Any] | str | Path) -> dict[str, Any]:
    """Accept the neutral configuration as dict, JSON text or a path to a JSON file."""
    if isinstance(config, Path) or (isinstance(config, str) and not config.lstrip().startswith("{")):
        try:
            config = Path(config).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read Speck configuration: {exc}", file=str(config)) from exc
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"Speck configuration is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != CONFIG_FORMAT:
        raise ArtifactError("not a snnc Speck configuration")
    return config


def build_samna_config(config: dict[str, Any] | str | Path, device: str = "speck2fdevkit",
                       validate: bool = True) -> Any:
    """Turn the neutral JSON configuration into samna's SpeckConfiguration (and validate it)."""
    cfg = _load_config(config)
    samna = import_samna()
    dev_type = device.split(":")[0]
    if dev_type not in CHIP_MODULE:
        raise InputError(f"unknown Speck device type {dev_type!r}; known: {sorted(CHIP_MODULE)}")
    variant = CHIPS[CHIP_MODULE[dev_type]]
    compiled = CHIPS.get(str(cfg.get("chip", "speck2f")))
    if compiled is None or compiled.kill_bits != variant.kill_bits:  # Speck and DYNAP-CNN configurations differ
        raise InputError(f"configuration compiled for chip {cfg.get('chip')!r} cannot go to a {dev_type}",
                         hint=f"compile with -O chip={variant.name}")
    chip_mod = getattr(samna, variant.samna_module)
    sc = getattr(chip_mod.configuration, variant.configuration_class)()
    sc.dvs_layer.pass_sensor_events = False
    for core, layer in enumerate(cfg["cnn_layers"]):
        if layer is None:
            continue
        target = sc.cnn_layers[core]
        target.dimensions = layer["dimensions"]  # sinabs assigns the dict the same way
        for k, dest in enumerate(layer["destinations"]):
            target.destinations[k].layer = int(dest["layer"])
            target.destinations[k].enable = bool(dest["enable"])
            target.destinations[k].pooling = int(dest["pooling"])
        for key in ("weights", "biases", "leak_enable", "return_to_zero", "threshold_high",
                    "threshold_low", "monitor_enable", "neurons_initial_value") + KILL_BITS:
            if key in layer:
                setattr(target, key, layer[key])
    dvs = cfg.get("dvs_layer")
    if dvs is not None:
        for key in ("merge", "mirror", "mirror_diagonal", "cut", "origin", "pooling",
                    "pass_sensor_events", "monitor_enable"):
            setattr(sc.dvs_layer, key, dvs[key])
        for k, dest in enumerate(dvs["destinations"]):
            sc.dvs_layer.destinations[k].layer = int(dest["layer"])
            sc.dvs_layer.destinations[k].enable = bool(dest["enable"])
    readout = cfg.get("readout")
    if readout is not None and readout.get("enable"):
        sc.readout.enable = True
    if validate:
        ok, message = chip_mod.validate_configuration(sc)
        if not ok:
            raise RuleViolationError([Violation("samna.validate_configuration", device, message,
                                                "a configuration samna accepts")], target="speck")
    return sc


def list_devices() -> list[str]:
    """Names ('speck2fdevkit:0', ...) of the Speck devkits samna sees."""
    samna = import_samna()
    by_name = {v: k for k, v in DEVICE_TYPES.items()}
    found: dict[str, int] = {}
    out = []
    for info in sorted(samna.device.get_all_devices(), key=lambda d: d.usb_device_address):
        kind = by_name.get(info.device_type_name)
        if kind is not None:
            out.append(f"{kind}:{found.get(kind, 0)}")
            found[kind] = found.get(kind, 0) + 1
    return out


class SpeckDevice:
    """An open Speck devkit: upload a configuration, stream input events, collect output spikes."""

    def __init__(self, device: Optional[str] = None) -> None:
        """Open ``device`` ('speck2fdevkit:0'); the first Speck found when None."""
        self._samna = import_samna()
        names = list_devices()
        if not names:
            raise BackendUnavailableError("no Speck devkit found by samna",
                                          hint="connect a Speck devkit over USB")
        self.device = device or names[0]
        kind, _, idx = self.device.partition(":")
        infos = [d for d in sorted(self._samna.device.get_all_devices(),
                                   key=lambda d: d.usb_device_address)
                 if d.device_type_name == DEVICE_TYPES.get(kind)]
        index = int(idx or 0)
        if index >= len(infos):
            raise BackendUnavailableError(f"device {self.device} not found; available: {names}")
        self._chip = getattr(self._samna, CHIP_MODULE[kind])
        self._handle = self._samna.device.open_device(infos[index])
        if self._handle is None:
            raise BackendUnavailableError(f"samna could not open {self.device}")
        self._graph: Any = None
        self._source: Any = None
        self._sink: Any = None

    def upload(self, config: dict[str, Any] | str | Path) -> None:
        """Build, validate and apply a neutral configuration, and connect event buffers."""
        samna = self._samna
        kind = self.device.partition(":")[0]
        sc = build_samna_config(config, device=kind)
        self._handle.get_model().apply_configuration(sc)
        time.sleep(0.1)
        chip_name = CHIP_MODULE[kind]
        if chip_name == "speck2f":
            self._source = samna.BasicSourceNode_speck2f_event_input_event()
            self._sink = samna.BasicSinkNode_speck2f_event_output_event()
        elif chip_name == "dynapcnn":  # as sinabs 2.0.3's DynapcnnConfigBuilder
            self._source = samna.BasicSourceNode_dynapcnn_event_input_event()
            self._sink = samna.BasicSinkNode_dynapcnn_event_output_event()
        else:
            self._source = samna.BasicSourceNode_speck2e_event_speck2e_input_event()
            self._sink = samna.BasicSinkNode_speck2e_event_output_event()
        self._graph = (samna.graph.EventFilterGraph(), samna.graph.EventFilterGraph())
        self._graph[0].sequential([self._source, self._handle.get_model().get_sink_node()])
        self._graph[1].sequential([self._handle.get_model().get_source_node(), self._sink])
        for g in self._graph:
            g.start()

    def run(self, raster: np.ndarray, input_core: int, dt_s: float = 1e-3,
            settle_s: float = 0.2) -> list[tuple[int, int, int, int, int]]:
        """Send a (T, C, H, W) event-count raster to core ``input_core``; return (t_us, core, feature, y, x) spikes."""
        if self._source is None:
            raise BackendUnavailableError("upload a configuration before run()")
        raster = np.asarray(raster, dtype=np.int64)
        spike_cls = self._chip.event.Spike
        events = []
        t_idx, c_idx, y_idx, x_idx = np.nonzero(raster)
        for t, c, y, x in zip(t_idx, c_idx, y_idx, x_idx):
            for _ in range(int(raster[t, c, y, x])):
                ev = spike_cls()
                ev.layer, ev.feature, ev.y, ev.x = int(input_core), int(c), int(y), int(x)
                ev.timestamp = int(round(t * dt_s * 1e6))
                events.append(ev)
        self._sink.get_events()  # flush
        stopwatch = self._handle.get_stop_watch()
        stopwatch.reset()
        stopwatch.start()
        self._source.write(events)
        time.sleep(raster.shape[0] * dt_s + settle_s)
        received = list(self._sink.get_events())
        while True:
            time.sleep(0.1)
            more = self._sink.get_events()
            if not more:
                break
            received.extend(more)
        stopwatch.stop()
        return [(int(e.timestamp), int(e.layer), int(e.feature), int(e.y), int(e.x))
                for e in received if isinstance(e, spike_cls)]

    def close(self) -> None:
        """Stop the event graphs and close the device."""
        if self._graph is not None:
            for g in self._graph:
                g.stop()
        self._samna.device.close_device(self._handle)
