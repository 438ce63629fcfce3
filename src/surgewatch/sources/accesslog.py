"""Campaign traffic from a web server's access log, followed like `tail -F` through rotation and truncation.

Series (NAME is the [[traffic]] name, CAMPAIGN a [[campaign]] fed by it):
- `traffic:NAME/requests_per_s`  requests logged per second since the previous poll;
- `traffic:NAME/visitors`        distinct client addresses seen in the last `window` (default 5m);
- `traffic:NAME/error_ratio`     share of those requests (since the previous poll) answered 5xx, 0..1;
- `traffic:NAME/response_ms.p50`, `.p95`  response time percentiles since the previous poll, when logged;
- `campaign:CAMPAIGN/requests_per_s` and `campaign:CAMPAIGN/visitors` for lines whose `utm_campaign` matches.
Lines are timed when they are read (the poll), not by their own timestamp, so no date parsing is needed.
Reading starts at the end of the file: history already in the log is not a burst.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import IO, Any
from urllib.parse import unquote_plus

import numpy as np

from ..model import series
from .base import Reading, SourceError
from .sanity import plausible_seconds

DEFAULT_WINDOW = 300.0
MAX_READ_BYTES = 32 * 1024 * 1024  # per poll; a bigger backlog is read over the next polls
MAX_LINE_BYTES = 64 * 1024  # a longer "line" is dropped as malformed
ROTATION_GRACE = 60.0  # keep reading a rotated file this long: writers switch only when told to reopen
MAX_OTHER_CAMPAIGNS = 1000  # distinct unconfigured utm_campaign values remembered (attackers control them)
MAX_RT_SAMPLES = 20000  # response times kept per poll for percentiles (evenly thinned beyond this)

# A hit is (client address, HTTP status, utm_campaign or None, response time in seconds or None).
Hit = tuple[str, int, str | None, float | None]

_QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'  # the inside of a "…" field with \" escapes (unrolled: fast)
_COMBINED_RE = re.compile(
    rf'^(?P<ip>\S+) \S+ \S+ \[[^\]]*\] "(?P<req>{_QUOTED})" (?P<status>\d{{3}}) \S+'
    rf'(?: "{_QUOTED}" "{_QUOTED}")?(?P<rest>.*)$')
_UTM_RE = re.compile(r"[?&]utm_campaign=([^&#\s]*)")
_RT_RE = re.compile(r"(?:^|\s)(?:rt=|request_time=)?(\d+\.\d+)(?=\s|$)")


def campaign_from_target(target: str) -> str | None:
    """The utm_campaign value in a request target or URL (`/p?utm_campaign=x`), or None."""
    if "utm_campaign=" not in target:
        return None
    m = _UTM_RE.search(target)
    if not m:
        return None
    value = unquote_plus(m[1])
    return value or None


def parse_combined(line: str) -> Hit | None:
    """One line of nginx/Apache `combined` (or `common`) format; None when it does not parse.

    A response time is taken from a trailing `rt=0.123`, `request_time=0.123` or bare `0.123` field
    (seconds), as many sites append `$request_time` to the combined format.
    """
    m = _COMBINED_RE.match(line)
    if m is None:
        return None
    req = m["req"]
    parts = req.split(" ")
    target = parts[1] if len(parts) >= 2 else ""
    rt: float | None = None
    rest = m["rest"]
    if rest:
        r = _RT_RE.search(rest)
        if r:
            rt = plausible_seconds(r[1])
    return m["ip"], int(m["status"]), campaign_from_target(target), rt


_IP_KEYS = ("remote", "remote_addr", "client", "client_ip", "ip")
_TARGET_KEYS = ("request_uri", "request", "url", "uri", "path", "args")
_RT_SECONDS_KEYS = ("rt", "request_time", "duration")
_RT_MS_KEYS = ("response_ms", "duration_ms")


def parse_json_line(line: str) -> Hit | None:
    """One JSON object per line (nginx `escape=json` log_format and the like); None when unusable.

    Fields: `status` (required, number or numeric string); client from remote/remote_addr/client/client_ip/ip;
    campaign from `utm_campaign`, else from the query string of request_uri/request/url/uri/path/args;
    response time from rt/request_time/duration (seconds) or response_ms/duration_ms.
    """
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    try:
        status = int(doc["status"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if not 100 <= status <= 999:
        return None
    ip = next((str(doc[k]) for k in _IP_KEYS if k in doc), "")
    campaign: str | None = None
    utm = doc.get("utm_campaign")
    if isinstance(utm, str) and utm:
        campaign = utm
    else:
        for k in _TARGET_KEYS:
            v = doc.get(k)
            if isinstance(v, str) and "utm_campaign=" in v:
                campaign = campaign_from_target(v if "?" in v else "?" + v)  # `args` has no "?"
                break
    rt: float | None = None
    for keys, scale in ((_RT_SECONDS_KEYS, 1.0), (_RT_MS_KEYS, 0.001)):
        for k in keys:
            v = doc.get(k)
            if v is None or v == "" or v == "-":
                continue
            try:
                seconds = plausible_seconds(float(v) * scale)
            except (TypeError, ValueError, OverflowError):
                continue
            if seconds is None:  # "inf", 1.75e308, -1, over a day: no response time from this line
                continue
            rt = seconds
            break
        if rt is not None:
            break
    return ip, status, campaign, rt


class LogTail:
    """Follows a file by path and returns its new complete lines: survives rotation and truncation.

    Rotation (the path now names another file): the old file is drained and still read for ROTATION_GRACE
    seconds, since a web server keeps writing to it until it is told to reopen; the new file is read from
    its start. Truncation (the file shrank below our position): reading restarts at 0.
    """

    def __init__(self, path: str, from_end: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.from_end = from_end
        self.clock = clock
        self._f: IO[bytes] | None = None
        self._id: tuple[int, int] | None = None
        self._partial = b""
        self._old: list[tuple[IO[bytes], float, bytes]] = []  # rotated files: handle, deadline, partial
        self._opened_once = False
        self.rotations = 0
        self.truncations = 0
        self.oversized_lines = 0

    def _open(self) -> bool:
        """Open the path; False when it does not exist yet after a rotation; SourceError otherwise."""
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - kept open across polls on purpose
        except FileNotFoundError:
            if self._opened_once:
                return False
            raise SourceError(f"access log {self.path}: no such file") from None
        except IsADirectoryError:
            raise SourceError(f"access log {self.path}: is a directory, expected a file") from None
        except PermissionError:
            raise SourceError(f"access log {self.path}: permission denied (run as a user who can read it)") \
                from None
        except OSError as exc:
            raise SourceError(f"access log {self.path}: cannot open: {exc.strerror or exc}") from None
        st = os.fstat(f.fileno())
        if not self._opened_once and self.from_end:
            f.seek(st.st_size)
        self._f, self._id, self._partial = f, (st.st_dev, st.st_ino), b""
        self._opened_once = True
        return True

    def read_lines(self) -> list[bytes]:
        """Every complete line written since the previous call (bounded by MAX_READ_BYTES per call)."""
        now = self.clock()
        lines: list[bytes] = []
        budget = MAX_READ_BYTES
        # Files rotated away: keep draining them until their grace period ends.
        keep: list[tuple[IO[bytes], float, bytes]] = []
        for f, deadline, partial in self._old:
            data = f.read(budget)
            budget -= len(data)
            partial = self._split(partial + data, lines)
            if now < deadline:
                keep.append((f, deadline, partial))
            else:
                f.close()
        self._old = keep
        if self._f is None and not self._open():
            return lines
        assert self._f is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None  # moved away and not recreated yet: keep reading the open file
        except OSError as exc:
            raise SourceError(f"access log {self.path}: cannot stat: {exc.strerror or exc}") from None
        if st is not None and (st.st_dev, st.st_ino) != self._id:
            # Rotated: drain what the old file has now, keep it around for late writes, read the new one.
            data = self._f.read(budget)
            budget -= len(data)
            self._partial = self._split(self._partial + data, lines)
            self._old.append((self._f, now + ROTATION_GRACE, self._partial))
            self._f = None
            self.rotations += 1
            if not self._open():
                return lines
            assert self._f is not None
        elif st is not None and st.st_size < self._f.tell():
            self._f.seek(0)
            self._partial = b""
            self.truncations += 1
        data = self._f.read(max(budget, 0))
        self._partial = self._split(self._partial + data, lines)
        return lines

    def _split(self, data: bytes, out: list[bytes]) -> bytes:
        """Append the complete lines of `data` to out; return the incomplete tail (dropped if oversized)."""
        if not data:
            return data
        *complete, tail = data.split(b"\n")
        for line in complete:
            if len(line) > MAX_LINE_BYTES:
                self.oversized_lines += 1
            elif line:
                out.append(line)
        if len(tail) > MAX_LINE_BYTES:
            self.oversized_lines += 1
            return b""
        return tail

    def close(self) -> None:
        """Close the current and any rotated files."""
        if self._f is not None:
            self._f.close()
            self._f = None
        for f, _, _ in self._old:
            f.close()
        self._old = []


class AccessLogStats:
    """Turns parsed hits into per-poll rates and sliding-window distinct visitors (overall, per campaign)."""

    def __init__(self, traffic: str, campaigns: Sequence[tuple[str, str]], window: float) -> None:
        self.traffic = traffic
        self.window = window
        self.by_utm: dict[str, list[str]] = {}
        self._ips: dict[str, float] = {}
        self._camp_ips: dict[str, dict[str, float]] = {}
        self.set_campaigns(campaigns)
        self._n = 0
        self._n5xx = 0
        self._rts: list[float] = []
        self._camp_n: Counter[str] = Counter()
        self.other_campaigns: Counter[str] = Counter()
        self.last_counts: dict[str, int] = {}  # requests per campaign name in the last take()

    def set_campaigns(self, campaigns: Sequence[tuple[str, str]]) -> None:
        """Count these (campaign name, utm_campaign) pairs from now on; visitors already seen for a kept UTM stay."""
        self.by_utm = {}
        for name, utm in campaigns:
            self.by_utm.setdefault(utm, []).append(name)
        self._camp_ips = {utm: self._camp_ips.get(utm, {}) for utm in self.by_utm}

    def add(self, hits: Sequence[Hit], now: float) -> None:
        """Count hits read at time `now`."""
        ips, camp_ips, camp_n = self._ips, self._camp_ips, self._camp_n
        for ip, status, utm, rt in hits:
            self._n += 1
            if status >= 500:
                self._n5xx += 1
            if rt is not None:
                self._rts.append(rt)
            ips[ip] = now
            if utm is not None:
                seen = camp_ips.get(utm)
                if seen is not None:
                    seen[ip] = now
                    camp_n[utm] += 1
                elif utm in self.other_campaigns or len(self.other_campaigns) < MAX_OTHER_CAMPAIGNS:
                    self.other_campaigns[utm] += 1

    def take(self, now: float, elapsed: float | None) -> dict[str, float]:
        """This poll's values (rates over `elapsed` seconds, none on the first poll); resets counters."""
        cutoff = now - self.window
        _prune(self._ips, cutoff)
        out = {series("traffic", self.traffic, "visitors"): float(len(self._ips))}
        if elapsed is not None and elapsed > 0:
            out[series("traffic", self.traffic, "requests_per_s")] = self._n / elapsed
            out[series("traffic", self.traffic, "error_ratio")] = self._n5xx / self._n if self._n else 0.0
            if self._rts:
                rts = np.asarray(self._rts[:: max(1, len(self._rts) // MAX_RT_SAMPLES)], dtype=np.float64)
                p50, p95 = np.percentile(rts, [50.0, 95.0])
                out[series("traffic", self.traffic, "response_ms.p50")] = float(p50) * 1000.0
                out[series("traffic", self.traffic, "response_ms.p95")] = float(p95) * 1000.0
        for utm, names in self.by_utm.items():
            seen = self._camp_ips[utm]
            _prune(seen, cutoff)
            for name in names:
                out[series("campaign", name, "visitors")] = float(len(seen))
                if elapsed is not None and elapsed > 0:
                    out[series("campaign", name, "requests_per_s")] = self._camp_n[utm] / elapsed
        self.last_counts = {name: self._camp_n[utm] for utm, names in self.by_utm.items() for name in names}
        self._n = self._n5xx = 0
        self._rts = []
        self._camp_n = Counter()
        return out

    @property
    def pending(self) -> int:
        """Hits counted since the last take()."""
        return self._n


def _prune(seen: dict[str, float], cutoff: float) -> None:
    """Forget addresses last seen before `cutoff`."""
    stale = [ip for ip, ts in seen.items() if ts < cutoff]
    for ip in stale:
        del seen[ip]


class AccessLogSource:
    """Tails one access log (`combined` or `json`) and reports request rates, visitors, 5xx share, latency."""

    def __init__(self, traffic: str, path: str, fmt: str, campaigns: Sequence[tuple[str, str]],
                 interval: float, timeout: float, window: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if fmt not in ("combined", "json"):
            raise SourceError(f"traffic:{traffic}: format must be combined or json, got {fmt!r}")
        self.name = f"traffic:{traffic}"
        self.traffic = traffic
        self.interval = interval
        self.timeout = timeout
        self.demo = False
        self.path = path
        self.format = fmt
        self._parse: Callable[[str], Hit | None] = parse_combined if fmt == "combined" else parse_json_line
        self._clock = clock
        self.tail = LogTail(path, from_end=True, clock=clock)
        self.stats = AccessLogStats(traffic, campaigns, window or DEFAULT_WINDOW)
        self.malformed = 0
        self.lines = 0
        self.last_malformed: str | None = None
        self._last_take: float | None = None
        self._lock = threading.Lock()

    def collect(self) -> Reading:
        """Read new lines and produce one reading (blocking file I/O; poll() runs it in a thread)."""
        with self._lock:
            try:
                raw = self.tail.read_lines()
            except SourceError as exc:
                raise SourceError(f"{self.name}: {exc}") from None
            except OSError as exc:
                msg = f"{self.name}: access log {self.path}: read failed: {exc.strerror or exc}"
                raise SourceError(msg) from None
            now = self._clock()
            hits: list[Hit] = []
            bad = 0
            parse = self._parse
            for b in raw:
                line = b.decode("utf-8", errors="replace").rstrip("\r")
                hit = parse(line)
                if hit is None:
                    bad += 1
                    self.last_malformed = line[:120]
                else:
                    hits.append(hit)
            bad += self.tail.oversized_lines
            self.tail.oversized_lines = 0
            self.malformed += bad
            self.lines += len(raw)
            self.stats.add(hits, now)
            elapsed = None if self._last_take is None else now - self._last_take
            self._last_take = now
            values = self.stats.take(now, elapsed)
            details: dict[str, Any] = {
                "requests": len(hits),
                "campaign_requests": self.stats.last_counts,
                "malformed_lines": self.malformed,
                "rotations": self.tail.rotations,
                "truncations": self.tail.truncations,
            }
            if bad:
                details["notice"] = (f"{bad} malformed {self.format} line(s) skipped in {self.path}, "
                                     f"last: {self.last_malformed!r}")
            if self.stats.other_campaigns:
                details["other_campaigns"] = dict(self.stats.other_campaigns.most_common(10))
            return Reading(values, details)


    def set_campaigns(self, campaigns: list[tuple[str, str]]) -> None:
        """Report on these (campaign name, utm_campaign) pairs from the next poll on."""
        self.stats.set_campaigns(campaigns)
    async def poll(self) -> Reading:
        """Read what the server logged since the previous poll."""
        return await asyncio.to_thread(self.collect)

    async def close(self) -> None:
        """Close the log file(s)."""
        with self._lock:
            self.tail.close()
