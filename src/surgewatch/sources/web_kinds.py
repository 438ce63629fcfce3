"""The [[traffic]] source kinds read over HTTP(S): json, plausible, umami, matomo, ga4, promql.

Each is an options dataclass (the keys it takes, see surgewatch.plugins), a build function that imports its
source module when called, and a Kind. Campaigns reach a build function as (name, utm_campaign) pairs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from .. import plugins as opt
from ..plugins import Endpoint, HttpOptions, Kind, OptionError, TlsConfig
from .base import SourceContext, TrafficConfig
from .traffic_kinds import window

if TYPE_CHECKING:
    from .base import Source


@dataclass(frozen=True, kw_only=True)
class JsonTrafficConfig(Endpoint, TrafficConfig):
    """Any JSON endpoint: `value` is the path to the visitor count, `items`/`key` split it by campaign."""

    source: str = "json"
    value: str = opt.string(required=True)
    items: str | None = opt.string()
    key: str | None = opt.string()


def _json(cfg: JsonTrafficConfig, ctx: SourceContext) -> Source:
    from .jsonapi import JsonTrafficSource

    return JsonTrafficSource(cfg.name, cfg.url, ctx.campaigns, ctx.interval, ctx.timeout, value=cfg.value,
                             items=cfg.items, key=cfg.key, headers=cfg.headers, tls=cfg.tls)


@dataclass(frozen=True, kw_only=True)
class AnalyticsConfig(HttpOptions, TrafficConfig):
    """The keys every web-analytics service takes: a site, where its API is, an API token."""

    site_id: str = opt.ident(required=True)
    url: str | None = opt.string()  # the service's own API by default (Cloud); a self-hosted server's URL
    token: str | None = opt.secret_header()
    window: float | None = window()

    def api(self) -> ApiArgs:
        """The keyword arguments every analytics source takes alike."""
        return {"token": self.token, "window": self.window, "headers": self.headers, "tls": self.tls}


class ApiArgs(TypedDict):
    token: str | None
    window: float | None
    headers: Mapping[str, str]
    tls: TlsConfig


@dataclass(frozen=True, kw_only=True)
class PlausibleConfig(AnalyticsConfig):
    """source = "plausible": Plausible's Stats API v2 (Cloud or self-hosted `url`)."""

    source: str = "plausible"
    goals: tuple[str, ...] = opt.str_list()  # campaign:C/conversions: its visitors who completed one of these


def _plausible(cfg: PlausibleConfig, ctx: SourceContext) -> Source:
    from .plausible import PlausibleSource

    return PlausibleSource(cfg.name, cfg.site_id, ctx.campaigns, ctx.interval, ctx.timeout, url=cfg.url,
                           goals=cfg.goals, **cfg.api())


@dataclass(frozen=True, kw_only=True)
class UmamiConfig(AnalyticsConfig):
    """Umami Cloud (`token`, an API key) or self-hosted (`url` with `username` and `password`)."""

    source: str = "umami"
    username: str | None = opt.string()
    password: str | None = opt.secret()

    def validate(self) -> None:
        if not self.token and not (self.username and self.password):
            raise OptionError(None, "source 'umami' needs token (Umami Cloud API key) or username and password")
        if not self.token and self.url is None:
            raise OptionError(None, "source 'umami' needs url when self-hosted (no token)")


def _umami(cfg: UmamiConfig, ctx: SourceContext) -> Source:
    from .umami import UmamiSource

    return UmamiSource(cfg.name, cfg.site_id, ctx.campaigns, ctx.interval, ctx.timeout, url=cfg.url,
                       username=cfg.username, password=cfg.password, **cfg.api())


@dataclass(frozen=True, kw_only=True)
class MatomoConfig(AnalyticsConfig):
    """source = "matomo": a self-hosted Matomo at `url`."""

    source: str = "matomo"
    url: str = opt.string(required=True)  # self-hosted: no default API
    goals: tuple[str, ...] = opt.str_list()  # ["*"]: campaign:C/conversions from visitsConverted


def _matomo(cfg: MatomoConfig, ctx: SourceContext) -> Source:
    from .matomo import MatomoSource

    return MatomoSource(cfg.name, cfg.url, cfg.site_id, ctx.campaigns, ctx.interval, ctx.timeout,
                        conversions=bool(cfg.goals), **cfg.api())


@dataclass(frozen=True, kw_only=True)
class GA4Config(AnalyticsConfig):
    """GA4's realtime API: `token` (an OAuth access token) or `credentials_file` (a service-account key)."""

    source: str = "ga4"
    credentials_file: str | None = opt.string()  # tokens are refreshed through google-auth

    def validate(self) -> None:
        if not self.token and not self.credentials_file:
            raise OptionError(None, "source 'ga4' needs token (OAuth access token) or "
                                    "credentials_file (service-account key)")
        if self.credentials_file is not None:
            from .ga4_auth import KeyFileError, load_key  # google-auth is imported only when used

            try:
                load_key(os.path.expanduser(self.credentials_file))
            except KeyFileError as exc:
                raise OptionError("credentials_file", f"credentials_file: {exc}") from None


def _ga4(cfg: GA4Config, ctx: SourceContext) -> Source:
    from .ga4 import GA4Source

    key_file = os.path.expanduser(cfg.credentials_file) if cfg.credentials_file else None
    return GA4Source(cfg.name, cfg.site_id, ctx.campaigns, ctx.interval, ctx.timeout, url=cfg.url,
                     credentials_file=key_file, **cfg.api())


@dataclass(frozen=True, kw_only=True)
class PromQLTrafficConfig(Endpoint, TrafficConfig):
    """Traffic from a PromQL query (a request rate); `campaign_label` splits it by utm_campaign value."""

    source: str = "promql"
    query: str = opt.string(required=True)
    campaign_label: str | None = opt.string()


def _promql(cfg: PromQLTrafficConfig, ctx: SourceContext) -> Source:
    from .traffic_promql import PromQLTrafficSource

    return PromQLTrafficSource(cfg.name, cfg.url, cfg.query, ctx.campaigns, ctx.interval, ctx.timeout,
                               campaign_label=cfg.campaign_label, headers=cfg.headers, tls=cfg.tls)


KINDS = [Kind("json", JsonTrafficConfig, _json), Kind("plausible", PlausibleConfig, _plausible),
         Kind("umami", UmamiConfig, _umami), Kind("matomo", MatomoConfig, _matomo), Kind("ga4", GA4Config, _ga4),
         Kind("promql", PromQLTrafficConfig, _promql)]
