"""Where an analysis tick goes at fleet scale (or at the small end), part by part, beside another checkout.

In this process, no servers: the fleet of `fleet_exporter.py` (its model: 10 host groups, one campaign per
group, a day cycle, per-host noise, a few hosts with an incident of their own) is stepped tick by tick into the
series a `promql` host source and `promql` traffic sources give the engine (10 metrics per host, each group's
site traffic and campaign visitors: 10,020 series at 1,000 hosts). The analyzer is built as the engine builds it
(the default detector, campaign × host-group models, the campaigns landing on their groups' hosts) and steps a
sliding window of `fit_ticks` like the engine's store gives it. After `--warm` ticks the campaigns launch, one a
minute, and `--ticks` ticks are measured (with `--calm` they launch only after them).

With `--demo` it is the small end instead: the built-in default's series at a 1 s tick (the DEMO host and campaign
from sources/demo.py, and ten series of this host that no campaign lands on), with the demo's half hour of
backfilled history warmed in first, measured from `--demo-from` seconds of scenario time (-175: the minute the
daemon's CPU is measured in by headless_bench.py, before the launch; 0: the launch).

With `--against DIR` (another checkout, e.g. /work/main) that checkout's analysis steps the same ticks in the same
process, alternately (each package is copied to a temporary directory under its own name), and every tick's
scores, causes and explanations (every 10th tick the campaign states with their pairs too) are compared: the
ticks where they differ are counted, and the ticks where a cause (the conclusion) differs are shown. Each tick's
results are compared after the next tick has stepped, every explanation read then: sentences are written when
first read, and must be those their tick would have written. With `--refit-budget ROWS` this side refits at most
ROWS host rows a tick (`Analyzer(refit_budget=...)`, off in the engine): the comparison shows what that changes.

Prints, per side, CPU ms per tick (this thread's CPU time: min, median, 95th percentile, max and mean) of the whole
step, the detector, campaign analysis (the step less the detector) and its parts (refit, per-tick model arrays,
episodes, campaign states, group models; "explain, rest" is what no part covers, the hot rows' verdicts mostly), the
parts of a refit (lag search, fit, masking, traffic statistics: within refit's time) and the host rows refitted. With
`--profile N` the measured ticks of this side also run under cProfile and its top N functions are printed.

The garbage collector runs as in the daemon: with `--gc idle` (the default) this checkout's `lean.TickCollector`
turns the automatic collector off during every step (each side's) and collects after it, outside the timed step,
as the engine does in the idle time after a tick;
with `--gc auto` only the automatic collector runs (as before it, and as the dashboard still does). Shown per side:
the collector's CPU inside the steps (and its full passes there), and the ticks whose campaign analysis took over
`--over` ms; and the CPU of the collections after the ticks.

    PYTHONPATH=src .venv/bin/python benchmarks/analysis_scale_bench.py [--hosts 1000] [--tick 15] [--calm]
        [--ticks 200] [--warm 200] [--against /work/main] [--refit-budget ROWS] [--profile N] [--sort cumulative]
        [--gc idle|auto] [--over 50]
    PYTHONPATH=src .venv/bin/python benchmarks/analysis_scale_bench.py --demo [--demo-from -175] [--ticks 600]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE)]

from fleet_exporter import CAMPAIGNS, GROUPS, FleetModel  # noqa: E402

METRICS = ("cpu.percent", "mem.percent", "mem.available_bytes", "load.1", "load.5", "load.15", "net.rx_bps",
           "net.tx_bps", "disk.read_bps", "disk.write_bps")
# analyzer methods timed on their own (each call's ms, summed per tick)
ANALYZER_PARTS = ("_topology", "_due_hosts", "_refit", "_now_arrays", "_campaign_states", "_episode_step", "_facts",
                  "_forecasts")
# parts of _refit, timed on their own too (within _refit's time: not subtracted again)
REFIT_PARTS = ("_search_lags", "_fit", "_masked_load", "_traffic_stats")


def fleet_values(hosts: int, tick: float, ticks: int, launch_tick: int) -> tuple[list[str], np.ndarray,
                                                                                  dict[str, str]]:
    """Series names, values [series, ticks] and each host's group, as the engine's store would hold them."""
    t0 = 1_800_000_000.0
    model = FleetModel(hosts, t0, launch_at=t0 + launch_tick * tick)
    names = [f"host:{h}/{m}" for m in METRICS for h in model.names]
    names += [f"traffic:{g}/visitors" for g in GROUPS] + [f"campaign:{c.replace('_', '-')}/visitors"
                                                          for c in CAMPAIGNS]
    out = np.empty((len(names), ticks))
    prev = None
    for k in range(ticks):
        t = t0 + k * tick
        model.advance(t)
        counters = np.stack([model.rx, model.tx, model.read, model.written])
        rates = (counters - prev) / tick if prev is not None else np.zeros_like(counters)
        prev = counters.copy()
        mem = np.clip(model.mem_base + 0.25 * model.busy, 0.05, 0.97)
        cols = [100.0 * model.busy, 100.0 * mem, model.mem_total * (1.0 - mem), model.load[0], model.load[1],
                model.load[2], rates[0], rates[1], rates[2], rates[3]]
        out[:, k] = np.concatenate([*cols, model.visitors, model.campaign_visitors(t)])
    groups = {h: GROUPS[g] for h, g in zip(model.names, model.group.tolist(), strict=True)}
    return names, out, groups


def demo_values(start: float, ticks: int, history: int) -> tuple[list[str], np.ndarray]:
    """The built-in default's series at 1 s from scenario time `start - history` (DEMO host and traffic, and ten
    slowly wandering series of a local host)."""
    from surgewatch.sources.demo import DemoScenario

    sc = DemoScenario()
    t = start - history + np.arange(history + ticks, dtype=np.float64)
    rows = {f"host:demo-web/{m}": v for m, v in sc.host(t).items()}
    rows["traffic:demo-site/visitors"] = sc.site_visitors(t)
    rows["campaign:demo-launch/visitors"] = sc.campaign_visitors(t)
    rng = np.random.default_rng(3)
    for m in ("cpu.percent", "mem.percent", "load.1", "load.5", "load.15", "net.rx_bps", "net.tx_bps",
              "disk.read_bps", "disk.write_bps", "procs.count"):
        rows[f"host:local/{m}"] = 20.0 + np.cumsum(rng.normal(0, 0.02, t.shape[0])) + rng.normal(0, 0.5, t.shape[0])
    return list(rows), np.vstack(list(rows.values()))


def load_side(src: Path, as_name: str, tmp: Path) -> dict[str, ModuleType]:
    shutil.copytree(src / "surgewatch", tmp / as_name)
    return {m: importlib.import_module(f"{as_name}.analysis.{m}") for m in ("analyzer", "groupmodels")}


def build(mods: dict[str, ModuleType], tick: float, groups: dict[str, str], demo: bool = False) -> Any:
    """An analyzer as Engine.build_analyzer makes it, for the fleet's campaigns (one per group), or the demo's."""
    a = mods["analyzer"]
    specs = []
    for g, c in zip(GROUPS, CAMPAIGNS, strict=True):
        name = c.replace("_", "-")
        specs.append(a.CampaignSpec(name, f"campaign:{name}/visitors", f"traffic:{g}/visitors",
                                    tuple(h for h, hg in groups.items() if hg == g)))
    if demo:
        specs = [a.CampaignSpec("demo-launch", "campaign:demo-launch/visitors", "traffic:demo-site/visitors",
                                ("demo-web",), expected_lift=4.0)]
    an = a.Analyzer(a.default_detector(tick), specs, tick)
    an.groups = mods["groupmodels"].GroupModels.for_analyzer(an)
    an.groups.set_groups(groups)
    return an


class Timer:
    """Wraps methods of an object (on the instance: the class is untouched) and sums their CPU ms per tick (this
    thread's CPU time: what a loaded machine takes from the process in between does not count)."""

    def __init__(self) -> None:
        self.now: dict[str, float] = {}
        self.ticks: dict[str, list[float]] = {}

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        inner = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.now[label] = self.now.get(label, 0.0) + (time.thread_time() - t0) * 1000

        setattr(owner, attr, timed)

    def count(self, owner: Any, attr: str, label: str, of: Any) -> None:
        """Also sum `of(*args)` of each call per tick (a count, shown in the ms columns)."""
        inner = getattr(owner, attr)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.now[label] = self.now.get(label, 0.0) + of(*args)
            return inner(*args, **kwargs)

        setattr(owner, attr, counted)

    def end_tick(self, labels: list[str], keep: bool) -> None:
        if keep:
            for label in labels:
                self.ticks.setdefault(label, []).append(self.now.get(label, 0.0))
        self.now = {}


class GcClock:
    """The collector's CPU ms (this thread's) and full passes, summed into the timer of the side stepping (or
    into `idle` between steps)."""

    def __init__(self, timers: dict[str, Timer]) -> None:
        self.timers = timers
        self.side: str | None = None
        self.idle: list[float] = [0.0]
        self._t0 = 0.0
        gc.callbacks.append(self._on_gc)

    def close(self) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.thread_time()
            return
        ms = (time.thread_time() - self._t0) * 1000
        if self.side == "":  # the bench's own work (comparing): not counted
            return
        if self.side is None:
            self.idle[-1] += ms
            return
        now = self.timers[self.side].now
        now["gc in step"] = now.get("gc in step", 0.0) + ms
        if info["generation"] == 2:
            now["gc full passes"] = now.get("gc full passes", 0.0) + 1


def spread(xs: list[float]) -> str:
    """min median p95 max (mean) of per-tick ms."""
    return (f"{min(xs):6.2f} {statistics.median(xs):6.2f} {float(np.percentile(xs, 95)):6.2f} {max(xs):6.2f} "
            f"({statistics.mean(xs):6.3f})" if xs else "–")


def causes(res: Any) -> dict[int, tuple[str, str | None]]:
    return {r: (c.value, n) for r, (c, n) in res.cause.items()}


def same(a: Any, b: Any, states: bool) -> bool:
    """Same scores, causes and explanations (every one read: written now if not yet) and with `states`, the same
    campaign states with their pairs."""
    return (np.array_equal(a.score, b.score, equal_nan=True) and dict(a.explanation) == dict(b.explanation)
            and causes(a) == causes(b) and (not states or _states(a) == _states(b)))


def _states(res: Any) -> str:
    return repr([(c.name, c.visitors, c.baseline, c.lift, c.growth_per_s, c.pairs) for c in res.campaigns])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--tick", type=float, default=15.0, help="seconds per tick (the engine's interval)")
    ap.add_argument("--ticks", type=int, default=200, help="measured ticks (the campaigns launch at the first)")
    ap.add_argument("--calm", action="store_true", help="the campaigns launch after the measured ticks")
    ap.add_argument("--warm", type=int, default=200, help="ticks before measuring (at least the fit window)")
    ap.add_argument("--sort", default="tottime", help="--profile's order (tottime, cumulative)")
    ap.add_argument("--demo", action="store_true", help="the small end: the built-in default at 1 s")
    ap.add_argument("--demo-from", type=float, default=-175.0, help="scenario seconds where measuring starts")
    ap.add_argument("--against", type=Path, help="another checkout (its src/) stepped beside this one")
    ap.add_argument("--refit-budget", type=int, default=0, metavar="ROWS", help="this side refits at most ROWS host "
                    "rows a tick (Analyzer(refit_budget=...); 0: no limit, as the engine)")
    ap.add_argument("--gc", choices=("idle", "auto"), default="idle", help="idle: collect after each tick "
                    "(lean.TickCollector, as the daemon); auto: the automatic collector only")
    ap.add_argument("--over", type=float, default=50.0, metavar="MS", help="count the ticks whose campaign "
                    "analysis took over MS")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="also cProfile this side's measured ticks "
                    "and print the top N functions by own time")
    args = ap.parse_args()
    if args.demo:
        args.tick, args.warm, groups = 1.0, 1800, {}
        names, values = demo_values(args.demo_from, args.ticks, args.warm)
    else:
        launch = args.warm + args.ticks + 10 if args.calm else args.warm
        names, values, groups = fleet_values(args.hosts, args.tick, args.warm + args.ticks, launch)
    index = {n: i for i, n in enumerate(names)}
    ts = 1_800_000_000.0 + args.tick * np.arange(values.shape[1])
    tmp = Path(tempfile.mkdtemp())
    sys.path.insert(0, str(tmp))
    try:
        sides = {"this": load_side(ROOT / "src", "sw_this", tmp)}
        if args.against:
            sides["against"] = load_side(args.against.resolve() / "src", "sw_against", tmp)
        ans = {s: build(m, args.tick, groups, args.demo) for s, m in sides.items()}
        if args.refit_budget:
            ans["this"].refit_budget = args.refit_budget
        timers = {s: Timer() for s in ans}
        labels = ["step", "detector", "campaign analysis", *ANALYZER_PARTS, *(f"  {p}" for p in REFIT_PARTS),
                  "groups.step", "explain, rest", "rows refitted", "gc in step", "gc full passes"]
        for s, an in ans.items():
            tm = timers[s]
            tm.wrap(an, "step", "step")
            tm.wrap(an.detector, "update", "detector")
            for part in ANALYZER_PARTS:
                if hasattr(an, part):
                    tm.wrap(an, part, part)
            for part in REFIT_PARTS:
                if hasattr(an, part):
                    tm.wrap(an, part, f"  {part}")
            tm.count(an, "_refit", "rows refitted", lambda _topo, hosts, *_rest: len(hosts))
            tm.wrap(an.groups, "step", "groups.step")
        gc_clock = GcClock(timers)
        sim_now = [0.0]
        collector = importlib.import_module("sw_this.lean").TickCollector(clock=lambda: sim_now[0]) \
            if args.gc == "idle" else None
        gc.collect()
        fit = ans["this"].fit_ticks
        window = values.astype(np.float32)  # the window as the engine's store holds it; the tick's column in float64
        first = 0
        if args.demo:  # the daemon warms analysis on the demo's backfilled history, then ticks on
            for side, an in ans.items():
                an.warm(values[:, : args.warm])
                timers[side].now = {}
            first = args.warm
        differ: list[int] = []
        verdicts: list[tuple[int, list[Any]]] = []
        order = list(ans)
        import cProfile
        import pstats

        prof = cProfile.Profile()
        def compare(t: int, res: dict[str, Any]) -> None:
            if len(res) == 2 and not same(res["this"], res["against"], t % 10 == 0):
                differ.append(t)
                ca, cb = causes(res["this"]), causes(res["against"])
                if ca != cb:  # a conclusion differs: which rows, and what each side said
                    rows = sorted(r for r in set(ca) | set(cb) if ca.get(r) != cb.get(r))
                    verdicts.append((t, [(names[r], ca.get(r), cb.get(r)) for r in rows]))

        # each tick's results are compared after the next tick has stepped: explanations are written when first
        # read, from what their tick knew, and must not pick up what later ticks changed
        held: tuple[int, dict[str, Any]] | None = None
        for t in range(first, values.shape[1]):
            lo = max(0, t + 1 - fit)
            res = {}
            for s in order if t % 2 == 0 else order[::-1]:
                profiled = args.profile and s == "this" and t >= args.warm
                if profiled:
                    prof.enable()
                if collector is not None:  # the automatic collector off during the tick, as the engine's
                    collector.before_tick()
                gc_clock.side = s
                res[s] = ans[s].step(float(ts[t]), names, index, values[:, t], ts[lo: t + 1], window[:, lo: t + 1])
                gc_clock.side = None
                if profiled:
                    prof.disable()
                if collector is not None:  # the idle time after the tick, as the engine's
                    sim_now[0] = float(ts[t])
                    collector.after_tick()
                tm = timers[s]
                tm.now["campaign analysis"] = tm.now.get("step", 0.0) - tm.now.get("detector", 0.0)
                # what is not in a timed part: the hot rows' explanations, mostly
                tm.now["explain, rest"] = tm.now["campaign analysis"] - sum(
                    tm.now.get(part, 0.0) for part in (*ANALYZER_PARTS, "groups.step"))
                tm.end_tick(labels, t >= args.warm)
            if held is not None:
                gc_clock.side = ""
                compare(*held)
                gc_clock.side = None
            held = (t, res)
            if t >= args.warm:
                gc_clock.idle.append(0.0)
            else:
                gc_clock.idle[-1] = 0.0
        if held is not None:
            compare(*held)
        what = (f"the built-in default (DEMO host and campaign, a local host) from scenario time {args.demo_from:g} s"
                if args.demo else f"{args.hosts} hosts, {len(CAMPAIGNS)} campaigns on {len(GROUPS)} groups")
        print(f"{what}, {len(names)} series, {args.tick:g} s tick, {args.ticks} ticks measured after {args.warm} "
              f"(CPU ms per tick, min median p95 max (mean); mean campaign analysis at the end)")
        print(f"  {'part':<20}" + "".join(f" {s + ' min med p95 max (mean)':>39}" for s in ans))
        for label in labels:
            print(f"  {label:<20}" + "".join(f" {spread(timers[s].ticks.get(label, [])):>39}" for s in ans))
        means = "  ".join(f"{s} {statistics.mean(timers[s].ticks['campaign analysis']):.3f} ms "
                          f"({statistics.mean(timers[s].ticks['campaign analysis']) * 60 / args.tick / 1000:.4f} "
                          f"CPU-s/min)" for s in ans)
        print(f"  campaign analysis, mean: {means}")
        over = "  ".join(f"{s} {sum(ms > args.over for ms in timers[s].ticks['campaign analysis'])}" for s in ans)
        print(f"  ticks whose campaign analysis took over {args.over:g} ms, of {args.ticks}: {over}")
        parts = ("campaign analysis", "_refit", "  _search_lags", "  _fit", "explain, rest", "groups.step",
                 "gc in step", "rows refitted")
        ca = timers["this"].ticks["campaign analysis"]
        slowest = sorted(range(len(ca)), key=lambda i: -ca[i])[:5]
        print("  this side's slowest ticks: " + "; ".join(
            f"tick {args.warm + i}: " + ", ".join(f"{p.strip()} {timers['this'].ticks[p][i]:.1f}" for p in parts)
            for i in slowest))
        idle = gc_clock.idle[:-1]
        print(f"  gc ({args.gc}) after the ticks, ms per tick (both sides'): {spread(idle)}"
              + (f"; {collector.full_passes} full passes" if collector is not None else ""))
        if args.against:
            print("  scores, causes, explanations, campaign states: " + (
                "identical on every tick" if not differ else f"differ on {len(differ)} ticks, first {differ[:5]}"))
            print(f"  causes (explained / unexplained / ...): the same on {values.shape[1] - first - len(verdicts)} of "
                  f"{values.shape[1] - first} ticks")
            for t, rows in verdicts[:5]:
                print(f"    tick {t}: " + "; ".join(f"{n}: {a} here, {b} there" for n, a, b in rows[:3]))
        if args.profile:
            pstats.Stats(prof).sort_stats(args.sort).print_stats(args.profile)
    finally:
        if "gc_clock" in locals():
            gc_clock.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
