"""A day-old fleet daemon, in one process: `fleet_bench.py --day` runs this for each checkout and prints the table.

The engine is built from the same config as `fleet_bench.py` (one `promql` host source with `group_label = "job"`
and the default queries, one `promql` traffic source per host group, 10 campaigns, threshold, anomaly and
forecast rules, a file sink behind the outbox) and the same source classes (PromQLHostSource,
PromQLTrafficSource), whose HTTP poller is replaced by a simulated Prometheus: it answers each instant query with
the JSON Prometheus would send, from `fleet_exporter.py`'s fleet model at the simulated time. So the answers are
decoded and turned into series as in the daemon; only the socket is left out, and the clock is simulated: a day
of 15 s ticks takes minutes, not a day.

Churn: `--churn` of the hosts (10 % by default) are replaced per hour, evenly over the hour (one host every 36 s
at 1,000 hosts): a replaced host's series stop, a new host (a new `instance` value, same group) starts; the
departed host's series are evicted after 10 intervals. The campaigns' host lists name every host a group has
over the day, so new hosts join their campaign's analysis as a fleet's would.

It prints one JSON line per sample: after `--first` ticks (2 minutes: `fleet_bench.py`'s live figure) and every
`--every` simulated seconds: VmRSS and VmHWM (MiB), series and store rows held, series evicted so far, the tick's
median ms since the last sample, the process' CPU seconds so far, the interpreter's allocated blocks (Python
objects) and `resident`: MiB resident by kind of mapping (malloc heap, anonymous, files), Python's object arenas
and the objects in them, and the largest anonymous mappings ([MiB mapped, MiB resident]: the store's rings, the
detector's daily profile and context counts, ...); the last line adds the bytes of the numpy arrays held by the
detector, the store and the analyzer. `--tracemalloc N --trace-from H` adds the N allocation sites that grew most
from hour H to the end (what grows with churn). Each sample also has the ticks' CPU ms (this thread's: median,
max, and how many took over 50 ms since the last sample) and the garbage collector's CPU ms inside them; the last
sample the objects the collector tracks, by type. With `--gc idle` the checkout's `lean.TickCollector` (where it
has one) turns the automatic collector off during each tick and collects after it, as the daemon does.

Run (normally through `fleet_bench.py --day`): python benchmarks/fleet_day.py --src DIR/src [--hosts 1000]
    [--hours 24] [--churn 0.10] [--interval 15] [--every 3600] [--tracemalloc N [--trace-from H]] [--gc idle|auto]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def surgewatch_config(prom: str, hosts: int, interval: str, state: Path, names: list[str] | None = None) -> str:
    """The config a user would write for this fleet (only the URL differs for a real Prometheus/Thanos/Mimir);
    `names`: every host name the fleet has (default: `host_names(hosts)`), dealt to the campaigns by group."""
    from fleet_exporter import CAMPAIGNS, GROUPS, host_names

    names = host_names(hosts) if names is None else names
    parts = [f"""[monitor]
interval = "{interval}"
state_dir = "{state}"
timeout = "10s"
max_series = {max(20_000, hosts * 10 + 1_000)}   # the default 20,000 holds 1,900 hosts x 10 metrics

[[host]]
name = "fleet"
source = "promql"
url = "{prom}"
group_label = "job"
"""]
    for g in GROUPS:
        parts.append(f"""
[[traffic]]
name = "{g}"
source = "promql"
url = "{prom}"
query = 'sum by (utm_campaign) (rate(campaign_requests_total{{group="{g}"}}[1m]))'
campaign_label = "utm_campaign"
""")
    for k, (g, c) in enumerate(zip(GROUPS, CAMPAIGNS, strict=True)):
        group_hosts = ", ".join(f'"{n}"' for i, n in enumerate(names) if i % len(GROUPS) == k)
        parts.append(f"""
[[campaign]]
name = "{c.replace('_', '-')}"
traffic = "{g}"
utm_campaign = "{c}"
hosts = [{group_hosts}]
""")
    parts.append(f"""
[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
clear = 80
for = "1m"
severity = "critical"

[[rule]]
name = "unexplained-load"
series = "host:*/cpu.percent"
anomaly = "unexplained"
for = "30s"
severity = "warning"

[[rule]]
name = "saturation-soon"
series = "host:*/cpu.percent"
forecast_above = 90
within = "15m"

[[sink]]
kind = "file"
path = "{state / 'alerts.jsonl'}"
""")
    return "".join(parts)


def status(key: str) -> float:
    """A /proc/self/status figure in MiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return math.nan


def resident_by_kind(owners: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Resident MiB by kind of mapping (/proc/self/smaps): the malloc heap, anonymous mappings (Python's object
    arenas, numpy's larger arrays, the store's rings), files (libraries); of the anonymous ones, Python's
    object arenas and the bytes of objects in them (sys._debugmallocstats); and `huge`: MiB in transparent huge
    pages (a 2 MiB page is resident whole once any byte of it is touched: numpy asks for them on its arrays of
    4 MiB or more). `owners` (name -> numpy array): the largest anonymous mappings are named by the arrays whose
    data lie in them ([MiB mapped, MiB resident, MiB in huge pages, names])."""
    spans = []  # (start, end, name) of each named array's data
    for name, arr in (owners or {}).items():
        start = arr.__array_interface__["data"][0]
        spans.append((start, start + arr.nbytes, name))
    out: dict[str, Any] = {"heap": 0.0, "anon": 0.0, "files": 0.0, "huge": 0.0}
    big: list[list[Any]] = []  # anonymous mappings of 4 MiB or more (the largest arrays)
    kind, entry = "files", None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(maxsplit=5)
            if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
                path = head[5].strip() if len(head) > 5 else ""
                kind = "anon" if not path else "heap" if path == "[heap]" else "files"
                lo, hi = (int(a, 16) for a in head[0].split("-"))
                size = (hi - lo) / 2**20
                entry = None
            elif line.startswith("Rss:"):
                rss = int(line.split()[1]) / 1024
                out[kind] += rss
                if kind == "anon" and size >= 4:
                    names = sorted({n for a, b, n in spans if a < hi and b > lo})
                    entry = [round(size, 1), round(rss, 1), 0.0, ",".join(names)]
                    big.append(entry)
            elif line.startswith("AnonHugePages:"):
                huge = int(line.split()[1]) / 1024
                out["huge"] += huge
                if entry is not None:
                    entry[2] = round(huge, 1)
    with tempfile.TemporaryFile() as tmp:  # _debugmallocstats writes to the C stderr
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()
    for line in text.decode(errors="replace").splitlines():
        if "arenas * " in line:
            out["py_arenas"] = int(line.rsplit("=", 1)[1].replace(",", "")) / 2**20
        elif line.startswith("# bytes in allocated blocks"):
            out["py_objects"] = int(line.rsplit("=", 1)[1].replace(",", "")) / 2**20
    out = {k: round(v, 1) for k, v in out.items()}
    out["big_anon"] = sorted(big, key=lambda e: e[:3], reverse=True)
    return out


def named_arrays(obj: object, prefix: str, out: dict[str, Any] | None = None, depth: int = 0,
                 seen: set[int] | None = None) -> dict[str, Any]:
    """Every numpy array of 1 MiB or more reachable from `obj` through attributes and dicts, by path (for naming
    the mappings they live in)."""
    import numpy as np

    out = {} if out is None else out
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 6:
        return out
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        if obj.nbytes >= 2**20:
            out.setdefault(prefix, obj)
        return out
    if isinstance(obj, dict):
        items = [(str(k), v) for k, v in obj.items()][:64]
    else:
        attrs = getattr(obj, "__dict__", None) or {}
        items = list(attrs.items()) + [(s, getattr(obj, s, None)) for s in getattr(type(obj), "__slots__", ())]
    for k, v in items:
        if isinstance(v, (np.ndarray, dict)) or hasattr(v, "__dict__") or hasattr(type(v), "__slots__"):
            named_arrays(v, f"{prefix}.{k}", out, depth + 1, seen)
    return out


def array_bytes(obj: object, seen: set[int] | None = None, depth: int = 0) -> int:
    """Bytes of every numpy array reachable from `obj` through attributes, lists, tuples and dicts (each array
    once; views count nothing)."""
    import numpy as np

    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 12:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        root = obj
        while isinstance(root.base, np.ndarray):
            root = root.base
        if root.base is None or id(root) in seen:  # a view of an owner counted where it is reached itself
            return obj.nbytes if root is obj else 0
        seen.add(id(root))  # an array over a mapping (store.untouched_zeros): counted once, from any view
        return root.nbytes
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(array_bytes(v, seen, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return sum(array_bytes(v, seen, depth + 1) for v in obj.values())
    attrs = getattr(obj, "__dict__", None)
    slots = [getattr(obj, s, None) for s in getattr(type(obj), "__slots__", ())]
    return (0 if attrs is None else sum(array_bytes(v, seen, depth + 1) for v in attrs.values())) + \
        sum(array_bytes(v, seen, depth + 1) for v in slots)


class Fleet:
    """The fleet model at the simulated time, with churn: slot j's host is replaced now and then (a new name,
    same group); per tick, the values each default query would return."""

    def __init__(self, hosts: int, t0: float, hours: float, churn: float) -> None:
        from fleet_exporter import GROUPS, FleetModel, host_names

        self.model = FleetModel(hosts, t0, launch_at=t0 + 1800.0, launch_every=7200.0)  # a launch every 2 h
        self.base = host_names(hosts)
        self.groups = [GROUPS[i % len(GROUPS)] for i in range(hosts)]
        self.t0, self.churn, self.hosts = t0, churn, hosts
        self.generations = math.ceil(hours * churn) + 1
        self.names = list(self.base)
        self.prev = self.counters()
        self.values: dict[str, Any] = {}

    def name(self, slot: int, generation: int) -> str:
        return self.base[slot] if generation == 0 else f"{self.base[slot]}-r{generation}"

    def every_name(self) -> list[str]:
        """Every host name over the run, slot by slot (so `i % 10` is still the group)."""
        return [self.name(j, g) for g in range(self.generations) for j in range(self.hosts)]

    def counters(self) -> Any:
        import numpy as np

        m = self.model
        return np.stack([m.cpu_s[:, :, 2:].sum(axis=(1, 2)), m.rx, m.tx, m.read, m.written]), m.requests.copy()

    def advance(self, t: float) -> None:
        """Move the model to t; replace the hosts due by now; the per-metric values of this tick."""
        import numpy as np

        m = self.model
        dt = t - m.t
        m.advance(t)
        replaced = int(self.hosts * self.churn * (t - self.t0) / 3600.0)  # hosts replaced so far, evenly
        for j in range(self.hosts):
            gen = replaced // self.hosts + (1 if j < replaced % self.hosts else 0)
            self.names[j] = self.name(j, gen)
        (host_c, req), (host_p, req_p) = self.counters(), self.prev
        rate = (host_c - host_p) / dt
        self.prev = (host_c, req)
        avail = m.mem_total * (1.0 - np.clip(m.mem_base + 0.25 * m.busy, 0.05, 0.97))
        cpus = np.full(self.hosts, float(m.cpu_s.shape[1]))
        self.values = {
            "cpu.percent": 100.0 * rate[0] / cpus, "mem.percent": 100.0 * (1.0 - avail / m.mem_total),
            "mem.available_bytes": avail, "load.1": m.load[0], "load.5": m.load[1], "load.15": m.load[2],
            "net.rx_bps": rate[1], "net.tx_bps": rate[2], "disk.read_bps": rate[3], "disk.write_bps": rate[4],
            "requests": (req - req_p) / dt,  # [group, campaign or organic] per second
        }


def simulated_prometheus(fleet: Fleet, clock: Any, label: str, base_url: str) -> Any:
    """An HttpPoller whose requests are answered as Prometheus would, from the fleet model, without a socket."""
    import httpx
    from fleet_exporter import CAMPAIGNS, GROUPS

    from surgewatch.sources.http import HttpPoller, HttpResponse
    from surgewatch.sources.promql import default_queries

    metric_of = {q: m for m, q in default_queries("instance", group_label="job").items()}
    group_re = re.compile(r'group="([^"]+)"')

    class SimulatedPrometheus(HttpPoller):
        async def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                          json_body: Any = None, data: Mapping[str, Any] | None = None, accept: str | None = None,
                          check_status: bool = True, retry: bool = True) -> HttpResponse:
            query = str((data or params or {}).get("query", ""))
            ts = f"{clock():.3f}"
            if query in metric_of:
                values = fleet.values[metric_of[query]]
                items = [f'{{"metric":{{"instance":"{n}","job":"{g}"}},"value":[{ts},"{float(v)!r}"]}}'
                         for n, g, v in zip(fleet.names, fleet.groups, values.tolist(), strict=True)]
            else:
                g = GROUPS.index(group_re.search(query).group(1))  # type: ignore[union-attr]
                camp, organic = fleet.values["requests"][g].tolist()
                items = [f'{{"metric":{{"utm_campaign":"{utm}"}},"value":[{ts},"{v!r}"]}}'
                         for utm, v in ((CAMPAIGNS[g], camp), ("(none)", organic))]
            body = ('{"status":"success","data":{"resultType":"vector","result":[' + ",".join(items) + "]}}").encode()
            self.last_success, self.last_elapsed = clock(), 0.001
            return HttpResponse(200, "OK", httpx.Headers({"Content-Type": "application/json"}), body, 0.001)

    return SimulatedPrometheus(label=label, base_url=base_url, timeout=10.0)


async def day(hosts: int, hours: float, churn: float, interval: float, every: float, first: int,
              trace: int = 0, trace_from: float = 0.0, gc_mode: str = "auto") -> None:
    import numpy as np
    from fleet_exporter import GROUPS

    import surgewatch.httpclient  # noqa: F401  the daemon's HTTP client libraries (aiohttp, httpx) are resident
    from surgewatch.alerting.dispatch import build_dispatcher
    from surgewatch.config import parse_config
    from surgewatch.engine import Engine, EngineOptions
    from surgewatch.sources.promql import PromQLHostSource
    from surgewatch.sources.traffic_promql import PromQLTrafficSource

    t0 = 1_800_000_000.0 - 1_800_000_000.0 % 86400.0 + 6 * 3600.0  # 06:00 UTC: the day's rise comes first
    now = [t0]

    def clock() -> float:
        return now[0]

    url = "http://127.0.0.1:9090"
    fleet = Fleet(hosts, t0, hours, churn)
    with tempfile.TemporaryDirectory(prefix="fleet-day-") as d:
        state = Path(d) / "state"
        state.mkdir()
        text = surgewatch_config(url, hosts, f"{interval:g}s", state, fleet.every_name())
        config = parse_config(text, str(Path(d) / "surgewatch.toml"))
        timeout = 10.0
        sources: list[Any] = [PromQLHostSource("fleet", url, interval, timeout, None, group_label="job",
                                               poller=simulated_prometheus(fleet, clock, "host:fleet", url),
                                               max_series=10_000)]
        for t in config.traffic:
            sources.append(PromQLTrafficSource(t.name, url, t.query, [], interval, timeout,  # type: ignore[attr-defined]
                                               campaign_label="utm_campaign",
                                               http=simulated_prometheus(fleet, clock, f"traffic:{t.name}", url)))
        assert len(sources) == 1 + len(GROUPS)
        engine = Engine(config, EngineOptions(clock=clock, dispatcher=build_dispatcher(config)), sources=sources)
        engine.dispatcher.start()
        ticks = round(hours * 3600.0 / interval)
        per_sample = max(1, round(every / interval))
        tick_ms: list[float] = []
        tick_cpu: list[float] = []
        gc_ms = [0.0, 0.0]  # in the ticks since the last sample; the start of the pass running

        def on_gc(phase: str, _info: Mapping[str, int]) -> None:
            if phase == "start":
                gc_ms[1] = time.thread_time()
            elif in_tick[0]:
                gc_ms[0] += (time.thread_time() - gc_ms[1]) * 1000

        in_tick = [False]
        gc.callbacks.append(on_gc)
        import surgewatch.lean as lean

        collector = lean.TickCollector() if gc_mode == "idle" and hasattr(lean, "TickCollector") else None
        since: list[Any] = []  # the tracemalloc snapshot at hour trace_from
        started = time.monotonic()

        def sample(k: int, final: bool = False) -> None:
            store = engine.store
            out: dict[str, Any] = {
                "hours": k * interval / 3600.0, "ticks": k, "rss": status("VmRSS"), "hwm": status("VmHWM"),
                "series": store.live, "rows": len(store), "evicted": engine.evicted,
                "hosts": len({n.split("/")[0] for n in store.index if n.startswith("host:")}),
                "tick_ms": statistics.median(tick_ms) if tick_ms else math.nan,
                "tick_cpu_ms": [round(statistics.median(tick_cpu), 2), round(max(tick_cpu), 2),
                                sum(ms > 50.0 for ms in tick_cpu)] if tick_cpu else None,
                "gc_in_ticks_ms": round(gc_ms[0], 1), "gc": gc_mode if collector is not None else "auto",
                "real_s": time.monotonic() - started, "cpu_s": time.process_time(),
                "py_blocks": sys.getallocatedblocks()}
            if trace:
                import tracemalloc

                if trace_from and not final and out["hours"] >= trace_from and not since:
                    since.append(tracemalloc.take_snapshot())
                if final:
                    snap = tracemalloc.take_snapshot()
                    top = snap.statistics("lineno")[:trace]
                    out["tracemalloc"] = [(str(st.traceback[0]), round(st.size / 2**20, 2)) for st in top]
                    if since:  # which allocation sites grew since hour `trace_from`
                        diff = snap.compare_to(since[0], "lineno")[:trace]
                        out["tracemalloc_growth"] = [(str(d.traceback[0]), round(d.size_diff / 2**20, 3),
                                                      d.count_diff) for d in diff]
            owners = named_arrays(engine.analyzer, "analyzer") | named_arrays(store, "store")
            owners |= named_arrays(engine, "engine")
            out["resident"] = resident_by_kind(owners)
            if final:  # the store's rings are views of their reservations: the rows in use count
                rings = sum(r.data.nbytes for r in (store.fine, store.coarse))
                out["bytes"] = {"detector": array_bytes(engine.analyzer.detector),
                                "store": rings + array_bytes(store), "analyzer": array_bytes(engine.analyzer)}
            if final:  # what the collector's full pass walks (frozen or not), by type
                gc.unfreeze()
                kinds = collections.Counter(type(o).__name__ for o in gc.get_objects())
                out["gc_tracked"] = [sum(kinds.values()), kinds.most_common(12)]
            print(json.dumps(out), flush=True)
            tick_ms.clear()
            tick_cpu.clear()
            gc_ms[0] = 0.0

        for k in range(1, ticks + 1):
            now[0] += interval
            fleet.advance(now[0])
            for src in engine.sources:
                await engine.collector.poll_once(src)
            if collector is not None:
                collector.before_tick()
            c0, u0 = time.perf_counter(), time.thread_time()
            in_tick[0] = True
            engine.tick(now[0])
            in_tick[0] = False
            tick_cpu.append((time.thread_time() - u0) * 1000)
            tick_ms.append((time.perf_counter() - c0) * 1000)
            if collector is not None:  # the daemon's idle time after the tick
                collector.after_tick()
            await asyncio.sleep(0)  # the outbox worker delivers between ticks
            if k in (first, ticks) or k % per_sample == 0:
                sample(k, final=k == ticks)
        errors = {h.name: h.error for h in engine.collector.health.values() if h.error}
        if errors:
            print(json.dumps({"errors": errors}), flush=True)
        await engine.shutdown(2.0)
        gc.callbacks.remove(on_gc)
        del np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, required=True, help="the src directory of the checkout to run")
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours")
    ap.add_argument("--churn", type=float, default=0.10, help="fraction of the hosts replaced per hour")
    ap.add_argument("--interval", type=float, default=15.0, help="tick and poll interval, seconds")
    ap.add_argument("--every", type=float, default=3600.0, help="simulated seconds between samples")
    ap.add_argument("--first", type=int, default=8, help="also sample after this many ticks (2 min at 15 s)")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="N",
                    help="trace allocations (slower) and add the N largest allocation sites to the last sample")
    ap.add_argument("--trace-from", type=float, default=0.0, metavar="H",
                    help="with --tracemalloc: also the N sites that grew most from the sample at hour H to the end")
    ap.add_argument("--gc", choices=("idle", "auto"), default="auto", help="idle: collect after each tick as the "
                    "daemon does (the checkout's lean.TickCollector, where it has one); auto: the collector alone")
    args = ap.parse_args()
    sys.path[:0] = [str(args.src.resolve()), str(HERE)]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start()
    asyncio.run(day(args.hosts, args.hours, args.churn, args.interval, args.every, args.first, args.tracemalloc,
                    args.trace_from, args.gc))


if __name__ == "__main__":
    main()
