"""This machine's health through psutil: CPU, memory, swap, load, disk and network rates, processes."""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil

from ..model import series
from .base import Reading, SourceError


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
    total = sum(cur) - sum(prev)
    if total <= 0:
        return None
    idle = (cur.idle - prev.idle) + (getattr(cur, "iowait", 0.0) - getattr(prev, "iowait", 0.0))
    busy = 1.0 - idle / total
    return max(0.0, min(1.0, busy)) if math.isfinite(busy) else None  # min(1, NaN) would say 100 %


SLOW_GAUGES_EVERY = 5.0  # seconds between reads of swap and the process count (they cost most, move least)


class LocalHostSource:
    """Polls this host through psutil; rates come from counter deltas between polls.

    Swap use and the process count are read at most every SLOW_GAUGES_EVERY seconds and reported on every
    poll in between (the last value read), so a fast interval does not pay for them each time.
    """

    def __init__(self, host: str, interval: float, timeout: float, clock: Callable[[], float] = time.monotonic,
                 top_processes: int = 0) -> None:
        self.name = f"host:{host}"
        self.host = host
        self.interval = interval
        self.timeout = timeout
        self.demo = False
        self.top_processes = top_processes
        self._clock = clock
        self._rates = CounterRates()
        self._cpu_prev: Any = None
        self._cores_prev: list[Any] | None = None
        self._procs: dict[int, psutil.Process] = {}
        self._slow: dict[str, float] = {}
        self._slow_at = float("-inf")
        self._disks: dict[str, bool] = {}  # disk name -> whole device (partitions are not summed)

    def _key(self, metric: str) -> str:
        return series("host", self.host, metric)

    def sample(self) -> Reading:
        """One synchronous reading (cheap: well under a millisecond without processes)."""
        now = self._clock()
        out: dict[str, float] = {}
        try:
            cores = psutil.cpu_times(percpu=True)
            cpu = type(cores[0])._make(map(sum, zip(*cores, strict=True)))  # the total is the sum of the cores
            if self._cpu_prev is not None:
                frac = _busy_fraction(self._cpu_prev, cpu)
                if frac is not None:
                    out[self._key("cpu.percent")] = 100.0 * frac
            if self._cores_prev is not None and len(self._cores_prev) == len(cores):
                for i, (a, b) in enumerate(zip(self._cores_prev, cores, strict=True)):
                    frac = _busy_fraction(a, b)
                    if frac is not None:
                        out[self._key(f"cpu.core{i}.percent")] = 100.0 * frac
            self._cpu_prev, self._cores_prev = cpu, cores

            vm = psutil.virtual_memory()
            out[self._key("mem.percent")] = float(vm.percent)
            out[self._key("mem.available_bytes")] = float(vm.available)
            if now - self._slow_at >= SLOW_GAUGES_EVERY or now < self._slow_at:
                self._slow = {self._key("swap.percent"): float(psutil.swap_memory().percent),
                              self._key("procs.count"): float(len(psutil.pids()))}
                self._slow_at = now
            out.update(self._slow)
            try:
                l1, l5, l15 = os.getloadavg()
                out[self._key("load.1")], out[self._key("load.5")], out[self._key("load.15")] = l1, l5, l15
            except OSError:
                pass
            disks = psutil.disk_io_counters(perdisk=True, nowrap=False)  # resets: CounterRates handles them
            if disks:
                whole = [c for name, c in disks.items() if self._whole_disk(name)]
                for metric, field in (("disk.read_bps", "read_bytes"), ("disk.write_bps", "write_bytes")):
                    r = self._rates.rate(metric, float(sum(getattr(c, field) for c in whole)), now)
                    if r is not None:
                        out[self._key(metric)] = r
            nics = psutil.net_io_counters(pernic=True, nowrap=False)
            rx = float(sum(c.bytes_recv for n, c in nics.items() if n != "lo"))
            tx = float(sum(c.bytes_sent for n, c in nics.items() if n != "lo"))
            for metric, value in (("net.rx_bps", rx), ("net.tx_bps", tx)):
                r = self._rates.rate(metric, value, now)
                if r is not None:
                    out[self._key(metric)] = r
        except (OSError, psutil.Error) as exc:
            raise SourceError(f"psutil: {exc}") from None
        details: dict[str, Any] = {}
        if self.top_processes:
            details["top_processes"] = self._top()
        return Reading(out, details)

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
        seen: dict[int, psutil.Process] = {}
        rows: list[dict[str, Any]] = []
        for proc in psutil.process_iter():
            pid = proc.pid
            p = self._procs.get(pid, proc)
            seen[pid] = p
            try:
                with p.oneshot():
                    cpu = p.cpu_percent(None)
                    rows.append({"pid": pid, "name": p.name(), "cpu": cpu, "mem": p.memory_percent()})
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
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
