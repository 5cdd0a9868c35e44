"""The kernel-log engine: dmesg, /dev/kmsg, journalctl -k, syslog and console captures.

``classify`` takes every line apart into its transport prefix, the kernel's own prefix
(time since boot, printk caller id, syslog level) and the message, with the grammars of
``parsers/dmesg.toml``. ``fold`` then works on the whole chunk, because what a line is
depends on the lines around it:

- ``ftrace_dump_on_oops`` / SysRq-z dumps (``Dumping ftrace buffer:`` between dashed
  lines) are run through the ftrace engine: their lines become ordinary ftrace events
  with ``source = "ftrace-dump"``, moved onto the log's clock (``dumps`` table says by how
  much, how sure and why);
- crash reports are assembled by ``tracetool.crashes`` into the ``crashes`` table, their
  lines counted as records;
- every other line is a ``printk`` event, with the ``driver device:`` prefix of
  dev_printk parsed by the format's declaration.

Printk caller ids (``[T123]``, ``[C2]``) give each line its context, so reports printed
on several CPUs at once are told apart; without them, lines are told apart by shape.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

import polars as pl

from tracetool import crashes, ftrace
from tracetool.catalogue import FormatSpec, get_format
from tracetool.ftrace import Dialect, _int

SOURCE_DUMP = "ftrace-dump"
UNPARSED = "not a kernel log line"
# A line a chunk may be cut before: one that only ever starts a crash report (a WARN's
# title follows its "cut here" line, so titles in general do not qualify).
SAFE_LINE = re.compile(
    rb"(?:.*?\] )?\s*(?:-+\[ cut here \]-+|Unable to handle kernel |BUG: unable to handle )"
)
LEVELS = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
FACILITIES = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DUMP_START = r"^\s*Dumping ftrace (?:instance (?P<instance>\S+) )?buffer:\s*$"
_DUMP_DASHES = r"^\s*-{33}\s*$"
_DUMP_EMPTY = r"^\s*\(ftrace buffer empty\)\s*$"
_DUMP_CORRUPT = (
    r"^\s*# (?:WARNING: FUNCTION TRACING IS CORRUPTED|\s*MAY BE MISSING FUNCTION EVENTS)"
)


def _group_names(pattern: str) -> list[str]:
    return list(re.compile(pattern).groupindex)


def _month(expr: pl.Expr) -> pl.Expr:
    return expr.replace_strict(
        list(_MONTHS), list(range(1, 13)), default=None, return_dtype=pl.Int32
    )


def _wall_ns(g: Any) -> pl.Expr:
    """Nanoseconds since the epoch of the wall-clock prefixes; syslog's "Mon DD
    HH:MM:SS" has no year, so it counts from 1 January 1970 of an unknown year."""
    ctime = pl.datetime(
        _int(g("ctime_year"), pl.Int32()),
        _month(g("ctime_mon")),
        _int(g("ctime_day"), pl.Int32()),
        _int(g("ctime_hms").str.slice(0, 2), pl.Int32()),
        _int(g("ctime_hms").str.slice(3, 2), pl.Int32()),
        _int(g("ctime_hms").str.slice(6, 2), pl.Int32()),
        time_unit="ns",
    )
    syslog_hms = g("sys_hms")
    frac = syslog_hms.str.slice(9).str.pad_end(9, "0")
    syslog = pl.datetime(
        1970,
        _month(g("sys_mon")),
        _int(g("sys_day"), pl.Int32()),
        _int(syslog_hms.str.slice(0, 2), pl.Int32()),
        _int(syslog_hms.str.slice(3, 2), pl.Int32()),
        _int(syslog_hms.str.slice(6, 2), pl.Int32()),
        time_unit="ns",
    ).dt.epoch("ns") + pl.when(frac != "").then(_int(frac)).otherwise(0)
    iso = pl.coalesce(g("iso").str.replace(",", ".", literal=True), g("iso_j")).str.to_datetime(
        format=None, time_zone="UTC", time_unit="ns", strict=False
    )
    return pl.coalesce(ctime.dt.epoch("ns"), syslog, iso.dt.epoch("ns"))


def _fast_prefix(lines: pl.LazyFrame) -> pl.LazyFrame:
    """The common ``[%5lu.%06lu]`` and ``[%5lu.%06lu][%6s]`` prefixes taken apart with
    finds and slices; ``f_ok`` is false where that does not hold, and the format's
    grammars read those lines instead (also journalctl's "host kernel: " after the
    time, which only a regex can tell)."""
    t = pl.col("text")
    lines = lines.with_columns(__c1=t.str.find("]", literal=True)).with_columns(
        __stamp=t.str.slice(1, pl.col("__c1") - 1).str.strip_chars_start(" "),
        __after=t.str.slice(pl.col("__c1") + 1),
    )
    after = pl.col("__after")
    lines = lines.with_columns(
        __c2=pl.when(after.str.starts_with("[")).then(after.str.find("]", literal=True))
    ).with_columns(
        f_secs=pl.col("__stamp").str.split_exact(".", 1).struct.field("field_0"),
        f_usecs=pl.col("__stamp").str.split_exact(".", 1).struct.field("field_1"),
        f_caller=pl.when(pl.col("__c2").is_not_null()).then(
            after.str.slice(1, pl.col("__c2") - 1).str.strip_chars_start(" ")
        ),
        f_msg=pl.when(pl.col("__c2").is_not_null())
        .then(after.str.slice(pl.col("__c2") + 1))
        .otherwise(after)
        .str.strip_prefix(" "),
    )
    ok = (
        t.str.starts_with("[")
        & pl.col("f_secs").str.contains(r"^\d+$")
        & pl.col("f_usecs").str.contains(r"^\d{6}$")
        & (pl.col("__c2").is_null() | pl.col("f_caller").str.contains(r"^[TC]\d+$"))
        & ~pl.col("f_msg").str.contains(r"^\S+ kernel: ")
    )
    return lines.with_columns(f_ok=ok.fill_null(False)).drop("__c1", "__c2", "__stamp", "__after")


def classify(lines: pl.LazyFrame, spec: FormatSpec, dialect: Dialect) -> pl.LazyFrame:
    """Prefix columns of every line: ``msg`` (the message), ``ts`` (ns since boot, or
    since the epoch for wall-clock prefixes), ``stamp`` (which clock), ``caller``,
    ``level``, ``facility``; ``kind`` is provisional (``event``, ``header``, ``loss``)
    until ``fold`` has seen the records around each line."""
    t = pl.col("text")
    lines = _fast_prefix(lines)
    unmatched: pl.Expr = ~pl.col("f_ok")
    stage: list[tuple[str, list[str]]] = []
    for i, grammar in enumerate(spec.line):
        column = f"__p{i}"
        lines = lines.with_columns(
            **{
                column: pl.when(unmatched)
                .then(t)
                .str.extract_groups(ftrace._with_sentinel(grammar))
            }
        )
        stage.append((column, _group_names(grammar)))
        unmatched = unmatched & pl.col(column).struct.field(ftrace._HIT).is_null()

    fast = {"secs": "f_secs", "usecs": "f_usecs", "caller": "f_caller", "msg": "f_msg"}

    def g(name: str) -> pl.Expr:
        found = [pl.col(c).struct.field(name) for c, names in stage if name in names]
        if name in fast:
            found.insert(0, pl.when(pl.col("f_ok")).then(pl.col(fast[name])))
        return pl.coalesce(found) if found else pl.lit(None, pl.String)

    boot = _int(g("secs")) * 1_000_000_000 + _int(g("usecs")) * 1000
    kmsg = _int(g("kmsg_us")) * 1000
    wall = _wall_ns(g)
    prio = _int(g("prio"), pl.Int32())
    caller = g("caller")
    lf = lines.with_columns(
        msg=pl.coalesce(g("msg"), t),
        ts=pl.coalesce(boot, kmsg, wall),
        stamp=pl.when(boot.is_not_null() | kmsg.is_not_null())
        .then(pl.lit("us"))
        .when(g("sys_mon").is_not_null())
        .then(pl.lit("wallclock-no-year"))
        .when(wall.is_not_null())
        .then(pl.lit("wallclock")),
        caller=caller,
        caller_pid=_int(pl.when(caller.str.starts_with("T")).then(caller.str.slice(1)), pl.Int32()),
        caller_cpu=_int(pl.when(caller.str.starts_with("C")).then(caller.str.slice(1)), pl.Int32()),
        level=pl.coalesce(
            prio % 8,
            g("level").replace_strict(
                list(LEVELS), list(range(8)), default=None, return_dtype=pl.Int32
            ),
        ),
        facility=pl.coalesce(
            g("facility"),
            (prio // 8).replace_strict(
                list(range(len(FACILITIES))), list(FACILITIES), default=None, return_dtype=pl.String
            ),
        ),
    ).drop(*(c for c, _ in stage), "f_ok", *fast.values())
    # The format's line classes (printk-dropped, kmsg dictionary lines, and the
    # inherited ftrace loss markers) look at the message, not at the transport.
    lf = (
        lf.rename({"text": "__raw", "msg": "text"})
        .with_columns(f_ok=pl.lit(False))
        .pipe(ftrace._line_classes, spec)
        .rename({"text": "msg", "__raw": "text"})
        .drop("f_ok")
    )
    kind = (
        pl.when(t.str.strip_chars() == "")
        .then(pl.lit("header"))
        .when(pl.col("class_kind").is_not_null())
        .then(pl.col("class_kind"))
        .otherwise(pl.lit("event"))
    )
    return lf.with_columns(kind=kind).drop("class_kind")


def fold(
    df: pl.DataFrame, spec: FormatSpec, file: str
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Dumps, crash reports and printk events of one chunk (see the module docstring)."""
    df = df.with_columns(stream=pl.coalesce("caller", pl.lit("")))
    df, dumped = _dumps(df, spec)
    # Report marks are computed once: the dump alignment needs where reports begin.
    df = crashes.mark(df, spec)
    dump_events, dumps = (None, _empty_dumps()) if dumped is None else _align(df, *dumped, file)
    df, reports = crashes.assemble(df, spec, file)
    printk = df.filter(pl.col("kind") == "event").select(
        "line",
        "text",
        kind=pl.lit("event"),
        comm=pl.lit(None, pl.String),
        pid="caller_pid",
        tgid=pl.lit(None, pl.Int32),
        cpu="caller_cpu",
        flags=pl.lit(None, pl.String),
        ts="ts",
        event=pl.lit("printk"),
        body="msg",
        loss_cpu=pl.lit(None, pl.Int32),
        loss_lost=pl.lit(None, pl.Int64),
        marker=pl.lit(None, pl.String),
        frames_k=pl.lit(None, pl.List(pl.String)),
        frames_u=pl.lit(None, pl.List(pl.String)),
        reason=pl.lit(None, pl.String),
        source=pl.lit(None, pl.String),
        arg_level="level",
        arg_facility="facility",
    )
    others = df.filter(pl.col("kind") != "event").select(
        "line",
        "text",
        "kind",
        ts="ts",
        loss_lost="loss_lost",
        marker="marker",
        reason=pl.lit(None, pl.String),
    )
    parts = [printk, others] if dump_events is None else [printk, dump_events, others]
    out = pl.concat(parts, how="diagonal_relaxed").sort("line")
    tables = {"crashes": reports}
    if dumps.height:
        tables["dumps"] = dumps
    return out, tables


def _dumps(
    df: pl.DataFrame, spec: FormatSpec
) -> tuple[pl.DataFrame, tuple[pl.DataFrame, pl.DataFrame] | None]:
    """Find the ftrace dumps and parse their lines with the ftrace engine. Returns the
    lines left to the rest of ``fold`` (dump lines taken out) and, when there are dumps,
    their parsed lines and their marker lines (``Dumping ...``, dashes, empty), both
    with the ``stream`` and ``__dump`` they belong to."""
    m = pl.col("msg")
    df = df.with_columns(
        __start=m.str.contains(DUMP_START),
        __dash=m.str.contains(_DUMP_DASHES),
        __empty=m.str.contains(_DUMP_EMPTY),
    )
    if not df["__start"].any():
        return df.drop("__start", "__dash", "__empty"), None
    s = pl.col("stream")
    df = df.with_columns(__dump=pl.col("__start").cast(pl.Int32).cum_sum().over(s))
    dashes = pl.col("__dash").cast(pl.Int32).cum_sum().over(s, "__dump")
    closing = (pl.col("__dash") & (dashes == 2)) | pl.col("__empty")
    closed_before = (
        closing.cast(pl.Int32).cum_sum().over(s, "__dump") - closing.cast(pl.Int32)
    ) > 0
    marker = pl.col("__start") | pl.col("__dash") | pl.col("__empty")
    df = df.with_columns(
        __in=(pl.col("__dump") > 0) & ~closed_before, __closing=closing
    ).with_columns(__marker=pl.col("__in") & marker)
    inside = df.filter(pl.col("__in") & ~pl.col("__marker"))
    # The dump is ftrace text: the ftrace grammars read it, with this format's events.
    dump_spec = dataclasses.replace(spec, line=get_format("ftrace").line)
    parsed = ftrace.classify(
        inside.select("line", text=pl.col("msg")).lazy(), dump_spec, Dialect()
    ).collect()
    parsed, _ = ftrace.fold(parsed, dump_spec, file="")
    # A line inside a dump that is not ftrace output belongs to the log (another
    # context printed it); it is left to the report assembly and printk.
    ok = parsed.filter(pl.col("kind") != "diag").join(
        inside.select("line", "stream", "__dump", raw="text"), on="line", how="left"
    )
    markers = df.filter(pl.col("__marker"))
    rest = df.filter(~pl.col("__marker") & ~pl.col("line").is_in(ok["line"].implode()))
    drop = ["__start", "__dash", "__empty", "__dump", "__in", "__closing", "__marker"]
    return rest.drop(drop), (ok, markers)


def _empty_dumps() -> pl.DataFrame:
    from tracetool.events import RECORD_SCHEMAS

    return pl.DataFrame(schema=RECORD_SCHEMAS["dumps"])


def _align(
    df: pl.DataFrame, ok: pl.DataFrame, markers: pl.DataFrame, file: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The dump's lines in the engine's columns with its events moved onto the log
    clock, and one ``dumps`` row per dump. ``df`` is the rest of the log, ``mark``ed.

    An event visible in both (a ``console`` tracepoint whose text the log printed too)
    anchors the clocks: the offset is their median difference, good to the spread of
    the differences plus the log's 1 µs resolution. Without one, the dump's last event
    is placed at the ``Dumping ftrace buffer:`` line, the latest it can have happened
    (tracing stops when the dump starts); it may have happened earlier, by up to the
    time since the crash report began, assuming the event led to the crash."""
    keys = ["stream", "__dump"]
    starts = markers.filter(pl.col("__start")).select(
        *keys,
        line="line",
        dump_ts="ts",
        instance=pl.col("msg").str.extract(DUMP_START, 1),
    )
    ends = markers.group_by(keys).agg(
        end_line=pl.col("line").max(), complete=pl.col("__closing").any()
    )
    events = ok.filter(pl.col("kind") == "event")
    stats = events.group_by(keys).agg(events=pl.len(), last_rel=pl.col("ts").max())
    lost = ok.filter(pl.col("kind") == "loss").group_by(keys).agg(lost=pl.col("loss_lost").sum())
    # The report that holds the dump began at the stream's last "cut here"/title line.
    report_start = crashes.report_starts(df).select("line", "stream", report_ts="ts")
    anchors = _anchors(df, events, keys)
    table = (
        starts.join(ends, on=keys, how="left")
        .join(stats, on=keys, how="left")
        .join(lost, on=keys, how="left")
        .join(anchors, on=keys, how="left")
        .sort("line")
        .join_asof(
            report_start.sort("line"),
            on="line",
            by="stream",
            strategy="backward",
            check_sortedness=False,
        )
    )
    positional = pl.col("dump_ts") - pl.col("last_rel")
    table = table.with_columns(
        offset_ns=pl.coalesce("anchor_offset", positional),
        uncertainty_ns=pl.coalesce(
            pl.col("anchor_spread") + 1000,
            pl.col("dump_ts") - pl.col("report_ts") + 1000,
            pl.lit(1000, pl.Int64),
        ).cast(pl.Int64),
        how=pl.when(pl.col("anchor_offset").is_not_null())
        .then(pl.format("anchored on {} event(s) the log printed too", pl.col("anchors")))
        .when(pl.col("dump_ts").is_null())
        .then(pl.lit("the log has no timestamps: times are since the trace buffer was reset"))
        .when(positional.is_not_null())
        .then(pl.lit("last event placed at the dump line (the latest it can be)"))
        .otherwise(pl.lit("no events to align")),
        events=pl.col("events").fill_null(0).cast(pl.Int64),
        lost=pl.col("lost").cast(pl.Int64),
        file=pl.lit(file),
    )
    from tracetool.events import RECORD_SCHEMAS

    schema = RECORD_SCHEMAS["dumps"]
    dumps = table.select(schema.names()).cast(schema)
    shifted = (
        ok.join(table.select(*keys, "offset_ns"), on=keys, how="left")
        .with_columns(
            ts=pl.col("ts") + pl.col("offset_ns").fill_null(0),
            source=pl.when(pl.col("kind") == "event").then(pl.lit(SOURCE_DUMP)),
            # The dump's lines keep their raw text (with the log prefix) as evidence.
            text="raw",
        )
        .drop("offset_ns", "raw", *keys)
    )
    lines = pl.concat(
        [shifted, markers.select("line", "text", kind=pl.lit("record"))],
        how="diagonal_relaxed",
    )
    return lines, dumps


def _anchors(df: pl.DataFrame, events: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Offsets from ``console`` tracepoint events whose text the log printed too."""
    console = events.filter(pl.col("event") == "console").select(
        *keys, rel="ts", text=pl.col("body").str.strip_chars()
    )
    logged = (
        df.filter(pl.col("ts").is_not_null() & (pl.col("kind") == "event"))
        .select(log_ts="ts", text=pl.col("msg").str.strip_chars())
        .unique("text", keep="first")
    )
    pairs = console.join(logged, on="text").with_columns(diff=pl.col("log_ts") - pl.col("rel"))
    return pairs.group_by(keys).agg(
        anchor_offset=pl.col("diff").median().cast(pl.Int64),
        anchor_spread=(pl.col("diff").max() - pl.col("diff").min()).cast(pl.Int64),
        anchors=pl.len(),
    )


# "Linux version 6.1.0-13-s390x (...)" at boot, or a report's task line:
# "CPU: 3 PID: 41 Comm: kmcheck Not tainted 6.0.0-rc3 #1" (old kernels: "comm:").
_RELEASE = re.compile(r"Linux version (\S+)|\b[Cc]omm: .*\s(\S+) #\d+\b")


def log_release(lines: Iterable[str]) -> str | None:
    """The kernel release a log names first, or None."""
    for line in lines:
        if m := _RELEASE.search(line):
            return m.group(1) or m.group(2)
    return None
