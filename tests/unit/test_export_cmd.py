"""`surgewatch export`: CSV and JSON that read back to exactly the recorded values."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from surgewatch.cli import main
from surgewatch.recording.reader import read_series
from surgewatch.recording.writer import Recorder, RecordingWriter


@pytest.fixture()
def awkward(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A recording with values that print badly: tiny, huge, negative zero, inf, many digits, and gaps."""
    path = tmp_path / "awkward.swrec"
    rng = np.random.default_rng(5)
    n = 150
    values = np.stack([rng.normal(0, 1, n) * 10.0 ** rng.integers(-300, 300, n), np.round(rng.normal(50, 9, n), 1),
                       np.full(n, -0.0), np.where(np.arange(n) % 7 == 0, np.inf, 1 / 3)], axis=1)
    writer = RecordingWriter(str(path), {"tick_seconds": "1"}, compact_every=40, keep_raw=5)
    rec = Recorder(writer)
    ts = 1_772_355_600.123456 + np.arange(n) * 1.000001
    for k in range(n):
        rows = np.array([0, 1, 2, 3]) if k % 10 else np.array([0, 1])  # every tenth tick: two series missing
        rec.record(float(ts[k]), rows, values[k, rows], [])
    writer.close()
    return path, ts, values


def _expected(values: np.ndarray) -> np.ndarray:
    out = values.copy()
    out[::10, 2:] = np.nan
    return out


def test_csv_round_trips_every_value_exactly(awkward: tuple[Path, np.ndarray, np.ndarray],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path, ts, values = awkward
    assert main(["export", str(path), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["ts", "time", "0", "1", "2", "3"]
    back = np.array([[float(c) if c else np.nan for c in r[2:]] for r in rows[1:]])
    assert [float(r[0]) for r in rows[1:]] == ts.tolist()
    assert rows[1][1] == "2026-03-01T09:00:00.123Z"
    assert np.array_equal(back.view(np.uint64), _expected(values).view(np.uint64))


def test_json_round_trips_and_writes_to_a_file(awkward: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    path, ts, values = awkward
    out = tmp_path / "out.json"
    assert main(["export", str(path), "--format", "json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["timestamps"] == ts.tolist()
    decode = {None: np.nan, "inf": np.inf, "-inf": -np.inf}
    back = np.array([[decode.get(v, v) if not isinstance(v, float) else v for v in doc["series"][s]]
                     for s in "0123"], dtype=np.float64).T
    assert np.array_equal(back.view(np.uint64), _expected(values).view(np.uint64))


def test_series_glob_and_time_range_select(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "incident", "--series", "host:db-*", "--series", "traffic:*",
                 "--from", "+40m", "--to", "+41m"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][2:] == ["traffic:shop/visitors", "host:db-1/cpu.percent", "host:db-1/mem.percent",
                           "host:db-1/load.1"]
    assert len(rows) - 1 == 13  # 60 s at 5 s, both ends included
    assert rows[1][1] == "2026-03-01T09:40:00.000Z" and rows[-1][1] == "2026-03-01T09:41:00.000Z"


def test_read_series_matches_the_export(capsys: pytest.CaptureFixture[str]) -> None:
    from surgewatch.scenarios import path

    ts, series = read_series(str(path("saturates")), globs=["host:*/cpu.percent"])
    assert list(series) == ["host:web-1/cpu.percent"] and ts.size == 720
    assert float(np.nanmax(series["host:web-1/cpu.percent"])) == 100.0


def test_unwritable_output_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["export", "saturates", "-o", str(tmp_path / "no" / "such" / "dir.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err
