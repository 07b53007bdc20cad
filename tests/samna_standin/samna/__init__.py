"""Test-only stand-in for samna's configuration classes (samna is not installable here).

It lets sinabs' own configuration builder (and snnc's ``build_samna_config``) run: every class is a
plain attribute holder that keeps what the caller writes into it. It computes nothing:
``validate_configuration`` does not validate (it answers "valid" and says it did not check), and
the defaults below (destinations off, pooling 1) are only what both writers start from.
Used by ``tests/sinabs_builder_worker.py`` in its own process; never on the test process's path.
"""
from __future__ import annotations

from typing import Any, Tuple

STANDIN = True


class Bag:
    """An attribute holder: keeps every attribute written into it."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def destination() -> Bag:
    """One core destination as both writers find it before writing: off."""
    return Bag(layer=0, enable=False, pooling=1)


def cnn_layer() -> Bag:
    """One core's configuration before anything is written into it."""
    return Bag(dimensions=None, weights=None, biases=None, leak_enable=False, return_to_zero=False,
               threshold_high=None, threshold_low=None, monitor_enable=False, neurons_initial_value=None,
               destinations=[destination(), destination()])


def dvs_layer() -> Bag:
    """The DVS layer's configuration before anything is written into it."""
    return Bag(merge=False, mirror=None, mirror_diagonal=False, cut=None, origin=None, pooling=Bag(x=1, y=1),
               pass_sensor_events=True, monitor_enable=False,
               destinations=[Bag(layer=0, enable=False), Bag(layer=0, enable=False)])


class SpeckConfiguration(Bag):
    """Stand-in for ``samna.speck2{e,f}.configuration.SpeckConfiguration``: 9 cores, DVS layer, readout."""

    def __init__(self) -> None:
        super().__init__(cnn_layers=[cnn_layer() for _ in range(9)], dvs_layer=dvs_layer(), readout=Bag(enable=False))


def validate_configuration(config: Any) -> Tuple[bool, str]:
    """Not samna's validation: accepts everything (samna's checks are not reproduced here)."""
    return True, "stand-in: samna's validate_configuration was not run"


class _Device:
    """Only the type name sinabs' io.py uses in annotations at import; no device can be opened."""

    class DeviceInfo:
        """Annotation target only."""


device = _Device()
