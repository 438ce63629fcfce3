"""The dashboard with 1,000 hosts (issue 14): worst first, order and grouping keys, glob filter, jump to a host,
"no hosts match", and the wall's worst host group. One in-memory fleet source on a fake clock (a few seconds)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.text import Text

from surgewatch.alerting.dispatch import build_dispatcher
from surgewatch.config import parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.snapshot import HostView, Snapshot
from surgewatch.sources.base import Reading
from surgewatch.tui.app import SurgewatchApp
from surgewatch.tui.messages import SnapshotReady
from surgewatch.tui.screens import overview
from surgewatch.tui.screens.detail import HostScreen
from surgewatch.tui.widgets.hostorder import anomaly, grouped, host_rows, matcher, worst_group
from surgewatch.tui.widgets.hosts import GroupRow, host_lines, row_key
from tests.support.tui_demo import FakeClock, advance, screen_text, two_campaign_engine, use_utc

HOSTS = 1000
GROUPS = 10
HOT = {417: 97.0, 733: 93.0}  # CPU of the hosts that are on fire; every other host is at most 69 %

CONFIG = """
[monitor]
interval = "1s"
history = "1h"
state_dir = "{state}"
"""


class FleetSource:
    """1,000 hosts reported by one source, each in a group (pool-N), as a promql source with group_label does."""

    def __init__(self) -> None:
        self.name, self.interval, self.timeout, self.demo = "host:fleet", 1.0, 1.0, False

    async def poll(self) -> Reading:
        values: dict[str, float] = {}
        groups: dict[str, str] = {}
        for i in range(HOSTS):
            h = f"web-{i:04d}"
            values[f"host:{h}/cpu.percent"] = HOT.get(i, 20.0 + (i * 37) % 50)
            values[f"host:{h}/mem.percent"] = 40.0 + i % 30
            groups[h] = f"pool-{i % GROUPS}"
        return Reading(values, {"groups": groups})

    async def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """One engine for the module (its first tick over 1,000 new hosts is the slow part); the apps only read it."""
    use_utc()
    tmp_path = tmp_path_factory.mktemp("fleet")
    cfg = parse_config(CONFIG.format(state=tmp_path / "state"), "<fleet>")
    engine = Engine(cfg, EngineOptions(clock=FakeClock(), dispatcher=build_dispatcher(cfg, tmp_path)),
                    sources=[FleetSource()])  # type: ignore[list-item]
    asyncio.run(advance(engine, 2))
    return engine


def host_names(text: str) -> list[str]:
    """Host rows' names in screen order (a row starts with its health glyph)."""
    return [line.split()[1] for line in text.splitlines() if line[:1] in "●▲✖○" and "web-" in line]


async def test_at_80x24_the_overview_lists_the_worst_hosts_first(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        names = host_names(screen_text(app))
        assert names[:2] == ["web-0417", "web-0733"]  # both crit, the busier first
        assert "web-0000" not in names  # alphabetical order would put it first


async def test_o_cycles_the_host_order_and_the_header_names_it(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("o", "o", "o")  # anomaly, headroom, CPU
        await pilot.pause()
        text = screen_text(app)
        assert "HOST ↓CPU" in text and host_names(text)[:2] == ["web-0417", "web-0733"]
        await pilot.press("o")  # name
        await pilot.pause()
        text = screen_text(app)
        assert "HOST ↓name" in text and host_names(text)[:3] == ["web-0000", "web-0001", "web-0002"]
        await pilot.press("o")  # back to worst first: the header names no order
        await pilot.pause()
        text = screen_text(app)
        assert "HOST ↓" not in text and host_names(text)[0] == "web-0417"


async def test_g_groups_hosts_under_headers_worst_group_first_and_enter_folds_one(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("g")
        await pilot.pause()
        lines = [line for line in screen_text(app).splitlines() if line.lstrip().startswith(("▾", "▸"))]
        assert lines[0].split()[:4] == ["▾", "pool-7", "100", "hosts"]  # web-0417's group
        assert "worst web-0417 97%" in lines[0] and "median CPU" in lines[0]
        assert host_names(screen_text(app))[0] == "web-0417"
        await pilot.press("enter")  # the cursor is on the group header: fold it
        await pilot.pause()
        lines = [line for line in screen_text(app).splitlines() if line.lstrip().startswith(("▾", "▸"))]
        assert lines[0].split()[:2] == ["▸", "pool-7"] and lines[1].split()[:2] == ["▾", "pool-3"]  # web-0733's
        assert "web-0417" not in host_names(screen_text(app))
        await pilot.press("g")  # by campaign would be next, but no host serves one: back to no grouping
        await pilot.pause()
        assert not any(line.lstrip().startswith(("▾", "▸")) for line in screen_text(app).splitlines())


async def test_a_glob_filter_narrows_the_grid_and_escape_clears_it(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"web-07*")
        await pilot.pause()
        names = host_names(screen_text(app))
        assert names and all(n.startswith("web-07") for n in names) and names[0] == "web-0733"
        await pilot.press("escape")
        await pilot.pause()
        assert app.filter_text == "" and host_names(screen_text(app))[0] == "web-0417"


async def test_the_filter_also_matches_a_host_group_name(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"pool-3", "enter")
        await pilot.pause()
        names = host_names(screen_text(app))
        assert app.current_mode == "overview" and names[0] == "web-0733"
        assert all(int(n.removeprefix("web-")) % GROUPS == 3 for n in names)


async def test_g_groups_by_campaign_when_hosts_serve_campaigns(tmp_path: Path) -> None:
    engine = two_campaign_engine(tmp_path)
    await advance(engine, 5)
    app = SurgewatchApp(engine, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("g")  # the host grid has the focus
        await pilot.pause()
        heads = [line.split()[1] for line in screen_text(app).splitlines() if line.lstrip().startswith("▾")]
        assert sorted(heads) == ["demo-launch", "newsletter"]


async def test_enter_in_the_filter_on_one_host_opens_its_detail(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"WEB-0733", "enter")
        await pilot.pause()
        assert app.current_mode == "host" and app.host_name == "web-0733"
        assert "web-0733" in screen_text(app)


async def test_enter_on_a_host_row_opens_that_host_and_page_down_moves_a_screenful(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        first_page = host_names(screen_text(app))
        await pilot.press("pagedown")
        await pilot.pause()
        second_page = host_names(screen_text(app))
        assert second_page and not set(second_page) & set(first_page[:2])
        grid = app.screen.query_one("#hosts")
        chosen = grid.selected  # type: ignore[attr-defined]
        assert chosen in second_page
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "host" and app.host_name == chosen


async def test_the_host_screen_opens_on_the_worst_host_and_right_goes_to_the_next_worst(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        assert app.current_host().name == "web-0417"  # type: ignore[union-attr]
        await pilot.press("l")
        await pilot.pause()
        assert app.current_host().name == "web-0733"  # type: ignore[union-attr]


async def test_the_next_host_reuses_the_host_screens_charts_and_shows_its_own_series(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HostScreen)
        before = list(screen.charts.values())
        assert list(screen.charts) == ["host:web-0417/cpu.percent", "host:web-0417/mem.percent"]
        await pilot.press("l")
        await pilot.pause()
        assert list(screen.charts) == ["host:web-0733/cpu.percent", "host:web-0733/mem.percent"]
        assert list(screen.charts.values()) == before  # the same widgets: nothing mounted for the next host
        assert all(c.data is not None and c.data.key[-1] == name for name, c in screen.charts.items())
        assert "web-0733" in screen_text(app) and "CPU 93%" in screen_text(app)


async def test_once_host_rows_are_shown_the_host_screen_is_built_unseen_and_long_lived_objects_leave_gc(
        fleet: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overview, "WARM_AFTER", 0.05)
    monkeypatch.setattr(overview, "WARM_STEP", 0.05)
    monkeypatch.delitem(sys.modules, "surgewatch.tui.screens.detail")
    gc.unfreeze()
    app = SurgewatchApp(fleet, run_engine=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(60):  # the steps are 50 ms apart here; up to 3 s on a loaded machine
                await pilot.pause(0.05)
                if gc.get_freeze_count():
                    break
            assert "surgewatch.tui.screens.detail" in sys.modules
            assert gc.get_freeze_count() > 0  # full collections no longer walk the dashboard's own objects
            assert app.current_mode == "overview" and isinstance(app.screen, overview.OverviewScreen)
            await pilot.press("3")  # the host screen, built meanwhile, opens on the worst host
            await pilot.pause()
            assert app.current_mode == "host" and "web-0417" in screen_text(app)
    finally:
        gc.unfreeze()


async def test_a_filter_that_matches_no_host_says_so_in_one_clear_line(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"db-9*", "enter")
        await pilot.pause()
        text = screen_text(app)
        assert "no hosts match 'db-9*' (esc clears the filter)" in text
        assert app.current_mode == "overview" and host_names(text) == []


async def test_with_no_campaign_the_wall_shows_the_worst_host_group(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False, chart_mode="block", wall_seconds=10.0)
    async with app.run_test(size=(140, 42)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "GROUP pool-7  the worst host group: 100 hosts" in text
        assert app.wall is not None and app.wall.focus == "hosts"


def _host(name: str, cpu: float, group: str | None = None, score: float = math.nan,
          headroom: float = math.nan) -> HostView:
    return HostView(name=name, demo=False, stale=False, error=None, metrics={"cpu.percent": cpu}, spark={},
                    scores={"cpu.percent": score} if not math.isnan(score) else {}, campaigns=(), headroom=headroom,
                    group=group)


def test_each_order_puts_the_host_to_look_at_first() -> None:
    hosts = [_host("a", 50, score=0.2, headroom=3.0), _host("b", 75, headroom=2.0),
             _host("c", 30, score=0.9, headroom=1.1), _host("d", 95)]
    firsts = {o: row_key(host_rows(hosts, o)[0]) for o in ("worst", "anomaly", "headroom", "cpu", "name")}
    assert firsts == {"worst": "d", "anomaly": "c", "headroom": "c", "cpu": "d", "name": "a"}


def test_hosts_without_a_group_come_last_and_the_worst_group_is_the_one_with_the_worst_host() -> None:
    hosts = [_host("x", 99), _host("a1", 40, "a"), _host("b1", 92, "b"), _host("b2", 10, "b")]
    assert [name for name, _ in grouped(hosts, "worst", "group")] == ["b", "a", None]
    found = worst_group(hosts)
    assert found is not None and found[0] == "b" and [h.name for h in found[1]] == ["b1", "b2"]
    rows = host_rows(hosts, "worst", "group", frozenset({"a"}))
    assert [r.name for r in rows] == ["b", "b1", "b2", "a", "no group", "x"]
    head = rows[0]
    assert isinstance(head, GroupRow) and head.count == 2 and head.median_cpu == 51.0 and head.problems == 1
    by_name = host_rows([_host("b1", 10, "b"), _host("b2", 95, "b")], "name", "group")
    assert [r.name for r in by_name] == ["b", "b1", "b2"]  # in name order, the header still names the worst
    assert isinstance(by_name[0], GroupRow) and by_name[0].worst is not None and by_name[0].worst.name == "b2"


def test_a_hosts_anomaly_is_its_highest_score_whatever_order_and_nan_its_scores_come_in() -> None:
    nan = math.nan
    for scores, top in (({}, 0.0), ({"a": nan}, 0.0), ({"a": nan, "b": 0.4, "c": 0.9}, 0.9),
                        ({"a": 0.9, "b": nan, "c": 0.4}, 0.9), ({"a": 0.2, "b": 0.7}, 0.7)):
        h = dataclasses.replace(_host("h", 50), scores=scores)
        assert anomaly(h) == top


def test_the_filter_is_a_substring_or_a_glob_either_way_case_insensitive() -> None:
    assert matcher("WEB-04")("web-0417") and not matcher("web-04")("db-04")
    assert matcher("web-0?1*")("web-0417") and not matcher("web-0?1*")("web-0427")
    assert matcher("")("anything") and matcher("[dw]*-9")("db-9")


def with_hot_host(snap: Snapshot, name: str, cpu: float) -> Snapshot:
    """`snap` a tick later, with `name` running at `cpu`."""
    hosts = tuple(dataclasses.replace(h, metrics={**h.metrics, "cpu.percent": cpu}) if h.name == name else h
                  for h in snap.hosts)
    return dataclasses.replace(snap, ts=snap.ts + 1, hosts=hosts)


async def test_a_fleets_new_snapshot_is_sorted_in_slices_and_a_key_pressed_meanwhile_moves_on_the_rows_shown(
        fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, overview.OverviewScreen)
        old = app.snapshot
        assert old is not None and host_names(screen_text(app))[0] == "web-0417"
        app.on_snapshot_ready(SnapshotReady(with_hot_host(old, "web-0005", 99.0), None))
        assert app.snapshot is old  # not shown until its rows are sorted, a slice per turn of the event loop
        screen.hosts.action_move(1)  # a key meanwhile: handled at once, on the rows shown
        assert app.snapshot is old and screen.hosts.selected == "web-0733"
        for _ in range(40):
            await pilot.pause(0.01)
            if app.snapshot is not old:
                break
        assert app.snapshot is not old
        await pilot.pause()
        assert host_names(screen_text(app))[:3] == ["web-0005", "web-0417", "web-0733"]
        assert screen.hosts.selected == "web-0733"  # the cursor stays on its host


async def test_a_new_order_chosen_while_a_snapshot_is_prepared_is_the_order_it_is_shown_in(fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, overview.OverviewScreen) and app.snapshot is not None
        old = app.snapshot
        app.on_snapshot_ready(SnapshotReady(with_hot_host(old, "web-0005", 99.0), None))
        for _ in range(4):  # anomaly, headroom, CPU, name: pressed before the preparation is done
            screen.hosts.action_next_order()
        for _ in range(40):
            await pilot.pause(0.01)
            if app.snapshot is not old:
                break
        await pilot.pause()
        text = screen_text(app)
        assert "HOST ↓name" in text and host_names(text)[:2] == ["web-0000", "web-0001"]
        assert "web-0005" in host_names(text)


def test_grid_lines_made_with_a_line_cache_equal_those_made_without_and_are_made_once(fleet: Engine) -> None:
    rows = host_rows(fleet.snapshot().hosts, "worst", "group")[:12]  # a group header and host rows
    cache: dict[int, Text] = {}
    for cursor in (None, 0, 3, 3):
        cached = host_lines(rows, 80, cursor=cursor, cache=cache)
        fresh = host_lines(rows, 80, cursor=cursor)
        assert (cached.plain, cached.spans) == (fresh.plain, fresh.spans)
    assert len(cache) == len(rows)
    made = dict(cache)
    host_lines(rows, 80, cursor=5, cache=cache)
    assert all(cache[k] is made[k] for k in made)  # the cursor's highlight did not change a cached line


async def test_backspace_edits_the_filter_while_typing_then_clears_a_kept_filter_and_leaves_a_detail_screen(
        fleet: Engine) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"web-07*x", "backspace")  # typing: backspace takes the x off
        await pilot.pause()
        assert app.filter_text == "web-07*"
        await pilot.press("enter", "backspace")  # the filter kept, the grid focused: backspace clears it
        await pilot.pause()
        assert app.filter_text == "" and host_names(screen_text(app))[0] == "web-0417"
        for screen in ("3", "4", "5"):  # host, alerts, sources: backspace goes back, as esc does
            await pilot.press(screen)
            await pilot.pause()
            assert app.current_mode != "overview"
            await pilot.press("backspace")
            await pilot.pause()
            assert app.current_mode == "overview"


async def test_a_snapshot_whose_preparation_fails_is_still_shown_and_the_failure_logged_in_one_line(
        fleet: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        old = app.snapshot
        assert old is not None

        def broken(self: overview.OverviewScreen, snap: Snapshot) -> Iterator[None]:
            yield
            raise KeyError("boom")

        monkeypatch.setattr(overview.OverviewScreen, "_prepare", broken)
        app.on_snapshot_ready(SnapshotReady(with_hot_host(old, "web-0005", 99.0), None))
        for _ in range(40):
            await pilot.pause(0.01)
            if app.snapshot is not old:
                break
        await pilot.pause()
        assert host_names(screen_text(app))[0] == "web-0005"  # shown, its rows made when drawn
        lines = [r.getMessage() for r in caplog.records if "preparing a snapshot failed" in r.getMessage()]
        assert lines == ["preparing a snapshot failed, shown without: KeyError: 'boom'"]


async def test_filtered_rows_equal_sorting_the_filtered_hosts_and_a_filter_typed_or_cleared_sorts_nothing(
        fleet: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without grouping, the rows for a filter are kept out of the snapshot's hosts sorted once per order: the
    same rows, tie for tie, as sorting the hosts that pass it (the fleet's CPUs repeat: many ties)."""
    from surgewatch.tui.widgets.hosts import SORTS

    sorts: list[str] = []
    real = overview.host_row_steps

    def counted(hosts: object, sort: str, *args: object) -> object:
        sorts.append(sort)
        return real(hosts, sort, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(overview, "host_row_steps", counted)
    app = SurgewatchApp(fleet, run_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, overview.OverviewScreen)
        for order in SORTS:
            assert screen.hosts.order == order
            for text in ("", "web-07*", "pool-3", "9", ""):
                app.set_filter(text)
                await pilot.pause()
                assert [h.name for h in screen.host_rows()] == [
                    h.name for h in host_rows(app.visible_hosts(), order)], (order, text)
            assert sorts.count(order) <= 1  # the filters after the first did not sort again
            await pilot.press("o")
            await pilot.pause()
