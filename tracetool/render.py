"""Plain-text renderings for the terminal: tables that fit 80 columns, accounting lines."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from tracetool.devices import hex_str
from tracetool.events import ACCOUNTING_KINDS, Trace

if TYPE_CHECKING:
    from tracetool.diff import Comparison


def _cell(value: object) -> str:
    if value is None:
        return ""
    return str(value).replace("\n", "⏎")


def table(
    df: pl.DataFrame,
    width: int | None = None,
    flex: str | None = None,
    caps: dict[str, int] | None = None,
) -> str:
    """A left-aligned table of ``df`` no wider than ``width`` (default: the terminal, at
    most 80 when not a terminal). The ``flex`` column (default: the last) is truncated
    with ``…`` to make it fit; ``caps`` limits other columns' widths the same way."""
    width = width or min(shutil.get_terminal_size((80, 24)).columns, 200)
    cols = df.columns
    rows = [[_cell(v) for v in row] for row in df.iter_rows()]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    for i, c in enumerate(cols):
        widths[i] = min(widths[i], max(len(c), (caps or {}).get(c, widths[i])))
    flex_i = cols.index(flex) if flex in cols else len(cols) - 1
    fixed = sum(w for i, w in enumerate(widths) if i != flex_i) + 2 * (len(cols) - 1)
    widths[flex_i] = max(8, min(widths[flex_i], width - fixed))

    def fmt(values: Sequence[str]) -> str:
        out = []
        for i, v in enumerate(values):
            w = widths[i]
            v = v if len(v) <= w else v[: w - 1] + "…"
            out.append(v.ljust(w) if i < len(values) - 1 else v)
        return "  ".join(out).rstrip()

    lines = [fmt(cols), fmt(["-" * w for w in widths])]
    lines.extend(fmt(r) for r in rows)
    return "\n".join(lines)


def seconds(ts: pl.Expr, digits: int = 6) -> pl.Expr:
    """Integer ns as ``secs.frac`` text with ``digits`` fraction digits; empty when null."""
    frac = (ts % 1_000_000_000).cast(pl.String).str.zfill(9).str.slice(0, digits)
    return (
        pl.when(ts.is_null())
        .then(pl.lit(""))
        .otherwise(pl.format("{}.{}", ts // 1_000_000_000, frac))
    )


def duration_text(ns: pl.Expr) -> pl.Expr:
    """A duration in ns as text in the unit that suits it: ``850.0 ns``, ``12.4 µs``,
    ``3.2 ms``, ``18.9 s`` (at most three decimals).

    Computed arithmetically with one final format: a chain of when/then over formatted
    strings can panic polars' streaming engine on filtered frames."""
    unit = (
        (ns >= 1_000).cast(pl.Int32)
        + (ns >= 1_000_000).cast(pl.Int32)
        + (ns >= 1_000_000_000).cast(pl.Int32)
    )
    scale = unit.replace_strict([0, 1, 2, 3], [1.0, 1e3, 1e6, 1e9], return_dtype=pl.Float64)
    name = unit.replace_strict([0, 1, 2, 3], ["ns", "µs", "ms", "s"], return_dtype=pl.String)
    return pl.format("{} {}", (ns.cast(pl.Float64) / scale).round(3), name)


def events_preview(events: pl.DataFrame, files: bool = False) -> pl.DataFrame:
    """The columns a person scans first: ``ts`` as seconds text (µs digits unless the
    input had ns), ``comm-pid`` and, for stack records, the frames; with ``files``,
    the line is ``file:line`` (inputs merged on one clock)."""
    ts = pl.col("ts")
    ns_digits = 9 if events.filter((ts % 1000) != 0).height else 6
    frac = (ts % 1_000_000_000).cast(pl.String).str.zfill(9).str.slice(0, ns_digits)
    frames = pl.coalesce("stack", "ustack")
    line = (
        pl.format("{}:{}", pl.col("file").str.split("/").list.last(), "line")
        if files
        else pl.col("line")
    )
    return events.select(
        line.alias("line"),
        ts=pl.when(ts.is_null())
        .then(pl.lit(""))
        .otherwise(pl.format("{}.{}", ts // 1_000_000_000, frac)),
        cpu=pl.col("cpu"),
        task=pl.format("{}-{}", "comm", "pid"),
        event=pl.col("event"),
        body=pl.when(frames.is_not_null())
        .then(pl.format("[{} frames] {}", frames.list.len(), frames.list.join(" <- ")))
        .otherwise(pl.col("body")),
    )


def losses_summary(losses: pl.DataFrame) -> list[str]:
    """``path:line: CPU n lost m events between t0 and t1`` per loss window."""
    out = []
    for r in losses.iter_rows(named=True):
        cpu = "all CPUs" if r["cpu"] is None else f"CPU {r['cpu']}"
        count = "events" if r["lost"] is None else f"{r['lost']} events"
        start = "the start" if r["start_ts"] is None else f"{r['start_ts'] / 1e9:.6f}"
        end = "the end" if r["end_ts"] is None else f"{r['end_ts'] / 1e9:.6f}"
        out.append(
            f"{r['file']}:{r['line']}: {cpu} lost {count} between {start} and {end} ({r['marker']})"
        )
    return out


_CLOCK_NOTES = {
    "counter": "; timestamps are raw clock counts (counter/uptime/x86-tsc), not ns",
    "none": "; no timestamps in this input (nocontext-info, or function_graph without abstime)",
    "relative-us": "; latency format: timestamps are µs since the buffer was reset, not since boot",
    "relative-counter": "; latency format: timestamps are raw counts since the buffer was reset",
    "wallclock": "; wall-clock timestamps (ns since the epoch), not time since boot",
    "wallclock-no-year": "; syslog timestamps carry no year: ns since 1 January of that year",
}


def accounting(trace: Trace) -> list[str]:
    """One line per input: how every line was accounted for."""
    out = []
    for info in trace.inputs:
        parts = ", ".join(f"{info.counts.get(k, 0)} {k}" for k in ACCOUNTING_KINDS)
        status = "all lines accounted" if info.accounted() else "ACCOUNTING MISMATCH"
        cached = " (from cache)" if info.cached else ""
        clock = _CLOCK_NOTES.get(str(info.meta.get("timestamps")), "")
        out.append(
            f"{info.file}: {info.format}, {info.lines} lines: {parts}; {status}{cached}{clock}"
        )
    return out


def diagnostics_summary(diagnostics: pl.DataFrame, limit: int = 5) -> list[str]:
    """``path:line: reason`` for the first few diagnostics, and a count of the rest."""
    out = [
        f"{r['file']}:{r['line']}: {r['reason']}: {_cell(r['text'])[:100]}"
        for r in diagnostics.head(limit).iter_rows(named=True)
    ]
    if diagnostics.height > limit:
        out.append(
            f"... and {diagnostics.height - limit} more (see `tracetool parse --diagnostics`)"
        )
    return out


def crashes_text(crashes: pl.DataFrame) -> list[str]:
    """One block per crash report, in input order: where and when, CPU and task, the
    title, the guilty frame and the WARN's source line, the signature when it differs
    from the title, and whether the report is cut off or lacks parts."""
    out: list[str] = []
    rows = crashes.sort("file", "line").with_columns(when=seconds(pl.col("ts")))
    for r in rows.iter_rows(named=True):
        head = [f"{r['file']}:{r['line']}-{r['end_line']}"]
        if r["when"]:
            head.append(r["when"])
        if r["cpu"] is not None:
            head.append(f"CPU {r['cpu']}")
        if r["pid"] is not None:
            head.append(f"{r['comm'] or '?'}-{r['pid']}")
        if r["corrupted"]:
            head.append("[corrupted]")
        out.append("  ".join(head))
        out.append(f"  {r['title']}")
        detail = [f"guilty: {r['guilty'] or '-'}"]
        if r["location"]:
            detail.append(f"at {r['location']}")
        detail.append(f"{len(r['frames'])} frames")
        if r["tainted"]:
            detail.append(f"tainted {' '.join(r['tainted'].split())}")
        out.append("  " + ", ".join(detail))
        if r["signature"] != r["title"]:
            out.append(f"  signature: {r['signature']}")
        if "sources" in r:  # symbolized: every frame with its source line
            out.extend(_frame_lines(r["frames"], r["sources"] or []))
    return out


def _frame_lines(frames: list[dict[str, Any]], sources: list[dict[str, Any] | None]) -> list[str]:
    """``    func+0x1a/0x80 [module]  file:line (inlined: ...)``, unreliable frames in
    parentheses, as the report printed them."""
    out = []
    for frame, src in zip(frames, [*sources, *[None] * len(frames)], strict=False):
        name = frame["func"] or (f"{frame['addr']:#x}" if frame["addr"] is not None else "?")
        if frame["off"] is not None:
            name += f"+{frame['off']:#x}"
            if frame["size"] is not None:
                name += f"/{frame['size']:#x}"
        if frame["module"]:
            name += f" [{frame['module']}]"
        if frame["reliable"] is False:
            name = f"({name})"
        where = ""
        if src and src["file"]:
            where = f"  {src['file']}:{src['line']}"
            if src["inlined"]:
                where += f" (inlined: {' <- '.join(src['inlined'])})"
        out.append(f"    {name}{where}")
    return out


def dumps_summary(dumps: pl.DataFrame) -> list[str]:
    """``path:line: ftrace dump of N events: offset ... ± ... (how)`` per dump."""
    out = []
    for r in dumps.iter_rows(named=True):
        name = f"instance {r['instance']}" if r["instance"] else "ftrace dump"
        cut = "" if r["complete"] else ", cut off before its end"
        if r["offset_ns"] is None:
            clock = r["how"]
        else:
            clock = (
                f"moved onto the log clock by {r['offset_ns'] / 1e9:+.6f} s "
                f"± {r['uncertainty_ns'] / 1e6:.3f} ms ({r['how']})"
            )
        out.append(f"{r['file']}:{r['line']}: {name} of {r['events']} events{cut}; {clock}")
    return out


def clock_lines(trace: Trace, asked: bool) -> list[str]:
    """How inputs were put on one clock: shown when offsets were given or a kernel log
    is the reference, since only then does merging mean anything to the reader."""
    from tracetool.clocks import describe

    if not asked and not any(i.format == "dmesg" for i in trace.inputs):
        return []
    return [line for i in trace.inputs if (line := describe(i))]


def crash_signatures(crashes: pl.DataFrame) -> pl.DataFrame:
    """One row per distinct signature: how often, where first and last, the title."""
    return (
        crashes.sort("file", "line")
        .group_by("signature", maintain_order=True)
        .agg(
            reports=pl.len(),
            inputs=pl.col("file").n_unique(),
            first=pl.format(
                "{}:{}", pl.col("file").first().str.split("/").list.last(), pl.col("line").first()
            ),
            corrupted=pl.col("corrupted").sum(),
        )
        .sort("reports", descending=True, maintain_order=True)
        .select("reports", "inputs", "corrupted", "signature", "first")
    )


def _us(col: str) -> pl.Expr:
    return (pl.col(col).cast(pl.Float64) / 1000).round(1)


def stats_text(tables: dict[str, pl.DataFrame], by: Sequence[str] = ()) -> list[str]:
    """The stats tables as a person reads them: times in µs, one section each."""
    sections: list[tuple[str, str, str, list[pl.Expr]]] = [
        (
            "latency",
            "latency of traced calls (µs; inexact: calls whose return was not traced)",
            "func",
            [
                *(seconds(pl.col(b)).alias(b) if b == "window" else pl.col(b) for b in by),
                pl.col("kind"),
                pl.col("func"),
                pl.col("count").alias("n"),
                *(_us(p).alias(p) for p in ("p50", "p90", "p99", "max")),
                pl.col("inexact"),
            ],
        ),
        (
            "flushes",
            "RPCIT flushes per device",
            "device",
            [
                pl.col("device"),
                pl.col("flushes"),
                pl.col("global").fill_null(0),
                pl.col("failed"),
                pl.col("per_s").round(1),
                pl.col("unmaps"),
                pl.col("unmaps_per_flush").round(2).alias("per_flush"),
                _us("flush_ns").alias("busy_us"),
            ],
        ),
        (
            "failures",
            "failed RPCITs (fallback: the global RPCIT the kernel sent after an -ENOMEM)",
            "device",
            [
                pl.col("device"),
                pl.col("failed"),
                pl.col("enomem"),
                (pl.col("failed") - pl.col("enomem")).alias("other"),
                pl.col("fallback"),
            ],
        ),
        (
            "flush_paths",
            "RPCITs by calling function (µs)",
            "caller",
            [
                pl.col("caller").fill_null("(return not traced)"),
                pl.col("scope"),
                pl.col("flushes").alias("n"),
                pl.col("failed"),
                pl.col("pages"),
                _us("mean").alias("mean"),
                _us("p99").alias("p99"),
            ],
        ),
        (
            "fh_periods",
            "RPCITs per function-handle period (a new handle after re-enable)",
            "device",
            [
                pl.col("device"),
                pl.col("period"),
                hex_str(pl.col("fh")).alias("fh"),
                pl.col("flushes"),
                pl.col("global"),
                pl.col("failed"),
                seconds(pl.col("first_ts")).alias("first"),
                seconds(pl.col("last_ts")).alias("last"),
            ],
        ),
        (
            "io",
            "block I/O (issue -> complete; latency in µs)",
            "dev",
            [
                pl.col("dev"),
                pl.col("ios"),
                pl.col("iops").round(1),
                pl.col("mb_s").round(2),
                _us("lat_p50").alias("p50"),
                _us("lat_p99").alias("p99"),
                _us("lat_max").alias("max"),
                pl.col("errors"),
            ],
        ),
    ]
    sections.append(
        (
            "rates",
            "per window (start in s; IOPS, MB/s and RPCITs/s over the window)",
            "device",
            [
                seconds(pl.col("start_ts")).alias("start"),
                pl.col("device"),
                pl.col("ios").cast(pl.Int64),
                pl.col("iops").round(1),
                pl.col("mb_s").round(2),
                pl.col("flushes").cast(pl.Int64).alias("rpcits"),
                pl.col("flushes_per_s").round(1).alias("rpcit_s"),
                pl.col("global").cast(pl.Int64),
                pl.col("unmaps").cast(pl.Int64),
            ],
        )
    )

    def bounds(name: str) -> pl.Expr:
        lo, hi = pl.col(f"{name}_lo"), pl.col(f"{name}_hi")
        text = pl.format(
            "[{}, {})", lo.cast(pl.String).fill_null("?"), hi.cast(pl.String).fill_null("?")
        )
        return text.alias(name)

    sections.append(
        (
            "buckets",
            "bpftrace histograms (percentiles as bucket bounds, in the map's unit)",
            "map",
            [
                pl.format(
                    "{}{}",
                    "map",
                    pl.when(pl.col("keys") != "")
                    .then(pl.format("[{}]", "keys"))
                    .otherwise(pl.lit("")),
                ).alias("map"),
                pl.col("count").alias("n"),
                bounds("p50"),
                bounds("p90"),
                bounds("p99"),
            ],
        )
    )
    sections.append(
        (
            "counters",
            "debugfs statistics vs the trace (kernel: after - before)",
            "verdict",
            [
                pl.col("device"),
                pl.col("counter"),
                pl.col("kernel"),
                pl.col("traced"),
                pl.col("verdict"),
            ],
        )
    )
    if "flushes" in tables:  # a section of its own, only for devices with failures
        tables = {**tables, "failures": tables["flushes"].filter(pl.col("failed") > 0)}
    out: list[str] = []
    for name, title, flex, columns in sections:
        frame = tables.get(name, pl.DataFrame())
        if frame.height:
            out += ["", title] if out else [title]
            out.append(table(frame.select(columns), flex=flex))
            if "hint" in frame.columns:
                out += [
                    f"  {r['counter']}: {r['verdict']}: {r['hint']}"
                    for r in frame.filter(pl.col("hint") != "").iter_rows(named=True)
                ]
    return out or ["no timed calls, flushes or block I/O in the inputs"]


def _num(col: str, scale: float = 1.0) -> pl.Expr:
    """A figure with three significant digits' worth of decimals: 27864.5, 1.93, 0.0102."""
    v = pl.col(col) * scale
    return (
        pl.when(v.is_null())
        .then(pl.lit("—"))
        .when(v.abs() >= 100)
        .then(v.round(1).cast(pl.String))
        .when(v.abs() >= 1)
        .then(v.round(2).cast(pl.String))
        .otherwise(v.round_sig_figs(3).cast(pl.String))
    )


def _small(p: pl.Expr) -> pl.Expr:
    """A probability as ``0.95``, ``0.0012``, ``5.8e-149`` or, below the smallest
    double, ``<1e-308``."""
    exp = pl.when(p > 0).then(p.log10().floor())
    return (
        pl.when(p.is_null())
        .then(pl.lit("—"))
        .when(p <= 0)
        .then(pl.lit("<1e-308"))
        .when(p >= 1e-3)
        .then(p.round_sig_figs(2).cast(pl.String))
        .otherwise(pl.format("{}e{}", (p / pl.lit(10.0).pow(exp)).round(1), exp.cast(pl.Int64)))
    )


def diff_text(cmp: Comparison, a_name: str, b_name: str) -> list[str]:
    """``tracetool diff`` as a person reads it: rates, then latencies in µs, the
    distribution tests and the findings; ``*`` marks an interval that excludes 1."""
    pct = round(cmp.level * 100)
    out = [
        f"A: {a_name}",
        f"B: {b_name}",
        f"B/A with {pct} % bootstrap intervals ({cmp.replicates} replicates, seed {cmp.seed}),",
        f"rates resampled by windows of {cmp.window_ns / 1000:g} µs; * = the interval excludes 1",
    ]
    m = cmp.metrics
    ci = (
        pl.when(pl.col("lo").is_null() & pl.col("hi").is_null())
        .then(pl.lit(""))
        .otherwise(pl.format("[{}, {}]", _num("lo"), _num("hi")))
    )
    mark = pl.when((pl.col("lo") > 1) | (pl.col("hi") < 1)).then(pl.lit("*")).otherwise(pl.lit(""))
    sections = [
        ("rates", m.filter(pl.col("unit") != "ns"), 1.0),
        ("latency (µs)", m.filter(pl.col("unit") == "ns"), 1e-3),
    ]
    for title, rows, scale in sections:
        if rows.height:
            out += ["", title]
            shown = rows.select(
                "metric",
                "group",
                A=_num("a", scale),
                B=_num("b", scale),
                **{"B/A": _num("ratio"), "interval": ci, " ": mark},
            )
            out.append(table(shown, width=80, flex="group"))
    if cmp.tests.height:
        out += ["", "distribution change (two-sample Kolmogorov-Smirnov; D from 0 to 1)"]
        shown = cmp.tests.select(
            "group",
            n_a="n_a",
            n_b="n_b",
            D=pl.col("ks_d").round(3),
            p=_small(pl.col("p_value")),
            change=pl.when(pl.col("p_value") < 1 - cmp.level)
            .then(pl.lit("yes"))
            .otherwise(pl.lit("no")),
        )
        out.append(table(shown, width=80, flex="group"))
    out += ["", "findings of the rules"]
    if cmp.findings.height:
        out.append(table(cmp.findings, width=80, flex="example"))
    else:
        out.append("none in either run")
    return out
