"""The ``xylo`` target: SynSense Xylo Audio 2 / IMU (see :mod:`snnc.targets.xylo.target`)."""
from snnc.targets.xylo.target import XyloTarget as TARGET

__all__ = ["TARGET"]
