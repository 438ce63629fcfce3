"""Alert delivery under faults, the long runs: alerts lost (goal 0) and duplicated (bounded) per fault.

Usage: python benchmarks/fault_bench.py [--outage 180] [--kills 20] [--fault-seconds 30] [--quick]

Cases (the short versions run in tests/integration/test_delivery_faults.py; both use tests/support/faultkit.py):
- webhook down for --outage seconds while 10 alerts/s keep coming, then back (default retry policy: 1 s
  doubling to a 60 s cap), one loopback receiver;
- kill -9 of a real `surgewatch --headless` --kills times, each at a random moment while it delivers to a
  loopback webhook (5 series flipping every 100 ms tick), then one clean start that drains the outbox;
- the outbox database write-locked by another process, and (as root) the outbox on a full tmpfs, for
  --fault-seconds each while 20 alerts/s go to a stdout sink and a webhook;
- (as root) the state dir mounted read-only between runs: a run that starts on it delivers from memory,
  and the rows an earlier run left wait until it is writable again.
Ground truth is the outbox (every committed notification) and the list of submitted keys; lost = keys
never received, duplicated = receipts beyond the first. Prints a table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent)]

from tests.support import faultkit  # noqa: E402

from surgewatch.alerting.dispatch import RetryPolicy  # noqa: E402


def row(fig: faultkit.Figures, seconds: float, note: str) -> str:
    return f"| {fig.case:<44} | {fig.alerts:>6} | {fig.lost:>4} | {fig.duplicated:>10} | {seconds:>5.0f} | {note} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outage", type=float, default=180.0, help="seconds the webhook is down")
    ap.add_argument("--kills", type=int, default=20, help="kill -9 cycles of the daemon")
    ap.add_argument("--fault-seconds", type=float, default=30.0, help="seconds of a locked or full outbox")
    ap.add_argument("--quick", action="store_true", help="short runs (20 s outage, 5 kills, 5 s faults)")
    args = ap.parse_args()
    if args.quick:
        args.outage, args.kills, args.fault_seconds = 20.0, 5, 5.0

    print("| fault | notifications | lost | duplicated | run s | notes |")
    print("|---|---:|---:|---:|---:|---|")

    def timed(fn):  # type: ignore[no-untyped-def]
        t0 = time.monotonic()
        fig = fn()
        return fig, time.monotonic() - t0

    with tempfile.TemporaryDirectory() as tmp:
        fig, s = timed(lambda: faultkit.run_sink_outage(Path(tmp), seconds=args.outage, rate=10.0,
                                                        retry=RetryPolicy(), settle=180.0))
        d = fig.details
        print(row(fig, s, f"{d['attempts_during_outage']} attempts while down, {d['warning_lines']} warning lines; "
                          f"all delivered {d['catch_up_seconds']:.0f} s after it came back"), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        fig, s = timed(lambda: faultkit.run_kill9(Path(tmp), kills=args.kills))
        print(row(fig, s, f"{fig.duplicated / max(1, args.kills):.1f} duplicates per kill (bound: the batch in "
                          f"flight, <= 50); {fig.details['pending_at_end']} pending at the end"), flush=True)

    def outbox_note(fig: faultkit.Figures) -> str:
        d = fig.details
        return (f"{d['failing_lines']} failing + {d['recovered_lines']} recovered log lines; longest tick gap "
                f"{d['max_tick_gap'] * 1000:.0f} ms (tick 50 ms); caught up {d['catch_up_seconds']:.1f} s after")

    with tempfile.TemporaryDirectory() as tmp:
        fig, s = timed(lambda: faultkit.run_delivery_fault(Path(tmp), faultkit.locked_fault(Path(tmp)),
                                                           seconds=args.fault_seconds))
        print(row(fig, s, outbox_note(fig)), flush=True)

    if not faultkit.can_mount():
        print("| outbox on a full file system | - | - | - | - | skipped: mounting a tmpfs needs root |")
        print("| state dir read-only at start | - | - | - | - | skipped: mounting a tmpfs needs root |")
        return 0
    with faultkit.tmpfs("4m") as mount:
        fig, s = timed(lambda: faultkit.run_delivery_fault(mount, faultkit.full_fs_fault(mount),
                                                           seconds=args.fault_seconds))
        print(row(fig, s, outbox_note(fig) + "; tmpfs of 4 MiB"), flush=True)
    with faultkit.tmpfs("32m") as mount:
        fig, s = timed(lambda: faultkit.run_read_only(mount, seconds=max(2.0, args.fault_seconds / 3)))
        print(row(fig, s, f"{fig.details['read_only_warnings']} warning line; 3 runs: sink down / read-only / "
                          "writable again"), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
