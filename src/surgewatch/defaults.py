"""The built-in default: this host through psutil, plus a clearly labelled DEMO host and campaign."""

from __future__ import annotations

import dataclasses

from .config import Config, ConfigError, load_config, parse_config

_record_path: str | None = None  # `--record FILE`, set by the command line for the frontend it starts

DEFAULT_TOML = """
[monitor]
interval = "{interval}"
history = "6h"

[[host]]
name = "local"
source = "local"

[[host]]
name = "demo-web"
source = "demo"

[[traffic]]
name = "demo-site"
source = "demo"

[[campaign]]
name = "demo-launch"
traffic = "demo-site"
utm_campaign = "demo_launch"
hosts = ["demo-web"]
expected_lift = 4.0

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
clear = 80
for = "{for_cpu}"
severity = "critical"

[[rule]]
name = "memory-high"
series = "host:*/mem.percent"
above = 90
clear = 85
for = "{for_mem}"
severity = "warning"

[[rule]]
name = "unexplained-load"
series = "host:*/cpu.percent"
anomaly = "unexplained"
for = "{for_anomaly}"
severity = "warning"

[[rule]]
name = "campaign-surge"
series = "campaign:*/visitors"
anomaly = "any"
severity = "info"

[[sink]]
kind = "stdout"
"""


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def default_config(demo_speed: float = 1.0) -> Config:
    """The config used when no --config is given.

    With `--demo-speed N` the demo plays in scenario time, N times faster: the tick and the rules'
    for-durations shrink with it (the tick no lower than 250 ms), so the story fits in a minute.
    """
    speed = max(1.0, demo_speed)
    interval = max(0.25, 2.0 / speed)
    text = DEFAULT_TOML.format(interval=_ms(interval), for_cpu=_ms(max(interval, 30 / speed)),
                               for_mem=_ms(max(interval, 60 / speed)), for_anomaly=_ms(max(interval, 10 / speed)))
    return parse_config(text, "<built-in default>")


def set_record_path(path: str | None) -> None:
    """Make every config resolved from now on record to `path` (`--record FILE` beats `[monitor] record`)."""
    global _record_path
    _record_path = path


def resolve_config(path: str | None, demo_speed: float = 1.0) -> Config:
    """Load `path`, or the built-in default when it is None (raises ConfigError)."""
    config = default_config(demo_speed) if path is None else load_config(path)
    if _record_path:
        config = dataclasses.replace(config, monitor=dataclasses.replace(config.monitor, record=_record_path))
    if config.monitor.record:
        from .recording.writer import RecordingError, check_target

        try:
            check_target(config.monitor.record)
        except RecordingError as exc:
            raise ConfigError(str(exc)) from None
    return config
