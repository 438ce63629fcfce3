"""The `promql` host source against a real Prometheus scraping a real node_exporter, plus canned error bodies.

Runtime: about 8 s, mostly Prometheus's first scrape (service discovery batches ~5 s) and two rate samples.
"""

from __future__ import annotations

import asyncio
import json

import psutil
import pytest

from surgewatch.sources.base import SourceError
from surgewatch.sources.promql import PromQLHostSource, default_queries
from tests.support.servers import CannedHttpServer, start_node_exporter, start_prometheus


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    base = tmp_path_factory.mktemp("promql")
    with start_node_exporter(base / "node") as node, \
            start_prometheus(base / "prom", {"node": [f"127.0.0.1:{node.port}"]}) as prom:
        prom.extra["node"] = node
        yield prom


async def test_default_queries_give_one_series_per_instance(prometheus):
    instance = f"127.0.0.1:{prometheus.extra['node'].port}"
    src = PromQLHostSource("fleet", prometheus.url, interval=1.0, timeout=5.0, queries={})
    assert set(src.queries) == set(default_queries())

    async def complete() -> dict[str, float] | None:
        reading = await src.poll()
        return reading.values if f"host:{instance}/cpu.percent" in reading.values else None

    values = None
    for _ in range(40):  # rates need two scrapes inside the window: usually the first or second try
        values = await complete()
        if values:
            break
        await asyncio.sleep(0.3)
    await src.close()
    assert values, "Prometheus never returned a CPU rate"
    for metric in ("cpu.percent", "mem.percent", "mem.available_bytes", "load.1", "net.rx_bps",
                   "disk.read_bps"):
        assert f"host:{instance}/{metric}" in values, metric
    assert 0 <= values[f"host:{instance}/cpu.percent"] <= 100
    assert values[f"host:{instance}/mem.percent"] == pytest.approx(psutil.virtual_memory().percent, abs=3.0)


async def test_host_label_picks_the_series_name(prometheus):
    src = PromQLHostSource("fleet", prometheus.url, 1.0, 5.0, {"targets.up": "sum by (job) (up)"},
                           host_label="job")
    reading = await src.poll()
    await src.close()
    assert reading.values == {"host:node/targets.up": 1.0}


async def test_bad_promql_is_one_line_naming_the_metric(prometheus):
    src = PromQLHostSource("fleet", prometheus.url, 1.0, 5.0,
                           {"load.1": "node_load1",
                            "cpu.percent": "100 * (1 - avg(rate(node_cpu_seconds_total[1m])"})
    with pytest.raises(SourceError) as err:
        await src.poll()
    await src.close()
    msg = str(err.value)
    assert msg.startswith("host:fleet: query for 'cpu.percent' failed: bad_data: invalid parameter")
    assert "\n" not in msg


@pytest.mark.parametrize("query,message", [
    ("sum(up)", "returned series without the 'instance' label (group it with `by (instance)`)"),
    ("1 + 1", "returned a scalar result; it must return an instant vector"),
])
async def test_queries_of_the_wrong_shape_are_explained(prometheus, query, message):
    src = PromQLHostSource("fleet", prometheus.url, 1.0, 5.0, {"x": query})
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        await src.poll()
    await src.close()


def envelope(status: int, doc: dict) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(doc).encode()


OK_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"instance": "web-1:9100"}, "value": [1795438711.49, "14.25"]},
    {"metric": {"instance": "web/2:9100"}, "value": [1795438711.49, "7"]},
    {"metric": {"instance": "web-4:9100"}, "value": [1795438711.49, "NaN"]},
    {"metric": {"instance": "web-3:9100"}, "value": [1795438711.49, "3"]}]}}


def by_query(answers: dict[str, tuple[int, dict[str, str], bytes]]):
    def route(handler):
        query = dict(p.split("=", 1) for p in handler.body.decode().split("&"))["query"]
        return answers[query]
    return route


async def test_a_transient_failure_of_one_query_keeps_the_others():
    answers = {
        "good": envelope(200, OK_VECTOR),
        "slow": envelope(503, {"status": "error", "errorType": "timeout", "error": "query timed out"}),
    }
    with CannedHttpServer({"/api/v1/query": by_query(answers)}) as srv:
        src = PromQLHostSource("fleet", srv.url, 1.0, 2.0, {"cpu.percent": "good", "load.1": "slow"})
        reading = await src.poll()
        await src.close()
    assert reading.values == {"host:web-1:9100/cpu.percent": 14.25, "host:web_2:9100/cpu.percent": 7.0,
                              "host:web-3:9100/cpu.percent": 3.0}
    assert "query for 'load.1' failed: timeout: query timed out" in reading.details["errors"]["load.1"]


async def test_unprocessable_queries_and_auth_failures_are_errors():
    error = {"status": "error", "errorType": "execution", "error": "many-to-many matching"}
    answers = {"bad": envelope(422, error)}
    with CannedHttpServer({"/api/v1/query": by_query(answers),
                           "/auth/api/v1/query": (401, {}, b"Unauthorized")}) as srv:
        src = PromQLHostSource("fleet", srv.url, 1.0, 2.0, {"cpu.percent": "bad"})
        with pytest.raises(SourceError, match=r"query for 'cpu\.percent' failed: execution: many-to-many"):
            await src.poll()
        await src.close()
        src = PromQLHostSource("fleet", srv.url + "/auth", 1.0, 2.0, {"cpu.percent": "x"},
                               headers={"Authorization": "Bearer hunter22"})
        with pytest.raises(SourceError) as err:
            await src.poll()
        await src.close()
    assert "authentication failed: HTTP 401" in str(err.value) and "hunter22" not in str(err.value)


async def test_a_page_that_is_not_the_prometheus_api_is_named():
    html = (200, {"Content-Type": "text/html"}, b"<html>Grafana</html>")
    with CannedHttpServer({"/api/v1/query": html}) as srv:
        src = PromQLHostSource("fleet", srv.url, 1.0, 2.0, {"cpu.percent": "x"})
        with pytest.raises(SourceError, match="response is not the Prometheus API's JSON"):
            await src.poll()
        await src.close()


def big_vector(n: int) -> list[dict]:
    """n series as a real answer has them (~110 bytes each: 50,000 are ~6 MiB)."""
    return [{"metric": {"__name__": "node_load1", "instance": f"pod-{i:05d}", "job": "node"},
             "value": [1795438711.49, "1.25"]} for i in range(n)]


def answer(result: list[dict], layout: str) -> tuple[int, dict[str, str], bytes]:
    doc = {"status": "success", "data": {"resultType": "vector", "result": result}}
    if layout == "reordered":  # not the order Prometheus writes: decoded in one piece instead
        doc = {"data": {"result": result, "resultType": "vector"}, "status": "success"}
    text = json.dumps(doc, separators=(",", ":")) if layout == "compact" else json.dumps(doc)
    return 200, {"Content-Type": "application/json"}, text.encode()


@pytest.mark.parametrize("layout", ["compact", "spaced", "reordered"])
async def test_a_query_answering_more_series_than_the_cap_is_capped_with_one_warning(caplog, layout):
    answers = {"big": answer(big_vector(50_000), layout), "good": envelope(200, OK_VECTOR)}
    with CannedHttpServer({"/api/v1/query": by_query(answers)}) as srv:
        src = PromQLHostSource("fleet", srv.url, 1.0, 5.0, {"cpu.percent": "big", "load.1": "good"},
                               max_series=2_000)
        with caplog.at_level("WARNING", logger="surgewatch.sources"):
            first = await src.poll()
            second = await src.poll()
        await src.close()
    for reading in (first, second):
        cpu = [k for k in reading.values if k.endswith("/cpu.percent")]
        assert len(cpu) == 2_000 and reading.values["host:pod-01999/cpu.percent"] == 1.25
        assert reading.values["host:web-3:9100/load.1"] == 3.0  # the other query is untouched
    warnings = [r.getMessage() for r in caplog.records if "max_series" in r.getMessage()]
    assert warnings == ["host:fleet: query for 'cpu.percent' returned 50000 series; only the first 2000 are kept "
                        "(the max_series cap of this source; warned once)"]


async def test_a_large_answer_under_the_cap_is_read_whole_and_a_cut_one_is_named():
    cut = answer(big_vector(20_000), "compact")
    answers = {"under": answer(big_vector(8_000), "compact"), "cut": (200, cut[1], cut[2][: len(cut[2]) // 2])}
    with CannedHttpServer({"/api/v1/query": by_query(answers)}) as srv:
        src = PromQLHostSource("fleet", srv.url, 1.0, 5.0, {"load.1": "under"})
        assert len((await src.poll()).values) == 8_000
        await src.close()
        src = PromQLHostSource("fleet", srv.url, 1.0, 5.0, {"load.1": "cut"})
        with pytest.raises(SourceError, match="response is not the Prometheus API's JSON"):
            await src.poll()
        await src.close()


async def test_group_label_names_each_hosts_group_from_the_real_prometheus(prometheus):
    instance = f"127.0.0.1:{prometheus.extra['node'].port}"
    src = PromQLHostSource("fleet", prometheus.url, 1.0, 5.0, {"targets.up": "sum by (instance, job) (up)"},
                           group_label="job")
    reading = await src.poll()
    await src.close()
    assert reading.values == {f"host:{instance}/targets.up": 1.0}
    assert reading.details["groups"] == {instance: "node"}


def test_default_queries_keep_the_group_label_so_groups_can_be_read():
    queries = default_queries("instance", group_label="job")
    assert all("by (instance, job)" in q for q in queries.values())
    assert all("job" not in q for q in default_queries("instance").values())


EDGES = [
    {"metric": {"instance": "web-\x1b]0;pwned\x07a", "job": "pool-\x1b[2Jx"}, "value": [1.0, "1.5"]},
    {"metric": {"instance": "web-b", "job": "pool/2"}, "value": [1.0, "NaN"]},
    {"metric": {"instance": "web-c", "job": "pool-3"}, "value": [1.0, "+Inf"]},
    {"metric": {"instance": "web-d"}, "value": [1.0, "-Inf"]},
    {"metric": {"instance": "web-e", "job": "pool-5"}, "value": [1.0, "2"]},
    {"metric": {"instance": "web-e", "job": "pool-6"}, "value": [1.0, "3"]},  # the same label set again: it wins
    {"metric": {"instance": "web-\x07f\r"}, "value": [1.0, "4"]},
    {"metric": {"instance": "web-f"}, "value": [1.0, "5"]},  # the same name once made safe: the later one wins
    {"metric": {"job": "pool-7"}, "value": [1.0, "6"]},  # no host label
    {"metric": {"instance": ""}, "value": [1.0, "6"]},
    {"metric": {"instance": "web-g", "job": ""}, "value": [1.0, "not a number"]},
    {"metric": {"instance": "web-h", "job": 7}, "value": [1.0]},
    {"metric": {"instance": "web-i", "job": 7}, "value": [1.0, "-0.25"]},
    "not a series",
]


async def test_label_values_are_made_safe_and_odd_samples_dropped_the_same_on_every_poll():
    answers = {"edges": answer(EDGES, "spaced"),
               "moved": answer([dict(e, value=[2.0, "9"]) if isinstance(e, dict) else e for e in EDGES], "compact")}
    with CannedHttpServer({"/api/v1/query": by_query(answers)}) as srv:
        src = PromQLHostSource("fleet", srv.url, 1.0, 5.0, {"cpu.percent": "edges", "load.1": "moved"},
                               group_label="job")
        first, second = await src.poll(), await src.poll()  # the second from the names kept
        await src.close()
    for reading in (first, second):
        assert {k: v for k, v in reading.values.items() if k.endswith("/cpu.percent")} == {
            "host:web-a/cpu.percent": 1.5, "host:web-e/cpu.percent": 3.0, "host:web-f/cpu.percent": 5.0,
            "host:web-i/cpu.percent": -0.25}  # the collector's screen rejects a negative CPU, not the decoding
        assert {k for k, v in reading.values.items() if k.endswith("/load.1") and v == 9.0} == {
            f"host:web-{c}/load.1" for c in "abcdefghi"}
        assert reading.details["groups"] == {"web-a": "pool-x", "web-b": "pool_2", "web-c": "pool-3",
                                             "web-e": "pool-6"}


async def test_hosts_that_come_and_go_keep_their_names_right_past_the_kept_names():
    waves = iter([answer([{"metric": {"instance": f"h{w}-{i}"}, "value": [1.0, str(i)]} for i in range(30)],
                         "compact") for w in range(8)])
    with CannedHttpServer({"/api/v1/query": lambda handler: next(waves)}) as srv:
        src = PromQLHostSource("fleet", srv.url, 1.0, 5.0, {"cpu.percent": "q"}, max_series=10)
        for w in range(8):  # a new fleet each poll; max_series 10: the names kept start over every few polls
            reading = await src.poll()
            assert reading.values == {f"host:h{w}-{i}/cpu.percent": float(i) for i in range(10)}
        await src.close()
