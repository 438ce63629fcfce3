"""The demo's history goes into the store as float64 arrays (issue 14, the small end: no Python float per sample
at start-up); the store, the analysis and what a listener hears are those of the list path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from surgewatch.config import Config, parse_config
from surgewatch.defaults import DEFAULT_TOML
from surgewatch.engine import Engine, EngineOptions, ListenerContext
from surgewatch.recording.replay import ReplayDispatcher

T0 = 1_760_000_000.0


def default_at_1s(tmp_path: Path) -> Config:
    text = DEFAULT_TOML.format(interval="1s", for_cpu="30s", for_mem="1m", for_anomaly="10s")
    return parse_config(text.replace("[monitor]\n", f'[monitor]\nstate_dir = "{tmp_path}"\n', 1), "c.toml", {})


def engine_of(cfg: Config) -> Engine:
    return Engine(cfg, EngineOptions(dispatcher=ReplayDispatcher(()), clock=lambda: T0, keep_models=False))


class Heard:
    def __init__(self) -> None:
        self.values: Mapping[str, Sequence[float]] = {}

    def on_backfill(self, ctx: ListenerContext, ts: Sequence[float], values: Mapping[str, Sequence[float]]) -> None:
        self.values = values


def test_the_demo_history_as_arrays_fills_the_store_and_warms_the_analysis_as_its_lists_do(tmp_path: Path) -> None:
    cfg = default_at_1s(tmp_path)
    arrays, lists = engine_of(cfg), engine_of(cfg)
    heard = Heard()
    arrays.add_listener(heard)  # type: ignore[arg-type]  # a listener of backfills only
    arrays.backfill_demo()
    ts = arrays.store.last_n(arrays.store.ticks)[0].tolist()
    merged: dict[str, list[float]] = {}
    for s in [s for s in lists.sources if s.demo]:
        as_lists, as_arrays = s.backfill(ts).values, s.history(ts)  # type: ignore[attr-defined]
        assert list(as_lists) == list(as_arrays)
        for name, values in as_lists.items():
            assert isinstance(values, list)
            np.testing.assert_array_equal(np.array(values), as_arrays[name])
        merged.update(as_lists)  # the list path, as before
    lists.backfill(ts, merged)
    assert list(arrays.store.names) == list(lists.store.names) and len(ts) > 60
    for x_part, y_part in zip(arrays.store.last_n(len(ts)), lists.store.last_n(len(ts)), strict=True):
        np.testing.assert_array_equal(x_part, y_part)
    a = arrays.store.window(None)
    assert {k: list(v) for k, v in heard.values.items()} == merged  # a listener hears the lists
    assert all(isinstance(v, list) for v in heard.values.values())
    for k in range(5):  # the detector and slow baselines were warmed alike
        readings = {name: float(a.values[i, -1]) for i, name in enumerate(a.names)}
        for engine in (arrays, lists):
            engine.tick(T0 + 1.0 + k, readings)
        x, y = arrays.last_analysis, lists.last_analysis
        assert x is not None and y is not None
        np.testing.assert_array_equal(x.score, y.score)
        np.testing.assert_array_equal(x.expected, y.expected)
