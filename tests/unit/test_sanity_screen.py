"""`screen` keeps and rejects exactly what `reject_reason` says, on its shortcuts' edges (a fleet's poll screens
10,000 readings: most are judged without a call per reading)."""

from __future__ import annotations

import math

from surgewatch.sources.sanity import MAX_MAGNITUDE, PERCENT_SLACK, reject_reason, screen

EDGES = [0.0, -0.0, 100.0, 100 + PERCENT_SLACK / 2, 100 + 2 * PERCENT_SLACK, 150.0, -1e-9, -5.0, MAX_MAGNITUDE,
         MAX_MAGNITUDE * 1.0001, -MAX_MAGNITUDE * 2, math.nan, math.inf, -math.inf, 4e9]
METRICS = ["cpu.percent", "cpu.core3.percent", "mem.percent", "swap.percent", "disk.percent", "net.rx_bps",
           "mem.available_bytes", "load.1", "temperature", ""]


def test_screen_agrees_with_reject_reason_on_every_edge() -> None:
    values = {f"host:web-{i}/{m}" if m else f"odd-{i}": v for i, v in enumerate(EDGES) for m in METRICS}
    kept, rejected = screen(values)
    for name, v in values.items():
        why = reject_reason(name, v)
        if why is None:
            assert name in kept and name not in rejected, name
        else:
            assert name not in kept and rejected[name] == f"{name} = {v!r} rejected: {why}", name
    assert kept["host:web-14/net.rx_bps"] == 4e9 and "host:web-5/cpu.percent" in rejected
