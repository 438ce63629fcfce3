"""Fuzz benchmark: thousands of hostile inputs per target, counting inputs tried and tracebacks seen. Prints a table.

    .venv/bin/python benchmarks/fuzz_bench.py [--examples N] [--only NAME] [--seed S]

The targets are tests/support/fuzz_targets.py's (the fast test run uses the same ones with a few dozen examples): the
config loader, Prometheus text and PromQL JSON and the analytics vendors' JSON shapes polled through the
collector from a loopback server, access-log lines, CSV for `analyze`, and recordings for `replay` and
`report`. A "traceback" is any failure other than the project's one-line errors (see fuzz_targets.Crash); the
goal is 0. Slow targets (analytics, recordings) get a fifth of N by default.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from tests.support.fuzz_targets import TARGETS, Crash, close_http_fuzz, quiet_logs  # noqa: E402

SLOW = {"analytics JSON", "recordings (replay, report)", "PromQL JSON", "Prometheus text", "CSV for analyze"}


def _fuzz(target: Any, n: int, seed_value: int, counts: dict[str, int], crashes: list[str]) -> None:
    """Run `n` generated inputs through `target`, counting them and every crash (the run goes on after one)."""

    @seed(seed_value)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def body(example: Any) -> None:
        counts["tried"] += 1
        try:
            target.run(example)
        except Crash as exc:
            crashes.append(str(exc)[:160])
        except Exception as exc:  # anything escaping run() is a crash too
            crashes.append(f"{type(exc).__name__}: {exc}"[:160])
            traceback.print_exc()

    body()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=2000, help="inputs per fast target (default 2000)")
    ap.add_argument("--only", help="run only targets whose name contains this")
    ap.add_argument("--seed", type=int, default=12, help="hypothesis seed (default 12)")
    args = ap.parse_args()
    rows = []
    with quiet_logs():
        for target in TARGETS:
            if args.only and args.only.lower() not in target.name.lower():
                continue
            n = args.examples // 5 if target.name in SLOW else args.examples

            counts = {"tried": 0}
            crashes: list[str] = []
            started = time.perf_counter()
            _fuzz(target, n, args.seed, counts, crashes)
            rows.append((target.name, counts["tried"], len(crashes), time.perf_counter() - started,
                         crashes[0] if crashes else ""))
    close_http_fuzz()
    print(f"{'target':30s} {'inputs':>7s} {'tracebacks':>10s} {'seconds':>8s}  first failure")
    for name, tried, bad, secs, first in rows:
        print(f"{name:30s} {tried:7d} {bad:10d} {secs:8.1f}  {first}")
    print(f"{'total':30s} {sum(r[1] for r in rows):7d} {sum(r[2] for r in rows):10d} "
          f"{sum(r[3] for r in rows):8.1f}")
    return 1 if any(r[2] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
