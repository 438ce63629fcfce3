"""`surgewatch report`: one self-contained HTML page, checked in headless Chromium when it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from surgewatch.cli import main
from surgewatch.recording.postmortem import gather, render
from surgewatch.scenarios import path


def test_report_is_self_contained_and_shows_the_story(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "saturates", "-o", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)  # nothing fetched from anywhere
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert page.count("<svg") >= 4  # timeline, traffic, host load, headroom
    assert "cpu-high" in page and "critical" in page and "flash-sale" in page
    assert "Load models and headroom" in page and "30s" in page  # the fitted 30 s lag of the scenario


def test_report_fits_the_lag_the_scenario_was_built_with() -> None:
    data = gather(str(path("incident")))
    cpu = {f.host: f for f in data.fits if f.metric == "cpu.percent"}
    assert set(cpu) == {"web-1", "web-2"}  # db-1 is not on the campaign
    assert all(f.lag == 30.0 and f.r2 > 0.8 for f in cpu.values())
    assert data.replay_alerts == len(data.alerts)
    assert "unexplained-load" in render(data)


def test_report_range_limits_alerts(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert main(["report", "incident", "--from", "+35m", "-o", str(out)]) == 0
    page = out.read_text()
    assert "unexplained-load" in page and "campaign-surge" not in page.split("<h2>Alerts")[1]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (CI installs it)")
def test_report_renders_offline_in_headless_chromium(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    shot = tmp_path / "report.png"
    assert main(["report", "saturates", "-o", str(out)]) == 0
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [_chromium() or "", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--window-size=1100,1800", f"--screenshot={shot}", out.as_uri()],
            capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1100, 1800)
    assert len(png) > 40_000  # charts and tables, not a blank page (a blank one is a few KB)
    keep = Path(__file__).parents[1] / "output"
    if keep.is_dir():
        shutil.copy(shot, keep / "report.png")


def test_report_marks_and_lists_deploy_annotations_escaped(tmp_path: Path) -> None:
    import json
    import sqlite3

    from surgewatch.model import Annotation

    copy = tmp_path / "incident.swrec"
    shutil.copy(path("incident"), copy)
    deploy = 1772358000.0 - 30  # 09:39:30, just before db-1 spikes
    doc = Annotation(4, deploy, "deploy <b>v2.3</b>", "db-1", 900.0, "cli").to_json()
    with sqlite3.connect(copy) as conn:
        conn.execute("INSERT INTO events(ts, kind, doc) VALUES (?, 'annotation', ?)", (deploy, json.dumps(doc)))
        for eid, alert in conn.execute("SELECT id, doc FROM events WHERE kind = 'alert'").fetchall():
            d = json.loads(alert)
            if d["rule"] == "unexplained-load" and d["event"] == "firing":  # as live would have named it
                d["explanation"] += " — started 35s after deploy <b>v2.3</b> on db-1"
                conn.execute("UPDATE events SET doc = ? WHERE id = ?", (json.dumps(d), eid))
    data = gather(str(copy))
    assert [a.text for a in data.annotations] == ["deploy <b>v2.3</b>"]
    page = render(data)
    assert "<b>v2.3</b>" not in page and "deploy &lt;b&gt;v2.3&lt;/b&gt;" in page
    assert "Deploy annotations (1)" in page and "D: deploy annotations" in page
    table = page.split("<h2>Deploy annotations")[1].split("<h2>")[0]
    assert "09:39:30" in table and "db-1" in table and "15 min" in table
    assert table.rstrip().endswith("<td class=num>1</td></tr>\n</table>")  # the db-1 alert names it
    # a D mark on the timeline, the traffic chart and db-1's chart, none on the web hosts' charts
    charts = page.split("<figure>")
    assert sum(1 for c in charts if ">D<title>" in c) == 3
    assert all(">D<title>" not in c for c in charts if "web-1: CPU" in c or "web-2: CPU" in c)
    assert "No deploy annotations in this range." in render(gather(str(path("incident"))))
