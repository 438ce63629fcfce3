"""This machine's health through psutil: CPU, memory, swap, load, disk and network rates, processes.

psutil is imported at its first use: a config that reads only this host's total CPU and memory gets them from /proc
(ProcReader) and never loads it (about 1 MB of a small daemon's RSS, issue 14) unless /proc cannot answer; per-core
CPU (which a wanted load brings, for its floors), swap, the process count, disks, network and top processes ask it.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..model import series
from .base import Reading, SourceError

if TYPE_CHECKING:
    import psutil as psutil_module


def _psutil() -> Any:
    """psutil, imported at the first call (see the module's docstring)."""
    import psutil

    return psutil


def _errors() -> tuple[type[BaseException], ...]:
    """What a read raises that becomes a SourceError: OSError, and psutil's errors once psutil is in use."""
    loaded = sys.modules.get("psutil")
    return (OSError,) if loaded is None else (OSError, loaded.Error)


class CounterRates:
    """Turns monotonically increasing counters into per-second rates; the first sight yields nothing."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, float]] = {}

    def rate(self, key: str, value: float, now: float) -> float | None:
        """Rate since the previous call for this key, or None on first sight, reset or zero elapsed time."""
        prev = self._last.get(key)
        self._last[key] = (now, value)
        if prev is None:
            return None
        then, old = prev
        dt = now - then
        if dt <= 0 or value < old:  # counter reset (reboot, wrap, device re-plugged)
            return None
        return (value - old) / dt


def _busy_fraction(prev: Any, cur: Any) -> float | None:
    """CPU busy share between two psutil cpu_times samples (idle and iowait count as not busy)."""
    return _busy_share(_totals(prev), _totals(cur))


def _totals(times: Any) -> tuple[float, float]:
    """(all CPU time, idle and iowait time) of a psutil cpu_times sample."""
    return sum(times), times.idle + getattr(times, "iowait", 0.0)


def _busy_share(prev: tuple[float, float], cur: tuple[float, float]) -> float | None:
    """CPU busy share between two (total, not busy) CPU time pairs; None without time passed or with a NaN."""
    total = cur[0] - prev[0]
    if total <= 0:
        return None
    busy = 1.0 - (cur[1] - prev[1]) / total
    return max(0.0, min(1.0, busy)) if math.isfinite(busy) else None  # min(1, NaN) would say 100 %


class ProcReader:
    """The total CPU line of /proc/stat and MemTotal/MemAvailable of /proc/meminfo, read through files kept open:
    the numbers psutil.cpu_times() and psutil.virtual_memory() give on Linux (the same parsing, rounding and named
    tuple), for a third of their CPU per poll (no open, no whole-file parse, no tuple of unused fields). Anything
    unexpected (another OS, a kernel without MemAvailable, an odd line, a failed read) answers None: ask psutil."""

    def __init__(self) -> None:
        self._stat: io.FileIO | None = None
        self._meminfo: io.FileIO | None = None
        self._cputimes: Any = None
        self._fields = 0
        self._ticks = 100.0
        if not sys.platform.startswith("linux"):
            return
        try:
            self._stat = io.FileIO("/proc/stat")
            self._meminfo = io.FileIO("/proc/meminfo")
            # psutil's fields for this kernel, as it counts them: user ... softirq, then steal, guest and guest_nice
            # when the total line has that many values
            values = len(os.pread(self._stat.fileno(), 1024, 0).split(b"\n", 1)[0].split()) - 1
            self._fields = 7 + (values >= 8) + (values >= 9) + (values >= 10)
            self._ticks = float(os.sysconf("SC_CLK_TCK"))
        except (OSError, ValueError):
            self.close()

    def _head(self, f: io.FileIO | None) -> bytes | None:
        if f is None:
            return None
        try:
            return os.pread(f.fileno(), 1024, 0)  # a /proc file is made anew for each read from offset 0
        except OSError:
            self.close()  # psutil from now on
            return None

    def cpu_times(self) -> Any:
        """As psutil.cpu_times(), or None."""
        line = self._cpu_line()
        if line is None:
            return None
        if self._cputimes is None:
            self._cputimes = type(_psutil().cpu_times())  # psutil's named tuple (this one is for comparing)
        ticks = self._ticks
        return self._cputimes(*[float(x) / ticks for x in line])

    def cpu_totals(self) -> tuple[float, float] | None:
        """(all CPU time, idle and iowait time) in seconds, as _totals(psutil.cpu_times()) gives them, or None."""
        line = self._cpu_line()
        if line is None:
            return None
        ticks = self._ticks
        return sum(map(int, line)) / ticks, (int(line[3]) + int(line[4])) / ticks  # idle, iowait

    def _cpu_line(self) -> list[bytes] | None:
        """The fields of /proc/stat's total line that psutil reads."""
        head = self._head(self._stat)
        if head is None:
            return None
        line = head.split(b"\n", 1)[0].split()
        n = self._fields
        if len(line) < n + 1 or line[0] != b"cpu" or n < 5:
            return None
        return line[1:n + 1]

    def memory(self) -> tuple[float, float] | None:
        """(percent, available bytes) as psutil.virtual_memory() gives them, or None."""
        head = self._head(self._meminfo)
        if head is None:
            return None
        parts = head.split(None, 9)  # MemTotal: N kB MemFree: N kB MemAvailable: N kB ...
        if len(parts) < 9 or parts[0] != b"MemTotal:" or parts[6] != b"MemAvailable:":
            return None
        try:
            total, avail = int(parts[1]) * 1024, int(parts[7]) * 1024
        except ValueError:
            return None
        if not 0 < avail <= total:  # psutil estimates or clamps these: let it
            return None
        return round((total - avail) / total * 100, 1), float(avail)

    def close(self) -> None:
        for f in (self._stat, self._meminfo):
            if f is not None:
                f.close()
        self._stat = self._meminfo = None


SLOW_GAUGES_EVERY = 5.0  # seconds between reads of swap and the process count (they cost most, move least)
# What each read yields (cpu.coreN.percent come with "cpu" when wanted); a source reads only groups it reports.
GROUPS = {"cpu": ("cpu.percent",), "mem": ("mem.percent", "mem.available_bytes"), "swap": ("swap.percent",),
          "procs": ("procs.count",), "load": ("load.1", "load.5", "load.15"),
          "disk": ("disk.read_bps", "disk.write_bps"), "net": ("net.rx_bps", "net.tx_bps")}
METRICS = tuple(m for metrics in GROUPS.values() for m in metrics)
SLOW = frozenset({"swap", "procs"})


class LocalHostSource:
    """Polls this host through psutil; rates come from counter deltas between polls.

    Swap use and the process count are read at most every SLOW_GAUGES_EVERY seconds and reported on every
    poll in between (the last value read), so a fast interval does not pay for them each time. With `wanted`
    (a predicate on series names, see surgewatch.needed) only the wanted series are read and reported: the
    total CPU alone is one line of /proc/stat rather than one per core.
    """

    def __init__(self, host: str, interval: float, timeout: float, clock: Callable[[], float] = time.monotonic,
                 top_processes: int = 0, wanted: Callable[[str], bool] | None = None) -> None:
        self.name = f"host:{host}"
        self.host = host
        self.interval = interval
        self.timeout = timeout
        self.demo = False
        self.top_processes = top_processes
        self._clock = clock
        self._rates = CounterRates()
        self._cpu_prev: tuple[float, float] | None = None  # (total, not busy) CPU seconds
        self._cores_prev: list[Any] | None = None
        self._procs: dict[int, psutil_module.Process] = {}
        self._slow: dict[str, float] = {}
        self._slow_at = float("-inf")
        self._disks: dict[str, bool] = {}  # disk name -> whole device (partitions are not summed)
        self._proc = ProcReader()
        self._keys: dict[str, str] = {}  # metric -> series name, made once
        self._only: frozenset[str] | None = None  # the series reported (None: all)
        if wanted is not None:
            cores = [self._key(f"cpu.core{i}.percent") for i in range(os.cpu_count() or 1)]
            load = [self._key(m) for m in ("load.1", "load.5", "load.15")]
            only = {k for k in (self._key(m) for m in METRICS) if wanted(k)}
            if any(wanted(k) for k in cores) or only.intersection(load):  # the cores set the load floors
                only.update(cores)
            self._only = frozenset(only)
        self._reads = {group for group, metrics in GROUPS.items()
                       if self._only is None or any(self._key(m) in self._only for m in metrics)}
        self._cores = self._only is None or self._key("cpu.core0.percent") in self._only
        if self._cores:
            self._reads.add("cpu")

    def _key(self, metric: str) -> str:
        key = self._keys.get(metric)
        if key is None:
            key = self._keys[metric] = series("host", self.host, metric)
        return key

    def sample(self) -> Reading:
        """One synchronous reading (cheap: well under a millisecond without processes), of the wanted series."""
        now = self._clock()
        out: dict[str, float] = {}
        reads = self._reads
        try:
            if "cpu" in reads:
                self._cpu(out)
            if "mem" in reads:
                mem = self._proc.memory()
                if mem is None:
                    vm = _psutil().virtual_memory()
                    mem = float(vm.percent), float(vm.available)
                out[self._key("mem.percent")], out[self._key("mem.available_bytes")] = mem
            if reads.intersection(SLOW) and (now - self._slow_at >= SLOW_GAUGES_EVERY or now < self._slow_at):
                self._slow = {}
                if "swap" in reads:
                    self._slow[self._key("swap.percent")] = float(_psutil().swap_memory().percent)
                if "procs" in reads:
                    self._slow[self._key("procs.count")] = float(len(_psutil().pids()))
                self._slow_at = now
            out.update(self._slow)
            if "load" in reads:
                try:
                    l1, l5, l15 = os.getloadavg()
                    out[self._key("load.1")], out[self._key("load.5")], out[self._key("load.15")] = l1, l5, l15
                except OSError:
                    pass
            if "disk" in reads:
                disks = _psutil().disk_io_counters(perdisk=True, nowrap=False)  # resets: CounterRates handles them
                if disks:
                    whole = [c for name, c in disks.items() if self._whole_disk(name)]
                    for metric, field in (("disk.read_bps", "read_bytes"), ("disk.write_bps", "write_bytes")):
                        r = self._rates.rate(metric, float(sum(getattr(c, field) for c in whole)), now)
                        if r is not None:
                            out[self._key(metric)] = r
            if "net" in reads:
                nics = _psutil().net_io_counters(pernic=True, nowrap=False)
                rx = float(sum(c.bytes_recv for n, c in nics.items() if n != "lo"))
                tx = float(sum(c.bytes_sent for n, c in nics.items() if n != "lo"))
                for metric, value in (("net.rx_bps", rx), ("net.tx_bps", tx)):
                    r = self._rates.rate(metric, value, now)
                    if r is not None:
                        out[self._key(metric)] = r
        except _errors() as exc:
            raise SourceError(f"psutil: {exc}") from None
        if self._only is not None:
            out = {k: v for k, v in out.items() if k in self._only}
        details: dict[str, Any] = {}
        if self.top_processes:
            details["top_processes"] = self._top()
        return Reading(out, details)

    def _cpu(self, out: dict[str, float]) -> None:
        """CPU busy % since the previous poll: the total, and each core's when the cores are wanted (the total
        is then their sum, read at the same moment)."""
        if self._cores:
            cores = _psutil().cpu_times(percpu=True)
            cpu = _totals(type(cores[0])._make(map(sum, zip(*cores, strict=True))))
        else:
            cores, cpu = None, self._proc.cpu_totals() or _totals(_psutil().cpu_times())
        if self._cpu_prev is not None:
            frac = _busy_share(self._cpu_prev, cpu)
            if frac is not None:
                out[self._key("cpu.percent")] = 100.0 * frac
        if cores is not None and self._cores_prev is not None and len(self._cores_prev) == len(cores):
            for i, (a, b) in enumerate(zip(self._cores_prev, cores, strict=True)):
                frac = _busy_fraction(a, b)
                if frac is not None:
                    out[self._key(f"cpu.core{i}.percent")] = 100.0 * frac
        self._cpu_prev, self._cores_prev = cpu, cores

    def _whole_disk(self, name: str) -> bool:
        """Whether a disk counts in the total, as in psutil's totals: on Linux whole devices, not their
        partitions (cached); elsewhere every disk psutil lists."""
        whole = self._disks.get(name)
        if whole is None:
            linux = sys.platform.startswith("linux")
            whole = self._disks[name] = not linux or os.path.exists(f"/sys/block/{name.replace('/', '!')}")
        return whole

    def _top(self) -> list[dict[str, Any]]:
        """The busiest processes by CPU since the previous call (name, pid, cpu %, memory %)."""
        ps = _psutil()
        seen: dict[int, psutil_module.Process] = {}
        rows: list[dict[str, Any]] = []
        for proc in ps.process_iter():
            pid = proc.pid
            p = self._procs.get(pid, proc)
            seen[pid] = p
            try:
                with p.oneshot():
                    cpu = p.cpu_percent(None)
                    rows.append({"pid": pid, "name": p.name(), "cpu": cpu, "mem": p.memory_percent()})
            except (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess):
                continue
        self._procs = seen
        rows.sort(key=lambda r: (r["cpu"], r["mem"]), reverse=True)
        return rows[: self.top_processes]

    def poll_now(self) -> Reading | None:
        """The reading on the spot (a fraction of a millisecond), or None while processes are listed: that
        takes a thread (see poll)."""
        return None if self.top_processes else self.sample()

    async def poll(self) -> Reading:
        if self.top_processes:
            return await asyncio.to_thread(self.sample)
        return self.sample()

    async def close(self) -> None:
        self._procs.clear()
        self._proc.close()
