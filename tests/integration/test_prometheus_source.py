"""The `prometheus` host source: node_exporter's names mapped to ours, against a recorded page and a real one.

Runtime: about 2 s (node_exporter starts in ~0.1 s; two scrapes 0.3 s apart).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from surgewatch.sources.base import SourceError
from surgewatch.sources.prometheus import (
    NodeMetricsMapper,
    PrometheusHostSource,
    is_whole_disk,
    parse_node_text,
    select_lines,
)
from tests.support.servers import CannedHttpServer, start_node_exporter

DATA = Path(__file__).parents[1] / "data"
RECORDED = (DATA / "node_exporter_metrics.txt").read_text()  # node_exporter 1.5.0 (Debian 12), 1,071 lines
TEXT = {"Content-Type": "text/plain; version=0.0.4"}


def page(cpu: dict[tuple[int, str], float], disk: float = 0.0, rx: float = 0.0, lo: float = 0.0) -> str:
    """A small node_exporter-shaped page with the given CPU seconds and byte counters."""
    lines = ["# TYPE node_cpu_seconds_total counter"]
    lines += [f'node_cpu_seconds_total{{cpu="{c}",mode="{m}"}} {v}' for (c, m), v in cpu.items()]
    lines += [
        "# TYPE node_memory_MemAvailable_bytes gauge", "node_memory_MemAvailable_bytes 2.5e+09",
        "# TYPE node_memory_MemTotal_bytes gauge", "node_memory_MemTotal_bytes 1e+10",
        "node_memory_SwapTotal_bytes 1000", "node_memory_SwapFree_bytes 750",
        "node_load1 1.5", "node_load5 0.5", "node_load15 0.25",
        "# TYPE node_disk_read_bytes_total counter",
        f'node_disk_read_bytes_total{{device="sda"}} {disk}',
        f'node_disk_read_bytes_total{{device="sda1"}} {disk}',
        f'node_disk_read_bytes_total{{device="dm-0"}} {disk}',
        f'node_network_receive_bytes_total{{device="eth0"}} {rx}',
        f'node_network_receive_bytes_total{{device="lo"}} {lo}',
        "node_processes_pids 321",
        "node_procs_running 3",
    ]
    return "\n".join(lines) + "\n"


def test_the_recorded_node_exporter_page_yields_every_family_we_use():
    scrape = parse_node_text(RECORDED)
    assert {c for c, _ in scrape.cpu} == {"0", "1"}
    assert scrape.gauges["node_memory_MemTotal_bytes"] == 2.5276063744e10
    assert set(scrape.gauges) >= {"node_load1", "node_load5", "node_load15", "node_memory_MemAvailable_bytes"}
    assert "vda" in scrape.disk_read and "eth0" in scrape.net_rx and "lo" not in scrape.net_rx


def test_the_pre_filter_keeps_only_wanted_families():
    kept = select_lines(RECORDED)
    assert "node_cpu_seconds_total{" in kept and "node_load1 " in kept
    assert "go_gc_duration_seconds" not in kept and "node_load1_extra" not in kept
    assert len(kept.splitlines()) < 80


def test_first_scrape_has_no_rates_and_the_second_has_cpu_from_deltas():
    m = NodeMetricsMapper("web-1")
    first = m.values(parse_node_text(page({(0, "idle"): 100, (0, "user"): 50, (1, "idle"): 100,
                                           (1, "user"): 50}, disk=1000, rx=0)), now=10.0)
    assert "host:web-1/cpu.percent" not in first and "host:web-1/disk.read_bps" not in first
    assert first["host:web-1/mem.percent"] == pytest.approx(75.0)
    assert first["host:web-1/mem.available_bytes"] == 2.5e9
    assert first["host:web-1/swap.percent"] == pytest.approx(25.0)
    assert first["host:web-1/load.1"] == 1.5 and first["host:web-1/load.15"] == 0.25
    assert first["host:web-1/procs.count"] == 321
    # core 0: 1 s idle + 1 s iowait of 4 s -> 50 % busy; core 1: 0 idle of 2 s -> 100 % busy
    cpu = {(0, "idle"): 101, (0, "iowait"): 1, (0, "user"): 52, (1, "idle"): 100, (1, "user"): 52}
    second = m.values(parse_node_text(page(cpu, disk=3000, rx=500, lo=10**9)), now=12.0)
    assert second["host:web-1/cpu.core0.percent"] == pytest.approx(50.0)
    assert second["host:web-1/cpu.core1.percent"] == pytest.approx(100.0)
    assert second["host:web-1/cpu.percent"] == pytest.approx(100.0 * 4 / 6)
    assert second["host:web-1/disk.read_bps"] == pytest.approx(1000.0)  # only sda: not sda1, not dm-0
    assert second["host:web-1/net.rx_bps"] == pytest.approx(250.0)  # lo left out


def test_a_counter_reset_yields_no_rate_instead_of_a_negative_one():
    m = NodeMetricsMapper("h")
    m.values(parse_node_text(page({(0, "idle"): 10}, disk=5000)), now=1.0)
    after = m.values(parse_node_text(page({(0, "idle"): 11}, disk=10)), now=2.0)
    assert "host:h/disk.read_bps" not in after


@pytest.mark.parametrize("device,whole", [("sda", True), ("vda", True), ("nvme0n1", True), ("sda1", False),
                                          ("nvme0n1p2", False), ("mmcblk0p1", False), ("dm-0", False),
                                          ("md0", False), ("loop3", False), ("zram0", False), ("xvdb", True)])
def test_only_whole_disks_count_towards_disk_rates(device, whole):
    assert is_whole_disk(device) is whole


@pytest.fixture(scope="module")
def node_exporter(tmp_path_factory):
    with start_node_exporter(tmp_path_factory.mktemp("node_exporter")) as server:
        yield server


async def test_a_real_node_exporter_gives_our_host_series(node_exporter):
    src = PrometheusHostSource("local", f"{node_exporter.url}/metrics", interval=1.0, timeout=2.0)
    first = await src.poll()
    assert "host:local/cpu.percent" not in first.values
    assert 0 < first.values["host:local/mem.percent"] < 100
    await asyncio.sleep(0.3)
    second = (await src.poll()).values
    await src.close()
    assert 0 <= second["host:local/cpu.percent"] <= 100
    assert {"host:local/cpu.core0.percent", "host:local/load.1", "host:local/swap.percent",
            "host:local/net.rx_bps", "host:local/disk.write_bps"} <= set(second)


@pytest.fixture
def bad_pages():
    routes = {
        "/html": (200, {"Content-Type": "text/html"}, b"<html><head><title>Login</title></head></html>\n"),
        "/other": (200, TEXT, b"# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 12\n"),
        "/garbled": (200, TEXT, b"node_load1 1.0\nnode_load5 {oops\n"),
        "/secret": (401, TEXT, b"Unauthorized\n"),
        "/huge": (200, TEXT, b"node_load1 1\n" * 400_000),
    }
    with CannedHttpServer(routes) as srv:
        yield srv


@pytest.mark.parametrize("path,message", [
    ("/html", "response is not Prometheus text format (starts '<html><head><title>Login"),
    ("/other", "no node_exporter host metrics in the page (it has e.g. http_requests_total)"),
    ("/garbled", "malformed Prometheus text format"),
    ("/secret", "authentication failed: HTTP 401"),
    ("/huge", "over the 4.0 MiB limit"),
])
async def test_bad_pages_are_one_line_errors(bad_pages, path, message):
    src = PrometheusHostSource("web-1", bad_pages.url + path + "?token=tok-abcdef", interval=1.0, timeout=2.0,
                               headers={"Authorization": "Bearer tok-abcdef"})
    with pytest.raises(SourceError) as err:
        await src.poll()
    await src.close()
    text = str(err.value)
    assert message in text and text.startswith("host:web-1: ")
    assert "\n" not in text and "tok-abcdef" not in text
