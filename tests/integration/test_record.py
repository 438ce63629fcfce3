"""Recording: what goes into the file, how it is laid out, and that it survives crashes and bad input."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from surgewatch.cli import main
from surgewatch.config import ConfigError, parse_config
from surgewatch.defaults import resolve_config, set_record_path
from surgewatch.engine import Engine, EngineOptions
from surgewatch.recording.format import FORMAT_VERSION, RecordingError, decode_block, encode_block
from surgewatch.recording.reader import Recording, read_series
from surgewatch.recording.replay import ReplayDispatcher, ReplayDriver
from surgewatch.recording.writer import Recorder, RecordingWriter, attach_recorder
from surgewatch.sources.base import Reading, SourceError
from tests.support.record_config import CONFIG

SRC = str(Path(__file__).resolve().parents[2] / "src")


class QuietSource:
    """A named source that is never polled (the test feeds readings itself)."""

    def __init__(self, name: str) -> None:
        self.name, self.interval, self.timeout, self.demo = name, 1.0, 1.0, False

    async def poll(self) -> Reading:
        raise SourceError("not polled")

    async def close(self) -> None:
        return None


def _engine(path: Path, text: str = CONFIG) -> Engine:
    config = parse_config(text.replace('history = "1h"', f'history = "1h"\nrecord = "{path}"'), "test.toml")
    engine = Engine(config, EngineOptions(dispatcher=ReplayDispatcher(())), sources=[QuietSource("host:web-1")])
    attach_recorder(engine)
    engine.collector.health["host:web-1"].series.update({"host:web-1/cpu.percent", "host:web-1/mem.percent"})
    return engine


def _feed(engine: Engine, cpu: list[float], t0: float = 1_700_000_000.0) -> list[float]:
    ts = []
    for k, v in enumerate(cpu):
        t = t0 + k
        h = engine.collector.health["host:web-1"]
        h.ok, h.last_success = True, t
        engine.collector.pending = {"host:web-1/cpu.percent": v, "host:web-1/mem.percent": 40.0 + k / 10}
        engine.tick(t)
        ts.append(t)
    return ts


def test_monitor_record_key_records_every_sample_event_and_the_config(tmp_path: Path) -> None:
    path = tmp_path / "rec.swrec"
    engine = _engine(path)
    cpu = [10.0, 20.5, 95.0, 96.0, 97.0, 98.0, 50.0, 40.0]
    ts = _feed(engine, cpu)
    for listener in engine.listeners:
        listener.close()
    with Recording(str(path)) as rec:
        assert rec.meta["format_version"] == str(FORMAT_VERSION)
        assert 'name = "cpu-high"' in rec.config_text
        assert rec.tick_seconds == 1.0
        assert [s.name for s in rec.sources] == ["host:web-1"]
        assert rec.series_sources["host:web-1/cpu.percent"] == "host:web-1"
        alerts = [e.doc for e in rec.events("alert")]
    assert [(a["event"], a["rule"]) for a in alerts] == [("firing", "cpu-high"), ("resolved", "cpu-high")]
    got_ts, series = read_series(str(path))
    assert got_ts.tolist() == ts
    assert series["host:web-1/cpu.percent"].tolist() == cpu
    assert series["host:web-1/mem.percent"].tolist() == [40.0 + k / 10 for k in range(len(cpu))]


def test_compaction_keeps_every_value_bit_for_bit(tmp_path: Path) -> None:
    path = tmp_path / "rec.swrec"
    rng = np.random.default_rng(3)
    values = np.concatenate([np.round(rng.normal(50, 5, (300, 1)), 1), rng.normal(0, 1e6, (300, 1))], axis=1)
    writer = RecordingWriter(str(path), {"tick_seconds": "1"}, compact_every=64, keep_raw=10)
    rec = Recorder(writer)
    for k in range(300):
        rec.record(1000.0 + k * 0.7, np.array([0, 1]), values[k], [])
    writer.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM ticks").fetchone()[0] == 0  # all compacted on close
        assert conn.execute("SELECT SUM(n) FROM chunks").fetchone()[0] == 300
    ts, series = read_series(str(path))
    assert ts.tolist() == [1000.0 + k * 0.7 for k in range(300)]
    assert np.array_equal(series["0"], values[:, 0]) and np.array_equal(series["1"], values[:, 1])


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40),
                  elements=st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                                     st.sampled_from([-0.0, 0.0, 0.1, -2.5, 1e15]))))
def test_block_codec_round_trips_any_float64_bits(matrix: np.ndarray) -> None:
    back = decode_block(encode_block(matrix), *matrix.shape)
    assert np.array_equal(back.view(np.uint64), np.ascontiguousarray(matrix).view(np.uint64))


def test_decimal_columns_compress_to_about_a_byte_per_sample() -> None:
    rng = np.random.default_rng(1)
    cpu = np.round(np.clip(30 + np.cumsum(rng.normal(0, 1, 3600)), 0, 100), 1)
    assert len(encode_block(cpu[:, None])) < 1.5 * cpu.size


def test_record_path_beats_config_and_bad_targets_are_config_errors(tmp_path: Path) -> None:
    target = tmp_path / "x.swrec"
    set_record_path(str(target))
    try:
        assert resolve_config(None).monitor.record == str(target)
        set_record_path(str(tmp_path / "missing-dir" / "x.swrec"))
        with pytest.raises(ConfigError, match="does not exist"):
            resolve_config(None)
        not_rec = tmp_path / "notes.txt"
        not_rec.write_text("hello")
        set_record_path(str(not_rec))
        with pytest.raises(ConfigError, match="not a surgewatch recording"):
            resolve_config(None)
    finally:
        set_record_path(None)


def _make_recording(path: Path) -> None:
    engine = _engine(path)
    _feed(engine, [10.0, 20.0, 30.0, 40.0])
    for listener in engine.listeners:
        listener.close()


@pytest.mark.parametrize("version, words", [("0", "cannot read it"), ("99", "upgrade surgewatch")])
def test_unknown_format_versions_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         version: str, words: str) -> None:
    path = tmp_path / "old.swrec"
    _make_recording(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'format_version'", (version,))
    with pytest.raises(RecordingError, match=f"format version {version} is not supported.*{words}"):
        Recording(str(path))
    assert main(["export", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"format version {version}" in err


def _damaged(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.swrec"
    _make_recording(good)
    text = tmp_path / "text.swrec"
    text.write_text("ts,value\n1,2\n")
    empty = tmp_path / "empty.swrec"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.swrec"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    header_only = tmp_path / "header.swrec"
    header_only.write_bytes(data[:60])
    return {"text": text, "empty": empty, "truncated": truncated, "header": header_only,
            "missing": tmp_path / "nope.swrec", "directory": tmp_path}


@pytest.mark.parametrize("command", ["export", "replay", "report"])
def test_bad_files_give_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            command: str) -> None:
    for kind, path in _damaged(tmp_path).items():
        argv = [command, str(path)]
        if command == "replay":
            argv.append("--headless")
        if command == "report":
            argv += ["-o", str(tmp_path / "r.html")]
        assert main(argv) == 2, kind
        out = capsys.readouterr()
        assert out.err.count("\n") == 1, (kind, out.err)
        assert str(path) in out.err and "Traceback" not in out.err, kind


WRITER_SCRIPT = """
import sys, time
import numpy as np
from surgewatch.recording.writer import Recorder, RecordingWriter
w = RecordingWriter(sys.argv[1], {"tick_seconds": "0.01"}, compact_every=50, keep_raw=10,
                    on_commit=lambda n: print(n, flush=True))
r = Recorder(w)
k = 0
while True:
    r.record(1000.0 + k, np.array([0, 1, 2]), np.array([k * 0.1, -k, np.sin(k)]), [])
    k += 1
    time.sleep(0.002)
"""


def test_kill_9_while_recording_keeps_every_committed_tick(tmp_path: Path) -> None:
    path = tmp_path / "crash.swrec"
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True,
                            env=env)
    committed = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            committed = int(line)
            if committed >= 180:  # past a few compactions
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert committed >= 180
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ts, series = read_series(str(path))
    n = ts.size
    assert n >= committed
    k = np.arange(n)
    assert ts.tolist() == (1000.0 + k).tolist()  # no gap, no torn tick
    assert np.array_equal(series["0"], k * 0.1) and np.array_equal(series["1"], -k.astype(float))
    assert np.array_equal(series["2"], np.sin(k))


def test_kill_9_during_a_headless_recording_leaves_a_replayable_file(tmp_path: Path) -> None:
    path = tmp_path / "live.swrec"
    env = {**os.environ, "PYTHONPATH": SRC, "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "surgewatch", "--headless", "--demo-speed", "100",
                             "--record", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 20
        ticks = 0
        while time.monotonic() < deadline and ticks < 8:
            time.sleep(0.2)
            try:
                with Recording(str(path)) as rec:
                    ticks = rec.count() - len(list(rec.ticks(kinds=(1,))))
            except RecordingError:
                ticks = 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert ticks >= 8
    with Recording(str(path)) as rec:
        assert len(list(rec.ticks(kinds=(0,)))) >= ticks
    assert main(["replay", str(path), "--headless"]) == 0


def test_a_live_headless_recording_replays_to_the_same_alert_lines(tmp_path: Path) -> None:
    path = tmp_path / "live.swrec"
    env = {**os.environ, "PYTHONPATH": SRC, "XDG_STATE_HOME": str(tmp_path / "state")}
    live = subprocess.Popen([sys.executable, "-m", "surgewatch", "--headless", "--demo-speed", "120",
                             "--record", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    assert live.stdout is not None
    live_lines: list[str] = []
    reader = threading.Thread(target=lambda: live_lines.extend(line.rstrip("\n") for line in live.stdout or ()))
    reader.start()
    # the demo launches its campaign about 1.5 s in at this speed; a loaded machine starts slower
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any('"campaign-surge"' in line for line in list(live_lines)):
        time.sleep(0.1)
    time.sleep(0.5)
    live.send_signal(signal.SIGINT)
    err = live.communicate(timeout=20)[1]
    reader.join(timeout=20)
    assert live.returncode == 0, err
    assert any(json.loads(line)["rule"] == "campaign-surge" for line in live_lines)
    replay = subprocess.run([sys.executable, "-m", "surgewatch", "replay", str(path), "--headless"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.splitlines() == live_lines


def test_a_restarted_session_appends_to_the_same_recording(tmp_path: Path) -> None:
    path = tmp_path / "daemon.swrec"
    first = _engine(path)
    _feed(first, [10.0, 95.0, 96.0, 97.0])
    for listener in first.listeners:
        listener.close()
    second = _engine(path)
    _feed(second, [20.0, 30.0], t0=1_700_000_100.0)
    for listener in second.listeners:
        listener.close()
    ts, series = read_series(str(path))
    assert ts.tolist() == [1_700_000_000.0 + k for k in range(4)] + [1_700_000_100.0, 1_700_000_101.0]
    assert series["host:web-1/cpu.percent"].tolist() == [10.0, 95.0, 96.0, 97.0, 20.0, 30.0]
    with Recording(str(path)) as rec:
        assert len(rec.series_names) == 2  # the second session reused the series ids


def test_recording_into_a_foreign_database_or_another_version_is_refused_up_front(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t(x)")
    newer = tmp_path / "newer.swrec"
    _make_recording(newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'format_version'")
    set_record_path(str(other))
    try:
        with pytest.raises(ConfigError, match="not a surgewatch recording"):
            resolve_config(None)
        set_record_path(str(newer))
        with pytest.raises(ConfigError, match="format version 7"):
            resolve_config(None)
    finally:
        set_record_path(None)


def test_a_config_reload_is_recorded_and_replayed_where_it_happened(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "reload.swrec"
    engine = _engine(path)
    recorder = engine.listeners[0]
    assert isinstance(recorder, Recorder)
    live = []
    engine.on_events(lambda evs: live.extend(e.to_json() for e in evs))
    _feed(engine, [50.0] * 5)
    stricter = parse_config(CONFIG.replace("above = 90", "above = 40"), "stricter.toml")
    engine.clock = lambda: 1_700_000_004.5  # the reload lands between two ticks
    asyncio.run(engine.reload(stricter))
    _feed(engine, [50.0] * 5, t0=1_700_000_005.0)
    recorder.close()
    assert [(a["rule"], a["event"]) for a in live] == [("cpu-high", "firing")]
    assert main(["replay", str(path), "--headless"]) == 0
    replayed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [{k: v for k, v in a.items() if k != "key"} for a in replayed] == live


def test_replay_of_a_recording_whose_clock_stepped_back_drops_those_ticks_with_one_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rec.swrec"
    engine = _engine(path)
    t0 = 1_700_000_000.0
    stamps = [t0 + k for k in range(40)] + [t0 + 29 + k for k in range(10)] + [t0 + 40 + k for k in range(30)]
    h = engine.collector.health["host:web-1"]
    for k, t in enumerate(stamps):  # the clock steps back 10 s after 40 ticks (NTP)
        h.ok, h.last_success = True, t
        engine.collector.pending = {"host:web-1/cpu.percent": 20.0 + k % 3, "host:web-1/mem.percent": 40.0}
        engine.tick(t)
    for listener in engine.listeners:
        listener.close()
    capsys.readouterr()
    assert main(["replay", str(path), "--headless"]) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "stepped back" in line]
    assert len(notes) == 1 and "10 ticks stamped before a tick already played dropped" in notes[0]
    with Recording(str(path)) as rec:
        driver = ReplayDriver(rec, engine.config, speed=float("inf"))
        driver.play_all()
        assert driver.position == stamps[-1] and driver.timeline.size == 70
