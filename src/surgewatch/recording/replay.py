"""The replay driver: feeds a recording's ticks through a fresh engine (analysis and rules run again).

Frontends use its small API — pause(), resume(), step(), seek(ts), set_speed(n), position — and either
`run()` it in their event loop (paced by the recorded timestamps and the speed) or call `play_all()`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..alerting.dispatch import Dispatcher, unique_ids
from ..alerting.outbox import Outbox
from ..alerting.sinks import build_sink
from ..config import CampaignConfig, Config, ConfigError, SinkConfig, load_config, parse_config
from ..engine import Engine, EngineOptions
from ..model import AlertEvent
from ..sources.base import Reading, SourceError
from ..sources.sanity import absurd
from .format import BACKFILL, LIVE, RecordingError
from .reader import RecordedEvent, Recording, SourceInfo, Tick


class _KeepMissing(Mapping[str, str]):
    """The environment, but a missing `${VAR}` stays as written (a replay never needs the secrets)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def __getitem__(self, key: str) -> str:
        return self.env.get(key, "${" + key + "}")

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


def replay_config(rec: Recording, path: str | None = None) -> Config:
    """The config a replay runs with: the file at `path`, else the one stored in the recording (never recording)."""
    if path is not None:
        cfg = load_config(path)
    else:
        if not rec.config_text.strip():
            raise RecordingError(f"{rec.path}: the recording holds no config; pass --config FILE")
        try:
            cfg = parse_config(rec.config_text, f"{rec.path} (recorded config)", _KeepMissing(os.environ),
                               recorded=True)
        except ConfigError as exc:
            raise RecordingError(f"{exc}; pass --config FILE") from None
    return dataclasses.replace(cfg, monitor=dataclasses.replace(cfg.monitor, record=None))


class _RecordedSource:
    """Stands in for a source of the recorded session: its name, interval and DEMO label (never polled)."""

    def __init__(self, info: SourceInfo) -> None:
        self.name = info.name
        self.interval = info.interval
        self.timeout = info.interval
        self.demo = info.demo

    async def poll(self) -> Reading:
        raise SourceError("a recorded source is not polled")

    async def close(self) -> None:
        return None


class ReplayDispatcher(Dispatcher):
    """A dispatcher over a throw-away outbox that stays quiet while the replay warms up before --from."""

    quiet = False

    def __init__(self, sinks: Sequence[SinkConfig]) -> None:
        self._dir = tempfile.mkdtemp(prefix="surgewatch-replay-")
        weakref.finalize(self, shutil.rmtree, self._dir, True)  # also when nobody calls close()
        super().__init__([build_sink(c) for c in sinks], Outbox(Path(self._dir)), ids=unique_ids(sinks))

    def submit(self, events: Sequence[AlertEvent]) -> None:
        if not self.quiet:
            super().submit(events)

    async def close(self) -> None:
        await super().close()
        shutil.rmtree(self._dir, ignore_errors=True)


class ReplayDriver:
    """Plays recorded ticks through an Engine; `position` is the recorded time of the last tick played."""

    def __init__(self, rec: Recording, config: Config, *, start: float | None = None, end: float | None = None,
                 speed: float = 1.0, sinks: Sequence[SinkConfig] = (), follow_reloads: bool = False) -> None:
        self.rec = rec
        self.config = config
        # With the recorded config, a daemon's config reloads (SIGHUP) are replayed where they happened.
        self._reloads = rec.events("config", end=end) if follow_reloads else []
        # The campaign feeds' campaigns as they were while recording (a replay polls no feed)
        self._feed_events = rec.events("campaigns", end=end)
        self.feed_campaigns: tuple[CampaignConfig, ...] = ()  # the feeds' campaigns at the position played
        self._until = end
        raw = rec.timestamps(None, end)  # live ticks are streamed from the file as they play
        if not raw.size:
            raise RecordingError(f"{rec.path}: no recorded ticks in the chosen range")
        # A clock that stepped back while recording (NTP, a VM restored): the ticks stamped before a tick
        # already played are dropped, so that replayed time only moves forward (seek and --from rely on it).
        self._stepped_back = raw < np.maximum.accumulate(raw)
        self.timeline = raw[~self._stepped_back]
        dropped = int(self._stepped_back.sum())
        self.notes: list[str] = [] if not dropped else [
            f"{rec.path}: the clock stepped back while recording: {dropped} tick{'s' if dropped != 1 else ''} "
            "stamped before a tick already played dropped"]
        # The history backfilled when recording started; a later session appended to the same file brought
        # its own, which is not replayed (its live ticks continue the timeline).
        self._backfill = [t for t in rec.ticks(None, float(self.timeline[0]), kinds=(BACKFILL,))
                          if t.ts < self.timeline[0]]
        self._stream: Iterator[Tick] = iter(())
        self.samples_played = 0
        self.start = self.timeline[0] if start is None else max(start, float(self.timeline[0]))
        self.end = float(self.timeline[-1])
        if self.start > self.end:
            raise RecordingError(f"{rec.path}: --from is after the last recorded tick")
        self.speed = speed
        self.paused = False
        self._sources_events = rec.events("sources", end=end)
        self._annotations = rec.annotations(end=end)  # the recorded deploys, not today's state dir
        self._alert_times = [e.ts for e in rec.events("alert", end=end) if e.doc.get("event") == "firing"]
        self._listeners: list[Callable[[Sequence[AlertEvent]], None]] = []
        self._wake = asyncio.Event()
        self.dispatcher = ReplayDispatcher(sinks)
        self.engine = self._new_engine()
        self.engine.on_events(self._emit)
        self._reset()

    # -- building -----------------------------------------------------------------------------

    def _new_engine(self) -> Engine:
        engine = Engine(self.config, EngineOptions(dispatcher=self.dispatcher, detector=self.rec.detector,
                                                   clock=lambda: self.position, annotations=self._annotations),
                        sources=[_RecordedSource(s) for s in self.rec.sources])
        engine.learn_sources(self.rec.series_sources)
        return engine

    def _reset(self) -> None:
        """Bring the engine back to the start of the recording (keeping its subscribers) and backfill."""
        if hasattr(self, "_i"):
            self.engine.rebuild(self.config, sources=[_RecordedSource(s) for s in self.rec.sources])
            self.engine.learn_sources(self.rec.series_sources)
        self._i = 0
        self._stream = self._forward(self.rec.ticks(None, self._until, kinds=(LIVE,)))
        self._k = 0  # next sources event
        self._r = 0  # next config reload
        self._f = 0  # next feed campaigns event
        self.feed_campaigns = ()
        self.position = self._backfill[-1].ts if self._backfill else float(self.timeline[0])
        if self._backfill:
            merged: dict[str, list[float]] = {}
            first = self._backfill[0].names
            rows = np.stack([t.values for t in self._backfill if t.names == first], axis=1)
            rows = np.where(absurd(first, rows), np.nan, rows)
            for r, name in enumerate(first):
                merged[name] = rows[r].tolist()
            ts = [t.ts for t in self._backfill if t.names == first]
            self.engine.backfill(ts, merged)
        self._quiet_until(self.start)

    def _quiet_until(self, ts: float, inclusive: bool = False) -> None:
        """Play every tick before `ts` (or at it) without emitting events (analysis warms up as it did live)."""
        self.dispatcher.quiet = True
        try:
            with self.engine.snapshots_held():  # one snapshot at the end, not one per tick
                while not self.finished and (self.timeline[self._i] < ts or
                                             (inclusive and self.timeline[self._i] == ts)):
                    self._play()
        finally:
            self.dispatcher.quiet = False

    # -- playing ------------------------------------------------------------------------------

    def on_events(self, callback: Callable[[Sequence[AlertEvent]], None]) -> None:
        """Call `callback` with the alert events of each tick played (not while warming up or seeking)."""
        self._listeners.append(callback)

    def _emit(self, events: Sequence[AlertEvent]) -> None:
        if not self.dispatcher.quiet:
            for cb in self._listeners:
                cb(events)

    def _apply_sources(self, ts: float) -> None:
        engine = self.engine
        health = engine.source_health()
        for h in health.values():
            if h.ok:
                engine.set_source_state(h.name, ok=True, error=h.error, last_success=ts)
        while self._k < len(self._sources_events) and self._sources_events[self._k].ts <= ts:
            doc = self._sources_events[self._k].doc
            listed, recorded = doc.get("stale"), doc.get("errors")  # a damaged file may hold any JSON here
            stale = {str(n) for n in listed} if isinstance(listed, list) else set()
            errors = {str(k): str(v) for k, v in recorded.items() if v} if isinstance(recorded, dict) else {}
            for name in health:
                if name in stale:
                    engine.set_source_state(name, ok=False, error=errors.get(name) or "stale (recorded)",
                                            last_success=None)
                else:
                    engine.set_source_state(name, ok=True, error=errors.get(name), last_success=ts)
            self._k += 1

    def _forward(self, ticks: Iterator[Tick]) -> Iterator[Tick]:
        """The recorded ticks without those stamped before a tick already played."""
        for k, tick in enumerate(ticks):
            if k >= self._stepped_back.shape[0] or not self._stepped_back[k]:
                yield tick

    def _play(self) -> list[AlertEvent]:
        tick = next(self._stream, None)
        if tick is None or tick.ts != self.timeline[self._i]:
            raise RecordingError(f"{self.rec.path}: the recording changed while it was replayed")
        self.samples_played += len(tick.names)
        while self._r < len(self._reloads) and self._reloads[self._r].ts <= tick.ts:
            self._apply_reload(self._reloads[self._r])
            self._r += 1
        while self._f < len(self._feed_events) and self._feed_events[self._f].ts <= tick.ts:
            event = self._feed_events[self._f]
            self.feed_campaigns = feed_campaigns_of(event, self.rec.path)
            self.engine.set_feed_campaigns(self.feed_campaigns, event.ts)
            self._f += 1
        self._apply_sources(tick.ts)
        bad = absurd(tick.names, tick.values)  # a value a live poll would reject today is no reading
        readings = dict(zip(tick.names, tick.values.tolist(), strict=True)) if not bad.any() \
            else {n: v for n, v, b in zip(tick.names, tick.values.tolist(), bad.tolist(), strict=True) if not b}
        self.position = tick.ts
        self._i += 1
        return self.engine.tick(tick.ts, readings)

    def alert_times(self) -> list[float]:
        """When the recorded session's alerts fired (marks for a timeline)."""
        return self._alert_times

    def annotation_times(self) -> list[float]:
        """When the recorded deploy annotations were made (marks for a timeline)."""
        return [a.ts for a in self._annotations]

    def _apply_reload(self, event: RecordedEvent) -> None:
        """What Engine.reload does to rules and campaigns (sources and sinks do not matter in a replay)."""
        label = f"{self.rec.path} (config reloaded at {event.ts:.3f})"
        try:
            cfg = parse_config(str(event.doc.get("text", "")), label, _KeepMissing(os.environ), recorded=True)
        except ConfigError as exc:
            raise RecordingError(str(exc)) from None
        self.engine.apply_config(cfg, event.ts)
        if self.feed_campaigns:  # the feeds' campaigns outlive a reload of the [[campaign]] tables
            self.engine.set_feed_campaigns(self.feed_campaigns, event.ts, declared=cfg.campaigns)

    @property
    def finished(self) -> bool:
        return self._i >= self.timeline.size

    @property
    def index(self) -> int:
        """How many live ticks have been played."""
        return self._i

    def step(self) -> list[AlertEvent]:
        """Play the next tick now (whether paused or not); [] at the end."""
        if self.finished:
            return []
        events = self._play()
        self._wake.set()
        return events

    def seek(self, ts: float) -> None:
        """Jump to recorded time `ts`: forwards by playing quietly, backwards by replaying from the start."""
        ts = min(max(ts, float(self.timeline[0])), self.end)
        if ts < self.position:
            start, self.start = self.start, float(self.timeline[0])
            self._reset()
            self.start = start
        self._quiet_until(ts, inclusive=True)
        self._wake.set()

    def pause(self) -> None:
        self.paused = True
        self._wake.set()

    def resume(self) -> None:
        self.paused = False
        self._wake.set()

    def toggle_pause(self) -> None:
        self.resume() if self.paused else self.pause()

    def set_speed(self, speed: float) -> None:
        """Play `speed` times faster than recorded (0 or inf: as fast as possible)."""
        self.speed = speed if speed > 0 else math.inf
        self._wake.set()

    def play_all(self) -> None:
        """Play every remaining tick at once."""
        while not self.finished:
            self._play()

    async def run(self, stop: asyncio.Event | None = None, *, exit_at_end: bool = True) -> None:
        """Play in real time scaled by `speed`, honouring pause/seek/speed changes, until the end or `stop`."""
        stop = stop or asyncio.Event()
        burst = 0
        while not stop.is_set():
            if self.finished and exit_at_end:
                return
            if self.paused or self.finished:
                self._wake.clear()
                await _wait(self._wake, stop, None)
                continue
            nxt = float(self.timeline[self._i])
            delay = 0.0 if math.isinf(self.speed) else (nxt - self.position) / self.speed
            if delay > 0.001:
                burst = 0
                self._wake.clear()
                if await _wait(self._wake, stop, delay):
                    continue  # paused, seeked or re-speeded meanwhile: look again
            elif burst >= 200:  # flat out: let the loop breathe (sinks, screen) now and then
                burst = 0
                await asyncio.sleep(0)
            if stop.is_set() or self.paused or self.finished:
                continue
            self._play()
            burst += 1

    async def close(self, drain_seconds: float = 5.0) -> None:
        """Deliver what the sinks still hold (bounded) and drop the throw-away outbox."""
        await self.dispatcher.drain(drain_seconds)


async def _wait(event: asyncio.Event, stop: asyncio.Event, timeout: float | None) -> bool:
    """Wait for `event` or `stop` (or the timeout); True when one of them was set."""
    tasks = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
    done, pending = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for t in pending:
        t.cancel()
    return bool(done)


def feed_campaigns_of(event: RecordedEvent, path: str) -> tuple[CampaignConfig, ...]:
    """The campaigns of a recorded `campaigns` event; RecordingError naming the file when it is damaged."""
    try:
        return tuple(CampaignConfig(**dict(c, hosts=tuple(c["hosts"]))) for c in event.doc["campaigns"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordingError(f"{path}: the campaign-feed event at {event.ts:.3f} is damaged "
                             f"({type(exc).__name__})") from None
