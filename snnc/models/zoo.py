"""The model zoo registry: ``build(name, **kwargs)`` returns a fresh torch model.

Every model is plain torch plus snnc neuron modules, carries ``input_shape`` (without batch) and
either is an ``nn.Sequential`` or defines ``to_graph(input_shape)``, so it exports to NIR exactly.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from torch import nn

from snnc.errors import InputError
from snnc.models.neurons import LIF

_ZOO: Dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a model constructor under ``name``."""
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _ZOO[name] = fn
        return fn
    return deco


def names() -> List[str]:
    """Return the registered model names."""
    return sorted(_ZOO)


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name`` with constructor arguments ``kwargs``."""
    if name not in _ZOO:
        raise InputError(f"unknown zoo model '{name}'", hint=f"known models: {', '.join(names())}")
    return _ZOO[name](**kwargs)


class SequentialSNN(nn.Sequential):
    """An ``nn.Sequential`` spiking model with a declared ``input_shape`` (without batch)."""

    def __init__(self, input_shape: tuple, *layers: nn.Module) -> None:
        super().__init__(*layers)
        self.input_shape = tuple(input_shape)


@register("nmnist_mlp")
def nmnist_mlp(hidden: int = 128, beta: float = 0.9, v_threshold: float = 1.0, dt_s: float = 1e-3,
               input_shape: tuple = (2, 34, 34), classes: int = 10) -> nn.Module:
    """Baseline LIF MLP for N-MNIST: flatten -> hidden LIF -> output LIF (v' = beta v + W x)."""
    n_in = 1
    for s in input_shape:
        n_in *= int(s)
    return SequentialSNN(
        input_shape, nn.Flatten(), nn.Linear(n_in, hidden, bias=False),
        LIF.from_beta((hidden,), beta=beta, v_threshold=v_threshold, dt_s=dt_s),
        nn.Linear(hidden, classes, bias=False),
        LIF.from_beta((classes,), beta=beta, v_threshold=v_threshold, dt_s=dt_s))
