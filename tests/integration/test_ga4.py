"""GA4 realtime client against a loopback fake of runRealtimeReport. Runtime: about 0.3 s."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from surgewatch.collector import Collector
from surgewatch.config import ConfigError, parse_config
from surgewatch.sources import build_sources
from surgewatch.sources.base import SourceError
from surgewatch.sources.ga4 import GA4Source
from tests.support.fakes import FakeGA4, FakeGoogleToken, json_route, text_route


def make(fake: FakeGA4, token: str | None = None, campaigns: list[tuple[str, str]] | None = None,
         window: float | None = None) -> GA4Source:
    return GA4Source("site", f"properties/{fake.property_id}", campaigns or [], 1.0, 2.0,
                     token=token or fake.token, url=fake.url, window=window)


async def test_active_users_arrive_as_strings_and_become_the_total() -> None:
    with FakeGA4(active_users=2541) as fake:
        src = make(fake)
        reading = await src.poll()
        await src.close()
    assert reading.values == {"traffic:site/visitors": 2541.0}
    body = fake.requests[0].json()
    assert body["minuteRanges"] == [{"name": "window", "startMinutesAgo": 4, "endMinutesAgo": 0}]
    assert fake.requests[0].header("Authorization") == f"Bearer {fake.token}"


async def test_no_rows_means_zero_active_users() -> None:
    with FakeGA4(active_users=0) as fake:
        src = make(fake)
        assert (await src.poll()).values == {"traffic:site/visitors": 0.0}
        await src.close()


async def test_window_is_capped_at_the_30_minute_realtime_limit() -> None:
    with FakeGA4() as fake:
        src = make(fake, window=3600.0)
        await src.poll()
        await src.close()
    assert fake.requests[0].json()["minuteRanges"][0]["startMinutesAgo"] == 29


async def test_campaigns_get_no_series_and_a_notice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), FakeGA4() as fake:
        src = make(fake, campaigns=[("black-friday", "black_friday")])
        reading = await src.poll()
        await src.close()
    assert list(reading.values) == ["traffic:site/visitors"]
    notice = reading.details["notice"]
    assert "no campaign dimension" in notice and "black-friday" in notice
    assert "no campaign dimension" in caplog.text


async def test_google_error_body_becomes_one_line_without_the_token() -> None:
    with FakeGA4() as fake:
        src = make(fake, token="ya29.expired-token-xyz")
        with pytest.raises(SourceError) as err:
            await src.poll()
        await src.close()
    msg = str(err.value)
    assert msg.startswith("traffic:site: authentication failed: HTTP 401: UNAUTHENTICATED: Request had")
    assert "expired-token-xyz" not in msg


async def test_quota_error_is_reported_with_googles_status() -> None:
    with FakeGA4() as fake:
        fake.fail_with = json_route({"error": {"code": 429, "message": "Exhausted property tokens per hour.",
                                               "status": "RESOURCE_EXHAUSTED"}}, 429)
        src = make(fake)
        with pytest.raises(SourceError, match="HTTP 429 Too Many Requests: RESOURCE_EXHAUSTED: Exhausted"):
            await src.poll()
        await src.close()


async def test_rows_without_metric_values_are_a_shape_error() -> None:
    with FakeGA4() as fake:
        fake.fail_with = json_route({"rows": [{"dimensionValues": []}]})
        src = make(fake)
        with pytest.raises(SourceError, match=r"rows\[0\] has no metricValues"):
            await src.poll()
        await src.close()


# -- service-account key file: tokens from a loopback OAuth token endpoint, refreshed through google-auth --

EMAIL = "surgewatch-monitor@shop-analytics.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_key(path: Path, private_key: Any, token_uri: str) -> Path:
    """A service-account key file in the shape Google's console downloads, for our own throwaway key."""
    from cryptography.hazmat.primitives import serialization

    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "shop-analytics", "private_key_id": "0123456789abcdef",
        "private_key": pem, "client_email": EMAIL, "client_id": "101234567890123456789",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
    }))
    return path


def keyed(fake: FakeGA4, key_file: Path) -> GA4Source:
    return GA4Source("site", fake.property_id, [], 1.0, 2.0, url=fake.url, credentials_file=str(key_file))


async def test_key_file_token_is_refreshed_when_it_nears_expiry(rsa_key: Any, tmp_path: Path) -> None:
    # expires_in=2 is inside google-auth's refresh margin: every poll needs a new token.
    with FakeGA4(active_users=7) as ga4, FakeGoogleToken(rsa_key.public_key(), EMAIL, ga4, expires_in=2) as oauth:
        src = keyed(ga4, write_key(tmp_path / "sa.json", rsa_key, oauth.token_uri))
        first = await src.poll()
        second = await src.poll()
        await src.close()
    assert first.values == second.values == {"traffic:site/visitors": 7.0}
    assert len(oauth.issued) == 2 and oauth.issued[0] != oauth.issued[1]
    assert [r.header("Authorization") for r in ga4.requests] == [f"Bearer {t}" for t in oauth.issued]
    grant = oauth.requests[0].form()
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert oauth.claims[0]["scope"] == "https://www.googleapis.com/auth/analytics.readonly"
    assert oauth.claims[0]["iss"] == EMAIL


async def test_key_file_token_is_reused_while_it_is_valid(rsa_key: Any, tmp_path: Path) -> None:
    with FakeGA4() as ga4, FakeGoogleToken(rsa_key.public_key(), EMAIL, ga4, expires_in=3599) as oauth:
        src = keyed(ga4, write_key(tmp_path / "sa.json", rsa_key, oauth.token_uri))
        for _ in range(3):
            await src.poll()
        await src.close()
    assert len(oauth.issued) == 1 and len(ga4.requests) == 3
    assert {r.header("Authorization") for r in ga4.requests} == {f"Bearer {oauth.issued[0]}"}


async def test_invalid_grant_makes_the_source_an_error_in_one_line(rsa_key: Any, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # a key Google does not know
    with FakeGA4() as ga4, FakeGoogleToken(rsa_key.public_key(), EMAIL, ga4) as oauth:
        src = keyed(ga4, write_key(tmp_path / "sa.json", other, oauth.token_uri))
        with pytest.raises(SourceError) as err:
            await src.poll()
        await src.close()
    msg = str(err.value)
    assert msg == (f"traffic:site: authentication failed: token refresh at {oauth.token_uri}: "
                   "invalid_grant: Invalid JWT Signature.")
    assert ga4.requests == []  # no report call without a token


async def test_unreachable_token_endpoint_is_one_line(rsa_key: Any, tmp_path: Path) -> None:
    with FakeGA4() as ga4:
        dead = FakeGoogleToken(rsa_key.public_key(), EMAIL)
        token_uri = dead.token_uri
        dead.close()
        src = keyed(ga4, write_key(tmp_path / "sa.json", rsa_key, token_uri))
        with pytest.raises(SourceError, match=r"^traffic:site: cannot reach the token endpoint http://127\.0\.0\.1:"
                                              r"\d+/token: ConnectError") as err:
            await src.poll()
        await src.close()
    assert "\n" not in str(err.value)


async def test_failed_refresh_leaves_the_other_sources_polling(rsa_key: Any, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with FakeGA4(active_users=3) as ga4, FakeGoogleToken(rsa_key.public_key(), EMAIL, ga4) as oauth:
        bad = GA4Source("bad", ga4.property_id, [], 1.0, 2.0, url=ga4.url,
                        credentials_file=str(write_key(tmp_path / "bad.json", other, oauth.token_uri)))
        good = GA4Source("good", ga4.property_id, [], 1.0, 2.0, url=ga4.url,
                         credentials_file=str(write_key(tmp_path / "good.json", rsa_key, oauth.token_uri)))
        collector = Collector([bad, good])
        results = [await collector.poll_once(s) for s in (bad, good)]
        await bad.close()
        await good.close()
    assert results == [False, True]
    assert collector.drain() == {"traffic:good/visitors": 3.0}
    assert collector.health["traffic:good"].ok
    assert not collector.health["traffic:bad"].ok
    assert "authentication failed" in (collector.health["traffic:bad"].error or "")


# -- the key file is checked when the config is read: one line naming the key and the file --

def ga4_config(key_file: Path | str) -> str:
    return f'[[traffic]]\nname = "ga4-site"\nsource = "ga4"\nsite_id = 123456789\ncredentials_file = "{key_file}"\n'


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.toml", {})
    assert "\n" not in str(info.value)
    return str(info.value)


def test_config_accepts_a_key_file_without_a_token(rsa_key: Any, tmp_path: Path) -> None:
    key = write_key(tmp_path / "sa.json", rsa_key, "http://127.0.0.1:9/token")
    config = parse_config(ga4_config(key), "config.toml", {})
    assert config.traffic[0].credentials_file == str(key) and config.traffic[0].token is None
    (src,) = build_sources(config)
    assert isinstance(src, GA4Source) and src.auth is not None


def test_missing_key_file_is_a_config_error_naming_key_and_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert config_error(ga4_config(missing)) == (
        f'config.toml:5: traffic "ga4-site": credentials_file: cannot read {missing}: No such file or directory')


def test_key_file_that_is_not_json_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "sa.json"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n")
    msg = config_error(ga4_config(bad))
    assert msg.startswith(f'config.toml:5: traffic "ga4-site": credentials_file: {bad} is not JSON:')


def test_key_file_of_another_kind_is_a_config_error(tmp_path: Path) -> None:
    user = tmp_path / "adc.json"
    user.write_text(json.dumps({"type": "authorized_user", "client_id": "x", "refresh_token": "y"}))
    assert config_error(ga4_config(user)).endswith(
        f"credentials_file: {user} is not a service-account key (\"type\" is 'authorized_user')")


def test_key_file_with_a_broken_private_key_is_a_config_error(rsa_key: Any, tmp_path: Path) -> None:
    key = write_key(tmp_path / "sa.json", rsa_key, "http://127.0.0.1:9/token")
    doc = json.loads(key.read_text())
    doc["private_key"] = doc["private_key"][:200] + "\n-----END PRIVATE KEY-----\n"
    key.write_text(json.dumps(doc))
    msg = config_error(ga4_config(key))
    assert msg.startswith(f'config.toml:5: traffic "ga4-site": credentials_file: {key}: unusable service-account key')
    assert "MII" not in msg  # no key material in the message


def test_key_file_without_token_uri_is_a_config_error(rsa_key: Any, tmp_path: Path) -> None:
    key = write_key(tmp_path / "sa.json", rsa_key, "http://127.0.0.1:9/token")
    doc = json.loads(key.read_text())
    del doc["token_uri"]
    key.write_text(json.dumps(doc))
    msg = config_error(ga4_config(key))
    assert msg.startswith(f'config.toml:5: traffic "ga4-site": credentials_file: {key}:') and "token_uri" in msg


def test_ga4_needs_a_key_file_or_a_token() -> None:
    text = '[[traffic]]\nname = "ga4-site"\nsource = "ga4"\nsite_id = "1"\n'
    assert config_error(text).endswith("source 'ga4' needs token (OAuth access token) or credentials_file "
                                       "(service-account key)")


def test_credentials_file_on_another_source_is_refused() -> None:
    text = ('[[traffic]]\nname = "p"\nsource = "plausible"\nsite_id = "a.example"\ntoken = "t"\n'
            'credentials_file = "/tmp/x.json"\n')
    assert config_error(text).endswith("credentials_file only applies to source 'ga4'")


@pytest.mark.parametrize(("answer", "expected"), [
    (text_route("<html>OK</html>", 200, "text/html"), "answered unreadably: TypeError"),
    (json_route({"access_token": "ya29.x", "expires_in": "soon", "token_type": "Bearer"}),
     "answered unreadably: ValueError"),
    (json_route({"token_type": "Bearer"}), "authentication failed: token refresh at .*: No access token in response"),
])
async def test_malformed_token_answers_are_one_line_errors(rsa_key: Any, tmp_path: Path, answer: Any,
                                                           expected: str) -> None:
    with FakeGA4() as ga4, FakeGoogleToken(rsa_key.public_key(), EMAIL, ga4) as oauth:
        oauth.fail_with = answer
        src = keyed(ga4, write_key(tmp_path / "sa.json", rsa_key, oauth.token_uri))
        with pytest.raises(SourceError, match=f"^traffic:site: .*{expected}") as err:
            await src.poll()
        await src.close()
    assert "\n" not in str(err.value) and ga4.requests == []


async def test_token_endpoint_that_never_answers_times_out_in_one_line(rsa_key: Any, tmp_path: Path) -> None:
    with socket.socket() as silent, FakeGA4() as ga4:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # connections are queued, never answered
        token_uri = f"http://127.0.0.1:{silent.getsockname()[1]}/token"
        src = GA4Source("site", ga4.property_id, [], 1.0, 0.3, url=ga4.url,
                        credentials_file=str(write_key(tmp_path / "sa.json", rsa_key, token_uri)))
        with pytest.raises(SourceError) as err:
            await src.poll()
        await src.close()
    assert str(err.value) == f"traffic:site: token refresh at {token_uri} timed out after 0.3 s"


async def test_slow_refresh_runs_off_the_event_loop_and_concurrent_polls_share_it(rsa_key: Any,
                                                                                 tmp_path: Path) -> None:
    with FakeGA4() as ga4, FakeGoogleToken(rsa_key.public_key(), EMAIL, ga4) as oauth:
        oauth.delay = 0.5
        src = keyed(ga4, write_key(tmp_path / "sa.json", rsa_key, oauth.token_uri))
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        readings = await asyncio.gather(src.poll(), src.poll())
        ticker.cancel()
        await src.close()
    assert [r.values for r in readings] == [{"traffic:site/visitors": 2541.0}] * 2
    assert len(oauth.issued) == 1  # one refresh for both polls
    assert ticks >= 10  # the loop kept running while the token endpoint took 0.5 s (blocked, it would be 0-1)


def test_unreadable_key_file_is_a_config_error(tmp_path: Path) -> None:
    assert config_error(ga4_config(tmp_path)) == (
        f'config.toml:5: traffic "ga4-site": credentials_file: cannot read {tmp_path}: Is a directory')
