"""Umami client against a loopback fake: self-hosted login and re-login, Cloud API key, old and new shapes.

Runtime: about 0.5 s.
"""

from __future__ import annotations

import pytest

from surgewatch.sources.base import SourceError
from surgewatch.sources.umami import CLOUD_URL, UmamiSource, active_visitors, api_base
from tests.support.fakes import FakeUmami, json_route

CAMPAIGNS = [("black-friday", "black_friday"), ("nav", "navigation"), ("quiet", "spring")]
UTM = {"black_friday": 28, "navigation": 16, "website_analytics": 3}


def self_hosted(fake: FakeUmami, password: str | None = None,
                campaigns: list[tuple[str, str]] | None = None) -> UmamiSource:
    return UmamiSource("site", fake.website_id, CAMPAIGNS if campaigns is None else campaigns, 1.0, 2.0,
                       url=fake.url, username=fake.username, password=password or fake.password,
                       wall_clock=lambda: 1_795_438_800.0)


@pytest.mark.parametrize("old_shape", [False, True])
async def test_self_hosted_logs_in_then_reads_active_visitors_and_utm_views(old_shape: bool) -> None:
    with FakeUmami(active=5, old_shape=old_shape, campaigns=UTM) as fake:
        src = self_hosted(fake)
        reading = await src.poll()
        await src.close()
    assert reading.values == {"traffic:site/visitors": 5.0, "campaign:black-friday/visitors": 28.0,
                              "campaign:nav/visitors": 16.0, "campaign:quiet/visitors": 0.0}
    assert fake.logins == 1
    report = next(r for r in fake.requests if r.path == "/api/reports/utm").json()
    assert report["type"] == "utm" and report["websiteId"] == fake.website_id
    assert report["parameters"] == {"startDate": "2026-11-23T12:55:00.000Z",
                                    "endDate": "2026-11-23T13:00:00.000Z"}


async def test_expired_token_triggers_one_new_login() -> None:
    with FakeUmami(campaigns=UTM) as fake:
        src = self_hosted(fake)
        await src.poll()
        fake.expire_tokens()
        reading = await src.poll()
        await src.close()
    assert reading.values["traffic:site/visitors"] == 5.0
    assert fake.logins == 2


async def test_wrong_password_is_an_auth_error_without_the_password() -> None:
    with FakeUmami() as fake:
        src = self_hosted(fake, password="not-the-password")
        with pytest.raises(SourceError) as err:
            await src.poll()
        await src.close()
    msg = str(err.value)
    assert msg.startswith("traffic:site: authentication failed: HTTP 401: Incorrect username and/or")
    assert "not-the-password" not in msg and "/api/auth/login" in msg


async def test_cloud_uses_the_api_key_header_and_no_login() -> None:
    with FakeUmami(cloud=True, active=12, campaigns=UTM) as fake:
        src = UmamiSource("site", fake.website_id, CAMPAIGNS[:1], 1.0, 2.0, url=f"{fake.url}/v1",
                          token=fake.api_key)
        reading = await src.poll()
        await src.close()
    assert reading.values == {"traffic:site/visitors": 12.0, "campaign:black-friday/visitors": 28.0}
    assert {r.path for r in fake.requests} == {f"/v1/websites/{fake.website_id}/active", "/v1/reports/utm"}
    assert all(r.header("x-umami-api-key") == fake.api_key for r in fake.requests)


async def test_cloud_with_a_wrong_key_reports_auth_failure_and_hides_the_key() -> None:
    with FakeUmami(cloud=True) as fake:
        src = UmamiSource("site", fake.website_id, [], 1.0, 2.0, url=f"{fake.url}/v1", token="bad-key-123456")
        with pytest.raises(SourceError, match=r"authentication failed: HTTP 401: Unauthorized") as err:
            await src.poll()
        await src.close()
    assert "bad-key-123456" not in str(err.value)


async def test_utm_report_of_an_unknown_shape_is_named() -> None:
    with FakeUmami(campaigns=UTM) as fake:
        fake.override["/api/reports/utm"] = json_route([{"x": "black_friday", "y": 3}])
        src = self_hosted(fake)
        with pytest.raises(SourceError, match=r"^traffic:site: UTM report has no `utm_campaign` list"):
            await src.poll()
        await src.close()


def test_active_visitors_accepts_both_documented_shapes_and_rejects_others() -> None:
    assert active_visitors({"visitors": 5}) == 5.0
    assert active_visitors({"x": "7"}) == 7.0
    assert active_visitors([{"x": 2}]) == 2.0
    with pytest.raises(SourceError, match="neither"):
        active_visitors({"count": 1})


def test_api_base_for_cloud_and_self_hosted() -> None:
    assert api_base(None, cloud=True) == CLOUD_URL
    assert api_base("https://stats.example.com/", cloud=False) == "https://stats.example.com/api"
    assert api_base("https://stats.example.com/api", cloud=False) == "https://stats.example.com/api"
    # Missing credentials or a self-hosted site without url: the config refuses them (test_traffic_wiring).


async def test_release_without_utm_report_sums_query_string_views_per_campaign() -> None:
    with FakeUmami(campaigns=UTM, utm_report=False) as fake:
        src = self_hosted(fake)
        first = await src.poll()
        second = await src.poll()
        await src.close()
    expected = {"traffic:site/visitors": 5.0, "campaign:black-friday/visitors": 28.0,
                "campaign:nav/visitors": 16.0, "campaign:quiet/visitors": 0.0}
    assert first.values == second.values == expected
    asked = [r[1].split("?")[0].rsplit("/", 1)[-1] for r in fake.server.requests]
    assert [a for a in asked if a in ("utm", "metrics")] == ["utm", "metrics", "metrics"]  # 404 learnt once
    metrics = next(r for r in fake.requests if r.path.endswith("/metrics")).query
    assert metrics["startAt"] == str(1_795_438_500_000) and metrics["endAt"] == str(1_795_438_800_000)


async def test_query_metrics_of_an_unknown_shape_are_named() -> None:
    with FakeUmami(campaigns=UTM, utm_report=False) as fake:
        fake.override[f"/api/websites/{fake.website_id}/metrics"] = json_route({"x": "utm_campaign=a"})
        src = self_hosted(fake)
        with pytest.raises(SourceError, match="traffic:site: query metrics answer is not a list"):
            await src.poll()
        await src.close()


async def test_utm_report_errors_after_it_once_answered_are_not_mistaken_for_an_old_release() -> None:
    with FakeUmami(campaigns=UTM) as fake:
        src = self_hosted(fake)
        await src.poll()
        fake.override["/api/reports/utm"] = json_route({"error": "Bad request"}, 400)
        with pytest.raises(SourceError, match="HTTP 400 Bad Request: Bad request"):
            await src.poll()
        await src.close()
    assert src.utm_report is True
