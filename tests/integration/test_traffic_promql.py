"""The PromQL traffic source: a fake query API for shapes and errors, and a REAL Prometheus for the envelope.

Runtime: about 1 s (one Prometheus process on a loopback port).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from surgewatch.sources.base import SourceError
from surgewatch.sources.traffic_promql import PromQLTrafficSource
from tests.support.fakes import FakePrometheus
from tests.support.servers import ServerProcess, start_prometheus

QUERY = 'sum by (utm_campaign) (rate(nginx_campaign_requests_total[1m]))'
CAMPAIGNS = [("black-friday", "black_friday"), ("quiet", "spring")]


async def test_series_are_summed_overall_and_per_campaign_label() -> None:
    vector = [({"utm_campaign": "black_friday"}, "4.5"), ({"utm_campaign": ""}, "10"),
              ({"utm_campaign": "other"}, "0.5"), ({}, "NaN")]
    with FakePrometheus(QUERY, vector) as fake:
        src = PromQLTrafficSource("web", fake.url, QUERY, CAMPAIGNS, 1.0, 2.0, campaign_label="utm_campaign")
        reading = await src.poll()
        await src.close()
    assert reading.values == {"traffic:web/visitors": 15.0, "campaign:black-friday/visitors": 4.5,
                              "campaign:quiet/visitors": 0.0}


async def test_without_campaign_label_campaigns_get_a_notice() -> None:
    with FakePrometheus(QUERY, [({}, "3")]) as fake:
        src = PromQLTrafficSource("web", fake.url, QUERY, CAMPAIGNS, 1.0, 2.0)
        reading = await src.poll()
        await src.close()
    assert reading.values == {"traffic:web/visitors": 3.0}
    assert "campaign_label" in reading.details["notice"]


async def test_prometheus_error_envelope_becomes_one_line() -> None:
    with FakePrometheus("something else", []) as fake:
        src = PromQLTrafficSource("web", fake.url, QUERY, [], 1.0, 2.0)
        with pytest.raises(SourceError, match=r"^traffic:web: HTTP 400 Bad Request: bad_data: invalid"):
            await src.poll()
        await src.close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_prometheus(Path(tmp_path_factory.mktemp("prom")), {}, wait_up=False) as server:
        yield server


async def test_real_prometheus_vector_and_scalar_answers(prometheus: ServerProcess) -> None:
    q = ('label_replace(vector(4), "utm_campaign", "black_friday", "", "") '
         'or label_replace(vector(6), "utm_campaign", "spring", "", "")')
    src = PromQLTrafficSource("web", prometheus.url, q, CAMPAIGNS, 1.0, 5.0, campaign_label="utm_campaign")
    reading = await src.poll()
    await src.close()
    assert reading.values == {"traffic:web/visitors": 10.0, "campaign:black-friday/visitors": 4.0,
                              "campaign:quiet/visitors": 6.0}
    scalar = PromQLTrafficSource("web", prometheus.url, "scalar(vector(2.5))", [], 1.0, 5.0)
    assert (await scalar.poll()).values == {"traffic:web/visitors": 2.5}
    await scalar.close()


async def test_real_prometheus_rejects_bad_promql_with_its_message(prometheus: ServerProcess) -> None:
    src = PromQLTrafficSource("web", prometheus.url, "sum(rate(x[1m]", [], 1.0, 5.0)
    with pytest.raises(SourceError, match=r"^traffic:web: HTTP 400 Bad Request: bad_data: .*parse error"):
        await src.poll()
    await src.close()
