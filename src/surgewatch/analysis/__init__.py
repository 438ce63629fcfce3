"""Analysis: pure numpy, no I/O — detectors, campaign correlation and capacity forecast."""

# Detector names, here so that the config and `--help` need no numpy import (built by detectors.make_detector).
LIVE_DETECTORS = ("robust-z", "surge-level", "surge", "surge-context")  # what the engine can run on a live stream
DETECTOR_NAMES = ("surge", "surge-context", "surge-level", "robust-z", "null")  # `eval` also has NAB's null
DEFAULT_LIVE_DETECTOR = "robust-z"  # rolling median/MAD: sustained shifts stay anomalous while the window holds them
