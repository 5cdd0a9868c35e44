"""What a timeline draws, as tables: one lane per device and per CPU, the spans, marks,
findings, crashes and loss windows on them, a flush-rate track and a latency panel.

This module is the data half of ``tracetool timeline`` and ``tracetool export``; it knows
nothing of plotly (``tracetool.plot``) or of the Chrome trace-event format
(``tracetool.perfetto``). Everything is polars; no per-row Python.

Rows (``Lanes.rows``) are the horizontal lines of the picture, numbered top-down from 0:

* a device gets, for each task that worked on it, a **calls** row (lifecycle and other
  calls, nested calls drawn thinner over their caller, see ``depth``) and a **locks** row
  under it (traced holds with their real extent; locks the kernel era guarantees, drawn
  over the call that holds them and marked implicit), then one **dma** row: IOVA mapping
  lifetimes (map to the unmap that ended it) and RPCIT markers, global and ranged apart;
* a CPU gets a **run** row (the running task from ``sched_switch``, or, when the trace has
  no scheduler events, the calls that ran on it) and, when the trace has them, an **irq**
  row (hard and soft interrupt handlers).

When a row group would carry more than the detail budget, it is drawn as ``density``
(counts per time bin) and ``Lanes.aggregated`` says so; ``--window`` and ``--device``
bring back exact detail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tracetool.check import CheckResult, evaluate
from tracetool.devices import UNKNOWN_DEVICE, hex_str
from tracetool.events import Trace
from tracetool.hover import (
    MAX_EVIDENCE,
    dur_text,
    escape_frame,
    evidence_pairs,
    extent,
    html_text,
    read_lines,
    sec,
    with_text,
    wrap,
)
from tracetool.kernel import EraChoice
from tracetool.lane_cpus import cpu_calls, cpu_rows, crash_marks, irq_segments, sched_segments
from tracetool.lane_tracks import (
    aggregate,
    depth,
    flush_rate,
    latency,
    loss_windows,
    parse_window,
    span_window,
)
from tracetool.rules import rules as load_rules
from tracetool.rules import select
from tracetool.stats import scoped
from tracetool.timeline import Timeline, timeline

__all__ = [
    "Lanes",
    "Selection",
    "build",
    "depth",
    "device_locks",
    "flush_rate",
    "irq_segments",
    "parse_window",
    "sched_segments",
    "selection",
    "span_window",
    "task_label",
]

MAX_DETAIL = 25_000  # spans + marks drawn one by one (each with its hover text); the rest binned
MAX_TASK_ROWS = 8  # per device; further tasks share an "other tasks" row
DMA_KINDS = ("flush", "iommu_map", "iommu_unmap", "dma_map", "dma_unmap")
MAP_KINDS = ("iommu_map", "dma_map")
UNMAP_KINDS = ("iommu_unmap", "dma_unmap")

SEGMENTS_SCHEMA = {
    "row": pl.Int32,
    "kind": pl.String,
    "start_ts": pl.Int64,
    "end_ts": pl.Int64,
    "depth": pl.Int32,
    "exact": pl.Boolean,
    "label": pl.String,
    "hover": pl.String,
}
MARKS_SCHEMA = {"row": pl.Int32, "kind": pl.String, "ts": pl.Int64, "hover": pl.String}


@dataclass
class Lanes:
    """The tables of one timeline (see the module doc). Times are ns on the trace clock."""

    rows: pl.DataFrame  # row lane group sub label
    segments: pl.DataFrame  # SEGMENTS_SCHEMA
    marks: pl.DataFrame  # MARKS_SCHEMA (+ key for crashes)
    findings: pl.DataFrame  # row_lo row_hi start_ts end_ts rule severity status hover key
    crashes: pl.DataFrame  # row ts title hover key
    losses: pl.DataFrame  # start_ts end_ts cpu lost marker where
    density: pl.DataFrame  # row kind start_ts end_ts count
    flush_rate: pl.DataFrame  # start_ts end_ts scope per_s count
    latency: pl.DataFrame  # start_ts end_ts lo_ns hi_ns count
    latency_of: str  # what the latency panel measures
    details: dict[str, str]  # key -> text of the details panel
    window: tuple[int, int]
    aggregated: list[str] = field(default_factory=list)
    result: CheckResult | None = None
    timeline: Timeline | None = None


def task_label() -> pl.Expr:
    """``comm-pid``, with the longest comm the pid shows (a kernel log cuts comms short
    where a trace does not); ``kernel log`` for lines of no task."""
    comm = pl.col("comm").sort_by(pl.col("comm").str.len_chars()).last().over("pid")
    return (
        pl.when(pl.col("pid").is_null())
        .then(pl.lit("kernel log"))
        .otherwise(pl.format("{}-{}", comm.fill_null("?"), pl.col("pid")))
    )


def _device_rows(spans: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Row numbers of the device lanes: (rows, the calls row of each device task)."""
    dev = spans.filter(pl.col("device").is_not_null() & (pl.col("kind") != "crash"))
    order = (
        dev.group_by("device")
        .agg(first=pl.col("start_ts").min())
        .with_columns(unknown=pl.col("device") == UNKNOWN_DEVICE)
        .sort("unknown", "first", "device")
        .with_row_index("d")
    )
    tasks = (
        dev.filter(~pl.col("kind").is_in(DMA_KINDS))
        .group_by("device", "task")
        .agg(first=pl.col("start_ts").min())
        .sort("device", "first", "task")
        .with_columns(t=pl.int_range(pl.len()).over("device"))
        .with_columns(
            t=pl.col("t").clip(0, MAX_TASK_ROWS - 1),
            shown=pl.when(pl.col("t") < MAX_TASK_ROWS - 1)
            .then(pl.col("task"))
            .otherwise(pl.lit("other tasks")),
        )
    )
    ntasks = tasks.group_by("device").agg(n=pl.col("t").max() + 1)
    sized = (
        order.join(ntasks, on="device", how="left")
        .with_columns(n=pl.col("n").fill_null(0))
        .with_columns(base=(2 * pl.col("n") + 1).cum_sum() - (2 * pl.col("n") + 1))
    )
    task_rows = tasks.join(sized.select("device", "base"), on="device").with_columns(
        row=(pl.col("base") + 2 * pl.col("t")).cast(pl.Int32)
    )
    label = (
        pl.when(pl.col("device") == UNKNOWN_DEVICE)
        .then(pl.lit("device unknown"))
        .otherwise(pl.col("device"))
    )
    call_rows = task_rows.unique(["device", "row"]).select(
        "row",
        lane="device",
        group=pl.lit("device"),
        sub=pl.lit("calls"),
        label=pl.format("{} · {}", label, pl.col("shown")),
    )
    lock_rows = call_rows.with_columns(
        row=pl.col("row") + 1, sub=pl.lit("locks"), label=pl.format("{} locks", pl.col("label"))
    )
    dma_rows = sized.select(
        row=(pl.col("base") + 2 * pl.col("n")).cast(pl.Int32),
        lane="device",
        group=pl.lit("device"),
        sub=pl.lit("dma"),
        label=pl.format("{} · DMA", label),
    )
    rows = pl.concat([call_rows, lock_rows, dma_rows]).sort("row")
    return rows, task_rows.select("device", "task", "row")


def _calls(spans: pl.DataFrame, task_rows: pl.DataFrame) -> pl.DataFrame:
    calls = spans.filter(
        pl.col("device").is_not_null() & ~pl.col("kind").is_in([*DMA_KINDS, "lock", "crash"])
    ).join(task_rows, on=["device", "task"], how="inner")
    if calls.is_empty():
        return pl.DataFrame(schema=SEGMENTS_SCHEMA)
    calls = calls.with_columns(depth=depth(calls, ["file", "device", "task"]))
    return calls.select(
        "row",
        "kind",
        "start_ts",
        "end_ts",
        "depth",
        "exact",
        label="func",
        hover=pl.concat_str(
            pl.format(
                "<b>{}</b> ({}) on {}<br>{}{}<br>CPU {} · {}",
                "func",
                "kind",
                "device",
                extent(pl.col("start_ts"), pl.col("end_ts")),
                pl.when(pl.col("exact"))
                .then(pl.lit(""))
                .otherwise(pl.lit(" (end not traced: bounded by the task's next event)")),
                pl.col("cpu").cast(pl.String).fill_null("?"),
                "task",
            ),
            pl.format(
                "<br>locks held throughout: {}",
                pl.when(pl.col("lockset").list.len() > 0)
                .then(pl.col("lockset").list.join(", "))
                .otherwise(pl.lit("none")),
            ),
            pl.format("<br>device {} ({})", "device_how", pl.col("device_why").fill_null("")),
            pl.format("<br>{}", pl.col("evidence").list.head(4).list.join("<br>")),
        ),
    )


def device_locks(spans: pl.DataFrame) -> pl.DataFrame:
    """The locks each task held while it worked on a device (``file``, ``device``,
    ``task``, ``start_ts``, ``end_ts``, ``lock``, ``implicit``, ``holder``, ``exact``,
    ``evidence``): its traced holds that overlap one of its calls on the device, with
    their real extent, and the locks the kernel era guarantees (``group->mutex``) over
    the outermost calls that hold them (``holder``), unless the trace shows that lock."""
    dev_calls = spans.filter(
        pl.col("device").is_not_null() & ~pl.col("kind").is_in(["lock", "crash"])
    )
    who = ["file", "device", "task"]
    traced = (
        spans.filter(pl.col("kind") == "lock")
        .select("file", "task", "start_ts", "end_ts", "lock", "evidence", "exact")
        .join(
            dev_calls.select("file", "task", "device", c_start="start_ts", c_end="end_ts"),
            on=["file", "task"],
        )
        .filter((pl.col("c_start") < pl.col("end_ts")) & (pl.col("start_ts") < pl.col("c_end")))
        .unique([*who, "start_ts", "lock"], maintain_order=True)
        .select(
            *who,
            "start_ts",
            "end_ts",
            "lock",
            implicit=pl.lit(False),
            holder=pl.lit(None, pl.String),
            exact="exact",
            evidence="evidence",
        )
    )
    implicit = (
        dev_calls.filter(~pl.col("kind").is_in(DMA_KINDS))
        .select(*who, "start_ts", "end_ts", "func", "lockset", "exact", "evidence")
        .explode("lockset")
        .drop_nulls("lockset")
        # Traced holds are named by address ("lock@0x..", "mutex@?"); the era's are not.
        .filter(
            ~pl.col("lockset").str.contains("@")
            & ~pl.col("lockset").is_in(traced["lock"].unique().implode())
        )
        .sort("start_ts")
        # One segment per outermost holder: nested calls hold it within their caller's.
        .filter(
            pl.col("start_ts")
            >= pl.col("end_ts").cum_max().shift(1).over(*who, "lockset").fill_null(-1)
        )
        .select(
            *who,
            "start_ts",
            "end_ts",
            lock="lockset",
            implicit=pl.lit(True),
            holder="func",
            exact="exact",
            evidence="evidence",
        )
    )
    return pl.concat([traced, implicit], how="vertical_relaxed")


def _locks(spans: pl.DataFrame, task_rows: pl.DataFrame) -> pl.DataFrame:
    """Lock rows: each device task's ``device_locks`` on the row under its calls."""
    locks = device_locks(spans).join(task_rows, on=["device", "task"], how="inner")
    times = extent(pl.col("start_ts"), pl.col("end_ts"))
    return locks.select(
        row=(pl.col("row") + 1).cast(pl.Int32),
        kind=pl.when("implicit").then(pl.lit("lock_implicit")).otherwise(pl.lit("lock")),
        start_ts="start_ts",
        end_ts="end_ts",
        depth=pl.lit(0, pl.Int32),
        exact="exact",
        label="lock",
        hover=pl.when("implicit")
        .then(
            pl.format(
                "<b>{}</b> (implicit: the kernel era holds it across {})<br>{} · {}",
                "lock",
                "holder",
                times,
                "task",
            )
        )
        .otherwise(
            pl.format(
                "<b>{}</b> held by {}<br>{}<br>{}",
                "lock",
                "task",
                times,
                pl.col("evidence").list.head(4).list.join("<br>"),
            )
        ),
    )


def _dma(
    spans: pl.DataFrame, dma_rows: pl.DataFrame, end: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Mapping lifetimes (segments) and RPCIT/map/unmap marks on each device's dma row."""
    rows = dma_rows.select("row", device="lane")
    dma = spans.filter(pl.col("kind").is_in(DMA_KINDS)).join(rows, on="device", how="inner")
    maps = dma.filter(pl.col("kind").is_in(MAP_KINDS) & pl.col("iova").is_not_null())
    unmaps = dma.filter(pl.col("kind").is_in(UNMAP_KINDS) & pl.col("iova").is_not_null())
    lifetimes = pl.DataFrame(schema=SEGMENTS_SCHEMA)
    if not maps.is_empty():
        ended = maps.sort("start_ts").join_asof(
            unmaps.select("file", "device", "iova", u_ts="start_ts").sort("u_ts"),
            left_on="start_ts",
            right_on="u_ts",
            by=["file", "device", "iova"],
            strategy="forward",
            check_sortedness=False,
        )
        lifetimes = ended.select(
            "row",
            kind=pl.lit("mapping"),
            start_ts="start_ts",
            end_ts=pl.col("u_ts").fill_null(end),
            depth=pl.lit(0, pl.Int32),
            exact=pl.col("u_ts").is_not_null(),
            label=hex_str(pl.col("iova")),
            hover=pl.format(
                "<b>mapping</b> iova {} size {} on {}<br>mapped {} s by {}<br>{}",
                hex_str(pl.col("iova")),
                hex_str(pl.col("size")).fill_null("?"),
                "device",
                sec(pl.col("start_ts")),
                "task",
                pl.when(pl.col("u_ts").is_null())
                .then(pl.lit("still mapped at the end of the trace"))
                .otherwise(pl.format("unmapped {} s", sec(pl.col("u_ts")))),
            ),
        )
    flushes = scoped(spans.lazy()).collect().join(rows, on="device", how="inner")
    failed = pl.col("ret").is_not_null() & (pl.col("ret") != 0)
    flush_marks = flushes.select(
        "row",
        kind=pl.when(failed).then(pl.lit("flush_failed")).otherwise(pl.format("flush_{}", "scope")),
        ts="start_ts",
        hover=pl.format(
            "<b>RPCIT</b> {} on {}<br>{} s · {} · by {}<br>iova {} range {}{}<br>{}",
            "scope",
            "device",
            sec(pl.col("start_ts")),
            dur_text(pl.col("start_ts"), pl.col("end_ts")),
            pl.col("caller").fill_null("?"),
            hex_str(pl.col("iova")).fill_null("?"),
            hex_str(pl.col("size")).fill_null("?"),
            pl.when(failed)
            .then(pl.format(" · failed ret={}", pl.col("ret")))
            .otherwise(pl.lit("")),
            pl.col("evidence").list.head(2).list.join("<br>"),
        ),
    )
    unmap_marks = dma.filter(pl.col("kind").is_in(UNMAP_KINDS)).select(
        "row",
        kind=pl.lit("unmap"),
        ts="start_ts",
        hover=pl.format(
            "<b>{}</b> iova {} size {} on {}<br>{} s · {}",
            "func",
            hex_str(pl.col("iova")).fill_null("?"),
            hex_str(pl.col("size")).fill_null("?"),
            "device",
            sec(pl.col("start_ts")),
            "task",
        ),
    )
    return lifetimes, pl.concat([flush_marks, unmap_marks], how="vertical_relaxed")


def _findings(
    result: CheckResult, device_rows: pl.DataFrame, span_rows: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Findings over the rows of the spans they involve (``span_rows``: ``ev``, the
    ``path:line`` a span starts at, and its ``row``), else over their device's whole
    lane (``device_rows``: ``device``, ``d_lo``, ``d_hi``)."""
    schema = {
        "row_lo": pl.Int32,
        "row_hi": pl.Int32,
        "start_ts": pl.Int64,
        "end_ts": pl.Int64,
        "rule": pl.String,
        "severity": pl.String,
        "status": pl.String,
        "kind": pl.String,
        "hover": pl.String,
        "key": pl.String,
    }
    kinds = {r.id: r.kind for r in result.ran}
    # Already narrowed by ``selection``; findings on a device with no lane are not drawn.
    found = result.findings.with_row_index("fid").join(device_rows, on="device", how="inner")
    if found.is_empty():
        return pl.DataFrame(schema=schema), {}
    within = pl.col("row").is_between("d_lo", "d_hi")
    involved = (
        found.select("fid", "d_lo", "d_hi", ev="evidence")
        .explode("ev")
        .join(span_rows, on="ev")
        .filter(within)
        .group_by("fid")
        .agg(i_lo=pl.col("row").min(), i_hi=pl.col("row").max())
    )
    found = (
        found.join(involved, on="fid", how="left")
        .with_columns(row_lo=pl.coalesce("i_lo", "d_lo"), row_hi=pl.coalesce("i_hi", "d_hi"))
        .sort("fid")
    )
    text = read_lines(evidence_pairs(found["evidence"]))
    rows, details = [], {}
    for f in found.iter_rows(named=True):  # one per finding: rules report few
        key = f"finding{f['fid']}"
        ev = with_text(f["evidence"] or [], text)
        details[key] = "\n".join(
            [
                f"{f['rule']} ({f['severity']}, {f['status']}) on {f['device']}",
                (f["message"] or ""),
                "",
                "evidence:",
                *ev,
            ]
        )
        shown = [html_text(x) for x in ev[:MAX_EVIDENCE]]
        if len(ev) > MAX_EVIDENCE:
            shown.append(f"... {len(ev) - MAX_EVIDENCE} more: click")
        hover = "<br>".join(
            [
                f"<b>{html_text(f['rule'])}</b> "
                f"({html_text(f['severity'])}, {html_text(f['status'])})",
                *wrap(html_text(f["message"] or "")),
                *shown,
            ]
        )
        rows.append(
            {
                "row_lo": f["row_lo"],
                "row_hi": f["row_hi"],
                "start_ts": f["ts"],
                "end_ts": f["ts"] + (f["dur"] or 0),
                "rule": f["rule"],
                "severity": f["severity"],
                "status": f["status"],
                "kind": kinds.get(f["rule"], "?"),
                "hover": hover,
                "key": key,
            }
        )
    return pl.DataFrame(rows, schema=schema), details


@dataclass
class Selection:
    """What a timeline or an export shows: the spans in the window (of the chosen
    devices, with the lock holds of the tasks that worked on them, and the crashes),
    each with its ``task`` label, and the rules' findings there."""

    timeline: Timeline
    spans: pl.DataFrame
    result: CheckResult
    window: tuple[int, int]


def selection(
    trace: Trace,
    *,
    devices: Iterable[str] = (),
    window: tuple[int | None, int | None] = (None, None),
    rule_dirs: Sequence[str] = (),
    era: EraChoice | None = None,
) -> Selection:
    """The timeline of ``trace`` and its findings, narrowed to ``devices`` and to the
    ``window`` (ns; None for the trace's own start or end). A device the window does not
    show is an error that lists the ones it does."""
    tl = timeline(trace.events, era, trace.table("crashes"))
    spans = tl.spans.collect().with_columns(task=task_label())
    result = evaluate(select(load_rules(tuple(Path(d) for d in rule_dirs)), ()), tl, trace.losses)
    lo, hi = span_window(spans, trace, window)
    spans = spans.filter((pl.col("end_ts") >= lo) & (pl.col("start_ts") <= hi))
    result.findings = result.findings.filter(
        (pl.col("ts") <= hi) & ((pl.col("ts") + pl.col("dur").fill_null(0)) >= lo)
    )
    wanted = list(devices)
    if wanted:
        seen = sorted(spans["device"].drop_nulls().unique().to_list())
        unknown = sorted(set(wanted) - set(seen))
        if unknown:
            from tracetool.errors import TraceToolError

            raise TraceToolError(
                f"--device {', '.join(unknown)}: no such device in the trace"
                f"{' within the window' if window != (None, None) else ''}; "
                f"devices seen: {', '.join(seen[:12]) or 'none'} (see `tracetool list devices`)"
            )
        tasks = spans.filter(pl.col("device").is_in(wanted)).select("file", "task").unique()
        # The tasks that worked on the devices keep their lock holds (which name no device).
        spans = spans.filter(
            pl.col("device").is_in(wanted)
            | ((pl.col("kind") == "lock") & pl.struct("file", "task").is_in(tasks.to_struct()))
            | (pl.col("kind") == "crash")
        )
        result.findings = result.findings.filter(pl.col("device").is_in(wanted))
    return Selection(tl, spans, result, (lo, hi))


def build(
    trace: Trace,
    *,
    devices: Iterable[str] = (),
    window: tuple[int | None, int | None] = (None, None),
    rule_dirs: Sequence[str] = (),
    era: EraChoice | None = None,
    max_detail: int = MAX_DETAIL,
) -> Lanes:
    """The lanes of ``trace`` (see the module doc), restricted to ``devices`` and to the
    ``window`` (ns; None for the trace's own start or end)."""
    chosen = selection(trace, devices=devices, window=window, rule_dirs=rule_dirs, era=era)
    tl, spans, result = chosen.timeline, chosen.spans, chosen.result
    lo, hi = chosen.window
    wanted = list(devices)
    shown = escape_frame(spans)
    dev_rows, task_rows = _device_rows(shown)
    calls = _calls(shown, task_rows)
    locks = _locks(shown, task_rows)
    dma_rows = dev_rows.filter(pl.col("sub") == "dma")
    lifetimes, dma_marks = _dma(shown, dma_rows, hi)
    # CPU lanes under the device lanes.
    events = trace.events.filter((pl.col("ts") >= lo) & (pl.col("ts") <= hi))
    if wanted:
        cpus_seen = spans["cpu"].drop_nulls().unique().sort().to_list()
    else:
        cpus_seen = (
            events.filter(pl.col("source") != "dmesg")
            .select(pl.col("cpu").drop_nulls().unique().sort())
            .collect()["cpu"]
            .to_list()
        )
    crash_cpus = (
        trace.table("crashes")
        .select(pl.col("cpu").drop_nulls().unique())
        .collect()["cpu"]
        .to_list()
    )
    sched = escape_frame(sched_segments(events, lo, hi)) if not wanted else pl.DataFrame()
    irqs = escape_frame(irq_segments(events, lo, hi)) if not wanted else pl.DataFrame()
    run = sched if not sched.is_empty() else cpu_calls(shown)
    cpus = sorted({*cpus_seen, *crash_cpus, *(run["cpu"].to_list() if not run.is_empty() else [])})
    irq_cpus = set(irqs["cpu"].to_list()) if not irqs.is_empty() else set()
    first = int(dev_rows["row"].max() + 1) if not dev_rows.is_empty() else 0  # type: ignore[operator]
    cpu_part = cpu_rows(cpus, irq_cpus, first)
    rows = pl.concat([dev_rows, cpu_part])
    run_row = {
        int(c[4:]): r for r, c, s in cpu_part.select("row", "lane", "sub").iter_rows() if s == "run"
    }
    irq_row = {
        int(c[4:]): r for r, c, s in cpu_part.select("row", "lane", "sub").iter_rows() if s == "irq"
    }
    cpu_parts = []
    for part, where in ((run, run_row), (irqs, irq_row)):
        if not part.is_empty():
            cpu_parts.append(
                part.with_columns(
                    row=pl.col("cpu").replace_strict(where, default=None, return_dtype=pl.Int32)
                )
                .drop_nulls("row")
                .select(*SEGMENTS_SCHEMA)
            )
    segments = pl.concat(
        [
            s.select([pl.col(c).cast(t) for c, t in SEGMENTS_SCHEMA.items()])
            for s in (calls, locks, lifetimes, *cpu_parts)
            if not s.is_empty()
        ]
        or [pl.DataFrame(schema=SEGMENTS_SCHEMA)]
    ).with_columns(pl.col("start_ts").clip(lo, hi), pl.col("end_ts").clip(lo, hi))
    marks = dma_marks.select([pl.col(c).cast(t) for c, t in MARKS_SCHEMA.items()])
    segments, marks, density, notes = aggregate(segments, marks, rows, lo, hi, max_detail)
    # Lanes carry the escaped device names; findings the raw ones.
    names = pl.DataFrame({"device": spans["device"], "lane": shown["device"]}).unique()
    device_rows = (
        dev_rows.group_by("lane")
        .agg(d_lo=pl.col("row").min(), d_hi=pl.col("row").max())
        .join(names, on="lane")
        .drop("lane")
    )
    starts = spans.select(ev=pl.format("{}:{}", "file", "start_line")).with_columns(
        shown.select("device", "task")
    )
    span_rows = starts.join(task_rows, on=["device", "task"]).select("ev", "row").unique()
    findings, f_details = _findings(result, device_rows, span_rows)
    crashes, c_details = crash_marks(trace, run_row, lo, hi)
    lat, latency_of = latency(spans, lo, hi)
    return Lanes(
        rows=rows,
        segments=segments,
        marks=marks,
        findings=findings,
        crashes=crashes,
        losses=loss_windows(trace, lo, hi),
        density=density,
        flush_rate=flush_rate(spans, lo, hi),
        latency=lat,
        latency_of=latency_of,
        details=f_details | c_details,
        window=(lo, hi),
        aggregated=notes,
        result=result,
        timeline=tl,
    )
