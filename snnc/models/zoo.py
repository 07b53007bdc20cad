"""The model zoo registry: ``build(name, **kwargs)`` returns a fresh torch model.

Every model is plain torch plus snnc neuron modules, carries ``input_shape`` (without batch) and
either is an ``nn.Sequential`` or defines ``to_graph(input_shape)``, so it exports to NIR exactly.

Each registered name also carries a training *recipe* (:func:`recipe`): the data set, the time
step and number of steps it was trained with (the compiled model must be run with the same
``dt_s``), and the optimiser defaults of ``snn-train``. Models defined in other modules
(:mod:`snnc.models.skipsnn`, :mod:`snnc.models.asa`, :mod:`snnc.models.minlatency`) register
themselves; :func:`names` and :func:`build` import them on first use.

Zoo models (``names()``); the shipped checkpoints (``snnc/models/checkpoints/<name>.pt``) are
evaluated, float, compiled and deployed, by ``scripts/evaluate_zoo.py`` into ``results/zoo.json``
(held-out 20 % of N-MNIST-small, seed 0, 199 recordings; FSDD: recording indices 5..9):

* ``nmnist_mlp``: 2312 -> 128 LIF -> 10 LIF, 1 ms x 300 steps (the README demo);
* ``nmnist_cnn``: strided-conv LIF net for Loihi, 2 ms x 150 steps, no pooling, no bias;
* ``speck_cnn``: Speck-compatible IF CNN with sum pooling, 5 ms x 60 steps;
* ``fsdd_mlp``: 64-channel cochlea spikes -> 128 LIF -> 10 LIF, 10 ms x 100 steps;
* ``fsdd_xylo``: 16-channel cochlea spikes -> 128 Xylo CubaLIF -> 8 -> host readout -> 10 (see
  :mod:`snnc.models.xylo_models`);
* ``skipsnn`` (gated) / ``skipsnn_plain``, ``asa_snn`` / ``asa_snn_vanilla`` / ``asa_snn_static``,
  ``minlatency_cnn`` (one step): see :mod:`snnc.models.skipsnn`, :mod:`snnc.models.asa`,
  :mod:`snnc.models.minlatency`.

Every shipped checkpoint is reproduced by the command in its model's docstring (all of them:
``scripts/train_zoo.sh``); the checkpoint's ``extra`` records that command, the data, the time
step, the training history and time.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn

from snnc.compiler import graph as g
from snnc.errors import InputError
from snnc.models.neurons import IF, LIF

_ZOO: Dict[str, Callable[..., nn.Module]] = {}
_RECIPES: Dict[str, Dict[str, Any]] = {}
#: Modules that register further zoo models when imported.
_PLUGIN_MODULES = ("snnc.models.skipsnn", "snnc.models.asa", "snnc.models.minlatency", "snnc.models.xylo_models",
                   "snnc.models.finetune")
_loaded = False

#: Defaults of a training recipe (see :func:`recipe`).
RECIPE_DEFAULTS: Dict[str, Any] = {
    "data": "nmnist",        # nmnist | nmnist-noise | fsdd | fsdd16
    "dt_us": 1000,           # time step of the binned input (the model's dt_s)
    "n_steps": 300,          # steps per sample
    "epochs": 10,
    "batch_size": 32,
    "lr": 2e-3,
    "weight_decay": 0.0,
    "loss": "ce_count",      # ce_count | mse_count | model (the model's own ``loss``)
    "count_scale": 1.0,      # logits = count_scale * output spike count (ce_count)
    "shift_px": 0,           # random translation augmentation (pixels, N-MNIST only)
    "train_window": 0,       # >0: train on random windows of this many steps (evaluate on all)
    "kwargs": {},            # constructor arguments used for training and stored in checkpoints
}


#: The chip target each shipped checkpoint is deployed on and evaluated on (its reference simulator).
DEPLOY_TARGETS: Dict[str, str] = {
    "nmnist_mlp": "loihi", "nmnist_cnn": "loihi", "speck_cnn": "speck", "fsdd_mlp": "loihi", "skipsnn": "loihi",
    "asa_snn_static": "loihi", "asa_snn_static_binary": "loihi", "minlatency_cnn": "loihi",
    "minlatency_cnn_binary": "loihi", "fsdd_xylo": "xylo",
}


def register(name: str, **recipe: Any) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a model constructor under ``name`` (keyword args: its training recipe)."""
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _ZOO[name] = fn
        _RECIPES[name] = {**RECIPE_DEFAULTS, **recipe}
        return fn
    return deco


def _load_plugins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _PLUGIN_MODULES:
            importlib.import_module(mod)


def names() -> List[str]:
    """Return the registered model names."""
    _load_plugins()
    return sorted(_ZOO)


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build zoo model ``name`` with constructor arguments ``kwargs``."""
    _load_plugins()
    if name not in _ZOO:
        raise InputError(f"unknown zoo model '{name}'", hint=f"known models: {', '.join(names())}")
    return _ZOO[name](**kwargs)


def recipe(name: str) -> Dict[str, Any]:
    """Return a copy of the training recipe of zoo model ``name`` (data, dt_us, n_steps, ...)."""
    _load_plugins()
    if name not in _RECIPES:
        raise InputError(f"unknown zoo model '{name}'", hint=f"known models: {', '.join(names())}")
    r = dict(_RECIPES[name])
    r["kwargs"] = dict(r["kwargs"])
    return r


class SequentialSNN(nn.Sequential):
    """An ``nn.Sequential`` spiking model with a declared ``input_shape`` (without batch)."""

    def __init__(self, input_shape: tuple, *layers: nn.Module) -> None:
        super().__init__(*layers)
        self.input_shape = tuple(input_shape)


class SumPool2d(nn.Module):
    """Sum pooling (NIR SumPool2d): ``avg_pool2d * kernel area``, exact for integer inputs."""

    def __init__(self, kernel_size: int = 2, stride: Optional[int] = None) -> None:
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = int(stride if stride is not None else kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the windowed sums of ``x`` (batch, C, H, W)."""
        return torch.nn.functional.avg_pool2d(x, self.kernel_size, self.stride, divisor_override=1)

    def to_node(self) -> g.Node:
        """Return the internal graph's SumPool2d node."""
        return g.SumPool2d(kernel_size=(self.kernel_size, self.kernel_size), stride=(self.stride, self.stride))

    def extra_repr(self) -> str:
        """Return the pooling parameters for ``print(model)``."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


def _numel(shape: tuple) -> int:
    return int(np.prod([int(s) for s in shape]))


def scale_init_(model: nn.Module, gain: float) -> nn.Module:
    """Multiply every Linear/Conv2d weight of ``model`` by ``gain`` (so that neurons fire at init)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(gain)
    return model


@register("nmnist_mlp", data="nmnist", dt_us=1000, n_steps=300, epochs=8, batch_size=32, lr=5e-3,
          loss="ce_count", count_scale=0.2, kwargs={"init_gain": 3.0})
def nmnist_mlp(hidden: int = 128, beta: float = 0.9, v_threshold: float = 1.0, dt_s: float = 1e-3,
               input_shape: tuple = (2, 34, 34), classes: int = 10, init_gain: float = 1.0) -> nn.Module:
    """Baseline LIF MLP for N-MNIST: flatten -> hidden LIF -> output LIF (v' = beta v + W x).

    The README demo model (:mod:`snnc.models.demo_model`): 1 ms x 300 steps, event counts,
    2312 -> 128 -> 10 (297,216 weights). Reproduce the shipped checkpoint::

        snn-train nmnist_mlp --out snnc/models/checkpoints/nmnist_mlp.pt
    """
    n_in = _numel(input_shape)
    return scale_init_(SequentialSNN(
        input_shape, nn.Flatten(), nn.Linear(n_in, hidden, bias=False),
        LIF.from_beta((hidden,), beta=beta, v_threshold=v_threshold, dt_s=dt_s),
        nn.Linear(hidden, classes, bias=False),
        LIF.from_beta((classes,), beta=beta, v_threshold=v_threshold, dt_s=dt_s)), init_gain)


@register("nmnist_cnn", data="nmnist", dt_us=2000, n_steps=150, epochs=12, batch_size=32, lr=1e-2,
          loss="ce_count", count_scale=0.3, shift_px=2, kwargs={})
def nmnist_cnn(channels: tuple = (12, 32), hidden: int = 0, beta: float = 0.9, v_threshold: float = 1.0,
               dt_s: float = 2e-3, input_shape: tuple = (2, 34, 34), classes: int = 10,
               init_gain: float = 2.0) -> nn.Module:
    """LIF CNN for N-MNIST on Loihi: conv5/2 -> LIF -> conv3/2 -> LIF -> [linear -> LIF] -> linear -> LIF.

    Strided convolutions instead of pooling (every synapse maps to one Lava Conv/Dense), no bias
    (no Loihi bias current needed), ``v' = beta v + W x``. With the defaults: 2x34x34 ->
    12x15x15 -> 32x7x7 -> 10; 600 + 3,456 + 15,680 = 19,736 weights (synaptic connections
    counted per output neuron: 135,000 + 451,584 + 15,680).

    Time step: 2 ms x 150 steps (the whole ~300 ms recording), event counts. At 2 ms only 0.38 %
    of non-empty input bins hold two or more events (0.13 % at 1 ms, 16 % at 5 ms), so the input
    is nearly the binary spike train Loihi's input ports take, while training costs half of
    1 ms x 300. Compile and run with ``dt_s = 2e-3``. Reproduce the shipped checkpoint
    (about 4 CPU minutes, one thread)::

        snn-train nmnist_cnn --out snnc/models/checkpoints/nmnist_cnn.pt
    """
    c1, c2 = (int(c) for c in channels)
    h1 = (int(input_shape[1]) - 5) // 2 + 1
    w1 = (int(input_shape[2]) - 5) // 2 + 1
    h2, w2 = (h1 - 3) // 2 + 1, (w1 - 3) // 2 + 1
    lif = lambda shape: LIF.from_beta(shape, beta=beta, v_threshold=v_threshold, dt_s=dt_s)  # noqa: E731
    layers: List[nn.Module] = [
        nn.Conv2d(int(input_shape[0]), c1, 5, stride=2, bias=False), lif((c1, h1, w1)),
        nn.Conv2d(c1, c2, 3, stride=2, bias=False), lif((c2, h2, w2)), nn.Flatten()]
    n = c2 * h2 * w2
    if hidden:
        layers += [nn.Linear(n, int(hidden), bias=False), lif((int(hidden),))]
        n = int(hidden)
    layers += [nn.Linear(n, classes, bias=False), lif((classes,))]
    return scale_init_(SequentialSNN(input_shape, *layers), init_gain)


@register("speck_cnn", data="nmnist", dt_us=5000, n_steps=60, epochs=12, batch_size=32, lr=5e-3,
          loss="ce_count", count_scale=0.5, shift_px=2, kwargs={})
def speck_cnn(channels: tuple = (16, 32), v_threshold: float = 1.0, dt_s: float = 5e-3,
              input_shape: tuple = (2, 34, 34), classes: int = 10, init_gain: float = 2.0) -> nn.Module:
    """Speck-compatible CNN: conv3/2 -> IF -> sum-pool 2 -> conv3 -> IF -> sum-pool 2 -> linear -> IF.

    Non-leaky IF neurons (``v' = v + W x``, reset to 0), square kernels, strides 1 and 2, no
    bias, sum pooling 2x2 (stride 2), linear readout = a conv with a full 4x4 kernel on the
    chip; 10 <= 15 readout classes. 2x34x34 -> 16x16x16 -> 16x8x8 -> 32x8x8 -> 32x4x4 -> 10
    (288 + 4,608 + 5,120 = 10,016 weights).

    Time step: 5 ms x 60 steps, event counts (the chip is event driven: a count of n is n input
    events into a non-leaky IAF, which a time-step model of it adds up). Compile and run with
    ``dt_s = 5e-3``. Reproduce the shipped checkpoint::

        snn-train speck_cnn --out snnc/models/checkpoints/speck_cnn.pt
    """
    c1, c2 = (int(c) for c in channels)
    h1 = (int(input_shape[1]) - 3) // 2 + 1
    w1 = (int(input_shape[2]) - 3) // 2 + 1
    h2, w2 = h1 // 2, w1 // 2
    h3, w3 = h2 // 2, w2 // 2
    iff = lambda shape: IF(shape, v_threshold=v_threshold, dt_s=dt_s)  # noqa: E731
    model = SequentialSNN(
        input_shape,
        nn.Conv2d(int(input_shape[0]), c1, 3, stride=2, bias=False), iff((c1, h1, w1)),
        SumPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, bias=False), iff((c2, h2, w2)),
        SumPool2d(2), nn.Flatten(),
        nn.Linear(c2 * h3 * w3, classes, bias=False), iff((classes,)))
    return scale_init_(model, init_gain)


@register("fsdd_mlp", data="fsdd", dt_us=10000, n_steps=100, epochs=15, batch_size=32, lr=2e-3,
          loss="ce_count", count_scale=0.3, kwargs={})
def fsdd_mlp(hidden: int = 128, beta: float = 0.9, v_threshold: float = 1.0, dt_s: float = 1e-2,
             input_shape: tuple = (64,), classes: int = 10, init_gain: float = 2.0) -> nn.Module:
    """Spoken digits (FSDD through the 64-channel mel cochlea, 10 ms steps): 64 -> LIF -> 10 LIF.

    Rate-coded cochlea (:class:`snnc.models.data.CochleaSpec` defaults), 100 steps of 10 ms;
    validation = recording indices 5..9. Reproduce the shipped checkpoint::

        snn-train fsdd_mlp --out snnc/models/checkpoints/fsdd_mlp.pt
    """
    n_in = _numel(input_shape)
    lif = lambda shape: LIF.from_beta(shape, beta=beta, v_threshold=v_threshold, dt_s=dt_s)  # noqa: E731
    layers: List[nn.Module] = [nn.Flatten()] if len(input_shape) > 1 else []
    layers += [nn.Linear(n_in, hidden, bias=False), lif((hidden,)),
               nn.Linear(hidden, classes, bias=False), lif((classes,))]
    return scale_init_(SequentialSNN(input_shape, *layers), init_gain)
