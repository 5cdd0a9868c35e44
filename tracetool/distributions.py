"""Exact figures of grouped integer values (percentiles, mean, extremes) in memory that
follows the number of groups, not the number of values.

A percentile needs the values at two ranks of its group. Over a long trace a group can
hold tens of millions of values, and polars' group-by would hold them all, with their
string keys. Here:

* count, min, mean and max of every group come from one streaming aggregation;
* groups of at most ``BATCH_ROWS`` values are taken in batches of at most that many
  values; each batch reads only a group number and the value;
* in a larger group each needed rank is found by narrowing: the values in the range
  known to hold the rank are counted in at most ``BUCKETS`` buckets (a streaming
  aggregation), which gives the bucket that holds it, until the range is one value or
  holds at most ``FETCH_ROWS`` values, which are then read and ordered. A 64-bit range
  takes at most four narrowing passes; every large group and rank shares each pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

BATCH_ROWS = 4_000_000
BUCKETS = 1 << 16
FETCH_ROWS = 1 << 16

# A figure of a group: its output name and what it is: "count", "min", "mean", "max",
# or a quantile in [0, 1] (linear interpolation between the two nearest ranks).
Figure = tuple[str, str | float]


def exprs(figures: Sequence[Figure], value: pl.Expr) -> list[pl.Expr]:
    """The polars expressions of ``figures`` over ``value``."""
    out = []
    for name, what in figures:
        if isinstance(what, float):
            out.append(value.quantile(what, interpolation="linear").alias(name))
        elif what in ("count", "min", "mean", "max"):
            out.append(getattr(value, what)().alias(name))
        else:
            raise ValueError(f"unknown figure {what!r} for {name!r}")
    return out


def grouped(
    rows: pl.LazyFrame,
    keys: Sequence[str],
    value: pl.Expr,
    figures: Sequence[Figure],
    batch_rows: int = BATCH_ROWS,
    fetch_rows: int = FETCH_ROWS,
) -> pl.LazyFrame:
    """``rows.group_by(keys).agg(exprs(figures, value))`` for integer values, evaluated
    in bounded memory when collected (see the module doc; a group with no rows has no
    row)."""
    keys = list(keys)
    probe = rows.select(*keys, _v=value)
    if not probe.collect_schema()["_v"].is_integer():
        raise TypeError(f"grouped figures need integer values, not {probe.collect_schema()}")
    schema = probe.group_by(keys).agg(exprs(figures, pl.col("_v"))).collect_schema()
    plain = [(n, w) for n, w in figures if not isinstance(w, float)]
    quantiles = [(n, w) for n, w in figures if isinstance(w, float)]

    def run() -> pl.DataFrame:
        data = rows.select(*keys, _v=value)
        extra = ["_n", "_min", "_max"]
        sizes = (
            data.group_by(keys)
            .agg(
                *exprs(plain, pl.col("_v")),
                _n=pl.len(),
                _min=pl.col("_v").min(),
                _max=pl.col("_v").max(),
            )
            .collect(engine="streaming")
            .sort(keys, nulls_last=True)
            .with_row_index("_g")
        )
        small = sizes.filter(pl.col("_n") <= batch_rows).with_columns(
            _b=(pl.col("_n").cum_sum() - pl.col("_n")) // batch_rows
        )
        parts = [pl.DataFrame(schema={"_g": pl.UInt32, **{n: pl.Float64 for n, _ in quantiles}})]
        for (_,), batch in small.group_by("_b", maintain_order=True):
            values = (
                data.join(batch.lazy().select(*keys, "_g"), on=keys, nulls_equal=True)
                .select("_g", "_v")
                .collect(engine="streaming")
            )
            parts.append(values.group_by("_g").agg(exprs(quantiles, pl.col("_v"))))
            del values
        large = sizes.filter(pl.col("_n") > batch_rows)
        if quantiles and not large.is_empty():
            parts.append(_narrowed(data, keys, large, quantiles, fetch_rows))
        found = pl.concat(parts, how="vertical_relaxed")
        out = sizes.join(found, on="_g", how="left").sort("_g").drop("_g", *extra)
        return out.select(schema.names()).cast(schema)

    return pl.defer(run, schema=schema)


@dataclass
class _Rank:
    """The value at 0-based rank ``rank`` of group ``g``: in ``[lo, hi]``, with
    ``below`` of the group's values under ``lo`` and ``count`` in the range."""

    g: int
    rank: int
    lo: int
    hi: int
    below: int
    count: int
    value: int | None = None


def _narrowed(
    data: pl.LazyFrame,
    keys: list[str],
    large: pl.DataFrame,
    quantiles: Sequence[Figure],
    fetch_rows: int,
) -> pl.DataFrame:
    """The ``quantiles`` of the ``large`` groups (``_g``, ``_n``, ``_min``, ``_max``),
    found by narrowing (see the module doc)."""
    ranks: dict[tuple[int, int], _Rank] = {}
    for g, n, lo, hi in large.select("_g", "_n", "_min", "_max").iter_rows():
        for _, q in quantiles:
            pos = (n - 1) * float(q)
            for r in (math.floor(pos), math.ceil(pos)):
                ranks[(g, r)] = _Rank(g, r, lo, hi, 0, n)
    members = data.join(large.lazy().select(*keys, "_g"), on=keys, nulls_equal=True).select(
        "_g", "_v"
    )
    while True:
        for r in ranks.values():
            if r.value is None and r.lo == r.hi:
                r.value = r.lo
        open_ = [r for r in ranks.values() if r.value is None]
        if not open_:
            break
        # Ranks in the same range share its pass; ranges are disjoint or equal.
        ranges = sorted({(r.g, r.lo, r.hi, r.count) for r in open_})
        fetch = [x for x in ranges if x[3] <= fetch_rows]
        count = [x for x in ranges if x[3] > fetch_rows]
        if fetch:
            values = members.filter(_within(fetch)).collect(engine="streaming")
            for r in open_:
                if r.count <= fetch_rows:
                    mine = values.filter(
                        (pl.col("_g") == r.g) & pl.col("_v").is_between(r.lo, r.hi)
                    )["_v"].sort()
                    r.value = int(mine[r.rank - r.below])
        if count:
            _narrow(members, count, open_)
    out: dict[str, list[object]] = {"_g": [], **{n: [] for n, _ in quantiles}}
    for g, n in large.select("_g", "_n").iter_rows():
        out["_g"].append(g)
        for name, q in quantiles:
            pos = (n - 1) * float(q)
            a, b = ranks[(g, math.floor(pos))].value, ranks[(g, math.ceil(pos))].value
            assert a is not None
            assert b is not None
            out[name].append(float(a) + (float(b) - float(a)) * (pos - math.floor(pos)))
    return pl.DataFrame(out, schema={"_g": pl.UInt32, **{n: pl.Float64 for n, _ in quantiles}})


def _within(ranges: Sequence[tuple[int, int, int, int]]) -> pl.Expr:
    """Rows of group ``g`` with a value in ``[lo, hi]``, for any of ``ranges``."""
    return pl.any_horizontal(
        (pl.col("_g") == g) & pl.col("_v").is_between(lo, hi) for g, lo, hi, _ in ranges
    )


def _narrow(
    members: pl.LazyFrame, ranges: list[tuple[int, int, int, int]], ranks: list[_Rank]
) -> None:
    """One pass: count each range's values in at most ``BUCKETS`` buckets of width
    ``2^k`` and move each open rank of it into the bucket that holds it."""
    widths = {
        (g, lo, hi): max(0, (hi - lo).bit_length() - (BUCKETS.bit_length() - 1))
        for g, lo, hi, _ in ranges
    }
    bucket = pl.lit(None, pl.Int64)
    for (g, lo, hi), k in widths.items():
        inside = (pl.col("_g") == g) & pl.col("_v").is_between(lo, hi)
        bucket = pl.when(inside).then(pl.col("_v") // (1 << k)).otherwise(bucket)
    index = pl.lit(None, pl.Int64)
    for i, (g, lo, hi) in enumerate(widths):
        inside = (pl.col("_g") == g) & pl.col("_v").is_between(lo, hi)
        index = pl.when(inside).then(pl.lit(i, pl.Int64)).otherwise(index)
    counts = (
        members.select(_i=index, _b=bucket)
        .filter(pl.col("_i").is_not_null())
        .group_by("_i", "_b")
        .agg(_c=pl.len())
        .collect(engine="streaming")
        .sort("_i", "_b")
    )
    order = list(widths)
    for (i,), table in counts.group_by("_i", maintain_order=True):
        g, lo, hi = order[int(i)]
        k = widths[(g, lo, hi)]
        buckets = table["_b"].to_list()
        sizes = table["_c"].to_list()
        for r in ranks:
            if (r.g, r.lo, r.hi) != (g, lo, hi):
                continue
            seen = r.below
            for b, c in zip(buckets, sizes, strict=True):
                if seen + c > r.rank:
                    r.lo, r.hi = max(lo, b << k), min(hi, ((b + 1) << k) - 1)
                    r.below, r.count = seen, c
                    break
                seen += c


CDF_POINTS = 500
EXACT_CDF_ROWS = 250_000  # a group of at most this many values is ranked whole
CDF_BINS = 1 << 13  # log-spaced bins a larger group is counted in


def _thinned(rank: str, n: str, points: int) -> pl.Expr:
    """Keep about ``points`` of ``n`` rows by ``rank``: every ``n // points``th, and the
    last."""
    step = (pl.col(n) // points).clip(lower_bound=1)
    return (pl.col(rank) % step == 0) | (pl.col(rank) == pl.col(n) - 1)


def cdf_points(samples: pl.DataFrame, points: int = CDF_POINTS) -> pl.DataFrame:
    """Per ``group``: (``value``, ``p``) on the empirical CDF of ``value``, thinned to
    about ``points`` evenly spaced ranks (the first and last always kept)."""
    ranked = samples.sort("group", "value").with_columns(
        rank=pl.int_range(pl.len()).over("group"), n=pl.len().over("group")
    )
    return ranked.filter(_thinned("rank", "n", points)).select(
        "group", pl.col("value").cast(pl.Float64), p=(pl.col("rank") + 1) / pl.col("n")
    )


def cdf(
    samples: pl.LazyFrame,
    points: int = CDF_POINTS,
    exact_rows: int = EXACT_CDF_ROWS,
    bins: int = CDF_BINS,
) -> pl.LazyFrame:
    """``cdf_points`` of ``samples`` (``group``, integer ``value``) in memory that
    follows the number of groups. A group of at most ``exact_rows`` values is ranked
    whole. A larger one is counted in ``bins`` log-spaced bins between its least and
    greatest value (one streaming pass); the largest value of each bin, with the share
    of values up to it, is a point on the exact CDF. Those points are then thinned to
    about ``points`` in the same way."""
    schema = pl.Schema({"group": pl.String, "value": pl.Float64, "p": pl.Float64})

    def run() -> pl.DataFrame:
        sizes = (
            samples.group_by("group")
            .agg(n=pl.len(), lo=pl.col("value").min(), hi=pl.col("value").max())
            .collect(engine="streaming")
        )
        small = sizes.filter(pl.col("n") <= exact_rows).select("group")
        parts = [pl.DataFrame(schema=schema)]
        if small.height:
            rows = samples.join(small.lazy(), on="group").collect(engine="streaming")
            parts.append(cdf_points(rows, points).cast(schema))
            del rows
        large = sizes.filter(pl.col("n") > exact_rows)
        if large.height:
            v = pl.col("value").cast(pl.Float64)
            lo = pl.col("lo").cast(pl.Float64).clip(lower_bound=1.0)
            spread = (pl.col("hi").cast(pl.Float64).clip(lower_bound=1.0) / lo).log()
            where = (v.clip(lower_bound=1.0) / lo).log() / spread * bins
            binned = pl.when(spread > 0).then(where.floor().clip(0, bins - 1)).otherwise(0)
            counts = (
                samples.join(large.lazy(), on="group")
                .group_by("group", b=binned)
                .agg(c=pl.len(), top=pl.col("value").max(), n=pl.col("n").first())
                .collect(engine="streaming")
                .sort("group", "b")
            )
            tops = counts.with_columns(
                rank=pl.int_range(pl.len()).over("group"),
                m=pl.len().over("group"),
                p=pl.col("c").cum_sum().over("group") / pl.col("n"),
            )
            thin = _thinned("rank", "m", points)
            parts.append(tops.filter(thin).select("group", value=pl.col("top"), p="p").cast(schema))
        return pl.concat(parts).sort("group", "value", maintain_order=True)

    return pl.defer(run, schema=schema)
