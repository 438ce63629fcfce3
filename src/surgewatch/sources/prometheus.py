"""A host read from a Prometheus text-format endpoint: node_exporter, or `surgewatch agent` on that host.

node_exporter's metric names map onto ours (CONFIG.md "Series names"); counters become rates between scrapes,
so the first scrape yields no CPU, disk or network values. Only the families we use are handed to
prometheus_client's parser (a node_exporter page is ~1,000 lines; parsing all of it costs ~10x more).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from ..config import TlsConfig
from ..model import series
from .base import Reading, SourceError
from .http import HttpPoller, redact_url
from .local import CounterRates

# node_exporter sample names we read (counters keep their _total suffix here).
CPU_SECONDS = "node_cpu_seconds_total"
MEM_AVAILABLE = "node_memory_MemAvailable_bytes"
MEM_TOTAL = "node_memory_MemTotal_bytes"
SWAP_TOTAL = "node_memory_SwapTotal_bytes"
SWAP_FREE = "node_memory_SwapFree_bytes"
LOADS = {"node_load1": "load.1", "node_load5": "load.5", "node_load15": "load.15"}
DISK_READ = "node_disk_read_bytes_total"
DISK_WRITTEN = "node_disk_written_bytes_total"
NET_RX = "node_network_receive_bytes_total"
NET_TX = "node_network_transmit_bytes_total"
# Number of PIDs: node_exporter's `processes` collector (off by default) and our agent export it.
# node_procs_running/blocked count only runnable/blocked tasks, not processes, so they are not used.
PROCS = "node_processes_pids"

WANTED = frozenset({CPU_SECONDS, MEM_AVAILABLE, MEM_TOTAL, SWAP_TOTAL, SWAP_FREE, *LOADS, DISK_READ,
                    DISK_WRITTEN, NET_RX, NET_TX, PROCS})
_WANTED_FAMILIES = frozenset(n.removesuffix("_total") for n in WANTED) | WANTED

# Disks counted in disk.*_bps: whole devices only. Partitions (sda1, nvme0n1p2, mmcblk0p1), device-mapper
# and md devices (stacked on the disks: counting them would count the same bytes twice), loop, (z)ram and
# floppy devices are left out. node_exporter drops partitions by default; the agent sends all psutil sees.
_NOT_A_DISK = re.compile(r"^((h|s|v|xv)d[a-z]+\d+|nvme\d+n\d+p\d+|mmcblk\d+p\d+|dm-\d+|md\d+.*|loop\d+"
                         r"|z?ram\d+|fd\d+|sr\d+)$")
_SAMPLE_LINE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?\s+[-+0-9.eEIinfNa]+")


def is_whole_disk(device: str) -> bool:
    """Whether a block device name is a whole disk (not a partition, mapper, RAID, loop or RAM device)."""
    return not _NOT_A_DISK.match(device)


@dataclass
class NodeScrape:
    """The samples of one scrape that we use, by node_exporter name."""

    cpu: dict[tuple[str, str], float] = field(default_factory=dict)  # (cpu, mode) -> seconds
    gauges: dict[str, float] = field(default_factory=dict)  # unlabelled gauges (memory, load, pids)
    disk_read: dict[str, float] = field(default_factory=dict)  # device -> bytes
    disk_written: dict[str, float] = field(default_factory=dict)
    net_rx: dict[str, float] = field(default_factory=dict)  # device -> bytes
    net_tx: dict[str, float] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.cpu or self.gauges or self.disk_read or self.net_rx)


def select_lines(text: str, wanted: Iterable[str] = _WANTED_FAMILIES) -> str:
    """Only the sample, HELP and TYPE lines of the wanted metric names (cheap pre-filter for the parser)."""
    names = tuple(sorted(set(wanted)))
    keep: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE") and parts[2] in names:
                keep.append(line)
        elif line.startswith(names):
            end = len(line.split("{", 1)[0].split(None, 1)[0])
            if line[:end] in names:
                keep.append(line)
    return "\n".join(keep) + "\n" if keep else ""


def parse_node_text(text: str) -> NodeScrape:
    """The node_exporter samples we use from a Prometheus text-format page; ValueError on a malformed page."""
    out = NodeScrape()
    for family in text_string_to_metric_families(select_lines(text)):
        for s in family.samples:
            name, labels, value = s.name, s.labels, float(s.value)
            if name == CPU_SECONDS:
                out.cpu[(labels.get("cpu", ""), labels.get("mode", ""))] = value
            elif name == DISK_READ:
                out.disk_read[labels.get("device", "")] = value
            elif name == DISK_WRITTEN:
                out.disk_written[labels.get("device", "")] = value
            elif name == NET_RX:
                out.net_rx[labels.get("device", "")] = value
            elif name == NET_TX:
                out.net_tx[labels.get("device", "")] = value
            elif name in WANTED and not labels:
                out.gauges[name] = value
    return out


def _cpu_totals(cpu: Mapping[tuple[str, str], float]) -> dict[str, tuple[float, float]]:
    """Per CPU: (all seconds, not-busy seconds = idle + iowait), the same split as the psutil source."""
    acc: dict[str, list[float]] = {}
    for (c, mode), secs in cpu.items():
        a = acc.setdefault(c, [0.0, 0.0])
        a[0] += secs
        if mode in ("idle", "iowait"):
            a[1] += secs
    return {c: (a[0], a[1]) for c, a in acc.items()}


def _core_index(label: str) -> int:
    return int(label) if label.isdigit() else 1 << 30


class NodeMetricsMapper:
    """Turns successive scrapes of one host into our series; counters become rates between scrapes."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._rates = CounterRates()
        self._cpu_prev: dict[str, tuple[float, float]] | None = None

    def _key(self, metric: str) -> str:
        return series("host", self.host, metric)

    def values(self, scrape: NodeScrape, now: float) -> dict[str, float]:
        """Our series for one scrape taken at monotonic time `now`."""
        out: dict[str, float] = {}
        self._cpu(scrape, out)
        g = scrape.gauges
        avail, total = g.get(MEM_AVAILABLE), g.get(MEM_TOTAL)
        if avail is not None and total:
            out[self._key("mem.percent")] = 100.0 * (total - avail) / total
            out[self._key("mem.available_bytes")] = avail
        swap_total, swap_free = g.get(SWAP_TOTAL), g.get(SWAP_FREE)
        if swap_total is not None and swap_free is not None:
            used = (swap_total - swap_free) / swap_total if swap_total else 0.0
            out[self._key("swap.percent")] = 100.0 * used
        for name, metric in LOADS.items():
            if name in g:
                out[self._key(metric)] = g[name]
        if PROCS in g:
            out[self._key("procs.count")] = g[PROCS]
        for metric, per_device, keep in (
            ("disk.read_bps", scrape.disk_read, is_whole_disk),
            ("disk.write_bps", scrape.disk_written, is_whole_disk),
            ("net.rx_bps", scrape.net_rx, _not_loopback),
            ("net.tx_bps", scrape.net_tx, _not_loopback),
        ):
            if per_device:
                rate = self._rates.rate(metric, sum(v for d, v in per_device.items() if keep(d)), now)
                if rate is not None:
                    out[self._key(metric)] = rate
        return out

    def _cpu(self, scrape: NodeScrape, out: dict[str, float]) -> None:
        if not scrape.cpu:
            return
        cur = _cpu_totals(scrape.cpu)
        prev, self._cpu_prev = self._cpu_prev, cur
        if prev is None:
            return
        all_total = all_idle = 0.0
        for c in sorted(cur, key=_core_index):
            if c not in prev:
                continue
            total, idle = cur[c][0] - prev[c][0], cur[c][1] - prev[c][1]
            if total <= 0:
                continue
            all_total += total
            all_idle += idle
            if c.isdigit():
                out[self._key(f"cpu.core{c}.percent")] = _percent(1.0 - idle / total)
        if all_total > 0:
            out[self._key("cpu.percent")] = _percent(1.0 - all_idle / all_total)


def _percent(frac: float) -> float:
    """A busy share as a percentage; NaN stays NaN (a NaN counter is not 100 %: the collector rejects it)."""
    return frac if math.isnan(frac) else 100.0 * max(0.0, min(1.0, frac))


def _not_loopback(device: str) -> bool:
    return device != "lo"


def describe_non_node_text(text: str) -> str:
    """Why a page gave no host metrics: not Prometheus text at all, or Prometheus text without node's."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    samples = [ln for ln in lines if _SAMPLE_LINE.match(ln)]
    if not samples:
        start = " ".join(text.split())[:30] or "an empty body"
        return f"response is not Prometheus text format (starts {start!r})"
    names = sorted({re.split(r"[{\s]", ln, maxsplit=1)[0] for ln in samples})[:3]
    return f"no node_exporter host metrics in the page (it has e.g. {', '.join(names)})"


class PrometheusHostSource:
    """Scrapes one host's /metrics (node_exporter or `surgewatch agent`) and maps it to host series."""

    def __init__(self, host: str, url: str, interval: float, timeout: float,
                 headers: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic,
                 poller: HttpPoller | None = None, tls: TlsConfig | None = None) -> None:
        self.name = f"host:{host}"
        self.host = host
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.demo = False
        self._clock = clock
        self._http = poller or HttpPoller(label=self.name, headers=headers or {}, timeout=timeout, tls=tls)
        self._mapper = NodeMetricsMapper(host)

    async def poll(self) -> Reading:
        text = await self._http.get_text(self.url)
        now = self._clock()
        try:
            scrape = parse_node_text(text)
        except (ValueError, TypeError, IndexError) as exc:
            first = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
            msg = f"malformed Prometheus text format: {first}"
            raise SourceError(f"{self.name}: {msg} ({redact_url(self.url)})") from None
        if scrape.empty():
            raise SourceError(f"{self.name}: {describe_non_node_text(text)} ({redact_url(self.url)})")
        return Reading(self._mapper.values(scrape, now))

    async def close(self) -> None:
        await self._http.aclose()
