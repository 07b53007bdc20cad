"""The one exception hierarchy of snnc.

Every error a user can cause is an :class:`SnncError`; the CLI prints its message without a
traceback and exits with :attr:`SnncError.exit_code`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

#: Exit code for success.
EXIT_OK = 0
#: Exit code for bad input or hardware-rule violations.
EXIT_BAD_INPUT = 2
#: Exit code for an unavailable target, backend or device.
EXIT_UNAVAILABLE = 3


class SnncError(Exception):
    """Base class of every error snnc raises on purpose."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, *, file: Optional[str] = None, node: Optional[str] = None,
                 hint: Optional[str] = None) -> None:
        self.message = message
        self.file = file
        self.node = node
        self.hint = hint
        super().__init__(self.format())

    def format(self) -> str:
        """Return the one-paragraph message shown to users."""
        parts = []
        if self.file:
            parts.append(f"{self.file}:")
        if self.node:
            parts.append(f"node '{self.node}':")
        parts.append(self.message)
        text = " ".join(parts)
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class InputError(SnncError):
    """A model, data or artifact file is missing, unreadable or malformed."""


class UnsupportedError(SnncError):
    """The graph uses a construct snnc (or the chosen target) does not know."""


class ShapeError(SnncError):
    """Shapes of connected nodes do not agree."""


class ValueRangeError(SnncError):
    """A parameter is NaN, infinite or otherwise outside what can be represented."""


class ArtifactError(SnncError):
    """An artifact file is corrupt, foreign or of an unsupported version."""


class BackendUnavailableError(SnncError):
    """A target, backend, vendor library or device is not available here."""

    exit_code = EXIT_UNAVAILABLE


@dataclass(frozen=True)
class Violation:
    """One broken hardware or compiler rule: which rule, where, what was found, the limit, a hint."""

    rule: str
    node: str
    found: Any
    limit: Any
    hint: str = ""
    #: What the node is, for people (e.g. "Conv2d 16->32 3x3 -> IF 32x8x8"); set by the compiler.
    what: str = ""

    def format(self) -> str:
        """Return a one-line description of the violation."""
        where = f"node '{self.node}'" + (f" ({self.what})" if self.what else "")
        text = f"[{self.rule}] {where}: found {self.found}, limit {self.limit}"
        if self.hint:
            text += f" -- hint: {self.hint}"
        return text


class RuleViolationError(SnncError):
    """A compile broke one or more rules; all of them are listed together."""

    def __init__(self, violations: Iterable[Violation], *, target: str = "",
                 file: Optional[str] = None) -> None:
        self.violations = list(violations)
        head = f"{len(self.violations)} rule violation(s)"
        if target:
            head += f" for target '{target}'"
        body = "\n".join("  " + v.format() for v in self.violations)
        super().__init__(f"{head}:\n{body}", file=file)
