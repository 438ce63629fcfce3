"""The `context` detector: how surprising a value is after its recent context, vectorised across series.

Inspired by the idea behind NAB's Contextual Anomaly Detector (a value is anomalous when it is new in the
context of the values before it), in our own hashed, count-based, array-only form. Per series and tick:
1. Discretise: the value's place in the series' running range (min..max so far) into `levels` symbols,
   counted from the nearer end and oriented by the series' first change, so x -> a·x + b gives the same
   symbols for any a != 0.
2. Predict: for each context length k in `orders`, the probability of this symbol after the previous k
   symbols, from per-series counts of (context) and (context, symbol) kept in a hashed table
   (`table_bits` slots of uint16 per series), with a small prior; the surprise is the mean -log p.
3. Calibrate: the surprise over a per-series running high quantile (like `surge`), mapped to [0, 1] as
   r²/(r²+k²); then onset scoring (`onset.Onset`) unless `onset=False`.
Counts are learned after judging, so the score is causal.

NaN (or ±inf) is a missing sample: no score, no learning; the context keeps its last symbols.
"""

from __future__ import annotations

import numpy as np

from ..store import untouched_zeros
from .detectors import DetectorOutput, track_quantile
from .onset import Onset
from .rowstats import row_capacity, union_rows

_MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing multiplier


class ContextDetector:
    """Surprise of each value given its recent context of discretised values, for many series at once."""

    name = "context"
    MAX_SLOT_TABLE = 1 << 16  # rows of the slot table at most (more contexts: hashed on every tick)

    def __init__(
        self,
        *,
        levels: int = 12,
        orders: tuple[int, ...] = (1, 2),
        table_bits: int = 10,
        prior: float = 0.5,
        quantile: float = 0.999,
        quantile_rate: float = 0.05,
        k: float = 1.0,
        min_points: int = 30,
        onset: bool = True,
        refractory: float = 200.0,
        damp: float = 0.2,
        burst: int = 0,
    ) -> None:
        """`levels` symbols over the running range; `orders`: context lengths (symbols before the value).

        `onset=False` emits the calibrated surprise on every tick (for ensembles); otherwise onset scoring
        with `refractory`, `damp` and `burst` as in `onset.Onset`.
        """
        if levels < 2 or not orders or min(orders) < 0 or not 6 <= table_bits <= 24:
            raise ValueError("levels >= 2, orders >= 0 and 6 <= table_bits <= 24 required")
        self.levels = levels
        self.orders = tuple(sorted(orders))
        self.depth = self.orders[-1] + 1
        self.table_bits = table_bits
        self.prior = prior
        self.k = k
        self.min_points = min_points
        self.onset = Onset(refractory, damp, burst, dtype=np.float32) if onset else None
        self._q_up = float(np.exp(quantile_rate * quantile))
        self._q_down = float(np.exp(-quantile_rate * (1.0 - quantile)))
        # Every series' slots of every (context, symbol) from a small table when there are few contexts (the
        # same numbers as hashing each tick): symbols are 0..levels, so a context of k symbols and a symbol
        # have (levels + 1)^(k + 1) values, 2,197 with the defaults.
        radix = levels + 1
        self._radix = [np.uint64(radix ** (j + 1)) for j in range(self.orders[-1])]
        self._slots: np.ndarray | None = None
        if radix ** (self.orders[-1] + 1) <= self.MAX_SLOT_TABLE:
            code = np.arange(radix ** (self.orders[-1] + 1), dtype=np.uint64)
            newest = [code // r % np.uint64(radix) for r in self._radix]
            self._slots = self._keys(newest, code % np.uint64(radix))
        self._rows = 0
        self._cap = 0
        self._bufs: dict[str, np.ndarray] = {}
        self._alloc(0)

    n: np.ndarray  # valid samples seen
    lo: np.ndarray  # running minimum and maximum
    hi: np.ndarray
    q: np.ndarray  # running high quantile of the surprise
    first: np.ndarray  # first value seen
    orient: np.ndarray  # sign of the first change from it: symbols are mirrored when negative
    hist: np.ndarray  # [depth, series]: last symbols + 1 (0 = none yet), newest last
    counts: np.ndarray  # hashed (context) and (context, symbol) counts, one table row per series

    def _alloc(self, rows: int) -> None:
        """Make room for `rows` series, keeping the existing ones; new series start fresh. As SurgeDetector's:
        the per-series arrays are views of the rows in use of larger buffers, grown in place while they fit."""
        old = self._rows
        if rows > self._cap or not self._bufs:
            self._regrow(row_capacity(self._cap, rows) if rows else 0, old)
        b = self._bufs
        self.n, self.lo, self.hi, self.q = b["n"][:rows], b["lo"][:rows], b["hi"][:rows], b["q"][:rows]
        self.first, self.orient = b["first"][:rows], b["orient"][:rows]
        self.hist, self.counts = b["hist"][:, :rows], b["counts"][:rows]
        if rows > old:  # the fresh state of new rows (the buffers' unused rows are zeros)
            self.lo[old:], self.hi[old:], self.first[old:] = np.inf, -np.inf, np.nan
            self.q[old:] = 1.0  # the surprise and its calibration are float32
        self._base = b["base"][:rows]  # first slot of each series
        self._base_slots = b["base_slots"][:rows * 2 * len(self.orders)]  # [series, slot] flat
        self._neg = b["neg"][:rows]  # mirrored series
        self._rows = rows
        self._settled = False  # every row has its orientation and min_points samples (rechecked when not)

    def _regrow(self, cap: int, used: int) -> None:
        """Buffers for `cap` series, the first `used` rows copied from the current ones."""
        base = np.arange(cap, dtype=np.uint64) << np.uint64(self.table_bits)
        bufs: dict[str, np.ndarray] = {
                "n": np.zeros(cap), "lo": np.zeros(cap), "hi": np.zeros(cap), "first": np.zeros(cap),
                "orient": np.zeros(cap), "q": np.zeros(cap, dtype=np.float32), "neg": np.zeros(cap, dtype=bool),
                "hist": np.zeros((self.depth, cap), dtype=np.uint64),
                "counts": untouched_zeros((cap, 1 << self.table_bits), np.uint16),
                "base": base, "base_slots": np.repeat(base.astype(np.int64), 2 * len(self.orders))}
        if used:
            for name in ("n", "lo", "hi", "first", "orient", "q", "neg", "hist"):
                bufs[name][..., :used] = self._bufs[name][..., :used]
            bufs["counts"][:used] = self._bufs["counts"][:used]
        self._bufs = bufs
        self._cap = cap

    def forget_rows(self, rows: np.ndarray) -> None:
        """Forget rows: evicted series, whose rows a new series may take (it starts with no history)."""
        rows = rows[rows < self._rows]
        self.n[rows], self.lo[rows], self.hi[rows], self.q[rows] = 0.0, np.inf, -np.inf, 1.0
        self.first[rows], self.orient[rows] = np.nan, 0.0
        self.hist[:, rows], self.counts[rows] = 0, 0
        self._neg[rows] = False
        self._settled = False
        if self.onset is not None:
            self.onset.forget_rows(rows)

    def _symbols(self, x: np.ndarray, gaps: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 neg: np.ndarray) -> np.ndarray:
        """Each value's symbol (1..levels) in the range lo..hi (which includes it), the same under x -> a·x + b.

        A missing value gets the middle symbol (its context and counts do not move, see `step`).
        """
        with np.errstate(all="ignore"):
            below, above = x - lo, hi - x  # swap exactly under negation
            span = below + above
            b = np.minimum(below, above)
            b /= span  # in [0, 0.5], the same from either end
            b *= self.levels
            np.floor(b, out=b)  # 0 .. levels // 2
            # counted from the nearer end, so mirrored values get mirrored symbols; mirrored again when the
            # series' first change was downwards
            # (small integers: exact in floating point)
            sym = b * -2.0
            sym += self.levels - 1
            sym *= (below < above) == neg  # levels - 1 - b where so, else b
            sym += b
            middle = below == above  # the middle is its own mirror (so is an empty range: a value alone)
            sym[middle] = sym[gaps] = (self.levels - 1) // 2
        out = sym.astype(np.uint64)
        out += np.uint64(1)
        return out

    def beyond(self, values: np.ndarray) -> np.ndarray:
        """How far each value lies outside its series' range so far, in units of that range (0 inside it).

        0 before `min_points` samples, for missing values and while the range is empty; call before `update`.
        The same under x -> a·x + b (a != 0): the nearer end of the range is the one exceeded.
        """
        x = np.asarray(values, dtype=np.float64)
        out = np.zeros(x.shape[0])
        rows, far = self.outside(x)
        out[rows] = far
        return out

    def outside(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`beyond` where it is not 0 (few rows): their indices and values, given the float64 values."""
        k = min(x.shape[0], self._rows)
        lo, hi, xs = self.lo[:k], self.hi[:k], x[:k]
        with np.errstate(all="ignore"):
            far = np.maximum(xs - hi, lo - xs)
            rows = np.flatnonzero(far > 0)  # outside the range (or no range yet); NaN is not
            lo, hi = lo[rows], hi[rows]
            far = far[rows] / (hi - lo)
        ok = np.isfinite(far) & (self.n[rows] >= self.min_points) & (hi > lo)  # NaN or ±inf: missing
        return rows[ok], far[ok]

    def _keys(self, newest: list[np.ndarray], sym: np.ndarray) -> np.ndarray:
        """The slots in a series' part of the table ([value, slot]): per order k, of the context (the k
        `newest` symbols before, newest first) and of the context with `sym`, by Fibonacci hashing."""
        shift = np.uint64(64 - self.table_bits)
        pos = np.empty((sym.shape[0], 2 * len(self.orders)), dtype=np.int64)  # a value's slots side by side
        tagged = sym << np.uint64(40)
        h = np.zeros(sym.shape[0], dtype=np.uint64)
        done, col = 0, 0
        for k in self.orders:
            for j in range(done, k):  # extend the context hash by one more (older) symbol
                h ^= newest[j]
                h *= _MULT
            done = k
            salt = np.uint64(k + 1)
            key = h + salt
            key *= _MULT
            key >>= shift
            pos[:, col] = key  # the context
            key = h ^ tagged
            key += salt
            key *= _MULT
            key >>= shift
            pos[:, col + 1] = key  # context and symbol
            col += 2
        return pos

    def _count(self, pos: np.ndarray, gaps: np.ndarray, chunk: int = 1024) -> np.ndarray:
        """The counts at `pos` ([series, slot] flat indices), then each series' counts + 1 (at most 65535)
        except on the rows in `gaps` (missing samples), whose counts are written back unchanged.

        Each series has its own slots, so two slots of one series that coincide get the same count + 1. In
        chunks of series: the table's rows just read are still in cache when they are written.
        """
        flat = self.counts.reshape(-1)
        out = np.empty(pos.shape, dtype=np.uint16)
        for a in range(0, pos.shape[0], chunk):
            at = pos[a:a + chunk]
            now = out[a:a + chunk]
            flat.take(at, mode="clip", out=now)  # in range by construction; "clip" skips the checks
            c = now + 1  # saturating: 65535 + 1 wraps to 0, and the maximum puts 65535 back (faster than a
            np.maximum(c, now, out=c)  # minimum with a number)
            flat[at] = c
        if gaps.size:
            flat[pos[gaps]] = out[gaps]
        return out

    def update(self, values: np.ndarray) -> DetectorOutput:
        """Judge this tick's values (NaN = no sample) given their contexts, then learn from them."""
        x = np.asarray(values, dtype=np.float64)
        valid = np.isfinite(x)
        score = self.step(x, valid, np.flatnonzero(~valid)).astype(np.float64)
        nan = np.full(x.shape[0], np.nan)
        return DetectorOutput(score, nan, nan, nan.copy(), nan.copy())

    def step(self, x: np.ndarray, valid: np.ndarray, gaps: np.ndarray) -> np.ndarray:
        """`update`'s score (float32, NaN where no sample), given the float64 values, where they are finite
        and the indices where they are not."""
        rows = x.shape[0]
        if rows > self._rows:
            self._alloc(rows)
        n, lo, hi, q = self.n[:rows], self.lo[:rows], self.hi[:rows], self.q[:rows]
        orient, neg = self.orient[:rows], self._neg[:rows]
        none = np.zeros(0, dtype=np.intp)
        new = young = none
        if not self._settled:
            new = np.flatnonzero(orient == 0)  # no change seen yet (few once series have history)
            young = np.flatnonzero(n < self.min_points)
            self._settled = not new.size and not young.size and rows == self._rows  # until rows are forgotten
        if new.size:
            xv, vn, first = x[new], valid[new], self.first[new]
            first = np.where(vn & (n[new] == 0), xv, first)
            self.first[new] = first
            with np.errstate(invalid="ignore"):
                orient[new] = np.where(vn, np.sign(np.nan_to_num(xv - first)), 0.0)
            neg[new] = orient[new] < 0
        xs = x
        if gaps.size and not np.isnan(x[gaps]).all():  # ±inf: missing too
            xs = x.copy()
            xs[gaps] = np.nan
        np.fmin(lo, xs, out=lo)  # the range so far, this value included (`outside` saw the one before)
        np.fmax(hi, xs, out=hi)
        sym = self._symbols(x, gaps, lo, hi, neg)
        hist = self.hist[:, :rows]
        if self._slots is not None:  # every context and symbol's slots looked up at once
            code = sym.copy()
            for j, radix in enumerate(self._radix):  # sym + B·newest + B²·the one before + ...
                code += hist[self.depth - 1 - j] * radix
            pos = self._slots.take(code.astype(np.intp), axis=0)
            flat = pos.reshape(-1)  # a view
            flat += self._base_slots[:pos.size]
        else:
            pos = self._keys([hist[self.depth - 1 - j] for j in range(self.orders[-1])], sym)
            pos += self._base[:rows, None].astype(np.int64)
        counts = np.empty((pos.shape[1], rows), dtype=np.float32)  # slot-major: each row contiguous
        counts[...] = self._count(pos, gaps).T
        c_ctx, c_joint = counts[0::2], counts[1::2]
        np.minimum(c_joint, c_ctx, out=c_joint)
        c_joint += self.prior
        c_ctx += self.prior * self.levels
        c_joint /= c_ctx
        np.log(c_joint, out=c_joint)
        surprise = c_joint[0].copy()
        for i in range(1, c_joint.shape[0]):  # the mean over orders, summed in order
            surprise += c_joint[i]
        surprise /= -c_joint.shape[0]
        ratio = surprise / q
        ratio *= ratio
        raw = ratio / (ratio + self.k * self.k)
        raw[young] = raw[gaps] = 0.0
        score = self.onset(raw, valid) if self.onset is not None else raw
        # -- learn (the counts are learned in _count) -------------------------------------------------
        exceed = surprise > q
        still = union_rows(gaps, young[n[young] < 1]) if young.size else gaps  # q does not move
        kept = q[still]
        track_quantile(q, exceed, self._q_up, self._q_down)
        q[still] = kept
        np.maximum(q, 1e-3, out=q)
        missed = hist[:, gaps]
        for j in range(self.depth - 1):
            hist[j] = hist[j + 1]
        hist[-1] = sym
        hist[:, gaps] = missed
        n += valid
        score[gaps] = np.nan
        return score
