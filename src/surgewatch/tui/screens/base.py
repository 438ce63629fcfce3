"""The base of every dashboard screen: redraw from the app's latest snapshot, only while visible."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, cast

from textual import events
from textual.screen import Screen

from ..widgets.panel import Palette, TextPanel
from ..widgets.status import StatusLine, status_text

if TYPE_CHECKING:
    from ...snapshot import Snapshot
    from ..app import SurgewatchApp


class DashScreen(Screen[None]):
    """A screen fed by snapshots; `redraw` is cheap when nothing changed."""

    def __init__(self) -> None:
        super().__init__()
        self.palette = Palette()
        self._redraw_pending = False
        self._status: list[StatusLine] | None = None  # found once mounted (a query walks the whole screen)

    @property
    def dash(self) -> SurgewatchApp:
        return cast("SurgewatchApp", self.app)

    def redraw(self) -> None:
        """Show the app's current snapshot (subclasses draw their panels, then call this for the status line)."""
        app = self.dash
        statuses = self._status
        if statuses is None:
            statuses = list(self.query(StatusLine))
            if self.is_mounted and statuses:
                self._status = statuses
        for status in statuses:
            status.show(status_text(app.snapshot, app.paused, self.size.width, app.window_label,
                                    app.filter_text, status.sty))

    def prepare(self, snap: Snapshot) -> Generator[None, None, None] | None:
        """Work a new snapshot needs before it is shown, in steps the app runs a turn of the event loop apart
        (keys pressed meanwhile are handled on what is shown); None: nothing worth spreading out."""
        return None

    def invalidate(self) -> None:
        """Forget cached text so the next redraw repaints everything (theme or mode changed)."""
        for panel in self.query(TextPanel):
            panel.invalidate()

    def on_mount(self) -> None:
        self.first_redraw()

    def first_redraw(self) -> None:
        """The screen's first drawing, when mounted: the first frame already carries data."""
        self.redraw()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        # Runs before Textual's own handler (a subclass's first), which would otherwise apply the whole stylesheet
        # to every widget of the screen again on each switch (20-50 ms: most of what 1 or enter cost with
        # 1,000 hosts). Nothing needs it here: a class changed while hidden is styled at once, and a theme
        # changed meanwhile is applied by Textual on the switch itself (the screen's CSS update count).
        event.refresh_styles = False
        self._redraw_soon()

    def on_resize(self) -> None:
        self._redraw_soon()

    def _redraw_soon(self) -> None:
        """One redraw after the next refresh, however many resizes and resumes ask for it before then."""
        if not self._redraw_pending:
            self._redraw_pending = True
            self.call_after_refresh(self._redraw_if_mounted)

    def _redraw_if_mounted(self) -> None:
        self._redraw_pending = False
        if self.is_mounted:
            self.redraw()
