"""Config → build_sources for every traffic kind: required keys, campaign utm values, one source each.

Runtime: about 0.3 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from surgewatch.config import ConfigError, parse_config
from surgewatch.sources import build_sources
from tests.support.fakes import FakeJson

ALL_KINDS = """
[[traffic]]
name = "nginx"
source = "access-log"
path = "{log}"
format = "json"
window = "1m"

[[traffic]]
name = "api"
source = "json"
url = "{url}"
items = "campaigns"
value = "visitors"

[[traffic]]
name = "plaus"
source = "plausible"
site_id = "shop.example.com"
token = "${{PLAUSIBLE_TOKEN}}"

[[traffic]]
name = "um"
source = "umami"
url = "https://umami.example"
site_id = "86d4095c"
username = "admin"
password = "${{UMAMI_PASSWORD}}"

[[traffic]]
name = "mato"
source = "matomo"
url = "https://matomo.example"
site_id = 3
token = "t"

[[traffic]]
name = "ga"
source = "ga4"
site_id = "123456789"
token = "ya29.x"

[[traffic]]
name = "prom"
source = "promql"
url = "http://127.0.0.1:9090"
query = "sum by (utm_campaign) (rate(requests_total[1m]))"
campaign_label = "utm_campaign"

[[campaign]]
name = "spring-sale"
traffic = "nginx"
utm_campaign = "spring_sale"

[[campaign]]
name = "tv"
traffic = "api"
"""
ENV = {"PLAUSIBLE_TOKEN": "secret-plausible", "UMAMI_PASSWORD": "pw"}


def test_every_traffic_kind_is_built_from_config(tmp_path: Path) -> None:
    cfg = parse_config(ALL_KINDS.format(log=tmp_path / "a.log", url="http://127.0.0.1:1/x"), environ=ENV)
    sources = build_sources(cfg)
    assert [type(s).__name__ for s in sources] == [
        "AccessLogSource", "JsonTrafficSource", "PlausibleSource", "UmamiSource", "MatomoSource", "GA4Source",
        "PromQLTrafficSource"]
    assert [s.name for s in sources] == ["traffic:nginx", "traffic:api", "traffic:plaus", "traffic:um",
                                         "traffic:mato", "traffic:ga", "traffic:prom"]
    log_source = sources[0]
    assert log_source.stats.by_utm == {"spring_sale": ["spring-sale"]}  # type: ignore[attr-defined]
    assert log_source.stats.window == 60.0  # type: ignore[attr-defined]
    assert sources[1].campaigns == [("tv", "tv")]  # type: ignore[attr-defined]  # utm defaults to the name
    assert sources[4].site_id == "3"  # type: ignore[attr-defined]


async def test_a_built_json_source_feeds_its_campaign_end_to_end(tmp_path: Path) -> None:
    with FakeJson({"campaigns": [{"name": "tv", "visitors": "12"}, {"name": "x", "visitors": 1}]}) as fake:
        cfg = parse_config(ALL_KINDS.format(log=tmp_path / "a.log", url=fake.endpoint), environ=ENV)
        src = build_sources(cfg)[1]
        reading = await src.poll()
        await src.close()
    assert reading.values == {"traffic:api/visitors": 13.0, "campaign:tv/visitors": 12.0}


@pytest.mark.parametrize(("table", "message"), [
    ('source = "access-log"', r"^config.toml:1: traffic \"t\": source 'access-log' needs path$"),
    ('source = "json"\nurl = "http://127.0.0.1:1/"', "source 'json' needs value"),
    ('source = "plausible"', "source 'plausible' needs site_id"),
    ('source = "matomo"\nsite_id = "1"', "source 'matomo' needs url"),
    ('source = "ga4"\nsite_id = "1"', "source 'ga4' needs token"),
    ('source = "promql"\nurl = "http://127.0.0.1:9090"', "source 'promql' needs query"),
    ('source = "umami"\nsite_id = "w"\nurl = "https://u.example"', "needs token .* or username and password"),
    ('source = "umami"\nsite_id = "w"\nusername = "a"\npassword = "b"', "needs url when self-hosted"),
    ('source = "access-log"\npath = "/x"\nwindow = "soon"', r"config.toml:5: .*window must be a duration"),
    ('source = "access-log"\npath = "/x"\nformat = "xml"', "format must be one of combined, json"),
])
def test_missing_or_bad_traffic_keys_are_one_line_naming_the_entry(table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(f'[[traffic]]\nname = "t"\n{table}\n')
