"""CPU lanes of a timeline: who ran (``sched_switch``), interrupt handlers, and the
crash reports with the last events of the crashing CPU and task."""

from __future__ import annotations

from typing import Any

import polars as pl

from tracetool.events import Trace
from tracetool.hover import dur_text, extent, html_text, read_lines, sec
from tracetool.lane_tracks import depth

CRASH_CONTEXT = 20  # events of the crashing CPU and task shown with a report


def cpu_rows(cpus: list[int], with_irq: set[int], first: int) -> pl.DataFrame:
    out: list[dict[str, object]] = []
    row = first
    for cpu in cpus:
        out.append(
            {"row": row, "lane": f"CPU {cpu}", "group": "cpu", "sub": "run", "label": f"CPU {cpu}"}
        )
        row += 1
        if cpu in with_irq:
            out.append(
                {
                    "row": row,
                    "lane": f"CPU {cpu}",
                    "group": "cpu",
                    "sub": "irq",
                    "label": f"CPU {cpu} irq",
                }
            )
            row += 1
    return pl.DataFrame(
        out,
        schema={
            "row": pl.Int32,
            "lane": pl.String,
            "group": pl.String,
            "sub": pl.String,
            "label": pl.String,
        },
    )


def _arg(name: str, events: pl.LazyFrame) -> pl.Expr:
    fields = {f.name for f in events.collect_schema()["args"].fields}  # type: ignore[attr-defined]
    return pl.col("args").struct.field(name) if name in fields else pl.lit(None)


def sched_segments(events: pl.LazyFrame, lo: int, hi: int) -> pl.DataFrame:
    """Who ran on each CPU: from each ``sched_switch`` to the CPU's next one."""
    sw = (
        events.filter((pl.col("event") == "sched_switch") & pl.col("cpu").is_not_null())
        .filter(pl.col("ts") <= hi)
        .select(
            "cpu",
            "ts",
            "file",
            "line",
            comm=_arg("next_comm", events).cast(pl.String),
            pid=_arg("next_pid", events).cast(pl.Int64),
        )
        .sort("cpu", "ts")
        .with_columns(end_ts=pl.col("ts").shift(-1).over("cpu").fill_null(hi))
        .filter((pl.col("end_ts") >= lo) & (pl.col("pid") != 0))
        .collect()
    )
    return sw.select(
        "cpu",
        kind=pl.lit("running"),
        start_ts="ts",
        end_ts="end_ts",
        depth=pl.lit(0, pl.Int32),
        exact=pl.lit(True),
        label=pl.format("{}-{}", "comm", "pid"),
        hover=pl.format(
            "<b>{}-{}</b> runs on CPU {}<br>{}<br>{}:{}",
            "comm",
            "pid",
            "cpu",
            extent(pl.col("ts"), pl.col("end_ts")),
            "file",
            "line",
        ),
    )


IRQ_PAIRS = (
    ("irq_handler_entry", "irq_handler_exit", "irq"),
    ("softirq_entry", "softirq_exit", "vec"),
)


def irq_segments(events: pl.LazyFrame, lo: int, hi: int) -> pl.DataFrame:
    """Interrupt handlers per CPU: each entry to the CPU's next exit of the same kind."""
    parts = []
    for entry, exit_, key in IRQ_PAIRS:
        ev = events.filter(
            pl.col("event").is_in([entry, exit_])
            & pl.col("cpu").is_not_null()
            & (pl.col("ts") >= lo - 1)
            & (pl.col("ts") <= hi)
        ).select("cpu", "ts", "event", "file", "line", "body")
        starts = ev.filter(pl.col("event") == entry).sort("ts").collect()
        ends = ev.filter(pl.col("event") == exit_).select("cpu", x_ts="ts").sort("x_ts").collect()
        if starts.is_empty():
            continue
        paired = starts.join_asof(
            ends,
            left_on="ts",
            right_on="x_ts",
            by="cpu",
            strategy="forward",
            check_sortedness=False,
        )
        parts.append(
            paired.select(
                "cpu",
                kind=pl.lit("softirq" if key == "vec" else "irq"),
                start_ts="ts",
                end_ts=pl.col("x_ts").fill_null(pl.col("ts")),
                depth=pl.lit(0, pl.Int32),
                exact=pl.col("x_ts").is_not_null(),
                label="body",
                hover=pl.format(
                    "<b>{}</b> {}<br>CPU {} · {} s · {}<br>{}:{}",
                    pl.lit(entry),
                    "body",
                    "cpu",
                    sec(pl.col("ts")),
                    dur_text(pl.col("ts"), pl.col("x_ts").fill_null(pl.col("ts"))),
                    "file",
                    "line",
                ),
            )
        )
    return pl.concat(parts) if parts else pl.DataFrame()


def cpu_calls(spans: pl.DataFrame) -> pl.DataFrame:
    """The calls that ran on each CPU, for a trace without scheduler events."""
    calls = spans.filter(pl.col("cpu").is_not_null() & ~pl.col("kind").is_in(["lock", "crash"]))
    if calls.is_empty():
        return pl.DataFrame()
    calls = calls.with_columns(depth=depth(calls, ["file", "cpu"]))
    return calls.select(
        "cpu",
        "kind",
        "start_ts",
        "end_ts",
        "depth",
        "exact",
        label="func",
        hover=pl.format(
            "<b>{}</b> on CPU {} by {}<br>{}<br>device {}",
            "func",
            "cpu",
            "task",
            extent(pl.col("start_ts"), pl.col("end_ts")),
            pl.col("device").fill_null("?"),
        ),
    )


def _context(events: pl.LazyFrame, crash: dict[str, Any], n: int) -> list[str]:
    """The last ``n`` events of the crashing CPU and of the crashing task before it,
    from every input but the log that holds the report."""
    ts = crash["ts"]
    before = events.filter((pl.col("ts") <= ts) & (pl.col("source") != "dmesg"))
    out: list[str] = []
    for what, cond in (
        ("CPU", pl.col("cpu") == crash["cpu"]),
        ("task", pl.col("pid") == crash["pid"]),
    ):
        if crash.get("cpu" if what == "CPU" else "pid") is None:
            continue
        last = (
            before.filter(cond)
            .sort("ts")
            .tail(n)
            .select(
                pl.format(
                    "{} {}-{} [{}] {}: {}: {}",
                    sec(pl.col("ts")),
                    pl.col("comm").fill_null("?"),
                    pl.col("pid").fill_null(-1),
                    pl.col("cpu").fill_null(-1),
                    pl.format("{}:{}", "file", "line"),
                    "event",
                    pl.col("body").fill_null(""),
                )
            )
            .collect()
            .to_series()
            .to_list()
        )
        label = (
            f"CPU {crash['cpu']}" if what == "CPU" else f"task {crash.get('comm')}-{crash['pid']}"
        )
        out.append(f"-- the last {len(last)} traced events of {label} before it --")
        out.extend(last or ["(none traced)"])
    return out


def crash_marks(
    trace: Trace, cpu_row: dict[int, int], lo: int, hi: int
) -> tuple[pl.DataFrame, dict[str, str]]:
    """A mark per crash report in the window, on the run row of the CPU that printed it,
    and the details text of each: the report's lines and what ran before it."""
    reports = (
        trace.table("crashes")
        .filter(pl.col("ts").is_not_null() & (pl.col("ts") >= lo) & (pl.col("ts") <= hi))
        .collect()
        .with_row_index("cid")
    )
    schema = {
        "row": pl.Int32,
        "ts": pl.Int64,
        "title": pl.String,
        "hover": pl.String,
        "key": pl.String,
    }
    if reports.is_empty():
        return pl.DataFrame(schema=schema), {}
    want = (
        reports.select("file", line="lines")
        .explode("line")
        .with_columns(pl.col("line").cast(pl.Int64))
    )
    text = read_lines(want)
    details: dict[str, str] = {}
    rows = []
    for rep in reports.iter_rows(named=True):  # one per crash report: a handful
        key = f"crash{rep['cid']}"
        lines = [f"{rep['file']}:{no}  {text.get((rep['file'], no), '')}" for no in rep["lines"]]
        head = [
            f"{rep['title']}",
            f"{rep['file']}:{rep['line']} · CPU {rep['cpu']} · {rep['comm']}-{rep['pid']}"
            f" · kernel {rep['release'] or '?'} · at {rep['ts'] / 1e9:.9f} s (aligned)",
        ]
        if rep["location"]:
            head.append(f"source: {rep['location']}")
        details[key] = "\n".join(
            [*head, "", *lines, "", *_context(trace.events, rep, CRASH_CONTEXT)]
        )
        cpu = rep["cpu"]
        hover = "<br>".join(
            [
                f"<b>{html_text(rep['title'])}</b>",
                html_text(head[1]),
                "click for the report and what ran before it",
            ]
        )
        if cpu is not None and cpu in cpu_row:
            rows.append(
                {
                    "row": cpu_row[cpu],
                    "ts": rep["ts"],
                    "title": rep["title"],
                    "hover": hover,
                    "key": key,
                }
            )
    return pl.DataFrame(rows, schema=schema), details
