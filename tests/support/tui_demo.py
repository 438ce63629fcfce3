"""A deterministic demo engine for the dashboard tests: fixed clock, demo sources only, temp outbox."""

from __future__ import annotations

import dataclasses
import html
import os
import re
import time
from pathlib import Path

from surgewatch.alerting.dispatch import build_dispatcher
from surgewatch.config import parse_config
from surgewatch.defaults import default_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.sources.base import Reading, SourceError
from surgewatch.tui.app import SurgewatchApp

START = 1_760_000_000.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = START) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def use_utc() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()


def demo_engine(tmp_path: Path, speed: float = 30.0, clock: FakeClock | None = None) -> Engine:
    """The built-in demo without this machine's host, on a fake clock, with an outbox under tmp_path."""
    use_utc()
    cfg = default_config(speed)
    cfg = dataclasses.replace(cfg, hosts=tuple(h for h in cfg.hosts if h.source != "local"),
                              sinks=tuple(s for s in cfg.sinks if s.kind != "stdout"))
    clk = clock or FakeClock()
    engine = Engine(cfg, EngineOptions(demo_speed=speed, clock=clk, dispatcher=build_dispatcher(cfg, tmp_path)))
    engine.backfill_demo()
    return engine


TWO_CAMPAIGNS = """
[monitor]
interval = "250ms"
history = "6h"

[[host]]
name = "demo-web"
source = "demo"

[[host]]
name = "demo-api"
source = "demo"

[[traffic]]
name = "demo-site"
source = "demo"

[[campaign]]
name = "demo-launch"
traffic = "demo-site"
utm_campaign = "demo_launch"
hosts = ["demo-web"]
expected_lift = 4.0

[[campaign]]
name = "newsletter"
traffic = "demo-site"
utm_campaign = "newsletter"
hosts = ["demo-api"]

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
clear = 80
for = "1s"
severity = "critical"

[[rule]]
name = "unexplained-load"
series = "host:*/cpu.percent"
anomaly = "unexplained"
for = "333ms"
severity = "warning"
"""


def two_campaign_engine(tmp_path: Path, clock: FakeClock | None = None, extra_toml: str = "") -> Engine:
    """Two demo campaigns on two demo hosts (the wall's two columns), same fake clock as `demo_engine`."""
    use_utc()
    text = TWO_CAMPAIGNS.replace("[monitor]\n", f'[monitor]\nstate_dir = "{tmp_path / "state"}"\n', 1)
    cfg = parse_config(text + extra_toml, "<two campaigns>")
    clk = clock or FakeClock()
    engine = Engine(cfg, EngineOptions(demo_speed=30.0, clock=clk, dispatcher=build_dispatcher(cfg, tmp_path)))
    engine.backfill_demo()
    return engine


async def advance(engine: Engine, seconds: float) -> None:
    """Run the engine for `seconds` of fake time: poll every source, then tick, once per interval."""
    clk = engine.clock
    assert isinstance(clk, FakeClock)
    steps = max(1, round(seconds / engine.tick_seconds))
    for _ in range(steps):
        clk.t += engine.tick_seconds
        for src in engine.sources:
            await engine.collector.poll_once(src)
        engine.tick(clk.t)


def screen_text(app: SurgewatchApp) -> str:
    """What the terminal shows, as plain text (from the SVG export)."""
    svg = app.export_screenshot()
    lines: dict[str, list[str]] = {}
    for line, body in re.findall(r'<text [^>]*clip-path="url\(#[\w-]*line-(\d+)\)"[^>]*>(.*?)</text>', svg, re.S):
        lines.setdefault(line, []).append(html.unescape(re.sub(r"<[^>]+>", "", body)).replace("\xa0", " "))
    return "\n".join("".join(parts) for _, parts in sorted(lines.items(), key=lambda kv: int(kv[0])))


def make_app(engine: Engine, **kw: object) -> SurgewatchApp:
    return SurgewatchApp(engine, run_engine=False, chart_mode="block", **kw)  # type: ignore[arg-type]


class FleetSource:
    """A fake fleet source: fixed readings, or an error message."""

    def __init__(self, values: dict[str, float], error: str | None = None, name: str = "fleet") -> None:
        self.name, self.interval, self.timeout, self.demo = name, 1.0, 1.0, False
        self.values, self.error = values, error

    async def poll(self) -> Reading:
        if self.error:
            raise SourceError(self.error)
        return Reading(dict(self.values))

    async def close(self) -> None:
        return None
