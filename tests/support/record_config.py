"""The recording tests' config, shared with the recording helpers."""

from __future__ import annotations

CONFIG = """
[monitor]
interval = "1s"
history = "1h"

[[host]]
name = "web-1"
source = "prometheus"
url = "http://127.0.0.1:9/metrics"

[[rule]]
name = "cpu-high"
series = "host:*/cpu.percent"
above = 90
for = "2s"
severity = "critical"
"""
