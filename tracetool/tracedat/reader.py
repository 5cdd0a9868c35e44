"""A trace.dat to the ``events``, ``diagnostics`` and ``losses`` tables.

Rows are the ones parsing ``trace-cmd report -t`` of the same file gives: events
merged across CPUs (and buffer instances) in time order, named as trace-cmd names
them, with trace-cmd's text in ``body`` and the declared ``args`` extracted from it by
the same code as for text. ``line`` is the event's ordinal (1-based) in that merged
order, which is its line in ``trace-cmd report`` output without the header lines;
diagnostics name the byte offset in the file (or in the CPU's decompressed data).
"""

from __future__ import annotations

import mmap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tracetool.catalogue import FormatSpec, args_fields, args_struct, get_format
from tracetool.events import DIAGNOSTICS_SCHEMA, LOSSES_SCHEMA, InputInfo, events_schema
from tracetool.ftrace import Dialect, extract_args
from tracetool.tracedat import container
from tracetool.tracedat.columns import Symbols, read_bytes, read_int, read_string
from tracetool.tracedat.container import TraceDat
from tracetool.tracedat.direct import direct_for
from tracetool.tracedat.errors import TraceDatError
from tracetool.tracedat.formats import EventFormat, parse_format, parse_header_page
from tracetool.tracedat.pages import Records, walk
from tracetool.tracedat.printfmt import FmtError
from tracetool.tracedat.render import Env, Renderer, plugin_for, raw_fields

SOURCE = "trace-cmd"
CHUNK_ROWS = 1 << 19
WORKERS = 2
ARGS_MISMATCH = (
    "payload does not match the format declared for this event in parsers/trace-cmd.toml"
)


@dataclass
class Result:
    events: pl.DataFrame
    diagnostics: pl.DataFrame
    losses: pl.DataFrame
    info: InputInfo


def open_data(path: Path) -> bytes | mmap.mmap:
    with path.open("rb") as fh:
        try:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty file, or a pipe
            return fh.read()


def read_file(path: Path, name: str | None = None) -> Result:
    return read_bytes_(open_data(path), name or str(path))


def _cmdlines(text: str) -> dict[int, str]:
    out = {}
    for line in text.splitlines():
        pid, _, comm = line.partition(" ")
        if pid.isdigit():
            out[int(pid)] = comm
    return out


def _formats(td: TraceDat, diags: list[tuple[str, str]]) -> dict[int, EventFormat]:
    out: dict[int, EventFormat] = {}
    texts = [("ftrace", t) for t in td.ftrace_formats] + td.event_formats
    for system, text in texts:
        try:
            fmt = parse_format(text, system, td.file, f"a format of system {system}")
        except TraceDatError as exc:
            diags.append(("format", str(exc)))
            continue
        out[fmt.id] = fmt
    return out


def _to_ns(td: TraceDat, raw: np.ndarray) -> np.ndarray:
    ts = raw.astype(np.uint64)
    if td.tsc2nsec is not None:
        mult, shift, offset = td.tsc2nsec
        m, sh = np.uint64(mult), np.uint64(shift)
        low = ts & np.uint64((1 << shift) - 1)
        ts = (ts >> sh) * m + ((low * m) >> sh) + np.uint64(offset)
    with np.errstate(over="ignore"):
        return (ts.view(np.int64) + np.int64(td.ts_offset)).astype(np.int64)


def read_bytes_(data: bytes | mmap.mmap | memoryview, name: str) -> Result:
    td = container.read(memoryview(data), name)
    problems: list[tuple[str, str]] = []
    formats = _formats(td, problems)
    try:
        header = parse_header_page(td.header_page)
        for key in ("timestamp", "commit", "data"):
            header[key]
    except (ValueError, KeyError):
        raise TraceDatError(
            name, 0, "expected timestamp, commit and data fields in the header page format"
        ) from None

    jobs = [(b, c) for b in td.buffers for c in b.cpus if c.size]

    def one(job: tuple[container.Buffer, container.CpuData]) -> tuple[np.ndarray, Records]:
        buffer, cpu = job
        raw = td.cpu_bytes(buffer, cpu)
        buf = np.frombuffer(raw, dtype=np.uint8)
        return buf, walk(raw, buffer.page_size, header, td.big_endian, td.long_size)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        walked = list(pool.map(one, jobs))

    bufs, ts_l, at_l, len_l, cpu_l, inst_l, seq_l = [], [], [], [], [], [], []
    base = 0
    losses_raw: list[tuple[int, int, int, int, int]] = []  # buffer, cpu, seq of next event, count
    for k, ((buffer, cpu), (buf, rec)) in enumerate(zip(jobs, walked, strict=True)):
        where = f"CPU {cpu.cpu}" + (f" of instance {buffer.name}" if buffer.name else "")
        for off, what in rec.problems:
            loc = (
                f"byte {cpu.offset + off}"
                if not buffer.compressed
                else f"byte {off} of the decompressed data"
            )
            problems.append(("pages", f"{where}, {loc}: {what}"))
        bufs.append(buf)
        n = len(rec.ts)
        ts_l.append(rec.ts)
        at_l.append(rec.start + base)
        len_l.append(rec.length)
        cpu_l.append(np.full(n, cpu.cpu, np.int32))
        inst_l.append(np.full(n, k, np.int32))
        seq_l.append(np.arange(n, dtype=np.int64))
        for page, count in zip(rec.missed_page.tolist(), rec.missed_count.tolist(), strict=True):
            losses_raw.append((k, cpu.cpu, int(rec.first_event_of_page[page]), count, 0))
        base += len(buf)
    big = np.concatenate(bufs) if bufs else np.zeros(0, np.uint8)
    if ts_l:
        ts = _to_ns(td, np.concatenate(ts_l))
        at, length = np.concatenate(at_l), np.concatenate(len_l)
        cpus, inst, seq = np.concatenate(cpu_l), np.concatenate(inst_l), np.concatenate(seq_l)
    else:
        ts = at = length = seq = np.zeros(0, np.int64)
        cpus = inst = np.zeros(0, np.int32)
    # trace-cmd merges the CPUs by time; at equal times the lower CPU comes first.
    order = np.lexsort((seq, inst, cpus, ts))
    ts, at, length, cpus, inst, seq = (
        ts[order],
        at[order],
        length[order],
        cpus[order],
        inst[order],
        seq[order],
    )
    n = len(ts)
    ordinal = np.empty(n, np.int64)
    ordinal[order] = np.arange(n)  # position in the merged order, by input row

    big_endian = td.big_endian
    types = read_int(big, at, 2, False, big_endian) if n else np.zeros(0, np.int64)
    end = at + length
    some = next(iter(formats.values()), None)
    pid_f = some.by_name.get("common_pid") if some else None
    pids = (
        read_int(big, at + (pid_f.offset if pid_f else 4), 4, True, big_endian)
        if n
        else np.zeros(0, np.int64)
    )

    cmdlines = _cmdlines(td.cmdlines)
    symbols = Symbols(td.kallsyms)
    spec = get_format("trace-cmd")
    body_parts: list[tuple[np.ndarray, pl.Series]] = []
    name_parts: list[tuple[np.ndarray, str]] = []
    direct_parts: list[tuple[np.ndarray, dict[str, pl.Series]]] = []

    def render_type(type_id: int) -> tuple[np.ndarray, str, pl.Series, object, str]:
        rows = np.flatnonzero(types == type_id)
        fmt = formats.get(type_id)
        if fmt is None:
            empty = pl.repeat("", len(rows), dtype=pl.String, eager=True)
            return rows, f"UNKNOWN_TYPE_{type_id}", empty, None, "unknown"
        env = _env(fmt, big, at[rows], end[rows], symbols, td)
        text, trouble = _render(fmt, env, td)
        given = None
        if not trouble:
            direct = direct_for(fmt.system, fmt.name, set(fmt.by_name), fmt.print_fmt)
            given = direct(env) if direct is not None else None
        return rows, fmt.name, text, given, trouble

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        rendered = list(pool.map(render_type, [int(t) for t in np.unique(types).tolist()]))
    for rows, ev_name, text, given, trouble in rendered:
        if trouble == "unknown":
            problems.append(
                (
                    "unknown",
                    f"{len(rows)} records (the first at position {int(rows[0]) + 1}) have "
                    f"event {ev_name}: no format in the file declares its id",
                )
            )
        elif trouble:
            problems.append(("print", f"{ev_name}: {trouble}; its body shows the raw fields"))
        if isinstance(given, dict):
            direct_parts.append((rows, given))
        name_parts.append((rows, ev_name))
        body_parts.append((rows, text))
    inv = np.empty(n, np.int64)
    if n:
        inv[np.concatenate([r for r, _ in body_parts])] = np.arange(n)
    gather = pl.Series(inv)
    bodies = (
        pl.concat([b for _, b in body_parts]).gather(gather)
        if body_parts
        else pl.Series([], dtype=pl.String)
    )
    codes = np.repeat(np.arange(len(name_parts)), [len(r) for r, _ in name_parts])
    event_names = pl.Series([nm for _, nm in name_parts], dtype=pl.String).gather(
        pl.Series(codes[inv] if n else codes)
    )
    frame = pl.DataFrame(
        {
            "ts": pl.Series(ts, dtype=pl.Int64),
            "cpu": pl.Series(cpus, dtype=pl.Int32),
            "pid": pl.Series(pids, dtype=pl.Int32),
            "comm": _comms(pids, cmdlines),
            "event": event_names,
            "line": pl.Series(np.arange(1, n + 1), dtype=pl.UInt32),
            "body": bodies,
        }
    ).with_columns(
        tgid=pl.lit(None, pl.Int32),
        source=pl.lit(SOURCE),
        file=pl.lit(name),
        flags=pl.lit(None, pl.String),
    )
    ev = _args(frame, direct_parts, n, spec)
    schema = events_schema(args_struct())
    arg_diags = ev.filter(~pl.col("args_ok")).select(
        file="file", line="line", kind=pl.lit("args"), reason=pl.lit(ARGS_MISMATCH), text="body"
    )
    events = (
        ev.with_columns(
            stack=pl.lit(None, pl.List(pl.String)), ustack=pl.lit(None, pl.List(pl.String))
        )
        .select(schema.names())
        .cast(schema)
    )

    starts = np.cumsum([0] + [len(r.ts) for _, r in walked])
    losses = _losses(losses_raw, starts, ordinal, ts, name)
    diagnostics = pl.concat(
        [
            pl.DataFrame(
                {
                    "file": [name for _ in problems],
                    "line": [0 for _ in problems],
                    "kind": [k for k, _ in problems],
                    "reason": [r for _, r in problems],
                    "text": [""] * len(problems),
                },
                schema=DIAGNOSTICS_SCHEMA,
            ),
            arg_diags.cast(DIAGNOSTICS_SCHEMA),
        ]
    )
    info = InputInfo(file=name, format="trace.dat")
    info.meta.update(td.meta)
    info.meta.update(
        container=f"trace.dat v{td.version}",
        timestamps="ns",
        cpus=len({c.cpu for b in td.buffers for c in b.cpus}),
        buffers=[b.name for b in td.buffers],
        line="ordinal of the event in time order (trace-cmd report order)",
    )
    info.counts = {
        "events": n,
        "losses": losses.height,
        "diagnostics": len(problems),
    }
    info.lines = n + losses.height + len(problems)
    return Result(events, diagnostics, losses, info)


def _losses(
    raw: list[tuple[int, int, int, int, int]],
    starts: np.ndarray,
    ordinal: np.ndarray,
    ts: np.ndarray,
    name: str,
) -> pl.DataFrame:
    """One row per page whose header says events were missed before it: from the last
    event before the page on that CPU to the first one on it."""
    rows = []
    for k, cpu, seq, count, _ in raw:
        idx = int(starts[k]) + seq
        has_next = idx < int(starts[k + 1])
        end_ts = int(ts[ordinal[idx]]) if has_next else None
        start_ts = int(ts[ordinal[idx - 1]]) if seq > 0 else None
        line = int(ordinal[idx]) + 1 if has_next else (int(ordinal[idx - 1]) + 1 if seq > 0 else 0)
        rows.append(
            {
                "source": SOURCE,
                "file": name,
                "line": line,
                "cpu": cpu,
                "start_ts": start_ts,
                "end_ts": end_ts,
                "lost": count if count >= 0 else None,
                "marker": "events-dropped",
            }
        )
    return pl.DataFrame(rows, schema=LOSSES_SCHEMA).sort("line")


def _args(
    frame: pl.DataFrame,
    direct_parts: list[tuple[np.ndarray, dict[str, pl.Series]]],
    n: int,
    spec: FormatSpec,
) -> pl.DataFrame:
    """``args`` and ``args_ok``: read from the fields for the events ``direct.py`` knows,
    extracted from the rendered text (as for text input) for every other event. Done a
    chunk of rows at a time: ``args`` is a wide struct, so memory stays bounded."""
    mask = np.zeros(n, bool)
    for rows, _ in direct_parts:
        mask[rows] = True
    fields = args_fields()
    out = []
    for lo in range(0, max(n, 1), CHUNK_ROWS):
        hi = min(n, lo + CHUNK_ROWS)
        chunk = frame.slice(lo, hi - lo)
        local = mask[lo:hi]
        rest_idx = np.flatnonzero(~local)
        rest = chunk.filter(pl.Series(~local)) if len(rest_idx) < hi - lo else chunk
        ev = extract_args(rest, spec, Dialect(trace_cmd=True)) if rest.height else None
        if len(rest_idx) == hi - lo and ev is not None:
            out.append(ev)
            continue
        pieces: dict[str, list[tuple[np.ndarray, pl.Series]]] = {}
        if ev is not None:
            args = ev.get_column("args")
            for f in fields:
                col = args.struct.field(f)
                if col.null_count() < len(col):
                    pieces.setdefault(f, []).append((rest_idx, col))
        for rows, given in direct_parts:
            sel = rows[(rows >= lo) & (rows < hi)]
            if len(sel) == 0:
                continue
            where = np.searchsorted(rows, sel)
            for f, values in given.items():
                pieces.setdefault(f, []).append((sel - lo, values.gather(pl.Series(where))))
        columns = []
        for f, dtype in fields.items():
            if f not in pieces:
                columns.append(pl.lit(None, dtype).alias(f))
                continue
            full = pl.Series(f, [None], dtype=dtype).extend_constant(None, hi - lo - 1)
            for idx, values in pieces[f]:
                full = full.scatter(idx, values.cast(dtype))
            columns.append(pl.lit(full).alias(f))
        ok = np.ones(hi - lo, bool)
        if ev is not None:
            ok[rest_idx] = ev.get_column("args_ok").to_numpy()
        out.append(chunk.with_columns(args=pl.struct(columns), args_ok=pl.Series(ok)))
    return pl.concat(out) if out else extract_args(frame, spec, Dialect(trace_cmd=True))


def _comms(pids: np.ndarray, cmdlines: dict[int, str]) -> pl.Series:
    uniq, inv = np.unique(pids, return_inverse=True)
    table = pl.Series(
        ["<idle>" if p == 0 else cmdlines.get(p, "<...>") for p in uniq.tolist()], dtype=pl.String
    )
    return table.gather(pl.Series(inv.reshape(-1).astype(np.uint32))).alias("comm")


def _env(
    fmt: EventFormat,
    big: np.ndarray,
    at: np.ndarray,
    end: np.ndarray,
    symbols: Symbols,
    td: TraceDat,
) -> Env:
    ints: dict[str, np.ndarray] = {}
    strs: dict[str, pl.Series] = {}
    unsigned: set[str] = set()
    for f in [*fmt.common, *fmt.fields]:
        if f.is_string:
            strs[f.name] = read_string(big, at, end, f, td.big_endian)
        elif f.array is None and not f.dynamic and f.size in (1, 2, 4, 8):
            ints[f.name] = read_int(big, at + f.offset, f.size, f.signed, td.big_endian)
            if not f.signed:
                unsigned.add(f.name)

    def raw(field_name: str) -> list[bytes]:
        f = fmt.by_name.get(field_name)
        if f is None:
            raise FmtError(f"no field {field_name!r}")
        return read_bytes(big, at, end, f, td.big_endian)

    return Env(len(at), ints, strs, raw, symbols, unsigned, td.long_size)


def _render(fmt: EventFormat, env: Env, td: TraceDat) -> tuple[pl.Series, str]:
    plugin = plugin_for(fmt)
    try:
        text = plugin(env) if plugin is not None else Renderer(fmt, td.long_size).render(env)
    except (FmtError, KeyError, IndexError, ValueError) as exc:
        return raw_fields(env, fmt), f"print fmt not understood ({exc})"
    if fmt.system == "ftrace" and fmt.name in ("print", "bputs"):
        text = text.str.strip_suffix("\n")
    return text, ""
