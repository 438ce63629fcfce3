"""SVG snapshots of the overview and detail screens at 80x24 and 160x48 on the deterministic demo (~20 s).

The screens show analysis results (load models, causes), so an intended change there changes them too:
update with `pytest tests/test_tui_snapshots.py --snapshot-update` and look at the report before committing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.pilot import Pilot

from surgewatch.tui.app import SurgewatchApp
from tui_demo import advance, demo_engine

SIZES = [(80, 24), (160, 48)]


def _app(tmp_path: Path, seconds: float) -> SurgewatchApp:
    engine = demo_engine(tmp_path)
    asyncio.run(advance(engine, seconds))
    return SurgewatchApp(engine, run_engine=False, chart_mode="block")


def _run(snap_compare: object, app: SurgewatchApp, size: tuple[int, int], keys: tuple[str, ...]) -> bool:
    async def before(pilot: Pilot[int]) -> None:
        await advance(app.engine, 3)  # a few ticks seen by the app: the expected band has history
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        await pilot.pause()

    return snap_compare(app, terminal_size=size, run_before=before)  # type: ignore[operator]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_overview_snapshot(snap_compare: object, tmp_path: Path, size: tuple[int, int]) -> None:
    assert _run(snap_compare, _app(tmp_path, 40), size, ())


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_campaign_detail_snapshot(snap_compare: object, tmp_path: Path, size: tuple[int, int]) -> None:
    assert _run(snap_compare, _app(tmp_path, 40), size, ("plus", "2"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
def test_host_detail_snapshot(snap_compare: object, tmp_path: Path, size: tuple[int, int]) -> None:
    assert _run(snap_compare, _app(tmp_path, 40), size, ("plus", "3"))
