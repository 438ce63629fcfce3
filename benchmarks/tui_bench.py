"""Dashboard benchmark: time to first frame, CPU per minute next to glances, terminal bytes per minute.

    .venv/bin/python benchmarks/tui_bench.py [--seconds 60] [--glances PATH] [--runs 5] [--first-frame-only]
                                             [--against OTHER_CHECKOUT] [--repeat 3]

Prints one table. With `--against DIR` (another checkout, e.g. a worktree of main) every row is measured for
both, their runs interleaved so both see the same machine load, and shown as min–median–max per checkout.
The first full frame is the moment the terminal has been sent every configured host's row
with a value (the DEMO badge on demo hosts), the campaign's row with its visitors and the status line.
Everything runs on this machine: the dashboard in a private tmux server or on a pty of its own; glances
(if found: --glances, PATH, or /tmp/glances-venv/bin/glances) with the offline config next to this file,
so it sends nothing off loopback. Install it with
`python3 -m venv /tmp/glances-venv && /tmp/glances-venv/bin/pip install glances`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import random
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = ROOT / "src"
COLS, ROWS = 80, 24
CLK_TCK = os.sysconf("SC_CLK_TCK")

def default_1s(state_dir: Path) -> str:
    """The built-in default config (defaults.DEFAULT_TOML, the source of truth) at a 1 s tick."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    from surgewatch.defaults import DEFAULT_TOML

    text = DEFAULT_TOML.format(interval="1s", for_cpu="30s", for_mem="1m", for_anomaly="10s")
    return text.replace("[monitor]\n", f'[monitor]\nstate_dir = "{state_dir}"\n', 1)

BARE = """
[monitor]
interval = "1s"
history = "1h"
state_dir = "{state}"

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 99.5
for = "30s"
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def env_for_child(src: Path = SRC, **extra: str) -> dict[str, str]:
    env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8", COLORTERM="truecolor", **extra)
    env["PYTHONPATH"] = f"{src}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env.pop("TMUX", None)
    return env


# -- through a pty: first frame and bytes ------------------------------------------------------------


def spawn_on_pty(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
                 ) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env or env_for_child(),
                            start_new_session=True, close_fds=True, cwd=cwd)
    os.close(slave)
    return proc, master


def stop(proc: subprocess.Popen[bytes], master: int | None = None) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if master is not None:
        with contextlib.suppress(OSError):
            os.close(master)


def read_for(master: int, seconds: float) -> int:
    """Bytes the program wrote to its terminal in `seconds` (the pty is drained so it never blocks)."""
    total = 0
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([master], [], [], min(left, 0.5))
        if ready:
            try:
                total += len(os.read(master, 65536))
            except OSError:
                break
    return total


_ESCAPES = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")


def frame_patterns(config_text: str) -> list[re.Pattern[str]]:
    """What the first full overview must show: every configured host's row with a value (DEMO badge on demo
    hosts), every campaign's row with its visitors, and the status line's sources and tick time."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    from surgewatch.config import parse_config

    cfg = parse_config(config_text, "<bench>")
    pats = []
    demo_traffic = {t.name for t in cfg.traffic if t.source == "demo"}
    for h in cfg.hosts:  # a row starts with its health glyph; 80 columns keep 9 characters of a name
        badge = "DEMO" if h.source == "demo" else ""
        pats.append(rf"[●▲✖○] {re.escape(h.name[:9])}[^\r\n]*?{badge}[^\r\n]*?\d+(?:\.\d+)?%")
    for c in cfg.campaigns:
        badge = "DEMO" if c.traffic in demo_traffic else ""
        pats.append(rf"[▶ ] {re.escape(c.name[:9])}[^\r\n]*?{badge}\s+\d")
    pats.append(r"sources \d+/\d+ up · tick \d\d:\d\d:\d\d")
    return [re.compile(p) for p in pats]


def screen_text(raw: bytes) -> str:
    """The text a program wrote to its terminal, escape sequences removed (rows stay on their lines)."""
    return _ESCAPES.sub(b"", raw).decode("utf-8", "replace")


def first_frame(argv: list[str], patterns: list[re.Pattern[str]], env: dict[str, str], runs: int = 5,
                warmup: int = 1) -> tuple[float, float, int]:
    """Median (wall seconds, CPU seconds) from exec to the first frame that shows everything in `patterns`,
    and how many runs got there within 30 s (`warmup` runs first, not counted)."""
    times, cpus = first_frames(argv, patterns, env, runs, warmup)
    if not times:
        return float("nan"), float("nan"), 0
    return statistics.median(times), statistics.median(cpus), len(times)


def first_frames(argv: list[str], patterns: list[re.Pattern[str]], env: dict[str, str], runs: int = 5,
                 warmup: int = 1) -> tuple[list[float], list[float]]:
    """Every counted run's (wall seconds, CPU seconds) from exec to the first full frame."""
    times: list[float] = []
    cpus: list[float] = []
    for i in range(warmup + runs):
        t0 = time.monotonic()
        proc, master = spawn_on_pty(argv, env)
        buf = b""
        try:
            while time.monotonic() - t0 < 30:
                ready, _, _ = select.select([master], [], [], 0.5)
                if not ready:
                    continue
                try:
                    buf += os.read(master, 65536)
                except OSError:
                    break
                text = screen_text(buf)
                if all(p.search(text) for p in patterns):
                    if i >= warmup:
                        times.append(time.monotonic() - t0)
                        cpus.append(cpu_seconds(proc.pid))
                    break
        finally:
            stop(proc, master)
    return times, cpus


def terminal_bytes(mode: str, seconds: float, warmup: float, root: Path = ROOT) -> tuple[float, float]:
    """(bytes per minute, CPU seconds per minute) of the dashboard fed by `--child MODE` through a pty
    (the child of the checkout at `root`)."""
    proc, master = spawn_on_pty([sys.executable, str(root / "benchmarks" / "tui_bench.py"), "--child", mode],
                                env_for_child(root / "src"))
    try:
        read_for(master, warmup)
        c0 = cpu_seconds(proc.pid)
        n = read_for(master, seconds)
        c1 = cpu_seconds(proc.pid)
    finally:
        stop(proc, master)
    return n * 60 / seconds, (c1 - c0) * 60 / seconds


# -- in tmux: CPU next to glances --------------------------------------------------------------------


def cpu_in_tmux(command: str, seconds: float, warmup: float = 6.0, src: Path = SRC,
                size: tuple[int, int] = (COLS, ROWS)) -> float:
    """CPU seconds per minute of `command` running in a tmux pane (80x24 unless `size`; private server)."""
    sock = f"sw-bench-{os.getpid()}"
    tmux = ["tmux", "-L", sock]
    subprocess.run([*tmux, "new-session", "-d", "-s", "b", "-x", str(size[0]), "-y", str(size[1]),
                    f"exec env PYTHONPATH={src} {command}"], check=True, env=env_for_child(src))
    pid = None
    try:
        pid = int(subprocess.run([*tmux, "display", "-p", "-t", "b", "#{pane_pid}"], capture_output=True,
                                 text=True, check=True).stdout)
        time.sleep(warmup)
        c0 = cpu_seconds(pid)
        time.sleep(seconds)
        c1 = cpu_seconds(pid)
        return (c1 - c0) * 60 / seconds
    finally:
        if pid is not None:  # the daemon takes SIGHUP (tmux closing) as "reload": stop it by its pid
            end_process(pid)
        subprocess.run([*tmux, "kill-server"], check=False)
        time.sleep(0.5)


def end_process(pid: int) -> None:
    """SIGTERM, then SIGKILL if it is still there after five seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def find_glances(given: str | None) -> str | None:
    for cand in (given, shutil.which("glances"), "/tmp/glances-venv/bin/glances"):
        if cand and Path(cand).exists():
            return cand
    return None


# -- the child: a dashboard over in-memory sources ---------------------------------------------------


class StaticHosts:
    """`n` hosts whose values never change (or change on every poll when `moving`)."""

    def __init__(self, n: int, moving: bool) -> None:
        self.name, self.interval, self.timeout, self.demo = "fleet", 1.0, 1.0, False
        self.n, self.moving = n, moving
        self.rng = random.Random(1)

    async def poll(self) -> object:
        from surgewatch.sources.base import Reading

        values: dict[str, float] = {}
        for i in range(self.n):
            jitter = self.rng.uniform(-5, 5) if self.moving else 0.0
            h = f"host:web-{i:02d}"
            values[f"{h}/cpu.percent"] = 30 + i % 40 + jitter
            values[f"{h}/mem.percent"] = 50 + jitter / 2
            values[f"{h}/load.1"] = 1.5 + jitter / 10
            values[f"{h}/net.rx_bps"] = 2e6 + jitter * 1e4
            values[f"{h}/net.tx_bps"] = 5e6 + jitter * 1e4
        return Reading(values)

    async def close(self) -> None:
        return None


def child(mode: str) -> int:
    sys.path.insert(0, str(SRC))
    from surgewatch.alerting.dispatch import build_dispatcher
    from surgewatch.config import parse_config
    from surgewatch.engine import Engine, EngineOptions
    from surgewatch.tui.app import SurgewatchApp

    state = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    cfg = parse_config(BARE.format(state=state), "<bench>")
    source = StaticHosts(50 if mode == "fleet50" else 5, moving=mode == "fleet50")
    engine = Engine(cfg, EngineOptions(dispatcher=build_dispatcher(cfg, state)), sources=[source])  # type: ignore[list-item]
    return int(SurgewatchApp(engine).run() or 0)


def print_table(rows: list[tuple[str, str, str]]) -> None:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'measure':<{w0}}  {'value':>{w1}}  goal")
    print(f"{'-' * w0}  {'-' * w1}  ----")
    for name, value, goal in rows:
        print(f"{name:<{w0}}  {value:>{w1}}  {goal}")
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the end")


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """`min–median–max` of some runs (`–` when there are none)."""
    if not values:
        return "–"
    return "–".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def side_by_side(args: argparse.Namespace) -> int:
    """Every row for this checkout and `--against`, runs interleaved; min–median–max of each."""
    other = Path(args.against).resolve()
    roots = {"this": ROOT, "against": other}
    state = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    config = state / "default-1s.toml"
    config.write_text(default_1s(state / "state"))
    patterns = frame_patterns(default_1s(state / "state"))
    xdg = {"XDG_STATE_HOME": str(state / "xdg-state"), "XDG_CONFIG_HOME": str(state / "xdg-config")}
    bare = [sys.executable, "-m", "surgewatch"]
    res: dict[str, dict[str, list[float]]] = {k: {} for k in roots}

    def add(who: str, row: str, value: float) -> None:
        res[who].setdefault(row, []).append(value)

    envs = {}
    for who, root in roots.items():
        env = env_for_child(root / "src", PYTHONPYCACHEPREFIX=str(state / f"pycache-{who}"), **xdg)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("STATE_DIRECTORY", None)
        envs[who] = env
        first_frames(bare, patterns, env, runs=0, warmup=1)  # fills the bytecode cache
    for _ in range(args.runs):
        for who in roots:
            times, cpus = first_frames(bare, patterns, envs[who], runs=1, warmup=0)
            for t, c in zip(times, cpus, strict=True):
                add(who, "first full frame, `surgewatch` (s)", t)
                add(who, "  CPU until then (s)", c)
    if not args.first_frame_only:
        for _ in range(args.repeat):
            for who, root in roots.items():
                cmd = f"{sys.executable} -m surgewatch -c {config}"
                add(who, "dashboard CPU, default config at 1 s, 80x24 tmux (CPU-s/min)",
                    cpu_in_tmux(cmd, args.seconds, src=root / "src"))
            for who, root in roots.items():
                cmd = f"{sys.executable} -m surgewatch -c {config}"
                add(who, "  the same at 220x62 (wall: charts per campaign) (CPU-s/min)",
                    cpu_in_tmux(cmd, args.seconds, src=root / "src", size=(220, 62)))
            for who, root in roots.items():
                per_min, cpu = terminal_bytes("static", args.seconds, 65.0 if args.repeat == 1 else 20.0, root)
                add(who, "terminal KiB/min, 5 static hosts", per_min / 1024)
                add(who, "  CPU while at it (CPU-s/min)", cpu)
    rows = list(res["this"])
    w0 = max(len(r) for r in rows)
    print(f"{'measure':<{w0}}  {'this checkout':>17}  {'against':>17}  median ratio")
    print(f"{'-' * w0}  {'-' * 17}  {'-' * 17}  ------------")
    for row in rows:
        a, b = res["this"].get(row, []), res["against"].get(row, [])
        ratio = statistics.median(a) / statistics.median(b) if a and b and statistics.median(b) else float("nan")
        print(f"{row:<{w0}}  {spread(a):>17}  {spread(b):>17}  {ratio:.2f}")
    print(f"this = {ROOT}, against = {other}; {args.runs} first-frame runs each after one warm-up, interleaved"
          + ("" if args.first_frame_only else f"; CPU rows {args.repeat} x {args.seconds:g} s each, interleaved")
          + f"; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measuring time per row (default 60)")
    ap.add_argument("--glances", help="glances executable (default: PATH, then /tmp/glances-venv/bin/glances)")
    ap.add_argument("--runs", type=int, default=5, help="first-frame runs per row, median shown (default 5)")
    ap.add_argument("--first-frame-only", action="store_true", help="only the first-frame rows")
    ap.add_argument("--against", metavar="DIR", help="another checkout to measure side by side (e.g. main)")
    ap.add_argument("--repeat", type=int, default=3, help="with --against: CPU rows repeated (default 3)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    if args.against:
        return side_by_side(args)
    if shutil.which("tmux") is None and not args.first_frame_only:
        print("tmux is needed for the CPU rows", file=sys.stderr)
        return 2
    state = Path(tempfile.mkdtemp(prefix="sw-bench-"))
    config = state / "default-1s.toml"
    config.write_text(default_1s(state / "state"))
    rows: list[tuple[str, str, str]] = []
    # `surgewatch` with no arguments, its state and themes dirs private; Python's bytecode cache as after
    # an install (a private cache dir, filled by the warm-up run), then as this checkout runs without one.
    patterns = frame_patterns(default_1s(state / "state"))
    xdg = {"XDG_STATE_HOME": str(state / "xdg-state"), "XDG_CONFIG_HOME": str(state / "xdg-config")}
    cached = env_for_child(PYTHONPYCACHEPREFIX=str(state / "pycache"), **xdg)
    cached.pop("PYTHONDONTWRITEBYTECODE", None)
    cached.pop("STATE_DIRECTORY", None)
    uncached = dict(cached, PYTHONDONTWRITEBYTECODE="1")
    uncached.pop("PYTHONPYCACHEPREFIX")
    bare = [sys.executable, "-m", "surgewatch"]
    for label, argv, env, goal in (
            ("`surgewatch` (built-in default, 2 s tick)", bare, cached, "< 1 s"),
            ("`surgewatch -c` the default at a 1 s tick", [*bare, "-c", str(config)], cached, ""),
            ("`surgewatch`, PYTHONDONTWRITEBYTECODE=1 (no .pyc)", bare, uncached, "")):
        ff, ff_cpu, n = first_frame(argv, patterns, env, args.runs)
        rows.append((f"first full frame: {label}", f"{ff:.2f} s", goal))
        rows.append((f"  CPU used until then (runs that got there: {n}/{args.runs})", f"{ff_cpu:.2f} s", ""))
    if args.first_frame_only:
        print_table(rows)
        return 0
    sw = cpu_in_tmux(f"{sys.executable} -m surgewatch -c {config}", args.seconds)
    rows.append(("surgewatch dashboard CPU, default config at 1 s, 80x24 tmux", f"{sw:.2f} CPU-s/min",
                 "≤ half of glances"))
    hl_cmd = f"{sys.executable} -m surgewatch -c {config} --headless --log-format plain"
    hl = cpu_in_tmux(f"sh -c 'exec {hl_cmd} >/dev/null 2>&1'", args.seconds)
    rows.append(("  of which the engine alone (--headless, same config)", f"{hl:.2f} CPU-s/min", ""))
    glances = find_glances(args.glances)
    if glances:
        gl = cpu_in_tmux(f"{glances} -C {HERE / 'glances-offline.conf'} --disable-check-update "
                         "--disable-plugin ip,ports,cloud,wifi -t 1", args.seconds)
        rows.append(("glances curses UI -t 1, 80x24 tmux", f"{gl:.2f} CPU-s/min", ""))
        rows.append(("surgewatch / glances", f"{sw / gl:.0%}" if gl else "–", "≤ 50%"))
    else:
        rows.append(("glances curses UI -t 1", "not installed (see --help)", ""))
    # Sparklines hold 60 ticks: "nothing changes" is measured once they are full.
    for mode, label, warmup in (("static", "nothing changes (5 static hosts; the clock ticks)", 65.0),
                                ("fleet50", "50 hosts update every second", 6.0)):
        per_min, cpu = terminal_bytes(mode, args.seconds, warmup)
        rows.append((f"terminal bytes/min, {label}", f"{per_min / 1024:.1f} KiB", ""))
        rows.append(("  CPU while at it (engine included)", f"{cpu:.2f} CPU-s/min", ""))
    print_table(rows)
    print(f"{args.seconds:g} s per row after a 6 s warm-up; first frames: median of {args.runs} runs after one "
          "warm-up run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
