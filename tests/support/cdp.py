"""Headless Chromium (the Debian package) driven through the Chrome DevTools Protocol over aiohttp's WebSocket
client: open a page, type keys into it, read what it shows and what its WebSockets received. Loopback only."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--no-default-browser-check", "--mute-audio",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def terminal_text(raw: bytes) -> str:
    """Text a program wrote to a terminal, escape sequences removed."""
    return _ESCAPES.sub("", raw.decode("utf-8", "replace"))


class Browser:
    """One headless Chromium with a fresh profile; `async with Browser(w, h) as b: page = await b.page()`."""

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        self.size = (width, height)
        self.proc: asyncio.subprocess.Process | None = None
        self.profile = tempfile.mkdtemp(prefix="sw-chromium-")
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Browser:
        exe = find_chromium()
        assert exe is not None
        self.proc = await asyncio.create_subprocess_exec(
            exe, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={self.size[0]},{self.size[1]}",
            "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert self.proc.stderr is not None
        url = None
        async with asyncio.timeout(30):
            while url is None:
                line = (await self.proc.stderr.readline()).decode("utf-8", "replace")
                if not line:
                    raise RuntimeError("chromium exited before its DevTools endpoint was up")
                if m := re.search(r"DevTools listening on (ws://\S+)", line):
                    url = m.group(1)
        self._drain = asyncio.create_task(self._drain_stderr())
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(url, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._drain.cancel()
        shutil.rmtree(self.profile, ignore_errors=True)

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        with contextlib.suppress(asyncio.CancelledError):
            while await self.proc.stderr.read(65536):
                pass

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            data = msg.json()
            if "id" in data and data["id"] in self._waiting:
                self._waiting.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)
                self._changed.set()

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None
                   ) -> dict[str, Any]:
        assert self._ws is not None
        msg_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = fut
        body: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            body["sessionId"] = session
        await self._ws.send_json(body)
        async with asyncio.timeout(30):
            reply = await fut
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def page(self) -> Page:
        target = (await self.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Network", "Runtime"):
            await page.send(f"{domain}.enable")
        return page

    async def wait_event(self, timeout: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._changed.wait()


class Page:
    """A tab: navigate, press keys, read its text and the bytes its WebSockets received."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, self.session)

    def _mine(self, method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.browser.events if e.get("sessionId") == self.session
                and e["method"] == method]

    async def goto(self, url: str) -> None:
        before = len(self._mine("Page.loadEventFired"))
        await self.send("Page.navigate", {"url": url})
        await self.until(lambda: len(self._mine("Page.loadEventFired")) > before, 30, f"{url} loaded")

    def ws_received(self) -> bytes:
        """Everything the page's WebSockets received so far (binary frames decoded)."""
        out = bytearray()
        for p in self._mine("Network.webSocketFrameReceived"):
            r = p["response"]
            out += base64.b64decode(r["payloadData"]) if r.get("opcode") == 2 else r["payloadData"].encode()
        return bytes(out)

    def ws_opened(self) -> list[str]:
        return [p["url"] for p in self._mine("Network.webSocketCreated")]

    async def until(self, check: Any, timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check():
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"waited {timeout:g} s for {what}")
            await self.browser.wait_event(min(left, 0.5))

    async def text_after(self, mark: int, pattern: str, timeout: float = 30.0) -> str:
        """Wait until the terminal bytes received after byte `mark` show `pattern`; returns that text."""
        await self.until(lambda: re.search(pattern, terminal_text(self.ws_received()[mark:])), timeout,
                         f"{pattern!r} on the page")
        return terminal_text(self.ws_received()[mark:])

    async def evaluate(self, expression: str) -> Any:
        reply = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return reply.get("result", {}).get("value")

    async def press(self, key: str) -> None:
        """A real key press (keydown, char, keyup) on the focused element; `key` is one printable character."""
        await self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": key, "text": key,
                                                   "unmodifiedText": key, "windowsVirtualKeyCode": ord(key.upper())})
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key,
                                                   "windowsVirtualKeyCode": ord(key.upper())})

    async def screenshot(self, path: Path) -> None:
        data = (await self.send("Page.captureScreenshot", {"format": "png"}))["data"]
        path.write_bytes(base64.b64decode(data))
