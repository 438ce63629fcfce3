"""Synthetic check of one page: GET it and record latency, status and whether it is up.

A failed probe is data, not an error: a refused connection or a timeout yields `status` 0 and `up` 0, so rules
can alert on it; only the latency series is left out when no response arrived.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..config import TlsConfig
from ..model import series
from .base import Reading, SourceError
from .http import HttpPoller

PROBE_MAX_BYTES = 16 * 1024 * 1024


class ProbeSource:
    """GETs one URL each interval (no retries: a slow or failed answer is what we measure)."""

    def __init__(self, name: str, url: str, interval: float, timeout: float, expect_status: int = 200,
                 headers: Mapping[str, str] | None = None, poller: HttpPoller | None = None,
                 tls: TlsConfig | None = None) -> None:
        self.name = f"probe:{name}"
        self.probe = name
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.demo = False
        self.expect_status = expect_status
        self._http = poller or HttpPoller(label=self.name, headers=headers or {}, timeout=timeout, retries=0,
                                          max_bytes=PROBE_MAX_BYTES, tls=tls)

    async def poll(self) -> Reading:
        key = self._key
        try:
            resp = await self._http.request("GET", self.url, check_status=False, retry=False)
        except SourceError as exc:
            return Reading({key("status"): 0.0, key("up"): 0.0}, {"error": str(exc)})
        up = resp.status == self.expect_status
        details = {} if up else {"error": f"{self.name}: HTTP {resp.status}, expected {self.expect_status}"}
        return Reading({key("latency_ms"): resp.elapsed * 1000.0, key("status"): float(resp.status),
                        key("up"): 1.0 if up else 0.0}, details)

    def _key(self, metric: str) -> str:
        return series("probe", self.probe, metric)

    async def close(self) -> None:
        await self._http.aclose()
