"""Campaign feeds: an iCalendar (URL or file), Mailchimp and any JSON list become campaigns; bad feeds and bad
events get one line each and leave the rest alone; a failing feed keeps its last good list."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from surgewatch.config import ConfigError, parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.feeds import build_feed
from surgewatch.recording.replay import ReplayDispatcher
from surgewatch.sources.base import SourceError
from tests.support.servers import CannedHttpServer

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC).timestamp()

CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//marketing//EN
BEGIN:VEVENT
UID:spring-1
DTSTAMP:20261201T000000Z
SUMMARY:Spring sale: TV spot
DTSTART:20261203T100000Z
DTEND:20261203T140000Z
X-SURGEWATCH-HOSTS:web-1, web-2
X-SURGEWATCH-LIFT:4
CATEGORIES:campaign
END:VEVENT
BEGIN:VEVENT
UID:news-1
DTSTAMP:20261201T000000Z
SUMMARY:Weekly newsletter
DTSTART:20261201T090000Z
DURATION:PT3H
RRULE:FREQ=WEEKLY;COUNT=6
DESCRIPTION:Send to all subscribers.\\nutm_campaign: newsletter\\nvisitors: 12,000\\nhosts: web-2
CATEGORIES:campaign,email
END:VEVENT
BEGIN:VEVENT
UID:gone-1
DTSTAMP:20261201T000000Z
SUMMARY:Cancelled flash sale
DTSTART:20261204T100000Z
DTEND:20261204T120000Z
STATUS:CANCELLED
CATEGORIES:campaign
END:VEVENT
BEGIN:VEVENT
UID:meeting-1
DTSTAMP:20261201T000000Z
SUMMARY:Marketing standup
DTSTART:20261203T093000Z
DTEND:20261203T094500Z
CATEGORIES:meeting
END:VEVENT
BEGIN:VEVENT
UID:nostart-1
DTSTAMP:20261201T000000Z
SUMMARY:Someday promo
CATEGORIES:campaign
END:VEVENT
END:VCALENDAR
"""

BASE = """
[monitor]
state_dir = "{state}"
[[host]]
name = "web-1"
source = "local"
[[traffic]]
name = "site"
source = "json"
url = "{traffic}"
value = "visitors"
items = "campaigns"
key = "utm"
"""


def config_text(tmp_path: Path, feed: str, traffic_url: str = "http://127.0.0.1:9/t") -> str:
    return BASE.format(state=tmp_path, traffic=traffic_url) + feed


def feed_of(tmp_path: Path, feed: str) -> Any:
    cfg = parse_config(config_text(tmp_path, feed), "t.toml", {})
    return build_feed(cfg.campaign_feeds[0], cfg)


def ics_route(text: str) -> Any:
    return (200, {"Content-Type": "text/calendar"}, text.encode())


async def test_an_ical_feed_expands_recurring_sends_and_maps_event_fields(tmp_path: Path) -> None:
    with CannedHttpServer({"/cal.ics": ics_route(CALENDAR)}) as srv:
        feed = feed_of(tmp_path, f'[[campaign_feed]]\nname = "marketing"\nsource = "ical"\n'
                                 f'url = "{srv.url}/cal.ics"\ncategories = ["campaign"]\n'
                                 f'hosts = ["web-1"]\nhorizon = "7d"\n')
        feed._clock = lambda: NOW
        reading = await feed.poll()
        await feed.close()
    got = {c.name: c for c in reading.details["campaigns"]}
    # the send of Dec 1 ended before the day of lookback; Dec 15 is past the 7-day horizon; cancelled, no-start
    # and non-campaign events are left out
    assert set(got) == {"Spring sale- TV spot", "Weekly newsletter@2026-12-08"}
    tv = got["Spring sale- TV spot"]
    assert (tv.hosts, tv.expected_lift, tv.feed, tv.traffic) == (("web-1", "web-2"), 4.0, "marketing", "site")
    assert tv.start == datetime(2026, 12, 3, 10, tzinfo=UTC).timestamp() and tv.end - tv.start == 4 * 3600
    news = got["Weekly newsletter@2026-12-08"]
    assert (news.utm_campaign, news.expected_visitors, news.hosts) == ("newsletter", 12000.0, ("web-2",))
    assert news.end - news.start == 3 * 3600
    assert "no start" in reading.details["notice"] and "Someday promo" in reading.details["notice"]


async def test_an_ical_file_feed_reads_the_file_and_a_missing_file_is_one_line(tmp_path: Path) -> None:
    ics = tmp_path / "cal.ics"
    ics.write_text(CALENDAR)
    feed = feed_of(tmp_path, f'[[campaign_feed]]\nname = "cal"\nsource = "ical"\npath = "{ics}"\n')
    feed._clock = lambda: NOW
    names = {c.name for c in (await feed.poll()).details["campaigns"]}
    assert "Marketing standup" in names  # no categories filter: every event
    ics.unlink()
    with pytest.raises(SourceError) as err:
        await feed.poll()
    assert "cannot read" in str(err.value) and "\n" not in str(err.value)


async def test_an_unreadable_calendar_is_one_line(tmp_path: Path) -> None:
    with CannedHttpServer({"/cal.ics": ics_route("<html>login required</html>")}) as srv:
        feed = feed_of(tmp_path, f'[[campaign_feed]]\nname = "m"\nsource = "ical"\nurl = "{srv.url}/cal.ics"\n')
        with pytest.raises(SourceError) as err:
            await feed.poll()
        await feed.close()
    assert "not an iCalendar document" in str(err.value) and "\n" not in str(err.value)


class FakeMailchimp:
    """The Mailchimp Marketing API's /3.0/campaigns in its documented shape, basic auth by API key."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.sends: dict[str, list[dict[str, Any]]] = {"schedule": [], "sending": [], "sent": []}
        self.server = CannedHttpServer({"/3.0/campaigns": self.campaigns})

    def campaigns(self, handler: Any) -> tuple[int, dict[str, str], bytes]:
        auth = handler.headers.get("Authorization", "")
        user_key = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth.startswith("Basic ") else ""
        if user_key.partition(":")[2] != self.key:
            body = {"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": "API Key Invalid",
                    "status": 401, "detail": "Your API key may be invalid, or you've attempted to access the "
                                             "wrong datacenter.", "instance": "x"}
            return 401, {"Content-Type": "application/problem+json"}, json.dumps(body).encode()
        q = parse_qs(urlsplit(handler.path).query)
        items = [s for s in self.sends[q["status"][0]]
                 if "list_id" not in q or s["recipients"]["list_id"] == q["list_id"][0]]
        doc = {"campaigns": items, "total_items": len(items)}
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()


def send(cid: str, title: str, when: str, recipients: int, list_id: str = "l1", utm: str = "",
         click_rate: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": cid, "status": "schedule", "send_time": when,
                           "settings": {"title": title, "subject_line": f"{title}!"},
                           "recipients": {"list_id": list_id, "recipient_count": recipients},
                           "tracking": {"google_analytics": utm}}
    if click_rate is not None:
        out["report_summary"] = {"click_rate": click_rate, "opens": 1, "unique_opens": 1}
    return out


async def test_mailchimp_sends_become_campaigns_sized_by_a_learned_click_rate(tmp_path: Path) -> None:
    mc = FakeMailchimp("abc123-us6")
    mc.sends["schedule"] = [send("c1", "Black Friday", "2026-12-03T10:00:00+00:00", 40_000, utm="bf26"),
                            send("c2", "Empty list", "2026-12-03T12:00:00+00:00", 0)]
    mc.sends["sent"] = [send(f"s{i}", f"old {i}", "2026-11-01T10:00:00+00:00", 1000, click_rate=r)
                        for i, r in enumerate((0.02, 0.03, 0.04))]
    with mc.server as srv:
        feed = feed_of(tmp_path, f'[[campaign_feed]]\nname = "mc"\nsource = "mailchimp"\nurl = "{srv.url}"\n'
                                 f'token = "abc123-us6"\nduration = "4h"\nhosts = ["web-1"]\n')
        feed._clock = lambda: NOW
        reading = await feed.poll()
        await feed.close()
    got = {c.name: c for c in reading.details["campaigns"]}
    bf = got["Black Friday"]
    assert bf.expected_visitors == pytest.approx(40_000 * 0.03)  # the median of the list's last sends
    assert (bf.utm_campaign, bf.end - bf.start, bf.hosts, bf.feed) == ("bf26", 4 * 3600, ("web-1",), "mc")
    assert got["Empty list"].expected_visitors is None  # kept, without an expected size
    assert "no recipients" in reading.details["notice"]


async def test_mailchimp_with_a_wrong_key_is_one_line_about_the_key(tmp_path: Path) -> None:
    mc = FakeMailchimp("right-us6")
    with mc.server as srv:
        feed = feed_of(tmp_path, f'[[campaign_feed]]\nname = "mc"\nsource = "mailchimp"\nurl = "{srv.url}"\n'
                                 f'token = "wrong-us6"\nclick_rate = 0.05\n')
        with pytest.raises(SourceError) as err:
            await feed.poll()
        await feed.close()
    msg = str(err.value)
    assert "401" in msg and "\n" not in msg and "wrong-us6" not in msg


async def test_a_json_feed_reads_campaigns_by_dotted_paths_and_names_a_bad_item(tmp_path: Path) -> None:
    doc = {"data": {"launches": [
        {"title": "App launch", "when": {"from": "2026-12-03T09:00:00Z", "to": "2026-12-03T18:00:00Z"},
         "servers": "web-1,web-2", "size": {"visitors": "25000"}},
        {"title": "No date"},
        {"title": "Pulled", "when": {"from": 1795000000}, "state": "cancelled"},
    ]}}
    with CannedHttpServer({"/plan": (200, {"Content-Type": "application/json"}, json.dumps(doc).encode())}) as srv:
        feed = feed_of(tmp_path, f'[[campaign_feed]]\nname = "pm"\nsource = "json"\nurl = "{srv.url}/plan"\n'
                                 'items = "data.launches"\n[campaign_feed.fields]\nname = "title"\n'
                                 'start = "when.from"\nend = "when.to"\nhosts = "servers"\n'
                                 'expected_visitors = "size.visitors"\nstatus = "state"\n')
        feed._clock = lambda: NOW
        reading = await feed.poll()
        await feed.close()
    (launch,) = reading.details["campaigns"]
    assert (launch.name, launch.hosts, launch.expected_visitors) == ("App launch", ("web-1", "web-2"), 25000.0)
    assert "No date" in reading.details["notice"] and "when.from" in reading.details["notice"]


@pytest.mark.parametrize(("feed", "message"), [
    ('source = "outlook"\nurl = "http://127.0.0.1:9"', "source"),
    ('source = "ical"', "needs one of url"),
    ('source = "mailchimp"\nurl = "http://127.0.0.1:9"', "token is required"),
    ('source = "mailchimp"\ntoken = "no-data-centre"', "needs url, or an API key ending in its data centre"),
    ('source = "mailchimp"\nurl = "http://127.0.0.1:9"\ntoken = "k-us1"\nclick_rate = 3', "click_rate"),
    ('source = "json"\nurl = "http://127.0.0.1:9"\n[campaign_feed.fields]\nsize = "x"', "not a campaign field"),
    ('source = "json"\nurl = "http://127.0.0.1:9"\ntraffic = "nope"', "not a [[traffic]] name"),
])
def test_a_bad_feed_table_is_one_line_naming_the_feed(tmp_path: Path, feed: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config_text(tmp_path, f'[[campaign_feed]]\nname = "f"\n{feed}\n'), "t.toml", {})
    assert message in str(err.value) and "\n" not in str(err.value) and 'campaign_feed' in str(err.value)


async def test_feed_campaigns_reach_the_engine_traffic_and_snapshot_and_survive_a_failing_feed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calendar = {"text": CALENDAR}
    traffic = {"total": 500, "campaigns": [{"utm": "newsletter", "visitors": 120}]}

    def cal(_h: Any) -> tuple[int, dict[str, str], bytes]:
        text = calendar["text"]
        return (503, {}, b"down") if text is None else ics_route(text)

    def site(_h: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, json.dumps(traffic).encode()

    with CannedHttpServer({"/cal.ics": cal, "/t": site}) as srv:
        text = config_text(tmp_path, f'[[campaign_feed]]\nname = "marketing"\nsource = "ical"\n'
                                     f'url = "{srv.url}/cal.ics"\ncategories = ["campaign"]\nhosts = ["web-1"]\n'
                                     'lookback = "3d"\n'
                                     '[[campaign]]\nname = "Weekly newsletter@2026-12-08"\ntraffic = "site"\n',
                           traffic_url=f"{srv.url}/t")
        cfg = parse_config(text, "t.toml", {})
        now = [NOW]
        engine = Engine(cfg, EngineOptions(clock=lambda: now[0], dispatcher=ReplayDispatcher(())))
        for src in engine.sources:
            if src.name == "feed:marketing":
                src._clock = lambda: now[0]  # type: ignore[attr-defined]
        feed = next(s for s in engine.sources if s.name == "feed:marketing")
        site_src = next(s for s in engine.sources if s.name == "traffic:site")

        async def step() -> None:
            assert await engine.collector.poll_once(feed) or calendar["text"] is None
            engine.tick(now[0])
            await engine.collector.poll_once(site_src)
            now[0] += 2.0
            engine.tick(now[0])

        with caplog.at_level(logging.WARNING):
            await step()
        snap = engine.snapshot()
        views = {c.name: c for c in snap.campaigns}
        assert views["Spring sale- TV spot"].feed == "marketing"
        assert views["Weekly newsletter@2026-12-08"].feed is None  # the [[campaign]] table wins over the feed
        assert "already defined" in caplog.text
        # the traffic source was told the feed's campaigns: per-campaign visitors for the feed's UTM
        assert engine.store.latest("campaign:Weekly newsletter@2026-12-01/visitors") == 120.0

        calendar["text"] = None  # the feed goes down: its campaigns stay, its source is failing
        await step()
        assert "Spring sale- TV spot" in {c.name for c in engine.snapshot().campaigns}
        health = next(s for s in engine.snapshot().sources if s.name == "feed:marketing")
        assert not health.ok and "503" in (health.error or "")

        # the event moves and another is cancelled: the campaigns follow
        calendar["text"] = CALENDAR.replace("DTSTART:20261203T100000Z", "DTSTART:20261203T110000Z").replace(
            "UID:spring-1", "UID:spring-1\nSTATUS:CANCELLED")
        await step()
        names = {c.name for c in engine.snapshot().campaigns}
        assert "Spring sale- TV spot" not in names and "Weekly newsletter@2026-12-01" in names
        await engine.shutdown(1.0)


def test_a_google_calendar_export_keeps_its_time_zone_exdates_html_description_and_all_day_events(
        tmp_path: Path) -> None:
    from surgewatch.feeds.ical import parse_calendar

    text = (Path(__file__).parents[1] / "data" / "google-calendar-export.ics").read_bytes()
    cfg = parse_config(config_text(tmp_path, '[[campaign_feed]]\nname = "g"\nsource = "ical"\npath = "/x.ics"\n'
                                             'horizon = "7d"\n'), "t.toml", {})
    result = parse_calendar(text, cfg.campaign_feeds[0], "site", NOW)
    got = {c.name: c for c in result.campaigns}
    assert sorted(got) == ["Cyber weekend (all day)", "Daily deal@2026-12-03", "Daily deal@2026-12-05",
                           "Daily deal@2026-12-06", "Daily deal@2026-12-07"]  # Dec 4 is an EXDATE
    deal = got["Daily deal@2026-12-03"]
    assert deal.start == datetime(2026, 12, 3, 9, tzinfo=UTC).timestamp()  # 10:00 Europe/Berlin
    assert (deal.hosts, deal.expected_visitors) == (("web-1", "web-2"), 5000.0)  # from <br>-separated HTML
    weekend = got["Cyber weekend (all day)"]
    assert weekend.end - weekend.start == 86400


async def test_a_restart_while_the_feed_is_down_serves_the_list_saved_by_the_last_run(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = {"up": True}

    def cal(_h: Any) -> tuple[int, dict[str, str], bytes]:
        return ics_route(CALENDAR) if state["up"] else (503, {}, b"down")

    with CannedHttpServer({"/cal.ics": cal}) as srv:
        table = f'[[campaign_feed]]\nname = "m"\nsource = "ical"\nurl = "{srv.url}/cal.ics"\n'
        first = feed_of(tmp_path, table)
        first._clock = lambda: NOW
        names = {c.name for c in (await first.poll()).details["campaigns"]}
        await first.close()
        cache = tmp_path / "feeds" / "m.json"
        assert cache.stat().st_mode & 0o777 == 0o600
        state["up"] = False
        again = feed_of(tmp_path, table)  # the daemon restarts during the calendar's outage
        again._clock = lambda: NOW
        reading = await again.poll()
        assert {c.name for c in reading.details["campaigns"]} == names
        assert "503" in reading.details["notice"] and "using the list saved" in reading.details["notice"]
        with pytest.raises(SourceError):  # from then on it is a failing feed (its list is kept by the engine)
            await again.poll()
        await again.close()
        cache.write_text("{not json")
        broken = feed_of(tmp_path, table)
        with caplog.at_level(logging.WARNING), pytest.raises(SourceError):
            await broken.poll()
        await broken.close()
    assert "unreadable" in caplog.text


def test_a_recording_keeps_the_feeds_campaigns_and_a_replay_shows_them(tmp_path: Path) -> None:
    import asyncio

    from surgewatch.recording.reader import Recording
    from surgewatch.recording.replay import ReplayDriver, replay_config
    from surgewatch.recording.writer import Recorder

    path = tmp_path / "feeds.swrec"
    with CannedHttpServer({"/cal.ics": ics_route(CALENDAR)}) as srv:
        table = (f'[[campaign_feed]]\nname = "marketing"\nsource = "ical"\nurl = "{srv.url}/cal.ics"\n'
                 'categories = ["campaign"]\n')
        cfg = parse_config(config_text(tmp_path, table), "t.toml", {})

        async def record() -> None:
            now = [NOW]
            engine = Engine(cfg, EngineOptions(clock=lambda: now[0], dispatcher=ReplayDispatcher(())))
            engine.add_listener(Recorder.for_engine(str(path), engine))
            feed = next(s for s in engine.sources if s.name == "feed:marketing")
            feed._clock = lambda: now[0]  # type: ignore[attr-defined]
            for _ in range(5):
                await engine.collector.poll_once(feed)
                engine.tick(now[0])
                now[0] += 2.0
            await engine.shutdown(1.0)

        asyncio.run(record())
    with Recording(str(path)) as rec:
        driver = ReplayDriver(rec, replay_config(rec), speed=float("inf"))
        while not driver.finished:
            driver.step()
        views = {c.name: c for c in driver.engine.snapshot().campaigns}
        asyncio.run(driver.close(0.0))
    assert views["Spring sale- TV spot"].feed == "marketing"
    assert views["Spring sale- TV spot"].hosts == ("web-1", "web-2")


def test_a_mailchimp_key_names_its_server_when_no_url_is_given(tmp_path: Path) -> None:
    from surgewatch.feeds.mailchimp import api_url

    cfg = parse_config(config_text(tmp_path, '[[campaign_feed]]\nname = "mc"\nsource = "mailchimp"\n'
                                             'token = "0123abcd-us6"\n'), "t.toml", {})
    assert api_url(cfg.campaign_feeds[0]) == "https://us6.api.mailchimp.com"  # built, never requested here
