"""The ``cpu`` target: float reference semantics of NIR graphs."""
from snnc.targets.cpu.target import CpuTarget as TARGET

__all__ = ["TARGET"]
