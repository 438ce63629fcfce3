"""Learned load models persist in the state dir: saved atomically, reloaded on start, damaged files set aside."""

from __future__ import annotations

import csv
import json
import logging
import math
import stat
from pathlib import Path

import pytest

from surgewatch.analysis.loadmodels import FILE_NAME, LearnedModel, ModelStore, ModelStoreError
from surgewatch.frontends.analyze import analyze_file
from tests.support.analysis_scenarios import fleet_scenario
from tests.unit.test_groupmodels import drive, fleet_engine


def model(campaign: str = "spring-sale", target: str = "web-1", *, scope: str = "host", r2: float = 0.9,
          learned_at: float = 1_800_000_000.0, traffic: str = "traffic:site/visitors",
          slope: float = 0.05) -> LearnedModel:
    return LearnedModel(campaign, scope, target, "cpu.percent", traffic, 40.0, slope, 10.0, r2, 1.5, 200,
                        learned_at, 1 if scope == "host" else 12)


def test_models_round_trip_through_a_private_versioned_file(tmp_path: Path) -> None:
    store = ModelStore.in_state_dir(tmp_path / "state")
    assert store.put(model()) and store.put(model(target="web", scope="group"))
    store.save()
    path = tmp_path / "state" / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["kind"] == "surgewatch-models" and doc["version"] == 1 and len(doc["models"]) == 2
    assert set(doc["models"][0]) >= {"campaign", "scope", "target", "metric", "traffic", "lag_seconds", "slope",
                                     "intercept", "r2", "points", "learned_at", "hosts"}
    again = ModelStore.in_state_dir(tmp_path / "state").load()
    assert again.models() == store.models()
    assert again.get("spring-sale", "web-1", "cpu.percent") == model()
    assert again.get("spring-sale", "web", "cpu.percent", scope="group") == model(target="web", scope="group")
    assert not list((tmp_path / "state").glob(".models.json-*"))  # no temp file left behind


@pytest.mark.parametrize("content", [b"{not json", b'{"kind": "surgewatch-models", "version": 99, "models": []}',
                                     b'{"kind": "surgewatch-models", "version": 1, "models": [{"slope": 1}]}',
                                     b'[1, 2]', b"\xff\xfe\x00garbage"])
def test_a_damaged_models_file_is_moved_aside_with_one_warning_and_the_store_starts_empty(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="surgewatch.models"):
        store = ModelStore(path, clock=lambda: 1_800_000_000.0).load()
    assert len(store) == 0
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert str(path) in lines[0] and "moved aside to models.json.corrupt-20270115T080000" in lines[0]
    assert (tmp_path / "models.json.corrupt-20270115T080000").read_bytes() == content
    assert not path.exists()
    store.put(model())
    store.save()  # and a new file is written in its place
    assert len(ModelStore(path).load()) == 1


def test_a_models_path_that_cannot_be_read_is_set_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / FILE_NAME
    path.mkdir()  # not a file: reading it fails
    with caplog.at_level(logging.WARNING, logger="surgewatch.models"):
        store = ModelStore(path).load()
    assert len(store) == 0 and len(caplog.records) == 1 and "cannot read" in caplog.records[0].getMessage()
    assert not path.exists()


def test_an_unwritable_state_dir_is_one_line_naming_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state dir should be")
    store = ModelStore.in_state_dir(blocker)
    store.put(model())
    with pytest.raises(ModelStoreError) as err:
        store.save()
    message = str(err.value)
    assert message.startswith(f"{blocker / FILE_NAME}: cannot write learned models") and "\n" not in message
    assert store.dirty  # still to be written


def test_a_flat_week_does_not_erase_a_usable_model() -> None:
    store = ModelStore("unused.json")
    store.put(model(r2=0.9))
    assert not store.put(model(r2=0.1, learned_at=1_800_600_000.0))  # not usable: the good one stays
    assert store.get("spring-sale", "web-1", "cpu.percent").r2 == 0.9  # type: ignore[union-attr]
    assert store.put(model(r2=0.8, learned_at=1_800_600_000.0))  # usable and newer: it replaces it


def test_a_new_campaign_borrows_the_newest_model_learned_from_the_same_traffic() -> None:
    store = ModelStore("unused.json")
    store.put(model("week-48", learned_at=1_800_000_000.0, slope=0.04))
    store.put(model("week-49", learned_at=1_800_600_000.0, slope=0.05))
    store.put(model("other-site", learned_at=1_801_000_000.0, traffic="traffic:blog/visitors", slope=0.9))
    assert store.get("week-50", "web-1", "cpu.percent") is None  # by name only: none
    borrowed = store.get("week-50", "web-1", "cpu.percent", traffic="traffic:site/visitors")
    assert borrowed is not None and borrowed.campaign == "week-49" and borrowed.slope == 0.05
    assert store.get("week-48", "web-1", "cpu.percent", traffic="traffic:site/visitors").slope == 0.04  # type: ignore[union-attr]


async def test_a_restarted_daemon_knows_its_groups_models_before_it_refits(tmp_path: Path) -> None:
    sc = fleet_scenario(7, hosts=12, groups=1, tick=2.0, ticks=320, departs=0)
    first, src, now = fleet_engine(tmp_path, sc, keep_models=True)
    await drive(first, src, sc, range(300), now)
    await first.shutdown(0.1)
    path = tmp_path / "state" / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = ModelStore(path).load()
    group = saved.get("camp-0", "pool-0", "cpu.percent", scope="group")
    assert group is not None and group.usable and group.hosts == 12
    assert group.slope == pytest.approx(sc.slope["pool-0"], rel=0.15) and group.traffic == "traffic:site-0/visitors"

    second, src, now = fleet_engine(tmp_path, sc, keep_models=True)
    await drive(second, src, sc, range(300, 310), now)  # ten ticks: far too few to fit anything
    view = next(c for c in second.snapshot().campaigns if c.name == "camp-0")
    (g,) = [g for g in view.groups if g.metric == "cpu.percent"]
    assert g.restored and g.slope == pytest.approx(group.slope) and not math.isnan(g.headroom)


def test_analyze_json_lists_group_models_and_the_models_a_daemon_would_keep(tmp_path: Path) -> None:
    sc = fleet_scenario(8, hosts=8, groups=1, ticks=400, departs=1)
    (host, _start), = sc.departs.items()
    data = tmp_path / "fleet.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", *sc.names])
        for k in range(sc.values.shape[1]):
            w.writerow([sc.ts[k], *["" if math.isnan(v) else f"{v:.3f}" for v in sc.values[:, k]]])
    hosts = "".join(f'[[host]]\nname = "{h}"\nsource = "prometheus"\nurl = "http://127.0.0.1:9/m"\ngroup = "pool-0"\n'
                    for h in sc.groups)
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f'{hosts}[[traffic]]\nname = "site-0"\nsource = "json"\nurl = "http://127.0.0.1:9/x"\n'
                   f'value = "v"\n[[campaign]]\nname = "camp-0"\ntraffic = "site-0"\nhosts = ["pool-0"]\n')
    doc = analyze_file(str(data), str(cfg)).to_json()
    (g,) = doc["groups"]
    assert (g["campaign"], g["group"], g["metric"], g["hosts"], g["usable"]) == ("camp-0", "pool-0", "cpu.percent",
                                                                                  8, True)
    assert g["departing"] == [host] and g["headroom"] > 0
    assert g["slope"] == pytest.approx(sc.slope["pool-0"], rel=0.1)
    assert {a["series"] for a in doc["anomalies"] if a["group"] == "pool-0"} == {f"host:{host}/cpu.percent"}
    kept = {(m["scope"], m["target"]) for m in doc["models"]}
    assert ("group", "pool-0") in kept and {("host", h) for h in sc.groups} <= kept  # group names expand to hosts
    assert all(LearnedModel.from_json(m).usable for m in doc["models"])


def test_check_states_the_learned_models_and_never_moves_a_damaged_file(tmp_path: Path) -> None:
    from surgewatch.config import parse_config
    from surgewatch.frontends.check import models_summary

    config = parse_config(f'[monitor]\nstate_dir = "{tmp_path / "state"}"\n', "check.toml")
    assert models_summary(config)["count"] == 0
    store = ModelStore.in_state_dir(tmp_path / "state")
    store.put(model())
    store.put(model(target="web", scope="group", learned_at=1_800_000_060.0))
    store.save()
    summary = models_summary(config)
    assert (summary["count"], summary["groups"], summary["problem"]) == (2, 1, None)
    assert summary["newest"] == "2027-01-15T08:01:00.000Z"
    path = tmp_path / "state" / FILE_NAME
    path.write_text("{")
    summary = models_summary(config)
    assert summary["count"] == 0 and summary["problem"].startswith("not a surgewatch models file")
    assert path.read_text() == "{"  # a read-only look: the daemon sets it aside when it starts


def test_plan_from_state_reads_the_models_the_daemon_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from surgewatch.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[monitor]\nstate_dir = "{tmp_path / "state"}"\n'
                   '[[host]]\nname = "web-1"\nsource = "local"\n[[traffic]]\nname = "site"\n'
                   'source = "json"\nurl = "http://127.0.0.1:9"\nvalue = "v"\n'
                   '[[campaign]]\nname = "spring-sale"\ntraffic = "site"\nhosts = ["web-1"]\n')
    assert main(["plan", "--config", str(cfg), "--from-state", "--visitors", "100"]) == 4  # nothing kept yet
    assert "no load models saved in" in capsys.readouterr().err
    store = ModelStore.in_state_dir(tmp_path / "state")
    kept = model()  # cpu = 10 + 0.05·site visitors, lag 40 s, learned when the site ran at 200 visitors
    store.put(LearnedModel(**{**{f: getattr(kept, f) for f in kept.__slots__}, "traffic_baseline": 200.0}))
    store.save()
    assert json.loads((tmp_path / "state" / FILE_NAME).read_text())["models"][0]["traffic_baseline"] == 200.0
    code = main(["plan", "--config", str(cfg), "--from-state", "--visitors", "1000", "--json"])
    doc = json.loads(capsys.readouterr().out)
    (cpu,) = [h for h in doc["hosts"] if h["metric"] == "cpu.percent"]
    assert cpu["host"] == "web-1" and cpu["peak"] == pytest.approx(10 + 0.05 * (200 + 1000))
    assert code == 0 and doc["verdict"] == "fits"  # 70% of CPU
    assert main(["plan", "--config", str(cfg), "--from-state", "--visitors", "2000"]) == 2  # 120%: saturates


def test_a_model_with_a_number_that_is_not_finite_is_not_kept(tmp_path: Path) -> None:
    store = ModelStore.in_state_dir(tmp_path)
    assert not store.put(model(slope=float("nan"))) and len(store) == 0
    assert store.put(model()) and not store.put(model())  # the same model again: nothing to write
    store.save()
    assert not store.dirty
