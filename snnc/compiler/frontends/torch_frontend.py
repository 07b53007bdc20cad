"""Torch front end: ``nn.Module``s built from torch layers and snnc neuron modules -> :class:`Graph`.

A module that defines ``to_graph(input_shape)`` builds its own graph (the zoo's gated and recurrent
models do). Otherwise the module must be an ``nn.Sequential`` (possibly nested) of supported layers.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from snnc.compiler import graph as g
from snnc.errors import InputError, UnsupportedError


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy().copy()


def _linear(m: Any) -> g.Node:
    if m.bias is None:
        return g.Linear(weight=_np(m.weight))
    return g.Affine(weight=_np(m.weight), bias=_np(m.bias))


def _conv2d(m: Any) -> g.Node:
    if isinstance(m.padding, str):
        raise UnsupportedError(f"Conv2d padding='{m.padding}' is not supported", hint="use integer padding")
    if m.padding_mode != "zeros":
        raise UnsupportedError(f"Conv2d padding_mode='{m.padding_mode}' is not supported")
    return g.Conv2d(weight=_np(m.weight), bias=np.zeros(m.out_channels) if m.bias is None else _np(m.bias),
                    stride=m.stride, padding=m.padding, dilation=m.dilation, groups=m.groups)


def _pool(cls: type) -> Callable[[Any], g.Node]:
    def make(m: Any) -> g.Node:
        if getattr(m, "ceil_mode", False) or getattr(m, "count_include_pad", True) is False and m.padding:
            raise UnsupportedError(f"{type(m).__name__} with ceil_mode/count_include_pad=False is not supported")
        return cls(kernel_size=m.kernel_size, stride=m.stride or m.kernel_size, padding=m.padding)
    return make


def _batchnorm(m: Any) -> g.Node:
    if m.running_mean is None:
        raise UnsupportedError("BatchNorm without running statistics", hint="use track_running_stats=True")
    return g.BatchNorm(mean=_np(m.running_mean), var=_np(m.running_var),
                       gamma=_np(m.weight) if m.weight is not None else np.ones(m.num_features),
                       beta=_np(m.bias) if m.bias is not None else np.zeros(m.num_features), eps=float(m.eps))


def _flatten(m: Any) -> g.Node:
    if m.start_dim < 1:
        raise UnsupportedError("Flatten over the batch dimension (start_dim=0)")
    return g.Flatten(start_dim=m.start_dim - 1, end_dim=m.end_dim if m.end_dim < 0 else m.end_dim - 1)


def _converters() -> Dict[type, Callable[[Any], g.Node]]:
    from torch import nn

    return {nn.Linear: _linear, nn.Conv2d: _conv2d, nn.AvgPool2d: _pool(g.AvgPool2d),
            nn.LPPool2d: _unsupported, nn.MaxPool2d: _unsupported, nn.BatchNorm1d: _batchnorm,
            nn.BatchNorm2d: _batchnorm, nn.Flatten: _flatten}


def _unsupported(m: Any) -> g.Node:
    raise UnsupportedError(f"torch layer {type(m).__name__} has no spiking equivalent in NIR",
                           hint="use AvgPool2d or snnc.models.SumPool2d instead of max pooling")


_SKIP = ("Identity", "Dropout", "Dropout2d")


def _leaves(module: Any, prefix: str = "") -> List[Tuple[str, Any]]:
    from torch import nn

    if isinstance(module, nn.Sequential):
        out: List[Tuple[str, Any]] = []
        for name, child in module.named_children():
            out += _leaves(child, f"{prefix}{name}" if not prefix else f"{prefix}.{name}")
        return out
    return [(prefix or type(module).__name__.lower(), module)]


def from_torch(module: Any, input_shape: Sequence[int], source: str = "<torch>") -> g.Graph:
    """Convert a torch module to a :class:`Graph` (input shape without batch).

    A leaf that defines ``to_node()`` (snnc's neuron modules, :mod:`snnc.models.neurons`, or any
    module of yours) gives its own node.
    """
    if hasattr(module, "to_graph"):
        graph = module.to_graph(tuple(input_shape))
        graph.source = source
        return graph
    shape = tuple(int(s) for s in input_shape)
    if not shape:
        raise InputError("the torch front end needs the model's input shape", file=source,
                         hint="pass --input-shape C,H,W (or N) or give the model an `input_shape` attribute")
    conv = _converters()
    graph = g.Graph(source=source)
    graph.nodes["input"] = g.Input(shape=shape)
    prev = "input"
    for name, m in _leaves(module):
        if type(m).__name__ in _SKIP:
            continue
        if type(m) in conv:
            try:
                node = conv[type(m)](m)
            except UnsupportedError as e:
                raise UnsupportedError(e.message, file=source, node=name, hint=e.hint) from None
        elif hasattr(m, "to_node"):
            node = m.to_node()
        else:
            raise UnsupportedError(f"torch layer {type(m).__name__} is not supported", file=source, node=name,
                                   hint="supported: Linear, Conv2d, AvgPool2d, BatchNorm, Flatten, Dropout, "
                                        "snnc.models neurons; or give the module a to_graph() method")
        key = name.replace(".", "_")
        graph.nodes[key] = node
        graph.edges.append((prev, key))
        prev = key
    graph.nodes["output"] = g.Output()
    graph.edges.append((prev, "output"))
    return graph
