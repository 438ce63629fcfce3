"""The engine's alert API the dashboard uses: acknowledge, silences, snapshot flags, reload of rules.

Runs the real Engine with a scripted source and a fake clock; the state dir is a temp dir. Runtime: ~2 s.
"""

from __future__ import annotations

from pathlib import Path

from surgewatch.alerting.dispatch import build_dispatcher
from surgewatch.alerting.silences import SilenceStore
from surgewatch.config import Config, parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.model import AlertEvent
from surgewatch.sources.base import Reading

SERIES = ["host:web-1/cpu.percent", "host:web-2/cpu.percent"]


class Scripted:
    """A source whose next reading the test sets."""

    name = "host:scripted"
    interval = 1.0
    timeout = 1.0
    demo = False

    def __init__(self) -> None:
        self.values = dict.fromkeys(SERIES, 10.0)

    async def poll(self) -> Reading:
        return Reading(dict(self.values))

    async def close(self) -> None:
        return None


def config(tmp_path: Path, rules: str) -> Config:
    return parse_config(f"""
[monitor]
interval = "1s"
state_dir = "{tmp_path / 'state'}"
{rules}
""", "test.toml")


CPU_RULE = """
[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
repeat = "10s"
"""


class Rig:
    def __init__(self, tmp_path: Path, rules: str = CPU_RULE) -> None:
        self.cfg = config(tmp_path, rules)
        self.src = Scripted()
        self.now = 1_800_000_000.0
        self.engine = Engine(self.cfg, EngineOptions(clock=lambda: self.now,
                                                     dispatcher=build_dispatcher(self.cfg)),
                             sources=[self.src])

    async def tick(self, **values: float) -> list[AlertEvent]:
        self.now += 1.0
        for k, v in values.items():
            self.src.values[f"host:{k.replace('_', '-')}/cpu.percent"] = v
        await self.engine.collector.poll_once(self.src)
        return self.engine.tick(self.now)


async def test_acknowledged_alert_shows_acked_and_stops_repeating(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    assert [e.series for e in await rig.tick(web_1=95)] == [SERIES[0]]
    (view,) = rig.engine.snapshot().alerts
    assert (view.state, view.acked, view.silenced, view.value) == ("firing", False, False, 95.0)
    assert rig.engine.acknowledge(view.fingerprint)
    assert not rig.engine.acknowledge("no-such-fingerprint")
    assert rig.engine.snapshot().alerts[0].acked
    for _ in range(12):
        assert await rig.tick(web_1=96) == []  # past the 10 s repeat: acknowledged, so quiet
    assert rig.engine.snapshot().alerts[0].value == 96.0  # views are refreshed for the dashboard
    await rig.engine.dispatcher.close()


async def test_silence_from_the_dashboard_is_stored_listed_and_removable(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sid = rig.engine.add_silence("cpu-*", "host:web-2/*", rig.now + 3600, "replacing a disk")
    (s,) = rig.engine.silences()
    assert (s.id, s.rule, s.series, s.comment) == (sid, "cpu-*", "host:web-2/*", "replacing a disk")
    events = await rig.tick(web_1=95, web_2=95)
    assert [e.series for e in events] == [SERIES[0]]
    views = {v.series: v for v in rig.engine.snapshot().alerts}
    assert views[SERIES[1]].silenced and views[SERIES[1]].state == "firing"
    assert not views[SERIES[0]].silenced
    # the state file is what the command line and a restarted engine read
    other = SilenceStore(tmp_path / "state")
    other.refresh(force=True)
    assert [x.id for x in other.silences(rig.now)] == [sid]
    assert rig.engine.remove_silence(sid) and not rig.engine.remove_silence(sid)
    assert rig.engine.silences() == []
    assert [e.series for e in await rig.tick()] == [SERIES[1]]  # announced once the silence is gone
    await rig.engine.dispatcher.close()


async def test_reload_keeps_alerts_of_unchanged_rules_and_resolves_removed_ones(tmp_path: Path) -> None:
    mem_rule = CPU_RULE + """
[[rule]]
name = "cpu-very-high"
series = "host:*/cpu.percent"
above = 94
"""
    rig = Rig(tmp_path, mem_rule)
    fired = await rig.tick(web_1=95)
    assert sorted(e.rule for e in fired) == ["cpu-high", "cpu-very-high"]
    await rig.engine.reload(config(tmp_path, CPU_RULE))
    events = await rig.tick(web_1=95)
    assert [(e.rule, e.event, e.labels.get("reason")) for e in events] == [("cpu-very-high", "resolved",
                                                                            "rule removed")]
    assert [(a.rule, a.state) for a in rig.engine.snapshot().alerts] == [("cpu-high", "firing")]
    await rig.engine.dispatcher.close()
