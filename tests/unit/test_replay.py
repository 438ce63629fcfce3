"""Replay: recorded ticks through analysis and rules again — same alerts with the same config, new ones with another."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path

import pytest

from surgewatch.cli import main
from surgewatch.recording.build_scenarios import SCENARIOS, build
from surgewatch.recording.reader import Recording
from surgewatch.recording.replay import ReplayDriver, replay_config
from surgewatch.scenarios import names, path


def _alerts(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[dict[str, object]]:
    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_the_shipped_scenarios_are_there() -> None:
    assert names() == ["demo", "incident", "saturates", "scales-fine"]
    assert all(path(n).stat().st_size < 100_000 for n in names())


def test_a_fresh_recording_replays_to_exactly_its_recorded_alerts(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    # Built now (not the shipped file), so the recorded alerts come from the analysis code under test.
    scenario = next(s for s in SCENARIOS if s.name == "incident")
    fresh = tmp_path / "incident.swrec"
    build(scenario, fresh)
    with Recording(str(fresh)) as rec:
        recorded = [e.doc for e in rec.events("alert")]
    assert len(recorded) >= 4
    replayed = _alerts(capsys, ["replay", str(fresh), "--headless"])
    assert [{k: v for k, v in a.items() if k != "key"} for a in replayed] == recorded


@functools.cache
def _firing(name: str) -> frozenset[tuple[str, str, str | None]]:
    rec = Recording(str(path(name)))
    d = ReplayDriver(rec, replay_config(rec), speed=0)
    fired: set[tuple[str, str, str | None]] = set()
    d.on_events(lambda evs: fired.update((e.rule, e.series, e.cause.value if e.cause else None)
                                         for e in evs if e.event == "firing"))
    d.play_all()
    rec.close()
    return frozenset(fired)


def test_saturating_campaign_fires_cpu_high_explained_by_the_campaign() -> None:
    assert ("cpu-high", "host:web-1/cpu.percent", "campaign") in _firing("saturates")


def test_incident_during_a_campaign_is_unexplained_load_on_the_untouched_host() -> None:
    fired = _firing("incident")
    assert ("unexplained-load", "host:db-1/cpu.percent", "unexplained") in fired
    assert not any(series.startswith("host:web-") for _r, series, _c in fired)


def test_the_recorded_demo_tells_the_demo_story_as_demo() -> None:
    fired = _firing("demo")
    assert ("unexplained-load", "host:demo-web/cpu.percent", "unexplained") in fired
    assert ("campaign-surge", "campaign:demo-launch/visitors", None) in fired
    with Recording(str(path("demo"))) as rec:
        assert all(s.demo for s in rec.sources)
        assert all(e.doc.get("demo") is True for e in rec.events("alert"))


def test_a_campaign_that_scales_fine_only_reports_the_surge() -> None:
    assert {rule for rule, _s, _c in _firing("scales-fine")} == {"campaign-surge"}


def test_a_changed_rule_can_be_tried_on_the_recording(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with Recording(str(path("scales-fine"))) as rec:
        text = rec.config_text
    stricter = tmp_path / "stricter.toml"
    stricter.write_text(text.replace("above = 90\nclear = 80\nfor = \"60s\"", "above = 25\nclear = 20\nfor = \"20s\""))
    alerts = _alerts(capsys, ["replay", "scales-fine", "--headless", "--config", str(stricter)])
    assert any(a["rule"] == "cpu-high" and a["event"] == "firing" for a in alerts)


def test_from_and_to_limit_the_printed_alerts_to_the_range(capsys: pytest.CaptureFixture[str]) -> None:
    with Recording(str(path("saturates"))) as rec:
        cpu_fired = next(e.doc for e in rec.events("alert") if e.doc["rule"] == "cpu-high")
    part = _alerts(capsys, ["replay", "saturates", "--headless", "--from", "+25m", "--to", "2026-03-01T09:45:00Z"])
    # cpu-high fired before 09:25 and resolves at 09:41:35: only the resolution is in range, computed as live
    # (campaign-surge stays firing while the visitors hold far above their level of the hour before)
    assert [(a["rule"], a["event"]) for a in part] == [("cpu-high", "resolved")]
    assert part[0]["started"] == cpu_fired["started"]


def test_bad_range_and_config_are_one_line_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["replay", "saturates", "--headless", "--from", "yesterday"]) == 2
    assert "--from must be a time" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[monitor]\ninterval = 5\n")
    assert main(["replay", "saturates", "--headless", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.toml" in err


def _driver(speed: float = 1.0) -> ReplayDriver:
    rec = Recording(str(path("saturates")))
    return ReplayDriver(rec, replay_config(rec), speed=speed)


def test_driver_steps_seeks_back_and_forth_and_reaches_the_same_state() -> None:
    d = _driver()
    first = float(d.timeline[0])
    for _ in range(10):
        d.step()
    assert d.index == 10 and d.position == first + 45.0
    d.seek(first + 1800.0)
    forward = (d.index, d.engine.store.latest("host:web-1/cpu.percent"), dict(d.engine.rules.active))
    d.seek(first + 600.0)
    assert d.position == first + 600.0 and d.index < forward[0]
    d.seek(first + 1800.0)
    assert (d.index, d.engine.store.latest("host:web-1/cpu.percent")) == forward[:2]
    assert d.engine.rules.active.keys() == forward[2].keys()


def test_seeking_emits_no_events_but_playing_does() -> None:
    d = _driver()
    seen: list[str] = []
    d.on_events(lambda evs: seen.extend(e.rule for e in evs))
    d.seek(float(d.timeline[0]) + 1700.0)  # past the campaign-surge and cpu-high firings
    assert seen == []
    d.play_all()
    assert "cpu-high" in seen


async def test_run_honours_pause_speed_and_stop() -> None:
    d = _driver(speed=600.0)  # 5 s ticks: 120 ticks a second
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop, exit_at_end=False))
    while d.index < 3:
        await asyncio.sleep(0.01)
    d.pause()
    await asyncio.sleep(0.05)
    held = d.index
    await asyncio.sleep(0.1)
    assert d.index == held
    d.set_speed(0)
    d.resume()
    while not d.finished:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert d.position == d.end
    await d.close(0)
