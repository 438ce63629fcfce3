"""Builds the shipped scenario recordings deterministically: `python -m surgewatch.recording.build_scenarios [DIR]`.

Each scenario is an hour at a 5 s tick (20 quiet minutes, then a campaign) fed through a real Engine with a
Recorder attached, so its alerts and campaign events are exactly what a live session would have recorded:

- scales-fine: a campaign lifts traffic about 3.5x; two web hosts follow it with a 30 s lag and stay healthy.
- saturates:   a bigger campaign on one host drives its CPU into the limit (cpu-high fires, critical).
- incident:    a campaign runs fine while the database host, which it does not touch, spikes (unexplained).
- demo:        the built-in demo (DEMO host and campaign, 2 s tick) for 24 minutes: the launch, load following
               traffic 40 s later, and the CPU spike 14 minutes after the launch that traffic does not explain.
"""

from __future__ import annotations

import math
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import parse_config
from ..engine import Engine, EngineOptions
from ..model import series
from ..sources.base import Reading, SourceError
from .replay import ReplayDispatcher
from .writer import Recorder, RecordingWriter, attach_recorder

START = 1772355600.0  # 2026-03-01T09:00:00Z
TICK = 5.0
TICKS = 720
LAUNCH = 1200.0  # seconds after START

CONFIG = """\
# Scenario "{name}" (built by surgewatch.recording.build_scenarios). Hosts were read from node_exporter
# and traffic from the nginx access log; a replay never polls them.
[monitor]
interval = "5s"
history = "6h"
{hosts}
[[traffic]]
name = "shop"
source = "access-log"
path = "/var/log/nginx/access.log"

[[campaign]]
name = "{campaign}"
traffic = "shop"
utm_campaign = "{campaign}"
hosts = [{campaign_hosts}]
start = "2026-03-01T09:20:00Z"
end = "2026-03-01T10:00:00Z"
expected_lift = {lift}

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
clear = 80
for = "60s"
severity = "critical"

[[rule]]
name = "unexplained-load"
series = "host:*/cpu.percent"
anomaly = "unexplained"
for = "30s"
severity = "warning"

[[rule]]
name = "campaign-surge"
series = "campaign:*/visitors"
anomaly = "any"
severity = "info"
"""

HOST = """
[[host]]
name = "{name}"
source = "prometheus"
url = "http://127.0.0.1:9100/metrics"
"""


@dataclass(frozen=True)
class Scenario:
    """One story: its campaign, hosts (and which the campaign lands on) and how each host's CPU is made."""

    name: str
    campaign: str
    peak: float  # campaign visitors per minute at the peak
    hosts: tuple[str, ...]
    campaign_hosts: tuple[str, ...]
    cpu: Callable[[str, np.ndarray, np.ndarray], np.ndarray]  # (host, t, traffic lagged) -> cpu %
    lift: float
    seed: int


def _lift(t: np.ndarray) -> np.ndarray:
    after = np.maximum(t - LAUNCH, 0.0)
    shape = (1 - np.exp(-after / 120.0)) * np.exp(-np.maximum(after - 900.0, 0.0) / 1200.0)
    return np.where(t >= LAUNCH, shape, 0.0)


def _organic(t: np.ndarray) -> np.ndarray:
    return 120.0 + 10.0 * np.sin(2 * math.pi * t / 3600.0)


def _fine_cpu(host: str, t: np.ndarray, traffic: np.ndarray) -> np.ndarray:
    return 8.0 + 0.09 * traffic


def _saturating_cpu(host: str, t: np.ndarray, traffic: np.ndarray) -> np.ndarray:
    return 10.0 + 0.115 * traffic


def _incident_cpu(host: str, t: np.ndarray, traffic: np.ndarray) -> np.ndarray:
    if host == "db-1":
        spike = np.where((t >= 2400.0) & (t < 2700.0), 62.0 * np.minimum(1.0, (t - 2400.0 + 5) / 30.0), 0.0)
        return 14.0 + 0.01 * traffic + spike
    return 8.0 + 0.09 * traffic


SCENARIOS = (
    Scenario("scales-fine", "spring-newsletter", 300.0, ("web-1", "web-2"), ("web-1", "web-2"), _fine_cpu,
             3.5, 11),
    Scenario("saturates", "flash-sale", 720.0, ("web-1",), ("web-1",), _saturating_cpu, 6.0, 12),
    Scenario("incident", "tv-spot", 250.0, ("web-1", "web-2", "db-1"), ("web-1", "web-2"), _incident_cpu,
             3.0, 13),
)


def samples(sc: Scenario) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The scenario's series at every tick (deterministic for its seed)."""
    rng = np.random.default_rng(sc.seed)
    t = np.arange(TICKS) * TICK
    ts = START + t
    campaign = np.round(np.maximum(4.0 + sc.peak * _lift(t) + rng.normal(0, 1, TICKS) * np.sqrt(4.0 + sc.peak *
                                                                                                  _lift(t)), 0))
    site = np.round(np.maximum(_organic(t) + rng.normal(0, 1, TICKS) * 4.0, 0)) + campaign
    out: dict[str, np.ndarray] = {series("traffic", "shop", "visitors"): site,
                                  series("campaign", sc.campaign, "visitors"): campaign}
    for i, host in enumerate(sc.hosts):
        share = 1.0 / len(sc.campaign_hosts) if host in sc.campaign_hosts else 0.0
        lag = 6 if host in sc.campaign_hosts else 0  # 30 s at 5 s ticks
        lagged = np.concatenate([np.full(lag, site[0]), site[: TICKS - lag]]) * (share if share else 1.0)
        cpu = sc.cpu(host, t, lagged) + rng.normal(0, 1.2, TICKS)
        out[series("host", host, "cpu.percent")] = np.round(np.clip(cpu, 0, 100), 1)
        out[series("host", host, "mem.percent")] = np.round(41.0 + 3 * i + 0.01 * lagged + rng.normal(0, 0.3, TICKS),
                                                            1)
        out[series("host", host, "load.1")] = np.round(np.maximum(cpu, 0) * 0.04 + rng.normal(0, 0.02, TICKS), 2)
    return ts, out


class _ScenarioSource:
    """A named, never-polled source of the scenario (the engine only needs its name and interval)."""

    def __init__(self, name: str) -> None:
        self.name, self.interval, self.timeout, self.demo = name, TICK, TICK, False

    async def poll(self) -> Reading:
        raise SourceError("scenario sources are not polled")

    async def close(self) -> None:
        return None


def build(sc: Scenario, path: Path) -> None:
    """Run the scenario through an Engine with a Recorder and leave a compact, read-only-friendly file."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    text = CONFIG.format(name=sc.name, campaign=sc.campaign, lift=sc.lift,
                         hosts="".join(HOST.format(name=h) for h in sc.hosts),
                         campaign_hosts=", ".join(f'"{h}"' for h in sc.campaign_hosts))
    config = parse_config(text, f"scenario {sc.name}")
    sources = [_ScenarioSource(f"host:{h}") for h in sc.hosts] + [_ScenarioSource("traffic:shop")]
    clock = [START]
    engine = Engine(config, EngineOptions(dispatcher=ReplayDispatcher(()), clock=lambda: clock[0]), sources=sources)
    ts, values = samples(sc)
    engine.learn_sources({name: "traffic:shop" if not name.startswith("host:") else name.split("/", 1)[0]
                          for name in values})
    meta = {"tick_seconds": repr(TICK), "detector": engine.detector_name, "config_text": text,
            "config_label": f"scenario {sc.name}", "created": repr(START)}
    writer = RecordingWriter(str(path), meta, [(s.name, s.interval, False) for s in sources],
                             compact_every=10**9)
    engine.add_listener(Recorder(writer))
    for k, t in enumerate(ts.tolist()):
        clock[0] = t
        for src in sources:
            engine.set_source_state(src.name, ok=True, error=None, last_success=t)
        engine.tick(t, {n: float(v[k]) for n, v in values.items()})
    writer.close()
    _finish(path)


DEMO_MINUTES = 24  # the launch at 3 min and the unexplained spike at 17-19.5 min


def build_demo(path: Path, minutes: float = DEMO_MINUTES) -> None:
    """The built-in demo (this host left out) recorded as a scenario, exactly as `surgewatch --record` would."""
    from ..defaults import default_config

    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    text = default_config(1.0).text.replace('[[host]]\nname = "local"\nsource = "local"\n\n', "")
    text = text.replace("[monitor]\n", f'[monitor]\nrecord = "{path}"\n', 1)
    config = parse_config(text, "built-in demo")
    clock = [START]
    engine = Engine(config, EngineOptions(dispatcher=ReplayDispatcher(()), clock=lambda: clock[0]))
    recorder = attach_recorder(engine)
    engine.backfill_demo()
    fillers = [src for src in engine.sources if hasattr(src, "backfill")]
    for k in range(int(minutes * 60 / engine.tick_seconds)):
        t = START + k * engine.tick_seconds
        clock[0] = t
        readings: dict[str, float] = {}
        for src in fillers:
            values = src.backfill([t]).values  # the demo's value at wall time t, as its poll() would give
            readings.update({n: v[0] for n, v in values.items()})
            engine.set_source_state(src.name, ok=True, error=None, last_success=t)
            engine.learn_sources(dict.fromkeys(values, src.name))
        engine.tick(t, readings)
    if recorder is not None:
        recorder.close()
    _finish(path)


def _finish(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")  # shipped files open read-only from site-packages
    conn.execute("PRAGMA page_size=1024")  # a dozen tables and indexes: small pages keep a short file small
    conn.execute("PRAGMA auto_vacuum=NONE")  # a finished file needs no pointer-map pages
    conn.execute("VACUUM")
    conn.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "scenarios"
    out.mkdir(parents=True, exist_ok=True)
    for sc in SCENARIOS:
        path = out / f"{sc.name}.swrec"
        build(sc, path)
        print(f"{path}: {os.path.getsize(path)} bytes")
    path = out / "demo.swrec"
    build_demo(path)
    print(f"{path}: {os.path.getsize(path)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
