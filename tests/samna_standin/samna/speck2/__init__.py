"""Stand-in for samna.speck2 (see samna/__init__.py)."""
from samna import validate_configuration  # noqa: F401
