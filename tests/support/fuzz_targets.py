"""Fuzz targets shared by tests/unit/test_fuzz.py (fast, in the test run) and benchmarks/fuzz_bench.py (long runs).

Each target is a hypothesis strategy of hostile inputs and a `run` that feeds one input to the real code path a
user's data takes: the config loader; every HTTP source polled through the collector from a loopback server
answering with the input (Prometheus text, PromQL JSON, Plausible/Umami/Matomo/GA4/JSON analytics shapes); the
access-log parsers and their statistics; `analyze` over a CSV file; and `replay` and `report` over a crafted
recording. `run` lets the project's one-line error types through (ConfigError, SourceError, RecordingError,
AnalyzeError; a source's failure recorded as its error text) and raises `Crash` for anything else: a traceback
a user would see, or a source failure the collector had to label "internal error".
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

LOOPBACK = "127.0.0.1"


class Crash(AssertionError):
    """An input made the code fail other than with a one-line error."""


@dataclass
class Target:
    """One fuzz target: what inputs look like and how one is fed to the code."""

    name: str
    strategy: st.SearchStrategy[Any]
    run: Callable[[Any], None]


# -- shared strategies --------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.75e308, -1.75e308, 1e15, 1e16, -1.0, 100.0, 100.5, 5e-324]),
    st.integers(min_value=-(2**70), max_value=2**70),
)
NUMBER_TEXT = st.one_of(NUMBERS.map(repr), st.sampled_from(["NaN", "+Inf", "-Inf", "inf", "1e999", "0x10", "1_0",
                                                             "", " ", "-", "12abc", "1.5e3", "\x1b[2J"]))
WORDS = st.one_of(st.text(max_size=12), st.sampled_from(["instance", "utm_campaign", "spring", "web-1", "cpu", "",
                                                        "<b>", "\x00", "\x1b]0;x\x07", "a/b", "*", "name"]))
JSON_LEAF = st.one_of(st.none(), st.booleans(), NUMBERS, NUMBER_TEXT, WORDS)
JSON_ANY = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(WORDS, inner, max_size=4)), max_leaves=12)


def _json_text(doc: Any) -> str:
    return json.dumps(doc, allow_nan=True)


# -- config -------------------------------------------------------------------------------------------

SECTIONS = {
    "monitor": ["interval", "history", "timeout", "record", "detector", "state_dir"],
    "host": ["name", "source", "url", "interval", "timeout", "headers", "seed", "host_label", "queries", "token"],
    "probe": ["name", "url", "interval", "timeout", "expect_status", "headers"],
    "traffic": ["name", "source", "url", "site_id", "token", "window", "username", "password", "query",
                "campaign_label", "path", "format", "value", "items", "key", "headers"],
    "campaign": ["name", "traffic", "utm_campaign", "start", "end", "hosts", "expected_lift"],
    "rule": ["name", "series", "above", "below", "clear", "for", "severity", "summary", "labels", "repeat",
             "min_interval", "group_wait", "anomaly", "threshold", "forecast_above", "within"],
    "sink": ["kind", "min_severity", "path", "url", "headers", "timeout", "command"],
    "export": ["listen"],
}
VALUE_WORDS = ["local", "demo", "prometheus", "promql", "plausible", "umami", "matomo", "ga4", "json", "access-log",
               "stdout", "file", "webhook", "slack", "alertmanager", "command", "bell", "critical", "warning",
               "info", "2s", "0s", "-1s", "1e999h", "5m", "http://127.0.0.1:9", "host:*/cpu.percent", "*",
               "${NOPE}", "${A", "combined", "robust-z", "unexplained", "any", "127.0.0.1:0", "web-1"]


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes, but no surrogate pairs: TOML takes only scalar values)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_string(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return _toml_string(str(v))


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)  # TOML cannot hold lone surrogates
SOURCES = {"host": st.sampled_from(["local", "demo", "prometheus", "promql", "plausible"]),
           "traffic": st.sampled_from(["demo", "plausible", "umami", "matomo", "ga4", "json", "access-log", "promql"])}
REQUIRED = {"host": ("name", "source", "url"), "probe": ("name", "url"), "traffic": ("name", "source", "url"),
            "campaign": ("name", "traffic"), "rule": ("name", "series"), "sink": ("kind",)}
TOML_SCALAR = st.one_of(st.sampled_from(VALUE_WORDS), TEXT, st.booleans(),
                        st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**65), 2**65))
TOML_VALUE = st.one_of(TOML_SCALAR, st.lists(TOML_SCALAR, max_size=3),
                       st.dictionaries(TEXT, TOML_SCALAR, max_size=3))


# Values of the right type for a key, so that most generated configs get past the first error and deep into
# validation (a name, a duration, a URL, a glob); any value of any type is drawn the rest of the time.
DURATION = st.sampled_from(["1s", "2s", "250ms", "5m", "1h", "1s", "2s", "5m", "0s", "-1s", "1e999h", "3x"])
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(["web-1", "site", "a", "c", "cpu-high", "web-2", "b"]), "interval": DURATION,
    "timeout": DURATION, "history": DURATION, "for": DURATION, "repeat": DURATION, "min_interval": DURATION,
    "group_wait": DURATION, "within": DURATION, "window": DURATION,
    "source": st.sampled_from(["local", "demo", "prometheus", "promql", "plausible", "umami", "matomo", "ga4",
                               "json", "access-log", "bogus"]),
    "kind": st.sampled_from(["stdout", "file", "webhook", "slack", "alertmanager", "command", "bell", "x"]),
    "url": st.sampled_from(["http://127.0.0.1:9", "https://127.0.0.1:9/x?api_key=k+1", "ftp://x", "", "${U}"]),
    "series": st.sampled_from(["host:*/cpu.percent", "*", "[", "campaign:c/visitors"]),
    "above": st.floats(allow_nan=True, allow_infinity=True), "below": st.floats(-10, 100),
    "threshold": st.floats(-1, 2), "severity": st.sampled_from(["info", "warning", "critical", "x"]),
    "traffic": st.sampled_from(["site", "a", "nope"]), "site_id": st.sampled_from(["s", "1"]),
    "token": st.sampled_from(["tok", "${T}", "a\nb"]), "value": st.sampled_from(["a.b", "x[0]", ""]),
    "hosts": st.lists(st.sampled_from(["web-1", "x"]), max_size=2), "seed": st.integers(-5, 2**64),
    "headers": st.dictionaries(st.sampled_from(["Authorization", "X-A", "bad name"]),
                               st.sampled_from(["Bearer t", "v\r\nX: y", ""]), max_size=2),
    "command": st.lists(st.sampled_from(["logger", "-t", ""]), max_size=3),
    "path": st.sampled_from(["/nonexistent/log", "", "/tmp"]), "format": st.sampled_from(["combined", "json", "x"]),
    "query": st.sampled_from(["up", "sum(", ""]), "listen": st.sampled_from(["127.0.0.1:0", "x", ":99999"]),
}


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    """A TOML config: known sections and keys with values mostly of the right type, or (sometimes) any text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=200))
    out = []
    once: set[str] = set()
    for _ in range(draw(st.integers(0, 6))):
        section = draw(st.sampled_from(sorted(SECTIONS)))
        if section in once:
            continue
        if section in ("monitor", "export"):
            once.add(section)
        out.append(f"[{section}]" if section in ("monitor", "export") else f"[[{section}]]")
        keys = SECTIONS[section] + (["bogus"] if draw(st.integers(0, 9)) == 9 else [])
        required = [k for k in REQUIRED.get(section, ()) if draw(st.integers(0, 9)) < 9]  # (hypothesis favours 0)
        chosen = draw(st.lists(st.sampled_from(keys), max_size=5, unique=True))
        for key in [*required, *(k for k in chosen if k not in required)]:
            good = SOURCES.get(section) if key == "source" else GOOD.get(key)
            value = draw(good) if good is not None and draw(st.integers(0, 9)) < 9 else draw(TOML_VALUE)
            out.append(f"{_toml_string(key)} = {_toml_value(value)}")
    return "\n".join(out) + "\n"


def run_config(text: str) -> None:
    from surgewatch.config import ConfigError, parse_config
    from surgewatch.sources import build_sources
    from surgewatch.sources.base import SourceError

    try:
        build_sources(parse_config(text, "fuzz.toml", {}))  # a config that loads must also build its sources
    except (ConfigError, SourceError) as exc:
        _one_line(str(exc))
    except Exception as exc:
        raise Crash(f"config loader: {type(exc).__name__}: {exc}") from exc


def _one_line(msg: str) -> None:
    if "\n" in msg or "Traceback" in msg:
        raise Crash(f"error is not one line: {msg!r}")


# -- HTTP sources through the collector ---------------------------------------------------------------

class _Answer:
    """What the fuzz server answers (set per example): per path fragment, else the default."""

    status = 200
    ctype = "application/json"
    body = b"{}"
    routes: dict[str, bytes] = {}  # noqa: RUF012 - set per example


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        a = _Answer
        body = next((b for frag, b in a.routes.items() if frag in self.path), a.body)
        self.send_response(a.status)
        self.send_header("Content-Type", a.ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    do_GET = do_POST = _answer


class HttpFuzz:
    """A loopback server answering every path with the current input, and every HTTP source built against it."""

    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.loop = asyncio.new_event_loop()
        self.sources = self.loop.run_until_complete(self._build())

    async def _build(self) -> dict[str, Any]:
        from surgewatch.collector import Collector
        from surgewatch.config import parse_config
        from surgewatch.sources import build_sources

        u = self.url
        text = f"""
[monitor]
interval = "1s"
timeout = "2s"
[[host]]
name = "prom"
source = "prometheus"
url = "{u}/metrics"
[[host]]
name = "fleet"
source = "promql"
url = "{u}"
[[traffic]]
name = "tp"
source = "promql"
url = "{u}"
query = "sum by (utm_campaign) (x)"
campaign_label = "utm_campaign"
[[traffic]]
name = "pl"
source = "plausible"
url = "{u}"
site_id = "s"
token = "tok-1234"
[[traffic]]
name = "um"
source = "umami"
url = "{u}"
site_id = "s"
token = "tok-1234"
[[traffic]]
name = "ma"
source = "matomo"
url = "{u}"
site_id = "1"
token = "tok-1234"
[[traffic]]
name = "ga"
source = "ga4"
url = "{u}"
site_id = "1"
token = "tok-1234"
[[traffic]]
name = "js"
source = "json"
url = "{u}/stats"
value = "data.visitors"
[[traffic]]
name = "ji"
source = "json"
url = "{u}/stats"
value = "visitors"
items = "data.campaigns"
key = "name"
"""
        for t in ("tp", "pl", "um", "ma", "ga", "ji"):
            text += f'[[campaign]]\nname = "c-{t}"\ntraffic = "{t}"\nutm_campaign = "spring"\n'
        sources = build_sources(parse_config(text, "fuzz.toml", {}))
        from surgewatch.sources.http import HttpPoller

        for s in sources:
            for attr in vars(s).values():
                if isinstance(attr, HttpPoller):
                    attr.retries = 0  # one request per poll: a retry would only repeat the same answer
        self.collector = Collector(sources)
        return {s.name: s for s in sources}

    def poll(self, names: list[str], status: int, ctype: str, body: bytes, times: int = 1,
             routes: dict[str, bytes] | None = None) -> None:
        """Poll the named sources `times` with the server answering (status, ctype, body) or, for a path holding
        a key of `routes`, that body; Crash on a crash or an absurd value getting through."""
        _Answer.status, _Answer.ctype, _Answer.body, _Answer.routes = status, ctype, body, routes or {}
        for name in names:
            src = self.sources[name]
            for _ in range(times):
                self.loop.run_until_complete(self.collector.poll_once(src))
                h = self.collector.health[name]
                if h.error is not None:
                    if h.error.startswith("internal error"):
                        raise Crash(f"{name}: {h.error}")
                    _one_line(h.error)
        import numpy as np

        from surgewatch.sources.sanity import absurd

        values = self.collector.drain()
        if values and absurd(tuple(values), np.array(list(values.values()))).any():
            raise Crash(f"an absurd value got through: {values}")

    def close(self) -> None:
        self.loop.run_until_complete(self.collector.stop())
        self.loop.close()
        self.httpd.shutdown()
        self.httpd.server_close()


_HTTP: HttpFuzz | None = None


def http_fuzz() -> HttpFuzz:
    """The one fuzz server of this process (started on first use)."""
    global _HTTP
    if _HTTP is None:
        _HTTP = HttpFuzz()
    return _HTTP


def close_http_fuzz() -> None:
    global _HTTP
    if _HTTP is not None:
        _HTTP.close()
        _HTTP = None


NODE_NAMES = ["node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
              "node_memory_SwapTotal_bytes", "node_memory_SwapFree_bytes", "node_load1", "node_load5",
              "node_load15", "node_processes_pids", "node_disk_read_bytes_total", "node_disk_written_bytes_total",
              "node_network_receive_bytes_total", "node_network_transmit_bytes_total", "other_metric"]


@st.composite
def prometheus_texts(draw: st.DrawFn) -> str:
    """Prometheus text pages: node_exporter families with any labels and values, comments, junk lines."""
    lines = []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.integers(0, 9))
        name = draw(st.sampled_from(NODE_NAMES))
        if kind == 0:
            lines.append(draw(st.text(max_size=40)))
        elif kind == 1:
            lines.append(f"# TYPE {name} {draw(st.sampled_from(['counter', 'gauge', 'untyped', 'bogus']))}")
        else:
            labels = draw(st.dictionaries(st.sampled_from(["cpu", "mode", "device", "x"]),
                                          st.sampled_from(["0", "1", "idle", "user", "iowait", "sda", "lo", "eth0",
                                                           "", '"', "\\"]), max_size=3))
            lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines.append(f"{name}{{{lab}}} {draw(NUMBER_TEXT)}" if lab else f"{name} {draw(NUMBER_TEXT)}")
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n# EOF\n"]))


def run_prometheus(text: str) -> None:
    http_fuzz().poll(["host:prom"], 200, "text/plain; version=0.0.4", text.encode("utf-8", "surrogatepass"),
                     times=2)


@st.composite
def promql_docs(draw: st.DrawFn) -> Any:
    """Prometheus query API answers: the success envelope with any result, error envelopes, any JSON."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(JSON_ANY)
    if kind == 1:
        return {"status": "error", "errorType": draw(WORDS), "error": draw(WORDS)}
    item = st.fixed_dictionaries({"metric": st.one_of(st.dictionaries(st.sampled_from(
        ["instance", "utm_campaign", "job"]), WORDS, max_size=3), JSON_ANY),
        "value": st.one_of(st.tuples(NUMBERS, NUMBER_TEXT).map(list), JSON_ANY)})
    result = st.one_of(st.lists(item, max_size=5), st.tuples(NUMBERS, NUMBER_TEXT).map(list), JSON_ANY)
    return {"status": draw(st.sampled_from(["success", "success", "error", None])),
            "data": {"resultType": draw(st.sampled_from(["vector", "scalar", "matrix", "string", None])),
                     "result": draw(result)}}


def run_promql(doc: Any) -> None:
    http_fuzz().poll(["host:fleet", "traffic:tp"], 200, "application/json", _json_text(doc).encode())


@st.composite
def analytics_docs(draw: st.DrawFn) -> tuple[int, dict[str, Any], Any]:
    """Each vendor's endpoints answering in its shape (Plausible, Umami, Matomo, GA4, a JSON endpoint) with hostile
    values, a status, and a default answer (any JSON) for the rest."""
    status = draw(st.sampled_from([200, 200, 200, 200, 400, 401, 404, 500]))
    v = st.one_of(st.integers(0, 10**6), st.floats(0, 1e6), NUMBERS, NUMBER_TEXT, JSON_ANY)
    utm = st.sampled_from(["spring", "utm_campaign=spring", "utm_source=x&utm_campaign=spring", None, "", "%ZZ"])
    routes: dict[str, Any] = {
        "/stats/realtime": draw(st.one_of(v, st.builds(lambda a: {"visitors": a}, v))),
        "/api/v2/query": draw(st.one_of(st.builds(lambda rows: {"results": rows}, st.lists(st.fixed_dictionaries(
            {"dimensions": st.lists(utm, max_size=2), "metrics": st.lists(v, max_size=2)}), max_size=3)),
            JSON_ANY)),
        "/active": draw(st.one_of(st.builds(lambda a: {"visitors": a}, v), st.builds(lambda a: {"x": a}, v),
                                  st.builds(lambda a: [{"x": a}], v), JSON_ANY)),
        "/metrics": draw(st.one_of(st.lists(st.fixed_dictionaries({"x": utm, "y": v}), max_size=4), JSON_ANY)),
        "/reports/utm": draw(st.one_of(st.builds(lambda rows: {"utm_campaign": rows}, st.lists(
            st.fixed_dictionaries({"utm": utm, "views": v}), max_size=3)), JSON_ANY)),
        "/index.php": draw(st.one_of(st.lists(st.lists(st.fixed_dictionaries({"visitors": v, "visits": v}),
                                                       max_size=2), max_size=4),
                                     st.builds(lambda m: {"result": "error", "message": m}, WORDS), JSON_ANY)),
        ":runRealtimeReport": draw(st.one_of(st.builds(lambda rows: {"rows": rows, "rowCount": len(rows)}, st.lists(
            st.fixed_dictionaries({"metricValues": st.lists(st.fixed_dictionaries({"value": v}), max_size=2)}),
            max_size=3)), st.builds(lambda m: {"error": {"code": 403, "status": m, "message": m}}, WORDS),
            JSON_ANY)),
        "/stats": draw(st.builds(lambda a, rows: {"data": {"visitors": a, "campaigns": rows}}, v, st.lists(
            st.fixed_dictionaries({"name": utm, "visitors": v}), max_size=3)) | JSON_ANY),
    }
    return status, routes, draw(JSON_ANY)


def run_analytics(example: tuple[int, dict[str, Any], Any]) -> None:
    status, routes, default = example
    http_fuzz().poll(["traffic:pl", "traffic:um", "traffic:ma", "traffic:ga", "traffic:js", "traffic:ji"],
                     status, "application/json", _json_text(default).encode(),
                     routes={k: _json_text(d).encode() for k, d in routes.items()})


# -- access logs --------------------------------------------------------------------------------------

@st.composite
def access_lines(draw: st.DrawFn) -> list[str]:
    """Combined-format and JSON log lines with hostile fields, and arbitrary text."""
    out = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.integers(0, 2))
        target = draw(st.one_of(st.text(max_size=30), st.sampled_from(
            ["/?utm_campaign=spring", "/?utm_campaign=%ZZ", "/?utm_campaign=" + "x" * 300, "/a b", ""])))
        if kind == 0:
            out.append(draw(st.text(max_size=120)))
        elif kind == 1:
            status = draw(st.one_of(st.integers(-5, 100000).map(str), WORDS))
            out.append(f'{draw(WORDS)} - - [10/Oct/2026:13:55:36 +0000] "GET {target} HTTP/1.1" {status} '
                       f'{draw(NUMBER_TEXT)} "-" "{draw(WORDS)}" {draw(NUMBER_TEXT)}')
        else:
            doc = {"status": draw(NUMBERS | NUMBER_TEXT | JSON_ANY), "remote": draw(WORDS), "request_uri": target,
                   draw(st.sampled_from(["rt", "request_time", "duration", "response_ms"])): draw(
                       NUMBERS | NUMBER_TEXT | JSON_ANY), "utm_campaign": draw(JSON_ANY)}
            out.append(_json_text(doc))
    return out


def run_access_log(lines: list[str]) -> None:
    from surgewatch.sources.accesslog import AccessLogStats, parse_combined, parse_json_line
    from surgewatch.sources.sanity import screen

    try:
        hits = [h for line in lines for h in (parse_combined(line), parse_json_line(line)) if h is not None]
        stats = AccessLogStats("site", [("spring", "spring")], 60.0)
        stats.add(hits, 1000.0)
        values = stats.take(1001.0, 1.0)
    except Exception as exc:
        raise Crash(f"access log: {type(exc).__name__}: {exc}") from exc
    _kept, rejected = screen(values)
    if rejected:
        raise Crash(f"access-log statistics produced absurd values: {rejected}")


# -- analyze over CSV ---------------------------------------------------------------------------------

SERIES = ["host:web-1/cpu.percent", "host:web-1/mem.percent", "traffic:s/visitors", "campaign:c/visitors",
          "host:web-2/load.1", "bogus", "", "ts", "a,b"]


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    """CSV files for `analyze`: a header of series names, then rows of timestamps and values (any text)."""
    if draw(st.integers(0, 7)) == 0:
        return draw(st.text(max_size=200))
    cols = draw(st.lists(st.sampled_from(SERIES), min_size=0, max_size=4))
    header = draw(st.sampled_from(["ts", "time", "timestamp", "", "when"]))
    lines = [",".join([header, *cols])]
    t = draw(st.floats(1e9, 2e9))
    for _ in range(draw(st.integers(0, 40))):
        t += draw(st.sampled_from([1.0, 1.0, 1.0, 0.0, -1.0, 30.0, 1e6]))
        ts = draw(st.sampled_from([repr(t), repr(t), "inf", "nan", "", "2026-01-01T00:00:00Z", "x"]))
        vals = [draw(st.one_of(NUMBER_TEXT, st.floats(0, 100).map(repr))) for _ in cols]
        lines.append(",".join([ts, *vals]))
    return "\n".join(lines) + "\n"


def run_analyze_csv(text: str) -> None:
    from surgewatch.frontends.analyze import AnalyzeError, analyze_file

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.csv"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            report = analyze_file(str(path))
            report.text()
            json.dumps(report.to_json(), allow_nan=False)
        except AnalyzeError as exc:
            _one_line(str(exc))
        except Exception as exc:
            raise Crash(f"analyze: {type(exc).__name__}: {exc}") from exc


# -- recordings for replay and report -----------------------------------------------------------------

EVENT_KINDS = ["alert", "campaign", "sources", "config", "bogus"]


@st.composite
def recordings(draw: st.DrawFn) -> tuple[list[list[float]], list[tuple[float, str, str]]]:
    """A recording's ticks (four series, any float64) and events of every kind with hostile documents."""
    values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 100),
                       st.sampled_from([1.75e308, -1.75e308, math.inf, math.nan]))
    rows = draw(st.lists(st.lists(values, min_size=4, max_size=4), min_size=1, max_size=30))
    events = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(EVENT_KINDS))
        doc: Any
        if kind == "alert":
            doc = {"event": draw(st.sampled_from(["firing", "resolved", "pending", "x"])), "rule": draw(WORDS),
                   "series": draw(st.sampled_from(SERIES)), "value": draw(JSON_LEAF), "severity": draw(WORDS),
                   "fingerprint": draw(WORDS), "summary": draw(WORDS)}
        elif kind == "campaign":
            doc = {"campaign": draw(st.sampled_from(["c", "x", ""])), "event": draw(
                st.sampled_from(["surge-start", "surge-end", "x"])), "lift": draw(JSON_LEAF)}
        elif kind == "sources":
            doc = {"stale": draw(st.one_of(st.lists(WORDS, max_size=2), JSON_ANY)), "errors": draw(JSON_ANY)}
        elif kind == "config":
            doc = {"text": draw(st.one_of(config_texts(), st.just("[[rule]]\nname = 1\n"))), "label": draw(WORDS)}
        else:
            doc = draw(JSON_ANY)
        text = draw(st.one_of(st.just(_json_text(doc)), st.just(_json_text(doc)), st.text(max_size=20)))
        events.append((1.7e9 + draw(st.integers(-5, 40)), kind, text))
    return rows, events


def run_recording(example: tuple[list[list[float]], list[tuple[float, str, str]]]) -> None:
    from surgewatch.cli import main
    from surgewatch.recording.postmortem import gather, render

    from .recordings import craft

    rows, events = example
    with tempfile.TemporaryDirectory() as d:
        path = craft(Path(d) / "f.swrec", rows, events=events)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["replay", str(path), "--headless"])
                code2 = main(["report", str(path), "-o", str(Path(d) / "r.html")])
        except Exception as exc:
            raise Crash(f"replay/report: {type(exc).__name__}: {exc}") from exc
        if code not in (0, 2) or code2 not in (0, 2) or "Traceback" in err.getvalue():
            raise Crash(f"replay/report exit {code}/{code2}: {err.getvalue()[-500:]}")
        for line in err.getvalue().splitlines():
            _one_line(line)
        if code2 == 0:
            render(gather(str(path)))


TARGETS = [
    Target("config loader", config_texts(), run_config),
    Target("Prometheus text", prometheus_texts(), run_prometheus),
    Target("PromQL JSON", promql_docs(), run_promql),
    Target("analytics JSON", analytics_docs(), run_analytics),
    Target("access-log lines", access_lines(), run_access_log),
    Target("CSV for analyze", csv_texts(), run_analyze_csv),
    Target("recordings (replay, report)", recordings(), run_recording),
]


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Source warnings are expected here by the hundred: keep them off the terminal."""
    import logging

    logger = logging.getLogger("surgewatch")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL)
    logger.propagate = False
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate
