"""Turning inputs into a ``Trace``: chunked, vectorised parsing with full line accounting."""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import polars as pl

from tracetool import cache, clocks, tracedat
from tracetool.catalogue import FormatSpec, args_struct
from tracetool.engines import ENGINES
from tracetool.events import (
    DIAGNOSTICS_SCHEMA,
    LOSSES_SCHEMA,
    RECORD_SCHEMAS,
    InputInfo,
    Parsed,
    Trace,
    events_schema,
    flatten_args,
    scan_events,
    write_part,
)
from tracetool.ftrace import Dialect, extract_args
from tracetool.inputs import Source, choose_format, expand, head_lines, read_chunks, text_source

# Chunks are small and already in memory: the in-memory engine has less setup per call.
ENGINE: Literal["in-memory"] = "in-memory"
WORKERS = 2

_HEADER_FACTS = [
    ("tracer", re.compile(r"^# tracer: (\S+)")),
    ("entries", re.compile(r"^# entries-in-buffer/entries-written: (\d+)/(\d+)\s+#P:(\d+)")),
    ("cpus", re.compile(r"^(?:\S+: )?cpus=(\d+)")),
    ("version", re.compile(r"^version = (\d+)")),
    ("corrupted", re.compile(r"^# WARNING: FUNCTION TRACING IS CORRUPTED")),
    # perf script --header
    ("perf_version", re.compile(r"^# perf version : (.*?)\s*$")),
    ("hostname", re.compile(r"^# hostname : (.*?)\s*$")),
    ("os_release", re.compile(r"^# os release : (.*?)\s*$")),
    ("arch", re.compile(r"^# arch : (.*?)\s*$")),
    ("ncpus", re.compile(r"^# nrcpus online : (\d+)")),
    ("cmdline", re.compile(r"^# cmdline : (.*?)\s*$")),
]
TRUNCATED = "incomplete last line: the input ends without a newline (a cut-short copy?)"
ARGS_MISMATCH = "payload does not match the format declared for this event in parsers/{}.toml"


Records = dict[str, pl.DataFrame]


@dataclass
class _Parts:
    events: list[pl.DataFrame] = field(default_factory=list)
    diagnostics: list[pl.DataFrame] = field(default_factory=list)
    losses: list[pl.DataFrame] = field(default_factory=list)
    records: dict[str, list[pl.DataFrame]] = field(default_factory=dict)


def _header_facts(head: list[str]) -> dict[str, object]:
    meta: dict[str, object] = {}
    for text in head:
        for key, pattern in _HEADER_FACTS:
            m = pattern.match(text)
            if m and key not in meta:
                meta[key] = [int(g) if g.isdigit() else g for g in m.groups()] or True
    entries = meta.pop("entries", None)
    if isinstance(entries, list):
        meta.update(entries_in_buffer=entries[0], entries_written=entries[1], ncpus=entries[2])
    for key, value in meta.items():  # a fact of one group is that value, not a list
        if isinstance(value, list) and len(value) == 1:
            meta[key] = value[0]
    return meta


def _is_nocontext(head: list[str], spec: FormatSpec) -> bool:
    """True when no head line has a context prefix but several are bare ``event: ...``
    lines, as the nocontext-info option prints them."""
    if not spec.nocontext:
        return False
    body = [t for t in head if t.strip() and not t.startswith("#")]
    if any(re.match(g, t) for g in spec.line for t in body):
        return False
    bare = sum(1 for t in body if re.match(spec.nocontext, t))
    return bare >= 2 and bare >= len(body) // 2


def _timestamp_kind(head: list[str], spec: FormatSpec) -> str:
    """How the input prints time, so nobody mistakes counter ticks for ns or reads more
    precision into µs text than it has: ``us`` (secs.usecs, the kernel's text),
    ``ns`` (secs.nsecs, trace-cmd -t), ``counter`` (counter/uptime/x86-tsc clocks: raw
    ticks, kept as printed in ``ts``), ``relative-us`` (latency format: µs since the
    buffer was reset, not since boot), ``none`` (function_graph without abstime), and
    for kernel logs ``wallclock`` (ns since the epoch) or ``wallclock-no-year`` (syslog's
    "Nov 24 09:56:18": ns since 1 January of an unknown year)."""
    grammars = [re.compile(g) for g in spec.line]
    for text in head:
        for grammar in grammars:
            m = grammar.match(text)
            if m and "ts" in grammar.groupindex:
                stamp = m.group("ts") or ""
                frac = stamp.partition(".")[2]
                return {6: "us", 9: "ns", 0: "counter"}.get(len(frac), f"{len(frac)} digits")
            if m and "lat_us" in grammar.groupindex:
                return "relative-us" if m.group("lat_us") else "relative-counter"
            if m and "abs_us_hex" in grammar.groupindex:
                return "us"
            if m and "abs" in grammar.groupindex:
                return "us" if m.group("abs") else "none"
            # Kernel logs: seconds.micros since boot, /dev/kmsg micros, wall clocks.
            if m and ("secs" in grammar.groupindex or "kmsg_us" in grammar.groupindex):
                return "us"
            if m and "sys_mon" in grammar.groupindex:
                return "wallclock-no-year" if m.group("sys_mon") else "wallclock"
            if m and ("ctime" in grammar.groupindex or "iso" in grammar.groupindex):
                return "wallclock"
    return "unknown"


def _chunk_to(
    part: Path | None, schema: pl.Schema, *args: object
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, Records, dict[str, int]]:
    """``_chunk``, then the events in the fixed schema, written to ``part`` if given
    (in the worker, so writing overlaps parsing)."""
    events, diags, losses, records, tally = _chunk(*args)  # type: ignore[arg-type]
    events = events.select(schema.names()).cast(schema)
    if part is not None:
        write_part(events, part)
        events = events.clear()
    return events, diags, losses, records, tally


def _chunk(
    data: bytes, first_line: int, spec: FormatSpec, dialect: Dialect, file: str
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, Records, dict[str, int]]:
    """Parse one chunk of whole lines into events, diagnostics and raw loss rows."""
    # ASCII is valid UTF-8, and isascii() neither allocates nor decodes: only other
    # chunks pay for a full decode to find (and replace) invalid bytes.
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = data.decode("utf-8", "replace").encode()
    lines = pl.scan_lines(data, name="text", row_index_name="line", row_index_offset=first_line)
    if b"\r" in data:
        lines = lines.with_columns(pl.col("text").str.strip_suffix("\r"))
    engine = ENGINES[spec.engine]
    df = engine.classify(lines, spec, dialect).collect(engine=ENGINE)
    df, records = engine.fold(df, spec, file)
    counts = dict(df.group_by("kind").len().iter_rows())
    ev = df.filter(pl.col("kind") == "event").drop("kind")
    ev = extract_args(ev, spec, dialect)
    reason = pl.col("reason") if "reason" in df.columns else pl.lit(None, pl.String)
    arg_diags = ev.filter(~pl.col("args_ok")).select(
        "line", kind=pl.lit("args"), reason=pl.lit(ARGS_MISMATCH.format(spec.name)), text="text"
    )
    events = ev.select(
        *_with_source(spec.name, file, "source" in ev.columns),
        stack=pl.col("frames_k"),
        ustack=pl.col("frames_u"),
    )
    diags = pl.concat(
        [
            df.filter(pl.col("kind") == "diag").select(
                "line",
                kind=pl.lit("unparsed"),
                reason=pl.coalesce(reason, pl.lit(engine.unparsed)),
                text="text",
            ),
            arg_diags,
        ]
    ).with_columns(file=pl.lit(file))
    losses = df.filter(pl.col("kind") == "loss").select(
        source=pl.lit(spec.name),
        file=pl.lit(file),
        line="line",
        cpu="loss_cpu",
        start_ts=pl.lit(None, pl.Int64),
        end_ts=pl.lit(None, pl.Int64),
        lost="loss_lost",
        marker="marker",
    )
    tally = {
        "bytes": len(data),
        "events": counts.get("event", 0),
        "records": sum(counts.get(k, 0) for k in ("frame", "cont", "record")),
        "headers": counts.get("header", 0),
        "losses": counts.get("loss", 0),
        "diagnostics": counts.get("diag", 0),
    }
    return events, diags.select(DIAGNOSTICS_SCHEMA.names()), losses, records, tally


def _with_source(source: str, file: str, own: bool) -> list[pl.Expr]:
    cols = ["ts", "cpu", "pid", "tgid", "comm", "event"]
    return [
        *(pl.col(c) for c in cols),
        (pl.coalesce("source", pl.lit(source)) if own else pl.lit(source)).alias("source"),
        pl.lit(file).alias("file"),
        pl.col("line"),
        pl.col("flags"),
        pl.col("body"),
        pl.col("args"),
    ]


_T = TypeVar("_T")


class _Inline:
    """An executor that runs each job at once in the caller's thread."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        done: Future[_T] = Future()
        try:
            done.set_result(fn(*args))
        except BaseException as exc:  # handed to the caller through result()
            done.set_exception(exc)
        return done


def _parse_stream(
    source: Source,
    stream: IO[bytes],
    format: str | FormatSpec | None,
    kv: bool,
    sink: Path | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[pl.LazyFrame, pl.DataFrame, pl.DataFrame, Records, InputInfo]:
    """Parse one input chunk by chunk. With a ``sink`` directory, each chunk's events go
    to their own Parquet part as soon as they are parsed, so memory stays bounded by
    the chunk size; without one (snippets), they stay in memory."""
    chosen: list[FormatSpec] = []

    def safe_line(data: bytes) -> re.Pattern[bytes]:
        chosen.append(choose_format(source.name, data, format))
        return ENGINES[chosen[0].engine].safe_line

    chunks = read_chunks(stream, safe_line)
    first = next(chunks, b"")
    head = head_lines(first)
    spec = chosen[0] if chosen else choose_format(source.name, first, format)
    nocontext = _is_nocontext(head, spec)
    dialect = Dialect(trace_cmd=spec.dialect == "trace-cmd", kv=kv, nocontext=nocontext)
    info = InputInfo(file=source.name, format=spec.name, meta=_header_facts(head))
    info.meta["timestamps"] = "none" if nocontext else _timestamp_kind(head, spec)
    head_meta = ENGINES[spec.engine].head_meta
    if head_meta is not None:
        info.meta.update(head_meta(head, spec))
    schema = events_schema(args_struct())
    parts = _Parts()
    next_line = 1
    ends_with_newline = True
    # Polars releases the GIL, so two chunks in flight keep both cores busy; results
    # are consumed in input order, and at most WORKERS chunks are held at once.
    pending: deque[
        Future[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, Records, dict[str, int]]]
    ] = deque()
    submitted = 0
    # An input of one chunk (most kernel logs) is parsed here: no pool to start.
    second = next(chunks, None)
    if second is not None:
        chunks = itertools.chain([second], chunks)
    with _Inline() if second is None else ThreadPoolExecutor(max_workers=WORKERS) as pool:
        data: bytes | None = first
        while data or pending:
            if data and len(pending) < WORKERS:
                part = sink / f"events-{submitted:06d}.parquet" if sink is not None else None
                job = pool.submit(
                    _chunk_to, part, schema, data, next_line, spec, dialect, source.name
                )
                pending.append(job)
                submitted += 1
                next_line += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
                ends_with_newline = data.endswith(b"\n")
                data = next(chunks, None)
                continue
            events, diags, losses, records, tally = pending.popleft().result()
            if progress is not None:
                progress(int(tally.pop("bytes")))
            else:
                tally.pop("bytes")
            if sink is None:
                parts.events.append(events)
            parts.diagnostics.append(diags)
            parts.losses.append(losses)
            for name, table in records.items():
                parts.records.setdefault(name, []).append(table)
            for key, value in tally.items():
                info.counts[key] = info.counts.get(key, 0) + value
    info.lines = next_line - 1
    if sink is not None:
        if submitted == 0:  # an empty input: one empty part keeps the schema
            flatten_args(pl.DataFrame(schema=schema)).write_parquet(sink / "events-000000.parquet")
        events_lf = scan_events(str(sink / "events-*.parquet"))
    else:
        events_lf = _concat(parts.events, schema).lazy()
    diagnostics = _concat(parts.diagnostics, DIAGNOSTICS_SCHEMA)
    if not ends_with_newline and info.lines:
        last = _last_text(diagnostics, events_lf, info.lines)
        diagnostics = pl.concat(
            [
                diagnostics.filter(pl.col("line") != info.lines),
                pl.DataFrame(
                    {
                        "file": [source.name],
                        "line": [info.lines],
                        "kind": ["truncated"],
                        "reason": [TRUNCATED],
                        "text": [last],
                    },
                    schema=DIAGNOSTICS_SCHEMA,
                ),
            ]
        )
    losses = _loss_windows(_concat(parts.losses, LOSSES_SCHEMA), events_lf, info, spec)
    records = {
        name: _concat(tables, RECORD_SCHEMAS[name]) for name, tables in parts.records.items()
    }
    return events_lf, diagnostics, losses, records, info


def _last_text(diagnostics: pl.DataFrame, events: pl.LazyFrame, line: int) -> str:
    hit = diagnostics.filter(pl.col("line") == line)
    if hit.height:
        return str(hit["text"][0])
    ev = events.filter(pl.col("line") == line).select("body").collect()
    return str(ev["body"][0]) if ev.height else ""


def _concat(parts: list[pl.DataFrame], schema: pl.Schema) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat([p.select(schema.names()).cast(schema) for p in parts])


def _loss_windows(
    losses: pl.DataFrame, events: pl.LazyFrame, info: InputInfo, spec: FormatSpec
) -> pl.DataFrame:
    """Bound every loss marker by the events around it (on its CPU, or on any CPU for
    markers whose window is "neighbours"); add the header's overwrite loss
    (entries-written > entries-in-buffer)."""
    source = spec.name
    meta = info.meta
    written, kept = meta.get("entries_written"), meta.get("entries_in_buffer")
    if isinstance(written, int) and isinstance(kept, int) and written > kept:
        first_ts = events.select(pl.col("ts").min()).collect().item()
        losses = pl.concat(
            [
                losses,
                pl.DataFrame(
                    {
                        "source": [source],
                        "file": [info.file],
                        "line": [3],
                        "cpu": [None],
                        "start_ts": [None],
                        "end_ts": [first_ts],
                        "lost": [written - kept],
                        "marker": ["overwritten"],
                    },
                    schema=LOSSES_SCHEMA,
                ),
            ]
        )
    local = [lc.name for lc in spec.lines if lc.window == "neighbours"]
    losses = _neighbour_windows(losses, events, local)
    markers = losses.filter(pl.col("cpu").is_not_null())
    if markers.is_empty():
        return losses
    on_cpu = (
        events.select("line", "cpu", "ts").filter(pl.col("ts").is_not_null()).collect().sort("line")
    )
    markers = markers.sort("line")
    # Sorted by line above; "by" disables polars' own sortedness check.
    before = markers.join_asof(
        on_cpu, on="line", by="cpu", strategy="backward", check_sortedness=False
    )
    after = markers.join_asof(
        on_cpu, on="line", by="cpu", strategy="forward", check_sortedness=False
    )
    bounded = markers.with_columns(
        start_ts=pl.when(pl.col("marker") == "buffer-started").then(None).otherwise(before["ts"]),
        end_ts=after["ts"],
    )
    return pl.concat([losses.filter(pl.col("cpu").is_null()), bounded]).sort("line")


def _neighbour_windows(
    losses: pl.DataFrame, events: pl.LazyFrame, markers: list[str]
) -> pl.DataFrame:
    """Markers that report a loss at their place in the output (printk drops, bpftrace's
    "Lost N events") lost events between the timed events printed around them."""
    near = losses.filter(pl.col("marker").is_in(markers) & pl.col("cpu").is_null())
    if near.is_empty():
        return losses
    timed = events.select("line", "ts").filter(pl.col("ts").is_not_null()).collect().sort("line")
    near = near.sort("line")
    before = near.join_asof(timed, on="line", strategy="backward")
    after = near.join_asof(timed, on="line", strategy="forward")
    near = near.with_columns(start_ts=before["ts"], end_ts=after["ts"])
    rest = losses.filter(~(pl.col("marker").is_in(markers) & pl.col("cpu").is_null()))
    return pl.concat([rest, near]).sort("line")


def _format_key(format: str | FormatSpec | None) -> str | None:
    """A format for the cache key: its name, or for a spec built by the caller (say,
    with extra printf declarations) its name and a digest of its content."""
    if format is None or isinstance(format, str):
        return format
    return f"{format.name}:{hashlib.sha256(repr(format).encode()).hexdigest()[:16]}"


def parse(
    inputs: str | Path | Iterable[str | Path],
    format: str | FormatSpec | None = None,
    *,
    kv: bool = False,
    use_cache: bool = True,
    progress: Callable[[int], None] | None = None,
    offsets: Mapping[str, float] | None = None,
    via: str | None = None,
    in_memory: bool = False,
) -> Trace:
    """Parse files, directories (recursively), ``-`` (stdin), ``.gz`` and ``.zst`` inputs,
    and trace-cmd's binary trace.dat files (``tracetool.tracedat``).

    Several inputs are put on one clock (``tracetool.clocks``): ``offsets`` maps an
    input (path or file name) to seconds to add to its times; otherwise offsets come
    from events the inputs share, and each input's ``meta["clock"]`` says how.

    :param format: a name from ``parsers/`` (or a ``FormatSpec`` built from one, such as
        ``bpftrace.with_printf_formats``); sniffed from each input's content if omitted.
    :param kv: extract ``key=value`` pairs of undeclared events into ``args.kv``.
    :param use_cache: read and write the Parquet cache (never used for stdin).
    :param progress: called with the number of bytes of text parsed, chunk by chunk.
    :param via: ``"trace-cmd"`` reads trace.dat inputs through ``trace-cmd report -t``
        text instead of the native reader.
    :param in_memory: without the cache, keep a text input's events in memory instead
        of spilling them to Parquet parts: for many small inputs (kernel logs in triage).
    :return: a ``Trace`` whose frames are lazy; ``Trace.inputs`` says what each input was.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    parsed: list[Parsed] = []
    for source in expand(list(inputs)):
        binary = tracedat.sniff(source)
        fkey = _format_key(format) if not binary else f"trace.dat:{via or 'native'}"
        key = cache.key(source, fkey, kv) if use_cache else None
        hit = cache.load(key) if key else None
        if hit is None:
            sink: Path | None = (
                cache.begin() if key else None if in_memory and not binary else cache.scratch()
            )
            if binary:
                assert sink is not None
                events, diagnostics, losses, records, info = tracedat.parse_source(
                    source,
                    sink,
                    via,
                    functools.partial(
                        _parse_stream,
                        source,
                        format="trace-cmd",
                        kv=kv,
                        sink=sink,
                        progress=progress,
                    ),
                )
            else:
                with source.open() as stream:
                    events, diagnostics, losses, records, info = _parse_stream(
                        source, stream, format, kv, sink, progress
                    )
            if key and sink and cache.commit(sink, key, diagnostics, losses, records, info):
                hit = cache.load(key)
                if hit is not None:
                    hit.info.cached = False  # parsed just now, not read from the cache
                    hit.info.cache_key = key
            if hit is None:
                hit = Parsed.of(events, diagnostics, losses, records, info)
        elif key:
            hit.info.cache_key = key
        parsed.append(hit)
    return clocks.align(_combine(parsed), offsets)


def parse_text(
    text: str, format: str | FormatSpec | None = None, *, kv: bool = False, name: str = "<text>"
) -> Trace:
    """Parse a string, as a test or a notebook embeds a log snippet."""
    source = Source(name, None)
    parts = _parse_stream(source, text_source(text), format, kv, None)
    return _combine([Parsed.of(*parts)])


def _combine(parsed: list[Parsed]) -> Trace:
    names = sorted({name for p in parsed for name in p.records})
    return Trace(
        pl.concat([p.events for p in parsed])
        if parsed
        else pl.LazyFrame(schema=events_schema(args_struct())),
        pl.concat([p.diagnostics for p in parsed])
        if parsed
        else pl.LazyFrame(schema=DIAGNOSTICS_SCHEMA),
        pl.concat([p.losses for p in parsed]) if parsed else pl.LazyFrame(schema=LOSSES_SCHEMA),
        [p.info for p in parsed],
        {name: pl.concat([p.records[name] for p in parsed if name in p.records]) for name in names},
    )
