"""Every sink's success and failure paths against loopback servers, files and real commands (runtime ~3 s)."""

from __future__ import annotations

import io
import json
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from surgewatch.alerting.outbox import event_key
from surgewatch.alerting.sinks import (
    AlertmanagerSink,
    BellSink,
    CommandSink,
    FileSink,
    SinkError,
    SlackSink,
    StdoutSink,
    WebhookSink,
    am_alert,
    am_chunks,
    build_sink,
    document,
    slack_message,
)
from surgewatch.config import ConfigError, parse_config
from surgewatch.model import AlertEvent, Cause, Severity, rfc3339
from tests.support.servers import CannedHttpServer, Route, SilentServer, closed_port


def ev(i: int, event: str = "firing", severity: Severity = Severity.WARNING, rule: str = "cpu-high",
       series: str | None = None, labels: dict[str, str] | None = None,
       ts: float | None = None) -> AlertEvent:
    return AlertEvent(ts=ts or 1_795_000_000.0 + i, event=event, rule=rule, severity=severity,
                      series=series or f"host:web-{i}/cpu.percent", value=91.5, expected=40.0,
                      summary=f"web-{i} CPU 91.5% above 90%", explanation="traffic only +4%",
                      fingerprint=f"fp{i:04d}", started=1_795_000_000.0, cause=Cause.UNEXPLAINED,
                      campaign=None, labels=labels or {})


class Recorder:
    """A route that records JSON bodies and answers statuses from a list (the last one repeats)."""

    def __init__(self, *statuses: int, body: bytes = b"") -> None:
        self.statuses = list(statuses) or [200]
        self.body = body
        self.bodies: list[object] = []
        self.headers: list[dict[str, str]] = []

    def __call__(self, handler: BaseHTTPRequestHandler) -> Route:
        self.bodies.append(json.loads(handler.body))  # type: ignore[attr-defined]
        self.headers.append(dict(handler.headers.items()))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return status, {"Content-Type": "text/plain"}, self.body


# ---------------------------------------------------------------------------------------------
# stdout and file


async def test_stdout_writes_the_public_json_plus_key() -> None:
    buf = io.StringIO()
    await StdoutSink(stream=buf).send([ev(1), ev(2)])
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert len(lines) == 2
    assert set(ev(1).to_json()) <= set(lines[0]) and lines[0]["key"] == event_key(ev(1))
    assert lines[0]["host"] == "web-1" and lines[0]["severity"] == "warning"


async def test_file_sink_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = FileSink(str(path))
    await sink.send([ev(1)])
    await sink.send([ev(2), ev(3)])
    docs = [json.loads(x) for x in path.read_text().splitlines()]
    assert [d["key"] for d in docs] == [event_key(ev(i)) for i in (1, 2, 3)]


@pytest.mark.parametrize("where", ["missing/alerts.jsonl", "."])
async def test_file_sink_that_cannot_write_raises_one_line(tmp_path: Path, where: str) -> None:
    sink = FileSink(str(tmp_path / where))
    with pytest.raises(SinkError) as info:
        await sink.send([ev(1)])
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)
    assert info.value.delivered == 0


# ---------------------------------------------------------------------------------------------
# webhook


async def test_webhook_posts_each_event_with_its_key() -> None:
    rec = Recorder(200, 204)
    with CannedHttpServer({"/hook": rec}) as srv:
        sink = WebhookSink(srv.url + "/hook", {"Authorization": "Bearer t"}, 2.0)
        await sink.send([ev(1), ev(2)])
        await sink.close()
    assert rec.bodies == [document(ev(1)), document(ev(2))]
    assert rec.headers[0]["Idempotency-Key"] == event_key(ev(1))
    assert rec.headers[0]["Authorization"] == "Bearer t"


async def test_webhook_error_status_stops_at_the_refused_event() -> None:
    rec = Recorder(200, 500, body=b"database is down")
    with CannedHttpServer({"/hook": rec}) as srv:
        sink = WebhookSink(srv.url + "/hook", {}, 2.0)
        with pytest.raises(SinkError) as info:
            await sink.send([ev(1), ev(2), ev(3)])
        await sink.close()
    assert info.value.delivered == 1 and len(rec.bodies) == 2
    assert "HTTP 500 database is down" in str(info.value)


async def test_webhook_refused_connection_names_host_but_not_secret_path() -> None:
    with closed_port() as port:
        sink = WebhookSink(f"http://127.0.0.1:{port}/services/T0/SECRET", {}, 2.0)
        with pytest.raises(SinkError) as info:
            await sink.send([ev(1)])
        await sink.close()
    assert f"webhook 127.0.0.1:{port}" in str(info.value) and "SECRET" not in str(info.value)


async def test_webhook_that_never_answers_times_out() -> None:
    with SilentServer() as srv:
        sink = WebhookSink(srv.url + "/hook", {}, 0.2)
        with pytest.raises(SinkError, match=r"no answer within 0\.2s"):
            await sink.send([ev(1)])
        await sink.close()


# ---------------------------------------------------------------------------------------------
# Slack


def test_slack_message_is_readable_and_coloured_by_severity() -> None:
    msg = slack_message([ev(1, severity=Severity.CRITICAL)])
    assert msg["text"] == "FIRING cpu-high (critical): web-1 CPU 91.5% above 90%"
    assert msg["attachments"][0]["color"] == "danger"
    assert slack_message([ev(1, severity=Severity.WARNING)])["attachments"][0]["color"] == "warning"
    assert slack_message([ev(1, event="resolved")])["attachments"][0]["color"] == "good"


def test_slack_text_escapes_control_characters() -> None:
    e = AlertEvent(ts=1.0, event="firing", rule="r", severity=Severity.INFO, series="host:a/x", value=1.0,
                   expected=None, summary="latency > 2s & <rising>", explanation="", fingerprint="f",
                   started=1.0)
    msg = slack_message([e])
    assert msg["text"] == "FIRING r (info): latency &gt; 2s &amp; &lt;rising&gt;"
    assert "&gt;" in msg["attachments"][0]["text"]


def test_slack_groups_many_series_of_one_rule_into_one_message() -> None:
    msg = slack_message([ev(i) for i in range(30)])
    assert msg["text"].startswith("FIRING cpu-high (warning) on 30 series: ")
    assert msg["text"].endswith("and 27 more")
    assert "… and 10 more" in msg["attachments"][0]["text"]


async def test_slack_sends_one_message_per_rule_run_and_accepts_only_200() -> None:
    rec = Recorder(200)
    with CannedHttpServer({"/services/x": rec}) as srv:
        sink = SlackSink(srv.url + "/services/x", {}, 2.0)
        await sink.send([ev(1), ev(2), ev(3, rule="mem-high"), ev(4)])
        rec.statuses = [204]
        with pytest.raises(SinkError, match="HTTP 204") as info:
            await sink.send([ev(5)])
        await sink.close()
    assert len(rec.bodies) == 4  # cpu-high x2, mem-high, cpu-high, then the refused one
    assert info.value.delivered == 0


async def test_slack_error_body_is_reported_without_the_webhook_url() -> None:
    rec = Recorder(200, 404, body=b"channel_not_found")
    with CannedHttpServer({"/services/T0/B0/SECRET": rec}) as srv:
        sink = SlackSink(srv.url + "/services/T0/B0/SECRET", {}, 2.0)
        with pytest.raises(SinkError) as info:
            await sink.send([ev(1), ev(2, rule="other")])
        await sink.close()
    assert info.value.delivered == 1
    assert "channel_not_found" in str(info.value) and "SECRET" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# Alertmanager payload (the real server is in test_alertmanager_sink.py)


def test_alertmanager_alert_has_stable_labels_and_annotations() -> None:
    fire = am_alert(ev(1, labels={"team": "ops", "bad-name": "x"}), now=1_795_000_010.0, resend_interval=60)
    assert fire["labels"] == {"alertname": "cpu-high", "severity": "warning",
                              "series": "host:web-1/cpu.percent", "host": "web-1", "team": "ops",
                              "bad_name": "x"}
    assert fire["annotations"]["summary"] == "web-1 CPU 91.5% above 90%"
    assert fire["annotations"]["explanation"] == "traffic only +4%"
    assert fire["startsAt"] == "2026-11-18T11:06:40.000Z"
    assert fire["endsAt"] == rfc3339(1_795_000_010.0 + 4 * 60)  # now + 4 x resend interval
    gone = am_alert(ev(1, event="resolved", labels={"team": "ops", "bad-name": "x", "reason": "stale"},
                       ts=1_795_000_100.0), now=1_795_000_200.0)
    assert gone["labels"] == fire["labels"]  # same alert for Alertmanager
    assert gone["annotations"]["reason"] == "stale"
    assert gone["endsAt"] == rfc3339(1_795_000_100.0)  # when it resolved


def test_campaign_series_get_a_campaign_label() -> None:
    a = am_alert(ev(1, series="campaign:spring-sale/visitors"), now=0.0)
    assert a["labels"]["campaign"] == "spring-sale" and "host" not in a["labels"]


def test_alertmanager_batches_never_hold_one_alert_twice() -> None:
    chunks = list(am_chunks([ev(1), ev(2), ev(1, event="resolved"), ev(3)]))
    assert [[e.fingerprint for e in c] for c in chunks] == [["fp0001", "fp0002"], ["fp0001", "fp0003"]]


async def test_alertmanager_sink_posts_an_array_to_api_v2() -> None:
    rec = Recorder(200, 400, body=b'{"message":"bad alert"}')
    with CannedHttpServer({"/api/v2/alerts": rec}) as srv:
        sink = AlertmanagerSink(srv.url + "/", {}, 2.0)
        await sink.send([ev(1), ev(2)])
        with pytest.raises(SinkError, match="HTTP 400"):
            await sink.send([ev(3)])
        await sink.close()
    assert isinstance(rec.bodies[0], list) and len(rec.bodies[0]) == 2


# ---------------------------------------------------------------------------------------------
# command and bell


async def test_command_gets_the_event_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "got.jsonl"
    code = f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read())"
    await CommandSink([sys.executable, "-c", code], 5.0).send([ev(1), ev(2)])
    docs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [d["key"] for d in docs] == [event_key(ev(1)), event_key(ev(2))]


async def test_command_non_zero_exit_is_a_failure_with_its_stderr(tmp_path: Path) -> None:
    code = ("import sys, json; d = json.load(sys.stdin); "
            "sys.exit(0) if d['host'] == 'web-1' else sys.exit('pager unreachable')")
    with pytest.raises(SinkError) as info:
        await CommandSink([sys.executable, "-c", code], 5.0).send([ev(1), ev(2)])
    assert info.value.delivered == 1
    assert "exit status 1: pager unreachable" in str(info.value)


async def test_command_that_hangs_is_killed_after_its_timeout() -> None:
    t0 = time.monotonic()
    with pytest.raises(SinkError, match=r"no exit within 0.3s \(killed\)"):
        await CommandSink([sys.executable, "-c", "import time; time.sleep(30)"], 0.3).send([ev(1)])
    assert time.monotonic() - t0 < 10


async def test_missing_command_is_a_failure() -> None:
    with pytest.raises(SinkError, match="cannot start"):
        await CommandSink(["/nonexistent/notify"], 1.0).send([ev(1)])


async def test_bell_without_listeners_accepts_and_a_broken_listener_is_contained() -> None:
    bell = BellSink()
    await bell.send([ev(1)])
    heard: list[AlertEvent] = []

    def broken(_events: object) -> None:
        raise RuntimeError("boom")

    bell.subscribe(broken)
    off = bell.subscribe(heard.extend)
    await bell.send([ev(2)])
    off()
    await bell.send([ev(3)])
    assert heard == [ev(2)]


# ---------------------------------------------------------------------------------------------
# config → sinks


def test_every_sink_kind_builds_from_config(tmp_path: Path) -> None:
    cfg = parse_config(f"""
[[sink]]
kind = "stdout"
[[sink]]
kind = "file"
path = "{tmp_path}/a.jsonl"
[[sink]]
kind = "webhook"
url = "http://127.0.0.1:9/hook"
[[sink]]
kind = "slack"
url = "${{SLACK_URL}}"
min_severity = "warning"
[[sink]]
kind = "alertmanager"
url = "http://127.0.0.1:9093"
[[sink]]
kind = "command"
command = ["notify-send", "surgewatch"]
timeout = "2s"
[[sink]]
kind = "bell"
min_severity = "critical"
[export]
listen = "127.0.0.1:9273"
""", environ={"SLACK_URL": "https://hooks.slack.com/services/T/B/X"})
    sinks = [build_sink(s) for s in cfg.sinks]
    assert [s.kind for s in sinks] == ["stdout", "file", "webhook", "slack", "alertmanager", "command",
                                       "bell"]
    assert sinks[3].min_severity == Severity.WARNING and sinks[3].name == "slack hooks.slack.com"
    assert isinstance(sinks[4], AlertmanagerSink) and sinks[4].url == "http://127.0.0.1:9093/api/v2/alerts"
    assert isinstance(sinks[5], CommandSink) and sinks[5].timeout == 2.0


@pytest.mark.parametrize(("text", "message"), [
    ('[[sink]]\nkind = "webhook"\nurl = "ftp://x"\n',
     'config.toml:3: sink "webhook": url must start with http'),
    ('[[sink]]\nkind = "file"\n', "path is required"),
    ('[export]\nlisten = "9273"\n', "config.toml:2: [export] listen must be HOST:PORT"),
    ('[export]\nlisten = "127.0.0.1:99999"\n', "port must be 0-65535"),
])
def test_bad_sink_or_export_config_is_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert message in str(info.value)
