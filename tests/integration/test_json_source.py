"""The generic JSON source against a loopback server: dotted paths, item lists, strings as numbers, shapes.

Runtime: about 0.4 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from surgewatch.sources.base import SourceError
from surgewatch.sources.jsonapi import JsonTrafficSource
from tests.support.fakes import FakeJson

CAMPAIGNS = [("spring-sale", "spring_sale"), ("tv", "tv_spot"), ("none", "absent")]


async def poll(doc: Any, **kw: Any) -> Any:
    with FakeJson(doc) as fake:
        src = JsonTrafficSource("api", fake.endpoint, kw.pop("campaigns", CAMPAIGNS), 1.0, 2.0, **kw)
        try:
            return await src.poll()
        finally:
            await src.close()


async def test_dotted_path_to_one_number() -> None:
    r = await poll({"data": {"realtime": {"visitors": 42}}}, value="data.realtime.visitors", campaigns=[])
    assert r.values == {"traffic:api/visitors": 42.0}


async def test_list_indexes_and_numbers_as_strings() -> None:
    r = await poll({"sites": [{"v": "1"}, {"v": "17.5"}]}, value="sites.1.v", campaigns=[])
    assert r.values == {"traffic:api/visitors": 17.5}


async def test_single_value_with_campaigns_gives_a_notice_not_series() -> None:
    r = await poll({"v": 3}, value="v")
    assert r.values == {"traffic:api/visitors": 3.0}
    assert "spring-sale" in r.details["notice"]


async def test_items_give_one_number_per_campaign_and_their_sum_as_total() -> None:
    doc = {"data": {"campaigns": [{"name": "spring_sale", "visitors": "120"},
                                  {"name": "tv_spot", "visitors": 30},
                                  {"name": "other", "visitors": 5}]}}
    r = await poll(doc, items="data.campaigns", key="name", value="visitors")
    assert r.values == {"traffic:api/visitors": 155.0, "campaign:spring-sale/visitors": 120.0,
                        "campaign:tv/visitors": 30.0, "campaign:none/visitors": 0.0}


async def test_items_as_an_object_keyed_by_campaign() -> None:
    r = await poll({"by": {"spring_sale": {"n": 2}, "tv_spot": {"n": "3"}}}, items="by", value="n")
    assert r.values["campaign:tv/visitors"] == 3.0 and r.values["traffic:api/visitors"] == 5.0


@pytest.mark.parametrize(("doc", "kw", "message"), [
    ({"data": {}}, {"value": "data.realtime.visitors"},
     r"^traffic:api: value path 'data.realtime.visitors': response has no 'data.realtime' "
     r"\(keys there: none\)$"),
    ({"data": [1]}, {"value": "data.3"}, r"value path 'data.3': .*past the end of a list of 1"),
    ({"v": "lots"}, {"value": "v"}, r"value path 'v': the value at 'v' is 'lots', expected a number"),
    ({"v": None}, {"value": "v"}, r"value path 'v': the value at 'v' is null, expected a number"),
    ({"data": {"campaigns": 3}}, {"items": "data.campaigns", "value": "n"},
     r"items path 'data.campaigns' is not a list or object of items"),
    ({"c": [{"label": "x", "n": 1}]}, {"items": "c", "key": "name", "value": "n"},
     r"items path 'c': item 0 has no key 'name'"),
    ({"c": [{"name": "x", "n": {}}]}, {"items": "c", "value": "n"}, r"items\[0\] value path 'n'"),
])
async def test_wrong_shapes_are_one_line_naming_the_path(doc: Any, kw: dict[str, str], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        await poll(doc, **kw)
