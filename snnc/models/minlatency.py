"""A one-time-step SNN after "Training a General Spiking Neural Network with Improved Efficiency
and Minimum Latency" (Yao, Wu, Chen, Zhang 2024, arXiv 2401.10843), built from its summary only.

No code or full text of the paper was available; what follows is our reading of the summary
(``shared/seeds/minimum-latency-snn-summary.md``), with every interpretation marked.

* **One time step** (T = 1): the whole N-MNIST recording (300 ms) is one frame of event counts,
  ``dt_s = 0.3``, and each neuron decides once. Run the compiled model with ``steps=1``.
* **Membrane potential partitioned into groups over non-dilated and dilated windows**
  (interpreted): each spiking conv layer's potential is the sum of two groups computed from
  the same input: a *local* group over a non-dilated 3x3 window and a *dilated* group over a
  3x3 window with dilation 2 (wider receptive field: the "information from other neurons").
  At T = 1 the sum of the two is one 5x5 convolution whose kernel holds the local 3x3 at its
  centre plus the dilated 3x3 on the even taps; :class:`MultiReceptiveConv2d` keeps the two
  kernels as parameters and always computes through the merged kernel, which is also what it
  exports (a single NIR ``Conv2d``), so the float model and the compiled one agree exactly.
  The summary's "recurrence from other neurons" at one time step is, in our reading, this
  lateral (wider-window) input; a temporal recurrence cannot act within one step and the
  summary's RNN variant is not built here.
* **Sine projection Omega with radian factor theta** (interpreted): the merged potential ``u``
  passes ``Omega(u) = sin(theta * clip(u, -pi/(2 theta), pi/(2 theta)))`` before the threshold,
  ``s = H(Omega(u) - V_th)``. Omega is monotone on the clipped range, so for ``0 < V_th < 1``
  this is exactly ``s = H(u - arcsin(V_th) / theta)``: a shifted threshold. The compiled model
  uses IF neurons (``v = x`` after one step) with ``v_threshold = arcsin(V_th)/theta``; Omega
  survives in training as the shape of the surrogate gradient
  (``d s/du ~ k sigma'(k (Omega(u) - V_th)) * theta cos(theta u)``), which is where it "smooths"
  activation. theta in {0.1 ... 0.9} as in the paper; default 0.5, ``V_th = 0.5``.
* Readout: a leaky integrator (NIR ``LI``) with gain 1 for one step; class = argmax of its
  potential.

Architecture (ours): 2x34x34 -> MRConv 2->16 stride 2 -> IF (16x17x17) -> MRConv 16->32
stride 2 -> IF (32x9x9) -> Linear 2592->10 -> LI; the compiled cpu program gives the same outputs.
The claim (it beats a plain SNN of its size at T = 1) is tested against :func:`minlatency_plain`
(same channels, strides and readout; a 3x3 or 5x5 conv, LIF, no projection) at T = 1, 2, 4, 8
and against the two ablations (``partition=False``, ``projection=False``): README.md ("The
papers' claims on our data", ``results/claims/minlatency.json``, ``scripts/paper_claims.py``).
Reproduce the shipped checkpoints (``scripts/train_zoo.sh``; about 15 s each at T = 1)::

    snn-train minlatency_cnn --out snnc/models/checkpoints/minlatency_cnn.pt
"""
from __future__ import annotations

import math
from typing import Any, Callable, Tuple

import numpy as np
import torch
from torch import nn

from snnc.compiler import graph as g
from snnc.dynamics import heaviside
from snnc.models.neurons import IF, LI, LIF, surrogate
from snnc.models.zoo import SequentialSNN, register


class _OmegaSpike(torch.autograd.Function):
    """Forward ``H(x)`` with ``x = u - arcsin(V_th)/theta``; backward through ``sigmoid(k (Omega(u) - V_th))``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, theta: float, v_th: float, k: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.theta, ctx.v_th, ctx.k = theta, v_th, k
        return heaviside(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[torch.Tensor, None, None, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        th, vth, k = ctx.theta, ctx.v_th, ctx.k
        u = x + math.asin(vth) / th
        lim = math.pi / (2 * th)
        inside = (u.abs() < lim).to(x.dtype)
        omega = torch.sin(th * u.clamp(-lim, lim))
        s = torch.sigmoid(k * (omega - vth))
        return grad * k * s * (1 - s) * th * torch.cos(th * u) * inside, None, None, None


class OmegaSurrogate:
    """A picklable spike function of an Omega-projected neuron (see module doc)."""

    def __init__(self, theta: float, v_th: float, sharpness: float = 5.0) -> None:
        self.theta, self.v_th, self.sharpness = float(theta), float(v_th), float(sharpness)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Return the spikes ``x > 0``, with the Omega surrogate gradient in backward."""
        return _OmegaSpike.apply(x, self.theta, self.v_th, self.sharpness)


def omega_surrogate(theta: float, v_th: float, sharpness: float = 5.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the spike function of an Omega-projected neuron (see module doc)."""
    return OmegaSurrogate(theta, v_th, sharpness)


def omega_threshold(theta: float, v_th: float) -> float:
    """Return the potential threshold equivalent to ``H(Omega(u) - V_th)``: ``arcsin(V_th) / theta``."""
    if not 0.0 < v_th < 1.0:
        raise ValueError(f"V_th must lie in (0, 1) for a sine projection, found {v_th}")
    if theta <= 0:
        raise ValueError(f"theta must be > 0, found {theta}")
    return math.asin(v_th) / theta


class MultiReceptiveConv2d(nn.Module):
    """Sum of a 3x3 conv and a dilation-2 3x3 conv on the same input, computed as one 5x5 conv."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = int(stride)
        self.local = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        self.dilated = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        bound = 1.0 / math.sqrt(in_channels * 9)
        nn.init.uniform_(self.local, -bound, bound)
        nn.init.uniform_(self.dilated, -bound, bound)

    def merged_weight(self) -> torch.Tensor:
        """Return the equivalent 5x5 kernel (local taps in the centre, dilated taps on even positions)."""
        w = nn.functional.pad(self.local, (1, 1, 1, 1))
        d = torch.zeros_like(w)
        d[:, :, ::2, ::2] = self.dilated
        return w + d

    def conv_spec(self) -> dict:
        """Return the merged conv's weight and geometry (for synaptic-operation counting)."""
        return {"weight": self.merged_weight(), "stride": (self.stride, self.stride), "padding": (2, 2),
                "dilation": (1, 1), "groups": 1}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the merged convolution of ``x`` (batch, C, H, W), padding 2."""
        return nn.functional.conv2d(x, self.merged_weight(), stride=self.stride, padding=2)

    def to_node(self) -> g.Node:
        """Return one NIR Conv2d with the merged 5x5 kernel."""
        w = self.merged_weight().detach().cpu().double().numpy().copy()
        return g.Conv2d(weight=w, bias=np.zeros(w.shape[0]), stride=(self.stride, self.stride), padding=(2, 2))


_RECIPE = dict(data="nmnist", dt_us=300000, n_steps=1, epochs=40, batch_size=32, lr=3e-3, loss="ce_count",
               count_scale=1.0, shift_px=2)


def _out_hw(input_shape: tuple) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Return the (H, W) after the first and the second stride-2 layer."""
    h1, w1 = (int(input_shape[1]) - 1) // 2 + 1, (int(input_shape[2]) - 1) // 2 + 1
    return (h1, w1), ((h1 - 1) // 2 + 1, (w1 - 1) // 2 + 1)


def _readout(classes: int, dt_s: float) -> LI:
    """Return the LI readout with gain 1 per step (decay 0.5 per step)."""
    beta = 0.5
    return LI((classes,), tau_s=-dt_s / math.log(beta), r=1.0 / (1.0 - beta), dt_s=dt_s)


@register("minlatency_cnn", **_RECIPE, kwargs={})
def minlatency_cnn(channels: tuple = (16, 32), theta: float = 0.5, v_th: float = 0.5, dt_s: float = 0.3,
                   input_shape: tuple = (2, 34, 34), classes: int = 10, init_gain: float = 1.0,
                   partition: bool = True, projection: bool = True, surrogate_slope: float = 5.0) -> nn.Module:
    """One-time-step multi-receptive-field SNN with a sine-projected threshold (see module doc).

    ``partition=False`` replaces each multi-receptive conv by one plain 3x3 conv (same channels,
    stride, padding 1); ``projection=False`` replaces the sine projection by a plain threshold
    ``v_th`` with a fast-sigmoid surrogate (slope ``surrogate_slope``): the ablations of the claim.
    """
    c1, c2 = (int(c) for c in channels)
    (h1, w1), (h2, w2) = _out_hw(input_shape)
    if projection:
        thr, spike = omega_threshold(theta, v_th), omega_surrogate(theta, v_th)
    else:
        thr, spike = float(v_th), surrogate("fast_sigmoid", surrogate_slope)

    def conv(cin: int, cout: int) -> nn.Module:
        return MultiReceptiveConv2d(cin, cout, stride=2) if partition else nn.Conv2d(cin, cout, 3, 2, 1, bias=False)

    model = SequentialSNN(
        tuple(input_shape),
        conv(int(input_shape[0]), c1), IF((c1, h1, w1), v_threshold=thr, dt_s=dt_s, spike_fn=spike),
        conv(c1, c2), IF((c2, h2, w2), v_threshold=thr, dt_s=dt_s, spike_fn=spike),
        nn.Flatten(), nn.Linear(c2 * h2 * w2, classes, bias=False), _readout(classes, dt_s))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(init_gain)
    return model


@register("minlatency_plain", **_RECIPE, kwargs={})
def minlatency_plain(channels: tuple = (16, 32), kernel: int = 3, beta: float = 0.5, v_threshold: float = 1.0,
                     dt_s: float = 0.3, input_shape: tuple = (2, 34, 34), classes: int = 10,
                     surrogate_slope: float = 5.0) -> nn.Module:
    """The plain same-size CNN of the min-latency claim: LIF (``v' = beta v + x``) conv net, any T.

    Same channels, strides and readout as :func:`minlatency_cnn`; one ``kernel`` x ``kernel``
    conv per layer (3: the partition's local window; 5: its merged receptive field), no
    projection, fast-sigmoid surrogate. Trained at T = 1 (``dt_s = 0.3``) and, with
    ``--dt-us 300000/T --steps T``, at T = 2, 4, 8 on the same 300 ms recordings.
    """
    c1, c2 = (int(c) for c in channels)
    (h1, w1), (h2, w2) = _out_hw(input_shape)
    k = int(kernel)
    sg = surrogate("fast_sigmoid", surrogate_slope)
    lif = lambda shape: LIF.from_beta(shape, beta=beta, v_threshold=v_threshold, dt_s=dt_s, spike_fn=sg)  # noqa: E731
    return SequentialSNN(
        tuple(input_shape),
        nn.Conv2d(int(input_shape[0]), c1, k, 2, k // 2, bias=False), lif((c1, h1, w1)),
        nn.Conv2d(c1, c2, k, 2, k // 2, bias=False), lif((c2, h2, w2)),
        nn.Flatten(), nn.Linear(c2 * h2 * w2, classes, bias=False), _readout(classes, dt_s))


@register("minlatency_cnn_binary", **{**_RECIPE, "data": "nmnist-binary"}, kwargs={})
def minlatency_cnn_binary(**kwargs: Any) -> nn.Module:
    """:func:`minlatency_cnn` trained on binary bins (1 where a pixel had an event): Loihi's input."""
    return minlatency_cnn(**kwargs)
