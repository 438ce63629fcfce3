"""The Textual dashboard: an overview of campaigns, hosts and alerts, fed by engine snapshots."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer

from ..engine import Engine
from ..snapshot import Snapshot
from .screens.help import HelpScreen
from .widgets.alerts import AlertFeed, alert_lines
from .widgets.campaigns import CampaignPanel, campaign_lines
from .widgets.hosts import HostsPanel, host_lines
from .widgets.status import StatusLine, status_text


class SurgewatchApp(App[int]):
    """Campaign traffic and server health on one screen."""

    TITLE = "surgewatch"
    CSS = """
    #overview { height: 1fr; }
    CampaignPanel, HostsPanel { padding: 0 1; margin-bottom: 1; }
    AlertFeed { padding: 0 1; }
    """
    BINDINGS: ClassVar = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Keys"),
        Binding("p", "pause", "Pause"),
    ]

    def __init__(self, engine: Engine, *, run_engine: bool = True, ascii_only: bool = False) -> None:
        super().__init__()
        self.engine = engine
        self.run_engine = run_engine
        self.ascii_only = ascii_only
        self.paused = False
        self.snapshot: Snapshot | None = None
        self._stop = asyncio.Event()

    def compose(self) -> ComposeResult:
        self.campaign_panel = CampaignPanel(id="campaigns")
        self.hosts_panel = HostsPanel(id="hosts")
        self.alert_feed = AlertFeed(id="alerts")
        self.status_line = StatusLine(id="status")
        with Vertical(id="overview"):
            yield self.campaign_panel
            yield self.hosts_panel
            yield self.alert_feed
        yield self.status_line
        yield Footer()

    def on_mount(self) -> None:
        self.engine.subscribe(self._on_snapshot)
        self.snapshot = self.engine.snapshot()
        self.render_snapshot()
        if self.run_engine:
            self.run_worker(self.engine.run(self._stop), name="engine", exclusive=True)

    def _on_snapshot(self, snap: Snapshot) -> None:
        self.snapshot = snap
        if not self.paused:
            self.render_snapshot()

    def render_snapshot(self) -> None:
        """Redraw the panels from the latest snapshot (each panel skips work when its text is unchanged)."""
        if not self.is_running:
            return
        snap = self.snapshot
        width = self.size.width - 2
        if snap is not None:
            self.campaign_panel.show(campaign_lines(snap.campaigns, width, snap.ts, self.ascii_only))
            self.hosts_panel.show(host_lines(snap.hosts, width, self.ascii_only))
            rows = max(2, self.alert_feed.size.height - 1)
            self.alert_feed.show(alert_lines(snap.alerts, snap.events, width, rows))
        self.status_line.show(status_text(snap, self.paused, width))

    def on_resize(self) -> None:
        self.render_snapshot()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.render_snapshot()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        self._stop.set()
        self.exit(0)

    async def on_unmount(self) -> None:
        self._stop.set()
        self.engine.unsubscribe(self._on_snapshot)
        await self.engine.shutdown(drain_seconds=1.0)
