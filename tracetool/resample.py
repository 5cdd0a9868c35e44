"""Bootstrap resampling and a two-sample test, for comparing two runs.

Three kinds of figure, three ways to resample them, each exact for the bootstrap it
names and none of them per-row Python:

* **rates and ratios of sums** (IOPS, flushes per I/O): the run is cut into time windows
  and windows are resampled with replacement (a block bootstrap, which keeps the
  correlation between events close in time). A replicate is Σnumerator / Σdenominator
  over the windows drawn; polars draws the indices and sums.
* **quantiles** of n values: the k-th smallest of a resample of sorted values ``x`` is
  ``x[floor(n·U)]`` with ``U`` the k-th order statistic of n uniforms, which is
  Beta(k, n−k+1); the next one is ``U + (1−U)·Beta(1, n−k)``. So a replicate of a
  linearly interpolated quantile costs two Beta draws, whatever n is.
* **means**: resampled values (polars ``sample``) while replicates × n stays below
  ``MAX_DRAWS``; beyond that the bootstrap distribution of a mean is normal to well
  within its own noise, and the normal interval is used and named as such.

Intervals are percentile intervals at ``LEVEL``. The two-sample Kolmogorov–Smirnov test
says whether two distributions differ at all, beyond a shift of one percentile.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

import polars as pl

LEVEL = 0.95
REPLICATES = 2000
MAX_DRAWS = 20_000_000


@dataclass(frozen=True)
class Interval:
    """A confidence interval and how it was obtained."""

    lo: float | None
    hi: float | None
    method: str


def percentile_interval(replicates: pl.Series, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` share of ``replicates`` (nulls and NaN dropped)."""
    r = replicates.drop_nulls().drop_nans()
    tail = (1 - level) / 2
    lo = r.quantile(tail, interpolation="linear")
    hi = r.quantile(1 - tail, interpolation="linear")
    assert lo is not None
    assert hi is not None
    return float(lo), float(hi)


def quantile_replicates(
    values: pl.Series, q: float, replicates: int, rng: random.Random
) -> pl.Series:
    """``replicates`` bootstrap replicates of the linear-interpolation ``q`` quantile of
    ``values`` (see the module doc), as a Float64 series."""
    x = values.drop_nulls().sort().cast(pl.Float64)
    n = x.len()
    if n == 0:
        return pl.Series("q", [], pl.Float64)
    h = (n - 1) * q
    k = math.floor(h) + 1  # 1-based rank of the lower order statistic
    frac = h - (k - 1)
    lo_idx, hi_idx = [], []
    for _ in range(replicates):
        u = rng.betavariate(k, n - k + 1)
        v = u + (1 - u) * rng.betavariate(1, n - k) if k < n else u
        lo_idx.append(min(int(n * u), n - 1))
        hi_idx.append(min(int(n * v), n - 1))
    lo = x.gather(lo_idx)
    hi = x.gather(hi_idx)
    return (lo + (hi - lo) * frac).rename("q")


def mean_interval(
    values: pl.Series, replicates: int, seed: int, level: float = LEVEL
) -> tuple[pl.Series | None, Interval]:
    """Replicates of the mean (or None when the normal interval is used) and its interval."""
    x = values.drop_nulls().cast(pl.Float64)
    n = x.len()
    if n == 0:
        return None, Interval(None, None, "empty")
    if n * replicates > MAX_DRAWS:
        mean, sd = float(x.mean() or 0.0), float(x.std() or 0.0)  # type: ignore[arg-type]
        z = NormalDist().inv_cdf(1 - (1 - level) / 2)
        half = z * sd / math.sqrt(n)
        return None, Interval(mean - half, mean + half, "normal")
    frame = pl.DataFrame({"v": x})
    drawn = frame.select(
        pl.col("v").sample(n * replicates, with_replacement=True, seed=seed),
        rep=pl.int_range(0, n * replicates) // n,
    )
    means = drawn.group_by("rep").agg(pl.col("v").mean()).sort("rep")["v"]
    lo, hi = percentile_interval(means, level)
    return means, Interval(lo, hi, "bootstrap")


def window_replicates(
    windows: pl.DataFrame, keys: list[str], replicates: int, seed: int
) -> pl.DataFrame:
    """Sums of ``keys`` (plus ``seconds``) over ``replicates`` draws, with replacement,
    of as many windows as ``windows`` has; one row per replicate (``rep``)."""
    k = windows.height
    if k == 0:
        return pl.DataFrame(schema={"rep": pl.Int64, "seconds": pl.Float64})
    indexed = windows.select("seconds", *keys).with_row_index("_w")
    draws = pl.DataFrame({"_w": pl.Series(range(k), dtype=pl.UInt32)}).select(
        pl.col("_w").sample(k * replicates, with_replacement=True, seed=seed),
        rep=pl.int_range(0, k * replicates, dtype=pl.Int64) // k,
    )
    return (
        draws.join(indexed, on="_w", how="left")
        .group_by("rep")
        .agg(pl.col("seconds", *keys).sum())
        .sort("rep")
    )


def ratio_interval(
    a: pl.Series | None, b: pl.Series | None, level: float = LEVEL
) -> tuple[float | None, float | None]:
    """Interval of B/A from paired independent replicates of A and B."""
    if a is None or b is None or a.len() == 0 or b.len() == 0:
        return None, None
    n = min(a.len(), b.len())
    a64, b64 = a.head(n).cast(pl.Float64), b.head(n).cast(pl.Float64)
    ratio = pl.select(pl.when(a64 != 0).then(b64 / a64)).to_series()
    if ratio.drop_nulls().drop_nans().len() < n // 2:
        return None, None
    return percentile_interval(ratio, level)


def ks_test(a: pl.Series, b: pl.Series) -> tuple[float | None, float | None]:
    """Two-sample Kolmogorov–Smirnov: the largest distance D between the two empirical
    CDFs, and its asymptotic p-value (with the small-sample correction of Stephens)."""
    na, nb = a.drop_nulls().len(), b.drop_nulls().len()
    if na == 0 or nb == 0:
        return None, None
    both = pl.concat(
        [
            pl.DataFrame({"v": a.drop_nulls().cast(pl.Float64), "ca": 1, "cb": 0}),
            pl.DataFrame({"v": b.drop_nulls().cast(pl.Float64), "ca": 0, "cb": 1}),
        ]
    )
    # Counts, not fractions, are accumulated: a sum of 1/n steps drifts off 1.0.
    steps = both.group_by("v").agg(pl.col("ca", "cb").sum()).sort("v")
    gap = pl.col("ca").cum_sum() / na - pl.col("cb").cum_sum() / nb
    d = steps.select(gap.abs().max()).item()
    d = float(d or 0.0)
    en = math.sqrt(na * nb / (na + nb))
    return d, _kolmogorov_q((en + 0.12 + 0.11 / en) * d)


def _kolmogorov_q(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution: 2 Σ (-1)^(j-1) exp(-2 j² lam²)."""
    if lam < 1e-3:
        return 1.0
    total, sign = 0.0, 1.0
    for j in range(1, 101):
        term = sign * math.exp(-2 * j * j * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
        sign = -sign
    return max(0.0, min(1.0, 2 * total))
