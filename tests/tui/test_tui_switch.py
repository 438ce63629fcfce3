"""Switching screens: a screen shown again (without Textual's 50 ms hold and its restyling on every resume) looks
exactly as it does when shown for the first time, after a theme change or a new tick while it was hidden."""

from __future__ import annotations

import re
from pathlib import Path

from surgewatch.tui.app import SurgewatchApp
from tests.support.tui_demo import advance, demo_engine, make_app

IDS = re.compile(r"terminal-\d+")  # the export's per-app element ids


async def shown(app: SurgewatchApp, keys: list[str]) -> str:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
            if key == "t":
                await advance(app.engine, 2)  # a tick while the host screen is hidden
        await pilot.pause()
        return IDS.sub("terminal", app.export_screenshot())


async def test_a_screen_shown_again_after_a_theme_change_and_a_tick_looks_as_when_first_shown(tmp_path: Path) -> None:
    again = await shown(make_app(demo_engine(tmp_path / "a")), ["3", "1", "t", "3"])
    first = await shown(make_app(demo_engine(tmp_path / "b")), ["t", "3"])
    assert again == first
    back = await shown(make_app(demo_engine(tmp_path / "c")), ["3", "1", "t", "3", "1"])
    direct = await shown(make_app(demo_engine(tmp_path / "d")), ["3", "t", "1"])
    assert back == direct
