"""The sentence that explains an anomalous series, and the cause it names.

`judge` reaches the verdict on each anomalous row of a tick: explained by a campaign whose traffic carries the
load, likely explained while a model still learns a launch, or unexplained; `qualify_verdict` then calls an
unexplained burst that recurs on its own period `recurring`, and one where load is at its usual level not an
incident. The verdict is kept with the numbers its sentence is written from, and the sentence itself (`words`,
then `qualified`: the value against the level it left, the model's expectation, the departure's size in its unit
before the verdict, its floor when below it) is written only when something reads it: the tick's
`Explanations` maps each row to its sentence (a fleet's launch has thousands of anomalous rows a tick, and most
ticks nobody reads their sentences). What changes from tick to tick (episodes, refitted models) is read with the
verdict, so a sentence read later is the one its tick would have written. Both read one tick's facts
(`TickFacts`), which the analyzer builds after scoring the tick.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..describe import format_value, metric_label
from ..model import Cause, split_series
from ..units import format_duration, format_number
from . import LIFTED
from .correlation import HostModel
from .detectors import DetectorOutput
from .episodes import Episodes
from .recurring import Recurrence, RecurringBursts
from .significance import RELATIVE, Significance, describe_size
from .state import ModelsNow, PackedModels, Topology

STILL_LIFTED = 1.2  # a load model credits a campaign only while some traffic is at least this far above baseline

Verdict = tuple[Cause, str | None]  # the cause, and the campaign it names (None: none)
# per set of campaigns on a host: lifts by campaign, the top lift, lifted, its name, still learning, any still
# lifted, and the campaigns as a key (those of the lifts, in order)
Campaigns = tuple[dict[int, float], float, bool, str, bool, bool, tuple[int, ...]]
Head = tuple[float, float, str]  # the value against the level it left: z, that level, what the level is

# what an explanation says (the form of its sentence)
(_OTHER, _NO_CAMPAIGN, _AT_BASELINE, _EXPLAINED, _OFF_MODEL, _ABOVE_LIFT, _LEARNING_MODEL, _LEARNING,
 _NOT_FOLLOWING, _NO_MODEL) = range(10)
# how qualify_verdict qualifies it
_BELOW_FLOOR, _USUAL_LEVEL, _ORDINARY, _PLAIN = range(4)
Qualifier = tuple[int, int, float, float, Recurrence | None]  # how, size kind, size, floor, recurrence


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
    credit: dict[tuple[tuple[int, ...], tuple[int, ...]], Verdict] = field(default_factory=dict)  # see _name_for
    named: dict[str, Verdict] = field(default_factory=dict)  # see _campaign
    parts: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # split_series of names read this tick


# What the sentence of an anomalous row is written from (`words`), in one flat tuple (thousands a tick are kept
# until read: one object each): the form of the sentence, the host (or campaign, site), the metric, the value,
# the `Qualifier` (5 items), then the form's numbers
Reading = tuple[Any, ...]
_UNEXPLAINED: Verdict = (Cause.UNEXPLAINED, None)
_RECURRING: Verdict = (Cause.RECURRING, None)


def judge(rows: np.ndarray, names: Sequence[str], size: np.ndarray, f: TickFacts, out: Explanations,
          cause: dict[int, Verdict]) -> None:
    """The verdict on each anomalous row into `cause` (none for traffic rows, load at baseline, and load at its
    usual level), and into `out` what its sentence is written from: `qualified(words(reading), qualifier)`.
    Each row's numbers are gathered from the tick's arrays at once; the usual verdict (a mature load model
    explains the load) is reached inline."""
    value = f.column[rows].tolist()
    det = f.det
    z, base, score = det.z[rows].tolist(), det.expected[rows].tolist(), det.score[rows].tolist()
    slow = f.slow or (np.zeros(0), np.zeros(0), np.zeros(0))
    slow_base, slow_z, slow_score = (_at(a, rows, float("nan")) for a in slow)
    kind, floor, sz = _at(f.sig.kind, rows, RELATIVE), _at(f.sig.floor, rows, 0.0), size[rows].tolist()
    p, now = f.packed, f.now
    rl = rows.tolist()
    pos = [p.pos.get(r, -1) for r in rl]
    at = np.array(pos, dtype=np.intp)
    usable, rz, expected, mature = (_at(a, at, a.dtype.type(0)) for a in (p.usable, now.rz, now.expected, now.mature))
    parts_of, host_campaigns, host_of, campaigns_of = f.parts, f.topo.host_campaigns, f.topo.host_of, f.campaigns_of
    models, limit, pending, credit = p.models, f.residual_limit, out.pending, f.credit
    # the usual verdict's test (a usable, mature model the value is within), and the size against its floor, at once
    with np.errstate(invalid="ignore"):
        fast = ((at >= 0) & np.array(usable, dtype=bool) & np.array(mature, dtype=bool)
                & (np.abs(np.array(rz, dtype=np.float64)) < limit)).tolist()
        hows = np.where(np.abs(size[rows]) < np.array(floor, dtype=np.float64), _BELOW_FLOOR, _PLAIN).tolist()
    for k, r in enumerate(rl):
        name = names[r]
        parts = parts_of.get(name)
        if parts is None:
            parts = parts_of[name] = split_series(name)
        i, v, e = pos[k], value[k], rz[k]
        cis = (host_campaigns.get(r) or tuple(host_of.get(parts[1], ()))) if parts[0] == "host" else ()
        if cis:  # the usual verdicts at a launch, as _read reaches them, inline
            camp = campaigns_of.get(cis) or _campaigns_of(cis, f)
            s, fl, how = sz[k], floor[k], hows[k]  # (_PLAIN for a NaN size)
            if fast[k]:  # (False for a NaN residual)
                # a mature model explains the load (or it is at baseline traffic)
                m = models[i]
                if camp[5]:
                    cause[r] = credit.get((m.drivers, camp[6])) or _name_for(m, f, camp[0], camp[6])
                    pending[r] = (_EXPLAINED, parts[1], parts[2], v, how, kind[k], s, fl, None, m, expected[k], i,
                                  f, camp[0])
                else:
                    pending[r] = (_AT_BASELINE, parts[1], parts[2], v, how, kind[k], s, fl, None, m, expected[k],
                                  i, f, camp[0])
                continue
            modelled = i >= 0 and usable[k]
            if camp[4] and modelled and not (mature[k] and not math.isnan(e)) and not (camp[2] and e >= limit):
                # the model still learns a launch and the load is not beyond what the lift could drive
                cause[r] = _campaign(camp[3], f)
                pending[r] = (_LEARNING_MODEL, parts[1], parts[2], v, how, kind[k], s, fl, None, models[i],
                              expected[k], i, f, camp[0], camp[3], camp[1])
                continue
            if camp[4] and not modelled:  # no usable model yet, while a launch is young
                cause[r] = _campaign(camp[3], f)
                pending[r] = (_LEARNING, parts[1], parts[2], v, how, kind[k], s, fl, None,
                              *_head(r, v, (z[k], base[k], score[k], slow_base[k], slow_z[k], slow_score[k]), f),
                              camp[3], camp[1])
                continue
        verdict, form, more = _read(r, parts, f, v, i, usable[k], e, expected[k], mature[k],
                                    (z[k], base[k], score[k], slow_base[k], slow_z[k], slow_score[k]))
        c, q = qualify_verdict(r, verdict, v, kind[k], floor[k], sz[k], f)
        pending[r] = (form, parts[1], parts[2], v, *q, *more)
        if c is not None:
            cause[r] = c


def _at(a: np.ndarray, idx: np.ndarray, fill: Any) -> list[Any]:
    """a[idx] as a list, `fill` where idx is negative or past a's end."""
    ok = (idx >= 0) & (idx < a.shape[0])
    if ok.all():
        return a[idx].tolist()
    out = [fill] * idx.shape[0]
    for k, v in zip(np.flatnonzero(ok).tolist(), a[idx[ok]].tolist(), strict=True):
        out[k] = v
    return out


Gathered = tuple[float, float, float, float, float, float]  # det z, expected, score; slow level, z, score


def _read(row: int, parts: tuple[str, str, str], f: TickFacts, value: float, i: int, usable: bool, rz: float,
          expected: float, mature: bool, g: Gathered) -> tuple[Verdict | None, int, tuple[Any, ...]]:
    """The verdict on one anomalous row (None for traffic rows, and load at baseline), the form of its sentence
    and the numbers it is written from; `i` is its packed model (-1: none) and the rest that model's and the
    detector's numbers now."""
    kind, who, _metric = parts
    if kind != "host":
        lifted = next((lf for nm, lf in zip(f.campaign_names, f.lifts, strict=True) if nm == who), float("nan"))
        return None, _OTHER, (*_head(row, value, g, f), lifted, kind)
    topo = f.topo
    cis = topo.host_campaigns.get(row) or tuple(topo.host_of.get(who, ()))
    if not cis:
        return _UNEXPLAINED, _NO_CAMPAIGN, _head(row, value, g, f)
    lifts, top_lift, lifted, top_name, learning, still, key = f.campaigns_of.get(cis) or _campaigns_of(cis, f)
    if i >= 0 and usable:
        p, now = f.packed, f.now
        m = p.models[i]
        model = (m, expected, i, f, lifts)
        if mature and not math.isnan(rz):
            if abs(rz) < f.residual_limit:
                if not still:
                    # traffic is back at its baseline: no campaign to credit (hours after one faded)
                    return None, _AT_BASELINE, model
                return _name_for(m, f, lifts, key), _EXPLAINED, model
            return _UNEXPLAINED, _OFF_MODEL, (*model, rz)
        if lifted and rz >= f.residual_limit:
            # Still learning, but far above the model and above what the traffic lift could drive even
            # if all of the host's load at baseline traffic grew with it: load = idle + k * traffic grows
            # at most in proportion to traffic
            at_base = float(p.intercept[i] + np.sum(p.coefs[i] * now.base[i]))
            if at_base > 0 and value > at_base * top_lift:
                return _UNEXPLAINED, _ABOVE_LIFT, (*model, rz, at_base, top_lift)
        if learning:
            return _campaign(top_name, f), _LEARNING_MODEL, (*model, top_name, top_lift)
    if learning:
        return _campaign(top_name, f), _LEARNING, (*_head(row, value, g, f), top_name, top_lift)
    if lifted:
        return _UNEXPLAINED, _NOT_FOLLOWING, (*_head(row, value, g, f), top_name, top_lift)
    return _UNEXPLAINED, _NO_MODEL, (*_head(row, value, g, f), top_lift)


def words(r: Reading) -> str:
    """The sentence of a reading (before `qualified`)."""
    form, who, metric, value = r[:4]
    more = r[9:]
    label = f"{who} {metric_label(metric)} {format_value(metric, value)}"
    if form >= _LEARNING or form <= _NO_CAMPAIGN:  # forms that start with the value against the level it left
        head = _head_text(label, metric, more[0], more[1], more[2])
        if form == _OTHER:
            lifted, kind = more[3:]
            return head + (f" (lift {lifted:.1f}x)" if not math.isnan(lifted) and kind == "campaign" else "")
        if form == _NO_CAMPAIGN:
            return head + "; no campaign lands on this host; unexplained"
        if form == _LEARNING:
            return (f"{head}; traffic from {more[3]} is {more[4]:.1f}x its baseline (load model still "
                    f"learning); likely explained")
        if form == _NOT_FOLLOWING:
            return (f"{head}; traffic from {more[3]} is {more[4]:.1f}x its baseline but load does not follow "
                    f"it (no usable load model); unexplained")
        top_lift = more[3]
        lift_txt = f"traffic only {100 * (top_lift - 1):+.0f}%" if not math.isnan(top_lift) else "traffic unknown"
        return f"{head}; {lift_txt}, no usable load model; unexplained"
    m, expected, i, f, lifts = more[:5]
    model_txt = f"expected {format_value(metric, expected)} at {_traffic_text(m, f.now.x[i], f, lifts)}"
    if form == _AT_BASELINE:
        return f"{label} — {model_txt}; as expected at baseline traffic"
    if form == _EXPLAINED:
        return f"{label} — {model_txt}; explained"
    if form == _OFF_MODEL:
        rz = more[5]
        side = "above" if rz > 0 else "below"
        return f"{label} — {model_txt}; {abs(rz):.1f}σ {side} the load model; unexplained"
    if form == _ABOVE_LIFT:
        rz, at_base, top_lift = more[5:]
        return (f"{label} — {model_txt}; {rz:.1f}σ above the load model (still learning) and above "
                f"{format_value(metric, at_base * top_lift)}, its load at baseline traffic times the "
                f"{top_lift:.1f}x lift; unexplained")
    top_name, top_lift = more[5:]  # _LEARNING_MODEL
    return (f"{label} — {model_txt} (model still learning this traffic level); traffic from "
            f"{top_name} is {top_lift:.1f}x its baseline; likely explained")


def _head(row: int, value: float, g: Gathered, f: TickFacts) -> Head:
    """The value against the level it left (not needed when a mature model speaks): read now, since episodes
    move on."""
    z, base, score, slow_base, slow_z, slow_score = g
    what = f.baseline_label
    held = f.episodes.departure(row, value)
    if slow_score > score:  # (NaN without a slow baseline for the row)
        # the practical score leads: against the level of the last hour, not the one learned since
        base, z, what = slow_base, slow_z, "level over the last hour"
    elif held is not None:  # a sustained departure: against the level it left, not the one learned since
        base, z, what = held[0], held[1], "level before it started"
    return z, base, what


def _head_text(label: str, metric: str, z: float, base: float, what: str) -> str:
    if not math.isnan(z):
        side = "above" if z >= 0 else "below"
        return f"{label} is {abs(z):.1f}σ {side} its {what} {format_value(metric, base)}"
    return label


def qualify_verdict(row: int, c: Verdict | None, value: float, kind: int, floor: float, s: float, f: TickFacts
                    ) -> tuple[Verdict | None, Qualifier]:
    """Call an unexplained burst that recurs on its own period `recurring`, and one where load is at its usual
    level not an incident; and what `qualified` needs to write the departure's size (`s`, of `kind`) and its
    floor before the verdict."""
    if not math.isnan(s) and abs(s) < floor:  # the reason no anomaly rule fires on it
        return c, (_BELOW_FLOOR, kind, s, floor, None)
    unexplained = c is not None and c[0] == Cause.UNEXPLAINED
    rec = f.bursts.verdict.get(row) if unexplained else None
    if unexplained and _at_usual_level(row, value, floor, f):
        # off its load model, yet where the host usually is: traffic that costs nothing (bots, cache hits)
        return None, (_USUAL_LEVEL, kind, s, floor, None)
    if rec is not None and rec.ordinary:
        return _RECURRING, (_ORDINARY, kind, s, floor, rec)
    return c, (_PLAIN, kind, s, floor, rec)


def qualified(text: str, q: Qualifier) -> str:
    """The words of `qualify_verdict`'s verdict on a sentence: the departure's size (and its floor when below
    it) before the verdict."""
    how, kind, s, floor, rec = q
    head, sep, verdict = text.rpartition("; ")
    if not sep:
        head, verdict = text, ""
    if how == _BELOW_FLOOR:
        return (f"{head} ({describe_size(kind, s, floor)}); {verdict}" if verdict else
                f"{head} ({describe_size(kind, s, floor)})")
    if not math.isnan(s):
        head = f"{head} ({describe_size(kind, s)})"
    if how == _USUAL_LEVEL:
        return f"{head}; load is at its usual level, traffic is not reaching it; not an incident"
    if how == _ORDINARY:
        assert rec is not None
        return f"{head}; {rec.text()}"
    if rec is not None:
        verdict = f"{rec.text()}; {verdict}"
    return f"{head}; {verdict}" if verdict else head


class Explanations(MutableMapping[int, str]):
    """A tick's explanations by row. Rows `judge` put in `pending` hold their reading until their sentence is
    first read (then it is written, once); rows set to a string (group models, schedules, annotations) hold that
    string. Iteration keeps the order rows were added, as a dict."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        # row -> its sentence, or what it is written from: qualified(words(reading), reading's qualifier)
        self.pending: dict[int, str | Reading] = {}

    def __getitem__(self, row: int) -> str:
        v = self.pending[row]
        if isinstance(v, str):
            return v
        text = self.pending[row] = qualified(words(v), v[4:9])
        return text

    def __setitem__(self, row: int, text: str) -> None:
        self.pending[row] = text

    def __delitem__(self, row: int) -> None:
        del self.pending[row]

    def __contains__(self, row: object) -> bool:
        return row in self.pending

    def __iter__(self) -> Iterator[int]:
        return iter(self.pending)

    def __len__(self) -> int:
        return len(self.pending)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


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
    out = f.campaigns_of[cis] = (lifts, top_lift, lifted, f.campaign_names[top], learning, still, tuple(lifts))
    return out


def _or_zero(lift: float) -> float:
    return 0.0 if math.isnan(lift) else lift


def _at_usual_level(row: int, value: float, floor: float, f: TickFacts) -> bool:
    """Whether a row off its load model is still within its floor of the level it had before the episode
    began: the traffic moved, the load did not (bots, cached pages), unlike an outage where load drops."""
    if row not in f.packed.pos:
        return False
    held = f.episodes.departure(row, value)
    if held is None:
        return False
    return abs(f.sig.size_of(row, value, held[0])) < floor


def _name_for(m: HostModel, f: TickFacts, lifts: dict[int, float], cis: tuple[int, ...]) -> Verdict:
    """The campaign to credit: the most lifted one among those driving the largest contribution (`cis`: the
    campaigns of `lifts`)."""
    key = (m.drivers, cis)
    verdict = f.credit.get(key)
    if verdict is None:  # the same for every host of those campaigns: worked out once a tick
        driving = [ci for ci in lifts if f.topo.driver_of[ci] in m.drivers]
        best = max(driving, key=lambda ci: _or_zero(lifts[ci]))
        verdict = f.credit[key] = _campaign(f.campaign_names[best], f)
    return verdict


def _campaign(name: str, f: TickFacts) -> Verdict:
    """(CAMPAIGN, name), one tuple per campaign a tick (they are kept with every row it explains)."""
    verdict = f.named.get(name)
    if verdict is None:
        verdict = f.named[name] = (Cause.CAMPAIGN, name)
    return verdict


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
