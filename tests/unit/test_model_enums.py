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


def test_series_names_split_the_same_however_many_are_kept() -> None:
    from surgewatch import model

    names = [f"host:web-{i}/cpu.core{i % 7}.percent" for i in range(model.SPLIT_CACHE + 500)]
    for _ in range(2):  # the second pass reads what the first kept (and what it had to start over without)
        for i, name in enumerate(names):
            assert model.split_series(name) == ("host", f"web-{i}", f"cpu.core{i % 7}.percent")
    assert model.split_series("malformed") == ("malformed", "", "")
    assert model.split_series("traffic:site") == ("traffic", "site", "")
    # the parts of a metric are one string object however many hosts report it
    assert model.split_series(names[0])[2] is model.split_series(names[7])[2]
