"""Where alert events go: each sink turns a batch of events into deliveries (lines, POSTs, commands).

A sink delivers a batch in order and raises SinkError at the first delivery the receiver did not
accept, saying how many events before it went through, so the outbox retries from exactly there, and
whether the refusal is permanent (a 4xx about the event, an event the sink cannot encode). HTTP sinks
never take proxies from the environment. Error messages name the sink by kind and host only: webhook
URLs are often secrets.
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

from ..clock import elapsed_clock
from ..model import AlertEvent, Severity, rfc3339, split_series
from ..plugins import TlsConfig
from .outbox import event_key

log = logging.getLogger("surgewatch.alerting")

# How often Alertmanager gets the still-firing alerts again, and how far ahead their endsAt lies
# (Prometheus uses the same 4x factor): if surgewatch dies, its alerts time out on their own.
AM_RESEND_INTERVAL = 60.0
AM_ENDS_AT_FACTOR = 4
SLACK_MAX_LINES = 20


if TYPE_CHECKING:  # httpx is imported when an HTTP sink first sends (the daemon may have none)
    import httpx

    from .sink_kinds import SinkConfig


# HTTP statuses that refuse the event itself, for good: retrying the same body cannot succeed, so the
# dispatcher dead-letters it after a few attempts. Not 408/425/429 (come back later) and not
# 401/403/407 (credentials: once fixed, every waiting event goes through).
_RETRYABLE_4XX = frozenset({401, 403, 407, 408, 425, 429})


def permanent_status(status: int) -> bool:
    """Whether an HTTP answer refuses an event permanently (a 4xx that is not about time or credentials)."""
    return 400 <= status < 500 and status not in _RETRYABLE_4XX


class SinkError(Exception):
    """A delivery failed (one line, no secrets); `delivered` events of the batch went through first.

    `permanent` says the refused event can never be delivered as it is (an HTTP 400/404/410/422, an
    event the sink cannot encode): the dispatcher dead-letters it after a few attempts instead of
    retrying it until it expires while it blocks the events behind it."""

    def __init__(self, message: str, delivered: int = 0, permanent: bool = False) -> None:
        super().__init__(" ".join(message.split()))
        self.delivered = delivered
        self.permanent = permanent


def _unexpected(name: str, exc: Exception, delivered: int) -> SinkError:
    """A SinkError for an exception a sink did not expect while handling one event (a poison event)."""
    return SinkError(f"{name}: {type(exc).__name__}: {exc}", delivered=delivered, permanent=True)


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


def _utf8(text: str) -> str:
    """`text` as it can be written as UTF-8: a lone surrogate (JSON "\\ud800" in a remote label) becomes "?"."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode()
    return text


def _line(e: AlertEvent) -> str:
    return _utf8(json.dumps(document(e), ensure_ascii=False)) + "\n"


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
                raise SinkError(str(exc), delivered=i, permanent=exc.permanent) from None
            except Exception as exc:  # a poison event: report it as this event's, never as the batch's
                raise _unexpected(self.name, exc, i) from None

    async def _run(self, e: AlertEvent) -> None:
        fields = dict(SURGEWATCH_EVENT=e.event, SURGEWATCH_RULE=e.rule, SURGEWATCH_SEVERITY=str(e.severity),
                      SURGEWATCH_SERIES=e.series, SURGEWATCH_SUMMARY=e.summary, SURGEWATCH_KEY=event_key(e))
        # A NUL byte (e.g. from a remote label) cannot be passed in an environment; the JSON on stdin keeps it.
        env = dict(os.environ, **{k: _utf8(v).replace("\x00", "") for k, v in fields.items()})
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
                 min_severity: Severity = Severity.INFO, tls: TlsConfig | None = None,
                 proxy: str | None = None) -> None:
        super().__init__(min_severity)
        self.url = url
        self.tls = tls
        self.headers = dict(headers)
        self.timeout = timeout
        self.proxy = proxy
        host = urlsplit(url).hostname or "?"
        port = urlsplit(url).port
        self.name = f"{self.kind} {host}{f':{port}' if port else ''}"
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        from ..httpclient import new_client  # imports aiohttp: only when an HTTP sink first sends

        if self._client is None:
            # As for sources, HTTP(S)_PROXY from the environment is ignored: a sink goes through a proxy
            # only when its own `proxy` key says so.
            self._client = new_client(max_connections=2, tls=self.tls, timeout=self.timeout, headers=self.headers,
                                      proxy=self.proxy)
        return self._client

    async def _post(self, url: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        import httpx

        from ..httpclient import TlsError, connect_error_message

        content = _utf8(json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)).encode()
        try:
            return await self._http().post(url, content=content,
                                           headers={"Content-Type": "application/json", **(headers or {})})
        except httpx.TimeoutException:
            raise SinkError(f"{self.name}: no answer within {self.timeout:g}s") from None
        except TlsError as exc:
            raise SinkError(f"{self.name}: {exc}") from None
        except httpx.ConnectError as exc:
            raise SinkError(f"{self.name}: {connect_error_message(exc, url)}") from None
        except httpx.HTTPError as exc:
            text = str(exc).replace(url, "<url>") or type(exc).__name__
            raise SinkError(f"{self.name}: {text}") from None

    def _refused(self, resp: httpx.Response, delivered: int) -> SinkError:
        """The error for a non-success answer; a permanent 4xx marks the event as undeliverable."""
        try:
            body = " ".join(resp.text.split())[:200] if resp.content else ""
        except Exception:  # an undecodable body must not hide the status
            body = ""
        return SinkError(f"{self.name}: HTTP {resp.status_code}{f' {body}' if body else ''}", delivered=delivered,
                         permanent=permanent_status(resp.status_code))

    async def _post_one(self, url: str, body: Any, delivered: int,
                        headers: dict[str, str] | None = None) -> httpx.Response:
        """_post() for the event(s) after `delivered`: any failure says how many went through before."""
        try:
            return await self._post(url, body, headers)
        except SinkError as exc:
            raise SinkError(str(exc), delivered=delivered, permanent=exc.permanent) from None
        except Exception as exc:  # e.g. a body that cannot be encoded: a poison event
            raise _unexpected(self.name, exc, delivered) from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class WebhookSink(_HttpSink):
    """A generic JSON POST per event: the public event JSON plus its stable `key`; any 2xx is success."""

    kind = "webhook"

    async def send(self, events: Sequence[AlertEvent]) -> None:
        for i, e in enumerate(events):
            try:
                doc = document(e)
            except Exception as exc:
                raise _unexpected(self.name, exc, i) from None
            resp = await self._post_one(self.url, doc, i, {"Idempotency-Key": doc["key"]})
            if not 200 <= resp.status_code < 300:
                raise self._refused(resp, i)


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
                await self._post_group(group, done)
            except SinkError as exc:
                if not exc.permanent or len(group) == 1:
                    raise
                for e in group:  # one message refused for good: find the event that Slack refuses
                    await self._post_group([e], done)
                    done += 1
                continue
            done += len(group)

    async def _post_group(self, group: Sequence[AlertEvent], done: int) -> None:
        try:
            body = slack_message(group)
        except Exception as exc:
            raise _unexpected(self.name, exc, done) from None
        resp = await self._post_one(self.url, body, done)
        if resp.status_code != 200:
            raise self._refused(resp, done)


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


class SteadyWallClock:
    """Wall-clock time that never goes back: after a step back it carries on from the last reading at the
    monotonic clock's pace (a step forward is taken as is), so an endsAt sent later is never earlier."""

    def __init__(self, wall: Callable[[], float] = time.time, mono: Callable[[], float] | None = None) -> None:
        self.wall, self.mono = wall, mono or elapsed_clock()
        self._last: tuple[float, float] | None = None  # (steady wall time, monotonic time) of the last reading

    def __call__(self) -> float:
        wall, mono = self.wall(), self.mono()
        if self._last is not None:
            carried = self._last[0] + (mono - self._last[1])
            if wall < carried - 1.0:
                if wall < self._last[0] - 1.0:
                    log.warning("wall clock went back %.0fs; Alertmanager endsAt stays on the earlier timeline",
                                carried - wall)
                wall = carried
        self._last = (wall, mono)
        return wall


class AlertmanagerSink(_HttpSink):
    """Alertmanager API v2: POSTs arrays to /api/v2/alerts and re-sends firing alerts periodically."""

    kind = "alertmanager"

    def __init__(self, url: str, headers: dict[str, str], timeout: float,
                 min_severity: Severity = Severity.INFO, resend_interval: float = AM_RESEND_INTERVAL,
                 clock: Callable[[], float] | None = None, tls: TlsConfig | None = None,
                 proxy: str | None = None) -> None:
        base = url.rstrip("/")
        if not base.endswith("/api/v2/alerts"):
            base += "/api/v2/alerts"
        super().__init__(base, headers, timeout, min_severity, tls=tls, proxy=proxy)
        self.resend_interval = resend_interval
        self.clock = clock or SteadyWallClock()

    async def send(self, events: Sequence[AlertEvent]) -> None:
        done = 0
        for chunk in am_chunks(events):
            try:
                await self._post_alerts(chunk, done)
            except SinkError as exc:
                if not exc.permanent or len(chunk) == 1:
                    raise
                for e in chunk:  # the array was refused for good: find the alert Alertmanager refuses
                    await self._post_alerts([e], done)
                    done += 1
                continue
            done += len(chunk)

    async def resend(self, active: Sequence[AlertEvent]) -> None:
        for i in range(0, len(active), 500):
            await self._post_alerts(active[i:i + 500], 0)

    async def _post_alerts(self, events: Sequence[AlertEvent], done: int) -> None:
        now = self.clock()
        try:
            body = [am_alert(e, now, self.resend_interval or AM_RESEND_INTERVAL) for e in events]
        except Exception as exc:
            raise _unexpected(self.name, exc, done) from None
        resp = await self._post_one(self.url, body, done)
        if not 200 <= resp.status_code < 300:
            raise self._refused(resp, done)


def build_sink(cfg: SinkConfig) -> Sink:
    """The sink object for one [[sink]] entry (the config has already been validated), built by its kind."""
    from ..registry import SINKS

    try:
        return SINKS.build(cfg, None)
    except KeyError:
        raise SinkError(f"sink kind {cfg.kind!r} is not available") from None
