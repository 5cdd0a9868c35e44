"""The parser engines a ``parsers/*.toml`` may name, and the contract each keeps.

A chunk of whole lines goes through two steps:

``classify(lines, spec, dialect)``
    one lazy pass over ``line`` and ``text`` that adds, per line, ``kind`` (``event``,
    ``frame``, ``cont``, ``record``, ``header``, ``loss`` or ``diag``) and the event
    columns ``comm pid tgid cpu flags ts event body``, plus ``loss_cpu loss_lost marker``
    for loss lines.
``fold(df, spec, file)``
    the collected lines to the same frame with multi-line records folded: stack frames
    into ``frames_k``/``frames_u`` of their event, continuation lines into its body. It
    may add ``reason`` (why a ``diag`` line was not understood) and ``source`` (when an
    event comes from a different source than the format, such as an ftrace dump inside
    a kernel log), and returns the record tables it filled (``events.RECORD_SCHEMAS``).

``safe_line`` matches a line that starts a new record, so a chunk is cut just before it
and no record spans two chunks. ``unparsed`` is the reason given for ``diag`` lines that
``fold`` gave none.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from tracetool import bpftrace, bpftrace_json, dmesg, ftrace, graph, perf
from tracetool.catalogue import FormatSpec
from tracetool.ftrace import Dialect

Folded = tuple[pl.DataFrame, dict[str, pl.DataFrame]]


@dataclass(frozen=True)
class Engine:
    classify: Callable[[pl.LazyFrame, FormatSpec, Dialect], pl.LazyFrame]
    fold: Callable[[pl.DataFrame, FormatSpec, str], Folded]
    safe_line: re.Pattern[bytes]
    unparsed: str
    records: tuple[str, ...] = ()  # the record tables this engine fills
    # Facts about the input from its first lines (merged into ``InputInfo.meta``).
    head_meta: Callable[[list[str], FormatSpec], dict[str, Any]] | None = None


_FTRACE_UNPARSED = "no context prefix (TASK-PID [CPU] TIMESTAMP:) and not a known header or marker"

ENGINES: dict[str, Engine] = {
    "ftrace": Engine(ftrace.classify, ftrace.fold, ftrace.SAFE_LINE, _FTRACE_UNPARSED),
    "perf": Engine(
        perf.classify,
        perf.fold,
        perf.SAFE_LINE,
        "not a perf script line (comm tid [cpu] time: [period] event: payload), callchain "
        "frame, header or perf warning",
    ),
    "function-graph": Engine(
        graph.classify,
        ftrace.fold,
        ftrace.SAFE_LINE,
        "not a function_graph line (CPU) [task-pid |] duration | call), header or marker",
    ),
    "dmesg": Engine(
        dmesg.classify, dmesg.fold, dmesg.SAFE_LINE, dmesg.UNPARSED, ("crashes", "dumps")
    ),
    "bpftrace": Engine(
        bpftrace.classify,
        bpftrace.fold,
        bpftrace.SAFE_LINE,
        bpftrace.UNPARSED,
        ("maps", "histograms"),
        bpftrace.head_meta,
    ),
    "bpftrace-json": Engine(
        bpftrace_json.classify,
        bpftrace_json.fold,
        bpftrace_json.SAFE_LINE,
        bpftrace_json.UNPARSED,
        ("maps", "histograms"),
        bpftrace_json.head_meta,
    ),
}
