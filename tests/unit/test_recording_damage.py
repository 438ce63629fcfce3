"""`report`, `export`, `replay` and `analyze` never crash on what a recording holds (inf, NaN, 1.75e308...)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from surgewatch.cli import main
from tests.support.recordings import craft

BAD = [50.0, math.inf, math.nan, 1.75e308, -1.75e308, -math.inf, 95.0, 97.0, 99.0, -5.0, 250.0]
EVENTS = [
    (1.7e9 + 3, "alert", '{"event": "firing", "value": 1e999, "rule": "r", "series": "host:web-1/cpu.percent"}'),
    (1.7e9 + 4, "alert", '{"event": "resolved", "value": "NaN?", "rule": "<b>r</b>", "_ts": "x"}'),
    (1.7e9 + 5, "campaign", '{"campaign": "c", "event": "surge-start", "lift": 1.75e308}'),
    (1.7e9 + 6, "sources", '{"stale": ["host:web-1"], "errors": {"host:web-1": "\\u001b[2Jboom"}}'),
]


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    rows = [[BAD[(i + k) % len(BAD)] for k in range(4)] for i in range(60)]
    return craft(tmp_path / "bad.swrec", rows, events=EVENTS)


def test_report_of_a_recording_with_inf_nan_and_huge_values(damaged: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(damaged), "-o", str(out)]) == 0
    page = out.read_text()
    assert page.count("<svg") >= 3 and "1.75e+308" not in page and "inf%" not in page


def test_export_keeps_what_was_recorded(damaged: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.csv"
    assert main(["export", str(damaged), "-o", str(out)]) == 0
    assert "1.75e+308" in out.read_text()  # export is the data as recorded, exactly


def test_replay_treats_absurd_values_as_no_reading(damaged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(damaged), "--headless"]) == 0
    out, err = capsys.readouterr()
    alerts = [json.loads(line) for line in out.splitlines()]
    assert alerts and all(a["value"] is None or abs(a["value"]) <= 100 for a in alerts)
    assert "Traceback" not in err


def test_analyze_ignores_absurd_values(damaged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(damaged)]) == 0
    out = capsys.readouterr().out
    assert "e+308" not in out and "175000000" not in out and "inf" not in out.lower().replace("info", "")


def test_analyze_csv_with_inf_and_huge_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "d.csv"
    lines = ["ts,host:web-1/cpu.percent,traffic:s/visitors"]
    lines += [f"{1.7e9 + i},{BAD[i % len(BAD)]},{BAD[(i + 3) % len(BAD)]}" for i in range(50)]
    csv.write_text("\n".join(lines) + "\n")
    assert main(["analyze", str(csv)]) == 0
    assert "e+308" not in capsys.readouterr().out


@pytest.mark.parametrize(("kind", "doc"), [
    ("alert", "[1, 2]"), ("campaign", '"text"'), ("sources", "3"),
    ("sources", '{"stale": [1, null], "errors": [1]}'), ("sources", '{"stale": "ab", "errors": {"a": 1}}'),
])
def test_replay_and_report_of_odd_event_documents_end_in_one_line(kind: str, doc: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = craft(tmp_path / "odd.swrec", [[50.0, 40.0, 1.0, 1.0]] * 5, events=[(1.7e9 + 2, kind, doc)])
    assert main(["replay", str(path), "--headless"]) in (0, 2)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) in (0, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(line.startswith("surgewatch: ") for line in err.splitlines())
