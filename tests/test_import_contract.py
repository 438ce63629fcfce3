"""Architecture contracts that `lint-imports` (pyproject.toml, run by tests/run.sh) does not state: no import
cycles between modules, and the daemon's path never loading Textual at run time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp  # import-linter's import graph (installed with it)
import pytest


def import_cycles(package: str) -> list[list[str]]:
    """Every group of modules that import each other in a ring (imports under `if TYPE_CHECKING:` left out;
    imports inside functions count: a lazy import still ties the two modules together)."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=True, cache_dir=None)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in edges:  # Tarjan's strongly connected components, iteratively (no recursion limit)
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            nxt = edges[node]
            if i < len(nxt):
                work.append((node, i + 1))
                child = nxt[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    group.append(m)
                    if m == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return cycles


def test_no_import_cycles_between_modules() -> None:
    assert import_cycles("surgewatch") == []


def test_import_cycles_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "ringpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n")  # a lazy import closes the ring too
    (pkg / "c.py").write_text("import ringpkg.a\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import e\n")
    (pkg / "e.py").write_text("from . import d\n")  # d -> e only for annotations: no cycle
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("ringpkg") == [["ringpkg.a", "ringpkg.b", "ringpkg.c"]]


def test_headless_path_loads_without_textual() -> None:
    code = ("import sys, surgewatch.cli, surgewatch.engine, surgewatch.frontends.headless, "
            "surgewatch.frontends.check, surgewatch.tui.replaycmd; print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "False"
