"""Helpers shared by the tests and benchmarks: servers on loopback, fakes, scenario builders, the demo engine."""
