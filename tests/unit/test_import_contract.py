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


# What the built-in default config (this host + the DEMO host and campaign, stdout sink) must run without:
# the UI, HTTP clients and the HTTP sources/sinks' code, recording, the /metrics exporter, report templates,
# cron parsing (only configs with [[schedule]] need it). Each is imported where a config uses it.
NOT_FOR_THE_DEFAULT_DAEMON = ("textual", "rich", "jinja2", "httpx", "aiohttp", "croniter", "dateutil",
                              "surgewatch.tui", "surgewatch.recording", "surgewatch.export",
                              "surgewatch.httpclient", "surgewatch.sources.http", "surgewatch.sources.promql",
                              "surgewatch.sources.prometheus", "surgewatch.sources.analytics")

DAEMON_CHILD = """
import json, logging, os, signal, sys, threading, time
from surgewatch.cli import build_parser
from surgewatch.frontends.headless import run_headless
started = threading.Event()

class Started(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("started:"):
            started.set()

def stop_after_some_ticks():
    started.wait(60)
    time.sleep(2.0)  # four ticks at 0.5 s
    os.kill(os.getpid(), signal.SIGTERM)

logging.getLogger("surgewatch.headless").addHandler(Started())
threading.Thread(target=stop_after_some_ticks, daemon=True).start()
args = build_parser().parse_args(["--headless", "--demo-speed", "4"])
code = run_headless(args, hard_exit=False)
with open(sys.argv[1], "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def test_the_default_daemon_runs_without_ui_http_recording_or_cron_modules(tmp_path: Path) -> None:
    import json
    import os

    out = tmp_path / "modules.json"
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    env.pop("STATE_DIRECTORY", None)
    proc = subprocess.run([sys.executable, "-c", DAEMON_CHILD, str(out)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert "started:" in proc.stderr, proc.stderr
    result = json.loads(out.read_text())
    modules = set(result["modules"])
    assert result["code"] == 0
    # it ran: the local and demo sources, the analysis and the rules were loaded and used
    # (psutil is not: this host's total CPU and memory come from /proc, see sources/local.py)
    assert {"surgewatch.sources.demo", "surgewatch.sources.local", "surgewatch.analysis.analyzer",
            "surgewatch.alerting.rules"} <= modules
    loaded = sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in NOT_FOR_THE_DEFAULT_DAEMON))
    assert loaded == []
