"""Float reference simulator of the internal graph (torch; batched; GPU when present).

Each step evaluates the nodes in topological order; several inputs of a node are summed; a
recurrent edge carries its source's value from the previous step. Neurons follow
:mod:`snnc.dynamics`. Synaptic operations are counted as NeuroBench's effective accumulates:
for every non-zero input element, the number of non-zero weights it drives.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from snnc.compiler.graph import (Affine, AvgPool2d, BatchNorm, Conv2d, Delay, Flatten, Graph, Input, Layer,
                                 Neuron, Node, Output, Scale, SumPool2d, Threshold)
from snnc.dynamics import TorchNeuron
from snnc.errors import UnsupportedError
from snnc.formats.result import Result

log = logging.getLogger(__name__)

SynFn = Callable[[Any], Any]


def default_device() -> "torch.device":
    """Return CUDA when available, else CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _tensor(a: np.ndarray, dtype: Any, device: Any) -> Any:
    import torch

    return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)


def _channel_view(s: Any, shape: Tuple[int, ...]) -> Any:
    if s.numel() > 1 and len(shape) == 3 and s.numel() == shape[0]:
        return s.reshape(-1, 1, 1)
    return s.reshape(shape) if s.numel() > 1 else s.reshape(())


def synapse_fn(node: Node, in_shape: Tuple[int, ...], out_shape: Tuple[int, ...], dtype: Any,
               device: Any) -> Tuple[SynFn, Optional[Any]]:
    """Return ``(f, fanout)``: the node's batched function and the per-input fan-out (or None)."""
    import torch
    import torch.nn.functional as F

    if isinstance(node, Affine):
        w, b = _tensor(node.weight, dtype, device), _tensor(node.bias, dtype, device)
        return (lambda x: F.linear(x, w, b)), (w != 0).sum(0).to(dtype)
    if isinstance(node, Conv2d):
        w, b = _tensor(node.weight, dtype, device), _tensor(node.bias, dtype, device)
        kw = dict(stride=node.stride, padding=node.padding, dilation=node.dilation, groups=node.groups)
        ones = torch.ones((1,) + tuple(out_shape), dtype=dtype, device=device)
        fan = F.conv_transpose2d(ones, (w != 0).to(dtype), stride=node.stride, padding=node.padding,
                                 dilation=node.dilation, groups=node.groups,
                                 output_padding=_out_pad(node, in_shape, out_shape))[0]
        return (lambda x: F.conv2d(x, w, b, **kw)), fan
    if isinstance(node, AvgPool2d):
        return (lambda x: F.avg_pool2d(x, node.kernel_size, node.stride, node.padding)), None
    if isinstance(node, SumPool2d):
        return (lambda x: F.avg_pool2d(x, node.kernel_size, node.stride, node.padding, divisor_override=1)), None
    if isinstance(node, Scale):
        s = _channel_view(_tensor(node.scale, dtype, device), in_shape)
        return (lambda x: x * s), None
    if isinstance(node, BatchNorm):
        gain, shift = node.gain_shift()
        g = _channel_view(_tensor(gain, dtype, device), in_shape)
        sh = _channel_view(_tensor(shift, dtype, device), in_shape)
        return (lambda x: x * g + sh), None
    if isinstance(node, Flatten):
        return (lambda x: x.reshape((x.shape[0],) + tuple(out_shape))), None
    raise UnsupportedError(f"node kind '{node.kind}' has no float simulation")


def _out_pad(node: Conv2d, in_shape: Tuple[int, ...], out_shape: Tuple[int, ...]) -> Tuple[int, int]:
    kh, kw = node.weight.shape[2:]
    pads = []
    for d in range(2):
        k = (kh, kw)[d]
        full = (out_shape[1 + d] - 1) * node.stride[d] - 2 * node.padding[d] + node.dilation[d] * (k - 1) + 1
        pads.append(int(in_shape[1 + d] - full))
    return pads[0], pads[1]


class _Op:
    """One node's step function, its state and what it records."""

    def __init__(self, name: str, node: Node, in_shape: Tuple[int, ...], out_shape: Tuple[int, ...],
                 dt_s: float, method: str, dtype: Any, device: Any) -> None:
        self.name, self.node, self.out_shape = name, node, out_shape
        self.syn: List[Tuple[SynFn, Optional[Any]]] = []
        self.neuron: Optional[TorchNeuron] = None
        self.threshold: Optional[Any] = None
        self.delay_steps = 0
        neuron_node: Optional[Node] = None
        if isinstance(node, Layer):
            s = in_shape
            for sn in node.synapses:
                o = sn.infer_shape(s)
                self.syn.append(synapse_fn(sn, s, o, dtype, device))
                s = o
            neuron_node = node.neuron
        elif isinstance(node, (Neuron, Threshold)):
            neuron_node = node
        elif isinstance(node, Delay):
            steps = np.unique(np.rint(np.asarray(node.delay) / dt_s))
            if steps.size != 1:
                raise UnsupportedError("Delay with differing per-element delays", node=name,
                                       hint="use one delay value per Delay node")
            self.delay_steps = int(steps[0])
        elif isinstance(node, (Input, Output)):
            pass
        else:
            self.syn.append(synapse_fn(node, in_shape, out_shape, dtype, device))
        if isinstance(neuron_node, Threshold):
            self.threshold = _channel_view(_tensor(neuron_node.threshold, dtype, device), out_shape)
        elif isinstance(neuron_node, Neuron):
            self.neuron = TorchNeuron(neuron_node.discrete(dt_s, method), out_shape, dtype, device)
        self.spiking = bool(self.threshold is not None or (self.neuron is not None and self.neuron.v_threshold is not None))
        self.n_neurons = int(np.prod(out_shape))

    def init_state(self, batch: int, dtype: Any, device: Any) -> Dict[str, Any]:
        import torch

        shape = (batch,) + tuple(self.out_shape)
        st: Dict[str, Any] = {}
        if self.neuron is not None:
            st["v"] = torch.zeros(shape, dtype=dtype, device=device)
            if self.neuron.a_i is not None:
                st["i"] = torch.zeros(shape, dtype=dtype, device=device)
        if self.delay_steps:
            st["buf"] = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(self.delay_steps)]
        return st

    def step(self, x: Any, st: Dict[str, Any]) -> Tuple[Any, Any]:
        synops = 0.0
        for f, fan in self.syn:
            if fan is not None:
                synops = synops + ((x != 0).to(x.dtype) * fan).reshape(x.shape[0], -1).sum(1)
            x = f(x)
        if self.delay_steps:
            st["buf"].append(x)
            x = st["buf"].pop(0)
        if self.threshold is not None:
            x = (x > self.threshold).to(x.dtype)
        elif self.neuron is not None:
            x, i, st["v"] = self.neuron.step(x, st.get("i"), st["v"])
            if i is not None:
                st["i"] = i
        return x, synops


class GraphSimulator:
    """Runs a passed :class:`Graph` step by step on torch, batched."""

    def __init__(self, graph: Graph, dt_s: float, method: str = "exact", dtype: Any = None,
                 device: Any = None) -> None:
        import torch

        self.graph = graph
        self.dtype = dtype or torch.float64
        self.device = device or default_device()
        self.order = graph.topological_order()
        self.back = set(graph.recurrent_edges())
        self.preds = {n: [p for p in graph.predecessors(n)] for n in self.order}
        self.ops: Dict[str, _Op] = {}
        for n in self.order:
            node = graph.nodes[n]
            fw = [p for p in self.preds[n] if (p, n) not in self.back]
            in_shape = graph.shapes[fw[0]] if fw else graph.shapes[n]
            self.ops[n] = _Op(n, node, tuple(in_shape), tuple(graph.shapes[n]), dt_s, method, self.dtype, self.device)
        self.inputs = graph.inputs()
        self.outputs = graph.outputs()

    def _initial_recurrent_values(self, batch: int, states: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
        """Values recurrent edges deliver at step 0: a stateless source (synapses only) gives its
        response to a zero input (its bias); a neuron or delay gives zeros."""
        import torch

        prev: Dict[str, Any] = {}
        for s in {s for s, _ in self.back}:
            op = self.ops[s]
            if op.neuron is None and op.threshold is None and not op.delay_steps and op.syn:
                fw = [p for p in self.preds[s] if (p, s) not in self.back]
                shape = (batch,) + tuple(self.graph.shapes[fw[0]] if fw else self.graph.shapes[s])
                prev[s], _ = op.step(torch.zeros(shape, dtype=self.dtype, device=self.device), states[s])
        return prev

    def run(self, x: np.ndarray, record: bool = False, progress: bool = False) -> Result:
        """Simulate dense input ``x`` of shape (batch, T, *input_shape); return a :class:`Result`."""
        import torch
        from tqdm.auto import tqdm

        xt = torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)
        B, T = xt.shape[0], xt.shape[1]
        states = {n: op.init_state(B, self.dtype, self.device) for n, op in self.ops.items()}
        prev = self._initial_recurrent_values(B, states)
        outs: List[Any] = []
        counts = {n: torch.zeros(B, dtype=self.dtype, device=self.device) for n, op in self.ops.items() if op.spiking}
        synops = {n: torch.zeros(B, dtype=self.dtype, device=self.device) for n, op in self.ops.items() if op.syn}
        rec: Dict[str, Dict[str, List[Any]]] = {}
        back_src = {s for s, _ in self.back}
        with torch.no_grad():
            for t in tqdm(range(T), disable=not progress, desc="simulate", unit="step"):
                vals: Dict[str, Any] = {}
                for n in self.order:
                    if n in self.inputs:
                        vals[n] = xt[:, t]
                        continue
                    acc = None
                    for p in self.preds[n]:
                        v = prev.get(p) if (p, n) in self.back else vals[p]
                        if v is None:
                            v = torch.zeros((B,) + tuple(self.graph.shapes[p]), dtype=self.dtype, device=self.device)
                        acc = v if acc is None else acc + v
                    out, so = self.ops[n].step(acc, states[n])
                    vals[n] = out
                    if n in counts:
                        counts[n] += out.reshape(B, -1).sum(1)
                    if n in synops:
                        synops[n] += so
                    if record and self.ops[n].neuron is not None:
                        r = rec.setdefault(n, {k: [] for k in (["spikes"] if self.ops[n].spiking else [])
                                               + sorted(states[n])})
                        for k in r:
                            r[k].append((out if k == "spikes" else states[n][k]).cpu().numpy())
                prev = {s: vals[s] for s in back_src}
                outs.append(vals[self.outputs[0]].cpu().numpy())
        output = np.stack(outs, axis=1)
        return Result(
            output=output,
            states={n: {k: np.stack(v, axis=1) for k, v in r.items()} for n, r in rec.items()},
            spike_counts={n: c.cpu().numpy() for n, c in counts.items()},
            synops={n: s.cpu().numpy() for n, s in synops.items()},
            neurons={n: op.n_neurons for n, op in self.ops.items() if op.spiking},
            meta={"backend": "sim", "device": str(self.device)})
