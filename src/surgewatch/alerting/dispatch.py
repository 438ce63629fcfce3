"""Hands alert events from the rules to every sink through the durable outbox.

submit() writes one outbox row per (sink, event) in one transaction per tick and returns; one
worker task per sink delivers its rows in order, retrying the oldest with capped exponential
backoff until the sink accepts it, so a sink that is down gets everything once it is back and a
restart resumes where the last run stopped. An event the sink refuses for good (SinkError.permanent,
or any other exception it raises for that event) is tried DEAD_AFTER times and then parked as a dead
letter, so it never holds up the events behind it. When the outbox itself fails (full disk, locked
database) every caller backs off together (OutboxHealth) and nothing sent is sent again before the
outbox has recorded it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..clock import elapsed_clock
from ..config import Config, SinkConfig
from ..model import AlertEvent, short_digest
from ..statedir import StateDirError, ensure_state_dir, resolve_state_dir
from .outbox import Entry, Outbox, OutboxError, SinkBacklog
from .sinks import BellSink, Sink, SinkError, build_sink

log = logging.getLogger("surgewatch.alerting")

MAX_UNSAVED = 10_000
DEAD_AFTER = 3  # attempts at an event a sink refuses for good (HTTP 400/404/410/422, poison) before it is parked


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with a little jitter so several sinks do not retry in lockstep."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.1

    def delay(self, failures: int) -> float:
        """Seconds to wait after the n-th consecutive failure (n >= 1)."""
        import random  # only once a delivery failed (issue 14: the small end loads what it uses)

        d = min(self.cap, self.base * self.factor ** max(0, failures - 1))
        return d * (1.0 + self.jitter * (2.0 * random.random() - 1.0))


@dataclass
class _Unrecorded:
    """What a lane sent (or was refused) but could not yet write to the outbox: written before anything else
    is sent, so a failing outbox never makes a lane send the same rows again."""

    delivered: list[int] = field(default_factory=list)
    active: list[AlertEvent] = field(default_factory=list)  # delivered events, for re-sending sinks
    failed: list[int] = field(default_factory=list)
    dead: list[int] = field(default_factory=list)
    error: str = ""

    def __bool__(self) -> bool:
        return bool(self.delivered or self.active or self.failed or self.dead)


@dataclass
class _Lane:
    """One sink, its outbox id and its worker's state."""

    id: str
    sink: Sink
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    failures: int = 0
    last_error: str | None = None
    last_resend: float = float("-inf")  # monotonic
    single: bool = False  # send one event at a time (a sink raised something that names no event)
    unrecorded: _Unrecorded = field(default_factory=_Unrecorded)
    task: asyncio.Task[None] | None = None
    delivering: asyncio.Event = field(default_factory=asyncio.Event)  # set while a batch is on its way


class OutboxHealth:
    """Whether the outbox takes reads and writes. It says so once when it starts failing and once when it
    works again, and spaces the next attempt by capped exponential backoff on the monotonic clock, so a
    full disk or a locked database never turns into a hot loop or a log line per tick."""

    def __init__(self, retry: RetryPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry = retry
        self.clock = clock
        self.failures = 0
        self.since = 0.0
        self.next_try = float("-inf")
        self.broken: set[str] = set()  # kinds of outbox calls failing now ("store", "record <lane>", ...)

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def ready(self) -> bool:
        """Whether it is time to touch the outbox again."""
        return self.clock() >= self.next_try

    def wait(self) -> float:
        """Seconds until the next attempt is due (0 when it is)."""
        return max(0.0, self.next_try - self.clock())

    def failed(self, exc: Exception, doing: str, what: str) -> float:
        """Record a failed outbox call of kind `what`; returns the delay before the next attempt."""
        self.broken.add(what)
        self.failures += 1
        delay = self.retry.delay(self.failures)
        now = self.clock()
        self.next_try = now + delay
        if self.failures == 1:
            self.since = now
            log.error("%s (while %s); alert delivery waits for the outbox, retrying with backoff up to %gs; "
                      "a line follows when it works again", " ".join(str(exc).split()), doing, self.retry.cap)
        return delay

    def ok(self, what: str) -> None:
        """Record a successful outbox call of kind `what`: recovered once every kind that failed works again
        (a disk that takes new rows but not updates has not recovered)."""
        self.broken.discard(what)
        if self.broken:
            return
        if self.failures:
            log.warning("outbox works again after %.0fs and %d failed attempts; delivery resumes",
                        self.clock() - self.since, self.failures)
        self.failures, self.next_try = 0, float("-inf")

    def forget(self, keep: Callable[[str], bool]) -> None:
        """Drop failed kinds that no longer exist (lanes of sinks removed by a reload)."""
        self.broken = {w for w in self.broken if keep(w)}


def sink_id(cfg: SinkConfig) -> str:
    """A stable outbox id for a configured sink: its kind plus a one-way hash of where it delivers."""
    url, path, command = cfg.delivers_to()
    where = "\x00".join([url, path, *command])
    return f"{cfg.kind}-{short_digest(where, 10)}"


def unique_ids(cfgs: Sequence[SinkConfig]) -> list[str]:
    """sink_id() for each config, suffixed #2, #3… when two sinks deliver to the same place."""
    seen: dict[str, int] = {}
    out = []
    for c in cfgs:
        base = sink_id(c)
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return out


class Dispatcher:
    """Accepts events each tick without blocking and delivers them durably, in order, per sink."""

    def __init__(self, sinks: Sequence[Sink], outbox: Outbox, *, ids: Sequence[str] | None = None,
                 retry: RetryPolicy | None = None, batch_size: int = 50, max_age: float = 24 * 3600.0,
                 keep_delivered: float = 24 * 3600.0, keep_dead: float = 7 * 24 * 3600.0,
                 housekeeping_every: float = 600.0, dead_after: int = DEAD_AFTER,
                 clock: Callable[[], float] | None = None) -> None:
        """`clock` (default: elapsed time, counting a suspend) times re-sends and backoff and is never stored;
        the outbox stamps wall time."""
        self.outbox = outbox
        self.retry = retry or RetryPolicy()
        self.keep_dead = keep_dead
        self.dead_after = max(1, dead_after)
        self.health = OutboxHealth(self.retry, clock or elapsed_clock())
        self._store_retry = asyncio.Event()
        self._dropped = 0
        self.batch_size = batch_size
        self.max_age = max_age
        self.keep_delivered = keep_delivered
        self.housekeeping_every = housekeeping_every
        self.clock = clock
        self._lanes = self._make_lanes(sinks, ids)
        self._unsaved: list[tuple[str, AlertEvent]] = []
        self._draining = asyncio.Event()
        self._housekeeper: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False

    @staticmethod
    def _make_lanes(sinks: Sequence[Sink], ids: Sequence[str] | None) -> list[_Lane]:
        names = list(ids) if ids is not None else [f"{s.kind}#{i + 1}" for i, s in enumerate(sinks)]
        if len(names) != len(sinks) or len(set(names)) != len(names):
            raise ValueError("Dispatcher needs one unique id per sink")
        return [_Lane(i, s) for i, s in zip(names, sinks, strict=True)]

    @property
    def sinks(self) -> list[Sink]:
        """The sinks in config order."""
        return [lane.sink for lane in self._lanes]

    # -- the tick side ---------------------------------------------------------------------------

    def submit(self, events: Sequence[AlertEvent]) -> None:
        """Store events for every sink whose min_severity they reach (one local transaction, no network)."""
        if self._closed:
            if events:
                log.error("%d alert events arrived after the dispatcher was closed; not delivered",
                          len(events))
            return
        try:
            self._store(events)
        except Exception as exc:  # the tick must never die of alert delivery
            log.error("outbox: cannot store %d alert events: %s: %s", len(events), type(exc).__name__, exc)

    def _store(self, events: Sequence[AlertEvent], force: bool = False) -> None:
        rows = [(lane.id, e) for e in events for lane in self._lanes if e.severity >= lane.sink.min_severity]
        if self._unsaved:
            rows, self._unsaved = self._unsaved + rows, []
        if not rows:
            return
        if not force and not self.health.ready():  # the outbox is failing: keep them until the next attempt
            self._keep_unsaved(rows)
            return
        try:
            self.outbox.add(rows)
        except OutboxError as exc:
            self._keep_unsaved(rows)
            self.health.failed(exc, f"storing new alerts; {len(self._unsaved)} kept in memory meanwhile", "store")
            return
        self.health.ok("store")
        if self._dropped:
            log.error("outbox: %d notifications were dropped while it failed (more than %d waited in memory)",
                      self._dropped, MAX_UNSAVED)
            self._dropped = 0
        touched = {sid for sid, _e in rows}
        for lane in self._lanes:
            if lane.id in touched:
                lane.idle.clear()
                lane.wake.set()

    def _keep_unsaved(self, rows: list[tuple[str, AlertEvent]]) -> None:
        self._unsaved = rows[-MAX_UNSAVED:]
        dropped = len(rows) - len(self._unsaved)
        if dropped and not self._dropped:
            log.error("outbox: more than %d notifications wait in memory; dropping the oldest", MAX_UNSAVED)
        self._dropped += dropped
        self._store_retry.set()

    def subscribe_bell(self, listener: Callable[[Sequence[AlertEvent]], None]) -> Callable[[], None]:
        """Subscribe to every `bell` sink (the dashboard rings on firing events); returns unsubscribe."""
        offs = [lane.sink.subscribe(listener) for lane in self._lanes if isinstance(lane.sink, BellSink)]

        def unsubscribe() -> None:
            for off in offs:
                off()

        return unsubscribe

    def backlog(self) -> list[SinkBacklog]:
        """Undelivered notifications per sink id (for the dashboard and /metrics)."""
        try:
            return self.outbox.backlog()
        except (OutboxError, sqlite3.Error):
            return []

    def dead_letters(self) -> dict[str, int]:
        """Dead letters per sink id (for /metrics): notifications a sink refused for good."""
        try:
            return self.outbox.dead_counts()
        except (OutboxError, sqlite3.Error):
            return {}

    # -- life cycle ------------------------------------------------------------------------------

    async def reconfigure(self, sink_cfgs: Sequence[SinkConfig]) -> None:
        """Swap in the sinks of a reloaded config; rows of sinks that stayed the same carry over."""
        sinks = [build_sink(c) for c in sink_cfgs]
        old = self._lanes
        for lane in old:
            await self._stop_lane(lane)
        for lane in old:
            with contextlib.suppress(Exception):
                await lane.sink.close()
        self._lanes = self._make_lanes(sinks, unique_ids(sink_cfgs))
        ids = {lane.id for lane in self._lanes}
        self.health.forget(lambda what: " " not in what or what.split(" ", 1)[1] in ids)
        if self._started and not self._closed:
            for lane in self._lanes:
                lane.task = asyncio.create_task(self._worker(lane), name=f"sink {lane.sink.name}")

    async def _stop_lane(self, lane: _Lane, grace: float = 10.0) -> None:
        """Stop a lane's worker, letting a batch already on its way finish (bounded), so that a delivery
        is never cut between the receiver accepting it and the outbox recording that."""
        task = lane.task
        if task is None:
            return
        if lane.delivering.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._until_clear(lane.delivering), grace)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    @staticmethod
    async def _until_clear(flag: asyncio.Event) -> None:
        while flag.is_set():
            await asyncio.sleep(0.01)

    def start(self) -> None:
        """Start one delivery task per sink plus housekeeping (call inside the running event loop)."""
        if self._started or self._closed:
            return
        self._started = True
        self._report_leftovers()
        for lane in self._lanes:
            lane.task = asyncio.create_task(self._worker(lane), name=f"sink {lane.sink.name}")
        self._housekeeper = asyncio.create_task(self._housekeeping(), name="outbox housekeeping")

    async def drain(self, timeout: float) -> None:
        """Deliver what is waiting for up to `timeout` seconds, then stop; the rest stays in the outbox."""
        if self._closed:
            return
        if self._started:
            self._draining.set()
            if self._unsaved:
                with contextlib.suppress(Exception):
                    self._store([], force=True)
            waits = [lane.idle.wait() for lane in self._lanes]
            try:
                await asyncio.wait_for(asyncio.gather(*waits), timeout)
            except TimeoutError:
                left = sum(b.pending for b in self.backlog())
                log.warning("alert delivery did not finish within %.1fs; %d notifications stay in the outbox "
                            "for the next start", timeout, left)
        await self.close()

    async def close(self) -> None:
        """Stop the workers, close the sinks and the outbox (nothing is delivered any more)."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in [*(lane.task for lane in self._lanes), self._housekeeper] if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for lane in self._lanes:
            try:
                await lane.sink.close()
            except Exception as exc:
                log.warning("%s: close failed: %s", lane.sink.name, exc)
        if self._unsaved:
            log.error("%d alert notifications could not be stored and are lost", len(self._unsaved))
        sent = sum(len(lane.unrecorded.delivered) for lane in self._lanes)
        if sent:
            log.warning("outbox: %d delivered notifications could not be recorded; the next start may send "
                        "them again", sent)
        try:
            self.outbox.close()
        except Exception as exc:
            log.error("outbox: close failed: %s: %s", type(exc).__name__, exc)

    def _report_leftovers(self) -> None:
        known = {lane.id: lane.sink.name for lane in self._lanes}
        for b in self.backlog():
            if b.sink in known:
                log.info("%s: %d notifications waiting from before, delivering them first",
                         known[b.sink], b.pending)
            else:
                log.warning("outbox: %d notifications for sink %s, which is no longer configured; kept until "
                            "they expire", b.pending, b.sink)

    # -- the delivery side -----------------------------------------------------------------------

    async def _worker(self, lane: _Lane) -> None:
        while True:
            lane.wake.clear()
            if not self.health.ready():  # the outbox is failing: touch nothing until the next attempt
                await self._pause(self.health.wait())
                continue
            if lane.unrecorded and not self._record(lane):
                continue
            await self._maybe_resend(lane)
            try:
                entries = self.outbox.pending(lane.id, 1 if lane.single else self.batch_size)
            except (OutboxError, sqlite3.Error) as exc:
                self.health.failed(exc if isinstance(exc, OutboxError) else OutboxError(f"outbox: {exc}"),
                                   f"reading what {lane.sink.name} has to deliver", f"read {lane.id}")
                continue
            self.health.ok(f"read {lane.id}")
            if not entries:
                lane.single = False
                lane.idle.set()
                await self._wait_for_work(lane)
                continue
            lane.idle.clear()
            lane.delivering.set()
            try:
                progress = await self._deliver(lane, entries)
            finally:
                lane.delivering.clear()
            self._record(lane)
            await asyncio.sleep(0)  # a sink that never awaits (stdout, bell) must still let the tick run
            if progress:
                continue
            lane.failures += 1
            await self._pause(self.retry.delay(lane.failures))

    def _record(self, lane: _Lane) -> bool:
        """Write what the lane's last batch did to the outbox; False (and the outbox backs off) if it cannot."""
        u = lane.unrecorded
        if not u:
            return True
        try:
            if u.delivered:
                self.outbox.mark_delivered(u.delivered)
                u.delivered = []
            if u.active:
                self._track_active(lane, u.active)
                u.active = []
            if u.dead:
                self.outbox.mark_dead(u.dead, u.error)
                u.dead = []
            if u.failed:
                self.outbox.mark_failed(u.failed, u.error)
                u.failed = []
        except (OutboxError, sqlite3.Error) as exc:
            self.health.failed(exc if isinstance(exc, OutboxError) else OutboxError(f"outbox: {exc}"),
                               f"recording deliveries to {lane.sink.name}", f"record {lane.id}")
            return False
        self.health.ok(f"record {lane.id}")
        return True

    async def _deliver(self, lane: _Lane, entries: list[Entry]) -> bool:
        """Send one batch and note (in lane.unrecorded) what went through; True if the lane made progress."""
        events = [en.event for en in entries]
        error: str | None = None
        delivered, permanent = len(entries), False
        try:
            await lane.sink.send(events)
        except SinkError as exc:
            delivered, error, permanent = max(0, min(exc.delivered, len(entries))), str(exc), exc.permanent
        except Exception as exc:  # a sink bug that names no event: isolate it by sending one at a time
            error = " ".join(f"{lane.sink.name}: {type(exc).__name__}: {exc}".split())
            if len(entries) > 1:
                lane.single = True  # until the lane is idle again or the event is parked
                log.warning("%s; sending one notification at a time to find the event that causes it", error)
                return True
            delivered, permanent = 0, True
        u = lane.unrecorded
        u.delivered = [en.id for en in entries[:delivered]]
        if lane.sink.resend_interval:
            u.active = events[:delivered]
        if error is None:
            if lane.failures:
                log.info("%s: delivering again after %d failed attempts", lane.sink.name, lane.failures)
            lane.failures, lane.last_error = 0, None
            return True
        u.error = error
        bad = entries[delivered:delivered + 1]
        if permanent and bad and bad[0].attempts + 1 >= self.dead_after:
            u.dead = [en.id for en in bad]
            for en in bad:
                log.error("%s: dead-lettered notification %s (%s %s %s) after %d attempts: %s", lane.sink.name,
                          en.key, en.event.rule, en.event.event, en.event.series, en.attempts + 1, error)
            lane.single = False
            lane.failures, lane.last_error = 0, None
            return True  # the events behind it go out at once
        u.failed = [en.id for en in bad]
        if lane.failures == 0 or error != lane.last_error or lane.failures % 10 == 0:
            log.warning("%s; %d+ notifications waiting, retrying in about %.0fs", error,
                        len(entries) - delivered, self.retry.delay(lane.failures + 1))
        lane.last_error = error
        return delivered > 0  # progress was made: try the rest at once

    def _track_active(self, lane: _Lane, events: Sequence[AlertEvent]) -> None:
        state: dict[str, AlertEvent | None] = {}
        for e in events:
            state[e.fingerprint] = e if e.event == "firing" else None
        self.outbox.set_active(lane.id, [e for e in state.values() if e is not None],
                               [fp for fp, e in state.items() if e is None])

    async def _maybe_resend(self, lane: _Lane) -> None:
        interval = lane.sink.resend_interval
        now = self.health.clock()
        if not interval or lane.failures or now - lane.last_resend < interval:
            return
        lane.last_resend = now
        active: list[AlertEvent] = []
        try:
            active = self.outbox.active(lane.id)
            if active:
                await lane.sink.resend(active)
        except (OutboxError, sqlite3.Error) as exc:
            log.error("%s", exc)
        except SinkError as exc:
            log.warning("%s (re-sending %d active alerts)", exc, len(active))
        except Exception as exc:
            log.warning("%s: re-sending active alerts failed: %s: %s",
                        lane.sink.name, type(exc).__name__, exc)

    async def _wait_for_work(self, lane: _Lane) -> None:
        timeout: float | None = None
        if lane.sink.resend_interval:
            timeout = max(0.0, lane.last_resend + lane.sink.resend_interval - self.health.clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lane.wake.wait(), timeout)

    async def _pause(self, delay: float) -> None:
        """Back off, but only briefly once shutdown has asked for a last delivery attempt."""
        if self._draining.is_set():
            delay = min(delay, 0.25)
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._draining.wait(), delay)

    async def _housekeeping(self) -> None:
        """Expire and prune now and then; store alerts kept in memory as soon as the outbox may work again."""
        clock = self.health.clock
        next_clean = clock()
        while True:
            if clock() >= next_clean and self.health.ready():
                next_clean = clock() + self.housekeeping_every
                try:
                    expired = self.outbox.expire(self.max_age)
                    if expired:
                        log.error("outbox: gave up on %d notifications older than %.0fh that no sink accepted",
                                  expired, self.max_age / 3600)
                    self.outbox.prune(self.keep_delivered, self.keep_dead)
                    self.health.ok("housekeeping")
                except (OutboxError, sqlite3.Error) as exc:
                    self.health.failed(exc if isinstance(exc, OutboxError) else OutboxError(f"outbox: {exc}"),
                                       "expiring and pruning old rows", "housekeeping")
            self._store_retry.clear()
            if self._unsaved and self.health.ready():
                self.submit([])
            wait = max(0.0, next_clean - clock())
            if self._unsaved:
                wait = min(wait, max(0.01, self.health.wait()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._store_retry.wait(), wait)


def build_dispatcher(cfg: Config, state_dir: Path | None = None,
                     default_sinks: Sequence[SinkConfig] = ()) -> Dispatcher:
    """The dispatcher for a config: its sinks (or `default_sinks` if it has none) and the state dir's outbox
    (see open_outbox)."""
    sink_cfgs = list(cfg.sinks) or list(default_sinks)
    sinks = [build_sink(c) for c in sink_cfgs]
    if not sinks:  # nothing to deliver: no durable outbox, no lock on the shared state dir
        return Dispatcher(sinks, Outbox(None), ids=[])
    directory = state_dir if state_dir is not None else resolve_state_dir(cfg.monitor.state_dir, cfg.path)
    return Dispatcher(sinks, open_outbox(directory), ids=unique_ids(sink_cfgs))


def open_outbox(directory: Path) -> Outbox:
    """The durable outbox in `directory` (created if needed).

    A directory that exists but is read-only (a read-only mount, wrong permissions) gets one warning and an
    in-memory outbox: alerts keep flowing, they are just not kept across a restart, and rows already on
    disk wait there for a start with a writable directory. Raises StateDirError or OutboxError (one line
    each) when the directory cannot be used otherwise.
    """
    try:
        return Outbox(ensure_state_dir(directory))
    except (StateDirError, OutboxError) as exc:
        if not _read_only(directory):
            raise
        log.warning("%s; the state dir is read-only, so alerts are delivered from memory this run and not kept "
                    "across a restart", exc)
        return Outbox(None)


def _read_only(directory: Path) -> bool:
    """Whether `directory` exists but cannot be written (a read-only file system or permissions)."""
    if not directory.is_dir():
        return False
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    return not os.access(directory, os.W_OK)
