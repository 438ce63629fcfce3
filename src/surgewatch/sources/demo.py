"""The built-in DEMO: a simulated web host and its campaign traffic, generated in-process.

The story it tells (scenario time τ, seconds from the launch): a baseline with a gentle daily rhythm;
at τ = 0 a campaign lifts site traffic about four times over; the demo host's CPU follows traffic with
a 40 s lag; at τ = 14 min a CPU spike that traffic does not explain lasts two minutes; the campaign
decays and, 90 minutes after the launch, the story starts again. Everything is deterministic for a
seed, so tests and screenshots are repeatable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..model import series
from .base import Backfill, Reading

PERIOD = 5400.0  # seconds of scenario time before the story repeats
LEAD = 2400.0  # the part of each period before the launch (baseline)
START = -180.0  # the demo opens three minutes before the launch
HISTORY = 1800.0  # baseline already in the history when it opens
LAG = 40.0  # host load follows traffic by this many seconds
SPIKE_AT, SPIKE_LEN, SPIKE_CPU = 840.0, 150.0, 32.0
ORGANIC, CAMPAIGN_BASE, CAMPAIGN_PEAK = 70.0, 10.0, 270.0
CORES = 4


class _Scalar:
    """The numpy functions the scenario uses, for one float: a poll computes one instant, and size-1 arrays
    would cost ten times as much as these (the same formulas, so a poll equals the backfill at that time)."""

    abs, sin, cos, exp, log, sqrt, floor, modf = abs, math.sin, math.cos, math.exp, math.log, math.sqrt, \
        math.floor, math.modf
    round = round  # half to even, as numpy's

    @staticmethod
    def maximum(a: float, b: float) -> float:
        return a if a >= b else b

    @staticmethod
    def minimum(a: float, b: float) -> float:
        return a if a <= b else b

    @staticmethod
    def clip(x: float, lo: float, hi: float) -> float:
        return min(max(x, lo), hi)

    @staticmethod
    def where(cond: bool, a: float, b: float) -> float:
        return a if cond else b

    @staticmethod
    def mod(a: float, b: float) -> float:
        return a % b  # the sign of the divisor, as numpy's


Time = Any  # scenario time: a float (one poll) or an array of them (a backfill); results have the same shape


def _xp(t: Time) -> Any:
    """numpy for arrays, the scalar functions for a float."""
    return np if isinstance(t, np.ndarray) else _Scalar


def _noise(t: Time, channel: int, seed: int) -> Time:
    """Deterministic standard-normal-ish noise per whole second of scenario time (hash based)."""
    xp = _xp(t)
    k = xp.floor(t)
    u1 = xp.modf(xp.abs(xp.sin(k * 12.9898 + channel * 78.233 + seed * 37.719)) * 43758.5453)[0]
    u2 = xp.modf(xp.abs(xp.sin(k * 4.1414 + channel * 17.17 + seed * 91.123)) * 24634.6345)[0]
    u1 = xp.clip(u1, 1e-9, 1.0)
    return xp.sqrt(-2.0 * xp.log(u1)) * xp.cos(2.0 * math.pi * u2)


def _phase(t: Time) -> Time:
    """Scenario time folded into one period: negative before the launch, positive after."""
    return _xp(t).mod(t + LEAD, PERIOD) - LEAD


class DemoScenario:
    """The deterministic functions of scenario time behind the demo's series."""

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed

    def campaign_lift(self, t: Time) -> Time:
        """The campaign's share of traffic at full strength (0 before the launch, about 1 at peak)."""
        xp = _xp(t)
        p = _phase(t)
        after = xp.maximum(p, 0.0)
        rise = 1.0 - xp.exp(-after / 60.0)
        decay = xp.exp(-xp.maximum(after - 600.0, 0.0) / 900.0)
        taper = xp.clip((PERIOD - LEAD - after) / 300.0, 0.0, 1.0)
        return xp.where(p >= 0, rise * decay * taper, 0.0)

    def organic(self, t: Time) -> Time:
        """Visitors per minute not from the campaign, with a daily rhythm."""
        xp = _xp(t)
        day = 1.0 + 0.25 * xp.sin(2 * math.pi * (t / 86400.0 - 0.1))
        return ORGANIC * day

    def campaign_visitors(self, t: Time, noisy: bool = True) -> Time:
        xp = _xp(t)
        v = CAMPAIGN_BASE + CAMPAIGN_PEAK * self.campaign_lift(t)
        if noisy:
            v = v + xp.sqrt(v) * 0.8 * _noise(t, 1, self.seed)
        return xp.maximum(xp.round(v), 0.0)

    def site_visitors(self, t: Time, noisy: bool = True) -> Time:
        xp = _xp(t)
        v = self.organic(t) + CAMPAIGN_BASE + CAMPAIGN_PEAK * self.campaign_lift(t)
        if noisy:
            v = v + xp.sqrt(v) * 0.8 * _noise(t, 2, self.seed)
        return xp.maximum(xp.round(v), 0.0)

    def spike(self, t: Time) -> Time:
        """The unexplained extra CPU (a runaway job), 0 outside its two minutes."""
        xp = _xp(t)
        p = _phase(t)
        inside = (p >= SPIKE_AT) & (p < SPIKE_AT + SPIKE_LEN)
        return xp.where(inside, SPIKE_CPU * xp.minimum(1.0, (p - SPIKE_AT + 1) / 10.0), 0.0)

    def host(self, t: Time) -> dict[str, Time]:
        """The demo host's metrics at scenario times t (load follows traffic LAG seconds later)."""
        xp = _xp(t)
        traffic = self.site_visitors(t - LAG, noisy=False)
        cpu = 4.0 + 0.22 * traffic + self.spike(t) + 1.5 * _noise(t, 3, self.seed)
        cpu = xp.clip(cpu, 0.0, 100.0)
        slow = self.site_visitors(t - LAG - 30.0, noisy=False)
        load1 = CORES * (4.0 + 0.22 * slow + self.spike(t - 30.0)) / 100.0 + 0.05 * _noise(t, 4, self.seed)
        mem = 38.0 + 0.04 * traffic + 0.4 * _noise(t, 5, self.seed)
        rx = traffic * 2600.0 * (1.0 + 0.05 * _noise(t, 6, self.seed))
        tx = traffic * 41000.0 * (1.0 + 0.05 * _noise(t, 7, self.seed))
        procs = 180.0 + xp.round(traffic / 12.0)
        return {
            "cpu.percent": cpu,
            "mem.percent": xp.clip(mem, 0.0, 100.0),
            "load.1": xp.maximum(load1, 0.0),
            "net.rx_bps": xp.maximum(rx, 0.0),
            "net.tx_bps": xp.maximum(tx, 0.0),
            "procs.count": procs,
        }


class DemoClock:
    """Maps wall time to scenario time: opens at START and runs `speed` times faster than real time."""

    def __init__(self, speed: float = 1.0, clock: Callable[[], float] = time.time,
                 start: float = START) -> None:
        self.speed = speed
        self.clock = clock
        self.t0 = clock()
        self.start = start

    def now(self) -> float:
        return self.start + (self.clock() - self.t0) * self.speed


class _DemoSource:
    """What both demo sources share: a DEMO label, scenario time from the demo clock, poll and backfill."""

    def __init__(self, name: str, interval: float, timeout: float, scenario: DemoScenario, clock: DemoClock) -> None:
        self.name = name
        self.interval = interval
        self.timeout = timeout
        self.demo = True
        self.scenario = scenario
        self.clock = clock

    def _values(self, t: Time) -> dict[str, Time]:
        raise NotImplementedError

    def poll_now(self) -> Reading:
        """The scenario's values now (computed, no I/O)."""
        return Reading({k: float(v) for k, v in self._values(self.clock.now()).items()})

    async def poll(self) -> Reading:
        return self.poll_now()

    def history(self, wall_ts: Sequence[float]) -> dict[str, np.ndarray]:
        """The history before the demo opened, at the given wall-clock times: a float64 array per series (the
        engine stores them as they are: no Python float per sample, ~0.5 MB of the small end's peak)."""
        t = self.clock.start + (np.asarray(wall_ts, dtype=np.float64) - self.clock.t0) * self.clock.speed
        return dict(self._values(t))

    def backfill(self, wall_ts: Sequence[float]) -> Backfill:
        """The history before the demo opened, at the given wall-clock times."""
        return Backfill(list(wall_ts), {k: v.tolist() for k, v in self.history(wall_ts).items()})

    async def close(self) -> None:
        return None


class DemoHostSource(_DemoSource):
    """A simulated web host whose load follows the demo campaign's traffic (labelled DEMO)."""

    def __init__(self, host: str, interval: float, timeout: float, scenario: DemoScenario,
                 clock: DemoClock) -> None:
        super().__init__(f"host:{host}", interval, timeout, scenario, clock)
        self.host = host

    def _values(self, t: Time) -> dict[str, Time]:
        return {series("host", self.host, m): v for m, v in self.scenario.host(t).items()}


class DemoTrafficSource(_DemoSource):
    """Simulated site traffic and per-campaign visitors (labelled DEMO)."""

    def __init__(self, traffic: str, campaigns: Sequence[str], interval: float, timeout: float,
                 scenario: DemoScenario, clock: DemoClock) -> None:
        super().__init__(f"traffic:{traffic}", interval, timeout, scenario, clock)
        self.traffic = traffic
        self.campaigns = list(campaigns)

    def _values(self, t: Time) -> dict[str, Time]:
        out = {series("traffic", self.traffic, "visitors"): self.scenario.site_visitors(t)}
        for i, name in enumerate(self.campaigns):
            # The first campaign carries the story; any others are small side campaigns.
            v = self.scenario.campaign_visitors(t) if i == 0 else t * 0.0 + CAMPAIGN_BASE
            out[series("campaign", name, "visitors")] = v
        return out
