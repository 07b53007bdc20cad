"""Stand-in for samna.dynapcnn (see samna/__init__.py)."""
from samna import validate_configuration  # noqa: F401
