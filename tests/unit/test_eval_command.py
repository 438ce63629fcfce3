"""`surgewatch eval`: NAB-format results, score tables and one-line errors on bad input."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from surgewatch import evaluate
from surgewatch.analysis.nab import PROFILES
from surgewatch.cli import COMMANDS
from surgewatch.evaluate import (
    DEFAULT_DETECTOR,
    DETECTOR_NAMES,
    load_dataset,
    read_result_scores,
    run_detector,
    scored_set,
)

START = np.datetime64("2024-01-01T00:00:00")


def main(argv: list[str]) -> int:
    """`surgewatch eval ...` through the module's own parser (other commands' imports stay out of it)."""
    assert argv[0] == "eval"
    parser = argparse.ArgumentParser(prog="surgewatch eval")
    evaluate.add_arguments(parser)
    return evaluate.run(parser.parse_args(argv[1:]))


def test_eval_is_a_registered_subcommand() -> None:
    assert ("eval", "surgewatch.evaluate") in [(name, module) for name, module, _ in COMMANDS]


def write_series(path: Path, values: np.ndarray, step_min: int = 5) -> list[str]:
    """Write a timestamp,value CSV; return its timestamps as written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ts = [str(START + np.timedelta64(i * step_min, "m")).replace("T", " ") for i in range(len(values))]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("timestamp", "value"))
        w.writerows(zip(ts, (f"{v:.4f}" for v in values), strict=True))
    return ts


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """Two categories, three files of 400 rows: two with a labelled spike, one quiet."""
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    labels: dict[str, list[list[str]]] = {}
    for key, spike in (("cat-a/one.csv", 300), ("cat-a/two.csv", 250), ("cat-b/quiet.csv", None)):
        x = 50 + rng.normal(0, 1, 400)
        if spike is not None:
            x[spike] += 25
        ts = write_series(data / key, x)
        labels[key] = [] if spike is None else [[ts[spike - 10] + ".000000", ts[spike + 10] + ".000000"]]
    lab = tmp_path / "labels.json"
    lab.write_text(json.dumps(labels))
    return data, lab


def test_eval_writes_nab_result_files_and_prints_a_table_per_profile(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = dataset
    out = tmp_path / "results"
    assert main(["eval", str(data), str(labels), "--results", str(out)]) == 0
    text = capsys.readouterr().out
    for profile in PROFILES:
        assert f"profile {profile}" in text
    assert "cat-a" in text and "cat-b" in text and "overall" in text
    result = out / DEFAULT_DETECTOR / "cat-a" / f"{DEFAULT_DETECTOR}_one.csv"
    with result.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "value", "anomaly_score"]
    assert len(rows) == 401
    with (data / "cat-a" / "one.csv").open() as fh:
        src = list(csv.reader(fh))
    assert [r[:2] for r in rows[1:]] == src[1:]
    scores = np.array([float(r[2]) for r in rows[1:]])
    assert ((scores >= 0) & (scores <= 1)).all()
    assert 300 <= scores.argmax() <= 305  # the labelled spike is the strongest detection (burst onset: <= 5 late)


def test_eval_detects_both_labelled_spikes_and_scores_well(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = dataset
    args = [str(data), str(labels), "--results", str(tmp_path / "r"), "--profile", "standard"]
    assert main(["eval", *args]) == 0
    text = capsys.readouterr().out
    assert "reward_low_FP_rate" not in text
    overall = next(line for line in text.splitlines() if line.strip().startswith("overall")).split()
    files, windows, detected, fp_rows = map(int, overall[1:5])
    assert (files, windows, detected, fp_rows) == (3, 2, 2, 0)
    assert float(overall[-1]) > 90


def test_written_results_score_the_same_when_read_back(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    data, labels = dataset
    args = [str(data), str(labels), "--results", str(tmp_path / "r"), "--profile", "standard"]
    assert main(["eval", *args]) == 0
    series, lab = load_dataset(data, labels)
    ss = scored_set(series, lab, labels)
    back = read_result_scores(tmp_path / "r", DEFAULT_DETECTOR, series)
    direct = run_detector(DEFAULT_DETECTOR, series)
    for a, b in zip(back, direct, strict=True):
        np.testing.assert_array_equal(a, b)
    assert ss.optimise(back, PROFILES["standard"]).detected == 2


def test_null_detector_scores_zero(dataset: tuple[Path, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    data, labels = dataset
    args = ["eval", str(data), str(labels), "--detector", "null", "--results", str(tmp_path / "r")]
    assert main(args) == 0
    assert (tmp_path / "r" / "null" / "cat-b" / "null_quiet.csv").is_file()
    overall = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("overall")]
    assert [float(ln.split()[-1]) for ln in overall] == [0.0, 0.0, 0.0]


def test_help_lists_the_detectors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in DETECTOR_NAMES:
        assert name in text


@pytest.mark.parametrize("name", DETECTOR_NAMES)
def test_every_listed_detector_runs(name: str, dataset: tuple[Path, Path]) -> None:
    series, _ = load_dataset(*dataset)
    scores = run_detector(name, series)
    for s, x in zip(scores, series, strict=True):
        assert len(s) == len(x.values)
        assert ((s >= 0) & (s <= 1)).all()


def _break_value(data: Path, labels: Path) -> str:
    p = data / "cat-a" / "one.csv"
    lines = p.read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ",lots"
    p.write_text("\n".join(lines) + "\n")
    return "one.csv row 6: value 'lots' is not a number"


def _break_header(data: Path, labels: Path) -> str:
    p = data / "cat-a" / "two.csv"
    p.write_text(p.read_text().replace("timestamp,value", "time,v", 1))
    return "header must have 'timestamp' and 'value'"


def _break_timestamp(data: Path, labels: Path) -> str:
    p = data / "cat-b" / "quiet.csv"
    lines = p.read_text().splitlines()
    lines[3] = "yesterday," + lines[3].split(",")[1]
    p.write_text("\n".join(lines) + "\n")
    return "quiet.csv row 4: bad timestamp 'yesterday'"


def _break_json(data: Path, labels: Path) -> str:
    labels.write_text("{not json")
    return "not valid JSON"


def _break_window(data: Path, labels: Path) -> str:
    doc = json.loads(labels.read_text())
    doc["cat-a/one.csv"] = [["2024-01-01 00:02:00", "2024-01-01 01:00:00"]]
    labels.write_text(json.dumps(doc))
    return "window timestamp 2024-01-01 00:02:00 is not a row"


def _break_missing_entry(data: Path, labels: Path) -> str:
    doc = json.loads(labels.read_text())
    del doc["cat-b/quiet.csv"]
    labels.write_text(json.dumps(doc))
    return "no entry for cat-b/quiet.csv"


def _break_shape(data: Path, labels: Path) -> str:
    labels.write_text(json.dumps({"cat-a/one.csv": "soon"}))
    return "windows must be a list of [start, end]"


@pytest.mark.parametrize(
    "breaker",
    [_break_value, _break_header, _break_timestamp, _break_json, _break_window, _break_missing_entry,
     _break_shape],
)
def test_bad_input_gives_one_line_and_exit_2(
    breaker, dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = dataset
    expected = breaker(data, labels)
    assert main(["eval", str(data), str(labels), "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("surgewatch eval: error: ")
    assert expected in err


@pytest.mark.parametrize("which", ["data", "labels"])
def test_missing_paths_give_one_line_and_exit_2(
    which: str, dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = dataset
    args = [str(tmp_path / "nope"), str(labels)]
    if which == "labels":
        args = [str(data), str(tmp_path / "nope.json")]
    assert main(["eval", *args, "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err


def test_unwritable_results_dir_gives_one_line_and_exit_2(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = dataset
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["eval", str(data), str(labels), "--results", str(blocker)]) == 2
    assert "cannot write results" in capsys.readouterr().err


def _rewrite_rows(path: Path, order: list[int]) -> list[str]:
    """Rewrite a series file with its data rows in `order` (indices may repeat); return the rows."""
    lines = path.read_text().splitlines()
    body = [lines[1 + i] for i in order]
    path.write_text("\n".join([lines[0], *body]) + "\n")
    return body


def test_a_clock_that_steps_back_or_repeats_is_scored_in_file_order_with_one_warning_per_file(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = dataset
    # quiet.csv: rows 200..229 come again after row 259 (an NTP step back of 30 rows' worth)
    _rewrite_rows(data / "cat-b" / "quiet.csv", [*range(260), *range(200, 230), *range(260, 400)])
    # one.csv: row 100 repeated (same timestamp twice), as in NAB's own realAWSCloudwatch files
    _rewrite_rows(data / "cat-a" / "one.csv", [*range(101), 100, *range(101, 400)])
    assert main(["eval", str(data), str(labels), "--results", str(tmp_path / "r"), "--profile", "standard"]) == 0
    out, err = capsys.readouterr()
    warnings = err.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("surgewatch eval: warning: ") for w in warnings)
    assert any("quiet.csv: 30 rows earlier than a row before; scored in file order" in w for w in warnings)
    assert any("one.csv: 1 row repeating the previous timestamp" in w for w in warnings)
    series, _ = load_dataset(data, labels)
    quiet = next(s for s in series if s.key == "cat-b/quiet.csv")
    written = read_result_scores(tmp_path / "r", DEFAULT_DETECTOR, series)
    assert len(written[series.index(quiet)]) == 430  # every row, in file order
    assert "overall" in out


def test_a_window_in_a_file_whose_clock_steps_back_covers_the_rows_between_its_ends(
    dataset: tuple[Path, Path]) -> None:
    data, labels = dataset
    _rewrite_rows(data / "cat-a" / "two.csv", [*range(245), *range(230, 240), *range(245, 400)])
    series, lab = load_dataset(data, labels)
    ss = scored_set(series, lab, labels)
    two = next(i for i, s in enumerate(series) if s.key == "cat-a/two.csv")
    # window rows 240..260 of the original: the first row stamped inside is 240, the last is (260 + 10)
    assert ss.files[two].windows.tolist() == [[240, 270]]


@pytest.mark.parametrize("values", [[], [5.0], [3.0] * 300, [float("nan")] * 300],
                         ids=["empty", "single-row", "constant", "all-nan"])
def test_degenerate_series_give_scores_not_errors(values: list[float], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    p = data / "cat" / "f.csv"
    write_series(p, np.array(values))
    if not values:
        p.write_text("timestamp,value\n")
    lab = tmp_path / "labels.json"
    lab.write_text(json.dumps({"cat/f.csv": []}))
    assert main(["eval", str(data), str(lab), "--results", str(tmp_path / "r"), "--profile", "standard"]) == 0
    out = capsys.readouterr().out
    assert "overall" in out
    series, _ = load_dataset(data, lab)
    scores = run_detector(DEFAULT_DETECTOR, series)
    assert len(scores[0]) == len(values) and np.isfinite(scores[0]).all()
