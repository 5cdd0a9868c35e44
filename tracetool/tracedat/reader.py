"""A trace.dat to the ``events``, ``diagnostics`` and ``losses`` tables.

Rows are the ones parsing ``trace-cmd report -t`` of the same file gives: events
merged across CPUs (and buffer instances) in time order, named as trace-cmd names
them, with trace-cmd's text in ``body`` and the declared ``args`` extracted from it by
the same code as for text (``rows``). ``line`` is the event's ordinal (1-based) in that merged
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

from tracetool.events import DIAGNOSTICS_SCHEMA, LOSSES_SCHEMA, InputInfo
from tracetool.tracedat import container
from tracetool.tracedat.columns import Symbols
from tracetool.tracedat.container import TraceDat
from tracetool.tracedat.errors import TraceDatError
from tracetool.tracedat.formats import EventFormat, parse_format, parse_header_page
from tracetool.tracedat.pages import Records, walk
from tracetool.tracedat.rows import SOURCE, Chunk, Context, Rows, build

CHUNK_ROWS = 1 << 19
WORKERS = 2


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


@dataclass
class Plan:
    """A trace.dat read up to its records: merged in time order, not yet rendered."""

    td: TraceDat
    ctx: Context
    bufs: list[np.ndarray]  # each CPU's data, in the order ``rows.at`` counts from
    rows: Rows
    problems: list[tuple[str, str]]
    losses: pl.DataFrame
    # No buffer compressed: the whole file, and ``rows.at`` are offsets in it.
    whole: np.ndarray | None = None

    def big(self) -> np.ndarray:
        """The bytes ``rows.at`` points into: the file itself when nothing is
        compressed (no copy), else every CPU's data concatenated."""
        if self.whole is not None:
            return self.whole
        return np.concatenate(self.bufs) if self.bufs else np.zeros(0, np.uint8)

    def ranges(self, chunk_rows: int) -> list[tuple[int, int]]:
        n = len(self.rows.ts)
        return [(lo, min(n, lo + chunk_rows)) for lo in range(0, n, max(chunk_rows, 1))]


def read_bytes_(
    data: bytes | mmap.mmap | memoryview, name: str, chunk_rows: int = CHUNK_ROWS
) -> Result:
    """The whole file in this process, ``chunk_rows`` records at a time."""
    plan = prepare(data, name)
    big = plan.big()
    chunks = [
        build(plan.ctx, big, plan.rows.slice(lo, hi), lo) for lo, hi in plan.ranges(chunk_rows)
    ]
    if not chunks:
        chunks = [build(plan.ctx, big, plan.rows, 0)]
    diagnostics, info = finish(plan, chunks)
    return Result(pl.concat([c.events for c in chunks]), diagnostics, plan.losses, info)


def prepare(data: bytes | mmap.mmap | memoryview, name: str) -> Plan:
    """Container, formats, and every CPU's pages walked and merged in time order."""
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

    # By CPU, then buffer: a stable sort by time then gives trace-cmd's merge order (at
    # equal times the lower CPU first).
    jobs = sorted(
        ((b, c) for b in td.buffers for c in b.cpus if c.size),
        key=lambda j: (j[1].cpu, td.buffers.index(j[0])),
    )

    def one(job: tuple[container.Buffer, container.CpuData]) -> tuple[np.ndarray, Records]:
        buffer, cpu = job
        raw = td.cpu_bytes(buffer, cpu)
        buf = np.frombuffer(raw, dtype=np.uint8)
        return buf, walk(raw, buffer.page_size, header, td.big_endian, td.long_size)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        walked = list(pool.map(one, jobs))

    bufs, ts_l, at_l, len_l, cpu_l = [], [], [], [], []
    base = 0
    in_file = not any(b.compressed for b, _ in jobs)
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
        ts_l.append(rec.ts)
        at_l.append(rec.start + (cpu.offset if in_file else base))
        len_l.append(rec.length)
        cpu_l.append(np.full(len(rec.ts), cpu.cpu, np.int32))
        for page, count in zip(rec.missed_page.tolist(), rec.missed_count.tolist(), strict=True):
            losses_raw.append((k, cpu.cpu, int(rec.first_event_of_page[page]), count, 0))
        base += len(buf)
    if ts_l:
        ts = _to_ns(td, np.concatenate(ts_l))
        at, length, cpus = np.concatenate(at_l), np.concatenate(len_l), np.concatenate(cpu_l)
    else:
        ts = at = length = np.zeros(0, np.int64)
        cpus = np.zeros(0, np.int32)
    order = np.argsort(ts, kind="stable")
    n = len(ts)
    ordinal = np.empty(n, np.int64)
    ordinal[order] = np.arange(n)  # position in the merged order, by input row
    rows = Rows(at[order], length[order], ts[order], cpus[order])

    some = next(iter(formats.values()), None)
    pid_f = some.by_name.get("common_pid") if some else None
    ctx = Context(
        name,
        formats,
        _cmdlines(td.cmdlines),
        Symbols(td.kallsyms),
        td.big_endian,
        td.long_size,
        pid_f.offset if pid_f else 4,
    )
    starts = np.cumsum([0] + [len(r.ts) for _, r in walked])
    losses = _losses(losses_raw, starts, ordinal, rows.ts, name)
    whole = np.frombuffer(data, np.uint8) if in_file else None
    return Plan(td, ctx, bufs, rows, problems, losses, whole)


def finish(plan: Plan, chunks: list[Chunk]) -> tuple[pl.DataFrame, InputInfo]:
    """Diagnostics and input info, from the plan and what each chunk found."""
    problems = list(plan.problems)
    unknown: dict[int, tuple[int, int]] = {}
    trouble: dict[int, str] = {}
    for c in chunks:
        for type_id, (count, first) in c.unknown.items():
            was = unknown.get(type_id, (0, first))
            unknown[type_id] = (was[0] + count, min(was[1], first))
        trouble.update(c.trouble)
    for type_id in sorted({*unknown, *trouble}):
        if type_id in unknown:
            count, first = unknown[type_id]
            problems.append(
                (
                    "unknown",
                    f"{count} records (the first at position {first + 1}) have event "
                    f"UNKNOWN_TYPE_{type_id}: no format in the file declares its id",
                )
            )
        else:
            problems.append(("print", trouble[type_id]))
    name, td = plan.ctx.name, plan.td
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
            *(c.arg_diags for c in chunks),
        ]
    )
    n = len(plan.rows.ts)
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
        "losses": plan.losses.height,
        "diagnostics": len(problems),
    }
    info.lines = n + plan.losses.height + len(problems)
    return diagnostics, info


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
