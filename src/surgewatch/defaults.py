"""The built-in default: this host through psutil, plus a clearly labelled DEMO host and campaign."""

from __future__ import annotations

from .config import Config, load_config, parse_config

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


def resolve_config(path: str | None, demo_speed: float = 1.0) -> Config:
    """Load `path`, or the built-in default when it is None (raises ConfigError)."""
    return default_config(demo_speed) if path is None else load_config(path)
