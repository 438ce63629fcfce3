"""What the program does before it is useful: asyncio without ssl until something needs TLS, and no cyclic
garbage collection while starting.

`import asyncio` imports `ssl`, which maps OpenSSL's libssl and libcrypto: about 4.5 MB of a single-host
daemon's RSS (issue 14), for a config whose sources and sinks are all on this host and never speak TLS.
`asyncio_without_ssl()` imports asyncio while `ssl` cannot be found (asyncio then holds `ssl = None`, as on a
Python built without it), and arranges that the first `import ssl` afterwards, from whichever module (the http
client for the first http(s) source or sink, at start or after a reload, or a library), also hands the module to
asyncio's modules. So TLS works exactly as before; it is only paid for when something uses it.

Start-up imports and builds a hundred thousand long-lived objects (modules, classes, functions) and almost no
cyclic garbage, yet the cyclic collector runs a hundred times over them meanwhile (~7% of the imports' CPU).
`pause_gc()` turns it off for start-up; `resume_gc()` turns it back on once the program is up (the daemon
started, the dashboard's first frame drawn). Not `gc.freeze()` as well: it saved no measurable CPU per minute, and
a frozen start-up object that later becomes cyclic garbage (an analyzer replaced on reload) would never be freed.

Once running, a daemon at fleet scale holds hundreds of thousands of tracked objects, and the collector's
automatic full pass walks them all (20-45 ms at 1,000 hosts) inside whichever tick crosses its threshold.
`TickCollector` moves that work into the idle time after a tick (issue 14): the automatic collector is off during a
tick; after it, it collects what the tick left (the young objects, cheap) and freezes the survivors, so that the
passes until the next tick walk only what came since. Every `full_every` seconds it unfreezes first, so the full
pass (the one the collector would have made, now between ticks) also frees cyclic garbage among objects frozen
earlier: nothing is kept for good, and freezing costs nothing (two lists spliced).
"""

from __future__ import annotations

import gc
import importlib
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec


_gc_paused = False


def pause_gc() -> None:
    """No cyclic collection until `resume_gc()` (does nothing if the collector is off already)."""
    global _gc_paused
    if gc.isenabled():
        gc.disable()
        _gc_paused = True


def resume_gc() -> None:
    """Collect cycles again, if `pause_gc()` stopped it (otherwise nothing)."""
    global _gc_paused
    if _gc_paused:
        _gc_paused = False
        gc.enable()


FULL_EVERY = 300.0  # seconds between the idle full passes (TickCollector)


class TickCollector:
    """Cyclic garbage collection between ticks, not during them. `before_tick()` turns the automatic collector
    off for the tick; `after_tick()`, in the idle time after the tick's work is out, turns it on again and, once
    there are as many new objects as the automatic collector waits for (at fleet scale: every tick), collects the
    objects not frozen (what the ticks since the last collection left) and freezes what survives; at most every
    `full_every` seconds (and at the first call) it unfreezes everything before, which makes that collection a full
    pass. `stop()` unfreezes and turns the collector on (as it was).

    Does nothing while the collector is off otherwise (paused for start-up, or turned off by whoever embeds us)."""

    def __init__(self, full_every: float = FULL_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.full_every = full_every
        self.clock = clock
        self.full_at: float | None = None  # when the last full pass ran (None: none yet)
        self.passes = 0  # collections made
        self.full_passes = 0  # of them, full ones
        self._off = False  # the automatic collector turned off by before_tick

    def before_tick(self) -> None:
        if gc.isenabled():
            gc.disable()
            self._off = True

    def after_tick(self) -> None:
        if self._off:
            self._off = False
            gc.enable()
        elif not gc.isenabled():
            return
        now = self.clock()
        if self.full_at is None or now - self.full_at >= self.full_every:
            gc.unfreeze()
            self.full_at = now
            self.full_passes += 1
        elif gc.get_count()[0] < gc.get_threshold()[0]:
            return  # fewer new objects than the automatic collector waits for (a small daemon's tick): later
        gc.collect()
        gc.freeze()
        self.passes += 1

    def stop(self) -> None:
        """Unfreeze, and the automatic collector on if a tick left it off: the collector alone from now on."""
        if self._off:
            self._off = False
            gc.enable()
        gc.unfreeze()
        self.full_at = None


def asyncio_without_ssl() -> bool:
    """Import asyncio without ssl (True), or do nothing if either is already imported (False)."""
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return False
    sys.modules["ssl"] = None  # type: ignore[assignment]  # `import ssl` raises ImportError while this is set
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]
    sys.meta_path.insert(0, SslForAsyncio())
    return True


def hand_ssl_to_asyncio(ssl: ModuleType) -> None:
    """Give asyncio's modules that were imported without ssl the module now imported."""
    handed = []
    for name, module in list(sys.modules.items()):
        if (name == "asyncio" or name.startswith("asyncio.")) and getattr(module, "ssl", False) is None:
            setattr(module, "ssl", ssl)  # noqa: B010 (a module global asyncio reads at each TLS call)
            handed.append(name)
    # sslproto also derives names from ssl as it is imported (SSLAgainErrors): run it again. Its classes are
    # looked up through the module at each TLS connection, and none was made without ssl.
    if "asyncio.sslproto" in handed:
        importlib.reload(sys.modules["asyncio.sslproto"])


class SslForAsyncio:
    """A meta path finder (duck-typed: importlib.abc would import importlib.resources). For `ssl` it asks the
    finders after it and wraps the loader they give so that the module, once loaded, reaches asyncio too; it
    leaves the path then (a `find_spec("ssl")` that loads nothing leaves it in place)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname != "ssl":
            return None
        for finder in [f for f in sys.meta_path if f is not self]:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = cast("Loader", ThenHandToAsyncio(spec.loader, self))
                return spec
        return None


class ThenHandToAsyncio:
    """The real loader of `ssl`, followed by `hand_ssl_to_asyncio` (a Loader, duck-typed like the finder)."""

    def __init__(self, loader: Loader, finder: SslForAsyncio) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        hand_ssl_to_asyncio(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... for tracebacks and inspect
        return getattr(self.loader, name)
