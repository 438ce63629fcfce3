"""Dashboard at fleet scale: first frame, memory and key press → screen change with 1,000 hosts, in tmux.

    .venv/bin/python benchmarks/fleet_tui_bench.py [--hosts 1000] [--runs 3] [--presses 8] [--tick-presses 8]
                                                   [--against OTHER_CHECKOUT] [--size 80x24] [--busy N]
                                                   [--no-bytecode-cache]

A loopback server (127.0.0.1, a free port) answers the `promql` host source's instant queries the way
Prometheus does, for `--hosts` hosts in 10 groups (`job` label), values moving on every poll and a few hot
hosts. `surgewatch -c CONFIG` (a 5 s interval, `group_label = "job"`) runs in a private tmux server at 80x24.
Measured per run:
- first frame: from starting the pane to the status line being drawn, and to a host row with a CPU value
  (the engine's second tick at the earliest: its first, 0.3 s after start, comes before the fleet's answers);
- RSS (VmRSS, and the peak VmHWM) once three ticks have been drawn;
- key → screen: a key is sent with `tmux send-keys` and the pane is read (`capture-pane`) until it differs
  from before the key; each kind of key is pressed `--presses` times per run. The engine keeps ticking
  meanwhile (a press that meets a tick waits for it, as a user's would);
- key during the busy part of a cycle: `--tick-presses` presses of down per run, each sent a set time after one
  of the dashboard's polls was answered, the times swept evenly over the 0.05-0.65 s in which the answers are decoded,
  the tick runs and its snapshot is built and drawn; timed to the cursor being on another host (the tick's own
  redraw changes the screen too, so "the screen differs" would end the wait early).
Printed as min–median–max over all runs, with the 95th percentile where a row has 20 values or more, and the
load average at each run's start (`--busy N`: N processes spinning on the CPU meanwhile, a loaded machine on
demand). Python's bytecode cache is as after an install: a private cache dir per checkout, filled by a warm-up
start (`--no-bytecode-cache`: every start compiles the checkout's modules, as PYTHONDONTWRITEBYTECODE=1 in the
caller's environment did before this was set here). With `--against DIR` (another checkout, e.g. /work/main)
both are measured in interleaved runs (`--base-keys`: the other checkout predates the grid's keys: only down and page
down are pressed there). Enter is timed twice: to the first change (the host screen's header) and to its charts
being drawn (their time axis).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from tui_bench import end_process, spread

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GROUPS = 10
SORTS = 5  # host orders `o` cycles through
HOST_ROW = re.compile(r"[●▲✖○] web-\d{4}[^\n]*?\d+%")
STATUS = re.compile(r"sources \d+/\d+ up")
SGR = re.compile(r"\x1b\[[0-9;:]*m")  # colours and attributes in a styled capture
HOST_LINE = re.compile(r"^(.*?)(web-\d{4})", re.M)  # a host row up to its name, in a styled capture
BACKGROUND = re.compile(r"48;2;(\d+;\d+;\d+)m")  # a background colour
CHART_AXIS = re.compile(r"-\d+m .*now *$", re.M)  # a chart's time axis (-15m … now): the host screen's charts

# Which of our metrics a default promql query asks for: a distinctive piece of its text, checked in order.
_QUERY_METRIC = (("node_cpu_seconds_total{mode=~", "cpu.percent"), ("MemTotal", "mem.percent"),
                 ("MemAvailable", "mem.available_bytes"), ("node_load15", "load.15"), ("node_load5", "load.5"),
                 ("node_load1", "load.1"), ("receive", "net.rx_bps"), ("transmit", "net.tx_bps"),
                 ("read_bytes", "disk.read_bps"), ("written", "disk.write_bps"))


class FleetQueryServer:
    """Answers POST /api/v1/query like Prometheus for `hosts` hosts (instance=web-NNNN, job=pool-G)."""

    def __init__(self, hosts: int) -> None:
        self.hosts = hosts
        self.rng = random.Random(14)
        self.base = [self.rng.uniform(10, 60) for _ in range(hosts)]
        self.hot = set(self.rng.sample(range(hosts), min(hosts, 7)))  # a few hosts run hot
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[float, str]] = {}
        self.answers: list[float] = []  # when each query was answered (monotonic): the dashboard's polls
        fleet = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return None

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(size).decode())
                body = fleet.answer(form.get("query", [""])[0]).encode()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the dashboard was stopped
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                fleet.answers.append(time.monotonic())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def value(self, metric: str, i: int, t: float) -> float:
        wave = 8 * math.sin(t / 60 + i)
        cpu = min(99.0, (92.0 if i in self.hot else self.base[i]) + wave + self.rng.uniform(-3, 3))
        return {"cpu.percent": cpu, "mem.percent": 40 + (i * 7) % 50, "mem.available_bytes": 4e9 - i * 1e6,
                "load.1": cpu / 25, "load.5": cpu / 27, "load.15": cpu / 30, "net.rx_bps": 1e6 + cpu * 1e4,
                "net.tx_bps": 3e6 + cpu * 2e4, "disk.read_bps": 1e5, "disk.write_bps": 2e5}.get(metric, 0.0)

    def answer(self, query: str) -> str:
        """The answer to one query, made once a second per metric (as cheap to serve as Prometheus's)."""
        metric = next((m for piece, m in _QUERY_METRIC if piece in query), "cpu.percent")
        t = float(int(time.time()))
        with self.lock:
            cached = self.cache.get(metric)
            if cached is None or cached[0] != t:
                cached = self.cache[metric] = (t, self._make(metric, t))
        return cached[1]

    def _make(self, metric: str, t: float) -> str:
        result = [{"metric": {"instance": f"web-{i:04d}", "job": f"pool-{i % GROUPS}"},
                   "value": [t, f"{self.value(metric, i, t):.3f}"]} for i in range(self.hosts)]
        return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})

    def next_poll(self, timeout: float = 12.0) -> float | None:
        """Wait for the dashboard's next poll to be answered (its queries go out together; 50 ms without one ends
        it): when its last answer went out (monotonic), None if none came within `timeout`."""
        seen = len(self.answers)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if len(self.answers) > seen and time.monotonic() - self.answers[-1] > 0.05:
                return self.answers[-1]
            time.sleep(0.002)
        return None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def config_text(url: str, state: Path) -> str:
    return f"""
[monitor]
interval = "5s"
state_dir = "{state}"

[[host]]
name = "fleet"
source = "promql"
url = "{url}"
group_label = "job"

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
clear = 80
for = "30s"
severity = "critical"
"""


class Pane:
    """One dashboard in a private tmux server."""

    def __init__(self, root: Path, config: Path, size: tuple[int, int], env: dict[str, str]) -> None:
        self.sock = f"sw-fleet-{os.getpid()}-{time.monotonic_ns()}"
        self.tmux = ["tmux", "-L", self.sock]
        cmd = f"exec env PYTHONPATH={shlex.quote(str(root / 'src'))} {sys.executable} -m surgewatch -c {config}"
        self.t0 = time.monotonic()
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "b", "-x", str(size[0]), "-y", str(size[1]), cmd],
                       check=True, env=env)
        self.pid = int(self._tmux("display", "-p", "-t", "b", "#{pane_pid}"))
        self.socket = Path(self._tmux("display", "-p", "-t", "b", "#{socket_path}").strip())

    def _tmux(self, *args: str) -> str:
        return subprocess.run([*self.tmux, *args], capture_output=True, text=True, check=True).stdout

    def screen(self, styled: bool = False) -> str:
        """The pane's text; `styled`: with its colours and attributes (a moved cursor changes only those)."""
        return self._tmux("capture-pane", "-p", *(["-e"] if styled else []), "-t", "b")

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> float | None:
        """Seconds since the pane started until the screen matches (None if not within `timeout`)."""
        while time.monotonic() - self.t0 < timeout:
            if pattern.search(self.screen()):
                return time.monotonic() - self.t0
            time.sleep(0.01)
        return None

    def press(self, key: str, timeout: float = 3.0) -> float | None:
        """Seconds from sending `key` to the screen differing from before it (None: it did not change)."""
        return self.press_until(key, None, timeout)[0]

    def press_until(self, key: str, pattern: re.Pattern[str] | None,
                    timeout: float = 3.0) -> tuple[float | None, float | None]:
        """Seconds from sending `key` to the screen differing from before it, and to it matching `pattern`
        (None: not within `timeout`)."""
        before = self.screen(styled=True)
        t0 = time.monotonic()
        subprocess.run([*self.tmux, "send-keys", "-t", "b", key], check=True)
        changed = matched = None
        while time.monotonic() - t0 < timeout and (changed is None or (pattern is not None and matched is None)):
            now = self.screen(styled=True)
            took = time.monotonic() - t0
            if changed is None and now != before:
                changed = took
            if pattern is not None and matched is None and pattern.search(SGR.sub("", now)):
                matched = took
            time.sleep(0.002)
        return changed, matched

    def cursor(self) -> str | None:
        """The host under the grid's cursor: the one name whose background colour no other host row has."""
        seen: dict[str, list[str]] = {}
        for before, name in HOST_LINE.findall(self.screen(styled=True)):
            bg = BACKGROUND.findall(before)
            seen.setdefault(bg[-1] if bg else "", []).append(name)
        return next((names[0] for bg, names in seen.items() if bg and len(names) == 1), None)

    def press_moves_cursor(self, key: str, timeout: float = 3.0) -> float | None:
        """Seconds from sending `key` to the cursor being on another host (a tick's redraw does not count)."""
        before = self.cursor()
        t0 = time.monotonic()
        subprocess.run([*self.tmux, "send-keys", "-t", "b", key], check=True)
        while time.monotonic() - t0 < timeout:
            now = self.cursor()
            if now is not None and now != before:
                return time.monotonic() - t0
            time.sleep(0.002)
        return None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the dashboard so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the dashboard in MB."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines()
                      if ":" in line)
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)

    def close(self) -> None:
        end_process(self.pid)
        subprocess.run([*self.tmux, "kill-server"], check=False, capture_output=True)
        self.socket.unlink(missing_ok=True)  # tmux leaves its private server's socket behind


# (label, keys pressed in order, which of them the label's figure is; the keys after it put the screen back).
# Grouping is switched on and off again, so that enter always opens a host (on a group's header it folds it).
Keys = tuple[str, list[str], int]
NEW_KEYS: list[Keys] = [
    ("o: next sort order", ["o"], 0), ("g: group by host group on", ["g"], 0), ("g: grouping off again", ["g"], 0),
    ("/ then a letter: filter narrows", ["/", "7"], 1),
    ("escape: filter cleared (incl. the wait for a lone ESC)", ["Escape"], 0),
    ("enter: open the host under the cursor", ["Enter"], 0), ("1: back to the overview", ["1"], 0)]
# Backspace, esc's twin without the wait for a lone ESC (ESCDELAY: Textual's 100 ms, 25 ms in tmux here):
# pressed where the checkout has it (its overview binds it).
BACK_KEYS: list[Keys] = [("backspace: a kept filter cleared", ["/", "7", "Enter", "BSpace"], 3),
                         ("backspace: back from the host screen", ["Enter", "BSpace"], 1)]
COMMON_KEYS: list[Keys] = [("down: cursor moves", ["Down"], 0), ("pagedown: a page of hosts", ["PageDown"], 0)]
ENTER_CHARTS = "  enter: ... until its charts are drawn (ms)"
AT_TICK = "down sent 50-650 ms after the fleet's answers: cursor moved (ms)"
AT_TICK_SPAN = 0.6  # seconds after a poll's answers swept by those presses: decoding, tick, snapshot, redraw


def one_run(root: Path, config: Path, size: tuple[int, int], env: dict[str, str], presses: int,
            new_keys: bool, server: FleetQueryServer, tick_presses: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    pane = Pane(root, config, size, env)
    try:
        drawn = pane.wait_for(STATUS, 30)
        first = pane.wait_for(HOST_ROW, 30)
        out["first frame drawn, status line shown (s)"] = [drawn] if drawn is not None else []
        out["first frame with host rows (s)"] = [first] if first is not None else []
        time.sleep(4)  # past the first host rows' frames and the host screen built unseen (overview.WARM_AFTER)
        cpu0, t0 = pane.cpu_seconds(), time.monotonic()
        time.sleep(12)  # three 5 s ticks drawn by the end
        out["CPU without keys, 12 s of ticks (CPU-s/min)"] = [
            (pane.cpu_seconds() - cpu0) * 60 / (time.monotonic() - t0)]
        rss, hwm = pane.rss_mb()
        out["RSS after three ticks (MB)"] = [rss]
        out["  peak RSS, VmHWM (MB)"] = [hwm]
        back = "backspace" in (root / "src/surgewatch/tui/screens/overview.py").read_text()
        for _ in range(presses):
            for label, keys, timed in COMMON_KEYS + (NEW_KEYS if new_keys else []) + (BACK_KEYS if back else []):
                charts = took = None
                for k, key in enumerate(keys):
                    if key == "Enter" and k == timed:
                        took, charts = pane.press_until("Enter", CHART_AXIS)
                    else:
                        took_k = pane.press(key)
                        took = took_k if k == timed else took
                out.setdefault(f"{label} (ms)", [])
                if took is not None:
                    out[f"{label} (ms)"].append(took * 1000)
                if keys[timed] == "Enter":  # its second figure, right after it
                    out.setdefault(ENTER_CHARTS, []).extend([charts * 1000] if charts is not None else [])
                time.sleep(0.05)
            pane.press("Escape")
            pane.press("Home")
        for _ in range(SORTS):  # back to the default order (worst first: the most sorting a tick brings)
            if "HOST ↓" in pane.screen():
                pane.press("o")
        out[AT_TICK] = []
        for i in range(tick_presses):  # the busy part of each 5 s cycle, swept in even steps
            answered = server.next_poll()
            if answered is None:
                break
            time.sleep(max(0.0, answered + 0.05 + AT_TICK_SPAN * i / max(1, tick_presses - 1) - time.monotonic()))
            took = pane.press_moves_cursor("Down")
            if took is not None:
                out[AT_TICK].append(took * 1000)
            else:
                print(f"{root}: a down sent after a poll did not move the cursor within 3 s", file=sys.stderr)
                if os.environ.get("FLEET_BENCH_DEBUG"):
                    print(pane.screen(styled=True), file=sys.stderr)
        out["RSS after the key presses (MB)"] = [pane.rss_mb()[0]]
    finally:
        pane.close()
    return out


def spread95(values: list[float], fmt: str) -> str:
    """min–median–max, and the 95th percentile where there are 20 values or more."""
    out = spread(values, fmt)
    if len(values) >= 20:
        out += " p95 " + fmt.format(statistics.quantiles(values, n=20, method="inclusive")[-1])
    return out


def pane_env(state: Path, who: str, uncached: bool) -> dict[str, str]:
    """The dashboard's environment: its state and config dirs private; Python's bytecode cache as after an install
    (a private cache dir per checkout, filled by the warm-up start), or with `uncached` none at all (every start
    compiles the checkout's modules: what PYTHONDONTWRITEBYTECODE=1 in the caller's environment used to measure)."""
    env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8", COLORTERM="truecolor",
               XDG_STATE_HOME=str(state / "xdg"), XDG_CONFIG_HOME=str(state / "xdg-config"))
    env.pop("TMUX", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    if uncached:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(state / f"pycache-{who}")
    return env


def busy_loops(count: int) -> list[subprocess.Popen[bytes]]:
    """`count` processes spinning on the CPU (a loaded machine on demand); killed by the caller."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000, help="hosts the loopback Prometheus answers (default 1000)")
    ap.add_argument("--runs", type=int, default=3, help="dashboard starts per checkout (default 3)")
    ap.add_argument("--presses", type=int, default=8, help="presses of each key per run (default 8)")
    ap.add_argument("--against", metavar="DIR", action="append", default=[],
                    help="another checkout measured in interleaved runs (may be given more than once)")
    ap.add_argument("--size", default="80x24", help="terminal size (default 80x24)")
    ap.add_argument("--tick-presses", type=int, default=8,
                    help="presses of down per run timed from a poll's answers through the tick (default 8)")
    ap.add_argument("--base-keys", action="store_true",
                    help="press only down and page down in the --against checkout (one without o, g, / ...)")
    ap.add_argument("--busy", type=int, default=0, metavar="N",
                    help="N processes spinning on the CPU while measuring (a loaded machine; default 0)")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="run the dashboards with PYTHONDONTWRITEBYTECODE=1 and no cache (every start compiles the "
                         "checkout's modules; default: a private bytecode cache per checkout, as after an install)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the finally blocks still clean up
    cols, rows = (int(x) for x in args.size.split("x"))
    roots = {"this": ROOT} | {f"against{i + 1 if i else ''}": Path(d).resolve() for i, d in enumerate(args.against)}
    state = Path(tempfile.mkdtemp(prefix="sw-fleet-bench-"))
    server = FleetQueryServer(args.hosts)
    res: dict[str, dict[str, list[float]]] = {k: {} for k in roots}
    loads: list[float] = []
    busy = busy_loops(args.busy)
    try:
        config = state / "fleet.toml"
        config.write_text(config_text(server.url, state / "state"))
        envs = {who: pane_env(state, who, args.no_bytecode_cache) for who in roots}
        for who, root in roots.items():  # warm-up (fills the bytecode caches), not counted
            pane = Pane(root, config, (cols, rows), envs[who])
            pane.wait_for(HOST_ROW, 30)
            pane.close()
        for _ in range(args.runs):
            for who, root in roots.items():
                loads.append(os.getloadavg()[0])
                for k, v in one_run(root, config, (cols, rows), envs[who], args.presses,
                                    who == "this" or not args.base_keys, server, args.tick_presses).items():
                    res[who].setdefault(k, []).extend(v)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
        server.close()
    loads.append(os.getloadavg()[0])
    rows_out = list(res["this"])
    w0 = max(len(r) for r in rows_out)
    heads = list(roots)
    print(f"{'measure (min–median–max, p95)':<{w0}}  " + "  ".join(f"{h:>26}" for h in heads))
    print(f"{'-' * w0}  " + "  ".join("-" * 26 for _ in heads))
    for row in rows_out:
        fmt = "{:.2f}" if row.endswith(("(s)", "(CPU-s/min)")) else "{:.0f}"
        print(f"{row:<{w0}}  " + "  ".join(f"{spread95(res[h].get(row, []), fmt):>26}" for h in heads))
    print(f"{args.hosts} hosts through the promql source at a 5 s interval, {cols}x{rows} tmux; {args.runs} runs per "
          f"checkout ({', '.join(f'{k} = {v}' for k, v in roots.items())}), {args.presses} presses of each key per "
          f"run, {args.tick_presses} timed from a poll; {'no' if args.no_bytecode_cache else 'a private'} bytecode "
          f"cache; {os.cpu_count()} CPUs, {args.busy} busy loops, load average (1 min, at each run's start and the "
          f"end) {spread(loads, '{:.1f}')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
