"""Crash reports in a kernel log, assembled into the ``crashes`` table.

The grammar is catalogue data (``[reports]`` in ``parsers/dmesg.toml``): title lines,
the ``cut here`` and ``end trace`` lines, the lines a report's body is made of, stack
frame shapes, and the helper functions that are never the guilty frame.

A report opens at a ``cut here`` line or a title and ends at its ``end trace`` line or
where the next one opens, within one context: the printk caller id when the log has one,
else the whole log. Between, a line belongs to the report when it has the shape of a
report line (a frame, ``Krnl PSW``, ``Modules linked in:``, ...), or is one of the few
lines between ``cut here`` and the title (a WARN's own message). Any other line, such
as another CPU's ``pci 0004:00:00.0: Removing from iommu group 4`` printed in the middle
of a call trace, stays an event of its own. Everything is vectorised over the chunk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from tracetool.catalogue import FormatSpec
from tracetool.events import FRAME, RECORD_SCHEMAS
from tracetool.ftrace import _int, _with_sentinel

# Lines between "cut here" and the title that are the WARN's own message.
MESSAGE_LINES = 4
# Lines after a report's end within which a panic still belongs to it.
REOPEN_LINES = 3
TITLE_CAP = 120  # characters of a signature, as deduplicating tools cap titles
# Suffixes the compiler gives cloned functions (foo.isra.0, foo.cold, foo.part.3).
CLONE_SUFFIX = r"\.(?:isra|constprop|part|cold|llvm|lto_priv)(?:\.\d+)*"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Title:
    kind: str
    pattern: str
    template: str
    continues: bool  # belongs to a report that is still open instead of opening one


@dataclass(frozen=True)
class Grammar:
    titles: tuple[Title, ...]
    cut: str
    end: str
    stop: str
    body: str  # the alternatives of ``body``, as one regex
    frames: tuple[str, ...]
    skip: str


_GRAMMARS: dict[str, Grammar] = {}


def _unnamed(pattern: str) -> str:
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


def grammar(spec: FormatSpec) -> Grammar:
    """The report grammar of a format (validated by the catalogue when it loaded)."""
    key = str(spec.path)
    if key not in _GRAMMARS:
        r = spec.reports
        _GRAMMARS[key] = Grammar(
            titles=tuple(
                Title(t["kind"], t["pattern"], t["title"], bool(t.get("continues", False)))
                for t in r.get("titles", [])
            ),
            cut=r.get("cut", "$^"),
            end=r.get("end", "$^"),
            stop=r.get("stop", "$^"),
            body="|".join(f"(?:{_unnamed(p)})" for p in r.get("body", [])) or "$^",
            frames=tuple(r.get("frames", [])),
            skip=r.get("skip", "$^"),
        )
    return _GRAMMARS[key]


def _union(patterns: list[str]) -> str:
    return "|".join(f"(?:{_unnamed(p)})" for p in patterns) or "$^"


def _marks(df: pl.DataFrame, gr: Grammar) -> pl.DataFrame:
    """Per line: ``__cut __end __title (index) __body __frame`` and the open report."""
    m = pl.col("msg").str.strip_chars_start()
    live = pl.col("kind") == "event"
    df = df.with_columns(__m=m)
    m = pl.col("__m")
    title_any = _union([t.pattern for t in gr.titles])
    df = df.with_columns(
        __cut=live & m.str.contains(gr.cut),
        __end=live & m.str.contains(gr.end),
        __tc=live & m.str.contains(title_any),
        __body=live & m.str.contains(gr.body),
        __frame=live & m.str.contains(_union(list(gr.frames))),
        __stop=live & m.str.contains(gr.stop),
    )
    index: pl.Expr = pl.lit(None, pl.Int32)
    candidate = pl.when(pl.col("__tc")).then(m)  # the patterns only run on these
    for i, title in reversed(list(enumerate(gr.titles))):
        hit = candidate.str.contains(title.pattern).fill_null(False)
        index = pl.when(hit).then(pl.lit(i, pl.Int32)).otherwise(index)
    df = df.with_columns(__title=index)
    secondary = [i for i, t in enumerate(gr.titles) if t.continues]
    s = pl.col("stream")
    marker = (
        pl.when(pl.col("__cut"))
        .then(pl.lit("cut"))
        .when(pl.col("__end"))
        .then(pl.lit("end"))
        .when(pl.col("__title").is_not_null())
        .then(pl.lit("title"))
    )
    df = df.with_columns(__marker=marker, __row=pl.int_range(pl.len()).over(s))
    prev = pl.col("__marker").shift(1).forward_fill().over(s)
    is_secondary = pl.col("__title").is_in(secondary)
    is_title = pl.col("__title").is_not_null() & ~pl.col("__cut")
    # A continuing title just after a report's end (the panic that panic_on_oops or
    # panic_on_warn raises) reopens that report instead of starting one of its own.
    since_end = pl.col("__row") - pl.when("__end").then("__row").shift(1).forward_fill().over(s)
    reopen = is_title & is_secondary & (prev == "end") & (since_end <= REOPEN_LINES)
    df = df.with_columns(__reopen=reopen.fill_null(False))
    opener = pl.col("__cut") | (
        is_title
        & (
            prev.is_null()
            | ((prev == "end") & ~pl.col("__reopen"))
            | ((prev == "title") & ~is_secondary)
        )
    )
    df = df.with_columns(__open=opener, __is_title=is_title).with_columns(
        __rid=pl.col("__open").cast(pl.Int32).cum_sum().over(s)
    )
    rid = [s, pl.col("__rid")]
    ended = pl.when("__end").then(pl.lit(True)).when("__reopen").then(pl.lit(False))
    ended_before = ended.shift(1).forward_fill().over(rid).fill_null(False) & ~pl.col("__reopen")
    pos = pl.int_range(pl.len()).over(rid)
    titles_so_far = pl.col("__is_title").cast(pl.Int32).cum_sum().over(rid)
    shaped = (
        pl.col("__cut")
        | pl.col("__is_title")
        | pl.col("__end")
        | pl.col("__body")
        | pl.col("__frame")
        | pl.col("__stop")
        | ((titles_so_far == 0) & (pos <= MESSAGE_LINES))
    )
    member = live & (pl.col("__rid") > 0) & ~ended_before & shaped
    stopped = (pl.col("__stop").cast(pl.Int32).cum_sum().over(rid)) > 0
    return df.with_columns(__member=member, __stopped=stopped)


def report_starts(df: pl.DataFrame) -> pl.DataFrame:
    """``line stream ts`` of the first line of every report in a ``mark``ed frame."""
    return df.filter(pl.col("__open")).select("line", "stream", "ts")


def mark(df: pl.DataFrame, spec: FormatSpec) -> pl.DataFrame:
    """``df`` with the report marks (``__open``, ``__member``, ...)."""
    gr = grammar(spec)
    if not gr.titles:
        return df.with_columns(__open=pl.lit(False), __member=pl.lit(False))
    return _marks(df, gr)


def _frames(members: pl.DataFrame, gr: Grammar) -> pl.DataFrame:
    """The frame lines of the reports as ``FRAME`` structs, with ``__usable`` for the
    frames the guilty frame may come from."""
    rows = members.filter(pl.col("__frame"))
    m = pl.col("__m").str.strip_chars_end()
    stage = {
        f"__f{i}": m.str.extract_groups(_with_sentinel(pattern))
        for i, pattern in enumerate(gr.frames)
    }
    rows = rows.with_columns(**stage)

    def field(name: str) -> pl.Expr:
        found = [
            pl.col(c).struct.field(name)
            for c, pattern in zip(stage, gr.frames, strict=True)
            if name in re.compile(pattern).groupindex
        ]
        return pl.coalesce(found) if found else pl.lit(None, pl.String)

    hexa = {k: _int(field(k), pl.UInt64(), base=16) for k in ("off", "size")}
    addr = _int(field("addr").str.strip_prefix("c"), pl.UInt64(), base=16)
    bare = _int(field("bare"), pl.UInt64(), base=16)
    frame = pl.struct(
        func=field("func"),
        off=hexa["off"],
        size=hexa["size"],
        module=field("module"),
        addr=pl.coalesce(addr, bare),
        reliable=field("unrel").is_null(),
    ).cast(FRAME)
    rows = rows.with_columns(__fr=frame).drop(*stage)
    func = pl.col("__fr").struct.field("func")
    usable = (
        ~pl.col("__stopped")
        & pl.col("__fr").struct.field("reliable")
        & func.is_not_null()
        & ~func.str.replace(CLONE_SUFFIX, "").str.contains(gr.skip)
    )
    return rows.with_columns(__usable=usable)


def _title_columns(gr: Grammar) -> dict[str, pl.Expr]:
    """Per title line: ``kind``, the ``title`` template filled with its own groups
    ("{guilty}" is filled after aggregation) and the groups the table keeps."""
    m = pl.col("__m")
    kind: pl.Expr = pl.lit(None, pl.String)
    title: pl.Expr = pl.lit(None, pl.String)
    fields: dict[str, pl.Expr] = {
        n: pl.lit(None, pl.String) for n in ("cpu", "pid", "location", "text", "comm", "func")
    }
    for i, t in reversed(list(enumerate(gr.titles))):
        hit = pl.col("__title") == i
        g = m.str.extract_groups(t.pattern)
        names = set(re.compile(t.pattern).groupindex)
        parts: list[pl.Expr] = []
        last = 0
        for ph in _PLACEHOLDER.finditer(t.template):
            parts.append(pl.lit(t.template[last : ph.start()]))
            name = ph.group(1)
            parts.append(
                g.struct.field(name).str.strip_chars()
                if name in names
                else pl.lit("{" + name + "}")
            )
            last = ph.end()
        parts.append(pl.lit(t.template[last:]))
        kind = pl.when(hit).then(pl.lit(t.kind)).otherwise(kind)
        title = pl.when(hit).then(pl.concat_str(parts)).otherwise(title)
        for name in fields:
            if name in names:
                fields[name] = pl.when(hit).then(g.struct.field(name)).otherwise(fields[name])
    return {"__kind": kind, "__ttl": title, **{f"__g_{k}": v for k, v in fields.items()}}


_CPU_LINE = (
    r"^CPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>.{1,16}?) "
    r"(?:Not tainted|Tainted: (?P<tainted>[A-Z][A-Z ]*?)) +(?P<release>\d\S*)"
)


def signature(title: pl.Expr) -> pl.Expr:
    """A title normalised for deduplication: addresses, numbers, ``+0x../0x..``
    offsets, ``:LINE`` suffixes and compiler clone suffixes removed; capped."""
    return (
        title.str.replace_all(r"\+0x[0-9a-f]+/0x[0-9a-f]+", "")
        .str.replace_all(CLONE_SUFFIX, "")
        .str.replace_all(r"\b0x[0-9a-fA-F]+\b", "ADDR")
        .str.replace_all(r"\b[0-9a-f]{8,}\b", "ADDR")
        .str.replace_all(r":\d+\b", "")
        .str.replace_all(r"\b\d+\b", "NUM")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.slice(0, TITLE_CAP)
    )


def assemble(df: pl.DataFrame, spec: FormatSpec, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Mark the lines of crash reports as records and build their ``crashes`` rows."""
    schema = RECORD_SCHEMAS["crashes"]
    gr = grammar(spec)
    if not gr.titles:
        return df.drop(c for c in df.columns if c.startswith("__")), pl.DataFrame(schema=schema)
    if "__member" not in df.columns:
        df = _marks(df, gr)
    members = df.filter(pl.col("__member"))
    scratch = [c for c in df.columns if c.startswith("__")]
    out = df.with_columns(
        kind=pl.when(pl.col("__member")).then(pl.lit("record")).otherwise(pl.col("kind"))
    )
    if members.is_empty():
        return out.drop(scratch), pl.DataFrame(schema=schema)
    keys = ["stream", "__rid"]
    members = members.with_columns(**_title_columns(gr))
    frames = _frames(members, gr)
    cpu_line = pl.col("__m").str.extract_groups(_CPU_LINE)
    members = members.with_columns(
        __cpu=pl.when(pl.col("__m").str.starts_with("CPU: ")).then(cpu_line)
    )
    c = pl.col("__cpu").struct.field
    continuing = [i for i, t in enumerate(gr.titles) if t.continues]
    primary = pl.col("__is_title") & ~pl.col("__title").is_in(continuing)
    # The report's title: its first primary title line, else its first title line.
    rank = pl.when(primary).then(0).when(pl.col("__is_title")).then(1).otherwise(2)
    members = members.with_columns(__rank=rank)
    first_title = pl.col("__rank") == pl.col("__rank").min().over(keys)
    per = members.group_by(keys, maintain_order=True).agg(
        line=pl.col("line").min(),
        end_line=pl.col("line").max(),
        lines=pl.col("line"),
        ts=pl.coalesce(
            pl.col("ts").filter(first_title & pl.col("__is_title")).first(),
            pl.col("ts").drop_nulls().first(),
        ),
        kind=pl.col("__kind").filter(first_title).first(),
        title=pl.col("__ttl").filter(first_title).first(),
        t_cpu=pl.col("__g_cpu").drop_nulls().first(),
        t_pid=pl.col("__g_pid").drop_nulls().first(),
        t_comm=pl.col("__g_comm").drop_nulls().first(),
        location=pl.col("__g_location").drop_nulls().first(),
        text=pl.col("__g_text").filter(first_title).first(),
        l_cpu=c("cpu").drop_nulls().first(),
        l_pid=c("pid").drop_nulls().first(),
        comm=c("comm").drop_nulls().first(),
        tainted=pl.col("__cpu").struct.field("tainted").drop_nulls().first(),
        has_cpu=pl.col("__cpu").is_not_null().any(),
        release=c("release").drop_nulls().first(),
        message=pl.col("__m")
        .filter(
            ~pl.col("__cut")
            & ~pl.col("__is_title")
            & (pl.col("__is_title").cast(pl.Int32).cum_sum() == 0)
        )
        .str.join("\n"),
        has_title=pl.col("__is_title").any(),
        has_panic=(pl.col("__kind") == "panic").any(),
        access=pl.col("__m").str.extract(r"^(Read|Write) of size \d+").drop_nulls().first(),
        has_end=pl.col("__end").any(),
    )
    chains = frames.group_by(keys, maintain_order=True).agg(
        frames=pl.col("__fr").filter(~pl.col("__stopped")),
        guilty=pl.col("__fr").struct.field("func").filter(pl.col("__usable")).first(),
    )
    per = per.join(chains, on=keys, how="left", maintain_order="left")
    guilty = pl.coalesce("guilty", pl.lit("corrupted"))
    table = per.with_columns(
        file=pl.lit(file),
        cpu=_int(pl.coalesce("t_cpu", "l_cpu"), pl.Int32()),
        pid=_int(pl.coalesce("t_pid", "l_pid"), pl.Int32()),
        comm=pl.coalesce("comm", "t_comm"),
        tainted=pl.when(pl.col("has_cpu")).then(
            pl.coalesce(pl.col("tainted").str.strip_chars_end(), pl.lit(""))
        ),
        kind=pl.coalesce("kind", pl.lit("cut-here")),
        title=pl.coalesce(
            pl.col("title")
            .str.replace("{guilty}", guilty, literal=True)
            .str.replace(" {access}", pl.concat_str(pl.lit(" "), "access"), literal=True)
            .str.replace(" {access}", "", literal=True),
            pl.concat_str(pl.lit("WARNING in "), guilty),
        ),
        message=pl.when(pl.col("message") != "").then("message").otherwise("text"),
        frames=pl.col("frames").fill_null(pl.lit([], pl.List(FRAME))),
        guilty=pl.col("guilty"),
        corrupted=~pl.col("has_title")
        | (pl.col("guilty").is_null() & (pl.col("kind") != "panic"))
        | (
            ~pl.col("has_end")
            & ~pl.col("kind").is_in(["panic", "hung-task", "rcu-stall", "lockdep"])
        ),
    ).with_columns(signature=signature(pl.col("title")))
    return out.drop(scratch), table.select(schema.names()).cast(schema)
