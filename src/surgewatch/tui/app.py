"""The Textual dashboard: five screens fed by engine snapshots, themes, zoom, filter, ack and silence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
import termios
import threading
from collections.abc import Callable, Generator, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.driver import Driver
from textual.screen import Screen
from textual.widget import AwaitMount

from ..engine import Engine
from ..lean import resume_gc
from ..snapshot import AlertView, CampaignView, HostView, Snapshot
from ..store import Window
from ..textsafe import one_line
from ..units import format_duration
from . import themes
from .bands import BandHistory
from .messages import SnapshotReady
from .screens.base import DashScreen
from .screens.overview import OverviewScreen
from .widgets.hostorder import matcher, order_hosts, sort_key

if TYPE_CHECKING:
    from .screens.silence import SilenceRequest
    from .widgets.wall import WallRotation

WINDOWS: tuple[float | None, ...] = (300.0, 900.0, 1800.0, 3600.0, 3 * 3600.0, None)
log = logging.getLogger("surgewatch.tui")
SCREENS = ("overview", "campaign", "host", "alerts", "sources")
CHART_MODES = ("braille", "block", "ascii")
SWITCH_HOLD = 0.001  # seconds a switch to a built screen holds updates: a turn of the loop (a 0 s timer never fires)
PREPARE_PAUSE = 0.001  # seconds the event loop is left between the slices of a snapshot's preparation


# The overview is imported with the app; the other screens when first shown (a faster first frame).
def _campaign_screen() -> Screen[Any]:
    from .screens.detail import CampaignScreen

    return CampaignScreen()


def _host_screen() -> Screen[Any]:
    from .screens.detail import HostScreen

    return HostScreen()


def _alerts_screen() -> Screen[Any]:
    from .screens.tables import AlertsScreen

    return AlertsScreen()


def _sources_screen() -> Screen[Any]:
    from .screens.tables import SourcesScreen

    return SourcesScreen()


def default_chart_mode(env: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """Braille where fonts usually have it; blocks inside tmux/screen and on the Linux console; ASCII without UTF-8."""
    chosen = env.get("SURGEWATCH_CHARTS", "")
    if chosen in CHART_MODES:
        return chosen
    locale = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    if locale and "utf" not in locale.lower().replace("-", "") and locale not in ("C.UTF-8",):
        return "ascii"
    if env.get("TMUX") or env.get("TERM", "").startswith(("screen", "tmux", "linux")):
        return "block"
    return "braille"


class SurgewatchApp(App[int]):
    """Campaign traffic and server health, keyboard first, light on CPU and bandwidth."""

    _silences_error: str | None = None  # the last "silences cannot be read" said, to say it once

    TITLE = "surgewatch"
    MODES: ClassVar = {"overview": OverviewScreen, "campaign": _campaign_screen, "host": _host_screen,
                       "alerts": _alerts_screen, "sources": _sources_screen}
    DEFAULT_MODE: ClassVar[str] = "overview"  # composed with the app: no blank screen, no mode switch
    BINDINGS: ClassVar = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Keys"),
        Binding("1", "show('overview')", "Overview", show=False),
        Binding("2", "show('campaign')", "Campaign", show=False),
        Binding("3", "show('host')", "Host", show=False),
        Binding("4", "show('alerts')", "Alerts", show=False),
        Binding("5", "show('sources')", "Sources", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("plus,equals_sign", "zoom(-1)", "Zoom in", show=False),
        Binding("minus", "zoom(1)", "Zoom out", show=False),
        Binding("p", "pause", "Pause"),
        Binding("a", "ack", "Ack"),
        Binding("s", "silence", "Silence"),
        Binding("t", "next_theme", "Theme"),
        Binding("c", "next_chart_mode", "Charts", show=False),
    ]

    def __init__(self, engine: Engine, *, run_engine: bool = True, ascii_only: bool = False,
                 low_bandwidth: bool = False, theme_name: str | None = None, chart_mode: str | None = None,
                 engine_task: asyncio.Task[None] | None = None, stop: asyncio.Event | None = None,
                 wall_seconds: float | None = None) -> None:
        """`engine_task`: the engine already runs (until `stop` is set); the app only watches it.
        `wall_seconds`: wall mode, the overview's focus moves to the next active campaign that often."""
        super().__init__()
        self.engine = engine
        self.run_engine = run_engine
        self.ascii_only = ascii_only
        self.low_bandwidth = low_bandwidth
        self.chart_mode = chart_mode or ("ascii" if ascii_only else default_chart_mode())
        self.paused = False
        self.snapshot: Snapshot | None = None
        self.window_index = 1
        self.filter_text = ""
        self.campaign_name: str | None = None
        self.host_name: str | None = None
        self.theme_name = themes.DEFAULT
        # Without colour, weight and reverse video carry the meaning: the monochrome theme is made for that.
        self._wanted_theme = (theme_name or os.environ.get("SURGEWATCH_THEME")
                              or ("monochrome" if self.no_color else themes.DEFAULT))
        self._stop = stop or asyncio.Event()
        self._engine_task = engine_task
        self._last_draw = -math.inf
        self._frame_every = 5.0 if low_bandwidth else 0.0
        self._bands = BandHistory(engine.history_capacity)
        self._hung_up = False
        self._switching_to: str | None = None  # the mode switch_mode is switching to (delay_update)
        self._modes_built = {self.DEFAULT_MODE}  # modes whose screen was composed (shown once)
        self._preparing: tuple[Snapshot, Generator[None, None, None]] | None = None  # a snapshot being prepared
        self._prepare_handle: asyncio.Handle | None = None
        engine.list_top_processes(False)  # costs ~14 ms a poll: only while the host screen shows them
        for base in themes.EXTRA_BASES:
            self.register_theme(base)
        if low_bandwidth:
            self.animation_level = "none"
        self.wall: WallRotation | None = None
        if wall_seconds:
            from .widgets.wall import WallRotation

            self.wall = WallRotation(wall_seconds)
        self.snapshot = engine.snapshot()
        self._rotate(self.snapshot)
        engine.subscribe(self._post_snapshot)  # a tick while the screen is composed reaches it
        # The theme's CSS goes in before Textual first parses the stylesheet (applying it on mount parses it all
        # again); a theme that does not load is reported on mount, where apply_theme falls back to the default.
        self._theme_base: str | None = None
        with contextlib.suppress(themes.ThemeError):
            spec = themes.load(self._wanted_theme, self.get_css_variables(), set(self.available_themes))
            self.stylesheet.add_source(spec.css, read_from=("surgewatch-theme", ""), is_default_css=False)
            self.theme_name, self._theme_base = spec.name, spec.base

    # -- lifecycle ----------------------------------------------------------------------------

    def get_driver_class(self) -> type[Driver]:
        """Textual's terminal driver, with an input thread that reports esc without its 100-200 ms wait."""
        driver = super().get_driver_class()
        from textual.drivers.linux_driver import LinuxDriver

        if driver is LinuxDriver:
            from .keyinput import PromptEscDriver

            return PromptEscDriver
        return driver

    def on_mount(self) -> None:
        if self._theme_base is None:
            self.apply_theme(self._wanted_theme)
        elif self.theme != self._theme_base:
            self.theme = self._theme_base  # refreshes the CSS
        if self._engine_task is not None:
            self._engine_task.add_done_callback(self._engine_stopped)
        elif self.run_engine:
            self.run_worker(self.engine.run(self._stop), name="engine", exclusive=True)
        self._watch_terminal()
        self.set_timer(5.0, resume_gc)  # a first snapshot that is slow to come does not keep it paused

    def _engine_stopped(self, task: asyncio.Task[None]) -> None:
        """An engine that stops on its own failed: leave (the caller reports its error)."""
        if not self._stop.is_set():
            self.exit(1)

    def _watch_terminal(self) -> None:
        """Exit within seconds when the terminal goes away: SIGHUP, or the tty starts failing (pty closed)."""
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.terminal_gone)
        stdin = sys.__stdin__
        if stdin is not None and not self.is_headless:
            try:
                fd = stdin.fileno()
                if os.isatty(fd):
                    self.set_interval(1.0, lambda: self._check_tty(fd), name="tty-watch")
            except (OSError, ValueError):
                pass

    def _check_tty(self, fd: int) -> None:
        try:
            termios.tcgetattr(fd)
        except (OSError, termios.error):
            self.terminal_gone()

    def terminal_gone(self) -> None:
        """Stop now; if shutdown itself hangs on a dead terminal, leave hard after three seconds."""
        if self._hung_up:
            return
        self._hung_up = True
        self._stop.set()
        timer = threading.Timer(3.0, os._exit, (129,))
        timer.daemon = True
        timer.start()
        self.exit(129)

    async def action_quit(self) -> None:
        self._stop.set()
        self.exit(0)

    async def on_unmount(self) -> None:
        self._stop.set()
        self._preparing = None
        if self._prepare_handle is not None:
            self._prepare_handle.cancel()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        self.engine.unsubscribe(self._post_snapshot)
        await self.engine.shutdown(drain_seconds=0.2 if self._hung_up else 1.0)

    # -- snapshots ----------------------------------------------------------------------------

    def _post_snapshot(self, snap: Snapshot) -> None:
        """The engine's subscriber: hand the tick's snapshot (and band) to the app as a message, so drawing
        runs in Textual's message loop, never inside the engine's tick (post_message is thread-safe)."""
        analysis = self.engine.last_analysis
        band = (analysis.detector.low, analysis.detector.high) if analysis is not None else None
        self.post_message(SnapshotReady(snap, band))

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        snap = message.snapshot
        if message.band is not None:
            engine = self.engine
            self._bands.record(snap.ts, message.band[0], message.band[1], engine.series_names(), engine.row_of)
        if self.paused:
            return
        skip = bool(self._frame_every and snap.ts - self._last_draw < self._frame_every)
        screen = self.screen if self._screen_stack else None
        steps = (screen.prepare(snap) if not skip and isinstance(screen, DashScreen) and screen.is_mounted
                 else None)
        if steps is None:
            self._show_snapshot(snap)
            return
        # A fleet: the screen's work for the new snapshot (sorting 1,000 hosts) runs in slices, keys handled in
        # between on what is shown; the snapshot is shown once it is done (a newer one replaces it).
        self._preparing = (snap, steps)
        if self._prepare_handle is None:
            self._prepare_handle = asyncio.get_running_loop().call_soon(self._prepare_step)

    def _prepare_step(self) -> None:
        self._prepare_handle = None
        if self._preparing is None:
            return
        snap, steps = self._preparing
        try:
            next(steps)
        except Exception as exc:  # done (StopIteration), or a bug: the snapshot is shown as it would be unprepared
            self._preparing = None
            if not isinstance(exc, StopIteration):
                log.warning("%s", one_line(f"preparing a snapshot failed, shown without: {type(exc).__name__}: "
                                           f"{exc}"))
            if not self.paused and self.is_running:
                self._show_snapshot(snap)
            return
        self._prepare_handle = asyncio.get_running_loop().call_later(PREPARE_PAUSE, self._prepare_step)

    def _show_snapshot(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self._rotate(snap)
        if self._frame_every and snap.ts - self._last_draw < self._frame_every:
            return
        self._last_draw = snap.ts
        self.redraw()
        self.call_after_refresh(resume_gc)  # the first frame is out: collect cycles again (lean.py)

    def _rotate(self, snap: Snapshot) -> None:
        """Wall mode: move the focus on (by engine time, so a driven clock drives it), or hold it on an alert."""
        if self.wall is None:
            return
        from .widgets.wall import active_campaigns, firing_alert, panel_key_for, wall_targets

        campaigns = active_campaigns(snap.campaigns, snap.ts)
        alert = firing_alert(snap.alerts)
        self.wall.update(snap.ts, wall_targets(snap), panel_key_for(alert, campaigns) if alert else None)
        focus = self.wall.focus or ""
        if focus.startswith("campaign:"):
            self.campaign_name = focus.removeprefix("campaign:")

    def switch_mode(self, mode: str) -> AwaitMount:
        self.engine.list_top_processes(mode == "host")
        self._switching_to = mode
        try:
            done = super().switch_mode(mode)
        finally:
            self._switching_to = None
        self._modes_built.add(mode)
        screen = self.screen
        if isinstance(screen, DashScreen) and screen.is_mounted:
            screen.redraw()  # the snapshot's content before the first frame (the resume's own redraw comes later)
        return done

    def delay_update(self, delay: float = 0.05) -> None:
        """Textual holds the screen back 50 ms on every switch of screens to hide a half-drawn one; a dashboard
        screen built before is brought up to date at the switch (above), so it is shown at the next frame."""
        built = self._switching_to is not None and self._switching_to in self._modes_built
        super().delay_update(SWITCH_HOLD if built else delay)

    def redraw(self) -> None:
        """Redraw the visible screen (screens underneath a modal wait until they are shown again)."""
        if not self.is_running or not self._screen_stack:
            return
        screen = self.screen
        if isinstance(screen, DashScreen) and screen.is_mounted:
            screen.redraw()

    # -- what the screens show ----------------------------------------------------------------

    def _matches(self, *texts: str) -> bool:
        match = matcher(self.filter_text)  # a name part, or a glob (web-04*)
        return any(match(t) for t in texts)

    def visible_campaigns(self) -> list[CampaignView]:
        snap = self.snapshot
        return [c for c in snap.campaigns if self._matches(c.name)] if snap else []

    def visible_hosts(self, snap: Snapshot | None = None) -> list[HostView]:
        """The hosts of `snap` (default the shown snapshot) that the filter lets through."""
        snap = snap if snap is not None else self.snapshot
        if snap is None:
            return []
        keep = self.host_filter()
        return list(snap.hosts) if keep is None else list(filter(keep, snap.hosts))

    def host_filter(self) -> Callable[[HostView], bool] | None:
        """Whether the filter lets a host through (by name, campaign or host group); None without a filter."""
        if not self.filter_text:
            return None
        match = matcher(self.filter_text)  # made once, not once per host
        return lambda h: match(h.name) or any(map(match, h.campaigns)) or match(h.group or "")

    def current_campaign(self) -> CampaignView | None:
        items = self.visible_campaigns() or (list(self.snapshot.campaigns) if self.snapshot else [])
        return next((c for c in items if c.name == self.campaign_name), items[0] if items else None)

    def current_host(self) -> HostView | None:
        """The chosen host; else the worst one (the host screen opened without choosing shows it)."""
        items = self.visible_hosts() or (list(self.snapshot.hosts) if self.snapshot else [])
        chosen = next((h for h in items if h.name == self.host_name), None)
        return chosen or (min(items, key=sort_key("worst")) if items else None)

    @property
    def window_seconds(self) -> float | None:
        return WINDOWS[self.window_index]

    @property
    def window_label(self) -> str:
        w = self.window_seconds
        return "window all" if w is None else f"window {format_duration(w).removesuffix('00s')}"

    def time_range(self) -> tuple[float, float]:
        """The chart x range [now - window, now] (whole history: from the oldest stored point)."""
        now = self.snapshot.ts if self.snapshot else self.engine.clock()
        w = self.window_seconds
        if w is None:
            ts = self.engine.window(None).ts
            first = float(np.nanmin(ts)) if ts.size and not np.all(np.isnan(ts)) else now - 3600
            return first, now
        return now - w, now

    def series_window(self, names: list[str]) -> Window:
        return self.engine.window(self.window_seconds, names)

    def band(self, name: str, t0: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The detector's expected band (ts, low, high) of a series since `t0`, as far as this session saw it."""
        if self.engine.row_of(name) is None:
            return None
        return self._bands.band(name, t0)

    def silences(self) -> list[Any]:
        """The engine's silences; when they cannot be read, say so once (log and notice) and show none."""
        getter = getattr(self.engine, "silences", None)
        try:
            out = list(getter()) if callable(getter) else []
        except Exception as exc:  # a damaged silences file: the dashboard keeps running, the user is told
            msg = one_line(f"silences cannot be read: {type(exc).__name__}: {exc}")
            if msg != self._silences_error:  # redraws come often: once per distinct error
                self._silences_error = msg
                log.warning("%s", msg)
                self.notify(msg, severity="error", timeout=8, markup=False)
            return []
        self._silences_error = None
        return out

    # -- actions ------------------------------------------------------------------------------

    def action_show(self, name: str) -> None:
        if name not in SCREENS:
            return
        from .screens.help import HelpScreen
        from .screens.silence import SilenceDialog

        if isinstance(self.screen, HelpScreen | SilenceDialog):
            self.pop_screen()
        self.switch_mode(name)

    def open_campaign(self, name: str) -> None:
        self.campaign_name = name
        self.action_show("campaign")
        self.redraw()

    def open_host(self, name: str) -> None:
        self.host_name = name
        self.action_show("host")
        self.redraw()

    def _step(self, items: list[str], current: str | None, step: int) -> str | None:
        if not items:
            return None
        i = items.index(current) if current in items else 0
        return items[(i + step) % len(items)]

    def step_campaign(self, step: int) -> None:
        c = self.current_campaign()
        self.campaign_name = self._step([c.name for c in self.visible_campaigns()], c.name if c else None, step)
        self.redraw()

    def step_host(self, step: int) -> None:
        h = self.current_host()  # ← → go through the hosts worst first, as the overview lists them by default
        self.host_name = self._step([h.name for h in order_hosts(self.visible_hosts(), "worst")],
                                    h.name if h else None, step)
        self.redraw()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.redraw()

    def action_filter(self) -> None:
        if self.current_mode != "overview":
            self.switch_mode("overview")
        screen = self.screen
        if isinstance(screen, OverviewScreen):
            screen.open_filter()

    def action_zoom(self, step: int) -> None:
        self.window_index = max(0, min(len(WINDOWS) - 1, self.window_index + step))
        self.redraw()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.snapshot = self.engine.snapshot() if self.engine.last_tick is not None else self.snapshot
        self.redraw()

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
        else:
            self.push_screen(HelpScreen())

    def action_next_chart_mode(self) -> None:
        self.chart_mode = CHART_MODES[(CHART_MODES.index(self.chart_mode) + 1) % len(CHART_MODES)]
        self.notify(f"charts: {self.chart_mode}", timeout=2)
        self.redraw()

    def target_alert(self) -> AlertView | None:
        """The alert an ack or silence applies to: the selection on the alerts screen, else the newest firing."""
        snap = self.snapshot
        if snap is None:
            return None
        from .screens.tables import AlertsScreen, ordered_alerts

        screen = self.screen
        if isinstance(screen, AlertsScreen):
            return screen.selected_alert()
        for a in ordered_alerts(snap.alerts):
            if not getattr(a, "acked", False) and not getattr(a, "silenced", False):
                return a
        return None

    def action_ack(self) -> None:
        a = self.target_alert()
        if a is None:
            self.notify("no alert to acknowledge", timeout=3)
            return
        ack = getattr(self.engine, "acknowledge", None)
        if not callable(ack):
            self.notify("acknowledging is not available in this engine", severity="warning", timeout=4)
            return
        try:
            done = ack(a.fingerprint)
        except Exception as exc:  # the state file could not be written: say so, keep running
            self.notify(f"acknowledge failed: {exc}", severity="error", timeout=6, markup=False)
            return
        if done:
            self.notify(f"acknowledged {a.rule} on {a.series}", timeout=3, markup=False)
            self.snapshot = self.engine.snapshot()
            self.redraw()
        else:
            self.notify(f"{a.rule} on {a.series} is no longer active", severity="warning", timeout=3, markup=False)

    def action_silence(self) -> None:
        from .screens.silence import SilenceDialog

        if isinstance(self.screen, SilenceDialog):
            return
        a = self.target_alert()
        dialog = SilenceDialog(a.rule if a else "*", a.series if a else "*")
        self.push_screen(dialog, self._silence_done)

    def _silence_done(self, req: SilenceRequest | None) -> None:
        if req is None:
            return
        add = getattr(self.engine, "add_silence", None)
        if not callable(add):
            self.notify("silencing is not available in this engine", severity="warning", timeout=4)
            return
        try:
            sid = add(req.rule_glob, req.series_glob, self.engine.clock() + req.seconds, req.comment)
        except Exception as exc:  # a bad glob or a full state dir: say so, keep running
            self.notify(f"silence failed: {exc}", severity="error", timeout=6, markup=False)
            return
        self.notify(f"silenced {req.rule_glob} × {req.series_glob} for {format_duration(req.seconds)} ({sid})",
                    timeout=4, markup=False)
        self.snapshot = self.engine.snapshot()
        self.redraw()

    def remove_silence(self, sid: str) -> None:
        remove = getattr(self.engine, "remove_silence", None)
        try:
            done = callable(remove) and remove(sid)
        except Exception as exc:
            self.notify(f"removing silence failed: {exc}", severity="error", timeout=6, markup=False)
            return
        if done:
            self.notify(f"silence {sid} removed", timeout=3, markup=False)
            self.redraw()

    # -- themes -------------------------------------------------------------------------------

    def apply_theme(self, name: str) -> bool:
        """Switch to a theme; a bad one leaves (or puts back) the default and says why."""
        try:
            spec = themes.load(name, self.get_css_variables(), set(self.available_themes))
        except themes.ThemeError as exc:
            self.notify(f"{exc}; using the default theme", severity="warning", timeout=8, markup=False)
            if name == themes.DEFAULT:
                return False
            return self.apply_theme(themes.DEFAULT) and False
        self.stylesheet.add_source(spec.css, read_from=("surgewatch-theme", ""), is_default_css=False)
        self.theme_name = spec.name
        if self.theme != spec.base:
            self.theme = spec.base  # refreshes the CSS
        else:
            self.refresh_css(animate=False)
        for screen in self._all_dash_screens():
            screen.invalidate()
        self.call_after_refresh(self.redraw)
        return True

    def _all_dash_screens(self) -> Iterable[DashScreen]:
        for stack in self._screen_stacks.values():
            for screen in stack:
                if isinstance(screen, DashScreen):
                    yield screen

    def _theme_command(self, name: str) -> None:
        self.apply_theme(name)

    def action_next_theme(self) -> None:
        names = themes.available()
        i = names.index(self.theme_name) if self.theme_name in names else -1
        name = names[(i + 1) % len(names)]
        if self.apply_theme(name):
            self.notify(f"theme: {name}", timeout=2)

    # -- command palette ----------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        own = [
            ("Overview", "screen 1: campaigns, hosts, probes, alerts", lambda: self.action_show("overview")),
            ("Campaign detail", "screen 2: traffic and host load on one axis", lambda: self.action_show("campaign")),
            ("Host detail", "screen 3: every metric with its expected band", lambda: self.action_show("host")),
            ("Alerts", "screen 4: firing, pending, silenced, history", lambda: self.action_show("alerts")),
            ("Sources", "screen 5: every source's health", lambda: self.action_show("sources")),
            ("Filter hosts and campaigns", "/", self.action_filter),
            ("Zoom in", "+: a shorter time window", lambda: self.action_zoom(-1)),
            ("Zoom out", "-: a longer time window", lambda: self.action_zoom(1)),
            ("Pause or resume", "p", self.action_pause),
            ("Acknowledge alert", "a: the selected or newest firing alert", self.action_ack),
            ("Silence alert", "s: with a duration and a comment", self.action_silence),
            ("Next theme", "t", self.action_next_theme),
            ("Next chart style", "c: braille, block, ASCII", self.action_next_chart_mode),
            ("Help", "?: every key", self.action_help),
        ]
        for name in themes.available():
            own.append((f"Theme: {name}", "switch theme", partial(self._theme_command, name)))
        for title, help_text, callback in own:
            yield SystemCommand(title, help_text, callback)
        for cmd in super().get_system_commands(screen):
            if cmd.title not in ("Theme", "Quit"):
                yield cmd
        yield SystemCommand("Quit", "q: quit the dashboard", self.action_quit)

