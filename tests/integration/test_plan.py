"""`surgewatch plan`: peak load per host from learned models, hosts to add, exit codes a CI can act on, and one
line (exit 4) for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from surgewatch.analysis.plan import (
    ModelFact,
    demand_from_clicks,
    demand_from_lift,
    demand_from_visitors,
    make_plan,
)
from surgewatch.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


def model(host: str, slope: float, intercept: float, *, campaign: str = "spring", metric: str = "cpu.percent",
          r2: float = 0.95, usable: bool = True, lag: float = 30.0) -> ModelFact:
    return ModelFact(campaign, host, metric, lag, slope, intercept, r2, usable)


def test_a_plan_predicts_each_hosts_peak_and_when_it_comes_from_the_lag() -> None:
    plan = make_plan([model("web-1", 0.1, 10.0), model("web-2", 0.05, 20.0)], demand_from_visitors(700.0),
                     at=1000.0)
    by = {h.host: h for h in plan.hosts}
    assert by["web-1"].peak == pytest.approx(80.0) and by["web-1"].verdict == "tight"  # 80 ≥ 8/9 of 90
    assert by["web-2"].peak == pytest.approx(55.0) and by["web-2"].verdict == "fits"
    assert by["web-1"].peak_at == 1030.0
    assert plan.verdict == "tight" and plan.exit_code == 1


def test_hosts_to_add_keep_a_group_under_the_warning_level_when_load_spreads_evenly() -> None:
    # two hosts at 10 % idle + 0.1 %/visitor: 1,400 visitors put each at 150 %; to stay under 80 % the campaign's
    # 140 points per host must shrink to 70: twice the hosts, so +2
    facts = [model("web-1", 0.1, 10.0), model("web-2", 0.1, 10.0)]
    plan = make_plan(facts, demand_from_visitors(1400.0), groups={"web-1": "web", "web-2": "web"})
    (group,) = plan.groups
    assert (group.group, group.hosts, group.add_hosts, group.target) == ("web", ("web-1", "web-2"), 2,
                                                                         pytest.approx(80.0))
    assert plan.verdict == "saturates" and plan.exit_code == 2
    busy = make_plan([model("db-1", 0.1, 85.0)], demand_from_visitors(100.0))
    assert busy.hosts[0].add_hosts is None  # already above 80 % without the campaign: more hosts cannot help


def test_a_model_of_the_campaign_itself_wins_and_an_unclear_one_is_a_gap_that_says_why() -> None:
    facts = [model("web-1", 0.2, 5.0, campaign="other", r2=0.99), model("web-1", 0.1, 5.0, campaign="spring"),
             model("web-2", 0.1, 5.0, r2=0.3, usable=False)]
    plan = make_plan(facts, demand_from_visitors(100.0), campaign="spring", hosts=["web-1", "web-2", "web-3"])
    assert [h.model.campaign for h in plan.hosts] == ["spring"]
    gaps = {g.host: g.why for g in plan.gaps}
    assert "not clear enough" in gaps["web-2"] and "no load model yet" in gaps["web-3"]
    assert make_plan([], demand_from_visitors(5.0)).exit_code == 3


def test_the_demand_says_how_it_was_reached() -> None:
    d = demand_from_clicks(10_000, half_life=3600.0, window=300.0)
    assert d.peak_visitors == pytest.approx(10_000 * (1 - 2 ** (-300 / 3600)))
    assert "half within 60 min" in d.how
    lift = demand_from_lift(4.0, 200.0)
    assert lift is not None and lift.peak_visitors == 600.0
    assert demand_from_lift(4.0, float("nan")) is None


def run_plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "surgewatch", "plan", *args], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})


def test_plan_on_the_demo_recording_saturates_with_exit_2_and_json_in_the_reports_vocabulary(capsys) -> None:
    code = main(["plan", "--recording", "demo", "--lift", "3", "--at", "2026-12-03T10:00:00Z", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and doc["verdict"] == "saturates" and doc["exit"] == 2
    cpu = next(h for h in doc["hosts"] if h["metric"] == "cpu.percent")
    assert cpu["host"] == "demo-web" and cpu["peak"] > cpu["limit"] == 90.0 and cpu["add_hosts"] >= 1
    assert cpu["peak_at"] == "2026-12-03T10:00:40.000Z"  # launch + the learned 40 s lag
    assert set(cpu) >= {"peak", "peak_at", "limit", "headroom", "verdict", "model"}
    assert doc["assumptions"][0].startswith("lift 3x over the site's baseline")


def test_a_campaign_from_the_config_uses_its_expected_size_and_a_small_one_fits(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[host]]\nname = "demo-web"\nsource = "local"\n[[traffic]]\nname = "demo-site"\n'
                   'source = "json"\nurl = "http://127.0.0.1:9"\nvalue = "v"\n'
                   '[[campaign]]\nname = "tiny-send"\ntraffic = "demo-site"\nhosts = ["demo-web"]\n'
                   'expected_visitors = 500\n')
    code = main(["plan", "tiny-send", "--config", str(cfg), "--recording", "demo"])
    out = capsys.readouterr().out
    assert code == 0 and "FITS" in out and "500 visitors in all" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--recording", "/nonexistent.swrec", "--visitors", "10"], "cannot read"),
    (["--recording", "demo", "--visitors", "10", "--at", "tomorrow"], "not an ISO 8601 time"),
    (["--recording", "demo", "--recipients", "1000"], "needs --click-rate"),
    (["--recording", "demo", "nope", "--config", "/nonexistent.toml"], "no such file"),
    (["--recording", "demo"], "name a CAMPAIGN or give its size"),
    (["--recording", "demo", "--visitors", "ten"], "invalid float value"),
])
def test_bad_input_is_one_line_and_exit_4_never_a_verdict(args: list[str], message: str) -> None:
    proc = run_plan(*args)
    assert proc.returncode == 4, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert message in last and "Traceback" not in proc.stderr
