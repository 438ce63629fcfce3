"""Detectors by name: the one module that knows every detector family (detectors.py's robust z, streaming.py's
surge family) and the window a detector gets for a tick length. Kept apart from both so that neither imports
the other back (streaming.py builds on detectors.py's types)."""

from __future__ import annotations

from .detectors import DETECTORS, RollingRobustZ, StreamingDetector


def detector_window(tick_seconds: float) -> int:
    """The window (in ticks) of the engine's detector: about 15 minutes, 60 to 900 ticks."""
    return int(min(900, max(60, 900 / tick_seconds)))


def detector_names() -> list[str]:
    """Every detector the engine and `eval` can build."""
    from .streaming import DETECTORS as SURGE

    return sorted([*DETECTORS, *SURGE])


def make_detector(name: str = "robust-z", tick_seconds: float = 1.0, **kwargs: float) -> StreamingDetector:
    """The detector registered under `name`, set up for a tick of `tick_seconds`."""
    if name.startswith("surge"):
        from .streaming import make_streaming_detector

        return make_streaming_detector(name, season=max(1, round(86400 / tick_seconds)))
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r} (available: {', '.join(sorted(DETECTORS))})") from None
    if cls is RollingRobustZ and "refresh" not in kwargs:  # long windows: refresh stats on a stagger
        kwargs["refresh"] = max(1, int(kwargs.get("window", 450)) // 300)
    det: StreamingDetector = cls(**kwargs)
    return det
