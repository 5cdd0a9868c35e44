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
    # Level 0 is at the address's own line; the outer levels depend on the scope only,
    # so they are built once per scope (``scope_frames``) and joined on. Addresses with
    # nothing inlined get a one-frame list directly; the others are put together once
    # per distinct scope and line (exploding and grouping: concat_list on nested lists
    # is an order of magnitude slower) and joined back.
    joined = with_scope.join(scope_frames(tables), on="__scope", how="left")
    level0 = pl.struct(
        func=pl.col("__func0"), file="file", line="line", discriminator="discriminator"
    )
    alone = pl.struct(func="symbol", file="file", line="line", discriminator="discriminator")
    has_scope = pl.col("__func0").is_not_null()
    nested = has_scope & (pl.col("__outer").list.len() > 0)
    flat = joined.filter(~nested.fill_null(False)).with_columns(
        frames=pl.when(has_scope)
        .then(pl.concat_list(level0))
        .when(pl.col("symbol").is_not_null())
        .then(pl.concat_list(alone))
        .cast(pl.List(FRAME))
    )
    inlined = joined.filter(nested.fill_null(False))
    key = ["__scope", "file", "line", "discriminator"]
    distinct = inlined.select(*key, "__func0", "__outer").unique(key).with_row_index("__k")
    first = distinct.select("__k", __pos=pl.lit(0, pl.UInt32), __fr=level0)
    rest = (
        distinct.select("__k", "__outer")
        .with_columns(__pos=pl.int_ranges(1, pl.col("__outer").list.len() + 1, dtype=pl.UInt32))
        .explode("__outer", "__pos")
        .select("__k", "__pos", __fr="__outer")
    )
    built = (
        pl.concat([first, rest.with_columns(pl.col("__fr").cast(first.schema["__fr"]))])
        .sort("__k", "__pos")
        .group_by("__k", maintain_order=True)
        .agg(frames=pl.col("__fr"))
        .with_columns(pl.col("frames").cast(pl.List(FRAME)))
        .join(distinct.select("__k", *key), on="__k")
        .drop("__k")
    )
    inlined = inlined.join(built, on=key, how="left", nulls_equal=True)
    return (
        pl.concat([flat, inlined], how="vertical_relaxed")
        .sort("__row")
        .drop("__row", "__a", "__scope", "__func0", "__outer")
    )


def scope_frames(tables: Tables) -> pl.DataFrame:
    """Per scope: ``__func0`` (its function) and ``__outer``, the frames it was inlined
    into, outwards, each at the call site recorded one level in. Built once per tables."""
    cached = getattr(tables, "_scope_frames", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    chains = tables.chains.filter(pl.col("frames").list.len() > 0)
    levels = (
        chains.with_columns(level=pl.int_ranges(pl.col("frames").list.len()))
        .explode("frames", "level")
        .unnest("frames")
        .with_columns(
            file=pl.col("call_file").shift(1).over("scope"),
            line=pl.col("call_line").shift(1).over("scope"),
        )
    )
    outer = (
        levels.filter(pl.col("level") > 0)
        .sort("scope", "level")
        .group_by("scope", maintain_order=True)
        .agg(__outer=pl.struct("func", "file", "line", discriminator=pl.lit(0, pl.UInt32)))
    )
    out = (
        levels.filter(pl.col("level") == 0)
        .select(__scope="scope", __func0="func")
        .join(outer.rename({"scope": "__scope"}), on="__scope", how="left")
        .with_columns(pl.col("__outer").fill_null(pl.lit([], pl.List(FRAME))).cast(pl.List(FRAME)))
    )
    tables._scope_frames = out  # type: ignore[attr-defined]
    return out
