"""Save docs/screenshot.svg: the dashboard itself (App.save_screenshot) on the deterministic demo.

Usage: python docs/make_screenshot.py — plays the demo's story to just after the unexplained CPU spike.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from surgewatch.tui.app import SurgewatchApp  # noqa: E402
from tui_demo import advance, demo_engine, use_utc  # noqa: E402


async def main() -> None:
    use_utc()
    with tempfile.TemporaryDirectory() as tmp:
        engine = demo_engine(Path(tmp), speed=30.0)
        await advance(engine, 36.0)  # launch at 6 s, spike at 34 s of the 30x story
        app = SurgewatchApp(engine, run_engine=False)
        async with app.run_test(size=(110, 32)) as pilot:
            await pilot.pause()
            app.save_screenshot(str(ROOT / "docs" / "screenshot.svg"))


if __name__ == "__main__":
    asyncio.run(main())
