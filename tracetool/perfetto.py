"""``tracetool export --perfetto``: the timeline as Chrome trace-event JSON, which
ui.perfetto.dev and chrome://tracing open.

Layout (the format's processes and threads are our tracks):

* process "CPUs": a thread per CPU with the running task (``sched_switch``) or, without
  scheduler events, the calls that ran there; a thread per CPU for interrupt handlers;
  WARN/Oops instants on the CPU that printed them; loss windows on a "lost events" thread;
* a process per device: a thread per task with its calls as complete (``X``) events,
  nested as they ran, and a "locks" thread per task (traced holds and the era's implicit
  locks); findings are process-wide instants carrying the message and evidence;
* every RPCIT is also an instant on its device's "RPCITs" track, named by its scope
  (global, ranged, failed);
* process "RPCIT": the RPCIT rate (global and ranged) as a counter.

Times are µs (the format's unit) with ns precision. Complete events on one thread must
nest; an end that a trace bounded (``exact=false``) is clipped into its caller's, and
the event says so in ``args``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from tracetool.devices import hex_str
from tracetool.events import Trace
from tracetool.kernel import EraChoice
from tracetool.lanes import (
    device_locks,
    flush_rate,
    irq_segments,
    sched_segments,
    selection,
    task_label,
)
from tracetool.stats import scoped

CPU_PID = 1
RPCIT_PID = 2
FIRST_DEVICE_PID = 10
CPU_TID = 1_000_000  # + cpu; irq threads at + 2 * CPU_TID
LOSS_TID = 3_000_000
TRACK_TID = 10_000  # CPU call tracks of the second, third... input
FLUSH_TID = 4_000_000  # + device pid: a device's RPCIT instants
TASK_TID = 10_000  # + task index, locks at + LOCK_TID
LOCK_TID = 500_000


def _us(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Float64) / 1000.0


def nest(spans: pl.DataFrame, by: Sequence[str]) -> pl.DataFrame:
    """``spans`` with each end clipped into the end of the innermost span still open at
    its start on the same track (``by``), so complete events nest; ``clipped`` says which
    were. Proper nesting is what one task's calls have; a bounded end, or two inputs
    recording the same calls, can break it.

    A stack sweep over the spans (not the events) of each track, in start order: the one
    step here with no vectorised form, linear and over plain integers."""
    if spans.is_empty():
        return spans.with_columns(clipped=pl.lit(False))
    ordered = spans.with_row_index("_i").sort(
        [*by, "start_ts", "end_ts"], descending=[*(False,) * len(by), False, True]
    )
    track = ordered.select(pl.struct(*by).rank("dense").alias("t"))["t"].to_list()
    starts = ordered["start_ts"].to_list()
    ends = ordered["end_ts"].to_list()
    clipped = [False] * len(ends)
    stack: list[int] = []
    current = None
    for k, (t, a) in enumerate(zip(track, starts, strict=True)):
        if t != current:
            stack, current = [], t
        while stack and stack[-1] <= a:
            stack.pop()
        if stack and ends[k] > stack[-1]:
            ends[k], clipped[k] = stack[-1], True
        stack.append(ends[k])
    return (
        ordered.with_columns(
            end_ts=pl.Series(ends, dtype=pl.Int64), clipped=pl.Series(clipped, dtype=pl.Boolean)
        )
        .sort("_i")
        .drop("_i")
    )


def _meta(
    kind: str, pid: int, name: str, tid: int | None = None, sort: int | None = None
) -> list[dict[str, Any]]:
    """Metadata events naming (and ordering) a process or, with ``tid``, a thread."""
    where: dict[str, Any] = {"pid": pid} if tid is None else {"pid": pid, "tid": tid}
    out = [{"ph": "M", "name": kind, "args": {"name": name}, **where}]
    if sort is not None:
        key = "thread_sort_index" if tid is not None else "process_sort_index"
        out.append({"ph": "M", "name": key, "args": {"sort_index": sort}, **where})
    return out


def _complete(df: pl.DataFrame, args: Sequence[str]) -> list[dict[str, Any]]:
    """X events of ``df`` (pid tid name cat start_ts end_ts and ``args`` columns)."""
    if df.is_empty():
        return []
    out = df.sort(
        "pid", "tid", "start_ts", pl.col("end_ts"), descending=[False, False, False, True]
    ).select(
        ph=pl.lit("X"),
        name="name",
        cat="cat",
        ts=_us("start_ts"),
        dur=(_us("end_ts") - _us("start_ts")).clip(0),
        pid="pid",
        tid="tid",
        args=pl.struct(*args),
    )
    return out.to_dicts()


def export(
    trace: Trace,
    *,
    devices: Iterable[str] = (),
    window: tuple[int | None, int | None] = (None, None),
    rule_dirs: Sequence[str] = (),
    era: EraChoice | None = None,
) -> dict[str, Any]:
    """The Chrome trace-event document of ``trace`` (see the module doc)."""
    chosen = selection(trace, devices=devices, window=window, rule_dirs=rule_dirs, era=era)
    tl, spans, findings = chosen.timeline, chosen.spans, chosen.result.findings
    lo, hi = chosen.window
    # Two inputs may record the same calls (a trace and the ftrace dump in a kernel
    # log): each input gets its own tracks, so the copies do not interleave.
    names = spans.select(pl.col("file").unique().sort())["file"].to_list()
    track = {f: i for i, f in enumerate(names)} if len(names) > 1 else {}
    source = pl.format(" ({})", pl.col("file").str.split("/").list.last())
    spans = spans.with_columns(
        task=task_label() + (source if track else pl.lit("")),
        track=pl.col("file").replace_strict(track, default=0, return_dtype=pl.Int64),
    )
    events: list[dict[str, Any]] = []
    events += _meta("process_name", CPU_PID, "CPUs", sort=0)
    events += _meta("process_name", RPCIT_PID, "RPCIT", sort=1)
    # Devices and their tasks.
    dev = spans.filter(pl.col("device").is_not_null() & ~pl.col("kind").is_in(["lock", "crash"]))
    order = dev.group_by("device").agg(first=pl.col("start_ts").min()).sort("first", "device")
    dev_pid = {d: FIRST_DEVICE_PID + i for i, d in enumerate(order["device"].to_list())}
    tasks = (
        dev.group_by("device", "task")
        .agg(first=pl.col("start_ts").min())
        .sort("first", "device", "task")
    )
    task_tid: dict[tuple[str, str], int] = {}
    for i, (d, t) in enumerate(tasks.select("device", "task").iter_rows()):
        task_tid[(d, t)] = TASK_TID + i
    for d, pid in dev_pid.items():
        events += _meta("process_name", pid, f"device {d}", sort=pid)
    for (d, t), tid in task_tid.items():
        events += _meta("thread_name", dev_pid[d], t, tid=tid, sort=tid)
        events += _meta(
            "thread_name", dev_pid[d], f"{t} locks", tid=tid + LOCK_TID, sort=tid + LOCK_TID
        )
    keyed = pl.DataFrame(
        {
            "device": [d for d, _ in task_tid],
            "task": [t for _, t in task_tid],
            "pid_": [dev_pid[d] for d, _ in task_tid],
            "tid": list(task_tid.values()),
        },
        schema={"device": pl.String, "task": pl.String, "pid_": pl.Int64, "tid": pl.Int64},
    )
    calls = nest(dev.join(keyed, on=["device", "task"]), ["pid_", "tid"])
    common = ["kind", "device", "task", "exact", "clipped", "evidence"]
    events += _complete(
        calls.with_columns(
            pid="pid_",
            name="func",
            cat="kind",
            cpu="cpu",
            locks=pl.col("lockset"),
            device_how="device_how",
        ),
        [*common, "cpu", "locks", "device_how"],
    )
    # The locks those tasks held on their devices (traced holds; the era's implicit ones).
    locks = (
        device_locks(spans)
        .join(keyed, on=["device", "task"])
        .select(
            "device",
            "task",
            "start_ts",
            "end_ts",
            "evidence",
            "pid_",
            "implicit",
            "exact",
            tid=pl.col("tid") + LOCK_TID,
            name="lock",
            cat=pl.lit("lock"),
        )
    )
    locks = nest(locks, ["pid_", "tid"])
    events += _complete(
        locks.with_columns(pid="pid_"),
        ["device", "task", "implicit", "exact", "clipped", "evidence"],
    )
    # CPUs.
    sched = sched_segments(trace.events, lo, hi)
    cpu_work = sched if not sched.is_empty() else _cpu_calls(spans)
    irqs = irq_segments(trace.events, lo, hi)
    cpus = sorted(
        {
            *(cpu_work["cpu"].to_list() if not cpu_work.is_empty() else []),
            *trace.table("crashes").select(pl.col("cpu").drop_nulls()).collect()["cpu"].to_list(),
        }
    )
    short = {i: f.rsplit("/", 1)[-1] for f, i in track.items()}
    lanes = {(cpu, 0) for cpu in cpus}
    if not cpu_work.is_empty() and "track" in cpu_work.columns:
        lanes |= set(cpu_work.select("cpu", "track").unique().iter_rows())
    for cpu, t in sorted(lanes):
        label = f"CPU {cpu}" + (
            f" ({short[t]})" if t in short and "track" in cpu_work.columns else ""
        )
        events += _meta(
            "thread_name", CPU_PID, label, tid=CPU_TID + cpu + TRACK_TID * t, sort=2 * cpu
        )
    if not irqs.is_empty():
        for cpu in sorted(set(irqs["cpu"].to_list())):
            events += _meta(
                "thread_name", CPU_PID, f"CPU {cpu} irq", tid=2 * CPU_TID + cpu, sort=2 * cpu + 1
            )
    if not cpu_work.is_empty():
        lane = pl.col("track") * TRACK_TID if "track" in cpu_work.columns else pl.lit(0)
        work = nest(
            cpu_work.with_columns(pid=pl.lit(CPU_PID), tid=CPU_TID + pl.col("cpu") + lane),
            ["pid", "tid"],
        )
        events += _complete(
            work.with_columns(name="label", cat="kind"), ["cpu", "exact", "clipped"]
        )
    if not irqs.is_empty():
        work = nest(
            irqs.with_columns(pid=pl.lit(CPU_PID), tid=2 * CPU_TID + pl.col("cpu")), ["pid", "tid"]
        )
        events += _complete(
            work.with_columns(name="label", cat="kind"), ["cpu", "exact", "clipped"]
        )
    events += _crashes(trace, lo, hi)
    events += _losses(trace, lo, hi)
    events += _findings(findings, dev_pid)
    events += _flushes(spans, dev_pid)
    events += _rate(spans, lo, hi)
    return {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "generator": "tracetool",
            "inputs": [i.file for i in trace.inputs],
            "eras": {f: e.label() for f, e in tl.eras.items()},
            "window_ns": [lo, hi],
        },
    }


def _cpu_calls(spans: pl.DataFrame) -> pl.DataFrame:
    calls = spans.filter(pl.col("cpu").is_not_null() & ~pl.col("kind").is_in(["lock", "crash"]))
    return calls.select("cpu", "track", "kind", "start_ts", "end_ts", "exact", label="func")


def _crashes(trace: Trace, lo: int, hi: int) -> list[dict[str, Any]]:
    reports = (
        trace.table("crashes")
        .filter(pl.col("ts").is_not_null() & (pl.col("ts") >= lo) & (pl.col("ts") <= hi))
        .collect()
    )
    return reports.select(
        ph=pl.lit("i"),
        s=pl.lit("t"),
        name="title",
        cat=pl.lit("crash"),
        ts=_us("ts"),
        pid=pl.lit(CPU_PID),
        tid=CPU_TID + pl.col("cpu").fill_null(0),
        args=pl.struct(
            "kind",
            "signature",
            "comm",
            "pid",
            "release",
            "location",
            "guilty",
            where=pl.format("{}:{}", "file", "line"),
        ),
    ).to_dicts()


def _losses(trace: Trace, lo: int, hi: int) -> list[dict[str, Any]]:
    losses = trace.losses.collect()
    if losses.is_empty():
        return []
    out = _meta("thread_name", CPU_PID, "lost events", tid=LOSS_TID, sort=10_000)
    rows = losses.select(
        ph=pl.lit("X"),
        name=pl.format("lost events (CPU {})", pl.col("cpu").cast(pl.String).fill_null("?")),
        cat=pl.lit("loss"),
        ts=pl.col("start_ts").fill_null(lo).clip(lo, hi).cast(pl.Float64) / 1000.0,
        dur=(
            pl.col("end_ts").fill_null(hi).clip(lo, hi)
            - pl.col("start_ts").fill_null(lo).clip(lo, hi)
        )
        .clip(0)
        .cast(pl.Float64)
        / 1000.0,
        pid=pl.lit(CPU_PID),
        tid=pl.lit(LOSS_TID),
        args=pl.struct("cpu", "lost", "marker", where=pl.format("{}:{}", "file", "line")),
    ).sort("ts")
    # Complete events on one thread must nest: overlapping windows are chained instead.
    rows = rows.with_columns(
        dur=pl.min_horizontal(
            "dur", (pl.col("ts").shift(-1) - pl.col("ts")).fill_null(pl.col("dur"))
        )
    )
    return out + rows.to_dicts()


def _findings(findings: pl.DataFrame, dev_pid: dict[str, int]) -> list[dict[str, Any]]:
    known = findings.filter(pl.col("device").is_in(list(dev_pid)))
    return known.select(
        ph=pl.lit("i"),
        s=pl.lit("p"),
        name=pl.format("{}: {}", "rule", "severity"),
        cat=pl.lit("finding"),
        ts=_us("ts"),
        pid=pl.col("device").replace_strict(dev_pid, return_dtype=pl.Int64),
        tid=pl.col("device").replace_strict(dev_pid, return_dtype=pl.Int64),
        args=pl.struct("rule", "severity", "status", "message", "evidence", dur_ns="dur"),
    ).to_dicts()


def _flushes(spans: pl.DataFrame, dev_pid: dict[str, int]) -> list[dict[str, Any]]:
    """Every RPCIT as an instant on its device's "RPCITs" track, named by its scope."""
    flushes = scoped(spans.lazy()).collect().filter(pl.col("device").is_in(list(dev_pid)))
    if flushes.is_empty():
        return []
    out: list[dict[str, Any]] = []
    for device in flushes["device"].unique().sort().to_list():
        pid = dev_pid[device]
        out += _meta("thread_name", pid, "RPCITs", tid=FLUSH_TID + pid, sort=FLUSH_TID)
    failed = pl.col("ret").is_not_null() & (pl.col("ret") != 0)
    owner = pl.col("device").replace_strict(dev_pid, return_dtype=pl.Int64)
    return (
        out
        + flushes.select(
            ph=pl.lit("i"),
            s=pl.lit("t"),
            name=pl.format("RPCIT {}", pl.when(failed).then(pl.lit("failed")).otherwise("scope")),
            cat=pl.lit("rpcit"),
            ts=_us("start_ts"),
            pid=owner,
            tid=FLUSH_TID + owner,
            args=pl.struct(
                "scope",
                "caller",
                "ret",
                iova=hex_str(pl.col("iova")),
                size=hex_str(pl.col("size")),
                latency_ns=pl.col("end_ts") - pl.col("start_ts"),
                where=pl.col("evidence").list.first(),
            ),
        ).to_dicts()
    )


def _rate(spans: pl.DataFrame, lo: int, hi: int) -> list[dict[str, Any]]:
    rate = flush_rate(spans, lo, hi)
    if rate.is_empty() or not rate["count"].sum():
        return []
    wide = rate.pivot(on="scope", index="start_ts", values="per_s").fill_null(0.0).sort("start_ts")
    scopes = [c for c in ("global", "ranged") if c in wide.columns]
    return wide.select(
        ph=pl.lit("C"),
        name=pl.lit("RPCITs per second"),
        ts=_us("start_ts"),
        pid=pl.lit(RPCIT_PID),
        args=pl.struct(*scopes),
    ).to_dicts()
