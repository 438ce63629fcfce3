"""`surgewatch analyze FILE [--config F] [--json]`: the live analysis, offline over a CSV or a recording.

Prints per campaign and host metric the lag, load model, fit and headroom, and every anomaly episode with its
time, series, peak score and classification (explained by campaign traffic or not). Bad files: one line, exit 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..analysis import DEFAULT_LIVE_DETECTOR, LIVE_DETECTORS

if TYPE_CHECKING:
    import numpy as np

    from ..analysis.analyzer import AnalysisResult, CampaignSpec, PairState
    from ..analysis.groupmodels import GroupState
    from ..analysis.loadmodels import LearnedModel
    from ..config import Config

SQLITE_MAGIC = b"SQLite format 3\x00"
MAX_GRID_FACTOR = 8  # a grid more than this many times the row count means the timestamps are irregular
GAP_TICKS = 2  # hot ticks this close together belong to one anomaly episode


class AnalyzeError(Exception):
    """A problem with the input, as one line naming the file and place."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="CSV (timestamp, then one column per series) or a recording")
    p.add_argument("--config", "-c", metavar="F", help="config naming campaigns, their traffic and hosts")
    p.add_argument("--json", action="store_true", help="one JSON document with `pairs` and `anomalies`")
    p.add_argument("--detector", default=None, choices=LIVE_DETECTORS, metavar="NAME",
                   help=f"anomaly detector: {', '.join(LIVE_DETECTORS)} (default: the config's [monitor] "
                        f"detector, else {DEFAULT_LIVE_DETECTOR})")


def run(args: argparse.Namespace) -> int:
    try:
        report = analyze_file(args.file, args.config, args.detector)
    except AnalyzeError as exc:
        print(f"surgewatch analyze: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.text())
    return 0


# -- reading ------------------------------------------------------------------------------------


def _parse_ts(text: str, where: str) -> float:
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise AnalyzeError(f"{where}: timestamp {t!r} is neither RFC 3339 nor UNIX seconds") from None
    if dt.tzinfo is None:
        raise AnalyzeError(f"{where}: timestamp {t!r} has no time zone (add Z or an offset)")
    return dt.timestamp()


def read_csv(path: str) -> tuple[list[float], list[str], list[list[float]]]:
    """Timestamps, series names and one value list per series (NaN for empty cells) from a CSV file."""
    from ..model import SeriesKey

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None or len(header) < 2:
                raise AnalyzeError(f"{path}: needs a header: a timestamp column, then one column per series")
            names = [h.strip() for h in header[1:]]
            for i, n in enumerate(names, start=2):
                try:
                    SeriesKey.parse(n)
                except ValueError:
                    raise AnalyzeError(f"{path}: column {i} {n!r} is not a series name KIND:NAME/METRIC") from None
            if len(set(names)) != len(names):
                raise AnalyzeError(f"{path}: a series appears twice in the header")
            ts: list[float] = []
            cols: list[list[float]] = [[] for _ in names]
            for line, row in enumerate(rows, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise AnalyzeError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
                ts.append(_parse_ts(row[0], f"{path}:{line}"))
                for j, cell in enumerate(row[1:]):
                    c = cell.strip()
                    try:
                        cols[j].append(float(c) if c else math.nan)
                    except ValueError:
                        raise AnalyzeError(f"{path}:{line}: {names[j]}: {c!r} is not a number") from None
    except OSError as exc:
        raise AnalyzeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise AnalyzeError(f"{path}: not a readable CSV file: {exc}") from None
    return ts, names, cols


def read_input(path: str) -> tuple[Sequence[float], list[str], Sequence[Sequence[float]]]:
    """Read a CSV, or a recording (SQLite) through surgewatch.recording when it is available."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise AnalyzeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if magic != SQLITE_MAGIC:
        return read_csv(path)
    try:
        from ..recording.reader import read_series  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise AnalyzeError(f"{path}: a recording, but this build cannot read recordings") from None
    try:
        ts, series = read_series(path)
    except Exception as exc:
        raise AnalyzeError(f"{path}: cannot read the recording: {exc}") from None
    names = sorted(series)
    return list(ts), names, [list(series[n]) for n in names]


def to_grid(path: str, ts: Sequence[float], cols: Sequence[Sequence[float]], notes: list[str] | None = None,
            ) -> tuple[np.ndarray, np.ndarray, float]:
    """Place samples on a regular grid of the median spacing (missing ticks are NaN): (ts, values, tick).

    Rows are sorted by time (a clock that steps back: the rows are kept, a later row wins a shared tick),
    which is noted once in `notes`; one row, or rows that all share one timestamp, make a grid of one tick."""
    import numpy as np

    t = np.asarray(ts, dtype=np.float64)
    if np.any(~np.isfinite(t)):
        raise AnalyzeError(f"{path}: a timestamp is not finite")
    back = int(np.count_nonzero(t[1:] < np.maximum.accumulate(t)[:-1])) if t.shape[0] > 1 else 0
    if back and notes is not None:
        notes.append(f"{path}: the clock steps back: {back} row{'s' if back != 1 else ''} earlier than a row "
                     f"before {'them' if back != 1 else 'it'}; rows sorted by timestamp (kept, not dropped)")
    order = np.argsort(t, kind="stable")
    t = t[order]
    values = np.asarray(cols, dtype=np.float64).reshape(len(cols), -1)[:, order]
    values[~np.isfinite(values)] = np.nan
    diffs = np.diff(t)
    positive = diffs[diffs > 0]
    if positive.shape[0] == 0:  # one row, or one timestamp: a single tick (its last row wins)
        return t[:1], values[:, -1:], 1.0
    tick = float(np.median(positive))
    pos = np.rint((t - t[0]) / tick).astype(np.int64)
    n = int(pos[-1]) + 1
    if n > MAX_GRID_FACTOR * t.shape[0] + 1000:
        raise AnalyzeError(f"{path}: timestamps too irregular for a {tick:g} s grid ({n} ticks for "
                           f"{t.shape[0]} rows)")
    grid = np.full((values.shape[0], n), np.nan)
    grid[:, pos] = values  # a later row in the same tick wins
    return t[0] + tick * np.arange(n), grid, tick


# -- specs --------------------------------------------------------------------------------------


def campaign_specs(names: Sequence[str], config: Config | None) -> list[CampaignSpec]:
    """From a config when given; otherwise every campaign column paired with every host in the file."""
    from ..analysis.analyzer import CampaignSpec
    from ..hostgroups import expand_groups
    from ..model import series, split_series

    present = set(names)
    hosts = sorted({split_series(n)[1] for n in names if n.startswith("host:")})
    if config is not None:
        specs = []
        for c in config.campaigns:
            own = series("campaign", c.name, "visitors")
            site = series("traffic", c.traffic, "visitors")
            specs.append(CampaignSpec(c.name, own, site if site in present else own,
                                      expand_groups(c.hosts, config.hosts),
                                      c.expected_lift, c.start, c.end))
        return specs
    drivers = [n for n in names if n.startswith("campaign:")] or [n for n in names if n.startswith("traffic:")]
    return [CampaignSpec(split_series(n)[1], n, n, tuple(hosts)) for n in drivers]


# -- the report ---------------------------------------------------------------------------------


@dataclass
class Anomaly:
    """One episode of consecutive anomalous ticks on a series with the same classification."""

    ts: float
    end: float
    series: str
    score: float
    classification: str | None
    explanation: str
    ticks: int = 1
    cause: str | None = None  # campaign, schedule, recurring or unexplained (host series); None otherwise
    group: str | None = None  # the host group it departs from (a host above its group's level), else None


@dataclass
class PairReport:
    campaign: str
    host: str
    metric: str
    lag_seconds: float
    slope: float
    intercept: float
    r2: float
    headroom: float
    seconds_to_limit: float
    usable: bool


@dataclass
class GroupReport:
    """A campaign's load model on a host group (the group's mean load), the best fit seen."""

    campaign: str
    group: str
    metric: str
    hosts: int
    lag_seconds: float
    slope: float
    intercept: float
    r2: float
    headroom: float
    seconds_to_limit: float
    usable: bool
    departing: list[str]  # hosts seen above their group at any time


@dataclass
class Report:
    path: str
    tick: float
    points: int
    series: int
    start: float
    end: float
    pairs: list[PairReport]
    anomalies: list[Anomaly]
    detector: str = DEFAULT_LIVE_DETECTOR
    warnings: list[str] | None = None
    groups: list[GroupReport] | None = None
    models: list[LearnedModel] | None = None  # what a daemon would keep in its models file (analysis/loadmodels.py)

    def to_json(self) -> dict[str, Any]:
        from ..model import finite_or_none as num
        from ..model import rfc3339

        def when(t: float) -> str | None:
            return rfc3339(t) if math.isfinite(t) else None

        return {
            "file": self.path, "detector": self.detector, "warnings": list(self.warnings or ()),
            "tick_seconds": num(self.tick), "points": self.points, "series": self.series,
            "start": when(self.start), "end": when(self.end),
            "pairs": [{"campaign": p.campaign, "host": p.host, "metric": p.metric,
                       "lag_seconds": num(p.lag_seconds), "slope": num(p.slope), "intercept": num(p.intercept),
                       "r2": num(p.r2), "headroom": num(p.headroom),
                       "seconds_to_limit": num(p.seconds_to_limit),  # null: never (see saturates) or unknown
                       "saturates": None if math.isnan(p.seconds_to_limit)
                       else not math.isinf(p.seconds_to_limit),
                       "usable": p.usable} for p in self.pairs],
            "anomalies": [{"ts": rfc3339(a.ts), "end": rfc3339(a.end), "series": a.series,
                           "score": round(a.score, 4), "classification": a.classification, "cause": a.cause,
                           "explanation": a.explanation, "ticks": a.ticks, "group": a.group}
                          for a in self.anomalies],
            "groups": [{"campaign": g.campaign, "group": g.group, "metric": g.metric, "hosts": g.hosts,
                        "lag_seconds": num(g.lag_seconds), "slope": num(g.slope), "intercept": num(g.intercept),
                        "r2": num(g.r2), "headroom": num(g.headroom), "seconds_to_limit": num(g.seconds_to_limit),
                        "saturates": None if math.isnan(g.seconds_to_limit)
                        else not math.isinf(g.seconds_to_limit),
                        "usable": g.usable, "departing": g.departing} for g in self.groups or ()],
            "models": [m.to_json() for m in self.models or ()],
        }

    def text(self) -> str:
        from ..describe import format_value
        from ..model import rfc3339
        from ..units import format_duration

        if not math.isfinite(self.start):
            return f"{self.path}: no data rows (detector {self.detector})\n"
        out = [f"{self.path}: {self.points:,} points in {self.series} series, {rfc3339(self.start)} to "
               f"{rfc3339(self.end)}, tick {format_duration(self.tick)}, detector {self.detector}", ""]
        if self.pairs:
            out.append("Load models (campaign → host metric; the best fit seen, headroom at that time):")
            rows = [("campaign", "host", "metric", "lag", "model", "r2", "headroom", "to limit")]
            for p in self.pairs:
                model = (f"{format_value(p.metric, p.intercept)} + {p.slope:.4g}·visitors"
                         if not math.isnan(p.slope) else "no model")
                head = f"{p.headroom:.1f}x" if not math.isnan(p.headroom) else "unknown"
                secs = ("never" if math.isinf(p.seconds_to_limit) else format_duration(p.seconds_to_limit)) \
                    if not math.isnan(p.seconds_to_limit) else "unknown"
                r2 = f"{p.r2:.2f}" + ("" if p.usable else " (poor)") if not math.isnan(p.r2) else "–"
                rows.append((p.campaign, p.host, p.metric, format_duration(p.lag_seconds), model, r2, head, secs))
            out.extend(_table(rows))
        else:
            out.append("No campaign/host pairs (the file needs campaign:… and host:… columns).")
        if self.groups:
            out.append("")
            out.append("Host groups (campaign → group's mean load; hosts seen above their group):")
            grows: list[tuple[str, ...]] = [("campaign", "group", "metric", "hosts", "lag", "model", "r2",
                                             "headroom", "to limit", "above group")]
            for g in self.groups:
                model = (f"{format_value(g.metric, g.intercept)} + {g.slope:.4g}·visitors"
                         if not math.isnan(g.slope) else "no model")
                head = f"{g.headroom:.1f}x" if not math.isnan(g.headroom) else "unknown"
                secs = ("never" if math.isinf(g.seconds_to_limit) else format_duration(g.seconds_to_limit)) \
                    if not math.isnan(g.seconds_to_limit) else "unknown"
                r2 = f"{g.r2:.2f}" + ("" if g.usable else " (poor)") if not math.isnan(g.r2) else "–"
                lag = format_duration(g.lag_seconds) if not math.isnan(g.lag_seconds) else "–"
                grows.append((g.campaign, g.group, g.metric, str(g.hosts), lag, model, r2, head, secs,
                              ", ".join(g.departing) or "none"))
            out.extend(_table(grows))
        out.append("")
        out.append(f"Anomalies: {len(self.anomalies)}")
        for a in self.anomalies:
            dur = f" for {format_duration(a.end - a.ts + self.tick)}" if a.ticks > 1 else ""
            out.append(f"  {rfc3339(a.ts)}{dur}  {a.series}  score {a.score:.2f}  "
                       f"{a.classification or '-'}{_cause_note(a)}: {a.explanation}")
        return "\n".join(out) + "\n"


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _cause_note(a: Anomaly) -> str:
    """` (schedule)` where the cause says more than explained/unexplained."""
    return f" ({a.cause})" if a.cause not in (None, a.classification) else ""


def _classification(res: AnalysisResult, row: int) -> str | None:
    from ..model import Cause

    c = res.cause.get(row)
    if c is None:
        return None
    return "explained" if c[0] == Cause.CAMPAIGN else str(c[0])  # unexplained, schedule or recurring


def _cause(res: AnalysisResult, row: int) -> str | None:
    c = res.cause.get(row)
    return None if c is None else c[0].value


def _better(p: PairState, than: PairReport) -> bool:
    """Whether this tick's model of a pair beats the one kept: usable first, then the better fit."""
    m = p.model
    if m is None:
        return False
    if m.usable != than.usable:
        return m.usable
    return not m.r2 < than.r2 if not math.isnan(than.r2) else True


def _pair_report(p: PairState) -> PairReport:
    m = p.model
    nan = float("nan")
    return PairReport(p.campaign, p.host, p.metric, p.lag_seconds, m.slope if m else nan, m.intercept if m else nan,
                      m.r2 if m else nan, p.capacity.headroom, p.capacity.seconds_to_limit,
                      bool(m is not None and m.usable))


def _group_report(g: GroupState) -> GroupReport:
    m = g.model
    nan = float("nan")
    return GroupReport(g.campaign or "", g.group, g.metric, g.hosts, g.lag_seconds, m.slope if m else nan,
                       m.intercept if m else nan, m.r2 if m else nan, g.capacity.headroom,
                       g.capacity.seconds_to_limit, bool(m is not None and m.usable), list(g.departing))


def _keep_group(groups: dict[tuple[str, str, str], GroupReport], g: GroupState) -> None:
    """Keep the best model seen of a campaign × group (usable first, then the better fit) and every host seen
    above the group."""
    if g.campaign is None:
        return
    key = (g.campaign, g.group, g.metric)
    new = _group_report(g)
    old = groups.get(key)
    if old is not None:
        better = new.usable and (not old.usable or not new.r2 < old.r2)
        departing = old.departing + [h for h in new.departing if h not in old.departing]
        new = new if better else old
        new.departing = departing
    groups[key] = new


def analyze_file(path: str, config_path: str | None = None, detector: str | None = None) -> Report:
    """Run the engine's analysis over a file and collect models and anomaly episodes."""
    import numpy as np

    from ..analysis.analyzer import Analyzer, default_detector, replay
    from ..analysis.significance import floors_of
    from ..config import ConfigError, load_config
    from ..sources.sanity import absurd

    config = None
    if config_path is not None:
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            raise AnalyzeError(str(exc)) from None
    ts, names, cols = read_input(path)
    name = detector or (config.monitor.detector if config else DEFAULT_LIVE_DETECTOR)
    if len(ts) == 0:
        nan = float("nan")
        return Report(path, nan, 0, len(names), nan, nan, [], [], name)
    notes: list[str] = []
    grid_ts, values, tick = to_grid(path, ts, cols, notes)
    for note in notes:
        print(f"surgewatch analyze: warning: {note}", file=sys.stderr)
    values[absurd(tuple(names), values)] = np.nan  # judged as a live poll would be (see sources/sanity.py)
    try:
        det = default_detector(tick, name)
    except ValueError as exc:
        raise AnalyzeError(str(exc)) from None
    analyzer = Analyzer(det, campaign_specs(names, config), tick, metrics=None,
                        floors=floors_of(config.monitor) if config else None)
    if config is not None and config.schedules:
        from ..analysis.declared import DeclaredCauses

        analyzer.declared = DeclaredCauses(*DeclaredCauses.schedules_of(config))
    from ..analysis.groupmodels import GroupModels
    from ..analysis.loadmodels import ModelStore, learned_from

    kept = ModelStore(path + ".models.json")  # never written: the models a daemon would keep, for the report
    if config is not None:
        from ..hostgroups import HostGroups
        from ..model import split_series

        groups_of = HostGroups(config.hosts)
        grouped = {h: group for h in {split_series(n)[1] for n in names if n.startswith("host:")}
                   if (group := groups_of.group_of(h))}
        if grouped:
            analyzer.groups = GroupModels.for_analyzer(analyzer)
            analyzer.groups.set_groups(grouped)
    group_best: dict[tuple[str, str, str], GroupReport] = {}
    best: dict[tuple[str, str, str], PairReport] = {}
    open_eps: dict[int, Anomaly] = {}
    last_hot: dict[int, int] = {}
    episodes: list[Anomaly] = []
    res = None
    for t, res in enumerate(replay(analyzer, grid_ts, names, values, details_every=10)):
        for r, text in res.explanation.items():
            if r < res.size.shape[0] and abs(res.size[r]) < res.floor[r]:
                continue  # below its practical-significance floor: no rule fires on it live either
            cls, cause = _classification(res, r), _cause(res, r)
            score = float(res.score[r])
            ep = open_eps.get(r)
            if ep is not None and (ep.classification, ep.cause) == (cls, cause) and t - last_hot[r] <= GAP_TICKS:
                ep.end, ep.ticks = float(grid_ts[t]), ep.ticks + 1
                dep = analyzer.groups.departures.get(r) if analyzer.groups is not None else None
                if dep is not None and dep.text == text and ep.group is None:  # the finding: above its group
                    ep.group, ep.score, ep.explanation = dep.group, max(ep.score, score), text
                elif score > ep.score and (ep.group is None or dep is not None):
                    ep.score, ep.explanation = score, text
            else:
                dep = analyzer.groups.departures.get(r) if analyzer.groups is not None else None
                ep = Anomaly(float(grid_ts[t]), float(grid_ts[t]), names[r], score, cls, text, cause=cause,
                             group=dep.group if dep is not None and dep.text == text else None)
                open_eps[r] = ep
                episodes.append(ep)
            last_hot[r] = t
        if t % 10 == 0 or t == values.shape[1] - 1:
            for st in res.campaigns:
                for p in st.pairs:
                    key = (p.campaign, p.host, p.metric)
                    if key not in best or _better(p, best[key]):
                        best[key] = _pair_report(p)
            if analyzer.groups is not None:
                for state in analyzer.groups.states:
                    _keep_group(group_best, state)
                kept.put_all(analyzer.groups.learned())
            kept.put_all(learned_from(res.campaigns, analyzer.campaigns, tick, res.ts))
    pairs = sorted(best.values(), key=lambda p: (p.campaign, p.host, p.metric))
    points = int((~_isnan(values)).sum())
    groups = sorted(group_best.values(), key=lambda g: (g.campaign, g.group, g.metric))
    return Report(path, tick, points, len(names), float(grid_ts[0]), float(grid_ts[-1]), pairs, episodes, name,
                  notes, groups, kept.models())


def _isnan(a: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.isnan(a)
