"""Escape sequences and control characters from remote text never reach a terminal or a log raw."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from surgewatch.cli import main
from surgewatch.logs import setup_logging
from surgewatch.sources.base import SourceError
from surgewatch.textsafe import SafeStream, one_line, strip_controls
from tests.support.servers import CannedHttpServer

EVIL = "Oops\x1b]0;pwned\x07 \x1b[2J\x1b[31mred\x1b[0m \x9b2J\x85 bell\x07 back\rspace\x08 \u202eevil"
RAW = ("\x1b", "\x07", "\x9b", "\x85", "\x08", "\r", "\u202e")


def _assert_inert(text: str) -> None:
    for c in RAW:
        assert c not in text, (c, text)


def test_strip_controls_removes_sequences_and_keeps_tab_and_newline() -> None:
    assert strip_controls(EVIL) == "Oops red  bell backspace evil"  # \x9b2J is an 8-bit CSI: all gone
    assert strip_controls("a\tb\nc\x00d") == "a\tb\ncd"
    assert one_line("a\tb\n c") == "a b c"
    assert strip_controls("café ☃ Привет") == "café ☃ Привет"  # printable Unicode is kept


def test_safe_stream_keeps_crlf_line_ends_and_drops_lone_cr() -> None:
    out = io.StringIO()
    s = SafeStream(out)
    s.write("a,b\r\nc\rd\x1b[2J\n")
    assert out.getvalue() == "a,b\r\ncd\n"


def test_source_errors_are_one_inert_line() -> None:
    assert str(SourceError(f"web: {EVIL}\nsecond line")) == "web: Oops red bell backspace evil second line"


def _error_body(h: Any) -> tuple[int, dict[str, str], bytes]:
    return 500, {"Content-Type": "application/json"}, json.dumps({"error": EVIL}).encode()


def test_check_output_from_a_hostile_server_is_inert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    with CannedHttpServer({"/stats": _error_body}) as srv:
        cfg.write_text(f'[[traffic]]\nname = "stats"\nsource = "json"\nurl = "{srv.url}/stats"\nvalue = "v"\n')
        assert main(["check", "--config", str(cfg), "--gap", "0"]) == 3
        out = capsys.readouterr().out
        assert main(["check", "--config", str(cfg), "--gap", "0", "--json"]) == 3
        doc = capsys.readouterr().out
    assert "Oops" in out and "pwned" not in out
    _assert_inert(out)
    _assert_inert(doc)
    assert "\\u001b" not in doc  # not even JSON-escaped: the message itself is clean


def test_cli_error_lines_are_inert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[monitor]\n"bad\\u001b]0;pwned\\u0007\\u009b2J" = 1\n')
    assert main(["config", "check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "bad" in err
    _assert_inert(err)


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_logs_are_inert(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger("surgewatch")
    saved = root.handlers[:], root.level, root.propagate
    try:
        setup_logging(fmt)
        logging.getLogger("surgewatch.test").warning("source x: %s", EVIL)
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    text = stream.getvalue()
    assert "source x: Oops" in text
    _assert_inert(text)
    if fmt == "json":
        assert "\\u001b" not in text


def test_promql_label_values_become_inert_series_names() -> None:
    from surgewatch.sources.promql import host_name

    assert host_name("web\x1b]0;pwned\x07-1\x00\n") == "web-1"
    assert host_name("10.0.0.1:9100/x") == "10.0.0.1:9100_x"
    assert host_name("\x1b[2J") == "_"


def test_alert_json_lines_on_stdout_carry_no_raw_controls(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.recordings import craft

    names = ("host:web\x9b2J\x85-1/cpu.percent", "host:web\x9b2J\x85-1/mem.percent")
    rows = [[50.0, 40.0]] * 3 + [[99.0, 40.0]] * 6
    path = craft(tmp_path / "c1.swrec", rows, names=names)
    assert main(["replay", str(path), "--headless"]) == 0  # the same stdout path as the daemon's alert lines
    out = capsys.readouterr().out
    assert '"event": "firing"' in out and '"host": "web-1"' in out  # the 8-bit CSI went whole
    _assert_inert(out)
