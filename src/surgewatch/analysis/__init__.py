"""Analysis: pure numpy, no I/O — detectors, campaign correlation and capacity forecast."""
