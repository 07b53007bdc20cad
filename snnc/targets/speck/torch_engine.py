"""Speck's integer IAF arithmetic in torch: batched, differentiable, bit-exact with the reference simulator.

:class:`TorchSpeck` runs a :class:`~snnc.targets.speck.network.SpeckNetwork` as
:func:`snnc.targets.speck.simulator.simulate` defines it: per step and layer (topological order,
spikes reach the next core in the same step) ``v += conv2d(sum-pooled source spikes, W) + b``;
``n = v >= threshold_high`` (``single``) or ``floor(max(v, 0) / threshold_high)`` (``multi``);
``v = 0`` where ``n > 0`` (``return_to_zero``) or ``v -= n * threshold_high``; ``v = max(v,
threshold_low)``. States are integers held exactly in float64; ``saturate_state`` clips them to the
16-bit register as the simulator's option does. Tested equal (spikes and states,
``assert_array_equal``) to the reference simulator on random networks
(``tests/test_finetune_equality.py``).

As :mod:`snnc.targets.loihi.torch_engine`: a differentiable scan (surrogate spikes, no gradient
through the reset, straight-through lower bound) for fine-tuning, float shadows of the drive
(``act_hooks``) that carry the float model's gradient with value zero, and :class:`SpeckRelax` to
replace chip effects by the layer's float twin for the divergence report.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from snnc.dynamics import surrogate_derivative
from snnc.errors import ShapeError, UnsupportedError
from snnc.fixedpoint import signed_range
from snnc.targets.speck import chip
from snnc.targets.speck.network import SpeckNetwork

SpikeFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SpeckRelax:
    """Chip effects to replace by float arithmetic (all False: the chip's integers, bit for bit).

    ``zero_weights``: float twin weights, 0 where the integer weight is 0; ``float_weights``: float
    twin weights everywhere; ``float_bias``: unrounded biases; ``float_threshold``: NIR's strict
    ``v > threshold * scale`` instead of the integer ``v >= threshold_high``; ``single_spike``: one
    spike per step even where the chip runs multi-spike; ``no_low_bound``: no lower bound unless the
    model has one (the chip's default is the 16-bit minimum).
    """

    zero_weights: bool = False
    float_weights: bool = False
    float_bias: bool = False
    float_threshold: bool = False
    single_spike: bool = False
    no_low_bound: bool = False

    @property
    def needs_twin(self) -> bool:
        """True when the float twin is needed."""
        return self.zero_weights or self.float_weights or self.float_bias or self.float_threshold or self.no_low_bound


SPECK_CHIP = SpeckRelax()


@dataclass
class _Core:
    """One layer, ready to run."""

    index: int
    name: str
    weight: torch.Tensor
    bias: torch.Tensor
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    thr: float
    strict: bool  # spike when v > thr (float twin) instead of v >= thr
    low: Optional[float]
    rtz: bool
    neuron_shape: Tuple[int, int, int]
    integer: bool

    @property
    def n(self) -> int:
        """Neurons of the layer."""
        return int(np.prod(self.neuron_shape))


def _sum_pool(x: torch.Tensor, pooling: Tuple[int, int]) -> torch.Tensor:
    """Sum pooling with stride = kernel on (M, C, H, W) (floor of the map size, as the simulator)."""
    if tuple(pooling) == (1, 1):
        return x
    return F.avg_pool2d(x, tuple(pooling), stride=tuple(pooling), divisor_override=1)


def _spread(w: np.ndarray, channels: int, stride: int) -> np.ndarray:
    """Spread output channels so that channel i sits at ``stride * i`` (the readout layout)."""
    out = np.zeros((channels,) + w.shape[1:], dtype=np.float64)
    out[::stride] = w
    return out


class TorchSpeck:
    """A :class:`SpeckNetwork` prepared for torch (see the module doc).

    ``spike_mode``: the artifact's (``run.json``); ``twin``: the lowering's float twin per layer
    name (``LoweringResult.float_twin``), needed for a relaxation.
    """

    def __init__(self, net: SpeckNetwork, spike_mode: str = "multi", twin: Optional[Mapping[str, Mapping[str, Any]]] = None,
                 relax: SpeckRelax = SPECK_CHIP, device: Any = None, saturate_state: bool = False) -> None:
        if spike_mode not in chip.SPIKE_MODES:
            raise UnsupportedError(f"spike_mode {spike_mode!r} unknown; use one of {chip.SPIKE_MODES}")
        if relax.needs_twin and twin is None:
            raise UnsupportedError("this relaxation needs the lowering's float twin (LoweringResult.float_twin)")
        self.net, self.relax = net, relax
        self.spike_mode = "single" if relax.single_spike else spike_mode
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.saturate_state = bool(saturate_state)
        self.order = net.topological_order()
        self.entry = set(net.entry_layers())
        self.cores: List[_Core] = [self._prepare(i, None if twin is None else twin.get(ly.name))
                                   for i, ly in enumerate(net.layers)]

    def _prepare(self, i: int, twin: Optional[Mapping[str, Any]]) -> _Core:
        r = self.relax
        ly = self.net.layers[i]
        if r.needs_twin and twin is None:
            raise UnsupportedError(f"no float twin for layer '{ly.name}'")
        w = ly.weights.astype(np.float64)
        b = ly.biases.astype(np.float64)
        ro = self.net.readout
        spread = ro is not None and ro.layer == i

        def twin_arr(key: str) -> np.ndarray:
            a = np.asarray(twin[key], dtype=np.float64)  # type: ignore[index]
            if spread and a.shape[0] != w.shape[0]:
                a = _spread(a, w.shape[0], ro.channel_stride)  # type: ignore[union-attr]
            return a

        integer = True
        if r.float_weights or r.zero_weights:
            wf = twin_arr("weights")
            if wf.shape != w.shape:
                raise ShapeError(f"float twin weights {wf.shape} differ from the integer weights {w.shape}",
                                 node=ly.name)
            w = wf if r.float_weights else np.where(ly.weights == 0, 0.0, wf)
            integer = False
        if r.float_bias:
            b = twin_arr("biases").reshape(-1)
        thr, strict = float(ly.threshold_high), False
        if r.float_threshold:
            thr, strict = float(twin["threshold"]), True  # type: ignore[index]
        low: Optional[float] = float(ly.threshold_low)
        if r.no_low_bound:
            tl = twin.get("v_low")  # type: ignore[union-attr]
            low = None if tl is None else float(tl)
        dev = self.device
        return _Core(index=i, name=ly.name, weight=torch.as_tensor(w, dtype=torch.float64, device=dev),
                     bias=torch.as_tensor(b, dtype=torch.float64, device=dev), stride=tuple(ly.stride),
                     padding=tuple(ly.padding), thr=thr, strict=strict, low=low, rtz=bool(ly.return_to_zero),
                     neuron_shape=tuple(ly.neuron_shape), integer=integer)

    def prepare_input(self, x: Any) -> torch.Tensor:
        """Return input event counts (B, T, C, H, W) as float64 on the device (the DVS layer applied)."""
        xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(self.device, torch.float64)
        if xt.dim() == 4:
            xt = xt[None]
        if xt.dim() != 5 or tuple(xt.shape[2:]) != tuple(self.net.input_shape):
            raise ShapeError(f"input must be (batch, time, {', '.join(map(str, self.net.input_shape))}), "
                             f"got {tuple(xt.shape)}")
        b, t = int(xt.shape[0]), int(xt.shape[1])
        if self.net.dvs is not None:
            flat = xt.reshape(b * t, *xt.shape[2:])
            if self.net.dvs.merge_polarities:
                flat = flat.sum(dim=1, keepdim=True)
            flat = _sum_pool(flat, self.net.dvs.pooling)
            xt = flat.reshape(b, t, *flat.shape[1:])
        return xt

    def drive(self, core: _Core, x: torch.Tensor) -> torch.Tensor:
        """Return ``conv2d(x, W) + b`` (float64, exact for integer weights) for pooled input counts x (M, C, H, W)."""
        with torch.no_grad():
            y = F.conv2d(x, core.weight, None, stride=core.stride, padding=core.padding)
            if core.integer:
                y = torch.round(y)  # integer sums below 2**53: guards against an inexact kernel
            return y + core.bias.reshape(1, -1, 1, 1)

    def run(self, x: Any, record: bool = False, spike_fns: Optional[Mapping[int, SpikeFn]] = None,
            v_scales: Optional[Mapping[int, torch.Tensor]] = None,
            act_hooks: Optional[Mapping[int, Callable[[List[Tuple[Optional[int], torch.Tensor]]], torch.Tensor]]] = None
            ) -> "SpeckRun":
        """Run on event counts (B, T, C, H, W); spikes (and with ``record`` states) per layer name.

        ``spike_fns`` / ``v_scales`` / ``act_hooks`` by layer index as in
        :meth:`snnc.targets.loihi.torch_engine.TorchLoihi.run`; an act hook gets the layer's raw
        sources ``[(source index or None for the input, spikes (B, T, ...))]`` (before pooling) and
        returns the float shadow of its drive (B, T, *neuron_shape) in state units.
        """
        xt = self.prepare_input(x)
        b, t_steps = int(xt.shape[0]), int(xt.shape[1])
        outs: Dict[int, torch.Tensor] = {}
        states: Dict[str, torch.Tensor] = {}
        for i in self.order:
            core = self.cores[i]
            parts = []
            raw: List[Tuple[Optional[int], torch.Tensor]] = []
            for src, d in self.net.sources(i):
                s = outs[src]
                raw.append((src, s))
                flat = s.reshape(b * t_steps, *s.shape[2:])
                parts.append(_sum_pool(flat, d.pooling))
            if i in self.entry:
                raw.append((None, xt))
                parts.append(xt.reshape(b * t_steps, *xt.shape[2:]))
            if not parts:
                raise ShapeError("layer receives no input", node=core.name)
            xl = parts[0]
            for p in parts[1:]:
                xl = xl + p
            drive = self.drive(core, xl).reshape(b, t_steps, *core.neuron_shape)
            hook = None if act_hooks is None else act_hooks.get(i)
            if hook is not None:
                shadow = hook(raw)
                if shadow is not None:
                    drive = drive + (shadow - shadow.detach())
            if spike_fns is not None and i in spike_fns:
                scale = None if v_scales is None else v_scales.get(i)
                s, v = IAFScan.apply(drive, core, self, spike_fns[i], scale, record)
            else:
                with torch.no_grad():
                    s, v, _ = _iaf_scan(core, self, drive, record)
            outs[i] = s
            if v is not None:
                states[core.name] = v
        return SpeckRun(spikes={self.net.layers[i].name: outs[i] for i in range(len(self.net.layers))},
                        states=states if record else None)

    def iaf_step(self, core: _Core, v: torch.Tensor, drive: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step: return ``(n spikes (float counts), v after reset and bound, v before the reset)``."""
        return _iaf_step(core, self, v, drive)


def _iaf_step(core: _Core, eng: TorchSpeck, v: torch.Tensor, drive: torch.Tensor
              ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lo16, hi16 = signed_range(chip.STATE_BITS)
    v = v + drive
    if eng.saturate_state:
        v = torch.clamp(v, lo16, hi16)
    pre = v
    if eng.spike_mode == "multi" and not core.strict:
        n = torch.floor(torch.clamp(v, min=0.0) / core.thr)
    else:
        n = ((v > core.thr) if core.strict else (v >= core.thr)).to(v.dtype)
    if core.rtz:
        v = torch.where(n > 0, torch.zeros_like(v), v)
    else:
        v = v - n * core.thr
    if core.low is not None:
        v = torch.clamp(v, min=core.low)
    return n, v, pre


def _iaf_scan(core: _Core, eng: TorchSpeck, drive: torch.Tensor, record: bool
              ) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
    """Run one layer over time without gradients: spikes (B, T, ...), states or None, pre-reset states."""
    b, t_steps = drive.shape[:2]
    v = torch.zeros((b, *core.neuron_shape), dtype=torch.float64, device=drive.device)
    out = torch.zeros_like(drive)
    pre = torch.zeros_like(drive)
    rec = torch.zeros_like(drive) if record else None
    for t in range(t_steps):
        n, v, p = _iaf_step(core, eng, v, drive[:, t])
        out[:, t] = n
        pre[:, t] = p
        if rec is not None:
            rec[:, t] = v
    return out, rec, pre


class IAFScan(torch.autograd.Function):
    """Speck's IAF over time: exact forward, surrogate spikes and straight-through estimators backward.

    ``v_pre = v + drive``; spikes carry ``spike_fn'((v_pre - thr + 0.5) / v_scale) / v_scale`` (the
    forward ``v_pre >= thr`` of integers); no gradient through the reset; the lower bound and the
    multi-spike count pass gradients straight through.
    """

    @staticmethod
    def forward(ctx: Any, drive: torch.Tensor, core: _Core, eng: TorchSpeck, spike_fn: SpikeFn,  # type: ignore[override]
                v_scale: Optional[torch.Tensor], record: bool) -> Tuple[Any, Any]:
        out, rec, pre = _iaf_scan(core, eng, drive, record)
        ctx.save_for_backward(pre, out)
        ctx.core, ctx.spike_fn, ctx.v_scale = core, spike_fn, v_scale
        return out, rec

    @staticmethod
    def backward(ctx: Any, g_s: Optional[torch.Tensor], g_v: Optional[torch.Tensor]) -> Tuple[Any, ...]:  # type: ignore[override]
        pre, out = ctx.saved_tensors
        core: _Core = ctx.core
        t_steps = pre.shape[1]
        c = core.neuron_shape[0]
        scale = ctx.v_scale if ctx.v_scale is not None else torch.ones(c, dtype=pre.dtype, device=pre.device)
        scale = scale.to(pre).reshape(1, 1, -1, 1, 1) if scale.numel() == c else scale.to(pre)
        offset = 0.0 if core.strict else 0.5
        sg = surrogate_derivative(ctx.spike_fn, (pre - core.thr + offset) / scale) / scale
        g_pre_s = (g_s if g_s is not None else torch.zeros_like(pre)) * sg
        keep = (out == 0).to(pre.dtype) if core.rtz else torch.ones_like(pre)
        g_drive = torch.zeros_like(pre)
        gv_next = torch.zeros_like(pre[:, 0])
        for t in range(t_steps - 1, -1, -1):
            gv_t = gv_next + (g_v[:, t] if g_v is not None else 0.0)
            g_pre = gv_t * keep[:, t] + g_pre_s[:, t]
            g_drive[:, t] = g_pre
            gv_next = g_pre
        return g_drive, None, None, None, None, None


@dataclass
class SpeckRun:
    """Spikes (B, T, f, H, W) per layer name (float counts), states (after reset and bound) when recorded."""

    spikes: Dict[str, torch.Tensor]
    states: Optional[Dict[str, torch.Tensor]] = None


def simulate_torch(net: SpeckNetwork, inputs: Any, spike_mode: str = "multi", record_states: bool = False,
                   saturate_state: bool = False, device: Any = None
                   ) -> Tuple[Dict[str, np.ndarray], Optional[Dict[str, np.ndarray]]]:
    """Run ``net`` with the torch engine: integer spikes and states per layer name as numpy (int64)."""
    res = TorchSpeck(net, spike_mode, device=device, saturate_state=saturate_state).run(inputs, record=record_states)
    sp = {k: v.detach().cpu().numpy().astype(np.int64) for k, v in res.spikes.items()}
    st = None if res.states is None else {k: v.detach().cpu().numpy().astype(np.int64) for k, v in res.states.items()}
    return sp, st
