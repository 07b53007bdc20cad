"""Stand-in for samna.speck2cMini.configuration."""
from samna import SpeckConfiguration  # noqa: F401
