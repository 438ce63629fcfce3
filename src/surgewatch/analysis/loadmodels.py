"""Learned load models that outlive the process: saved in the state dir, reloaded on start, read by `plan`.

A `LearnedModel` is one campaign's load model on one host or host group and one metric (load ≈ intercept +
slope · traffic(t − lag)), with its fit (r², residual spread), how many points it was fitted on and when.
`ModelStore` keeps them in `<state dir>/models.json` (versioned JSON, written atomically with mode 0600); a
file that cannot be read or is not a models file is reported in one warning line, moved aside
(`models.json.corrupt-<time>`) and the store starts empty.

The key is (campaign name, scope, host or group, metric): the same campaign name next week finds last week's
model. A campaign with no model of its own on a target borrows the newest model on that target and metric
learned from the same traffic series (`traffic:<name>/visitors`, the `[[traffic]]` table it follows): how much
load a visitor of a site costs is a property of the servers behind it, not of the send that brought them.
A model learned live replaces a stored one only when it is usable (a clear positive relation on enough
points), so a flat week never erases what a real send taught.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..statedir import write_atomic
from .correlation import MIN_POINTS, MIN_R2, LoadModel

if TYPE_CHECKING:
    from .analyzer import CampaignSpec, CampaignState
    from .plan import ModelFact

log = logging.getLogger("surgewatch.models")

FORMAT_VERSION = 1
FILE_NAME = "models.json"
HOST, GROUP = "host", "group"


class ModelStoreError(Exception):
    """The models file cannot be written (one line naming the path)."""


@dataclass(frozen=True, slots=True)
class LearnedModel:
    """One learned load model: `metric` of a host or group ≈ intercept + slope · traffic(t − lag)."""

    campaign: str
    scope: str  # "host" or "group"
    target: str  # the host or group name
    metric: str  # e.g. "cpu.percent"
    traffic: str  # the traffic series the load follows, e.g. "traffic:site/visitors"
    lag_seconds: float
    slope: float  # metric units per visitor
    intercept: float  # the metric at no campaign traffic
    r2: float
    resid_sigma: float  # spread of the load around the model, in metric units
    points: int  # how many points it was fitted on
    learned_at: float  # UNIX time of the fit
    hosts: int = 1  # hosts pooled (a group model: the load is the group's mean)
    traffic_baseline: float | None = None  # the traffic series' usual level when learned (plan needs it); None: unknown

    def expected(self, traffic: float) -> float:
        """The load this model predicts at `traffic` visitors."""
        return self.intercept + self.slope * traffic

    @property
    def usable(self) -> bool:
        """A clear positive relation on enough points (the bar a live model must pass to explain load)."""
        return self.points >= MIN_POINTS and self.r2 >= MIN_R2 and self.slope > 0

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.campaign, self.scope, self.target, self.metric)

    def load_model(self, tick: float) -> LoadModel:
        """This model as the analysis's LoadModel at a tick length."""
        return LoadModel(max(0, round(self.lag_seconds / tick)), self.slope, self.intercept, self.r2,
                         self.resid_sigma, self.points)

    @classmethod
    def of(cls, campaign: str, scope: str, target: str, metric: str, traffic: str, model: LoadModel,
           tick: float, learned_at: float, hosts: int = 1, traffic_baseline: float | None = None) -> LearnedModel:
        """From a live LoadModel (a traffic baseline that is not a finite number is kept as unknown)."""
        if traffic_baseline is not None and not math.isfinite(traffic_baseline):
            traffic_baseline = None
        return cls(campaign, scope, target, metric, traffic, model.lag_ticks * tick, model.slope, model.intercept,
                   model.r2, model.resid_sigma, model.n, learned_at, hosts, traffic_baseline)

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 9) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LearnedModel:
        """From a JSON object; raises ValueError/TypeError/KeyError on a bad one."""
        m = cls(str(d["campaign"]), str(d["scope"]), str(d["target"]), str(d["metric"]), str(d["traffic"]),
                float(d["lag_seconds"]), float(d["slope"]), float(d["intercept"]), float(d["r2"]),
                float(d["resid_sigma"]), int(d["points"]), float(d["learned_at"]), int(d.get("hosts", 1)),
                float(d["traffic_baseline"]) if d.get("traffic_baseline") is not None else None)
        if m.scope not in (HOST, GROUP):
            raise ValueError(f"scope {m.scope!r} is neither host nor group")
        if not all(math.isfinite(v) for v in (m.lag_seconds, m.slope, m.intercept, m.r2, m.resid_sigma,
                                              m.learned_at)):
            raise ValueError(f"a model of {m.campaign}/{m.target}/{m.metric} has a non-finite number")
        return m


class ModelStore:
    """The learned models of one state dir: `load`, `get`, `put`, `save`."""

    def __init__(self, path: Path | str, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._models: dict[tuple[str, str, str, str], LearnedModel] = {}
        self.dirty = False
        self.problem: str | None = None  # why the file could not be used (load with repair off keeps it in place)
        self._repair = True

    @classmethod
    def in_state_dir(cls, state_dir: Path | str, clock: Callable[[], float] = time.time) -> ModelStore:
        return cls(Path(state_dir) / FILE_NAME, clock)

    def __len__(self) -> int:
        return len(self._models)

    def models(self) -> list[LearnedModel]:
        """Every model, sorted by campaign, scope, target and metric."""
        return [self._models[k] for k in sorted(self._models)]

    # -- reading ---------------------------------------------------------------------------

    def load(self, repair: bool = True) -> ModelStore:
        """Read the file (a missing one is an empty store). A damaged file: one warning, moved aside, empty; with
        `repair` off (a read-only look, `check`) it stays where it is and `problem` says what is wrong."""
        self._models, self.dirty, self.problem = {}, False, None
        self._repair = repair
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self
        except (OSError, UnicodeDecodeError) as exc:
            self._move_aside(f"cannot read: {getattr(exc, 'strerror', None) or exc}")
            return self
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("kind") != "surgewatch-models":
                raise ValueError("no \"kind\": \"surgewatch-models\"")
            version = doc.get("version")
            if version != FORMAT_VERSION:
                raise ValueError(f"format version {version!r}, this surgewatch reads {FORMAT_VERSION}")
            models = [LearnedModel.from_json(d) for d in doc["models"]]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self._move_aside(f"not a surgewatch models file ({type(exc).__name__}: {exc})")
            return self
        self._models = {m.key: m for m in models}
        return self

    def _move_aside(self, why: str) -> None:
        self.problem = why
        if not self._repair:
            return
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.clock()))
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            os.replace(self.path, aside)
        except OSError as err:
            log.warning("%s: %s and cannot be moved aside (%s); starting with no learned models", self.path, why,
                        err.strerror or err)
            return
        log.warning("%s: %s; moved aside to %s, starting with no learned models", self.path, why, aside.name)

    # -- lookups ---------------------------------------------------------------------------

    def get(self, campaign: str, target: str, metric: str, scope: str | None = None,
            traffic: str | None = None) -> LearnedModel | None:
        """The model of `campaign` on a host or group and metric (a host's first when `scope` is None); with
        `traffic`, a campaign without one borrows the newest model on that target learned from that traffic."""
        for s in (scope,) if scope else (HOST, GROUP):
            m = self._models.get((campaign, s, target, metric))
            if m is not None:
                return m
        if traffic is None:
            return None
        same = [m for m in self._models.values() if m.traffic == traffic and m.target == target
                and m.metric == metric and (scope is None or m.scope == scope)]
        return max(same, key=lambda m: m.learned_at) if same else None

    def of_campaign(self, campaign: str) -> list[LearnedModel]:
        """Every model learned for `campaign`."""
        return [m for m in self.models() if m.campaign == campaign]

    # -- writing ---------------------------------------------------------------------------

    def put(self, model: LearnedModel) -> bool:
        """Keep a live model if it is usable (or nothing usable is kept for its key); True if it changed. A model
        with a number that is not finite is not kept (the file holds numbers only)."""
        if not all(math.isfinite(v) for v in (model.lag_seconds, model.slope, model.intercept, model.r2,
                                              model.resid_sigma, model.learned_at)):
            return False
        old = self._models.get(model.key)
        if old is not None and old.usable and not model.usable:
            return False
        if old == model:
            return False
        self._models[model.key] = model
        self.dirty = True
        return True

    def put_all(self, models: Iterable[LearnedModel]) -> int:
        """`put` each; how many changed."""
        return sum(self.put(m) for m in models)

    def save(self) -> None:
        """Write every model atomically (temp file, fsync, rename), mode 0600. Raises ModelStoreError."""
        body = {"kind": "surgewatch-models", "version": FORMAT_VERSION, "saved_at": round(self.clock(), 3),
                "models": [m.to_json() for m in self.models()]}
        try:
            text = json.dumps(body, indent=1, allow_nan=False) + "\n"
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self.path, text)
        except (OSError, ValueError) as exc:
            raise ModelStoreError(f"{self.path}: cannot write learned models: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
        self.dirty = False


def learned_from(campaigns: Iterable[CampaignState], specs: Iterable[CampaignSpec], tick: float,
                 ts: float, baselines: Mapping[str, float] | None = None) -> list[LearnedModel]:
    """The usable, mature per-host models of a tick's campaign states, as models to keep (`baselines`: each
    traffic series' usual level, kept with the models that follow it)."""
    traffic = {s.name: s.traffic_series for s in specs}
    out = []
    for st in campaigns:
        for p in st.pairs:
            m = p.model
            if m is None or not m.usable or not p.mature:
                continue
            site = traffic.get(p.campaign, "")
            out.append(LearnedModel.of(p.campaign, HOST, p.host, p.metric, site, m, tick, ts,
                                       traffic_baseline=(baselines or {}).get(site)))
    return out


def plan_facts(models: Iterable[LearnedModel]) -> list[ModelFact]:
    """The kept per-host models as plan inputs (`surgewatch plan --from-state`, pre-flight after a restart)."""
    from .plan import ModelFact  # the planner only when planning (issue 14: a daemon without scheduled campaigns)

    return [ModelFact(m.campaign, m.target, m.metric, m.lag_seconds, m.slope, m.intercept, m.r2, m.usable,
                      m.learned_at, "site" if m.traffic.startswith("traffic:") else "campaign")
            for m in models if m.scope == HOST]
