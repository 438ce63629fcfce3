"""The NAB scorer reproduces SCORING.md: the worked example, the sweep and the reference table (§7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from surgewatch.analysis.nab import (
    NO_DETECTION,
    PROFILES,
    LabelledFile,
    ScoredSet,
    file_raw_score,
    probation_length,
    row_table,
    scaled_sigmoid,
)

REFERENCE = Path(__file__).parents[1] / "data" / "nab" / "reference.npz"
STD = PROFILES["standard"]


def test_sigmoid_matches_the_documented_values() -> None:
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(0.986614, abs=1e-6)
    assert float(scaled_sigmoid(0.0)) == 0.0
    assert float(scaled_sigmoid(1.0)) == pytest.approx(-0.986614, abs=1e-6)
    assert float(scaled_sigmoid(3.0001)) == -1.0


def test_probation_is_fifteen_percent_capped_at_750() -> None:
    assert probation_length(100) == 15
    assert probation_length(4032) == 604
    assert probation_length(15902) == 750


def test_true_positive_value_is_one_at_window_start_and_about_quarter_at_end_of_ten_row_window() -> None:
    t = row_table(LabelledFile("f", 100, np.array([[40, 49]])))
    u = t.value[t.window == 0]
    assert u[0] == pytest.approx(1.0)
    assert u[-1] == pytest.approx(0.248, abs=1e-3)
    assert (t.value[t.window < 0][: 40 - 15] == -1.0).all()


def _worked_example() -> tuple[LabelledFile, np.ndarray]:
    f = LabelledFile("example", 100, np.array([[40, 49]]))
    det = np.zeros(100, dtype=bool)
    det[[10, 20, 45, 47, 60]] = True
    return f, det


@pytest.mark.parametrize(
    ("profile", "raw"),
    [("standard", 0.640279), ("reward_low_FP_rate", 0.420766), ("reward_low_FN_rate", 0.640279)],
)
def test_worked_example_raw_scores(profile: str, raw: float) -> None:
    f, det = _worked_example()
    assert file_raw_score(f, det, PROFILES[profile]) == pytest.approx(raw, abs=1e-6)
    tally = ScoredSet([f]).tally([det.astype(float)], PROFILES[profile], 0.5)
    assert tally.raw == pytest.approx(raw, abs=1e-6)


def test_worked_example_normalises_to_82_01() -> None:
    f, det = _worked_example()
    tally = ScoredSet([f]).tally([det.astype(float)], STD, 1.0)
    assert round(tally.normalised, 2) == 82.01
    assert (tally.detected, tally.missed, tally.false_positives) == (1, 0, 2)


def test_a_detector_that_never_fires_scores_zero_and_a_perfect_one_scores_hundred() -> None:
    files = [
        LabelledFile("a", 200, np.array([[50, 59], [120, 139]])),
        LabelledFile("b", 100, np.zeros((0, 2))),
    ]
    ss = ScoredSet(files)
    quiet = [np.zeros(200), np.zeros(100)]
    assert ss.optimise(quiet, STD).normalised == 0.0
    perfect = [np.zeros(200), np.zeros(100)]
    perfect[0][[50, 120]] = 1.0
    best = ss.optimise(perfect, STD)
    assert best.normalised == pytest.approx(100.0)
    assert best.threshold == 1.0


def test_sweep_equals_rescoring_every_candidate_threshold() -> None:
    rng = np.random.default_rng(7)
    files = [
        LabelledFile("a", 300, np.array([[10, 20], [100, 130], [200, 201]])),
        LabelledFile("b", 120, np.array([[60, 79]])),
        LabelledFile("c", 90, np.zeros((0, 2))),
    ]
    scores = [np.round(rng.random(f.n_rows), 2) for f in files]  # many ties
    ss = ScoredSet(files)
    for profile in PROFILES.values():
        thresholds, raws = ss.sweep(scores, profile)
        assert thresholds[0] == NO_DETECTION
        assert (np.diff(thresholds) < 0).all()
        for th, raw in zip(thresholds, raws, strict=True):
            direct = sum(file_raw_score(f, s >= th, profile) for f, s in zip(files, scores, strict=True))
            assert raw == pytest.approx(direct, abs=1e-9)


def test_ties_go_to_the_highest_threshold() -> None:
    f = LabelledFile("a", 100, np.array([[50, 59]]))
    s = np.zeros(100)
    s[50] = 0.9
    s[55] = 0.8  # later in the same window: adds nothing, costs nothing
    assert ScoredSet([f]).optimise([s], STD).threshold == 0.9


def test_a_file_with_every_score_above_threshold_detects_every_scored_row() -> None:
    f = LabelledFile("a", 100, np.array([[50, 59]]))
    tally = ScoredSet([f]).tally([np.full(100, 0.7)], STD, 0.5)
    assert tally.detected == 1
    assert tally.false_positives == 85 - 10


def test_scores_of_the_wrong_length_are_rejected() -> None:
    ss = ScoredSet([LabelledFile("a", 100, np.zeros((0, 2)))])
    with pytest.raises(ValueError, match="99 scores for 100 rows"):
        ss.sweep([np.zeros(99)], STD)


def test_overlapping_windows_are_rejected() -> None:
    with pytest.raises(ValueError, match="overlap"):
        LabelledFile("a", 100, np.array([[10, 20], [20, 30]]))


@pytest.fixture(scope="module")
def reference() -> tuple[ScoredSet, dict[str, list[np.ndarray]]]:
    ref = np.load(REFERENCE)
    n_rows, off, windows = ref["n_rows"], ref["win_offsets"], ref["windows"]
    files = [
        LabelledFile(str(name), int(n), windows[off[i] : off[i + 1]])
        for i, (name, n) in enumerate(zip(ref["names"], n_rows, strict=True))
    ]
    cuts = np.cumsum(n_rows)[:-1]
    scores = {det: np.split(ref[det], cuts) for det in ("ARTime", "numenta")}
    return ScoredSet(files), scores


# SCORING.md §7, first table: thresholds optimised on these 29 files.
EXPECTED = {
    ("ARTime", "standard"): (80.5060, 40.878020, 0.290523),
    ("ARTime", "reward_low_FP_rate"): (71.7736, 29.176686, 0.317585),
    ("ARTime", "reward_low_FN_rate"): (85.5115, 37.878020, 0.290523),
    ("numenta", "standard"): (73.0933, 30.945080, 0.543099145074),
    ("numenta", "reward_low_FP_rate"): (66.3245, 21.874764, 0.543099145074),
    ("numenta", "reward_low_FN_rate"): (77.0871, 20.945080, 0.543099145074),
}


@pytest.mark.parametrize(("detector", "profile"), sorted(EXPECTED))
def test_reference_detectors_score_as_published(
    reference: tuple[ScoredSet, dict[str, list[np.ndarray]]], detector: str, profile: str
) -> None:
    ss, scores = reference
    score, raw, threshold = EXPECTED[(detector, profile)]
    tally = ss.optimise(scores[detector], PROFILES[profile])
    assert round(tally.normalised, 2) == round(score, 2)
    assert tally.raw == pytest.approx(raw, abs=1e-6)
    assert tally.threshold == threshold


def test_reference_counts_and_null_score(reference: tuple[ScoredSet, dict[str, list[np.ndarray]]]) -> None:
    ss, scores = reference
    assert ss.n_windows == 67
    assert ss.null_raw(STD) == -67
    assert ss.null_raw(PROFILES["reward_low_FN_rate"]) == -134
    art = ss.optimise(scores["ARTime"], STD)
    num = ss.optimise(scores["numenta"], STD)
    assert (art.detected, art.false_positives) == (64, 113)
    assert (num.detected, num.false_positives) == (57, 87)
