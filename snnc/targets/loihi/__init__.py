"""The ``loihi`` target: Intel Loihi 2 via Lava's bit-accurate CUBA LIF (see :mod:`snnc.targets.loihi.target`)."""
from snnc.targets.loihi.target import LoihiTarget as TARGET

__all__ = ["TARGET"]
