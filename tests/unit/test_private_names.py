"""No module reaches into another module's underscore names: parts talk through public APIs (see engine.py)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "surgewatch"

# (module path under src/surgewatch, name): each reaches into the standard library or a dependency, which has no
# public way to do it. (A name the module defines itself is not looked at: `os._exit` in a module with an
# `_exit` of its own passes unlisted.)
ALLOWED = {
    # os._exit is the standard library's documented exit without interpreter teardown (the 2 s stop budget).
    ("tui/app.py", "_exit"),
    # os._Environ is the documented type of os.environ (a type hint only).
    ("tui/app.py", "_Environ"),
    # _make is namedtuple's public constructor from an iterable (the underscore only avoids field names).
    ("sources/local.py", "_make"),
    # aiohttp has no public hook for the per-connection protocol (pinned by tests/integration/test_http_wire.py).
    ("httpclient.py", "_factory"),
    # asyncio cannot shut its default executor down without waiting for its threads (a stuck poll's thread
    # must not hold up exit).
    ("frontends/headless.py", "_default_executor"),
}

ATTR_FUNCS = {"getattr", "setattr", "hasattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_names(tree: ast.AST) -> set[str]:
    """Underscore names this module defines itself: functions, classes, assignments, `self._x = ...`, keyword
    arguments (`parser.set_defaults(_module=...)`)."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.keyword) and node.arg:
            own.add(node.arg)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Name):
                        own.add(sub.id)
                    elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and \
                            sub.value.id in ("self", "cls"):
                        own.add(sub.attr)
    return {n for n in own if _private(n)}


def _is_self(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def reach_ins(source: str, label: str) -> list[tuple[int, str]]:
    """(line, name) of every underscore name of another module that `source` touches: `obj._name` (obj not
    self, cls or super()), `getattr(obj, "_name")` and the like, and `from m import _name`."""
    tree = ast.parse(source, label)
    own = _own_names(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and not _is_self(node.value) \
                and node.attr not in own:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ATTR_FUNCS \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str) and _private(node.args[1].value) \
                and not _is_self(node.args[0]) and node.args[1].value not in own:
            found.append((node.lineno, node.args[1].value))
        elif isinstance(node, ast.ImportFrom):
            found.extend((node.lineno, a.name) for a in node.names if _private(a.name))
    return found


def test_no_module_touches_another_modules_underscore_names() -> None:
    offenders = []
    used = set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for line, name in reach_ins(path.read_text(), str(path)):
            if (rel, name) in ALLOWED:
                used.add((rel, name))
            else:
                offenders.append(f"{rel}:{line}: {name}")
    assert offenders == [], "use the owner's public API (e.g. Engine's) instead of:\n" + "\n".join(offenders)
    assert used == ALLOWED, f"allowed but no longer used (remove them): {sorted(ALLOWED - used)}"


def test_the_check_sees_reach_ins_and_leaves_a_modules_own_names_alone() -> None:
    source = '''
from surgewatch.engine import _name_of
import os

class Feed:
    def __init__(self, engine):
        self._state = None
        self.engine = engine

    def build(self, other):
        a = self.engine._stale_after
        b = getattr(self.engine, "_series_source", None)
        c = other._state  # this module's own name
        d = super()._make_app()
        return os.path, self._state
'''
    assert sorted(reach_ins(source, "t.py")) == [(2, "_name_of"), (11, "_stale_after"), (12, "_series_source")]
