"""Float reference semantics of NIR neuron nodes, discretised with an explicit time step.

NIR's neurons are ODEs; snnc discretises every one of them into the same two-stage form
(``x`` is the summed input of the step, held constant over the step)::

    i' = a_i * i + g_i * x                 (current stage; CubaLIF/CubaLI only, else i' = x)
    v' = a_v * v + g_v * i' + c_v          (voltage stage)
    z  = v' > v_threshold;  v' = v_reset where z          (spiking kinds only)

Spiking neurons with ``reset_mode="subtract"`` (set by a framework convention, e.g. Rockpool's;
NIR cannot store it) instead emit ``n = min(floor(v'/v_threshold), max_spikes_per_step)`` spikes
where ``v' > v_threshold`` (``n = 1`` for single-spike neurons) and subtract ``n * v_threshold``;
their output is then a spike count per step, not a 0/1 value. A neuron with a floor ``v_min``
(sinabs' ``min_v_mem``) ends each step with ``v' = max(v', v_min)``, after the reset.

``method="exact"`` integrates the linear ODE exactly for a piecewise-constant input
(``a = exp(-dt/tau)``); ``method="euler"`` is the forward-Euler form used by snnTorch and Norse
(``a = 1 - dt/tau``). In both, the input gain is ``r * (1 - a)`` and the leak term
``v_leak * (1 - a)``, so snnTorch's ``r = tau/dt`` gives ``v' = beta*v + x``. Integrators
(IF, I) use ``v' = v + dt * r * x`` in both methods (exact for a constant input).
The Loihi and Speck lowerings start from these same coefficients.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from snnc.errors import SnncError, ValueRangeError

METHODS = ("exact", "euler")


@dataclass(frozen=True)
class DiscreteNeuron:
    """Coefficients of one neuron population after discretisation (numpy arrays, broadcastable).

    ``a_i``/``g_i`` are ``None`` for neurons without a current stage; ``v_threshold`` is
    ``None`` for non-spiking neurons.
    """

    a_v: np.ndarray
    g_v: np.ndarray
    c_v: np.ndarray
    a_i: Optional[np.ndarray] = None
    g_i: Optional[np.ndarray] = None
    v_threshold: Optional[np.ndarray] = None
    v_reset: Optional[np.ndarray] = None
    #: ``"to_v_reset"`` (NIR) or ``"subtract"`` (subtract ``n * v_threshold`` after ``n`` spikes).
    reset_mode: str = "to_v_reset"
    #: Most spikes one neuron emits in one step (> 1 only with ``reset_mode="subtract"``).
    max_spikes_per_step: int = 1
    #: Lower bound of ``v`` after the reset (sinabs' ``min_v_mem``); None: unbounded.
    v_min: Optional[float] = None


def decay(tau_s: np.ndarray, dt_s: float, method: str, node: str = "") -> np.ndarray:
    """Return the per-step decay factor for time constant ``tau_s`` and step ``dt_s`` (seconds)."""
    if method not in METHODS:
        raise SnncError(f"unknown integration method '{method}'",
                        hint=f"use one of {', '.join(METHODS)}")
    tau = np.asarray(tau_s, dtype=np.float64)
    if np.any(~np.isfinite(tau)) or np.any(tau <= 0):
        raise ValueRangeError(f"time constant must be finite and > 0, found min {tau.min()!r}",
                              node=node or None)
    if method == "exact":
        return np.exp(-dt_s / tau)
    a = 1.0 - dt_s / tau
    if np.any(a < 0):
        raise ValueRangeError(
            f"forward-Euler decay 1 - dt/tau is negative (dt={dt_s} s, min tau={tau.min()} s)",
            node=node or None, hint="use a smaller --dt or --method exact")
    return a


# ----------------------------------------------------------------------------- torch step
def heaviside(x: "torch.Tensor") -> "torch.Tensor":
    """Return ``(x > 0)`` as the dtype of ``x`` (the strict spike condition, no gradient)."""
    return (x > 0).to(x.dtype)


def surrogate_derivative(fn: Any, x: "torch.Tensor") -> "torch.Tensor":
    """Return ``d fn(x) / dx`` elementwise: the surrogate gradient of an elementwise spike function ``fn``."""
    import torch

    with torch.enable_grad():
        xx = x.detach().requires_grad_(True)
        y = fn(xx)
        (g,) = torch.autograd.grad(y.sum(), xx, allow_unused=True)
    return torch.zeros_like(x) if g is None else g


class TorchNeuron:
    """A :class:`DiscreteNeuron` as torch tensors shaped to broadcast over (batch, *shape)."""

    def __init__(self, d: DiscreteNeuron, shape: tuple, dtype: "torch.dtype", device: "torch.device") -> None:
        import torch

        def t(a: Optional[np.ndarray]) -> Optional["torch.Tensor"]:
            if a is None:
                return None
            a = np.asarray(a, dtype=np.float64)
            a = a.reshape(shape) if a.size > 1 else a.reshape(())
            return torch.as_tensor(a, dtype=dtype, device=device)

        self.a_v, self.g_v, self.c_v = t(d.a_v), t(d.g_v), t(d.c_v)
        self.a_i, self.g_i = t(d.a_i), t(d.g_i)
        self.v_threshold, self.v_reset = t(d.v_threshold), t(d.v_reset)
        self.subtract = d.reset_mode == "subtract"
        self.max_spikes_per_step = int(d.max_spikes_per_step)
        self.v_min = None if d.v_min is None else float(d.v_min)
        self._g_v_one = bool(np.all(np.asarray(d.g_v) == 1.0))
        self._c_v_zero = bool(np.all(np.asarray(d.c_v) == 0.0))

    def step(self, x: "torch.Tensor", i: Optional["torch.Tensor"], v: "torch.Tensor",
             spike_fn: Any = heaviside) -> tuple:
        """Advance one step with summed input ``x``; return ``(output, i, v)``.

        ``output`` is the spike tensor for spiking neurons (spike counts for multi-spike
        neurons), else the new ``v``. ``spike_fn`` maps ``v - v_threshold`` to spikes (a
        surrogate-gradient function in training; its forward value must be ``heaviside``).
        """
        import torch

        if self.a_i is not None:
            i = self.a_i * i + self.g_i * x
            drive = i
        else:
            drive = x
        v = self.a_v * v + self.g_v * drive + self.c_v
        if self.v_threshold is None:
            return v, i, v
        z = spike_fn(v - self.v_threshold)
        if self.subtract:
            if self.max_spikes_per_step > 1:
                n = torch.clamp(torch.floor(v.detach() / self.v_threshold), max=self.max_spikes_per_step)
                n = torch.where(z.detach() > 0, n, torch.zeros_like(n))
                z = z + (n - z).detach()  # the count forward, the surrogate's gradient backward
            v = v - z * self.v_threshold
        else:
            v = torch.where(z.detach() > 0, self.v_reset.expand_as(v) if self.v_reset.dim() else self.v_reset, v)
        if self.v_min is not None:
            v = torch.clamp(v, min=self.v_min)
        return z, i, v

    def step_inplace(self, x: "torch.Tensor", i: Optional["torch.Tensor"], v: "torch.Tensor") -> tuple:
        """Advance one step as :meth:`step` does (the same values, bit for bit), updating ``v`` and ``i`` in place.

        For simulation without gradients: fewer temporaries. The returned output of a non-spiking
        neuron is ``v`` itself (copy it before the next step).
        """
        import torch

        if self.subtract and self.max_spikes_per_step > 1:  # multi-spike counts: the general step
            z, i2, v2 = self.step(x, i, v)
            v.copy_(v2)
            if i is not None and i2 is not None:
                i.copy_(i2)
            return z, i, v
        if self.a_i is not None:
            i.mul_(self.a_i)
            i.add_(self.g_i * x)
            drive = i
        else:
            drive = x
        v.mul_(self.a_v)
        v.add_(drive if self._g_v_one else self.g_v * drive)
        if not self._c_v_zero:
            v.add_(self.c_v)
        if self.v_threshold is None:
            return v, i, v
        zb = v > self.v_threshold  # heaviside(v - v_threshold): v - th > 0 exactly when v > th
        z = zb.to(v.dtype)
        if self.subtract:
            v.sub_(z * self.v_threshold)
        elif self.v_reset.dim() == 0:
            v.masked_fill_(zb, self.v_reset)
        else:
            v.copy_(torch.where(zb, self.v_reset.expand_as(v), v))
        if self.v_min is not None:
            v.clamp_(min=self.v_min)
        return z, i, v
