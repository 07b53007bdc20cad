"""The result of a run: :class:`snnc.formats.result.Result` (this name is kept for existing imports)."""
from snnc.formats.result import Result

__all__ = ["Result"]
