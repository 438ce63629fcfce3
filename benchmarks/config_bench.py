"""Reading a config: `import surgewatch.config`, the first parse (which imports the kinds a config uses) and
each later parse, in fresh interpreters, as min–median–max over interleaved rounds; with --against, the same
for another checkout's src/ beside this one's (e.g. main before a change).

    .venv/bin/python benchmarks/config_bench.py [--rounds 11] [--against /path/to/other/checkout]

Configs: a small one (this host, a demo host, demo traffic) and config.example.toml (every kind). Absolute
numbers drift on shared machines; compare the rows of one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL = ('[[host]]\nname = "local"\nsource = "local"\n[[host]]\nname = "web"\nsource = "demo"\n'
         '[[traffic]]\nname = "site"\nsource = "demo"\n')
ENV = ("GA4_TOKEN", "MATOMO_TOKEN", "PLAUSIBLE_TOKEN", "SLACK_WEBHOOK_URL", "SURGEWATCH_EXPORT_TOKEN",
       "UMAMI_PASSWORD", "WEB1_TOKEN", "MAILCHIMP_API_KEY", "PLAN_TOKEN")
# The stdlib and surgewatch modules both trees share are imported first, so the rows show our modules' cost.
CODE = """
import sys, time, dataclasses, typing, re, tomllib, datetime, pathlib, hashlib, enum, os
import surgewatch.model, surgewatch.units, surgewatch.textsafe
text = open(sys.argv[1]).read() if sys.argv[1] != "-" else {small!r}
env = {{k: "https://127.0.0.1/x" for k in {env!r}}}
t0 = time.perf_counter()
from surgewatch.config import parse_config
t1 = time.perf_counter()
parse_config(text, "x", env)
t2 = time.perf_counter()
for _ in range(20):
    parse_config(text, "x", env)
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, (time.perf_counter() - t2) / 20 * 1e3)
"""


def spread(values: list[float], digits: int) -> str:
    v = sorted(values)
    return f"{v[0]:.{digits}f}–{statistics.median(v):.{digits}f}–{v[-1]:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--against", type=Path, help="another checkout whose src/ is measured beside this one")
    args = ap.parse_args()
    trees = [("this", ROOT)] + ([("against", args.against.resolve())] if args.against else [])
    code = CODE.format(small=SMALL, env=ENV)
    print(f"python {sys.version.split()[0]}; {args.rounds} interleaved rounds; ms, min–median–max\n")
    print("| config | tree | import surgewatch.config | first parse | each later parse |")
    print("|--------|------|--------------------------|-------------|------------------|")
    for label, arg in (("small (local, demo)", "-"), ("config.example.toml", str(ROOT / "config.example.toml"))):
        rows: dict[str, list[tuple[float, ...]]] = {name: [] for name, _ in trees}
        for _ in range(args.rounds):
            for name, tree in trees:
                out = subprocess.run([sys.executable, "-c", code, arg], env={"PYTHONPATH": str(tree / "src")},
                                     capture_output=True, text=True, check=True, timeout=120).stdout
                rows[name].append(tuple(float(x) for x in out.split()))
        for name, _ in trees:
            r = rows[name]
            print(f"| {label} | {name} | {spread([x[0] for x in r], 1)} | {spread([x[1] for x in r], 1)} | "
                  f"{spread([x[2] for x in r], 2)} |")


if __name__ == "__main__":
    main()
