"""Silences and acknowledgements, kept in `silences.json` in the state dir so they survive restarts.

The daemon, the dashboard and `surgewatch silence` share the file: every change is a locked
read-modify-write followed by an atomic rename, and a running engine notices changes by polling the
file's mtime (at most once per `poll_every` seconds), so no signal is needed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..model import glob_match
from ..statedir import write_atomic

FILE_NAME = "silences.json"
LOCK_NAME = "silences.lock"
FORMAT_VERSION = 1
KEEP_EXPIRED = 24 * 3600.0  # expired silences stay listed this long, then the next write drops them
KEEP_ACK = 7 * 24 * 3600.0  # an acknowledgement of an alert that never resolves is forgotten after this


class SilenceError(Exception):
    """The silence file cannot be read or written (one line naming the file)."""


@dataclass(frozen=True, slots=True)
class Silence:
    """Mute notifications of alerts whose rule and series match these globs until `until`."""

    id: str
    rule: str
    series: str
    until: float
    comment: str = ""
    created: float = 0.0

    def active(self, now: float) -> bool:
        """Whether the silence still applies at `now`."""
        return now < self.until

    def matches(self, rule: str, series_name: str) -> bool:
        """Whether an alert of `rule` on `series_name` falls under this silence (globs, case-sensitive)."""
        return glob_match(self.rule, rule) and glob_match(self.series, series_name)


class SilenceStore:
    """The silences and acknowledgements of one state dir, cached in memory and re-read when the file changes."""

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time, poll_every: float = 1.0) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / FILE_NAME
        self.clock = clock
        self.poll_every = poll_every
        self.version = 0  # bumps whenever the in-memory view changes
        self._silences: dict[str, Silence] = {}
        self._acks: dict[str, float] = {}
        self._stamp: tuple[int, int] | None = None
        self._last_poll = float("-inf")

    # -- reading --------------------------------------------------------------------------------

    def refresh(self, force: bool = False) -> bool:
        """Re-read the file if it changed since the last read (throttled); True if the view changed."""
        now = self.clock()
        if not force and now - self._last_poll < self.poll_every:
            return False
        self._last_poll = now
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        silences, acks = self._read() if stamp is not None else ({}, {})
        self._stamp = stamp
        if silences == self._silences and acks == self._acks:
            return False
        self._silences, self._acks = silences, acks
        self.version += 1
        return True

    def silences(self, now: float | None = None, include_expired: bool = False) -> list[Silence]:
        """The silences in effect at `now` (or all that are still kept), soonest ending first."""
        t = self.clock() if now is None else now
        out = [s for s in self._silences.values() if include_expired or s.active(t)]
        return sorted(out, key=lambda s: (s.until, s.id))

    def matching(self, rule: str, series_name: str, now: float) -> Silence | None:
        """The active silence covering this alert, if any."""
        for s in self._silences.values():
            if s.active(now) and s.matches(rule, series_name):
                return s
        return None

    def next_expiry(self, now: float) -> float:
        """When the next active silence ends (inf if none): matches must be recomputed then."""
        return min((s.until for s in self._silences.values() if s.active(now)), default=float("inf"))

    def acked(self, fingerprint: str) -> bool:
        """Whether someone acknowledged the alert with this fingerprint."""
        return fingerprint in self._acks

    # -- writing --------------------------------------------------------------------------------

    def add(self, rule: str, series_glob: str, until: float, comment: str = "") -> Silence:
        """Store a new silence and return it (with its new id)."""
        if not rule or not series_glob:
            raise SilenceError("a silence needs a rule glob and a series glob (use * for any)")
        now = self.clock()
        if not until > now:
            raise SilenceError("a silence must end in the future")
        with self._editing() as doc:
            sid = os.urandom(4).hex()  # what secrets.token_hex does (secrets would load libcrypto)
            while sid in doc["silences"]:
                sid = os.urandom(4).hex()
            silence = Silence(sid, rule, series_glob, float(until), comment, now)
            doc["silences"][sid] = silence
        return silence

    def remove(self, silence_id: str) -> bool:
        """Delete a silence by id; False if there is none with that id."""
        with self._editing() as doc:
            return doc["silences"].pop(silence_id, None) is not None

    def acknowledge(self, fingerprint: str) -> None:
        """Mark an alert acknowledged (its repeat notifications stop until it resolves)."""
        with self._editing() as doc:
            doc["acks"][fingerprint] = self.clock()

    def forget_acks(self, fingerprints: list[str]) -> None:
        """Drop the acknowledgements of alerts that resolved."""
        if not any(fp in self._acks for fp in fingerprints):
            return
        with self._editing() as doc:
            for fp in fingerprints:
                doc["acks"].pop(fp, None)

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        """Lock the file, read it, let the caller change it, write it back atomically and update the cache."""
        self._ensure_dir()
        lock = self.dir / LOCK_NAME
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SilenceError(f"{lock}: cannot open: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            silences, acks = self._read() if self.path.exists() else ({}, {})
            doc: dict[str, Any] = {"silences": dict(silences), "acks": dict(acks)}
            yield doc
            now = self.clock()
            doc["silences"] = {k: s for k, s in doc["silences"].items() if s.until > now - KEEP_EXPIRED}
            doc["acks"] = {k: t for k, t in doc["acks"].items() if t > now - KEEP_ACK}
            self._write(doc)
            self._stamp = self._file_stamp()
            if doc["silences"] != self._silences or doc["acks"] != self._acks:
                self._silences, self._acks = doc["silences"], doc["acks"]
                self.version += 1
        finally:
            os.close(fd)

    def _ensure_dir(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise SilenceError(f"state dir {self.dir}: cannot create: {exc.strerror or exc}") from None

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SilenceError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        return st.st_mtime_ns, st.st_size

    def _read(self) -> tuple[dict[str, Silence], dict[str, float]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, {}
        except (OSError, UnicodeDecodeError) as exc:
            raise SilenceError(f"{self.path}: cannot read: {exc}") from None
        try:
            doc = json.loads(text)
            silences = {}
            for d in doc.get("silences", []):
                s = Silence(str(d["id"]), str(d["rule"]), str(d["series"]), float(d["until"]),
                            str(d.get("comment", "")), float(d.get("created", 0.0)))
                silences[s.id] = s
            acks = {str(k): float(v) for k, v in doc.get("acks", {}).items()}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SilenceError(f"{self.path}: not a surgewatch silence file ({type(exc).__name__}: {exc})") from None
        return silences, acks

    def _write(self, doc: dict[str, Any]) -> None:
        body = {"version": FORMAT_VERSION,
                "silences": [asdict(s) for s in sorted(doc["silences"].values(), key=lambda s: s.created)],
                "acks": doc["acks"]}
        try:
            write_atomic(self.path, json.dumps(body, indent=1, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise SilenceError(f"{self.path}: cannot write: {exc.strerror or exc}") from None
