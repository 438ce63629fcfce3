"""Wall time for sample timestamps, a monotonic clock for scheduling, and wall-clock steps caught as they happen.

A wall clock can be stepped (NTP after a long drift, an operator, a VM restored from a snapshot). Anything that
schedules on it stalls (a step back) or bursts (a step forward), and anything that measures ages on it sees
every series go stale at once. So ticks and polls are scheduled on `time.monotonic()`, and `SteppedClock`
watches the wall clock against a clock that only ever moves forward with real elapsed time: when the two
disagree by more than a tolerance, that is a step. It is logged once with its size, and every `on_step`
callback is told the size so that held wall times (last sample, last poll, alert since, waits) move with it and
keep their ages. A suspend moves both clocks together (CLOCK_BOOTTIME counts suspended time on Linux): that is a
gap, not a step; series are then as stale as they really are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .units import format_duration

log = logging.getLogger("surgewatch.clock")

STEP_TOLERANCE = 2.0  # seconds the wall clock may move apart from elapsed time between two readings


def elapsed_clock() -> Callable[[], float]:
    """Seconds of real elapsed time, counting a suspend (CLOCK_BOOTTIME where there is one, else monotonic)."""
    boot = getattr(time, "CLOCK_BOOTTIME", None)
    if boot is not None:
        try:
            time.clock_gettime(boot)
        except OSError:  # pragma: no cover - a kernel without it
            return time.monotonic
        return lambda: time.clock_gettime(boot)
    return time.monotonic  # pragma: no cover - not Linux


class SteppedClock:
    """The wall clock (call it for the time now), watched for steps against elapsed time."""

    def __init__(self, wall: Callable[[], float] = time.time, elapsed: Callable[[], float] | None = None,
                 tolerance: float = STEP_TOLERANCE) -> None:
        self.wall = wall
        self.elapsed = elapsed or elapsed_clock()
        self.tolerance = tolerance
        self.steps: list[float] = []  # the size of every step seen, in seconds (forward > 0)
        self._offset: float | None = None  # wall minus elapsed at the last reading
        self._listeners: list[Callable[[float], None]] = []

    def on_step(self, callback: Callable[[float], None]) -> None:
        """Call `callback(seconds)` when a step is seen, before the stepped time is handed to anyone."""
        self._listeners.append(callback)

    def __call__(self) -> float:
        wall = self.wall()
        offset = wall - self.elapsed()
        if self._offset is not None and abs(offset - self._offset) > self.tolerance:
            step = offset - self._offset
            self.steps.append(step)
            log.warning("wall clock stepped %s by %s (elapsed time did not); scheduling is unaffected and held "
                        "times move with it, so nothing goes stale or resolves because of the step",
                        "forward" if step > 0 else "back", format_duration(abs(step)))
            for callback in self._listeners:
                callback(step)
        self._offset = offset  # slow drift and NTP slewing are followed, never reported
        return wall
