"""Time-series charts as Rich text: braille dots, or block/ASCII fills for tmux and poor fonts.

Pure functions of numpy arrays and a size, so they are cheap to test and never touch Textual.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.style import Style
from rich.text import Text

MODES = ("braille", "block", "ascii")
_BLOCKS = " ▁▂▃▄▅▆▇█"
_ASCII = " ..--==##"
# Braille dot bits by (column in cell, row in cell from the top).
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


@dataclass(frozen=True, slots=True)
class Marker:
    """A moment drawn as a vertical rule with a one-letter tag (campaign start/end, an alert)."""

    ts: float
    tag: str
    style: Style | str = ""


@dataclass(frozen=True, slots=True)
class ChartStyles:
    """Styles a chart needs; the widget resolves them from the theme."""

    line: Style | str = ""
    band: Style | str = "on grey23"
    axis: Style | str = "dim"
    marker: Style | str = "yellow"


def bin_series(ts: np.ndarray, values: np.ndarray, t0: float, t1: float, bins: int,
               how: str = "max") -> np.ndarray:
    """`values` aggregated into `bins` equal time bins over [t0, t1] (NaN where a bin is empty)."""
    out = np.full(bins, np.nan)
    if bins <= 0 or ts.size == 0 or not t1 > t0:
        return out
    ok = ~np.isnan(values) & ~np.isnan(ts) & (ts >= t0) & (ts <= t1)
    if not ok.any():
        return out
    idx = np.minimum(((ts[ok] - t0) / (t1 - t0) * bins).astype(np.intp), bins - 1)
    v = values[ok]
    if how == "min":
        np.minimum.at(out := np.full(bins, np.inf), idx, v)
        out[np.isinf(out)] = np.nan
    elif how == "mean":
        sums = np.bincount(idx, weights=v, minlength=bins)
        counts = np.bincount(idx, minlength=bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    else:
        np.maximum.at(out := np.full(bins, -np.inf), idx, v)
        out[np.isinf(out)] = np.nan
    return out


def nice_range(lo: float, hi: float, floor_zero: bool = True) -> tuple[float, float]:
    """A y range that shows the data with a little headroom (0-based for non-negative data)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if floor_zero and lo >= 0:
        lo = 0.0
    if hi <= lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    return lo, hi + (hi - lo) * 0.05


def _style(s: Style | str) -> Style:
    return Style.parse(s) if isinstance(s, str) else s


def _level(v: float, lo: float, hi: float, steps: int) -> int:
    """A value's height in 0..steps sub-rows."""
    if math.isnan(v):
        return -1
    return round((min(max(v, lo), hi) - lo) / (hi - lo) * steps)


Band = tuple[np.ndarray, np.ndarray, np.ndarray]


def plot(ts: np.ndarray, values: np.ndarray, width: int, height: int, t0: float, t1: float,
         lo: float | None = None, hi: float | None = None, band: Band | None = None,
         markers: Sequence[Marker] = (), mode: str = "braille", styles: ChartStyles | None = None,
         fmt: object = None) -> Text:
    """A `height`-row chart of one series over [t0, t1], with an optional (ts, low, high) band and markers.

    The left 7 columns carry the y labels; the plot fills the rest. `fmt` formats the y labels.
    """
    st = styles or ChartStyles()
    label_w = 7
    w = max(1, width - label_w)
    h = max(1, height)
    sub_x = 2 if mode == "braille" else 1
    sub_y = 4 if mode == "braille" else 8
    ys = bin_series(ts, values, t0, t1, w * sub_x, "max")
    b_lo = b_hi = None
    if band is not None and band[0].size:
        b_lo = bin_series(band[0], band[1], t0, t1, w, "min")
        b_hi = bin_series(band[0], band[2], t0, t1, w, "max")
    finite = ys[~np.isnan(ys)]
    dlo = float(finite.min()) if finite.size else math.nan
    dhi = float(finite.max()) if finite.size else math.nan
    if b_hi is not None and not np.all(np.isnan(b_hi)):
        dhi = float(np.nanmax([dhi, np.nanmax(b_hi)])) if not math.isnan(dhi) else float(np.nanmax(b_hi))
        dlo = float(np.nanmin([dlo, np.nanmin(b_lo)])) if not math.isnan(dlo) else float(np.nanmin(b_lo))  # type: ignore[arg-type]
    y0, y1 = nice_range(dlo if lo is None else lo, dhi if hi is None else hi)
    steps = h * sub_y
    # Cell grid: characters and background flags.
    chars = [[" "] * w for _ in range(h)]
    on_band = [[False] * w for _ in range(h)]
    if b_lo is not None and b_hi is not None:
        for x in range(w):
            a, b = _level(float(b_lo[x]), y0, y1, steps), _level(float(b_hi[x]), y0, y1, steps)
            if a < 0 or b < 0:
                continue
            for r in range(h):
                cell_lo, cell_hi = (h - 1 - r) * sub_y, (h - r) * sub_y
                if b >= cell_lo and a <= cell_hi:
                    on_band[r][x] = True
    if mode == "braille":
        bits = [[0] * w for _ in range(h)]
        prev = -1
        for i in range(w * sub_x):
            lv = _level(float(ys[i]), y0, y1, steps - 1)
            if lv < 0:
                prev = -1
                continue
            lo_l, hi_l = (min(prev, lv), max(prev, lv)) if prev >= 0 else (lv, lv)
            for d in range(lo_l, hi_l + 1):  # join consecutive points with a vertical stroke
                row = h - 1 - d // sub_y
                bits[row][i // sub_x] |= _DOTS[i % sub_x][sub_y - 1 - d % sub_y]
            prev = lv
        for r in range(h):
            for x in range(w):
                if bits[r][x]:
                    chars[r][x] = chr(0x2800 + bits[r][x])
    else:
        glyphs = _BLOCKS if mode == "block" else _ASCII
        for x in range(w):
            lv = _level(float(ys[x]), y0, y1, steps)
            if lv < 0:
                continue
            lv = max(lv, 1)
            for r in range(h):
                base = (h - 1 - r) * sub_y
                fill = min(sub_y, max(0, lv - base))
                if fill:
                    chars[r][x] = glyphs[fill] if mode == "block" else ("#" if fill == sub_y else glyphs[fill])
    tag_row: dict[int, tuple[str, Style | str]] = {}
    for m in markers:
        if not t0 <= m.ts <= t1:
            continue
        x = min(w - 1, int((m.ts - t0) / (t1 - t0) * w))
        tag_row[x] = (m.tag[:1], m.style)
        rule = "│" if mode != "ascii" else "|"
        for r in range(h):
            if chars[r][x] == " ":
                chars[r][x] = rule
    fmt_fn = fmt if callable(fmt) else (lambda v: f"{v:.3g}")
    out = Text(no_wrap=True, overflow="crop")
    line_style, band_style = st.line, st.band
    for r in range(h):
        if r:
            out.append("\n")
        label = fmt_fn(y1) if r == 0 else (fmt_fn(y0) if r == h - 1 else "")
        tick = ("+" if label else "|") if mode == "ascii" else ("┤" if label else "│")
        out.append(str(label)[: label_w - 1].rjust(label_w - 1) + tick, st.axis)
        x = 0
        while x < w:  # runs of equal (kind, band) share one span
            is_tag = r == 0 and x in tag_row
            kind = "tag" if is_tag else ("rule" if chars[r][x] in "│|" and x in tag_row else "line")
            bnd = on_band[r][x]
            j = x + 1
            while (j < w and not (r == 0 and j in tag_row) and on_band[r][j] == bnd
                   and ("rule" if chars[r][j] in "│|" and j in tag_row else "line") == kind):
                j += 1
            if kind == "tag":
                seg, style = tag_row[x][0], tag_row[x][1]
            else:
                seg = "".join(chars[r][x:j])
                style = tag_row[x][1] if kind == "rule" else line_style
            parts = [_style(s) for s in ((style, band_style) if bnd else (style,)) if s]
            out.append(seg, Style.combine(parts) if parts else None)
            x = j
    return out


def time_axis(t0: float, t1: float, width: int, now: float, mode: str = "braille") -> Text:
    """An x-axis line under a chart: relative times (-15m … now) at a few ticks."""
    from ..units import format_duration

    label_w = 7
    w = max(1, width - label_w)
    line = [" "] * w
    ticks = 4 if w >= 40 else 2
    for k in range(ticks + 1):
        x = min(w - 1, round(k * (w - 1) / ticks))
        t = t0 + (t1 - t0) * x / max(1, w - 1)
        age = now - t
        lab = "now" if age < (t1 - t0) / (2 * w) + 0.5 else "-" + format_duration(age).removesuffix("00s")
        start = max(0, min(w - len(lab), x - len(lab) // 2 if 0 < k < ticks else (0 if k == 0 else w - len(lab))))
        if all(c == " " for c in line[max(0, start - 1): start + len(lab) + 1]):
            line[start: start + len(lab)] = list(lab)
    return Text(" " * label_w + "".join(line), style="dim", no_wrap=True)


_EIGHTHS = " ▏▎▍▌▋▊▉█"


def gauge(frac: float, width: int, mode: str = "braille") -> str:
    """A bar `width` cells long filled to `frac` (0..1) in eighths of a cell; the unfilled rest is shaded,
    so the bar's length reads from across a room (ASCII: `#` and `.`)."""
    if width <= 0:
        return ""
    if math.isnan(frac):
        return ("?" + "." * (width - 1)) if mode == "ascii" else "?" + "░" * (width - 1)
    f = min(max(frac, 0.0), 1.0)
    if mode == "ascii":
        n = round(f * width)
        return "#" * n + "." * (width - n)
    full, part = divmod(round(f * width * 8), 8)
    bar = "█" * full + (_EIGHTHS[part] if part else "")
    return bar + "░" * (width - len(bar))


def fit_lines(text: Text, width: int, height: int) -> list[Text]:
    """`text` as exactly `height` lines of exactly `width` cells (cropped or padded with spaces)."""
    lines = list(text.split("\n", allow_blank=True))[:height] if height > 0 else []
    lines += [Text("") for _ in range(height - len(lines))]
    out = []
    for line in lines:
        line = line.copy()
        line.truncate(width, overflow="crop", pad=True)
        out.append(line)
    return out


def side_by_side(blocks: Sequence[Text], widths: Sequence[int], height: int, gap: int = 2) -> Text:
    """Blocks of text placed next to each other as columns of the given widths, `height` lines tall."""
    columns = [fit_lines(b, w, height) for b, w in zip(blocks, widths, strict=True)]
    out = Text(no_wrap=True, overflow="crop")
    for r in range(height):
        if r:
            out.append("\n")
        for i, col in enumerate(columns):
            if i:
                out.append(" " * gap)
            out.append_text(col[r])
    return out
