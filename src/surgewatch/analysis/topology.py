"""Which rows drive which host rows, kept up to date as series come and go.

The analyzer's `Topology` follows from the campaign specs and the series names. A fleet with churn changes a few
names every few ticks; `TopologyKeeper` then updates the last topology for the rows whose names changed (into a new
object: last ticks' results keep theirs) and builds it from all names only at the start, when a campaign's own or
traffic row moved, or when the changes are no longer known. Either way the result is the same, dict order included
(the refit cadence staggers host rows in that order): host rows come in the order of the campaign host list entry
that first names their host, then by row. Pure Python, no I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .seriesrows import Parts, RowChange, SeriesRows
from .state import Topology

if TYPE_CHECKING:
    from .analyzer import CampaignSpec

ROW_BITS = 32  # an order key is (the place of the first campaign host list entry naming the host) << ROW_BITS | row


class TopologyKeeper:
    """The analyzer's topology, updated where names changed (see the module's docstring)."""

    def __init__(self, campaigns: Sequence[CampaignSpec], metrics: Sequence[str] | None) -> None:
        self.campaigns = list(campaigns)
        self.metrics = None if metrics is None else frozenset(metrics)
        self.incremental = True  # off: every change builds from all names (the same topology, at more cost)
        self.topo: Topology | None = None
        self._version = -1
        self._rows: tuple[list[int | None], list[int | None]] = ([], [])
        self._first: dict[str, int] = {}  # host name -> place of the first campaign host list entry naming it
        self._cis: dict[str, tuple[int, ...]] = {}  # host name -> campaigns landing on it (with their traffic row)
        self._order: list[int] = []  # order keys of the modelled host rows landed on, in topology order

    def update(self, rows: SeriesRows, index: Mapping[str, int]) -> tuple[Topology, list[int] | None]:
        """The topology now, and the rows whose parts or drivers may have changed (None: any row may have)."""
        campaign_rows = [index.get(c.series) for c in self.campaigns]
        driver_of = [index.get(c.traffic_series, cr) for c, cr in zip(self.campaigns, campaign_rows, strict=True)]
        same = self.topo is not None and (campaign_rows, driver_of) == self._rows
        if same and rows.version == self._version:
            assert self.topo is not None
            return self.topo, []
        changes = rows.changes_since(self._version) if same and self.incremental else None
        self._version = rows.version
        if changes is None:
            self._rows = (campaign_rows, driver_of)
            self.topo = self._build(rows, campaign_rows, driver_of)
            return self.topo, None
        self.topo = self._updated(rows, changes)
        return self.topo, sorted({c.row for c in changes})

    def _modelled(self, parts: Parts | None) -> bool:
        return parts is not None and parts[0] == "host" and (self.metrics is None or parts[2] in self.metrics)

    def _build(self, rows: SeriesRows, campaign_rows: list[int | None], driver_of: list[int | None]) -> Topology:
        host_of: dict[str, list[int]] = {}
        first: dict[str, int] = {}
        cis: dict[str, list[int]] = {}
        place = 0
        for ci, c in enumerate(self.campaigns):
            for h in c.hosts:
                host_of.setdefault(h, []).append(ci)
                if driver_of[ci] is not None:
                    first.setdefault(h, place)
                    cis.setdefault(h, []).append(ci)
                place += 1
        self._first, self._cis = first, {h: tuple(c) for h, c in cis.items()}
        parts = {r: p for r, p in enumerate(rows.parts) if self._modelled(p)}
        self._order = sorted(first[p[1]] << ROW_BITS | r for r, p in parts.items() if p[1] in first)
        host_drivers, host_campaigns = {}, {}
        mask = (1 << ROW_BITS) - 1
        for key in self._order:
            r = key & mask
            host_drivers[r], host_campaigns[r] = self._of(parts[r][1], driver_of)
        drivers = sorted({d for d in driver_of if d is not None})
        return Topology(len(rows.names), campaign_rows, driver_of, host_drivers, host_campaigns, host_of, drivers,
                        parts, [[h for h, cs in host_campaigns.items() if ci in cs]
                                for ci in range(len(self.campaigns))])

    def _of(self, host: str, driver_of: list[int | None]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """A landed-on host row's drivers and campaigns."""
        cis = self._cis[host]
        return tuple(sorted({d for ci in cis if (d := driver_of[ci]) is not None})), cis

    def _updated(self, rows: SeriesRows, changes: list[RowChange]) -> Topology:
        old = self.topo
        assert old is not None
        parts, host_drivers, host_campaigns = dict(old.parts), dict(old.host_drivers), dict(old.host_campaigns)
        campaign_hosts = [list(hs) for hs in old.campaign_hosts]
        order, first = self._order, self._first
        appended = True  # every row added went to the end of the order: the dicts keep theirs
        for c in changes:
            r = c.row
            was = parts.pop(r, None)
            if was is not None and was[1] in first:
                del order[bisect.bisect_left(order, first[was[1]] << ROW_BITS | r)]
                del host_drivers[r]
                for ci in dict.fromkeys(host_campaigns.pop(r)):
                    campaign_hosts[ci].remove(r)
            now = rows.parts[r]
            if not self._modelled(now):
                continue
            parts[r] = now
            if now[1] not in first:
                continue
            key = first[now[1]] << ROW_BITS | r
            at = bisect.bisect_left(order, key)
            appended &= at == len(order)
            order.insert(at, key)
            host_drivers[r], host_campaigns[r] = self._of(now[1], old.driver_of)
            for ci in dict.fromkeys(host_campaigns[r]):
                hs = campaign_hosts[ci]
                hs.insert(bisect.bisect_left(hs, key, key=lambda h: first[parts[h][1]] << ROW_BITS | h), r)
        if not appended:
            mask = (1 << ROW_BITS) - 1
            host_drivers = {key & mask: host_drivers[key & mask] for key in order}
            host_campaigns = {key & mask: host_campaigns[key & mask] for key in order}
        return Topology(len(rows.names), old.campaign_rows, old.driver_of, host_drivers, host_campaigns, old.host_of,
                        old.drivers, parts, campaign_hosts)
