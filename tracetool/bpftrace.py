"""The bpftrace text engine: what ``bpftrace script.bt`` prints (src/output/text.cpp).

bpftrace prints ``printf()`` output verbatim, so every line that is not one of its own
structures is a printf line. Its structures are:

``Attaching N probes...``     header (``Attached N probes`` in newer releases)
``Lost N events``             loss (the perf ring buffer overflowed; no CPU given)
``HH:MM:SS``                  ``time()`` output: a header that sets the wall clock of the
                              rows after it; as a prefix (``time("%H:%M:%S ")`` with no
                              newline) it is stripped from the line it starts
``@m: v`` ``@m[k1, k2]: v``   one map value (``maps`` table); ``count N, average A,
                              total T`` is one row per statistic
``@m:`` / ``@m[k]:``          a ``hist()``/``lhist()``/``tseries()`` header, then its
                              buckets ``[4K, 8K)  12 |@@@  |`` (``histograms`` table) or
                              tseries rows (``maps`` with ``stat = "tseries"``)
``@m[`` ... ``]: v``          a map key that holds a ``kstack``/``ustack``, one frame a line
indented lines                after a printf line (a blank line between is allowed): the
                              frames of a ``kstack``/``ustack`` it printed (``stack``)

A printf line that matches a format declared in ``parsers/<format>.toml``
(``[events.NAME]``) becomes event ``NAME`` with typed ``args``; fields called ``nsecs``
(CLOCK_MONOTONIC ns) or ``elapsed`` (ns since bpftrace started) give ``ts``, ``tid``/``pid``
give ``pid`` (``pid`` is the ``tgid`` when both are printed), ``comm`` and ``cpu`` fill
their columns. Other printf lines stay events named ``printf`` with the line as body.
A declaration with ``probe = "kprobe:FUNC"`` (the line itself does not name the function)
also gets ``probe``, ``func`` and its fields as ``kv`` fetch-args, so the timeline reads
it as it reads a kprobe event.
Map rows take the wall clock (ns since midnight) of the last ``time()`` output; so do
events, but only in a chunk where no event carries a declared timestamp field (one time
base per input). The wall clock does not cross a chunk boundary.

In a tool's example document (a chunk that holds a shell prompt such as ``# ./x.bt``),
blank-line separated paragraphs with no bpftrace structure and no prompt are prose:
headers with marker ``prose``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import polars as pl
from polars.datatypes import IntegerType

from tracetool.catalogue import EventSpec, FormatSpec, args_fields
from tracetool.events import KV, RECORD_SCHEMAS
from tracetool.ftrace import _HIT, Dialect, _typed, _with_sentinel
from tracetool.printf_spec import extra_events

Records = dict[str, pl.DataFrame]

# A line that starts a record, so a chunk may be cut just before it: a map value on one
# line, the attach and loss lines, or a printf line (no indentation, no bracket, no bar:
# it is neither a frame, nor a bucket, nor the end of a multi-line key).
SAFE_LINE = re.compile(rb"(?:Attach|Lost \d|@\w*(?:\[[^\n\]]*\])?: \S|[^\s\[(@\]#$|\n][^\n|\]]*$)")
UNPARSED = "not bpftrace output: no printf line, map, histogram or header looks like this"
ORPHAN_FRAME = "indented line (a stack frame?) with no printf line or map key before it"
ORPHAN_BUCKET = "histogram or tseries row with no '@map:' header line before it"

TIME = (
    r"^(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<frac>\d{1,9}|%f))?"
    r"(?P<after>(?: +.*)?)$"
)
MAP = r"^(?P<map>@[A-Za-z0-9_]*)(?:\[(?P<keys>.*?)\])?:(?: ?(?P<value>.*))?$"
OPEN_KEY = r"^(?P<map>@[A-Za-z0-9_]*)\[(?P<keys>[^\]]*)$"
CLOSE_KEY = r"^(?P<tail>[^\]]*)\]:(?: ?(?P<value>.*))?$"
BUCKET = (
    r"^(?:\[(?P<a>[^,\]\)]+)(?:, (?P<b>[^\]\)]+))?[\]\)]|\(\.\.\., (?P<u>[^\)]+)\))"
    r"\s+(?P<count>\d+) \|[@ ]*\|\s*$"
)
TSERIES_ROW = r"^(?P<label>\S+) +[|*][ *.]*[|*] (?P<value>-?\d+(?:\.\d+)?|-)$"
TSERIES_AXIS = r"^(?:hh:mm:ss\S* +\|_+\||\s+v_+v|\s+-?\d+(?:\.\d+)?\s+-?\d+(?:\.\d+)?)\s*$"
# One key of a map line: quoted strings, bracket and paren groups (two levels) and
# commas not followed by a space stay inside a key; ", " separates keys.
KEY_ELEMENT = (
    r'(?:"(?:[^"\\]|\\.)*"|\[(?:[^\[\]]|\[[^\[\]]*\])*\]|\((?:[^()]|\([^()]*\))*\)'
    r"|,[^ ,]|[^,\"\[\]()])+"
)
STATS = r"^(?:count|average|total|min|max) -?\d+(?:, (?:count|average|total|min|max) -?\d+)+$"
# Fields of a declared printf format that fill event columns rather than only args.
TIME_FIELDS = ("nsecs", "elapsed")
# Fields of a probe declaration that are not fetch-args (the task, the clock, the probe).
_NOT_KV = {*TIME_FIELDS, "tid", "pid", "comm", "cpu", "probe", "func"}
SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}
_NS = {"h": 3_600_000_000_000, "m": 60_000_000_000, "s": 1_000_000_000}


def _int(expr: pl.Expr, dtype: pl.DataType | None = None) -> pl.Expr:
    dtype = dtype or pl.Int64()
    assert isinstance(dtype, IntegerType)
    return expr.str.to_integer(strict=False, dtype=dtype)


def wall_ns(h: pl.Expr, m: pl.Expr, s: pl.Expr, frac: pl.Expr) -> pl.Expr:
    """Time of day in ns since midnight; a fraction printed as ``%f`` (bpftrace 0.17
    prints that literally) counts as zero."""
    digits = pl.when(frac.str.contains(r"^\d+$")).then(frac)
    scale = pl.lit(10, pl.Int64).pow(9 - digits.str.len_bytes().cast(pl.Int64))
    return (
        _int(h) * _NS["h"]
        + _int(m) * _NS["m"]
        + _int(s) * _NS["s"]
        + (_int(digits) * scale).fill_null(0)
    )


def split_keys(text: pl.Expr, sep: str = ", ") -> pl.Expr:
    """A map key text to its keys. Commas inside quotes, brackets and parentheses stay
    in their key; a text the element grammar cannot cover exactly stays one key."""
    element = KEY_ELEMENT if sep == ", " else KEY_ELEMENT.replace(r"|,[^ ,]", "")
    parts = text.str.extract_all(element).list.eval(pl.element().str.strip_chars())
    exact = parts.list.join(sep) == text.str.strip_chars()
    empty = pl.lit([], pl.List(pl.String))
    return (
        pl.when(text.is_null() | (text.str.strip_chars() == ""))
        .then(empty)
        .when(exact)
        .then(parts)
        .otherwise(pl.concat_list(text))
    )


def bucket_value(text: pl.Expr) -> pl.Expr:
    """A bucket bound as printed (``4K``, ``1.5M``, ``-10``, ``...``) as an integer; the
    K/M/G/T/P/E suffixes are powers of 1024 (old releases printed them lower-case)."""
    g = text.str.strip_chars().str.extract_groups(r"^(?P<n>-?\d+(?:\.\d+)?)(?P<s>[KMGTPEkmgtpe]?)$")
    mult = g.struct.field("s").str.to_uppercase().replace_strict(SUFFIX, default=None)
    number = g.struct.field("n").cast(pl.Float64, strict=False)
    exact = _int(g.struct.field("n"))
    return (
        pl.when(g.struct.field("s") == "")
        .then(exact)
        .otherwise((number * mult.cast(pl.Float64)).round(0).cast(pl.Int64, strict=False))
    )


def hist_func(lower: pl.Expr, upper: pl.Expr, group: str) -> pl.Expr:
    """``hist`` when every bucket of the block is a power-of-two bucket (``[0]``,
    ``[1]``, ``[2^k, 2^k+1)``, or the ``(..., 0)`` underflow), else ``lhist``."""
    width = upper - lower
    single = width == 1
    log2 = (lower > 0) & (upper == lower * 2) & ((lower & (lower - 1)) == 0)
    underflow = lower.is_null() & (upper == 0)
    is_log = (single & lower.is_between(0, 1)) | log2 | underflow
    return (
        pl.when(is_log.fill_null(False).all().over(group))
        .then(pl.lit("hist"))
        .otherwise(pl.lit("lhist"))
    )


def map_value_rows(value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """``(stats, values)`` for exploding: a ``count 3, average 10, total 30`` value is
    one row per statistic; any other value is one row with a null statistic."""
    is_stats = value.str.contains(STATS)
    pairs = value.str.split(", ")
    stat = (
        pl.when(is_stats)
        .then(pairs.list.eval(pl.element().str.split(" ").list.first()))
        .otherwise(pl.concat_list(pl.lit(None, pl.String)))
    )
    val = (
        pl.when(is_stats)
        .then(pairs.list.eval(pl.element().str.split(" ").list.last()))
        .otherwise(pl.concat_list(value))
    )
    return stat, val


def no_context() -> dict[str, pl.Expr]:
    """The event columns of the engine contract that bpftrace lines do not carry (the
    task and time come from declared printf fields later), all null."""
    none_s, none_i = pl.lit(None, pl.String), pl.lit(None, pl.Int32)
    return {
        "comm": none_s,
        "pid": none_i,
        "tgid": none_i,
        "cpu": none_i,
        "flags": none_s,
        "ts": pl.lit(None, pl.Int64),
        "event": none_s,
        "body": none_s,
        "loss_cpu": none_i,
    }


def empty_records(names: tuple[str, ...] = ("maps", "histograms")) -> Records:
    return {name: pl.DataFrame(schema=RECORD_SCHEMAS[name]) for name in names}


def finish_record(df: pl.DataFrame, name: str, file: str) -> pl.DataFrame:
    """``df`` in the record table's schema, with ``file``."""
    schema = RECORD_SCHEMAS[name]
    return df.with_columns(file=pl.lit(file)).select(schema.names()).cast(schema)


def name_printf(df: pl.DataFrame, spec: FormatSpec, body: str = "body") -> pl.DataFrame:
    """Name printf lines after the first declared format they match (one regex pass
    over all of them), and fill ``ts``/``pid``/``tgid``/``comm``/``cpu`` from the
    declared fields that mean them. Adds ``event`` (``printf`` when none matched) and
    ``ts_field`` (which field gave ``ts``)."""
    is_printf = pl.col("kind") == "event"
    extra = extra_events(spec)
    declared = [*extra.values(), *spec.events.values()]
    if not declared:
        return df.with_columns(
            event=pl.when(is_printf).then(pl.lit("printf")), ts_field=pl.lit(None, pl.String)
        )
    # One match test per declared pattern (the regex engine's fast path, no captures),
    # all in one parallel step; the first pattern that matches names the line.
    patterns = [(espec.name, p) for espec in declared for p in espec.patterns]
    tests = {f"__m{i}": pl.col(body).str.contains(p) for i, (_, p) in enumerate(patterns)}
    df = df.with_columns(**tests)
    name: pl.Expr = pl.lit("printf")
    for i, (ename, _) in reversed(list(enumerate(patterns))):
        name = pl.when(pl.col(f"__m{i}")).then(pl.lit(ename)).otherwise(name)
    df = df.with_columns(event=pl.when(is_printf).then(name)).drop(*tests)
    present = set(df.get_column("event").drop_nulls().unique().to_list())
    # Each declared pattern runs once, on its own event's rows: capturing the fields
    # that fill event columns, and all fields when the engine must hand them over
    # itself (see _engine_args); other groups are made non-capturing.
    context = {*TIME_FIELDS, "tid", "pid", "comm", "cpu"}
    stage: dict[str, pl.Expr] = {}
    plan: list[_Capture] = []
    for espec in declared:
        if espec.name not in present:
            continue
        whole = espec.name in extra or _reports_probe(espec)
        for pattern in espec.patterns:
            groups = set(re.compile(pattern).groupindex)
            use = groups if whole else groups & context
            if not use:
                continue
            column = f"__g{len(plan)}"
            rows = pl.when(pl.col("event") == espec.name).then(pl.col(body))
            stage[column] = rows.str.extract_groups(_with_sentinel(_keep_groups(pattern, use)))
            plan.append(_Capture(espec, column, use, whole))
    df = df.with_columns(**stage)
    ctx: dict[str, list[pl.Expr]] = {c: [] for c in ("ts", "pid", "tgid", "comm", "cpu")}
    field_name: list[pl.Expr] = []
    for cap in plan:
        g, use = pl.col(cap.column).struct.field, cap.groups
        for f in TIME_FIELDS:
            if f in use:
                ctx["ts"].append(_int(g(f)))
                field_name.append(pl.when(g(f).is_not_null()).then(pl.lit(f)))
        if "tid" in use:
            ctx["pid"].append(_int(g("tid"), pl.Int32()))
            if "pid" in use:
                ctx["tgid"].append(_int(g("pid"), pl.Int32()))
        elif "pid" in use:
            ctx["pid"].append(_int(g("pid"), pl.Int32()))
        if "comm" in use:
            ctx["comm"].append(g("comm").str.strip_chars())
        if "cpu" in use:
            ctx["cpu"].append(_int(g("cpu"), pl.Int32()))
    dtypes = {"ts": pl.Int64, "pid": pl.Int32, "tgid": pl.Int32, "comm": pl.String, "cpu": pl.Int32}
    df = _engine_args(df, [c for c in plan if c.whole], extra)
    return df.with_columns(
        **{
            c: (pl.coalesce(exprs) if exprs else pl.lit(None)).cast(dtypes[c])
            for c, exprs in ctx.items()
        },
        ts_field=pl.coalesce(field_name) if field_name else pl.lit(None, pl.String),
    ).drop(*stage)


@dataclass(frozen=True)
class _Capture:
    """One declared pattern's groups, captured into ``column`` on its event's rows."""

    espec: EventSpec
    column: str
    groups: set[str]
    whole: bool  # all groups captured, for _engine_args


def _reports_probe(espec: EventSpec) -> bool:
    """The declaration says which probe its line reports (a ``probe`` key, or
    ``probe`` and ``func`` fields)."""
    return espec.probe is not None or {"probe", "func"} <= set(espec.fields)


def _keep_groups(pattern: str, keep: set[str]) -> str:
    """``pattern`` with the named groups not in ``keep`` made non-capturing."""
    return re.sub(r"\(\?P<(\w+)>", lambda m: m.group(0) if m.group(1) in keep else "(?:", pattern)


def _engine_args(
    df: pl.DataFrame, plan: list[_Capture], extra: dict[str, EventSpec]
) -> pl.DataFrame:
    """``arg_<field>`` columns that ``extract_args`` (which runs the catalogue's own
    declarations) cannot give, from the groups ``name_printf`` captured:

    * for the printf declarations a user added (``printf_spec``): typed columns for the
      field names ``args`` has, ``kv`` name/value pairs for the others;
    * for a declaration that says which probe its line reports (``probe =
      "kretprobe:s390_iommu_attach_device"``, or ``probe``/``func`` groups): ``probe``,
      ``func``, and its fields (but the task and clock ones) as ``kv`` too, the way a
      kprobe event's fetch-args arrive, so the timeline pairs entries with returns and
      finds device pointers and return codes in them.
    """
    known = args_fields()
    parts: list[pl.DataFrame] = []
    for cap in plan:
        espec, is_extra, is_probe = cap.espec, cap.espec.name in extra, _reports_probe(cap.espec)
        # Worked on this pattern's rows only, then joined back by line.
        hit = pl.col(cap.column).struct.field(_HIT).is_not_null()
        g = df.select("line", cap.column).filter(hit).unnest(cap.column)
        columns: dict[str, pl.Expr] = {}
        kv = []
        for fname in sorted(cap.groups, key=list(espec.fields).index):
            ftype = espec.fields[fname]
            if is_extra and fname in known:
                columns[f"arg_{fname}"] = _typed(pl.col(fname), ftype).cast(known[fname])
            if fname in _NOT_KV if is_probe else fname in known:
                continue
            numeric = ftype if ftype in ("hex", "int", "i32", "u64") else None
            num = _typed(pl.col(fname), numeric).cast(pl.Int128) if numeric else None
            kv.append(pl.struct(name=pl.lit(fname), value=pl.col(fname), num=num))
        if espec.probe is not None:
            columns["arg_probe"] = pl.lit(espec.probe[0])
            columns["arg_func"] = pl.lit(espec.probe[1])
        if kv:
            columns["arg_kv"] = pl.concat_list(kv).cast(KV)
        parts.append(g.select("line", **columns))
    if not parts:
        return df
    found = pl.concat(parts, how="diagonal_relaxed")
    return df.join(found, on="line", how="left", maintain_order="left")


def _line_classes(spec: FormatSpec) -> dict[str, pl.Expr]:
    """``marker`` (the name of the first ``[[lines]]`` class a line matches),
    ``__cls_kind`` (that class's kind) and ``loss_lost`` (its ``lost`` group)."""
    t = pl.col("text")
    name: pl.Expr = pl.lit(None, pl.String)
    kind: pl.Expr = pl.lit(None, pl.String)
    lost: pl.Expr = pl.lit(None, pl.String)
    if not spec.lines:
        return {"marker": name, "__cls_kind": kind, "loss_lost": pl.lit(None, pl.Int64)}
    # One pass over every line with all classes at once; each class's own regex then
    # runs only on the few lines that passed.
    bare = [_keep_groups(lc.pattern, set()) for lc in spec.lines]
    anyone = t.str.contains("|".join(f"(?:{p})" for p in bare))
    for lc in reversed(spec.lines):
        mine = pl.when(anyone & t.str.starts_with(lc.prefix)).then(t)
        hit = mine.str.contains(lc.pattern).fill_null(False)
        name = pl.when(hit).then(pl.lit(lc.name)).otherwise(name)
        kind = pl.when(hit).then(pl.lit(lc.kind)).otherwise(kind)
        if "lost" in re.compile(lc.pattern).groupindex:
            groups = mine.str.extract_groups(lc.pattern).struct.field("lost")
            lost = pl.when(hit).then(groups).otherwise(lost)
    return {"marker": name, "__cls_kind": kind, "loss_lost": _int(lost)}


def classify(lines: pl.LazyFrame, spec: FormatSpec, dialect: Dialect) -> pl.LazyFrame:
    """Per line: ``kind`` and ``rec`` (which structure a record line is), the time()
    prefix taken off (``rest``, ``wall``), and the groups of the structure it matched."""
    t = pl.col("text")
    lf = lines.with_columns(**_line_classes(spec))
    # A tseries row starts with its interval's time of day: not a time() prefix.
    lf = lf.with_columns(
        __tsr=pl.when(t.str.contains("|", literal=True) | t.str.contains("*", literal=True))
        .then(t)
        .str.extract_groups(TSERIES_ROW)
    )
    is_row = pl.col("__tsr").struct.field("value").is_not_null()
    clock = (
        pl.when(t.str.contains(r"^\d{1,2}:\d{2}:\d{2}") & ~is_row).then(t).str.extract_groups(TIME)
    )
    lf = lf.with_columns(__tm=clock)
    tm = pl.col("__tm").struct.field
    lf = lf.with_columns(
        wall=wall_ns(tm("h"), tm("m"), tm("s"), tm("frac")),
        rest=pl.when(tm("h").is_not_null())
        .then(tm("after").str.strip_chars_start(" "))
        .otherwise(t),
    ).drop("__tm")
    r = pl.col("rest")
    at = r.str.starts_with("@")
    lf = lf.with_columns(
        __map=pl.when(at).then(r).str.extract_groups(MAP),
        __open=pl.when(at).then(r).str.extract_groups(OPEN_KEY),
        __bucket=pl.when(r.str.starts_with("[") | r.str.starts_with("("))
        .then(r)
        .str.extract_groups(BUCKET),
        __close=pl.when(r.str.contains("]:", literal=True)).then(r).str.extract_groups(CLOSE_KEY),
        __tsaxis=(t.str.contains("_", literal=True) | t.str.starts_with(" "))
        & t.str.contains(TSERIES_AXIS),
    )
    mp, op, bk = (
        pl.col("__map").struct.field,
        pl.col("__open").struct.field,
        pl.col("__bucket").struct.field,
    )
    blank = t.str.strip_chars() == ""
    indented = (t.str.starts_with(" ") | t.str.starts_with("\t")) & ~blank
    is_map = mp("map").is_not_null()
    is_header = is_map & mp("value").fill_null("").str.strip_chars().eq("")
    rec = (
        pl.when(blank | pl.col("__cls_kind").is_not_null())
        .then(None)
        .when(tm_pure := (pl.col("wall").is_not_null() & (r == "")))
        .then(None)
        .when(is_header)
        .then(pl.lit("block"))
        .when(is_map)
        .then(pl.lit("map"))
        .when(op("map").is_not_null())
        .then(pl.lit("open"))
        .when(bk("count").is_not_null())
        .then(pl.lit("bucket"))
        .when(pl.col("__tsr").struct.field("value").is_not_null() | pl.col("__tsaxis"))
        .then(pl.lit("tseries"))
        .when(indented)
        .then(pl.lit("indent"))
        .when(pl.col("__close").struct.field("tail").is_not_null())
        .then(pl.lit("close"))
    )
    kind = (
        pl.when(blank)
        .then(pl.lit("header"))
        .when(pl.col("__cls_kind").is_not_null())
        .then(pl.col("__cls_kind"))
        .when(tm_pure)
        .then(pl.lit("header"))
        .when(pl.col("rec").is_in(["indent", "close"]))
        .then(None)  # decided by fold, which sees the lines around
        .when(pl.col("rec").is_not_null())
        .then(pl.lit("record"))
        .otherwise(pl.lit("event"))
    )
    lf = lf.with_columns(rec=rec).with_columns(
        kind=kind,
        marker=pl.when(blank)
        .then(pl.lit("blank"))
        .when(tm_pure)
        .then(pl.lit("time"))
        .otherwise(pl.col("marker")),
    )
    return lf.with_columns(
        **{**no_context(), "body": pl.when(pl.col("kind") == "event").then(r)}
    ).drop("__cls_kind")


def _prose(df: pl.DataFrame) -> pl.Expr:
    """Lines of a tool's example document that are prose: in a paragraph with no shell
    prompt and no bpftrace structure (only when the chunk holds a shell prompt)."""
    blank = (pl.col("marker") == "blank").fill_null(False)
    para = blank.cast(pl.Int32).cum_sum()
    structural = (
        pl.col("rec").is_in(["block", "map", "open", "bucket", "tseries", "indent", "close"])
        | (pl.col("kind") == "loss")
        | pl.col("marker").is_in(["attaching", "interrupt", "shell-prompt", "time"])
    ).fill_null(False)
    return ~blank & ~structural.any().over(para)


def fold(df: pl.DataFrame, spec: FormatSpec, file: str) -> tuple[pl.DataFrame, Records]:
    """Settle frames, key blocks and histogram blocks, name printf events, and fill the
    ``maps`` and ``histograms`` tables (see the module docstring)."""
    kind, rec, line = pl.col("kind"), pl.col("rec"), pl.col("line")
    if df.filter(pl.col("marker") == "shell-prompt").height:
        df = df.with_columns(
            kind=pl.when(_prose(df)).then(pl.lit("header")).otherwise(kind),
            marker=pl.when(_prose(df)).then(pl.lit("prose")).otherwise(pl.col("marker")),
            rec=pl.when(_prose(df)).then(None).otherwise(rec),
            body=pl.when(_prose(df)).then(None).otherwise(pl.col("body")),
        )
    blank = pl.col("marker") == "blank"
    # The open multi-line key a line is inside: set at "@m[", kept over its indented
    # frames (and blank lines), ended by any other line.
    key_open = (
        pl.when(blank)
        .then(None)
        .when(rec == "open")
        .then(line.cast(pl.Int64))
        .when(rec == "indent")
        .then(None)
        .otherwise(pl.lit(-1, pl.Int64))
        .forward_fill()
    )
    # The printf line indented lines after it are the stack frames of.
    frame_owner = (
        pl.when(blank | (rec == "indent"))
        .then(None)
        .when(kind == "event")
        .then(line.cast(pl.Int64))
        .otherwise(pl.lit(-1, pl.Int64))
        .forward_fill()
    )
    df = df.with_columns(__key=key_open, __owner=frame_owner)
    in_key = ((rec == "indent") & (pl.col("__key") > 0)).fill_null(False)
    closes = ((rec == "close") & (pl.col("__key").shift(1) > 0)).fill_null(False)
    frame = ((rec == "indent") & ~in_key & (pl.col("__owner") > 0)).fill_null(False)
    df = df.with_columns(
        kind=pl.when(in_key | closes)
        .then(pl.lit("record"))
        .when(frame)
        .then(pl.lit("frame"))
        .when(rec == "indent")
        .then(pl.lit("diag"))
        .when(rec == "close")
        .then(pl.lit("event"))
        .otherwise(kind),
        rec=pl.when(closes).then(pl.lit("close")).when(rec == "close").then(None).otherwise(rec),
        reason=pl.when((rec == "indent") & ~in_key & ~frame).then(pl.lit(ORPHAN_FRAME)),
        body=pl.when((rec == "close") & ~closes).then("rest").otherwise("body"),
        __key=pl.when(closes).then(pl.col("__key").shift(1)).otherwise("__key"),
    )
    df, keyed = _key_blocks(df)
    df, records = _blocks(df, keyed, file)
    df = name_printf(df, spec)
    frames = (
        df.filter(pl.col("kind") == "frame")
        .group_by("__owner", maintain_order=True)
        .agg(frames=pl.col("text").str.strip_chars())
    )
    df = df.join(frames, left_on="line", right_on="__owner", how="left", maintain_order="left")
    is_event = pl.col("kind") == "event"
    # The wall clock stands in for ts only where no event has a clock of its own, so
    # one input never mixes two time bases in ts.
    own_clock = df.get_column("ts_field").is_not_null().any()
    wall = pl.lit(None, pl.Int64) if own_clock else pl.col("wall").forward_fill()
    df = df.with_columns(
        ts=pl.coalesce("ts", pl.when(is_event).then(wall)),
        frames_k=pl.when(is_event).then("frames"),
        frames_u=pl.lit(None, pl.List(pl.String)),
    )
    return df, records


def _key_blocks(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per closed multi-line key: ``line`` (its ``]:`` line), ``map``, ``keys``
    (a stack is one key, frames joined by newlines), ``value``."""
    blocks = df.filter(pl.col("rec").is_in(["open", "indent", "close"]) & (pl.col("__key") > 0))
    if blocks.is_empty():
        schema = pl.Schema(
            {
                "line": pl.UInt32(),
                "map": pl.String(),
                "keys": pl.List(pl.String()),
                "value": pl.String(),
            }
        )
        return df, pl.DataFrame(schema=schema)
    op = pl.col("__open").struct.field
    cl = pl.col("__close").struct.field
    agg = blocks.group_by("__key", maintain_order=True).agg(
        map=op("map").drop_nulls().first(),
        head=op("keys").drop_nulls().first(),
        stack=pl.col("text").filter(pl.col("rec") == "indent").str.strip_chars().str.join("\n"),
        tail=cl("tail").filter(pl.col("rec") == "close").first(),
        value=cl("value").filter(pl.col("rec") == "close").first(),
        close=pl.col("line").filter(pl.col("rec") == "close").first(),
    )
    agg = agg.filter(pl.col("close").is_not_null())
    keys = pl.concat_list(
        split_keys(pl.col("head").str.strip_chars().str.strip_suffix(",")),
        pl.when(pl.col("stack") != "")
        .then(pl.concat_list("stack"))
        .otherwise(pl.lit([], pl.List(pl.String))),
        split_keys(pl.col("tail").str.strip_chars().str.strip_prefix(",")),
    )
    keyed = agg.select(line=pl.col("close"), map="map", keys=keys, value="value")
    # An "@m[" whose key never closed is not a key: its lines are diagnostics.
    unclosed = blocks.filter(~pl.col("__key").is_in(agg.get_column("__key").implode()))
    if unclosed.height:
        bad = pl.col("line").is_in(unclosed.get_column("line").implode())
        df = df.with_columns(
            kind=pl.when(bad).then(pl.lit("diag")).otherwise("kind"),
            reason=pl.when(bad)
            .then(pl.lit("map key block '@m[' ... with no closing ']:' line"))
            .otherwise("reason"),
        )
    return df, keyed


def _blocks(df: pl.DataFrame, keyed: pl.DataFrame, file: str) -> tuple[pl.DataFrame, Records]:
    """Map rows, and histogram/tseries rows joined to the header line they follow."""
    rec, line = pl.col("rec"), pl.col("line")
    mp = pl.col("__map").struct.field
    heads = pl.concat(
        [
            df.filter(rec.is_in(["map", "block"])).select(
                "line", map=mp("map"), keys=split_keys(mp("keys")), value=mp("value")
            ),
            keyed,
        ]
    ).with_columns(value=pl.col("value").fill_null("").str.strip_chars_end())
    head_line = heads.filter(pl.col("value") == "").get_column("line").implode()
    is_row = rec.is_in(["bucket", "tseries"])
    owner = (
        pl.when(is_row)
        .then(None)
        .when(line.is_in(head_line))
        .then(line.cast(pl.Int64))
        .otherwise(pl.lit(-1, pl.Int64))
        .forward_fill()
    )
    df = df.with_columns(__hdr=owner)
    orphan = is_row & ~(pl.col("__hdr") > 0).fill_null(False)
    df = df.with_columns(
        kind=pl.when(orphan).then(pl.lit("diag")).otherwise("kind"),
        reason=pl.when(orphan).then(pl.lit(ORPHAN_BUCKET)).otherwise("reason"),
    )
    wall = pl.col("wall").forward_fill()
    df = df.with_columns(__wall=wall)
    ctx = df.select("line", "__wall")
    heads = heads.join(ctx, on="line", how="left")
    rows = df.filter(is_row & (pl.col("__hdr") > 0))
    bk = pl.col("__bucket").struct.field
    buckets = (
        rows.filter(rec == "bucket")
        .select(
            "line",
            owner="__hdr",
            a=bucket_value(bk("a")),
            b=bk("b"),
            u=bucket_value(bk("u")),
            count=_int(bk("count")),
        )
        .with_columns(
            lower=pl.col("a"),
            upper=pl.when(pl.col("u").is_not_null())
            .then(pl.col("u"))
            .when(pl.col("b").is_null())
            .then(pl.col("a") + 1)
            .otherwise(bucket_value(pl.col("b"))),
        )
        .with_columns(func=hist_func(pl.col("lower"), pl.col("upper"), "owner"))
    )
    owner_info = heads.select(
        owner=pl.col("line").cast(pl.Int64), map="map", keys="keys", ts="__wall"
    )
    hist = buckets.join(owner_info, on="owner", how="left").select(
        "line", "ts", "map", "keys", "func", "lower", "upper", "count"
    )
    tr = pl.col("__tsr").struct.field
    label = tr("label").str.extract_groups(TIME)
    lab = label.struct.field
    tseries = (
        rows.filter((rec == "tseries") & tr("value").is_not_null())
        .select(
            "line",
            owner="__hdr",
            ts=pl.when(lab("h").is_not_null()).then(
                wall_ns(lab("h"), lab("m"), lab("s"), lab("frac"))
            ),
            value=tr("value"),
        )
        .join(owner_info.drop("ts"), on="owner", how="left")
        .select(
            "line", "ts", "map", "keys", "value", num=_int(pl.col("value")), stat=pl.lit("tseries")
        )
    )
    with_rows = set(rows.get_column("__hdr").unique().to_list())
    stat, val = map_value_rows(pl.col("value"))
    values = (
        heads.filter(~pl.col("line").cast(pl.Int64).is_in(list(with_rows)))
        .select("line", ts="__wall", map="map", keys="keys", stat=stat, value=val)
        .explode("stat", "value")
        .with_columns(num=_int(pl.col("value")))
    )
    maps = pl.concat([values, tseries], how="diagonal_relaxed").sort("line")
    records = {
        "maps": finish_record(maps, "maps", file),
        "histograms": finish_record(hist, "histograms", file),
    }
    return df.drop("__hdr", "__wall"), records


def head_meta(head: list[str], spec: FormatSpec) -> dict[str, Any]:
    """``probes`` (from ``Attaching N probes...``) and ``timestamps``: which clock the
    events' ``ts`` is on, judged from the first lines."""
    meta: dict[str, Any] = {}
    for text in head:
        m = re.match(r"^Attach(?:ing|ed) (\d+) probes?", text)
        if m:
            meta["probes"] = int(m.group(1))
            break
    meta["timestamps"] = timestamps_kind(
        [t for t in head if t and not t.startswith((" ", "\t", "@", "[", "("))], spec
    )
    return meta


def timestamps_kind(texts: list[str], spec: FormatSpec) -> str:
    """``nsecs`` (CLOCK_MONOTONIC ns a declared printf format carries), ``elapsed`` (ns
    since bpftrace started), ``wall-clock`` (ns since midnight from time() output),
    or ``none``."""
    declared = [*extra_events(spec).values(), *spec.events.values()]
    for text in texts:
        after = re.sub(r"^\d{1,2}:\d{2}:\d{2}(?:\.(?:\d+|%f))? *", "", text)
        for espec in declared:
            for pattern in espec.patterns:
                m = re.search(pattern, after)
                if m:
                    for f in TIME_FIELDS:
                        if m.groupdict().get(f) is not None:
                            return f
    if any(re.match(r"^\d{1,2}:\d{2}:\d{2}", t) for t in texts):
        return "wall-clock"
    return "none"


__all__ = ["SAFE_LINE", "UNPARSED", "classify", "fold", "head_meta", "split_keys"]
