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
#: Largest value of one node over a chunk of steps (bytes); see :meth:`GraphSimulator.chunk_steps`.
CHUNK_BYTES = 4 * 2**20


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
    """Return ``(f, fanout)``: the node's batched function and the per-input fan-out (float64, or None)."""
    import torch
    import torch.nn.functional as F

    if isinstance(node, Affine):
        w, b = _tensor(node.weight, dtype, device), _tensor(node.bias, dtype, device)
        return (lambda x: F.linear(x, w, b)), (w != 0).sum(0).to(torch.float64)
    if isinstance(node, Conv2d):
        w, b = _tensor(node.weight, dtype, device), _tensor(node.bias, dtype, device)
        kw = dict(stride=node.stride, padding=node.padding, dilation=node.dilation, groups=node.groups)
        ones = torch.ones((1,) + tuple(out_shape), dtype=dtype, device=device)
        fan = F.conv_transpose2d(ones, (w != 0).to(dtype), stride=node.stride, padding=node.padding,
                                 dilation=node.dilation, groups=node.groups,
                                 output_padding=_out_pad(node, in_shape, out_shape))[0]
        return (lambda x: F.conv2d(x, w, b, **kw)), fan.to(torch.float64)
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
        self.name, self.node, self.out_shape, self.device = name, node, out_shape, device
        self.syn: List[Tuple[SynFn, Optional[Any]]] = []
        self.syn_in_shapes: List[Tuple[int, ...]] = []  # the input shape of each synapse
        self.neuron: Optional[TorchNeuron] = None
        self.threshold: Optional[Any] = None
        self.delay_steps = 0
        neuron_node: Optional[Node] = None
        if isinstance(node, Layer):
            s = in_shape
            for sn in node.synapses:
                o = sn.infer_shape(s)
                self.syn.append(synapse_fn(sn, s, o, dtype, device))
                self.syn_in_shapes.append(tuple(s))
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
            self.syn_in_shapes.append(tuple(in_shape))
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
            st["buf"] = torch.zeros((self.delay_steps, batch) + tuple(self.out_shape), dtype=dtype, device=device)
        for j, ((_, fan), shp) in enumerate(zip(self.syn, self.syn_in_shapes)):
            if fan is not None:  # how often each input element of synapse j was non-zero
                st[f"nz{j}"] = torch.zeros((batch,) + shp, dtype=torch.int32, device=device)
        return st

    def run(self, x: Any, st: Dict[str, Any], record: bool = False) -> Tuple[Any, Dict[str, List[Any]]]:
        """Advance over the steps of ``x`` (steps, batch, *in_shape); return ``(output, recorded)``.

        The synapses (stateless) run on all steps at once; the neuron steps through them.
        ``recorded``: the states after each step (``v``, ``i``) when ``record``. Each synapse
        with a fan-out counts its non-zero inputs per input element in ``st`` (see :meth:`synops`).
        """
        import torch

        T, B = int(x.shape[0]), int(x.shape[1])
        for j, (f, fan) in enumerate(self.syn):
            if fan is not None:
                st[f"nz{j}"] += (x[0] != 0) if T == 1 else (x != 0).sum(0, dtype=torch.int32)
            y = f(x.reshape((T * B,) + tuple(x.shape[2:])))
            x = y.reshape((T, B) + tuple(y.shape[1:]))
        if self.delay_steps:
            both = torch.cat([st["buf"], x], 0)
            st["buf"] = both[both.shape[0] - self.delay_steps:]
            x = both[:T]
        recorded: Dict[str, List[Any]] = {}
        if self.threshold is not None:
            x = (x > self.threshold).to(x.dtype)
        elif self.neuron is not None:
            outs = []
            recorded = {k: [] for k in sorted(st) if k in ("v", "i")} if record else {}
            spiking = self.neuron.v_threshold is not None
            for t in range(T):
                z, _, _ = self.neuron.step_inplace(x[t], st.get("i"), st["v"])  # st's v and i change in place
                outs.append(z if spiking else z.clone())
                for k, r in recorded.items():
                    r.append(st[k].clone())
            x = outs[0].unsqueeze(0) if T == 1 else torch.stack(outs, 0)
        return x, recorded

    def synops(self, st: Dict[str, Any], batch: int) -> Any:
        """Return the effective synaptic operations per sample (float64): each input element's non-zero
        count times the number of non-zero weights it drives (NeuroBench's effective accumulates)."""
        import torch

        return sum(((st[f"nz{j}"] * fan).reshape(batch, -1).sum(1) for j, (_, fan) in enumerate(self.syn)
                    if fan is not None), torch.zeros(batch, dtype=torch.float64, device=self.device))


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
                shape = (1, batch) + tuple(self.graph.shapes[fw[0]] if fw else self.graph.shapes[s])
                prev[s], _ = op.run(torch.zeros(shape, dtype=self.dtype, device=self.device), states[s])
        return prev

    def chunk_steps(self, batch: int, steps: int) -> int:
        """Steps run per pass through the graph: 1 with recurrent edges, else as many as keep the
        largest node value under :data:`CHUNK_BYTES`."""
        if self.back:
            return 1
        widest = max(int(np.prod(s)) for s in self.graph.shapes.values())
        per_step = batch * widest * self.dtype.itemsize
        return int(max(1, min(steps, CHUNK_BYTES // max(per_step, 1))))

    def run(self, x: np.ndarray, record: bool = False, progress: bool = False) -> Result:
        """Simulate dense input ``x`` of shape (batch, T, *input_shape); return a :class:`Result`.

        A feed-forward graph runs node by node over chunks of steps (each node's synapses on all
        the chunk's steps at once, then its neurons step through them); a graph with recurrent
        edges runs step by step. Both give the same spikes on the tested networks; float states may differ
        in the last bit, as they do between batch sizes (torch's kernels round by the rows they get).
        """
        import torch
        from tqdm.auto import tqdm

        xt = torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device).transpose(0, 1)  # time-major
        T, B = xt.shape[0], xt.shape[1]
        states = {n: op.init_state(B, self.dtype, self.device) for n, op in self.ops.items()}
        prev = self._initial_recurrent_values(B, states)
        outs: List[np.ndarray] = []
        counts = {n: torch.zeros((B,) + tuple(op.out_shape), dtype=self.dtype, device=self.device)
                  for n, op in self.ops.items() if op.spiking}  # spikes per neuron so far
        rec: Dict[str, Dict[str, List[np.ndarray]]] = {}
        back_src = {s for s, _ in self.back}
        chunk = self.chunk_steps(B, T)
        with torch.no_grad():
            for t0 in tqdm(range(0, T, chunk), disable=not progress, desc="simulate", unit="chunk"):
                xc = xt[t0:t0 + chunk].contiguous()
                tc = int(xc.shape[0])
                vals: Dict[str, Any] = {}
                for n in self.order:
                    if n in self.inputs:
                        vals[n] = xc
                        continue
                    acc = None
                    for p in self.preds[n]:
                        v = prev.get(p) if (p, n) in self.back else vals[p]
                        if v is None:
                            v = torch.zeros((tc, B) + tuple(self.graph.shapes[p]), dtype=self.dtype,
                                            device=self.device)
                        acc = v if acc is None else acc + v
                    op = self.ops[n]
                    out, recorded = op.run(acc, states[n], record and op.neuron is not None)
                    vals[n] = out
                    if op.spiking:
                        counts[n] += out[0] if tc == 1 else out.sum(0)
                    if record and op.neuron is not None:
                        r = rec.setdefault(n, {k: [] for k in (["spikes"] if op.spiking else []) + sorted(recorded)})
                        for k in r:
                            r[k].append((out if k == "spikes" else torch.stack(recorded[k], 0)).cpu().numpy())
                prev = {s: vals[s] for s in back_src}
                outs.append(vals[self.outputs[0]].cpu().numpy())
        output = np.ascontiguousarray(np.concatenate(outs, axis=0).swapaxes(0, 1))
        return Result(
            output=output,
            states={n: {k: np.ascontiguousarray(np.concatenate(v, axis=0).swapaxes(0, 1)) for k, v in r.items()}
                    for n, r in rec.items()},
            spike_counts={n: c.reshape(B, -1).sum(1, dtype=torch.float64).cpu().numpy().astype(output.dtype)
                          for n, c in counts.items()},
            synops={n: op.synops(states[n], B).cpu().numpy().astype(output.dtype)
                    for n, op in self.ops.items() if op.syn},
            neurons={n: op.n_neurons for n, op in self.ops.items() if op.spiking},
            meta={"backend": "sim", "device": str(self.device), "chunk_steps": chunk})
