"""Bad input at fleet scale: a `promql` query answering 50,000 series is capped with one warning naming the query
and the cap, and the other sources keep polling while that answer is read (it yields to them).

No timing is asserted: the test checks that a quick source's polls start *inside* the big source's polls.
Runtime: a few seconds. The fleet figures (100 / 1,000 / 3,000 hosts) are in benchmarks/fleet_bench.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from surgewatch.collector import Collector
from surgewatch.sources.base import Reading
from surgewatch.sources.promql import PromQLHostSource
from tests.integration.test_promql_source import answer, big_vector
from tests.support.servers import CannedHttpServer


class Quick:
    """A source polled every millisecond that notes when each poll starts."""

    name, interval, timeout, demo = "host:quick", 0.001, 1.0, False

    def __init__(self) -> None:
        self.starts: list[float] = []

    async def poll(self) -> Reading:
        self.starts.append(time.monotonic())
        return Reading({"host:quick/cpu.percent": 10.0})

    async def close(self) -> None:
        return None


async def test_a_50000_series_answer_is_capped_and_the_other_sources_poll_while_it_is_read(
        caplog: pytest.LogCaptureFixture) -> None:
    with CannedHttpServer({"/api/v1/query": answer(big_vector(50_000), "compact")}) as srv:
        big = PromQLHostSource("fleet", srv.url, 0.2, 10.0, {"load.1": "node_load1"}, max_series=10_000)
        spans: list[tuple[float, float]] = []
        inner = big.poll

        async def timed() -> Any:
            t0 = time.monotonic()
            try:
                return await inner()
            finally:
                spans.append((t0, time.monotonic()))

        big.poll = timed  # type: ignore[method-assign]
        quick = Quick()
        collector = Collector([big, quick])
        with caplog.at_level("WARNING", logger="surgewatch.sources"):
            collector.start()
            for _ in range(200):
                if len(spans) >= 2:
                    break
                await asyncio.sleep(0.05)
            await collector.stop()
    assert len(spans) >= 2, "the big source did not finish two polls"
    assert len(collector.health["host:fleet"].series) == 10_000 and collector.health["host:fleet"].ok
    inside = [t for t in quick.starts if any(a < t < b for a, b in spans)]
    assert inside, "no poll of the quick source started while the 50,000-series answer was being read"
    warnings = [r.getMessage() for r in caplog.records if "max_series" in r.getMessage()]
    assert warnings == ["host:fleet: query for 'load.1' returned 50000 series; only the first 10000 are kept "
                        "(the max_series cap of this source; warned once)"]
