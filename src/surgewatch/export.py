"""Prometheus /metrics for surgewatch: latest values, anomaly scores, campaign and load-model figures, alerts;
and `POST /annotations` on the same listener, to record a deploy annotation (see annotations.py).

The exporter pulls an `ExportState` from a callable on every scrape. The scrape runs in the HTTP
server's thread, so the callable must be cheap and thread-safe: return the last snapshot the engine
published (an immutable object swapped in by reference), never compute from live buffers.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer

from .annotations import MAX_BODY, AnnotationError, NewAnnotation, parse_request
from .model import Annotation, split_series

log = logging.getLogger("surgewatch.export")

DEFAULT_HOST = "127.0.0.1"
_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})$")


class ExportError(Exception):
    """The exporter cannot serve (one line naming the address)."""


@dataclass(frozen=True, slots=True)
class SeriesFigure:
    """The latest reading of one series and what analysis said about it."""

    series: str
    value: float
    score: float | None = None
    expected: float | None = None
    stale: bool = False
    cause: str | None = None  # of an anomalous host series now: campaign, schedule, recurring or unexplained


@dataclass(frozen=True, slots=True)
class CampaignFigure:
    """A campaign's current lift (traffic over its baseline) and whether it is running."""

    name: str
    lift: float | None
    active: bool = True
    expected_lift: float | None = None


@dataclass(frozen=True, slots=True)
class LoadModelFigure:
    """How a host metric follows a campaign's traffic: metric ≈ intercept + slope · traffic."""

    host: str
    metric: str
    campaign: str
    slope: float
    intercept: float
    r2: float
    lag_seconds: float = 0.0
    expected_now: float | None = None  # the metric the model predicts from current traffic
    headroom: float | None = None  # how far the metric is from its limit, in the metric's units
    seconds_to_limit: float | None = None  # at the current traffic growth; absent when not rising


@dataclass(frozen=True, slots=True)
class AlertFigure:
    """One pending or firing alert (resolved alerts are simply absent)."""

    rule: str
    series: str
    state: str
    severity: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportState:
    """Everything /metrics shows, as plain data published by the engine."""

    series: Sequence[SeriesFigure] = ()
    campaigns: Sequence[CampaignFigure] = ()
    load_models: Sequence[LoadModelFigure] = ()
    alerts: Sequence[AlertFigure] = ()
    outbox_pending: Mapping[str, int] = field(default_factory=dict)
    source_up: Mapping[str, bool] = field(default_factory=dict)
    ts: float | None = None
    outbox_dead: Mapping[str, int] = field(default_factory=dict)  # dead letters per sink
    detector: str | None = None  # the anomaly detector the engine runs


def parse_listen(text: str) -> tuple[str, int]:
    """Split `HOST:PORT` (`[::1]:9273`, or `:9273` for loopback) and check it; raise ValueError."""
    m = _HOST_PORT.match(text.strip())
    if not m:
        raise ValueError(f"must be HOST:PORT such as 127.0.0.1:9273, got {text!r}")
    port = int(m["port"])
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0-65535, got {port}")
    host = m["v6"] or m["host"] or DEFAULT_HOST
    return host, port


_BAD_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def _label_name(name: str) -> str:
    clean = _BAD_LABEL.sub("_", name)
    return "_" + clean if not clean or clean[0].isdigit() else clean


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


class SurgewatchCollector:
    """A prometheus_client custom collector that renders the latest ExportState."""

    def __init__(self, snapshot: Callable[[], ExportState | None]) -> None:
        self.snapshot = snapshot
        self._failed = False

    def describe(self) -> list[Metric]:
        return []  # families depend on the data; skip the registration-time collect()

    def collect(self) -> Iterator[Metric]:
        try:
            state = self.snapshot()
        except Exception as exc:
            if not self._failed:
                log.error("export: the engine snapshot failed: %s: %s", type(exc).__name__, exc)
            self._failed = True
            state = None
        else:
            self._failed = False
        up = GaugeMetricFamily("surgewatch_export_snapshot_ok",
                               "1 if the engine provided data for this scrape")
        up.add_metric([], 0.0 if state is None else 1.0)
        yield up
        if state is None:
            return
        yield from self._series(state)
        yield from self._campaigns(state)
        yield from self._load_models(state)
        yield from self._alerts(state)
        yield from self._housekeeping(state)

    def _series(self, state: ExportState) -> Iterator[Metric]:
        names = ["series", "kind", "name", "metric"]
        value = GaugeMetricFamily("surgewatch_value", "Latest value of each series", labels=names)
        score = GaugeMetricFamily("surgewatch_anomaly_score",
                                  "Anomaly score of each series (0 normal .. 1; see surgewatch_detector_info)",
                                  labels=names)
        expected = GaugeMetricFamily("surgewatch_expected", "Value analysis expects for each series",
                                     labels=names)
        stale = GaugeMetricFamily("surgewatch_series_stale", "1 if the series' source stopped answering",
                                  labels=names)
        cause = GaugeMetricFamily("surgewatch_anomaly_cause", "1 for each anomalous host series, labelled with "
                                  "its cause (campaign, schedule, recurring or unexplained)", labels=[*names, "cause"])
        for s in state.series:
            kind, name, metric = split_series(s.series)
            lv = [s.series, kind, name, metric]
            if _finite(s.value):
                value.add_metric(lv, s.value)
            if _finite(s.score):
                score.add_metric(lv, float(s.score))  # type: ignore[arg-type]
            if _finite(s.expected):
                expected.add_metric(lv, float(s.expected))  # type: ignore[arg-type]
            stale.add_metric(lv, 1.0 if s.stale else 0.0)
            if s.cause:
                cause.add_metric([*lv, s.cause], 1.0)
        yield from (value, score, expected, stale, cause)

    def _campaigns(self, state: ExportState) -> Iterator[Metric]:
        lift = GaugeMetricFamily("surgewatch_campaign_lift",
                                 "Campaign traffic over its baseline (1 = no lift)",
                                 labels=["campaign"])
        planned = GaugeMetricFamily("surgewatch_campaign_expected_lift", "Planned lift from the config",
                                    labels=["campaign"])
        active = GaugeMetricFamily("surgewatch_campaign_active",
                                   "1 while the campaign is scheduled or running",
                                   labels=["campaign"])
        for c in state.campaigns:
            if _finite(c.lift):
                lift.add_metric([c.name], float(c.lift))  # type: ignore[arg-type]
            if _finite(c.expected_lift):
                planned.add_metric([c.name], float(c.expected_lift))  # type: ignore[arg-type]
            active.add_metric([c.name], 1.0 if c.active else 0.0)
        yield from (lift, planned, active)

    def _load_models(self, state: ExportState) -> Iterator[Metric]:
        names = ["host", "metric", "campaign"]
        fams = {
            "slope": GaugeMetricFamily("surgewatch_load_model_slope",
                                       "Host metric units per unit of campaign traffic", labels=names),
            "intercept": GaugeMetricFamily("surgewatch_load_model_intercept",
                                           "Host metric level at zero campaign traffic", labels=names),
            "r2": GaugeMetricFamily("surgewatch_load_model_r2", "Fit quality of the load model (0-1)",
                                    labels=names),
            "lag_seconds": GaugeMetricFamily("surgewatch_load_model_lag_seconds",
                                             "How long load lags behind traffic", labels=names),
            "expected_now": GaugeMetricFamily("surgewatch_load_model_expected",
                                              "Host metric the model expects from current traffic",
                                              labels=names),
            "headroom": GaugeMetricFamily("surgewatch_load_model_headroom",
                                          "Distance of the host metric from its limit", labels=names),
            "seconds_to_limit": GaugeMetricFamily("surgewatch_load_model_seconds_to_limit",
                                                  "Time until the host metric reaches its limit at the "
                                                  "current traffic growth", labels=names),
        }
        for m in state.load_models:
            lv = [m.host, m.metric, m.campaign]
            for attr, fam in fams.items():
                v = getattr(m, attr)
                if _finite(v):
                    fam.add_metric(lv, float(v))  # NaN/inf/None (e.g. not rising) leave the sample out
        yield from fams.values()

    def _alerts(self, state: ExportState) -> Iterator[Metric]:
        # ALERTS-style (named so it never collides with the ALERTS series Prometheus writes itself).
        core = ["alertname", "alertstate", "severity", "series"]
        extra = sorted({_label_name(k) for a in state.alerts for k in a.labels} - set(core) - {"__name__"})
        fam = GaugeMetricFamily("surgewatch_alerts", "Pending and firing surgewatch alerts (ALERTS-style)",
                                labels=core + extra)
        for a in state.alerts:
            own = {_label_name(k): v for k, v in a.labels.items()}
            fam.add_metric([a.rule, a.state, a.severity, a.series, *(own.get(k, "") for k in extra)], 1.0)
        yield fam

    def _housekeeping(self, state: ExportState) -> Iterator[Metric]:
        pending = GaugeMetricFamily("surgewatch_outbox_pending",
                                    "Alert notifications not yet accepted by a sink",
                                    labels=["sink"])
        for sink, n in sorted(state.outbox_pending.items()):
            pending.add_metric([sink], float(n))
        dead = GaugeMetricFamily("surgewatch_outbox_dead_letters",
                                 "Alert notifications a sink refused for good (kept in the outbox, not retried)",
                                 labels=["sink"])
        for sink, n in sorted(state.outbox_dead.items()):
            dead.add_metric([sink], float(n))
        up = GaugeMetricFamily("surgewatch_source_up", "1 if the source answered its last poll",
                               labels=["source"])
        for src, ok in sorted(state.source_up.items()):
            up.add_metric([src], 1.0 if ok else 0.0)
        yield from (pending, dead, up)
        if state.detector is not None:
            info = GaugeMetricFamily("surgewatch_detector_info", "The anomaly detector analysis runs (always 1)",
                                     labels=["detector"])
            info.add_metric([state.detector], 1.0)
            yield info
        if state.ts is not None:
            ts = GaugeMetricFamily("surgewatch_snapshot_timestamp_seconds",
                                   "When the engine took this snapshot")
            ts.add_metric([], state.ts)
            yield ts


def is_loopback(host: str) -> bool:
    """Whether a listen address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


Annotate = Callable[[NewAnnotation], Annotation]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class Exporter:
    """Serves /metrics from a snapshot callable in a background HTTP thread (prometheus_client's WSGI app)
    and, when given `annotate`, accepts `POST /annotations` (bearer `token`; none needed on loopback
    without a token)."""

    def __init__(self, snapshot: Callable[[], ExportState | None], annotate: Annotate | None = None,
                 token: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SurgewatchCollector(snapshot))
        self.annotate = annotate
        self.token = token
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.loopback = True
        self.address: tuple[str, int] | None = None

    def render(self) -> bytes:
        """The current /metrics body (Prometheus text format)."""
        return generate_latest(self.registry)

    def start(self, listen: str) -> tuple[str, int]:
        """Listen on `HOST:PORT` (port 0 picks a free one); return the bound address."""
        try:
            host, port = parse_listen(listen)
        except ValueError as exc:
            raise ExportError(f"[export] listen {exc}") from None
        self.loopback = is_loopback(host)
        metrics = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            if environ.get("PATH_INFO") == "/annotations":
                return self._annotations(environ, start_response)
            return list(metrics(environ, start_response))

        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

            class Server(ThreadingWSGIServer):
                address_family = family

            server = make_server(host, port, app, Server, handler_class=_QuietHandler)
        except OSError as exc:
            raise ExportError(f"[export] listen {listen}: cannot listen: {exc.strerror or exc}") from None
        thread = threading.Thread(target=server.serve_forever, name="export", daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        bound = server.server_address
        self.address = (str(bound[0]), int(bound[1]))
        log.info("serving /metrics on http://%s:%d/metrics", host if ":" not in host else f"[{host}]",
                 self.address[1])
        return self.address

    def _annotations(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """POST /annotations: JSON {"text", "host"?, "duration"?, "time"?} → 201 and the stored annotation."""
        def reply(status: str, text: str, extra: Sequence[tuple[str, str]] = ()) -> list[bytes]:
            body = (text.replace("\n", " ") + "\n").encode()
            start_response(status, [("Content-Type", "application/json" if status.startswith("201") else
                                      "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra])
            return [body]

        if environ.get("REQUEST_METHOD") != "POST":
            return reply("405 Method Not Allowed", "use POST with a JSON body", [("Allow", "POST")])
        if self.annotate is None:
            return reply("404 Not Found", "annotations are not accepted here")
        if self.token is not None:
            given = str(environ.get("HTTP_AUTHORIZATION", ""))
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
                return reply("401 Unauthorized", "a valid bearer token is required (Authorization: Bearer …)",
                             [("WWW-Authenticate", 'Bearer realm="surgewatch"')])
        elif not self.loopback:
            return reply("403 Forbidden", "this listener is not on loopback: set [export] token or token_file "
                                          "to accept annotations")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return reply("400 Bad Request", "Content-Length is not a number")
        if length > MAX_BODY:
            return reply("413 Content Too Large", f"body is {length} bytes; at most {MAX_BODY}")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            new = parse_request(body)
        except AnnotationError as exc:
            return reply("400 Bad Request", str(exc))
        try:
            stored = self.annotate(new)
        except AnnotationError as exc:
            log.error("POST /annotations: %s", exc)
            return reply("503 Service Unavailable", str(exc))
        log.info("annotation %d from %s: %s%s", stored.id, environ.get("REMOTE_ADDR", "?"), stored.text,
                 f" on {stored.host}" if stored.host else "")
        return reply("201 Created", json.dumps(stored.to_json(), ensure_ascii=False))

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
