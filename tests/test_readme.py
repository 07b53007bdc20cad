"""The README tells the truth: its two commands, CI calling the test one, the generated tables.

Every accuracy figure of the README is rendered from results/zoo.json (scripts/evaluate_zoo.py) and
the deployability table by scripts/deployability.py, the speed section by benchmarks/speed_report.py
(checked current in tests/test_speed_report.py); the zoo rendering is checked current here and shown to
change when the results file does, and outside the generated blocks no accuracy or speed figure is typed.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# a decimal percentage ("90.95 %"), a speed-up ("712x"), a rate ("736k ... /s") or a duration ("0.53 s")
FIGURE = re.compile(r"\d+\.\d+\s?%|\b\d[\d,]*(\.\d+)?\s?x\b|\d+(\.\d+)?k?\s+(sample-steps|samples)/s|\b\d+\.\d+\s?s\b")


def _evaluate_zoo():
    spec = importlib.util.spec_from_file_location("evaluate_zoo", REPO / "scripts" / "evaluate_zoo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_two_commands_and_ci() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci and "SNNC_STRICT=1" in ci
    makefile = (REPO / "Makefile").read_text()
    assert "demo: setup" in makefile and "test: setup" in makefile


def test_deployability_table_is_current() -> None:
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "deployability.py"), "--check"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "README's deployability table is stale: run scripts/deployability.py\n" + r.stderr


def test_zoo_tables_are_rendered_from_the_results_file() -> None:
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate_zoo.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "README's zoo tables are stale: run scripts/evaluate_zoo.py --readme\n" + r.stderr


def test_a_changed_results_file_changes_the_readme() -> None:
    ez = _evaluate_zoo()
    readme = (REPO / "README.md").read_text()
    res = json.loads((REPO / "results" / "zoo.json").read_text())
    assert ez.render_readme(readme, res) == readme
    for path in (("float", "accuracy"), ("deployed", "accuracy"), ("compiled_cpu", "accuracy"), ("float", "mflops")):
        for name in res["models"]:
            changed = copy.deepcopy(res)
            changed["models"][name][path[0]][path[1]] -= 0.01
            assert ez.render_readme(readme, changed) != readme, (name, path)
    changed = copy.deepcopy(res)
    changed["papers"]["skipsnn"]["accuracy"] = 0.9
    assert ez.render_readme(readme, changed) != readme


def _outside_generated(text: str) -> str:
    for start, end in [("<!-- zoo-table:start -->", "<!-- zoo-table:end -->"),
                       ("<!-- zoo-papers:start -->", "<!-- zoo-papers:end -->"),
                       ("<!-- zoo-finetune:start -->", "<!-- zoo-finetune:end -->"),
                       ("<!-- deployability:start -->", "<!-- deployability:end -->"),
                       ("<!-- claims:start -->", "<!-- claims:end -->"),  # scripts/paper_claims.py
                       ("<!-- speed:start -->", "<!-- speed:end -->")]:
        head, rest = text.split(start, 1)
        text = head + rest.split(end, 1)[1]
    return text


def test_no_typed_in_figures_in_the_readme_or_scripts() -> None:
    readme = (REPO / "README.md").read_text()
    found = [m.group(0) for m in FIGURE.finditer(_outside_generated(readme))]
    assert not found, f"README figures outside the generated blocks: {found}"
    quoted = {p["quote"] for p in _evaluate_zoo().PAPERS.values()}  # the papers' own words, with their source
    spec = importlib.util.spec_from_file_location("paper_claims", REPO / "scripts" / "paper_claims.py")
    pc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pc)  # type: ignore[union-attr]
    # each claim's title (its T x dt setting) and the paper's own figures, quoted as such in the README
    quoted |= {c[k] for c in pc.CLAIMS.values() for k in ("title", "paper") if k in c}
    for path in sorted((REPO / "scripts").iterdir()):
        text = re.sub(r'"\s*\n\s*"', "", path.read_text())  # join implicitly concatenated string literals
        for q in quoted:
            text = text.replace(q, "")
        found = [m.group(0) for m in FIGURE.finditer(text)]
        assert not found, f"{path.name} types in figures: {found}"
