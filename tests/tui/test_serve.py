"""`surgewatch serve`: the dashboard in real headless Chromium through textual-serve, the token checked before
anything is served, loopback by default, one-line refusals (~25 s with the browser)."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from surgewatch.cli import main
from surgewatch.tui.serve import ServeError, is_loopback, parse_listen, token_ok
from tests.support.cdp import Browser, find_chromium
from tests.support.servers import LOOPBACK, ServerProcess, free_port, http_get, start_process

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(secrets.token_urlsafe() + "\n")
    return path


def start_serve(tmp_path: Path, *extra: str) -> ServerProcess:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return start_process("serve", [sys.executable, "-m", "surgewatch", "serve", "--listen", f"{LOOPBACK}:{port}",
                                   *extra], workdir=tmp_path / "serve", port=port, env=env,
                         ready=lambda: http_get(f"http://{LOOPBACK}:{port}/", timeout=0.5))


@pytest.fixture
def served(tmp_path: Path, token_file: Path) -> Iterator[tuple[ServerProcess, str]]:
    server = start_serve(tmp_path, "--token-file", str(token_file))
    try:
        yield server, token_file.read_text().strip()
    finally:
        server.stop()
        _end_viewers(server)


def _end_viewers(server: ServerProcess) -> None:
    """The dashboards the server started are in its session: end any left over, by that group's id."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, 15)


def test_off_loopback_it_refuses_to_start_without_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--listen", "0.0.0.0:0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "without a token" in err and "--token-file" in err


@pytest.mark.parametrize(("content", "says"), [(None, "cannot read"), ("short", "at least 16")])
def test_an_unreadable_or_short_token_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        content: str | None, says: str) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    assert main(["serve", "--listen", "0.0.0.0:0", "--token-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and str(path) in err


def test_a_bad_listen_address_or_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--listen", "8765"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
    assert main(["serve", "--listen", "127.0.0.1:http"]) == 2
    assert "port must be a number" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[monitor]\ninterval = 'soon'\n")
    assert main(["serve", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.toml" in err


def test_listen_parsing_and_loopback_detection() -> None:
    assert parse_listen("[::1]:8765") == ("::1", 8765)
    assert parse_listen("0.0.0.0:0") == ("0.0.0.0", 0)
    with pytest.raises(ServeError):
        parse_listen("127.0.0.1:70000")
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("dashboard.lan")
    assert token_ok("a" * 20, "a" * 20) and not token_ok("a" * 19, "a" * 20) and not token_ok(None, "x")


def test_a_port_in_use_is_one_line(tmp_path: Path, token_file: Path) -> None:
    server = start_serve(tmp_path, "--token-file", str(token_file))
    try:
        out = subprocess.run([sys.executable, "-m", "surgewatch", "serve", "--listen", f"{LOOPBACK}:{server.port}"],
                             capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, PYTHONPATH=str(SRC)))
        assert out.returncode == 2 and "cannot listen" in out.stderr and "Traceback" not in out.stderr
    finally:
        server.stop()


async def test_no_page_script_or_app_without_the_right_token(served: tuple[ServerProcess, str]) -> None:
    server, token = served
    base = server.url
    async with aiohttp.ClientSession() as http:
        for url, headers in ((f"{base}/", {}), (f"{base}/?token=wrong-{token}", {}),
                             (f"{base}/static/js/textual.js", {}), (f"{base}/", {"Authorization": "Bearer nope"})):
            async with http.get(url, headers=headers, allow_redirects=False) as r:
                assert r.status == 401, url
                assert "textual-terminal" not in await r.text()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{base}/ws")
        assert refused.value.status == 401
        async with http.get(f"{base}/", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200 and "textual-terminal" in await r.text()
        async with http.get(f"{base}/?token={token}&fontsize=20", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/?fontsize=20"  # the token leaves the URL
            assert "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=Strict" in r.headers["Set-Cookie"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
            await http.ws_connect(f"{base}/ws", headers={"Authorization": f"Bearer {token}",
                                                         "Origin": "http://evil.example"})
        assert foreign.value.status == 403


needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="chromium not installed (Debian package)")


@needs_chromium
async def test_the_dashboard_runs_in_headless_chromium_and_keys_typed_into_the_page_change_screens(
        served: tuple[ServerProcess, str], tmp_path: Path) -> None:
    server, token = served
    async with Browser(1400, 1000) as browser:
        page = await browser.page()
        await page.goto(f"{server.url}/?token={token}")
        text = await page.text_after(0, r"demo-launch.*DEMO", timeout=60)
        assert "demo-web" in text and "local" in text and "CAMPAIGN" in text and "HOST" in text
        await page.screenshot(tmp_path / "overview.png")
        await page.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
        mark = len(page.ws_received())
        await page.press("5")
        assert "SOURCE" in await page.text_after(mark, r"SOURCE\s+STATE")
        mark = len(page.ws_received())
        await page.press("4")
        await page.text_after(mark, r"ACTIVE\s+\(a acknowledge")
        await page.screenshot(tmp_path / "alerts.png")


@needs_chromium
async def test_a_wrong_token_in_the_browser_gets_no_dashboard(served: tuple[ServerProcess, str]) -> None:
    server, token = served
    async with Browser(1000, 700) as browser:
        page = await browser.page()
        await page.goto(f"{server.url}/?token=not-{token}")
        body = await page.evaluate("document.body.innerText")
        assert "needs its token" in body
        assert await page.evaluate("document.querySelector('.textual-terminal') === null")
        assert page.ws_opened() == [] and page.ws_received() == b""


def test_each_viewer_runs_the_dashboard_with_the_served_config_and_wall_mode(tmp_path: Path) -> None:
    from surgewatch.cli import build_parser
    from surgewatch.tui.serve import viewer_command

    cfg = tmp_path / "my config.toml"
    args = build_parser("serve").parse_args(["serve", "--config", str(cfg), "--wall", "20"])
    cmd = viewer_command(args)
    assert cmd.startswith("exec ") and "-m surgewatch --viewer" in cmd
    assert f"--config '{cfg}'" in cmd and "--wall 20.0" in cmd
    assert "--config" not in viewer_command(build_parser("serve").parse_args(["serve"]))


def test_a_served_viewer_sends_no_notifications_and_a_terminal_dashboard_keeps_all_but_stdout() -> None:
    from surgewatch.config import parse_config
    from surgewatch.tui import dashboard_config

    cfg = parse_config('[[sink]]\nkind = "stdout"\n[[sink]]\nkind = "webhook"\nurl = "http://127.0.0.1:9/x"\n',
                       "<sinks>")
    assert [s.kind for s in dashboard_config(cfg).sinks] == ["webhook"]
    assert dashboard_config(cfg, viewer=True).sinks == ()


def test_a_bad_wall_period_is_refused_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--wall", "-5"])
    assert exit_.value.code == 2 and "greater than 0" in capsys.readouterr().err
