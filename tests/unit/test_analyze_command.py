"""`surgewatch analyze`: CSV and recordings in, models and classified anomalies out; bad files exit 2 (about 6 s)."""

from __future__ import annotations

import json
import sqlite3
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from surgewatch.cli import main
from surgewatch.model import rfc3339
from tests.support.analysis_scenarios import Scenario, make_scenario

SCENARIO_SEED = 21


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return make_scenario(SCENARIO_SEED, ticks=1100, hosts=2, spikes=2)


def _write_csv(path: Path, sc: Scenario, unix: bool = False) -> Path:
    lines = ["timestamp," + ",".join(sc.names)]
    for t in range(sc.values.shape[1]):
        stamp = f"{sc.ts[t]:.0f}" if unix else rfc3339(sc.ts[t])
        cells = ["" if np.isnan(v) else f"{v:.4f}" for v in sc.values[:, t]]
        lines.append(stamp + "," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_json_report_has_pairs_with_the_true_lag_and_classified_anomalies(
        tmp_path: Path, scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_csv(tmp_path / "s.csv", scenario)
    assert main(["analyze", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"pairs", "anomalies"}
    pairs = {(p["campaign"], p["host"], p["metric"]): p for p in doc["pairs"]}
    for (camp, host_series), lag in scenario.lags.items():
        host = host_series.split(":")[1].split("/")[0]
        p = pairs[(camp, host, "cpu.percent")]
        assert set(p) >= {"campaign", "host", "metric", "lag_seconds", "slope", "intercept", "r2", "headroom"}
        assert abs(p["lag_seconds"] - lag * scenario.tick) <= scenario.tick
        assert p["slope"] == pytest.approx(scenario.gains[(camp, host_series)], rel=0.1)
    for a in doc["anomalies"]:
        assert set(a) >= {"ts", "series", "score", "classification", "explanation"}
    unexplained = [a for a in doc["anomalies"] if a["classification"] == "unexplained"]
    for host_series, spans in scenario.injected.items():
        for s, e in spans:
            start, end = rfc3339(scenario.ts[s]), rfc3339(scenario.ts[min(e, len(scenario.ts) - 1)])
            assert any(a["series"] == host_series and start <= a["ts"] <= end for a in unexplained)


def test_text_report_from_unix_timestamps(tmp_path: Path, scenario: Scenario,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_csv(tmp_path / "u.csv", scenario, unix=True)
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Load models" in out and "camp0" in out and "web-1" in out
    assert "Anomalies:" in out and "unexplained" in out


def test_config_restricts_pairs_to_its_hosts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sc = make_scenario(3, ticks=400, hosts=2, spikes=0)
    path = _write_csv(tmp_path / "c.csv", sc)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[host]]\nname = "web-0"\nsource = "demo"\n[[host]]\nname = "web-1"\nsource = "demo"\n'
                   '[[traffic]]\nname = "site"\nsource = "demo"\n'
                   '[[campaign]]\nname = "camp0"\ntraffic = "site"\nhosts = ["web-0"]\n')
    assert main(["analyze", str(path), "--config", str(cfg), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {p["host"] for p in doc["pairs"]} == {"web-0"}


def test_recording_is_read_through_the_recording_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    sc = make_scenario(4, ticks=300, spikes=0)
    rec = tmp_path / "r.sqlite"
    sqlite3.connect(rec).execute("create table t (x)").connection.commit()
    calls = []

    def read_series(path: str, start: float | None = None, end: float | None = None,
                    globs: list[str] | None = None) -> tuple[list[float], dict[str, list[float]]]:
        calls.append(path)
        return sc.ts.tolist(), {n: sc.values[i].tolist() for i, n in enumerate(sc.names)}

    fake = types.ModuleType("surgewatch.recording.reader")
    fake.read_series = read_series  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "surgewatch.recording", types.ModuleType("surgewatch.recording"))
    monkeypatch.setitem(sys.modules, "surgewatch.recording.reader", fake)
    assert main(["analyze", str(rec), "--json"]) == 0
    assert calls == [str(rec)]
    assert json.loads(capsys.readouterr().out)["series"] == len(sc.names)


BAD: dict[str, str | bytes] = {
    "empty.csv": "",
    "bad-name.csv": "ts,cpu\n1,2\n2,3\n",
    "not-number.csv": "ts,host:a/cpu.percent\n1,2\n2,lots\n",
    "ragged.csv": "ts,host:a/cpu.percent\n1,2\n2,3,4\n",
    "bad-time.csv": "ts,host:a/cpu.percent\nyesterday,2\n2,3\n",
    "naive-time.csv": "ts,host:a/cpu.percent\n2026-03-01T10:00:00,2\n2026-03-01T10:00:02,3\n",
    "irregular.csv": "ts,host:a/cpu.percent\n0,1\n1,1\n2,1\n100000000,1\n",
    "binary.csv": b"\xff\xfe\x00garbage",
    "broken.sqlite": b"SQLite format 3\x00" + b"\x00" * 200,
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_give_one_line_and_exit_2(tmp_path: Path, name: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    content = BAD[name]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("surgewatch analyze: ") and str(path) in err


def test_missing_file_and_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err
    csv = tmp_path / "ok.csv"
    csv.write_text("ts,host:a/cpu.percent\n1,2\n2,3\n")
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[[campaign]]\nname = 3\n")
    assert main(["analyze", str(csv), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.toml" in err


DEGENERATE = {
    "header-only": ("ts,host:a/cpu.percent\n", 0),
    "single-row": ("ts,host:a/cpu.percent\n5,2\n", 1),
    "same-time": ("ts,host:a/cpu.percent\n5,2\n5,3\n", 1),
    "constant": ("ts,host:a/cpu.percent\n" + "".join(f"{t},7\n" for t in range(400)), 400),
    "all-nan": ("ts,host:a/cpu.percent,host:a/mem.percent\n" + "".join(f"{t},,5\n" for t in range(400)), 400),
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_files_give_a_report_naming_the_detector(tmp_path: Path, name: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from surgewatch.analysis import DEFAULT_LIVE_DETECTOR

    text, points = DEGENERATE[name]
    path = tmp_path / f"{name}.csv"
    path.write_text(text)
    assert main(["analyze", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["detector"] == DEFAULT_LIVE_DETECTOR and doc["points"] == points and doc["anomalies"] == []
    assert main(["analyze", str(path)]) == 0
    assert str(path) in capsys.readouterr().out


def test_a_clock_step_back_is_sorted_with_one_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    stamps = [*range(0, 600, 2), *range(500, 520, 2), *range(600, 1200, 2)]  # steps back 100 s once
    rows = "".join(f"{t},{20 + rng.normal():.3f}\n" for t in stamps)
    path = tmp_path / "step.csv"
    path.write_text("ts,host:a/cpu.percent\n" + rows)
    assert main(["analyze", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert err.count("\n") == 1 and "the clock steps back: 10 rows" in err and "sorted" in err
    assert doc["warnings"] == [err.strip().removeprefix("surgewatch analyze: warning: ")]
    assert doc["tick_seconds"] == 2.0 and doc["points"] == 600  # the 10 repeated ticks: a later row wins
