"""Nothing outside the UI package imports Textual, so the daemon never pays for the UI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "surgewatch"


def test_no_module_outside_tui_imports_textual() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if "tui" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(n == "textual" or n.startswith("textual.") or n == "rich" or n.startswith("rich.")
                   for n in names):
                offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def test_headless_path_loads_without_textual() -> None:
    code = ("import sys, surgewatch.cli, surgewatch.engine, surgewatch.frontends.headless, "
            "surgewatch.frontends.check; print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "False"
