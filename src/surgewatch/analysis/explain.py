"""The sentence that explains an anomalous series, and the cause it names.

`explain` writes the head (the value against the level it left) and the load models' verdict: explained by a
campaign whose traffic carries the load, likely explained while a model still learns a launch, or unexplained.
`qualify` then puts the departure's size in its unit before the verdict, says when it is below the floor, and
calls an unexplained burst that recurs on its own period `recurring`. Both read one tick's facts (`TickFacts`),
which the analyzer builds after scoring the tick.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..describe import format_value, metric_label
from ..model import Cause, split_series
from ..units import format_duration, format_number
from . import LIFTED
from .correlation import HostModel
from .detectors import DetectorOutput
from .episodes import Episodes
from .recurring import RecurringBursts
from .significance import RELATIVE, Significance, describe_size
from .state import ModelsNow, PackedModels, Topology

STILL_LIFTED = 1.2  # a load model credits a campaign only while some traffic is at least this far above baseline

Verdict = tuple[Cause, str | None]  # the cause, and the campaign it names (None: none)
# per set of campaigns on a host: lifts by campaign, the top lift, lifted, its name, still learning, any still lifted
Campaigns = tuple[dict[int, float], float, bool, str, bool, bool]


@dataclass(frozen=True, slots=True)
class TickFacts:
    """What the explanations of one tick read (built once per tick, after scoring)."""

    column: np.ndarray  # every row's value now
    det: DetectorOutput  # the detector's verdict (before load models and episodes)
    topo: Topology
    packed: PackedModels
    now: ModelsNow
    campaign_names: Sequence[str]  # by campaign index
    lifts: Sequence[float]  # by campaign index: its traffic over its baseline now (NaN: unknown)
    lifted_since: Mapping[int, int]  # campaign index -> tick its traffic lifted
    ticks: int  # ticks analysed, this one included
    tick: float  # seconds per tick
    learn_ticks: int  # how long after a launch a model may still be learning
    residual_limit: float  # |residual z| at or past which a value is off its load model
    baseline_label: str  # what the detector's expected value is, in words
    episodes: Episodes
    slow: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # hour-long baseline, its z, the practical score
    sig: Significance
    bursts: RecurringBursts
    words: dict[tuple[int, int, tuple[int, ...]], str] = field(default_factory=dict)  # phrases written this tick
    campaigns_of: dict[tuple[int, ...], Campaigns] = field(default_factory=dict)  # see _campaigns_of
    credit: dict[tuple[tuple[int, ...], tuple[int, ...]], str] = field(default_factory=dict)  # see _name_for


def explain(row: int, name: str, f: TickFacts) -> tuple[str, Verdict | None]:
    """The explanation of an anomalous row and its cause (None for traffic rows, and load at baseline)."""
    kind, who, metric = split_series(name)
    value = float(f.column[row])
    label = f"{who} {metric_label(metric)} {format_value(metric, value)}"

    def head_text() -> str:  # the value against the level it left (not needed when a mature model speaks)
        z, base, what = float(f.det.z[row]), float(f.det.expected[row]), f.baseline_label
        held = f.episodes.departure(row, value)
        slow = f.slow
        if slow is not None and row < slow[2].shape[0] and slow[2][row] > float(f.det.score[row]):
            # the practical score leads: against the level of the last hour, not the one learned since
            base, z, what = float(slow[0][row]), float(slow[1][row]), "level over the last hour"
        elif held is not None:  # a sustained departure: against the level it left, not the one learned since
            base, z, what = held[0], held[1], "level before it started"
        if not math.isnan(z):
            side = "above" if z >= 0 else "below"
            return f"{label} is {abs(z):.1f}σ {side} its {what} {format_value(metric, base)}"
        return label

    if kind != "host":
        lifted = next((lf for nm, lf in zip(f.campaign_names, f.lifts, strict=True) if nm == who), float("nan"))
        extra = f" (lift {lifted:.1f}x)" if not math.isnan(lifted) and kind == "campaign" else ""
        return head_text() + extra, None
    topo = f.topo
    cis = topo.host_campaigns.get(row) or tuple(topo.host_of.get(who, ()))
    if not cis:
        return head_text() + "; no campaign lands on this host; unexplained", (Cause.UNEXPLAINED, None)
    lifts, top_lift, lifted, top_name, learning, still = f.campaigns_of.get(cis) or _campaigns_of(cis, f)
    p, now = f.packed, f.now
    i = p.pos.get(row)
    if i is not None and p.usable[i]:
        m = p.models[i]
        rz = float(now.rz[i])
        model_txt = (f"expected {format_value(metric, float(now.expected[i]))} at "
                     f"{_traffic_text(m, now.x[i], f, lifts)}")
        if bool(now.mature[i]) and not math.isnan(rz):
            if abs(rz) < f.residual_limit:
                if not still:
                    # traffic is back at its baseline: no campaign to credit (hours after one faded)
                    return f"{label} — {model_txt}; as expected at baseline traffic", None
                return f"{label} — {model_txt}; explained", (Cause.CAMPAIGN, _name_for(m, f, lifts))
            side = "above" if rz > 0 else "below"
            return (f"{label} — {model_txt}; {abs(rz):.1f}σ {side} the load model; unexplained",
                    (Cause.UNEXPLAINED, None))
        if lifted and rz >= f.residual_limit:
            # Still learning, but far above the model and above what the traffic lift could drive even
            # if all of the host's load at baseline traffic grew with it: load = idle + k * traffic grows
            # at most in proportion to traffic
            at_base = float(p.intercept[i] + np.sum(p.coefs[i] * now.base[i]))
            if at_base > 0 and value > at_base * top_lift:
                return (f"{label} — {model_txt}; {rz:.1f}σ above the load model (still learning) and above "
                        f"{format_value(metric, at_base * top_lift)}, its load at baseline traffic times the "
                        f"{top_lift:.1f}x lift; unexplained", (Cause.UNEXPLAINED, None))
        if learning:
            return (f"{label} — {model_txt} (model still learning this traffic level); traffic from "
                    f"{top_name} is {top_lift:.1f}x its baseline; likely explained", (Cause.CAMPAIGN, top_name))
    if learning:
        return (f"{head_text()}; traffic from {top_name} is {top_lift:.1f}x its baseline (load model still "
                f"learning); likely explained", (Cause.CAMPAIGN, top_name))
    if lifted:
        return (f"{head_text()}; traffic from {top_name} is {top_lift:.1f}x its baseline but load does not follow "
                f"it (no usable load model); unexplained", (Cause.UNEXPLAINED, None))
    lift_txt = f"traffic only {100 * (top_lift - 1):+.0f}%" if not math.isnan(top_lift) else "traffic unknown"
    return f"{head_text()}; {lift_txt}, no usable load model; unexplained", (Cause.UNEXPLAINED, None)


def qualify(row: int, text: str, c: Verdict | None, size: np.ndarray, f: TickFacts
            ) -> tuple[str, Verdict | None]:
    """Put the departure's size (and its floor when below it) before the verdict of an explanation, and
    call an unexplained burst that recurs on its own period `recurring`."""
    sig = f.sig
    kind = int(sig.kind[row]) if row < sig.kind.shape[0] else RELATIVE
    floor = float(sig.floor[row]) if row < sig.floor.shape[0] else 0.0
    s = float(size[row])
    head, sep, verdict = text.rpartition("; ")
    if not sep:
        head, verdict = text, ""
    if not math.isnan(s) and abs(s) < floor:  # the reason no anomaly rule fires on it
        return (f"{head} ({describe_size(kind, s, floor)}); {verdict}" if verdict else
                f"{head} ({describe_size(kind, s, floor)})"), c
    if not math.isnan(s):
        head = f"{head} ({describe_size(kind, s)})"
    rec = f.bursts.verdict.get(row) if c is not None and c[0] == Cause.UNEXPLAINED else None
    if c is not None and c[0] == Cause.UNEXPLAINED and _at_usual_level(row, floor, f):
        # off its load model, yet where the host usually is: traffic that costs nothing (bots, cache hits)
        return f"{head}; load is at its usual level, traffic is not reaching it; not an incident", None
    if rec is not None and rec.ordinary:
        return f"{head}; {rec.text()}", (Cause.RECURRING, None)
    if rec is not None:
        verdict = f"{rec.text()}; {verdict}"
    return (f"{head}; {verdict}" if verdict else head), c


def _campaigns_of(cis: tuple[int, ...], f: TickFacts) -> Campaigns:
    """What the campaigns landing on a host say this tick: their lifts, the top one's lift, whether it is
    lifted, its name, whether its model may still be learning, and whether any traffic is still lifted
    (the same for every host of those campaigns: worked out once a tick)."""
    lifts = {ci: f.lifts[ci] for ci in cis}
    top = max(cis, key=lambda ci: _or_zero(lifts[ci]))
    top_lift = lifts[top]
    lifted = not math.isnan(top_lift) and top_lift >= LIFTED
    learning = lifted and f.ticks - f.lifted_since.get(top, f.ticks) <= f.learn_ticks
    still = any(not math.isnan(v) and v >= STILL_LIFTED for v in lifts.values())
    out = f.campaigns_of[cis] = (lifts, top_lift, lifted, f.campaign_names[top], learning, still)
    return out


def _or_zero(lift: float) -> float:
    return 0.0 if math.isnan(lift) else lift


def _at_usual_level(row: int, floor: float, f: TickFacts) -> bool:
    """Whether a row off its load model is still within its floor of the level it had before the episode
    began: the traffic moved, the load did not (bots, cached pages), unlike an outage where load drops."""
    if row not in f.packed.pos:
        return False
    value = float(f.column[row])
    held = f.episodes.departure(row, value)
    if held is None:
        return False
    return abs(f.sig.size_of(row, value, held[0])) < floor


def _name_for(m: HostModel, f: TickFacts, lifts: dict[int, float]) -> str:
    """The campaign to credit: the most lifted one among those driving the largest contribution."""
    key = (m.drivers, tuple(lifts))
    name = f.credit.get(key)
    if name is None:  # the same for every host of those campaigns: worked out once a tick
        cis = [ci for ci in lifts if f.topo.driver_of[ci] in m.drivers]
        best = max(cis, key=lambda ci: _or_zero(lifts[ci]))
        name = f.credit[key] = f.campaign_names[best]
    return name


def _traffic_text(m: HostModel, x: np.ndarray, f: TickFacts, lifts: dict[int, float]) -> str:
    parts = []
    for j, d in enumerate(m.drivers):
        key = (d, m.lags[j], tuple(lifts))
        where = f.words.get(key)
        if where is None:  # the same for every host of a campaign: written once a tick
            topo = f.topo
            cis = [ci for ci in lifts if topo.driver_of[ci] == d]
            names = " + ".join(f.campaign_names[ci] for ci in cis)
            own = any(topo.campaign_rows[ci] == d for ci in cis)
            lag = format_duration(m.lags[j] * f.tick)
            where = f.words[key] = f"visitors from {names} (lag {lag})" if own else \
                f"visitors on {names}'s site (lag {lag})"
        visitors = format_number(float(x[j])) if not math.isnan(x[j]) else "–"
        parts.append(f"{visitors} {where}")
    return " and ".join(parts)
