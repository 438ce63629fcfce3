"""The command line: --version, --help on every subcommand, config check and check exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from surgewatch.cli import COMMANDS, main


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "surgewatch", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("surgewatch ")


@pytest.mark.parametrize("command", [name for name, _m, _h in COMMANDS])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0 and "usage:" in capsys.readouterr().out


def test_config_check_ok_and_error_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[[host]]\nname = "h"\nsource = "local"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "cpu-high"\nseries = "host:*/cpu.percent"\nabove = 90\nfor = 30\n')
    assert run("config", "check", str(good)).returncode == 0
    out = run("config", "check", str(bad))
    assert out.returncode == 2
    assert out.stderr.strip() == f'surgewatch: {bad}:5: rule "cpu-high": for must be a duration like "30s", got 30'
    assert "Traceback" not in out.stderr


def test_bad_config_for_the_daemon_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[monitor]\ninterval = 5\n")
    out = run("--headless", "--config", str(bad))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "interval must be a duration" in out.stderr


def write_check_config(tmp_path: Path, above: float, severity: str) -> Path:
    cfg = tmp_path / "check.toml"
    cfg.write_text(f'[[host]]\nname = "here"\nsource = "local"\n'
                   f'[[rule]]\nname = "mem"\nseries = "host:*/mem.percent"\nabove = {above}\n'
                   f'severity = "{severity}"\nfor = "5m"\n')
    return cfg


def test_check_exits_ok_when_nothing_is_breached(tmp_path: Path) -> None:
    out = run("check", "--config", str(write_check_config(tmp_path, 101, "critical")), "--gap", "0.2")
    assert out.returncode == 0 and out.stdout.startswith("OK - ")


@pytest.mark.parametrize(("severity", "code", "word"), [("warning", 1, "WARNING"), ("critical", 2, "CRITICAL")])
def test_check_exit_code_follows_the_worst_breach_ignoring_for(tmp_path: Path, severity: str, code: int,
                                                                word: str) -> None:
    out = run("check", "--config", str(write_check_config(tmp_path, -1, severity)), "--gap", "0.2")
    assert out.returncode == code and out.stdout.startswith(f"{word} - ")
    assert f"{word} mem: host:here/mem.percent" in out.stdout


def test_check_json_lists_every_series(tmp_path: Path) -> None:
    out = run("check", "--json", "--config", str(write_check_config(tmp_path, 101, "critical")), "--gap", "0.2")
    doc = json.loads(out.stdout)
    assert doc["exit"] == 0 and "host:here/cpu.percent" in doc["series"] and doc["sources"]["host:here"]["ok"]


def test_check_is_unknown_when_a_source_fails(tmp_path: Path) -> None:
    cfg = tmp_path / "down.toml"
    cfg.write_text('[[host]]\nname = "gone"\nsource = "prometheus"\nurl = "http://127.0.0.1:9/metrics"\n'
                   'timeout = "1s"\n')
    out = run("check", "--config", str(cfg), "--gap", "0.1")
    assert out.returncode == 3 and "UNKNOWN source host:gone:" in out.stdout
