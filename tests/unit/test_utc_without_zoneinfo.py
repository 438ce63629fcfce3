"""UTC without the zone database (issue 14, the small end): a config that names no time zone, or "UTC", reads its
schedules in `datetime.timezone.utc` and never imports zoneinfo; the windows and labels are the ones
`ZoneInfo("UTC")` gives, and a named zone is still a ZoneInfo."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from surgewatch.analysis.declared import DeclaredCauses, zone
from surgewatch.analysis.schedules import UTC_ZONE, ScheduleCalendar, ScheduleSpec
from surgewatch.config import parse_config

SPECS = [ScheduleSpec("a", "*/15 * * * *", 70), ScheduleSpec("nightly-backup", "0 2 * * *", 45 * 60, ("db-*",)),
         ScheduleSpec("weekly", "30 3 * * 1", 3600)]


def test_utc_is_the_builtin_utc_and_a_named_zone_a_zoneinfo() -> None:
    assert zone("UTC") is UTC_ZONE is UTC
    assert zone("Europe/Paris") == ZoneInfo("Europe/Paris")
    cfg = parse_config('[[host]]\nname = "db-1"\nsource = "local"\n', "c.toml", {})
    assert DeclaredCauses.schedules_of(cfg)[1] is UTC


def test_schedule_windows_and_labels_in_utc_are_those_of_zoneinfo_utc() -> None:
    ours, theirs = ScheduleCalendar(SPECS, UTC_ZONE), ScheduleCalendar(SPECS, ZoneInfo("UTC"))
    start = datetime(2026, 3, 1, 1, 0, tzinfo=UTC).timestamp()
    for t in start + np.arange(0, 8 * 86400, 397.0):
        a, b = ours.open_at(float(t)), theirs.open_at(float(t))
        assert [(w.schedule.name, w.start, w.end) for w in a] == [(w.schedule.name, w.start, w.end) for w in b]
        assert [w.label(UTC_ZONE) for w in a] == [w.label(ZoneInfo("UTC")) for w in b]


def test_the_analysis_and_a_utc_config_import_no_zoneinfo() -> None:
    code = ("import sys, surgewatch.engine, surgewatch.frontends.headless\n"
            "from surgewatch.analysis.declared import DeclaredCauses\n"
            "from surgewatch.config import parse_config\n"
            "cfg = parse_config('[monitor]\\ntimezone = \"UTC\"\\n'\n"
            "                   '[[host]]\\nname = \"a\"\\nsource = \"local\"\\n', 'c', {})\n"
            "DeclaredCauses(*DeclaredCauses.schedules_of(cfg))\n"
            "print(sorted(m for m in sys.modules if m.startswith('zoneinfo')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
