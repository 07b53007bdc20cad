"""Layer -> core mapping for Speck: memory needs, a bipartite matching, readable diagnostics, a core map plot.

The matching is the same Edmonds-Karp max-flow as sinabs 3.1.3 (``mapping.py``) over the
same graph in the same edge order, so both pick the same cores (checked by
``tests/test_speck_oracle.py``). Where sinabs says only "No valid mapping found" (upstream
issue #299), :func:`mapping_violations` says which layer, which memory, how much it needs,
every core's limit, and a change that would fit.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from snnc.errors import RuleViolationError, Violation
from snnc.targets.speck import chip
from snnc.targets.speck.network import SpeckLayer, SpeckNetwork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryNeed:
    """Entries a layer needs in each core memory."""

    kernel: int
    neuron: int
    bias: int

    def get(self, kind: str) -> int:
        """Need of memory ``kind`` ('kernel', 'neuron' or 'bias')."""
        return int(getattr(self, kind))


def layer_memory_need(layer: SpeckLayer) -> MemoryNeed:
    """Kernel, neuron and bias memory entries ``layer`` needs (sinabs ``memory_summary``)."""
    f, c, kh, kw = layer.weights.shape
    _, oh, ow = layer.neuron_shape
    return MemoryNeed(kernel=chip.kernel_memory_entries(f, c, kh, kw),
                      neuron=chip.neuron_memory_entries(f, oh, ow),
                      bias=chip.bias_memory_entries(f, bool((layer.biases != 0).any())))


def fitting_cores(need: MemoryNeed) -> list[int]:
    """Cores (ascending) whose three memories all hold ``need``."""
    return [core for core in range(chip.N_CORES)
            if all(need.get(k) <= chip.core_limit(core, k) for k in chip.MEMORY_KINDS)]


def max_matching(candidates: Sequence[Sequence[int]], n_cores: int = chip.N_CORES
                 ) -> list[Optional[int]]:
    """Edmonds-Karp bipartite matching of layers to cores, edge order as sinabs; None = unmatched."""
    n_layers = len(candidates)
    sink = n_layers + n_cores + 1
    to: list[int] = []
    frm: list[int] = []
    cap: list[int] = []
    flow: list[int] = []
    rev: list[int] = []
    adj: list[list[int]] = [[] for _ in range(sink + 1)]

    def add(s: int, t: int) -> None:
        """Add edge s->t (capacity 1) and its residual t->s (capacity 0)."""
        for a, b, c in ((s, t, 1), (t, s, 0)):
            frm.append(a)
            to.append(b)
            cap.append(c)
            flow.append(0)
        e = len(to) - 2
        rev.extend([e + 1, e])
        adj[s].append(e)
        adj[t].append(e + 1)

    for i in range(n_layers):
        add(0, i + 1)
    for i, cores in enumerate(candidates):
        for core in cores:
            add(i + 1, n_layers + 1 + core)
    for core in range(n_cores):
        add(n_layers + 1 + core, sink)

    while True:
        pred: list[Optional[int]] = [None] * (sink + 1)
        queue = deque([0])
        while queue:
            cur = queue.popleft()
            for e in adj[cur]:
                t = to[e]
                if pred[t] is None and t != 0 and cap[e] > flow[e]:
                    pred[t] = e
                    queue.append(t)
        if pred[sink] is None:
            break
        e_opt = pred[sink]
        while e_opt is not None:
            flow[e_opt] += 1
            flow[rev[e_opt]] -= 1
            e_opt = pred[frm[e_opt]]

    result: list[Optional[int]] = []
    for i in range(n_layers):
        core_of = [to[e] - n_layers - 1 for e in adj[i + 1] if cap[e] == 1 and flow[e] == 1]
        result.append(core_of[0] if core_of else None)
    return result


def _formula(layer: SpeckLayer, kind: str) -> str:
    """The memory formula of ``kind`` with the layer's numbers filled in."""
    f, c, kh, kw = layer.weights.shape
    _, oh, ow = layer.neuron_shape
    if kind == "kernel":
        return (f"c={c} * 2**(ceil(log2({kh}*{kw}))={chip.ceil_log2(kh * kw)} + "
                f"ceil(log2(f={f}))={chip.ceil_log2(f)})")
    if kind == "neuron":
        return (f"f={f} * 2**(ceil(log2(H={oh}))={chip.ceil_log2(oh)} + "
                f"ceil(log2(W={ow}))={chip.ceil_log2(ow)})")
    return f"one entry per output channel, f={f}"


def core_limits_text(kind: str) -> str:
    """Every core's limit of memory ``kind``, grouped: '16384 (cores 0,1,2,7,8), ...'."""
    groups: dict[int, list[int]] = {}
    for core in range(chip.N_CORES):
        groups.setdefault(chip.core_limit(core, kind), []).append(core)
    return ", ".join(f"{lim} (cores {','.join(map(str, cores))})"
                     for lim, cores in sorted(groups.items()))


def _largest_pow2_at_most(x: float) -> int:
    """Largest power of two <= x (0 if x < 1)."""
    return 0 if x < 1 else 1 << (int(x).bit_length() - 1)


def fit_hint(layer: SpeckLayer, kind: str, limit: int) -> str:
    """A concrete change that makes ``layer``'s ``kind`` memory need fit in ``limit`` entries."""
    f, c, kh, kw = layer.weights.shape
    _, h, w = layer.input_shape
    _, oh, ow = layer.neuron_shape
    options: list[str] = []
    if kind == "kernel":
        k_bits = chip.ceil_log2(kh * kw)
        f_max = _largest_pow2_at_most(limit / (c * (1 << k_bits)))
        if f_max >= 1:
            options.append(f"output channels {f} -> <= {f_max}")
        c_max = limit // (1 << (k_bits + chip.ceil_log2(f)))
        if c_max >= 1:
            options.append(f"input channels {c} -> <= {c_max}")
        for k in range(min(kh, kw) - 1, 0, -1):
            if chip.kernel_memory_entries(f, c, k, k) <= limit:
                options.append(f"kernel {kh}x{kw} -> {k}x{k}")
                break
    elif kind == "neuron":
        f_max = limit // (1 << (chip.ceil_log2(oh) + chip.ceil_log2(ow)))
        if f_max >= 1:
            options.append(f"output channels {f} -> <= {f_max}")
        for s in chip.ALLOWED_STRIDES:
            if s <= max(layer.stride):
                continue
            nh = chip.conv_output_size(h, kh, s, layer.padding[0])
            nw = chip.conv_output_size(w, kw, s, layer.padding[1])
            if nh >= 1 and nw >= 1 and chip.neuron_memory_entries(f, nh, nw) <= limit:
                options.append(f"stride {layer.stride[0]} -> {s} (output {nh}x{nw})")
                break
        for p in chip.ALLOWED_POOLING[1:]:
            nh = chip.conv_output_size(h // p, kh, layer.stride[0], layer.padding[0])
            nw = chip.conv_output_size(w // p, kw, layer.stride[1], layer.padding[1])
            if nh >= 1 and nw >= 1 and chip.neuron_memory_entries(f, nh, nw) <= limit:
                options.append(f"sum pooling {p}x{p} on the input of this layer "
                               f"(output {nh}x{nw})")
                break
    else:
        options.append(f"output channels {f} -> <= {limit}")
    if not options:
        return "no single change fits; split the layer"
    return "to fit " + str(limit) + " entries: " + " or ".join(options)


def _layer_memory_violations(layer: SpeckLayer, need: MemoryNeed) -> list[Violation]:
    """Violations for a layer that fits no core at all."""
    out: list[Violation] = []
    for kind in chip.MEMORY_KINDS:
        biggest = chip.largest_memory(kind)
        if need.get(kind) > biggest:
            out.append(Violation(
                rule=f"speck.memory.{kind}", node=layer.name,
                found=f"{kind} memory need {need.get(kind)} entries = {_formula(layer, kind)}",
                limit=f"per-core {kind} memory: {core_limits_text(kind)}",
                hint=fit_hint(layer, kind, biggest)))
    if not out:
        # each memory alone fits some core, but no core holds all three
        per_kind = {k: [c for c in range(chip.N_CORES) if need.get(k) <= chip.core_limit(c, k)]
                    for k in chip.MEMORY_KINDS}
        found = "; ".join(f"{k} {need.get(k)} entries (fits cores {per_kind[k]})"
                          for k in chip.MEMORY_KINDS)
        limits = "; ".join(f"{k}: {core_limits_text(k)}" for k in ("kernel", "neuron"))
        hints = []
        for core in range(chip.N_CORES):
            over = [k for k in chip.MEMORY_KINDS if need.get(k) > chip.core_limit(core, k)]
            if len(over) == 1:
                hints.append(f"core {core}: " + fit_hint(layer, over[0], chip.core_limit(core, over[0])))
        out.append(Violation(rule="speck.memory.no_core", node=layer.name,
                             found=f"no core holds kernel and neuron memory together: {found}",
                             limit=limits, hint=hints[0] if hints else "reduce the layer"))
    return out


def mapping_violations(layers: Sequence[SpeckLayer]) -> tuple[Optional[list[int]], list[Violation]]:
    """Try to map ``layers`` to cores; return (core per layer, []) or (None, violations saying why not)."""
    n = len(layers)
    if n > chip.N_CORES:
        return None, [Violation(rule="speck.cores.count", node=",".join(l.name for l in layers),
                                found=f"{n} layers", limit=f"{chip.N_CORES} cores",
                                hint="merge or remove layers: every conv+IAF layer takes one core")]
    needs = [layer_memory_need(lyr) for lyr in layers]
    cands = [fitting_cores(nd) for nd in needs]
    violations: list[Violation] = []
    for lyr, nd, cs in zip(layers, needs, cands):
        if not cs:
            violations.extend(_layer_memory_violations(lyr, nd))
    if violations:
        return None, violations
    match = max_matching(cands)
    if all(m is not None for m in match):
        return [int(m) for m in match], []  # type: ignore[arg-type]
    # Hall's condition fails: the layers reachable by alternating paths from an unmatched
    # layer compete for fewer cores than there are of them.
    owner = {m: i for i, m in enumerate(match) if m is not None}
    for start in [i for i, m in enumerate(match) if m is None]:
        seen_layers, seen_cores = {start}, set()
        queue = deque([start])
        while queue:
            i = queue.popleft()
            for core in cands[i]:
                if core not in seen_cores:
                    seen_cores.add(core)
                    j = owner.get(core)
                    if j is not None and j not in seen_layers:
                        seen_layers.add(j)
                        queue.append(j)
        names = [layers[i].name for i in sorted(seen_layers)]
        details = []
        hint = ""
        for i in sorted(seen_layers):
            lyr, nd = layers[i], needs[i]
            details.append(f"'{lyr.name}' (kernel {nd.kernel}, neuron {nd.neuron}) fits cores {cands[i]}")
            for core in range(chip.N_CORES):
                if core in seen_cores or hint:
                    continue
                over = [k for k in chip.MEMORY_KINDS if nd.get(k) > chip.core_limit(core, k)]
                if len(over) == 1:
                    hint = (f"make '{lyr.name}' fit core {core}: "
                            + fit_hint(lyr, over[0], chip.core_limit(core, over[0])))
        violations.append(Violation(
            rule="speck.memory.cores_exhausted", node=", ".join(names),
            found=f"{len(seen_layers)} layers compete for cores {sorted(seen_cores)}: "
                  + "; ".join(details),
            limit=f"{len(seen_cores)} such cores; kernel {core_limits_text('kernel')}; "
                  f"neuron {core_limits_text('neuron')}",
            hint=hint or "reduce one of these layers"))
        break
    return None, violations


def assign_cores(net: SpeckNetwork, layer_to_core: Optional[dict[str, int]] = None) -> list[int]:
    """Set ``layer.core`` for every layer (automatic matching or the given map); RuleViolationError if impossible."""
    if layer_to_core is not None:
        cores = [int(layer_to_core[lyr.name]) for lyr in net.layers]
        bad = []
        for lyr, core in zip(net.layers, cores):
            need = layer_memory_need(lyr)
            if not 0 <= core < chip.N_CORES:
                bad.append(Violation("speck.cores.index", lyr.name, core, f"0..{chip.N_CORES - 1}"))
                continue
            for kind in chip.MEMORY_KINDS:
                if need.get(kind) > chip.core_limit(core, kind):
                    bad.append(Violation(f"speck.memory.{kind}", lyr.name,
                                         f"{need.get(kind)} entries = {_formula(lyr, kind)} on core {core}",
                                         f"{chip.core_limit(core, kind)} (core {core}); all cores: "
                                         f"{core_limits_text(kind)}",
                                         fit_hint(lyr, kind, chip.core_limit(core, kind))))
        if len(set(cores)) != len(cores):
            bad.append(Violation("speck.cores.shared", ",".join(l.name for l in net.layers),
                                 cores, "one layer per core"))
        if bad:
            raise RuleViolationError(bad, target="speck")
    else:
        mapped, violations = mapping_violations(net.layers)
        if mapped is None:
            raise RuleViolationError(violations, target="speck")
        cores = mapped
    for lyr, core in zip(net.layers, cores):
        lyr.core = int(core)
    log.debug("speck mapping: %s", {l.name: l.core for l in net.layers})
    return cores


def draw_core_map(net: SpeckNetwork, path: str | Path) -> Path:
    """Draw which layer sits on which core and each memory's use vs limit; write a PNG to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    on_core = {lyr.core: lyr for lyr in net.layers if lyr.core is not None}
    fig = Figure(figsize=(10, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colors = {"kernel": "#4477aa", "neuron": "#228833", "bias": "#ccbb44"}
    width = 0.26
    for core in range(chip.N_CORES):
        lyr = on_core.get(core)
        need = layer_memory_need(lyr) if lyr is not None else MemoryNeed(0, 0, 0)
        for j, kind in enumerate(chip.MEMORY_KINDS):
            limit = chip.core_limit(core, kind)
            frac = need.get(kind) / limit
            x = core + (j - 1) * width
            ax.bar(x, 1.0, width * 0.9, color="#eeeeee", edgecolor="#999999")
            ax.bar(x, min(frac, 1.0), width * 0.9, color=colors[kind],
                   label=kind if core == 0 else None)
            ax.text(x, 1.02, f"{need.get(kind)}\n/{limit}", ha="center", va="bottom", fontsize=5)
        ax.text(core, -0.12, lyr.name if lyr is not None else "(free)", ha="center", va="top",
                fontsize=7, rotation=0)
    ax.set_xticks(range(chip.N_CORES))
    ax.set_xticklabels([f"core {c}" for c in range(chip.N_CORES)], fontsize=7)
    ax.tick_params(axis="x", pad=18)
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("memory used / core limit")
    ax.set_title("Speck core map (entries used / limit)")
    ax.legend(loc="upper right", fontsize=7, ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path), dpi=120)
    return path
