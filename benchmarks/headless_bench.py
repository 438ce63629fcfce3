"""CPU seconds per minute and peak RSS of `surgewatch --headless` next to glances, measured in the same run.

Usage: python benchmarks/headless_bench.py [--seconds 60] [--glances PATH]

Both run side by side for the same wall-clock window at a 1 s interval: surgewatch on its built-in default
(this host + the DEMO host and campaign) with `[monitor] interval = "1s"`, glances as
`glances --stdout cpu.total,mem.percent,load -t 1` with the offline config beside this file (its defaults send
traffic off loopback). CPU is user+system time of the process and its children from /proc; peak RSS is VmHWM.
Prints a table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime (+ waited-for children) of a live process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def default_config_at_1s(directory: Path) -> Path:
    sys.path.insert(0, str(HERE.parent / "src"))
    from surgewatch.defaults import DEFAULT_TOML

    text = DEFAULT_TOML.format(interval="1s", for_cpu="30s", for_mem="1m", for_anomaly="10s")
    text = text.replace("[monitor]\n", f'[monitor]\nstate_dir = "{directory / "state"}"\n', 1)
    path = directory / "default-1s.toml"
    path.write_text(text)
    return path


def measure(cmds: dict[str, list[str]], seconds: float, settle: float) -> dict[str, tuple[float, float, float]]:
    """Start all commands, wait `settle`, then measure CPU over `seconds`; returns name → (cpu/min, startup cpu, MB)."""
    procs = {n: subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n, c in cmds.items()}
    try:
        time.sleep(settle)
        start = {n: cpu_seconds(p.pid) for n, p in procs.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        out = {}
        for n, p in procs.items():
            if p.poll() is not None:
                out[n] = (float("nan"), float("nan"), float("nan"))
                continue
            used = cpu_seconds(p.pid) - start[n]
            out[n] = (used * 60.0 / elapsed, start[n], peak_rss_mb(p.pid))
        return out
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds of start-up excluded from the steady state")
    ap.add_argument("--glances", default=shutil.which("glances") or "/tmp/glances-venv/bin/glances")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = default_config_at_1s(Path(tmp))
        exe = shutil.which("surgewatch") or str(Path(sys.executable).with_name("surgewatch"))
        cmds = {"surgewatch --headless (default, 1 s)": [exe, "--headless", "--config", str(cfg)]}
        if Path(args.glances).exists():
            cmds["glances --stdout cpu.total,mem.percent,load -t 1"] = [
                args.glances, "-C", str(HERE / "glances-offline.conf"), "--disable-check-update",
                "--disable-plugin", "ip,ports,cloud,wifi", "--stdout", "cpu.total,mem.percent,load", "-t", "1"]
        else:
            print(f"(glances not found at {args.glances}: pip install glances to compare)")
        results = measure(cmds, args.seconds, args.settle)
    print(f"\nside by side, {args.seconds:.0f} s after {args.settle:.0f} s of start-up, 1 s interval\n")
    print(f"| {'process':52} | CPU s/min (steady) | start-up CPU s | peak RSS MB |")
    print(f"|{'-' * 54}|-------------------:|---------------:|------------:|")
    for name, (per_min, startup, mb) in results.items():
        print(f"| {name:52} | {per_min:18.2f} | {startup:14.2f} | {mb:11.1f} |")
    names = list(results)
    if len(names) == 2 and results[names[1]][0] > 0:
        print(f"\nsurgewatch / glances CPU ratio: {results[names[0]][0] / results[names[1]][0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
