"""Exact figures of grouped values (percentiles, mean, extremes) in bounded memory.

A percentile needs every value of its group at once. Over a long trace a group can hold
tens of millions of values, and polars' group-by would hold all groups and their string
keys together. Here the groups are counted first (a streaming aggregation), then taken
in batches of at most ``BATCH_ROWS`` values: each batch reads only a group number and
the value, so memory follows the batch, not the trace. A group larger than a batch is a
batch of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

BATCH_ROWS = 4_000_000


def grouped(
    rows: pl.LazyFrame,
    keys: Sequence[str],
    value: pl.Expr,
    figures: Callable[[pl.Expr], list[pl.Expr]],
    batch_rows: int = BATCH_ROWS,
) -> pl.LazyFrame:
    """``rows.group_by(keys).agg(figures(value))``, evaluated batch by batch when
    collected (a group with no rows has no row)."""
    keys = list(keys)
    probe = rows.select(*keys, _v=value).group_by(keys).agg(figures(pl.col("_v")))
    schema = probe.collect_schema()

    def run() -> pl.DataFrame:
        data = rows.select(*keys, _v=value)
        sizes = (
            data.group_by(keys)
            .agg(_n=pl.len())
            .collect(engine="streaming")
            .sort(keys, nulls_last=True)
            .with_row_index("_g")
            .with_columns(_b=(pl.col("_n").cum_sum() - pl.col("_n")) // batch_rows)
        )
        parts = []
        for (_,), batch in sizes.group_by("_b", maintain_order=True):
            values = (
                data.join(batch.lazy().select(*keys, "_g"), on=keys, nulls_equal=True)
                .select("_g", "_v")
                .collect(engine="streaming")
            )
            parts.append(values.group_by("_g").agg(figures(pl.col("_v"))))
            del values
        if not parts:
            return pl.DataFrame(schema=schema)
        found = pl.concat(parts)
        out = sizes.select(*keys, "_g").join(found, on="_g").sort("_g").drop("_g")
        return out.select(schema.names()).cast(schema)

    return pl.defer(run, schema=schema)
