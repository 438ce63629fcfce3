"""A recorded config reload that no longer loads ends a headless replay with one line, keeping the lines so far."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from surgewatch.cli import main
from tests.support.recordings import craft


def test_a_bad_recorded_reload_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [[50.0, 40.0, 10.0, 5.0]] * 3 + [[99.0, 40.0, 10.0, 5.0]] * 6 + [[50.0, 40.0, 10.0, 5.0]] * 3
    event = (1.7e9 + 10, "config", json.dumps({"text": "[[rule]]\nname = 1\n", "label": "bad.toml"}))
    path = craft(tmp_path / "r.swrec", rows, events=[event])
    assert main(["replay", str(path), "--headless"]) == 2
    out, err = capsys.readouterr()
    assert '"event": "firing"' in out  # what was replayed before the reload was emitted
    assert err.count("\n") == 1 and "rule #1: name must be a string" in err and "Traceback" not in err
