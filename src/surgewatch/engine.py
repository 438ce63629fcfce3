"""The engine: builds and runs sources → collector → store → analysis → rules → dispatcher, and publishes snapshots.

This is the only module that wires parts together. Frontends construct an Engine, subscribe to its
snapshots and run it inside their event loop; they never poll a source themselves.

Its public API is what frontends, replay and recording need, and nothing else outside this module reaches
into its parts (store, collector, rules, ...): building and rebuilding (`Engine`, `rebuild`), running
(`run`, `tick`, `shutdown`, `reload`, `apply_config`), the read-only queries of `EngineView` and a few more
(`window`, `row_of`, `current_values`, `active_alerts`, ...), snapshots (`snapshot`, `subscribe`,
`snapshots_held`), alert events (`on_events`), listeners (`EngineListener`, `add_listener`), what a replay
states instead of live polls (`tick(now, readings)`, `learn_sources`, `set_source_state`), acknowledgements
and silences; and the attributes `config`, `options`, `clock`, `tick_seconds`, `detector_name`, `sources`,
`annotations` (the deploy-annotation store), `last_analysis`, `last_tick`, `events`, `evicted`, read-only.
Every callback and listener is guarded: one that raises is logged in one line and dropped, never fatal to
the tick. The engine imports no frontend and no recorder: frontends attach a recorder like any listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .alerting.dispatch import Dispatcher, build_dispatcher
from .alerting.rules import RuleEngine
from .alerting.silences import Silence, SilenceStore
from .analysis.analyzer import AnalysisResult, Analyzer, CampaignSpec, CampaignState, default_detector
from .analysis.correlation import baseline
from .analysis.declared import DeclaredCauses
from .analysis.detectors import StreamingDetector
from .analysis.loadmodels import ModelStore, ModelStoreError, learned_from, plan_facts
from .analysis.significance import floors_of
from .annotations import AnnotationStore
from .clock import SteppedClock
from .collector import Collector, SourceHealth
from .config import CampaignConfig, Config, SinkConfig
from .hostgroups import HostGroups, expand_groups
from .model import AlertEvent, Annotation, forget_split, series, split_series
from .needed import needed_key, needed_series
from .rowsources import RowSources, Timing
from .sources import BuildOptions, Source, build_sources
from .sources.base import CampaignAware
from .statedir import resolve_state_dir
from .store import TRIM_EVERY_TICKS, SeriesStore, Window, trim_heap

if TYPE_CHECKING:
    from .alerting.outbox import SinkBacklog
    from .alerting.rules import ActiveAlert
    from .analysis.groupmodels import GroupModels
    from .analysis.preflight import Preflight
    from .snapshot import GroupView, Snapshot

log = logging.getLogger("surgewatch.engine")

SPARK_POINTS = 60
HOST_SPARK_METRICS = ("cpu.percent", "mem.percent", "load.1", "net.rx_bps")
PREFLIGHT_EVERY = 30.0  # seconds between plans of the scheduled campaigns (they change with the models)
MODELS_SAVE_SECONDS = 60.0  # learned load models are written to the state dir at most this often (and at shutdown)
SNAPSHOT_SLICE = 100  # hosts per slice of a snapshot built between ticks (publish_soon)
EAGER_TICKS = 2  # the first ticks, and a late source's first answer's, publish at once, not in slices
CATCH_UP_CHECK = 0.02  # seconds between looks for a late source's first answer (first interval only)
SNAPSHOT_PAUSE = 0.001  # seconds the event loop is left between slices (all that is ready runs, keys first)
GROUPS_EVERY_TICKS = 30  # host → group is re-read this often (fleet sources report groups with their polls)
UNGROUPED_SOURCES = frozenset({"local", "demo"})  # host sources that report no groups (hostgroups.py)


@dataclass
class EngineOptions:
    """How a frontend wants the engine built."""

    demo_speed: float = 1.0
    top_processes: int = 0
    dispatcher: Dispatcher | None = None  # built from the config's sinks and state dir when None
    default_sinks: Sequence[SinkConfig] = ()  # used when the config names no sink (headless: stdout)
    detector: str | None = None  # None: the config's [monitor] detector
    clock: Callable[[], float] = time.time  # wall time: sample timestamps, ages
    # Real elapsed time, to catch wall-clock steps (see clock.py). None: the real one when `clock` is the real
    # wall clock; with an injected `clock` and no `elapsed`, steps are not watched for.
    elapsed: Callable[[], float] | None = None
    # What ticks are scheduled on. None: time.monotonic with the real wall clock, else `elapsed` or `clock`.
    monotonic: Callable[[], float] | None = None
    annotations: Sequence[Annotation] | None = None  # fixed annotations (a replay's); None: the state dir's
    # Learned load models: reloaded from and saved to the state dir's models.json. None: only with the real wall
    # clock (a replay or a test with an injected clock neither reads nor writes them, so it stays reproducible).
    keep_models: bool | None = None
    # The dashboard: the first tick publishes values without analysis, and analysis starts (warmed on the
    # backfilled history and that tick) at the next one, so the first frame does not wait for warming it.
    # Not with a recording, whose replay must see the analysis the live run had.
    defer_analysis: bool = False
    # Sources read only the series the config needs (surgewatch.needed): the headless daemon, which shows nothing
    # but alerts (all series still, with [export] or a recording).
    only_needed: bool = False


class EngineView(Protocol):
    """The engine's read-only queries: what a listener or a frontend may ask of it between ticks."""

    @property
    def config(self) -> Config: ...

    @property
    def tick_seconds(self) -> float: ...

    @property
    def detector_name(self) -> str: ...

    @property
    def last_analysis(self) -> AnalysisResult | None: ...

    @property
    def known_annotations(self) -> tuple[Annotation, ...]: ...

    @property
    def sources_version(self) -> tuple[int, int]: ...

    def series_names(self) -> Sequence[str]: ...

    def source_of(self, name: str) -> str | None: ...

    def source_health(self) -> Mapping[str, SourceHealth]: ...

    def campaign_specs(self) -> list[CampaignSpec]: ...


@dataclass(frozen=True, slots=True)
class ListenerContext:
    """What every listener call gets besides its own data: the engine's read-only view and the engine time."""

    engine: EngineView
    ts: float


class EngineListener(Protocol):
    """Hears every tick's raw readings and alert events, backfilled history, config changes, forgotten series and
    wall-clock steps (a recorder, the /metrics feed). A listener that raises is logged and dropped."""

    def on_tick(self, ctx: ListenerContext, rows: np.ndarray, values: np.ndarray,
                events: Sequence[AlertEvent]) -> None:
        """After a tick: the store rows and values it appended and the alert events it produced."""

    def on_backfill(self, ctx: ListenerContext, ts: Sequence[float], values: Mapping[str, Sequence[float]]) -> None:
        """Past ticks put into the store before the live ones (the demo's history, a replay's)."""

    def on_config(self, ctx: ListenerContext, config: Config) -> None:
        """A reloaded config took effect."""

    def on_campaigns(self, ctx: ListenerContext, campaigns: Sequence[CampaignConfig]) -> None:
        """The campaign feeds' campaigns changed: these are all of them now (a recording keeps them)."""

    def on_forget(self, ctx: ListenerContext, names: Sequence[str]) -> None:
        """These series were evicted (unseen for their eviction time) and are forgotten everywhere."""

    def on_clock_step(self, ctx: ListenerContext, delta: float) -> None:
        """The wall clock was stepped by `delta` seconds; every held wall time moved with it."""

    def close(self) -> None:
        """The engine shuts down (a recording's last commit)."""


def _name_of(callback: object) -> str:
    """A listener's or callback's name for a log line: `Class.method`, `function` or `Class`."""
    owner = getattr(callback, "__self__", None)
    if owner is not None:
        return f"{type(owner).__qualname__}.{getattr(callback, '__name__', '?')}"
    return getattr(callback, "__qualname__", None) or type(callback).__qualname__


class Engine:
    """Owns every part of the pipeline and runs one tick per monitor interval."""

    def __init__(self, config: Config, options: EngineOptions | None = None,
                 sources: Sequence[Source] | None = None) -> None:
        self.options = options or EngineOptions()
        self._subscribers: list[Callable[[Snapshot], None]] = []
        self._event_subscribers: list[Callable[[Sequence[AlertEvent]], None]] = []
        self._listeners: list[EngineListener] = []
        self._held = False  # snapshots held (see snapshots_held)
        self._top_wanted: dict[str, int] = {}  # per source: top processes it was built to list
        self._running = False
        # work at the start of each live tick of `run`, and in the idle time after it, once its snapshot is out (the
        # daemon: lean.TickCollector, the garbage collector off during ticks and collecting after them); None: none
        self.before_tick: Callable[[], None] | None = None
        self.after_tick: Callable[[], None] | None = None
        self._build(config, sources)

    def _build(self, config: Config, sources: Sequence[Source] | None) -> None:
        """Every part, fresh from `config` (and `sources`, else those the config names)."""
        self.config = config
        opts = self.options
        real = opts.clock is time.time
        self.clock: Callable[[], float] = opts.clock
        if real or opts.elapsed is not None:
            self.clock = stepped = SteppedClock(opts.clock, opts.elapsed)
            stepped.on_step(self._clock_stepped)
        self.monotonic = opts.monotonic or (time.monotonic if real else opts.elapsed or opts.clock)
        self.tick_seconds = config.monitor.interval
        self._insecure_tls = frozenset(config.insecure_tls())
        self._given_sources = sources is not None  # a replay's or a test's: they may report host groups
        self.sources = list(sources) if sources is not None else build_sources(config, self._build_options(config))
        self.collector = Collector(self.sources, clock=self.clock)
        self.store = SeriesStore(self.tick_seconds, config.monitor.history, max_series=config.monitor.max_series)
        self.detector_name = opts.detector or config.monitor.detector
        self.detector: StreamingDetector = default_detector(self.tick_seconds, self.detector_name)
        self.declared = DeclaredCauses(*DeclaredCauses.schedules_of(config))
        self.host_groups = HostGroups(config.hosts)
        self._config_campaigns = config.campaigns  # the [[campaign]] tables; feeds' campaigns are added to these
        self._feed_lists: tuple[object, ...] = ()  # the feed lists last merged (identity: a poll makes a new one)
        self._feed_warned: set[str] = set()
        self.preflights: list[Preflight] = []  # scheduled campaigns' plans (analysis/preflight.py)
        self._preflight_at = -math.inf
        self._model_states: Sequence[CampaignState] = ()  # the campaigns of the last analysis that had some
        keep = opts.keep_models if opts.keep_models is not None else real
        self.models: ModelStore | None = ModelStore.in_state_dir(
            resolve_state_dir(config.monitor.state_dir, config.path), clock=self.clock).load() if keep else None
        self._models_saved_at: float | None = None
        self._models_error: str | None = None
        self._groups_at, self._groups_version = -GROUPS_EVERY_TICKS, -1
        self.analyzer = self.build_analyzer()
        self.demo_prefixes = {s.name + "/" for s in self.sources if s.demo}
        state_dir = resolve_state_dir(config.monitor.state_dir, config.path)
        silences = SilenceStore(state_dir, clock=self.clock)
        # deploy annotations: re-read from the state dir when it changes, or a replay's recorded ones
        self.annotations = AnnotationStore(state_dir, clock=self.clock) if opts.annotations is None else None
        if opts.annotations is not None:
            self.declared.set_annotations(opts.annotations)
        self.rules = RuleEngine(config.rules, is_demo=self.is_demo, silences=silences)
        self.dispatcher = opts.dispatcher or build_dispatcher(config, default_sinks=opts.default_sinks)
        self.events: deque[AlertEvent] = deque(maxlen=200)
        self.last_analysis: AnalysisResult | None = None
        self.last_tick: float | None = None
        self._ticks = 0  # ticks run (see snapshots_held)
        self._rows = RowSources()  # which source reports each store row, and its stale and eviction times
        self._series_source: dict[str, str] = self._rows.series_source
        self._hosts_cache: tuple[int, dict[str, dict[str, int]]] = (-1, {})  # store version, host rows
        self._source_version: tuple[int, int] = (-1, -1)
        self._stale_after = np.zeros(0)
        self._row_source = np.zeros(0, dtype=np.intp)  # index into collector.health per store row, -1 unknown
        self._evict_ticks = np.zeros(0, dtype=np.int64)  # per store row: idle ticks after which it is forgotten
        self.evicted = 0  # series forgotten so far
        self._trimmed_at = 0  # store tick count of the last trim_heap after an eviction
        self._rows_cache: tuple[tuple[str, ...], int, np.ndarray] = ((), -1, np.zeros(0, dtype=np.intp))
        self._evict_key: tuple[object, ...] = ()  # what the eviction due time was computed for (see _evict_idle)
        self._evict_due = -math.inf  # store tick count from which a series can be due for eviction
        self._analysis_deferred = opts.defer_analysis and not config.monitor.record
        self._stored_readings = False  # a tick has stored values (deferred analysis starts at the tick after)
        self._catching_up = False  # the tick running is a late source's first answer's (see run)
        self._live_tick = False  # the tick running is run's: it publishes after the tick (publish_soon)
        self._slices: Generator[None, None, Snapshot] | None = None  # a snapshot being built (publish_soon)
        self._slice_handle: asyncio.Handle | None = None

    def _build_options(self, config: Config) -> BuildOptions:
        opts = self.options
        return BuildOptions(demo_speed=opts.demo_speed, wall_clock=opts.clock, top_processes=opts.top_processes,
                            wanted=needed_series(config) if opts.only_needed else None)

    def rebuild(self, config: Config | None = None, sources: Sequence[Source] | None = None) -> None:
        """Start over as a new Engine would (every part fresh, from `config`, default the current one, and
        `sources`, default those it names), keeping subscribers and listeners: a replay seeking backwards."""
        if self._running:
            raise RuntimeError("rebuild: the engine is running")
        self._build(config or self.config, sources)

    # -- wiring helpers -----------------------------------------------------------------------

    def campaign_specs(self) -> list[CampaignSpec]:
        """The config's campaigns as analysis sees them (series names, hosts, expected lift, schedule)."""
        specs = []
        for c in self.config.campaigns:
            specs.append(CampaignSpec(
                name=c.name, series=series("campaign", c.name, "visitors"),
                traffic_series=series("traffic", c.traffic, "visitors"),
                hosts=expand_groups(c.hosts, self.config.hosts),
                expected_lift=c.expected_lift, start=c.start, end=c.end))
        return specs

    def _merged_campaigns(self, lists: tuple[object, ...]) -> tuple[CampaignConfig, ...]:
        from .feeds.base import merge_campaigns  # only a config with campaign feeds (issue 14: the small end)

        feeds = [c for c in lists if isinstance(c, tuple)]
        return merge_campaigns(self._config_campaigns, feeds, self._feed_warned)

    def _sync_feeds(self) -> None:
        """Merge the campaign feeds' latest lists into the campaigns (a failing feed keeps its last good list);
        when they changed, the analysis and the traffic sources follow."""
        lists = tuple(h.details.get("campaigns") for name, h in self.collector.health.items()
                      if name.startswith("feed:") and h.details.get("campaigns") is not None)
        if len(lists) == len(self._feed_lists) and all(a is b for a, b in zip(lists, self._feed_lists, strict=True)):
            return
        self._feed_lists = lists
        campaigns = self._merged_campaigns(lists)
        if campaigns == self.config.campaigns:
            return
        self.config = replace(self.config, campaigns=campaigns)
        self.analyzer = self.build_analyzer()
        self._tell_traffic_sources()
        self._tell("on_campaigns", self.clock(), [c for c in campaigns if c.feed is not None])

    def set_feed_campaigns(self, campaigns: Sequence[CampaignConfig], now: float,
                           declared: Sequence[CampaignConfig] | None = None) -> None:
        """Campaigns from feeds as a recording kept them (a replay does not poll feeds): the [[campaign]] tables
        (`declared`, default the config's) plus these; analysis is rebuilt when they changed."""
        from .feeds.base import merge_campaigns

        base = self._config_campaigns if declared is None else declared
        merged = merge_campaigns(base, [campaigns], self._feed_warned)
        if merged != self.config.campaigns:
            self.apply_config(replace(self.config, campaigns=merged), now)

    def _tell_traffic_sources(self) -> None:
        """Give each traffic source the (campaign, utm_campaign) pairs it reports on now."""
        for src in self.sources:
            if isinstance(src, CampaignAware) and src.name.startswith("traffic:"):
                traffic = src.name.removeprefix("traffic:")
                src.set_campaigns([(c.name, c.utm_campaign or c.name) for c in self.config.campaigns
                                   if c.traffic == traffic])

    def build_analyzer(self) -> Analyzer:
        """A fresh Analyzer for the current config's campaigns and practical-significance floors."""
        analyzer = Analyzer(self.detector, self.campaign_specs(), self.tick_seconds,
                            floors=floors_of(self.config.monitor))
        analyzer.declared = self.declared  # schedules and annotations outlive a rebuilt analyzer
        analyzer.groups = self._group_models(analyzer)
        self._groups_at = -GROUPS_EVERY_TICKS  # the new analyzer learns the hosts' groups at its first tick
        return analyzer

    def _may_group(self) -> bool:
        """Whether any host can be in a group: a [[host]] table names one, a host source may report them (a fleet
        source's group label), or the sources were given (a replay's, a test's)."""
        return self._given_sources or any(h.group or h.source not in UNGROUPED_SOURCES for h in self.config.hosts)

    def _group_models(self, analyzer: Analyzer) -> GroupModels | None:
        """Campaign × host-group models for `analyzer`, or None where no host can have a group (this machine and
        the demo: the small end imports no group analysis, issue 14)."""
        if not self._may_group():
            return None
        from .analysis.groupmodels import GroupModels

        return GroupModels.for_analyzer(analyzer, self.models)

    def is_demo(self, name: str) -> bool:
        """Whether a series comes from a DEMO source (its own name, or the source that reported it)."""
        if any(name.startswith(p) for p in self.demo_prefixes):
            return True
        src = self._series_source.get(name)
        return src is not None and self.collector.health[src].demo

    def subscribe(self, callback: Callable[[Snapshot], None]) -> None:
        """Call `callback` with a fresh Snapshot after every tick (one that raises is logged and dropped)."""
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[Snapshot], None]) -> None:
        """Stop sending snapshots to `callback`."""
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def on_events(self, callback: Callable[[Sequence[AlertEvent]], None]) -> None:
        """Call `callback` with each tick's alert events, if any (one that raises is logged and dropped)."""
        self._event_subscribers.append(callback)

    def add_listener(self, listener: EngineListener) -> None:
        """Tell `listener` of every tick, backfill, reload, eviction and clock step, e.g. a recorder."""
        self._listeners.append(listener)

    def remove_listener(self, listener: EngineListener) -> None:
        """Stop telling `listener` (it is not closed)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def listeners(self) -> tuple[EngineListener, ...]:
        """The listeners attached now (a failed one is no longer among them)."""
        return tuple(self._listeners)

    def _drop(self, callback: object, hook: str, exc: Exception) -> None:
        """A listener or callback raised: one line naming it, and it is called no more (the tick goes on)."""
        for held in (self._listeners, self._subscribers, self._event_subscribers):
            if callback in held:
                held.remove(callback)  # type: ignore[arg-type]
        log.error("dropped %s: its %s raised %s: %s", _name_of(callback), hook, type(exc).__name__,
                  " ".join(str(exc).split()))
        log.debug("the dropped %s raised", _name_of(callback), exc_info=exc)

    def _tell(self, hook: str, ts: float, *args: object) -> None:
        """Call `hook` of every listener with a context at engine time `ts` and `args`, guarded (see _drop)."""
        ctx = ListenerContext(self, ts)
        for listener in tuple(self._listeners):
            try:
                getattr(listener, hook)(ctx, *args)
            except Exception as exc:
                self._drop(listener, hook, exc)

    # -- read-only queries (EngineView) ---------------------------------------------------------

    def series_names(self) -> Sequence[str]:
        """Every store row's series name, by row ("" for a row freed by eviction); do not modify."""
        return self.store.names

    def row_of(self, name: str) -> int | None:
        """The store row of a series, None if it is not held."""
        return self.store.index.get(name)

    def window(self, seconds: float | None, names: Sequence[str] | None = None) -> Window:
        """The stored history of the last `seconds` (None: all of it), of `names` or of every series."""
        return self.store.window(seconds, names)

    @property
    def history_capacity(self) -> int:
        """How many ticks are held at full resolution."""
        return self.store.fine.capacity

    def current_values(self, now: float) -> tuple[Sequence[str], np.ndarray, np.ndarray]:
        """Per store row: the series name ("" for a freed row), its latest value and whether it is stale at
        `now` (nothing arrived within three of its source's intervals)."""
        store = self.store
        n = len(store)
        with np.errstate(invalid="ignore"):
            stale = (now - store.last_ts[:n]) > self._stale_after[:n] if self._stale_after.shape[0] >= n \
                else np.zeros(n, dtype=bool)
        return store.names[:n], store.last_value[:n], stale

    @property
    def known_annotations(self) -> tuple[Annotation, ...]:
        """The deploy annotations analysis knows now (the same tuple object until they change)."""
        return self.declared.annotations

    def source_health(self) -> Mapping[str, SourceHealth]:
        """What the collector knows of each source, by source name; do not modify."""
        return self.collector.health

    def source_of(self, name: str) -> str | None:
        """The name of the source a series came from (None if no source has reported it yet)."""
        src = self._series_source.get(name)
        if src is not None:
            return src
        for h in self.collector.health.values():
            if name in h.series or name.startswith(h.name + "/"):
                return h.name
        return None

    @property
    def sources_version(self) -> tuple[int, int]:
        """Changes whenever the series → source map may have changed (compare, do not interpret)."""
        return self._source_version

    def active_alerts(self) -> list[ActiveAlert]:
        """The pending and firing alerts (and those resolved but still shown)."""
        return list(self.rules.active.values())

    def delivery_backlog(self) -> list[SinkBacklog]:
        """Undelivered notifications per sink id."""
        return self.dispatcher.backlog()

    def dead_letters(self) -> dict[str, int]:
        """Notifications each sink refused for good, per sink id."""
        return self.dispatcher.dead_letters()

    # -- what a replay or a scenario tells the engine instead of live polls ---------------------

    def learn_sources(self, series_source: Mapping[str, str | None]) -> None:
        """Note which source reported each series (a recording's map; live, polls say so themselves)."""
        health = self.collector.health
        for name, src in series_source.items():
            if src is not None and src in health:
                health[src].series.add(name)

    def set_source_state(self, name: str, *, ok: bool, error: str | None, last_success: float | None) -> None:
        """Set a source's health as recorded (a replay's, a scenario's); live, its polls set it."""
        h = self.collector.health[name]
        h.ok, h.error, h.last_success = ok, error, last_success

    def list_top_processes(self, on: bool) -> None:
        """List top processes in host polls (as many as each source was built to) only while `on`: it costs
        ~14 ms a poll, so a dashboard turns it on while a screen shows them."""
        for source in self.sources:
            have = getattr(source, "top_processes", 0)
            if not isinstance(have, int):
                continue
            wanted = self._top_wanted.setdefault(source.name, have)
            setattr(source, "top_processes", wanted if on else 0)  # noqa: B010 (a host source's own setting)

    # -- acknowledgements, silences and reload (dashboard, daemon) --------------------------------

    def acknowledge(self, fingerprint: str) -> bool:
        """Acknowledge a pending or firing alert (no repeat notifications until it resolves); False if none.

        Raises SilenceError (one line) if the state file cannot be written."""
        return self.rules.acknowledge(fingerprint)

    def add_silence(self, rule_glob: str, series_glob: str, until: float, comment: str) -> str:
        """Silence alerts matching both globs until `until` (UNIX time); returns the silence id.

        Raises SilenceError (one line) for a bad silence or an unwritable state file."""
        return self.rules.add_silence(rule_glob, series_glob, until, comment, self.clock()).id

    def remove_silence(self, silence_id: str) -> bool:
        """Delete a silence; False if there is none with that id (raises SilenceError as add_silence)."""
        return self.rules.remove_silence(silence_id, self.clock())

    def silences(self) -> list[Silence]:
        """The silences in effect now, soonest ending first (as last read from the state file)."""
        store = self.rules.store
        return store.silences(self.clock()) if store is not None else []

    async def reload(self, config: Config) -> None:
        """Apply a reloaded config: sinks, rules, sources and campaigns (tick interval and history stay)."""
        if (config.monitor.interval, config.monitor.history) != (self.config.monitor.interval,
                                                                  self.config.monitor.history):
            log.warning("reload: [monitor] interval and history changes take effect after a restart")
        sources = None
        if (config.hosts, config.probes, config.traffic, config.campaign_feeds) != (
                self.config.hosts, self.config.probes, self.config.traffic, self.config.campaign_feeds) or (
                self.options.only_needed and needed_key(config) != needed_key(self.config)):
            sources = build_sources(config, self._build_options(config))  # may raise: nothing has changed yet
        sink_cfgs = list(config.sinks) or list(self.options.default_sinks)
        if sink_cfgs != (list(self.config.sinks) or list(self.options.default_sinks)):
            await self.dispatcher.reconfigure(sink_cfgs)
        if sources is not None:
            old, on_error = self.collector, self.collector.on_error
            self.sources = sources
            self.collector = Collector(sources, clock=self.clock)
            self.collector.on_error = on_error
            self.demo_prefixes = {s.name + "/" for s in sources if s.demo}
            self._rows.reset()
            self._series_source, self._source_version = self._rows.series_source, (-1, -1)
            if self._running:
                self.collector.start(driven=self.tick_seconds)
            try:
                await asyncio.wait_for(old.stop(), 2.0)
            except TimeoutError:
                log.warning("reload: old sources did not close within 2s")
        max_series = config.monitor.max_series != self.config.monitor.max_series
        self._config_campaigns = config.campaigns
        if sources is None:  # the feeds keep their last lists: merge them into the new [[campaign]] tables
            config = replace(config, campaigns=self._merged_campaigns(self._feed_lists))
        else:
            self._feed_lists = ()  # new feed sources: their campaigns come back with their first polls
        self.apply_config(config, self.clock())
        if max_series:
            self.store.set_max_series(config.monitor.max_series)
        self._rows.reset()  # eviction times follow a changed evict_after or new sources
        self._series_source, self._source_version = self._rows.series_source, (-1, -1)

    def apply_config(self, config: Config, now: float) -> None:
        """What a reload changes in analysis and alerting: schedules, campaigns (as given: a reload has merged
        the feeds' in), rules and host groups (a replay applies a recorded reload with it); listeners hear of the
        new config (a recording notes it so a replay applies it)."""
        if (config.schedules, config.monitor.timezone) != (self.config.schedules, self.config.monitor.timezone):
            self.declared.set_schedules(*DeclaredCauses.schedules_of(config))
        if config.campaigns != self.config.campaigns:
            self.config = config
            self.analyzer = self.build_analyzer()
            self._tell_traffic_sources()
        self.rules.replace_rules(config.rules, now)
        self.host_groups = HostGroups(config.hosts)
        self.config = config
        if self.analyzer.groups is None and self._may_group():  # a reload named the first group
            self.analyzer.groups = self._group_models(self.analyzer)
            self._groups_at = -GROUPS_EVERY_TICKS
        self._tell("on_config", now, config)

    # -- lifecycle ----------------------------------------------------------------------------

    def backfill_demo(self) -> None:
        """Put the demo's baseline history into the store so the first minutes already tell the story."""
        from .sources.demo import HISTORY

        fillers = [s for s in self.sources if hasattr(s, "backfill")]
        if not fillers:
            return
        now = self.clock()
        n = int(max(60, min(self.store.fine.capacity - 2, HISTORY / self.options.demo_speed / self.tick_seconds)))
        ts = [now - self.tick_seconds * (n - i) for i in range(n)]
        merged: dict[str, np.ndarray] = {}
        for s in fillers:
            history = getattr(s, "history", None)  # the demo's: arrays, not a Python float per sample
            merged.update(history(ts) if history is not None else
                          {k: np.asarray(v, dtype=np.float64) for k, v in s.backfill(ts).values.items()})
        self._backfill(ts, merged)

    def backfill(self, ts: Sequence[float], merged: Mapping[str, Sequence[float]]) -> None:
        """Put past ticks into the store and warm analysis on them (the demo's history, a replay's)."""
        self._backfill(ts, {k: np.asarray(v, dtype=np.float64) for k, v in merged.items()}, merged)

    def _backfill(self, ts: Sequence[float], values: dict[str, np.ndarray],
                  given: Mapping[str, Sequence[float]] | None = None) -> None:
        """`backfill` of float64 arrays; listeners hear the values as given, or as lists (made only for them)."""
        self.store.backfill(ts, values)
        if not self._analysis_deferred:  # else warmed when analysis starts, on this and the first live tick
            self.analyzer.warm(self.store.last_n(len(ts))[1].astype(np.float64))  # as live ticks' columns are
        if self._listeners:
            self._tell("on_backfill", self.clock(), ts,
                       given if given is not None else {k: v.tolist() for k, v in values.items()})

    async def run(self, until: asyncio.Event | None = None) -> None:
        """Run ticks until `until` is set (or the task is cancelled)."""
        stop = until or asyncio.Event()
        self._running = True
        self.collector.start(driven=self.tick_seconds)
        self.dispatcher.start()
        try:
            # Scheduled on the monotonic clock: a wall-clock step neither stalls ticks nor bursts them.
            # First tick as soon as every source has answered once, or after 0.3 s (one tick if shorter); the
            # ticks after it keep the beat of that 0.3 s mark, so the second one may come a little later.
            beat = self.monotonic() + min(0.3, self.tick_seconds)
            await self._first_polls(stop, min(0.3, self.tick_seconds))
            if not stop.is_set():
                await self._tick_until(stop, beat)
        finally:
            self._running = False

    async def _tick_until(self, stop: asyncio.Event, beat: float) -> None:
        """Tick now, then every tick_seconds on the beat of `beat`, until `stop` is set. Each tick runs straight
        from its timer (one wake-up of the event loop a tick, not the several of a task waiting with a timeout);
        a tick that raises ends the run with its exception, as a cancelled run ends at once."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        stopper = asyncio.ensure_future(stop.wait())  # one waiter for the whole run

        def stopped(_task: object) -> None:
            if not done.done():
                done.set_result(None)

        stopper.add_done_callback(stopped)
        mono = self.monotonic
        next_tick = mono()
        timer: asyncio.Handle | None = None

        # A source that has not answered by the first tick (a fleet's Prometheus, a slow API) gets a tick of its
        # own as soon as its first answer lands, within the first interval, rather than a full interval later.
        late_sources: list[str] = []
        catch_up: asyncio.Handle | None = None

        def live_tick(catching_up: bool = False) -> None:
            self.finish_publishing()  # a snapshot still being built goes out before the store moves on
            if self.before_tick is not None:
                self._run_hook(self.before_tick, "before-tick work")
            self._catching_up, self._live_tick = catching_up, True
            try:
                self.tick(self.clock())
            finally:
                self._catching_up = self._live_tick = False
            if not self._held:
                self.publish_soon(now=catching_up or self._ticks <= EAGER_TICKS)
            self._after_tick_soon()

        def on_catch_up() -> None:
            nonlocal late_sources, catch_up
            catch_up = None
            if done.done() or stop.is_set() or not late_sources:
                return
            health = self.collector.health
            if any((h := health.get(name)) is not None and (h.ok or h.error is not None) for name in late_sources):
                late_sources = self.collector.unanswered()
                try:
                    live_tick(catching_up=True)  # off the beat: the next tick keeps it
                except Exception as exc:
                    done.set_exception(exc)
                    return
            if late_sources and mono() + CATCH_UP_CHECK < next_tick:
                catch_up = loop.call_later(CATCH_UP_CHECK, on_catch_up)

        def on_timer() -> None:
            nonlocal next_tick, timer, late_sources, catch_up
            if done.done():
                return
            if stop.is_set():
                done.set_result(None)
                return
            first = self.last_tick is None
            try:
                self.collector.poll_driven()  # this machine's and the demo's polls: in this wake-up, first
                live_tick()
            except Exception as exc:
                done.set_exception(exc)
                return
            next_tick = max(next_tick, beat) + self.tick_seconds
            late = mono()
            if next_tick < late:  # fell behind (suspend, overload): one tick now, then on the beat again
                next_tick = late + self.tick_seconds
            timer = loop.call_later(next_tick - late, on_timer)
            late_sources = self.collector.unanswered() if first else []
            if late_sources:
                catch_up = loop.call_later(CATCH_UP_CHECK, on_catch_up)

        timer = loop.call_soon(on_timer)
        try:
            await done
        finally:
            for handle in (timer, catch_up):
                if handle is not None:
                    handle.cancel()
            stopper.cancel()
            self.finish_publishing()

    async def _first_polls(self, stop: asyncio.Event, limit: float) -> None:
        """Wait up to `limit` seconds (real time, checked every 10 ms) for every source's first answer."""
        for _ in range(max(1, round(limit / 0.01))):
            if stop.is_set() or self.collector.answered():
                return
            await asyncio.sleep(0.01)

    async def shutdown(self, drain_seconds: float = 2.0) -> None:
        """Stop polling and deliver what is queued (bounded); close listeners (a recording's last commit)."""
        await self.collector.stop()
        self.keep_models(force=True)
        for listener in tuple(self._listeners):
            try:
                listener.close()
            except Exception as exc:
                self._drop(listener, "close", exc)
        await self.dispatcher.drain(drain_seconds)

    # -- the tick -----------------------------------------------------------------------------

    def tick(self, now: float, readings: Mapping[str, float] | None = None) -> list[AlertEvent]:
        """Append what arrived since the last tick (or `readings`: a replay's recorded ones), analyse it,
        evaluate rules and publish to subscribers and listeners (a live tick of `run` publishes after it, see
        `publish_soon`)."""
        if readings is None:
            readings = self.collector.drain()
        if self.config.campaign_feeds:
            self._sync_feeds()
        store = self.store
        self._evict_idle(now)  # first, so that new series can take the freed rows
        if readings:
            rows = self._rows_of(readings)
            values = np.fromiter(readings.values(), dtype=np.float64, count=len(readings))
            if store.dropped and (rows < 0).any():  # new series beyond max_series: not held anywhere
                keep = rows >= 0
                dropped = [name for name, k in zip(readings, keep.tolist(), strict=True) if not k]
                for h in self.collector.health.values():
                    h.series.difference_update(dropped)
                rows, values = rows[keep], values[keep]
        else:
            rows, values = np.zeros(0, dtype=np.intp), np.zeros(0)
        if store.reused:  # freed rows taken by new series: per-row analysis state starts over
            self.analyzer.forget_rows(np.array(store.reused, dtype=np.intp))
            store.reused.clear()
        column = store.append(now, rows, values)
        if self.annotations is not None and self.annotations.refresh():
            self.declared.set_annotations(self.annotations.items())
        # analysis starts at the tick on the beat after the first one that stored values
        if self._analysis_deferred and self._stored_readings and not self._catching_up:
            self._analysis_deferred = False
            self.analyzer.warm(store.last_n(store.ticks)[1][:, :-1].astype(np.float64))  # as live columns are
        analysis = None
        if not self._analysis_deferred:
            ts_win, win = store.last_n(self.analyzer.fit_ticks)
            if self.analyzer.groups is not None and (store.ticks - self._groups_at >= GROUPS_EVERY_TICKS
                                                     or store.version != self._groups_version):
                self._groups_at, self._groups_version = store.ticks, store.version
                self._refresh_sources()  # which source reports each new host (its group comes with the source)
                self.analyzer.groups.set_groups(self.group_map())
            analysis = self.analyzer.step(now, store.names, store.index, column, ts_win, win)
        self.last_analysis = analysis
        self.keep_models()
        self._refresh_sources()
        n = len(store)
        with np.errstate(invalid="ignore"):
            fresh = (now - store.last_ts[:n]) <= self._stale_after[:n]
        values_now = np.where(fresh, store.last_value[:n], np.nan)
        stale = self._stale_rows(now)
        if analysis is not None:  # none on a dashboard's first tick (defer_analysis)
            self._update_preflights(now, analysis)
        events = self.rules.evaluate(now, store.names, store.version, values_now, analysis, stale)
        self.last_tick = now
        self._ticks += 1
        self._stored_readings = self._stored_readings or bool(rows.shape[0])
        if self._listeners:
            self._tell("on_tick", now, rows, values, events)
        if events:
            self.events.extend(events)
            self.dispatcher.submit(events)
            for on_events in tuple(self._event_subscribers):
                try:
                    on_events(events)
                except Exception as exc:
                    self._drop(on_events, "alert events callback", exc)
        if not self._held and not self._live_tick:
            self.publish()
        return events

    def _rows_of(self, readings: Mapping[str, float]) -> np.ndarray:
        """The store rows of a tick's readings: those of the previous tick when the same series arrived in the same
        order and the store's series have not changed since (every tick of a steady config), else the store's."""
        names = tuple(readings)
        cached_names, version, rows = self._rows_cache
        if names == cached_names and version == self.store.version:
            return rows
        rows = self.store.rows(names)
        if rows.shape[0] and rows.min() >= 0:  # none refused by the cap (a raised cap takes them next time)
            self._rows_cache = (names, self.store.version, rows)
        return rows

    def publish(self, snap: Snapshot | None = None) -> None:
        """Send every subscriber a fresh snapshot, or `snap` (none is built when nobody subscribes)."""
        if not self._subscribers:
            return
        snap = snap if snap is not None else self.snapshot()
        for on_snapshot in tuple(self._subscribers):
            try:
                on_snapshot(snap)
            except Exception as exc:
                self._drop(on_snapshot, "snapshot callback", exc)

    @contextlib.contextmanager
    def snapshots_held(self) -> Iterator[None]:
        """Publish no snapshot while many ticks run at once (a replay seeking); one after them, if any ran."""
        held, self._held = self._held, True
        ticks = self._ticks
        try:
            yield
        finally:
            self._held = held
        if not held and self._ticks != ticks:
            self.publish()

    def _update_preflights(self, now: float, analysis: AnalysisResult) -> None:
        """Plan every scheduled campaign with an expected size (every PREFLIGHT_EVERY seconds) from the models
        learned so far: the campaign screen shows the worst host, preflight_above rules fire on them."""
        upcoming = [c for c in self.config.campaigns if c.start is not None and c.start > now
                    and (c.expected_lift or c.expected_visitors is not None)]
        if analysis.campaigns:
            self._model_states = analysis.campaigns  # turned into plan inputs only when planning (not per tick)
        if not upcoming:
            if self.preflights:
                self.preflights, self.rules.preflights = [], {}
            return
        if now - self._preflight_at < PREFLIGHT_EVERY:
            return
        self._preflight_at = now
        self.preflights = self.plan_campaigns(upcoming, now)
        by_series: dict[str, list[Preflight]] = {}
        for e in self.preflights:
            by_series.setdefault(e.series, []).append(e)
        self.rules.preflights = by_series

    def plan_campaigns(self, campaigns: Sequence[CampaignConfig], now: float | None = None) -> list[Preflight]:
        """Plans of these campaigns (those with an expected size) from the load models learned so far; with
        `now`, only those starting within the pre-flight horizon after it, else all at their start."""
        # the planner, only for a config with scheduled campaigns (issue 14: the small end imports what it uses)
        from .analysis.plan import rule_limits
        from .analysis.preflight import Upcoming, facts_of, preflights

        ups = [Upcoming(c.name, c.start, tuple(c.hosts), c.expected_lift, c.expected_visitors,
                        self._site_baseline(c.traffic)) for c in campaigns if c.start is not None]
        if not ups:
            return []
        groups = {h.name: h.group for h in self.config.hosts if h.group}
        # the live models first; the kept ones (a restart, a campaign no longer configured) fill the gaps
        index = self.store.index  # models are of the site's traffic where that series exists (analyzer.py)
        drivers = {c.name: "site" if series("traffic", c.traffic, "visitors") in index else "campaign"
                   for c in self.config.campaigns}
        facts = facts_of(self._model_states, drivers) + (
            plan_facts(self.models.models()) if self.models is not None else [])
        if now is None:
            return preflights(ups, facts, min(u.start for u in ups) - 1.0,
                              rule_limits(self.config.rules), groups, horizon=math.inf)
        return preflights(ups, facts, now, rule_limits(self.config.rules), groups)

    def _site_baseline(self, traffic: str) -> float:
        """A site's baseline visitors: a low quantile of its traffic over the history held."""
        name = series("traffic", traffic, "visitors")
        w = self.store.window(None, [name])
        held = baseline(w.values[0]) if w.values.shape[0] else math.nan
        if math.isfinite(held) or self.models is None:
            return held
        kept = [m for m in self.models.models() if m.traffic == name and m.traffic_baseline is not None]
        newest = max(kept, key=lambda m: m.learned_at, default=None)  # after a restart: the level kept with it
        return float(newest.traffic_baseline) if newest is not None and newest.traffic_baseline is not None \
            else math.nan

    def group_map(self) -> dict[str, str]:
        """Each grouped host's group, from the config and what fleet sources report (hostgroups.py)."""
        health = self.collector.health
        if not self.host_groups.configured and not any(h.details.get("groups") for h in health.values()):
            return {}
        self._refresh_sources()
        out: dict[str, str] = {}
        names = self.store.names
        for who, row in self._rows.hosts().items():
            src_name = f"host:{who}" if f"host:{who}" in health else self._series_source.get(names[row], "")
            src = health.get(src_name)
            group = self.host_groups.group_of(who, src_name, src.details if src else None)
            if group:
                out[who] = group
        return out

    def keep_models(self, force: bool = False) -> None:
        """Put the live load models worth keeping into the models file (at most every MODELS_SAVE_SECONDS, or
        now with `force`); models of DEMO campaigns are not kept. A failed write is logged once."""
        store, analysis, now = self.models, self.last_analysis, self.clock()
        if store is None or analysis is None:
            return
        if not force and self._models_saved_at is not None and now - self._models_saved_at < MODELS_SAVE_SECONDS:
            return
        if self._models_saved_at is None and not force:
            self._models_saved_at = now  # the first save comes a full period after the start
            return
        self._models_saved_at = now
        specs = [s for s in self.analyzer.campaigns if not self.is_demo(s.traffic_series)]
        real = {s.name for s in specs}
        states = [c for c in analysis.campaigns if c.name in real]
        sites = {s.traffic_series: self._site_baseline(split_series(s.traffic_series)[1]) for s in specs}
        groups = self.analyzer.groups.learned(sites) if self.analyzer.groups is not None else []
        store.put_all(learned_from(states, specs, self.tick_seconds, analysis.ts, sites))
        store.put_all(m for m in groups if m.campaign in real)
        if not store.dirty:
            return
        try:
            store.save()
        except ModelStoreError as exc:
            if str(exc) != self._models_error:
                log.warning("%s", exc)
            self._models_error = str(exc)
        else:
            self._models_error = None

    def _group_views(self) -> dict[str, list[GroupView]]:
        """Per campaign: its host groups' shared models, headroom and departing hosts (groupmodels.py)."""
        from .snapshot import GroupView  # snapshots only for a frontend that subscribes (not the plain daemon)

        out: dict[str, list[GroupView]] = {}
        groups = self.analyzer.groups
        for g in groups.states if groups is not None else ():
            if g.campaign is None:
                continue
            m = g.model
            out.setdefault(g.campaign, []).append(GroupView(
                g.group, g.metric, g.hosts, g.median_now, g.lag_seconds, m.slope if m else math.nan,
                m.intercept if m else math.nan, m.r2 if m else math.nan, g.expected_now, g.capacity.headroom,
                g.capacity.seconds_to_limit, g.departing, g.restored))
        return out

    def _refresh_sources(self) -> None:
        """Bring the series → source map and the per-row stale and eviction times up to the store's names (only
        the rows whose names changed, see rowsources.py; all of them after a reload)."""
        rows = self._rows
        timing = Timing(self.tick_seconds, self.config.monitor.evict_after or None)
        if rows.update(self.store.names, self.store.version, self.collector.health, timing):
            self._series_source = rows.series_source
            self._stale_after, self._row_source, self._evict_ticks = rows.stale_after, rows.row_source, \
                rows.evict_ticks
            self._source_version = (rows.version, 0)

    def _evict_idle(self, now: float) -> None:
        """Forget series not seen for their eviction time, everywhere they are held (memory stays flat under
        series churn). Series of a source that is failing now, wholly or in part, are kept: they come back
        with it. Looked at only from the first tick at which a series can be due (or when series, their
        eviction times or the failing sources changed), not every tick."""
        store = self.store
        n = len(store)
        if not n:
            return
        failing = [k for k, h in enumerate(self.collector.health.values()) if not h.ok or h.partial]
        key = (store.version, self._source_version, tuple(failing))
        if key == self._evict_key and store.ticks < self._evict_due:
            return
        limit = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        m = min(n, self._evict_ticks.shape[0])
        limit[:m] = self._evict_ticks[:m]
        if failing:
            limit[:m][np.isin(self._row_source[:m], failing)] = np.iinfo(np.int64).max
        rows, names = store.evict_idle(limit)
        if rows.shape[0]:
            self.forget_series(rows, names, now)
            if store.ticks - self._trimmed_at >= TRIM_EVERY_TICKS and trim_heap():  # once the store holds a fleet
                self._trimmed_at = store.ticks
        # the earliest tick count at which a held series can be idle past its limit (seen_tick only grows)
        held = np.fromiter(store.index.values(), dtype=np.intp, count=len(store.index))
        due = (store.seen_tick[held].astype(np.float64) + limit[held]).min() + 1 if held.shape[0] else math.inf
        self._evict_due = due
        self._evict_key = (store.version, self._source_version, tuple(failing))

    def forget_series(self, rows: np.ndarray, names: Sequence[str], now: float) -> None:
        """Drop evicted series (already freed in the store) from every part that holds them."""
        self.evicted += len(names)
        self.analyzer.forget_rows(rows)
        self.rules.forget_rows(rows, names, now)
        gone = set(names)
        for h in self.collector.health.values():
            h.series.difference_update(gone)
        self._rows.forget(names)
        forget_split(names)
        self._tell("on_forget", now, names)
        log.debug("evicted %d idle series (%d held)", len(names), self.store.live)

    def _clock_stepped(self, delta: float) -> None:
        """The wall clock was stepped by `delta` seconds: move every held wall time with it, so ages,
        for-durations and waits keep their length (see clock.py)."""
        self.store.shift_time(delta)
        self.collector.shift_time(delta)
        self.rules.shift_time(delta)
        if self.last_tick is not None:
            self.last_tick += delta
        # a recording keeps its timeline continuous
        self._tell("on_clock_step", self.last_tick if self.last_tick is not None else math.nan, delta)

    def _stale_rows(self, now: float) -> np.ndarray:
        """Rows whose source is stale now (vectorised over the row → source map kept by _refresh_sources)."""
        dead = [k for k, h in enumerate(self.collector.health.values()) if h.stale(now)]
        if not dead:
            return np.zeros(len(self.store), dtype=bool)
        return np.isin(self._row_source, dead)

    # -- snapshots ----------------------------------------------------------------------------

    def _host_rows(self) -> dict[str, dict[str, int]]:
        """host → metric → store row, rebuilt only when series were added or evicted."""
        if self._hosts_cache[0] != self.store.version:
            hosts: dict[str, dict[str, int]] = {}
            metrics: dict[str, str] = {}  # one string per metric name, not one per series (10,000 in a fleet)
            for i, name in enumerate(self.store.names):
                kind, who, metric = split_series(name)
                if kind == "host":
                    hosts.setdefault(who, {})[metrics.setdefault(metric, metric)] = i
            self._hosts_cache = (self.store.version, hosts)
        return self._hosts_cache[1]

    def snapshot(self) -> Snapshot:
        """The current state as plain data (cheap: a few hundred values)."""
        slices = self._snapshot_slices()
        while True:
            try:
                next(slices)
            except StopIteration as done:
                return done.value

    def publish_soon(self, now: bool = False) -> None:
        """`publish`, the snapshot built SNAPSHOT_SLICE hosts at a time, each slice in its own turn of the event
        loop (at 1,000 hosts a snapshot costs 30-150 ms: a dashboard's key press waits for one slice, not all of
        it). `now`: at once (starting up, a first frame waits for it). A snapshot still being built is finished
        first; so is one when a tick comes (finish_publishing): no tick moves the store under a half-built one."""
        self.finish_publishing()
        if not self._subscribers:
            return
        if now:
            self.publish()
            return
        self._slices = self._snapshot_slices()
        self._slice_handle = asyncio.get_running_loop().call_soon(self._next_slice)

    def _next_slice(self) -> None:
        slices = self._slices
        if slices is None:
            return
        try:
            next(slices)
        except StopIteration as done:
            self._slices = self._slice_handle = None
            self.publish(done.value)
            self._after_tick_soon()
            return
        self._slice_handle = asyncio.get_running_loop().call_later(SNAPSHOT_PAUSE, self._next_slice)

    def _after_tick_soon(self) -> None:
        """Run `after_tick` in a turn of the event loop of its own, after what is ready (a key, an alert to
        send), once the tick's snapshot is out (a snapshot built in slices calls this again after its last)."""
        if self.after_tick is not None and self._slices is None:
            asyncio.get_running_loop().call_soon(self._run_after_tick)

    def _run_after_tick(self) -> None:
        if self.after_tick is not None:
            self._run_hook(self.after_tick, "after-tick work")

    def _run_hook(self, work: Callable[[], None], what: str) -> None:
        """`before_tick` or `after_tick`; one that raises is dropped in one line with the other (they are a pair),
        and the ticks go on."""
        try:
            work()
        except Exception as exc:
            self.before_tick = self.after_tick = None
            self._drop(work, what, exc)

    def finish_publishing(self) -> None:
        """Build the rest of a snapshot being built in slices, at once, and publish it."""
        slices, handle = self._slices, self._slice_handle
        if slices is None:
            return
        self._slices = self._slice_handle = None
        if handle is not None:
            handle.cancel()
        while True:
            try:
                next(slices)
            except StopIteration as done:
                self.publish(done.value)
                return

    def _snapshot_slices(self) -> Generator[None, None, Snapshot]:
        """Build the snapshot, yielding after every SNAPSHOT_SLICE hosts; its value (StopIteration) is it."""
        from .analysis.preflight import worst
        from .snapshot import AlertView, CampaignView, HostView, PairView, RecentValues, Snapshot, SourceView

        now = self.last_tick or self.clock()
        store = self.store
        analysis = self.last_analysis
        _, recent = store.last_n(SPARK_POINTS)
        n = len(store)
        scores = analysis.score if analysis is not None else np.full(n, np.nan)
        campaigns_by_host: dict[str, list[str]] = {}
        for c in self.config.campaigns:
            for h in c.hosts:
                campaigns_by_host.setdefault(h, []).append(c.name)
        cap_by_host: dict[str, tuple[float, float]] = {}
        campaign_views = []
        states = {c.name: c for c in analysis.campaigns} if analysis else {}
        group_views = self._group_views()
        for c in self.config.campaigns:
            st = states.get(c.name)
            row = store.index.get(series("campaign", c.name, "visitors"))
            spark = tuple(recent[row].tolist()) if row is not None else ()
            pairs = []
            if st is not None:
                for p in st.pairs:
                    m = p.model
                    pairs.append(PairView(p.host, p.metric, p.lag_seconds, m.slope if m else math.nan,
                                          m.intercept if m else math.nan, m.r2 if m else math.nan,
                                          p.expected_now, p.capacity.headroom, p.capacity.seconds_to_limit))
                    if p.metric == "cpu.percent" and p.capacity.known:
                        prev = cap_by_host.get(p.host)
                        if prev is None or p.capacity.headroom < prev[0]:
                            cap_by_host[p.host] = (p.capacity.headroom, p.capacity.seconds_to_limit)
            traffic_src = f"traffic:{c.traffic}"
            campaign_views.append(CampaignView(
                name=c.name, demo=any(s.name == traffic_src and s.demo for s in self.sources),
                visitors=st.visitors if st else store.latest(series("campaign", c.name, "visitors")),
                baseline=st.baseline if st else math.nan, lift=st.lift if st else math.nan,
                expected_lift=c.expected_lift, growth_per_s=st.growth_per_s if st else math.nan,
                spark=spark, hosts=tuple(c.hosts), start=c.start, end=c.end, pairs=tuple(pairs), feed=c.feed,
                expected_visitors=c.expected_visitors,
                forecast=pre.text if (pre := worst(e for e in self.preflights if e.campaign == c.name)) else None,
                groups=tuple(group_views.get(c.name, ()))))
        hosts = self._host_rows()
        # Python floats once for all rows (not a numpy scalar per value), and every spark row in one gather:
        # at 1,000 hosts this is most of the snapshot's cost
        last = store.last_value[:n].tolist()
        score_of = scores.tolist()
        spark_rows = [i for metrics in hosts.values() for m in HOST_SPARK_METRICS if (i := metrics.get(m)) is not None]
        sparks = recent[spark_rows]  # one copy shared by every host's RecentValues (tuples made when drawn)
        sparks.flags.writeable = False
        k = 0
        health = self.collector.health
        host_views = []
        for count, (who, metrics) in enumerate(hosts.items()):
            if count and not count % SNAPSHOT_SLICE:
                yield
            src_name = f"host:{who}"
            src = health.get(src_name)
            if src is None:  # a host found through a fleet source (e.g. PromQL): take that source's health
                src_name = self._series_source.get(next(iter(
                    store.names[i] for i in metrics.values())), "")
                src = health.get(src_name)
            values = {m: last[i] for m, i in metrics.items()}
            at = {m: k + j for j, m in enumerate(m for m in HOST_SPARK_METRICS if m in metrics)}
            k += len(at)
            host_spark = RecentValues(sparks, at)
            sc = {m: v for m, i in metrics.items() if i < len(score_of) and not math.isnan(v := score_of[i])}
            cap = cap_by_host.get(who, (math.nan, math.nan))
            host_views.append(HostView(
                name=who, demo=self.is_demo(f"host:{who}/"), stale=bool(src.stale(now)) if src else False,
                error=src.error if src else None, metrics=values, spark=host_spark, scores=sc,
                campaigns=tuple(campaigns_by_host.get(who, ())), headroom=cap[0], seconds_to_limit=cap[1],
                top_processes=tuple(src.details.get("top_processes", ())) if src else (),
                group=self.host_groups.group_of(who, src_name, src.details if src else None)))
        self.rules.refresh_views()
        alerts = tuple(
            AlertView(a.rule.name, a.series, a.state_name, str(a.rule.severity), a.fired_at or a.since, a.value,
                      a.explanation.split(";")[0], a.explanation, a.cause, a.campaign, a.fingerprint, a.demo,
                      acked=a.acked, silenced=a.silenced)
            for a in self.rules.active.values())
        sources = tuple(
            SourceView(h.name, h.demo, h.ok, h.stale(now), h.error, h.last_success, h.last_latency, h.interval,
                       h.polls, h.failures, insecure_tls=h.name in self._insecure_tls) for h in health.values())
        latest = {name: last[i] for i, name in enumerate(store.names) if name}
        yield
        return Snapshot(ts=now, tick=store.ticks, interval=self.tick_seconds, hosts=tuple(host_views),
                        campaigns=tuple(campaign_views), alerts=alerts, events=tuple(self.events),
                        sources=sources, values=latest, annotations=self.declared.annotations)
