"""A fleet on this machine: a real Prometheus scraping a synthetic fleet, and surgewatch's engine reading it.

For each fleet size (default 100, 1,000 and 3,000 hosts), on 127.0.0.1 only:
1. `fleet_exporter.py` serves node_exporter-named metrics for the hosts (10 host groups, `job` = group) and the
   campaign traffic of 10 campaigns, one per group (`campaign_requests_total{group, utm_campaign}`), and first
   writes the day before now as OpenMetrics; `promtool tsdb create-blocks-from openmetrics` turns it into TSDB
   blocks in the data dir Prometheus then starts on (Debian `prometheus`, `honor_labels: true`), so Prometheus
   holds a day of history for every host.
2. surgewatch's engine (what `surgewatch --headless` runs, here in this process so every part can be timed)
   polls it at a 15 s interval: one `promql` host source (`group_label = "job"`, the default queries: 10
   metrics per host) and one `promql` traffic source per group, with 10 campaigns landing on their groups'
   hosts, threshold, anomaly and forecast rules, and a file sink. Each campaign launches live during the run.
3. Then the real daemon (`surgewatch --headless` on the same config) for the same time: its RSS and CPU as a
   user sees them.

Per size it prints min–median–max over the measured ticks of: the fleet source's poll (10 queries through
Prometheus), the tick and its parts (store, detector, campaign analysis = the analyzer's step less the
detector, rules), RSS, and CPU seconds per minute (process user+system over the window). The first ticks
(until the store and detector have their working size) are left out: see --warmup.

With `--against DIR` the daemon of another checkout (e.g. `git worktree add ../base main`) runs beside this
one's, both polling the same Prometheus in the same window (each with its own state dir), so a change is
measured side by side on a noisy machine; `--no-engine` skips step 2.

With `--day` (no Prometheus): a day-old daemon. `fleet_day.py` drives the engine in process through
`--hours` (24) simulated hours of ticks at the interval, on this config and these source classes answered from
the same fleet model, with `--churn` (10 %) of the hosts replaced per hour; VmRSS and VmHWM after 2 minutes and
every `--every` hours, for this checkout and the `--against` one at the same time (`--repeat` runs each).

Run: PYTHONPATH=src .venv/bin/python benchmarks/fleet_bench.py [--sizes 100,1000,3000] [--minutes 3]
     [--interval 15s] [--backfill-hours 24] [--no-daemon] [--no-engine] [--against DIR] [--keep DIR]
     PYTHONPATH=src .venv/bin/python benchmarks/fleet_bench.py --day --sizes 1000 [--hours 24] [--churn 0.10]
     [--every 1] [--repeat 1] [--against DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
CHECKOUTS: dict[str, Path] = {"this": HERE.parent}  # daemon label → the checkout it runs from (--against adds one)
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent), str(HERE)]

from fleet_day import surgewatch_config  # noqa: E402
from tests.support.servers import free_port, prometheus_query, require_binary, start_process, wait_until  # noqa: E402

from surgewatch.config import load_config  # noqa: E402
from surgewatch.engine import Engine  # noqa: E402
from surgewatch.units import parse_duration  # noqa: E402

PROMETHEUS_YML = """\
global:
  scrape_interval: {scrape}
  scrape_timeout: {timeout}
scrape_configs:
  - job_name: fleet
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


class Phases:
    """Wraps the engine's parts with timers (ms per call), without changing what they do."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = {}

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        inner = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.ms.setdefault(label, []).append((time.perf_counter() - t0) * 1000)

        setattr(owner, attr, timed)

    def wrap_poll(self, source: Any, label: str) -> None:
        inner = source.poll

        async def timed() -> Any:
            t0 = time.perf_counter()
            try:
                return await inner()
            finally:
                self.ms.setdefault(label, []).append((time.perf_counter() - t0) * 1000)

        source.poll = timed

    def reset(self) -> None:
        self.ms = {}


async def run_engine(config_path: Path, minutes: float, warmup: float) -> dict[str, Any]:
    """Run the engine against the fleet; per-tick timings, RSS and CPU over the measured window."""
    from surgewatch.alerting.dispatch import build_dispatcher
    from surgewatch.engine import EngineOptions

    config = load_config(config_path)
    engine = Engine(config, EngineOptions(dispatcher=build_dispatcher(config)))
    phases = Phases()
    for src in engine.sources:
        phases.wrap_poll(src, "poll fleet" if src.name == "host:fleet" else "poll traffic")
    phases.wrap(engine, "tick", "tick")
    phases.wrap(engine.store, "append", "store")
    phases.wrap(engine.analyzer, "step", "analysis")
    phases.wrap(engine.analyzer.detector, "update", "detector")
    phases.wrap(engine.rules, "evaluate", "rules")
    proc = psutil.Process()
    rss: list[float] = []
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    await asyncio.sleep(warmup)
    phases.reset()
    cpu0, t0 = proc.cpu_times(), time.monotonic()
    end = t0 + minutes * 60.0
    while time.monotonic() < end:
        await asyncio.sleep(min(5.0, end - time.monotonic()))
        rss.append(proc.memory_info().rss / 2**20)
    cpu1, elapsed = proc.cpu_times(), time.monotonic() - t0
    series, hosts = engine.store.live, len({n.split("/")[0] for n in engine.store.names if n.startswith("host:")})
    stop.set()
    await task
    await engine.shutdown(1.0)
    ms = phases.ms
    ms["campaign analysis"] = [a - d for a, d in zip(ms.get("analysis", []), ms.get("detector", []), strict=False)]
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed * 60.0
    return {"ms": ms, "rss": rss, "cpu_s_per_min": cpu, "series": series, "hosts": hosts,
            "errors": {h.name: h.error for h in engine.collector.health.values() if h.error}}


def peak_rss(pid: int) -> float:
    """The process's peak RSS so far in MiB (VmHWM: transient peaks between samples count too)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run_daemons(configs: dict[str, Path], minutes: float, warmup: float, workdir: Path) -> dict[str, dict[str, Any]]:
    """`surgewatch --headless` of each checkout (label → its config, whose parent dir is the checkout's key in
    CHECKOUTS) side by side in the same window: RSS samples, peak RSS and CPU seconds per minute."""
    procs: dict[str, tuple[subprocess.Popen[bytes], psutil.Process]] = {}
    try:
        for label, config_path in configs.items():
            env = dict(os.environ, PYTHONPATH=str(CHECKOUTS[label] / "src"))
            with open(workdir / f"daemon-{label}.log", "wb") as log:
                p = subprocess.Popen([sys.executable, "-m", "surgewatch", "--headless", "--config", str(config_path)],
                                     stdout=log, stderr=subprocess.STDOUT, env=env)
            procs[label] = (p, psutil.Process(p.pid))
        time.sleep(warmup)
        c0 = {label: proc.cpu_times() for label, (_, proc) in procs.items()}
        t0 = time.monotonic()
        rss: dict[str, list[float]] = {label: [] for label in procs}
        end = t0 + minutes * 60.0
        while time.monotonic() < end and all(p.poll() is None for p, _ in procs.values()):
            time.sleep(min(2.0, max(0.0, end - time.monotonic())))
            for label, (p, proc) in procs.items():
                if p.poll() is None:
                    rss[label].append(proc.memory_info().rss / 2**20)
        elapsed = time.monotonic() - t0
        out = {}
        for label, (p, proc) in procs.items():
            alive = p.poll() is None
            c1 = proc.cpu_times() if alive else c0[label]
            out[label] = {"rss": rss[label], "peak": peak_rss(p.pid) if alive else float("nan"),
                          "cpu_s_per_min": (c1.user + c1.system - c0[label].user - c0[label].system) / elapsed * 60.0,
                          "exit": p.poll()}
        return out
    finally:
        for p, _ in procs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(10)


def start_fleet(hosts: int, workdir: Path, backfill_hours: float, step: float,
                launch_in: float) -> tuple[subprocess.Popen[str], int, dict[str, float]]:
    """The synthetic exporter (after writing its backfill); returns the process, its port and timings."""
    argv = [sys.executable, str(HERE / "fleet_exporter.py"), "--hosts", str(hosts), "--launch-in", f"{launch_in:g}",
            "--launch-every", "15"]
    if backfill_hours > 0:
        argv += ["--backfill", str(workdir / "day.om"), "--backfill-hours", f"{backfill_hours:g}",
                 "--backfill-step", f"{step:g}"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    timings: dict[str, float] = {}
    assert p.stdout is not None
    while True:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("the fleet exporter exited before serving")
        word, *rest = line.split()
        if word == "BACKFILL":
            timings["samples"], timings["write_s"] = float(rest[0]), float(rest[1])
        elif word == "PORT":
            return p, int(rest[0]), timings


def backfill_blocks(workdir: Path, data: Path) -> float:
    """promtool: the OpenMetrics day → TSDB blocks in Prometheus's data dir; returns seconds taken."""
    promtool = require_binary("promtool")
    t0 = time.monotonic()
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(workdir / "day.om"),
                    str(data)], check=True, stdout=subprocess.DEVNULL)
    (workdir / "day.om").unlink()
    return time.monotonic() - t0


def start_prometheus(workdir: Path, data: Path, port: int, interval: str) -> Any:
    exe = require_binary("prometheus")
    prom_port = free_port()
    (workdir / "prometheus.yml").write_text(PROMETHEUS_YML.format(scrape=interval, timeout="10s", port=port))
    url = f"http://127.0.0.1:{prom_port}"
    argv = [exe, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=3d", f"--web.listen-address=127.0.0.1:{prom_port}",
            f"--web.external-url={url}"]
    return start_process("prometheus", argv, workdir=workdir, port=prom_port, ready_url=f"{url}/-/ready",
                         timeout=120)


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    if not values:
        return "-"
    return "–".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def one_size(hosts: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    workdir = root / f"fleet-{hosts}"
    workdir.mkdir(parents=True)
    data = workdir / "prometheus-data"
    data.mkdir()
    interval = args.interval
    seconds = parse_duration(interval)
    warmup = max(3 * seconds, args.warmup)
    print(f"-- {hosts} hosts: exporter and backfill ...", file=sys.stderr, flush=True)
    exporter, port, timings = start_fleet(hosts, workdir, args.backfill_hours, args.backfill_step,
                                          launch_in=warmup + 60.0)
    prom = None
    try:
        if args.backfill_hours > 0:
            timings["promtool_s"] = backfill_blocks(workdir, data)
            print(f"   backfill: {timings['samples']:.0f} samples, written in {timings['write_s']:.0f} s, "
                  f"blocks in {timings['promtool_s']:.0f} s", file=sys.stderr, flush=True)
        prom = start_prometheus(workdir, data, port, interval)
        url = prom.url

        def scraped_twice() -> bool:  # rate() over [1m] needs two live scrapes of every host
            got = prometheus_query(url, 'count(count_over_time(node_load1[1m]) >= 2)')
            return bool(got) and float(got[0]["value"][1]) >= hosts

        wait_until(scraped_twice, 4 * seconds + 60, "two scrapes of every host", interval=1.0)
        if args.backfill_hours > 0:
            old = prometheus_query(url, 'count(node_load1 offset 12h)')
            timings["hosts_12h_ago"] = float(old[0]["value"][1]) if old else 0.0
        config = workdir / "surgewatch.toml"
        state = workdir / "state"
        state.mkdir()
        config.write_text(surgewatch_config(url, hosts, interval, state))
        engine = None
        if args.engine:
            print(f"   engine in process for {args.minutes:g} min after {warmup:g} s ...", file=sys.stderr,
                  flush=True)
            engine = asyncio.run(run_engine(config, args.minutes, warmup))
        daemons = {}
        if args.daemon:
            configs = {"this": config}
            if args.against is not None:  # the other checkout's daemon: same fleet and window, its own state dir
                other = workdir / "against"
                (other / "state").mkdir(parents=True)
                configs["against"] = other / "surgewatch.toml"
                configs["against"].write_text(surgewatch_config(url, hosts, interval, other / "state"))
            print(f"   surgewatch --headless ({', '.join(configs)}) for {args.minutes:g} min ...", file=sys.stderr,
                  flush=True)
            daemons = run_daemons(configs, args.minutes, warmup, workdir)
        return {"hosts": hosts, "engine": engine, "daemons": daemons, "timings": timings}
    finally:
        if prom is not None:
            prom.stop()
        exporter.terminate()
        exporter.wait(10)


def day_runs(hosts: int, args: argparse.Namespace) -> dict[str, list[list[dict[str, Any]]]]:
    """`--day`: `fleet_day.py` for each checkout at once (same simulated fleet, day and churn), `--repeat` times;
    checkout label → per run, its samples."""
    out: dict[str, list[list[dict[str, Any]]]] = {label: [] for label in CHECKOUTS}
    argv = ["--hosts", str(hosts), "--hours", f"{args.hours:g}", "--churn", f"{args.churn:g}", "--interval",
            f"{parse_duration(args.interval):g}", "--every", f"{args.every * 3600:g}"]
    for run in range(args.repeat):
        print(f"-- {hosts} hosts, simulated day {run + 1}/{args.repeat} ({', '.join(CHECKOUTS)} at once) ...",
              file=sys.stderr, flush=True)
        procs = {label: subprocess.Popen([sys.executable, str(HERE / "fleet_day.py"), "--src", str(where / "src"),
                                          *argv], stdout=subprocess.PIPE, text=True)
                 for label, where in CHECKOUTS.items()}
        try:
            for label, p in procs.items():
                stdout, _ = p.communicate()
                if p.returncode:
                    raise RuntimeError(f"fleet_day.py for {label} exited {p.returncode}")
                samples = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
                for e in (s["errors"] for s in samples if "errors" in s):
                    print(f"   {label}: source errors: {e}", file=sys.stderr)
                out[label].append([s for s in samples if "rss" in s])
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.terminate()
                    p.wait(10)
    return out


def day_report(hosts: int, runs: dict[str, list[list[dict[str, Any]]]], args: argparse.Namespace) -> None:
    print(f"fleet_bench --day: {hosts:,} hosts, {args.hours:g} simulated hours of {args.interval} ticks, "
          f"{args.churn * 100:g} % of the hosts replaced per hour; the engine in process (fleet_day.py); "
          f"MiB" + (f", min–median–max of {args.repeat} runs" if args.repeat > 1 else ""))
    labels = list(runs)
    w = 17 if args.repeat > 1 else 9

    def cell(values: list[float], fmt: str = "{:.1f}") -> str:
        return (spread(values, fmt) if len(values) > 1 else fmt.format(values[0]) if values else "-").rjust(w)

    print(f"{'at':>7}  " + "  ".join(f"{'RSS ' + lb:>{w}}  {'VmHWM':>{w}}  {'tick ms':>{w}}" for lb in labels)
          + f"  {'series':>7}  {'hosts':>6}  {'evicted':>7}")
    for i, row in enumerate(runs[labels[0]][0]):
        cells = []
        for lb in labels:
            at = [r[i] for r in runs[lb] if i < len(r)]
            cells.append(f"{cell([a['rss'] for a in at])}  {cell([a['hwm'] for a in at])}  "
                         f"{cell([a['tick_ms'] for a in at], '{:.0f}')}")
        h = row["hours"]
        at_label = f"{h * 60:.0f} min" if h < 1 else f"{h:g} h"
        print(f"{at_label:>7}  " + "  ".join(cells) + f"  {row['series']:>7,}  {row['hosts']:>6,}  "
              f"{row['evicted']:>7,}")
    for lb in labels:
        last = runs[lb][0][-1]
        if "bytes" in last:
            b = last["bytes"]
            print(f"{lb}: numpy arrays held at the end: detector {b['detector'] / 2**20:.1f} MiB, analyzer (with the "
                  f"detector) {b['analyzer'] / 2**20:.1f}, store {b['store'] / 2**20:.1f}; {last['real_s']:.0f} s "
                  f"real" + (f", {last['cpu_s'] / last['ticks'] * 1000:.0f} ms CPU per tick" if "cpu_s" in last
                             else ""))


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,3000", help="fleet sizes (hosts), comma-separated")
    ap.add_argument("--minutes", type=float, default=3.0, help="measured minutes per size (and per daemon run)")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before measuring (at least 3 intervals)")
    ap.add_argument("--interval", default="15s", help="poll interval, tick and scrape interval (default 15s)")
    ap.add_argument("--backfill-hours", type=float, default=24.0, help="history written by promtool (0: none)")
    ap.add_argument("--backfill-step", type=float, default=300.0, help="seconds between backfilled samples")
    ap.add_argument("--no-daemon", dest="daemon", action="store_false", help="skip the --headless run")
    ap.add_argument("--no-engine", dest="engine", action="store_false",
                    help="skip the in-process engine run (only the daemons' RSS and CPU)")
    ap.add_argument("--against", type=Path, metavar="DIR",
                    help="also run the daemon of the checkout in DIR (e.g. a worktree of main) side by side, "
                         "polling the same Prometheus in the same window")
    ap.add_argument("--day", action="store_true",
                    help="instead of Prometheus: a simulated day of ticks in process (fleet_day.py), RSS and VmHWM "
                         "every --every hours, with --churn of the hosts replaced per hour")
    ap.add_argument("--hours", type=float, default=24.0, help="--day: simulated hours (default 24)")
    ap.add_argument("--churn", type=float, default=0.10, help="--day: fraction of hosts replaced per hour (0.10)")
    ap.add_argument("--every", type=float, default=1.0, help="--day: simulated hours between samples (1)")
    ap.add_argument("--repeat", type=int, default=1, help="--day: runs per checkout (min–median–max)")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temp dir)")
    args = ap.parse_args()
    if args.against is not None:
        if not (args.against / "src" / "surgewatch").is_dir():
            ap.error(f"--against {args.against}: no src/surgewatch there (give a checkout of surgewatch)")
        CHECKOUTS["against"] = args.against.resolve()
    signal.signal(signal.SIGTERM, _interrupted)  # stop Prometheus and the exporter (by PID) on the way out
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.day:
        for hosts in sizes:
            day_report(hosts, day_runs(hosts, args), args)
        return
    root = args.keep or Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    results = []
    try:
        for hosts in sizes:
            try:
                results.append(one_size(hosts, args, root))
            except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:  # the other sizes still count
                print(f"{hosts} hosts: not measured: {exc}", file=sys.stderr)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
        report(results, args)


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"fleet_bench: {args.interval} interval, {args.minutes:g} measured minutes per run after "
          f"{args.warmup:g} s; min–median–max; ms unless named")
    cols: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("hosts", lambda r: f"{r['hosts']:,}"),
        ("series", lambda r: f"{r['engine']['series']:,}"),
        ("poll fleet", lambda r: spread(r["engine"]["ms"].get("poll fleet", []), "{:.0f}")),
        ("tick", lambda r: spread(r["engine"]["ms"].get("tick", []))),
        ("store", lambda r: spread(r["engine"]["ms"].get("store", []))),
        ("detector", lambda r: spread(r["engine"]["ms"].get("detector", []))),
        ("campaigns", lambda r: spread(r["engine"]["ms"].get("campaign analysis", []))),
        ("rules", lambda r: spread(r["engine"]["ms"].get("rules", []))),
        ("RSS MB", lambda r: spread(r["engine"]["rss"], "{:.0f}")),
        ("CPU s/min", lambda r: f"{r['engine']['cpu_s_per_min']:.2f}"),
    ]
    engines = [r for r in results if r["engine"]]
    if engines:
        table = [[name for name, _ in cols]] + [[f(r) for _, f in cols] for r in engines]
        widths = [max(len(row[k]) for row in table) for k in range(len(cols))]
        for row in table:
            print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    if any(r["daemons"] for r in results):
        print("\nsurgewatch --headless on the same config (a user's view; RSS sampled every 2 s, peak = VmHWM):")
        print(f"{'hosts':>6}  {'checkout':<40}  {'RSS MB':>12}  {'peak MB':>7}  {'CPU s/min':>9}  {'% of a core':>11}")
        for r in results:
            for label, d in r["daemons"].items():
                where = str(CHECKOUTS[label])[-40:]
                print(f"{r['hosts']:>6,}  {where:<40}  {spread(d['rss'], '{:.0f}'):>12}  {d['peak']:>7.0f}  "
                      f"{d['cpu_s_per_min']:>9.2f}  {d['cpu_s_per_min'] / 60 * 100:>10.1f}%"
                      + (f"  (exited {d['exit']})" if d["exit"] else ""))
    for r in results:
        t = r["timings"]
        if t:
            print(f"backfill {r['hosts']:,} hosts: {t.get('samples', 0):,.0f} samples ({args.backfill_hours:g} h "
                  f"every {args.backfill_step:g} s) written in {t.get('write_s', 0):.0f} s, promtool "
                  f"{t.get('promtool_s', 0):.0f} s; hosts with a sample 12 h ago: {t.get('hosts_12h_ago', 0):,.0f}")
        if r["engine"] and r["engine"]["errors"]:
            print(f"source errors at {r['hosts']:,} hosts: {r['engine']['errors']}")

if __name__ == "__main__":
    main()
