"""Which series a config needs when nothing shows or keeps the others: the headless daemon without `[export]`
and without a recording only alerts, so a source need not read what no rule and no campaign analysis uses.

The series a config needs: every series a rule's glob matches, and every metric of a host that a campaign
(directly or through its host group) or a host group names (campaign and group analysis model several metrics
of those hosts). A host's cores count for its load floors (analysis/significance.py), so a needed load series
needs the cores too (sources/local.py reads them together).
"""

from __future__ import annotations

from collections.abc import Callable

from .config import Config
from .hostgroups import expand_groups
from .model import glob_match, series

Wanted = Callable[[str], bool]  # whether a series (by name) is needed


def needed_series(config: Config) -> Wanted | None:
    """The predicate of the series `config` needs, or None when every series is (a /metrics export or a
    recording shows all of them; campaign feeds may name any host later)."""
    if config.export.listen or config.monitor.record or config.campaign_feeds:
        return None  # (a feed's campaign may name any host at any time)
    globs = tuple(dict.fromkeys(r.series for r in config.rules))
    hosts = {h for c in config.campaigns for h in expand_groups(c.hosts, config.hosts)}
    hosts.update(h.name for h in config.hosts if h.group)
    prefixes = tuple(series("host", h, "") for h in hosts)

    def wanted(name: str) -> bool:
        return name.startswith(prefixes) or any(glob_match(g, name) for g in globs)

    return wanted


def needed_key(config: Config) -> tuple[object, ...]:
    """What needed_series depends on: sources are rebuilt when a reload changes it."""
    return (config.export.listen, config.monitor.record, bool(config.campaign_feeds),
            tuple(r.series for r in config.rules),
            tuple((c.name, tuple(c.hosts)) for c in config.campaigns),
            tuple((h.name, h.group) for h in config.hosts))
