"""Field-by-field equality of two dataclass instances, arrays included (for "incremental = rebuilt" tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import numpy as np


def assert_same_fields(a: Any, b: Any, other: Callable[[str, Any, Any], None] | None = None) -> None:
    """Every field of `a` equals `b`'s: arrays by dtype, shape and values (NaN equal to NaN in float arrays);
    other fields by `other(name, x, y)` when given, else by ==. Each failure names the field."""
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        elif other is not None:
            other(f.name, x, y)
        else:
            assert x == y, f.name
