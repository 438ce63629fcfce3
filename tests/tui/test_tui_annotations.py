"""Deploy annotations on the dashboard: a `D` marker on the host and campaign charts, and the latest one named
in the first chart's title (about 3 s)."""

from __future__ import annotations

import re
from pathlib import Path

from surgewatch.model import Annotation
from surgewatch.tui.app import SurgewatchApp
from surgewatch.tui.charts import Marker, plot
from surgewatch.tui.screens.detail import CampaignScreen, HostScreen
from tests.support.tui_demo import advance, demo_engine, screen_text


def test_a_marker_draws_its_tag_on_the_top_row_and_a_rule_below() -> None:
    import numpy as np

    ts = np.arange(0.0, 100.0)
    text = plot(ts, np.full(100, 10.0), 47, 4, 0.0, 99.0, 0.0, 100.0, markers=[Marker(50.0, "D")], mode="block")
    rows = text.plain.splitlines()
    col = rows[0].index("D")
    assert all(r[col] in "│D▁▂▃▄▅▆▇█" for r in rows) and rows[1][col] == "│"


async def test_annotations_show_as_markers_on_host_and_campaign_charts(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    await advance(engine, 30)
    now = engine.clock()
    engine.declared.set_annotations([Annotation(1, now - 60, "deploy v2.3", "demo-web", 900.0, "cli"),
                                     Annotation(2, now - 30, "db migration", "db-9", 900.0, "cli")])
    await advance(engine, 2)
    app = SurgewatchApp(engine, run_engine=False, chart_mode="block")
    async with app.run_test(size=(120, 44)) as pilot:
        await pilot.press("3")
        await advance(engine, 1)
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)
        text = screen_text(app)
        assert re.search(r"D deploy v2\.3 on demo-web, 1m0\ds ago", text)
        assert "db migration" not in text  # another host's annotation is not drawn here
        assert sum(line.count("D") for line in text.splitlines() if "┤" in line or "│" in line) >= 2
        await pilot.press("2")
        await pilot.pause()
        assert isinstance(app.screen, CampaignScreen)
        text = screen_text(app)
        assert "D deploy" in text and "D deploy v2.3 on demo-web" in text
