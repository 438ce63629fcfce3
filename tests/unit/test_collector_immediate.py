"""Sources that answer on the spot (sources.base.Immediate) are polled together from one timer per interval."""

from __future__ import annotations

import asyncio

import pytest

from surgewatch.collector import Collector
from surgewatch.sources.base import Immediate, Reading, SourceError


class Spot:
    """An Immediate source: answers on the spot, or fails as told, or hands its poll to poll()."""

    def __init__(self, name: str, interval: float = 0.05) -> None:
        self.name, self.interval, self.timeout, self.demo = name, interval, 1.0, False
        self.now_calls = 0
        self.async_calls = 0
        self.fail = False
        self.later = False

    def poll_now(self) -> Reading | None:
        self.now_calls += 1
        if self.fail:
            raise SourceError("sensor unplugged")
        if self.later:
            return None
        return Reading({f"{self.name}/x": float(self.now_calls)})

    async def poll(self) -> Reading:
        self.async_calls += 1
        await asyncio.sleep(0)
        return Reading({f"{self.name}/x": -1.0 if self.fail else 7.0})

    async def close(self) -> None:
        return None


async def _run(collector: Collector, seconds: float) -> None:
    collector.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await collector.stop()


def test_a_source_with_poll_now_is_immediate() -> None:
    assert isinstance(Spot("host:a"), Immediate)


async def test_immediate_sources_are_polled_together_on_their_interval_without_tasks() -> None:
    a, b = Spot("host:a"), Spot("host:b")
    collector = Collector([a, b])
    before = len(asyncio.all_tasks())
    collector.start()
    try:
        assert len(asyncio.all_tasks()) == before  # no task per source
        await asyncio.sleep(0.28)
        assert 4 <= a.now_calls <= 8 and a.now_calls == b.now_calls  # at once, then every 50 ms
        assert collector.drain() == {"host:a/x": float(a.now_calls), "host:b/x": float(b.now_calls)}
        h = collector.health["host:a"]
        assert h.ok and h.polls == a.now_calls and h.last_success is not None
    finally:
        await collector.stop()
    calls = a.now_calls
    await asyncio.sleep(0.12)
    assert a.now_calls == calls  # stop() ends the timer


async def test_a_failing_immediate_source_backs_off_and_the_others_keep_their_beat() -> None:
    bad, good = Spot("host:bad"), Spot("host:good")
    bad.fail = True
    errors: list[tuple[str, str]] = []
    collector = Collector([bad, good])
    collector.on_error = lambda name, msg: errors.append((name, msg))
    await _run(collector, 0.5)
    assert good.now_calls >= 9
    assert bad.now_calls <= 5  # 50, 100, 200, 400 ms apart
    h = collector.health["host:bad"]
    assert not h.ok and h.error == "sensor unplugged" and h.failures == bad.now_calls
    assert errors == [("host:bad", "sensor unplugged")]  # said once
    assert "host:bad/x" not in collector.drain()


async def test_a_crashing_immediate_source_is_an_internal_error_not_the_end_of_polling(
        caplog: pytest.LogCaptureFixture) -> None:
    class Crashing(Spot):
        def poll_now(self) -> Reading | None:
            self.now_calls += 1
            raise ZeroDivisionError("division by zero")

    bad, good = Crashing("host:bad"), Spot("host:good")
    collector = Collector([bad, good])
    await _run(collector, 0.12)
    assert collector.health["host:bad"].error == "internal error: ZeroDivisionError: division by zero"
    assert "source host:bad crashed" in caplog.text and good.now_calls >= 2


async def test_an_immediate_source_that_cannot_answer_now_is_polled_through_poll() -> None:
    src = Spot("host:a")
    src.later = True
    collector = Collector([src])
    await _run(collector, 0.12)
    assert src.async_calls >= 2 and collector.drain() == {"host:a/x": 7.0}
    assert collector.health["host:a"].polls == src.async_calls  # counted once per poll
