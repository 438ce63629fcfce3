"""Plausible client against a loopback fake answering in the Stats API v1/v2 shapes. Runtime: about 0.5 s."""

from __future__ import annotations

from datetime import datetime

import pytest

from surgewatch.sources.base import SourceError
from surgewatch.sources.plausible import PlausibleSource
from tests.support.fakes import FakePlausible, json_route, text_route
from tests.support.servers import closed_port

CAMPAIGNS = [("black-friday", "black_friday"), ("cyber", "cyber_monday"), ("quiet", "spring")]


def make(fake: FakePlausible, token: str | None = None, campaigns: list[tuple[str, str]] | None = None,
         **kw: object) -> PlausibleSource:
    return PlausibleSource("site", fake.site_id, CAMPAIGNS if campaigns is None else campaigns, 1.0, 2.0,
                           url=fake.url, token=token or fake.token, wall_clock=lambda: 1_795_438_800.0,
                           **kw)  # type: ignore[arg-type]


async def test_realtime_total_from_a_bare_integer_and_campaigns_from_the_v2_query() -> None:
    counts = {"black_friday": 1250, "cyber_monday": 240, "other": 9}
    with FakePlausible(realtime=21, campaigns=counts) as fake:
        src = make(fake)
        reading = await src.poll()
        await src.close()
    assert reading.values == {"traffic:site/visitors": 21.0, "campaign:black-friday/visitors": 1250.0,
                              "campaign:cyber/visitors": 240.0, "campaign:quiet/visitors": 0.0}
    query = next(r for r in fake.requests if r.path == "/api/v2/query").json()
    assert query["dimensions"] == ["visit:utm_campaign"]
    assert query["filters"] == [["is", "visit:utm_campaign", ["black_friday", "cyber_monday", "spring"]]]
    assert query["metrics"] == ["visitors"]
    start, end = (datetime.fromisoformat(x) for x in query["date_range"])
    assert (end - start).total_seconds() == 300 and end.utcoffset() is not None


async def test_window_sets_the_v2_date_range() -> None:
    with FakePlausible() as fake:
        src = make(fake, window=60.0)
        await src.poll()
        await src.close()
    query = next(r for r in fake.requests if r.path == "/api/v2/query").json()  # v1 and v2 go out together
    start, end = (datetime.fromisoformat(x) for x in query["date_range"])
    assert (end - start).total_seconds() == 60


async def test_without_campaigns_only_the_v1_endpoint_is_called() -> None:
    with FakePlausible(realtime=7) as fake:
        src = make(fake, campaigns=[])
        assert (await src.poll()).values == {"traffic:site/visitors": 7.0}
        await src.close()
    assert [r.path for r in fake.requests] == ["/api/v1/stats/realtime/visitors"]
    assert fake.requests[0].header("Authorization") == f"Bearer {fake.token}"


async def test_wrong_token_is_an_auth_error_with_plausibles_message_and_no_token() -> None:
    with FakePlausible() as fake:
        src = make(fake, token="wrong-token-abcdef")
        with pytest.raises(SourceError) as err:
            await src.poll()
        await src.close()
    msg = str(err.value)
    assert msg.startswith("traffic:site: authentication failed: HTTP 401: Invalid API key")
    assert "wrong-token-abcdef" not in msg and "\n" not in msg


async def test_v2_error_body_becomes_one_line() -> None:
    with FakePlausible() as fake:
        fake.fail_with = json_route({"error": "#/date_range: Invalid date range"}, 400)
        src = make(fake)
        with pytest.raises(SourceError, match=r"HTTP 400 Bad Request: #/date_range: Invalid date range"):
            await src.poll()
        await src.close()


@pytest.mark.parametrize(("body", "expected"), [(b'"twenty"', "expected a bare integer"),
                                                (b"{}", "expected a bare integer")])
async def test_realtime_body_of_the_wrong_shape_is_named(body: bytes, expected: str) -> None:
    with FakePlausible() as fake:
        fake.fail_with = (200, {"Content-Type": "application/json"}, body)
        src = make(fake, campaigns=[])
        with pytest.raises(SourceError, match=expected):
            await src.poll()
        await src.close()


async def test_html_error_page_is_reported_as_not_json() -> None:
    with FakePlausible() as fake:
        fake.fail_with = text_route("<html>maintenance</html>", 200, "text/html")
        src = make(fake, campaigns=[])
        with pytest.raises(SourceError, match=r"response is not JSON \(text/html, starts '<html>maintenance"):
            await src.poll()
        await src.close()


async def test_v2_results_without_metrics_are_a_shape_error() -> None:
    with FakePlausible() as fake:
        src = make(fake)
        fake.override["/api/v2/query"] = json_route({"results": [{"dimensions": ["x"]}]})
        with pytest.raises(SourceError, match=r"^traffic:site: v2 query results\[0\] lacks dimensions"):
            await src.poll()
        await src.close()


async def test_refused_connection_is_one_line() -> None:
    with closed_port() as port:
        src = PlausibleSource("site", "x", [], 1.0, 0.5, url=f"http://127.0.0.1:{port}", token="secret-token")
        with pytest.raises(SourceError, match=r"^traffic:site: connection refused"):
            await src.poll()
        await src.close()


async def test_a_busy_answer_is_retried_within_the_poll() -> None:
    with FakePlausible(realtime=4) as fake:
        fake.fail_next = [json_route({"error": "Too many requests"}, 429)]
        src = make(fake, campaigns=[])
        assert (await src.poll()).values == {"traffic:site/visitors": 4.0}
        await src.close()
    assert len(fake.requests) == 2


async def test_a_server_that_stays_unavailable_reports_its_last_message() -> None:
    with FakePlausible() as fake:
        fake.fail_with = json_route({"error": "ClickHouse is unavailable"}, 503)
        src = make(fake, campaigns=[])
        with pytest.raises(SourceError, match=r"HTTP 503 Service Unavailable: ClickHouse is unavailable"):
            await src.poll()
        await src.close()
    assert len(fake.requests) == 3  # the first try and two retries


async def test_goals_add_each_campaigns_conversions_from_a_goal_filtered_v2_query() -> None:
    counts, won = {"black_friday": 1250, "cyber_monday": 240}, {"black_friday": 50}
    with FakePlausible(campaigns=counts, converted=won, goals=("Purchase", "Signup")) as fake:
        src = make(fake, goals=["Purchase", "Signup"])
        reading = await src.poll()
        await src.close()
    assert reading.values["campaign:black-friday/conversions"] == 50.0
    assert reading.values["campaign:cyber/conversions"] == 0.0
    assert reading.values["campaign:black-friday/visitors"] == 1250.0
    goal_query = [r.json() for r in fake.requests if r.path == "/api/v2/query"
                  if any(f[1] == "event:goal" for f in r.json()["filters"])]
    assert goal_query and goal_query[0]["filters"][1] == ["is", "event:goal", ["Purchase", "Signup"]]


async def test_a_goal_the_site_does_not_have_is_one_line_naming_it() -> None:
    with FakePlausible(campaigns={"black_friday": 3}, goals=("Purchase",)) as fake:
        src = make(fake, goals=["Purchse"])
        with pytest.raises(SourceError) as err:
            await src.poll()
        await src.close()
    assert "Purchse" in str(err.value) and "\n" not in str(err.value)
