"""ASA-SNN (Yao et al., ICCV 2023, "Inherent Redundancy in Spiking Neural Networks"), for N-MNIST.

Paper: LIF ``U_t = H_{t-1} + X_t``, ``S_t = H(U_t - V_th)``, ``H_t = alpha U_t (1 - S_t)`` with
alpha = 0.3, V_th = 0.3 (snnc's ``LIF.from_beta(beta=0.3, v_threshold=0.3)``); layer order
Conv -> BN -> AvgPool -> ASA(X) -> LIF, where the Advanced Spatial Attention rescales the
synaptic input X of every LIF layer. The paper's 3-layer net takes DVS frames pooled to
2x32x32 with 64/128/128 channels and FC 8192 -> 256 -> 11 (2.3 M parameters).

Adaptation to N-MNIST (2x34x34, 10 classes) on a 2-core CPU, all choices ours:

* input: 10 frames of 30 ms (event counts, the whole ~300 ms recording), ``dt_s = 0.03``;
* conv1 2->16 (3x3, no padding: 34 -> 32), conv2 16->32 (3x3, pad 1) + avgpool 2 (-> 16),
  conv3 32->32 + avgpool 2 (-> 8), FC 2048 -> 128 -> 10; about 277 k parameters;
* no BatchNorm by default (``batchnorm=True`` restores the paper's Conv -> BN): with 800
  training samples it slowed training badly here (ASA-1 with BN: 74 % after 6 of 8 epochs;
  earlier, the vanilla net with BN: 10 % and 31 % after 2-3 epochs, 76 % after 2 without); BN
  would fold into the conv weights anyway (``make_static`` does it when present). Without BN the
  attention's sigmoid maps (about 0.5 at the start) silenced the deeper layers at initialisation
  and ASA-1 did not learn (10 % after an epoch), so both the ASA and the vanilla net start with
  their weights x ``init_gain`` = 3 (every layer fires at the start; the same recipe for both);
* ASA as in the paper's code (BICLab/ASA-SNN ``models/module/Attn.py``, read, not copied), on the
  synaptic input of all three conv layers (after Conv -> AvgPool, before the LIF), ``ratio``
  (the paper's ``lam``) 0.5, time reduction 4 (the paper's scripts): see :class:`ASA`. The
  (t, c) selection is hard, so the learnable importance mix and the time FC get no gradient
  (as in the paper's code); the two spatial-attention convs learn.
* ASA is not spiking (pooling statistics, top-k, sigmoid, a product of two dynamic signals)
  and is non-causal over T, so :class:`ASASNN` does not compile (``to_graph`` raises
  :class:`~snnc.errors.UnsupportedError`, except with ``attention='none'``).

Deployable static variant (:func:`make_static`, zoo name ``asa_snn_static``): the attention
factor ``X'/X`` is averaged per channel over calibration (training) data, and that per-channel
gain together with BatchNorm (running statistics) is folded into the conv weights and bias,
giving a plain Conv -> AvgPool -> LIF ``SequentialSNN`` that compiles exactly.

NASFR (the paper's network average spike firing rate) = spikes / (T x samples x LIF neurons),
see :mod:`snnc.models.metrics`. The comparison with the vanilla net (float, folded, on Loihi) is
in README.md ("The papers' claims on our data", ``results/claims/asa.json``, written by
``scripts/paper_claims.py``). The static model compiled for the cpu target gives the same spikes
as the float model. Reproduce the checkpoints (``scripts/train_zoo.sh``)::

    snn-train asa_snn --out snnc/models/checkpoints/claims/asa_snn.pt
    snn-train asa_snn_vanilla --out snnc/models/checkpoints/claims/asa_snn_vanilla.pt
    python examples/train_asa.py --ckpt snnc/models/checkpoints/claims/asa_snn.pt \
        --out snnc/models/checkpoints/claims/asa_snn_static.pt

(the zoo's ``asa_snn_static.pt`` was folded from the ASA before the paper's code was followed.)
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from snnc.errors import UnsupportedError
from snnc.models.neurons import LIF, reset_states, surrogate
from snnc.models.zoo import SequentialSNN, register

ATTENTIONS = ("asa1", "asa2", "none")


class ASA(nn.Module):
    """Advanced Spatial Attention over a whole sequence of synaptic inputs X (T, B, C, H, W).

    As in the paper's code (BICLab/ASA-SNN, read, not copied; see module doc):

    * importance of each (t, c): ``s = 0.5 (avg + max) + a * avg + b * max`` over H x W, with
      learnable ``a``, ``b`` (initialised 0.5; ASA-1) mixed over time by a bias-free FC
      ``T -> T/r -> T`` (ReLU between; ``r = reduction``, 4 in the paper's scripts; ``r = 1``: one
      ``T x T`` FC). ASA-2 uses ``avg + max`` as it is.
    * (t, c) is *important* when c is among the ``floor(ratio C)`` highest-scoring channels at
      time t **and** t among the ``floor(ratio T)`` highest-scoring times of channel c
      (``ratio`` = 0.5); all other pairs are *sub-important*. The selection is hard: no gradient
      reaches ``a``, ``b`` or the FC through it (as in the paper's code).
    * each group g gets one spatial map per sample, ``sigmoid(conv3x3([mean_g / r_g; max_g]))``
      (bias-free conv), where ``mean_g`` and ``max_g`` run over all T x C planes of the masked
      input (zeros where masked out) and ``r_g`` is ``ratio`` (important) or ``1 - ratio``;
      ``X' = map_imp * (m X) + map_sub * ((1 - m) X)``.
    """

    def __init__(self, steps: int, mode: str = "asa1", ratio: float = 0.5, kernel_size: int = 3,
                 reduction: int = 4) -> None:
        super().__init__()
        if mode not in ("asa1", "asa2"):
            raise ValueError(f"ASA mode must be asa1 or asa2, found {mode!r}")
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ASA ratio must lie in (0, 1), found {ratio}")
        self.mode, self.ratio, self.steps = mode, float(ratio), int(steps)
        self.alpha = self.beta = None
        self.time_fc: Optional[nn.Module] = None
        if mode == "asa1":
            self.alpha = nn.Parameter(torch.tensor(0.5))
            self.beta = nn.Parameter(torch.tensor(0.5))
            r = max(1, int(reduction))
            if r == 1 or steps // r < 1:
                self.time_fc = nn.Linear(steps, steps, bias=False)
            else:
                self.time_fc = nn.Sequential(nn.Linear(steps, steps // r, bias=False), nn.ReLU(),
                                             nn.Linear(steps // r, steps, bias=False))
        pad = kernel_size // 2
        self.att_imp = nn.Conv2d(2, 1, kernel_size, padding=pad, bias=False)
        self.att_sub = nn.Conv2d(2, 1, kernel_size, padding=pad, bias=False)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Return the importance score (T, B, C) of every (t, c) of X."""
        avg, mx = x.mean(dim=(3, 4)), x.amax(dim=(3, 4))
        if self.time_fc is None:
            return avg + mx
        s = 0.5 * (avg + mx) + self.alpha * avg + self.beta * mx
        return self.time_fc(s.permute(1, 2, 0)).permute(2, 0, 1)

    def important_mask(self, x: torch.Tensor) -> torch.Tensor:
        """Return the 0/1 mask (T, B, C, 1, 1) of important (t, c) pairs (top channels and top times)."""
        t, b, c = x.shape[:3]
        s = self.scores(x).detach()
        kc, kt = max(1, int(c * self.ratio)), max(1, int(t * self.ratio))
        top_c = torch.zeros_like(s).scatter_(2, s.topk(kc, dim=2).indices, 1.0)
        top_t = torch.zeros_like(s).scatter_(0, s.topk(kt, dim=0).indices, 1.0)
        return (top_c * top_t).reshape(t, b, c, 1, 1)

    def factor(self, x: torch.Tensor) -> torch.Tensor:
        """Return the multiplicative attention (T, B, C, H, W) for X."""
        m = self.important_mask(x)
        att_i = self._spatial(x * m, self.ratio, self.att_imp)
        att_s = self._spatial(x * (1.0 - m), 1.0 - self.ratio, self.att_sub)
        return m * att_i + (1.0 - m) * att_s

    @staticmethod
    def _spatial(xm: torch.Tensor, share: float, conv: nn.Conv2d) -> torch.Tensor:
        mean = xm.mean(dim=(0, 2)) / share  # (B, H, W) over all T x C planes
        mx = xm.amax(dim=(0, 2))
        return torch.sigmoid(conv(torch.stack([mean, mx], dim=1)))[None]  # (1, B, 1, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return X rescaled by its attention."""
        return x * self.factor(x)


class ASASNN(nn.Module):
    """3-layer conv ASA-SNN for 2x34x34 inputs (see module doc); sequence-level forward."""

    def __init__(self, channels: Sequence[int] = (16, 32, 32), hidden: int = 128, steps: int = 10,
                 attention: str = "asa1", ratio: float = 0.5, alpha: float = 0.3, v_threshold: float = 0.3,
                 dt_s: float = 0.03, input_shape: tuple = (2, 34, 34), classes: int = 10,
                 surrogate_slope: float = 10.0, batchnorm: bool = False, reduction: int = 4,
                 init_gain: float = 1.0) -> None:
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, found {attention!r}")
        c1, c2, c3 = (int(c) for c in channels)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.attention, self.steps, self.classes = attention, int(steps), int(classes)
        self.batchnorm = bool(batchnorm)
        self.cfg = dict(channels=(c1, c2, c3), hidden=int(hidden), alpha=float(alpha),
                        v_threshold=float(v_threshold), dt_s=float(dt_s), input_shape=self.input_shape,
                        classes=int(classes))
        h0, w0 = self.input_shape[1] - 2, self.input_shape[2] - 2
        self.shapes = [(c1, h0, w0), (c2, h0 // 2, w0 // 2), (c3, h0 // 4, w0 // 4)]
        sg = surrogate("fast_sigmoid", surrogate_slope)
        lif = lambda shape: LIF.from_beta(shape, beta=alpha, v_threshold=v_threshold, dt_s=dt_s, spike_fn=sg)  # noqa: E731
        self.convs = nn.ModuleList([nn.Conv2d(self.input_shape[0], c1, 3, bias=False),
                                    nn.Conv2d(c1, c2, 3, padding=1, bias=False),
                                    nn.Conv2d(c2, c3, 3, padding=1, bias=False)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(c) if batchnorm else nn.Identity() for c in (c1, c2, c3)])
        self.pools = [1, 2, 2]
        self.lifs = nn.ModuleList([lif(s) for s in self.shapes])
        self.asas = (nn.ModuleList([ASA(steps, attention, ratio, reduction=reduction) for _ in self.shapes])
                     if attention != "none" else None)
        n_flat = int(np.prod(self.shapes[-1]))
        self.fc1 = nn.Linear(n_flat, hidden, bias=False)
        self.lif_fc = lif((int(hidden),))
        self.fc2 = nn.Linear(int(hidden), classes, bias=False)
        self.lif_out = lif((int(classes),))
        if init_gain != 1.0:  # so that every layer fires at initialisation (see module doc)
            with torch.no_grad():
                for m in (*self.convs, self.fc1, self.fc2):
                    m.weight.mul_(float(init_gain))

    def synaptic_input(self, i: int, s: torch.Tensor) -> torch.Tensor:
        """Return X of conv block ``i`` for spikes/inputs ``s`` (N, C, H, W): conv -> BN -> avgpool."""
        x = self.bns[i](self.convs[i](s))
        return nn.functional.avg_pool2d(x, self.pools[i]) if self.pools[i] > 1 else x

    def forward_sequence(self, x: torch.Tensor, record: Optional[List[torch.Tensor]] = None
                         ) -> Tuple[torch.Tensor, Dict[str, Any]]:
        """Run (B, T, C, H, W) -> (output spikes (B, T, classes), aux). ``record`` collects attention factors."""
        reset_states(self)
        b, t = x.shape[:2]
        s = x.transpose(0, 1).reshape((t * b,) + tuple(x.shape[2:]))
        for i in range(3):
            xi = self.synaptic_input(i, s).reshape((t, b) + self.shapes[i])
            if self.asas is not None:
                f = self.asas[i].factor(xi)
                if record is not None:
                    record.append(f.detach())
                xi = xi * f
            s = torch.stack([self.lifs[i](xi[k]) for k in range(t)]).reshape((t * b,) + self.shapes[i])
        h = self.fc1(s.reshape(t * b, -1)).reshape(t, b, -1)
        outs = [self.lif_out(self.fc2(self.lif_fc(h[k]))) for k in range(t)]
        return torch.stack(outs, dim=1), {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sequence forward (B, T, ...) -> output spikes (B, T, classes); ASA needs the whole sequence."""
        return self.forward_sequence(x)[0]

    def to_graph(self, input_shape: Optional[Sequence[int]] = None) -> Any:
        """Export the vanilla variant; ASA itself has no spiking equivalent (raises UnsupportedError)."""
        if self.attention != "none":
            raise UnsupportedError(
                "ASA attention (pooling statistics, top-k, sigmoid, product of two dynamic signals, "
                "non-causal over time) has no NIR/spiking equivalent", node="asa",
                hint="fold it into per-channel gains with snnc.models.asa.make_static(model, calibration_x) "
                     "(zoo model 'asa_snn_static') and compile that")
        from snnc.compiler.frontends.torch_frontend import from_torch

        return from_torch(make_static(self, None), input_shape or self.input_shape)


def static_layers(channels: Sequence[int] = (16, 32, 32), hidden: int = 128, alpha: float = 0.3,
                  v_threshold: float = 0.3, dt_s: float = 0.03, input_shape: tuple = (2, 34, 34),
                  classes: int = 10) -> SequentialSNN:
    """Return the deployable Conv(+bias) -> [AvgPool] -> LIF ``SequentialSNN`` of ASA-SNN's shape."""
    c1, c2, c3 = (int(c) for c in channels)
    h0, w0 = int(input_shape[1]) - 2, int(input_shape[2]) - 2
    lif = lambda shape: LIF.from_beta(shape, beta=alpha, v_threshold=v_threshold, dt_s=dt_s)  # noqa: E731
    return SequentialSNN(
        tuple(input_shape),
        nn.Conv2d(int(input_shape[0]), c1, 3), lif((c1, h0, w0)),
        nn.Conv2d(c1, c2, 3, padding=1), nn.AvgPool2d(2), lif((c2, h0 // 2, w0 // 2)),
        nn.Conv2d(c2, c3, 3, padding=1), nn.AvgPool2d(2), lif((c3, h0 // 4, w0 // 4)),
        nn.Flatten(), nn.Linear(c3 * (h0 // 4) * (w0 // 4), hidden, bias=False), lif((int(hidden),)),
        nn.Linear(int(hidden), classes, bias=False), lif((int(classes),)))


#: Index of the conv layers inside :func:`static_layers`.
_STATIC_CONVS = (0, 2, 5)


def calibrate_gains(model: ASASNN, batches: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Return per-layer per-channel mean attention factors of ``model`` over calibration ``batches``."""
    sums: List[torch.Tensor] = []
    n = 0
    model.eval()
    with torch.no_grad():
        for x in batches:
            rec: List[torch.Tensor] = []
            model.forward_sequence(x, record=rec)
            means = [f.mean(dim=(0, 1, 3, 4)) * x.shape[0] for f in rec]
            sums = means if not sums else [a + m for a, m in zip(sums, means)]
            n += x.shape[0]
    return [s / max(n, 1) for s in sums]


def make_static(model: ASASNN, calibration: Optional[Sequence[torch.Tensor]]) -> SequentialSNN:
    """Fold BatchNorm and per-channel ASA gains (calibrated on ``calibration``) into a static net.

    With ``calibration=None`` (or a model without attention) the gains are 1.
    """
    if model.attention != "none" and calibration is not None:
        gains = calibrate_gains(model, calibration)
    else:
        gains = [torch.ones(s[0]) for s in model.shapes]
    static = static_layers(**model.cfg)
    with torch.no_grad():
        for i, j in enumerate(_STATIC_CONVS):
            bn = model.bns[i]
            if isinstance(bn, nn.BatchNorm2d):
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                shift = bn.bias - bn.running_mean * scale
            else:
                scale = torch.ones(model.shapes[i][0], dtype=model.convs[i].weight.dtype)
                shift = torch.zeros_like(scale)
            gain = gains[i].to(scale)
            conv = static[j]
            conv.weight.copy_(model.convs[i].weight * (scale * gain).reshape(-1, 1, 1, 1))
            conv.bias.copy_(shift * gain)
        static[9].weight.copy_(model.fc1.weight)
        static[11].weight.copy_(model.fc2.weight)
    static.eval()
    return static


_RECIPE = dict(data="nmnist", dt_us=30000, n_steps=10, epochs=8, batch_size=32, lr=3e-3, loss="ce_count",
               count_scale=0.5, shift_px=2)
#: Weight gain at initialisation of the ASA net (no BatchNorm): its attention maps start near 0.5 and,
#: with gain 1, silence the deeper layers so that ASA-1 does not learn (see module doc).
INIT_GAIN = 3.0


@register("asa_snn", **_RECIPE, kwargs={"init_gain": INIT_GAIN})
def asa_snn(**kwargs: Any) -> nn.Module:
    """ASA-SNN (ASA-1 attention) for N-MNIST: 10 x 30 ms frames; not compilable (see make_static)."""
    return ASASNN(**kwargs)


@register("asa_snn_vanilla", **_RECIPE, kwargs={"attention": "none"})
def asa_snn_vanilla(**kwargs: Any) -> nn.Module:
    """The same 3-layer SNN without attention (the paper's vanilla baseline); compilable."""
    kwargs.setdefault("attention", "none")
    return ASASNN(**kwargs)


@register("asa_snn_static", **_RECIPE, kwargs={})
def asa_snn_static(**kwargs: Any) -> nn.Module:
    """Deployable ASA-SNN: BN and calibrated per-channel ASA gains folded into conv weights."""
    for k in ("steps", "attention", "ratio", "reduction", "init_gain", "batchnorm", "surrogate_slope"):
        kwargs.pop(k, None)
    return static_layers(**kwargs)


@register("asa_snn_static_binary", **{**_RECIPE, "data": "nmnist-binary"}, kwargs={})
def asa_snn_static_binary(**kwargs: Any) -> nn.Module:
    """:func:`asa_snn_static` trained (as ``asa_snn --data nmnist-binary``) on binary bins: Loihi's input."""
    return asa_snn_static(**kwargs)
