"""The ``speck`` target: SynSense Speck / DynapCNN (see :mod:`snnc.targets.speck.target`)."""
from snnc.targets.speck.target import SpeckTarget as TARGET

__all__ = ["TARGET"]
