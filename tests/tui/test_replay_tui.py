"""Replay on the dashboard: the timeline bar and the pause, step, seek and speed keys drive the replay."""

from __future__ import annotations

import math

from surgewatch.recording.reader import Recording
from surgewatch.recording.replay import ReplayDriver, replay_config
from surgewatch.scenarios import path
from surgewatch.tui.replay import ReplayApp, ReplayBar, timeline_text


def _driver() -> ReplayDriver:
    rec = Recording(str(path("saturates")))
    return ReplayDriver(rec, replay_config(rec), speed=600.0)


async def test_keys_pause_step_seek_and_change_speed() -> None:
    d = _driver()
    first = float(d.timeline[0])
    app = ReplayApp(d)
    async with app.run_test(size=(120, 36)) as pilot:
        while d.index < 3:
            await pilot.pause(0.02)
        await pilot.press("space")
        assert d.paused
        held = d.index
        await pilot.pause(0.1)
        assert d.index == held
        await pilot.press("n")
        assert d.index == held + 1
        before = d.position
        await pilot.press("right_square_bracket")
        assert d.position >= before + 55.0
        await pilot.press("left_curly_bracket")
        assert d.position == first  # clamped at the start
        await pilot.press("greater_than_sign")
        assert d.speed > 600.0
        await pilot.press("less_than_sign", "less_than_sign")
        assert d.speed < 600.0
        await pilot.pause(0.3)
        bar = app.screen.query(ReplayBar)
        assert bar, "the timeline bar is on the screen"
        assert "PAUSED" in str(bar.first().render())
        await pilot.press("q")


def test_timeline_marks_alerts_and_position() -> None:
    d = _driver()
    d.seek(float(d.timeline[0]) + 1800.0)
    text = timeline_text(d, 100).plain
    assert len(text) == 100
    assert text.count("▲") == 2 and "●" in text and "09:30:00 / 09:59:55" in text
    d.set_speed(0)
    assert math.isinf(d.speed) and " max " in timeline_text(d, 100, ascii_only=True).plain
    assert "▲" not in timeline_text(d, 100, ascii_only=True).plain
