"""HTTP polling cost: polls per second and CPU µs per poll against a real loopback nginx, printed as tables.

Compares, in one run and against the same nginx, stock httpx (httpcore's pool), httpx over the httpx-aiohttp
transport as shipped (`AsyncClient.get`), our HttpPoller (httpx's API over `surgewatch.httpclient`, the default
for every source), aiohttp used directly and wrk, for 10, 100 and 1,000 endpoints (distinct URLs of a small
JSON file), as min–median–max over interleaved rounds. Then shows where the CPU goes (cProfile self time by
package, in µs per poll, HttpPoller beside aiohttp), and finds the largest number of endpoints one process
polls every second with p99 lateness under 100 ms. Needs nginx (Debian package) and wrk for the C row.

    .venv/bin/python benchmarks/poll_bench.py [--seconds 1.5] [--rounds 3] [--sizes 10,100,1000] [--no-sustain]

Absolute numbers drift on shared machines; compare the columns of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import httpx  # noqa: E402
from tests.support.servers import start_nginx  # noqa: E402

from surgewatch.httpclient import new_client  # noqa: E402
from surgewatch.sources.http import HttpPoller  # noqa: E402

CONNS = 10  # connection limit per server for every pooled variant (wrk uses the same)


def raise_fd_limit() -> None:
    """Allow a thousand sockets per process (for the one-client-per-endpoint variant and nginx)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))


# ---------------------------------------------------------------------------------------------
# Throughput: every endpoint polled back-to-back for a fixed time


Fetch = Callable[[int], Awaitable[object]]


async def hammer(n: int, fetch: Fetch, seconds: float) -> tuple[float, float]:
    """(polls per second, CPU µs per poll): one task per endpoint, each polling as fast as it can."""
    # Warm-up: every endpoint polled once, so connections are open and per-endpoint state (a poller's built
    # request) exists, as in steady polling. Without it, the first wave of 1,000 concurrent first polls lands
    # inside the measured second and the figure is start-up cost, not the cost of a poll.
    await asyncio.gather(*(fetch(i) for i in range(n)))
    count = 0

    async def worker(i: int) -> None:
        nonlocal count
        while True:
            await fetch(i)
            count += 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    tasks = [asyncio.create_task(worker(i)) for i in range(n)]
    await asyncio.sleep(seconds)
    cpu, wall, done = time.process_time() - cpu0, time.perf_counter() - wall0, count
    for t in tasks:  # polls still in flight are abandoned, not counted
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return done / wall, cpu / max(done, 1) * 1e6


async def run_httpx_stock(urls: list[str], seconds: float, conns: int) -> tuple[float, float]:
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=conns), trust_env=False, timeout=120)

    async def fetch(i: int) -> object:
        return (await client.get(urls[i])).json()

    try:
        return await hammer(len(urls), fetch, seconds)
    finally:
        await client.aclose()


async def run_httpx_aiohttp(urls: list[str], seconds: float) -> tuple[float, float]:
    """httpx over httpx-aiohttp's transport as shipped: AsyncClient.get, cookies, a Request built per call."""
    from httpx_aiohttp import AiohttpTransport

    transport = AiohttpTransport(limits=httpx.Limits(max_connections=CONNS), trust_env=False)
    client = httpx.AsyncClient(transport=transport, trust_env=False, timeout=120)

    async def fetch(i: int) -> object:
        return (await client.get(urls[i])).json()

    try:
        return await hammer(len(urls), fetch, seconds)
    finally:
        await client.aclose()


async def run_poller(urls: list[str], seconds: float) -> tuple[float, float]:
    client = new_client(CONNS)
    pollers = [HttpPoller(label=f"bench:{i}", timeout=120.0, client=client) for i in range(len(urls))]

    async def fetch(i: int) -> object:
        return await pollers[i].get_json(urls[i])

    try:
        return await hammer(len(urls), fetch, seconds)
    finally:
        await client.aclose()


async def run_aiohttp(urls: list[str], seconds: float) -> tuple[float, float]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=CONNS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def fetch(i: int) -> object:
            async with session.get(urls[i]) as resp:
                return await resp.json()

        return await hammer(len(urls), fetch, seconds)


def run_wrk(base: str, n: int, seconds: float, work: Path) -> tuple[float, float] | None:
    """wrk rotating over the same n URLs with CONNS connections; CPU from the child's rusage."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    script = work / f"rotate{n}.lua"
    script.write_text(f'i = 0\nrequest = function()\n  i = (i + 1) % {n}\n'
                      f'  return wrk.format("GET", "/e" .. i .. ".json")\nend\n')
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([exe, "-t1", f"-c{min(CONNS, n)}", f"-d{max(1, round(seconds))}s", "-s", str(script),
                          base], capture_output=True, text=True, timeout=seconds + 30).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"(\d+) requests in ([\d.]+)s", out)
    if not m:
        return None
    count, wall = int(m[1]), float(m[2])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return count / wall, cpu / count * 1e6


def run_variant(name: str, urls: list[str], sec: float, base: str, n: int,
                work: Path) -> tuple[float, float] | None:
    """One measurement of the named variant (None when its tool is missing)."""
    if name.startswith("wrk"):
        return run_wrk(base, n, sec, work)
    if name.startswith("aiohttp"):
        return asyncio.run(run_aiohttp(urls, sec))
    if name.startswith("httpx stock"):
        return asyncio.run(run_httpx_stock(urls, sec, CONNS))
    if name.startswith("httpx over httpx-aiohttp"):
        return asyncio.run(run_httpx_aiohttp(urls, sec))
    return asyncio.run(run_poller(urls, sec))


# ---------------------------------------------------------------------------------------------
# Where the CPU goes


def package_of(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/surgewatch/" in filename:
        return "surgewatch"
    if "asyncio/" in filename or "selectors" in filename:
        return "asyncio (stdlib)"
    if filename.startswith("~") or filename == "<built-in>":
        return "C builtins (socket send/recv, epoll, …)"
    return "other stdlib"


Factory = Callable[[], tuple[Fetch, Callable[[], Awaitable[None]]]]


async def profile_client(urls: list[str], fetch_factory: Factory, requests: int = 1500) -> dict[str, float]:
    """Profiled self time per package, in µs per poll, for sequential polls through one client."""
    fetch, close = fetch_factory()
    for i in range(100):
        await fetch(i % len(urls))
    prof = cProfile.Profile(time.process_time)  # CPU time: waiting for nginx in epoll is not cost
    prof.enable()
    for i in range(requests):
        await fetch(i % len(urls))
    prof.disable()
    await close()
    shares: dict[str, float] = {}
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        key = package_of(filename)
        shares[key] = shares.get(key, 0.0) + tottime
    return {k: v / requests * 1e6 for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def aiohttp_factory(urls: list[str]) -> Factory:
    def make() -> tuple[Fetch, Callable[[], Awaitable[None]]]:
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))

        async def fetch(i: int) -> object:
            async with session.get(urls[i]) as resp:
                return await resp.json()

        return fetch, session.close
    return make


def ours_factory(urls: list[str]) -> Factory:
    def make() -> tuple[Fetch, Callable[[], Awaitable[None]]]:
        poller = HttpPoller(label="bench", timeout=5.0)

        async def fetch(i: int) -> object:
            return await poller.get_json(urls[i])

        return fetch, poller.aclose
    return make


# ---------------------------------------------------------------------------------------------
# Sustained polling at a 1 s interval


async def sustain(urls: list[str], seconds: float, conns: int, interval: float = 1.0,
                  reference: bool = False) -> dict[str, float]:
    """Poll every URL once per interval (starts spread over it); lateness of each poll's start.

    The first round opens the connections and builds every request; it is run but not counted. With
    `reference`, aiohttp is used directly (same connection limit and timeout) for the side-by-side row.
    """
    import aiohttp

    client = new_client(conns)
    pollers = [HttpPoller(label=f"s{i}", timeout=interval, client=client) for i in range(len(urls))]
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=conns),
                                    timeout=aiohttp.ClientTimeout(total=interval))

    async def fetch(i: int) -> object:
        if not reference:
            return await pollers[i].get_json(urls[i])
        async with session.get(urls[i]) as resp:
            resp.raise_for_status()
            return await resp.json()
    lateness: list[float] = []
    failures = 0
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.5
    counted = t0 + interval
    end = counted + seconds

    async def one(i: int) -> None:
        nonlocal failures
        due = t0 + interval * i / len(urls)
        while due < end:
            await asyncio.sleep(max(0.0, due - loop.time()))
            if due >= counted:
                lateness.append(loop.time() - due)
            try:
                await fetch(i)
            except Exception:
                failures += due >= counted
            due += interval
            while due < loop.time() - interval:  # a poll overran a whole interval: count the skipped ones
                lateness.append(loop.time() - due)
                due += interval

    cpu0 = time.process_time()
    await asyncio.gather(*(one(i) for i in range(len(urls))))
    cpu = time.process_time() - cpu0
    await client.aclose()
    await session.close()
    lateness.sort()
    p99 = lateness[min(len(lateness) - 1, int(0.99 * len(lateness)))] if lateness else float("inf")
    return {"polls": len(lateness), "p50_ms": 1000 * statistics.median(lateness), "p99_ms": 1000 * p99,
            "max_ms": 1000 * lateness[-1], "failures": failures, "cpu_pct": 100 * cpu / (seconds + interval + 0.5)}


def print_profile(base: str) -> None:
    """Print the cProfile self time per package of stock httpx and of our poller, side by side."""
    urls = [f"{base}/e{i}.json" for i in range(100)]
    print("\nWhere the CPU goes, sequential polls (cProfile self CPU time by package, µs per poll; "
          "profiling inflates every figure):")
    prow = []
    ref = asyncio.run(profile_client(urls, aiohttp_factory(urls)))
    ours = asyncio.run(profile_client(urls, ours_factory(urls)))
    for pkg in sorted(set(ref) | set(ours), key=lambda k: -(ref.get(k, 0) + ours.get(k, 0))):
        prow.append([pkg, "", f"{ref.get(pkg, 0):,.0f}", f"{ours.get(pkg, 0):,.0f}"])
    prow.append(["total", "", f"{sum(ref.values()):,.0f}", f"{sum(ours.values()):,.0f}"])
    print(table(prow, ["package", "", "aiohttp directly", "HttpPoller (httpx over aiohttp)"]))


# ---------------------------------------------------------------------------------------------


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.5, help="measuring time per variant (default 1.5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are shown (default 3)")
    ap.add_argument("--sizes", default="10,100,1000", help="endpoint counts (default 10,100,1000)")
    ap.add_argument("--sustain-seconds", type=float, default=6.0, help="length of each sustain trial")
    ap.add_argument("--no-sustain", action="store_true", help="skip the sustained 1 s interval search")
    ap.add_argument("--sustain-only", action="store_true", help="only the sustained 1 s interval search")
    ap.add_argument("--sustain-conns", type=int, default=50,
                    help="connections to nginx in the sustain search (default 50: stands in for many hosts)")
    args = ap.parse_args()
    sizes = [] if args.sustain_only else [int(s) for s in args.sizes.split(",")]
    raise_fd_limit()

    with tempfile.TemporaryDirectory(prefix="poll-bench-") as tmp:
        work = Path(tmp)
        with start_nginx(work / "nginx", server_conf="access_log off; keepalive_requests 1000000;",
                         worker_connections=4096) as nginx:
            for i in range(max([*sizes, 4000])):
                (nginx.workdir / "html" / f"e{i}.json").write_text(json.dumps({"visitors": i, "ok": True}))
            base = nginx.url
            print(f"nginx {base} (pid {nginx.pid}); python {sys.version.split()[0]}; "
                  f"httpx {httpx.__version__}; connection limit {CONNS} per server; "
                  f"{args.seconds:g} s per variant, median of {args.rounds} interleaved rounds; "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (others' work skews all rows)\n")

            rows: list[list[str]] = []
            for n in sizes:
                urls = [f"{base}/e{i}.json" for i in range(n)]
                sec = args.seconds
                names = [f"httpx stock (httpcore, {CONNS} conns)", "httpx over httpx-aiohttp, as shipped",
                         "HttpPoller: httpx API over aiohttp (default)", "aiohttp (reference)",
                         "wrk (C reference)"]
                samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
                for _round in range(args.rounds):  # interleaved rounds: load drifting on a shared machine
                    for name in names:             # affects every variant alike; medians are reported
                        got = run_variant(name, urls, sec, base, n, work)
                        if got is not None:
                            samples[name].append(got)
                ref = samples.get("aiohttp (reference)") or []
                for name, got in samples.items():
                    if not got:
                        rows.append([str(n), name, "n/a", "n/a", ""])
                        continue
                    rate = statistics.median(s[0] for s in got)
                    cpu = sorted(s[1] for s in got)
                    # Ratio per round (the rounds are interleaved, so round k of both saw the same load).
                    ratios = sorted(a[1] / b[1] for a, b in zip(got, ref, strict=False)) if ref else []
                    spread = (f"{ratios[0]:.2f}–{statistics.median(ratios):.2f}–{ratios[-1]:.2f}x"
                              if ratios else "")
                    rows.append([str(n), name, f"{rate:,.0f}",
                                 f"{cpu[0]:,.0f}–{statistics.median(cpu):,.0f}–{cpu[-1]:,.0f}", spread])
            if rows:
                print(table(rows, ["endpoints", "client", "polls/s (median)", "CPU µs/poll min–median–max",
                                   "CPU vs aiohttp min–median–max"]))

            if not args.sustain_only:
                print_profile(base)

            if not args.no_sustain:
                print(f"\nSustained polling at a 1 s interval ({args.sustain_seconds:g} s per trial, "
                      f"{args.sustain_conns} connections, one process, HttpPoller and aiohttp directly at each "
                      "count; the first round, which opens connections, is not counted):")
                srows = []
                best = {"HttpPoller": 0, "aiohttp": 0}
                for n in (500, 1000, 1500, 2000, 2500, 3000, 4000):
                    urls = [f"{base}/e{i}.json" for i in range(n)]
                    for who in list(best):
                        if best[who] < n - 500 and n > 500:
                            continue  # this client already fell behind at a smaller count
                        r = asyncio.run(sustain(urls, args.sustain_seconds, args.sustain_conns,
                                                reference=who == "aiohttp"))
                        ok = r["p99_ms"] < 100 and r["failures"] == 0
                        srows.append([str(n), who, "yes" if ok else "no", f"{r['p50_ms']:.1f}",
                                      f"{r['p99_ms']:.1f}", f"{r['max_ms']:.0f}", f"{r['failures']:.0f}",
                                      f"{r['cpu_pct']:.0f}%"])
                        if ok:
                            best[who] = n
                    if all(b < n for b in best.values()):
                        break
                print(table(srows, ["endpoints", "client", "on time", "p50 late ms", "p99 late ms", "max late ms",
                                    "failures", "CPU"]))
                print(f"\nLargest endpoint count with every poll on time (p99 lateness < 100 ms): HttpPoller "
                      f"{best['HttpPoller']:,}, aiohttp directly {best['aiohttp']:,} "
                      f"(load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
