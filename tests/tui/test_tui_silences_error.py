"""The dashboard's silences view says when silences cannot be read (one line, logged and shown), never silently."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.tui_demo import advance, demo_engine, make_app, screen_text


async def test_a_failing_silence_store_is_reported_once_and_the_dashboard_keeps_running(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = demo_engine(tmp_path)
    await advance(engine, 5)

    def broken() -> list[object]:
        raise OSError("silences.json: Permission denied\x1b[2J")

    engine.silences = broken  # type: ignore[method-assign]
    app = make_app(engine)
    notices: list[str] = []
    app.notify = lambda message, **kw: notices.append(str(message))  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="surgewatch"):
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("4")
            await pilot.pause()
            app.redraw()
            await pilot.pause()
            assert "SILENCES" in screen_text(app)  # the view still draws, with none listed
    assert notices == ["silences cannot be read: OSError: silences.json: Permission denied"]
    lines = [r.getMessage() for r in caplog.records if "silences cannot be read" in r.getMessage()]
    assert lines == ["silences cannot be read: OSError: silences.json: Permission denied"]
