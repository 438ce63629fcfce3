"""What each browser viewing `surgewatch serve` costs the server: CPU and memory of the server's process tree
with 0, 1, 2 and 4 tabs open in one headless Chromium, and the time until a tab shows the first full screen.

    .venv/bin/python benchmarks/serve_bench.py [--seconds 30] [--viewers 0,1,2,4] [--config FILE]

textual-serve runs one dashboard process (with its own engine) per connection, so the cost grows with viewers.
Memory is PSS (shared pages split between the processes that share them). Chromium's own CPU is shown
apart: it is the wall screen's cost, not the server's. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
CLK_TCK = os.sysconf("SC_CLK_TCK")

from tests.support.cdp import Browser  # noqa: E402  (the tests' CDP client)


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(f[11]) + int(f[12])) / CLK_TCK
    return total


def pss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            text = Path(f"/proc/{p}/smaps_rollup").read_text()
        except OSError:
            continue
        m = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        total += int(m.group(1)) if m else 0
    return total / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(url: str, server_pid: int, viewers: int, seconds: float) -> dict[str, float]:
    """Open `viewers` tabs, wait for each to show the dashboard, then measure for `seconds`."""
    async with Browser(1400, 1000) as browser:
        firsts = []
        for _ in range(viewers):
            page = await browser.page()
            t0 = time.monotonic()
            await page.goto(url)
            await page.text_after(0, r"demo-launch.*DEMO", timeout=60)
            firsts.append(time.monotonic() - t0)
        await asyncio.sleep(5.0)  # past start-up
        pids = tree(server_pid)
        assert browser.proc is not None
        bpids = tree(browser.proc.pid)
        c0, b0 = cpu_seconds(pids), cpu_seconds(bpids)
        await asyncio.sleep(seconds)
        pids = tree(server_pid)
        c1, b1 = cpu_seconds(pids), cpu_seconds(tree(browser.proc.pid))
        return {"cpu": (c1 - c0) * 60 / seconds, "pss": pss_mib(pids), "procs": len(pids),
                "browser_cpu": (b1 - b0) * 60 / seconds,
                "first": statistics.median(firsts) if firsts else float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="measuring time per row (default 30)")
    ap.add_argument("--viewers", default="0,1,2,4", help="tab counts to measure (default 0,1,2,4)")
    ap.add_argument("--config", help="config the viewers' dashboards run (default: the built-in demo)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sw-serve-bench-"))
    token = secrets.token_urlsafe()
    (work / "token").write_text(token)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_STATE_HOME=str(work / "state"))
    argv = [sys.executable, "-m", "surgewatch", "serve", "--listen", f"127.0.0.1:{port}",
            "--token-file", str(work / "token")]
    if args.config:
        argv += ["--config", args.config]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                              start_new_session=True)
    assert server.stdout is not None
    server.stdout.readline()  # "serving the dashboard on …"
    url = f"http://127.0.0.1:{port}/?token={token}"
    rows = []
    try:
        for n in (int(x) for x in args.viewers.split(",")):
            rows.append((n, asyncio.run(measure(url, server.pid, n, args.seconds))))
            time.sleep(3.0)  # closed tabs' dashboards exit
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    base = next((r for n, r in rows if n == 0), None)
    print(f"{'tabs':>4}  {'server CPU-s/min':>16}  {'per tab':>8}  {'server PSS MiB':>14}  {'per tab':>8}  "
          f"{'procs':>5}  {'first screen':>12}  {'chromium CPU-s/min':>18}")
    for n, r in rows:
        per_cpu = (r["cpu"] - base["cpu"]) / n if base and n else float("nan")
        per_mem = (r["pss"] - base["pss"]) / n if base and n else float("nan")
        print(f"{n:>4}  {r['cpu']:>16.2f}  {per_cpu:>8.2f}  {r['pss']:>14.1f}  {per_mem:>8.1f}  {r['procs']:>5}  "
              f"{r['first']:>10.2f} s  {r['browser_cpu']:>18.2f}")
    print(f"{args.seconds:g} s per row after 5 s; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
