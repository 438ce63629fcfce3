"""The dashboard over a recording: the live app, driven by a ReplayDriver, plus a timeline bar and replay keys."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

from .app import SurgewatchApp

if TYPE_CHECKING:
    from ..recording.replay import ReplayDriver

SPEEDS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 600.0)


def _layout(driver: ReplayDriver, width: int) -> tuple[str, str, int]:
    """The text before the bar, the text after it and the bar's width in cells."""
    from ..model import rfc3339

    state = "PAUSED" if driver.paused else ("END" if driver.finished else "PLAY")
    speed = "max" if math.isinf(driver.speed) else f"{driver.speed:g}x"
    head = f" {state} {speed} "
    tail = f" {rfc3339(driver.position)[11:19]} / {rfc3339(driver.end)[11:19]} "
    return head, tail, max(10, width - len(head) - len(tail))


def timeline_text(driver: ReplayDriver, width: int, ascii_only: bool = False) -> Text:
    """One line: play state and speed, a bar from the first to the last tick with alerts (and deploy
    annotations, `D`) marked, the position."""
    first, last = float(driver.timeline[0]), driver.end
    head, tail, n = _layout(driver, width)
    done_ch, rest_ch, mark_ch, pos_ch = ("=", "-", "!", "|") if ascii_only else ("━", "─", "▲", "●")
    span = max(last - first, 1e-9)
    cells = [rest_ch] * n
    at = min(n - 1, max(0, int((driver.position - first) / span * (n - 1))))
    for i in range(at):
        cells[i] = done_ch
    for t in driver.annotation_times():
        if first <= t <= last:
            cells[min(n - 1, max(0, int((t - first) / span * (n - 1))))] = "D"
    for t in driver.alert_times():
        cells[min(n - 1, max(0, int((t - first) / span * (n - 1))))] = mark_ch
    cells[at] = pos_ch
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(head, style="reverse bold" if driver.paused else "bold")
    bar = "".join(cells)
    for ch in bar:
        out.append(ch, style="red" if ch == mark_ch else ("bold" if ch in (pos_ch, "D") else ""))
    out.append(tail)
    return out


class ReplayBar(Static):
    """The replay timeline, docked at the bottom of the current screen; a click seeks."""

    DEFAULT_CSS = "ReplayBar { dock: bottom; height: 1; }"

    def __init__(self, driver: ReplayDriver, ascii_only: bool = False) -> None:
        super().__init__(id="replay-bar")
        self.driver = driver
        self.ascii_only = ascii_only

    def refresh_bar(self) -> None:
        self.update(timeline_text(self.driver, self.size.width or 80, self.ascii_only))

    def on_click(self, event: events.Click) -> None:
        head, _tail, n = _layout(self.driver, self.size.width or 80)
        x = event.x - len(head)
        if 0 <= x < n:
            first = float(self.driver.timeline[0])
            self.driver.seek(first + x / max(1, n - 1) * (self.driver.end - first))
            self.refresh_bar()


class ReplayApp(SurgewatchApp):
    """The dashboard over recorded data: space pauses, n steps, [ ] seek a minute, { } ten, < > change speed."""

    BINDINGS: ClassVar = [
        *SurgewatchApp.BINDINGS,
        Binding("space", "replay_pause", "Play/pause"),
        Binding("n", "replay_step", "Step"),
        Binding("left_square_bracket", "replay_seek(-60)", "-1m"),
        Binding("right_square_bracket", "replay_seek(60)", "+1m"),
        Binding("left_curly_bracket", "replay_seek(-600)", "-10m", show=False),
        Binding("right_curly_bracket", "replay_seek(600)", "+10m", show=False),
        Binding("less_than_sign", "replay_speed(-1)", "Slower"),
        Binding("greater_than_sign", "replay_speed(1)", "Faster"),
        Binding("home", "replay_start", "Start", show=False),
    ]

    def __init__(self, driver: ReplayDriver, **kwargs: object) -> None:
        super().__init__(driver.engine, run_engine=False, **kwargs)  # type: ignore[arg-type]
        self.driver = driver
        self.title = f"surgewatch replay · {driver.rec.path}"

    def on_mount(self) -> None:
        super().on_mount()
        self.run_worker(self.driver.run(self._stop, exit_at_end=False), name="replay", exclusive=True)
        self.set_interval(0.25, self._refresh_bar)

    def _refresh_bar(self) -> None:
        screen = self.screen
        if isinstance(screen, ModalScreen):
            return
        bars = screen.query(ReplayBar)
        if bars:
            bar = bars.first()
        else:
            bar = ReplayBar(self.driver, bool(getattr(self, "ascii_only", False)))
            screen.mount(bar)
        bar.refresh_bar()

    def action_replay_pause(self) -> None:
        self.driver.toggle_pause()
        self._refresh_bar()

    def action_replay_step(self) -> None:
        self.driver.pause()
        self.driver.step()
        self._refresh_bar()

    def action_replay_seek(self, seconds: float) -> None:
        self.driver.seek(self.driver.position + float(seconds))
        self._refresh_bar()

    def action_replay_start(self) -> None:
        self.driver.seek(float(self.driver.timeline[0]))
        self._refresh_bar()

    def action_replay_speed(self, direction: int) -> None:
        cur = self.driver.speed
        if direction > 0:
            nxt = next((s for s in SPEEDS if s > cur), math.inf)
        else:
            nxt = next((s for s in reversed(SPEEDS) if s < cur), SPEEDS[0])
        self.driver.set_speed(nxt)
        self._refresh_bar()


def run_replay_dashboard(driver: ReplayDriver) -> int:
    """Run the dashboard over a replay until the user quits."""
    result = ReplayApp(driver).run()
    return int(result or 0)
