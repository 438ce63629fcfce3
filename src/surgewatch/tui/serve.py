"""`surgewatch serve`: the dashboard in a browser through textual-serve, behind a token when off loopback.

textual-serve starts one dashboard process per browser connection (a Textual app owns its process: its driver
reads stdin and writes stdout, and there is no API to run several apps on one driver), so each viewer runs its
own engine; `benchmarks/serve_bench.py` measures what one costs. The token is checked by an aiohttp middleware
in front of every route, before any page, script or app process exists for the request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..export import is_loopback

if TYPE_CHECKING:
    from aiohttp import web

DEFAULT_LISTEN = "127.0.0.1:8765"
COOKIE = "surgewatch_token"


class ServeError(Exception):
    """A reason not to start, in one line."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to serve on (default {DEFAULT_LISTEN}; port 0 picks a free one); any address "
                   "other than loopback needs --token-file")
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding the access token; browsers open http://HOST:PORT/?token=TOKEN "
                   "(or send Authorization: Bearer TOKEN)")
    p.add_argument("--config", "-c", dest="serve_config", metavar="FILE",
                   help="config file each viewer's dashboard runs (default: built-in demo + this host)")
    from ..cli import WALL_DEFAULT, positive_float

    p.add_argument("--wall", type=positive_float, nargs="?", const=WALL_DEFAULT, default=None, metavar="SECONDS",
                   help="viewers get wall mode: the focus moves to the next active campaign every SECONDS")
    p.add_argument("--demo-speed", dest="serve_demo_speed", type=positive_float, default=None, metavar="N",
                   help="play the built-in demo N times faster")


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8765` for IPv6) into its parts."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ServeError(f"--listen {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
    host = host.removeprefix("[").removesuffix("]")
    try:
        number = int(port)
    except ValueError:
        raise ServeError(f"--listen {text!r}: the port must be a number") from None
    if not 0 <= number <= 65535:
        raise ServeError(f"--listen {text!r}: the port must be 0-65535")
    return host, number


def read_token(path: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ServeError(f"--token-file {path}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    if len(token) < 16:
        raise ServeError(f"--token-file {path}: the token must be at least 16 characters "
                         "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe())' > FILE`)")
    return token


def viewer_command(args: argparse.Namespace) -> str:
    """The dashboard command each browser connection runs."""
    argv = [sys.executable, "-m", "surgewatch", "--viewer"]
    config = config_path(args)
    if config:
        argv += ["--config", str(Path(config).resolve())]
    speed = args.serve_demo_speed or getattr(args, "demo_speed", None)
    if speed and speed != 1.0:
        argv += ["--demo-speed", str(speed)]
    if args.wall:
        argv += ["--wall", str(args.wall)]
    return "exec " + shlex.join(argv)  # textual-serve runs it through a shell: no shell left waiting per viewer


def config_path(args: argparse.Namespace) -> str | None:
    """`serve --config F`, or `--config F` given before the subcommand."""
    return args.serve_config or getattr(args, "config", None)


def token_given(request: web.Request) -> str | None:
    """The token a request carries: bearer header, `?token=`, or the cookie set when the page was opened."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.query.get("token") or request.cookies.get(COOKIE)


def token_ok(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def same_origin(request: web.Request) -> bool:
    """A WebSocket opened by our own page: any other site's page could otherwise drive the dashboard."""
    origin = request.headers.get("Origin")
    return origin is None or origin in (f"http://{request.host}", f"https://{request.host}")


Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


def make_guard(token: str | None) -> Any:
    """The middleware run before every route: same-origin WebSockets, and the token when there is one."""
    from aiohttp import web

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/ws" and not same_origin(request):
            return web.Response(status=403, text="surgewatch: WebSocket from another site refused\n")
        if token is not None:
            if not token_ok(token_given(request), token):
                return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"},
                                    text="surgewatch: this dashboard needs its token: open it as "
                                    "http://HOST:PORT/?token=TOKEN or send Authorization: Bearer TOKEN\n")
            if request.path == "/" and "token" in request.query:  # keep the token out of the address bar
                query = {k: v for k, v in request.query.items() if k != "token"}
                response = web.HTTPSeeOther(request.rel_url.with_query(query).path_qs)
                response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
                return response
        return await handler(request)

    return guard


def build_server(command: str, token: str | None) -> Any:
    """A textual-serve Server behind the guard, its page's WebSocket URL taken from each request's Host."""
    from textual_serve.server import Server

    class GuardedServer(Server):
        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(make_guard(token))
            return app

        async def handle_index(self, request: web.Request) -> web.StreamResponse:
            self.public_url = f"{request.scheme}://{request.host}"  # right behind any address it was reached at
            return await super().handle_index(request)

        async def on_startup(self, app: web.Application) -> None:
            return None  # we print our own line (textual-serve prints a banner)

    return GuardedServer(command, title="surgewatch")


async def serve(command: str, host: str, port: int, token: str | None,
                stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or `stop`); prints the address once listening."""
    from aiohttp import web

    server = build_server(command, token)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(await server._make_app(), shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        print(f"surgewatch: serving the dashboard on http://{shown}:{bound}/"
              + ("  (open it with ?token=TOKEN from the token file)" if token else ""), flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    try:
        host, port = parse_listen(args.listen)
        token = read_token(args.token_file) if args.token_file else None
        if token is None and not is_loopback(host):
            raise ServeError(f"refusing to serve the dashboard on {host} without a token: give --token-file FILE "
                             "(or listen on 127.0.0.1)")
        _check_config(config_path(args))
        import textual_serve  # noqa: F401  (a missing install is one line, not a traceback later)
    except ServeError as exc:
        print(f"surgewatch serve: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"surgewatch serve: {exc.name} is not installed (pip install textual-serve)", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(viewer_command(args), host, port, token))
    except OSError as exc:  # the address is taken or not ours
        print(f"surgewatch serve: cannot listen on {args.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def _check_config(path: str | None) -> None:
    """A bad config is reported now, not in every browser that connects."""
    if path is None:
        return
    from ..config import ConfigError
    from ..defaults import resolve_config

    try:
        resolve_config(path)
    except ConfigError as exc:
        raise ServeError(str(exc)) from None
