"""Per-device timelines: calls and instants as ``spans``, each resolved to a device and
carrying the locks held over it.

``spans`` (one row per interval on an entity; instants have ``start_ts == end_ts``):

``device``        the PCI name (``0004:00:00.0``) where the trace lets us resolve it; else
                  the pointer or function handle the event carried (``dev@0x8f3a40c8``)
``device_how``    ``exact`` (the event names the device), ``inferred`` (correlated; see
                  ``device_why`` and ``device_evidence``), ``pointer`` (no name known)
``kind``          attach, detach, release, probe, dma_init, flush, lock, ... or ``call``
``func``          the function (calls) or event name (instants)
``start_ts`` ``end_ts`` ``exact``   ``exact`` is false when an end had to be bounded by
                  the task's neighbouring event (no return traced)
``lockset``       locks held over the whole span: traced holds (``lock@0x...``) and the
                  ones the kernel era guarantees (``group->mutex``)
``iova`` ``size``  the IOVA range of an ``iommu:map``/``unmap``
``evidence``      ``path:line`` of the lines the span was built from

Calls come from kprobe/kretprobe pairs (per task, nesting and recursion by depth),
function_graph entries/exits, and function-tracer entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tracetool import graph
from tracetool.devices import PCI_NAME, Prior, attribute, hex_str, in_task, keys, where
from tracetool.events import KV
from tracetool.kernel import (
    LOCK_ACQUIRE,
    LOCK_FAMILY,
    LOCK_RELEASE,
    SPAN_KINDS,
    SYMBOL_ERAS,
    UNKNOWN_LOCK,
    EraChoice,
    implicit_locks,
    infer_era,
)
from tracetool.render import duration_text

SPANS_SCHEMA = pl.Schema(
    {
        "device": pl.String(),
        "device_how": pl.String(),
        "device_why": pl.String(),
        "kind": pl.String(),
        "func": pl.String(),
        "start_ts": pl.Int64(),
        "end_ts": pl.Int64(),
        "exact": pl.Boolean(),
        "pid": pl.Int32(),
        "tgid": pl.Int32(),
        "comm": pl.String(),
        "cpu": pl.Int32(),
        "lockset": pl.List(pl.String()),
        "ret": pl.Int64(),
        "domain": pl.UInt64(),
        "fh": pl.UInt64(),  # the function handle a call named (RPCIT: fn >> 32)
        # iommu map/unmap: the IOVA range [iova, iova + size); RPCIT: the range flushed
        "iova": pl.UInt64(),
        "size": pl.UInt64(),
        "caller": pl.String(),  # the function a call returned to (kretprobe site)
        "lock": pl.String(),
        "location": pl.String(),  # a crash report's source line (printed or symbolized)
        "file": pl.String(),
        "start_line": pl.UInt32(),
        "end_line": pl.UInt32(),
        "evidence": pl.List(pl.String()),
        "device_evidence": pl.List(pl.String()),
    }
)


@dataclass
class Timeline:
    """Spans of a trace and the kernel era each input was read with."""

    spans: pl.LazyFrame
    eras: dict[str, EraChoice]  # input file -> era
    prior: Prior | None = None  # built for a window: what the next window starts from

    @property
    def era(self) -> EraChoice:
        """The one era of all inputs, or, when they differ, all of them together."""
        distinct = list(dict.fromkeys(self.eras.values()))
        if not distinct:  # no events at all
            return infer_era({})
        if len(distinct) == 1:
            return distinct[0]
        names = tuple(dict.fromkeys(n for e in distinct for n in e.eras))
        evidence = tuple(f"{f}: {e.label()}" for f, e in self.eras.items())
        return EraChoice(names, "per-input", evidence)


def task_key() -> pl.Expr:
    """Task identity: the pid, except that every CPU's idle task (pid 0) is its own."""
    return (
        pl.when(pl.col("pid").is_null() | (pl.col("pid") == 0))
        .then(-1 - pl.col("cpu"))
        .otherwise(pl.col("pid"))
        .alias("task")
    )


# ---------------------------------------------------------------------------------------
# calls: probe pairs, function_graph, function tracer
# ---------------------------------------------------------------------------------------


def _ret_value(kv: pl.Expr) -> pl.Expr:
    """The return value a kretprobe printed (``ret=``/``retval=``/``$retval``)."""
    return (
        kv.list.eval(
            pl.element()
            .filter(pl.element().struct.field("name").is_in(["ret", "retval", "$retval", "rc"]))
            .struct.field("num")
        )
        .list.first()
        .cast(pl.Int64, strict=False)
    )


def _function_of(site: str) -> pl.Expr:
    """``__dma_purge_tlb`` from a return site ``__dma_purge_tlb+0x7c/0x120``.

    A site that is only an address (``perf script`` prints ``95bb0a3fa``) names no function.
    """
    return pl.col(site).str.extract(r"^([A-Za-z_.][\w.]*)\+0x", 1)


def _probe_calls(events: pl.LazyFrame) -> pl.LazyFrame:
    a = pl.col("args")
    probes = (
        events.filter(a.struct.field("probe").is_in(["kprobe", "kretprobe"]))
        .select(
            "file",
            "line",
            "ts",
            "cpu",
            "pid",
            "tgid",
            "comm",
            "event",
            task_key(),
            func=a.struct.field("func"),
            probe=a.struct.field("probe"),
            kv=a.struct.field("kv"),
            site=a.struct.field("site"),
        )
        .sort("file", "task", "line")
    )
    # Several probes on one function fire together (s390_rel and p_..._0): consecutive
    # probe events of a task on the same function and side are one firing, unless an
    # event name repeats, which is recursion. Rows are in (file, task, line) order, so
    # a run of one task, function and side is one id across the whole frame.
    # A probe whose function is not known (an address) is a run of its own.
    alone = pl.when(pl.col("func").is_null() | pl.col("probe").is_null()).then(
        pl.int_range(pl.len())
    )
    probes = probes.with_columns(
        run=pl.struct("file", "task", "func", "probe", alone).rle_id()
    ).with_columns(firing=pl.int_range(pl.len()).over("run", "event"))
    has_kv = pl.col("kv").list.len() > 0
    fired = probes.group_by("run", "firing").agg(
        pl.col("file").first(),
        pl.col("task").first(),
        pl.col("line").min(),
        last_line=pl.col("line").max(),
        ts=pl.col("ts").min(),
        cpu=pl.col("cpu").first(),
        pid=pl.col("pid").first(),
        tgid=pl.col("tgid").first(),
        comm=pl.col("comm").first(),
        func=pl.col("func").first(),
        probe=pl.col("probe").first(),
        kv=pl.col("kv").filter(has_kv).first(),
        site=pl.col("site").drop_nulls().first(),
        lines=pl.col("line"),
    )
    side = ["file", "task", "func"]
    is_ret = pl.col("probe") == "kretprobe"
    fired = fired.sort("file", "task", "func", "line").with_columns(
        level=pl.when(is_ret).then(-1).otherwise(1).cum_sum().over(side) + is_ret.cast(pl.Int32)
    )
    # Entry and return of one call are neighbours in (side, level, line) order: the next
    # row of the same side and level is the return, if it is one.
    grp = [*side, "level"]
    fired = fired.sort(*grp, "line")
    same_next = pl.all_horizontal(pl.col(c) == pl.col(c).shift(-1) for c in grp).fill_null(False)
    same_prev = pl.all_horizontal(pl.col(c) == pl.col(c).shift(1) for c in grp).fill_null(False)
    nxt = {
        c: pl.when(same_next).then(pl.col(c).shift(-1))
        for c in ("probe", "ts", "line", "last_line", "kv", "lines", "site")
    }
    prev_probe = pl.when(same_prev).then(pl.col("probe").shift(1))
    fired = fired.with_columns(
        nxt_ret=nxt["probe"] == "kretprobe",
        nxt_ts=nxt["ts"],
        nxt_line=nxt["line"],
        nxt_last=nxt["last_line"],
        nxt_kv=nxt["kv"],
        nxt_lines=nxt["lines"],
        nxt_site=nxt["site"],
        orphan_ret=is_ret & (prev_probe != "kprobe").fill_null(True),
    ).sort(*side, "line")  # back in call order: later stages break ties by row order
    entry = ~is_ret
    paired = pl.col("nxt_ret").fill_null(False)
    base = ("file", "task", "pid", "tgid", "comm", "cpu", "func")
    entries = fired.filter(entry).select(
        *base,
        start_ts="ts",
        end_ts=pl.when(paired).then("nxt_ts"),
        exact=paired,
        start_line="line",
        end_line=pl.when(paired).then("nxt_line"),
        last_line=pl.when(paired).then("nxt_last").otherwise("last_line"),
        kv="kv",
        ret=pl.when(paired).then(_ret_value(pl.col("nxt_kv"))),
        lines=pl.when(paired).then(pl.concat_list("lines", "nxt_lines")).otherwise("lines"),
        caller=pl.when(paired).then(_function_of("nxt_site")),
    )
    orphans = fired.filter(pl.col("orphan_ret")).select(
        *base,
        start_ts=pl.lit(None, pl.Int64),
        end_ts="ts",
        exact=pl.lit(False),
        start_line="line",
        end_line="line",
        last_line="last_line",
        kv=pl.lit(None, KV),
        ret=_ret_value(pl.col("kv")),
        lines="lines",
        caller=_function_of("site"),
    )
    return pl.concat([entries, orphans], how="vertical_relaxed").with_columns(
        name=pl.lit(None, pl.String)
    )


def _graph_calls(events: pl.LazyFrame) -> pl.LazyFrame:
    calls = graph.calls(events).filter(pl.col("start_ts").is_not_null())
    return calls.select(
        "file",
        task_key(),
        "pid",
        tgid=pl.lit(None, pl.Int32),
        comm="comm",
        cpu="cpu",
        func="func",
        start_ts="start_ts",
        end_ts="end_ts",
        exact=pl.col("end_ts").is_not_null(),
        start_line=pl.coalesce("entry_line", "exit_line"),
        end_line="exit_line",
        last_line=pl.coalesce("exit_line", "entry_line"),
        kv=pl.lit(None, KV),
        ret=pl.lit(None, pl.Int64),
        lines=pl.concat_list("entry_line", "exit_line").list.drop_nulls().list.unique(),
        name=pl.lit(None, pl.String),
    )


def _function_calls(events: pl.LazyFrame) -> pl.LazyFrame:
    """Function-tracer entries: the start is exact, the end is not traced."""
    return events.filter(pl.col("event") == "function").select(
        "file",
        task_key(),
        "pid",
        "tgid",
        "comm",
        "cpu",
        func=pl.col("args").struct.field("func"),
        start_ts="ts",
        end_ts=pl.lit(None, pl.Int64),
        exact=pl.lit(False),
        start_line="line",
        end_line=pl.lit(None, pl.UInt32),
        last_line="line",
        kv=pl.lit(None, KV),
        ret=pl.lit(None, pl.Int64),
        lines=pl.concat_list("line"),
        name=pl.lit(None, pl.String),
        caller=pl.col("args").struct.field("parent").str.extract(r"^([^+\s]+)", 1),
    )


def _instants(events: pl.LazyFrame) -> pl.LazyFrame:
    """Events (not calls) that name a device or have a kind: instants on the timeline."""
    a = pl.col("args")
    device = a.struct.field("device")
    is_call = a.struct.field("probe").is_not_null() | pl.col("event").is_in(
        ["function", "funcgraph_entry", "funcgraph_exit", "kernel_stack", "user_stack"]
    )
    keep = ~is_call & (pl.col("event").is_in(list(SPAN_KINDS)) | device.str.contains(PCI_NAME))
    return events.filter(keep).select(
        "file",
        task_key(),
        "pid",
        "tgid",
        "comm",
        "cpu",
        func="event",
        start_ts="ts",
        end_ts="ts",
        exact=pl.lit(True),
        start_line="line",
        end_line="line",
        last_line="line",
        kv=pl.lit(None, KV),
        ret=pl.lit(None, pl.Int64),
        lines=pl.concat_list("line"),
        name=pl.when(device.str.contains(PCI_NAME)).then(device),
        iova=a.struct.field("iova"),
        size=a.struct.field("size"),
    )


def _bound_ends(rows: pl.LazyFrame, events: pl.LazyFrame, last_ts: pl.LazyFrame) -> pl.LazyFrame:
    """Fill unknown ends with the task's next event (else the input's last one,
    ``last_ts``: ``file f_last``) and unknown starts with its previous one (``exact`` is
    already false for them). Only those rows are joined with the event stream, and only
    their keys: in a trace of paired probes that is few or none."""
    rows = rows.with_row_index("_order")
    need = pl.col("end_ts").is_null() | pl.col("start_ts").is_null()
    todo = rows.filter(need).select("_order", "file", "task", "last_line", "start_line")
    stream = events.select("file", task_key(), "line", "ts").drop_nulls("ts")
    nxt = stream.rename({"line": "n_line", "ts": "n_ts"})
    todo = in_task(todo, nxt, "last_line", "n_line", "forward")
    todo = in_task(todo, stream.rename({"line": "p_line", "ts": "p_ts"}), "start_line", "p_line")
    bounds = todo.join(last_ts, on="file", how="left").select("_order", "n_ts", "p_ts", "f_last")
    end = pl.coalesce("end_ts", "n_ts", "f_last")
    return (
        rows.join(bounds, on="_order", how="left", maintain_order="left")
        .with_columns(end_ts=end, start_ts=pl.coalesce("start_ts", "p_ts", end))
        .drop("_order", "n_ts", "p_ts", "f_last")
    )


# ---------------------------------------------------------------------------------------
# locks
# ---------------------------------------------------------------------------------------


def _lock_holds(rows: pl.LazyFrame, last_ts: pl.LazyFrame) -> pl.LazyFrame:
    """Traced holds: an acquire's return (or entry) to the next release of the same lock
    by the same task, or to the input's last event (``last_ts``) when none follows.
    Where the trace shows the calls but not the lock (function_graph prints no
    arguments), the lock is named by its family (``mutex@?``) and acquires and releases
    of that family pair up as they nest (last taken, first released)."""
    is_acq = pl.col("func").is_in(LOCK_ACQUIRE)
    known = pl.col("lock").is_not_null()
    family = pl.col("func").replace_strict(LOCK_FAMILY, default=None)
    key = (
        pl.when(known)
        .then(pl.format("lock@{}", hex_str(pl.col("lock"))))
        .otherwise(pl.format("{}{}", family, pl.lit(UNKNOWN_LOCK)))
    )
    locks = (
        rows.filter(is_acq | pl.col("func").is_in(LOCK_RELEASE))
        .with_columns(
            acq=is_acq,
            at=pl.when(is_acq & pl.col("exact")).then("end_ts").otherwise("start_ts"),
            key=key,
            known=known,
        )
        .sort("file", "task", "key", "start_line")
    )
    sign = pl.when("acq").then(1).otherwise(-1)
    depth = sign.cum_sum().over("file", "task", "key")
    # Identified locks pair with the next release of the same lock; unidentified ones
    # by nesting level (an acquire at level n with the release that leaves level n).
    level = pl.when("known").then(0).when("acq").then(depth).otherwise(depth + 1)
    locks = locks.with_columns(level=level)
    grp = ["file", "task", "key", "level"]
    nxt_rel = (~pl.col("acq")).shift(-1).over(grp).fill_null(False)
    return (
        locks.with_columns(
            r_at=pl.col("at").shift(-1).over(grp),
            r_line=pl.col("start_line").shift(-1).over(grp),
            paired=nxt_rel,
        )
        .filter("acq")
        .join(last_ts, on="file", how="left")
        .select(
            "file",
            "task",
            "pid",
            "tgid",
            "comm",
            "cpu",
            "func",
            start_ts="at",
            end_ts=pl.max_horizontal("at", pl.when("paired").then("r_at").otherwise("f_last")),
            exact=pl.col("paired") & pl.col("exact"),
            start_line="start_line",
            end_line=pl.when("paired").then("r_line"),
            lock="key",
            evidence=pl.concat_list(
                where("file", "start_line"), where("file", "r_line")
            ).list.drop_nulls(),
        )
    )


def _locksets(spans: pl.LazyFrame, holds: pl.LazyFrame, eras: dict[str, EraChoice]) -> pl.LazyFrame:
    held = (
        spans.select("sid", "file", "task", "start_ts", "end_ts")
        .join(
            holds.select("file", "task", h_start="start_ts", h_end="end_ts", h_lock="lock"),
            on=["file", "task"],
        )
        .filter((pl.col("h_start") <= pl.col("start_ts")) & (pl.col("h_end") >= pl.col("end_ts")))
        .group_by("sid")
        .agg(traced=pl.col("h_lock").unique().sort())
    )
    releases = spans.filter(pl.col("kind") == "release").select(
        "file", "task", r_line="start_line", r_end="end_ts"
    )
    nested = in_task(
        spans.select("sid", "file", "task", "start_line", "end_ts"),
        releases,
        "start_line",
        "r_line",
    ).select("sid", in_release=(pl.col("r_end") >= pl.col("end_ts")).fill_null(False))
    implicit = pl.LazyFrame(
        [
            {
                "file": file,
                "kind": kind,
                "in_release": inside,
                "implicit": list(implicit_locks(kind, inside, era)),
            }
            for file, era in eras.items()
            for kind in ("attach", "detach", "release")
            for inside in (False, True)
        ],
        schema={
            "file": pl.String,
            "kind": pl.String,
            "in_release": pl.Boolean,
            "implicit": pl.List(pl.String),
        },
    )
    return (
        spans.join(held, on="sid", how="left")
        .join(nested, on="sid", how="left")
        .join(implicit, on=["file", "kind", "in_release"], how="left")
        .with_columns(
            lockset=pl.concat_list(pl.col("traced").fill_null([]), pl.col("implicit").fill_null([]))
            .list.unique()
            .list.sort()
        )
        .drop("traced", "implicit", "in_release")
    )


# ---------------------------------------------------------------------------------------
# era and the whole stage
# ---------------------------------------------------------------------------------------


def _evidence(rows: pl.LazyFrame) -> pl.LazyFrame:
    """``path:line`` of every line a row was built from, in line order."""
    return (
        rows.select("rid", "file", line="lines")
        .explode("line")
        .drop_nulls("line")
        .sort("line")
        .group_by("rid")
        .agg(evidence=where("file", "line"))
    )


_ARGS_USED = ("probe", "func", "kv", "site", "parent", "device", "depth", "dur", "iova", "size")


def _needed(events: pl.LazyFrame) -> pl.LazyFrame:
    """The columns the timeline reads, materialised once: every stage reads events
    several times, and stored events are a scan of many Parquet columns."""
    a = pl.col("args")
    return (
        events.select(
            "file",
            "line",
            "ts",
            "cpu",
            "pid",
            "tgid",
            "comm",
            "event",
            "stack",
            args=pl.struct(*(a.struct.field(f) for f in _ARGS_USED)),
        )
        .collect()
        .lazy()
    )


def symbols_seen(events: pl.LazyFrame) -> dict[str, dict[str, str]]:
    """Known era symbols in each input (functions, return sites, events, stack frames),
    each with the ``path:line`` where it first appears: file -> symbol -> where."""
    a = pl.col("args")
    bare = r"^\s*(?:=>\s*)?([A-Za-z_][\w.]*).*$"
    cols = [
        a.struct.field("func"),
        a.struct.field("site"),
        a.struct.field("parent"),
        pl.col("event"),
    ]
    parts = [events.select("file", "line", sym=c) for c in cols]
    parts.append(events.select("file", "line", sym="stack").explode("sym"))
    found = (
        pl.concat(parts)
        .with_columns(sym=pl.col("sym").str.extract(bare, 1))
        .filter(pl.col("sym").is_in(list(SYMBOL_ERAS)))
        .group_by("file", "sym")
        .agg(pl.col("line").min())
        .collect(engine="streaming")
    )
    seen: dict[str, dict[str, str]] = {}
    for r in found.iter_rows(named=True):
        seen.setdefault(r["file"], {})[r["sym"]] = f"{r['file']}:{r['line']}"
    return seen


CRASH_WINDOW = 1_000_000_000  # ns: a crash is tied to what its task did this long before


def _crash_spans(crashes: pl.LazyFrame, spans: pl.LazyFrame) -> pl.LazyFrame:
    """Crash reports as instants of kind ``crash`` (``func`` is the title), on the device
    their task last worked on within ``CRASH_WINDOW`` before, in any input (inputs are on
    one clock, see ``tracetool.clocks``): inferred, never exact."""
    reports = crashes.filter(pl.col("ts").is_not_null()).with_row_index("cid")
    # "file:line" for every line of the report.
    lines = (
        reports.select("cid", "file", "lines")
        .explode("lines")
        .group_by("cid")
        .agg(evidence=where("file", "lines").sort_by(pl.col("lines")))
    )
    known = (
        spans.filter(
            pl.col("device_how").is_in(["exact", "inferred"])
            & pl.col("pid").is_not_null()
            & (pl.col("pid") != 0)
            & (pl.col("kind") != "lock")
        )
        .select(
            "pid",
            k_ts="start_ts",
            k_device="device",
            k_func="func",
            k_evidence="evidence",
        )
        .sort("k_ts")
    )
    tied = (
        reports.join(lines, on="cid", how="left")
        .sort("ts")
        .join_asof(
            known,
            left_on="ts",
            right_on="k_ts",
            by="pid",
            strategy="backward",
            tolerance=CRASH_WINDOW,
            check_sortedness=False,
        )
    )
    dt = pl.col("ts") - pl.col("k_ts")
    return tied.select(
        device=pl.col("k_device"),
        device_how=pl.when(pl.col("k_device").is_not_null()).then(pl.lit("inferred")),
        device_why=pl.when(pl.col("k_device").is_not_null()).then(
            pl.format(
                "the crashing task {}-{} ran {} on it {} before",
                pl.coalesce("comm", pl.lit("?")),
                "pid",
                "k_func",
                duration_text(dt),
            )
        ),
        kind=pl.lit("crash"),
        func="title",
        # The source line the report printed, or its guilty frame's (check --vmlinux).
        location="location",
        start_ts="ts",
        end_ts="ts",
        exact=pl.lit(True),
        pid="pid",
        comm="comm",
        cpu="cpu",
        lockset=pl.lit([], pl.List(pl.String)),
        file="file",
        start_line="line",
        end_line="end_line",
        evidence="evidence",
        device_evidence="k_evidence",
    )


def input_eras(events: pl.LazyFrame, era: EraChoice | None = None) -> dict[str, EraChoice]:
    """The era of every input: ``era`` for all, or the one each input's symbols tell."""
    found = events.select(pl.col("file").unique().sort()).collect(engine="streaming")
    files: list[str] = found["file"].to_list()
    if era is not None:
        return dict.fromkeys(files, era)
    seen = symbols_seen(events)
    return {f: infer_era(seen.get(f, {})) for f in files}


def last_times(events: pl.LazyFrame) -> pl.LazyFrame:
    """``file f_last``: the time of each input's last event."""
    return events.group_by("file").agg(f_last=pl.col("ts").max())


@dataclass
class Window:
    """A time window of a long trace whose spans are built on their own
    (``tracetool.windowed``): the eras and last event times of the whole trace, and what
    attribution learned before the window."""

    eras: dict[str, EraChoice]
    last_ts: pl.DataFrame
    prior: Prior
    before_ts: int  # where the next window starts: ``Timeline.prior`` stops there


def timeline(
    events: pl.LazyFrame,
    era: EraChoice | None = None,
    crashes: pl.LazyFrame | None = None,
    window: Window | None = None,
) -> Timeline:
    """Build the ``spans`` of a trace (see the module doc). ``era`` applies to every
    input; by default each input gets the one its own symbols tell
    (``kernel.infer_era``): inputs may come from different kernels. ``crashes`` (a
    kernel log's crash reports, ``Trace.table("crashes")``) become ``crash`` instants.
    With a ``window``, ``events`` are one window of a longer trace (see ``Window``), and
    the result's ``prior`` is what the next window needs."""
    events = _needed(events)
    if window is None:
        eras = input_eras(events, era)
        last_ts = last_times(events).collect().lazy()
    else:
        eras, last_ts = window.eras, window.last_ts.lazy()
    events = events.drop("stack")
    # Collected once: _bound_ends reads the rows twice, and a lazy plan would build the
    # calls twice.
    found = pl.concat(
        [_probe_calls(events), _graph_calls(events), _function_calls(events), _instants(events)],
        how="diagonal_relaxed",
    ).collect()
    rows = _bound_ends(found.lazy(), events, last_ts).with_row_index("rid").collect().lazy()
    rows = (
        attribute(keys(rows).drop("kv"), window.prior if window else None)
        .with_columns(
            iova=pl.coalesce("iova", "flush_addr"), size=pl.coalesce("size", "flush_range")
        )
        .collect()  # read twice below
        .lazy()
    )
    rows = rows.with_columns(
        kind=pl.col("func").replace_strict(SPAN_KINDS, default="call"),
    ).join(_evidence(rows), on="rid", how="left")
    rows = rows.collect().lazy()
    prior = window.prior.after(rows, window.before_ts) if window else None
    holds = _lock_holds(rows, last_ts).collect().lazy()
    calls = rows.filter(~pl.col("func").is_in([*LOCK_ACQUIRE, *LOCK_RELEASE]))
    spans = (
        pl.concat(
            [
                calls.select(
                    *(
                        c
                        for c in SPANS_SCHEMA
                        if c not in ("lockset", "lock", "kind", "evidence", "location")
                    ),
                    "task",
                    "kind",
                    "evidence",
                    lock=pl.lit(None, pl.String),
                    location=pl.lit(None, pl.String),
                    dev="dev",
                ),
                holds.select(
                    "file",
                    "task",
                    "pid",
                    "tgid",
                    "comm",
                    "cpu",
                    "func",
                    "start_ts",
                    "end_ts",
                    "exact",
                    "start_line",
                    "end_line",
                    "lock",
                    "evidence",
                    kind=pl.lit("lock"),
                ),
            ],
            how="diagonal_relaxed",
        )
        .with_row_index("sid")
        .collect()
        .lazy()
    )
    spans = _locksets(spans, holds, eras)
    if crashes is not None:
        spans = (
            pl.concat([spans, _crash_spans(crashes, spans)], how="diagonal_relaxed")
            .collect()
            .lazy()
        )
    out = spans.sort("start_ts", "file", "start_line").select(
        *(pl.col(c).cast(t) for c, t in SPANS_SCHEMA.items())
    )
    return Timeline(out, eras, prior)


def device_summary(spans: pl.LazyFrame) -> pl.LazyFrame:
    """One row per device: ``device how spans tasks kinds first_ts last_ts``, where
    ``how`` lists the attributions its spans got (exact, inferred, pointer, unknown)."""
    return (
        spans.filter(pl.col("device").is_not_null())
        .group_by("device")
        .agg(
            how=pl.col("device_how").unique().sort().str.join(","),
            spans=pl.len(),
            tasks=pl.col("pid").n_unique(),
            kinds=pl.col("kind").unique().sort().str.join(","),
            first_ts=pl.col("start_ts").min(),
            last_ts=pl.col("end_ts").max(),
        )
        .sort("first_ts", "device")
    )
