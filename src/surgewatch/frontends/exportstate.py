"""Builds the /metrics view (export.ExportState) from the engine, once per tick, inside the event loop."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..config import CampaignConfig, Config
from ..engine import Engine, ListenerContext
from ..export import AlertFigure, CampaignFigure, ExportState, LoadModelFigure, SeriesFigure
from ..model import AlertEvent

BACKLOG_EVERY = 5.0  # seconds between outbox backlog queries (one SQLite read)


class ExportFeed:
    """An engine listener that keeps the latest ExportState; `latest()` is what the exporter's thread reads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._state: ExportState | None = None
        self._backlog: dict[str, int] = {}
        self._dead: dict[str, int] = {}
        self._backlog_at = float("-inf")

    def latest(self) -> ExportState | None:
        """The last published state (an immutable object swapped in by reference: safe from any thread)."""
        return self._state

    def on_tick(self, ctx: ListenerContext, rows: np.ndarray, values: np.ndarray,
                events: Sequence[AlertEvent]) -> None:
        self._state = self.build(ctx.ts)

    def on_backfill(self, ctx: ListenerContext, ts: Sequence[float], values: Mapping[str, Sequence[float]]) -> None:
        return None

    def on_config(self, ctx: ListenerContext, config: Config) -> None:
        return None

    def on_campaigns(self, ctx: ListenerContext, campaigns: Sequence[CampaignConfig]) -> None:
        return None

    def on_forget(self, ctx: ListenerContext, names: Sequence[str]) -> None:
        return None

    def on_clock_step(self, ctx: ListenerContext, delta: float) -> None:
        return None

    def close(self) -> None:
        return None

    def build(self, now: float) -> ExportState:
        """Every series' latest value and score, campaign lift, load models, alerts, backlog and source health."""
        eng = self.engine
        names, last, is_stale = eng.current_values(now)
        n = len(names)
        analysis = eng.last_analysis
        values = last.tolist()
        scores = _padded(analysis.score if analysis is not None else None, n)
        expected = _padded(analysis.expected if analysis is not None else None, n)
        stale = is_stale.tolist()
        causes = {r: c.value for r, (c, _who) in analysis.cause.items()} if analysis is not None else {}
        series = [SeriesFigure(names[i], values[i], scores[i], expected[i], stale[i], causes.get(i))
                  for i in range(n) if names[i]]  # "": a freed row (an evicted series)
        campaigns = []
        models = []
        states = {c.name: c for c in analysis.campaigns} if analysis is not None else {}
        for c in eng.config.campaigns:
            st = states.get(c.name)
            active = (c.start is None or now >= c.start) and (c.end is None or now < c.end)
            campaigns.append(CampaignFigure(c.name, st.lift if st else None, active, c.expected_lift))
            for p in st.pairs if st else ():
                m = p.model
                if m is None:
                    continue
                cap = p.capacity
                head = cap.limit - p.expected_now if math.isfinite(cap.limit) else None
                models.append(LoadModelFigure(p.host, p.metric, c.name, m.slope, m.intercept, m.r2, p.lag_seconds,
                                              p.expected_now, head, cap.seconds_to_limit))
        alerts = [AlertFigure(a.rule.name, a.series, a.state_name, str(a.rule.severity), dict(a.rule.labels))
                  for a in eng.active_alerts()]
        if now - self._backlog_at >= BACKLOG_EVERY:
            self._backlog_at = now
            self._backlog = {b.sink: b.pending for b in eng.delivery_backlog()}
            self._dead = eng.dead_letters()
        up = {h.name: bool(h.ok and not h.stale(now)) for h in eng.source_health().values()}
        return ExportState(series, campaigns, models, alerts, dict(self._backlog), up, now, dict(self._dead),
                           eng.detector_name)


def _padded(arr: np.ndarray | None, n: int) -> list[float]:
    out = np.full(n, np.nan)
    if arr is not None:
        m = min(n, arr.shape[0])
        out[:m] = arr[:m]
    return out.tolist()
