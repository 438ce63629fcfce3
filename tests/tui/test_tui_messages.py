"""Snapshots reach the dashboard as Textual messages, drawn in Textual's loop and never inside the engine's tick."""

from __future__ import annotations

from pathlib import Path

import pytest

from surgewatch.tui.messages import SnapshotReady
from tests.support.tui_demo import advance, demo_engine, make_app


async def test_a_tick_posts_its_snapshot_and_the_dashboard_takes_it_in_its_own_loop(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await advance(engine, 2)
        await pilot.pause()
        before = app.snapshot
        assert before is not None
        posted: list[SnapshotReady] = []
        real = app.post_message
        app.post_message = lambda m: posted.append(m) or real(m)  # type: ignore[assignment,func-returns-value]
        engine.tick(before.ts + engine.tick_seconds)
        assert app.snapshot is before  # the tick only posted a message: nothing was drawn inside it
        assert [m.snapshot.ts for m in posted] == [before.ts + engine.tick_seconds]
        assert posted[0].band is not None  # the detector's band at that tick travels with it
        await pilot.pause()
        assert app.snapshot is posted[0].snapshot


async def test_a_widget_that_raises_while_drawing_does_not_end_the_engines_tick(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    app = make_app(engine)

    def broken_redraw() -> None:
        raise RuntimeError("a widget bug")

    with pytest.raises(RuntimeError, match="a widget bug"):  # Textual reports it against the widget
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            app.redraw = broken_redraw  # type: ignore[method-assign]
            t = engine.clock()
            for k in range(1, 4):
                engine.tick(t + k * engine.tick_seconds)  # returns: the engine never runs the widget's code
            assert engine.last_tick == t + 3 * engine.tick_seconds
            await pilot.pause()
    engine.tick(engine.clock() + 10.0)  # and it ticks on after the dashboard is gone
