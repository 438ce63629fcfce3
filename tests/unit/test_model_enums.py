"""Alert states and causes are enums in memory; what leaves the process (JSON, recordings) keeps its names."""

from __future__ import annotations

import json

from surgewatch.model import AlertEvent, AlertState, Cause, CauseCode, Severity


def test_every_cause_has_its_own_nonzero_code() -> None:
    codes = [c.code for c in Cause]
    assert len(set(codes)) == len(Cause) and CauseCode.NONE not in codes
    assert all(c.code.name == c.name for c in Cause)


def test_alert_states_read_as_the_words_snapshots_show() -> None:
    assert [str(s) for s in AlertState] == ["inactive", "pending", "firing"]
    assert AlertState.FIRING > AlertState.PENDING > AlertState.INACTIVE


def test_alert_json_carries_the_cause_name_not_its_code() -> None:
    ev = AlertEvent(1_800_000_000.0, "firing", "r", Severity.WARNING, "host:web-1/cpu.percent", 91.0, 40.0,
                    "s", "e", "fp", 1_800_000_000.0, cause=Cause.UNEXPLAINED)
    doc = json.loads(json.dumps(ev.to_json()))
    assert doc["cause"] == "unexplained" and doc["severity"] == "warning"
