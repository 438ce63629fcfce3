"""High availability the Prometheus way: two `surgewatch --headless` daemons with the same config send to one
REAL Alertmanager (Debian prometheus-alertmanager, loopback, gossip off), which de-duplicates them.

Each alert must reach the receiver (a loopback webhook) once when firing and once when resolved, because both
daemons send it with the same labels: nothing instance-specific (host name, pid, start time) is a label.
Each daemon keeps its own state (outbox, silences) in its own state directory. Runtime: about 10 s.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_headless import Daemon, Stats
from tests.support.fakes import FakeServer, json_route
from tests.support.servers import ServerProcess, http_get, start_alertmanager

AM_CONFIG = """\
route:
  receiver: hook
  group_by: [alertname, series]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {hook}
        send_resolved: true
"""


@pytest.fixture
def stats() -> Iterator[Stats]:
    s = Stats()
    yield s
    s.close()


@pytest.fixture
def receiver() -> Iterator[FakeServer]:
    with FakeServer({"/hook": lambda seen: json_route({})}) as hook:
        yield hook


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: FakeServer) -> Iterator[ServerProcess]:
    am = start_alertmanager(tmp_path / "am", AM_CONFIG.format(hook=f"{receiver.url}/hook"))
    yield am
    am.stop()


def notifications(receiver: FakeServer) -> list[dict[str, Any]]:
    return [json.loads(seen.body) for seen in list(receiver.requests) if seen.path == "/hook"]


def am_alerts(url: str) -> list[dict[str, Any]]:
    got = http_get(f"{url}/api/v2/alerts?" + urllib.parse.urlencode({"filter": 'alertname="api-busy"'}))
    return list(json.loads(got[1])) if got is not None and got[0] == 200 else []


def wait(check: Any, what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen")


def pair_config(tmp_path: Path, stats: Stats, am_url: str) -> list[Path]:
    """One config, byte for byte, in two directories: each daemon gets its own state dir (XDG_STATE_HOME)."""
    first = tmp_path / "a" / "surgewatch.toml"
    first.parent.mkdir()
    first.write_text(f"""
[monitor]
interval = "200ms"

[[traffic]]
name = "api"
source = "json"
url = "{stats.url}"
value = "v"

[[rule]]
name = "api-busy"
series = "traffic:api/visitors"
above = 100
severity = "critical"
labels = {{ team = "web" }}

[[sink]]
kind = "stdout"

[[sink]]
kind = "alertmanager"
url = "{am_url}"
""")
    second = tmp_path / "b" / "surgewatch.toml"
    second.parent.mkdir()
    shutil.copy(first, second)
    return [first, second]


def test_two_daemons_with_one_config_reach_the_receiver_once_per_alert(
        tmp_path: Path, stats: Stats, receiver: FakeServer, alertmanager: ServerProcess) -> None:
    daemons = [Daemon(path) for path in pair_config(tmp_path, stats, alertmanager.url)]
    try:
        for d in daemons:
            d.wait_for(lambda d=d: any("started" in line for line in d.log), "start")
        stats.value = 500.0
        fired = [d.wait_for(lambda d=d: d.events("firing"), "firing line")[0] for d in daemons]
        assert fired[0]["fingerprint"] == fired[1]["fingerprint"]  # both daemons raised the same alert
        (alert,) = wait(lambda: am_alerts(alertmanager.url), "the alert in Alertmanager")
        assert alert["labels"] == {"alertname": "api-busy", "severity": "critical", "series": "traffic:api/visitors",
                                   "traffic": "api", "team": "web"}  # no host name, pid or start time
        wait(lambda: notifications(receiver), "a notification at the receiver")
        time.sleep(3.0)  # several group intervals: a duplicate would have been sent by now
        (firing,) = notifications(receiver)
        assert firing["status"] == "firing" and len(firing["alerts"]) == 1

        stats.value = 10.0
        for d in daemons:
            d.wait_for(lambda d=d: d.events("resolved"), "resolved line")
        wait(lambda: len(notifications(receiver)) > 1, "the resolved notification")
        time.sleep(2.0)
        sent = notifications(receiver)
        assert [n["status"] for n in sent] == ["firing", "resolved"]
        assert sent[1]["alerts"][0]["labels"] == alert["labels"]
        # each daemon keeps its own outbox: nothing that needs a cluster
        assert {str(p) for p in (tmp_path / "a" / "xdg").rglob("*") if p.is_file()} != set()
        assert {str(p) for p in (tmp_path / "b" / "xdg").rglob("*") if p.is_file()} != set()
    finally:
        for d in daemons:
            d.kill()

