"""The package's shape: an acyclic import graph, light commands that stay light, and
the README's main job giving labelled rows."""

from __future__ import annotations

import ast
import csv
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kratomlit"


def _imports() -> dict[str, set[str]]:
    """module -> package modules it imports, function-level imports included."""
    mods = {p.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")
            .removesuffix(".__init__"): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            graph[mod].update(n for n in names if n in mods and n != mod)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*stack[stack.index(n):], n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    return next((c for m in sorted(graph) if m not in state and (c := visit(m))), None)


def test_the_import_graph_has_no_cycle() -> None:
    graph = _imports()
    assert graph["kratomlit.cli"], "the AST reader found no imports at all"
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def _loaded_after(code: str) -> set[str]:
    script = code + "\nimport sys\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False, timeout=60)
    return set(out.stdout.split())


def test_help_imports_nothing_heavy() -> None:
    loaded = _loaded_after("import sys\nfrom kratomlit.cli import app\n"
                           "from typer.testing import CliRunner\n"
                           "assert CliRunner().invoke(app, ['--help']).exit_code == 0")
    assert "kratomlit.cli" in loaded
    heavy = {"requests", "Bio", "pandas", "pyarrow", "xlsxwriter", "kratomlit.store",
             "kratomlit.config", "rich.markdown", "rich.progress", "rich.console"}
    assert not heavy & loaded


def test_refresh_and_new_do_not_import_the_exporters() -> None:
    loaded = _loaded_after("import kratomlit.refresh, kratomlit.digest, kratomlit.search")
    assert "kratomlit.refresh" in loaded
    assert not {"pandas", "pyarrow", "xlsxwriter", "kratomlit.export_formats"} & loaded


def test_the_readme_main_job_exports_labelled_rows(cli, kratom_server, tmp_path) -> None:
    """search then export (README 'Set-up'): every row carries the classifier's labels."""
    assert cli("search", "kratom").exit_code == 0
    out = tmp_path / "kratom.csv"
    assert cli("export", "--format", "csv", "--output", str(out)).exit_code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 4
    assert all(r["classifier_version"] for r in rows)
    assert any(r["topics"] for r in rows)


def test_search_no_classify_leaves_labels_to_classify(cli, kratom_server, tmp_path) -> None:
    assert cli("search", "kratom", "--no-classify").exit_code == 0
    out = tmp_path / "k.csv"
    assert cli("export", "-o", str(out)).exit_code == 0
    assert not any(r["classifier_version"] for r in csv.DictReader(out.open(encoding="utf-8")))
