"""A REAL Umami (npm `umami` 2.10.0) and its own PostgreSQL, both on 127.0.0.1, for tests.

tests/install_umami.sh builds Umami once into ~/.cache/surgewatch-tests/umami (tests/run.sh calls it); a test then
starts a throwaway PostgreSQL cluster in a temp dir (initdb, Umami's SQL migrations through psql), `next start`
on the built app, and talks to it through Umami's own HTTP API. Everything is stopped by PID and removed after.

    with umami_postgres() as database_url, start_umami(tmp_path, database_url) as umami:
        token = umami_login(umami.url)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .servers import LOOPBACK, ServerProcess, free_port, start_process

UMAMI_VERSION = "2.10.0"
UMAMI_HOME = Path(os.environ.get("SURGEWATCH_UMAMI_HOME", "~/.cache/surgewatch-tests/umami")).expanduser()
UMAMI_APP = UMAMI_HOME / "app"
# Umami's first migration creates this administrator; the test changes nothing else.
ADMIN_USER, ADMIN_PASSWORD = "admin", "umami"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL server binaries (/usr/lib/postgresql/<major>/bin), newest major first."""
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: -int(p.parent.name)
                    if p.parent.name.isdigit() else 0):
        if (d / "initdb").exists() and (d / "postgres").exists():
            return d
    return None


def umami_missing() -> str | None:
    """Why a real Umami cannot run here (the reason a test is skipped with), or None."""
    if not (UMAMI_APP / f".surgewatch-built-{UMAMI_VERSION}").exists():
        return (f"Umami {UMAMI_VERSION} is not built in {UMAMI_APP}: tests/run.sh builds it when npm is there "
                "(tests/install_umami.sh)")
    if shutil.which("node") is None:
        return "node is missing (Debian package nodejs)"
    if postgres_bin() is None or shutil.which("psql") is None:
        return "PostgreSQL is missing (Debian package postgresql; tests/run.sh installs it as root)"
    if os.geteuid() == 0 and _uid_of("postgres") is None:
        return "running as root without a `postgres` user to run PostgreSQL as"
    return None


def _uid_of(user: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


@contextlib.contextmanager
def umami_postgres() -> Iterator[str]:
    """A PostgreSQL cluster of its own on a free loopback port with Umami's schema; yields the database URL.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user. The cluster (and
    with it the database) lives in a temp dir that is removed afterwards.
    """
    pg = postgres_bin()
    assert pg is not None
    user = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="surgewatch-umami-pg-"))
    server: ServerProcess | None = None
    try:
        if user is not None:
            os.chown(base, _uid_of(user) or 0, -1)
        data = base / "data"
        subprocess.run([str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", "umami", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True, user=user, timeout=120)
        port = free_port()

        def ready() -> bool:
            return subprocess.run(["psql", "-h", LOOPBACK, "-p", str(port), "-U", "umami", "-d", "postgres",
                                   "-Atc", "select 1"], capture_output=True, timeout=10).returncode == 0

        server = start_process("postgres", [str(pg / "postgres"), "-D", str(data), "-p", str(port),
                                            "-k", str(base), "-c", f"listen_addresses={LOOPBACK}",
                                            "-c", "fsync=off", "-c", "synchronous_commit=off"],
                               workdir=base, port=port, ready=ready, timeout=60, user=user)
        url = f"postgresql://umami@{LOOPBACK}:{port}/umami"
        _psql(port, "postgres", "-c", "create database umami")
        for migration in sorted((UMAMI_APP / "db" / "postgresql" / "migrations").glob("*/migration.sql")):
            _psql(port, "umami", "-v", "ON_ERROR_STOP=1", "-f", str(migration))
        yield url
    finally:
        if server is not None:
            server.stop(timeout=10.0)
        shutil.rmtree(base, ignore_errors=True)


def _psql(port: int, db: str, *args: str) -> None:
    subprocess.run(["psql", "-q", "-h", LOOPBACK, "-p", str(port), "-U", "umami", "-d", db, *args],
                   check=True, capture_output=True, timeout=60)


def start_umami(workdir: Path, database_url: str, timeout: float = 90.0) -> ServerProcess:
    """`next start` on the built Umami, on a free loopback port; ready when /api/heartbeat answers."""
    port = free_port()
    next_bin = UMAMI_HOME / "node_modules" / "next" / "dist" / "bin" / "next"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), "DATABASE_URL": database_url,
           "APP_SECRET": secrets.token_hex(16), "NEXT_TELEMETRY_DISABLED": "1", "DISABLE_TELEMETRY": "1",
           "DISABLE_UPDATES": "1", "NODE_ENV": "production"}
    return start_process("umami", ["node", str(next_bin), "start", str(UMAMI_APP), "-H", LOOPBACK, "-p", str(port)],
                         workdir=workdir, port=port, ready_url=f"http://{LOOPBACK}:{port}/api/heartbeat",
                         timeout=timeout, env=env)


def umami_call(base: str, method: str, path: str, body: Any = None, *, token: str | None = None,
               headers: Mapping[str, str] | None = None) -> Any:
    """One JSON call to Umami's API; the answer parsed (or the raw text when it is not JSON)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{base}{path}", data=data, method=method, headers=all_headers)
    try:
        with _NO_PROXY.open(req, timeout=30) as resp:
            raw = resp.read().decode()
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:300]!r}") from None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def umami_login(base: str) -> str:
    """A bearer token for Umami's built-in administrator."""
    token = umami_call(base, "POST", "/api/auth/login", {"username": ADMIN_USER, "password": ADMIN_PASSWORD})["token"]
    return str(token)


def browser(n: int) -> str:
    """A desktop browser's User-Agent, one per visitor (Umami drops bot agents and keys sessions on it)."""
    return (f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.{n}.0 "
            "Safari/537.36")


def send_pageview(base: str, website_id: str, url: str, visitor: int, hostname: str = "shop.example.com") -> None:
    """One page view through Umami's collect API (`POST /api/send`), as its tracker script sends it."""
    payload = {"website": website_id, "hostname": hostname, "url": url, "referrer": "", "language": "en-US",
               "screen": "1920x1080", "title": "Shop"}
    umami_call(base, "POST", "/api/send", {"type": "event", "payload": payload},
               headers={"User-Agent": browser(visitor)})
