"""A synthetic fleet for Prometheus to scrape: node_exporter-named metrics for N hosts in host groups, and the
campaign traffic that lands on each group, from one loopback /metrics endpoint (Prometheus keeps our
`instance` and `job` labels with `honor_labels: true`).

The model, vectorised over hosts: a daily cycle; per-host base load, sensitivity to traffic and noise (AR(1));
10 campaigns, one per host group, each with a launch that lifts its group's traffic (visitors) and so its hosts'
CPU, load and network; a few hosts with an incident of their own (CPU up, traffic flat: unexplained).
Counters (CPU seconds, bytes) are integrated from the rates, so `rate()` gives back the model.

`--backfill FILE` writes the day before now as OpenMetrics (for `promtool tsdb create-blocks-from openmetrics`)
and the live endpoint then carries on from the same state (counters never go back).

Run: python benchmarks/fleet_exporter.py --hosts 1000 [--backfill day.om --backfill-hours 24]
It prints "PORT <port>" once serving on 127.0.0.1, then serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

GROUPS = ("shop-web", "api", "checkout", "search", "media", "auth", "cart", "blog", "mobile-api", "payments")
CAMPAIGNS = ("spring_sale", "black_friday", "newsletter", "tv_spot", "flash_sale", "app_launch", "loyalty",
             "influencer", "retargeting", "clearance")
CPUS = 1  # one CPU per host: node_exporter-shaped, and a day of backfill stays small
MODES = ("idle", "iowait", "user", "system")


def host_names(hosts: int) -> list[str]:
    """The `instance` label of each host: hosts are dealt to the groups in turn (host i is in group i % 10)."""
    return [f"{GROUPS[i % len(GROUPS)]}-{i // len(GROUPS):04d}" for i in range(hosts)]


class FleetModel:
    """The state of every host and campaign; `advance(t)` integrates counters up to time t."""

    def __init__(self, hosts: int, t0: float, seed: int = 1, launch_at: float | None = None,
                 launch_every: float = 60.0) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.n = hosts
        g = np.arange(hosts) % len(GROUPS)
        self.group = g
        per_group = np.bincount(g, minlength=len(GROUPS)).astype(float)
        self.names = host_names(hosts)
        self.base = rng.uniform(0.08, 0.30, hosts)  # busy fraction at night without campaigns
        self.daily = rng.uniform(0.05, 0.15, hosts)  # extra busy fraction at the daily peak
        # visitors/s of its group's campaign that the whole group needs to go from idle to full: per host share
        self.sens = rng.uniform(0.7, 1.3, hosts) / (per_group[g] * 4.0)
        self.noise_sd = rng.uniform(0.01, 0.04, hosts)
        self.noise = np.zeros(hosts)
        self.mem_total = rng.choice([8.0, 16.0, 32.0], hosts) * 2**30
        self.mem_base = rng.uniform(0.25, 0.55, hosts)
        self.bytes_per_visit = rng.uniform(2e5, 6e5, hosts)
        # campaigns: organic visitors/s per group, and a launch each (the day before, and one live)
        self.organic = rng.uniform(2.0, 10.0, len(GROUPS)) * per_group / per_group.mean()
        self.push = rng.uniform(3.0, 6.0, len(GROUPS)) * per_group / 4.0  # peak extra visitors/s of a launch
        past = t0 - 86400.0 + rng.uniform(6, 20, len(GROUPS)) * 3600.0  # yesterday's launches
        live = (launch_at if launch_at is not None else t0 + 120.0) + launch_every * np.arange(len(GROUPS))
        self.launches = np.stack([past, live], axis=1)
        # a few hosts with an incident of their own: two 10-minute spells of a hot CPU, traffic flat
        self.incident = rng.choice(hosts, max(1, hosts // 200), replace=False)
        self.incident_at = t0 + rng.uniform(-20, 1, self.incident.shape[0]) * 3600.0
        # counters [host, cpu, mode], bytes, campaign requests
        self.t = t0
        self.cpu_s = np.zeros((hosts, CPUS, len(MODES)))
        self.rx = np.zeros(hosts)
        self.tx = np.zeros(hosts)
        self.read = np.zeros(hosts)
        self.written = np.zeros(hosts)
        self.requests = np.zeros((len(GROUPS), 2))  # [group, campaign or organic]
        self.load = np.zeros((3, hosts))
        self.busy = self.base.copy()
        self.visitors = self.organic.copy()
        self.lock = threading.Lock()

    def campaign_visitors(self, t: float) -> np.ndarray:
        """Visitors/s that each group's campaign brings at time t (0 outside its launches)."""
        since = t - self.launches  # [group, launch]
        on = since > 0
        s = np.where(on, since, 0.0)
        shape = (1.0 - np.exp(-s / 180.0)) * np.exp(-s / 5400.0)
        return (np.where(on, shape, 0.0) * self.push[:, None]).sum(axis=1)

    def advance(self, t: float) -> None:
        """Integrate every counter from the last time to t (the rates evaluated at t)."""
        dt = t - self.t
        if dt <= 0:
            return
        day = 0.5 + 0.5 * math.sin(2 * math.pi * ((t % 86400.0) / 86400.0 - 0.375))  # peak at 15:00 UTC
        camp = self.campaign_visitors(t)
        organic = self.organic * (0.3 + 0.7 * day)
        visitors = organic + camp
        rho = math.exp(-dt / 300.0)
        self.noise = rho * self.noise + math.sqrt(1 - rho * rho) * self.noise_sd * self.rng.standard_normal(self.n)
        busy = self.base + self.daily * day + self.sens * visitors[self.group] + self.noise
        hot = ((t - self.incident_at) % 43200.0 < 600.0) & (t > self.incident_at)
        busy[self.incident[hot]] = 0.93
        busy = np.clip(busy, 0.01, 0.99)
        share = visitors[self.group] / np.bincount(self.group, minlength=len(GROUPS))[self.group]
        idle = 1.0 - busy
        self.cpu_s += dt * np.stack([idle * 0.97, idle * 0.03, busy * 0.75, busy * 0.25], axis=1)[:, None, :]
        self.rx += dt * (2e4 + share * self.bytes_per_visit * 0.1)
        self.tx += dt * (5e4 + share * self.bytes_per_visit)
        self.read += dt * (1e5 + 2e6 * busy)
        self.written += dt * (3e5 + 4e6 * busy)
        self.requests[:, 0] += dt * camp * 8.0  # requests per visitor
        self.requests[:, 1] += dt * organic * 8.0
        for k, tau in enumerate((60.0, 300.0, 900.0)):
            a = math.exp(-dt / tau)
            self.load[k] = a * self.load[k] + (1 - a) * CPUS * busy * 1.3
        self.busy, self.visitors, self.t = busy, visitors, t

    def families(self) -> list[tuple[str, str, list[str], np.ndarray]]:
        """Metric families as (name, type, per-series label text, values)."""
        host_labels = [f'instance="{name}",job="{GROUPS[g]}"' for name, g in zip(self.names, self.group, strict=True)]
        cpu_labels = [f'cpu="{c}",{h},mode="{m}"' for h in host_labels for c in range(CPUS) for m in MODES]
        avail = self.mem_total * (1.0 - np.clip(self.mem_base + 0.25 * self.busy, 0.05, 0.97))
        nic = [f'device="eth0",{h}' for h in host_labels]
        disk = [f'device="vda",{h}' for h in host_labels]
        camp = [f'group="{g}",instance="lb-{g}",job="traffic",utm_campaign="{c}"'
                for g, c in zip(GROUPS, CAMPAIGNS, strict=True)]
        organic = [f'group="{g}",instance="lb-{g}",job="traffic",utm_campaign="(none)"' for g in GROUPS]
        return [
            ("node_cpu_seconds_total", "counter", cpu_labels, self.cpu_s.reshape(-1)),
            ("node_memory_MemTotal_bytes", "gauge", host_labels, self.mem_total),
            ("node_memory_MemAvailable_bytes", "gauge", host_labels, avail),
            ("node_load1", "gauge", host_labels, self.load[0]),
            ("node_load5", "gauge", host_labels, self.load[1]),
            ("node_load15", "gauge", host_labels, self.load[2]),
            ("node_network_receive_bytes_total", "counter", nic, self.rx),
            ("node_network_transmit_bytes_total", "counter", nic, self.tx),
            ("node_disk_read_bytes_total", "counter", disk, self.read),
            ("node_disk_written_bytes_total", "counter", disk, self.written),
            ("campaign_requests_total", "counter", camp + organic,
             np.concatenate([self.requests[:, 0], self.requests[:, 1]])),
        ]

    def exposition(self) -> bytes:
        """The Prometheus text format of the current state."""
        out = []
        for name, kind, labels, values in self.families():
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{name}{{{lab}}} {v:.6g}" if kind == "gauge" else f"{name}{{{lab}}} {v:.17g}"
                       for lab, v in zip(labels, values.tolist(), strict=True))
        out.append("")
        return "\n".join(out).encode()


def write_backfill(model: FleetModel, path: Path, end: float, hours: float, step: float) -> int:
    """Simulate from `end - hours` to `end` every `step` seconds and write OpenMetrics; returns samples written.

    Families must not interleave in OpenMetrics: each family goes to its own part file as the simulation
    runs (timestamp-major: each series' times increase), and the parts are joined at the end."""
    times = np.arange(end - hours * 3600.0 + step, end + step / 2, step)
    samples = 0
    parts: list[tuple[Path, str, str]] = []
    files = []
    try:
        for t in times.tolist():
            model.advance(t)
            fams = model.families()
            if not files:
                for k, (name, kind, _, _) in enumerate(fams):
                    part = path.with_name(f"{path.name}.part{k}")
                    parts.append((part, name[: -len("_total")] if kind == "counter" else name, kind))
                    files.append(open(part, "w"))  # noqa: SIM115 (closed below)
                prefixes = [[f"{name}{{{lab}}} " for lab in labels] for name, _, labels, _ in fams]
            stamp = f" {t:.0f}\n"
            for f, pre, (_, _, _, values) in zip(files, prefixes, fams, strict=True):
                f.write("".join(p + f"{v:.12g}" + stamp for p, v in zip(pre, values.tolist(), strict=True)))
                samples += len(pre)
    finally:
        for f in files:
            f.close()
    with open(path, "w") as out:
        for part, family, kind in parts:
            out.write(f"# TYPE {family} {kind}\n")
            with open(part) as f:
                while chunk := f.read(1 << 20):
                    out.write(chunk)
            part.unlink()
        out.write("# EOF\n")
    return samples


def serve(model: FleetModel) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            with model.lock:
                model.advance(time.time())
                body = model.exposition()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backfill", type=Path, help="write the past as OpenMetrics to this file first")
    ap.add_argument("--backfill-hours", type=float, default=24.0)
    ap.add_argument("--backfill-step", type=float, default=300.0, help="seconds between backfilled samples")
    ap.add_argument("--launch-in", type=float, default=120.0, help="first live campaign launch, seconds from now")
    ap.add_argument("--launch-every", type=float, default=60.0, help="seconds between live launches")
    args = ap.parse_args()
    now = time.time()
    hours = args.backfill_hours if args.backfill else 0.0
    model = FleetModel(args.hosts, now - hours * 3600.0, args.seed, launch_at=now + args.launch_in,
                       launch_every=args.launch_every)
    if args.backfill:
        started = time.perf_counter()
        n = write_backfill(model, args.backfill, now, hours, args.backfill_step)
        print(f"BACKFILL {n} {time.perf_counter() - started:.1f}", flush=True)
    server = serve(model)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever(poll_interval=0.2)
    sys.exit(0)


if __name__ == "__main__":
    main()
