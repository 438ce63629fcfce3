"""GA4 realtime client against a loopback fake of runRealtimeReport. Runtime: about 0.3 s."""

from __future__ import annotations

import logging

import pytest

from fakes import FakeGA4, json_route
from surgewatch.sources.base import SourceError
from surgewatch.sources.ga4 import GA4Source


def make(fake: FakeGA4, token: str | None = None, campaigns: list[tuple[str, str]] | None = None,
         window: float | None = None) -> GA4Source:
    return GA4Source("site", f"properties/{fake.property_id}", campaigns or [], 1.0, 2.0,
                     token=token or fake.token, url=fake.url, window=window)


async def test_active_users_arrive_as_strings_and_become_the_total() -> None:
    with FakeGA4(active_users=2541) as fake:
        src = make(fake)
        reading = await src.poll()
        await src.close()
    assert reading.values == {"traffic:site/visitors": 2541.0}
    body = fake.requests[0].json()
    assert body["minuteRanges"] == [{"name": "window", "startMinutesAgo": 4, "endMinutesAgo": 0}]
    assert fake.requests[0].header("Authorization") == f"Bearer {fake.token}"


async def test_no_rows_means_zero_active_users() -> None:
    with FakeGA4(active_users=0) as fake:
        src = make(fake)
        assert (await src.poll()).values == {"traffic:site/visitors": 0.0}
        await src.close()


async def test_window_is_capped_at_the_30_minute_realtime_limit() -> None:
    with FakeGA4() as fake:
        src = make(fake, window=3600.0)
        await src.poll()
        await src.close()
    assert fake.requests[0].json()["minuteRanges"][0]["startMinutesAgo"] == 29


async def test_campaigns_get_no_series_and_a_notice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), FakeGA4() as fake:
        src = make(fake, campaigns=[("black-friday", "black_friday")])
        reading = await src.poll()
        await src.close()
    assert list(reading.values) == ["traffic:site/visitors"]
    notice = reading.details["notice"]
    assert "no campaign dimension" in notice and "black-friday" in notice
    assert "no campaign dimension" in caplog.text


async def test_google_error_body_becomes_one_line_without_the_token() -> None:
    with FakeGA4() as fake:
        src = make(fake, token="ya29.expired-token-xyz")
        with pytest.raises(SourceError) as err:
            await src.poll()
        await src.close()
    msg = str(err.value)
    assert msg.startswith("traffic:site: authentication failed: HTTP 401: UNAUTHENTICATED: Request had")
    assert "expired-token-xyz" not in msg


async def test_quota_error_is_reported_with_googles_status() -> None:
    with FakeGA4() as fake:
        fake.fail_with = json_route({"error": {"code": 429, "message": "Exhausted property tokens per hour.",
                                               "status": "RESOURCE_EXHAUSTED"}}, 429)
        src = make(fake)
        with pytest.raises(SourceError, match="HTTP 429 Too Many Requests: RESOURCE_EXHAUSTED: Exhausted"):
            await src.poll()
        await src.close()


async def test_rows_without_metric_values_are_a_shape_error() -> None:
    with FakeGA4() as fake:
        fake.fail_with = json_route({"rows": [{"dimensionValues": []}]})
        src = make(fake)
        with pytest.raises(SourceError, match=r"rows\[0\] has no metricValues"):
            await src.poll()
        await src.close()
