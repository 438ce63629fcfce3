"""Host groups: from a fleet source's group label first, else the `group` key of the host table."""

from __future__ import annotations

import json

import pytest

from surgewatch.config import ConfigError, parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.hostgroups import HostGroups, by_group
from surgewatch.recording.replay import ReplayDispatcher
from tests.support.servers import CannedHttpServer

CONFIG = """
[[host]]
name = "web-1"
source = "local"
group = "web"

[[host]]
name = "fleet"
source = "promql"
url = "http://127.0.0.1:9"
group_label = "job"
group = "edge"

[[host]]
name = "db-1"
source = "local"
"""


def test_a_host_table_names_its_group_and_a_fleet_label_overrides_the_fleet_default():
    cfg = parse_config(CONFIG, "surgewatch.toml", {})
    fleet = cfg.hosts[1]
    assert (fleet.group, fleet.group_label) == ("edge", "job")
    groups = HostGroups(cfg.hosts)
    assert groups.configured
    assert groups.group_of("web-1") == "web"
    assert groups.group_of("db-1") is None
    reported = {"groups": {"10.0.0.7:9100": "api"}}
    assert groups.group_of("10.0.0.7:9100", "host:fleet", reported) == "api"
    assert groups.group_of("10.0.0.8:9100", "host:fleet", reported) == "edge"  # no label value: the table's


def test_a_group_that_is_not_a_string_is_one_line_naming_the_table():
    with pytest.raises(ConfigError) as err:
        parse_config('[[host]]\nname = "w"\nsource = "local"\ngroup = 3\n', "surgewatch.toml", {})
    assert "group" in str(err.value) and "\n" not in str(err.value)


def test_by_group_keeps_first_seen_order_and_puts_ungrouped_hosts_under_none():
    class H:
        def __init__(self, name: str, group: str | None) -> None:
            self.name, self.group = name, group

    hosts = [H("a", "web"), H("b", None), H("c", "web"), H("d", "db")]
    grouped = by_group(hosts)
    assert list(grouped) == ["web", None, "db"]
    assert [h.name for h in grouped["web"]] == ["a", "c"]


async def test_the_dashboard_snapshot_carries_each_fleet_hosts_group_from_its_label(tmp_path) -> None:
    def answer(_handler: object) -> tuple[int, dict[str, str], bytes]:
        result = [{"metric": {"instance": f"web-{i}", "job": "web" if i < 2 else "api"}, "value": [1.0, "42"]}
                  for i in range(3)] + [{"metric": {"instance": "lone"}, "value": [1.0, "7"]}]
        doc = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()

    with CannedHttpServer({"/api/v1/query": answer}) as srv:
        cfg = parse_config(f'[monitor]\nstate_dir = "{tmp_path}"\n[[host]]\nname = "fleet"\nsource = "promql"\n'
                           f'url = "{srv.url}"\ngroup_label = "job"\ngroup = "other"\n'
                           '[host.queries]\n"cpu.percent" = "pod_cpu"\n', "test.toml", {})
        now = [1_800_000_000.0]
        engine = Engine(cfg, EngineOptions(clock=lambda: now[0], dispatcher=ReplayDispatcher(())))
        assert await engine.collector.poll_once(engine.sources[0])
        engine.tick(now[0])
        snap = engine.snapshot()
        await engine.shutdown(1.0)
    groups = {h.name: h.group for h in snap.hosts}
    assert groups == {"web-0": "web", "web-1": "web", "web-2": "api", "lone": "other"}
