"""The node kinds of the internal graph: NIR's node semantics plus what the compiler needs.

Every node kind is a dataclass holding numpy arrays under NIR's own field names (so a lowering can
read ``node.weight``, ``node.tau``, ``node.v_threshold`` ...). Each kind answers for itself:
``infer_shape`` (shapes exclude the batch dimension), ``arrays`` (its numeric parameters, for
validation, hashing and serialisation) and, for neurons, ``discrete(dt_s, method)``.
:mod:`snnc.compiler.graph` holds them in a :class:`~snnc.compiler.graph.Graph`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple, Type

import numpy as np

from snnc.dynamics import DiscreteNeuron, decay
from snnc.errors import ShapeError, UnsupportedError, ValueRangeError

Shape = Tuple[int, ...]

#: Registry of node kinds by their ``kind`` name.
NODE_KINDS: Dict[str, Type["Node"]] = {}


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) if not isinstance(x, np.ndarray) else x


def pair(x: Any) -> Tuple[int, int]:
    """Return ``(a, b)`` from an int or a pair (kernel sizes, strides, paddings)."""
    a = np.asarray(x).reshape(-1)
    if a.size == 1:
        return int(a[0]), int(a[0])
    return int(a[0]), int(a[1])


#: Largest kernel, stride, padding or dilation accepted (torch takes 32-bit integers).
_MAX_ATTR = 2 ** 30


def _check_elementwise(kind: str, name: str, a: np.ndarray, in_shape: Shape) -> None:
    """Raise ShapeError unless ``a`` is a scalar, per-element or (for (C, H, W)) per-channel array."""
    n = int(np.prod(in_shape)) if in_shape else 1
    if a.size == 1 or a.size == n or (len(in_shape) == 3 and a.size == in_shape[0]):
        return
    raise ShapeError(f"{kind}.{name} has {a.size} values; input {tuple(in_shape)} needs 1, {n}"
                     + (f" or {in_shape[0]} (per channel)" if len(in_shape) == 3 else ""))


@dataclass(eq=False)
class Node:
    """Base of every node kind; subclasses are dataclasses registered by ``kind``."""

    kind: ClassVar[str] = "node"
    #: True for nodes that keep state across time steps.
    stateful: ClassVar[bool] = False
    #: True for nodes whose output is a binary spike train.
    spiking: ClassVar[bool] = False
    #: True for linear synapse-like nodes (weights, pooling, scaling).
    synapse: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            NODE_KINDS[cls.kind] = cls

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the output shape (without batch) for input shape ``in_shape``."""
        return tuple(in_shape)

    def arrays(self) -> Dict[str, np.ndarray]:
        """Return the node's numeric parameters by NIR field name."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                out[f.name] = v
        return out

    def attrs(self) -> Dict[str, Any]:
        """Return the node's non-array attributes (JSON-serialisable)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, np.ndarray) and not isinstance(v, Node):
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def replace(self, **changes: Any) -> "Node":
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- I/O nodes
@dataclass(eq=False)
class Input(Node):
    """Graph input of a fixed shape (no batch dimension)."""

    kind: ClassVar[str] = "Input"
    shape: Shape = ()

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the declared input shape."""
        return tuple(self.shape)


@dataclass(eq=False)
class Output(Node):
    """Graph output; passes its input through."""

    kind: ClassVar[str] = "Output"
    shape: Optional[Shape] = None

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the input shape, checked against the declared one when present."""
        if self.shape is not None and int(np.prod(self.shape)) != int(np.prod(in_shape)):
            raise ShapeError(f"Output declares shape {tuple(self.shape)} but receives {tuple(in_shape)}")
        return tuple(in_shape)


# --------------------------------------------------------------------------- synapses
@dataclass(eq=False)
class Affine(Node):
    """``y = W x + b`` with ``weight`` (out, in) and ``bias`` (out,)."""

    kind: ClassVar[str] = "Affine"
    synapse: ClassVar[bool] = True
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return ``(out,)`` after checking the fan-in against the input size."""
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ShapeError(f"{self.kind} needs weight (out, in) and bias (out,), found {self.weight.shape} "
                             f"and {self.bias.shape}")
        n_in = int(np.prod(in_shape))
        if len(in_shape) != 1 or n_in != self.weight.shape[1]:
            raise ShapeError(f"{self.kind} expects input ({self.weight.shape[1]},), found {tuple(in_shape)}",
                             hint="insert a Flatten before dense layers")
        return (int(self.weight.shape[0]),)


@dataclass(eq=False)
class Linear(Affine):
    """``y = W x`` (an Affine without bias)."""

    kind: ClassVar[str] = "Linear"

    def __post_init__(self) -> None:
        if self.bias.size == 0:
            self.bias = np.zeros(self.weight.shape[0])


@dataclass(eq=False)
class Scale(Node):
    """Elementwise (or per-channel) multiplication by ``scale``."""

    kind: ClassVar[str] = "Scale"
    synapse: ClassVar[bool] = True
    scale: np.ndarray = field(default_factory=lambda: np.ones(1))

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the input shape after checking the scale's size."""
        _check_elementwise(self.kind, "scale", self.scale, in_shape)
        return tuple(in_shape)


@dataclass(eq=False)
class BatchNorm(Node):
    """Inference-time batch normalisation over channel dim 0 (folded away by the compiler)."""

    kind: ClassVar[str] = "BatchNorm"
    synapse: ClassVar[bool] = True
    mean: np.ndarray = field(default_factory=lambda: np.zeros(1))
    var: np.ndarray = field(default_factory=lambda: np.ones(1))
    gamma: np.ndarray = field(default_factory=lambda: np.ones(1))
    beta: np.ndarray = field(default_factory=lambda: np.zeros(1))
    eps: float = 1e-5

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the input shape after checking the channel count."""
        if any(a.shape != self.mean.shape or a.ndim != 1 for a in (self.var, self.gamma, self.beta)):
            raise ShapeError("BatchNorm mean, var, gamma and beta must be 1-D of one length, found "
                             f"{[a.shape for a in (self.mean, self.var, self.gamma, self.beta)]}")
        if np.any(self.var + self.eps <= 0):
            raise ValueRangeError("BatchNorm var + eps must be > 0")
        if not in_shape or in_shape[0] != self.mean.shape[0]:
            raise ShapeError(f"BatchNorm has {self.mean.shape[0]} channels, input is {tuple(in_shape)}")
        return tuple(in_shape)

    def gain_shift(self) -> Tuple[np.ndarray, np.ndarray]:
        """Return per-channel ``(gain, shift)`` with ``y = gain * x + shift``."""
        gain = self.gamma / np.sqrt(self.var + self.eps)
        return gain, self.beta - self.mean * gain


@dataclass(eq=False)
class Conv2d(Node):
    """2-D convolution, weight (out, in/groups, kh, kw), NIR semantics."""

    kind: ClassVar[str] = "Conv2d"
    synapse: ClassVar[bool] = True
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 1, 1)))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1
    input_shape: Optional[Tuple[int, int]] = None

    def __post_init__(self) -> None:
        self.stride, self.padding, self.dilation = pair(self.stride), pair(self.padding), pair(self.dilation)
        if self.bias.size == 0:
            self.bias = np.zeros(self.weight.shape[0])

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return (out_channels, H', W') from the input (C, H, W)."""
        if len(in_shape) != 3:
            raise ShapeError(f"Conv2d expects (C, H, W) input, found {tuple(in_shape)}")
        if self.weight.ndim != 4 or min(self.weight.shape) <= 0:
            raise ShapeError(f"Conv2d weight must be (out, in/groups, kh, kw) and non-empty, found {self.weight.shape}")
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            raise ShapeError(f"Conv2d groups={self.groups} must be >= 1 and divide {self.weight.shape[0]} output channels")
        if max(self.stride + self.dilation + self.padding) > _MAX_ATTR:
            raise ShapeError(f"Conv2d stride/dilation/padding above {_MAX_ATTR}")
        if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.padding) < 0:
            raise ShapeError(f"Conv2d stride {self.stride} and dilation {self.dilation} must be >= 1, "
                             f"padding {self.padding} >= 0")
        if self.bias.shape != (self.weight.shape[0],):
            raise ShapeError(f"Conv2d bias has shape {self.bias.shape}, expected ({self.weight.shape[0]},)")
        c, h, w = in_shape
        if c != self.weight.shape[1] * self.groups:
            raise ShapeError(f"Conv2d expects {self.weight.shape[1] * self.groups} input channels, found {c}")
        kh, kw = self.weight.shape[2:]
        oh = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        if oh <= 0 or ow <= 0:
            raise ShapeError(f"Conv2d output would be empty ({oh}x{ow}) for input {tuple(in_shape)}")
        return (int(self.weight.shape[0]), int(oh), int(ow))


@dataclass(eq=False)
class SumPool2d(Node):
    """Sum pooling over non-overlapping or strided windows."""

    kind: ClassVar[str] = "SumPool2d"
    synapse: ClassVar[bool] = True
    kernel_size: Tuple[int, int] = (2, 2)
    stride: Tuple[int, int] = (2, 2)
    padding: Tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        self.kernel_size, self.stride, self.padding = pair(self.kernel_size), pair(self.stride), pair(self.padding)

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the pooled (C, H', W')."""
        if len(in_shape) != 3:
            raise ShapeError(f"{self.kind} expects (C, H, W) input, found {tuple(in_shape)}")
        if max(self.kernel_size + self.stride + self.padding) > _MAX_ATTR:
            raise ShapeError(f"{self.kind} kernel/stride/padding above {_MAX_ATTR}")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ShapeError(f"{self.kind} kernel {self.kernel_size} and stride {self.stride} must be >= 1, "
                             f"padding {self.padding} >= 0")
        c, h, w = in_shape
        oh = (h + 2 * self.padding[0] - self.kernel_size[0]) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.kernel_size[1]) // self.stride[1] + 1
        if oh <= 0 or ow <= 0:
            raise ShapeError(f"{self.kind} output would be empty for input {tuple(in_shape)}")
        return (c, int(oh), int(ow))


@dataclass(eq=False)
class AvgPool2d(SumPool2d):
    """Average pooling (lowered to SumPool2d followed by Scale)."""

    kind: ClassVar[str] = "AvgPool2d"


@dataclass(eq=False)
class Flatten(Node):
    """Flatten dims ``start_dim..end_dim`` (dims exclude batch, as in NIR)."""

    kind: ClassVar[str] = "Flatten"
    start_dim: int = 0
    end_dim: int = -1

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the flattened shape."""
        n = len(in_shape)
        if n == 0:
            return (1,)
        if not (-n <= self.start_dim < n and -n <= self.end_dim < n):
            raise ShapeError(f"Flatten dims ({self.start_dim}, {self.end_dim}) are out of range for input "
                             f"{tuple(in_shape)}", hint="NIR's Flatten dims exclude the batch dimension")
        s = self.start_dim % n
        e = self.end_dim % n
        if s > e:
            raise ShapeError(f"Flatten start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                             f"for input {tuple(in_shape)}")
        return tuple(in_shape[:s]) + (int(np.prod(in_shape[s:e + 1])),) + tuple(in_shape[e + 1:])


@dataclass(eq=False)
class Delay(Node):
    """Delays its input by ``delay`` seconds (rounded to whole steps of dt)."""

    kind: ClassVar[str] = "Delay"
    stateful: ClassVar[bool] = True
    delay: np.ndarray = field(default_factory=lambda: np.zeros(1))

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the input shape; a delay must not be negative."""
        if np.any(np.asarray(self.delay) < 0):
            raise ValueRangeError(f"Delay has a negative delay ({np.min(self.delay)} s)",
                                  hint="a delay cannot reach into the future")
        return tuple(in_shape)


@dataclass(eq=False)
class Threshold(Node):
    """Memoryless threshold: ``z = x > threshold``."""

    kind: ClassVar[str] = "Threshold"
    spiking: ClassVar[bool] = True
    threshold: np.ndarray = field(default_factory=lambda: np.zeros(1))

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the input shape after checking the threshold's size."""
        _check_elementwise(self.kind, "threshold", self.threshold, in_shape)
        return tuple(in_shape)


# --------------------------------------------------------------------------- neurons
@dataclass(eq=False)
class Neuron(Node):
    """Base of stateful neuron nodes; ``discrete`` gives the step coefficients."""

    stateful: ClassVar[bool] = True
    has_current: ClassVar[bool] = False

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the input shape, checked against per-neuron parameter shapes."""
        for name, a in self.arrays().items():
            if a.size == 0:
                raise ShapeError(f"{self.kind}.{name} is empty")
            if a.size > 1 and tuple(a.shape) != tuple(in_shape) and a.size != int(np.prod(in_shape)):
                raise ShapeError(f"{self.kind}.{name} has shape {a.shape} but the input is {tuple(in_shape)}")
        return tuple(in_shape)

    def discrete(self, dt_s: float, method: str) -> DiscreteNeuron:
        """Return the discretised coefficients for step ``dt_s`` seconds."""
        raise NotImplementedError


#: How a spiking neuron resets: NIR's reset to ``v_reset`` (default) or subtraction of the threshold.
RESET_MODES = ("to_v_reset", "subtract")


class SpikeModeMixin:
    """Reset mode and spikes-per-step of spiking neurons: attributes NIR cannot store.

    ``reset_mode="to_v_reset"`` with ``max_spikes_per_step=1`` is NIR's semantics (the default).
    ``reset_mode="subtract"``: a neuron with ``v > v_threshold`` emits
    ``n = min(floor(v / v_threshold), max_spikes_per_step)`` spikes (``n = 1`` when
    ``max_spikes_per_step == 1``) and ``v -= n * v_threshold`` (``v_reset`` unused, must be 0).
    ``v_min`` (None: no floor) bounds ``v`` from below after the reset (sinabs' ``min_v_mem``,
    Speck's ``threshold_low``). Set by framework conventions and importers (Rockpool files, sinabs
    modules); a target that cannot run them refuses them.
    """

    kind: ClassVar[str]
    reset_mode: str
    max_spikes_per_step: int
    v_min: Optional[float]
    v_threshold: np.ndarray
    v_reset: np.ndarray

    def _check_spike_mode(self) -> None:
        """Raise for an unknown reset mode, a bad spike limit, or a subtract neuron with ``v_reset != 0``."""
        if self.reset_mode not in RESET_MODES:
            raise UnsupportedError(f"{self.kind} reset_mode {self.reset_mode!r} unknown",
                                   hint=f"use one of {', '.join(RESET_MODES)}")
        m = self.max_spikes_per_step
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueRangeError(f"{self.kind} max_spikes_per_step must be an integer >= 1, "
                                  f"found {m!r}")
        if m > 1 and self.reset_mode != "subtract":
            raise UnsupportedError(f"{self.kind} with max_spikes_per_step={m} needs reset_mode "
                                   "'subtract'", hint="several spikes per step only make sense with "
                                   "reset by subtraction")
        if self.v_min is not None and not np.isfinite(float(self.v_min)):
            raise ValueRangeError(f"{self.kind} v_min must be finite or None, found {self.v_min!r}")
        if self.reset_mode == "subtract":
            if np.any(np.asarray(self.v_reset) != 0):
                raise UnsupportedError(f"{self.kind} with reset by subtraction has v_reset != 0",
                                       hint="v_reset is unused when the threshold is subtracted; set it to 0")
            if m > 1 and np.any(np.asarray(self.v_threshold) <= 0):
                raise ValueRangeError(f"{self.kind} with several spikes per step needs v_threshold > 0, "
                                      f"found min {np.min(self.v_threshold)}")

    def attrs(self) -> Dict[str, Any]:
        """Return the attributes; the reset mode, spike limit and floor only when not NIR's defaults."""
        out = Node.attrs(self)  # type: ignore[arg-type]
        if out.get("v_min", 0) is None:
            del out["v_min"]
        elif "v_min" in out:
            out["v_min"] = float(out["v_min"])
        if out.get("reset_mode") == "to_v_reset":
            del out["reset_mode"]
        if out.get("max_spikes_per_step") == 1:
            del out["max_spikes_per_step"]
        elif "max_spikes_per_step" in out:
            out["max_spikes_per_step"] = int(out["max_spikes_per_step"])
        return out

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Check the spike mode, then the per-neuron parameter shapes."""
        self._check_spike_mode()
        return Neuron.infer_shape(self, in_shape)  # type: ignore[arg-type]

    def _with_spike_mode(self, d: DiscreteNeuron) -> DiscreteNeuron:
        self._check_spike_mode()
        return dataclasses.replace(d, v_threshold=self.v_threshold, v_reset=self.v_reset,
                                   reset_mode=self.reset_mode, max_spikes_per_step=int(self.max_spikes_per_step),
                                   v_min=None if self.v_min is None else float(self.v_min))


@dataclass(eq=False)
class I(Neuron):
    """Integrator ``dv/dt = r x``."""

    kind: ClassVar[str] = "I"
    r: np.ndarray = field(default_factory=lambda: np.ones(1))

    def discrete(self, dt_s: float, method: str) -> DiscreteNeuron:
        """Return ``v' = v + dt r x``."""
        return DiscreteNeuron(a_v=np.ones_like(self.r), g_v=dt_s * self.r, c_v=np.zeros_like(self.r))


@dataclass(eq=False)
class IF(SpikeModeMixin, I):
    """Integrate-and-fire: ``dv/dt = r x``, spike when ``v > v_threshold``, then ``v = v_reset``."""

    kind: ClassVar[str] = "IF"
    spiking: ClassVar[bool] = True
    v_threshold: np.ndarray = field(default_factory=lambda: np.ones(1))
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(1))
    reset_mode: str = "to_v_reset"
    max_spikes_per_step: int = 1
    v_min: Optional[float] = None

    def discrete(self, dt_s: float, method: str) -> DiscreteNeuron:
        """Return ``v' = v + dt r x`` with threshold and reset."""
        return self._with_spike_mode(super().discrete(dt_s, method))


@dataclass(eq=False)
class LI(Neuron):
    """Leaky integrator ``tau dv/dt = (v_leak - v) + r x``."""

    kind: ClassVar[str] = "LI"
    tau: np.ndarray = field(default_factory=lambda: np.ones(1))
    r: np.ndarray = field(default_factory=lambda: np.ones(1))
    v_leak: np.ndarray = field(default_factory=lambda: np.zeros(1))

    def discrete(self, dt_s: float, method: str) -> DiscreteNeuron:
        """Return ``v' = a v + r (1-a) x + v_leak (1-a)``."""
        a = decay(self.tau, dt_s, method, self.kind)
        return DiscreteNeuron(a_v=a, g_v=self.r * (1 - a), c_v=self.v_leak * (1 - a))


@dataclass(eq=False)
class LIF(SpikeModeMixin, LI):
    """Leaky integrate-and-fire with threshold ``v_threshold`` and reset to ``v_reset``."""

    kind: ClassVar[str] = "LIF"
    spiking: ClassVar[bool] = True
    v_threshold: np.ndarray = field(default_factory=lambda: np.ones(1))
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(1))
    reset_mode: str = "to_v_reset"
    max_spikes_per_step: int = 1
    v_min: Optional[float] = None

    def discrete(self, dt_s: float, method: str) -> DiscreteNeuron:
        """Return the LI coefficients with threshold and reset."""
        return self._with_spike_mode(super().discrete(dt_s, method))


@dataclass(eq=False)
class CubaLI(Neuron):
    """Current-based leaky integrator (synaptic current ``tau_syn``, membrane ``tau_mem``)."""

    kind: ClassVar[str] = "CubaLI"
    has_current: ClassVar[bool] = True
    tau_syn: np.ndarray = field(default_factory=lambda: np.ones(1))
    tau_mem: np.ndarray = field(default_factory=lambda: np.ones(1))
    r: np.ndarray = field(default_factory=lambda: np.ones(1))
    v_leak: np.ndarray = field(default_factory=lambda: np.zeros(1))
    w_in: np.ndarray = field(default_factory=lambda: np.ones(1))

    def discrete(self, dt_s: float, method: str) -> DiscreteNeuron:
        """Return the two-stage coefficients."""
        a_i = decay(self.tau_syn, dt_s, method, self.kind)
        a_v = decay(self.tau_mem, dt_s, method, self.kind)
        return DiscreteNeuron(a_v=a_v, g_v=self.r * (1 - a_v), c_v=self.v_leak * (1 - a_v),
                              a_i=a_i, g_i=self.w_in * (1 - a_i))


@dataclass(eq=False)
class CubaLIF(SpikeModeMixin, CubaLI):
    """Current-based LIF with threshold ``v_threshold`` and reset to ``v_reset``."""

    kind: ClassVar[str] = "CubaLIF"
    spiking: ClassVar[bool] = True
    v_threshold: np.ndarray = field(default_factory=lambda: np.ones(1))
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(1))
    reset_mode: str = "to_v_reset"
    max_spikes_per_step: int = 1
    v_min: Optional[float] = None

    def discrete(self, dt_s: float, method: str) -> DiscreteNeuron:
        """Return the CubaLI coefficients with threshold and reset."""
        return self._with_spike_mode(super().discrete(dt_s, method))


# --------------------------------------------------------------------------- fused layer
@dataclass(eq=False)
class Layer(Node):
    """A synapse chain fused with the neuron population it drives (the unit targets map)."""

    kind: ClassVar[str] = "Layer"
    stateful: ClassVar[bool] = True
    synapses: Tuple[Node, ...] = ()
    neuron: Optional[Node] = None

    @property
    def spiking(self) -> bool:  # type: ignore[override]
        """True when the layer's neuron emits spikes."""
        return bool(self.neuron is not None and self.neuron.spiking)

    def infer_shape(self, in_shape: Shape) -> Shape:
        """Return the shape after every synapse and the neuron."""
        s = tuple(in_shape)
        for n in self.synapses:
            s = n.infer_shape(s)
        return self.neuron.infer_shape(s) if self.neuron is not None else s

    def arrays(self) -> Dict[str, np.ndarray]:
        """Return the parameters of all parts, prefixed ``syn<i>.`` and ``neuron.``."""
        out = {}
        for i, n in enumerate(self.synapses):
            out.update({f"syn{i}.{k}": v for k, v in n.arrays().items()})
        if self.neuron is not None:
            out.update({f"neuron.{k}": v for k, v in self.neuron.arrays().items()})
        return out

    def attrs(self) -> Dict[str, Any]:
        """Return the parts' kinds and attributes."""
        return {"synapses": [{"kind": n.kind, **n.attrs()} for n in self.synapses],
                "neuron": None if self.neuron is None else {"kind": self.neuron.kind, **self.neuron.attrs()}}


def node_from(kind: str, attrs: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Node:
    """Return the node of ``kind`` with stored ``attrs`` and ``arrays`` (the inverse of ``attrs``/``arrays``)."""
    cls = NODE_KINDS.get(kind)
    if cls is None:
        raise UnsupportedError(f"unknown node kind '{kind}'")
    if cls is Layer:
        syns = []
        for i, sa in enumerate(attrs["synapses"]):
            sa = dict(sa)
            k = sa.pop("kind")
            pre = f"syn{i}."
            syns.append(node_from(k, sa, {a[len(pre):]: v for a, v in arrays.items() if a.startswith(pre)}))
        neuron = None
        if attrs["neuron"] is not None:
            na = dict(attrs["neuron"])
            k = na.pop("kind")
            neuron = node_from(k, na, {a[7:]: v for a, v in arrays.items() if a.startswith("neuron.")})
        return Layer(synapses=tuple(syns), neuron=neuron)
    kw: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in arrays:
            kw[f.name] = arrays[f.name]
        elif f.name in attrs:
            v = attrs[f.name]
            kw[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kw)


def node_kinds() -> Sequence[str]:
    """Return the names of all node kinds the compiler knows."""
    return sorted(NODE_KINDS)
