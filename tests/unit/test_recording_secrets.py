"""Recordings are private files (0600) and the config they keep for replay holds no secret."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from surgewatch.cli import main
from surgewatch.config import parse_config
from surgewatch.recording.reader import Recording
from surgewatch.recording.writer import Recorder
from surgewatch.redact import redact_config_text
from tests.integration.test_record import _engine, _feed
from tests.support.record_config import CONFIG

SECRETS = ["hunter22", "aB3+xY/z9Q==", "sekrit-123", "plausible-tok-9", "T000/B000/XXXXSECRET", "env-tok-777"]
WITH_SECRETS = CONFIG.replace('url = "http://127.0.0.1:9/metrics"', '''url = "http://ops:hunter22@127.0.0.1:9/metrics?token=aB3+xY/z9Q==&job=n"
headers = { Authorization = "Bearer sekrit-123", X-Env = "Bearer ${SW_TEST_TOKEN}" }

[[traffic]]
name = "site"
source = "plausible"
url = "http://127.0.0.1:9"
site_id = "shop"
token = 'plausible-tok-9'

[[sink]]
kind = "slack"
url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
''')


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_recordings_are_0600_and_keep_no_secret_of_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SW_TEST_TOKEN", "env-tok-777")
    old = os.umask(0o022)
    try:
        path = tmp_path / "rec.swrec"
        engine = _engine(path, WITH_SECRETS)
        recorder = engine.listeners[0]
        assert isinstance(recorder, Recorder)
        _feed(engine, [50.0, 95.0, 96.0, 97.0, 98.0])
        assert _mode(path) == 0o600
        assert _mode(Path(f"{path}-wal")) == 0o600
        asyncio.run(engine.reload(parse_config(WITH_SECRETS.replace("above = 90", "above = 40"), "again.toml")))
        recorder.close()
    finally:
        os.umask(old)
    raw = path.read_bytes()
    for s in SECRETS:
        assert s.encode() not in raw, s
    with Recording(str(path)) as rec:
        text = rec.config_text
        reloads = [e.doc["text"] for e in rec.events("config")]
    assert 'token = "REDACTED"' in text and "Authorization = \"REDACTED\"" in text
    assert "${SW_TEST_TOKEN}" in text  # a reference names the secret, it does not hold it
    assert "https://hooks.slack.com/REDACTED" in text and "ops:REDACTED@" in text and "token=REDACTED" in text
    assert reloads and "REDACTED" in reloads[0] and "sekrit-123" not in reloads[0]
    capsys.readouterr()
    assert main(["replay", str(path), "--headless"]) == 0  # the redacted config still loads for replay
    assert '"rule": "cpu-high"' in capsys.readouterr().out


def test_an_old_recording_with_its_raw_config_still_replays(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.swrec"
    engine = _engine(path)
    _feed(engine, [50.0, 95.0, 96.0, 97.0])
    for listener in engine.listeners:
        listener.close()
    conn = sqlite3.connect(path)  # as written before redaction: the config verbatim
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'config_text'", (WITH_SECRETS,))
    conn.close()
    assert main(["replay", str(path), "--headless"]) == 0
    assert '"rule": "cpu-high"' in capsys.readouterr().out


def test_a_secret_written_with_toml_escapes_drops_the_config_text() -> None:
    text = '[[traffic]]\nname = "s"\nsource = "plausible"\nurl = "http://x"\nsite_id = "a"\ntoken = "ab\\u0063def"\n'
    assert redact_config_text(text, {}) == ""  # cannot find it to redact: keep nothing rather than the secret
    assert redact_config_text("not [toml", {}) == ""
    kept = redact_config_text('[monitor]\ninterval = "2s"\n', {})
    assert kept == '[monitor]\ninterval = "2s"\n'


def test_a_recording_without_config_text_asks_for_config_in_one_line(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.swrec"
    engine = _engine(path)
    _feed(engine, [50.0, 51.0])
    for listener in engine.listeners:
        listener.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = '' WHERE key = 'config_text'")
    conn.close()
    assert main(["replay", str(path), "--headless"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("the recording holds no config; pass --config FILE") and "\n" not in err


def test_the_value_of_a_referenced_environment_secret_never_appears() -> None:
    text = ('[[traffic]]\nname = "s"\nsource = "plausible"\nurl = "http://x"\nsite_id = "a"\n'
            'token = "${PL_TOKEN}"\n# rotated: the old value was pl-secret-77\n')
    out = redact_config_text(text, {"PL_TOKEN": "pl-secret-77"})
    assert 'token = "${PL_TOKEN}"' in out and "pl-secret-77" not in out and "REDACTED" in out
