"""`surgewatch agent`: this host's psutil metrics in Prometheus text format, under node_exporter's names.

For hosts without node_exporter: the `prometheus` host source reads this page unchanged. Only the metrics our
host series need are exported, each with node_exporter's name, labels and unit, so dashboards and PromQL
written for node_exporter work too. Binds to loopback unless told otherwise; with --token-file, a request
without `Authorization: Bearer <token>` gets 401.
"""

from __future__ import annotations

import argparse
import hmac
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:9273"
MAX_CONNECTIONS = 32  # connections served at once (one thread each); more are closed at once, no thread
CONNECTION_TIMEOUT = 10.0  # seconds a connection may sit idle or half-sent before it is closed
# node_exporter's CPU modes (guest time is already inside user/nice, node_exporter exports it separately).
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
# node_exporter's default --collector.diskstats.device-exclude: partitions, RAM, loop and floppy devices.
_NODE_EXPORTER_SKIPS_DISK = re.compile(r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")


class AgentError(Exception):
    """A start-up problem (bad --listen, unreadable token file, port in use), phrased as one line."""


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) → (host, port); AgentError naming the text when malformed."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise AgentError(f"--listen must be HOST:PORT such as {DEFAULT_LISTEN}, got {text!r}")
    return host, int(port)


def read_token(path: str) -> str:
    """The bearer token in a file (surrounding whitespace ignored); AgentError if unreadable or empty."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AgentError(f"--token-file {path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise AgentError(f"--token-file {path}: is not UTF-8 text") from None
    if not token or any(c.isspace() for c in token):
        raise AgentError(f"--token-file {path}: must hold one token without spaces")
    return token


class PsutilCollector:
    """A prometheus_client collector reading psutil on every scrape (no background thread, no cache)."""

    def collect(self) -> Iterator[Any]:
        """Yield metric families named as node_exporter names them."""
        import psutil
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        cpu = CounterMetricFamily("node_cpu_seconds", "Seconds the CPUs spent in each mode.",
                                  labels=["cpu", "mode"])
        for i, times in enumerate(psutil.cpu_times(percpu=True)):
            for mode in CPU_MODES:
                if hasattr(times, mode):
                    cpu.add_metric([str(i), mode], float(getattr(times, mode)))
        yield cpu

        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
        for name, value, help_text in (
            ("node_memory_MemTotal_bytes", vm.total, "Memory information field MemTotal_bytes."),
            ("node_memory_MemAvailable_bytes", vm.available, "Memory information field MemAvailable_bytes."),
            ("node_memory_SwapTotal_bytes", sw.total, "Memory information field SwapTotal_bytes."),
            ("node_memory_SwapFree_bytes", sw.free, "Memory information field SwapFree_bytes."),
        ):
            yield GaugeMetricFamily(name, help_text, value=float(value))
        try:
            loads = os.getloadavg()
        except OSError:
            loads = None
        if loads is not None:
            for minutes, value in zip((1, 5, 15), loads, strict=True):
                yield GaugeMetricFamily(f"node_load{minutes}", f"{minutes}m load average.", value=value)

        disks = psutil.disk_io_counters(perdisk=True) or {}
        read = CounterMetricFamily("node_disk_read_bytes", "The total number of bytes read successfully.",
                                   labels=["device"])
        written = CounterMetricFamily("node_disk_written_bytes",
                                      "The total number of bytes written successfully.", labels=["device"])
        for device, d in sorted(disks.items()):
            if _NODE_EXPORTER_SKIPS_DISK.match(device):
                continue
            read.add_metric([device], float(d.read_bytes))
            written.add_metric([device], float(d.write_bytes))
        yield read
        yield written

        nics = psutil.net_io_counters(pernic=True)
        rx = CounterMetricFamily("node_network_receive_bytes", "Network device statistic receive_bytes.",
                                 labels=["device"])
        tx = CounterMetricFamily("node_network_transmit_bytes", "Network device statistic transmit_bytes.",
                                 labels=["device"])
        for device, n in sorted(nics.items()):
            if device == "lo":  # node_exporter leaves lo out by default
                continue
            rx.add_metric([device], float(n.bytes_recv))
            tx.add_metric([device], float(n.bytes_sent))
        yield rx
        yield tx

        yield GaugeMetricFamily("node_processes_pids", "Number of PIDs", value=float(len(psutil.pids())))
        yield GaugeMetricFamily("node_boot_time_seconds", "Node boot time, in unixtime.",
                                value=float(psutil.boot_time()))


def build_registry() -> Any:
    """A fresh registry holding only the psutil collector (no Python process metrics)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PsutilCollector())
    return registry


class AgentServer(ThreadingHTTPServer):
    """A threaded HTTP server answering /metrics with the psutil registry, behind an optional bearer token."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the listen backlog (stdlib's 5 makes a burst of clients wait seconds on SYN retries)

    def __init__(self, address: tuple[str, int], token: str | None = None, *,
                 max_connections: int = MAX_CONNECTIONS, timeout: float = CONNECTION_TIMEOUT) -> None:
        if ":" in address[0]:
            import socket

            self.address_family = socket.AF_INET6
        self.token = token
        self.registry = build_registry()
        self.lock = threading.Lock()  # psutil reads are cheap; one scrape at a time keeps CPU use bounded
        self.connection_timeout = timeout
        self.slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0  # connections closed because every slot was taken
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve on a thread only while a slot is free: 200 half-sent requests must not hold 201 threads."""
        if not self.slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, not a traceback; a client that hung up or timed out is not worth one."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        print(f"surgewatch agent: a request from {client_address[0]} failed: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    @property
    def url(self) -> str:
        """The /metrics URL this server answers on."""
        host, port = str(self.server_address[0]), self.server_address[1]
        host_text = f"[{host}]" if ":" in host else host
        return f"http://{host_text}:{port}/metrics"

    def authorized(self, header: str | None) -> bool:
        """Whether an Authorization header carries the configured bearer token (always, without a token)."""
        if self.token is None:
            return True
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token.encode())


class _Handler(BaseHTTPRequestHandler):
    server: AgentServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave in two writes: no 40 ms delayed-ACK wait

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.connection_timeout)  # an idle or half-sent request then ends

    def log_message(self, format: str, *args: Any) -> None:
        return None  # a scrape every few seconds would flood stderr

    def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if not self.server.authorized(self.headers.get("Authorization")):
            self._send(401, b"401 Unauthorized: send Authorization: Bearer <token>\n",
                       extra={"WWW-Authenticate": 'Bearer realm="surgewatch agent"'})
            return
        if path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            with self.server.lock:
                body = generate_latest(self.server.registry)
            self._send(200, body, CONTENT_TYPE_LATEST)
        elif path == "/":
            self._send(200, b"surgewatch agent: metrics at /metrics\n")
        else:
            self._send(404, b"404 Not Found: metrics are at /metrics\n")

    do_HEAD = do_GET


def serve(listen: str = DEFAULT_LISTEN, token: str | None = None) -> AgentServer:
    """A bound (not yet serving) agent server; AgentError if the address cannot be used."""
    host, port = parse_listen(listen)
    try:
        return AgentServer((host, port), token)
    except OSError as exc:
        raise AgentError(f"cannot listen on {listen}: {exc.strerror or exc}") from None


def exposure_warning(listen: str, token: str | None) -> str | None:
    """The one-line warning for serving off loopback without a token (anyone who reaches the port reads it)."""
    import ipaddress

    if token is not None:
        return None
    host = parse_listen(listen)[0]
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        loopback = False
    if loopback:
        return None
    return (f"surgewatch agent: warning: listening on {listen} without --token-file: anyone who can reach this "
            f"port can read this host's metrics")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                        help=f"address to serve /metrics on (default {DEFAULT_LISTEN}, loopback only)")
    parser.add_argument("--token-file", metavar="FILE",
                        help="require `Authorization: Bearer <token>` with the token in FILE")


def run(args: argparse.Namespace) -> int:
    try:
        token = read_token(args.token_file) if args.token_file else None
        server = serve(args.listen, token)
    except AgentError as exc:
        print(f"surgewatch agent: {exc}", file=sys.stderr)
        return 2

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    warning = exposure_warning(args.listen, token)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(f"surgewatch agent: serving {server.url}" + (" (bearer token required)" if token else ""),
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m surgewatch.agent`: the same as `surgewatch agent`, without loading the other subcommands."""
    parser = argparse.ArgumentParser(prog="surgewatch agent", description="Serve this host's metrics as "
                                     "Prometheus text under node_exporter's names.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
