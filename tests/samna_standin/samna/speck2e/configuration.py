"""Stand-in for samna.speck2e.configuration."""
from samna import SpeckConfiguration  # noqa: F401
