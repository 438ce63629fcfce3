"""A REAL Alertmanager (Debian prometheus-alertmanager, loopback, gossip off) receives surgewatch alerts.

Runtime ~4 s. The sink starts posting while Alertmanager is still down, so this also checks that the
outbox delivers once the receiver appears.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surgewatch.alerting.dispatch import Dispatcher, RetryPolicy
from surgewatch.alerting.outbox import Outbox
from surgewatch.alerting.sinks import AlertmanagerSink
from surgewatch.model import AlertEvent, Cause, Severity, fingerprint
from tests.support.servers import LOOPBACK, ServerProcess, free_port, http_get
from tests.support.servers import start_alertmanager as start_am

AM_CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
"""


@pytest.fixture
def am_port() -> int:
    return free_port()


def start_alertmanager(workdir: Path, port: int) -> ServerProcess:
    return start_am(workdir, AM_CONFIG, port)


@pytest.fixture
def alertmanager(tmp_path: Path, am_port: int) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.stop()


def am_alerts(url: str, alertname: str) -> list[dict[str, Any]]:
    got = http_get(f"{url}/api/v2/alerts?" + urllib.parse.urlencode({"filter": f'alertname="{alertname}"'}))
    if got is None or got[0] != 200:
        return []
    return list(json.loads(got[1]))


def event(series: str, kind: str, ts: float, started: float,
          labels: dict[str, str] | None = None) -> AlertEvent:
    return AlertEvent(ts=ts, event=kind, rule="cpu-high", severity=Severity.CRITICAL, series=series,
                      value=93.0,
                      expected=40.0, summary=f"{series} above 90%", explanation="not explained by traffic",
                      fingerprint=fingerprint("cpu-high", series), started=started, cause=Cause.UNEXPLAINED,
                      labels=labels or {"team": "ops"})


async def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("Alertmanager did not reach the expected state")
        await asyncio.sleep(0.1)


async def test_alertmanager_receives_firing_then_resolved_with_labels(
        tmp_path: Path, am_port: int, alertmanager: list[ServerProcess]) -> None:
    url = f"http://{LOOPBACK}:{am_port}"
    sink = AlertmanagerSink(url, {}, 2.0, resend_interval=1.0)
    (tmp_path / "state").mkdir()
    d = Dispatcher([sink], Outbox(tmp_path / "state"), retry=RetryPolicy(0.05, 2.0, 0.3, 0.0))
    d.start()
    now = time.time()
    web = "host:web-1/cpu.percent"
    camp = "campaign:spring-sale/visitors"
    d.submit([event(web, "firing", now, now - 30), event(camp, "firing", now, now - 30)])
    try:
        await asyncio.sleep(0.3)  # the outbox is retrying against a closed port
        assert d.backlog() and d.backlog()[0].pending == 2
        alertmanager.append(await asyncio.to_thread(start_alertmanager, tmp_path / "am", am_port))

        alerts = await wait_for(lambda: len(am_alerts(url, "cpu-high")) == 2 and am_alerts(url, "cpu-high"))
        by_series = {a["labels"]["series"]: a for a in alerts}
        assert by_series[web]["labels"] == {"alertname": "cpu-high", "severity": "critical", "series": web,
                                            "host": "web-1", "team": "ops"}
        assert by_series[camp]["labels"]["campaign"] == "spring-sale"
        assert by_series[web]["annotations"]["summary"] == f"{web} above 90%"
        assert by_series[web]["annotations"]["explanation"] == "not explained by traffic"
        assert by_series[web]["status"]["state"] == "active"
        first_ends = by_series[web]["endsAt"]

        # still firing: the periodic re-send pushes endsAt forward so Alertmanager does not time it out
        await wait_for(lambda: any(a["labels"]["series"] == web and a["endsAt"] != first_ends
                                   for a in am_alerts(url, "cpu-high")))

        d.submit([event(web, "resolved", time.time(), now - 30, {"team": "ops", "reason": "stale"})])
        left = await wait_for(lambda: [a["labels"]["series"] for a in am_alerts(url, "cpu-high")] == [camp]
                              and am_alerts(url, "cpu-high"))
        assert left[0]["status"]["state"] == "active"
        # the outbox records the delivery once the POST has returned, a moment after Alertmanager shows it
        await wait_for(lambda: [a.fingerprint for a in d.outbox.active(d._lanes[0].id)]
                       == [fingerprint("cpu-high", camp)])
    finally:
        await d.drain(2)
