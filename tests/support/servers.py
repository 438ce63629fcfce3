"""Start REAL loopback servers for tests and benchmarks: free ports, temp dirs, readiness waits, stop by PID.

Everything here binds 127.0.0.1 only and never talks to anything else. Typical use in a fixture:

    exe = require_binary("prometheus-node-exporter")          # pytest.skip when the Debian package is missing
    with start_node_exporter(tmp_path) as node:               # waits until /metrics answers
        ... node.url ...                                       # http://127.0.0.1:<port>
    # leaving the block stops it by PID (SIGTERM, then SIGKILL)

Generic pieces (`free_port`, `start_process`, `wait_until`, `http_get`, `SilentServer`, `CannedHttpServer`)
work for any server; `start_node_exporter`, `start_prometheus` and `start_nginx` are ready-made recipes with
the gotchas of /work/shared/reference/real-components.md already handled (systemd collector off, wait for
`up == 1`, nginx with its own prefix dir and no /var/log). Leftover processes are stopped at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
LOOPBACK = "127.0.0.1"

# ---------------------------------------------------------------------------------------------
# Small generic helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def find_binary(name: str) -> str | None:
    """The path of an executable on PATH (also /usr/sbin, where Debian puts nginx), or None."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def require_binary(name: str, package: str | None = None) -> str:
    """The path of an executable, or pytest.skip naming the Debian package that provides it."""
    path = find_binary(name)
    if path is None:
        import pytest

        pytest.skip(f"{name} not installed (Debian package {package or name})")
    return path


def wait_until(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05,
               alive: Callable[[], bool] | None = None) -> T:
    """Call `check` until it returns something truthy; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if alive is not None and not alive():
            raise RuntimeError(f"{what}: the process exited while we were waiting")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:g}s")
        time.sleep(interval)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never use an environment proxy


def http_get(url: str, timeout: float = 1.0,
             headers: Mapping[str, str] | None = None) -> tuple[int, bytes] | None:
    """(status, body) of a GET on a loopback URL, or None if the server did not answer at all."""
    req = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, OSError, TimeoutError):
        return None


# ---------------------------------------------------------------------------------------------
# Processes


_RUNNING: dict[int, ServerProcess] = {}


@dataclass
class ServerProcess:
    """A server we started: its PID, port, base URL, work dir and log file; `stop()` ends it by PID."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log_path: Path
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of its stdout/stderr log (for failure messages)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM by PID, wait up to `timeout`, then SIGKILL; safe to call twice."""
        _RUNNING.pop(self.pid, None)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_RUNNING.values()):
        server.stop(timeout=2.0)


def start_process(name: str, argv: Sequence[str], *, workdir: Path, port: int, ready_url: str | None = None,
                  ready: Callable[[], object] | None = None, timeout: float = 15.0,
                  env: Mapping[str, str] | None = None, url: str | None = None,
                  user: str | None = None) -> ServerProcess:
    """Launch `argv` (log: workdir/<name>.log), as `user` if given; wait for `ready_url` (2xx) and `ready()`."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir, env=dict(env) if env is not None else None,
                                start_new_session=True, user=user)
    server = ServerProcess(name, proc, port, workdir, log_path, url or f"http://{LOOPBACK}:{port}")
    _RUNNING[proc.pid] = server
    try:
        if ready_url is not None:
            def answered() -> bool:
                got = http_get(ready_url, timeout=0.5)
                return got is not None and 200 <= got[0] < 300

            wait_until(answered, timeout, f"{name} at {ready_url}", alive=server.alive)
        if ready is not None:
            wait_until(ready, timeout, f"{name} readiness", interval=0.1, alive=server.alive)
    except (TimeoutError, RuntimeError) as exc:
        tail = server.log_tail()
        server.stop()
        raise RuntimeError(f"{exc}\n--- {name} log ---\n{tail}") from None
    return server


# ---------------------------------------------------------------------------------------------
# Recipes for the Debian packages


def start_node_exporter(workdir: Path, *extra_args: str) -> ServerProcess:
    """node_exporter on a free loopback port (systemd collector off: there is no systemd here)."""
    exe = require_binary("prometheus-node-exporter")
    port = free_port()
    argv = [exe, f"--web.listen-address={LOOPBACK}:{port}", "--no-collector.systemd", *extra_args]
    return start_process("node_exporter", argv, workdir=workdir, port=port,
                         ready_url=f"http://{LOOPBACK}:{port}/metrics", timeout=15)


def start_prometheus(workdir: Path, jobs: Mapping[str, Sequence[str]], *, scrape_interval: str = "1s",
                     wait_up: bool = True, timeout: float = 40.0) -> ServerProcess:
    """Prometheus scraping `jobs` (job name → host:port targets); with wait_up, every target has `up == 1`."""
    exe = require_binary("prometheus")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    scrape = "\n".join(
        f"  - job_name: {json.dumps(job)}\n    static_configs:\n      - targets: {json.dumps(list(targets))}"
        for job, targets in jobs.items())
    config = (f"global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\n"
              f"scrape_configs:\n{scrape}\n")
    (workdir / "prometheus.yml").write_text(config)
    url = f"http://{LOOPBACK}:{port}"
    argv = [exe, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
            "--storage.tsdb.retention.time=1d", f"--web.listen-address={LOOPBACK}:{port}",
            f"--web.external-url={url}", "--web.enable-lifecycle"]
    expected = sum(len(t) for t in jobs.values())

    def all_up() -> bool:
        return not wait_up or prometheus_up_count(url) >= expected

    return start_process("prometheus", argv, workdir=workdir, port=port, ready_url=f"{url}/-/ready",
                         ready=all_up, timeout=timeout)


def start_alertmanager(workdir: Path, config: str, port: int | None = None) -> ServerProcess:
    """Alertmanager with `config` (YAML) on a loopback port; gossip off (its default binds 0.0.0.0:9094)."""
    exe = require_binary("prometheus-alertmanager")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(config)
    url = f"http://{LOOPBACK}:{port}"
    argv = [exe, f"--config.file={workdir / 'alertmanager.yml'}", f"--storage.path={workdir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}", f"--web.external-url={url}", "--cluster.listen-address="]
    return start_process("alertmanager", argv, workdir=workdir, port=port, ready_url=f"{url}/-/ready")


def prometheus_query(url: str, promql: str) -> list[dict[str, Any]]:
    """The result vector of an instant query (empty when Prometheus does not answer or errs)."""
    got = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    if got is None or got[0] != 200:
        return []
    doc = json.loads(got[1])
    result = doc.get("data", {}).get("result", [])
    return result if isinstance(result, list) else []


def prometheus_up_count(url: str) -> int:
    """How many scrape targets Prometheus currently reports with `up == 1` (the real readiness signal)."""
    return len(prometheus_query(url, "up == 1"))


def start_nginx(workdir: Path, server_conf: str = "", http_conf: str = "", *, worker_processes: int = 1,
                worker_connections: int = 1024) -> ServerProcess:
    """nginx in the foreground with its own prefix dir: static root workdir/html, logs in workdir.

    `server_conf` is added inside the `server {}` block (locations), `http_conf` inside `http {}` (log
    formats, extra servers). The access log is workdir/access.log (combined) unless http_conf says otherwise.
    Workers run as the current user so pytest's private temp dirs stay readable.
    """
    exe = require_binary("nginx")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "html").mkdir(exist_ok=True)
    for sub in ("body", "proxy", "fcgi", "uwsgi", "scgi"):
        (workdir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    d = workdir
    user = f"user {_user_name()};" if os.geteuid() == 0 else ""
    conf = f"""
worker_processes {worker_processes};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
{user}
events {{ worker_connections {worker_connections}; }}
http {{
  include /etc/nginx/mime.types;
  client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;
  access_log {d}/access.log combined;
  {http_conf}
  server {{
    listen {LOOPBACK}:{port};
    root {d}/html;
    location = /nginx_status {{ stub_status; access_log off; allow 127.0.0.1; deny all; }}
    {server_conf}
  }}
}}
"""
    (d / "nginx.conf").write_text(conf)
    argv = [exe, "-e", str(d / "error.log"), "-c", str(d / "nginx.conf"), "-p", str(d), "-g", "daemon off;"]
    return start_process("nginx", argv, workdir=d, port=port, ready_url=f"http://{LOOPBACK}:{port}/nginx_status")


def _user_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


# ---------------------------------------------------------------------------------------------
# In-process loopback servers for failure paths


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers: every request to it times out."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)  # held open, never read from or written to

    def close(self) -> None:
        """Stop accepting and drop held connections."""
        self._stop.set()
        self._thread.join(2)
        for c in self._conns:
            c.close()
        self.sock.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Route = tuple[int, Mapping[str, str], bytes]


class CannedHttpServer:
    """A threaded stdlib HTTP server on 127.0.0.1 answering fixed (status, headers, body) per path.

    `routes` maps a path (without query) to a Route or to a callable taking the handler and returning one;
    unknown paths get 404. `requests` records (method, path-with-query, headers) of every request.
    """

    def __init__(self, routes: Mapping[str, Route | Callable[[BaseHTTPRequestHandler], Route]]) -> None:
        self.routes = dict(routes)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave in two writes: no 40 ms delayed-ACK wait

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, dict(self.headers.items())))
                route = outer.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                else:
                    status, headers, body = route(self) if callable(route) else route
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if not any(k.lower() == "content-length" for k in headers):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(2)

    def __enter__(self) -> CannedHttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port with nothing listening (connections to it are refused)."""
    yield free_port()


class ScriptedServer:
    """Answers each request with what `respond(conn_no, req_no, head)` returns.

    bytes: send them and wait for the next request; (bytes, True): send them, then hang up; None: hang up.
    """

    def __init__(self, respond) -> None:
        self.respond = respond
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            buf = b""
            req = 0
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                req += 1
                answer = self.respond(number, req, head)
                if answer is None:
                    return
                hang_up = isinstance(answer, tuple)
                conn.sendall(answer[0] if hang_up else answer)
                if hang_up:
                    return
        except OSError:
            return
        finally:
            conn.close()
            with self.lock:
                self.active -= 1

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# TLS: a throwaway PKI made with the openssl command, and nginx serving HTTPS with it


def _openssl(*args: str | Path, cwd: Path) -> None:
    exe = require_binary("openssl")
    subprocess.run([exe, *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=30)


def _leaf(d: Path, name: str, ca: str, *, san: str, days: int = 2, usage: str = "serverAuth") -> tuple[Path, Path]:
    """A P-256 key and a certificate for `san`, signed by the CA named `ca` in `d` (days < 0: expired)."""
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    (d / f"{name}.ext").write_text(f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
                                   f"keyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n"
                                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-set_serial",
             str(int.from_bytes(os.urandom(8), "big")), "-days", str(days), "-extfile", f"{name}.ext",
             "-out", f"{name}.pem", cwd=d)
    return d / f"{name}.pem", d / f"{name}.key"


def make_test_pki(d: Path) -> dict[str, Path]:
    """A throwaway CA and certificates for loopback TLS tests, as file paths by role.

    ca (the CA users would set as ca_file), server/server_key (127.0.0.1 and localhost), expired/expired_key,
    wrong_host/wrong_host_key (for wrong.example only), stranger/stranger_key (signed by another CA, not
    `ca`), client/client_key (a client certificate for mTLS, signed by `ca`).
    """
    d.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=surgewatch test {ca}",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-addext", "subjectKeyIdentifier=hash", cwd=d)
    out = {"ca": d / "ca.pem", "other_ca": d / "other-ca.pem"}
    loopback = "IP:127.0.0.1,DNS:localhost"
    for name, ca, san, days, usage in (("server", "ca", loopback, 2, "serverAuth"),
                                       ("expired", "ca", loopback, -1, "serverAuth"),
                                       ("wrong_host", "ca", "DNS:wrong.example", 2, "serverAuth"),
                                       ("stranger", "other-ca", loopback, 2, "serverAuth"),
                                       ("client", "ca", "DNS:surgewatch-client", 2, "clientAuth")):
        out[name], out[f"{name}_key"] = _leaf(d, name, ca, san=san, days=days, usage=usage)
    return out


def start_nginx_tls(workdir: Path, pki: Mapping[str, Path], *, backend: str | None = None) -> ServerProcess:
    """nginx with one HTTPS server per certificate role, each on its own loopback port.

    extra["https"] maps role → base URL: "good" (server cert), "expired", "wrong_host", "stranger" (unknown
    CA) and "mtls" (good cert, `ssl_verify_client on` against pki["ca"]). Each serves workdir/html; with
    `backend` (a loopback base URL), POSTs to /hook/… are proxied there (for sinks).
    """
    roles = {"good": "server", "expired": "expired", "wrong_host": "wrong_host", "stranger": "stranger",
             "mtls": "server"}
    ports = {role: free_port() for role in roles}
    proxy = (f"location /hook/ {{ proxy_pass {backend}; proxy_set_header Host $host; }}" if backend else "")
    blocks = []
    for role, cert in roles.items():
        mtls = (f"ssl_verify_client on; ssl_client_certificate {pki['ca']};" if role == "mtls" else "")
        blocks.append(f"""
  server {{
    listen {LOOPBACK}:{ports[role]} ssl;
    ssl_certificate {pki[cert]}; ssl_certificate_key {pki[cert + '_key']};
    {mtls}
    root {workdir}/html;
    {proxy}
  }}""")
    server = start_nginx(workdir, http_conf="\n".join(blocks))
    server.extra["https"] = {role: f"https://{LOOPBACK}:{port}" for role, port in ports.items()}
    wait_until(lambda: _tls_port_open(ports["good"]), 10, "nginx TLS port")
    return server


def _tls_port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False
