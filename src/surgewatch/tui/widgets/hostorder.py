"""The host grid's order at fleet scale: worst first (or by anomaly score, headroom, CPU, name), optionally in
groups (host group or campaign) under a header row with the group's worst host and median CPU, and the filter
(a substring, or a glob when it has `*`, `?` or `[`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable, Sequence
from fnmatch import fnmatchcase

from ...hostgroups import by_group
from ...snapshot import HostView
from .hosts import GroupRow, Row, health

NO_GROUP = {"group": "no group", "campaign": "no campaign"}
_RANK = {"crit": 0, "stale": 1, "warn": 2, "ok": 3}


def matcher(text: str) -> Callable[[str], bool]:
    """Case-insensitive: a glob when `text` has `*`, `?` or `[`, else a substring; everything when empty."""
    f = text.strip().lower()
    if not f:
        return lambda _s: True
    if any(ch in f for ch in "*?["):
        return lambda s: fnmatchcase(s.lower(), f)
    return lambda s: f in s.lower()


def anomaly(h: HostView) -> float:
    """The host's highest anomaly score over its metrics (0 without any)."""
    top = max(h.scores.values(), default=0.0)  # NaN only when the first is NaN (NaN never compares greater)
    return top if not math.isnan(top) else max((s for s in h.scores.values() if not math.isnan(s)), default=0.0)


def _nan_last(v: float, sign: float) -> float:
    return math.inf if math.isnan(v) else sign * v


def sort_key(sort: str) -> Callable[[HostView], tuple[float | str, ...]]:
    """Ascending key for an order: the host to look at first sorts first (sorting is stable: ties keep the
    snapshot's order)."""
    def cpu(h: HostView) -> float:
        return h.metrics.get("cpu.percent", math.nan)

    if sort == "anomaly":
        return lambda h: (-anomaly(h), _RANK[health(h)])
    if sort == "headroom":
        return lambda h: (_nan_last(h.headroom, 1.0), _RANK[health(h)])
    if sort == "cpu":
        return lambda h: (_nan_last(cpu(h), -1.0),)
    if sort == "name":
        return lambda h: (h.name,)
    # worst: crit, stale, warn, ok; then the most anomalous, the least headroom, the busiest CPU
    return lambda h: (_RANK[health(h)], -round(anomaly(h), 1), _nan_last(h.headroom, 1.0),
                      _nan_last(cpu(h), -1.0))


def kept_in_order(ordered: Sequence[HostView], keep: Callable[[HostView], bool] | None) -> list[HostView]:
    """The hosts of `ordered` (already in a sort order) that `keep` lets through, in that order: the same list as
    sorting the kept hosts (a stable sort: ties stay in the hosts' order, which keeping does not change)."""
    return list(ordered) if keep is None else [h for h in ordered if keep(h)]


def order_hosts(hosts: Iterable[HostView], sort: str) -> list[HostView]:
    return sorted(hosts, key=sort_key(sort))


def group_of(h: HostView, by: str) -> str | None:
    """The group a host is listed under: its host group, or its first campaign."""
    if by == "campaign":
        return h.campaigns[0] if h.campaigns else None
    return h.group


def groupings_available(hosts: Sequence[HostView]) -> list[str]:
    """`none`, then `group` when any host has a host group, `campaign` when any host serves a campaign."""
    out = ["none"]
    if any(h.group for h in hosts):
        out.append("group")
    if any(h.campaigns for h in hosts):
        out.append("campaign")
    return out


def median_cpu(hosts: Iterable[HostView]) -> float:
    """The median CPU of some hosts (NaN when none reports one); no `statistics` import on the start-up path."""
    cpus = sorted(v for h in hosts if (v := h.metrics.get("cpu.percent", math.nan)) == v)
    n, mid = len(cpus), len(cpus) // 2
    return math.nan if not n else cpus[mid] if n % 2 else (cpus[mid - 1] + cpus[mid]) / 2


def grouped(hosts: Sequence[HostView], sort: str, by: str,
            key: Callable[[HostView], tuple[float | str, ...]] | None = None
            ) -> list[tuple[str | None, list[HostView]]]:
    """Hosts in groups, each group's hosts in `sort` order (`key`: its sort key, when already known), the
    groups by their first host (the worst group first when sorting by worst), hosts without a group last."""
    if by == "campaign":
        groups: dict[str | None, list[HostView]] = {}
        for h in hosts:
            groups.setdefault(group_of(h, by), []).append(h)
    else:
        groups = dict(by_group(hosts))
    key = key or sort_key(sort)
    parts = [(name, sorted(members, key=key)) for name, members in groups.items()]
    return sorted(parts, key=lambda p: (p[0] is None, key(p[1][0]), p[0] or ""))


def host_rows(hosts: Sequence[HostView], sort: str, by: str = "none",
              collapsed: frozenset[str] = frozenset()) -> list[Row]:
    """The grid's rows: hosts in `sort` order, or under group header rows (a collapsed group shows its header)."""
    return finish(host_row_steps(hosts, sort, by, collapsed))


def finish(steps: Generator[None, None, list[Row]]) -> list[Row]:
    """Run `host_row_steps` to the end at once."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def host_row_steps(hosts: Sequence[HostView], sort: str, by: str = "none",
                   collapsed: frozenset[str] = frozenset(), step: int = 0) -> Generator[None, None, list[Row]]:
    """`host_rows`, yielding after every `step` hosts' sort keys (0: never), so that a caller can let keys
    be handled in between; its value (StopIteration) is the rows. Each host's sort keys are worked out once
    (at 1,000 hosts they are most of the cost)."""
    own = sort_key(sort)
    worst = own if sort == "worst" else sort_key("worst")
    keys: list[tuple[float | str, ...]] = []
    worst_keys: list[tuple[float | str, ...]] = []
    size = step or max(1, len(hosts))
    for start in range(0, len(hosts), size):
        chunk = hosts[start:start + size]
        keys.extend(map(own, chunk))
        if by != "none" and worst is not own:
            worst_keys.extend(map(worst, chunk))
        if step:
            yield  # after the last slice too: the sort below is a step of its own
    if by == "none":
        return [hosts[i] for i in sorted(range(len(hosts)), key=keys.__getitem__)]
    key_of = {id(h): k for h, k in zip(hosts, keys, strict=True)}
    worst_of = key_of if worst is own else {id(h): k for h, k in zip(hosts, worst_keys, strict=True)}
    ok = _RANK["ok"]
    rows: list[Row] = []
    for name, members in grouped(hosts, sort, by, lambda h: key_of[id(h)]):
        label = name if name is not None else NO_GROUP.get(by, "none")
        shut = label in collapsed
        problems = sum(1 for h in members if worst_of[id(h)][0] != ok)  # the worst key starts with the health
        rows.append(GroupRow(label, len(members), min(members, key=lambda h: worst_of[id(h)]) if members else None,
                             median_cpu(members), problems, shut))
        if not shut:
            rows.extend(members)
    return rows


def worst_group(hosts: Sequence[HostView]) -> tuple[str, list[HostView]] | None:
    """The host group whose worst host is worst (its hosts worst first); None when no host has a group."""
    for name, members in grouped(hosts, "worst", "group"):
        if name is not None:
            return name, members
    return None
