"""The function_graph engine (kernel/trace/trace_functions_graph.c output).

A graph line is ``[abstime |] CPU) [comm-pid |] [flags |] [mark] [duration us] |  <call>``
where the call is ``func() {`` (entry), ``func();`` (a leaf: entry and return in one
line), ``}`` or ``} /* func */`` (return), or ``/* text */`` (a trace_printk or marker).
Lines become ``funcgraph_entry``/``funcgraph_exit`` events whose payload is the part
from the duration column on, exactly what ``trace-cmd report`` prints for the same
events, so one declared pattern extracts ``func``, ``depth``, ``dur`` and ``ret`` from
both. Context-switch blocks become ``funcgraph_switch`` events, and the task they switch
to is the task of the CPU's following lines when the proc column is off.

``calls()`` pairs entries with their returns into calls with exact start, end and
duration.
"""

from __future__ import annotations

import polars as pl

from tracetool.catalogue import FormatSpec
from tracetool.ftrace import Dialect, _int, timestamp_ns

SWITCH = (
    r"^\s*(?:\d+\.\d+ \|\s+)?(?P<cpu>\d+)\)\s+(?P<prev_comm>\S.*?)-(?P<prev_pid>\d+)\s+=>\s+"
    r"(?P<next_comm>\S.*?)-(?P<next_pid>\d+)\s*$"
)


# The grammar of parsers/function-graph.toml that ``_plain`` was derived from.
LINE = (
    r"^\s*(?:(?P<abs>\d+\.\d+) \|\s+)?(?:\d+ us \|\s+)?(?P<cpu>\d+)\)\s+"
    r"(?:(?P<proc>\S[^|]*?-\d+)\s+\|\s+)?(?:(?P<flags>[.A-Za-z0-9]{4,7}) \|\s+)?"
    r"(?P<rest>(?:[+!#*@$] )?\s*(?:\d+(?:\.\d+)? us|==========>|<==========)?\s*\|.*)$"
)
_GROUPS = ("abs", "cpu", "proc", "flags", "rest")


def _plain(t: pl.Expr) -> pl.Expr:
    """Lines whose ``LINE`` groups are known without capturing: ASCII spaces, ASCII
    CPU digits and ")" first (so no abstime column, and byte and character offsets
    agree up to there), then ASCII spaces and a non-space, and no text after them that
    the optional proc or flags column could take. For those, ``LINE`` (checked as a
    whole by its DFA, which costs a fraction of a capturing match) gives ``cpu`` = the
    digits and ``rest`` = everything after the spaces, as its greedy run of whitespace
    after ")" takes them all and ``rest`` cannot start with a space it could give back.
    The proc and flags guards are looser than those columns (they stop at the "|"), so
    they only err towards the regex.
    """
    return (
        t.str.contains(r"^ *[0-9]+\) +\S")
        & ~t.str.contains(r"^\s*\d+\)\s+\S[^|]*?-\d+\s+\|")
        & ~t.str.contains(r"^\s*\d+\)\s+[.A-Za-z0-9]{4,7} \|")
        & t.str.contains(LINE)
    )


def _line_groups(lf: pl.LazyFrame, grammar: str) -> pl.LazyFrame:
    """Add ``__abs __cpu __proc __flags __rest``: the groups of the format's line
    grammar, by slicing for plain lines (see ``_plain``) when the grammar is ``LINE``,
    by a capturing match for the others."""
    t = pl.col("text")
    candidate = t.str.contains(r"\d\)")
    if grammar != LINE:
        matched = pl.when(candidate).then(t).str.extract_groups(grammar)
        return (
            lf.with_columns(__g=matched)
            .with_columns(**{f"__{n}": pl.col("__g").struct.field(n) for n in _GROUPS})
            .drop("__g")
        )
    lf = lf.with_columns(__plain=_plain(t).fill_null(False))
    plain = pl.col("__plain")
    lf = lf.with_columns(
        __g=pl.when(candidate & ~plain).then(t).str.extract_groups(grammar),
        __ip=pl.when(plain).then(t.str.find(")", literal=True)),
    )
    g, ip = pl.col("__g").struct.field, pl.col("__ip")
    sliced = {
        "cpu": t.str.slice(0, ip).str.strip_chars_start(" "),
        "rest": t.str.slice(ip + 1).str.strip_chars_start(" "),
    }
    return lf.with_columns(
        **{
            f"__{n}": pl.when(plain).then(sliced[n]).otherwise(g(n))
            if n in sliced
            else pl.when(~plain).then(g(n))
            for n in _GROUPS
        }
    ).drop("__g", "__ip", "__plain")


def classify(lines: pl.LazyFrame, spec: FormatSpec, dialect: Dialect) -> pl.LazyFrame:
    """Graph lines into the columns ``ftrace.classify`` returns (same contract)."""
    t = pl.col("text")
    # Staged: each regex and split runs once and later steps read its columns.
    lf = _line_groups(lines, spec.line[0]).with_columns(
        __s=pl.when(t.str.contains("=>", literal=True)).then(t).str.extract_groups(SWITCH),
    )
    sw = pl.col("__s").struct.field

    def g(name: str) -> pl.Expr:
        return pl.col(f"__{name}")

    lf = lf.with_columns(
        __rest=g("rest"),
        __bar=g("rest").str.find("|", literal=True),
        __proc=g("proc").str.strip_chars(),
        __switch=sw("next_pid").is_not_null(),
    )
    rest, bar = pl.col("__rest"), pl.col("__bar")
    lf = lf.with_columns(
        __call=rest.str.slice(bar + 1).str.strip_chars(),
        __head=rest.str.slice(0, bar).str.strip_chars(),
        __procparts=pl.col("__proc").str.extract_groups(r"^(?P<comm>.*)-(?P<pid>\d+)$"),
    )
    call, head, is_switch = pl.col("__call"), pl.col("__head"), pl.col("__switch")
    event = (
        pl.when(is_switch)
        .then(pl.lit("funcgraph_switch"))
        .when(rest.is_null())
        .then(None)
        .when(head == "==========>")
        .then(pl.lit("funcgraph_irq_entry"))
        .when(head == "<==========")
        .then(pl.lit("funcgraph_irq_exit"))
        .when(call.str.starts_with("/*") & call.str.ends_with("*/"))
        .then(pl.lit("funcgraph_comment"))
        .when(call.str.starts_with("}"))
        .then(pl.lit("funcgraph_exit"))
        .when(call.str.ends_with("{") | call.str.contains("();", literal=True))
        .then(pl.lit("funcgraph_entry"))
    )
    lf = lf.with_columns(__event=event)
    kind = (
        pl.when(t.str.strip_chars() == "")
        .then(pl.lit("header"))
        .when(t.str.starts_with("#"))
        .then(pl.lit("header"))
        .when(pl.col("__event").is_null() & t.str.contains(r"^\s*-{10,}\s*$"))
        .then(pl.lit("header"))
        .when(pl.col("__event").is_not_null())
        .then(pl.lit("event"))
        .otherwise(pl.lit("diag"))
    )
    proc = pl.col("__procparts").struct.field
    lf = lf.with_columns(
        kind=kind,
        event=pl.col("__event"),
        body=pl.when(is_switch)
        .then(
            pl.format(
                "{}-{} => {}-{}", sw("prev_comm"), sw("prev_pid"), sw("next_comm"), sw("next_pid")
            )
        )
        .otherwise(rest),
        cpu=_int(pl.coalesce(g("cpu"), sw("cpu")), pl.Int32()),
        abs_ts=g("abs"),
        flags=g("flags"),
        proc_comm=proc("comm").str.strip_chars(),
        proc_pid=_int(proc("pid"), pl.Int32()),
        next_comm=sw("next_comm"),
        next_pid=_int(sw("next_pid"), pl.Int32()),
        prev_comm=sw("prev_comm"),
        prev_pid=_int(sw("prev_pid"), pl.Int32()),
    ).drop(
        *(f"__{n}" for n in _GROUPS),
        "__s",
        "__rest",
        "__bar",
        "__proc",
        "__switch",
        "__call",
        "__head",
        "__procparts",
        "__event",
    )
    lf = timestamp_ns(lf, "abs_ts", "ts").drop("abs_ts")
    # Without the proc column, a CPU runs the task its last context switch named.
    after_comm = pl.col("next_comm").forward_fill().over("cpu")
    after_pid = pl.col("next_pid").forward_fill().over("cpu")
    return lf.with_columns(
        comm=pl.coalesce("proc_comm", "prev_comm", after_comm),
        pid=pl.coalesce("proc_pid", "prev_pid", after_pid),
        tgid=pl.lit(None, pl.Int32),
        loss_cpu=pl.lit(None, pl.Int32),
        loss_lost=pl.lit(None, pl.Int64),
        marker=pl.lit(None, pl.String),
    ).drop("proc_comm", "proc_pid", "next_comm", "next_pid", "prev_comm", "prev_pid")


def calls(events: pl.LazyFrame) -> pl.LazyFrame:
    """Function calls from ``funcgraph_entry``/``funcgraph_exit`` events.

    A return closes the latest open entry at its depth on the same file, CPU and task.
    Leaves are complete calls by themselves; a return whose entry was not seen
    (``} /* func */``) still has its exact duration, so its start is end - duration.

    :return: ``file cpu pid comm func depth start_ts end_ts dur entry_line exit_line``;
        ``start_ts``/``end_ts`` are null without ``funcgraph-abstime``, ``end_ts`` and
        ``dur`` are null for calls still open when the trace ends.
    """
    a = pl.col("args")
    graph = (
        events.filter(pl.col("event").is_in(["funcgraph_entry", "funcgraph_exit"]))
        .select(
            "file",
            "cpu",
            "pid",
            "comm",
            "line",
            "ts",
            "event",
            func=a.struct.field("func"),
            depth=a.struct.field("depth"),
            dur=a.struct.field("dur"),
        )
        .sort("file", "line")
    )
    is_entry = pl.col("event") == "funcgraph_entry"
    leaf = is_entry & pl.col("dur").is_not_null()
    opener = is_entry & pl.col("dur").is_null()
    group = ["file", "cpu", "pid", "depth"]
    paired = graph.with_columns(
        prev_open=opener.shift(1).over(group),
        prev_line=pl.col("line").shift(1).over(group),
        prev_ts=pl.col("ts").shift(1).over(group),
        prev_func=pl.col("func").shift(1).over(group),
        next_is_exit=(pl.col("event") == "funcgraph_exit").shift(-1).over(group),
    )
    who = ("file", "cpu", "pid", "comm")
    leaves = paired.filter(leaf).select(
        *who,
        "func",
        "depth",
        start_ts="ts",
        end_ts=pl.col("ts") + pl.col("dur"),
        dur="dur",
        entry_line="line",
        exit_line="line",
    )
    exits = paired.filter(pl.col("event") == "funcgraph_exit").select(
        *who,
        func=pl.coalesce(pl.when(pl.col("prev_open")).then("prev_func"), "func"),
        depth="depth",
        start_ts=pl.coalesce(
            pl.when(pl.col("prev_open")).then("prev_ts"), pl.col("ts") - pl.col("dur")
        ),
        end_ts="ts",
        dur="dur",
        entry_line=pl.when(pl.col("prev_open")).then("prev_line"),
        exit_line="line",
    )
    still_open = paired.filter(opener & ~pl.col("next_is_exit").fill_null(False)).select(
        *who,
        "func",
        "depth",
        start_ts="ts",
        end_ts=pl.lit(None, pl.Int64),
        dur=pl.lit(None, pl.Int64),
        entry_line="line",
        exit_line=pl.lit(None, pl.UInt32),
    )
    return pl.concat([leaves, exits, still_open]).sort(
        "file", pl.coalesce("entry_line", "exit_line")
    )
