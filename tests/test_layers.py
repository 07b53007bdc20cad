"""The package's layers import one way: read from the ``import`` statements of every file in ``snnc/``.

Every import counts, also one inside a function. ``from pkg import name`` is an import of the
module ``pkg.name`` when that is a module, else of ``pkg``; the implicit import of a parent
package (Python runs ``pkg/__init__.py`` first) is not an arrow.

The layers, bottom to top, and the arrows allowed between them are listed once, here.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set, Tuple

PKG = Path(__file__).resolve().parents[1] / "snnc"

#: Layers, bottom to top: (name, module prefixes). A module belongs to the layer of its longest prefix.
LAYERS: List[Tuple[str, Tuple[str, ...]]] = [
    ("base", ("snnc.errors", "snnc.version")),
    ("util", ("snnc.files", "snnc.fixedpoint", "snnc.dynamics", "snnc.parallel")),
    ("formats", ("snnc.formats", "snnc.artifact")),
    ("compiler", ("snnc.compiler",)),
    ("targets", ("snnc.targets",)),
    ("runtime", ("snnc.runtime",)),
    ("models", ("snnc.models",)),
    ("app", ("snnc", "snnc.cli", "snnc.cli_export")),
]

#: The allowed arrows: layer -> the layers it may import (besides itself).
ALLOWED: Dict[str, Set[str]] = {
    "base": set(),
    "util": {"base"},
    "formats": {"base", "util"},
    "compiler": {"base", "util"},
    "targets": {"base", "util", "formats", "compiler"},
    "runtime": {"base", "util", "formats", "compiler", "targets"},
    "models": {"base", "util", "formats", "compiler", "targets", "runtime"},
    "app": {"base", "util", "formats", "compiler", "targets", "runtime", "models"},
}

#: What any module may import of ``snnc.targets`` besides its own target folder: a target folder is
#: imported by nothing outside it (the registry finds it), so adding a target is adding a folder.
TARGETS_SHARED = ("snnc.targets", "snnc.targets.base", "snnc.targets.samna")


def module_name(path: Path) -> str:
    """Return the dotted module name of a file under ``snnc/``."""
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> Dict[str, Path]:
    """Return every module of the package by name."""
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports() -> Dict[str, Set[Tuple[str, int]]]:
    """Return, per module, the snnc modules it imports (with the line of the statement)."""
    mods = modules()
    out: Dict[str, Set[Tuple[str, int]]] = defaultdict(set)
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for t in targets:
                if t == "snnc" or t.startswith("snnc."):
                    while t not in mods:  # "snnc.x.y" of "import snnc.x.y.z" style names
                        t = t.rpartition(".")[0]
                    if t != name:
                        out[name].add((t, node.lineno))
    return out


def layer_of(module: str) -> str:
    """Return the layer of ``module`` (longest matching prefix)."""
    best, best_len = "", -1
    for layer, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = layer, len(p)
    assert best, f"{module} belongs to no layer: add it to LAYERS"
    return best


def test_every_module_has_a_layer_and_the_arrows_are_a_strict_order() -> None:
    for m in modules():
        layer_of(m)
    names = [n for n, _ in LAYERS]
    assert set(ALLOWED) == set(names)
    for i, n in enumerate(names):
        assert ALLOWED[n] <= set(names[:i]), f"{n} may only import layers below it"


def test_imports_follow_the_allowed_arrows() -> None:
    bad = []
    for mod, targets in sorted(imports().items()):
        a = layer_of(mod)
        for t, line in sorted(targets):
            b = layer_of(t)
            if a != b and b not in ALLOWED[a]:
                bad.append(f"{mod}:{line} imports {t} ({a} -> {b})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def _target_folder(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:3]) if len(parts) >= 3 and parts[1] == "targets" and module not in TARGETS_SHARED else ""


def test_only_a_target_folder_imports_itself() -> None:
    bad = []
    for mod, targets in sorted(imports().items()):
        own = _target_folder(mod)
        for t, line in sorted(targets):
            other = _target_folder(t)
            if other and other != own:
                bad.append(f"{mod}:{line} imports {t}")
    assert not bad, "target folders must be self-contained:\n" + "\n".join(bad)


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Return the strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    graph = {m: {t for t, _ in ts} for m, ts in imports().items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_reader_sees_real_arrows() -> None:
    """The reader finds known imports (so an empty result cannot pass the tests above)."""
    got = imports()
    assert any(t == "snnc.errors" for t, _ in got["snnc.files"])
    assert any(t == "snnc.compiler.graph" for t, _ in got["snnc.targets.base"])
    assert sum(len(v) for v in got.values()) > 300


#: The longest a module in snnc/ may be (issue 15: one job per file).
MAX_LINES = 600


def test_no_module_is_longer_than_the_limit() -> None:
    """Every file in ``snnc/`` has at most ``MAX_LINES`` lines (the longest is named on failure)."""
    lengths = {str(p.relative_to(PKG.parent)): len(p.read_text(encoding="utf-8").splitlines())
               for p in PKG.rglob("*.py")}
    assert len(lengths) > 50
    over = {p: n for p, n in lengths.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"
