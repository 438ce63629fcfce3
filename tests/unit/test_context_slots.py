"""The context detector's slot table gives exactly the slots it would hash on every tick."""

from __future__ import annotations

import numpy as np
import pytest

from surgewatch.analysis.context import ContextDetector


@pytest.mark.parametrize("kwargs", [{}, {"orders": (0, 1, 3), "levels": 5}, {"orders": (2,), "levels": 3}])
def test_context_scores_and_counts_are_the_same_with_or_without_the_slot_table(
        kwargs: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(300, 200))
    data[:, :10] = 3.0  # constant series
    data[rng.random(data.shape) < 0.05] = np.nan
    looked_up = ContextDetector(**kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(ContextDetector, "MAX_SLOT_TABLE", 0)
    hashed = ContextDetector(**kwargs)  # type: ignore[arg-type]
    for x in data:
        assert np.array_equal(looked_up.update(x).score, hashed.update(x).score, equal_nan=True)
    assert np.array_equal(looked_up.counts, hashed.counts)
    assert looked_up.counts.any()


def test_context_counts_do_not_move_on_missing_samples() -> None:
    det = ContextDetector()
    rng = np.random.default_rng(2)
    for _ in range(50):
        det.update(rng.normal(size=20))
    before = det.counts.copy()
    x = rng.normal(size=20)
    x[[3, 7]] = np.nan
    det.update(x)
    assert np.array_equal(det.counts[[3, 7]], before[[3, 7]])
    assert (det.counts[0] >= before[0]).all() and det.counts[0].sum() > before[0].sum()
