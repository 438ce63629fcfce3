"""Test-wide setup: every test runs with a private state directory.

Without a configured `state_dir`, surgewatch keeps its outbox and silences in the user's state directory
($XDG_STATE_HOME/surgewatch). Tests must never write there: a daemon the developer runs would pick up the
tests' acknowledgements and silences within a second.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("XDG_STATE_HOME", "STATE_DIRECTORY")}
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state-home"))
    os.environ.pop("STATE_DIRECTORY", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
