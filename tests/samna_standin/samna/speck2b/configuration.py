"""Stand-in for samna.speck2b.configuration."""
from samna import SpeckConfiguration  # noqa: F401
