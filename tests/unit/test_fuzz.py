"""Fuzz proof, fast part: hostile inputs to every parser a user's data reaches give one-line errors, never a crash.

Each target (tests/support/fuzz_targets.py) runs a modest number of hypothesis examples here; benchmarks/fuzz_bench.py
runs thousands and prints the table in the README's Reliability section.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.support.fuzz_targets import TARGETS, Target, close_http_fuzz, quiet_logs

# Modest counts keep this file near 15 s on the 2-core machine; the benchmark runs thousands.
EXAMPLES = {"config loader": 40, "Prometheus text": 15, "PromQL JSON": 15, "analytics JSON": 12,
            "access-log lines": 40, "CSV for analyze": 15, "recordings (replay, report)": 10}


@pytest.fixture(scope="module", autouse=True)
def _server() -> Iterator[None]:
    with quiet_logs():
        yield
    close_http_fuzz()


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_hostile_inputs_give_one_line_errors_never_a_crash(target: Target) -> None:
    @settings(max_examples=EXAMPLES[target.name], deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def check(example: Any) -> None:
        target.run(example)

    check()
