"""Matomo client against a loopback fake of index.php: counters as strings, campaign segments, bulk calls.

Runtime: about 0.4 s.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from surgewatch.sources.base import SourceError
from surgewatch.sources.matomo import MatomoSource, campaign_segment
from tests.support.fakes import FakeMatomo, json_route

CAMPAIGNS = [("black-friday", "black_friday"), ("spring", "spring sale"), ("quiet", "nothing")]


def make(fake: FakeMatomo, token: str | None = None, campaigns: list[tuple[str, str]] | None = None,
         window: float | None = None) -> MatomoSource:
    pairs = CAMPAIGNS if campaigns is None else campaigns
    return MatomoSource("site", fake.url, fake.id_site, pairs, 1.0, 2.0, token=token or fake.token,
                        window=window)


async def test_counters_as_strings_and_one_bulk_request_for_all_campaigns() -> None:
    with FakeMatomo(visitors=33, campaigns={"black_friday": 12, "spring sale": 4}) as fake:
        src = make(fake)
        reading = await src.poll()
        await src.close()
    assert reading.values == {"traffic:site/visitors": 33.0, "campaign:black-friday/visitors": 12.0,
                              "campaign:spring/visitors": 4.0, "campaign:quiet/visitors": 0.0}
    assert len(fake.requests) == 1
    req = fake.requests[0]
    assert req.method == "POST" and req.query["method"] == "API.getBulkRequest"
    subs = [parse_qs(v) for k, v in sorted(req.form().items()) if k.startswith("urls[")]
    assert subs[0]["lastMinutes"] == ["5"] and "segment" not in subs[0]
    assert {s["segment"][0] for s in subs[1:]} == {"referrerType==campaign;referrerName==black_friday",
                                                  "referrerType==campaign;referrerName==nothing",
                                                  "referrerType==campaign;referrerName==spring%20sale"}


async def test_token_travels_in_the_post_body_never_in_the_url() -> None:
    with FakeMatomo() as fake:
        src = make(fake, campaigns=[], window=90.0)
        assert (await src.poll()).values == {"traffic:site/visitors": 33.0}
        await src.close()
    req = fake.requests[0]
    assert "token_auth" not in req.query and req.form()["token_auth"] == fake.token
    assert req.query["method"] == "Live.getCounters" and req.query["lastMinutes"] == "2"
    assert not fake.token_in_url


async def test_error_result_with_http_200_is_an_error_without_the_token() -> None:
    with FakeMatomo() as fake:
        src = make(fake, token="wrong-matomo-token-123", campaigns=[])
        with pytest.raises(SourceError) as err:
            await src.poll()
        await src.close()
    msg = str(err.value)
    assert msg.startswith("traffic:site: the server answered with an error: You can't access this resource")
    assert "wrong-matomo-token-123" not in msg


async def test_an_error_inside_the_bulk_answer_names_the_campaign() -> None:
    with FakeMatomo() as fake:
        error = {"result": "error", "message": "Segment not allowed"}
        fake.fail_with = json_route([[{"visitors": "3"}], error])
        src = make(fake, campaigns=[("bf", "black_friday")])
        with pytest.raises(SourceError, match=r"campaign 'black_friday': the server answered with an error: "
                                              r"Segment not allowed"):
            await src.poll()
        await src.close()


@pytest.mark.parametrize("doc", [[{"visits": "3"}], {"visitors": [1]}, [{"visitors": "many"}]])
async def test_counters_of_the_wrong_shape_are_one_line(doc: object) -> None:
    with FakeMatomo() as fake:
        fake.fail_with = json_route(doc)
        src = make(fake, campaigns=[])
        with pytest.raises(SourceError, match=r"^traffic:site: .*(Live.getCounters|visitors)"):
            await src.poll()
        await src.close()


def test_campaign_segment_encodes_the_value() -> None:
    assert campaign_segment("a;b==c") == "referrerType==campaign;referrerName==a%3Bb%3D%3Dc"


async def test_conversions_come_from_each_campaigns_visits_converted_counter() -> None:
    with FakeMatomo(campaigns={"black_friday": 12, "spring sale": 4}, converted={"black_friday": 3}) as fake:
        src = MatomoSource("site", fake.url, fake.id_site, CAMPAIGNS, 1.0, 2.0, token=fake.token, conversions=True)
        reading = await src.poll()
        await src.close()
    assert reading.values["campaign:black-friday/conversions"] == 3.0
    assert reading.values["campaign:spring/conversions"] == 0.0
    assert len(fake.requests) == 1  # still one bulk request per poll
