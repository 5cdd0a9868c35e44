"""Addresses to functions, source lines and inline chains, as joins (no per-address
Python): a backward ``join_asof`` of the sorted addresses against each table, kept only
where the address lies inside what it matched (the symbol's size, the line's sequence,
the scope's segment).

The result has, per address, ``symbol`` and ``offset`` (from the symbol table),
``file``/``line``/``discriminator`` of the address, and ``frames``: the innermost
function first, then each function it was inlined into, each with the file and line
it is at, which is what ``addr2line -f -i`` prints.
"""

from __future__ import annotations

import polars as pl

from tracetool.symbols.tables import Tables

FRAME = pl.Struct(
    {"func": pl.String, "file": pl.String, "line": pl.UInt32, "discriminator": pl.UInt32}
)


def resolve(tables: Tables, addrs: pl.DataFrame, column: str = "addr") -> pl.DataFrame:
    """``addrs`` with ``symbol``, ``offset``, ``file``, ``line``, ``discriminator`` and
    ``frames`` added; ``column`` holds the addresses (UInt64)."""
    base = addrs.with_row_index("__row").with_columns(__a=pl.col(column).cast(pl.UInt64))
    ordered = base.sort("__a")
    funcs = tables.functions.select(__s_addr="addr", symbol="name", __s_size="size").sort(
        "__s_addr"
    )
    with_sym = ordered.join_asof(funcs, left_on="__a", right_on="__s_addr", strategy="backward")
    inside = (pl.col("__a") < pl.col("__s_addr") + pl.col("__s_size")) | (
        (pl.col("__s_size") == 0) & (pl.col("__a") == pl.col("__s_addr"))
    )
    with_sym = with_sym.with_columns(
        symbol=pl.when(inside).then("symbol"),
        offset=pl.when(inside).then(pl.col("__a") - pl.col("__s_addr")),
    )
    lines = tables.lines.select(
        __l_addr="addr", __file="file", __line="line", __disc="discriminator", __end="seq_end"
    ).sort("__l_addr")
    with_line = with_sym.join_asof(lines, left_on="__a", right_on="__l_addr", strategy="backward")
    in_seq = pl.col("__a") < pl.col("__end")
    with_line = with_line.with_columns(
        file=pl.when(in_seq).then("__file"),
        line=pl.when(in_seq).then("__line"),
        discriminator=pl.when(in_seq).then("__disc"),
    )
    scopes = tables.scopes.select(__lo="lo", __hi="hi", __scope="scope").sort("__lo")
    with_scope = with_line.join_asof(scopes, left_on="__a", right_on="__lo", strategy="backward")
    with_scope = with_scope.with_columns(
        __scope=pl.when(pl.col("__a") < pl.col("__hi")).then("__scope")
    ).drop(
        "__s_addr", "__s_size", "__l_addr", "__file", "__line", "__disc", "__end", "__lo", "__hi"
    )
    # Frames depend only on the scope and the line row: build them once per distinct pair
    # (far fewer than addresses) and join them back.
    key = ["__scope", "symbol", "file", "line", "discriminator"]
    distinct = (
        with_scope.select(key)
        .unique()
        .with_row_index("__k")
        .join(tables.chains.rename({"scope": "__scope"}), on="__scope", how="left")
    )
    frames = _frames(distinct.rename({"__k": "__row"})).rename({"__row": "__k"})
    keyed = distinct.select("__k", *key).join(frames, on="__k", how="left")
    return (
        with_scope.join(keyed, on=key, how="left", nulls_equal=True)
        .sort("__row")
        .drop("__row", "__a", "__scope", "__k")
    )


def _frames(rows: pl.DataFrame) -> pl.DataFrame:
    """``__row`` -> ``frames``, innermost first: level 0 is at the address's own line,
    level k at the call site recorded on level k-1. Without DWARF scopes, the symbol
    alone."""
    levels = (
        rows.filter(pl.col("frames").list.len() > 0)
        .with_columns(level=pl.int_ranges(pl.col("frames").list.len()))
        .explode("frames", "level")
        .unnest("frames")
        .with_columns(
            prev_file=pl.col("call_file").shift(1).over("__row"),
            prev_line=pl.col("call_line").shift(1).over("__row"),
        )
        .select(
            "__row",
            "level",
            func="func",
            file=pl.when(pl.col("level") == 0).then("file").otherwise("prev_file"),
            line=pl.when(pl.col("level") == 0).then("line").otherwise("prev_line"),
            discriminator=pl.when(pl.col("level") == 0).then("discriminator").otherwise(0),
        )
    )
    nested = (
        levels.sort("__row", "level")
        .group_by("__row", maintain_order=True)
        .agg(frames=pl.struct("func", "file", "line", "discriminator"))
    )
    bare = rows.filter(
        (pl.col("frames").list.len().fill_null(0) == 0) & pl.col("symbol").is_not_null()
    ).select(
        "__row",
        frames=pl.concat_list(
            pl.struct(func="symbol", file="file", line="line", discriminator="discriminator")
        ),
    )
    return pl.concat([nested, bare], how="vertical_relaxed").with_columns(
        pl.col("frames").cast(pl.List(FRAME))
    )
