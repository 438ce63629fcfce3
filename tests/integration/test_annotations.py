"""Deploy annotations: the store in the state dir, `surgewatch annotate`, POST /annotations on the export
listener, a running engine picking them up, and their failure paths (about 10 s)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from surgewatch.annotations import DB_NAME, MAX_BODY, AnnotationError, AnnotationStore, parse_request, validate
from surgewatch.config import parse_config
from surgewatch.engine import Engine, EngineOptions
from surgewatch.export import Exporter, ExportState, SeriesFigure, is_loopback, parse_listen

SRC = str(Path(__file__).resolve().parents[2] / "src")
NOW = 1_790_000_000.0


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-m", "surgewatch", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60)


# -- the store --------------------------------------------------------------------------------------------


def test_an_annotation_is_stored_0600_and_read_back(tmp_path: Path) -> None:
    store = AnnotationStore(tmp_path / "state", clock=lambda: NOW)
    a = store.add(validate("deploy v2.3", "web-2", "10m", now=NOW), "cli")
    assert (a.text, a.host, a.duration, a.ts, a.origin) == ("deploy v2.3", "web-2", 600.0, NOW, "cli")
    assert (tmp_path / "state" / DB_NAME).stat().st_mode & 0o777 == 0o600
    assert store.refresh(force=True) and store.items() == (a,)


def test_concurrent_writers_from_threads_and_processes_lose_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = AnnotationStore(state)

    def write(k: int) -> None:
        for i in range(10):
            AnnotationStore(state).add(validate(f"thread {k} #{i}"), "test")

    procs = [subprocess.Popen([sys.executable, "-m", "surgewatch", "annotate", f"process {k}", "--state-dir",
                               str(state)], env=dict(os.environ, PYTHONPATH=SRC), stdout=subprocess.DEVNULL)
             for k in range(3)]
    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    texts = sorted(a.text for a in store.read())
    assert len(texts) == 43 and len(set(texts)) == 43
    assert len({a.id for a in store.read()}) == 43


def test_an_add_waiting_behind_a_transaction_does_not_drop_its_lock_for_other_processes(tmp_path: Path) -> None:
    # POSIX locks belong to the process: opening and closing the database file in one thread releases the
    # lock another thread's transaction holds, and a second process then writes into that transaction.
    state = tmp_path / "state"
    store = AnnotationStore(state)
    store.add(validate("first"), "test")
    holder = sqlite3.connect(state / DB_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waiting = threading.Thread(target=lambda: AnnotationStore(state).add(validate("second"), "test"))
    waiting.start()
    try:
        time.sleep(0.3)  # the thread is now waiting on the busy timeout
        probe = ("import sqlite3, sys\n"
                 "db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)\n"
                 "try:\n    db.execute('BEGIN IMMEDIATE')\nexcept sqlite3.OperationalError as e:\n    print(e)\n"
                 "else:\n    print('got the lock')\n")
        out = subprocess.run([sys.executable, "-c", probe, str(state / DB_NAME)], capture_output=True, text=True,
                             timeout=60).stdout.strip()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        waiting.join(timeout=30)
    assert out == "database is locked"
    assert sorted(a.text for a in store.read()) == ["first", "second"]


def test_a_corrupt_file_is_moved_aside_with_one_warning_line(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / DB_NAME).write_bytes(b"this is not sqlite at all " * 50)
    store = AnnotationStore(state)
    with caplog.at_level(logging.WARNING, logger="surgewatch.annotations"):
        store.refresh(force=True)
    assert store.items() == ()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "not an annotation file" in lines[0] and "moved aside" in lines[0]
    assert "\n" not in lines[0] and "Traceback" not in caplog.text
    assert len(list(state.glob(DB_NAME + ".corrupt-*"))) == 1
    store.add(validate("after the damage"), "cli")  # a fresh file is started
    assert [a.text for a in store.read()] == ["after the damage"]


def test_annotate_on_a_corrupt_file_moves_it_aside_and_stores(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / DB_NAME).write_bytes(b"garbage" * 100)
    r = run_cli("annotate", "deploy v2.4", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1  # the warning line
    assert [a.text for a in AnnotationStore(state).read()] == ["deploy v2.4"]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"text": ""}, "text is required"),
    ({"text": "x" * 600}, "at most 500"),
    ({"text": "x", "host": "web 2"}, "host must be a host name"),
    ({"text": "x", "duration": "soon"}, 'duration must be a duration like "30s"'),
    ({"text": "x", "duration": -5}, "duration must be more than 0"),
    ({"text": "x", "duration": "30d"}, "at most 7d"),
    ({"text": "x", "ts": "yesterday"}, "time must be RFC 3339"),
    ({"text": "x", "ts": "2026-03-01T09:00:00"}, "time must be RFC 3339 with a zone"),
])
def test_invalid_annotations_are_refused_with_one_line(fields: dict[str, object], expected: str) -> None:
    with pytest.raises(AnnotationError) as info:
        validate(**fields)  # type: ignore[arg-type]
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_time_is_taken_as_rfc3339_or_unix_seconds() -> None:
    assert validate("x", ts="2026-03-01T09:00:00Z").ts == 1772355600.0
    assert validate("x", ts=1772355600).ts == 1772355600.0


# -- the command ----------------------------------------------------------------------------------------------


def test_annotate_command_stores_what_a_config_names(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[monitor]\nstate_dir = "state"\n')
    r = run_cli("annotate", "deploy v2.3", "--host", "web-2", "--duration", "5m", "--config", str(cfg), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["text"], doc["host"], doc["duration"], doc["origin"]) == ("deploy v2.3", "web-2", 300.0, "cli")
    (a,) = AnnotationStore(tmp_path / "state").read()
    assert a.id == doc["id"]


def test_annotate_with_an_unwritable_state_dir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    r = run_cli("annotate", "deploy", "--state-dir", str(blocker / "state"))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("surgewatch: state dir ") and "cannot write annotations" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_annotate_with_a_bad_duration_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = run_cli("annotate", "deploy", "--duration", "a while", "--state-dir", str(tmp_path))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "duration" in r.stderr


# -- POST /annotations ---------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = AnnotationStore(tmp_path / "state")
    exporter = Exporter(lambda: ExportState(series=[SeriesFigure("host:db-1/cpu.percent", 91.0, 0.95,
                                                                 cause="schedule")]),
                        annotate=partial(store.add, origin="http"))
    host, port = exporter.start("127.0.0.1:0")
    yield exporter, store, f"http://{host}:{port}"
    exporter.stop()


def test_post_on_loopback_without_a_token_stores_the_annotation(served) -> None:  # type: ignore[no-untyped-def]
    _exporter, store, url = served
    r = httpx.post(f"{url}/annotations", json={"text": "deploy v2.3", "host": "web-2", "duration": "10m",
                                               "time": "2026-03-01T09:40:00Z"})
    assert r.status_code == 201, r.text
    doc = r.json()
    assert (doc["text"], doc["host"], doc["duration"], doc["time"], doc["origin"]) == \
        ("deploy v2.3", "web-2", 600.0, "2026-03-01T09:40:00.000Z", "http")
    (a,) = store.read()
    assert a.id == doc["id"] and a.ts == 1772358000.0


@pytest.mark.parametrize(("body", "expected"), [
    (b"{not json", "body is not JSON"),
    (b"[1, 2]", "body must be a JSON object"),
    (b'{"host": "web-2"}', "text is required"),
    (b'{"text": "x", "when": "now"}', "unknown key 'when'"),
    (b'{"text": "x", "duration": "forever"}', "duration"),
    (b"\xff\xfe", "body is not JSON"),
])
def test_bad_bodies_get_400_with_a_one_line_reason(served, body: bytes, expected: str) -> None:  # type: ignore[no-untyped-def]
    _exporter, store, url = served
    r = httpx.post(f"{url}/annotations", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert expected in r.text and r.text.count("\n") == 1
    assert store.read() == ()


def test_an_oversize_body_gets_413_and_nothing_is_stored(served) -> None:  # type: ignore[no-untyped-def]
    _exporter, store, url = served
    r = httpx.post(f"{url}/annotations", json={"text": "x" * (MAX_BODY + 10)})
    assert r.status_code == 413 and f"at most {MAX_BODY}" in r.text
    assert store.read() == ()


def test_a_token_is_required_when_configured(served) -> None:  # type: ignore[no-untyped-def]
    exporter, store, url = served
    exporter.token = "s3cret"
    body = {"text": "deploy v2.3"}
    assert httpx.post(f"{url}/annotations", json=body).status_code == 401
    wrong = httpx.post(f"{url}/annotations", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert store.read() == ()
    ok = httpx.post(f"{url}/annotations", json=body, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 201


def test_a_listener_beyond_loopback_refuses_posts_without_a_token(served) -> None:  # type: ignore[no-untyped-def]
    exporter, store, url = served
    assert is_loopback(parse_listen(":9273")[0]) and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback(parse_listen("0.0.0.0:9273")[0]) and not is_loopback("10.0.0.5")
    exporter.loopback = False  # what start() sets for 0.0.0.0 (tests only listen on loopback)
    r = httpx.post(f"{url}/annotations", json={"text": "deploy"})
    assert r.status_code == 403 and "token" in r.text
    assert store.read() == ()


def test_other_methods_get_405_and_metrics_still_serve_causes(served) -> None:  # type: ignore[no-untyped-def]
    _exporter, _store, url = served
    assert httpx.get(f"{url}/annotations").status_code == 405
    body = httpx.get(f"{url}/metrics").text
    got = {(s.name, s.labels.get("cause")): s.value for f in text_string_to_metric_families(body)
           for s in f.samples}
    assert got[("surgewatch_anomaly_cause", "schedule")] == 1.0


# -- a running engine -----------------------------------------------------------------------------------------


def test_a_running_engine_picks_up_new_annotations_without_restart(tmp_path: Path) -> None:
    now = [NOW]
    cfg = parse_config(f'[monitor]\nstate_dir = "{tmp_path / "state"}"\n', "c.toml", {})
    engine = Engine(cfg, EngineOptions(clock=lambda: now[0]), sources=[])
    engine.tick(now[0])
    assert engine.snapshot().annotations == ()
    AnnotationStore(tmp_path / "state").add(validate("deploy v2.3", "web-2", now=now[0]), "cli")
    now[0] += 1.5  # the engine looks at the file about once a second
    engine.tick(now[0])
    (a,) = engine.snapshot().annotations
    assert a.text == "deploy v2.3" and engine.declared.annotations == (a,)


def test_parse_request_refuses_a_body_over_the_limit_before_parsing() -> None:
    with pytest.raises(AnnotationError, match="at most"):
        parse_request(b" " * (MAX_BODY + 1))


# -- recordings ------------------------------------------------------------------------------------------------


def test_annotations_are_recorded_once_read_back_and_listed_by_export(tmp_path: Path) -> None:
    import asyncio

    from surgewatch.recording.reader import Recording
    from surgewatch.recording.writer import attach_recorder

    now = [NOW]
    rec_path = tmp_path / "s.swrec"
    cfg = parse_config(f'[monitor]\nstate_dir = "{tmp_path / "state"}"\nrecord = "{rec_path}"\n', "c.toml", {})
    engine = Engine(cfg, EngineOptions(clock=lambda: now[0]), sources=[])
    attach_recorder(engine)
    engine.tick(now[0])
    AnnotationStore(tmp_path / "state").add(validate("deploy v2.3, hotfix", "web-2", "10m", now=now[0]), "cli")
    AnnotationStore(tmp_path / "state").add(validate("long over", ts=NOW - 3 * 3600), "cli")  # not this session's
    for _ in range(3):
        now[0] += 1.5
        engine.tick(now[0])
    asyncio.run(engine.shutdown(0.1))
    with Recording(str(rec_path)) as rec:
        (a,) = rec.annotations()
        assert (a.text, a.host, a.duration, a.ts) == ("deploy v2.3, hotfix", "web-2", 600.0, NOW)
        assert len(rec.events("annotation")) == 1
    r = run_cli("export", str(rec_path), "--annotations")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["ts,time,host,duration,text",
                                     f'{NOW!r},2026-09-21T14:13:20.000Z,web-2,600.0,"deploy v2.3, hotfix"']
    doc = json.loads(run_cli("export", str(rec_path), "--format", "json").stdout)
    assert [x["text"] for x in doc["annotations"]] == ["deploy v2.3, hotfix"]


def test_old_recordings_without_annotations_still_read() -> None:
    from surgewatch.recording.reader import Recording
    from surgewatch.scenarios import path

    with Recording(path("incident")) as rec:
        assert rec.annotations() == []
    r = run_cli("export", "incident", "--annotations", "--format", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == []


# -- the daemon ------------------------------------------------------------------------------------------------


def test_a_running_daemon_accepts_posts_with_its_token_file_and_refuses_others(tmp_path: Path) -> None:
    from tests.integration.test_headless import Daemon, Stats, write_config
    from tests.support.servers import free_port

    port = free_port()
    (tmp_path / "token").write_text("t0ken-123\n")
    stats = Stats()
    cfg = write_config(tmp_path / "c.toml", stats,
                       extra=f'[export]\nlisten = "127.0.0.1:{port}"\ntoken_file = "token"\n')
    d = Daemon(cfg)
    try:
        d.wait_for(lambda: any("started" in line for line in d.log), "start")
        url = f"http://127.0.0.1:{port}/annotations"
        assert httpx.post(url, json={"text": "deploy v2.3"}).status_code == 401
        r = httpx.post(url, json={"text": "deploy v2.3", "host": "web-2"},
                       headers={"Authorization": "Bearer t0ken-123"})
        assert r.status_code == 201, r.text
        d.wait_for(lambda: any("annotation 1 from 127.0.0.1: deploy v2.3 on web-2" in line for line in d.log),
                   "the annotation logged")
        rc, _ = d.stop()
    finally:
        d.kill()
        stats.close()
    assert rc == 0
    assert [a.text for a in AnnotationStore(tmp_path / "state").read()] == ["deploy v2.3"]


def test_export_token_config_reads_a_file_beside_the_config_and_refuses_mistakes(tmp_path: Path) -> None:
    from surgewatch.config import ConfigError, load_config

    (tmp_path / "tok").write_text("abc123\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[export]\nlisten = "127.0.0.1:0"\ntoken_file = "tok"\n')
    assert load_config(cfg).export.token == "abc123"
    assert parse_config('[export]\ntoken = "${T}"\n', "c.toml", {"T": "xyz"}).export.token == "xyz"
    for text, expected in [('[export]\ntoken = "a"\ntoken_file = "tok"\n', "c.toml:3: [export] set token or "
                                                                          "token_file, not both"),
                           ('[export]\ntoken = "two words"\n', "c.toml:2: [export] the token must be one word"),
                           ('[export]\ntoken_file = "missing"\n', "c.toml:2: [export] token_file")]:
        with pytest.raises(ConfigError) as info:
            parse_config(text, "c.toml", {})
        assert str(info.value).startswith(expected) and "\n" not in str(info.value)


def test_annotate_list_shows_what_is_stored_and_text_is_required_otherwise(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run_cli("annotate", "--list", "--state-dir", str(state)).stdout == "no annotations in the last 8 days\n"
    run_cli("annotate", "deploy v9", "--host", "web-1", "--state-dir", str(state))
    listed = run_cli("annotate", "--list", "--state-dir", str(state)).stdout
    assert listed.startswith("1  ") and listed.rstrip().endswith("web-1  15m00s  deploy v9")
    assert [d["text"] for d in json.loads(run_cli("annotate", "--list", "--json", "--state-dir", str(state)).stdout)] \
        == ["deploy v9"]
    r = run_cli("annotate", "--state-dir", str(state))
    assert r.returncode == 2 and r.stderr == "surgewatch: annotate needs TEXT (or --list)\n"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.dictionaries(st.sampled_from(["text", "host", "duration", "time", "x"]),
                                 st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                                           st.lists(st.integers(), max_size=2)), max_size=5)
                 .map(lambda d: json.dumps(d).encode())))
def test_any_body_is_an_annotation_or_one_line_reason(body: bytes) -> None:
    try:
        new = parse_request(body)
    except AnnotationError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert new.text.strip() and 0 < new.duration <= 7 * 86400
