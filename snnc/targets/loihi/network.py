"""The integer specification of a network for Loihi 2 (Lava's fixed-point CUBA LIF model).

A :class:`LoihiNetwork` is an input shape plus an ordered list of :class:`LoihiLayer`s. Every layer
but ``flatten`` is a synapse (``dense``, ``conv`` or ``pool`` = a fixed-weight grouped conv) feeding
one population of CUBA LIF neurons, with exactly the integers Lava's ``Dense``/``Conv`` and ``LIF``
processes take. Shapes follow PyTorch: dense ``(N,)``, conv ``(C, H, W)``; conv weights are
``(out, in/groups, kh, kw)`` and act as a cross-correlation (Lava's own ``Conv`` wants
``(out, W, H, in)`` and flipped kernels; :mod:`lava_worker` and :mod:`netx` convert).

Decay convention (checked against lava/proc/lif/models.py, ``AbstractPyLifModelFixed``):
``du`` and ``dv`` here are the *effective* 12-bit decays, 0 = no decay, 4096 = full decay, i.e.
``u <- trunc(u * (4096 - du) / 4096) + (a_in << 6)`` and the same for ``v`` with ``dv``. Lava's
``LIF`` adds a hidden ``ds_offset = 1`` to its ``du`` (but not to ``dv``), so Lava's ``du`` argument
is ``du - 1`` (this is also what lava-dl netx does: ``du = iDecay - 1``, ``dv = vDecay``).

General graphs: a layer may sum several synaptic inputs (``extra_inputs``, a list of
:class:`LoihiSynapse`, each with its own source and weights, next to the layer's own primary
synapse), and a source may be any layer, also a later one or the layer itself (recurrence).
Timing (Lava's and so the chip's): *every* synaptic hop delivers one step later, so layer ``i`` at
step ``t`` receives ``sum_k W_k s_{source_k}[t - 1]`` whatever the sources' positions in the list;
a loop of ``k`` hops takes ``k`` steps and a layer fed by itself sees its own spikes of the previous
step. ``flatten`` layers are reshapes without delay and must read an earlier layer.
Non-spiking readouts (``readout=True``): ordinary CUBA LIF neurons whose threshold mantissa is the
maximum (``VTH_MANT_MAX``); the quantiser picks the scale so that ``v`` stays below it in the worst
case, and the layer's output is its voltage ``v`` (read with a probe), not its spikes.

Serialisation (:meth:`LoihiNetwork.to_dict`) gives a flat dict of numpy arrays (no pickled objects)
in a fixed key order, suitable for ``np.savez`` and for the artifact.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from snnc.errors import ArtifactError, ShapeError, UnsupportedError, ValueRangeError
from snnc.targets.loihi.chip import (BIAS_EXP_RANGE, BIAS_MANT_RANGE_LAVA, DECAY_UNITY, INT32_RANGE,  # noqa: F401
                                     VTH_MANT_MAX, WEIGHT_BITS, WEIGHT_EXP_RANGE_LAVA, WEIGHT_RANGE)

Shape = Tuple[int, ...]

#: Synapse kinds a layer may have.
LAYER_KINDS: Tuple[str, ...] = ("dense", "conv", "pool", "flatten")
#: Lava's ``SignMode`` values (lava/utils/weightutils.py) by name.
SIGN_MODES: Dict[str, int] = {"mixed": 1, "excitatory": 2, "inhibitory": 3}
#: Format tag written by :meth:`LoihiNetwork.to_dict`.
FORMAT = "snnc.loihi.network"
#: Version of the dict layout.
FORMAT_VERSION = 2
#: Versions :meth:`LoihiNetwork.from_dict` reads (1: chains and DAGs of single-input layers).
READ_VERSIONS = (1, 2)

def _pair(x: Any, name: str) -> Tuple[int, int]:
    a = np.asarray(x).reshape(-1)
    if a.size == 1:
        return int(a[0]), int(a[0])
    if a.size != 2:
        raise ShapeError(f"{name} must be an int or a pair, found {x!r}")
    return int(a[0]), int(a[1])


def _int_array(x: Any, name: str, layer: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind == "b":
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise ValueRangeError(f"{name} must hold integers, found dtype {a.dtype}", node=layer,
                                  hint="quantize first (snnc.targets.loihi.quantize)")
    return a.astype(np.int64)


def conv_output_hw(in_hw: Tuple[int, int], kernel_hw: Tuple[int, int], stride: Tuple[int, int],
                   padding: Tuple[int, int], dilation: Tuple[int, int]) -> Tuple[int, int]:
    """Return the (H', W') of a 2-D convolution (PyTorch / Lava formula, floor division)."""
    out = []
    for d in range(2):
        n = (in_hw[d] + 2 * padding[d] - dilation[d] * (kernel_hw[d] - 1) - 1) // stride[d] + 1
        out.append(int(n))
    return out[0], out[1]


def effective_dense_weights(weights: np.ndarray, sign_mode: str, num_weight_bits: int
                            ) -> Tuple[np.ndarray, Dict[str, int]]:
    """Return Lava Dense's effective weights (clip to 8 bits by sign mode, then drop low bits) and counts.

    Mirrors ``clip_weights(w, sign_mode, num_bits=8)`` then ``truncate_weights(w, sign_mode,
    num_weight_bits)`` in lava/utils/weightutils.py: mixed clips to [-256, 255], excitatory to
    [0, 255], inhibitory to [-255, 0]; then ``t = 8 - num_weight_bits + is_mixed`` low bits are
    dropped (floor shift; for inhibitory on the magnitude). The counts say how many weights changed.
    """
    w = np.asarray(weights, dtype=np.int64)
    mixed = sign_mode == "mixed"
    inhib = sign_mode == "inhibitory"
    x = -w if inhib else w
    lo, hi = WEIGHT_RANGE["mixed" if mixed else "excitatory"]  # inhibitory: the magnitude, clipped as excitatory
    clipped = np.clip(x, lo, hi)
    n_clipped = int(np.count_nonzero(clipped != x))
    t = WEIGHT_BITS - int(num_weight_bits) + int(mixed)
    trunc = (clipped >> t) << t
    n_trunc = int(np.count_nonzero(trunc != clipped))
    n_zeroed = int(np.count_nonzero((trunc == 0) & (clipped != 0)))
    eff = -trunc if inhib else trunc
    return eff, {"weights_clipped": n_clipped, "weights_truncated": n_trunc, "weights_truncated_to_zero": n_zeroed}


@dataclass(eq=False)
class LoihiSynapse:
    """One extra synaptic input of a layer: its source (layer index, -1 = network input) and integers.

    Fields mean what they mean on :class:`LoihiLayer` (``kind`` is ``dense``, ``conv`` or ``pool``);
    the output shape is the owning layer's.
    """

    source: int
    kind: str
    input_shape: Shape
    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: str = "mixed"
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1

    @classmethod
    def of_layer(cls, layer: "LoihiLayer") -> "LoihiSynapse":
        """Return the primary synapse of ``layer`` (its own source, kind and weights)."""
        assert layer.weights is not None
        return cls(source=layer.source, kind=layer.kind, input_shape=tuple(layer.input_shape),
                   weights=layer.weights, weight_exp=layer.weight_exp, num_weight_bits=layer.num_weight_bits,
                   sign_mode=layer.sign_mode, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                   groups=layer.groups)


@dataclass(eq=False)
class LoihiLayer:
    """One layer: a synapse (dense / conv / pool) into CUBA LIF neurons, or a flatten (reshape only).

    ``weights`` are integer mantissas (np.int64): dense ``(out, in)``, conv/pool
    ``(out, in/groups, kh, kw)``. Dense input to the neurons is ``sum(w_eff) << weight_exp``
    (arithmetic right shift for a negative exponent) where ``w_eff`` is Lava's clipped and truncated
    weight (see :func:`effective_dense_weights`). Lava's fixed-point ``Conv`` ignores ``weight_exp``
    and ``num_weight_bits`` (lava/proc/conv/models.py), so conv/pool layers must use 0 and 8.
    ``du``/``dv``: effective decays out of 4096 (see module doc). ``vth_mant``: threshold mantissa,
    a neuron spikes when ``v > vth_mant << 6``. ``bias_mant``: scalar or per-neuron (output shape),
    added to ``v`` every step as ``bias_mant << bias_exp``. ``source``: index of the layer whose
    spikes feed this one (-1 for the network input); a chain has ``source = index - 1``.
    ``extra_inputs``: further synapses summed into the same neurons (see module doc).
    ``readout``: a non-spiking readout whose output is ``v`` (``vth_mant`` must be ``VTH_MANT_MAX``).
    ``bias_onset_step``: first step (0-based) at which the bias is added; before it the bias is 0.
    The lowering sets it to the layer's lag so that a layer ``k`` hops from the input starts
    integrating its bias when its float-model copy does (step 0 of model time = Loihi step ``k``).
    Lava and the chip take it as a host-side schedule: the bias register is written after that step.
    """

    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    source: int
    weights: Optional[np.ndarray] = None
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: str = "mixed"
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1
    du: int = 0
    dv: int = 0
    vth_mant: int = 1
    bias_mant: np.ndarray = field(default_factory=lambda: np.zeros((), dtype=np.int64))
    bias_exp: int = 0
    extra_inputs: List[LoihiSynapse] = field(default_factory=list)
    readout: bool = False
    bias_onset_step: int = 0

    # ------------------------------------------------------------------ constructors
    @classmethod
    def dense(cls, name: str, weights: Any, *, source: int, weight_exp: int = 0, num_weight_bits: int = 8,
              sign_mode: Optional[str] = None, du: int = 0, dv: int = 0, vth_mant: int = 1,
              bias_mant: Any = 0, bias_exp: int = 0) -> "LoihiLayer":
        """Return a dense layer; ``sign_mode`` defaults to Lava's ``determine_sign_mode(weights)``."""
        w = _int_array(weights, "weights", name)
        if w.ndim != 2:
            raise ShapeError(f"dense weights must be 2-D (out, in), found shape {w.shape}", node=name)
        return cls(name=name, kind="dense", input_shape=(int(w.shape[1]),), output_shape=(int(w.shape[0]),),
                   source=source, weights=w, weight_exp=int(weight_exp), num_weight_bits=int(num_weight_bits),
                   sign_mode=sign_mode or determine_sign_mode(w), du=int(du), dv=int(dv), vth_mant=int(vth_mant),
                   bias_mant=np.asarray(bias_mant), bias_exp=int(bias_exp))

    @classmethod
    def conv(cls, name: str, weights: Any, input_shape: Sequence[int], *, source: int, stride: Any = 1,
             padding: Any = 0, dilation: Any = 1, groups: int = 1, du: int = 0, dv: int = 0,
             vth_mant: int = 1, bias_mant: Any = 0, bias_exp: int = 0, kind: str = "conv") -> "LoihiLayer":
        """Return a conv layer (PyTorch layout and cross-correlation semantics) for input (C, H, W)."""
        w = _int_array(weights, "weights", name)
        if w.ndim != 4:
            raise ShapeError(f"conv weights must be 4-D (out, in/groups, kh, kw), found {w.shape}", node=name)
        ins = tuple(int(s) for s in input_shape)
        if len(ins) != 3:
            raise ShapeError(f"conv input must be (C, H, W), found {ins}", node=name)
        st, pd, dl = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
        oh, ow = conv_output_hw(ins[1:], (int(w.shape[2]), int(w.shape[3])), st, pd, dl)
        return cls(name=name, kind=kind, input_shape=ins, output_shape=(int(w.shape[0]), oh, ow), source=source,
                   weights=w, sign_mode=determine_sign_mode(w), stride=st, padding=pd, dilation=dl,
                   groups=int(groups), du=int(du), dv=int(dv), vth_mant=int(vth_mant),
                   bias_mant=np.asarray(bias_mant), bias_exp=int(bias_exp))

    @classmethod
    def pool(cls, name: str, input_shape: Sequence[int], kernel_size: Any, weight: int, *, source: int,
             stride: Any = None, padding: Any = 0, du: int = 0, dv: int = 0, vth_mant: int = 1,
             bias_mant: Any = 0, bias_exp: int = 0) -> "LoihiLayer":
        """Return a sum-pooling layer: a per-channel (grouped) conv whose kernel is all ``weight``."""
        c = int(input_shape[0])
        kh, kw = _pair(kernel_size, "kernel_size")
        w = np.full((c, 1, kh, kw), int(weight), dtype=np.int64)
        return cls.conv(name, w, input_shape, source=source, stride=(kh, kw) if stride is None else stride,
                        padding=padding, groups=c, du=du, dv=dv, vth_mant=vth_mant, bias_mant=bias_mant,
                        bias_exp=bias_exp, kind="pool")

    @classmethod
    def flatten(cls, name: str, input_shape: Sequence[int], *, source: int) -> "LoihiLayer":
        """Return a reshape to ``(prod(input_shape),)`` in C order (PyTorch's flatten of (C, H, W))."""
        ins = tuple(int(s) for s in input_shape)
        return cls(name=name, kind="flatten", input_shape=ins, output_shape=(int(np.prod(ins)),), source=source)

    # ------------------------------------------------------------------ properties
    @property
    def has_neurons(self) -> bool:
        """True for layers with LIF neurons (all but ``flatten``)."""
        return self.kind != "flatten"

    @property
    def num_neurons(self) -> int:
        """Number of LIF neurons (0 for flatten)."""
        return int(np.prod(self.output_shape)) if self.has_neurons else 0

    @property
    def kernel_size(self) -> Tuple[int, int]:
        """Return (kh, kw) of a conv/pool layer."""
        assert self.weights is not None
        return int(self.weights.shape[2]), int(self.weights.shape[3])

    def synapses(self) -> List[LoihiSynapse]:
        """Return every synaptic input: the primary one first, then ``extra_inputs`` (flatten: none)."""
        if not self.has_neurons:
            return []
        return [LoihiSynapse.of_layer(self)] + list(self.extra_inputs)

    def synapse_view(self, k: int) -> "LoihiLayer":
        """Return a single-input copy of this layer whose primary synapse is synapse ``k``."""
        if k == 0:
            return self.replace(extra_inputs=[]) if self.extra_inputs else self
        syn = self.extra_inputs[k - 1]
        return self.replace(source=syn.source, kind=syn.kind, input_shape=tuple(syn.input_shape),
                            weights=syn.weights, weight_exp=syn.weight_exp, num_weight_bits=syn.num_weight_bits,
                            sign_mode=syn.sign_mode, stride=syn.stride, padding=syn.padding,
                            dilation=syn.dilation, groups=syn.groups, extra_inputs=[])

    @property
    def sources(self) -> List[int]:
        """Return the source index of every synaptic input (flatten: its one source)."""
        if not self.has_neurons:
            return [self.source]
        return [self.source] + [syn.source for syn in self.extra_inputs]

    def effective_weights(self) -> Tuple[np.ndarray, Dict[str, int]]:
        """Return the weights Lava actually uses and how many were clipped or truncated.

        Dense: :func:`effective_dense_weights`. Conv/pool: the mantissas unchanged (Lava's
        fixed-point Conv applies neither clipping nor truncation).
        """
        if self.weights is None:
            raise UnsupportedError("flatten layers have no weights", node=self.name)
        if self.kind == "dense":
            return effective_dense_weights(self.weights, self.sign_mode, self.num_weight_bits)
        return self.weights.copy(), {"weights_clipped": 0, "weights_truncated": 0, "weights_truncated_to_zero": 0}

    def bias_full(self) -> np.ndarray:
        """Return ``bias_mant`` broadcast to the output shape (int64)."""
        return np.broadcast_to(np.asarray(self.bias_mant, dtype=np.int64), self.output_shape).copy()

    @property
    def delayed_bias(self) -> bool:
        """True when a nonzero bias is switched on after step 0 (``bias_onset_step > 0``)."""
        return self.has_neurons and self.bias_onset_step > 0 and bool(np.any(np.asarray(self.bias_mant) != 0))

    def effective_bias(self) -> np.ndarray:
        """Return ``bias_mant << bias_exp`` per neuron (what is added to v each step)."""
        return self.bias_full() << int(self.bias_exp)

    # ------------------------------------------------------------------ validation
    def validate(self, index: int, source_shape: Shape) -> None:
        """Raise a clear error when the layer is inconsistent or outside what Lava's model defines."""
        n = self.name
        if self.kind not in LAYER_KINDS:
            raise UnsupportedError(f"layer kind '{self.kind}' is not one of {LAYER_KINDS}", node=n)
        if self.kind == "flatten" and not -1 <= self.source < index:
            raise UnsupportedError(f"flatten source {self.source} must be -1 (network input) or an earlier layer "
                                   f"(< {index})", node=n, hint="a flatten is a reshape without delay")
        if tuple(self.input_shape) != tuple(source_shape):
            raise ShapeError(f"input shape {tuple(self.input_shape)} differs from its source's output shape "
                             f"{tuple(source_shape)}", node=n)
        if self.kind == "flatten":
            if self.extra_inputs or self.readout:
                raise UnsupportedError("flatten layers have one source and no neurons", node=n)
            if self.weights is not None:
                raise UnsupportedError("flatten layers carry no weights", node=n)
            if self.output_shape != (int(np.prod(self.input_shape)),):
                raise ShapeError(f"flatten of {self.input_shape} must give ({int(np.prod(self.input_shape))},)",
                                 node=n)
            return
        if self.weights is None:
            raise UnsupportedError(f"{self.kind} layer without weights", node=n)
        w = self.weights
        if w.dtype != np.int64:
            raise ValueRangeError(f"weights must be np.int64, found {w.dtype}", node=n)
        if w.size and (w.min() < INT32_RANGE[0] or w.max() > INT32_RANGE[1]):
            raise ValueRangeError("weights outside int32 (Lava stores weights as int32)", node=n)
        if self.sign_mode not in SIGN_MODES:
            raise UnsupportedError(f"sign_mode '{self.sign_mode}' is not one of {sorted(SIGN_MODES)}", node=n)
        if not 1 <= self.num_weight_bits <= WEIGHT_BITS:
            raise ValueRangeError(f"num_weight_bits {self.num_weight_bits} outside 1..8", node=n)
        if self.kind == "dense":
            if w.ndim != 2 or self.input_shape != (w.shape[1],) or self.output_shape != (w.shape[0],):
                raise ShapeError(f"dense weights {w.shape} do not match input {self.input_shape} and output "
                                 f"{self.output_shape}", node=n, hint="flatten (C, H, W) inputs first")
            if not WEIGHT_EXP_RANGE_LAVA[0] <= self.weight_exp <= WEIGHT_EXP_RANGE_LAVA[1]:
                raise ValueRangeError(f"weight_exp {self.weight_exp} outside {WEIGHT_EXP_RANGE_LAVA}", node=n)
        else:
            if w.ndim != 4 or len(self.input_shape) != 3:
                raise ShapeError(f"{self.kind} needs 4-D weights and a (C, H, W) input, found {w.shape} and "
                                 f"{self.input_shape}", node=n)
            if self.groups < 1 or self.input_shape[0] % self.groups or w.shape[0] % self.groups:
                raise ShapeError(f"groups {self.groups} must divide in ({self.input_shape[0]}) and out "
                                 f"({w.shape[0]}) channels", node=n)
            if w.shape[1] * self.groups != self.input_shape[0]:
                raise ShapeError(f"weights expect {w.shape[1] * self.groups} input channels, input has "
                                 f"{self.input_shape[0]}", node=n)
            if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.padding) < 0:
                raise ValueRangeError(f"stride {self.stride}, padding {self.padding}, dilation {self.dilation} "
                                      "must be >= 1, >= 0, >= 1", node=n)
            oh, ow = conv_output_hw(self.input_shape[1:], self.kernel_size, self.stride, self.padding,
                                    self.dilation)
            if oh < 1 or ow < 1:
                raise ShapeError(f"{self.kind} output would be empty ({oh}x{ow}) for input {self.input_shape}",
                                 node=n)
            if self.output_shape != (int(w.shape[0]), oh, ow):
                raise ShapeError(f"output shape {self.output_shape} should be {(int(w.shape[0]), oh, ow)}", node=n)
            if self.weight_exp != 0 or self.num_weight_bits != 8:
                raise UnsupportedError(
                    f"{self.kind} layer with weight_exp={self.weight_exp}, num_weight_bits={self.num_weight_bits}: "
                    "Lava's fixed-point Conv ignores both (lava/proc/conv/models.py)", node=n,
                    hint="fold the scale into the weights, vth_mant and bias instead (use 0 and 8)")
            per_out = np.abs(w).reshape(w.shape[0], -1).sum(axis=1)
            if per_out.size and per_out.max() > INT32_RANGE[1]:
                raise ValueRangeError("a conv output could exceed int32 (Lava casts the sum to int32)", node=n)
        for nm, val, lo, hi in (("du", self.du, 0, DECAY_UNITY), ("dv", self.dv, 0, DECAY_UNITY),
                                ("vth_mant", self.vth_mant, 0, VTH_MANT_MAX),
                                ("bias_exp", self.bias_exp, *BIAS_EXP_RANGE)):
            if not lo <= int(val) <= hi:
                raise ValueRangeError(f"{nm}={val} outside [{lo}, {hi}]", node=n)
        b = np.asarray(self.bias_mant)
        if b.dtype.kind not in "iu":
            raise ValueRangeError(f"bias_mant must be integer, found {b.dtype}", node=n)
        if b.ndim and tuple(b.shape) != tuple(self.output_shape):
            raise ShapeError(f"bias_mant shape {b.shape} is neither scalar nor the output shape "
                             f"{self.output_shape}", node=n)
        if b.size and (b.min() < BIAS_MANT_RANGE_LAVA[0] or b.max() > BIAS_MANT_RANGE_LAVA[1]):
            raise ValueRangeError(f"bias_mant outside int16 {BIAS_MANT_RANGE_LAVA} (Lava's LIF stores int16)",
                                  node=n)
        if int(self.bias_onset_step) < 0:
            raise ValueRangeError(f"bias_onset_step={self.bias_onset_step} is negative", node=n,
                                  hint="use 0 (bias from the first step) or the layer's lag in steps")

    def replace(self, **changes: Any) -> "LoihiLayer":
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def determine_sign_mode(weights: np.ndarray) -> str:
    """Return Lava's ``determine_sign_mode``: excitatory if all >= 0, inhibitory if all <= 0, else mixed."""
    w = np.asarray(weights)
    if w.size == 0 or w.min() >= 0:
        return "excitatory"
    if w.max() <= 0:
        return "inhibitory"
    return "mixed"



def _put_synapse(d: Dict[str, np.ndarray], prefix: str, syn: LoihiSynapse) -> None:
    """Write one synapse's fields under ``prefix`` (the layout :meth:`LoihiNetwork.from_dict` reads)."""
    d[prefix + "source"] = np.array(syn.source, dtype=np.int64)
    d[prefix + "kind"] = np.array(syn.kind)
    d[prefix + "input_shape"] = np.array(syn.input_shape, dtype=np.int64)
    d[prefix + "weights"] = np.ascontiguousarray(syn.weights, dtype=np.int64)
    d[prefix + "weight_exp"] = np.array(syn.weight_exp, dtype=np.int64)
    d[prefix + "num_weight_bits"] = np.array(syn.num_weight_bits, dtype=np.int64)
    d[prefix + "sign_mode"] = np.array(SIGN_MODES[syn.sign_mode], dtype=np.int64)
    d[prefix + "stride"] = np.array(syn.stride, dtype=np.int64)
    d[prefix + "padding"] = np.array(syn.padding, dtype=np.int64)
    d[prefix + "dilation"] = np.array(syn.dilation, dtype=np.int64)
    d[prefix + "groups"] = np.array(syn.groups, dtype=np.int64)


@dataclass(eq=False)
class LoihiNetwork:
    """An input shape and a list of layers; each layer reads the input or any layers (see module doc)."""

    input_shape: Shape
    layers: List[LoihiLayer]
    name: str = "network"

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(s) for s in self.input_shape)
        self.validate()

    def source_shape(self, index: int, src: Optional[int] = None) -> Shape:
        """Return the shape of the spikes that feed layer ``index`` (or of source ``src``)."""
        src = self.layers[index].source if src is None else src
        return self.input_shape if src < 0 else tuple(self.layers[src].output_shape)

    def is_chain_like(self) -> bool:
        """True when every layer has one input from an earlier layer and there are no readouts or delayed biases."""
        return all(not ly.extra_inputs and not ly.readout and not ly.delayed_bias and ly.source < i
                   for i, ly in enumerate(self.layers))

    def has_recurrence(self) -> bool:
        """True when some synapse reads the layer itself or a later layer."""
        return any(s >= i for i, ly in enumerate(self.layers) for s in ly.sources)

    def validate(self) -> None:
        """Raise on any inconsistent layer (shapes, sources, Lava-defined integer ranges)."""
        if not self.layers:
            raise UnsupportedError("a Loihi network needs at least one layer", node=self.name)
        names = [ly.name for ly in self.layers]
        if len(set(names)) != len(names):
            raise UnsupportedError(f"layer names must be unique, found {names}", node=self.name)
        for i, ly in enumerate(self.layers):
            ly.input_shape = tuple(int(s) for s in ly.input_shape)
            ly.output_shape = tuple(int(s) for s in ly.output_shape)
            nl = len(self.layers)
            for k, src in enumerate(ly.sources):
                if not -1 <= src < nl:
                    raise UnsupportedError(f"source {src} must be -1 (input) or a layer index < {nl}", node=ly.name)
                if k and not ly.has_neurons:
                    raise UnsupportedError("flatten layers have one source", node=ly.name)
            ly.validate(i, self.source_shape(i))
            for k in range(1, len(ly.extra_inputs) + 1):
                syn = ly.extra_inputs[k - 1]
                syn.input_shape = tuple(int(x) for x in syn.input_shape)
                if syn.kind == "flatten":
                    raise UnsupportedError("an extra input must be dense, conv or pool (flatten is a layer)",
                                           node=ly.name)
                view = ly.synapse_view(k)
                view.validate(i, self.source_shape(i, syn.source))
            if ly.readout and ly.vth_mant != VTH_MANT_MAX:
                raise ValueRangeError(f"a readout layer needs vth_mant = {VTH_MANT_MAX}, found {ly.vth_mant}",
                                      node=ly.name)
        if not self.layers[-1].has_neurons:
            raise UnsupportedError("the last layer must have neurons (not flatten)", node=self.layers[-1].name)

    @property
    def output_shape(self) -> Shape:
        """Shape of the last layer's spikes."""
        return tuple(self.layers[-1].output_shape)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> Dict[str, np.ndarray]:
        """Return a flat ``{key: numpy array}`` dict, deterministic in keys, order and dtypes."""
        d: Dict[str, np.ndarray] = {
            "format": np.array(FORMAT),
            "version": np.array(FORMAT_VERSION, dtype=np.int64),
            "name": np.array(self.name),
            "input_shape": np.array(self.input_shape, dtype=np.int64),
            "num_layers": np.array(len(self.layers), dtype=np.int64),
        }
        for i, ly in enumerate(self.layers):
            p = f"layers/{i}/"
            d[p + "name"] = np.array(ly.name)
            d[p + "kind"] = np.array(ly.kind)
            d[p + "source"] = np.array(ly.source, dtype=np.int64)
            d[p + "input_shape"] = np.array(ly.input_shape, dtype=np.int64)
            d[p + "output_shape"] = np.array(ly.output_shape, dtype=np.int64)
            if not ly.has_neurons:
                continue
            _put_synapse(d, p, LoihiSynapse.of_layer(ly))
            d[p + "du"] = np.array(ly.du, dtype=np.int64)
            d[p + "dv"] = np.array(ly.dv, dtype=np.int64)
            d[p + "vth_mant"] = np.array(ly.vth_mant, dtype=np.int64)
            d[p + "bias_mant"] = np.array(ly.bias_mant, dtype=np.int64)  # keeps 0-d scalars 0-d
            d[p + "bias_exp"] = np.array(ly.bias_exp, dtype=np.int64)
            d[p + "readout"] = np.array(int(ly.readout), dtype=np.int64)
            d[p + "num_extra"] = np.array(len(ly.extra_inputs), dtype=np.int64)
            if ly.bias_onset_step:  # written only when used: older dicts and artifacts stay byte-identical
                d[p + "bias_onset_step"] = np.array(ly.bias_onset_step, dtype=np.int64)
            for k, syn in enumerate(ly.extra_inputs):
                _put_synapse(d, f"{p}extra/{k}/", syn)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LoihiNetwork":
        """Rebuild a network written by :meth:`to_dict` (raises :class:`ArtifactError` when malformed).

        Scalars may come back as 1-element arrays (some writers store 0-d arrays as shape (1,)).
        """
        def get(key: str) -> np.ndarray:
            if key not in d:
                raise ArtifactError(f"Loihi network dict lacks '{key}'")
            return np.asarray(d[key])

        def scalar(key: str) -> Any:
            a = get(key)
            if a.size != 1:
                raise ArtifactError(f"'{key}' must be a scalar, found shape {a.shape}")
            return a.reshape(-1)[0]

        def text(key: str) -> str:
            return str(scalar(key))

        def num(key: str) -> int:
            return int(scalar(key))

        if text("format") != FORMAT:
            raise ArtifactError(f"not a Loihi network dict (format {text('format')!r})")
        if num("version") not in READ_VERSIONS:
            raise ArtifactError(f"Loihi network dict version {num('version')} is not one of {READ_VERSIONS}")
        modes = {v: k for k, v in SIGN_MODES.items()}
        layers = []
        try:
            for i in range(num("num_layers")):
                p = f"layers/{i}/"
                kind = text(p + "kind")
                out_shape = tuple(int(s) for s in get(p + "output_shape"))
                common = dict(name=text(p + "name"), kind=kind, source=num(p + "source"),
                              input_shape=tuple(int(s) for s in get(p + "input_shape")), output_shape=out_shape)
                if kind == "flatten":
                    layers.append(LoihiLayer(**common))
                    continue
                sm = num(p + "sign_mode")
                if sm not in modes:
                    raise ArtifactError(f"layer {i}: unknown sign mode code {sm}")
                bias = get(p + "bias_mant").astype(np.int64)
                if bias.size == 1 and tuple(bias.shape) != out_shape:
                    bias = bias.reshape(())
                extra = []
                n_extra = num(p + "num_extra") if p + "num_extra" in d else 0
                for k in range(n_extra):
                    q = f"{p}extra/{k}/"
                    sq = num(q + "sign_mode")
                    if sq not in modes:
                        raise ArtifactError(f"layer {i} input {k + 1}: unknown sign mode code {sq}")
                    extra.append(LoihiSynapse(
                        source=num(q + "source"), kind=text(q + "kind"),
                        input_shape=tuple(int(x) for x in get(q + "input_shape")),
                        weights=get(q + "weights").astype(np.int64), weight_exp=num(q + "weight_exp"),
                        num_weight_bits=num(q + "num_weight_bits"), sign_mode=modes[sq],
                        stride=_pair(get(q + "stride"), "stride"), padding=_pair(get(q + "padding"), "padding"),
                        dilation=_pair(get(q + "dilation"), "dilation"), groups=num(q + "groups")))
                readout = bool(num(p + "readout")) if p + "readout" in d else False
                onset = num(p + "bias_onset_step") if p + "bias_onset_step" in d else 0
                layers.append(LoihiLayer(
                    **common, extra_inputs=extra, readout=readout, bias_onset_step=onset,
                    weights=get(p + "weights").astype(np.int64), weight_exp=num(p + "weight_exp"),
                    num_weight_bits=num(p + "num_weight_bits"), sign_mode=modes[sm],
                    stride=_pair(get(p + "stride"), "stride"), padding=_pair(get(p + "padding"), "padding"),
                    dilation=_pair(get(p + "dilation"), "dilation"), groups=num(p + "groups"),
                    du=num(p + "du"), dv=num(p + "dv"), vth_mant=num(p + "vth_mant"),
                    bias_mant=bias, bias_exp=num(p + "bias_exp")))
            return cls(input_shape=tuple(int(s) for s in get("input_shape")), layers=layers, name=text("name"))
        except (ValueError, TypeError) as exc:
            raise ArtifactError(f"malformed Loihi network dict: {exc}") from exc

    def equals(self, other: "LoihiNetwork") -> bool:
        """True when both networks serialise to identical dicts."""
        a, b = self.to_dict(), other.to_dict()
        return list(a) == list(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)

    @classmethod
    def chain(cls, input_shape: Sequence[int], layers: Sequence[LoihiLayer], name: str = "network"
              ) -> "LoihiNetwork":
        """Return a feed-forward chain: each layer's source is set to the previous one."""
        fixed = [ly.replace(source=i - 1) for i, ly in enumerate(layers)]
        return cls(input_shape=tuple(input_shape), layers=fixed, name=name)
