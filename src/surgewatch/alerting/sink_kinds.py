"""The [[sink]] kinds: stdout, file, webhook, slack, alertmanager, command, bell (see surgewatch.plugins).

SinkConfig holds the keys every [[sink]] takes; each kind's options extend it. Build functions import
surgewatch.alerting.sinks when called, so reading a config stays cheap. A kind is added by appending its
Kind to KINDS (surgewatch.registry names this module).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import plugins as opt
from ..model import Severity
from ..plugins import Endpoint, Kind, OptionError

if TYPE_CHECKING:
    from .sinks import Sink

_HTTP_URL = re.compile(r"^https?://[^/?#\s]+")


@dataclass(frozen=True, kw_only=True)
class SinkConfig:
    """The keys every [[sink]] table takes (stdout and bell take no others)."""

    kind: str
    min_severity: Severity = opt.option(lambda r, k: r.severity(k, Severity.INFO), default=Severity.INFO)

    def validate(self) -> None:
        """Raise plugins.OptionError when the keys are wrong together (a kind overrides it)."""

    def delivers_to(self) -> tuple[str, str, tuple[str, ...]]:
        """(url, path, command) this sink delivers to, "" / () where it has none: its outbox id hashes them."""
        return "", "", ()


def _stdout(cfg: SinkConfig, ctx: None) -> Sink:
    from .sinks import StdoutSink

    return StdoutSink(cfg.min_severity)


def _bell(cfg: SinkConfig, ctx: None) -> Sink:
    from .sinks import BellSink

    return BellSink(cfg.min_severity)


@dataclass(frozen=True, kw_only=True)
class FileSinkConfig(SinkConfig):
    """kind = "file": JSON lines appended to `path`."""

    kind: str = "file"
    path: str = opt.string(required=True)

    def delivers_to(self) -> tuple[str, str, tuple[str, ...]]:
        return "", self.path, ()


def _file(cfg: FileSinkConfig, ctx: None) -> Sink:
    from .sinks import FileSink

    return FileSink(cfg.path, cfg.min_severity)


@dataclass(frozen=True, kw_only=True)
class CommandSinkConfig(SinkConfig):
    """kind = "command": each alert's JSON on the stdin of `command`, killed after `timeout`."""

    kind: str = "command"
    command: tuple[str, ...] = opt.str_list()
    timeout: float = opt.duration(5.0, minimum=0.01)

    def validate(self) -> None:
        if not self.command:
            raise OptionError("command", "command must be a non-empty list of strings")

    def delivers_to(self) -> tuple[str, str, tuple[str, ...]]:
        return "", "", self.command


def _command(cfg: CommandSinkConfig, ctx: None) -> Sink:
    from .sinks import CommandSink

    return CommandSink(cfg.command, cfg.timeout, cfg.min_severity)


@dataclass(frozen=True, kw_only=True)
class HttpSinkConfig(Endpoint, SinkConfig):
    """A sink that POSTs: webhook, slack, alertmanager. HTTP(S)_PROXY from the environment is never used."""

    timeout: float = opt.duration(5.0, minimum=0.01)
    proxy: str | None = opt.string()

    def validate(self) -> None:
        if self.proxy is not None and not _HTTP_URL.match(self.proxy):
            raise OptionError("proxy", "proxy must start with http:// or https:// and name a host")
        if not _HTTP_URL.match(self.url):
            raise OptionError("url", "url must start with http:// or https:// and name a host")

    def delivers_to(self) -> tuple[str, str, tuple[str, ...]]:
        return self.url, "", ()


def _webhook(cfg: HttpSinkConfig, ctx: None) -> Sink:
    from .sinks import WebhookSink

    return WebhookSink(cfg.url, dict(cfg.headers), cfg.timeout, cfg.min_severity, tls=cfg.tls, proxy=cfg.proxy)


def _slack(cfg: HttpSinkConfig, ctx: None) -> Sink:
    from .sinks import SlackSink

    return SlackSink(cfg.url, dict(cfg.headers), cfg.timeout, cfg.min_severity, tls=cfg.tls, proxy=cfg.proxy)


def _alertmanager(cfg: HttpSinkConfig, ctx: None) -> Sink:
    from .sinks import AlertmanagerSink

    return AlertmanagerSink(cfg.url, dict(cfg.headers), cfg.timeout, cfg.min_severity, tls=cfg.tls,
                            proxy=cfg.proxy)


KINDS = [Kind("stdout", SinkConfig, _stdout), Kind("file", FileSinkConfig, _file),
         Kind("webhook", HttpSinkConfig, _webhook), Kind("slack", HttpSinkConfig, _slack),
         Kind("alertmanager", HttpSinkConfig, _alertmanager), Kind("command", CommandSinkConfig, _command),
         Kind("bell", SinkConfig, _bell)]
