"""`surgewatch export FILE`: a recording's samples as CSV or JSON for spreadsheets and notebooks.

Values are written with Python's shortest round-tripping float form, so reading the export back gives
exactly the recorded float64 values; a series that did not report at a tick is an empty CSV cell or null.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import Annotation

from .replaycmd import add_range_arguments, resolve_range


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a recording made with --record, or a shipped scenario name")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default csv)")
    p.add_argument("--series", action="append", metavar="GLOB",
                   help='only series matching GLOB, e.g. "host:*/cpu.percent" (repeatable)')
    p.add_argument("--annotations", action="store_true",
                   help="list the recorded deploy annotations instead of the samples")
    add_range_arguments(p)
    p.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")


def _cell(v: float) -> str:
    return "" if math.isnan(v) else repr(v)


def _json_value(v: float) -> float | str | None:
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def write_csv(out: IO[str], ts: Any, series: dict[str, Any]) -> None:
    """Header `ts,time,<series...>`; one row per tick."""
    from ..model import rfc3339

    names = list(series)
    out.write(",".join(["ts", "time", *(_quote(n) for n in names)]) + "\n")
    columns = [series[n].tolist() for n in names]
    for k, t in enumerate(ts.tolist()):
        out.write(",".join([repr(t), rfc3339(t), *(_cell(col[k]) for col in columns)]) + "\n")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if any(c in name for c in ',"\n\r') else name


def write_json(out: IO[str], ts: Any, series: dict[str, Any], events: list[dict[str, Any]],
               annotations: list[dict[str, Any]] | None = None) -> None:
    """One object: timestamps, series values (null = no sample), the recorded events and annotations."""
    doc = {"timestamps": ts.tolist(),
           "series": {n: [_json_value(v) for v in vals.tolist()] for n, vals in series.items()},
           "events": events, "annotations": annotations or []}
    json.dump(doc, out, ensure_ascii=False, allow_nan=False)
    out.write("\n")


def write_annotations(out: IO[str], annotations: list[Annotation], fmt: str) -> None:
    """The deploy annotations: CSV `ts,time,host,duration,text`, or a JSON array."""
    if fmt == "json":
        json.dump([a.to_json() for a in annotations], out, ensure_ascii=False)
        out.write("\n")
        return
    from ..model import rfc3339

    out.write("ts,time,host,duration,text\n")
    for a in annotations:
        out.write(",".join([repr(a.ts), rfc3339(a.ts), _quote(a.host or ""), repr(a.duration), _quote(a.text)])
                  + "\n")


def run(args: argparse.Namespace) -> int:
    from ..scenarios import resolve

    args.file = resolve(args.file)
    from .format import RecordingError
    from .reader import Recording, read_series

    try:
        with Recording(args.file) as rec:
            span = rec.span()
            start, end = resolve_range(args, span[0] if span else None)
            events = [{"ts": e.ts, "kind": e.kind, **e.doc} for e in rec.events(start=start, end=end)]
            annotations = rec.annotations(start, end)
        ts, series = read_series(args.file, start, end, args.series) if not args.annotations else (None, {})
    except (RecordingError, ValueError) as exc:
        print(f"surgewatch: {exc}", file=sys.stderr)
        return 2
    try:
        out: IO[str] = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout  # noqa: SIM115
    except OSError as exc:
        print(f"surgewatch: {args.output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        if args.annotations:
            write_annotations(out, annotations, args.format)
        elif args.format == "csv":
            write_csv(out, ts, series)
        else:
            write_json(out, ts, series, events, [a.to_json() for a in annotations])
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
