"""Loihi 2's fixed-point arithmetic in torch: batched, differentiable, bit-exact with the reference simulator.

:class:`TorchLoihi` runs a :class:`~snnc.targets.loihi.network.LoihiNetwork` on torch tensors (CPU or
GPU) with the arithmetic :mod:`snnc.targets.loihi.simulator` defines (Lava's ``fixed_pt`` models):
Dense sums of Lava's clipped and truncated weights shifted by ``weight_exp`` and wrapped in int32,
Conv sums wrapped to 24 bits, one step of delay per synaptic hop, ``u`` decayed by truncation and
wrapped one-sidedly, ``v`` decayed by truncation, biased from ``bias_onset_step``, wrapped in int32
and saturated at ``+-(2**23 - 1)``, a spike when ``v > vth_mant << 6``, then ``v = 0``. Every state
is an integer held exactly in float64 (all intermediates stay below 2**53); synaptic sums of binary
spikes run in float32 where the layer's ``sum(|w|)`` bound keeps them exact (CPU), else float64.
``tests/test_finetune_equality.py`` checks spikes, ``u`` and ``v`` against the reference simulator
with ``assert_array_equal`` on random networks.

Two uses, one arithmetic:

* **training** (:mod:`snnc.models.finetune`): the forward is the chip's; gradients pass by
  straight-through estimators (truncation, wraps and saturation pass gradients unchanged) and
  surrogate spikes. The synaptic input of a layer may carry a float *shadow* (``act_hooks``:
  the float model's own synapse applied to the same spikes, in u units), added as
  ``act_int + (shadow - shadow.detach())``: its value is exactly zero, its gradient reaches the
  float model's weights. The LIF scan is a custom autograd function that keeps two tensors per
  step (not every intermediate) for backpropagation through time.
* **divergence analysis** (:mod:`snnc.runtime.diverge`): :class:`Relax` replaces chip effects one
  by one with float arithmetic (the layer's float twin from the lowering): unrounded weights,
  float decays, no truncation, no wraps, no saturation, float timing (forward hops instantaneous).
  With every flag off the engine is the chip.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from snnc.dynamics import surrogate_derivative
from snnc.errors import ShapeError, UnsupportedError
from snnc.targets.loihi.chip import INPUT_SHIFT, U_WRAP, UV_MAX, V_MAX, V_MIN
from snnc.targets.loihi.network import LoihiLayer, LoihiNetwork, LoihiSynapse

_TWO24, _TWO32, _TWO31 = float(U_WRAP), float(1 << 32), float(1 << 31)
_SHIFT = float(1 << INPUT_SHIFT)  # a << 6
_F32_EXACT = float(1 << 24)

#: A spike function: maps ``(v - threshold) / v_scale`` (float units) to spikes; forward must be ``x > 0``.
SpikeFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Relax:
    """Chip effects to replace by float arithmetic (all False: the chip, bit for bit).

    ``zero_weights``: float twin weights, but 0 where the integer weight is 0 (only the weights that
    round to zero); ``float_weights``: float twin weights everywhere (unrounded, unclipped, no low
    bits dropped); ``float_bias``: unrounded bias; ``float_decay``: the float decays ``a_i``, ``a_v``
    instead of the 12-bit ``du``, ``dv``; ``no_trunc``: decays multiply without truncation;
    ``no_wrap``: no int32 / 24-bit wraps of sums and states; ``no_saturation``: ``v`` not clipped;
    ``float_timing``: a forward hop (source before the layer) delivers in the same step, as in the
    float model, a recurrent hop one step later.
    """

    zero_weights: bool = False
    float_weights: bool = False
    float_bias: bool = False
    float_decay: bool = False
    no_trunc: bool = False
    no_wrap: bool = False
    no_saturation: bool = False
    float_timing: bool = False

    @property
    def exact(self) -> bool:
        """True when nothing is relaxed (the chip's arithmetic)."""
        return not any(dataclasses.astuple(self))

    @property
    def needs_twin(self) -> bool:
        """True when the float twin is needed (weights, bias or decays in float)."""
        return self.zero_weights or self.float_weights or self.float_bias or self.float_decay


CHIP = Relax()


# ----------------------------------------------------------------------------- integer helpers (float64)
def wrap32(x: torch.Tensor) -> torch.Tensor:
    """Wrap float-held integers into int32 two's complement (exact below 2**53)."""
    return x - _TWO32 * torch.floor((x + _TWO31) / _TWO32)


def wrap24(x: torch.Tensor) -> torch.Tensor:
    """Lava's ``signed_clamp(x, bits=24)`` of a conv sum (a two's-complement 24-bit wrap)."""
    return x - _TWO24 * torch.floor((x + float(UV_MAX)) / _TWO24)


def wrap_u(u: torch.Tensor) -> torch.Tensor:
    """Lava's one-sided wrap of ``u`` after the int32 addition: ``> 2**23`` loses, ``<= -2**23`` gains ``2**24``."""
    u = wrap32(u)
    return torch.where(u > UV_MAX, u - _TWO24, torch.where(u <= -UV_MAX, u + _TWO24, u))


def _ste(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``fn(x)`` forward, identity gradient (straight through); exact when ``fn(x) - x`` is exact."""
    if not x.requires_grad:
        return fn(x)
    return x + (fn(x) - x).detach()


# ----------------------------------------------------------------------------- prepared network
@dataclass
class _Syn:
    """One synapse of a layer, ready to run: weights (torch), geometry, how its sum becomes ``a << 6``."""

    source: int
    kind: str
    input_shape: Tuple[int, ...]
    weight: torch.Tensor  # dense (N, K) / conv (O, C/g, kh, kw); integer-valued (or float twin)
    weight_exp: int
    integer: bool  # integer weights: shift by weight_exp (floor) and wrap; float twin: scale by 2**e
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1
    exact_f32: bool = False  # every partial sum an integer below 2**24: float32 is exact
    bound: float = float("inf")  # largest sum(|w|) over outputs: |sum| of binary inputs never exceeds it

    def act_bound(self) -> float:
        """A bound on |a << 6| this synapse delivers for binary inputs (before any wrap)."""
        if self.kind == "dense":
            return (self.bound * 2.0 ** self.weight_exp + 1.0) * _SHIFT
        return self.bound * _SHIFT


@dataclass
class _Layer:
    """One layer with neurons, ready to run (integers or their float twin, per :class:`Relax`)."""

    index: int
    name: str
    output_shape: Tuple[int, ...]
    syns: List[_Syn]
    keep_u: float  # multiplier of u per step: (4096 - du) / 4096, or a_i (float twin)
    keep_v: float
    vth: float  # vth_mant << 6
    bias: Optional[torch.Tensor]  # per neuron (N,) in v units, or None
    onset: int
    readout: bool

    @property
    def n(self) -> int:
        """Number of neurons."""
        return int(np.prod(self.output_shape))


def _f32_exact(w: np.ndarray) -> bool:
    """True when ``sum(|w|)`` over every output is below 2**24 (binary-input sums exact in float32)."""
    if w.size == 0:
        return True
    return float(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()) < _F32_EXACT


def _twin_weights(twin: Mapping[str, Any], k: int, ly_w: np.ndarray) -> np.ndarray:
    ws = twin.get("weights")
    if not isinstance(ws, (list, tuple)) or len(ws) <= k:
        raise UnsupportedError("the float twin lacks this synapse's weights", hint="lower the graph again")
    w = np.asarray(ws[k], dtype=np.float64)
    if w.shape != ly_w.shape:
        raise ShapeError(f"float twin weights {w.shape} differ from the integer weights {ly_w.shape}")
    return w


class TorchLoihi:
    """A :class:`LoihiNetwork` prepared for torch: run it batched, exactly, with gradients if asked.

    ``twin``: the lowering's float twin per layer name (``LoweringResult.float_twin``), needed only
    for a :class:`Relax` that uses float weights, bias or decays. ``device``: a torch device (default
    CPU). The states are float64 tensors holding integers.
    """

    def __init__(self, net: LoihiNetwork, twin: Optional[Mapping[str, Mapping[str, Any]]] = None,
                 relax: Relax = CHIP, device: Any = None) -> None:
        self.net = net
        self.relax = relax
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if relax.needs_twin and twin is None:
            raise UnsupportedError("this relaxation needs the lowering's float twin (LoweringResult.float_twin)")
        self.layers: List[Optional[_Layer]] = []
        for i, ly in enumerate(net.layers):
            self.layers.append(self._prepare(i, ly, None if twin is None else twin.get(ly.name)) if ly.has_neurons
                               else None)
        #: Per layer: True when a synapse reads this layer itself or a later one (a loop).
        self.recurrent = net.has_recurrence()

    # ------------------------------------------------------------------ preparation
    def _prepare(self, i: int, ly: LoihiLayer, twin: Optional[Mapping[str, Any]]) -> _Layer:
        r = self.relax
        if r.needs_twin and twin is None:
            raise UnsupportedError(f"no float twin for layer '{ly.name}'")
        dev = self.device
        syns = []
        for k, syn in enumerate(ly.synapses()):
            view = ly.synapse_view(k)
            w_int, _ = view.effective_weights()
            integer = True
            w = w_int.astype(np.float64)
            if r.float_weights or r.zero_weights:
                wf = _twin_weights(twin, k, syn.weights)  # type: ignore[arg-type]
                if r.float_weights:
                    w = wf
                else:
                    w = np.where(w_int == 0, 0.0, wf)
                integer = False
            syns.append(_Syn(source=syn.source, kind=syn.kind, input_shape=tuple(syn.input_shape),
                             weight=torch.as_tensor(w, dtype=torch.float64, device=dev),
                             weight_exp=int(syn.weight_exp) if syn.kind == "dense" else 0, integer=integer,
                             stride=tuple(syn.stride), padding=tuple(syn.padding), dilation=tuple(syn.dilation),
                             groups=int(syn.groups), exact_f32=integer and _f32_exact(w_int),
                             bound=float(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0.0))
        if r.float_decay:
            keep_u, keep_v = float(twin["a_i"]), float(twin["a_v"])  # type: ignore[index]
        else:
            keep_u, keep_v = (4096 - int(ly.du)) / 4096.0, (4096 - int(ly.dv)) / 4096.0
        if r.float_bias:
            b = np.asarray(twin["bias"], dtype=np.float64).reshape(-1)  # type: ignore[index]
            if len(ly.output_shape) == 3 and b.size == ly.output_shape[0]:
                b = b.reshape(-1, 1, 1)
            b = np.broadcast_to(b if b.size > 1 else b.reshape(()), ly.output_shape).reshape(-1)
        else:
            b = ly.effective_bias().astype(np.float64).reshape(-1)
        bias = torch.as_tensor(b, dtype=torch.float64, device=dev) if np.any(b != 0) else None
        return _Layer(index=i, name=ly.name, output_shape=tuple(ly.output_shape), syns=syns, keep_u=keep_u,
                      keep_v=keep_v, vth=float(int(ly.vth_mant) << INPUT_SHIFT), bias=bias, onset=int(ly.bias_onset_step),
                      readout=bool(ly.readout))

    # ------------------------------------------------------------------ synapses
    def synaptic_sum(self, syn: _Syn, x: torch.Tensor) -> torch.Tensor:
        """Return ``a << 6`` (float64, (M, *out)) that synapse ``syn`` delivers for source spikes ``x`` (M, *in).

        Integer weights: Lava's arithmetic (Dense: shift by ``weight_exp`` with floor, int32 wraps;
        Conv: 24-bit wrap), computed in float32 when exact (CPU), else float64. Float twin weights:
        the real-valued sum times ``2**weight_exp * 64`` (no rounding, no wraps).
        """
        r = self.relax
        use32 = syn.exact_f32 and x.device.type == "cpu" and torch.get_float32_matmul_precision() == "highest"
        dt = torch.float32 if use32 else torch.float64
        w = syn.weight.to(dt)
        xs = x.to(dt)
        with torch.no_grad():
            if syn.kind == "dense":
                acc = F.linear(xs.reshape(xs.shape[0], -1), w).to(torch.float64)
                if not syn.integer:
                    return acc * (2.0 ** syn.weight_exp * _SHIFT)
                if x.device.type != "cpu":
                    acc = torch.round(acc)  # exact on CPU; rounding guards against a GPU kernel's TF32/FFT paths
                e = syn.weight_exp
                a = acc * 2.0 ** e if e >= 0 else torch.floor(acc * 2.0 ** e)
                if r.no_wrap or syn.act_bound() < _TWO31:  # no int32 wrap can happen
                    return a * _SHIFT
                return wrap32(wrap32(a) * _SHIFT)
            acc = F.conv2d(xs, w, None, stride=syn.stride, padding=syn.padding, dilation=syn.dilation,
                           groups=syn.groups).to(torch.float64)
            if syn.integer:
                if x.device.type != "cpu":
                    acc = torch.round(acc)
                if not r.no_wrap and syn.bound >= UV_MAX:  # below it no 24-bit wrap can happen
                    acc = wrap24(acc)
            return acc * _SHIFT

    def layer_input(self, ly: _Layer, spikes_of: Callable[[int], torch.Tensor], steps: int, batch: int,
                    act_hook: Optional[Callable[[int, torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
        """Return ``a << 6`` (B, T, N) for a layer whose sources are all known for every step.

        ``spikes_of(src)``: (B, T, *shape) spikes of the source (-1: input). Each hop delivers one
        step later (``float_timing``: forward hops in the same step). Several synapses: summed in
        int32 (wrapped). ``act_hook(k, shifted_source)`` may return a float shadow of synapse k's
        input in u units, added with value zero (gradient only).
        """
        total: Optional[torch.Tensor] = None
        for k, syn in enumerate(ly.syns):
            src = spikes_of(syn.source).reshape(batch, steps, *syn.input_shape)
            delay = 0 if (self.relax.float_timing and syn.source < ly.index) else 1
            if delay:
                src = torch.cat([torch.zeros_like(src[:, :1]), src[:, :-1]], dim=1)
            a = self.synaptic_sum(syn, src.reshape(batch * steps, *syn.input_shape)).reshape(batch, steps, ly.n)
            if act_hook is not None:
                shadow = act_hook(k, src)
                if shadow is not None:
                    a = a + (shadow.reshape(batch, steps, ly.n) - shadow.reshape(batch, steps, ly.n).detach())
            total = a if total is None else total + a
        assert total is not None
        if len(ly.syns) > 1 and not self.relax.no_wrap and sum(s.act_bound() for s in ly.syns) >= _TWO31:
            total = _ste(total, wrap32)
        return total

    # ------------------------------------------------------------------ neurons
    def lif_step(self, ly: _Layer, u: torch.Tensor, v: torch.Tensor, act: torch.Tensor, t: int
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance the layer's neurons one step (no gradient); return ``(spikes bool, u, v)``."""
        return _lif_step(ly, self.relax, u, v, act, t)

    def run(self, x: Any, record: bool = False, spike_fns: Optional[Mapping[int, SpikeFn]] = None,
            v_scales: Optional[Mapping[int, torch.Tensor]] = None,
            act_hooks: Optional[Mapping[int, Callable[[int, torch.Tensor], torch.Tensor]]] = None) -> "TorchRun":
        """Run on input spikes ``x`` (B, T, *input_shape), 0/1 (a bool or float tensor or array).

        Without ``spike_fns`` nothing is differentiable (evaluation). With them (layer index ->
        spike function, and ``v_scales``: v units per float v, per neuron) the spiking layers run
        through the differentiable scan: spikes carry the surrogate gradient of
        ``spike_fn((v - vth) / v_scale)``, readouts' ``v`` a gradient too; ``act_hooks`` add the
        float shadows of the synaptic inputs (see :meth:`layer_input`).
        """
        xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        xt = xt.to(self.device, torch.float64)
        if xt.dim() != 2 + len(self.net.input_shape) or tuple(xt.shape[2:]) != tuple(self.net.input_shape):
            raise ShapeError(f"input must be (batch, T, {', '.join(map(str, self.net.input_shape))}), "
                             f"found {tuple(xt.shape)}")
        b, t_steps = int(xt.shape[0]), int(xt.shape[1])
        train = spike_fns is not None
        n_layers = len(self.net.layers)
        spikes: List[Optional[torch.Tensor]] = [None] * n_layers
        us: List[Optional[torch.Tensor]] = [None] * n_layers
        vs: List[Optional[torch.Tensor]] = [None] * n_layers

        def spikes_of(src: int) -> torch.Tensor:
            if src < 0:
                return xt
            root = _resolve(self.net, src)
            s = xt if root < 0 else spikes[root]
            assert s is not None, f"layer {root} read before it ran"
            return s.reshape(b, t_steps, *self.net.layers[src].output_shape)

        if self.recurrent or any(ly is not None and any(s.source >= ly.index for s in ly.syns) for ly in self.layers):
            if train:
                raise UnsupportedError("training through recurrent Loihi networks is not supported",
                                       hint="fine-tuning takes feed-forward networks (chains and DAGs)")
            self._run_steps(xt, spikes, us, vs, record)
        else:
            for ly in self.layers:
                if ly is None:
                    continue
                hook = None if act_hooks is None else act_hooks.get(ly.index)
                act = self.layer_input(ly, spikes_of, t_steps, b, hook)
                if train and (ly.index in spike_fns or ly.readout):  # type: ignore[operator]
                    fn = spike_fns.get(ly.index)  # type: ignore[union-attr]
                    scale = None if v_scales is None else v_scales.get(ly.index)
                    s, u, v = LIFScan.apply(act, ly, self.relax, fn, scale, record or ly.readout)
                else:
                    with torch.no_grad():
                        s, u, v = _scan(ly, self.relax, act, record or ly.readout)
                spikes[ly.index] = s
                us[ly.index], vs[ly.index] = u, v
        outs = [spikes_of(i) if not ly.has_neurons else spikes[i] for i, ly in enumerate(self.net.layers)]
        return TorchRun(spikes=outs, u=us, v=vs)  # type: ignore[arg-type]

    def _run_steps(self, xt: torch.Tensor, spikes: List[Optional[torch.Tensor]], us: List[Optional[torch.Tensor]],
                   vs: List[Optional[torch.Tensor]], record: bool) -> None:
        """Run every layer step by step (recurrent networks; no gradient)."""
        b, t_steps = int(xt.shape[0]), int(xt.shape[1])
        live = [ly for ly in self.layers if ly is not None]
        out = {ly.index: torch.zeros((b, t_steps, ly.n), dtype=torch.float64, device=self.device) for ly in live}
        rec_u = {ly.index: torch.zeros_like(out[ly.index]) for ly in live if record or ly.readout}
        rec_v = {ly.index: torch.zeros_like(out[ly.index]) for ly in live if record or ly.readout}
        u = {ly.index: torch.zeros((b, ly.n), dtype=torch.float64, device=self.device) for ly in live}
        v = {ly.index: torch.zeros((b, ly.n), dtype=torch.float64, device=self.device) for ly in live}
        order = _forward_order(self.net)

        def src_at(src: int, t: int) -> torch.Tensor:
            if t < 0:
                shape = self.net.input_shape if src < 0 else self.net.layers[src].output_shape
                return torch.zeros((b, *shape), dtype=torch.float64, device=self.device)
            if src < 0:
                return xt[:, t]
            root = _resolve(self.net, src)
            s = xt[:, t] if root < 0 else out[root][:, t]
            return s.reshape(b, *self.net.layers[src].output_shape)

        with torch.no_grad():
            for t in range(t_steps):
                for i in order:
                    ly = self.layers[i]
                    assert ly is not None
                    total = None
                    for syn in ly.syns:
                        same = self.relax.float_timing and syn.source < ly.index
                        a = self.synaptic_sum(syn, src_at(syn.source, t if same else t - 1))
                        a = a.reshape(b, ly.n)
                        total = a if total is None else total + a
                    assert total is not None
                    if len(ly.syns) > 1 and not self.relax.no_wrap:
                        total = wrap32(total)
                    s, u[i], v_pre = _lif_step(ly, self.relax, u[i], v[i], total, t)
                    v[i] = torch.where(s, torch.zeros_like(v_pre), v_pre)
                    out[i][:, t] = s.to(torch.float64)
                    if i in rec_u:
                        rec_u[i][:, t] = u[i]
                        rec_v[i][:, t] = v[i]
        for ly in live:
            shape = (b, t_steps, *ly.output_shape)
            spikes[ly.index] = out[ly.index]
            us[ly.index] = rec_u[ly.index].reshape(shape) if ly.index in rec_u else None
            vs[ly.index] = rec_v[ly.index].reshape(shape) if ly.index in rec_v else None


@dataclass
class TorchRun:
    """Per layer (indexed like ``network.layers``): spikes (B, T, *shape) float 0/1, and ``u``, ``v`` or None."""

    spikes: List[torch.Tensor]
    u: List[Optional[torch.Tensor]] = field(default_factory=list)
    v: List[Optional[torch.Tensor]] = field(default_factory=list)

    def numpy(self, net: LoihiNetwork) -> Tuple[List[np.ndarray], List[Optional[np.ndarray]], List[Optional[np.ndarray]]]:
        """Return spikes (bool) and states (int32) as numpy arrays shaped (B, T, *output_shape)."""
        sp, uu, vv = [], [], []
        for i, ly in enumerate(net.layers):
            s = self.spikes[i].detach()
            b, t = int(s.shape[0]), int(s.shape[1])
            sp.append((s.reshape(b, t, *ly.output_shape) != 0).cpu().numpy())
            for src, dst in ((self.u, uu), (self.v, vv)):
                a = src[i] if i < len(src) else None
                dst.append(None if a is None else a.detach().reshape(b, t, *ly.output_shape).cpu().numpy()
                           .astype(np.int32))
        return sp, uu, vv


def _resolve(net: LoihiNetwork, i: int) -> int:
    """Return the layer with neurons whose spikes layer ``i`` outputs (through flatten layers; -1 = input)."""
    while i >= 0 and not net.layers[i].has_neurons:
        i = net.layers[i].source
    return i


def _forward_order(net: LoihiNetwork) -> List[int]:
    """Layers with neurons in an order where every same-step (forward) source comes first: the list order."""
    return [i for i, ly in enumerate(net.layers) if ly.has_neurons]


@dataclass(frozen=True)
class _Limits:
    """Which of Lava's wraps and its saturation can happen in a run (the others are identities, skipped)."""

    wrap_u: bool = True
    wrap_v: bool = True
    clip_v: bool = True


_ALL_LIMITS = _Limits()


def _limits(ly: _Layer, r: Relax, act: torch.Tensor) -> _Limits:
    """Bound ``|u|`` and ``|v|`` over a run from ``max |act|`` (``|trunc(x)| <= |x|``): the reference's own argument."""
    t_steps = int(act.shape[1])
    amax = float(act.detach().abs().max()) if act.numel() else 0.0

    def grow(keep: float) -> float:
        return float(t_steps) if keep >= 1.0 else min(float(t_steps), 1.0 / (1.0 - keep))

    u_b = (amax * grow(ly.keep_u) + 1.0) * (1.0 + 1e-9)
    b_max = float(ly.bias.abs().max()) if ly.bias is not None else 0.0
    v_b = ((u_b + b_max) * grow(ly.keep_v) + 1.0) * (1.0 + 1e-9)
    return _Limits(wrap_u=not r.no_wrap and u_b >= UV_MAX, wrap_v=not r.no_wrap and v_b >= _TWO31,
                   clip_v=not r.no_saturation and v_b > V_MAX)


def _lif_step(ly: _Layer, r: Relax, u: torch.Tensor, v: torch.Tensor, act: torch.Tensor, t: int,
              lim: _Limits = _ALL_LIMITS) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of Lava's fixed-point LIF (see the module doc), with ``r``'s relaxations.

    ``lim`` says which wraps and saturation can happen (:func:`_limits`); the others are skipped.
    Returns ``(spikes bool, u, v before the reset)``; the caller sets ``v = 0`` where it spiked.
    """
    u = _decay(u, ly.keep_u, r) + act
    if lim.wrap_u and not r.no_wrap:
        u = _ste(u, wrap_u)
    v = _decay(v, ly.keep_v, r) + u
    if ly.bias is not None and t >= ly.onset:
        v = v + ly.bias
    if lim.wrap_v and not r.no_wrap:
        v = _ste(v, wrap32)
    if lim.clip_v and not r.no_saturation:
        v = _ste(v, lambda z: torch.clamp(z, V_MIN, V_MAX))
    s = v > ly.vth
    return s, u, v


def _decay(x: torch.Tensor, keep: float, r: Relax) -> torch.Tensor:
    """``trunc(x * keep)`` (the 12-bit decay; exact in float64), or without truncation when relaxed."""
    if keep == 1.0:
        return x
    if keep == 0.0:
        return torch.zeros_like(x)
    y = x * keep
    if r.no_trunc:
        return y
    return _ste(y, torch.trunc)


def _scan(ly: _Layer, r: Relax, act: torch.Tensor, keep_states: bool
          ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Run the layer's LIF over time on ``act`` (B, T, N) without gradients; spikes (B, T, N) float."""
    b, t_steps, n = act.shape
    u = torch.zeros((b, n), dtype=torch.float64, device=act.device)
    v = torch.zeros_like(u)
    out = torch.zeros((b, t_steps, n), dtype=torch.float64, device=act.device)
    rec_u = torch.zeros_like(out) if keep_states else None
    rec_v = torch.zeros_like(out) if keep_states else None
    lim = _limits(ly, r, act)
    for t in range(t_steps):
        s, u, v = _lif_step(ly, r, u, v, act[:, t], t, lim)
        v = v.masked_fill(s, 0.0)
        out[:, t] = s
        if keep_states:
            rec_u[:, t] = u  # type: ignore[index]
            rec_v[:, t] = v  # type: ignore[index]
    return out, rec_u, rec_v


class LIFScan(torch.autograd.Function):
    """The chip's LIF over time (exact forward) with backpropagation through time by straight-through estimators.

    Forward: :func:`_scan`. Backward, per step from the last: ``v_pre = keep_v v + u + bias``,
    ``s = H(v_pre - vth)`` with surrogate ``spike_fn'((v_pre - vth) / v_scale) / v_scale``,
    ``v = v_pre (1 - s)`` (no gradient through the reset), ``u = keep_u u + act``; truncation, wraps
    and saturation pass gradients unchanged. Readouts: the gradient of the recorded ``v``.
    """

    @staticmethod
    def forward(ctx: Any, act: torch.Tensor, ly: _Layer, r: Relax, spike_fn: Optional[SpikeFn],  # type: ignore[override]
                v_scale: Optional[torch.Tensor], keep_states: bool) -> Tuple[Any, Any, Any]:
        b, t_steps, n = act.shape
        u = torch.zeros((b, n), dtype=torch.float64, device=act.device)
        v = torch.zeros_like(u)
        out = torch.zeros((b, t_steps, n), dtype=torch.float64, device=act.device)
        pre = torch.zeros_like(out)  # v before the reset: the surrogate's argument
        rec_u = torch.zeros_like(out) if keep_states else None
        rec_v = torch.zeros_like(out) if keep_states else None
        lim = _limits(ly, r, act)
        for t in range(t_steps):
            s, u, v = _lif_step(ly, r, u, v, act[:, t], t, lim)
            pre[:, t] = v
            v = v.masked_fill(s, 0.0)
            out[:, t] = s
            if keep_states:
                rec_u[:, t] = u  # type: ignore[index]
                rec_v[:, t] = v  # type: ignore[index]
        ctx.save_for_backward(pre, out)
        ctx.ly, ctx.spike_fn, ctx.v_scale = ly, spike_fn, v_scale
        ctx.mark_non_differentiable(*([rec_u] if rec_u is not None else []))
        return out, rec_u, rec_v

    @staticmethod
    def backward(ctx: Any, g_s: Optional[torch.Tensor], g_u: Optional[torch.Tensor],  # type: ignore[override]
                 g_v: Optional[torch.Tensor]) -> Tuple[Any, ...]:
        pre, out = ctx.saved_tensors
        ly: _Layer = ctx.ly
        b, t_steps, n = pre.shape
        if ctx.spike_fn is not None and g_s is not None:
            scale = ctx.v_scale if ctx.v_scale is not None else torch.ones(n, dtype=pre.dtype, device=pre.device)
            scale = scale.to(pre).reshape(1, 1, n)
            sg = surrogate_derivative(ctx.spike_fn, (pre - ly.vth) / scale) / scale
            g_pre_s = g_s * sg
        else:
            g_pre_s = torch.zeros_like(pre)
        keep = 1.0 - out  # no reset where the neuron fired
        g_act = torch.zeros_like(pre)
        gv_next = torch.zeros((b, n), dtype=pre.dtype, device=pre.device)  # dL/dv[t] from step t+1
        gu_next = torch.zeros_like(gv_next)  # dL/du[t] from step t+1
        for t in range(t_steps - 1, -1, -1):
            gv_t = gv_next + (g_v[:, t] if g_v is not None else 0.0)
            g_pre = gv_t * keep[:, t] + g_pre_s[:, t]
            g_u_t = g_pre + gu_next
            g_act[:, t] = g_u_t
            gv_next = g_pre * ly.keep_v
            gu_next = g_u_t * ly.keep_u
        return g_act, None, None, None, None, None


def simulate_torch(net: LoihiNetwork, spikes: Any, record_states: bool = False, device: Any = None
                   ) -> Tuple[List[np.ndarray], List[Optional[np.ndarray]], List[Optional[np.ndarray]]]:
    """Run ``net`` on binary input spikes (B, T, *input_shape) with the torch engine; numpy spikes and states."""
    eng = TorchLoihi(net, device=device)
    res = eng.run(spikes, record=record_states)
    return res.numpy(net)
