"""Torch neuron modules whose dynamics are exactly snnc's (and so export to NIR exactly).

Each module is one population; calling it advances one time step (state kept inside, cleared by
:func:`reset_states`). Parameters are NIR's (``tau_s`` seconds, ``r``, ``v_leak``, ``v_threshold``,
``v_reset``) with the step ``dt_s`` and integration ``method`` fixed at construction; the update is
:meth:`snnc.dynamics.TorchNeuron.step`, the same code the cpu target runs. Spikes use a surrogate
gradient in backward only.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from snnc.compiler import graph as g
from snnc.dynamics import TorchNeuron, heaviside


class _SpikeFn(torch.autograd.Function):
    """Heaviside forward; fast-sigmoid (``slope``) or rectangular (``width``) surrogate backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kind: str, param: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.kind, ctx.param = kind, param
        return heaviside(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        if ctx.kind == "rect":
            sg = (x.abs() < ctx.param / 2).to(x.dtype) / ctx.param
        elif ctx.kind == "sigmoid":
            s = torch.sigmoid(x / ctx.param)
            sg = s * (1 - s) / ctx.param
        else:
            sg = 1.0 / (ctx.param * x.abs() + 1.0) ** 2
        return grad * sg, None, None


class Surrogate:
    """A picklable spike function: Heaviside forward, surrogate ``kind`` with ``param`` in backward."""

    def __init__(self, kind: str = "fast_sigmoid", param: float = 10.0) -> None:
        self.kind, self.param = str(kind), float(param)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Return the spikes ``x > 0`` (float), with the surrogate gradient in backward."""
        return _SpikeFn.apply(x, self.kind, self.param)

    def __repr__(self) -> str:
        return f"Surrogate({self.kind!r}, {self.param})"


def surrogate(kind: str = "fast_sigmoid", param: float = 10.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return a spike function with surrogate ``kind`` ('fast_sigmoid' slope, 'sigmoid' or 'rect' width)."""
    return Surrogate(kind, param)


class SpikingNeuron(nn.Module):
    """Base of snnc's neuron modules: holds NIR parameters, state and the discrete step."""

    node_cls: type = g.LIF

    def __init__(self, shape: Sequence[int], dt_s: float = 1e-3, method: str = "exact",
                 spike_fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None, **params: Any) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.dt_s, self.method = float(dt_s), method
        self.params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        self.spike_fn = spike_fn or surrogate()
        self._coefs: Optional[TorchNeuron] = None
        self.i: Optional[torch.Tensor] = None
        self.v: Optional[torch.Tensor] = None

    def to_node(self) -> g.Node:
        """Return the internal graph node with this module's NIR parameters (per-neuron arrays)."""
        return self.node_cls(**{k: np.broadcast_to(v, self.shape).copy() for k, v in self.params.items()})

    def reset_state(self) -> None:
        """Forget the state (call before each new sample sequence)."""
        self.i = self.v = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Advance one step with input current ``x`` (batch, *shape); return spikes (or v)."""
        if self._coefs is None or self._coefs.a_v.dtype != x.dtype or self._coefs.a_v.device != x.device:
            self._coefs = TorchNeuron(self.to_node().discrete(self.dt_s, self.method), self.shape, x.dtype, x.device)
        if self.v is None or self.v.shape != x.shape:
            self.v = torch.zeros_like(x)
            self.i = torch.zeros_like(x) if self._coefs.a_i is not None else None
        out, self.i, self.v = self._coefs.step(x, self.i, self.v, self.spike_fn)
        return out


def _tau_from_beta(beta: float, dt_s: float, method: str) -> Tuple[float, float]:
    """Return ``(tau_s, r)`` that make the discrete update ``v' = beta v + x``."""
    tau = -dt_s / math.log(beta) if method == "exact" else dt_s / (1.0 - beta)
    return tau, 1.0 / (1.0 - beta)


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire population (NIR LIF)."""

    node_cls = g.LIF

    def __init__(self, shape: Sequence[int], tau_s: float, v_threshold: float = 1.0, v_leak: float = 0.0,
                 v_reset: float = 0.0, r: float = 1.0, dt_s: float = 1e-3, method: str = "exact",
                 spike_fn: Optional[Callable] = None) -> None:
        super().__init__(shape, dt_s, method, spike_fn, tau=tau_s, r=r, v_leak=v_leak,
                         v_threshold=v_threshold, v_reset=v_reset)

    @classmethod
    def from_beta(cls, shape: Sequence[int], beta: float, v_threshold: float = 1.0, dt_s: float = 1e-3,
                  method: str = "exact", **kw: Any) -> "LIF":
        """Return a LIF whose update is ``v' = beta v + x`` (snnTorch's Leaky with reset to zero)."""
        tau, r = _tau_from_beta(beta, dt_s, method)
        return cls(shape, tau_s=tau, r=r, v_threshold=v_threshold, dt_s=dt_s, method=method, **kw)


class CubaLIF(SpikingNeuron):
    """Current-based LIF population (NIR CubaLIF)."""

    node_cls = g.CubaLIF

    def __init__(self, shape: Sequence[int], tau_syn_s: float, tau_mem_s: float, v_threshold: float = 1.0,
                 v_leak: float = 0.0, v_reset: float = 0.0, r: float = 1.0, w_in: float = 1.0,
                 dt_s: float = 1e-3, method: str = "exact", spike_fn: Optional[Callable] = None) -> None:
        super().__init__(shape, dt_s, method, spike_fn, tau_syn=tau_syn_s, tau_mem=tau_mem_s, r=r, v_leak=v_leak,
                         v_threshold=v_threshold, v_reset=v_reset, w_in=w_in)


class IF(SpikingNeuron):
    """Integrate-and-fire population (NIR IF): ``v' = v + dt r x``; default ``r = 1/dt``."""

    node_cls = g.IF

    def __init__(self, shape: Sequence[int], v_threshold: float = 1.0, v_reset: float = 0.0,
                 r: Optional[float] = None, dt_s: float = 1e-3, method: str = "exact",
                 spike_fn: Optional[Callable] = None) -> None:
        super().__init__(shape, dt_s, method, spike_fn, r=(1.0 / dt_s if r is None else r),
                         v_threshold=v_threshold, v_reset=v_reset)


class LI(SpikingNeuron):
    """Leaky integrator readout (NIR LI); outputs its voltage."""

    node_cls = g.LI

    def __init__(self, shape: Sequence[int], tau_s: float, v_leak: float = 0.0, r: float = 1.0,
                 dt_s: float = 1e-3, method: str = "exact") -> None:
        super().__init__(shape, dt_s, method, None, tau=tau_s, r=r, v_leak=v_leak)


class Threshold(SpikingNeuron):
    """Memoryless threshold ``z = x > threshold`` (NIR Threshold)."""

    node_cls = g.Threshold

    def __init__(self, shape: Sequence[int], threshold: float = 0.0,
                 spike_fn: Optional[Callable] = None) -> None:
        super().__init__(shape, 1.0, "exact", spike_fn, threshold=threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x > threshold`` (surrogate gradient in backward)."""
        th = torch.as_tensor(np.broadcast_to(self.params["threshold"], self.shape), dtype=x.dtype, device=x.device)
        return self.spike_fn(x - th)


def reset_states(model: nn.Module) -> None:
    """Reset the state of every snnc neuron inside ``model``."""
    for m in model.modules():
        if isinstance(m, SpikingNeuron):
            m.reset_state()


def run_sequence(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reset states and run ``model`` over time: ``x`` (batch, T, ...) -> (batch, T, ...)."""
    reset_states(model)
    outs = [model(x[:, t]) for t in range(x.shape[1])]
    return torch.stack(outs, dim=1)
