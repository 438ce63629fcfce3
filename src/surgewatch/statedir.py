"""Where surgewatch keeps state that must survive restarts (the alert outbox, silences).

Resolution order: `[monitor] state_dir` from the config (`~` expanded; a relative path is taken
relative to the config file's directory), else `$STATE_DIRECTORY` (set by systemd for units with
`StateDirectory=`), else the platform's user state directory from platformdirs (on Linux
`$XDG_STATE_HOME/surgewatch`, by default `~/.local/state/surgewatch`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "surgewatch"


class StateDirError(Exception):
    """The state directory cannot be used (already phrased as one line naming the path)."""


def resolve_state_dir(configured: str | None, config_path: str | None = None,
                      environ: Mapping[str, str] | None = None) -> Path:
    """The state directory to use, without touching the file system."""
    env = os.environ if environ is None else environ
    if configured:
        p = Path(os.path.expanduser(configured))
        if not p.is_absolute():
            base = Path(config_path).parent if config_path and not config_path.startswith("<") else Path.cwd()
            p = base / p
        return p
    systemd = env.get("STATE_DIRECTORY", "")
    if systemd:
        # systemd passes a colon-separated list when several StateDirectory= entries are given.
        return Path(systemd.split(":")[0])
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / APP_NAME
    import platformdirs  # lazy: only when neither the config nor the environment names the directory

    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def ensure_state_dir(path: Path) -> Path:
    """Create `path` (mode 0700) if needed and check that we can write files in it."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise StateDirError(f"state dir {path}: exists and is not a directory") from None
    except OSError as exc:
        raise StateDirError(f"state dir {path}: cannot create: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise StateDirError(f"state dir {path}: exists and is not a directory")
    try:
        fd, name = _create_unique(path, ".probe-", "")
        os.close(fd)
        os.unlink(path / name)
    except OSError as exc:
        raise StateDirError(f"state dir {path}: not writable: {exc.strerror or exc}") from None
    return path


def _create_unique(directory: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """A new file of a random name in `directory`, open for writing (mode 0600): what tempfile.mkstemp does,
    without importing tempfile (it imports shutil, which maps libbz2 and liblzma: 0.4 MB of a small daemon's RSS
    for a probe and the models file, issue 14). OSError when it cannot."""
    for _ in range(100):
        name = f"{prefix}{os.urandom(6).hex()}{suffix}"
        try:
            return os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused name in {directory}")


def state_dir_for(configured: str | None, config_path: str | None = None) -> Path:
    """Resolve and prepare the state directory in one step (what the engine calls)."""
    return ensure_state_dir(resolve_state_dir(configured, config_path))


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` with `text` so that a reader sees the old file or the new one, never half of one (a temporary
    file in the same directory, fsynced, then renamed); OSError when it cannot."""
    fd, name = _create_unique(path.parent, f".{path.name}-", ".tmp")
    tmp = path.parent / name
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
