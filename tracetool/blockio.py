"""Block I/Os: a ``block_rq_issue`` paired with the next ``block_rq_complete`` of the
same device and sector in the same input."""

from __future__ import annotations

import polars as pl

SECTOR = 512


def _dev() -> pl.Expr:
    a = pl.col("args").struct.field
    return pl.format("{}:{}", a("dev_major"), a("dev_minor"))


def issues(events: pl.LazyFrame) -> pl.LazyFrame:
    """``file line dev sector rwbs bytes issue_ts`` of every issue."""
    a = pl.col("args").struct.field
    return events.filter(pl.col("event") == "block_rq_issue").select(
        "file",
        "line",
        dev=_dev(),
        sector=a("sector"),
        rwbs=a("rwbs"),
        bytes=pl.coalesce(a("bytes"), a("nr_sector") * SECTOR),
        issue_ts="ts",
    )


def completions(events: pl.LazyFrame) -> pl.LazyFrame:
    """``file dev sector done_ts error`` of every completion."""
    a = pl.col("args").struct.field
    return events.filter(pl.col("event") == "block_rq_complete").select(
        "file", dev=_dev(), sector=a("sector"), done_ts="ts", error=a("error")
    )


def pair(issued: pl.LazyFrame, completed: pl.LazyFrame) -> pl.LazyFrame:
    """Every issue with the next completion of its device and sector (``done_ts`` and
    ``error`` null when none follows)."""
    return issued.sort("issue_ts").join_asof(
        completed.sort("done_ts"),
        left_on="issue_ts",
        right_on="done_ts",
        by=["file", "dev", "sector"],
        strategy="forward",
        check_sortedness=False,
    )


def block_ios(events: pl.LazyFrame) -> pl.LazyFrame:
    """One row per completed I/O, with its ``latency`` in ns."""
    return done(pair(issues(events), completions(events)))


def done(paired: pl.LazyFrame) -> pl.LazyFrame:
    """The paired issues that completed, with their ``latency``."""
    return paired.filter(pl.col("done_ts").is_not_null()).with_columns(
        latency=pl.col("done_ts") - pl.col("issue_ts")
    )
