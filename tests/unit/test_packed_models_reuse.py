"""Packed load models rebuilt after hosts join and leave copy the unchanged models: the arrays equal a fresh packing."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from surgewatch.analysis.correlation import HostModel
from surgewatch.analysis.state import FitMemory, LagCurves, PackedModels
from tests.support.fields import assert_same_fields


def model(rng: random.Random, row: int, drivers: tuple[int, ...]) -> HostModel:
    k = len(drivers)
    a = np.random.default_rng(rng.randint(0, 10**6))
    return HostModel(row, drivers, tuple(rng.randint(0, 9) for _ in drivers), a.normal(size=k), a.normal(),
                     a.uniform(), a.uniform(0.1, 2.0), 100, a.normal(size=k), a.normal(size=(k + 1, k + 1)),
                     a.normal(size=k), a.uniform(size=k), rng.random() < 0.8)


def assert_same(a: PackedModels, b: PackedModels) -> None:
    assert_same_fields(a, b, same_models)


def same_models(name: str, x: Any, y: Any) -> None:
    if name == "models":  # the very same HostModel objects, in order
        assert all(m is n for m, n in zip(x, y, strict=True)), name
    else:
        assert x == y, name


@pytest.mark.parametrize("seed", range(10))
def test_a_packing_that_reuses_the_last_one_equals_a_fresh_packing(seed: int) -> None:
    rng = random.Random(seed)
    traffic = [0, 1, 2]
    models: dict[int, HostModel] = {r: model(rng, r, (rng.choice(traffic),)) for r in range(3, 60)}
    limits = {r: 100.0 for r in range(3, 60) if r % 3}
    growth = {0: 0.5, 1: -0.1}  # traffic row 2's growth is unknown
    packed = PackedModels.build(list(models.values()), limits, growth)
    for _ in range(60):
        r = rng.random()
        rows = sorted(models)
        if r < 0.3:  # a host joins: new rows with their first models
            for row in range(max(rows) + 1, max(rows) + 1 + rng.randint(1, 4)):
                models[row] = model(rng, row, (rng.choice(traffic),))
        elif r < 0.5:  # a host leaves
            for row in rng.sample(rows, rng.randint(1, 3)):
                del models[row]
        elif r < 0.6:  # a model with a second driver (or back to one): the padding changes
            row = rng.choice(rows)
            models[row] = model(rng, row, tuple(sorted(rng.sample(traffic, rng.choice((1, 2))))))
        elif r < 0.7:  # a row taken by another series: its model goes and a new one comes later, at the end
            row = rng.choice(rows)
            del models[row]
            models[row] = model(rng, row, (rng.choice(traffic),))
        else:  # refits: new model objects for some rows, in place
            for row in rng.sample(rows, rng.randint(1, 5)):
                models[row] = replace(models[row], intercept=rng.random())
        if rng.random() < 0.3:
            growth[rng.choice(traffic)] = rng.random()
        live = list(models.values())
        reused = PackedModels.build(live, limits, growth, reuse=packed)
        assert_same(reused, PackedModels.build(live, limits, growth))
        if rng.random() < 0.7:  # the analyzer also writes refits into a packing in place
            refit = [replace(models[row], coefs=models[row].coefs * 2.0) for row in rng.sample(sorted(models), 3)]
            if reused.update(refit, growth, [0]):
                for m in refit:
                    models[m.row] = m
        packed = reused


@pytest.mark.parametrize("seed", range(6))
def test_forgetting_rows_drops_every_pair_that_names_them_and_keeps_the_order(seed: int) -> None:
    rng = random.Random(seed)
    memory = FitMemory(base=np.zeros(80))
    drivers, hosts = [0, 1, 2], list(range(10, 80))
    for h in hosts:
        for d in rng.sample(drivers, rng.randint(1, 2)):
            memory.lags[(d, h)] = (rng.randint(0, 9), rng.random())
            memory.curves.write([(d, h)], np.zeros((1, 3)), rng.randint(0, 99))
    for _ in range(8):
        gone = set(rng.sample(hosts, 3)) | ({rng.choice(drivers)} if rng.random() < 0.3 else set())
        lags = [(k, v) for k, v in memory.lags.items() if k[0] not in gone and k[1] not in gone]
        curves = [k for k in memory.curves if k[0] not in gone and k[1] not in gone]
        memory.forget(gone, np.array(sorted(gone)))
        assert list(memory.lags.items()) == lags and list(memory.curves) == curves


@pytest.mark.parametrize("seed", range(6))
def test_lag_curves_held_in_rows_read_back_as_a_dict_of_curves_would(seed: int) -> None:
    rng = random.Random(seed)
    curves, plain = LagCurves(), {}
    for tick in range(40):
        pairs = rng.sample([(d, h) for d in range(3) for h in range(10, 60)], rng.randint(0, 40))
        at, kept, added = curves.read(pairs)
        assert at == [k for k, p in enumerate(pairs) if p in plain]
        assert np.array_equal(kept.reshape(-1, 5), np.array([plain[pairs[k]][0] for k in at]).reshape(-1, 5))
        assert added.tolist() == [plain[pairs[k]][1] for k in at]
        new = np.array([[rng.random() for _ in range(5)] for _ in pairs]).reshape(-1, 5)
        curves.write(pairs, new, tick)
        plain.update({p: (c, tick) for p, c in zip(pairs, new, strict=True)})
        if rng.random() < 0.3:  # rows leave; their pairs' rows are taken by pairs that come later
            gone = set(rng.sample(range(10, 60), 5))
            curves.forget([p for p in curves if p[1] in gone])
            plain = {p: v for p, v in plain.items() if p[1] not in gone}
        assert list(curves) == list(plain)
        one = rng.choice(list(plain)) if plain else None
        if one is not None:
            got = curves.get(one)
            assert got is not None and np.array_equal(got[0], plain[one][0]) and got[1] == plain[one][1]
    assert curves.values.shape[0] <= 2 * 150 + 40  # forgotten rows are taken again: no growth past the pairs
