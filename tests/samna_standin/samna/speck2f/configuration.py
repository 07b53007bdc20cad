"""Stand-in for samna.speck2f.configuration."""
from samna import SpeckConfiguration  # noqa: F401
