"""The access-log source: parsing both formats, tailing through rotation/truncation, and a REAL nginx log.

Runtime: about 2 s (four short-lived nginx instances on loopback ports).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from surgewatch.sources.accesslog import (
    AccessLogSource,
    AccessLogStats,
    LogTail,
    campaign_from_target,
    parse_combined,
    parse_json_line,
)
from surgewatch.sources.base import SourceError
from tests.support.servers import ServerProcess, require_binary, start_nginx, wait_until

DATA = Path(__file__).parents[1] / "data"

COMBINED = ('203.0.113.7 - - [23/Nov/2026:12:59:58 +0000] '
            '"GET /sale.html?utm_source=news&utm_campaign=black_friday HTTP/1.1" 200 17 "-" '
            '"Mozilla/5.0 (X11) Firefox/120.0"')


class FakeClock:
    """A settable monotonic clock."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# ---------------------------------------------------------------------------------------------
# Parsing


def test_combined_line_yields_client_status_and_campaign() -> None:
    assert parse_combined(COMBINED) == ("203.0.113.7", 200, "black_friday", None)


def test_combined_line_with_trailing_request_time_gives_seconds() -> None:
    assert parse_combined(COMBINED + " rt=0.250") == ("203.0.113.7", 200, "black_friday", 0.25)
    assert parse_combined(COMBINED + " 0.004")[3] == pytest.approx(0.004)  # type: ignore[index]


def test_common_format_without_referer_and_agent_parses() -> None:
    line = '10.0.0.1 - bob [23/Nov/2026:12:00:00 +0000] "POST /api HTTP/1.1" 502 0'
    assert parse_combined(line) == ("10.0.0.1", 502, None, None)


def test_escaped_quotes_in_user_agent_do_not_break_combined_parsing() -> None:
    line = ('10.0.0.2 - - [23/Nov/2026:12:00:00 +0000] "GET /?utm_campaign=x HTTP/1.1" 200 5 "-" '
            '"evil \\"agent\\" 1.0"')
    assert parse_combined(line) == ("10.0.0.2", 200, "x", None)


@pytest.mark.parametrize("line", ["", "garbage", '1.2.3.4 - - [x] "GET / HTTP/1.1" abc 5', "{}"])
def test_malformed_combined_lines_are_rejected(line: str) -> None:
    assert parse_combined(line) is None


def test_campaign_is_url_decoded_and_empty_means_none() -> None:
    assert campaign_from_target("/p?a=1&utm_campaign=spring%20sale&b=2") == "spring sale"
    assert campaign_from_target("/p?utm_campaign=spring+sale") == "spring sale"
    assert campaign_from_target("/p?utm_campaign=&x=1") is None
    assert campaign_from_target("/p?not_utm_campaign=x") is None


def test_json_lines_from_the_nginx_sample_parse() -> None:
    lines = (DATA / "nginx-campaign-json-log.sample").read_text().splitlines()
    hits = [parse_json_line(x) for x in lines]
    assert hits == [("127.0.0.1", 200, None, 0.0), ("127.0.0.1", 200, "black_friday", 0.0),
                    ("127.0.0.1", 200, "black_friday", 0.0)]


def test_json_line_takes_campaign_from_request_uri_when_no_utm_field() -> None:
    hit = parse_json_line('{"remote_addr":"10.1.1.1","status":"503","request_uri":"/x?utm_campaign=tv",'
                          '"response_ms":12}')
    assert hit == ("10.1.1.1", 503, "tv", pytest.approx(0.012))
    assert parse_json_line('{"ip":"a","status":200,"args":"utm_source=x&utm_campaign=mail"}') == \
        ("a", 200, "mail", None)


@pytest.mark.parametrize("line", ["not json", "[1,2]", '{"remote":"a"}', '{"status":"abc"}'])
def test_unusable_json_lines_are_rejected(line: str) -> None:
    assert parse_json_line(line) is None


# ---------------------------------------------------------------------------------------------
# Tailing a plain file


def test_tail_starts_at_the_end_and_returns_only_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"old 1\nold 2\n")
    tail = LogTail(str(log))
    assert tail.read_lines() == []
    with open(log, "ab") as f:
        f.write(b"new 1\nnew 2 half")
    assert tail.read_lines() == [b"new 1"]
    with open(log, "ab") as f:
        f.write(b"-done\n")
    assert tail.read_lines() == [b"new 2 half-done"]
    tail.close()


def test_tail_follows_rotation_and_reads_late_writes_to_the_old_file(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"")
    tail = LogTail(str(log))
    tail.read_lines()
    with open(log, "ab") as old:
        old.write(b"before\n")
        os.rename(log, tmp_path / "a.log.1")
        log.write_bytes(b"new file\n")  # logrotate `create`: the writer has not reopened yet
        old.write(b"late to old\n")
        old.flush()
        assert sorted(tail.read_lines()) == [b"before", b"late to old", b"new file"]
        old.write(b"later still\n")
    with open(log, "ab") as f:
        f.write(b"new 2\n")
    assert sorted(tail.read_lines()) == [b"later still", b"new 2"]
    assert tail.rotations == 1
    tail.close()


def test_tail_waits_for_the_new_file_after_a_move(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"")
    tail = LogTail(str(log))
    tail.read_lines()
    os.rename(log, tmp_path / "a.log.1")
    assert tail.read_lines() == []
    log.write_bytes(b"created later\n")
    assert tail.read_lines() == [b"created later"]


def test_tail_restarts_at_zero_after_truncation(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"x" * 100 + b"\n")
    tail = LogTail(str(log))
    tail.read_lines()
    with open(log, "r+b") as f:
        f.truncate(0)
    with open(log, "ab") as f:
        f.write(b"after\n")
    assert tail.read_lines() == [b"after"]
    assert tail.truncations == 1


def test_missing_log_is_one_clear_error(tmp_path: Path) -> None:
    src = AccessLogSource("web", str(tmp_path / "nope.log"), "combined", [], 1.0, 1.0)
    with pytest.raises(SourceError, match=r"^traffic:web: access log .*nope.log: no such file$"):
        src.collect()


def test_directory_instead_of_log_is_one_clear_error(tmp_path: Path) -> None:
    src = AccessLogSource("web", str(tmp_path), "json", [], 1.0, 1.0)
    with pytest.raises(SourceError, match="is a directory"):
        src.collect()


def test_oversized_and_binary_lines_are_counted_as_malformed(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"")
    src = AccessLogSource("web", str(log), "combined", [], 1.0, 1.0)
    src.collect()
    with open(log, "ab") as f:
        f.write(b"\xff\xfe binary\n" + b"y" * 100_000 + b"\n" + COMBINED.encode() + b"\n")
    reading = src.collect()
    assert reading.details["requests"] == 1
    assert reading.details["malformed_lines"] == 2
    assert "malformed combined line(s)" in reading.details["notice"]


# ---------------------------------------------------------------------------------------------
# Aggregation


def test_visitors_are_distinct_addresses_within_the_window() -> None:
    stats = AccessLogStats("web", [("bf", "black_friday")], window=60.0)
    bf = ("a", 200, "black_friday", None)
    stats.add([bf, bf, ("b", 200, None, None)], 0.0)
    v = stats.take(0.0, None)
    assert v["traffic:web/visitors"] == 2 and v["campaign:bf/visitors"] == 1
    assert "traffic:web/requests_per_s" not in v  # first poll: no interval to divide by
    stats.add([("c", 500, "black_friday", 0.1)], 30.0)
    v = stats.take(30.0, 30.0)
    assert v["traffic:web/visitors"] == 3 and v["campaign:bf/visitors"] == 2
    assert v["traffic:web/requests_per_s"] == pytest.approx(1 / 30)
    assert v["traffic:web/error_ratio"] == 1.0
    v = stats.take(75.0, 45.0)  # a and b last seen at 0 (> 60 s ago), c at 30
    assert v["traffic:web/visitors"] == 1 and v["campaign:bf/visitors"] == 1
    assert v["traffic:web/requests_per_s"] == 0.0 and v["traffic:web/error_ratio"] == 0.0
    assert "traffic:web/response_ms.p50" not in v


def test_response_time_percentiles_are_in_milliseconds() -> None:
    stats = AccessLogStats("web", [], window=60.0)
    stats.add([("a", 200, None, i / 1000) for i in range(1, 101)], 1.0)
    v = stats.take(1.0, 1.0)
    assert v["traffic:web/response_ms.p50"] == pytest.approx(50.5)
    assert v["traffic:web/response_ms.p95"] == pytest.approx(95.05)


def test_unconfigured_campaigns_are_reported_but_bounded() -> None:
    stats = AccessLogStats("web", [], window=60.0)
    stats.add([("a", 200, f"c{i}", None) for i in range(5000)], 1.0)
    assert len(stats.other_campaigns) == 1000


def test_two_campaigns_with_the_same_utm_value_both_get_series() -> None:
    stats = AccessLogStats("web", [("a", "x"), ("b", "x")], window=60.0)
    stats.add([("1", 200, "x", None)], 1.0)
    v = stats.take(2.0, 1.0)
    assert v["campaign:a/requests_per_s"] == v["campaign:b/requests_per_s"] == 1.0


# ---------------------------------------------------------------------------------------------
# A real nginx writing real logs

HTTP_CONF = r"""
  set_real_ip_from 127.0.0.1;
  real_ip_header X-Forwarded-For;
  log_format combined_rt '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                         '"$http_referer" "$http_user_agent" rt=$request_time';
  log_format campaign_json escape=json '{"ts":"$time_iso8601","remote":"$remote_addr",'
    '"method":"$request_method","uri":"$uri","status":$status,"bytes":$body_bytes_sent,"rt":$request_time,"utm_source":"$arg_utm_source",'
    '"utm_medium":"$arg_utm_medium","utm_campaign":"$arg_utm_campaign","ua":"$http_user_agent"}';
  access_log __DIR__/access_rt.log combined_rt;
  access_log __DIR__/campaign.json.log campaign_json;
"""
SERVER_CONF = 'location / { return 200 "ok\\n"; }\n    location /boom { return 503; }'
CAMPAIGNS = [("black-friday", "black_friday"), ("cyber", "cyber_monday")]


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[ServerProcess]:
    require_binary("nginx")
    workdir = tmp_path / "nginx"
    with start_nginx(workdir, SERVER_CONF, HTTP_CONF.replace("__DIR__", str(workdir))) as server:
        yield server


def send(server: ServerProcess, path: str, client: str, n: int = 1) -> None:
    """n GETs of `path` as if from `client` (X-Forwarded-For, honoured by nginx's realip)."""
    with httpx.Client(base_url=server.url, trust_env=False) as http:
        for _ in range(n):
            http.get(path, headers={"X-Forwarded-For": client})


def wait_lines(path: Path, n: int) -> None:
    """Wait until nginx has written n lines to `path` (it logs just after answering)."""
    def count() -> bool:
        return path.exists() and path.read_bytes().count(b"\n") >= n
    wait_until(count, 5.0, f"{n} lines in {path.name}", interval=0.01)


def campaign_traffic(server: ServerProcess) -> None:
    """Six black_friday requests from three clients, three cyber_monday from two, two plain, two 503s."""
    for i in range(3):
        path = "/sale.html?utm_source=newsletter&utm_medium=email&utm_campaign=black_friday"
        send(server, path, f"10.0.0.{i}", 2)
    send(server, "/deal?utm_campaign=cyber_monday", "10.0.1.1", 2)
    send(server, "/deal?utm_campaign=cyber_monday&utm_source=tv", "10.0.1.2")
    send(server, "/", "10.0.2.1", 2)
    send(server, "/boom?utm_campaign=unplanned", "10.0.2.2", 2)


@pytest.mark.parametrize(("log_name", "fmt"), [("access.log", "combined"), ("campaign.json.log", "json"),
                                               ("access_rt.log", "combined")])
def test_real_nginx_log_counts_campaigns_visitors_and_errors(nginx: ServerProcess, log_name: str,
                                                             fmt: str) -> None:
    log = nginx.workdir / log_name
    send(nginx, "/history?utm_campaign=black_friday", "10.9.9.9", 3)  # already in the log: not a burst
    wait_lines(log, 3)
    clock = FakeClock()
    src = AccessLogSource("nginx", str(log), fmt, CAMPAIGNS, 1.0, 1.0, window=300.0, clock=clock)
    first = src.collect()
    assert first.details["requests"] == 0 and first.values["traffic:nginx/visitors"] == 0
    campaign_traffic(nginx)
    wait_lines(log, 3 + 13)
    clock.t += 2.0
    r = src.collect()
    v = r.values
    assert r.details["requests"] == 13 and r.details["malformed_lines"] == 0
    assert v["traffic:nginx/requests_per_s"] == pytest.approx(6.5)
    assert v["traffic:nginx/visitors"] == 7
    assert v["traffic:nginx/error_ratio"] == pytest.approx(2 / 13)
    assert v["campaign:black-friday/visitors"] == 3
    assert v["campaign:black-friday/requests_per_s"] == pytest.approx(3.0)
    assert v["campaign:cyber/visitors"] == 2
    assert v["campaign:cyber/requests_per_s"] == pytest.approx(1.5)
    assert r.details["other_campaigns"] == {"unplanned": 2}
    timed = log_name != "access.log"  # plain combined has no response time
    assert ("traffic:nginx/response_ms.p95" in v) is timed
    if timed:
        assert 0.0 <= v["traffic:nginx/response_ms.p50"] <= v["traffic:nginx/response_ms.p95"] < 1000.0


async def test_real_nginx_log_rotation_with_reopen_signal_loses_nothing(nginx: ServerProcess) -> None:
    log = nginx.workdir / "campaign.json.log"
    wait_until(log.exists, 5.0, "nginx log file")
    src = AccessLogSource("nginx", str(log), "json", CAMPAIGNS, 1.0, 1.0)
    await src.poll()
    send(nginx, "/?utm_campaign=black_friday", "10.0.0.1", 5)
    wait_lines(log, 5)
    assert (await src.poll()).details["requests"] == 5
    os.rename(log, nginx.workdir / "campaign.json.log.1")  # logrotate: move, then tell nginx to reopen
    send(nginx, "/?utm_campaign=black_friday", "10.0.0.2", 3)  # still written to the moved file
    wait_lines(nginx.workdir / "campaign.json.log.1", 8)
    os.kill(nginx.pid, signal.SIGUSR1)
    wait_until(log.exists, 5.0, "nginx reopened its log")
    send(nginx, "/?utm_campaign=cyber_monday", "10.0.0.3", 4)
    wait_lines(log, 4)
    total = 0
    counts = {"black-friday": 0, "cyber": 0}
    for _ in range(3):  # the old file is drained, then the new one; a late reopen needs another poll
        r = await src.poll()
        total += r.details["requests"]
        for k, n in r.details["campaign_requests"].items():
            counts[k] += n
        if total >= 7:
            break
    assert total == 7
    assert counts == {"black-friday": 3, "cyber": 4}
    assert src.tail.rotations == 1
    assert r.values["traffic:nginx/visitors"] == 3
    await src.close()


async def test_real_nginx_log_truncation_restarts_from_the_top(nginx: ServerProcess) -> None:
    log = nginx.workdir / "access.log"
    src = AccessLogSource("nginx", str(log), "combined", CAMPAIGNS, 1.0, 1.0)
    send(nginx, "/?utm_campaign=cyber_monday", "10.0.0.1", 6)
    wait_lines(log, 6)
    await src.poll()  # opens at the end: the six are history
    send(nginx, "/?utm_campaign=cyber_monday", "10.0.0.1", 4)
    wait_lines(log, 10)
    assert (await src.poll()).details["requests"] == 4
    os.truncate(log, 0)  # copytruncate; nginx appends (O_APPEND) so it writes from 0 again
    send(nginx, "/?utm_campaign=black_friday", "10.0.0.5", 2)
    wait_lines(log, 2)
    r = await src.poll()
    assert r.details["requests"] == 2 and r.details["campaign_requests"]["black-friday"] == 2
    assert r.details["truncations"] == 1
    await src.close()
