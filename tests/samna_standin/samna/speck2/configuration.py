"""Stand-in for samna.speck2.configuration."""
from samna import SpeckConfiguration  # noqa: F401
