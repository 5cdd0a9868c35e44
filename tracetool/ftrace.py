"""The ftrace-family line engine: tracefs text and ``trace-cmd report`` text.

Every line of a chunk is classified in one vectorised pass into a ``kind``:

``event``     a context-prefixed event line (function tracer lines become ``function``,
              ``<stack trace>`` lines become ``kernel_stack``/``user_stack`` events)
``frame``     a `` => `` stack frame, folded into the stack event above it
``cont``      a continuation of a multi-line print, folded into the event above it
``header``    ``#`` comments and headers, blank lines, trace-cmd preamble lines
``loss``      lost-event markers
``diag``      anything else (with a reason)

Well-formed prefixes are taken apart with literal finds and slices; only lines that
fail validation go through the format's full ``line`` regex. Declared payload fields are
extracted per event with the regex masked to that event's rows, so the cost follows the
number of matching lines, not the file size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl
from polars.datatypes import IntegerType

from tracetool.catalogue import EventSpec, FormatSpec, args_fields
from tracetool.events import DTYPES, KV, PROBE_FIELDS

# Payload of kprobe/kretprobe/fprobe and uprobe/uretprobe events (print_kprobe_event,
# print_kretprobe_event, print_uprobe_event): "(sym+off/size)", "(site <- func)",
# "(0xaddr)" or "(0xaddr <- 0xaddr)", then " name=value" fetch args. trace-cmd prints an
# unresolved kernel ip as bare hex ("(95be0ee18)") and a return probe the other way
# round: "(func <- site)".
PROBE = (
    r"^\((?:(?P<func>[^+\s()]+)\+0x(?P<func_off>[0-9a-f]+)/0x(?P<func_size>[0-9a-f]+)"
    r"(?: \[(?P<mod>[^\]]+)\])?|(?P<addr>(?:0x)?[0-9a-f]+)"
    r"|(?P<site>[^\s()]+) <- (?P<ret>[^)\s]+))\)"
    r"(?P<kvtext>(?: .*)?)$"
)
KV_PAIR = r"""[\w.\[\]]+=(?:"(?:[^"\\]|\\.)*"|\S*)"""
PRINT_EVENTS = ("tracing_mark_write", "print", "bprint", "bputs")
ORPHAN_FRAME = "stack frame with no <stack trace> line before it"
# A line that starts a new record: a chunk may be cut just before it.
# (No "^": match() anchors at its start position, where "^" would not match.)
SAFE_LINE = re.compile(
    rb"(?:\S+: )?\s*\S.*?-\d+\s+(?:\(\s*(?:\d+|-+)\)\s+)?(?:\[\d+\]|\d+\S{4,6}\s)"
)


@dataclass(frozen=True)
class Dialect:
    """What the engine needs to know about one input beyond its format."""

    trace_cmd: bool = False  # the format's dialect is "trace-cmd"
    kv: bool = False  # generic key=value extraction for undeclared events
    nocontext: bool = False  # lines carry no context prefix (option nocontext-info)


_INT64 = pl.Int64()


def _int(expr: pl.Expr, dtype: pl.DataType = _INT64, base: int = 10) -> pl.Expr:
    assert isinstance(dtype, IntegerType)
    return expr.str.to_integer(base=base, strict=False, dtype=dtype)


def timestamp_ns(lf: pl.LazyFrame, column: str, out: str) -> pl.LazyFrame:
    """Add ``out``: ``column`` as ``secs.frac`` (6 digits from the kernel, 9 from
    ``trace-cmd report -t``) in ns; a bare integer (counter, uptime, x86-tsc clocks)
    stays as printed."""
    parts = pl.col(column).str.split_exact(".", 1)
    lf = lf.with_columns(
        __secs=_int(parts.struct.field("field_0")), __frac=parts.struct.field("field_1")
    )
    frac = pl.col("__frac")
    scale = pl.lit(10, pl.Int64).pow(9 - frac.str.len_bytes().cast(pl.Int64))
    ns = (
        pl.when(frac.is_null())
        .then(pl.col("__secs"))
        .when(frac.str.len_bytes() <= 9)
        .then(pl.col("__secs") * 1_000_000_000 + _int(frac) * scale)
        .cast(pl.Int64)
    )
    return lf.with_columns(**{out: ns}).drop("__secs", "__frac")


def _fast_prefix(lf: pl.LazyFrame) -> pl.LazyFrame:
    # "%16s-%-7d [(%7d) ][%03d] FLAGS %5lu.%06lu: rest": comm is right-aligned in 16
    # columns (at most 15 chars), so the '-' is at column 16 on every kernel and in
    # trace-cmd. The first "] " closes the CPU field and the first ": " ends the
    # timestamp, unless the comm contains them; such lines fail validation later.
    # Each step materialises its columns once, so no find or split runs twice.
    t = pl.col("text")
    ib, ic = pl.col("__ib"), pl.col("__ic")
    lf = lf.with_columns(
        __ib=t.str.find("] ", literal=True), __ic=t.str.find(": ", literal=True)
    ).with_columns(
        __pidcpu=t.str.slice(17, ib - 17).str.split_exact("[", 1),
        __mid=t.str.slice(ib + 2, ic - ib - 2).str.strip_chars_start(" ").str.splitn(" ", 2),
        f_ok=(t.str.slice(16, 1) == "-") & (ic > ib),
        f_comm=t.str.slice(0, 16).str.strip_chars_start(" "),
        f_rest=t.str.slice(ic + 2),
    )
    pidtgid = pl.col("__pidcpu").struct.field("field_0").str.split_exact("(", 1)
    second = pl.col("__mid").struct.field("field_1").str.strip_chars_start(" ")
    first = pl.col("__mid").struct.field("field_0")
    lf = lf.with_columns(
        __pidtgid=pidtgid,
        f_cpu=_int(pl.col("__pidcpu").struct.field("field_1"), pl.Int32()),
        f_flags=pl.when(second.is_not_null()).then(first),
        f_ts=pl.coalesce(second, first),
    ).with_columns(
        f_pid=_int(
            pl.col("__pidtgid").struct.field("field_0").str.strip_chars_end(" "), pl.Int32()
        ),
        f_tgid=pl.col("__pidtgid").struct.field("field_1").str.strip_chars(" )"),
    )
    return timestamp_ns(lf, "f_ts", "f_tsn").drop("__ib", "__ic", "__pidcpu", "__mid", "__pidtgid")


def _line_classes(lf: pl.LazyFrame, spec: FormatSpec) -> pl.LazyFrame:
    """Add ``class_kind``, ``marker``, ``loss_cpu`` and ``loss_lost`` from the format's
    ``[[lines]]`` classes; each class's regex runs only on lines with its prefix."""
    t = pl.col("text")
    stage = {}
    for i, lc in enumerate(spec.lines):
        candidate = ~pl.col("f_ok").fill_null(False)
        if lc.prefix:
            candidate = candidate & t.str.starts_with(lc.prefix)
        stage[f"__lc{i}"] = (
            pl.when(candidate).then(t).str.extract_groups(_with_sentinel(lc.pattern))
        )
    lf = lf.with_columns(**stage)
    kind: pl.Expr = pl.lit(None, pl.String)
    cpu: pl.Expr = pl.lit(None, pl.String)
    lost: pl.Expr = pl.lit(None, pl.String)
    marker: pl.Expr = pl.lit(None, pl.String)
    for i, lc in reversed(list(enumerate(spec.lines))):
        g = pl.col(f"__lc{i}")
        hit = g.struct.field(_HIT).is_not_null()
        names = _group_names(lc.pattern)
        if lc.kind == "loss" and "cpu" in names:
            cpu = pl.when(hit).then(g.struct.field("cpu")).otherwise(cpu)
        if lc.kind == "loss" and "lost" in names:
            lost = pl.when(hit).then(g.struct.field("lost")).otherwise(lost)
        kind = pl.when(hit).then(pl.lit(lc.kind)).otherwise(kind)
        marker = pl.when(hit).then(pl.lit(lc.name)).otherwise(marker)
    return lf.with_columns(
        class_kind=kind,
        marker=marker,
        loss_cpu=_int(cpu, pl.Int32()),
        loss_lost=_int(lost),
    ).drop(*stage)


def classify(lines: pl.LazyFrame, spec: FormatSpec, dialect: Dialect) -> pl.LazyFrame:
    """Split every line into prefix columns and a ``kind`` (see the module docstring).

    :param lines: ``line`` (UInt32, 1-based) and ``text``.
    :return: ``line text kind comm pid tgid cpu flags ts event body loss_cpu loss_lost
        marker``.
    """
    t = pl.col("text")
    # Lines whose prefix slices cleanly are events, so the line classes (whose regexes
    # may have no literal prefix to guard them) only look at the others.
    lf = _line_classes(_fast_prefix(lines), spec)
    pre = (
        pl.when(t.str.strip_chars() == "")
        .then(pl.lit("header"))
        .when(pl.col("class_kind").is_not_null())
        .then(pl.col("class_kind"))
        .when(t.str.starts_with("#"))
        .then(pl.lit("header"))
        .when(t.str.starts_with(" =>"))
        .then(pl.lit("frame"))
    )
    lf = lf.with_columns(pre_kind=pre).drop("class_kind")
    ok = (
        pl.col("f_ok")
        & pl.col("f_pid").is_not_null()
        & pl.col("f_cpu").is_not_null()
        & pl.col("f_tsn").is_not_null()
        & (pl.col("f_flags").is_null() | pl.col("f_flags").str.len_bytes().is_between(4, 7))
        & pl.col("f_tgid").is_null().or_(pl.col("f_tgid").str.len_bytes() > 0)
    )
    lf = lf.with_columns(fast=pl.col("pre_kind").is_null() & ok.fill_null(False))
    # Lines slicing could not take apart go through the format's grammars in order;
    # each grammar sees only the lines no earlier one matched.
    slow_cols: list[tuple[str, list[str]]] = []
    unmatched = pl.col("pre_kind").is_null() & ~pl.col("fast")
    grammars = list(spec.line)
    if dialect.nocontext and spec.nocontext:
        grammars.append(spec.nocontext)
    for i, grammar in enumerate(grammars):
        column = f"__slow{i}"
        lf = lf.with_columns(
            **{column: pl.when(unmatched).then(t).str.extract_groups(_with_sentinel(grammar))}
        )
        slow_cols.append((column, _group_names(grammar)))
        unmatched = unmatched & pl.col(column).struct.field(_HIT).is_null()

    def group(name: str) -> pl.Expr:
        found = [pl.col(c).struct.field(name) for c, names in slow_cols if name in names]
        return pl.coalesce(found) if found else pl.lit(None, pl.String)

    fast = pl.col("fast")
    lf = lf.with_columns(
        comm=pl.when(fast).then("f_comm").otherwise(group("comm")),
        pid=pl.when(fast).then("f_pid").otherwise(_int(group("pid"), pl.Int32())),
        tgid=_int(pl.when(fast).then("f_tgid").otherwise(group("tgid")), pl.Int32()),
        cpu=pl.when(fast)
        .then("f_cpu")
        .otherwise(_int(pl.coalesce(group("cpu"), group("lcpu")), pl.Int32())),
        flags=pl.when(fast).then("f_flags").otherwise(pl.coalesce(group("flags"), group("lflags"))),
        __slow_ts=pl.when(fast).then(None).otherwise(group("ts")),
        # Latency format: microseconds since the buffer's time_start, not since boot,
        # or a raw count with non-ns clocks; with verbose, absolute microseconds in hex.
        __lat_ns=pl.coalesce(
            _int(group("lat_us")) * 1000,
            _int(group("lat_count")),
            _int(group("abs_us_hex"), base=16) * 1000,
        ),
        rest=pl.when(fast).then("f_rest").otherwise(group("rest")),
    )
    lf = timestamp_ns(lf, "__slow_ts", "__slow_tsn").with_columns(
        ts=pl.coalesce(pl.when(fast).then("f_tsn"), "__slow_tsn", "__lat_ns")
    )
    drop = ["f_ok", "f_comm", "f_pid", "f_tgid", "f_cpu", "f_flags", "f_ts", "f_tsn", "f_rest"]
    scratch = [c for c, _ in slow_cols]
    return lf.drop(*drop, *scratch, "__slow_ts", "__slow_tsn", "__lat_ns").pipe(
        _name_events, dialect
    )


def _group_names(pattern: str) -> list[str]:
    return list(re.compile(pattern).groupindex)


def _name_events(lf: pl.LazyFrame, dialect: Dialect) -> pl.LazyFrame:
    # The text after "timestamp: " names the event: "name: payload" for tracepoints,
    # kprobes and trace_printk; "func <-parent" for the function tracer; "sys_x(args)"
    # and "sys_x -> ret" for syscall events; "<stack trace>" records. Every branch of a
    # when/then is computed for all rows, so rare rewrites are masked to the rows that
    # need them and the body is one slice at a computed offset.
    rest = pl.col("rest")
    if dialect.trace_cmd:
        stripped = rest.str.strip_chars_start(" ")
        delta = (
            pl.when(stripped.str.starts_with("(+")).then(stripped).str.replace(r"^\(\+\d+\)\s+", "")
        )
        lf = lf.with_columns(rest=pl.coalesce(delta, stripped))
    # With sym-offset/sym-addr the ip of a print reads "tracing_mark_write+0x8a/0x170
    # <ffffffff8149895a>: text"; the event is still tracing_mark_write.
    # The guard is the pattern's own start, so the replace runs only on the lines it
    # rewrites, not on every payload that holds "+0x" further on (probe events).
    symoff = (
        pl.when(rest.str.contains(r"^[\w.]+\+0x"))
        .then(rest)
        .str.replace(r"^([\w.]+)\+0x[0-9a-f]+/0x[0-9a-f]+(?: <[0-9a-f]+>)?: ", "$1: ")
    )
    lf = lf.with_columns(rest=pl.coalesce(symoff, rest)).with_columns(
        __end=pl.col("rest").str.find(r"[\s:(]")
    )
    rest, end = pl.col("rest"), pl.col("__end")
    lf = lf.with_columns(__sep=rest.str.slice(end, 4), __name=rest.str.slice(0, end))
    sep, name = pl.col("__sep"), pl.col("__name")
    parsed = pl.col("rest").is_not_null() & pl.col("pre_kind").is_null()
    named = sep.str.starts_with(": ")
    stack = rest == "<stack trace>"
    ustack = rest == "<user stack trace>"
    enter = sep.str.starts_with("(")
    leave = sep == " -> "
    syscall = pl.when(enter | leave).then(name).str.strip_prefix("sys_")
    event = (
        pl.when(stack)
        .then(pl.lit("kernel_stack"))
        .when(ustack)
        .then(pl.lit("user_stack"))
        .when(named)
        .then(name)
        .when(end.is_null() | rest.str.contains(" <-", literal=True))
        .then(pl.lit("function"))
        .when(enter)
        .then(pl.concat_str(pl.lit("sys_enter_"), syscall))
        .when(leave)
        .then(pl.concat_str(pl.lit("sys_exit_"), syscall))
        .otherwise(pl.lit("print"))
    )
    offset = (
        pl.when(stack | ustack)
        .then(rest.str.len_bytes())
        .when(named)
        .then(end + 2)
        .when(leave)
        .then(end + 1)
        .when(enter)
        .then(end)
        .otherwise(0)
    )
    body = rest.str.slice(offset)
    if dialect.trace_cmd:
        body = body.str.strip_chars_start(" ")
    kind = (
        pl.when(pl.col("pre_kind").is_not_null())
        .then(pl.col("pre_kind"))
        .when(parsed)
        .then(pl.lit("event"))
        # An indented "#" line (a header pasted into a document or mail) is a comment;
        # only for lines that are nothing else, since a comm may start with "#".
        .when(pl.col("text").str.contains(r"^\s+#"))
        .then(pl.lit("header"))
        .otherwise(pl.lit("diag"))
    )
    return lf.with_columns(
        kind=kind,
        event=pl.when(parsed).then(event),
        body=pl.when(parsed).then(body),
    ).drop("pre_kind", "fast", "rest", "__end", "__sep", "__name")


def extract_args(events: pl.DataFrame, spec: FormatSpec, dialect: Dialect) -> pl.DataFrame:
    """Add ``args`` (the struct of all declared fields) and ``args_ok``.

    The rows of each declared event present are taken out on their own and only its
    patterns run on them; so do the probe pattern on the rows that can be probes. The
    fields are typed on those few rows, not on columns as long as the chunk and null
    almost everywhere, and put back in row order. ``args_ok`` is false for a declared event
    whose payload matched none of its patterns.
    """
    fields = args_fields()
    ev, body = pl.col("event"), pl.col("body")
    keyed = events.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias(_ROW), "event", "body")
    declared = {name: e for name, e in spec.events.items() if e.patterns}
    own = keyed.filter(ev.is_in(list(declared)))
    groups = own.partition_by("event", as_dict=True, include_key=False) if own.height else {}
    # Only payloads that start with "(" can be probe events; syscall entries also do,
    # but the engine already renamed those to sys_enter_*.
    candidate = body.str.starts_with("(") & ~ev.str.starts_with("sys_enter_")
    probes = (
        keyed.lazy()
        .filter(candidate)
        .with_columns(__probe=body.str.extract_groups(PROBE))
        .select(_ROW, **_probe_fields(pl.col("__probe"), dialect))
    )
    subs = [_event_args(rows, declared[str(key[0])]) for key, rows in groups.items()]
    probed, *parts = pl.collect_all([probes, *subs])
    found = _aligned(events.height, parts, probed)
    lf = pl.concat([events, found], how="horizontal").lazy()
    per_field: dict[str, list[pl.Expr]] = {name: [] for name in fields}
    for fname in PROBE_FIELDS:
        per_field[fname].append(pl.col(f"__p_{fname}"))
    # An engine that learned a field from the line itself (perf's "probe:func__return"
    # names the function and the system) passes it as an "arg_<field>" column.
    given = [c for c in events.columns if c.startswith("arg_") and c[4:] in per_field]
    for column in given:
        per_field[column[4:]].insert(0, pl.col(column))
    typed = [c for c in found.columns if c.startswith("__f_")]
    for column in typed:
        per_field[column[4:]].append(pl.col(column))
    if dialect.kv:
        generic = ~ev.is_in(list(spec.events)) & pl.col("__p_kv").is_null()
        per_field["kv"].append(_kv(pl.when(generic).then(body)))
    columns = [
        (pl.coalesce(exprs) if exprs else pl.lit(None)).cast(fields[name]).alias(name)
        for name, exprs in per_field.items()
    ]
    scratch = ["__ok", *typed, *(f"__p_{f}" for f in PROBE_FIELDS), *given]
    return (
        lf.with_columns(args=pl.struct(columns), args_ok=pl.col("__ok").fill_null(True))
        .drop(scratch)
        .collect()
    )


_ROW = "__row"


def _aligned(height: int, parts: list[pl.DataFrame], probed: pl.DataFrame) -> pl.DataFrame:
    """The per-event frames and the probe frame (each keyed by ``__row``) as one frame of
    ``height`` rows in row order, without ``__row``. Event frames hold disjoint rows, and
    so, nearly always, does the probe frame: stacking and sorting by row is then several
    times cheaper than joining. A declared event whose payload starts with "(" is in
    both; its probe fields are filled in by row afterwards."""
    stacked = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()
    if stacked.width == 0:
        stacked = pl.DataFrame(schema={_ROW: pl.UInt32, "__ok": pl.Boolean})
    both = probed.filter(pl.col(_ROW).is_in(stacked[_ROW].implode()))
    rest = pl.DataFrame({_ROW: pl.int_range(height, dtype=pl.UInt32, eager=True)}).filter(
        ~pl.col(_ROW).is_in(pl.concat([stacked[_ROW], probed[_ROW]]).implode())
    )
    alone = probed.filter(~pl.col(_ROW).is_in(both[_ROW].implode()))
    frame = pl.concat([stacked, alone.select(pl.all()), rest], how="diagonal").sort(_ROW)
    if both.height:
        frame = frame.update(both, on=_ROW, how="left")
    return frame.drop(_ROW)


def _event_args(rows: pl.DataFrame, espec: EventSpec) -> pl.LazyFrame:
    """One event's rows (``__row``, ``body``) to ``__row``, ``__ok`` (some pattern
    matched) and its typed fields as ``__f_<field>``, the first pattern's that matched."""
    body = pl.col("body")
    stage = {
        f"__a{i}": body.str.extract_groups(_with_sentinel(pattern))
        for i, pattern in enumerate(espec.patterns)
    }
    per_field: dict[str, list[pl.Expr]] = {}
    hits = []
    for column, pattern in zip(stage, espec.patterns, strict=True):
        g = pl.col(column)
        hit = g.struct.field(_HIT).is_not_null()
        hits.append(hit)
        for fname in _group_names(pattern):
            if fname != _HIT:
                per_field.setdefault(fname, []).append(
                    _typed(pl.when(hit).then(g.struct.field(fname)), espec.fields[fname])
                )
    return (
        rows.lazy()
        .with_columns(**stage)
        .select(
            _ROW,
            __ok=pl.any_horizontal(hits),
            **{f"__f_{name}": pl.coalesce(exprs) for name, exprs in per_field.items()},
        )
    )


def fold(
    df: pl.DataFrame, spec: FormatSpec, file: str
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Fold `` => `` frames into the stack event above them and continuation lines of
    multi-line prints into their event; mark frames with no stack event as diagnostics.
    The ftrace family fills no record tables."""
    return _fold(df, spec), {}


def _fold(df: pl.DataFrame, spec: FormatSpec) -> pl.DataFrame:
    kind, line = pl.col("kind"), pl.col("line")
    anchor_line = pl.when(kind != "frame").then(line).forward_fill()
    anchor_event = pl.when(kind != "frame").then(pl.col("event")).forward_fill()
    stack_anchor = (kind == "frame") & anchor_event.is_in(["kernel_stack", "user_stack"])
    # A print's text, or a probe's string fetch-arg, may hold newlines: the lines after
    # it that are not events are its own. Declared events print on one line.
    single_line = [n for n in spec.events if n not in PRINT_EVENTS]
    single_line += ["function", "kernel_stack", "user_stack"]
    prev_ok = pl.when(kind != "diag").then((kind == "event") & ~pl.col("event").is_in(single_line))
    cont_anchor = pl.when(kind != "diag").then(line).forward_fill()
    df = df.with_columns(
        kind=pl.when((kind == "diag") & prev_ok.forward_fill().fill_null(False))
        .then(pl.lit("cont"))
        .when((kind == "frame") & ~stack_anchor.fill_null(False))
        .then(pl.lit("diag"))
        .otherwise(kind),
        reason=pl.when((kind == "frame") & ~stack_anchor.fill_null(False)).then(
            pl.lit(ORPHAN_FRAME)
        ),
        owner=pl.when(kind == "frame").then(anchor_line).otherwise(cont_anchor),
    )
    empty = pl.lit(None, pl.List(pl.String))
    records = df.filter(pl.col("kind").is_in(["frame", "cont"]))
    if records.is_empty():
        return df.with_columns(
            frames_k=pl.when(pl.col("event") == "kernel_stack")
            .then(pl.lit([], pl.List(pl.String)))
            .otherwise(empty),
            frames_u=pl.when(pl.col("event") == "user_stack")
            .then(pl.lit([], pl.List(pl.String)))
            .otherwise(empty),
        )
    frames = (
        records.filter(pl.col("kind") == "frame")
        .group_by("owner", maintain_order=True)
        .agg(frames=pl.col("text").str.strip_prefix(" =>").str.strip_chars())
    )
    conts = (
        records.filter(pl.col("kind") == "cont")
        .group_by("owner", maintain_order=True)
        .agg(more=pl.col("text").str.join("\n"))
    )
    df = df.join(frames, left_on="line", right_on="owner", how="left", maintain_order="left").join(
        conts, left_on="line", right_on="owner", how="left", maintain_order="left"
    )
    no_frames = pl.lit([], pl.List(pl.String))
    return df.with_columns(
        body=pl.when(pl.col("more").is_not_null())
        .then(pl.concat_str("body", pl.lit("\n"), "more"))
        .otherwise("body"),
        frames_k=pl.when(pl.col("event") == "kernel_stack")
        .then(pl.coalesce("frames", no_frames))
        .otherwise(empty),
        frames_u=pl.when(pl.col("event") == "user_stack")
        .then(pl.coalesce("frames", no_frames))
        .otherwise(empty),
    ).drop("frames", "more")


_HIT = "tt_hit"


def _with_sentinel(pattern: str) -> str:
    # An empty group that is "" when the pattern matched and null when it did not, since
    # every real group may legitimately be null (optional parts).
    flags = re.match(r"^(?:\(\?[a-zA-Z]+\))*", pattern)
    cut = flags.end() if flags else 0
    return f"{pattern[:cut]}(?P<{_HIT}>){pattern[cut:]}"


def _typed(value: pl.Expr, ftype: str) -> pl.Expr:
    dtype = DTYPES[ftype]
    if ftype == "str":
        return value
    if ftype == "hex":
        return _int(value.str.strip_prefix("0x"), dtype, base=16)
    if ftype == "int":
        hexa = _int(value.str.strip_prefix("0x"), dtype, base=16)
        return pl.when(value.str.starts_with("0x")).then(hexa).otherwise(_int(value, dtype))
    if ftype == "usecs":
        parts = value.str.split_exact(".", 1)
        frac = parts.struct.field("field_1").fill_null("").str.pad_end(3, "0").str.slice(0, 3)
        return _int(parts.struct.field("field_0")) * 1000 + _int(frac)
    if ftype == "depth":
        return ((value.str.len_bytes().cast(pl.Int32) - 2) // 2).cast(dtype)
    return _int(value, dtype)


def _probe_fields(g: pl.Expr, dialect: Dialect) -> dict[str, pl.Expr]:
    """The PROBE_FIELDS (as ``__p_<name>``) from the struct of PROBE's groups."""
    groups = {name: g.struct.field(name) for name in _group_names(PROBE)}
    if dialect.trace_cmd:
        groups["site"], groups["ret"] = groups["ret"], groups["site"]

    def f(name: str) -> pl.Expr:
        return groups[name]

    is_probe = f("func").is_not_null() | f("addr").is_not_null() | f("site").is_not_null()
    user = (f("addr").str.starts_with("0x") | f("site").str.starts_with("0x")).fill_null(False)
    is_return = f("site").is_not_null()
    probe = (
        pl.when(~is_probe)
        .then(None)
        .when(user & is_return)
        .then(pl.lit("uretprobe"))
        .when(user)
        .then(pl.lit("uprobe"))
        .when(is_return)
        .then(pl.lit("kretprobe"))
        .otherwise(pl.lit("kprobe"))
    )
    hexa = {k: _typed(f(k), "hex") for k in ("func_off", "func_size", "addr")}
    return {
        f"__p_{name}": expr
        for name, expr in {
            "probe": probe,
            "func": pl.coalesce(f("func"), pl.when(~user).then(f("ret"))),
            "func_off": hexa["func_off"],
            "func_size": hexa["func_size"],
            "mod": f("mod"),
            "addr": pl.coalesce(hexa["addr"], _typed(pl.when(user).then(f("ret")), "hex")),
            "site": f("site"),
            "kv": pl.when(is_probe).then(_kv(f("kvtext"))),
        }.items()
    }


def _kv(text: pl.Expr) -> pl.Expr:
    """``" a=1 b=0x10 s=\\"x y\\""`` to a list of ``{name, value, num}``."""
    pairs = text.str.extract_all(KV_PAIR)
    element = pl.element().str.splitn("=", 2)
    value = element.struct.field("field_1")
    unquoted = (
        pl.when(
            value.str.starts_with('"') & value.str.ends_with('"') & (value.str.len_bytes() >= 2)
        )
        .then(value.str.slice(1, value.str.len_bytes() - 2))
        .otherwise(value)
    )
    num = (
        pl.when(value.str.starts_with("0x"))
        .then(_int(value.str.slice(2), pl.Int128(), base=16))
        .otherwise(_int(value, pl.Int128()))
    )
    as_struct = pl.struct(name=element.struct.field("field_0"), value=unquoted, num=num)
    return pairs.list.eval(as_struct).cast(KV)


__all__ = ["PRINT_EVENTS", "PROBE", "SAFE_LINE", "Dialect", "classify", "extract_args", "fold"]
