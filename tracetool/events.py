"""The event model: fixed schemas of the tables every parser produces, and ``Trace``.

``events``       one row per event (columns below; ``args`` holds the typed fields that
                 ``parsers/*.toml`` declares, ``stack``/``ustack`` the frames of a
                 ``<stack trace>``/``<user stack trace>`` record attached to the event).
``diagnostics``  one row per line not understood (``kind = "unparsed"``), or per event
                 whose payload did not match its declared format (``kind = "args"``; the
                 event itself is kept).
``losses``       one row per loss window: a lost-events marker or a header that says the
                 ring buffer overwrote events.

Record-oriented formats also fill record tables (``RECORD_SCHEMAS``): crash reports of a
kernel log, the ftrace dumps inside it and how their clock was aligned, bpftrace map
dumps and histograms. Every row keeps ``file`` and ``line``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

# Field types a parsers/*.toml may declare, and the column type each becomes.
DTYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "int": pl.Int64(),  # decimal, or hex with a 0x prefix
    "i32": pl.Int32(),
    "u64": pl.UInt64(),
    "hex": pl.UInt64(),  # hex digits, with or without 0x
    "usecs": pl.Int64(),  # "12.345" microseconds as printed, to integer nanoseconds
    "depth": pl.Int32(),  # function_graph indentation after "|": 2 + 2 * depth spaces
}

# A probe fetch-arg or a generic key=value pair. ``num`` is the value as an integer when
# it was printed as one (decimal, or 0x-hex up to 64 bits unsigned), so pointers,
# function handles and negative return codes are all exact.
KV = pl.List(pl.Struct({"name": pl.String(), "value": pl.String(), "num": pl.Int128()}))

# Fields every probe event (kprobe, kretprobe, fprobe, uprobe, uretprobe) gets.
PROBE_FIELDS: dict[str, pl.DataType] = {
    "probe": pl.String(),  # kprobe | kretprobe | uprobe | uretprobe
    "func": pl.String(),  # the probed function (for a return probe: the one returning)
    "func_off": pl.UInt64(),
    "func_size": pl.UInt64(),
    "mod": pl.String(),
    "addr": pl.UInt64(),  # uprobe address
    "site": pl.String(),  # return probes: where the function returned to
    "kv": KV,
}

# Fields an engine fills for any event, whatever its format declares.
ENGINE_FIELDS: dict[str, pl.DataType] = {
    # A sampled event (perf's cycles, cpu-clock, page-faults...): the sample period and
    # where the sample hit, from its line or the first frame of its callchain.
    "period": pl.UInt64(),
    "sample_ip": pl.UInt64(),
    "sym": pl.String(),
    "sym_off": pl.UInt64(),
    "dso": pl.String(),
    # The event's system when the text names it ("iommu" for perf's "iommu:map");
    # ``event`` stays "map", as tracefs prints it, so one declaration and one timeline
    # serve every format.
    "system": pl.String(),
    # Kernel log messages: the syslog level (0 emerg .. 7 debug) and facility, when the
    # prefix prints them (dmesg -r, dmesg -x, /dev/kmsg).
    "level": pl.Int32(),
    "facility": pl.String(),
}


def base_columns() -> dict[str, pl.DataType]:
    """Columns of ``events`` before ``args``, in order."""
    return {
        "ts": pl.Int64(),
        "cpu": pl.Int32(),
        "pid": pl.Int32(),
        "tgid": pl.Int32(),
        "comm": pl.String(),
        "event": pl.String(),
        "source": pl.String(),
        "file": pl.String(),
        "line": pl.UInt32(),
        "flags": pl.String(),
        "body": pl.String(),
    }


def events_schema(args: pl.Struct) -> pl.Schema:
    """Full ``events`` schema for an ``args`` struct built from the catalogue."""
    return pl.Schema(
        {
            **base_columns(),
            "args": args,
            "stack": pl.List(pl.String()),
            "ustack": pl.List(pl.String()),
        }
    )


DIAGNOSTICS_SCHEMA = pl.Schema(
    {
        "file": pl.String(),
        "line": pl.UInt32(),
        "kind": pl.String(),
        "reason": pl.String(),
        "text": pl.String(),
    }
)

LOSSES_SCHEMA = pl.Schema(
    {
        "source": pl.String(),
        "file": pl.String(),
        "line": pl.UInt32(),
        "cpu": pl.Int32(),
        "start_ts": pl.Int64(),  # null: since the start of the recording
        "end_ts": pl.Int64(),  # null: until the end of the recording
        "lost": pl.Int64(),  # null when the marker gives no count
        "marker": pl.String(),
    }
)

FRAME = pl.Struct(
    {
        "func": pl.String(),  # symbol, or null for a bare address
        "off": pl.UInt64(),  # +0x.. offset into it
        "size": pl.UInt64(),  # /0x.. its size
        "module": pl.String(),  # [module], null for the kernel image
        "addr": pl.UInt64(),  # [<addr>] when printed
        "reliable": pl.Boolean(),  # false for "? " (x86) and "([<..>] ..)" (s390) frames
    }
)

RECORD_SCHEMAS: dict[str, pl.Schema] = {
    # One crash report (WARNING, BUG, Oops, panic, KASAN, lockdep, hung task, ...).
    "crashes": pl.Schema(
        {
            "file": pl.String(),
            "line": pl.UInt32(),  # the first line of the report
            "end_line": pl.UInt32(),  # its last line
            "ts": pl.Int64(),  # log time of the title line (ns), null without one
            "kind": pl.String(),  # warning, bug, oops, panic, kasan, lockdep, ...
            "title": pl.String(),  # e.g. "WARNING in s390_iommu_attach_device"
            "signature": pl.String(),  # the title normalised for deduplication
            "cpu": pl.Int32(),
            "pid": pl.Int32(),
            "comm": pl.String(),
            "tainted": pl.String(),  # taint flags as printed ("G        W"), "" if none
            "release": pl.String(),  # kernel release from the CPU: line
            "location": pl.String(),  # source file:line of a WARN or BUG
            "guilty": pl.String(),  # first reliable frame that is not a report helper
            "message": pl.String(),  # the report's own text (WARN message, BUG reason)
            "frames": pl.List(FRAME),
            "corrupted": pl.Boolean(),  # cut off, or missing the parts its kind has
            "lines": pl.List(pl.UInt32()),  # every line of the report (the evidence)
        }
    ),
    # One ftrace_dump_on_oops / SysRq-z dump inside a kernel log.
    "dumps": pl.Schema(
        {
            "file": pl.String(),
            "line": pl.UInt32(),  # "Dumping ftrace buffer:"
            "end_line": pl.UInt32(),
            "instance": pl.String(),  # null for the top-level buffer
            "events": pl.Int64(),
            "lost": pl.Int64(),  # events lost per [LOST N EVENTS] markers inside it
            "offset_ns": pl.Int64(),  # added to the dump's clock to get log time
            "uncertainty_ns": pl.Int64(),  # the offset is good to +- this
            "how": pl.String(),  # how the offset was derived
            "complete": pl.Boolean(),  # false when the dump is cut off before its end
        }
    ),
    # One value of a bpftrace map dump (or one statistic of a stats()/avg() value).
    "maps": pl.Schema(
        {
            "file": pl.String(),
            "line": pl.UInt32(),
            "ts": pl.Int64(),  # null unless the output printed a time for it
            "map": pl.String(),  # "@name"
            "keys": pl.List(pl.String()),  # [] for a scalar map
            "value": pl.String(),  # as printed
            "num": pl.Int64(),  # the value as an integer, when it is one
            "stat": pl.String(),  # count/average/total/min/max for stats(), else null
        }
    ),
    # One bucket of a bpftrace hist()/lhist() (text or JSON).
    "histograms": pl.Schema(
        {
            "file": pl.String(),
            "line": pl.UInt32(),
            "ts": pl.Int64(),
            "map": pl.String(),
            "keys": pl.List(pl.String()),
            "func": pl.String(),  # hist or lhist
            "lower": pl.Int64(),  # inclusive; null for an open "(..., N)" bucket
            "upper": pl.Int64(),  # exclusive; null for an open "[N, ...)" bucket
            "count": pl.Int64(),
        }
    ),
}

ACCOUNTING_KINDS = ("events", "records", "headers", "losses", "diagnostics")


@dataclass
class InputInfo:
    """What the parser learned about one input: format, dialect, clock, header facts."""

    file: str
    format: str
    lines: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
    cache_key: str | None = None  # the input's cache entry, when it has one

    def accounted(self) -> bool:
        """Every line is one of the accounting kinds."""
        return sum(self.counts.get(k, 0) for k in ACCOUNTING_KINDS) == self.lines


@dataclass
class Parsed:
    """One input's frames, as parsed or as read from the cache."""

    events: pl.LazyFrame
    diagnostics: pl.LazyFrame
    losses: pl.LazyFrame
    records: dict[str, pl.LazyFrame]
    info: InputInfo

    @classmethod
    def of(
        cls,
        events: pl.LazyFrame,
        diagnostics: pl.DataFrame,
        losses: pl.DataFrame,
        records: dict[str, pl.DataFrame],
        info: InputInfo,
    ) -> Parsed:
        lazy = {name: table.lazy() for name, table in records.items()}
        return cls(events, diagnostics.lazy(), losses.lazy(), lazy, info)


@dataclass
class Trace:
    """Parsed inputs: lazy ``events``, ``diagnostics`` and ``losses``, per-input facts, and
    the record tables the inputs filled (``table(name)``)."""

    events: pl.LazyFrame
    diagnostics: pl.LazyFrame
    losses: pl.LazyFrame
    inputs: list[InputInfo]
    records: dict[str, pl.LazyFrame] = field(default_factory=dict)

    def table(self, name: str) -> pl.LazyFrame:
        """A record table (see ``RECORD_SCHEMAS``), empty when no input filled it."""
        if name not in RECORD_SCHEMAS:
            from tracetool.errors import UnknownName

            raise UnknownName("record table", name, RECORD_SCHEMAS)
        return self.records.get(name, pl.LazyFrame(schema=RECORD_SCHEMAS[name]))

    def accounting(self) -> pl.DataFrame:
        """One row per input: its format and how every line was accounted for."""
        rows = [
            {
                "file": i.file,
                "format": i.format,
                "lines": i.lines,
                **{k: i.counts.get(k, 0) for k in ACCOUNTING_KINDS},
                "cached": i.cached,
            }
            for i in self.inputs
        ]
        schema = {
            "file": pl.String,
            "format": pl.String,
            "lines": pl.Int64,
            **dict.fromkeys(ACCOUNTING_KINDS, pl.Int64),
            "cached": pl.Boolean,
        }
        return pl.DataFrame(rows, schema=schema)


def attach_stacks(events: pl.LazyFrame) -> pl.LazyFrame:
    """Move each ``kernel_stack``/``user_stack`` event's frames onto the event it follows.

    The kernel records a stack as its own entry right after the event that triggered it
    on the same CPU; the text shows it as ``<stack trace>`` plus `` => `` lines. This
    joins every stack to the previous other event of the same file and CPU, fills that
    event's ``stack``/``ustack`` and drops the stack rows.
    """
    is_stack = pl.col("event").is_in(["kernel_stack", "user_stack"])
    owners = (
        events.filter(~is_stack)
        .select("file", "cpu", "line")
        .with_columns(owner=pl.col("line"))
        .sort("line")
    )
    stacks = (
        events.filter(is_stack)
        .select("file", "cpu", "line", "stack", "ustack")
        .sort("line")
        # Both sides are sorted by line; with "by" polars cannot check that itself.
        .join_asof(
            owners, on="line", by=["file", "cpu"], strategy="backward", check_sortedness=False
        )
        .group_by("file", "owner")
        .agg(pl.col("stack").drop_nulls().first(), pl.col("ustack").drop_nulls().first())
    )
    return (
        events.filter(~is_stack)
        .join(
            stacks,
            left_on=["file", "line"],
            right_on=["file", "owner"],
            how="left",
            suffix="_new",
            maintain_order="left",
        )
        .with_columns(
            stack=pl.coalesce("stack_new", "stack"),
            ustack=pl.coalesce("ustack_new", "ustack"),
        )
        .drop("stack_new", "ustack_new")
    )


def flatten_args(events: pl.DataFrame) -> pl.DataFrame:
    """``args`` as top-level ``args.<field>`` columns, the layout events are stored in:
    Parquet decodes flat columns several times faster than one wide struct."""
    fields = [f.name for f in events.schema["args"].fields]  # type: ignore[attr-defined]
    return events.with_columns(
        pl.col("args").struct.rename_fields([f"args.{f}" for f in fields])
    ).unnest("args")


def write_part(events: pl.DataFrame, path: Path) -> None:
    """Events as a stored part (see ``flatten_args``), without its all-null columns
    (most ``args`` fields, since a chunk holds few event kinds): ``scan_events`` reads
    those back as nulls, so neither the write nor a later query spends time on them."""
    flat = flatten_args(events)
    if flat.height:
        flat = flat.select(c for c in flat.iter_columns() if c.null_count() < flat.height)
    flat.write_parquet(path, compression="lz4")


def scan_events(pattern: str | list[str]) -> pl.LazyFrame:
    """Stored event parts (see ``flatten_args``) as the ``events`` frame, ``args`` and all.

    A part may leave out columns that are null in all its rows (the trace.dat reader
    does): they read back as nulls, so a query neither writes nor decodes them."""
    from tracetool.catalogue import args_struct

    schema = events_schema(args_struct())
    args = schema["args"]
    assert isinstance(args, pl.Struct)
    stored = flatten_args(pl.DataFrame(schema=schema)).schema
    return pl.scan_parquet(pattern, schema=stored, missing_columns="insert").select(
        *(pl.col(name) for name in base_columns()),
        args=pl.struct([pl.col(f"args.{f.name}").alias(f.name) for f in args.fields]),
        stack=pl.col("stack"),
        ustack=pl.col("ustack"),
    )


def event_summary(events: pl.LazyFrame) -> pl.LazyFrame:
    """One row per event name: ``event count cpus tasks first_ts last_ts fields``, where
    ``fields`` says how its payload is typed: "declared" by the catalogue, "probe" for
    kprobe/uprobe events (probe fields and fetch-args), or empty (body text only)."""
    from tracetool.catalogue import formats

    declared = sorted({name for spec in formats().values() for name in spec.events})
    return (
        events.group_by("event")
        .agg(
            count=pl.len(),
            cpus=pl.col("cpu").n_unique(),
            tasks=pl.col("pid").n_unique(),
            first_ts=pl.col("ts").min(),
            last_ts=pl.col("ts").max(),
            probe=pl.col("args").struct.field("probe").is_not_null().any(),
        )
        .sort("count", "event", descending=[True, False])
        .with_columns(
            fields=pl.when(pl.col("event").is_in(declared))
            .then(pl.lit("declared"))
            .when(pl.col("probe"))
            .then(pl.lit("probe"))
            .otherwise(pl.lit(""))
        )
        .drop("probe")
    )
