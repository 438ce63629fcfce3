"""Many hosts through one Prometheus server: one instant query per metric, one series per `host_label` value.

Each poll sends every configured query at once (`POST /api/v1/query`); a fleet of thousands of hosts costs one
request per query per interval. Without configured queries, defaults written for node_exporter are used.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config import TlsConfig
from ..model import series
from ..textsafe import strip_controls
from .base import Reading, SourceError

if TYPE_CHECKING:
    from .http import HttpPoller, HttpResponse

QUERY_PATH = "/api/v1/query"
RATE_WINDOW = "1m"
MAX_SERIES = 10_000  # series taken from one query's answer (config: [[host]] max_series)
# An answer is read up to this size, so that one over max_series is capped rather than refused (a fleet's
# answer is ~100 bytes per series: 50,000 series are ~6 MiB); beyond it the query fails with its size.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
LARGE_ANSWER = 512 * 1024  # answers above this are decoded series by series, up to the cap, yielding as they go
_YIELD_EVERY = 500  # series decoded between two yields to the event loop (other sources stay on time)
_RESULT = re.compile(r'^\s*\{\s*"status"\s*:\s*"success"\s*,\s*"data"\s*:\s*\{\s*"resultType"\s*:\s*"vector"\s*,'
                     r'\s*"result"\s*:\s*\[')
_VALUE = re.compile(r'"value"\s*:\s*\[')  # once per series of an instant vector (label values are strings)

log = logging.getLogger("surgewatch.sources")


def default_queries(host_label: str = "instance", window: str = RATE_WINDOW,
                    group_label: str | None = None) -> dict[str, str]:
    """node_exporter-backed queries for our host metrics, grouped by `host_label` (and `group_label`, kept so
    that each host's group can be read from the answer)."""
    by = f"by ({host_label}, {group_label})" if group_label and group_label != host_label else f"by ({host_label})"
    not_busy = f'sum {by} (rate(node_cpu_seconds_total{{mode=~"idle|iowait"}}[{window}]))'
    cpus = f'count {by} (node_cpu_seconds_total{{mode="idle"}})'
    disks = 'device!~"dm-.*|md.*|z?ram.*|loop.*"'
    return {
        "cpu.percent": f"100 * (1 - {not_busy} / {cpus})",
        "mem.percent": (f"100 * (1 - sum {by} (node_memory_MemAvailable_bytes)"
                        f" / sum {by} (node_memory_MemTotal_bytes))"),
        "mem.available_bytes": f"sum {by} (node_memory_MemAvailable_bytes)",
        "load.1": f"max {by} (node_load1)",
        "load.5": f"max {by} (node_load5)",
        "load.15": f"max {by} (node_load15)",
        "net.rx_bps": f'sum {by} (rate(node_network_receive_bytes_total{{device!="lo"}}[{window}]))',
        "net.tx_bps": f'sum {by} (rate(node_network_transmit_bytes_total{{device!="lo"}}[{window}]))',
        "disk.read_bps": f"sum {by} (rate(node_disk_read_bytes_total{{{disks}}}[{window}]))",
        "disk.write_bps": f"sum {by} (rate(node_disk_written_bytes_total{{{disks}}}[{window}]))",
    }


def host_name(value: str) -> str:
    """A label value made safe as the NAME part of a series: no `/`, no escape sequences or control characters
    (a series name reaches terminals, logs, sink payloads and a command sink's environment)."""
    return strip_controls(value).replace("\n", "").replace("\t", " ").replace("/", "_") or "_"


class _QueryFailed(Exception):
    """One query failed; `permanent` when Prometheus rejected the query itself (a config mistake)."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class PromQLHostSource:
    """Polls one Prometheus server with a set of instant queries, one series per host label value."""

    def __init__(self, name: str, url: str, interval: float, timeout: float,
                 queries: Mapping[str, str] | None, host_label: str = "instance",
                 headers: Mapping[str, str] | None = None,
                 kind: str = "host", poller: HttpPoller | None = None, max_series: int = MAX_SERIES,
                 tls: TlsConfig | None = None, group_label: str | None = None) -> None:
        self.name = f"{kind}:{name}"
        self.kind = kind
        self.url = url.rstrip("/")
        self.interval = interval
        self.timeout = timeout
        self.demo = False
        self.host_label = host_label
        self.group_label = group_label
        self.queries = dict(queries) if queries else default_queries(host_label, group_label=group_label)
        self.max_series = max(1, max_series)
        self._capped: set[str] = set()  # metrics whose query was over the cap (warned once each)
        self._named: dict[str, dict[str, tuple[str, str]]] = {}  # metric → host label value → (series, host)
        self._safe: dict[str, str] = {}  # label value → host_name(value)
        self._poller = poller
        self._headers, self._tls = dict(headers or {}), tls

    @property
    def _http(self) -> HttpPoller:
        """The HTTP layer, made at the first poll: importing it (httpx, aiohttp and its TLS contexts, ~0.4 s) is
        left out of building the engine, so a dashboard's first frame does not wait for it."""
        if self._poller is None:
            from .http import HttpPoller

            self._poller = HttpPoller(label=self.name, base_url=self.url, headers=self._headers,
                                      timeout=self.timeout, max_bytes=MAX_ANSWER_BYTES, tls=self._tls)
        return self._poller

    async def poll(self) -> Reading:
        if self._poller is None:  # the first poll: the HTTP layer is imported off the event loop (~0.4 s)
            await asyncio.to_thread(importlib.import_module, ".http", __package__)
        metrics = list(self.queries)
        results = await asyncio.gather(*(self._one(m, self.queries[m]) for m in metrics),
                                       return_exceptions=True)
        values: dict[str, float] = {}
        errors: dict[str, str] = {}
        groups: dict[str, str] = {}
        for metric, result in zip(metrics, results, strict=True):
            if isinstance(result, _QueryFailed):
                if result.permanent:
                    raise SourceError(str(result))
                errors[metric] = str(result)
            elif isinstance(result, SourceError):
                errors[metric] = str(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                values.update(result[0])
                groups.update(result[1])
        if errors and len(errors) == len(metrics):
            raise SourceError(next(iter(errors.values())))
        details: dict[str, Any] = {"errors": errors} if errors else {}
        if groups:
            details["groups"] = groups  # host name → its group_label value (hostgroups.HostGroups reads it)
        return Reading(values, details)

    async def _one(self, metric: str, query: str) -> tuple[dict[str, float], dict[str, str]]:
        resp = await self._http.request("POST", QUERY_PATH, data={"query": query}, accept="application/json",
                                        check_status=False)
        doc = await self._large_vector(resp) if resp.status < 300 and len(resp.body) > LARGE_ANSWER else None
        if doc is None:
            doc = self._envelope(metric, resp)
        return self._vector(metric, doc)

    async def _large_vector(self, resp: HttpResponse) -> Mapping[str, Any] | None:
        """A large success answer's `data` with at most max_series + 1 series decoded (and the answer's series
        count), yielding to the event loop as it goes; None when it is not laid out as Prometheus writes it."""
        text = resp.text()
        m = _RESULT.match(text)
        if m is None:
            return None
        decode = json.JSONDecoder().raw_decode
        pos, items = m.end(), list[Any]()
        try:
            while len(items) <= self.max_series:
                while text[pos] in " \t\r\n,":
                    pos += 1
                if text[pos] == "]":
                    return {"resultType": "vector", "result": items}
                item, pos = decode(text, pos)
                items.append(item)
                if len(items) % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        except (ValueError, IndexError):
            return None
        # over the cap: the rest is counted, not decoded (each series of a vector has one "value":[ )
        return {"resultType": "vector", "result": items, "total": len(items) + len(_VALUE.findall(text, pos))}

    def _envelope(self, metric: str, resp: HttpResponse) -> Mapping[str, Any]:
        """The `data` of a success envelope; _QueryFailed naming the metric for an error envelope."""
        try:
            doc = json.loads(resp.body)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and doc.get("status") == "error":
            kind = str(doc.get("errorType") or "error")
            text = " ".join(str(doc.get("error") or "no message").split())[:200]
            permanent = kind in ("bad_data", "execution") or resp.status in (400, 422)
            msg = f"query for {metric!r} failed: {kind}: {text}"
            raise _QueryFailed(str(self._http.fail(msg, "POST", QUERY_PATH)), permanent)
        if resp.status >= 400:
            auth = resp.status in (401, 403)
            raise _QueryFailed(str(self._http.status_error(resp, "POST", QUERY_PATH)), auth)
        if not isinstance(doc, dict):
            start = " ".join(resp.text().split())[:30] or "an empty body"
            msg = f"query for {metric!r}: response is not the Prometheus API's JSON (starts {start!r})"
            raise _QueryFailed(str(self._http.fail(msg, "POST", QUERY_PATH)), True)
        data = doc.get("data")
        if doc.get("status") != "success" or not isinstance(data, dict):
            msg = f"query for {metric!r}: response has no success envelope with data"
            raise _QueryFailed(str(self._http.fail(msg, "POST", QUERY_PATH)), True)
        return data

    def _vector(self, metric: str, data: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
        """One value per host label from an instant-vector result, and each host's group where the series carry
        the group label."""
        rtype = data.get("resultType")
        result = data.get("result")
        if rtype != "vector" or not isinstance(result, list):
            msg = (f"query for {metric!r} returned a {rtype or 'missing'} result; it must return an instant "
                   f"vector with a {self.host_label!r} label")
            raise _QueryFailed(str(self._http.fail(msg, "POST", QUERY_PATH)), True)
        out: dict[str, float] = {}
        groups: dict[str, str] = {}
        unlabelled = 0
        if len(result) > self.max_series:
            if metric not in self._capped:
                self._capped.add(metric)
                log.warning("%s: query for %r returned %d series; only the first %d are kept (the max_series "
                            "cap of this source; warned once)", self.name, metric, data.get("total", len(result)),
                            self.max_series)
            result = result[: self.max_series]
        # A fleet answers with the same label values poll after poll: each is made safe (host_name) and its series
        # named once, and kept while its host is in the answers. Hosts that leave (churn) are dropped once the
        # cache holds a quarter more than the answer: that poll keeps the entries of the hosts it sees (`keep`).
        named = self._named.get(metric)
        if named is None:
            named = self._named[metric] = {}
        keep = named if len(named) <= len(result) + len(result) // 4 + 64 else {}
        safe = self._safe
        if len(safe) > 2 * max(map(len, self._named.values())) + 256:  # label values of hosts and groups
            safe.clear()
        host_label, group_label, kind = self.host_label, self.group_label, self.kind
        isfinite = math.isfinite
        for item in result:
            if not isinstance(item, dict):
                continue
            labels, pair = item.get("metric"), item.get("value")
            host = labels.get(host_label) if isinstance(labels, dict) else None
            if not isinstance(host, str) or not host:
                unlabelled += 1
                continue
            try:
                value = float(pair[1])  # type: ignore[index]
            except (TypeError, ValueError, IndexError, KeyError):
                continue
            if not isfinite(value):
                continue
            known = named.get(host)
            if known is None:
                who = safe.get(host) or safe.setdefault(host, host_name(host))
                known = keep[host] = (series(kind, who, metric), who)
            elif keep is not named:
                keep[host] = known
            out[known[0]] = value
            group = labels.get(group_label) if group_label else None  # type: ignore[union-attr]
            if isinstance(group, str) and group:
                groups[known[1]] = safe.get(group) or safe.setdefault(group, host_name(group))
        if keep is not named:
            self._named[metric] = keep
        if unlabelled and not out:
            msg = (f"query for {metric!r} returned series without the {self.host_label!r} label "
                   f"(group it with `by ({self.host_label})`)")
            raise _QueryFailed(str(self._http.fail(msg, "POST", QUERY_PATH)), True)
        return out, groups

    async def close(self) -> None:
        if self._poller is not None:
            await self._poller.aclose()
