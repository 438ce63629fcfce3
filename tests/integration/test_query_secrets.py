"""Secrets in query strings stay out of errors, logs and `check` output, even when the server echoes the URL."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_plus

import pytest

from surgewatch.cli import main
from surgewatch.redact import redact_url, scrub, secrets_of
from tests.support.servers import CannedHttpServer

TOKEN = "aB3+xY/z9Q=="  # base64, with the three characters URLs encode
OTHER = "s3cr3t-Value_42"


def _echo(h: Any) -> tuple[int, dict[str, str], bytes]:
    """An error page echoing the request target as sent, decoded, and decoded as a form (three ways servers do)."""
    body = f"no such site for {h.path} ({unquote(h.path)}) [{unquote_plus(h.path)}]"
    return 400, {"Content-Type": "text/plain"}, body.encode()


def _json_echo(h: Any) -> tuple[int, dict[str, str], bytes]:
    return 500, {"Content-Type": "application/json"}, json.dumps({"error": f"bad request {h.path}"}).encode()


def _forms(secret: str) -> list[str]:
    from urllib.parse import quote, quote_plus
    return [secret, quote(secret, safe=""), quote(secret, safe="").lower(), quote_plus(secret), "aB3 xY/z9Q=="]


def _config(tmp_path: Path, url: str) -> str:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[monitor]
interval = "1s"
timeout = "2s"
[[host]]
name = "web"
source = "prometheus"
url = "{url}/metrics?token={TOKEN}&job=node"
[[traffic]]
name = "stats"
source = "json"
url = "{url}/stats?api_key={TOKEN}&x_signature={OTHER}&site=shop"
value = "visitors"
""")
    return str(cfg)


def test_check_output_never_shows_query_secrets_a_server_echoes(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    with CannedHttpServer({"/metrics": _echo, "/stats": _json_echo}) as srv:
        cfg = _config(tmp_path, srv.url)
        assert main(["check", "--config", cfg, "--gap", "0"]) == 3
        text = capsys.readouterr().out
        assert main(["check", "--config", cfg, "--gap", "0", "--json"]) == 3
        doc = capsys.readouterr().out
    assert "UNKNOWN source host:web: " in text and "HTTP 400" in text and "UNKNOWN source traffic:stats" in text
    for out in (text, doc):
        for secret in (*_forms(TOKEN), OTHER):
            assert secret not in out, (secret, out)
    assert "token=***" in text and "api_key=***" in text


def test_source_errors_in_logs_carry_no_query_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from surgewatch.collector import Collector
    from surgewatch.config import load_config
    from surgewatch.sources import build_sources

    with CannedHttpServer({"/metrics": _echo, "/stats": _json_echo}) as srv:
        sources = build_sources(load_config(_config(tmp_path, srv.url)))
        collector = Collector(sources)

        async def once() -> None:
            try:
                await asyncio.gather(*(collector.poll_once(s) for s in sources))
            finally:
                await collector.stop()

        with caplog.at_level(logging.WARNING, logger="surgewatch"):
            asyncio.run(once())
    logged = caplog.text
    assert "source host:web" in logged
    for secret in (*_forms(TOKEN), OTHER):
        assert secret not in logged


def test_secret_list_holds_every_echoed_form_of_a_plus_token() -> None:
    hidden = secrets_of({"Authorization": f"Bearer {OTHER}"}, f"http://u:pw12@h/p?api_key={TOKEN}&n=1")
    for form in ("aB3+xY/z9Q==", "aB3%2BxY%2Fz9Q%3D%3D", "aB3 xY/z9Q==", OTHER, "pw12"):
        assert form in hidden
    echoed = f"GET /p?n=1&api_key=aB3%2bxY%2fz9Q%3d%3d&Session=abc123 failed; token {TOKEN}; k=aB3 xY/z9Q=="
    shown = scrub(echoed, hidden)
    assert "aB3" not in shown and "abc123" not in shown and "Session=***" in shown
    assert redact_url(f"http://user:pw@h:1/p?api_key={TOKEN}&a=b") == "http://h:1/p?api_key=***&a=b"


def test_scrub_makes_remote_text_inert_and_one_line() -> None:
    assert scrub("bad\x1b]0;pwned\x07 gateway\x1b[2J\r\nnext\x9b1m") == "bad gateway next"
