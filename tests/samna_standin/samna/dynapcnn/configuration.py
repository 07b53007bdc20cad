"""Stand-in for samna.dynapcnn.configuration (the DYNAP-CNN devkit, sinabs <= 2.0.3)."""
from samna import SpeckConfiguration as DynapcnnConfiguration  # noqa: F401  (same 9 cores, DVS layer)
