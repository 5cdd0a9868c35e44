"""A range of merged records to its rows of the ``events`` table.

``build`` takes the records ``[lo, hi)`` of the time-merged order (their payload offsets
in the concatenated CPU data, times, CPUs) and returns those events with trace-cmd's text
in ``body`` and the declared ``args``: grouped by event type, each type's text rendered
in bulk (``render``), its args read from the fields (``direct``) or, for the declared
events ``direct`` does not know, extracted from the text by the same patterns as for
text input; then one gather puts all columns back in time order. Chunks are independent,
so ``reader`` builds them one after another or in worker processes (``parallel``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

from tracetool.catalogue import FormatSpec, args_fields, args_struct, get_format
from tracetool.events import DIAGNOSTICS_SCHEMA, events_schema
from tracetool.ftrace import Dialect, extract_args
from tracetool.tracedat.columns import Symbols, read_bytes, read_int, read_string
from tracetool.tracedat.direct import direct_for
from tracetool.tracedat.formats import EventFormat
from tracetool.tracedat.printfmt import FmtError
from tracetool.tracedat.render import Env, Renderer, plugin_for, raw_fields

SOURCE = "trace-cmd"
THREADS = 2
ARGS_MISMATCH = (
    "payload does not match the format declared for this event in parsers/trace-cmd.toml"
)
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
V = TypeVar("V")


@dataclass
class Context:
    """What rendering needs besides the records' bytes (picklable, for workers)."""

    name: str
    formats: dict[int, EventFormat]
    cmdlines: dict[int, str]
    symbols: Symbols
    big_endian: bool
    long_size: int
    pid_offset: int = 4


@dataclass
class Rows:
    """Records in merged order: payload offset and length in the CPU data, time (ns), CPU."""

    at: I64
    length: I64
    ts: I64
    cpus: npt.NDArray[np.int32]

    def slice(self, lo: int, hi: int) -> Rows:
        return Rows(self.at[lo:hi], self.length[lo:hi], self.ts[lo:hi], self.cpus[lo:hi])


@dataclass
class Chunk:
    """``build``'s result: the rows, and what went wrong in them."""

    events: pl.DataFrame
    arg_diags: pl.DataFrame
    # type id: (records, 0-based position of the first) for ids no format declares
    unknown: dict[int, tuple[int, int]] = field(default_factory=dict)
    # type id: diagnostic, for events whose print fmt could not be rendered
    trouble: dict[int, str] = field(default_factory=dict)


@dataclass
class _Piece:
    rows: I64
    name: str
    columns: dict[str, pl.Series]  # body, and args fields read from the record
    extract: bool  # args come from the text patterns


def build(ctx: Context, big: U8, rows: Rows, lo: int, threads: int = THREADS) -> Chunk:
    """The ``events`` rows of records ``lo..lo+len(rows)`` of the merged order."""
    n = len(rows.at)
    end = rows.at + rows.length
    types = read_int(big, rows.at, 2, False, ctx.big_endian).astype(np.uint16)
    pids = read_int(big, rows.at + ctx.pid_offset, 4, True, ctx.big_endian)
    order = np.argsort(types, kind="stable").astype(np.int64)  # radix sort: 16 bits
    sorted_types = types[order]
    cuts = [0, *(np.flatnonzero(np.diff(sorted_types)) + 1).tolist(), n] if n else [0]
    groups = [(int(sorted_types[a]), order[a:b]) for a, b in pairwise(cuts)]
    chunk = Chunk(pl.DataFrame(), pl.DataFrame(schema=DIAGNOSTICS_SCHEMA))

    def one(group: tuple[int, I64]) -> _Piece:
        type_id, idx = group
        fmt = ctx.formats.get(type_id)
        if fmt is None:
            chunk.unknown[type_id] = (len(idx), lo + int(idx[0]))
            text = pl.repeat("", len(idx), dtype=pl.String, eager=True)
            return _Piece(idx, f"UNKNOWN_TYPE_{type_id}", {"body": text}, False)
        env = _env(fmt, big, rows.at[idx], end[idx], ctx)
        text, trouble = _render(fmt, env, ctx.long_size)
        if trouble:
            chunk.trouble[type_id] = f"{fmt.name}: {trouble}; its body shows the raw fields"
        columns = {"body": text}
        # Probe payloads ("(func+0x0/0x10) a=1") are recognised whatever the event name.
        probe = not fmt.name.startswith("sys_enter_") and bool(text.str.starts_with("(").any())
        direct = None
        if not trouble and not probe:
            direct = direct_for(fmt.system, fmt.name, set(fmt.by_name), fmt.print_fmt)
        got = direct(env) if direct is not None else None
        if got is not None:
            columns.update(got)
            return _Piece(idx, fmt.name, columns, False)
        return _Piece(idx, fmt.name, columns, probe or fmt.name in _declared())

    if threads > 1 and len(groups) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            pieces = list(pool.map(one, groups))
    else:
        pieces = [one(g) for g in groups]
    chunk.events = _assemble(ctx, pieces, rows, pids, lo)
    chunk.arg_diags = chunk.events.filter(~pl.col("args_ok")).select(
        file="file", line="line", kind=pl.lit("args"), reason=pl.lit(ARGS_MISMATCH), text="body"
    )
    chunk.arg_diags = chunk.arg_diags.cast(DIAGNOSTICS_SCHEMA)
    chunk.events = chunk.events.drop("args_ok")
    return chunk


def _declared() -> set[str]:
    return set(_spec().events)


def _spec() -> FormatSpec:
    return get_format("trace-cmd")


def _assemble(ctx: Context, pieces: list[_Piece], rows: Rows, pids: I64, lo: int) -> pl.DataFrame:
    """The pieces (one per event type) as one frame in time order: one gather."""
    n = len(rows.at)
    fields = args_fields()
    frames = []
    for p in pieces:
        cols = {k: v.alias(k) for k, v in p.columns.items()}
        frame = pl.DataFrame(cols).with_columns(
            event=pl.lit(p.name, pl.String), args_ok=pl.lit(True)
        )
        frames.append(frame.with_columns(pl.col(k).cast(fields[k]) for k in cols if k != "body"))
    todo = [i for i, p in enumerate(pieces) if p.extract]
    if todo:
        spec = _spec()
        mixed = pl.concat([frames[i].select("event", "body") for i in todo])
        got = extract_args(mixed, spec, Dialect(trace_cmd=True))
        got = got.select("args_ok", pl.col("args").struct.unnest())
        got = got.select(c.name for c in got.iter_columns() if c.null_count() < got.height)
        at = 0
        for i in todo:
            size = frames[i].height
            frames[i] = pl.concat(
                [frames[i].select("event", "body"), got.slice(at, size)], how="horizontal"
            )
            at += size
    inv = np.empty(n, np.int64)
    if pieces:
        inv[np.concatenate([p.rows for p in pieces])] = np.arange(n)
        merged = pl.concat(frames, how="diagonal", rechunk=True).gather(pl.Series(inv))
    else:
        merged = pl.DataFrame(
            {"event": [], "body": [], "args_ok": []},
            schema={"event": pl.String, "body": pl.String, "args_ok": pl.Boolean},
        )
    args = pl.struct(
        [
            pl.col(f).cast(dtype) if f in merged.columns else pl.lit(None, dtype).alias(f)
            for f, dtype in fields.items()
        ]
    )
    schema = events_schema(args_struct())
    return (
        merged.select(
            ts=pl.Series(rows.ts, dtype=pl.Int64),
            cpu=pl.Series(rows.cpus, dtype=pl.Int32),
            pid=pl.Series(pids, dtype=pl.Int32),
            comm=_comms(pids, ctx.cmdlines),
            event="event",
            line=pl.Series(np.arange(lo + 1, lo + n + 1), dtype=pl.UInt32),
            body="body",
            tgid=pl.lit(None, pl.Int32),
            source=pl.lit(SOURCE),
            file=pl.lit(ctx.name),
            flags=pl.lit(None, pl.String),
            args=args,
            stack=pl.lit(None, pl.List(pl.String)),
            ustack=pl.lit(None, pl.List(pl.String)),
            args_ok="args_ok",
        )
        .cast(schema)
        .select(*schema.names(), "args_ok")
    )


def _comms(pids: I64, cmdlines: dict[int, str]) -> pl.Series:
    uniq = pl.Series(pids, dtype=pl.Int64).unique()
    table = {p: ("<idle>" if p == 0 else cmdlines.get(p, "<...>")) for p in uniq.to_list()}
    return (
        pl.Series(pids, dtype=pl.Int64).replace_strict(table, return_dtype=pl.String).alias("comm")
    )


class _Lazy(Mapping[str, V]):
    """Field columns read on first use: an event's text and args need few of its fields."""

    def __init__(self, readers: dict[str, Callable[[], V]]) -> None:
        self._readers = readers
        self._read: dict[str, V] = {}

    def __getitem__(self, name: str) -> V:
        if name not in self._read:
            self._read[name] = self._readers[name]()
        return self._read[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)


def _env(fmt: EventFormat, big: U8, at: I64, end: I64, ctx: Context) -> Env:
    ints: dict[str, Callable[[], I64]] = {}
    strs: dict[str, Callable[[], pl.Series]] = {}
    unsigned: set[str] = set()
    for f in [*fmt.common, *fmt.fields]:
        if f.is_string:
            strs[f.name] = partial(read_string, big, at, end, f, ctx.big_endian)
        elif f.array is None and not f.dynamic and f.size in (1, 2, 4, 8):
            ints[f.name] = partial(read_int, big, at + f.offset, f.size, f.signed, ctx.big_endian)
            if not f.signed:
                unsigned.add(f.name)

    def raw(field_name: str) -> list[bytes]:
        f = fmt.by_name.get(field_name)
        if f is None:
            raise FmtError(f"no field {field_name!r}")
        return read_bytes(big, at, end, f, ctx.big_endian)

    return Env(len(at), _Lazy(ints), _Lazy(strs), raw, ctx.symbols, unsigned, ctx.long_size)


def _render(fmt: EventFormat, env: Env, long_size: int) -> tuple[pl.Series, str]:
    plugin = plugin_for(fmt)
    try:
        text = plugin(env) if plugin is not None else Renderer(fmt, long_size).render(env)
    except (FmtError, KeyError, IndexError, ValueError) as exc:
        return raw_fields(env, fmt), f"print fmt not understood ({exc})"
    if fmt.system == "ftrace" and fmt.name in ("print", "bputs"):
        text = text.str.strip_suffix("\n")
    return text, ""
