"""Which rows are in which host group, and which campaign lands on which group, kept up to date as hosts come and go.

The group models (groupmodels.py) work on a padded [group-metric, hosts] matrix of member rows and on campaign ×
group-metric entries. A fleet with churn gains or loses a host every few ticks: `LayoutKeeper` then moves the rows
whose names (or whose host's group) changed between the member lists and assembles the arrays from those lists,
re-reading only the group-metrics that changed; it starts from all names at the start, when a campaign's traffic row
moved, or when the changes are no longer known. Either way the layout is the same. Pure Python and numpy, no I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .seriesrows import SeriesRows

if TYPE_CHECKING:
    from .analyzer import CampaignSpec

GroupMetric = tuple[str, str]


@dataclass
class GroupLayout:
    """The grouped rows at one tick (see groupmodels.py)."""

    size: int
    gm: list[GroupMetric]  # (group, metric)
    pad: np.ndarray  # [GM, maxH] member rows, -1 padding
    rows: np.ndarray  # member rows, flat
    row_gm: np.ndarray  # gm index of each member row
    hosts: list[str]  # host name of each member row
    # campaign × group × metric entries
    cg: list[tuple[int, int]]  # (campaign index, gm index)
    cg_driver: np.ndarray  # driver (traffic) row of each entry
    cg_rows: np.ndarray  # member rows of each entry, concatenated in entry order
    cg_starts: np.ndarray  # where each entry's rows start in cg_rows
    cg_limit: np.ndarray  # the metric's saturation level (NaN: none)
    gm_campaigns: list[list[int]]  # per gm: its entries
    traffic_rows: list[tuple[int | None, int | None]]  # per campaign: (its own visitors row, its site's row)
    pos: dict[int, int]  # member row -> its index in `rows`
    gm_row: np.ndarray  # per group-metric: one member row (whose kind, floor and cores stand for the group's)
    gm_size: np.ndarray  # per group-metric: its member rows
    whole: np.ndarray  # per entry: the campaign lands on the whole group (its mean is the group's)


def empty_layout(size: int) -> GroupLayout:
    """No grouped rows."""
    z = np.zeros(0, dtype=np.intp)
    return GroupLayout(size, [], np.zeros((0, 1), dtype=np.intp), z, z, [], [], z, z, z, np.zeros(0), [], [], {}, z,
                       z, np.zeros(0, dtype=bool))


class LayoutKeeper:
    """The group layout, updated where names or groups changed (see the module's docstring)."""

    def __init__(self, campaigns: Sequence[CampaignSpec], metrics: frozenset[str] | None,
                 limits: Mapping[str, float]) -> None:
        self.campaigns = list(campaigns)
        self.metrics = metrics
        self.limits = limits
        self.incremental = True  # off: every change builds from all names (the same layout, at more cost)
        self.layout: GroupLayout | None = None
        self._version = -1
        self._groups: dict[str, str] = {}
        self._campaign_rows: tuple[list[int | None], list[tuple[int | None, int | None]]] = ([], [])
        self._lands = [frozenset(c.hosts) for c in self.campaigns]
        self._members: dict[GroupMetric, list[int]] = {}  # member rows by row
        self._key: dict[int, GroupMetric] = {}  # member row -> its group-metric
        self._host_rows: dict[str, set[int]] = {}  # host -> its rows of a modelled metric, grouped or not
        self._host: dict[int, str] = {}  # the other way round
        # per group-metric, re-read when it changed: its rows and hosts, and the rows each campaign lands on
        self._read: dict[GroupMetric, tuple[np.ndarray, list[str], list[np.ndarray]]] = {}

    def update(self, rows: SeriesRows, index: Mapping[str, int], groups: Mapping[str, str]) -> GroupLayout:
        """The layout now (the same object when nothing it depends on changed)."""
        drivers = [index.get(c.traffic_series, index.get(c.series)) for c in self.campaigns]
        traffic = [(index.get(c.series), index.get(c.traffic_series)) for c in self.campaigns]
        same = self.layout is not None and (drivers, traffic) == self._campaign_rows
        if same and rows.version == self._version and groups == self._groups:
            assert self.layout is not None
            return self.layout
        changes = rows.changes_since(self._version) if same and self.incremental else None
        self._version = rows.version
        if changes is None:
            self._campaign_rows, self._groups = (drivers, traffic), dict(groups)
            self._members, self._key, self._host_rows, self._host, self._read = {}, {}, {}, {}, {}
            for r in range(len(rows.parts)):
                self._place(rows, r)
        else:
            again = {c.row for c in changes}
            if groups != self._groups:
                moved = {h for h in self._groups.keys() | groups.keys() if self._groups.get(h) != groups.get(h)}
                self._groups = dict(groups)
                for h in moved:
                    again.update(self._host_rows.get(h, ()))
            for r in sorted(again):
                self._place(rows, r)
        self.layout = self._assemble(rows, drivers, traffic)
        return self.layout

    def _place(self, rows: SeriesRows, r: int) -> None:
        """Move row r to the member list its name and its host's group now put it in (or out of all)."""
        old = self._key.pop(r, None)
        if old is not None:
            members = self._members[old]
            del members[bisect.bisect_left(members, r)]
            self._read.pop(old, None)
        was = self._host.pop(r, None)
        if was is not None:
            held = self._host_rows[was]
            held.discard(r)
            if not held:
                del self._host_rows[was]
        kind, host, metric = rows.parts[r]
        if kind != "host" or (self.metrics is not None and metric not in self.metrics):
            return
        self._host_rows.setdefault(host, set()).add(r)
        self._host[r] = host
        group = self._groups.get(host)
        if group is None:
            return
        key = (group, metric)
        bisect.insort(self._members.setdefault(key, []), r)
        self._key[r] = key
        self._read.pop(key, None)

    def _read_gm(self, rows: SeriesRows, key: GroupMetric) -> tuple[np.ndarray, list[str], list[np.ndarray]]:
        got = self._read.get(key)
        if got is None:
            members = self._members[key]
            hosts = [rows.parts[r][1] for r in members]
            group = key[0]
            mine = [np.array(members if group in land else [r for r, h in zip(members, hosts, strict=True)
                                                            if h in land], dtype=np.intp)
                    for land in self._lands]
            got = self._read[key] = (np.array(members, dtype=np.intp), hosts, mine)
        return got

    def _assemble(self, rows: SeriesRows, drivers: list[int | None],
                  traffic: list[tuple[int | None, int | None]]) -> GroupLayout:
        for key in [k for k, v in self._members.items() if not v]:
            del self._members[key]
        if not self._members:
            return empty_layout(len(rows.names))
        gm = sorted(self._members)
        read = [self._read_gm(rows, key) for key in gm]
        sizes = np.array([r[0].shape[0] for r in read], dtype=np.intp)
        pad = np.full((len(gm), int(sizes.max())), -1, dtype=np.intp)
        for g, (members, _hosts, _mine) in enumerate(read):
            pad[g, : members.shape[0]] = members
        flat = np.concatenate([r[0] for r in read])
        hosts = [h for r in read for h in r[1]]
        cg: list[tuple[int, int]] = []
        cg_driver: list[int] = []
        parts: list[np.ndarray] = []
        starts: list[int] = []
        whole: list[bool] = []
        gm_campaigns: list[list[int]] = [[] for _ in gm]
        at = 0
        for ci, driver in enumerate(drivers):
            if driver is None:
                continue
            for g, (_members, _hosts, mine) in enumerate(read):
                land = mine[ci]
                if not land.shape[0]:
                    continue
                gm_campaigns[g].append(len(cg))
                cg.append((ci, g))
                cg_driver.append(driver)
                starts.append(at)
                parts.append(land)
                at += land.shape[0]
                whole.append(bool(land.shape[0] == sizes[g]))
        limit = np.array([self.limits.get(gm[g][1], np.nan) for _ci, g in cg], dtype=np.float64)
        return GroupLayout(len(rows.names), gm, pad, flat, np.repeat(np.arange(len(gm), dtype=np.intp), sizes),
                           hosts, cg, np.array(cg_driver, dtype=np.intp),
                           np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp),
                           np.array(starts, dtype=np.intp), limit, gm_campaigns, traffic,
                           dict(zip(flat.tolist(), range(flat.shape[0]), strict=True)), pad[:, 0].copy(), sizes,
                           np.array(whole, dtype=bool))
