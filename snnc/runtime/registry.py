"""What the runtime takes from the layer above it: the model zoo and the validation data sets.

``snnc.compile`` opens snnc checkpoints (a zoo model rebuilt with its weights) and plain
``state_dict`` files given ``--model ZOO_NAME``, and ``-O validate=NAME`` scores a compile on a
held-out data set. The zoo and the data sets belong to :mod:`snnc.models`, which imports the
runtime; so the runtime never imports them: it calls what :mod:`snnc.models.hooks` registers
here. ``snnc/__init__.py`` imports those hooks, so whoever imports any part of snnc has them.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from snnc.errors import InputError, UnsupportedError

#: Loads a validation data set: ``load(dt_s, n_steps, samples)`` returns ``{"x": (B, T, *shape) counts,
#: "labels": (B,), "dt_us": int, "n_steps": int, "split": "how the samples were chosen"}``.
ValidationLoader = Callable[[float, Optional[int], Optional[int]], Dict[str, Any]]

_ZOO: Dict[str, Callable[..., Any]] = {}
_VALIDATION: Dict[str, ValidationLoader] = {}


def register_zoo(build: Callable[..., Any], recipe: Callable[[str], Dict[str, Any]]) -> None:
    """Register the model zoo: ``build(name, **kwargs)`` returns a model, ``recipe(name)`` its training recipe."""
    _ZOO["build"], _ZOO["recipe"] = build, recipe


def _zoo(what: str) -> Callable[..., Any]:
    if what not in _ZOO:
        raise UnsupportedError("no model zoo is registered, so snnc checkpoints and --model cannot be opened",
                               hint="import snnc (its __init__ registers snnc.models.hooks)")
    return _ZOO[what]


def build_zoo_model(name: str, **kwargs: Any) -> Any:
    """Return a new zoo model ``name`` built with ``kwargs``."""
    return _zoo("build")(name, **kwargs)


def zoo_recipe(name: str) -> Dict[str, Any]:
    """Return the training recipe of zoo model ``name`` (``kwargs``, ``dt_us``, ``n_steps``, ...)."""
    return _zoo("recipe")(name)


def register_validation_set(name: str, load: ValidationLoader) -> None:
    """Register a data set that ``-O validate=NAME`` can score a compile on."""
    _VALIDATION[str(name)] = load


def validation_sets() -> List[str]:
    """Return the names of the registered validation data sets."""
    return sorted(_VALIDATION)


def validation_set(name: str) -> ValidationLoader:
    """Return the loader of validation data set ``name`` (InputError naming the known ones otherwise)."""
    if name not in _VALIDATION:
        raise InputError(f"unknown validation data set '{name}'", hint=f"known: {validation_sets()}")
    return _VALIDATION[name]
