"""Which way the imports run (STYLE.md): the command line and the microphone app sit on top of the
library; nothing under ``asr_ee/`` imports or loads ``apps/``; no import cycle; the parsers stay
cheap (no torch)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "asr_ee"
FRONT_ENDS = ("asr_ee.cli", "asr_ee.__main__", "asr_ee.commands", "asr_ee.micapp")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Modules named by the file's imports: anywhere (inside functions too), or only those run at
    import time (module level, outside ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    if top_level_only:
        nodes: list[ast.AST] = []
        pending: list[ast.stmt] = list(tree.body)
        while pending:
            node = pending.pop()
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes.append(node)
            if isinstance(node, (ast.If, ast.Try)):
                pending += node.body + node.orelse + [s for h in getattr(node, "handlers", []) for s in h.body]
    else:
        nodes = list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _graph(top_level_only: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(path, top_level_only) if m in modules and m != name}
            for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_nothing_in_the_package_imports_or_loads_apps() -> None:
    for name, path in _modules().items():
        text = path.read_text()
        assert not [m for m in _imports(path) if m == "apps" or m.startswith("apps.")], name
        assert "spec_from_file_location" not in text, f"{name} loads code by file path"


def test_the_library_never_imports_the_command_line_or_the_app() -> None:
    for name, imported in _graph().items():
        if name.startswith(FRONT_ENDS) or name in ("asr_ee",):
            continue
        assert not [m for m in imported if m.startswith(FRONT_ENDS)], name


def test_the_app_uses_the_library_not_command_modules() -> None:
    for name, imported in _graph().items():
        if name.startswith("asr_ee.micapp"):
            assert not [m for m in imported if m.startswith(("asr_ee.commands", "asr_ee.cli"))], name


def test_no_import_cycle() -> None:
    """None, imports inside functions included (the cycle ``commands.mic`` -> ``apps`` ->
    ``commands`` once was one; ``decoding.lm`` <-> ``decoding.kenlm`` another)."""
    assert not _cycles(_graph(top_level_only=True))
    cycles = _cycles(_graph())
    assert not cycles, cycles


def test_building_the_parsers_imports_neither_torch_nor_apps() -> None:
    code = ("import sys, asr_ee.cli; asr_ee.cli.build_parser()\n"
            "loaded = [m for m in sys.modules if m in ('torch', 'apps') or m.startswith('apps.')]\n"
            "assert not loaded, loaded")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert proc.returncode == 0, proc.stderr
