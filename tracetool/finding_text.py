"""The parts every finding is written from: who did what (``who``), the columns of
one side of a match (``side``), the evidence lines, and the notes a message ends with.
Shared by the rule kinds in ``check`` and ``mappings``."""

from __future__ import annotations

import polars as pl

from tracetool.rules import Rule


def who(p: str) -> pl.Expr:
    """``s390_iommu_release_device on CPU 3 (kmcheck-41)``; without " on CPU n" when the
    source prints no CPU (bpftrace printf lines), "?" for a missing comm or pid."""
    cpu = pl.col(f"{p}cpu")
    return pl.concat_str(
        pl.col(f"{p}func").fill_null("?"),
        pl.when(cpu.is_not_null()).then(pl.format(" on CPU {}", cpu)).otherwise(pl.lit("")),
        pl.format(
            " ({}-{})",
            pl.col(f"{p}comm").fill_null("?"),
            pl.col(f"{p}pid").cast(pl.String).fill_null("?"),
        ),
    )


def side(spans: pl.LazyFrame, expr: pl.Expr, prefix: str) -> pl.LazyFrame:
    cols = [
        "sid",
        "device",
        "device_how",
        "device_why",
        "func",
        "kind",
        "start_ts",
        "end_ts",
        "exact",
        "pid",
        "comm",
        "cpu",
        "task",
        "lockset",
        "evidence",
        "device_evidence",
        "start_line",
        "location",
    ]
    return spans.filter(expr & pl.col("device").is_not_null()).select(
        "file", *(pl.col(c).alias(prefix + c) for c in cols)
    )


def sorted_evidence(lists: pl.Expr) -> pl.Expr:
    """``path:line`` strings, unique, ordered by path and then line number."""
    e = pl.element()
    return lists.list.unique().list.eval(
        e.sort_by(e.str.extract(r"^(.*):", 1), e.str.extract(r":(\d+)$", 1).cast(pl.Int64))
    )


def evidence(*prefixes: str) -> pl.Expr:
    parts = []
    for p in prefixes:
        parts += [pl.col(f"{p}evidence").fill_null([]), pl.col(f"{p}device_evidence").fill_null([])]
    return sorted_evidence(pl.concat_list(parts))


def inferred_note(p: str) -> pl.Expr:
    return (
        pl.when(pl.col(f"{p}device_how") == "inferred")
        .then(pl.format(" (device inferred: {})", pl.col(f"{p}device_why")))
        .otherwise(pl.lit(""))
    )


def note(rule: Rule) -> pl.Expr:
    return pl.lit(f"; {rule.note}" if rule.note else "")
