"""The overview at wall sizes and wall mode: campaign panels, two columns, baseline-relative sparklines,
focus rotating by engine time (a driven clock) and holding on a firing alert."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from surgewatch.cli import build_parser, chosen_command
from surgewatch.model import Cause
from surgewatch.snapshot import AlertView, CampaignView, HostView
from surgewatch.tui.app import SurgewatchApp
from surgewatch.tui.charts import gauge, side_by_side
from surgewatch.tui.text import BLOCKS, baseline_range, sparkline
from surgewatch.tui.widgets.wall import (
    HOSTS_KEY,
    LoadLine,
    WallPanel,
    WallRotation,
    active_campaigns,
    firing_alert,
    panel_key_for,
    render_wall,
)
from surgewatch.tui.widgets.wallarea import WallPanels
from tests.support.tui_demo import advance, demo_engine, screen_text, two_campaign_engine

NEWSLETTER_ALERT = """
[[rule]]
name = "newsletter-busy"
series = "campaign:newsletter/visitors"
above = 5
for = "1s"
severity = "warning"
"""


def _campaign(name: str, start: float | None = None, end: float | None = None, hosts: tuple[str, ...] = ()
              ) -> CampaignView:
    return CampaignView(name, False, 100.0, 20.0, 5.0, None, 0.0, (), hosts, start, end)


def _host(name: str, cpu: float) -> HostView:
    return HostView(name, False, False, None, {"cpu.percent": cpu}, {}, {}, (), 1.5, math.inf)


def _alert(series: str, severity: str = "warning", since: float = 0.0, **kw: object) -> AlertView:
    return AlertView("r", series, "firing", severity, since, 1.0, "summary", "", Cause.UNEXPLAINED, None,
                     f"fp-{series}-{severity}", False, **kw)  # type: ignore[arg-type]


def test_flat_traffic_draws_flat_and_low_and_a_lift_climbs_to_the_top() -> None:
    flat = [100.0 + (i % 3) for i in range(40)]
    lo, hi = baseline_range(flat, 100.0)
    line = sparkline(flat, 40, lo, hi)
    assert set(line) <= set(BLOCKS[:2])  # flat: the bottom of the strip, not a solid bar
    lifted = flat[:20] + [500.0] * 20
    lo, hi = baseline_range(lifted, 100.0)
    line = sparkline(lifted, 40, lo, hi)
    assert set(line[:20]) <= set(BLOCKS[:2]) and set(line[20:]) == {BLOCKS[-1]}
    assert sparkline(flat, 40, 0.0, None).count(BLOCKS[-1]) > 10  # what zero-based scaling did: a solid bar


def test_baseline_range_without_a_baseline_uses_the_median_and_survives_zeros_and_gaps() -> None:
    assert baseline_range([10.0, 10.0, math.nan], math.nan) == (8.0, 20.0)
    assert baseline_range([0.0, 0.0], 0.0) == (0.0, 1.0)
    assert baseline_range([math.nan], 5.0) == (0.0, 1.0)


def test_gauge_fills_in_eighths_and_shades_the_rest() -> None:
    assert gauge(0.5, 10) == "█████░░░░░"
    assert gauge(1.0, 4) == "████" and gauge(0.0, 4) == "░░░░"
    assert gauge(0.55, 10) == "█████▌░░░░"
    assert gauge(0.5, 10, "ascii") == "#####....."
    assert gauge(math.nan, 5).startswith("?")


def test_side_by_side_pads_and_crops_every_column_to_its_width() -> None:
    from rich.text import Text

    out = side_by_side([Text("abc\nd"), Text("0123456789")], [5, 4], 3, gap=1)
    assert out.plain.split("\n") == ["abc   0123", "d         ", "          "]


def test_active_campaigns_are_launched_and_not_ended() -> None:
    cs = [_campaign("a"), _campaign("later", start=200.0), _campaign("done", start=0.0, end=50.0),
          _campaign("on", start=50.0, end=500.0)]
    assert [c.name for c in active_campaigns(cs, 100.0)] == ["a", "on"]


def test_the_alert_panel_is_its_campaign_or_its_hosts_campaign_else_the_host_group() -> None:
    cs = [_campaign("spring", hosts=("web-1",))]
    assert panel_key_for(_alert("host:web-1/cpu.percent"), cs) == "campaign:spring"
    assert panel_key_for(_alert("campaign:spring/visitors"), cs) == "campaign:spring"
    assert panel_key_for(_alert("host:db-1/cpu.percent"), cs) == HOSTS_KEY
    worst = firing_alert([_alert("host:a/x", "warning", 5.0), _alert("host:b/x", "critical", 1.0),
                          _alert("host:c/x", "critical", 9.0, acked=True)])
    assert worst is not None and worst.series == "host:b/x"


def test_rotation_moves_every_period_and_holds_while_an_alert_fires() -> None:
    rot = WallRotation(10.0)
    targets = ["campaign:a", "campaign:b"]
    assert rot.update(0.0, targets, None) == "campaign:a"
    assert rot.update(9.0, targets, None) == "campaign:a"
    assert rot.update(10.0, targets, None) == "campaign:b"
    assert rot.update(20.0, targets, None) == "campaign:a"
    for t in (21.0, 40.0, 90.0):  # firing: no rotation, however long
        assert rot.update(t, targets, "campaign:b") == "campaign:b"
    assert rot.update(91.0, targets, None) == "campaign:b"  # cleared: a full period on it first
    assert rot.update(101.0, targets, None) == "campaign:a"
    assert rot.update(102.0, [], None) is None


def _panel(key: str, name: str | None) -> WallPanel:
    ts = np.arange(0.0, 100.0, 1.0)
    c = _campaign(name) if name else None
    load = LoadLine(_host(f"{key}-host", 55.0), np.full(ts.size, 55.0), None)
    return WallPanel(key, c, ts, np.full(ts.size, 100.0) if c else None, (load,), (), None)


def test_two_columns_put_two_campaign_panels_side_by_side_and_one_column_stacks_them() -> None:
    panels = [_panel("campaign:one", "one"), _panel("campaign:two", "two")]
    two = render_wall(panels, 220, 40, 2, 0.0, 100.0, 100.0, "block", focus="campaign:two").plain.split("\n")
    assert len(two) == 40
    title = next(line for line in two if "one" in line)
    assert "two" in title and "▶ two" in title and "▶ one" not in title
    one = render_wall(panels, 140, 40, 1, 0.0, 100.0, 100.0, "block").plain.split("\n")
    assert not any("one" in line and "two" in line for line in one)
    assert any(line.lstrip().startswith("two") for line in one)


def test_panels_that_do_not_fit_keep_the_focused_one_and_say_how_many_more() -> None:
    panels = [_panel(f"campaign:c{i}", f"c{i}") for i in range(8)]
    text = render_wall(panels, 140, 30, 1, 0.0, 100.0, 100.0, "ascii", focus="campaign:c7").plain
    assert "> c7" in text and "more (screen 2" in text
    assert "█" not in text and "░" not in text  # ASCII mode keeps to ASCII in charts and gauges


def test_wall_flag_takes_an_optional_period_and_serve_still_parses_after_it() -> None:
    assert build_parser().parse_args(["--wall"]).wall == 15.0
    assert build_parser().parse_args(["--wall", "5"]).wall == 5.0
    assert build_parser().parse_args([]).wall is None
    assert chosen_command(["--wall", "5", "serve"]) == "serve"


def _panel_text(app: SurgewatchApp) -> str:
    wall = app.screen.query_one(WallPanels)
    return wall.render().plain


async def test_wall_mode_rotates_campaigns_by_engine_time_without_a_key(tmp_path: Path) -> None:
    engine = two_campaign_engine(tmp_path)
    await advance(engine, 20)
    app = SurgewatchApp(engine, run_engine=False, chart_mode="block", wall_seconds=10.0)
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.pause()
        assert app.wall is not None and app.wall.focus == "campaign:demo-launch"
        assert "▶ demo-launch" in _panel_text(app)
        await advance(engine, 5)
        await pilot.pause()
        assert app.wall.focus == "campaign:demo-launch"
        await advance(engine, 6)
        await pilot.pause()
        assert app.wall.focus == "campaign:newsletter"
        assert "▶ newsletter" in _panel_text(app) and "▶ demo-launch" not in _panel_text(app)
        assert app.campaign_name == "newsletter"  # screen 2 opens on the featured campaign
        await advance(engine, 10)
        await pilot.pause()
        assert app.wall.focus == "campaign:demo-launch"


async def test_wall_mode_holds_on_a_firing_alert_and_shows_it_then_rotates_once_acknowledged(
        tmp_path: Path) -> None:
    engine = two_campaign_engine(tmp_path, extra_toml=NEWSLETTER_ALERT)
    await advance(engine, 20)
    app = SurgewatchApp(engine, run_engine=False, chart_mode="block", wall_seconds=10.0)
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.pause()
        alert = firing_alert(app.snapshot.alerts if app.snapshot else ())
        assert alert is not None and alert.rule == "newsletter-busy"
        for _ in range(4):  # 40 s of engine time: four periods, no rotation
            await advance(engine, 10)
            await pilot.pause()
            assert app.wall is not None and app.wall.focus == "campaign:newsletter"
        text = _panel_text(app)
        assert "▶ newsletter" in text and "✖ FIRING" in text and "newsletter-busy" in text
        assert engine.acknowledge(alert.fingerprint)
        await advance(engine, 1)
        await pilot.pause()
        await advance(engine, 10)
        await pilot.pause()
        assert app.wall.focus == "campaign:demo-launch"


async def test_with_no_campaign_to_show_the_wall_shows_the_worst_hosts(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    await advance(engine, 5)
    app = SurgewatchApp(engine, run_engine=False, chart_mode="block", wall_seconds=10.0)
    async with app.run_test(size=(140, 42)) as pilot:
        app.set_filter("demo-web")  # matches the host, not the campaign
        await pilot.pause()
        assert app.visible_campaigns() == []
        text = _panel_text(app)
        assert "HOSTS  worst first" in text and "demo-web" in text and "headroom" in text


@pytest.mark.parametrize("size", [(80, 24), (119, 40), (140, 35)])
async def test_below_wall_size_the_overview_has_no_chart_panels(tmp_path: Path, size: tuple[int, int]) -> None:
    engine = demo_engine(tmp_path)
    await advance(engine, 5)
    app = SurgewatchApp(engine, run_engine=False, chart_mode="block")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert not app.screen.has_class("-wall")
        assert "S launch" not in screen_text(app)



def _hues(svg: str) -> set[str]:
    """The non-grey colours an SVG screenshot uses."""
    colours = set(re.findall(r"#([0-9a-fA-F]{6})\b", svg))
    return {c for c in colours if len({c[0:2], c[2:4], c[4:6]}) > 1}


async def test_no_color_at_wall_size_is_grey_and_every_state_is_also_a_word_or_symbol(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    engine = two_campaign_engine(tmp_path, extra_toml=NEWSLETTER_ALERT)
    await advance(engine, 20)
    app = SurgewatchApp(engine, run_engine=False, chart_mode="braille", wall_seconds=10.0)
    async with app.run_test(size=(220, 62)) as pilot:
        await pilot.pause()
        assert app.theme_name == "monochrome"
        svg = app.export_screenshot()
        text = screen_text(app)
    assert "✖ FIRING" in text and re.search(r"[●▲✖○] (OK|WARN|CRIT|STALE) ", text)  # words and symbols
    assert "UNEXPL" in text or "campaign" in text  # the cause of host alerts is a word
    chart_area = svg.split("newsletter-busy", 1)[1]
    assert not _hues(chart_area), "colour carries meaning under NO_COLOR"
