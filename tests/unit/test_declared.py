"""Declared explanations: [[schedule]] windows explain host load (cause schedule); deploy annotations name a
likely cause without explaining anything away. Pure parts first, then the shipped `incident` scenario replayed
with a schedule or an annotation (about 10 s)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surgewatch.alerting.tickdata import TickData
from surgewatch.analysis.analyzer import AnalysisResult
from surgewatch.analysis.declared import DeclaredCauses
from surgewatch.analysis.detectors import DetectorOutput
from surgewatch.analysis.schedules import ScheduleCalendar, ScheduleSpec
from surgewatch.config import ConfigError, parse_config
from surgewatch.model import AlertEvent, Annotation, Cause
from surgewatch.recording.reader import Recording
from surgewatch.recording.replay import ReplayDriver, replay_config
from surgewatch.scenarios import path as scenario_path


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


BACKUP = ScheduleSpec("nightly-backup", "0 2 * * *", 45 * 60, ("db-*",))


# -- schedule windows --------------------------------------------------------------------------------------


def test_a_window_opens_at_the_cron_time_and_closes_after_its_duration() -> None:
    cal = ScheduleCalendar([BACKUP])
    assert cal.covering(at("2026-03-01T01:59:59"), "db-1") is None
    w = cal.covering(at("2026-03-01T02:00:00"), "db-1")
    assert w is not None and w.label() == "nightly-backup (02:00–02:45)"
    assert cal.covering(at("2026-03-01T02:44:59"), "db-1") is not None
    assert cal.covering(at("2026-03-01T02:45:00"), "db-1") is None
    assert cal.covering(at("2026-03-02T02:10:00"), "db-1") is not None  # the next night


def test_a_window_covers_only_the_hosts_its_globs_name_and_every_host_without_hosts() -> None:
    cal = ScheduleCalendar([BACKUP, ScheduleSpec("import", "*/15 * * * *", 60)])
    t = at("2026-03-01T02:00:30")
    assert cal.covering(t, "db-7").schedule.name == "nightly-backup"  # type: ignore[union-attr]
    assert cal.covering(t, "web-1").schedule.name == "import"  # type: ignore[union-attr]
    assert cal.covering(at("2026-03-01T02:05:00"), "web-1") is None


def test_cached_windows_agree_with_a_fresh_calendar_at_every_tick_also_when_time_goes_back() -> None:
    specs = [ScheduleSpec("a", "*/15 * * * *", 70), ScheduleSpec("b", "7 * * * *", 600), BACKUP]
    cached = ScheduleCalendar(specs)
    start = at("2026-03-01T01:00:00")
    times = [*list(start + np.arange(0, 3 * 3600, 13.0)), start + 100.0, start + 5000.0]
    for t in times:
        fresh = ScheduleCalendar(specs)
        assert [(w.schedule.name, w.start) for w in cached.open_at(t)] == \
            [(w.schedule.name, w.start) for w in fresh.open_at(t)], t


def test_cron_times_are_read_in_the_configured_time_zone_across_dst() -> None:
    paris = ZoneInfo("Europe/Paris")
    cal = ScheduleCalendar([BACKUP], paris)
    # 02:00 Paris is 01:00 UTC in winter; on 2026-03-29 02:00 does not exist (clocks go to 03:00)
    assert cal.covering(at("2026-03-01T01:10:00"), "db-1") is not None
    assert cal.covering(at("2026-03-01T02:10:00"), "db-1") is None
    summer = cal.covering(at("2026-04-01T00:10:00"), "db-1")  # 02:10 CEST
    assert summer is not None and summer.label(paris) == "nightly-backup (02:00–02:45)"


# -- config ----------------------------------------------------------------------------------------------

HOSTS = '[[host]]\nname = "db-1"\nsource = "local"\n\n'


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.toml", {})
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_schedule_tables_are_read_into_typed_config() -> None:
    cfg = parse_config(HOSTS + '[monitor]\ntimezone = "Europe/Paris"\n[[schedule]]\nname = "nightly-backup"\n'
                       'cron = "0 2 * * *"\nduration = "45m"\nhosts = ["db-*"]\n', "c.toml", {})
    (s,) = cfg.schedules
    assert (s.name, s.cron, s.duration, s.hosts) == ("nightly-backup", "0 2 * * *", 2700.0, ("db-*",))
    assert cfg.monitor.timezone == "Europe/Paris"


def test_a_bad_cron_expression_is_one_line_naming_file_line_and_key() -> None:
    msg = config_error(HOSTS + '[[schedule]]\nname = "backup"\ncron = "61 2 * * *"\nduration = "45m"\n')
    assert msg.startswith('config.toml:7: schedule "backup": cron \'61 2 * * *\' is not a cron expression')
    msg = config_error(HOSTS + '[[schedule]]\nname = "backup"\ncron = "every night"\nduration = "45m"\n')
    assert msg.startswith("config.toml:7: ") and "cron" in msg


def test_a_schedule_whose_hosts_match_no_host_is_an_error() -> None:
    msg = config_error(HOSTS + '[[schedule]]\nname = "backup"\ncron = "0 2 * * *"\nduration = "45m"\n'
                               'hosts = ["web-*"]\n')
    assert msg == "config.toml:9: schedule \"backup\": hosts ['web-*'] match no [[host]] name"


@pytest.mark.parametrize(("body", "expected"), [
    ('name = "b"\ncron = "0 2 * * *"\n', "duration is required"),
    ('name = "b"\ncron = "0 2 * * *"\nduration = "0s"\n', "duration must be at least 1s"),
    ('name = "b"\nduration = "5m"\n', "cron is required"),
    ('name = "b"\ncron = "0 2 * * *"\nduration = "5m"\nhost = ["db-1"]\n', "unknown key 'host'"),
])
def test_schedule_table_mistakes_are_one_line(body: str, expected: str) -> None:
    assert expected in config_error(HOSTS + "[[schedule]]\n" + body)


def test_an_unknown_time_zone_is_one_line() -> None:
    assert config_error('[monitor]\ntimezone = "Mars/Olympus"\n').startswith("config.toml:2: [monitor] timezone")


def test_two_schedules_with_one_name_are_an_error() -> None:
    one = '[[schedule]]\nname = "b"\ncron = "0 2 * * *"\nduration = "5m"\n'
    assert "name is used twice" in config_error(one + one)


# -- causes and explanations --------------------------------------------------------------------------------

NAMES = ["host:db-1/cpu.percent", "host:web-2/cpu.percent", "campaign:sale/visitors"]


def tick(declared: DeclaredCauses, ts: float, rows: dict[int, Cause]) -> tuple[dict[int, tuple[Cause, str | None]],
                                                                                dict[int, str]]:
    cause: dict[int, tuple[Cause, str | None]] = {r: (c, "sale" if c == Cause.CAMPAIGN else None)
                                                  for r, c in rows.items()}
    explanation = {r: f"{NAMES[r]} is high; unexplained" for r in rows}
    declared.apply(ts, NAMES, cause, explanation)
    return cause, explanation


def test_unexplained_load_inside_a_schedule_window_becomes_cause_schedule_naming_it() -> None:
    d = DeclaredCauses([BACKUP])
    cause, text = tick(d, at("2026-03-01T02:10:00"), {0: Cause.UNEXPLAINED, 1: Cause.UNEXPLAINED})
    assert cause[0] == (Cause.SCHEDULE, None)
    assert text[0] == "host:db-1/cpu.percent is high; inside schedule nightly-backup (02:00–02:45)"
    assert cause[1] == (Cause.UNEXPLAINED, None) and text[1].endswith("; unexplained")  # not a db host
    cause, _ = tick(d, at("2026-03-01T03:10:00"), {0: Cause.UNEXPLAINED})
    assert cause[0] == (Cause.UNEXPLAINED, None)  # after the window


def test_campaign_explained_load_keeps_its_campaign_inside_a_window() -> None:
    cause, _ = tick(DeclaredCauses([ScheduleSpec("all", "0 2 * * *", 3600)]), at("2026-03-01T02:10:00"),
                    {0: Cause.CAMPAIGN})
    assert cause[0] == (Cause.CAMPAIGN, "sale")


def test_an_anomaly_starting_after_a_deploy_names_it_and_stays_unexplained() -> None:
    d = DeclaredCauses()
    t0 = at("2026-03-01T10:00:00")
    d.set_annotations([Annotation(1, t0, "deploy v2.3", "web-2", 900.0)])
    tick(d, t0 + 30, {})
    cause, text = tick(d, t0 + 40, {1: Cause.UNEXPLAINED})
    assert cause[1] == (Cause.UNEXPLAINED, None)
    assert text[1] == "host:web-2/cpu.percent is high; unexplained — started 40s after deploy v2.3 on web-2"
    cause, text = tick(d, t0 + 50, {1: Cause.UNEXPLAINED})  # the same episode keeps its start
    assert text[1].endswith("started 40s after deploy v2.3 on web-2")


def test_an_annotation_concerns_its_host_only_and_a_hostless_one_every_host() -> None:
    t0 = at("2026-03-01T10:00:00")
    d = DeclaredCauses()
    d.set_annotations([Annotation(1, t0, "deploy v2.3", "web-2", 900.0)])
    _, text = tick(d, t0 + 40, {0: Cause.UNEXPLAINED})
    assert "deploy" not in text[0]
    d.set_annotations([Annotation(2, t0, "config push", None, 900.0)])
    _, text = tick(d, t0 + 40, {0: Cause.UNEXPLAINED})
    assert text[0].endswith("unexplained — started 40s after config push")


def test_an_anomaly_already_running_before_the_deploy_or_after_its_window_does_not_name_it() -> None:
    t0 = at("2026-03-01T10:00:00")
    d = DeclaredCauses()
    d.set_annotations([Annotation(1, t0, "deploy v2.3", None, 600.0)])
    tick(d, t0 - 20, {1: Cause.UNEXPLAINED})
    _, text = tick(d, t0 + 20, {1: Cause.UNEXPLAINED})
    assert "deploy" not in text[1]
    _, text = tick(d, t0 + 700, {0: Cause.UNEXPLAINED})  # starts after the 10-minute window
    assert "deploy" not in text[0]


def test_rules_read_schedule_and_recurring_as_their_own_codes() -> None:
    n = 4
    det = DetectorOutput(*(np.zeros(n) for _ in dataclasses.fields(DetectorOutput)))
    cause = {0: (Cause.CAMPAIGN, "x"), 1: (Cause.UNEXPLAINED, None), 2: (Cause.SCHEDULE, None),
             3: (Cause.RECURRING, None)}
    res = AnalysisResult(0.0, det, np.ones(n), np.zeros(n), cause)
    assert TickData(n, np.ones(n), res, None).causes().tolist() == [1, 2, 3, 4]


def test_the_json_event_cause_says_schedule() -> None:
    e = AlertEvent(0.0, "firing", "r", 1, "host:db-1/cpu.percent", 1.0, 1.0, "s", "x", "fp", 0.0,  # type: ignore[arg-type]
                   cause=Cause.SCHEDULE)
    assert e.to_json()["cause"] == "schedule"


# -- the incident scenario, replayed -------------------------------------------------------------------------
# db-1 spikes at about 09:40 while a TV spot runs on the web hosts: `unexplained-load` fires on db-1.

SCHEDULE_ON_DB = '\n[[schedule]]\nname = "db-maintenance"\ncron = "40 9 * * *"\nduration = "15m"\nhosts = ["db-1"]\n'


def _replay(rec_path: str, extra_config: str = "") -> list[AlertEvent]:
    with Recording(rec_path) as rec:
        cfg = replay_config(rec)
        if extra_config:
            cfg = parse_config(cfg.text + extra_config, "replay.toml", {})
            cfg = dataclasses.replace(cfg, monitor=dataclasses.replace(cfg.monitor, record=None))
        d = ReplayDriver(rec, cfg, speed=0)
        events: list[AlertEvent] = []
        d.on_events(events.extend)
        d.play_all()
    return events


def test_a_schedule_over_the_incident_silences_unexplained_load_and_says_why() -> None:
    plain = [e for e in _replay(scenario_path("incident")) if e.rule == "unexplained-load"]
    assert plain and plain[0].cause == Cause.UNEXPLAINED
    events = _replay(scenario_path("incident"), SCHEDULE_ON_DB)
    assert [e for e in events if e.rule == "unexplained-load"] == []


def test_a_schedule_window_shows_in_the_engines_explanation(tmp_path: Path) -> None:
    with Recording(scenario_path("incident")) as rec:
        cfg = parse_config(replay_config(rec).text + SCHEDULE_ON_DB, "replay.toml", {})
        cfg = dataclasses.replace(cfg, monitor=dataclasses.replace(cfg.monitor, record=None))
        d = ReplayDriver(rec, cfg, speed=0, end=at("2026-03-01T09:41:00"))
        d.play_all()
        res = d.engine.last_analysis
        assert res is not None
        row = d.engine.store.index["host:db-1/cpu.percent"]
        assert res.cause[row] == (Cause.SCHEDULE, None)
        assert res.explanation[row].endswith("inside schedule db-maintenance (09:40–09:55)")


def test_a_recorded_deploy_annotation_is_named_by_the_replayed_alert(tmp_path: Path) -> None:
    copy = tmp_path / "incident.swrec"
    shutil.copy(scenario_path("incident"), copy)
    deploy = at("2026-03-01T09:39:30")
    doc = Annotation(7, deploy, "deploy v2.3", "db-1", 900.0, "cli").to_json()
    with sqlite3.connect(copy) as conn:
        conn.execute("INSERT INTO events(ts, kind, doc) VALUES (?, 'annotation', ?)", (deploy, json.dumps(doc)))
    events = [e for e in _replay(str(copy)) if e.rule == "unexplained-load" and e.event == "firing"]
    assert events and events[0].cause == Cause.UNEXPLAINED  # named, never explained away
    assert re.search(r"; unexplained — started \d+s after deploy v2\.3 on db-1$", events[0].explanation), \
        events[0].explanation


def test_analyze_with_a_schedule_reports_the_db_burst_as_cause_schedule(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from surgewatch.cli import main

    with Recording(scenario_path("incident")) as rec:
        text = rec.config_text
    cfg = tmp_path / "c.toml"
    cfg.write_text(text + SCHEDULE_ON_DB)
    assert main(["analyze", str(scenario_path("incident")), "--config", str(cfg), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    db = [a for a in doc["anomalies"] if a["series"] == "host:db-1/cpu.percent" and "09:4" in a["ts"]]
    assert db and all(a["cause"] == "schedule" and a["classification"] == "schedule" for a in db)
    assert "inside schedule db-maintenance (09:40–09:55)" in db[0]["explanation"]
    assert main(["analyze", str(scenario_path("incident"))]) == 0
    assert "unexplained" in capsys.readouterr().out


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1.7e9, max_value=1.9e9), st.integers(min_value=1, max_value=899))
def test_every_15_minutes_window_matches_arithmetic(t: float, duration: int) -> None:
    cal = ScheduleCalendar([ScheduleSpec("import", "*/15 * * * *", float(duration))])
    w = cal.covering(t, "any-host")
    assert (w is not None) == ((t % 900) < duration)
    if w is not None:
        assert w.start == t - (t % 900) and w.end == w.start + duration


def test_dashboard_alert_tags_name_every_cause_in_words() -> None:
    from surgewatch.tui.widgets.alerts import cause_tag

    assert [cause_tag(c) for c in Cause] == [("campaign", "explained"), ("UNEXPL", "unexplained"),
                                             ("schedule", "explained"), ("recurs", "explained")]


async def test_a_reloaded_config_brings_its_schedules_to_the_running_engine(tmp_path: Path) -> None:
    from surgewatch.engine import Engine, EngineOptions

    base = f'[monitor]\nstate_dir = "{tmp_path}"\n[[host]]\nname = "db-1"\nsource = "local"\n'
    engine = Engine(parse_config(base, "c.toml", {}), EngineOptions(), sources=[])
    assert engine.declared.calendar.schedules == ()
    await engine.reload(parse_config(base + SCHEDULE_ON_DB, "c.toml", {}))
    assert [s.name for s in engine.declared.calendar.schedules] == ["db-maintenance"]
    assert engine.analyzer.declared is engine.declared


def test_a_qualified_verdict_keeps_its_qualifier_when_a_schedule_or_deploy_is_named() -> None:
    t0 = at("2026-03-01T02:10:00")
    d = DeclaredCauses([BACKUP])
    d.set_annotations([Annotation(1, t0 - 40, "deploy v2.3", None, 900.0)])
    names = ["host:db-1/cpu.percent", "host:web-2/cpu.percent"]
    cause: dict[int, tuple[Cause, str | None]] = {0: (Cause.UNEXPLAINED, None), 1: (Cause.UNEXPLAINED, None)}
    explanation = {0: "db-1 CPU 31% (+3 points, below the 5-point floor); unexplained, too small to alert",
                   1: "web-2 CPU 31% (+3 points, below the 5-point floor); unexplained, too small to alert"}
    d.apply(t0, names, cause, explanation)
    assert explanation[0] == ("db-1 CPU 31% (+3 points, below the 5-point floor); inside schedule nightly-backup "
                              "(02:00–02:45), too small to alert")
    assert explanation[1].endswith("; unexplained, too small to alert — started 40s after deploy v2.3")


def test_the_replay_timeline_marks_a_recorded_deploy(tmp_path: Path) -> None:
    from surgewatch.tui.replay import timeline_text

    copy = tmp_path / "incident.swrec"
    shutil.copy(scenario_path("incident"), copy)
    deploy = at("2026-03-01T09:30:00")
    doc = Annotation(3, deploy, "deploy v2.3", None, 900.0, "cli").to_json()
    with sqlite3.connect(copy) as conn:
        conn.execute("INSERT INTO events(ts, kind, doc) VALUES (?, 'annotation', ?)", (deploy, json.dumps(doc)))
    with Recording(str(copy)) as rec:
        d = ReplayDriver(rec, replay_config(rec), speed=0)
        bar = timeline_text(d, 100, ascii_only=True).plain
    assert d.annotation_times() == [deploy]
    assert bar.count("D") == 1 and bar.index("!") < bar.index("D") < bar.rindex("!")  # between the surge and db-1


def test_config_check_counts_schedules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from surgewatch.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(HOSTS + '[[schedule]]\nname = "backup"\ncron = "0 2 * * *"\nduration = "45m"\n')
    assert main(["config", "check", str(cfg)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("0 sinks, 1 schedules)")
