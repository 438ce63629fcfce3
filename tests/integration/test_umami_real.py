"""The `umami` source against a REAL Umami 2.10 (npm) with its own PostgreSQL, both on 127.0.0.1.

Page views with utm_campaign go in through Umami's own collect API; the source must read back what was sent.
Skipped (with the reason) where tests/install_umami.sh could not build Umami or PostgreSQL is missing.
Runtime: about 15-30 s (PostgreSQL cluster + `next start`), once per module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from surgewatch.sources.base import SourceError
from surgewatch.sources.umami import UmamiSource
from tests.support.servers import ServerProcess
from tests.support.umami_server import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    send_pageview,
    start_umami,
    umami_call,
    umami_login,
    umami_missing,
    umami_postgres,
)

pytestmark = pytest.mark.skipif(umami_missing() is not None, reason=umami_missing() or "")

CAMPAIGNS = [("black-friday", "black_friday"), ("spring-sale", "spring"), ("quiet", "summer")]


@pytest.fixture(scope="module")
def umami(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with umami_postgres() as database_url, start_umami(tmp_path_factory.mktemp("umami"), database_url) as server:
        yield server


@pytest.fixture(scope="module")
def website(umami: ServerProcess) -> str:
    """A website created through Umami's API, with the traffic below sent to it through /api/send."""
    token = umami_login(umami.url)
    site = umami_call(umami.url, "POST", "/api/websites", {"name": "Shop", "domain": "shop.example.com"},
                      token=token)
    website_id = str(site["id"])
    for visitor in (1, 2, 3):  # three visitors from the newsletter, two pages each
        for page in ("/sale", "/sale/shoes"):
            send_pageview(umami.url, website_id, f"{page}?utm_source=newsletter&utm_medium=email"
                                                 "&utm_campaign=black_friday", visitor)
    for visitor in (4, 5):  # two from another campaign, one page each
        send_pageview(umami.url, website_id, "/?utm_campaign=spring&utm_source=ads", visitor)
    for _ in range(3):  # one visitor without a campaign, three pages
        send_pageview(umami.url, website_id, "/products", 6)
    return website_id


def source(umami: ServerProcess, website_id: str, password: str = ADMIN_PASSWORD) -> UmamiSource:
    return UmamiSource("shop", website_id, CAMPAIGNS, 1.0, 15.0, url=umami.url, username=ADMIN_USER,
                       password=password)


async def test_visitors_and_campaign_views_match_what_was_sent(umami: ServerProcess, website: str) -> None:
    src = source(umami, website)
    try:
        first = await src.poll()
        second = await src.poll()
    finally:
        await src.close()
    assert first.values == second.values == {
        "traffic:shop/visitors": 6.0,  # distinct visitors in the last 5 minutes
        "campaign:black-friday/visitors": 6.0,  # page views of each campaign (Umami counts views per utm)
        "campaign:spring-sale/visitors": 2.0,
        "campaign:quiet/visitors": 0.0,
    }
    assert src.logins == 1
    assert src.utm_report is False  # 2.10 has no UTM report: the query-string metric answered


async def test_wrong_password_is_a_one_line_auth_error(umami: ServerProcess, website: str) -> None:
    src = source(umami, website, password="not-the-password")
    try:
        with pytest.raises(SourceError) as err:
            await src.poll()
    finally:
        await src.close()
    msg = str(err.value)
    assert msg.startswith("traffic:shop: authentication failed: HTTP 401") and "\n" not in msg
    assert "not-the-password" not in msg

