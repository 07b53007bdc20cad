"""Backend 'device': a Xylo Audio 2 / IMU devkit through samna and Rockpool (guarded import, never faked).

Without a real samna every entry point raises :class:`~snnc.errors.BackendUnavailableError`
(exit code 3). samna detection (and the refusal to import PyPI's installer stub) is the Speck
backend's :func:`~snnc.targets.samna.samna_status`. With samna, the configuration is built by
Rockpool's own ``config_from_specification`` from the artifact's specification, validated by samna,
and run by Rockpool's ``XyloSamna`` module in accelerated-time mode. This path has not been run
here: no samna, no devkit.
"""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from snnc.errors import BackendUnavailableError, RuleViolationError, Violation
from snnc.targets.samna import import_samna
from snnc.targets.xylo.network import XyloNetwork

#: Rockpool support package of each chip.
ROCKPOOL_PACKAGE = {"audio2": "rockpool.devices.xylo.syns61201", "imu": "rockpool.devices.xylo.syns63300"}
#: samna device type names of the devkits (Rockpool ``devices/xylo/helper.py`` ``find_xylo_hdks``).
DEVICE_TYPES = {"audio2": ("XyloA2TestBoard",), "imu": ("XyloImuTestBoard",)}


def _rockpool(net: XyloNetwork) -> Any:
    import_samna("Xylo")  # raises BackendUnavailableError without a real samna
    try:
        return importlib.import_module(ROCKPOOL_PACKAGE[net.chip_name])
    except Exception as exc:  # a broken vendor install is "unavailable", not a crash
        raise BackendUnavailableError(f"Rockpool's Xylo support failed to import: {exc}") from exc


def run_on_device(net: XyloNetwork, inputs: np.ndarray, dt_s: float) -> np.ndarray:
    """Run ``inputs (B, T, Nin)`` on the first matching Xylo devkit; return output spikes (B, T, Nout)."""
    samna = import_samna("Xylo")
    rp = _rockpool(net)
    names = DEVICE_TYPES[net.chip_name]
    hdks = [d for d in samna.device.get_all_devices() if d.device_type_name in names]
    if not hdks:
        raise BackendUnavailableError(f"no Xylo devkit ({', '.join(names)}) found by samna",
                                      hint="connect a Xylo devkit over USB")
    spec = net.spec()
    config, ok, message = rp.config_from_specification(**spec)
    if not ok:
        raise RuleViolationError([Violation("samna.validate_configuration", net.chip_name, message,
                                            "a configuration samna accepts")], target="xylo")
    hdk = samna.device.open_device(hdks[0])
    try:
        mod = rp.XyloSamna(hdk, config, dt=dt_s)
        outs = []
        for x in np.asarray(inputs, dtype=np.int64):
            out, _, _ = mod(x)
            outs.append(np.asarray(out, dtype=np.int64))
        return np.stack(outs)
    finally:
        samna.device.close_device(hdk)
