"""CPU seconds per minute and peak RSS of `surgewatch --headless` next to glances, measured in the same run.

Usage: python benchmarks/headless_bench.py [--seconds 60] [--glances PATH] [--runs N] [--against OTHER_CHECKOUT]
                                           [--floor] [--profile SECONDS] [--memory SECONDS] [--parts SECONDS]
                                           [--cold TICKS] [--stages] [--local-only]

Both run side by side for the same wall-clock window at a 1 s interval: surgewatch on its built-in default
(this host + the DEMO host and campaign) with `[monitor] interval = "1s"`, glances as
`glances --stdout cpu.total,mem.percent,load -t 1` with the offline config beside this file (its defaults send
traffic off loopback). CPU is user+system time of the process and its children from /proc; peak RSS is VmHWM.
With `--against DIR` (another checkout, e.g. an export of main) that checkout's daemon runs too, in the same
window, so before and after see the same machine load. With `--runs N` the window is repeated N times and every
figure is shown as min–median–max, with the surgewatch/glances CPU ratio taken within each run.
`--floor` adds the RSS of a fresh interpreter after each step of the daemon's imports (what no config can
shed: Python, asyncio (without ssl, as the daemon imports it), numpy, sqlite3; and asyncio with ssl for reference).
`--profile SECONDS` instead runs the daemon in this process under cProfile and prints where its CPU goes.
`--parts SECONDS` instead runs the daemon in this process and prints its CPU per minute by part of the tick
(thread CPU clock around each part: far less overhead than the profiler), the polls and the rest (event loop).
`--memory SECONDS` instead starts the daemon, and after SECONDS prints its resident memory by mapping from
/proc/PID/smaps (each library's code and data touched, the malloc heap, anonymous mappings: Python's object arenas,
numpy's larger arrays, the store's rings) next to its peak.
`--cold TICKS` instead steps the daemon's engine in this process on a stepped clock (a tick per simulated second,
the same polls and analysis) and prints its CPU per tick run back to back (caches warm) and with a pause of 1 s
between ticks, as the daemon runs (caches cold: on a shared machine the tick's code and data are evicted between
ticks), and what one tick calls: Python functions and C functions (numpy's ufuncs and methods, builtins).
`--stages` instead starts a fresh interpreter that builds the daemon step by step as `surgewatch --headless` does
and prints its RSS after each step (imports, engine, demo backfill, first tick, a minute of ticks), and which
libraries' pages the first ticks touch.
`--local-only` runs any of these on this host alone with the default's three host rules (no DEMO host, traffic or
campaign: no campaign analysis) instead of the built-in default.
Prints a table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime (+ waited-for children) of a live process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


LOCAL_ONLY = False  # set by --local-only


def default_config_at_1s(directory: Path) -> Path:
    """The built-in default (with --local-only, this host alone) at a 1 s interval, its state in `directory`."""
    sys.path.insert(0, str(HERE.parent / "src"))
    from surgewatch.defaults import DEFAULT_TOML

    text = DEFAULT_TOML.format(interval="1s", for_cpu="30s", for_mem="1m", for_anomaly="10s")
    if LOCAL_ONLY:  # the default without its DEMO host, traffic and campaign and the rule on campaigns
        demo = ('source = "demo"', "[[traffic]]", "[[campaign]]", 'series = "campaign:')
        text = "\n\n".join(b for b in text.split("\n\n") if not any(d in b for d in demo))
    text = text.replace("[monitor]\n", f'[monitor]\nstate_dir = "{directory / "state"}"\n', 1)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "default-1s.toml"
    path.write_text(text)
    return path


def measure(cmds: dict[str, list[str]], seconds: float, settle: float,
            envs: dict[str, dict[str, str] | None] | None = None) -> dict[str, tuple[float, float, float]]:
    """Start all commands, wait `settle`, then measure CPU over `seconds`; returns name → (cpu/min, startup cpu, MB)."""
    envs = envs or {}
    procs = {n: subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=envs.get(n))
             for n, c in cmds.items()}
    try:
        time.sleep(settle)
        start = {n: cpu_seconds(p.pid) for n, p in procs.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        out = {}
        for n, p in procs.items():
            if p.poll() is not None:
                out[n] = (float("nan"), float("nan"), float("nan"))
                continue
            used = cpu_seconds(p.pid) - start[n]
            out[n] = (used * 60.0 / elapsed, start[n], peak_rss_mb(p.pid))
        return out
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """min–median–max of a row's runs."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "–"
    return "–".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def surgewatch_command(root: Path | None, cfg: Path) -> tuple[list[str], dict[str, str] | None]:
    """The daemon of this checkout (its installed command), or of `root` through its src/ on PYTHONPATH."""
    if root is None:
        exe = shutil.which("surgewatch") or str(Path(sys.executable).with_name("surgewatch"))
        return [exe, "--headless", "--config", str(cfg)], None
    env = dict(os.environ, PYTHONPATH=f"{root / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return [sys.executable, "-m", "surgewatch", "--headless", "--config", str(cfg)], env


FLOOR_STEPS = [("python", ""),
               ("+ asyncio (no ssl, as it starts)", "from surgewatch.lean import asyncio_without_ssl\n"
                "asyncio_without_ssl()"),
               ("+ numpy", "import numpy"),
               ("+ sqlite3 (psutil only if needed)", "import sqlite3"),
               ("+ the daemon's modules", "import surgewatch.engine, surgewatch.frontends.headless")]


def rss_floor(steps: list[tuple[str, str]] = FLOOR_STEPS) -> list[tuple[str, float]]:
    """RSS (MB) of a fresh interpreter after each step of the daemon's imports, each in a new process."""
    out = []
    code = ""
    for label, stmt in steps:
        code += stmt + "\n"
        probe = code + "print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])"
        env = dict(os.environ, PYTHONPATH=f"{HERE.parent / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        kb = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
        out.append((label, int(kb.stdout.split()[-1]) / 1024))
    return out


# (module, class, method, label): the parts of a tick timed by `--parts` (nested labels are parts of the one above)
PARTS = [("surgewatch.collector", "Collector", "poll_driven", "polls (this host, the demo)"),
         ("surgewatch.engine", "Engine", "tick", "tick"),
         ("surgewatch.analysis.analyzer", "Analyzer", "step", "tick: analysis"),
         ("surgewatch.analysis.streaming", "SurgeContextDetector", "update", "tick: analysis: the detector"),
         ("surgewatch.store", "SeriesStore", "append", "tick: store"),
         ("surgewatch.alerting.rules", "RuleEngine", "evaluate", "tick: rules"),
         ("surgewatch.annotations", "AnnotationStore", "refresh", "tick: annotation file check"),
         ("surgewatch.engine", "Engine", "_evict_idle", "tick: eviction"),
         ("surgewatch.engine", "Engine", "keep_models", "tick: load models kept")]


def cpu_by_part(cfg: Path, seconds: float) -> None:
    """The daemon in this process for `seconds` after 5 s of start-up: CPU per minute of each part of PARTS."""
    import asyncio
    import importlib

    sys.path.insert(0, str(HERE.parent / "src"))
    from surgewatch.defaults import resolve_config
    from surgewatch.frontends.headless import Daemon

    used: dict[str, float] = {}
    timing = [False]

    def timed(f: Callable[..., Any], label: str) -> Callable[..., Any]:
        def part(*a: Any, **k: Any) -> Any:
            t = time.thread_time()
            try:
                return f(*a, **k)
            finally:
                if timing[0]:
                    used[label] = used.get(label, 0.0) + time.thread_time() - t
        return part

    for module, cls, method, label in PARTS:
        owner = getattr(importlib.import_module(module), cls)
        setattr(owner, method, timed(getattr(owner, method), label))
    daemon = Daemon(resolve_config(str(cfg)), str(cfg), 1.0)

    async def run() -> tuple[float, float]:
        task = asyncio.ensure_future(daemon.main())
        await asyncio.sleep(5.0)
        timing[0], c0, w0 = True, time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        timing[0] = False
        total, elapsed = time.process_time() - c0, time.monotonic() - w0
        daemon.stop.set()
        await asyncio.wait([task], timeout=5)
        return total, elapsed

    saved = sys.stdout
    with open(os.devnull, "w") as devnull:
        sys.stdout = devnull  # the daemon's JSON lines
        try:
            total, elapsed = asyncio.run(run())
        finally:
            sys.stdout = saved
    per_min = 60.0 / elapsed
    print(f"\nCPU-s per minute of the daemon in this process over {elapsed:.0f} s (load average "
          f"{os.getloadavg()[0]:.1f}): {total * per_min:.4f}\n")
    for _module, _cls, _method, label in PARTS:
        print(f"  {label:40} {used.get(label, 0.0) * per_min:.4f}")
    outside = total - used.get("tick", 0.0) - used.get(PARTS[0][3], 0.0)
    print(f"  {'the rest (event loop, timers, signals)':40} {outside * per_min:.4f}")


def engine_on_stepped_clock(cfg: Path) -> tuple[Any, Callable[[], None]]:
    """The headless daemon's engine (only the needed series, stdout sink) on a clock that one_tick() steps by 1 s,
    and one_tick: the driven polls and the tick, as the daemon's timer runs them."""
    sys.path.insert(0, str(HERE.parent / "src"))
    from surgewatch.config import SinkConfig
    from surgewatch.defaults import resolve_config
    from surgewatch.engine import Engine, EngineOptions

    at = [time.time()]
    engine = Engine(resolve_config(str(cfg)), EngineOptions(
        default_sinks=[SinkConfig(kind="stdout")], only_needed=True, clock=lambda: at[0], keep_models=False))
    engine.backfill_demo()

    def one_tick() -> None:
        at[0] += 1.0
        engine.collector.poll_driven()
        engine.tick(at[0])
    return engine, one_tick


def cold_ticks(cfg: Path, ticks: int) -> None:
    """CPU per tick back to back and a second apart (thread CPU clock), and Python and C calls per tick."""
    import asyncio
    import io

    async def run() -> list[tuple[str, float]]:
        engine, one_tick = engine_on_stepped_clock(cfg)
        engine.collector.start(driven=1.0)  # the driven polls (this host, the demo), polled by one_tick
        # at every tick: back to back, the event loop's clock does not move the half interval poll_driven waits for
        engine.collector.poll_driven = lambda: engine.collector._poll_group(engine.collector._driven, 0.0)
        for _ in range(30):  # past the first refits
            one_tick()
        out = []
        for label, pause, n in (("back to back (caches warm)", 0.0, max(ticks, 200)),
                                ("1 s apart, as the daemon (caches cold)", 1.0, ticks)):
            used = 0.0
            for _ in range(n):
                if pause:
                    time.sleep(pause)
                t = time.thread_time()
                one_tick()
                used += time.thread_time() - t
            out.append((f"{label}, {n} ticks", used / n * 1e3))
        calls = {"call": 0, "c_call": 0}

        def count(_frame: Any, event: str, _arg: Any) -> None:
            if event in calls:
                calls[event] += 1
        sys.setprofile(count)
        for _ in range(100):
            one_tick()
        sys.setprofile(None)
        out.append(("Python function calls per tick", calls["call"] / 100))
        out.append(("C function calls per tick (numpy, builtins)", calls["c_call"] / 100))
        await engine.collector.stop()
        return out

    saved = sys.stdout
    sys.stdout = io.StringIO()  # the stdout sink's alert lines
    try:
        rows = asyncio.run(run())
    finally:
        sys.stdout = saved
    print(f"\nthe daemon's tick in this process (load average {os.getloadavg()[0]:.1f}):\n")
    for label, value in rows:
        unit = "ms CPU a tick" if "ticks" in label else ""
        print(f"  {label:48} {value:8.3f} {unit}")


# Run in a fresh interpreter (argv[1]: the config) so that nothing the benchmark imports counts.
STAGES_CHILD = """
import os, sys
lines = []
def note(label):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                lines.append(f'{label}\\t{int(line.split()[1]) / 1024}')
def libs():
    out, name = {}, None
    with open('/proc/self/smaps') as f:
        for line in f:
            head = line.split(maxsplit=5)
            if len(head) >= 5 and '-' in head[0] and not head[0].endswith(':'):
                name = head[5].strip().rsplit('/', 1)[-1].split('.')[0].split('-')[0] if len(head) > 5 else None
            elif line.startswith('Rss:') and name:
                out[name] = out.get(name, 0) + int(line.split()[1]) / 1024
    return out
note('python')
from surgewatch.lean import asyncio_without_ssl, pause_gc, resume_gc
pause_gc()
asyncio_without_ssl()
import asyncio
note('+ asyncio (no ssl)')
import numpy
note('+ numpy')
import surgewatch.engine, surgewatch.frontends.headless
from surgewatch.config import SinkConfig
from surgewatch.defaults import resolve_config
from surgewatch.engine import Engine, EngineOptions
note("+ the daemon's modules (sqlite3 with them)")
config = resolve_config(sys.argv[1])
async def main():
    engine = Engine(config, EngineOptions(default_sinks=[SinkConfig(kind='stdout')], only_needed=True))
    note('+ the engine built (sources, store, detector, rules, outbox)')
    engine.backfill_demo()
    note('+ the demo history backfilled, the analysis warmed on it')
    resume_gc()
    before = libs()
    stop = asyncio.Event()
    run = asyncio.ensure_future(engine.run(stop))
    await asyncio.sleep(1.0)
    note('+ the first ticks (the first load-model fits)')
    grew = {k: v - before.get(k, 0.0) for k, v in libs().items()}
    await asyncio.sleep(float(sys.argv[2]))
    note(f'+ {float(sys.argv[2]):.0f} s of ticks')
    stop.set()
    await run
    await engine.shutdown(0.5)
    for k, v in sorted(grew.items(), key=lambda kv: -kv[1]):
        if v >= 0.1:
            lines.append(f'    of the first ticks: {k} +{v:.1f} MB')
saved, sys.stdout = sys.stdout, open(os.devnull, 'w')
try:
    asyncio.run(main())
finally:
    sys.stdout = saved
print('\\n'.join(lines))
"""


def rss_stages(cfg: Path, seconds: float = 60.0) -> None:
    """RSS of a fresh interpreter after each step of building and running the daemon (see STAGES_CHILD)."""
    env = dict(os.environ, PYTHONPATH=f"{HERE.parent / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    done = subprocess.run([sys.executable, "-c", STAGES_CHILD, str(cfg), str(seconds)], capture_output=True, text=True,
                          env=env, check=True, timeout=seconds + 60)
    print("\nRSS of the daemon built step by step in a fresh interpreter (MB):\n")
    last = 0.0
    for line in done.stdout.splitlines():
        if "\t" not in line:
            print(line)
            continue
        label, mb = line.rsplit("\t", 1)
        print(f"  {label:64} {float(mb):6.1f}  ({float(mb) - last:+.1f})")
        last = float(mb)


def profile_daemon(cfg: Path, seconds: float, top: int = 30) -> None:
    """The daemon in this process under cProfile for `seconds` after 5 s of start-up: where its CPU goes."""
    import asyncio
    import cProfile
    import pstats

    sys.path.insert(0, str(HERE.parent / "src"))
    from surgewatch.defaults import resolve_config
    from surgewatch.frontends.headless import Daemon

    daemon = Daemon(resolve_config(str(cfg)), str(cfg), 1.0)
    prof = cProfile.Profile()

    async def run() -> float:
        task = asyncio.ensure_future(daemon.main())
        await asyncio.sleep(5.0)
        c0 = time.process_time()
        prof.enable()
        await asyncio.sleep(seconds)
        prof.disable()
        used = time.process_time() - c0
        daemon.stop.set()
        await asyncio.wait([task], timeout=5)
        return used

    saved = sys.stdout
    with open(os.devnull, "w") as devnull:
        sys.stdout = devnull  # the daemon's JSON lines
        try:
            used = asyncio.run(run())
        finally:
            sys.stdout = saved
    print(f"\nCPU {used * 60 / seconds:.2f} s/min under the profiler; top {top} by cumulative time:\n")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


NUMPY_LIBS = ("_multiarray_umath", "openblas", "libgfortran", "libquadmath", "_pocketfft", "_umath_linalg",
              "libstdc++")  # (numpy 2's C++ core maps libstdc++)


def memory_map(pid: int) -> list[tuple[str, float, float]]:
    """(mapping group, resident MB, of it anonymous MB) of a live process, largest first."""
    groups: dict[str, list[float]] = {}
    name = "?"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
            path = head[5] if len(head) > 5 else ""
            base = path.rsplit("/", 1)[-1]
            if not path:
                name = "anonymous mappings (Python's object arenas, numpy's larger arrays, the store's rings)"
            elif path == "[heap]":
                name = "malloc heap (Python's larger objects, numpy's smaller arrays)"
            elif path.startswith("["):
                name = path
            elif any(k in base for k in NUMPY_LIBS):
                name = f"numpy: {base.split('.')[0].split('-')[0]}"
            elif "libpython" in base:
                name = "libpython"
            else:
                name = "other files (libc, libm, sqlite, psutil, extension modules, locale...)"
            groups.setdefault(name, [0.0, 0.0])
        elif line.startswith("Rss:"):
            groups[name][0] += int(line.split()[1]) / 1024
        elif line.startswith("Anonymous:"):
            groups[name][1] += int(line.split()[1]) / 1024
    return sorted(((n, r, a) for n, (r, a) in groups.items()), key=lambda g: -g[1])


def print_memory(cfg: Path, seconds: float) -> None:
    """The daemon's resident memory by mapping after `seconds`, next to its current and peak RSS."""
    cmd, env = surgewatch_command(None, cfg)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        time.sleep(seconds)
        rows = memory_map(proc.pid)
        status = dict(line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines())
    finally:
        proc.terminate()
        proc.wait(5)
    rss, peak = (int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    print(f"\n`surgewatch --headless` (default, 1 s) after {seconds:.0f} s: RSS {rss:.1f} MB, peak {peak:.1f} MB, "
          f"{status['Threads'].strip()} threads\n")
    print(f"| {'mapping':88} | resident MB | of it anonymous |")
    print(f"|{'-' * 90}|------------:|----------------:|")
    for name, rss, anon in rows:
        if rss >= 0.05:
            print(f"| {name:88} | {rss:11.1f} | {anon:15.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds of start-up excluded from the steady state")
    ap.add_argument("--glances", default=shutil.which("glances") or "/tmp/glances-venv/bin/glances")
    ap.add_argument("--runs", type=int, default=1, help="measuring windows, min–median–max shown (default 1)")
    ap.add_argument("--against", metavar="DIR", help="another checkout whose daemon runs in the same window")
    ap.add_argument("--floor", action="store_true", help="also the RSS of the daemon's imports, step by step")
    ap.add_argument("--profile", type=float, metavar="SECONDS", help="instead: profile the daemon in-process")
    ap.add_argument("--memory", type=float, metavar="SECONDS", help="instead: the daemon's memory by mapping")
    ap.add_argument("--parts", type=float, metavar="SECONDS", help="instead: the daemon's CPU by part of the tick")
    ap.add_argument("--cold", type=int, metavar="TICKS", help="instead: CPU a tick warm and a second apart")
    ap.add_argument("--stages", action="store_true", help="instead: RSS after each step of the start-up")
    ap.add_argument("--local-only", action="store_true",
                    help="this host alone with the default's rules (no DEMO host, traffic or campaign)")
    args = ap.parse_args()
    global LOCAL_ONLY
    LOCAL_ONLY = args.local_only
    # the modes that run instead of the side-by-side table: (flag's value, what runs on the default config at 1 s)
    modes: list[tuple[Any, Callable[[Path], None]]] = [
        (args.cold, lambda cfg: cold_ticks(cfg, args.cold)), (args.stages, rss_stages),
        (args.parts, lambda cfg: cpu_by_part(cfg, args.parts)),
        (args.memory, lambda cfg: print_memory(cfg, args.memory)),
        (args.profile, lambda cfg: profile_daemon(cfg, args.profile))]
    for wanted, run in modes:
        if wanted:
            with tempfile.TemporaryDirectory() as tmp:
                run(default_config_at_1s(Path(tmp)))
            return 0
    this = f"surgewatch --headless ({'this host only' if LOCAL_ONLY else 'default'}, 1 s)"
    other = f"  the same, {args.against}"
    glances = "glances --stdout cpu.total,mem.percent,load -t 1"
    rows: dict[str, list[tuple[float, float, float]]] = {}
    ratios: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmds: dict[str, list[str]] = {}
        envs: dict[str, dict[str, str] | None] = {}
        cfg = default_config_at_1s(Path(tmp) / "this")
        cmds[this], envs[this] = surgewatch_command(None, cfg)
        if args.against:
            cfg_other = default_config_at_1s(Path(tmp) / "against")
            cmds[other], envs[other] = surgewatch_command(Path(args.against).resolve(), cfg_other)
        if Path(args.glances).exists():
            cmds[glances] = [
                args.glances, "-C", str(HERE / "glances-offline.conf"), "--disable-check-update",
                "--disable-plugin", "ip,ports,cloud,wifi", "--stdout", "cpu.total,mem.percent,load", "-t", "1"]
        else:
            print(f"(glances not found at {args.glances}: pip install glances to compare)")
        for _ in range(args.runs):
            results = measure(cmds, args.seconds, args.settle, envs)
            for name, figures in results.items():
                rows.setdefault(name, []).append(figures)
            if glances in results and results[glances][0] > 0:
                for name in (this, other):
                    if name in results:
                        ratios.setdefault(name, []).append(results[name][0] / results[glances][0])
    runs = f"{args.runs} runs, min–median–max" if args.runs > 1 else "one run"
    print(f"\nside by side, {args.seconds:.0f} s after {args.settle:.0f} s of start-up, 1 s interval ({runs}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)\n")
    print(f"| {'process':52} | CPU s/min (steady) | start-up CPU s | peak RSS MB | CPU / glances |")
    print(f"|{'-' * 54}|-------------------:|---------------:|------------:|--------------:|")
    for name, figures in rows.items():
        per_min, startup, mb = ([f[k] for f in figures] for k in range(3))
        print(f"| {name:52} | {spread(per_min):>18} | {spread(startup):>14} | {spread(mb, '{:.1f}'):>11} "
              f"| {spread(ratios.get(name, [])):>13} |")
    if args.floor:
        print("\nRSS after the daemon's imports, step by step (fresh interpreters, MB):\n")
        for label, mb in rss_floor():
            print(f"  {label:34} {mb:6.1f}")
        print(f"  {'(python + asyncio with ssl)':34} {rss_floor([FLOOR_STEPS[0], ('', 'import asyncio')])[-1][1]:6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
