"""Themes: TCSS files in `themes/` (shipped) and the user's config dir, checked before they are applied.

A theme file is plain Textual CSS. A comment line `base: NAME` picks the Textual colour theme under it
(textual-dark, textual-light, surgewatch-contrast, surgewatch-mono); the rules style the screens and the
`.sw--NAME` semantic styles (ok, warn, crit, muted, accent, traffic, head, badge, band, marker, cursor, …).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from textual.css.stylesheet import Stylesheet
from textual.theme import Theme

BUILTIN_DIR = Path(__file__).with_name("themes")
BUILTIN = ("dark", "light", "high-contrast", "monochrome")
DEFAULT = "dark"
_BASE_RE = re.compile(r"^\s*(?:/\*)?\s*base:\s*([\w-]+)", re.MULTILINE)

EXTRA_BASES = (
    Theme(name="surgewatch-contrast", primary="#ffff00", secondary="#00ffff", accent="#00ffff",
          warning="#ffff00", error="#ff4040", success="#00ff00", foreground="#ffffff", background="#000000",
          surface="#000000", panel="#202020", dark=True),
    Theme(name="surgewatch-mono", primary="#c0c0c0", secondary="#a0a0a0", accent="#ffffff",
          warning="#ffffff", error="#ffffff", success="#c0c0c0", foreground="#e0e0e0", background="#000000",
          surface="#101010", panel="#202020", dark=True),
)


class ThemeError(Exception):
    """A theme that cannot be used (missing, unreadable or invalid CSS), with a one-line reason."""


@dataclass(frozen=True, slots=True)
class ThemeSpec:
    """A checked theme: its name, the Textual base theme and its CSS."""

    name: str
    base: str
    css: str
    path: str


def user_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("surgewatch")) / "themes"


def available() -> list[str]:
    """Built-in theme names, then the user's own (from the config dir), without duplicates."""
    names = list(BUILTIN)
    with contextlib.suppress(OSError):
        names += sorted(p.stem for p in user_dir().glob("*.tcss") if p.stem not in names)
    return names


def locate(name_or_path: str) -> Path:
    """A theme name (user dir first, then built in) or a path to a .tcss file."""
    p = Path(name_or_path).expanduser()
    if p.suffix == ".tcss" or "/" in name_or_path:
        return p
    user = user_dir() / f"{name_or_path}.tcss"
    return user if user.is_file() else BUILTIN_DIR / f"{name_or_path}.tcss"


def load(name_or_path: str, variables: dict[str, str], bases: set[str]) -> ThemeSpec:
    """Read and check a theme (raises ThemeError): the CSS must parse and its base must exist."""
    path = locate(name_or_path)
    try:
        css = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeError(f"theme {name_or_path!r}: cannot read {path}: {exc.__class__.__name__}") from None
    m = _BASE_RE.search(css)
    base = m[1] if m else "textual-dark"
    if base not in bases:
        raise ThemeError(f"theme {name_or_path!r} ({path}): unknown base {base!r}")
    sheet = Stylesheet(variables=variables)
    try:
        sheet.add_source(css, read_from=(str(path), ""))
        sheet.parse()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ThemeError(f"theme {name_or_path!r} ({path}): invalid CSS: {first}") from None
    return ThemeSpec(path.stem, base, css, str(path))
