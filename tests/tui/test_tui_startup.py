"""Dashboard start-up: ticks that land while the overview is built, an engine started outside the app,
and a footer that is rebuilt only when its keys change. About 4 CPU-seconds (the demo on a fake clock).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets._footer import FooterKey

from surgewatch.engine import Engine
from surgewatch.tui.app import SurgewatchApp
from surgewatch.tui.widgets.footer import KeyFooter
from tests.support.tui_demo import FleetSource, advance, demo_engine, make_app, screen_text


async def test_a_tick_after_the_app_is_built_is_in_the_first_frame(tmp_path: Path) -> None:
    demo = demo_engine(tmp_path)
    early = FleetSource({"host:early-box/cpu.percent": 42.0, "host:early-box/mem.percent": 17.0})
    engine = Engine(demo.config, demo.options, sources=[*demo.sources, early])
    app = make_app(engine)
    await advance(engine, 2)  # the engine runs before the UI has loaded
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        row = next(line for line in screen_text(app).splitlines() if "early-box" in line)
        assert "42%" in row and "17%" in row


async def test_an_engine_started_outside_the_app_runs_on_and_stops_with_it(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    stop = asyncio.Event()
    ticks: list[float] = []
    engine.subscribe(lambda snap: ticks.append(snap.ts))

    async def run() -> None:  # what the engine's run loop does, on the demo's fake clock
        while not stop.is_set():
            await advance(engine, 1)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(run())
    app = SurgewatchApp(engine, engine_task=task, stop=stop, chart_mode="block")
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.sleep(0.1)
        await pilot.press("q")
        await pilot.pause()
    await asyncio.wait_for(task, 2.0)
    assert app.return_value == 0 and stop.is_set() and len(ticks) >= 2


async def test_an_engine_that_fails_ends_the_dashboard(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)

    async def broken() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("engine broke")

    task = asyncio.create_task(broken())
    app = SurgewatchApp(engine, engine_task=task, stop=asyncio.Event(), chart_mode="block")
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait({task})
        await pilot.pause()
    assert app.return_value == 1
    assert isinstance(task.exception(), RuntimeError)


async def test_the_footer_keeps_its_keys_when_focus_moves_and_rebuilds_when_they_change(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    await advance(engine, 2)
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(KeyFooter)
        keys = list(footer.query(FooterKey))
        assert keys and "q Quit" in screen_text(app).splitlines()[-1]
        await pilot.press("tab")  # hosts → next panel: the same keys
        await pilot.pause()
        assert list(footer.query(FooterKey)) == keys
        await pilot.press("slash")  # the filter box has its own keys
        await pilot.pause()
        assert "q Quit" not in screen_text(app).splitlines()[-1]
        await pilot.press("escape")
        await pilot.pause()
        assert "q Quit" in screen_text(app).splitlines()[-1]
