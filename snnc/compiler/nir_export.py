"""Export an internal :class:`Graph` (before or after fusion) to a ``nir.NIRGraph`` / ``.nir`` file."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from snnc.compiler import graph as g
from snnc.errors import UnsupportedError


def _conv(n: g.Conv2d, in_shape: Tuple[int, ...]) -> Any:
    import nir

    return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=n.weight, stride=n.stride, padding=n.padding,
                      dilation=n.dilation, groups=n.groups, bias=n.bias)


def _flatten(n: g.Flatten, in_shape: Tuple[int, ...]) -> Any:
    import nir

    return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=n.start_dim, end_dim=n.end_dim)


def _to_nir_table() -> Dict[str, Callable[[Any, Tuple[int, ...]], Any]]:
    import nir

    def arr(n: Any, *names: str) -> Dict[str, np.ndarray]:
        """Neuron parameters broadcast to one common shape (NIR requires it; scalars become (1,))."""
        vals = {k: np.asarray(getattr(n, k), dtype=np.float64) for k in names}
        shape = np.broadcast_shapes((1,), *(v.shape for v in vals.values()))
        return {k: np.array(np.broadcast_to(v, shape)) for k, v in vals.items()}

    return {
        "Input": lambda n, s: nir.Input(input_type={"input": np.array(n.shape)}),
        "Output": lambda n, s: nir.Output(output_type={"output": np.array(s)}),
        "Affine": lambda n, s: nir.Affine(weight=n.weight, bias=n.bias),
        "Linear": lambda n, s: nir.Linear(weight=n.weight),
        "Scale": lambda n, s: nir.Scale(scale=n.scale),
        "Conv2d": _conv,
        "SumPool2d": lambda n, s: nir.SumPool2d(kernel_size=np.array(n.kernel_size), stride=np.array(n.stride),
                                                padding=np.array(n.padding)),
        "AvgPool2d": lambda n, s: nir.AvgPool2d(kernel_size=np.array(n.kernel_size), stride=np.array(n.stride),
                                                padding=np.array(n.padding)),
        "Flatten": _flatten,
        "Delay": lambda n, s: nir.Delay(delay=n.delay),
        "Threshold": lambda n, s: nir.Threshold(threshold=n.threshold),
        "I": lambda n, s: nir.I(**arr(n, "r")),
        "IF": lambda n, s: nir.IF(**arr(n, "r", "v_threshold", "v_reset")),
        "LI": lambda n, s: nir.LI(**arr(n, "tau", "r", "v_leak")),
        "LIF": lambda n, s: nir.LIF(**arr(n, "tau", "r", "v_leak", "v_threshold", "v_reset")),
        "CubaLI": lambda n, s: nir.CubaLI(**arr(n, "tau_syn", "tau_mem", "r", "v_leak", "w_in")),
        "CubaLIF": lambda n, s: nir.CubaLIF(**arr(n, "tau_syn", "tau_mem", "r", "v_leak", "v_threshold",
                                                  "v_reset", "w_in")),
    }


def to_nir(graph: g.Graph) -> Any:
    """Return a ``nir.NIRGraph`` equal to ``graph`` (fused layers are expanded; BatchNorm must be folded)."""
    import nir

    from snnc.compiler.passes.shapes import infer_shapes

    if not graph.shapes:
        graph = infer_shapes(graph)
    table = _to_nir_table()
    nodes: Dict[str, Any] = {}
    edges: List[Tuple[str, str]] = []
    heads: Dict[str, str] = {}
    tails: Dict[str, str] = {}
    order = graph.topological_order()
    in_shape: Dict[str, Tuple[int, ...]] = {}
    for s, d in graph.edges:
        in_shape.setdefault(d, graph.shapes[s])
    for name in order:
        node = graph.nodes[name]
        parts = list(node.synapses) + ([node.neuron] if node.neuron is not None else []) \
            if isinstance(node, g.Layer) else [node]
        shape = in_shape.get(name, graph.shapes[name])
        names = []
        for i, part in enumerate(parts):
            pname = name if len(parts) == 1 else f"{name}.{i}_{part.kind.lower()}"
            if getattr(part, "reset_mode", "to_v_reset") != "to_v_reset" or \
                    int(getattr(part, "max_spikes_per_step", 1)) != 1 or getattr(part, "v_min", None) is not None:
                raise UnsupportedError(
                    f"{part.kind} resets by {'subtraction' if part.reset_mode == 'subtract' else 'reset to v_reset'}"
                    f" with up to {part.max_spikes_per_step} spike(s) per step"
                    + (f" and a floor v_min={part.v_min:g}" if part.v_min is not None else "")
                    + ": NIR can only store reset to v_reset with one spike per step and no floor", node=name,
                    hint="keep the snnc artifact (cpu target) or re-import the source file with its --framework")
            fn = table.get(part.kind)
            if fn is None:
                raise UnsupportedError(f"node kind '{part.kind}' has no NIR equivalent", node=name,
                                       hint="run the compiler's folding passes first (BatchNorm folds into weights)")
            out_shape = part.infer_shape(shape) if not isinstance(part, g.Input) else tuple(part.shape)
            nodes[pname] = fn(part, shape if not isinstance(part, g.Output) else out_shape)
            names.append(pname)
            shape = out_shape
        for a, b in zip(names, names[1:]):
            edges.append((a, b))
        heads[name], tails[name] = names[0], names[-1]
    for s, d in graph.edges:
        edges.append((tails[s], heads[d]))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def write_nir(graph: g.Graph, path: str) -> str:
    """Write ``graph`` as a ``.nir`` file; return the path."""
    import nir

    nir.write(path, to_nir(graph))
    return path
