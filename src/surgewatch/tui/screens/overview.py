"""Overview: is anything wrong, and is it the campaign? Campaigns, hosts, probes, alerts and a status line."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Generator
from typing import ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input

from ...snapshot import HostView, Snapshot
from ..text import literal
from ..widgets.alerts import AlertFeed, alert_lines
from ..widgets.campaigns import CampaignStrip, campaign_lines
from ..widgets.footer import KeyFooter
from ..widgets.hostorder import finish, groupings_available, host_row_steps, kept_in_order
from ..widgets.hosts import GROUP_KEY, NO_HOSTS, SORT_LABELS, SORTS, HostGrid, Row, host_lines, row_key
from ..widgets.panel import ListPanel
from ..widgets.probes import ProbesPanel, probe_lines
from ..widgets.status import StatusLine
from ..widgets.wallarea import WallPanels, columns_for, is_wall
from .base import DashScreen

TIGHT_BELOW = 30  # terminal rows under which the overview drops the gaps between its panels
WARM_AFTER = 2.0  # seconds after the first host rows: the detail screens are made ready then
WARM_STEP = 0.3  # seconds between the steps of that
WALL_ALERT_ROWS = 6  # alert lines kept at wall sizes (the charts take the rest)
ROWS_SLICE = 200  # hosts' sort keys worked out per turn of the event loop when a new snapshot comes (prepare)


def window_rows(count: int, cursor: int, room: int) -> tuple[int, int]:
    """The slice [start, end) of `count` rows that fits `room` lines and keeps the cursor visible."""
    if count <= room:
        return 0, count
    start = max(0, min(cursor - room // 2, count - room))
    return start, start + room


class OverviewScreen(DashScreen):
    """Screen 1: the whole picture on one page, collapsing gracefully at 80x24."""

    # backspace as well as esc: a lone esc is told from a key's escape sequence only after a wait (keyinput.py);
    # while the filter box has the focus, backspace edits it instead
    BINDINGS: ClassVar = [Binding("escape,backspace", "clear_filter", "Clear filter", show=False)]
    AUTO_FOCUS: ClassVar[str | None] = "#hosts"  # focused when composed (one focus change, one footer update)
    DEFAULT_CSS = """
    OverviewScreen { layout: vertical; }
    OverviewScreen CampaignStrip, OverviewScreen HostGrid, OverviewScreen ProbesPanel { margin-bottom: 1; }
    OverviewScreen ProbesPanel.-empty { display: none; }
    OverviewScreen #filter { dock: bottom; height: 1; border: none; padding: 0 1; margin-bottom: 2; display: none; }
    OverviewScreen #filter.-open { display: block; }
    OverviewScreen.-tight CampaignStrip, OverviewScreen.-tight HostGrid, OverviewScreen.-tight ProbesPanel {
        margin-bottom: 0;
    }
    OverviewScreen WallPanels { display: none; }
    OverviewScreen.-wall WallPanels { display: block; }
    OverviewScreen.-wall AlertFeed { height: auto; margin-bottom: 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._rows_key: object = None
        self._rows_snap: object = None
        self._rows: list[Row] = []
        # what prepare made: (snapshot, rows key, rows, their keys, lines made of them, for which width and style)
        self._prepared: tuple[object, object, list[Row], list[str], dict[int, Text], object] | None = None
        self._lines: dict[int, Text] = {}  # the grid's lines made for `_rows`, by row id (host_lines' cache)
        self._lines_key: object = None
        self._lines_rows: list[Row] | None = None  # the rows those lines are of (held: their ids stay theirs)
        self._probes: tuple[object, Snapshot, Text] | None = None  # (what for, its snapshot, the probes' line)
        self._warming = False  # the detail screens' module is imported while idle once hosts are shown
        # every host of a snapshot in one order, unfiltered and ungrouped: (snapshot, order, hosts); a filter
        # typed or cleared (esc) on the same snapshot keeps what passes it, without sorting again
        self._ordered: tuple[Snapshot, str, list[HostView]] | None = None

    def compose(self) -> ComposeResult:
        # Decided before the panels are styled: adding the class later restyles the whole screen.
        self.set_class(self.app.size.height < TIGHT_BELOW, "-tight", update=False)
        self.set_class(is_wall(*self.app.size), "-wall", update=False)
        self.campaigns = CampaignStrip(id="campaigns")
        self.hosts = HostGrid(id="hosts")
        self.probes = ProbesPanel(id="probes", classes="-empty")
        self.alerts = AlertFeed(id="alerts")
        self.campaigns.on_move = self.redraw
        self.hosts.on_move = self.redraw
        yield self.campaigns
        yield self.hosts
        yield self.probes
        yield self.alerts
        self.wall = WallPanels(id="wall")
        yield self.wall
        yield Input(placeholder="filter hosts and campaigns (enter keeps it, esc clears)", id="filter")
        yield StatusLine(id="status")
        yield KeyFooter()
        yield self.palette

    def on_mount(self) -> None:
        self.hosts.focus()

    def redraw(self) -> None:
        app = self.dash
        snap = app.snapshot
        width = max(20, self.size.width)
        height = max(10, self.size.height)
        tight = height < TIGHT_BELOW
        self.set_class(tight, "-tight")
        wall = is_wall(width, height)
        self.set_class(wall, "-wall")
        sty = self.campaigns.sty
        if snap is not None and wall:
            self._redraw_wall(width, height)
        elif snap is not None:
            campaigns = app.visible_campaigns()
            hosts = self.host_rows()
            self.campaigns.set_keys([c.name for c in campaigns])
            probe_text = self._probe_text(snap, width)
            self.probes.set_class(not probe_text.plain, "-empty")
            probe_h = probe_text.plain.count("\n") + 1 if probe_text.plain else 0
            gaps = 0 if tight else 3
            room = height - 2 - gaps - probe_h - 3  # status, footer; keep three alert lines
            camp_room = max(1, min(len(campaigns), room // 3)) if campaigns else 1
            cs, ce = window_rows(len(campaigns), self.campaigns.cursor, camp_room)
            host_room = max(1, room - 1 - camp_room - 1)
            self.campaigns.show(campaign_lines(
                campaigns[cs:ce], width, snap.ts, app.ascii_only, sty,
                self._cursor(self.campaigns, cs)))
            self.campaigns.header = 1 - cs
            self._show_hosts(hosts, width, host_room)
            self.probes.show(probe_text)
            rows = max(1, self.alerts.size.height - 1)
            self.alerts.show(alert_lines(snap.alerts, snap.events, width, rows, sty))
        super().redraw()

    def _redraw_wall(self, width: int, height: int) -> None:
        """Wall sizes: short tables, a few alert lines, and the rest of the screen for campaign charts."""
        from ..widgets.wall import active_campaigns, build_panels, firing_alert

        app = self.dash
        snap = app.snapshot
        assert snap is not None
        sty = self.campaigns.sty
        campaigns = app.visible_campaigns()
        self.campaigns.set_keys([c.name for c in campaigns])
        probe_text = probe_lines(snap.values, width, app.ascii_only, sty)
        self.probes.set_class(not probe_text.plain, "-empty")
        cs, ce = window_rows(len(campaigns), self.campaigns.cursor, 4)
        self.campaigns.show(campaign_lines(campaigns[cs:ce], width, snap.ts, app.ascii_only, sty,
                                           self._cursor(self.campaigns, cs), relative=True))
        self.campaigns.header = 1 - cs
        self._show_hosts(self.host_rows(), width, max(3, height // 8))
        self.probes.show(probe_text)
        self.alerts.show(alert_lines(snap.alerts, snap.events, width, WALL_ALERT_ROWS, sty))
        columns = columns_for(width, height)
        t0, t1 = app.time_range()
        focus = app.wall.focus if app.wall is not None else None
        # Drawing the whole chart area costs Textual far more than making it: redrawn when the time axis moves a
        # column, at least every 5 s (the tables above carry the numbers of every tick), and at once when what
        # the panels show changes (campaigns, the firing alert, filter, theme, window, focus).
        step = min(5.0, (t1 - t0) / max(40, width))
        alert = firing_alert(snap.alerts)
        key = (int(snap.ts // step), round(t1 - t0), app.filter_text, app.theme_name,
               tuple(c.name for c in active_campaigns(campaigns, snap.ts)), alert.fingerprint if alert else None,
               app.paused)
        self.wall.set_panels(lambda: build_panels(app, snap, sty, columns), columns, t0, t1, snap.ts,
                             app.chart_mode, focus, key)

    def invalidate(self) -> None:
        self._lines_rows = self._probes = None
        super().invalidate()

    def _probe_text(self, snap: Snapshot, width: int) -> Text:
        """The probes' line, made once per snapshot and width (it looks through every value: 10,000 in a fleet)."""
        app = self.dash
        key = (width, app.ascii_only, app.theme_name)
        if self._probes is None or self._probes[0] != key or self._probes[1] is not snap:
            self._probes = (key, snap, probe_lines(snap.values, width, app.ascii_only, self.campaigns.sty))
        return self._probes[2]

    def _rows_key_now(self) -> tuple[object, ...]:
        grid = self.hosts
        return (self.dash.filter_text, grid.order, grid.grouping, frozenset(grid.collapsed))

    def _check_grouping(self, snap: Snapshot | None) -> None:
        """What the hosts of `snap` can be grouped by; a grouping they no longer allow falls back to none."""
        grid = self.hosts
        grid.groupings = groupings_available(snap.hosts if snap else ())
        if grid.grouping not in grid.groupings:
            grid.grouping = "none"

    def _row_steps(self, snap: Snapshot | None, step: int = 0) -> Generator[None, None, list[Row]]:
        """The grid's rows for `snap` and the current filter, order and grouping, yielding every `step` hosts."""
        app, grid = self.dash, self.hosts
        self._check_grouping(snap)
        return host_row_steps(app.visible_hosts(snap), grid.order, grid.grouping, frozenset(grid.collapsed),
                              step)

    def prepare(self, snap: Snapshot) -> Generator[None, None, None] | None:
        """A fleet's new snapshot: its host rows sorted in slices of ROWS_SLICE hosts, a turn of the event loop
        between them (a key pressed meanwhile is handled on the rows shown), before the app shows it."""
        if len(snap.hosts) <= ROWS_SLICE or is_wall(*self.size):
            return None
        return self._prepare(snap)

    def _prepare(self, snap: Snapshot) -> Generator[None, None, None]:
        key = self._rows_key_now()
        rows = yield from self._row_steps(snap, ROWS_SLICE)
        yield
        if self._rows_key_now() != key:  # a key changed the order meanwhile: the rows are made when shown
            return
        keys = [row_key(r) for r in rows]
        yield
        # and the lines the grid will show (around the cursor's host), and the probes' line
        app, grid = self.dash, self.hosts
        width = max(20, self.size.width)
        chosen = grid.selected
        cursor = keys.index(chosen) if chosen in keys else min(grid.cursor, len(keys) - 1)
        hs, he = window_rows(len(rows), max(0, cursor), grid.page)
        lines: dict[int, Text] = {}
        host_lines(rows[hs:he], width, app.ascii_only, grid.sty, cache=lines)
        self._probe_text(snap, width)
        if self._rows_key_now() == key:
            self._prepared = (snap, key, rows, keys, lines, (width, app.ascii_only, app.theme_name))

    def host_rows(self) -> list[Row]:
        """The grid's rows for the current snapshot, filter, order and grouping (made once per change of any:
        moving the cursor through 1,000 hosts reuses them; a new snapshot's may have been prepared)."""
        app, grid = self.dash, self.hosts
        key = self._rows_key_now()
        if key != self._rows_key or app.snapshot is not self._rows_snap:
            prepared, self._prepared = self._prepared, None
            if prepared is not None and prepared[0] is app.snapshot and prepared[1] == key:
                rows, keys = prepared[2], prepared[3]
                self._lines_rows, self._lines, self._lines_key = rows, prepared[4], prepared[5]
                if app.snapshot is not None and grid.grouping == "none" and not app.filter_text:
                    self._ordered = (app.snapshot, grid.order, cast("list[HostView]", rows))
            else:
                rows = self._new_rows(app.snapshot)
                keys = [row_key(r) for r in rows]
            self._rows_snap, self._rows = app.snapshot, rows
            if rows and not self._warming:
                self._warming = True
                self.set_timer(WARM_AFTER, self._warm_detail_screens)
            self._rows_key = self._rows_key_now()
            grid.set_keys(keys)
        return self._rows

    def _new_rows(self, snap: Snapshot | None) -> list[Row]:
        """The grid's rows for `snap` now; without grouping, those passing the filter out of the snapshot's hosts
        in the grid's order (sorted once per snapshot and order: the same rows as sorting what passes the filter,
        the sort being stable)."""
        grid = self.hosts
        self._check_grouping(snap)
        if snap is None or grid.grouping != "none":
            return finish(self._row_steps(snap))
        ordered = self._ordered
        if ordered is None or ordered[0] is not snap or ordered[1] != grid.order:
            hosts = cast("list[HostView]", finish(host_row_steps(snap.hosts, grid.order)))  # no group rows
            ordered = self._ordered = (snap, grid.order, hosts)
        return list(kept_in_order(ordered[2], self.dash.host_filter()))

    def _warm_detail_screens(self) -> None:
        """Once the dashboard has settled (first host rows shown, nothing happening), in three steps a moment
        apart (a key pressed meanwhile waits for one): build the host screen now rather than when enter is
        pressed (there and back within one call: nothing is painted in between), and set aside what lives as long
        as the dashboard (modules, widgets, the store's index) from the garbage collector's full passes, which
        otherwise walk it all every few seconds at fleet scale (70-100 ms on the event loop, keys waiting)."""
        importlib.import_module(".detail", __package__)
        self.set_timer(WARM_STEP, self._build_host_screen)
        self.set_timer(2 * WARM_STEP, self._build_host_screen)
        self.set_timer(3 * WARM_STEP, self._freeze_long_lived)

    def _build_host_screen(self) -> None:
        """There and back: the first time composes the host screen; the second, once it is mounted, has Textual
        bring its styles up to date (a screen shown for the first time re-reads the whole CSS, ~100 ms)."""
        app = self.dash
        if app.screen is self and app.current_mode == "overview":
            app.switch_mode("host")
            app.switch_mode("overview")

    def _freeze_long_lived(self) -> None:
        gc.collect()
        gc.freeze()

    def _show_hosts(self, rows: list[Row], width: int, room: int) -> None:
        """The rows of the grid that fit `room` lines around the cursor (only those are drawn)."""
        app, grid = self.dash, self.hosts
        grid.page = room
        hs, he = window_rows(len(rows), grid.cursor, room)
        empty = NO_HOSTS
        if not rows and app.filter_text and app.snapshot is not None and app.snapshot.hosts:
            empty = f"no hosts match {literal(app.filter_text, 30)!r} (esc clears the filter)"
        lines_key = (width, app.ascii_only, app.theme_name)
        if rows is not self._lines_rows or lines_key != self._lines_key:  # rows, width or style changed
            self._lines_rows, self._lines_key, self._lines = rows, lines_key, {}
        grid.show(host_lines(rows[hs:he], width, app.ascii_only, grid.sty, self._cursor(grid, hs),
                             order="" if grid.order == SORTS[0] else SORT_LABELS[grid.order], empty=empty,
                             cache=self._lines))
        grid.header = 1 - hs

    def _cursor(self, panel: ListPanel, start: int) -> int | None:
        return panel.cursor - start if panel.has_focus and panel.keys else None

    def on_list_panel_chosen(self, message: ListPanel.Chosen) -> None:
        if message.panel is self.campaigns:
            self.dash.open_campaign(message.key)
        elif message.panel is self.hosts and message.key.startswith(GROUP_KEY):
            self.hosts.toggle_group(message.key.removeprefix(GROUP_KEY))
        elif message.panel is self.hosts:
            self.dash.open_host(message.key)

    def open_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = self.dash.filter_text
        box.add_class("-open")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.hosts.cursor = 0  # the worst match first
            self.dash.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter keeps the filter; when it names one host (exactly, or as its only match) that host opens."""
        if event.input.id == "filter":
            event.input.remove_class("-open")
            self.hosts.focus()
            hosts = self.dash.visible_hosts()
            wanted = self.dash.filter_text.lower()
            exact = [h for h in hosts if h.name.lower() == wanted]
            if wanted and (exact or len(hosts) == 1):
                self.dash.open_host((exact or hosts)[0].name)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("-open")
        self.dash.set_filter("")
        self.hosts.focus()
