"""Frames in text (crash reports, ftrace stack traces, perf and bpftrace stacks) and their
addresses, all as polars expressions over the lines.

A frame is ``func+0x1a/0x80`` (``[module]`` after it for a module), optionally after a
raw ``[<000000095bb10d28>]`` address, and in an s390 call trace possibly wrapped in
parentheses, which marks it unreliable. perf callchains print ``func+0x1a`` (no size)
and bpftrace's kstack ``func+26`` (a decimal offset); both are frames too.

A frame's address is the symbol's start plus the offset; where the name is not in the
binary, the raw address minus the KASLR offset. The KASLR offset itself, unless given,
is the most common difference between a frame's raw address and the address its name
and offset give.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from tracetool.symbols.tables import Tables

FRAME_RE = (
    r"(?P<unreliable>\()?(?:\[<(?P<raw>[0-9a-fA-F]{8,16})>\]\s*)?"
    r"(?P<func>[A-Za-z_.$][\w.$]*)\+(?:0x(?P<off>[0-9a-fA-F]+)(?:/0x(?P<size>[0-9a-fA-F]+))?"
    r"|(?P<dec>\d+)\b)"
    # "[module]", or "[module build-id]" from a CONFIG_STACKTRACE_BUILD_ID kernel
    r"(?:\s+\[(?P<module>[\w-]+(?: [0-9a-f]{16,64})?)\])?"
)


def _hex(col: str) -> pl.Expr:
    return pl.col(col).str.to_integer(base=16, strict=False).cast(pl.UInt64)


def find(lines: pl.DataFrame, column: str = "text") -> pl.DataFrame:
    """One row per line that shows a frame: the line's columns, ``func``, ``off``,
    ``size``, ``raw`` (the printed address, if any), ``module`` and ``unreliable``."""
    parts = lines.with_columns(__m=pl.col(column).str.extract_groups(FRAME_RE))
    return (
        parts.unnest("__m")
        .filter(pl.col("func").is_not_null())
        .with_columns(
            off=pl.coalesce(_hex("off"), pl.col("dec").cast(pl.UInt64, strict=False)),
            size=_hex("size"),
            raw=_hex("raw"),
            unreliable=pl.col("unreliable").is_not_null(),
        )
        .drop("dec")
    )


def addresses(
    frames: pl.DataFrame, t: Tables, kaslr_offset: int | None = None
) -> tuple[pl.DataFrame, int | None]:
    """``frames`` with ``addr`` (in the binary's address space) and ``how`` (symbol,
    raw, module, unknown), and the KASLR offset used (given or derived; None if
    neither)."""
    funcs = t.functions.select(func="name", sym_addr="addr", sym_size="size")
    indexed = frames.with_row_index("__f")
    matched = (
        indexed.join(funcs, on="func", how="left")
        # Static functions share names: prefer the one whose size the frame printed.
        .with_columns(__fit=(pl.col("sym_size") == pl.col("size")).fill_null(False))
        .sort("__f", "__fit", descending=[False, True])
        .unique("__f", keep="first", maintain_order=True)
    )
    by_name = pl.when(pl.col("module").is_null() & pl.col("sym_addr").is_not_null()).then(
        pl.col("sym_addr") + pl.col("off")
    )
    if kaslr_offset is None:
        diffs = matched.filter(by_name.is_not_null() & pl.col("raw").is_not_null()).select(
            d=pl.col("raw").cast(pl.Int64) - by_name.cast(pl.Int64)
        )
        if diffs.height:
            kaslr_offset = int(diffs["d"].mode().sort()[0])
    from_raw = (
        (pl.col("raw").cast(pl.Int64) - (kaslr_offset or 0)).cast(pl.UInt64)
        if kaslr_offset is not None
        else pl.lit(None, pl.UInt64)
    )
    out = matched.with_columns(
        addr=pl.coalesce(by_name, pl.when(pl.col("module").is_null()).then(from_raw)),
        how=pl.when(pl.col("module").is_not_null())
        .then(pl.lit("module"))
        .when(by_name.is_not_null())
        .then(pl.lit("symbol"))
        .when(from_raw.is_not_null() & pl.col("raw").is_not_null())
        .then(pl.lit("raw"))
        .otherwise(pl.lit("unknown")),
    ).drop("__f", "__fit", "sym_addr", "sym_size")
    return out, kaslr_offset


SOURCE = pl.Struct({"file": pl.String, "line": pl.UInt32, "inlined": pl.List(pl.String)})


def source() -> pl.Expr:
    """A resolved frame's ``SOURCE``: the printed function's file and line (the outermost
    of its inline chain ``frames``) and what was inlined there, innermost first."""
    inlined = (
        pl.col("frames")
        .list.head(pl.col("frames").list.len() - 1)
        .list.eval(
            pl.format(
                "{} {}:{}",
                pl.element().struct.field("func"),
                pl.element().struct.field("file"),
                pl.element().struct.field("line"),
            )
        )
    )
    last = pl.col("frames").list.last()
    return pl.struct(
        file=last.struct.field("file"), line=last.struct.field("line"), inlined=inlined
    ).cast(SOURCE)


def resolve_frames(
    frames: pl.DataFrame,
    placed: pl.DataFrame,
    t: Tables,
    resolve_module: Callable[[str, pl.DataFrame], pl.DataFrame] | None,
) -> pl.DataFrame:
    """The frames that could be placed, resolved: the kernel image's by their address
    in ``placed`` (``addresses``), each ``[module]``'s by ``resolve_module``. Empty (no
    columns) when none could."""
    from tracetool.symbols.resolve import resolve

    parts = [resolve(t, placed.filter(pl.col("addr").is_not_null()))]
    if resolve_module is not None:
        for (name,), group in frames.filter(pl.col("module").is_not_null()).group_by("module"):
            parts.append(resolve_module(str(name), group))
    found = [p for p in parts if p.height]
    return pl.concat(found, how="diagonal_relaxed") if found else pl.DataFrame()


def kernel_frame(frame: pl.Expr) -> pl.Expr:
    """A stack entry as a kernel log would print it, or null when it is not kernel code.
    perf callchain entries carry their DSO and address (``func+0x2c ([kernel.kallsyms])
    <95a1c4d3c>``): the kernel's become ``[<95a1c4d3c>] func+0x2c``, a module's
    (``([nvme])``) ``func+0x88 [nvme]``, and user-space ones (a path) are dropped, since
    a function of the same name in the vmlinux is not where they ran."""
    dso = frame.str.extract(r"\(([^()]*)\)\s*(?:<[0-9a-fA-F]+>)?\s*$", 1)
    raw = frame.str.extract(r"<([0-9a-fA-F]+)>\s*$", 1)
    head = frame.str.extract(r"^\s*(\S+)", 1)
    module = dso.str.extract(r"^\[([\w-]+)\]$", 1)
    return (
        pl.when(dso.is_null())
        .then(frame)
        .when(dso == "[kernel.kallsyms]")
        .then(pl.when(raw.is_not_null()).then(pl.format("[<{}>] {}", raw, head)).otherwise(head))
        .when(module.is_not_null() & (module != "unknown"))
        .then(pl.format("{} [{}]", head, module))
        .otherwise(pl.lit(None, pl.String))
    )


def symbolize_stacks(
    events: pl.DataFrame,
    t: Tables,
    resolve_module: Callable[[str, pl.DataFrame], pl.DataFrame] | None = None,
    kaslr_offset: int | None = None,
) -> pl.DataFrame:
    """``events`` with ``stack_src``: for each frame of its ``stack`` (an ftrace
    ``<stack trace>``, a perf callchain, a bpftrace kstack), its ``SOURCE``, or null
    where it could not be placed."""

    rows = (
        events.select("stack")
        .with_row_index("__r")
        .filter(pl.col("stack").list.len() > 0)
        .with_columns(__i=pl.int_ranges(pl.col("stack").list.len()))
        .explode("stack", "__i")
        .filter(pl.col("stack").is_not_null())
    )
    frames = find(rows.with_columns(stack=kernel_frame(pl.col("stack"))), "stack")
    placed, _ = addresses(frames, t, kaslr_offset)
    done = resolve_frames(frames, placed, t, resolve_module)
    empty = pl.lit([], pl.List(SOURCE))
    if done.height == 0:
        return events.with_columns(
            stack_src=pl.when(pl.col("stack").is_not_null())
            .then(pl.col("stack").list.eval(pl.lit(None, SOURCE)))
            .otherwise(empty)
        )
    per_frame = done.select("__r", "__i", __src=source()).unique(["__r", "__i"])
    grouped = (
        rows.select("__r", "__i")
        .join(per_frame, on=["__r", "__i"], how="left")
        .sort("__r", "__i")
        .group_by("__r", maintain_order=True)
        .agg(stack_src=pl.col("__src"))
    )
    return (
        events.with_row_index("__r")
        .join(grouped, on="__r", how="left")
        .drop("__r")
        .with_columns(pl.col("stack_src").cast(pl.List(SOURCE)).fill_null(empty))
    )


def symbolize_reports(
    crashes: pl.DataFrame,
    t: Tables,
    resolve_module: Callable[[str, pl.DataFrame], pl.DataFrame] | None = None,
    kaslr_offset: int | None = None,
) -> tuple[pl.DataFrame, int | None]:
    """``crashes`` (the dmesg parser's table) with ``sources``: for each of a report's
    ``frames``, its source ``file``/``line`` and what was inlined there (``inlined``:
    "func file:line", innermost first), or null where it could not be placed.
    ``resolve_module(name, frames)`` resolves the frames of a ``[module]``."""

    frames = (
        crashes.select("file", "line", "frames")
        .with_row_index("__r")
        .with_columns(__i=pl.int_ranges(pl.col("frames").list.len()))
        .explode("frames", "__i")
        .filter(pl.col("frames").is_not_null())
        .unnest("frames")
        .select(
            "__r",
            "__i",
            "func",
            "off",
            "size",
            "module",
            raw="addr",
            unreliable=~pl.col("reliable").fill_null(True),
        )
    )
    placed, kaslr_offset = addresses(frames, t, kaslr_offset)
    done = resolve_frames(frames, placed, t, resolve_module)
    if done.height == 0:
        sources = crashes.with_columns(sources=pl.col("frames").list.eval(pl.lit(None, SOURCE)))
        return sources, kaslr_offset
    per_frame = done.select("__r", "__i", source=source())
    grouped = (
        crashes.with_row_index("__r")
        .with_columns(__i=pl.int_ranges(pl.col("frames").list.len()))
        .select("__r", "__i")
        .explode("__i")
        .join(per_frame, on=["__r", "__i"], how="left")
        .sort("__r", "__i")
        .group_by("__r", maintain_order=True)
        .agg(sources=pl.col("source").filter(pl.col("__i").is_not_null()))
    )
    out = (
        crashes.with_row_index("__r")
        .join(grouped, on="__r", how="left")
        .drop("__r")
        .with_columns(pl.col("sources").cast(pl.List(SOURCE)))
    )
    return out, kaslr_offset


def locate_guilty(crashes: pl.DataFrame) -> pl.DataFrame:
    """Symbolized reports (``sources``) with ``location`` filled, where the report
    printed none (an Oops, a BUG without file:line), from its guilty frame's source."""
    if "sources" not in crashes.columns or crashes.height == 0:
        return crashes
    pairs = (
        crashes.select("guilty", "frames", "sources")
        .with_row_index("__r")
        .filter(pl.col("frames").list.len() == pl.col("sources").list.len())
        .explode("frames", "sources")
        .filter(pl.col("frames").struct.field("func") == pl.col("guilty"))
        .group_by("__r", maintain_order=True)
        .first()
        .select(
            "__r",
            __loc=pl.format(
                "{}:{}",
                pl.col("sources").struct.field("file"),
                pl.col("sources").struct.field("line"),
            ),
        )
    )
    return (
        crashes.with_row_index("__r")
        .join(pairs, on="__r", how="left")
        .with_columns(location=pl.coalesce("location", "__loc"))
        .drop("__r", "__loc")
    )
