"""SVG snapshots of the overview (80x24, the wall sizes 140x42, 160x48 and 220x62) and the detail screens
(80x24, 160x48) on the deterministic demo (~30 s).

The screens show analysis results (load models, causes), so an intended change there changes them too:
update with `pytest tests/tui/test_tui_snapshots.py --snapshot-update` and look at the report before committing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.pilot import Pilot

from surgewatch.tui.app import SurgewatchApp
from tests.support.tui_demo import advance, demo_engine, two_campaign_engine

SIZES = [(80, 24), (160, 48)]
OVERVIEW_SIZES = [(80, 24), (140, 42), (160, 48)]


def _app(tmp_path: Path, seconds: float, chart_mode: str = "block", theme: str | None = None,
         two_campaigns: bool = False) -> SurgewatchApp:
    engine = two_campaign_engine(tmp_path) if two_campaigns else demo_engine(tmp_path)
    asyncio.run(advance(engine, seconds))
    return SurgewatchApp(engine, run_engine=False, chart_mode=chart_mode, theme_name=theme)


def _run(snap_compare: object, app: SurgewatchApp, size: tuple[int, int], keys: tuple[str, ...]) -> bool:
    async def before(pilot: Pilot[int]) -> None:
        await advance(app.engine, 3)  # a few ticks seen by the app: the expected band has history
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        await pilot.pause()

    return snap_compare(app, terminal_size=size, run_before=before)  # type: ignore[operator]


@pytest.mark.parametrize("size", OVERVIEW_SIZES, ids=["80x24", "140x42", "160x48"])
def test_overview_snapshot(snap_compare: object, tmp_path: Path, size: tuple[int, int]) -> None:
    assert _run(snap_compare, _app(tmp_path, 40), size, ())


def test_overview_two_columns_of_campaign_panels_at_220x62(snap_compare: object, tmp_path: Path) -> None:
    assert _run(snap_compare, _app(tmp_path, 40, "braille", two_campaigns=True), (220, 62), ())


def test_overview_high_contrast_theme_at_wall_size(snap_compare: object, tmp_path: Path) -> None:
    assert _run(snap_compare, _app(tmp_path, 40, "block", "high-contrast"), (140, 42), ())


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_campaign_detail_snapshot(snap_compare: object, tmp_path: Path, size: tuple[int, int]) -> None:
    assert _run(snap_compare, _app(tmp_path, 40), size, ("plus", "2"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_host_detail_snapshot(snap_compare: object, tmp_path: Path, size: tuple[int, int]) -> None:
    assert _run(snap_compare, _app(tmp_path, 40), size, ("plus", "3"))
