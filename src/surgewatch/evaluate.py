"""`surgewatch eval`: run a detector causally over labelled CSVs, write NAB-format results, score them.

Users point it at their own labelled incidents (or at NAB) to choose a detector and a sensitivity: it
prints, per NAB profile, the threshold NAB's rules pick and the score per category and overall.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .analysis.nab import Profile, ScoredSet

from .analysis import DEFAULT_LIVE_DETECTOR, DETECTOR_NAMES  # no numpy import for --help

DEFAULT_DETECTOR = DEFAULT_LIVE_DETECTOR  # eval scores what runs live
PROFILE_NAMES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
MAX_BATCH_CELLS = 20_000_000  # rows x files run at once; bounds memory on large data sets


class EvalError(Exception):
    """Bad input (path, CSV, labels): one line naming what and where."""


@dataclass
class Series:
    """One data file: its key `<category>/<file>.csv`, raw cells and parsed columns."""

    key: str
    path: Path
    ts_text: list[str]
    value_text: list[str]
    ts: np.ndarray  # datetime64[us]
    values: np.ndarray  # float64, NaN where the cell is empty or not a number

    @property
    def category(self) -> str:
        return self.key.rsplit("/", 1)[0] if "/" in self.key else "."


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare `eval`'s arguments."""
    p.add_argument("data_dir", metavar="DATA_DIR",
                   help="directory of <category>/<file>.csv (timestamp,value)")
    p.add_argument("labels", metavar="LABELS_JSON",
                   help='{"<category>/<file>.csv": [[start, end], ...]} anomaly windows (NAB format)')
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=DETECTOR_NAMES, metavar="NAME",
                   help=f"detector to run: {', '.join(DETECTOR_NAMES)} (default {DEFAULT_DETECTOR})")
    p.add_argument("--results", default="results", metavar="DIR",
                   help="write DIR/NAME/<category>/NAME_<file>.csv (default ./results)")
    p.add_argument("--profile", choices=PROFILE_NAMES, metavar="P",
                   help=f"score one profile only: {', '.join(PROFILE_NAMES)} (default all three)")


def _parse_ts(texts: list[str], where: str) -> np.ndarray:
    import numpy as np

    try:
        return np.array(texts, dtype="datetime64[us]")
    except ValueError:
        for i, t in enumerate(texts):
            try:
                np.datetime64(t, "us")
            except ValueError:
                raise EvalError(f"{where} row {i + 2}: bad timestamp {t!r}") from None
        raise EvalError(f"{where}: bad timestamps") from None


def read_series(path: Path, key: str) -> Series:
    """Read a `timestamp,value` CSV (other columns ignored); raise EvalError on bad content."""
    import numpy as np

    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise EvalError(f"{path}: cannot read: {e}") from None
    if not rows:
        raise EvalError(f"{path}: empty file")
    header = [h.strip() for h in rows[0]]
    if "timestamp" not in header or "value" not in header:
        raise EvalError(f"{path}: header must have 'timestamp' and 'value' columns, got {','.join(header)!r}")
    it, iv = header.index("timestamp"), header.index("value")
    body = rows[1:]  # no rows at all is a valid, if empty, series
    ts_text, value_text = [], []
    for n, r in enumerate(body, start=2):
        if len(r) <= max(it, iv):
            raise EvalError(f"{path} row {n}: expected {len(header)} columns, got {len(r)}")
        ts_text.append(r[it].strip())
        value_text.append(r[iv].strip())
    values = np.empty(len(value_text))
    for n, v in enumerate(value_text):
        try:
            values[n] = float(v) if v else math.nan
        except ValueError:
            raise EvalError(f"{path} row {n + 2}: value {v!r} is not a number") from None
    values[~np.isfinite(values)] = np.nan
    ts = _parse_ts(ts_text, str(path)) if ts_text else np.zeros(0, dtype="datetime64[us]")
    return Series(key, path, ts_text, value_text, ts, values)


def out_of_order(s: Series) -> tuple[int, int]:
    """(rows stamped earlier than a row before them, rows repeating the previous row's time)."""
    import numpy as np

    if len(s.ts) < 2:
        return 0, 0
    back = int(np.count_nonzero(s.ts[1:] < np.maximum.accumulate(s.ts)[:-1]))
    return back, int(np.count_nonzero(s.ts[1:] == s.ts[:-1]))


def order_warning(s: Series) -> str | None:
    """One line for a file whose clock repeats or steps back (scored in file order, as NAB does), else None."""
    back, same = out_of_order(s)
    if not back and not same:
        return None
    parts = [f"{back} row{'s' if back != 1 else ''} earlier than a row before"] if back else []
    if same:
        parts.append(f"{same} row{'s' if same != 1 else ''} repeating the previous timestamp")
    return f"{s.path}: {' and '.join(parts)}; scored in file order"


def read_labels(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Read NAB's combined windows JSON; raise EvalError naming the file and key on bad content."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise EvalError(f"{path}: cannot read labels: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EvalError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise EvalError(f"{path}: labels must be a JSON object of file -> windows")
    out: dict[str, list[tuple[str, str]]] = {}
    for key, windows in doc.items():
        if not isinstance(windows, list) or not all(
            isinstance(w, list) and len(w) == 2 and all(isinstance(t, str) for t in w) for w in windows
        ):
            raise EvalError(f"{path}: {key!r}: windows must be a list of [start, end] timestamp strings")
        out[key.replace("\\", "/")] = [(w[0], w[1]) for w in windows]
    return out


def window_rows(s: Series, windows: list[tuple[str, str]], labels_path: Path) -> np.ndarray:
    """Map a file's [start, end] timestamps to inclusive row indices; every timestamp must be a row's."""
    import numpy as np

    out = np.zeros((len(windows), 2), dtype=np.int64)
    for k, (a, b) in enumerate(windows):
        ends = []
        for t in (a, b):
            try:
                t64 = np.datetime64(t, "us")
            except ValueError:
                raise EvalError(f"{labels_path}: {s.key!r}: bad timestamp {t!r}") from None
            if not (s.ts == t64).any():
                raise EvalError(f"{labels_path}: {s.key!r}: window timestamp {t} is not a row of {s.path}")
            ends.append(t64)
        # a window covers the rows, in file order, from the first stamped within [start, end] to the last
        # (duplicates included; where the clock steps back, the rows in between too)
        inside = np.flatnonzero((s.ts >= ends[0]) & (s.ts <= ends[1]))
        if inside.size == 0:
            raise EvalError(f"{labels_path}: {s.key!r}: window [{a}, {b}] ends before it starts")
        out[k] = inside[0], inside[-1]
    if len(out) and ((out[:, 0] > out[:, 1]).any() or (out[1:, 0] <= out[:-1, 1]).any()):
        raise EvalError(f"{labels_path}: {s.key!r}: windows must be [start, end], sorted and not overlapping")
    return out


def load_dataset(data_dir: Path, labels_path: Path) -> tuple[list[Series], dict[str, list[tuple[str, str]]]]:
    """Read every CSV under DATA_DIR that the labels name; both sides must match exactly."""
    if not data_dir.is_dir():
        raise EvalError(f"{data_dir}: not a directory")
    if not labels_path.is_file():
        raise EvalError(f"{labels_path}: no such labels file")
    labels = read_labels(labels_path)
    found = {p.relative_to(data_dir).as_posix(): p for p in sorted(data_dir.rglob("*.csv"))}
    if not found:
        raise EvalError(f"{data_dir}: no CSV files")
    unlabelled = sorted(set(found) - set(labels))
    if unlabelled:
        raise EvalError(f"{labels_path}: no entry for {unlabelled[0]} (and {len(unlabelled) - 1} more)"
                        if len(unlabelled) > 1 else f"{labels_path}: no entry for {unlabelled[0]}")
    missing = sorted(set(labels) - set(found))
    if missing:
        raise EvalError(f"{labels_path}: names {missing[0]}, which is not a CSV under {data_dir}")
    return [read_series(p, k) for k, p in found.items()], labels


def season_samples(ts: np.ndarray) -> int:
    """Samples per day from the median sampling interval (0 when a day is under 4 samples or unclear)."""
    import numpy as np

    if len(ts) < 3:
        return 0
    step = float(np.median(np.diff(ts).astype("timedelta64[us]").astype(np.int64))) / 1e6
    if step <= 0 or step > 86400 / 4:
        return 0
    return round(86400 / step)


def build_detector(name: str, seasons: np.ndarray) -> Any:
    """A streaming detector for len(seasons) series, each with its samples-per-day (0 = none)."""
    if name == "null":
        from .analysis.streaming import ConstantDetector

        return ConstantDetector(0.5)
    if name == "robust-z":
        from .analysis.registry import make_detector

        return make_detector("robust-z")
    from .analysis.streaming import make_streaming_detector

    return make_streaming_detector(name, season=seasons)


def run_detector(name: str, series: list[Series]) -> list[np.ndarray]:
    """Run one detector causally over every file, vectorised across files; scores in [0, 1] per row."""
    import numpy as np

    out: list[np.ndarray] = [np.zeros(0)] * len(series)
    order = sorted(range(len(series)), key=lambda i: -len(series[i].values))
    start = 0
    while start < len(order):
        rows = len(series[order[start]].values)
        width = max(1, MAX_BATCH_CELLS // max(rows, 1))
        batch = order[start : start + width]
        start += width
        mat = np.full((rows, len(batch)), np.nan)
        for j, i in enumerate(batch):
            mat[: len(series[i].values), j] = series[i].values
        det = build_detector(name, np.array([season_samples(series[i].ts) for i in batch], dtype=np.int64))
        scores = np.empty_like(mat)
        for t in range(rows):
            scores[t] = det.update(mat[t]).score
        for j, i in enumerate(batch):
            col = scores[: len(series[i].values), j]
            out[i] = np.clip(np.nan_to_num(col, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return out


def result_path(results: Path, detector: str, key: str) -> Path:
    """NAB's layout: DIR/NAME/<category>/NAME_<file>.csv."""
    parent, _, fname = key.rpartition("/")
    return results / detector / parent / f"{detector}_{fname}"


def write_results(results: Path, detector: str, series: list[Series], scores: list[np.ndarray]) -> None:
    """Write one NAB result file per data file (timestamp and value cells copied verbatim)."""
    for s, sc in zip(series, scores, strict=True):
        path = result_path(results, detector, s.key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(("timestamp", "value", "anomaly_score"))
                w.writerows(zip(s.ts_text, s.value_text, map(repr, sc.tolist()), strict=True))
        except OSError as e:
            raise EvalError(f"{path}: cannot write results: {e.strerror or e}") from None


def read_result_scores(results: Path, detector: str, series: list[Series]) -> list[np.ndarray]:
    """Read the anomaly_score column of an existing NAB results directory, one array per data file."""
    import numpy as np

    out = []
    for s in series:
        path = result_path(results, detector, s.key)
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                col = [float(r["anomaly_score"]) for r in csv.DictReader(fh)]
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise EvalError(f"{path}: cannot read anomaly_score column: {e}") from None
        if len(col) != len(s.values):
            raise EvalError(f"{path}: {len(col)} rows, data file has {len(s.values)}")
        out.append(np.array(col))
    return out


def scored_set(series: list[Series], labels: dict[str, list[tuple[str, str]]],
               labels_path: Path) -> ScoredSet:
    """The labelled files prepared for scoring."""
    from .analysis.nab import LabelledFile, ScoredSet

    return ScoredSet([LabelledFile(s.key, len(s.values), window_rows(s, labels[s.key], labels_path))
                      for s in series])


def score_table(series: list[Series], ss: ScoredSet, scores: list[np.ndarray], profile: Profile,
                detector: str) -> list[str]:
    """The per-category and overall table for one profile, threshold optimised over all files."""
    from .analysis.nab import ScoredSet

    best = ss.optimise(scores, profile)
    head = (f"  {'category':<28}{'files':>6}{'windows':>9}{'detected':>10}{'FP rows':>9}{'FP %':>8}"
            f"{'score':>9}")
    lines = [f"{detector} · profile {profile.name} · threshold {best.threshold:.6g}", head]
    cats = sorted({s.category for s in series})
    groups = [(c, [i for i, s in enumerate(series) if s.category == c]) for c in cats]
    for label, idx in [*groups, ("overall", list(range(len(series))))]:
        sub = ss if len(idx) == len(series) else ScoredSet([ss.files[i] for i in idx])
        t = sub.tally([scores[i] for i in idx], profile, best.threshold)
        healthy = sum(int((sub.tables[k].window < 0).sum()) for k in range(len(idx)))
        rate = 100.0 * t.false_positives / healthy if healthy else float("nan")
        lines.append(f"  {label:<28}{len(idx):>6}{t.windows:>9}{t.detected:>10}{t.false_positives:>9}"
                     f"{rate:>8.3f}{t.normalised:>9.2f}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Entry point of `surgewatch eval`."""
    try:
        return _run(args)
    except EvalError as e:
        print(f"surgewatch eval: error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from .analysis.nab import PROFILES

    t0 = time.perf_counter()
    labels_path = Path(args.labels)
    series, labels = load_dataset(Path(args.data_dir), labels_path)
    for s in series:
        note = order_warning(s)
        if note:
            print(f"surgewatch eval: warning: {note}", file=sys.stderr)
    ss = scored_set(series, labels, labels_path)
    t1 = time.perf_counter()
    scores = run_detector(args.detector, series)
    t2 = time.perf_counter()
    write_results(Path(args.results), args.detector, series, scores)
    profiles = [args.profile] if args.profile else list(PROFILE_NAMES)
    for k, name in enumerate(profiles):
        if k:
            print()
        print("\n".join(score_table(series, ss, scores, PROFILES[name], args.detector)))
    rows = sum(len(s.values) for s in series)
    print(f"\n{len(series)} files, {rows:,} rows: read {t1 - t0:.1f} s, detector {t2 - t1:.1f} s "
          f"({rows / max(t2 - t1, 1e-9):,.0f} rows/s), total {time.perf_counter() - t0:.1f} s; "
          f"results in {Path(args.results) / args.detector}")
    return 0
