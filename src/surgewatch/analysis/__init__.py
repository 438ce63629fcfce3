"""Analysis: pure numpy, no I/O — detectors, campaign correlation and capacity forecast."""

# Detector names, here so that the config and `--help` need no numpy import (built by registry.make_detector).
LIVE_DETECTORS = ("robust-z", "surge-level", "surge", "surge-context")  # what the engine can run on a live stream
DETECTOR_NAMES = ("surge", "surge-context", "surge-level", "robust-z", "null")  # `eval` also has NAB's null
# The one default, live and in `eval`: the best held-out NAB score here; sustained departures are held by the
# analyzer's episodes (analysis/episodes.py) so that alert for-durations see them.
DEFAULT_LIVE_DETECTOR = "surge-context"

# A campaign whose traffic is at least this multiple of its baseline is surging: the analyzer counts a launch from
# it, the recorder writes a campaign event, the dashboard highlights it. Here so that every layer shares one number.
LIFTED = 1.5
