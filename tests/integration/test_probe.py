"""Probes: latency, status and up for a real nginx page; failures are data (status 0, up 0), never raised.

Runtime: about 1.5 s (nginx starts in ~0.1 s; one deliberate 0.3 s timeout).
"""

from __future__ import annotations

import pytest

from surgewatch.config import parse_config
from surgewatch.sources import build_sources
from surgewatch.sources.probe import ProbeSource
from tests.support.servers import CannedHttpServer, SilentServer, closed_port, start_nginx


async def test_a_page_served_by_nginx_is_up_with_its_latency(tmp_path):
    with start_nginx(tmp_path / "nginx") as nginx:
        (nginx.workdir / "html" / "index.html").write_text("<h1>shop</h1>\n")
        src = ProbeSource("shop-home", nginx.url + "/", interval=1.0, timeout=2.0)
        reading = await src.poll()
        gone = ProbeSource("gone", nginx.url + "/missing.html", 1.0, 2.0)
        missing = await gone.poll()
        await src.close()
        await gone.close()
    assert reading.values["probe:shop-home/status"] == 200.0
    assert reading.values["probe:shop-home/up"] == 1.0
    assert 0 < reading.values["probe:shop-home/latency_ms"] < 2000
    assert reading.details == {}
    assert missing.values["probe:gone/status"] == 404.0 and missing.values["probe:gone/up"] == 0.0
    assert missing.details["error"] == "probe:gone: HTTP 404, expected 200"


@pytest.fixture
def site():
    with CannedHttpServer({
        "/": (200, {}, b"ok"),
        "/down": (503, {}, b"maintenance"),
        "/moved": (301, {"Location": "/"}, b""),
        "/created": (204, {}, b""),
    }) as srv:
        yield srv


@pytest.mark.parametrize("path,expect,status,up", [
    ("/down", 200, 503.0, 0.0),
    ("/moved", 200, 301.0, 0.0),  # redirects are not followed: the probe reports what the URL answers
    ("/moved", 301, 301.0, 1.0),
    ("/created", 204, 204.0, 1.0),
])
async def test_expect_status_decides_up(site, path, expect, status, up):
    src = ProbeSource("p", site.url + path, 1.0, 2.0, expect_status=expect)
    reading = await src.poll()
    await src.close()
    assert reading.values["probe:p/status"] == status
    assert reading.values["probe:p/up"] == up
    assert "probe:p/latency_ms" in reading.values


async def test_a_probe_is_not_retried(site):
    src = ProbeSource("p", site.url + "/down", 1.0, 2.0)
    await src.poll()
    await src.close()
    assert len(site.requests) == 1


async def test_a_refused_connection_is_down_not_an_exception():
    with closed_port() as port:
        src = ProbeSource("p", f"http://127.0.0.1:{port}/", 1.0, 1.0)
        reading = await src.poll()
        await src.close()
    assert reading.values == {"probe:p/status": 0.0, "probe:p/up": 0.0}
    assert "connection refused" in reading.details["error"]


async def test_a_timeout_is_down_not_an_exception():
    with SilentServer() as silent:
        src = ProbeSource("p", silent.url + "/", 1.0, 0.3)
        reading = await src.poll()
        await src.close()
    assert reading.values == {"probe:p/status": 0.0, "probe:p/up": 0.0}
    assert "timed out after 300ms" in reading.details["error"]


def test_probes_in_the_config_become_sources():
    cfg = parse_config('[[probe]]\nname = "shop-home"\nurl = "http://127.0.0.1:9/"\nexpect_status = 204\n'
                       'interval = "5s"\n')
    (src,) = build_sources(cfg)
    assert isinstance(src, ProbeSource)
    assert (src.name, src.interval, src.expect_status) == ("probe:shop-home", 5.0, 204)


async def test_a_timeout_is_data_even_under_the_collectors_own_timeout():
    import asyncio

    with SilentServer() as silent:
        src = ProbeSource("p", silent.url + "/", 1.0, 0.3)
        reading = await asyncio.wait_for(src.poll(), timeout=src.timeout)  # what the collector does
        await src.close()
    assert reading.values == {"probe:p/status": 0.0, "probe:p/up": 0.0}
