"""Stand-in for samna.speck2e (see samna/__init__.py)."""
from samna import validate_configuration  # noqa: F401
