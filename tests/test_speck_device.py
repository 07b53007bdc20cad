"""Speck device backend: real samna and a real devkit only; skipped with the reason otherwise."""
from __future__ import annotations

import numpy as np
import pytest

from snnc.errors import BackendUnavailableError
from snnc.targets.speck.device import build_samna_config, import_samna, list_devices, samna_status
from snnc.targets.speck.mapping import assign_cores
from snnc.targets.speck.network import Destination, SpeckLayer, SpeckNetwork

SAMNA_OK, SAMNA_REASON = samna_status()
needs_samna = pytest.mark.skipif(not SAMNA_OK, reason=f"needs SynSense samna: {SAMNA_REASON}")


def config_json() -> str:
    rng = np.random.default_rng(0)
    l0 = SpeckLayer("c0", rng.integers(-128, 128, (4, 2, 3, 3)), None, 60, -500, (2, 16, 16), padding=1,
                    destinations=[Destination(1, (2, 2))], return_to_zero=True)
    l1 = SpeckLayer("fc", rng.integers(-128, 128, (3, 4, 8, 8)), rng.integers(-2, 3, 3), 80, -500, (4, 8, 8),
                    monitor=True)
    net = SpeckNetwork([l0, l1], (2, 16, 16), [0])
    assign_cores(net)
    return net.to_json()


def test_status_is_a_reason():
    ok, reason = samna_status()
    assert isinstance(ok, bool) and "samna" in reason


def test_without_samna_everything_says_samna():
    if SAMNA_OK:
        pytest.skip("samna is installed here; the unavailable path cannot be exercised")
    for call in (import_samna, list_devices, lambda: build_samna_config(config_json())):
        with pytest.raises(BackendUnavailableError, match="samna") as exc:
            call()
        assert exc.value.exit_code == 3 and exc.value.hint


@needs_samna
def test_build_and_validate_samna_config():
    cfg = build_samna_config(config_json(), device="speck2fdevkit", validate=True)
    assert cfg.cnn_layers[0].dimensions.output_shape.feature_count in (4, 3)


@needs_samna
def test_devkit_roundtrip_produces_events():
    from snnc.targets.speck.device import SpeckDevice

    if not list_devices():
        pytest.skip("no Speck devkit connected")
    dev = SpeckDevice()
    try:
        dev.upload(config_json())
        raster = np.random.default_rng(1).poisson(0.5, (20, 2, 16, 16))
        events = dev.run(raster, input_core=0, dt_s=1e-3)
        assert isinstance(events, list)
    finally:
        dev.close()
