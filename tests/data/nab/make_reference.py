"""Regenerate reference.npz from a NAB directory: `python make_reference.py ../../../../shared/nab`.

Stores, for the 29 labelled files, the row counts, the windows as inclusive row indices and the exact
anomaly_score columns of NAB's published `ARTime` and `numenta` results, so that tests can check the
scorer against SCORING.md §7 without reading the shared directory.
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np


def main(root: Path, out: Path) -> None:
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    names = sorted(labels)
    n_rows, windows, win_offsets = [], [], [0]
    scores: dict[str, list[np.ndarray]] = {"ARTime": [], "numenta": []}
    for name in names:
        with (root / "data" / name).open() as fh:
            ts = np.array([r[0] for r in list(csv.reader(fh))[1:]], dtype="datetime64[us]")
        n_rows.append(len(ts))
        for a, b in labels[name]:
            ia, ib = np.searchsorted(ts, [np.datetime64(a), np.datetime64(b)])
            assert ts[ia] == np.datetime64(a) and ts[ib] == np.datetime64(b)
            windows.append((ia, ib))
        win_offsets.append(len(windows))
        cat, fn = name.split("/")
        for det, acc in scores.items():
            with (root / "results" / det / cat / f"{det}_{fn}").open() as fh:
                col = np.array([float(r["anomaly_score"]) for r in csv.DictReader(fh)])
            assert len(col) == len(ts)
            acc.append(col)
    np.savez_compressed(
        out,
        names=np.array(names),
        n_rows=np.array(n_rows, dtype=np.int64),
        windows=np.array(windows, dtype=np.int64),
        win_offsets=np.array(win_offsets, dtype=np.int64),
        **{det: np.concatenate(cols) for det, cols in scores.items()},
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_name("reference.npz"))
