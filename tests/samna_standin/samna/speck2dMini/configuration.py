"""Stand-in for samna.speck2dMini.configuration."""
from samna import SpeckConfiguration  # noqa: F401
