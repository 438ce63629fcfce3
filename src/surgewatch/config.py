"""TOML config file → typed, validated objects; every error is one line naming file, line and key."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import plugins
from .analysis import DEFAULT_LIVE_DETECTOR, LIVE_DETECTORS
from .model import Severity, glob_match
from .plugins import Section, TlsConfig
from .registry import FEEDS, HOSTS, SINKS, TRAFFIC
from .units import parse_duration

if TYPE_CHECKING:
    from .alerting.sink_kinds import SinkConfig
    from .sources.base import HostConfig, TrafficConfig
    from .sources.feed_kinds import CampaignFeedConfig

# The options bases of the plug-in sections, importable from here as before; their modules (and the kinds'
# dataclasses) load when first asked for, so reading a config only pays for the sections it has.
_BASES = {"HostConfig": "surgewatch.sources.base", "TrafficConfig": "surgewatch.sources.base",
          "SinkConfig": "surgewatch.alerting.sink_kinds", "CampaignFeedConfig": "surgewatch.sources.feed_kinds"}


def __getattr__(name: str) -> Any:
    if name in _BASES:
        import importlib

        return getattr(importlib.import_module(_BASES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]


Opts = TypeVar("Opts", bound=plugins.Options)


class ConfigError(Exception):
    """A config problem, already phrased as the one line the user sees."""


@dataclass(frozen=True)
class MonitorConfig:
    """[monitor]: the poll interval, history kept, timeouts, the detector and its floors."""

    interval: float = 2.0
    history: float = 6 * 3600.0
    timeout: float = 5.0
    state_dir: str | None = None
    record: str | None = None  # write every tick to this recording (see surgewatch.recording)
    detector: str = DEFAULT_LIVE_DETECTOR  # the streaming anomaly detector the engine runs
    evict_after: float | None = None  # forget a series not reported for this long (None: 10 of its intervals)
    max_series: int = 20_000  # hard cap on series held; new ones beyond it are dropped with one warning
    floor_points: float = 5.0  # smallest anomaly that alerts: percent points (cpu, mem, swap)
    floor_load: float = 0.5  # ... load average per core
    floor_relative: float = 0.5  # ... relative change of rates, visitors and other metrics
    timezone: str = "UTC"  # the zone [[schedule]] cron expressions are read in (IANA name)


@dataclass(frozen=True, kw_only=True)
class ProbeConfig(plugins.Endpoint):
    """[[probe]]: GET a page (its keys are read like a source kind's options, see surgewatch.plugins)."""

    name: str
    interval: float | None = plugins.duration(minimum=0.05)
    timeout: float | None = plugins.duration(minimum=0.01)
    expect_status: int = plugins.option(lambda r, k: r.integer(k, 200) or 200, default=200)

    def validate(self) -> None:
        """Nothing to check across keys."""


@dataclass(frozen=True)
class CampaignConfig:
    """[[campaign]] (or a feed's event): which traffic feeds it, its UTM value, schedule and hosts."""

    name: str
    traffic: str = plugins.string(required=True)  # the [[traffic]] that feeds it
    utm_campaign: str | None = plugins.string()
    start: float | None = plugins.option(lambda r, k: r.timestamp(k), default=None)
    end: float | None = plugins.option(lambda r, k: r.timestamp(k), default=None)
    hosts: tuple[str, ...] = plugins.str_list()
    expected_lift: float | None = plugins.option(lambda r, k: r.number(k, None, minimum=0.0), default=None)
    # planned visitors over the campaign (a feed's or the config's)
    expected_visitors: float | None = plugins.option(lambda r, k: r.number(k, None, minimum=0.0), default=None)
    feed: str | None = None  # the [[campaign_feed]] it came from; None for a [[campaign]] table (not a key)

    def validate(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise plugins.OptionError("end", "end must be after start")


@dataclass(frozen=True)
class RuleConfig:
    """[[rule]]: a threshold, anomaly, forecast or pre-flight condition on series and how it notifies."""

    name: str
    series: str
    severity: Severity = Severity.WARNING
    above: float | None = None
    below: float | None = None
    clear: float | None = None
    for_: float = 0.0
    anomaly: str | None = None
    threshold: float = 0.9
    forecast_above: float | None = None
    preflight_above: float | None = None  # fires before launch when a scheduled campaign's plan reaches this
    within: float | None = None
    summary: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    repeat: float | None = None  # re-notify a still-firing alert this often (None: never)
    min_interval: float = 0.0  # at least this long between two notifications of one alert
    group_wait: float = 0.0  # collect this rule's transitions this long into one grouped notification
    floor: float | None = None  # anomaly rules: smallest departure that fires, in the metric's floor unit

    @property
    def kind(self) -> str:
        """`threshold`, `anomaly` or `forecast`."""
        if self.anomaly is not None:
            return "anomaly"
        if self.forecast_above is not None:
            return "forecast"
        if self.preflight_above is not None:
            return "preflight"
        return "threshold"


@dataclass(frozen=True)
class ScheduleConfig:
    """Declared load (a nightly backup, a batch import): `cron` fires, `duration` of load is expected."""

    name: str
    cron: str = plugins.string(required=True)
    duration: float = plugins.option(lambda r, k: r.duration(k, None, minimum=1.0), required=True,
                                     hint='how long the load lasts, e.g. "45m"')
    hosts: tuple[str, ...] = plugins.str_list()  # host names or globs; empty: every host

    def validate(self) -> None:
        from .analysis.schedules import check_cron  # lazy: imports croniter

        problem = check_cron(self.cron)
        if problem is not None:
            raise plugins.OptionError("cron", f"cron {self.cron!r} is not a cron expression: {problem}")


@dataclass(frozen=True)
class ExportConfig:
    """[export]: the /metrics listener and the token for POST /annotations."""

    listen: str | None = None
    token: str | None = field(default=None, repr=False)  # bearer token for POST /annotations (token or token_file)
    token_file: str | None = None


@dataclass(frozen=True)
class Config:
    """A whole validated config file."""

    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    hosts: tuple[HostConfig, ...] = ()
    probes: tuple[ProbeConfig, ...] = ()
    traffic: tuple[TrafficConfig, ...] = ()
    campaigns: tuple[CampaignConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()
    export: ExportConfig = field(default_factory=ExportConfig)
    path: str = "<built-in>"
    text: str = field(default="", compare=False, repr=False)  # the TOML it was read from (stored in recordings)
    schedules: tuple[ScheduleConfig, ...] = ()
    campaign_feeds: tuple[CampaignFeedConfig, ...] = ()

    def interval_of(self, own: float | None) -> float:
        """A source's poll interval: its own override, else the monitor default."""
        return own if own is not None else self.monitor.interval

    def insecure_tls(self) -> list[str]:
        """Every source ("host:web-3") and sink ("sink webhook 2") whose certificate is not verified."""
        out = [f"{kind}:{item.name}" for kind, items in (("host", self.hosts), ("probe", self.probes),
                                                          ("traffic", self.traffic))
               for item in items if not _verifies(item)]
        out += [f"sink {s.kind} {i + 1}" for i, s in enumerate(self.sinks) if not _verifies(s)]
        return out

    def timeout_of(self, own: float | None) -> float:
        """A source's timeout: its own, else the monitor default capped by the interval."""
        return own if own is not None else self.monitor.timeout


# ---------------------------------------------------------------------------------------------
# Reading


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError with a one-line message."""
    p = Path(path)
    label = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot read: {exc}") from None
    return parse_config(text, label, environ)


def parse_config(text: str, label: str = "config.toml", environ: Mapping[str, str] | None = None, *,
                 recorded: bool = False) -> Config:
    """Validate TOML text into a Config; `label` names the file in error messages.

    `recorded`: the text is a config a recording stored. Older versions accepted, and ignored, keys that
    another kind of a [[host]], [[traffic]] or [[sink]] takes; they are dropped instead of refused, so an
    older recording still replays with its own config."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: invalid TOML: {exc}") from None
    env = os.environ if environ is None else environ
    return replace(_Parser(label, text, env, recorded).config(doc), text=text)


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Parser:
    """Walks the TOML document, keeping enough context to name the offending key."""

    def __init__(self, label: str, text: str, env: Mapping[str, str], recorded: bool = False) -> None:
        self.label = label
        self.lines = text.splitlines()
        self.env = env
        self.recorded = recorded

    # -- error helpers ------------------------------------------------------------------------

    def _line_of(self, section: str, index: int | None, key: str | None) -> int | None:
        """Best-effort line number of `key` inside the index-th `[[section]]` (or `[section]`)."""
        header = re.compile(r"^\s*\[\[\s*" + re.escape(section) + r"\s*\]\]" if index is not None
                            else r"^\s*\[\s*" + re.escape(section) + r"\s*\]")
        starts = [i for i, line in enumerate(self.lines) if header.match(line)]
        if index is not None:
            if index >= len(starts):
                return None
            start = starts[index]
        elif starts:
            start = starts[0]
        else:
            return None
        if key is None:
            return start + 1
        key_re = re.compile(r"^\s*\"?" + re.escape(key) + r"\"?\s*=")
        for i in range(start + 1, len(self.lines)):
            line = self.lines[i]
            if re.match(r"^\s*\[", line) and not re.match(r"^\s*\[\s*" + re.escape(section) + r"\.", line):
                break
            if key_re.match(line):
                return i + 1
        return start + 1

    def error(self, where: str, msg: str, section: str, index: int | None, key: str | None) -> ConfigError:
        line = self._line_of(section, index, key)
        loc = f"{self.label}:{line}" if line else self.label
        return ConfigError(f"{loc}: {where}{msg}")

    # -- document -----------------------------------------------------------------------------

    def config(self, doc: dict[str, Any]) -> Config:
        sections = {"monitor", "host", "probe", "traffic", "campaign", "rule", "sink", "export", "schedule",
                    "campaign_feed"}
        for key in doc:
            if key not in sections:
                raise ConfigError(
                    f"{self.label}: unknown section [{key}] (expected one of: {', '.join(sorted(sections))})")
        monitor = self._monitor(doc.get("monitor", {}))
        hosts = tuple(self._kinded(HOSTS, t, i) for i, t in enumerate(self._array(doc, "host")))
        probes = tuple(self._named(ProbeConfig, "probe", t, i) for i, t in enumerate(self._array(doc, "probe")))
        traffic = tuple(self._kinded(TRAFFIC, t, i) for i, t in enumerate(self._array(doc, "traffic")))
        campaigns = tuple(self._named(CampaignConfig, "campaign", t, i)
                          for i, t in enumerate(self._array(doc, "campaign")))
        rules = tuple(self._rule(t, i) for i, t in enumerate(self._array(doc, "rule")))
        sinks = tuple(self._kinded(SINKS, t, i) for i, t in enumerate(self._array(doc, "sink")))
        export = self._export(doc.get("export", {}))
        schedules = tuple(self._named(ScheduleConfig, "schedule", t, i)
                          for i, t in enumerate(self._array(doc, "schedule")))
        feeds = tuple(self._kinded(FEEDS, t, i) for i, t in enumerate(self._array(doc, "campaign_feed")))
        cfg = Config(monitor, hosts, probes, traffic, campaigns, rules, sinks, export, self.label,
                     schedules=schedules, campaign_feeds=feeds)
        self._cross_check(cfg)
        return cfg

    def _array(self, doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
        value = doc.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{self.label}: [{name}] must be written as [[{name}]] tables")
        return value

    def _cross_check(self, cfg: Config) -> None:
        for kind, items in (("host", cfg.hosts), ("probe", cfg.probes), ("traffic", cfg.traffic),
                            ("campaign", cfg.campaigns), ("rule", cfg.rules), ("schedule", cfg.schedules),
                            ("campaign_feed", cfg.campaign_feeds)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                name: str = getattr(item, "name", "")
                if name in seen:
                    raise self.error(f'{kind} "{name}": ', "name is used twice", kind, i, "name")
                seen.add(name)
        traffic_names = {t.name for t in cfg.traffic}
        host_names = {h.name for h in cfg.hosts} | {h.group for h in cfg.hosts if h.group}  # a group: its hosts
        for i, c in enumerate(cfg.campaigns):
            if c.traffic not in traffic_names:
                raise self.error(f'campaign "{c.name}": ', f"traffic {c.traffic!r} is not a [[traffic]] name",
                                 "campaign", i, "traffic")
            for h in c.hosts:
                if h not in host_names and not any(x.source == "promql" for x in cfg.hosts):
                    raise self.error(f'campaign "{c.name}": ', f"hosts names {h!r}, which is not a [[host]] name",
                                     "campaign", i, "hosts")
        for i, f in enumerate(cfg.campaign_feeds):
            if f.traffic is not None and f.traffic not in traffic_names:
                raise self.error(f'campaign_feed "{f.name}": ', f"traffic {f.traffic!r} is not a [[traffic]] name",
                                 "campaign_feed", i, "traffic")
            if f.traffic is None and len(traffic_names) != 1:
                msg = ("needs a [[traffic]] for its campaigns' visitors" if not traffic_names else
                       f"traffic is required: which of {sorted(traffic_names)} do its campaigns' visitors come from?")
                raise self.error(f'campaign_feed "{f.name}": ', msg, "campaign_feed", i, "traffic")
        fleet = any(x.source == "promql" for x in cfg.hosts)
        for i, sc in enumerate(cfg.schedules):
            if sc.hosts and not fleet and not any(glob_match(g, h) for g in sc.hosts for h in host_names):
                raise self.error(f'schedule "{sc.name}": ', f"hosts {list(sc.hosts)} match no [[host]] name",
                                 "schedule", i, "hosts")

    # -- sections -----------------------------------------------------------------------------

    def _monitor(self, t: Any) -> MonitorConfig:
        r = _Table(self, t, "monitor", None, "[monitor] ")
        cfg = MonitorConfig(
            interval=r.duration("interval", 2.0, minimum=0.05) or 2.0,
            history=r.duration("history", 6 * 3600.0, minimum=60) or 6 * 3600.0,
            timeout=r.duration("timeout", 5.0, minimum=0.01) or 5.0,
            state_dir=r.string("state_dir", None),
            record=r.string("record", None),
            detector=r.choice("detector", set(LIVE_DETECTORS)) or DEFAULT_LIVE_DETECTOR,
            evict_after=r.duration("evict_after", None, minimum=1.0),
            max_series=r.count("max_series", 20_000),
            floor_points=_nonneg(r.number("floor_points", 5.0, minimum=0.0), 5.0),
            floor_load=_nonneg(r.number("floor_load", 0.5, minimum=0.0), 0.5),
            floor_relative=_nonneg(r.number("floor_relative", 0.5, minimum=0.0), 0.5),
            timezone=r.timezone("timezone"),
        )
        r.done()
        return cfg

    def _kinded(self, section: Section[Any, Any], t: dict[str, Any], i: int) -> Any:
        """One [[host]], [[traffic]] or [[sink]] table, read against the options of the kind it names."""
        r = _Table(self, t, section.name, i, None)
        values: dict[str, Any] = {"name": r.name()} if section.named else {}
        name = r.choice(section.selector, section.names(), required=True) or ""
        if not section.named:
            r.where = f'{section.name} "{name}": '
        values[section.selector] = name
        cfg = self._options(r, section.kind(name).options, values, name, section.missing)
        for key in sorted(r.t):  # keys only other kinds take: refused naming them (dropped from a recording's)
            others = section.taken_by(key)
            if others and self.recorded:
                del r.t[key]
            elif others:
                raise r.fail(key, section.elsewhere(key, others))
        r.done()
        return cfg

    def _options(self, r: _Table, options: type[Opts], values: dict[str, Any], kind: str,
                 missing: Callable[[str, str], str] = plugins.is_required) -> Opts:
        """Read the table's keys into an options dataclass (surgewatch.plugins) and check them together."""
        for field_name, spec in plugins.specs(options):
            if spec.required and field_name not in r.t:
                raise r.fail(None, missing(kind, field_name) + (f" ({spec.hint})" if spec.hint else ""))
            values[field_name] = spec.read(r, field_name)
        cfg = options(**values)
        try:
            cfg.validate()
        except plugins.OptionError as exc:
            raise r.fail(exc.key, exc.message) from None
        return cfg

    def _named(self, options: type[Opts], section: str, t: dict[str, Any], i: int) -> Opts:
        """A [[probe]], [[campaign]] or [[schedule]] table: a name and the keys its options dataclass declares."""
        r = _Table(self, t, section, i, None)
        cfg = self._options(r, options, {"name": r.name()}, section)
        r.done()
        return cfg

    def _rule(self, t: dict[str, Any], i: int) -> RuleConfig:
        r = _Table(self, t, "rule", i, None)
        name = r.name()
        series_glob = r.string("series", None, required=True) or ""
        if ":" not in series_glob or "/" not in series_glob:
            raise r.fail("series", f"series must be a glob of KIND:NAME/METRIC, got {series_glob!r}")
        above = r.number("above", None)
        below = r.number("below", None)
        anomaly = r.choice("anomaly", {"any", "unexplained"})
        forecast_above = r.number("forecast_above", None)
        preflight_above = r.number("preflight_above", None)
        kinds = [k for k, v in (("above/below", above if above is not None else below), ("anomaly", anomaly),
                                ("forecast_above", forecast_above), ("preflight_above", preflight_above))
                 if v is not None]
        if not kinds:
            raise r.fail(None, "needs one of above, below, anomaly, forecast_above or preflight_above")
        if len(kinds) > 1:
            raise r.fail(None, f"mixes {' and '.join(kinds)}; write one rule per condition")
        if above is not None and below is not None:
            raise r.fail("below", "has both above and below; write two rules")
        if forecast_above is None and preflight_above is None and "within" in t:
            raise r.fail("within", "within only applies to forecast_above and preflight_above rules")
        if preflight_above is not None and not series_glob.startswith("host:"):
            raise r.fail("series", "preflight_above rules watch host series (host:NAME/METRIC)")
        clear = r.number("clear", None)
        floor = r.number("floor", None, minimum=0.0)
        if floor is not None and anomaly is None:
            raise r.fail("floor", "floor only applies to anomaly rules")
        if clear is not None:
            if above is not None and clear > above:
                raise r.fail("clear", f"clear ({clear:g}) must not be above `above` ({above:g})")
            if below is not None and clear < below:
                raise r.fail("clear", f"clear ({clear:g}) must not be below `below` ({below:g})")
            if above is None and below is None:
                raise r.fail("clear", "clear only applies to above/below rules")
        cfg = RuleConfig(
            name=name,
            series=series_glob,
            severity=r.severity("severity", Severity.WARNING),
            above=above,
            below=below,
            clear=clear,
            for_=r.duration("for", 0.0, minimum=0.0) or 0.0,
            anomaly=anomaly,
            threshold=r.fraction("threshold", 0.9),
            floor=floor,
            forecast_above=forecast_above,
            preflight_above=preflight_above,
            within=r.duration("within", None, minimum=1.0),
            summary=r.string("summary", None),
            labels=r.str_map("labels"),
            repeat=r.duration("repeat", None, minimum=1.0),
            min_interval=r.duration("min_interval", 0.0) or 0.0,
            group_wait=r.duration("group_wait", 0.0) or 0.0,
        )
        r.done()
        return cfg

    def _export(self, t: Any) -> ExportConfig:
        r = _Table(self, t, "export", None, "[export] ")
        listen = r.string("listen", None)
        if listen is not None:
            from .export import parse_listen  # lazy: imports prometheus_client

            try:
                parse_listen(listen)
            except ValueError as exc:
                raise r.fail("listen", f"listen {exc}") from None
        token = r.string("token", None)
        token_file = r.string("token_file", None)
        if token is not None and token_file is not None:
            raise r.fail("token_file", "set token or token_file, not both")
        if token_file is not None:
            token = self._read_token(r, token_file)
        if token is not None and (not token.strip() or any(c.isspace() for c in token.strip())):
            raise r.fail("token_file" if token_file else "token", "the token must be one word, not empty")
        r.done()
        return ExportConfig(listen=listen, token=token.strip() if token else None, token_file=token_file)

    def _read_token(self, r: _Table, token_file: str) -> str:
        p = Path(os.path.expanduser(token_file))
        if not p.is_absolute() and not self.label.startswith("<"):
            p = Path(self.label).parent / p
        try:
            return p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise r.fail("token_file", f"token_file {str(p)!r} cannot be read: "
                                       f"{getattr(exc, 'strerror', None) or exc}") from None


class _Table:
    """One TOML table being validated; pops keys as they are read so leftovers are unknown keys."""

    def __init__(self, parser: _Parser, table: Any, section: str, index: int | None, where: str | None) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{parser.label}: [{section}] must be a table")
        self.p = parser
        self.t = dict(table)
        self.section = section
        self.index = index
        self.where = where if where is not None else f"{section} #{(index or 0) + 1}: "

    def fail(self, key: str | None, msg: str) -> ConfigError:
        return self.p.error(self.where, msg, self.section, self.index, key)

    def name(self) -> str:
        name = self.string("name", None, required=True) or ""
        if not name.strip() or any(c in name for c in ":/*?[]"):
            raise self.fail("name", f"name must be non-empty without : / * ? [ ], got {name!r}")
        self.where = f'{self.section} "{name}": '
        return name

    def _take(self, key: str, required: bool) -> Any:
        if key not in self.t:
            if required:
                raise self.fail(None, f"{key} is required")
            return None
        return self.t.pop(key)

    def _env(self, key: str, value: str) -> str:
        def sub(m: re.Match[str]) -> str:
            var = m[1]
            if var not in self.p.env:
                raise self.fail(key, f"{key} uses ${{{var}}}, but the environment variable {var} is not set")
            return self.p.env[var]

        return _ENV_RE.sub(sub, value)

    def string(self, key: str, default: str | None, required: bool = False) -> str | None:
        v = self._take(key, required)
        if v is None:
            return default
        if not isinstance(v, str):
            raise self.fail(key, f"{key} must be a string, got {_show(v)}")
        return self._env(key, v)

    def choice(self, key: str, allowed: set[str], required: bool = False) -> str | None:
        v = self.string(key, None, required)
        if v is not None and v not in allowed:
            raise self.fail(key, f"{key} must be one of {', '.join(sorted(allowed))}, got {v!r}")
        return v

    def ident(self, key: str) -> str | None:
        """A string, or a whole number written bare (Matomo idSite and GA4 property ids often are)."""
        v = self.t.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            self.t[key] = str(v)
        return self.string(key, None)

    def number(self, key: str, default: float | None, minimum: float | None = None) -> float | None:
        v = self._take(key, False)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(key, f"{key} must be a number, got {_show(v)}")
        if math.isnan(v):
            raise self.fail(key, f"{key} must be a number, got nan")
        if minimum is not None and v < minimum:
            raise self.fail(key, f"{key} must be at least {minimum:g}, got {v:g}")
        return float(v)

    def fraction(self, key: str, default: float) -> float:
        v = self.number(key, default)
        if v is None or not 0.0 < v <= 1.0:
            raise self.fail(key, f"{key} must be an anomaly score in (0, 1], got {v:g}")
        return v

    def integer(self, key: str, default: int | None) -> int | None:
        v = self._take(key, False)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(key, f"{key} must be a whole number, got {_show(v)}")
        return v

    def count(self, key: str, default: int) -> int:
        """A whole number of at least 1."""
        v = self.integer(key, default)
        if v is None or v < 1:
            raise self.fail(key, f"{key} must be at least 1, got {v}")
        return v

    def duration(self, key: str, default: float | None, minimum: float = 0.0) -> float | None:
        v = self._take(key, False)
        if v is None:
            return default
        try:
            seconds = parse_duration(v)
        except ValueError as exc:
            raise self.fail(key, f"{key} {exc}") from None
        if seconds < minimum:
            raise self.fail(key, f"{key} must be at least {minimum:g}s, got {v!r}")
        return seconds

    def timezone(self, key: str) -> str:
        v = self.string(key, None)
        if v is None or v == "UTC":
            return "UTC"  # without the zone database (the small end's daemon never loads it)
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(key, f"{key} must be an IANA time zone such as \"Europe/Paris\" or \"UTC\", "
                                 f"got {v!r}") from None
        return v

    def severity(self, key: str, default: Severity) -> Severity:
        v = self.string(key, None)
        if v is None:
            return default
        try:
            return Severity.parse(v)
        except ValueError as exc:
            raise self.fail(key, f"{key} {exc}") from None

    def timestamp(self, key: str) -> float | None:
        v = self._take(key, False)
        if v is None:
            return None
        if isinstance(v, datetime):
            dt = v if v.tzinfo else v.replace(tzinfo=UTC)
            return dt.timestamp()
        if isinstance(v, date) and not isinstance(v, datetime):
            return datetime.combine(v, time(0), tzinfo=UTC).timestamp()
        if isinstance(v, str):
            try:
                dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                pass
            else:
                return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
        raise self.fail(key, f"{key} must be a date-time like 2026-03-01T09:00:00Z, got {_show(v)}")

    def str_list(self, key: str) -> list[str]:
        v = self._take(key, False)
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(key, f"{key} must be a list of strings, got {_show(v)}")
        return [self._env(key, x) for x in v]

    def str_map(self, key: str) -> dict[str, str]:
        v = self._take(key, False)
        if v is None:
            return {}
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise self.fail(key, f"{key} must be a table of strings, got {_show(v)}")
        return {k: self._env(key, x) for k, x in v.items()}

    def boolean(self, key: str, default: bool) -> bool:
        v = self._take(key, False)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.fail(key, f"{key} must be true or false, got {_show(v)}")
        return v

    def headers(self) -> dict[str, str]:
        """The `headers` table: names must be HTTP tokens, values free of CR, LF and NUL (header injection)."""
        out = self.str_map("headers")
        for name, value in out.items():
            if not _HEADER_NAME_RE.match(name):
                raise self.fail("headers", f"headers has {name!r}, which is not a valid HTTP header name")
            _check_header_value(self, f"headers.{name}", "headers", value)
        return out

    def header_value(self, key: str) -> str | None:
        """A string sent inside a header (a token): refused if it holds CR, LF or NUL."""
        value = self.string(key, None)
        if value is not None:
            _check_header_value(self, key, key, value)
        return value

    def tls(self) -> TlsConfig:
        """ca_file, tls_verify, cert_file and key_file; files must exist when the config is read."""
        files = {}
        for key in ("ca_file", "cert_file", "key_file"):
            path = self.string(key, None)
            if path is not None:
                path = os.path.expanduser(path)
                if not os.path.isfile(path):
                    raise self.fail(key, f"{key} {path!r} is not a readable file")
            files[key] = path
        verify = self.boolean("tls_verify", True)
        if files["key_file"] and not files["cert_file"]:
            raise self.fail("key_file", "key_file needs cert_file (the client certificate it belongs to)")
        return TlsConfig(ca_file=files["ca_file"], verify=verify, cert_file=files["cert_file"],
                         key_file=files["key_file"])

    def done(self) -> None:
        if self.t:
            key = sorted(self.t)[0]
            raise self.fail(key, f"unknown key {key!r}")


_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _check_header_value(table: _Table, what: str, key: str, value: str) -> None:
    """Refuse CR, LF and NUL in a value sent in a header, naming the key (never showing the secret value)."""
    for char, name in (("\r", "a carriage return (CR)"), ("\n", "a line feed (LF)"), ("\0", "a NUL byte")):
        if char in value:
            where = "at its end" if char not in value.rstrip("\r\n\0") else "inside it"
            hint = " (an environment variable with a trailing newline?)" if where == "at its end" else ""
            raise table.fail(key, f"{what} contains {name} {where}, which would break or inject an HTTP "
                                  f"header{hint}")


def _show(v: Any) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list):
        return "a list"
    return str(v)


def _verifies(item: object) -> bool:
    """False when a table's TLS settings (kinds without `tls` have none) accept any certificate."""
    tls = getattr(item, "tls", None)
    return not isinstance(tls, TlsConfig) or tls.verify


def _nonneg(value: float | None, default: float) -> float:
    """A number read with minimum 0, or its default when absent."""
    return default if value is None else value
