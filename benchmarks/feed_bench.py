"""What polling a campaign feed costs: CPU time per poll of an iCalendar feed (file) and a JSON feed (loopback).

Usage: python benchmarks/feed_bench.py [--events 200] [--runs 20]
Prints min–median–max milliseconds of CPU per poll, and per poll at the default 5-minute interval as a share of
one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.support.servers import CannedHttpServer  # noqa: E402

from surgewatch.config import parse_config  # noqa: E402
from surgewatch.feeds import build_feed  # noqa: E402

NOW = time.time()


def calendar(n: int) -> str:
    out = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN"]
    for i in range(n):
        start = time.gmtime(NOW + (i - n // 4) * 3600)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", start)
        out += ["BEGIN:VEVENT", f"UID:ev-{i}", "DTSTAMP:20261201T000000Z", f"SUMMARY:Campaign {i}",
                f"DTSTART:{stamp}", "DURATION:PT4H", f"X-SURGEWATCH-HOSTS:web-{i % 8}", "CATEGORIES:campaign"]
        if i % 10 == 0:
            out.append("RRULE:FREQ=WEEKLY;COUNT=10")
        out.append("END:VEVENT")
    out.append("END:VCALENDAR")
    return "\r\n".join(out) + "\r\n"


async def cost(feed_toml: str, runs: int) -> list[float]:
    cfg = parse_config('[[traffic]]\nname = "site"\nsource = "json"\nurl = "http://127.0.0.1:9"\nvalue = "v"\n'
                       + feed_toml, "bench.toml", {})
    feed = build_feed(cfg.campaign_feeds[0], cfg)
    out = []
    for _ in range(runs):
        t0 = time.process_time()
        reading = await feed.poll()
        out.append((time.process_time() - t0) * 1000)
    assert reading.details["campaigns"]
    await feed.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ics = Path(tmp) / "cal.ics"
        ics.write_text(calendar(a.events))
        items = [{"name": f"c{i}", "start": NOW + i * 3600, "hosts": ["web-1"]} for i in range(a.events)]
        body = json.dumps({"items": items}).encode()
        with CannedHttpServer({"/plan": (200, {"Content-Type": "application/json"}, body)}) as srv:
            rows = [("ical file", asyncio.run(cost(f'[[campaign_feed]]\nname = "c"\nsource = "ical"\n'
                                                   f'path = "{ics}"\n', a.runs))),
                    ("json (loopback)", asyncio.run(cost(f'[[campaign_feed]]\nname = "j"\nsource = "json"\n'
                                                         f'url = "{srv.url}/plan"\nitems = "items"\n', a.runs)))]
    print(f"{a.events} events per feed, {a.runs} polls each (CPU ms per poll)")
    print(f"{'feed':<18} {'min':>8} {'median':>8} {'max':>8} {'% core at 5m':>14}")
    for name, xs in rows:
        med = statistics.median(xs)
        print(f"{name:<18} {min(xs):8.1f} {med:8.1f} {max(xs):8.1f} {med / 300_000 * 100:13.4f}%")


if __name__ == "__main__":
    main()
