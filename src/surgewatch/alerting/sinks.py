"""Where alert events go: each sink turns a batch of events into deliveries (lines, POSTs, commands).

A sink delivers a batch in order and raises SinkError at the first delivery the receiver did not
accept, saying how many events before it went through, so the outbox retries from exactly there.
Error messages name the sink by kind and host only: webhook URLs are often secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TextIO
from urllib.parse import urlsplit

from ..config import SinkConfig, TlsConfig
from ..model import AlertEvent, Severity, rfc3339, split_series
from .outbox import event_key

log = logging.getLogger("surgewatch.alerting")

# How often Alertmanager gets the still-firing alerts again, and how far ahead their endsAt lies
# (Prometheus uses the same 4x factor): if surgewatch dies, its alerts time out on their own.
AM_RESEND_INTERVAL = 60.0
AM_ENDS_AT_FACTOR = 4
SLACK_MAX_LINES = 20


if TYPE_CHECKING:  # httpx is imported when an HTTP sink first sends (the daemon may have none)
    import httpx


class SinkError(Exception):
    """A delivery failed (one line, no secrets); `delivered` events of the batch went through first."""

    def __init__(self, message: str, delivered: int = 0) -> None:
        super().__init__(message)
        self.delivered = delivered


class Sink(Protocol):
    """A destination for alert events."""

    kind: str
    name: str
    min_severity: Severity
    resend_interval: float | None

    async def send(self, events: Sequence[AlertEvent]) -> None:
        """Deliver events in order; raise SinkError if the receiver did not accept them all."""
        ...

    async def resend(self, active: Sequence[AlertEvent]) -> None:
        """Re-send still-firing alerts (only sinks with a resend_interval are asked)."""
        ...

    async def close(self) -> None: ...


def document(e: AlertEvent) -> dict[str, Any]:
    """The public JSON object of an event (AlertEvent.to_json()) plus its stable de-duplication `key`."""
    doc = e.to_json()
    doc["key"] = event_key(e)
    return doc


def _line(e: AlertEvent) -> str:
    return json.dumps(document(e), ensure_ascii=False) + "\n"


class _BaseSink:
    """Shared defaults: no periodic re-send, nothing to close."""

    kind = "sink"
    resend_interval: float | None = None

    def __init__(self, min_severity: Severity = Severity.INFO) -> None:
        self.min_severity = min_severity
        self.name = self.kind

    async def resend(self, active: Sequence[AlertEvent]) -> None:
        return None

    async def close(self) -> None:
        return None


class StdoutSink(_BaseSink):
    """JSON lines on stdout (the default in --headless)."""

    kind = "stdout"

    def __init__(self, min_severity: Severity = Severity.INFO, stream: TextIO | None = None) -> None:
        super().__init__(min_severity)
        self.stream = stream

    async def send(self, events: Sequence[AlertEvent]) -> None:
        out = self.stream or sys.stdout
        try:
            out.write("".join(_line(e) for e in events))
            out.flush()
        except (OSError, ValueError) as exc:
            raise SinkError(f"stdout: cannot write: {exc}") from None


class FileSink(_BaseSink):
    """JSON lines appended to a file and fsync'd before the events count as delivered."""

    kind = "file"

    def __init__(self, path: str, min_severity: Severity = Severity.INFO) -> None:
        super().__init__(min_severity)
        self.path = os.path.expanduser(path)
        self.name = f"file {self.path}"

    async def send(self, events: Sequence[AlertEvent]) -> None:
        data = "".join(_line(e) for e in events).encode()
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot write: {exc.strerror or exc}") from None

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)


class BellSink(_BaseSink):
    """The terminal bell: hands events to whoever subscribed (the dashboard); headless, it just accepts."""

    kind = "bell"

    def __init__(self, min_severity: Severity = Severity.INFO) -> None:
        super().__init__(min_severity)
        self._listeners: list[Callable[[Sequence[AlertEvent]], None]] = []

    def subscribe(self, listener: Callable[[Sequence[AlertEvent]], None]) -> Callable[[], None]:
        """Call `listener(events)` for every delivered batch; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    async def send(self, events: Sequence[AlertEvent]) -> None:
        for listener in list(self._listeners):
            try:
                listener(events)
            except Exception as exc:  # a broken listener must not hold up the outbox
                log.error("bell listener failed: %s", exc)


class CommandSink(_BaseSink):
    """Runs a command per event with the event's JSON on stdin; exit status 0 means delivered."""

    kind = "command"

    def __init__(self, argv: Sequence[str], timeout: float, min_severity: Severity = Severity.INFO) -> None:
        super().__init__(min_severity)
        self.argv = list(argv)
        self.timeout = timeout
        self.name = f"command {os.path.basename(self.argv[0]) if self.argv else '?'}"

    async def send(self, events: Sequence[AlertEvent]) -> None:
        for i, e in enumerate(events):
            try:
                await self._run(e)
            except SinkError as exc:
                raise SinkError(str(exc), delivered=i) from None

    async def _run(self, e: AlertEvent) -> None:
        env = dict(os.environ, SURGEWATCH_EVENT=e.event, SURGEWATCH_RULE=e.rule,
                   SURGEWATCH_SEVERITY=str(e.severity), SURGEWATCH_SERIES=e.series,
                   SURGEWATCH_SUMMARY=e.summary, SURGEWATCH_KEY=event_key(e))
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        except OSError as exc:
            raise SinkError(f"{self.name}: cannot start: {exc.strerror or exc}") from None
        try:
            _out, err = await asyncio.wait_for(proc.communicate(_line(e).encode()), self.timeout)
        except TimeoutError:
            self._kill(proc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5.0)  # reap it, so no zombie or open pipe is left
            raise SinkError(f"{self.name}: no exit within {self.timeout:g}s (killed)") from None
        except BaseException:
            self._kill(proc)
            raise
        if proc.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            tail = f": {lines[-1][:200]}" if lines else ""
            raise SinkError(f"{self.name}: exit status {proc.returncode}{tail}")

    @staticmethod
    def _kill(proc: asyncio.subprocess.Process) -> None:
        """Kill the command and anything it started (it runs in its own session)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


class _HttpSink(_BaseSink):
    """One httpx.AsyncClient per sink (aiohttp's wire, this sink's TLS), created in the running loop on first use."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float,
                 min_severity: Severity = Severity.INFO, tls: TlsConfig | None = None) -> None:
        super().__init__(min_severity)
        self.url = url
        self.tls = tls
        self.headers = dict(headers)
        self.timeout = timeout
        host = urlsplit(url).hostname or "?"
        port = urlsplit(url).port
        self.name = f"{self.kind} {host}{f':{port}' if port else ''}"
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        from ..httpclient import new_client  # imports aiohttp: only when an HTTP sink first sends

        if self._client is None:
            self._client = new_client(max_connections=2, tls=self.tls, timeout=self.timeout, headers=self.headers,
                                      proxies_from_env=True)  # as httpx's default client did for sinks
        return self._client

    async def _post(self, url: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        import httpx

        from ..httpclient import TlsError, connect_error_message

        try:
            return await self._http().post(url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise SinkError(f"{self.name}: no answer within {self.timeout:g}s") from None
        except TlsError as exc:
            raise SinkError(f"{self.name}: {exc}") from None
        except httpx.ConnectError as exc:
            raise SinkError(f"{self.name}: {connect_error_message(exc, url)}") from None
        except httpx.HTTPError as exc:
            text = str(exc).replace(url, "<url>") or type(exc).__name__
            raise SinkError(f"{self.name}: {text}") from None

    def _refused(self, resp: httpx.Response) -> str:
        body = " ".join(resp.text.split())[:200] if resp.content else ""
        return f"{self.name}: HTTP {resp.status_code}{f' {body}' if body else ''}"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class WebhookSink(_HttpSink):
    """A generic JSON POST per event: the public event JSON plus its stable `key`; any 2xx is success."""

    kind = "webhook"

    async def send(self, events: Sequence[AlertEvent]) -> None:
        for i, e in enumerate(events):
            doc = document(e)
            try:
                resp = await self._post(self.url, doc, {"Idempotency-Key": doc["key"]})
            except SinkError as exc:
                raise SinkError(str(exc), delivered=i) from None
            if not 200 <= resp.status_code < 300:
                raise SinkError(self._refused(resp), delivered=i)


SLACK_COLOURS = {Severity.CRITICAL: "danger", Severity.WARNING: "warning", Severity.INFO: "#439FE0"}


def _slack_escape(text: str) -> str:
    """Escape the three characters Slack treats as control sequences in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(group: Sequence[AlertEvent]) -> dict[str, Any]:
    """A Slack incoming-webhook body for events of one rule and one transition."""
    body = _slack_body(group)
    att = body["attachments"][0]
    body["text"] = att["fallback"] = _slack_escape(body["text"])
    att["text"] = _slack_escape(att["text"])
    return body


def _slack_body(group: Sequence[AlertEvent]) -> dict[str, Any]:
    first = group[0]
    resolved = first.event == "resolved"
    head = f"{'RESOLVED' if resolved else 'FIRING'} {first.rule} ({first.severity})"
    if len(group) == 1:
        text = f"{head}: {first.summary}"
    else:
        text = f"{head} on {len(group)} series: " + "; ".join(e.summary for e in group[:3])
        if len(group) > 3:
            text += f"; and {len(group) - 3} more"
    lines = [f"• {e.summary}" + (f" — {e.explanation}" if e.explanation and not resolved else "")
             for e in group[:SLACK_MAX_LINES]]
    if len(group) > SLACK_MAX_LINES:
        lines.append(f"… and {len(group) - SLACK_MAX_LINES} more")
    fields = [{"title": "Severity", "value": str(first.severity), "short": True},
              {"title": "Series", "value": first.series if len(group) == 1 else f"{len(group)} series",
               "short": True}]
    if first.campaign:
        fields.append({"title": "Campaign", "value": first.campaign, "short": True})
    return {
        "text": text,
        "attachments": [{
            "color": "good" if resolved else SLACK_COLOURS[first.severity],
            "fallback": text,
            "title": f"{first.rule} ({'resolved' if resolved else 'firing'})",
            "text": "\n".join(lines),
            "fields": fields,
            "footer": "surgewatch · key " + event_key(first) + (" …" if len(group) > 1 else ""),
            "ts": int(first.ts),
        }],
    }


def runs(events: Sequence[AlertEvent]) -> Iterator[list[AlertEvent]]:
    """Split events into consecutive runs of the same rule and transition (one Slack message each)."""
    run: list[AlertEvent] = []
    for e in events:
        if run and (run[0].rule, run[0].event, run[0].severity) != (e.rule, e.event, e.severity):
            yield run
            run = []
        run.append(e)
    if run:
        yield run


class SlackSink(_HttpSink):
    """A Slack incoming webhook: one readable message per rule and transition; only 200 is success."""

    kind = "slack"

    async def send(self, events: Sequence[AlertEvent]) -> None:
        done = 0
        for group in runs(events):
            try:
                resp = await self._post(self.url, slack_message(group))
            except SinkError as exc:
                raise SinkError(str(exc), delivered=done) from None
            if resp.status_code != 200:
                raise SinkError(self._refused(resp), delivered=done)
            done += len(group)


# Labels that must stay the same between firing and resolved: Alertmanager identifies alerts by them.
_VOLATILE_LABELS = {"reason"}


def _label_name(name: str) -> str:
    clean = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in name)
    return "_" + clean if not clean or clean[0].isdigit() else clean


def am_alert(e: AlertEvent, now: float, resend_interval: float = AM_RESEND_INTERVAL) -> dict[str, Any]:
    """One Alertmanager API v2 alert: stable labels, annotations, startsAt and endsAt."""
    labels: dict[str, str] = {}
    for k, v in e.labels.items():
        if k not in _VOLATILE_LABELS and v and not k.startswith("__"):
            labels[_label_name(k)] = v
    kind, name, _metric = split_series(e.series)
    if kind in ("host", "campaign", "traffic", "probe") and name:
        labels[kind] = name
    labels.update(alertname=e.rule, severity=str(e.severity), series=e.series)
    if e.demo:
        labels["demo"] = "true"
    annotations = {"summary": e.summary, "key": event_key(e)}
    if e.explanation:
        annotations["explanation"] = e.explanation
    doc = e.to_json()
    for k in ("value", "expected", "cause", "campaign"):
        if doc.get(k) is not None:
            annotations[k] = str(doc[k])
    if e.labels.get("reason"):
        annotations["reason"] = e.labels["reason"]
    if e.event == "resolved":
        ends = max(e.ts, e.started + 0.001)
    else:
        ends = max(now, e.started) + AM_ENDS_AT_FACTOR * resend_interval
    return {"labels": labels, "annotations": annotations,
            "startsAt": rfc3339(e.started), "endsAt": rfc3339(ends)}


def am_chunks(events: Sequence[AlertEvent]) -> Iterator[list[AlertEvent]]:
    """Split events so no alert appears twice in one POST (its transitions then arrive in order)."""
    chunk: list[AlertEvent] = []
    seen: set[str] = set()
    for e in events:
        if e.fingerprint in seen:
            yield chunk
            chunk, seen = [], set()
        chunk.append(e)
        seen.add(e.fingerprint)
    if chunk:
        yield chunk


class AlertmanagerSink(_HttpSink):
    """Alertmanager API v2: POSTs arrays to /api/v2/alerts and re-sends firing alerts periodically."""

    kind = "alertmanager"

    def __init__(self, url: str, headers: dict[str, str], timeout: float,
                 min_severity: Severity = Severity.INFO, resend_interval: float = AM_RESEND_INTERVAL,
                 clock: Callable[[], float] = time.time, tls: TlsConfig | None = None) -> None:
        base = url.rstrip("/")
        if not base.endswith("/api/v2/alerts"):
            base += "/api/v2/alerts"
        super().__init__(base, headers, timeout, min_severity, tls=tls)
        self.resend_interval = resend_interval
        self.clock = clock

    async def send(self, events: Sequence[AlertEvent]) -> None:
        done = 0
        for chunk in am_chunks(events):
            await self._post_alerts(chunk, done)
            done += len(chunk)

    async def resend(self, active: Sequence[AlertEvent]) -> None:
        for i in range(0, len(active), 500):
            await self._post_alerts(active[i:i + 500], 0)

    async def _post_alerts(self, events: Sequence[AlertEvent], done: int) -> None:
        now = self.clock()
        body = [am_alert(e, now, self.resend_interval or AM_RESEND_INTERVAL) for e in events]
        try:
            resp = await self._post(self.url, body)
        except SinkError as exc:
            raise SinkError(str(exc), delivered=done) from None
        if not 200 <= resp.status_code < 300:
            raise SinkError(self._refused(resp), delivered=done)


def build_sink(cfg: SinkConfig) -> Sink:
    """The sink object for one [[sink]] entry (the config has already been validated)."""
    headers = dict(cfg.headers)
    if cfg.kind == "stdout":
        return StdoutSink(cfg.min_severity)
    if cfg.kind == "file":
        return FileSink(cfg.path or "", cfg.min_severity)
    if cfg.kind == "bell":
        return BellSink(cfg.min_severity)
    if cfg.kind == "command":
        return CommandSink(cfg.command, cfg.timeout, cfg.min_severity)
    if cfg.kind == "webhook":
        return WebhookSink(cfg.url or "", headers, cfg.timeout, cfg.min_severity, tls=cfg.tls)
    if cfg.kind == "slack":
        return SlackSink(cfg.url or "", headers, cfg.timeout, cfg.min_severity, tls=cfg.tls)
    if cfg.kind == "alertmanager":
        return AlertmanagerSink(cfg.url or "", headers, cfg.timeout, cfg.min_severity, tls=cfg.tls)
    raise SinkError(f"sink kind {cfg.kind!r} is not available")
