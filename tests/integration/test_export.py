"""/metrics export: the text format, and a REAL Prometheus scraping it (runtime ~8 s, mostly Prometheus's
first scrape)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from surgewatch.export import (
    AlertFigure,
    CampaignFigure,
    Exporter,
    ExportError,
    ExportState,
    LoadModelFigure,
    SeriesFigure,
    parse_listen,
)
from tests.support.servers import http_get, prometheus_query, start_prometheus, wait_until


def state(score: float = 7.25) -> ExportState:
    return ExportState(
        series=[SeriesFigure("host:web-1/cpu.percent", 93.5, score=score, expected=40.0),
                SeriesFigure("campaign:spring-sale/visitors", 1250.0, score=None, stale=True),
                SeriesFigure("host:web-2/cpu.percent", float("nan"), score=float("inf"))],
        campaigns=[CampaignFigure("spring-sale", 5.2, active=True, expected_lift=5.0)],
        load_models=[LoadModelFigure("web-1", "cpu.percent", "spring-sale", 0.05, 12.0, 0.81,
                                     lag_seconds=30, expected_now=74.5, headroom=15.5,
                                     seconds_to_limit=float("inf"))],
        alerts=[AlertFigure("cpu-high", "host:web-1/cpu.percent", "firing", "critical", {"team": "ops",
                                                                                          "odd-name": "x"})],
        outbox_pending={"webhook-abc": 3},
        outbox_dead={"webhook-abc": 2},
        source_up={"web-1": True, "site": False},
        ts=1_795_000_000.0,
        detector="surge-context",
    )


def samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_metrics_show_values_scores_campaigns_models_and_alerts() -> None:
    got = samples(Exporter(state).render())
    web = frozenset({"series": "host:web-1/cpu.percent", "kind": "host", "name": "web-1",
                     "metric": "cpu.percent"}.items())
    assert got[("surgewatch_value", web)] == 93.5
    assert got[("surgewatch_anomaly_score", web)] == 7.25
    assert got[("surgewatch_expected", web)] == 40.0
    assert got[("surgewatch_campaign_lift", frozenset({("campaign", "spring-sale")}))] == 5.2
    model = frozenset({"host": "web-1", "metric": "cpu.percent", "campaign": "spring-sale"}.items())
    assert got[("surgewatch_load_model_slope", model)] == 0.05
    assert got[("surgewatch_load_model_r2", model)] == 0.81
    assert got[("surgewatch_load_model_headroom", model)] == 15.5
    assert ("surgewatch_load_model_seconds_to_limit", model) not in got  # inf: not rising
    alert = frozenset({"alertname": "cpu-high", "alertstate": "firing", "severity": "critical",
                       "series": "host:web-1/cpu.percent", "team": "ops", "odd_name": "x"}.items())
    assert got[("surgewatch_alerts", alert)] == 1.0
    assert got[("surgewatch_outbox_pending", frozenset({("sink", "webhook-abc")}))] == 3.0
    assert got[("surgewatch_outbox_dead_letters", frozenset({("sink", "webhook-abc")}))] == 2.0
    assert got[("surgewatch_source_up", frozenset({("source", "site")}))] == 0.0
    camp = frozenset({"series": "campaign:spring-sale/visitors", "kind": "campaign", "name": "spring-sale",
                      "metric": "visitors"}.items())
    assert got[("surgewatch_series_stale", camp)] == 1.0
    assert ("surgewatch_anomaly_score", camp) not in got  # no score: no sample rather than a fake 0
    assert got[("surgewatch_detector_info", frozenset({("detector", "surge-context")}))] == 1.0


def test_non_finite_numbers_are_left_out() -> None:
    got = samples(Exporter(state).render())
    web2 = frozenset({"series": "host:web-2/cpu.percent", "kind": "host", "name": "web-2",
                      "metric": "cpu.percent"}.items())
    assert ("surgewatch_value", web2) not in got and ("surgewatch_anomaly_score", web2) not in got


def test_failing_snapshot_still_answers_with_a_health_gauge() -> None:
    def broken() -> ExportState:
        raise RuntimeError("engine not ready")

    got = samples(Exporter(broken).render())
    assert got == {("surgewatch_export_snapshot_ok", frozenset()): 0.0}


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9273", ("127.0.0.1", 9273)), (":9273", ("127.0.0.1", 9273)), ("[::1]:0", ("::1", 0)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
])
def test_listen_addresses_parse_with_loopback_as_default(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


def test_port_in_use_is_a_one_line_error() -> None:
    first = Exporter(state)
    _host, port = first.start("127.0.0.1:0")
    try:
        with pytest.raises(ExportError, match=f"listen 127.0.0.1:{port}: cannot listen"):
            Exporter(state).start(f"127.0.0.1:{port}")
    finally:
        first.stop()


def test_real_prometheus_scrapes_the_anomaly_score(tmp_path: Path) -> None:
    current = {"score": 7.25}
    lock = threading.Lock()

    def snapshot() -> ExportState:
        with lock:
            return state(current["score"])

    exporter = Exporter(snapshot)
    _host, port = exporter.start("127.0.0.1:0")
    try:
        got = http_get(f"http://127.0.0.1:{port}/metrics")
        assert got is not None and got[0] == 200 and b"surgewatch_anomaly_score" in got[1]
        with start_prometheus(tmp_path / "prom", {"surgewatch": [f"127.0.0.1:{port}"]}) as prom:
            query = 'surgewatch_anomaly_score{series="host:web-1/cpu.percent",job="surgewatch"}'
            result = wait_until(lambda: prometheus_query(prom.url, query), 15, "anomaly score in Prometheus")
            assert float(result[0]["value"][1]) == 7.25
            assert result[0]["metric"]["kind"] == "host" and result[0]["metric"]["name"] == "web-1"
            with lock:
                current["score"] = 9.5
            wait_until(lambda: any(float(r["value"][1]) == 9.5 for r in prometheus_query(prom.url, query)),
                       15, "updated anomaly score")
            alerts = prometheus_query(prom.url, 'surgewatch_alerts{alertstate="firing"}')
            assert alerts and alerts[0]["metric"]["alertname"] == "cpu-high"
    finally:
        exporter.stop()
