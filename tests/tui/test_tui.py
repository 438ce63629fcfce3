"""Dashboard behaviour through Textual's Pilot: every screen and key, themes, ack/silence, literal endpoint text.

About 35 CPU-seconds (60-75 s wall on the shared 2-core box): the engine is the built-in demo on a fake
clock, ticked by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.text import Text

from surgewatch.engine import Engine
from surgewatch.snapshot import CampaignView, HostView
from surgewatch.tui import themes
from surgewatch.tui.app import default_chart_mode
from surgewatch.tui.charts import Marker, plot
from surgewatch.tui.screens.detail import CampaignScreen, HostScreen
from surgewatch.tui.screens.help import HelpScreen
from surgewatch.tui.screens.overview import OverviewScreen
from surgewatch.tui.screens.silence import SilenceDialog
from surgewatch.tui.screens.tables import AlertsScreen, SourcesScreen
from surgewatch.tui.widgets.campaigns import campaign_lines
from surgewatch.tui.widgets.hosts import host_lines
from surgewatch.tui.widgets.probes import probe_lines
from tests.support.tui_demo import FleetSource, advance, demo_engine, make_app, screen_text

EVIL_HOST = "[bold red]boom"
EVIL_LINK = "[link=evil.example]click"
EVIL_ERROR = "\x1b[2J\x1b[31mred[/] [bold]loud\x1b]8;;http://evil.example\x07x"


@pytest.fixture
async def demo(tmp_path: Path) -> Engine:
    engine = demo_engine(tmp_path)
    await advance(engine, 30)
    return engine


async def test_number_keys_switch_between_the_five_screens_and_esc_returns(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        for key, kind in (("2", CampaignScreen), ("3", HostScreen), ("4", AlertsScreen), ("5", SourcesScreen),
                          ("1", OverviewScreen)):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, kind), key
        await pilot.press("3", "escape")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_overview_shows_campaign_host_alerts_and_status(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await advance(demo, 2)
        await pilot.pause()
        text = screen_text(app)
        assert "demo-laun" in text and "DEMO" in text  # the 80-column campaign cell may truncate the name
        assert "demo-web" in text
        assert "ALERTS" in text
        assert "sources 2/2 up" in text


async def test_enter_on_a_host_opens_its_detail_with_charts(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 40)) as pilot:
        await advance(demo, 3)  # the expected band is what this session saw
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)
        text = screen_text(app)
        assert "demo-web" in text and "CPU" in text and "expected" in text
        assert "now" in text  # the time axis


async def test_tab_and_enter_open_the_selected_campaign(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("shift+tab")  # hosts → campaigns
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CampaignScreen)
        text = screen_text(app)
        assert "LOAD MODELS" in text and "traffic" in text and "lag" in text


async def test_left_right_step_through_hosts_on_the_detail_screen(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    extra = FleetSource({"host:second/cpu.percent": 10.0})
    engine = Engine(engine.config, engine.options, sources=[*engine.sources, extra])
    await advance(engine, 3)
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        first = app.current_host()
        await pilot.press("l")
        await pilot.pause()
        second = app.current_host()
        assert first is not None and second is not None and first.name != second.name
        await pilot.press("h")
        assert app.current_host().name == first.name  # type: ignore[union-attr]


async def test_slash_filters_hosts_and_campaigns_and_esc_clears(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash", "n", "o", "p", "e")
        await pilot.pause()
        assert app.filter_text == "nope"
        grid = app.screen.query_one("#hosts").render().plain  # type: ignore[attr-defined]
        assert "demo-web" not in grid and "filter nope" in screen_text(app)
        await pilot.press("enter")
        await pilot.press("escape")
        await pilot.pause()
        assert app.filter_text == ""
        assert "demo-web" in app.screen.query_one("#hosts").render().plain  # type: ignore[attr-defined]


async def test_plus_and_minus_zoom_between_five_minutes_and_whole_history(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(8):
            await pilot.press("plus")
        assert app.window_seconds == 300
        t0, t1 = app.time_range()
        assert t1 - t0 == 300
        for _ in range(8):
            await pilot.press("minus")
        assert app.window_seconds is None
        assert "window all" in screen_text(app)


async def test_p_pauses_the_screen_while_the_engine_goes_on(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await advance(demo, 1)
        await pilot.press("p")
        shown = app.snapshot
        await advance(demo, 3)
        await pilot.pause()
        assert app.snapshot is shown
        assert "PAUSED" in screen_text(app)
        await pilot.press("p")
        await pilot.pause()
        assert app.snapshot is not None and shown is not None and app.snapshot.ts > shown.ts


async def test_help_opens_with_question_mark_and_lists_every_key(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 30)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for key in ("1 … 5", "ctrl+p", "+ / -", "esc"):
            assert key in text
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_command_palette_lists_the_dashboard_actions(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for want in ("Overview", "Campaign detail", "Host detail", "Alerts", "Sources", "Zoom in", "Zoom out",
                     "Pause or resume", "Acknowledge alert", "Silence alert", "Next theme", "Help", "Quit",
                     "Filter hosts and campaigns", "Theme: light"):
            assert want in titles


async def test_t_cycles_through_the_shipped_themes(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        seen = [app.theme_name]
        for _ in range(3):
            await pilot.press("t")
            await pilot.pause()
            seen.append(app.theme_name)
        assert seen == ["dark", "light", "high-contrast", "monochrome"]
        assert app.theme == "surgewatch-mono"


async def test_a_bad_user_theme_falls_back_to_the_default_with_a_notice(demo: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "broken.tcss"
    bad.write_text("/* base: textual-dark */\nScreen { colour: nope; background: }\n")
    app = make_app(demo, theme_name=str(bad))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme_name == "dark"
        notes = [n.message for n in app._notifications]
        assert any("broken" in m and "default theme" in m for m in notes)


async def test_no_color_picks_the_monochrome_theme(demo: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme_name == "monochrome"


def test_every_shipped_theme_parses_and_names_a_known_base() -> None:
    bases = {"textual-dark", "textual-light"} | {t.name for t in themes.EXTRA_BASES}
    for name in themes.BUILTIN:
        spec = themes.load(name, {}, bases)
        assert spec.name == name and ".sw--crit" in spec.css


async def test_c_cycles_chart_styles_braille_block_ascii(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        modes = [app.chart_mode]
        for _ in range(3):
            await pilot.press("c")
            modes.append(app.chart_mode)
        assert modes == ["block", "ascii", "braille", "block"]


def test_chart_mode_defaults_to_blocks_in_tmux_and_ascii_without_utf8() -> None:
    assert default_chart_mode({"TMUX": "/tmp/x", "LANG": "en_US.UTF-8"}) == "block"
    assert default_chart_mode({"LANG": "C"}) == "ascii"
    assert default_chart_mode({"LANG": "en_US.UTF-8", "TERM": "xterm-256color"}) == "braille"
    assert default_chart_mode({"SURGEWATCH_CHARTS": "ascii", "LANG": "en_US.UTF-8"}) == "ascii"


async def test_a_acknowledges_the_newest_firing_alert_and_it_is_dimmed(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    hot = FleetSource({"host:hot/cpu.percent": 99.0})
    engine = Engine(engine.config, engine.options, sources=[*engine.sources, hot])
    await advance(engine, 40)  # past cpu-high's `for`
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        firing = [a for a in app.snapshot.alerts if a.state == "firing"]  # type: ignore
        assert any(a.rule == "cpu-high" for a in firing)
        newest = max(firing, key=lambda a: a.since)  # by then the demo's spike fired unexplained-load too
        await pilot.press("a")
        await pilot.pause()
        acked = {a.fingerprint for a in engine.snapshot().alerts if a.acked}
        assert newest.fingerprint in acked
        assert "(ack)" in screen_text(app)


async def test_s_silences_with_duration_and_comment_and_x_removes_it(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    hot = FleetSource({"host:hot/cpu.percent": 99.0})
    engine = Engine(engine.config, engine.options, sources=[*engine.sources, hot])
    await advance(engine, 40)
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, SilenceDialog)
        await pilot.press("ctrl+a", "ctrl+k", "2", "h", "tab")  # duration field has focus
        await pilot.press(*"deploy")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen)
        silences = engine.silences()
        assert len(silences) == 1 and silences[0].comment == "deploy"
        assert silences[0].until == pytest.approx(engine.clock() + 7200)
        assert "SILENCES" in screen_text(app) and "deploy" in screen_text(app)
        await pilot.press("tab")  # to the silences list
        await pilot.press("x")
        await pilot.pause()
        assert engine.silences() == []


async def test_silence_dialog_rejects_a_bad_duration_and_esc_cancels(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("ctrl+a", "ctrl+k", *"soon", "tab", "enter")
        await pilot.pause()
        assert isinstance(app.screen, SilenceDialog)
        assert "duration" in screen_text(app)
        await pilot.press("escape")
        assert demo.silences() == []


async def test_mouse_click_selects_a_host_and_a_second_click_opens_it(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        grid = app.screen.query_one("#hosts")
        await pilot.click(grid, offset=(5, 1))
        await pilot.click(grid, offset=(5, 1))
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)


async def test_j_k_move_the_host_selection_and_ctrl_p_opens_the_palette(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    engine = Engine(engine.config, engine.options,
                    sources=[*engine.sources, FleetSource({"host:second/cpu.percent": 10.0})])
    await advance(engine, 2)
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        grid = app.screen.query_one("#hosts")
        assert grid.cursor == 0  # type: ignore[attr-defined]
        await pilot.press("j")
        assert grid.cursor == 1  # type: ignore[attr-defined]
        await pilot.press("k")
        assert grid.cursor == 0  # type: ignore[attr-defined]
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert "CommandPalette" in type(app.screen).__name__


async def test_q_quits(demo: Engine) -> None:
    app = make_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 0


# -- endpoint text is shown literally ------------------------------------------------------------


async def test_markup_and_escapes_in_host_names_and_errors_show_literally(tmp_path: Path) -> None:
    engine = demo_engine(tmp_path)
    sources = [*engine.sources, FleetSource({f"host:{EVIL_HOST}/cpu.percent": 50.0,
                                             f"host:{EVIL_LINK}/cpu.percent": 20.0}),
               FleetSource({}, error=EVIL_ERROR, name="bad\x1b[2Jsource")]
    engine = Engine(engine.config, engine.options, sources=sources)
    await advance(engine, 5)
    app = make_app(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert EVIL_HOST in text and EVIL_LINK[:16] in text  # the long one is cut to its column
        assert "\x1b" not in text
        assert "href" not in app.export_screenshot()  # no link was made
        await pilot.press("5")
        await pilot.pause()
        text = screen_text(app)
        assert "red[/] [bold]loud" in text and "bad[2Jsource" not in text and "badsource" in text
        assert "\x1b" not in text


def test_renderers_keep_markup_in_names_as_plain_text_without_styles() -> None:
    c = CampaignView(name="[bold red]x[/]", demo=False, visitors=10, baseline=5, lift=2.0, expected_lift=3.0,
                     growth_per_s=0.0, spark=(1.0, 2.0), hosts=(), start=None, end=None)
    out = campaign_lines([c], 80, 0.0)
    assert "[bold red]x[/]" in out.plain
    start = out.plain.index("[bold red]")
    assert not any(s.start <= start < s.end and "red" in str(s.style) for s in out.spans)
    h = HostView(name="a\x1b[2Jb", demo=False, stale=True, error="\x1b]8;;http://x\x07link", metrics={},
                 spark={}, scores={}, campaigns=())
    text = host_lines([h], 80).plain
    assert "\x1b" not in text and "\x07" not in text and "ab" in text


@pytest.mark.parametrize("width", [80, 120, 160])
def test_overview_tables_fit_the_width_without_wrapping(width: int) -> None:
    hosts = [HostView(name=f"host-with-a-long-name-{i}", demo=i == 0, stale=False, error=None,
                      metrics={"cpu.percent": 95.0, "mem.percent": 50.0, "load.1": 12.5, "net.rx_bps": 1.5e9,
                               "net.tx_bps": 3e8},
                      spark={"cpu.percent": tuple(float(x) for x in range(60))}, scores={},
                      campaigns=("spring-sale",), headroom=1.1, seconds_to_limit=600.0) for i in range(3)]
    for line in host_lines(hosts, width).plain.splitlines():
        assert len(line) <= width
    c = CampaignView(name="a-very-long-campaign-name-indeed", demo=True, visitors=123456, baseline=100,
                     lift=12.3, expected_lift=4.0, growth_per_s=0.01, spark=(1.0,) * 60, hosts=(), start=0.0,
                     end=None)
    for line in campaign_lines([c], width, 3600.0).plain.splitlines():
        assert len(line) <= width


@pytest.mark.parametrize("mode", ["braille", "block", "ascii"])
def test_charts_draw_the_series_band_and_markers_in_every_mode(mode: str) -> None:
    ts = np.arange(0.0, 600.0)
    v = 50 + 40 * np.sin(ts / 60)
    out = plot(ts, v, 60, 5, 0.0, 600.0, band=(ts, v - 5, v + 5), markers=[Marker(300.0, "S")], mode=mode)
    lines = out.plain.splitlines()
    assert len(lines) == 5 and all(len(line) == 60 for line in lines)
    assert "S" in lines[0]
    if mode == "ascii":
        assert all(ord(ch) < 128 for ch in out.plain)
    ink = {"braille": lambda ch: 0x2800 < ord(ch) <= 0x28FF, "block": lambda ch: ch in "▁▂▃▄▅▆▇█",
           "ascii": lambda ch: ch in ".-=#"}[mode]
    assert sum(ink(ch) for ch in out.plain) > 50
    assert any("on" in str(s.style) or getattr(s.style, "bgcolor", None) for s in out.spans)  # the band


def test_chart_of_missing_data_is_blank_not_an_error() -> None:
    ts = np.arange(10.0)
    out = plot(ts, np.full(10, np.nan), 30, 3, 0.0, 10.0)
    assert isinstance(out, Text) and len(out.plain.splitlines()) == 3


def test_probes_show_status_latency_and_down_without_cutting_an_item() -> None:
    values = {"probe:api/up": 1.0, "probe:api/status": 200.0, "probe:api/latency_ms": 84.0,
              "probe:shop/up": 0.0, "probe:shop/status": 0.0, "probe:shop/latency_ms": float("nan"),
              **{f"probe:p{i}/up": 1.0 for i in range(8)}, "host:x/cpu.percent": 5.0}
    out = probe_lines(values, 60)
    lines = out.plain.splitlines()
    assert lines[0].startswith("PROBES") and "api 200 84ms" in out.plain and "shop down" in out.plain
    assert all(len(line) <= 60 for line in lines) and len(lines) > 1
    assert probe_lines({"host:x/cpu.percent": 1.0}, 60).plain == ""


async def test_low_bandwidth_mode_redraws_at_most_every_five_seconds(demo: Engine) -> None:
    app = make_app(demo, low_bandwidth=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await advance(demo, 1)
        await pilot.pause()
        status = app.screen.query_one("#status")
        first = status.render().plain  # type: ignore[attr-defined]
        await advance(demo, 2)  # 8 ticks of 0.25 s: within the 5 s frame
        await pilot.pause()
        assert status.render().plain == first  # type: ignore[attr-defined]
        await advance(demo, 5)
        await pilot.pause()
        assert status.render().plain != first  # type: ignore[attr-defined]
        assert app.animation_level == "none"
