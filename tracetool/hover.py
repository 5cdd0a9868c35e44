"""The text of a timeline: hover labels, escaped for HTML and plotly, and the input
lines (evidence, crash reports) read back for the details panel."""

from __future__ import annotations

import html
import textwrap
from pathlib import Path

import polars as pl

MAX_EVIDENCE = 12  # evidence lines in a hover; the details panel has them all


def sec(ts: pl.Expr) -> pl.Expr:
    """ns as seconds with all nine decimals, as a trace prints them."""
    return pl.format(
        "{}.{}", ts // 1_000_000_000, (ts % 1_000_000_000).cast(pl.String).str.zfill(9)
    )


def dur_text(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    d = (b - a).cast(pl.Float64)
    return (
        pl.when(d >= 1e6)
        .then(pl.format("{} ms", (d / 1e6).round(3)))
        .when(d >= 1e3)
        .then(pl.format("{} µs", (d / 1e3).round(3)))
        .otherwise(pl.format("{} ns", d))
    )


def extent(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """``531.000039000-531.000074000 s · 35.0 µs``: a span's times and length."""
    return pl.format("{}-{} s · {}", sec(start), sec(end), dur_text(start, end))


def read_lines(wanted: pl.DataFrame) -> dict[tuple[str, int], str]:
    """The text of input lines (``file``, ``line`` columns), read back from the files:
    the evidence shown with a finding or a crash. Inputs that are gone (or stdin) give
    nothing; the ``path:line`` is still shown."""
    from tracetool.inputs import Source

    out: dict[tuple[str, int], str] = {}
    for (name,), part in wanted.unique().group_by(["file"]):
        path = Path(str(name))
        if not path.is_file():
            continue
        need = set(part["line"].cast(pl.Int64).to_list())
        last = max(need)
        with Source(str(name), path).open() as stream:
            for no, raw in enumerate(stream, 1):
                if no in need:
                    out[(str(name), no)] = raw.decode("utf-8", "replace").rstrip("\r\n")
                if no >= last:
                    break
    return out


def evidence_pairs(col: pl.Series) -> pl.DataFrame:
    """``file``/``line`` of every ``path:line`` string in a list column."""
    flat = pl.DataFrame({"ev": col}).explode("ev").drop_nulls()
    parts = flat["ev"].str.extract_groups(r"^(?P<file>.*):(?P<line>\d+)$").struct.unnest()
    return parts.drop_nulls().with_columns(pl.col("line").cast(pl.Int64))


def with_text(evidence: list[str], text: dict[tuple[str, int], str]) -> list[str]:
    out = []
    for ev in evidence:
        file, _, line = ev.rpartition(":")
        raw = text.get((file, int(line))) if line.isdigit() else None
        out.append(f"{ev}  {raw}" if raw is not None else ev)
    return out


def html_text(text: object) -> str:

    return html.escape(str(text), quote=True)


def escaped(expr: pl.Expr) -> pl.Expr:
    """A string column safe for HTML and for plotly labels (which render some HTML)."""
    return (
        expr.str.replace_all("&", "&amp;", literal=True)
        .str.replace_all("<", "&lt;", literal=True)
        .str.replace_all(">", "&gt;", literal=True)
        .str.replace_all('"', "&quot;", literal=True)
        .str.replace_all("'", "&#x27;", literal=True)
    )


def escape_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Every string (and list of strings) of ``df`` escaped, before it reaches a label."""
    out = []
    for name, dtype in df.schema.items():
        if dtype == pl.String:
            out.append(escaped(pl.col(name)))
        elif dtype == pl.List(pl.String):
            out.append(pl.col(name).list.eval(escaped(pl.element())))
    return df.with_columns(out) if out else df


def wrap(text: str, width: int = 100) -> list[str]:

    return textwrap.wrap(text, width) or [""]
