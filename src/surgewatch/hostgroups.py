"""Host groups: the hosts behind one balancer, named so that analysis and screens can treat them as one.

A host's group comes from, in order:
1. the group label of the fleet source that reports it (`[[host]] source = "promql"`, `group_label = "job"`:
   each series' `job` label value is its host's group; the source passes them in `Reading.details["groups"]`);
2. the `group` key of the `[[host]]` table whose source reports it (for a fleet source: every host it reports).

A host with neither has no group (None). Snapshots carry each host's group in `HostView.group`; `by_group`
groups a snapshot's hosts for screens and analysis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

from .config import HostConfig


class _Grouped(Protocol):
    @property
    def group(self) -> str | None: ...


G = TypeVar("G", bound=_Grouped)


class HostGroups:
    """Answers "which group is this host in?" from the config and what fleet sources report."""

    def __init__(self, hosts: Iterable[HostConfig]) -> None:
        self._by_source = {f"host:{h.name}": h.group for h in hosts if h.group}

    def group_of(self, host: str, source: str | None = None, details: Mapping[str, Any] | None = None) -> str | None:
        """The group of `host`, reported by the source named `source` (e.g. "host:fleet") with these details."""
        reported = details.get("groups") if details else None
        if isinstance(reported, Mapping):
            group = reported.get(host)
            if isinstance(group, str) and group:
                return group
        return self._by_source.get(source or f"host:{host}")

    @property
    def configured(self) -> bool:
        """True when any host table names a group (a fleet's label-given groups are known only once polled)."""
        return bool(self._by_source)


def by_group(hosts: Iterable[G]) -> dict[str | None, list[G]]:
    """Hosts (anything with a `group`) keyed by group, groups in first-seen order; None holds ungrouped hosts."""
    out: dict[str | None, list[G]] = {}
    for h in hosts:
        out.setdefault(h.group, []).append(h)
    return out


def expand_groups(names: Iterable[str], hosts: Iterable[HostConfig]) -> tuple[str, ...]:
    """A campaign's `hosts` with each group name followed by the [[host]] names in that group (the group name is
    kept: a fleet source's hosts in that group are known only once polled)."""
    members: dict[str, list[str]] = {}
    for h in hosts:
        if h.group:
            members.setdefault(h.group, []).append(h.name)
    out: list[str] = []
    for n in names:
        for m in (n, *members.get(n, ())):
            if m not in out:
                out.append(m)
    return tuple(out)
