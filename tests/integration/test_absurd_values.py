"""Non-finite and absurd values are rejected where sources hand them on, each with a one-line reason."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import namedtuple
from typing import Any

import pytest

from surgewatch.collector import Collector
from surgewatch.sources.accesslog import parse_json_line
from surgewatch.sources.base import Reading, SourceError
from surgewatch.sources.local import _busy_fraction
from surgewatch.sources.prometheus import PrometheusHostSource
from surgewatch.sources.sanity import reject_reason
from surgewatch.sources.traffic_promql import PromQLTrafficSource
from tests.support.fakes import FakePrometheus
from tests.support.servers import CannedHttpServer


@pytest.mark.parametrize(("name", "value", "why"), [
    ("host:a/cpu.percent", float("nan"), "not a finite number"),
    ("host:a/load.1", float("inf"), "not a finite number"),
    ("traffic:s/visitors", 1.75e308, "beyond any real metric"),
    ("host:a/temperature", -2e15, "beyond any real metric"),
    ("host:a/mem.percent", -12.5, "negative"),
    ("probe:p/latency_ms", -1.0, "negative"),
    ("host:a/mem.percent", 130.0, "over 100%"),
])
def test_absurd_values_have_a_reason(name: str, value: float, why: str) -> None:
    reason = reject_reason(name, value)
    assert reason is not None and reason.startswith(why)


@pytest.mark.parametrize(("name", "value"), [
    ("host:a/cpu.percent", 100.0), ("host:a/mem.available_bytes", 4e12), ("host:a/temperature", -40.0),
    ("traffic:s/visitors", 0.0), ("host:a/net.rx_bps", 1.25e10), ("host:a/custom.percent", 250.0),
])
def test_real_values_pass(name: str, value: float) -> None:
    assert reject_reason(name, value) is None


class _Fixed:
    """A source that returns one fixed reading (to drive the collector's screening)."""

    def __init__(self, values: dict[str, float]) -> None:
        self.name, self.interval, self.timeout, self.demo = "host:x", 1.0, 1.0, False
        self.values = values

    async def poll(self) -> Reading:
        return Reading(dict(self.values))

    async def close(self) -> None:
        return None


def test_collector_drops_bad_values_keeps_good_ones_and_says_why_once(caplog: pytest.LogCaptureFixture) -> None:
    src = _Fixed({"host:x/cpu.percent": float("nan"), "host:x/load.1": 1.5, "host:x/mem.percent": -3.0})
    collector = Collector([src])
    with caplog.at_level(logging.WARNING, logger="surgewatch"):
        assert asyncio.run(collector.poll_once(src)) is True
        assert asyncio.run(collector.poll_once(src)) is True
    assert collector.drain() == {"host:x/load.1": 1.5}
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["source host:x: host:x/cpu.percent = nan rejected: not a finite number (and 1 more)"]


def test_a_reading_with_only_absurd_values_is_a_source_error() -> None:
    src = _Fixed({"traffic:s/visitors": 1.75e308})
    collector = Collector([src])
    assert asyncio.run(collector.poll_once(src)) is False
    h = collector.health["host:x"]
    assert not h.ok and h.error == "traffic:s/visitors = 1.75e+308 rejected: beyond any real metric (|value| > 1e+15)"


NODE = """# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{{cpu="0",mode="idle"}} {idle}
node_cpu_seconds_total{{cpu="0",mode="user"}} {user}
node_memory_MemAvailable_bytes 9e9
node_memory_MemTotal_bytes 8e9
node_load1 +Inf
node_load5 0.5
"""


def test_prometheus_nan_cpu_and_inverted_memory_never_become_values() -> None:
    pages = [NODE.format(idle=100, user=50), NODE.format(idle="NaN", user=60)]

    def page(h: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/plain"}, (pages.pop(0) if len(pages) > 1 else pages[0]).encode()

    with CannedHttpServer({"/metrics": page}) as srv:
        src = PrometheusHostSource("web", f"{srv.url}/metrics", interval=1.0, timeout=2.0)
        collector = Collector([src])

        async def twice() -> dict[str, float]:
            try:
                await collector.poll_once(src)
                await collector.poll_once(src)
                return collector.drain()
            finally:
                await collector.stop()

        values = asyncio.run(twice())
    assert values == {"host:web/load.5": 0.5, "host:web/mem.available_bytes": 9e9}  # no 100 %, no -12.5 %


def test_a_nan_cpu_counter_is_no_cpu_reading_on_the_local_source() -> None:
    times = namedtuple("times", "user idle iowait")
    assert _busy_fraction(times(10.0, 100.0, 0.0), times(float("nan"), 110.0, 0.0)) is None
    assert _busy_fraction(times(10.0, 100.0, 0.0), times(20.0, 110.0, 0.0)) == 0.5


async def test_promql_traffic_with_inf_and_huge_values_says_why(caplog: pytest.LogCaptureFixture) -> None:
    query = "sum by (utm_campaign) (rate(x[1m]))"
    vector = [({"utm_campaign": "a"}, "+Inf"), ({"utm_campaign": "b"}, "1.75e308"), ({"utm_campaign": "c"}, "2")]
    with FakePrometheus(query, vector) as fake:
        src = PromQLTrafficSource("web", fake.url, query, [("a", "a"), ("c", "c")], 1.0, 2.0,
                                  campaign_label="utm_campaign")
        collector = Collector([src])
        try:
            with caplog.at_level(logging.WARNING, logger="surgewatch"):
                assert await collector.poll_once(src) is True
        finally:
            await collector.stop()
    assert collector.drain() == {"campaign:a/visitors": 0.0, "campaign:c/visitors": 2.0}
    assert [r.getMessage() for r in caplog.records] == [
        "source traffic:web: traffic:web/visitors = 1.75e+308 rejected: beyond any real metric (|value| > 1e+15)"]


def test_json_source_value_of_1e999_is_a_one_line_error() -> None:
    from surgewatch.sources.jsonapi import JsonTrafficSource

    body = b'{"visitors": 1e999}'
    with CannedHttpServer({"/s": (200, {"Content-Type": "application/json"}, body)}) as srv:
        src = JsonTrafficSource("s", f"{srv.url}/s", [], 1.0, 2.0, value="visitors")

        async def once() -> None:
            try:
                await src.poll()
            finally:
                await src.close()

        with pytest.raises(SourceError, match="expected a finite number"):
            asyncio.run(once())


@pytest.mark.parametrize("rt", ['"inf"', '"nan"', "1.75e308", "-1", '"-inf"'])
def test_access_log_absurd_response_times_are_dropped_not_counted(rt: str) -> None:
    hit = parse_json_line(f'{{"status": 200, "remote": "1.2.3.4", "rt": {rt}}}')
    assert hit is not None and hit[3] is None  # the request counts; its response time does not


def test_access_log_status_out_of_range_is_not_a_hit() -> None:
    assert parse_json_line(json.dumps({"status": 1e300})) is None
    assert parse_json_line(json.dumps({"status": 20000})) is None


def test_access_log_response_times_over_a_day_are_not_response_times() -> None:
    from surgewatch.sources.accesslog import parse_combined

    line = '1.2.3.4 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" 99999999999999999999.0'
    hit = parse_combined(line)
    assert hit is not None and hit[3] is None
    assert parse_json_line('{"status": 200, "response_ms": 1e14}') is not None
    assert parse_json_line('{"status": 200, "response_ms": 1e14}')[3] is None  # type: ignore[index]


def test_access_log_long_but_real_response_times_in_ms_are_kept() -> None:
    hit = parse_json_line('{"status": 504, "response_ms": 120000}')
    assert hit is not None and hit[3] == 120.0
