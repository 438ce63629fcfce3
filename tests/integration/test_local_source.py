"""This host through psutil: every contract metric, rates from counter deltas, no bogus first rate."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from surgewatch.sources.local import CounterRates, LocalHostSource

ROOT = Path(__file__).resolve().parents[2]


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


def test_swap_and_process_count_are_reread_every_few_seconds_and_reported_on_every_poll() -> None:
    import subprocess

    t = [100.0]
    src = LocalHostSource("here", interval=0.5, timeout=1.0, clock=lambda: t[0])
    first = src.sample().values["host:here/procs.count"]
    # the real count moves by twenty; other processes on a shared machine come and go meanwhile
    children = [subprocess.Popen(["sleep", "5"]) for _ in range(20)]
    try:
        t[0] += 2.0  # within SLOW_GAUGES_EVERY: the value read at 100 s
        assert src.sample().values["host:here/procs.count"] == first
        t[0] += 4.0  # past it: read again
        assert src.sample().values["host:here/procs.count"] >= first + 10
    finally:
        for c in children:
            c.kill()
            c.wait()


def test_disk_rates_sum_whole_devices_as_psutil_totals_do() -> None:
    import psutil

    src = LocalHostSource("here", interval=1.0, timeout=1.0)
    per = psutil.disk_io_counters(perdisk=True, nowrap=False) or {}
    total = psutil.disk_io_counters(nowrap=False)
    mine = sum(c.read_bytes for name, c in per.items() if src._whole_disk(name))
    if total is not None:  # a machine without disks has no total
        assert abs(mine - total.read_bytes) <= 16 * 1024 * 1024  # the two reads are a moment apart


def test_proc_reader_gives_psutils_numbers() -> None:
    import psutil

    from surgewatch.sources.local import ProcReader

    reader = ProcReader()
    try:
        mine, theirs = reader.cpu_times(), psutil.cpu_times()
        assert type(mine) is type(theirs) and mine._fields == theirs._fields
        assert all(abs(a - b) <= 1.0 for a, b in zip(mine, theirs, strict=True))  # read a moment apart
        total, idle = reader.cpu_totals() or (0.0, 0.0)
        assert abs(total - sum(theirs)) <= 1.0 and abs(idle - theirs.idle - theirs.iowait) <= 1.0
        mem = reader.memory()
        vm = psutil.virtual_memory()
        assert mem is not None and abs(mem[0] - vm.percent) <= 1.0 and abs(mem[1] - vm.available) < 2**28
        assert mem[0] == round(mem[0], 1)  # psutil's rounding
    finally:
        reader.close()
    assert reader.cpu_times() is None and reader.cpu_totals() is None and reader.memory() is None  # psutil's


def test_an_odd_meminfo_is_left_to_psutil_and_the_source_keeps_reporting() -> None:
    from surgewatch.sources.local import ProcReader

    class Odd(ProcReader):
        def _head(self, f: object) -> bytes | None:
            return b"MemTotal:  1000 kB\nMemFree:  10 kB\n"  # an old kernel: no MemAvailable

    assert Odd().memory() is None
    t = [100.0]
    src = LocalHostSource("here", 1.0, 1.0, clock=lambda: t[0],
                          wanted=lambda name: name.endswith(("/cpu.percent", "/mem.percent")))
    src._proc.close()  # as after a failed read: psutil from now on
    src.sample()
    t[0] += 1.0
    time.sleep(0.02)
    values = src.sample().values
    assert set(values) == {"host:here/cpu.percent", "host:here/mem.percent"}
    assert 0.0 <= values["host:here/mem.percent"] <= 100.0


@pytest.mark.parametrize(("metrics", "imports_psutil"), [(("cpu.percent", "mem.percent"), False),
                                                         (("load.1",), True),  # the cores set its floors
                                                         (("cpu.percent", "net.rx_bps"), True),
                                                         (("swap.percent",), True)])
def test_psutil_is_imported_only_for_what_proc_does_not_answer(metrics: tuple[str, ...], imports_psutil: bool) -> None:
    """Total CPU and memory come from /proc: psutil (1 MB of a small daemon's RSS) is imported only by a source
    that reads more (load brings the per-core CPU, its floors), or when /proc cannot answer."""
    code = ("import sys, time\nfrom surgewatch.sources.local import LocalHostSource\n"
            f"src = LocalHostSource('here', 1.0, 1.0, wanted=lambda name: name.endswith({metrics!r}))\n"
            "src.sample(); time.sleep(0.05); values = src.sample().values\n"
            "print('psutil' in sys.modules, sorted(values))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    loaded, reported = run.stdout.split(" ", 1)
    assert loaded == str(imports_psutil)
    assert all(f"host:here/{m}" in reported for m in metrics if m != "net.rx_bps")  # (a rate needs two reads)
