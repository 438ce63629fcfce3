"""This host through psutil: every contract metric, rates from counter deltas, no bogus first rate."""

from __future__ import annotations

import time

from surgewatch.sources.local import CounterRates, LocalHostSource


def test_first_sight_of_a_counter_yields_no_rate() -> None:
    rates = CounterRates()
    assert rates.rate("rx", 1000.0, now=10.0) is None
    assert rates.rate("rx", 3000.0, now=12.0) == 1000.0


def test_counter_reset_yields_no_rate_rather_than_a_negative_one() -> None:
    rates = CounterRates()
    rates.rate("rx", 5000.0, now=1.0)
    assert rates.rate("rx", 10.0, now=2.0) is None
    assert rates.rate("rx", 110.0, now=3.0) == 100.0


def test_local_source_reports_contract_names_and_rates_from_the_second_poll() -> None:
    t = [100.0]
    src = LocalHostSource("here", interval=1.0, timeout=1.0, clock=lambda: t[0])
    first = src.sample().values
    assert "host:here/mem.percent" in first and "host:here/load.1" in first
    assert "host:here/net.rx_bps" not in first and "host:here/cpu.percent" not in first
    t[0] += 1.0
    time.sleep(0.05)  # CPU time counters tick at 10 ms: give them something to count
    second = src.sample().values
    for metric in ("cpu.percent", "cpu.core0.percent", "mem.percent", "mem.available_bytes", "swap.percent",
                   "load.1", "load.5", "load.15", "net.rx_bps", "net.tx_bps", "procs.count"):
        assert f"host:here/{metric}" in second, metric
    assert 0.0 <= second["host:here/cpu.percent"] <= 100.0
    assert second["host:here/net.rx_bps"] >= 0.0


def test_top_processes_only_when_asked() -> None:
    assert "top_processes" not in LocalHostSource("h", 1.0, 1.0).sample().details
    src = LocalHostSource("h", 1.0, 1.0, top_processes=3)
    src.sample()
    top = src.sample().details["top_processes"]
    assert 0 < len(top) <= 3 and {"pid", "name", "cpu", "mem"} <= set(top[0])
