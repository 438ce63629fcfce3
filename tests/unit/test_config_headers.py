"""Header values are checked when the config is read: CR, LF or NUL (a token from an environment variable
with a trailing newline) would break or inject a header, so they are refused with one line naming the key."""

from __future__ import annotations

import pytest

from surgewatch.config import ConfigError, parse_config

HOST = '[[host]]\nname = "web-1"\nsource = "prometheus"\nurl = "http://127.0.0.1:9100/metrics"\n'


@pytest.mark.parametrize(("value", "what"), [
    ("abc\n", "a line feed (LF) at its end"),
    ("abc\r\n", "a carriage return (CR) at its end"),
    ("abc\r\nX-Injected: 1", "a carriage return (CR) inside it"),
    ("ab\0c", "a NUL byte inside it"),
])
def test_a_header_value_with_cr_lf_or_nul_is_refused_naming_the_key(value, what):
    text = HOST + 'headers = { Authorization = "Bearer ${WEB1_TOKEN}" }\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ={"WEB1_TOKEN": value})
    msg = str(info.value)
    assert msg.startswith('config.toml:5: host "web-1": headers.Authorization contains ' + what)
    assert "\n" not in msg and "abc" not in msg  # one line, and the secret is not shown


def test_a_token_with_a_trailing_newline_is_refused():
    text = '[[traffic]]\nname = "site"\nsource = "plausible"\nsite_id = "shop.example"\ntoken = "${PLAUSIBLE}"\n'
    with pytest.raises(ConfigError, match=r'config.toml:5: traffic "site": token contains a line feed \(LF\) at its '
                                          r"end, which would break or inject an HTTP header \(an environment"):
        parse_config(text, environ={"PLAUSIBLE": "k3y\n"})


@pytest.mark.parametrize("kind", ["webhook", "alertmanager"])
def test_sink_headers_are_checked_too(kind):
    text = f'[[sink]]\nkind = "{kind}"\nurl = "http://127.0.0.1:9093"\nheaders = {{ X-Key = "a\\nb" }}\n'
    with pytest.raises(ConfigError, match=f'config.toml:4: sink "{kind}": headers.X-Key contains a line feed'):
        parse_config(text)


def test_an_invalid_header_name_is_refused():
    with pytest.raises(ConfigError, match="headers has 'X Bad', which is not a valid HTTP header name"):
        parse_config(HOST + 'headers = { "X Bad" = "1" }\n')


def test_clean_header_values_pass():
    cfg = parse_config(HOST + 'headers = { Authorization = "Bearer ${T}", X-Scope-OrgID = "ops" }\n',
                       environ={"T": "tok"})
    assert cfg.hosts[0].headers == {"Authorization": "Bearer tok", "X-Scope-OrgID": "ops"}
