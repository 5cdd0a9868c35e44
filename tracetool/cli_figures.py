"""``tracetool stats`` and ``tracetool diff``: the commands that measure (see ``cli``)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import polars as pl

import tracetool
from tracetool import render
from tracetool.cli import (
    Failure,
    _parse_with_progress,
    cache_option,
    emit_tables,
    errors,
    html_option,
    input_args,
    input_format_option,
    kernel_option,
    main,
    offset_option,
    rules_option,
    tables_format_option,
    tables_output_option,
)
from tracetool.errors import UnknownName
from tracetool.kernel import era_from_version

DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``100ms``, ``250us``, ``1s`` or ``5000ns`` as integer nanoseconds."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s)\s*", value)
    if not m or float(m.group(1)) <= 0:
        raise click.BadParameter(
            f"{value!r} is not a duration; give a number and a unit: 100ms, 250us, 1s, 5000ns"
        )
    return max(1, round(float(m.group(1)) * DURATION_UNITS[m.group(2)]))


STATS_BY = ("device", "cpu", "comm", "pid", "file", "window")
# Latencies are always per operation (span kind and function); --by op says so.
ALWAYS_BY = ("op",)


@main.command(name="stats")
@input_args
@input_format_option
@click.option(
    "--by",
    "by",
    default="",
    metavar="COLUMNS",
    help="Also group latencies by these span columns (comma-separated: "
    f"{', '.join(STATS_BY)}); they are always grouped by operation (op: kind and function).",
)
@click.option(
    "--window",
    "window_ns",
    callback=_duration,
    metavar="DURATION",
    help="Width of the windows of the rates table and of --by window (100ms, 250us); "
    "default: a 50th of the run. Shows the rates in the table output.",
)
@click.option(
    "--counters",
    "counter_specs",
    multiple=True,
    metavar="[DEVICE=]BEFORE,AFTER",
    help="Snapshots of /sys/kernel/debug/pci/DEVICE/statistics taken before and after the "
    "trace: reconcile the kernel's RPCIT and page counters with the trace (repeatable).",
)
@html_option
@tables_format_option
@tables_output_option
@kernel_option
@offset_option
@cache_option
@errors
def stats_command(
    inputs: tuple[str, ...],
    fmt: str | None,
    by: str,
    window_ns: int | None,
    counter_specs: tuple[str, ...],
    html_out: Path | None,
    out_format: str,
    output: Path | None,
    kernel: str | None,
    offsets: dict[str, float],
    no_cache: bool,
) -> None:
    """Latency distributions of every traced call kind (count, mean, p50/p90/p99/p99.9,
    max; log2 histograms in JSON), RPCIT flush accounting per device (flushes, global
    and failed ones, rate, unmaps per flush, calling functions), block I/O (IOPS, MB/s,
    latency) and, per time window, IOPS and RPCIT rates.

    \b
    Example:
      tracetool stats samples/ftrace/s390-rpcit-flush.txt
      tracetool stats samples/flush/s390-fio-zvm-lazy.txt --window 2ms
      tracetool stats trace.txt --by device --format json -o stats.json
    """
    columns = [c.strip() for c in by.split(",") if c.strip()]
    for column in columns:
        if column not in STATS_BY + ALWAYS_BY:
            raise Failure(str(UnknownName("--by column", column, STATS_BY + ALWAYS_BY)))
    columns = [c for c in columns if c not in ALWAYS_BY]
    era = era_from_version(kernel) if kernel else None
    trace = _parse_with_progress(list(inputs), fmt, use_cache=not no_cache, offsets=offsets)
    notes: list[str] = []
    figures = tracetool.stats(trace, columns, era, window_ns, notes)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    names = ("latency", "histogram", "flushes", "flush_paths", "fh_periods", "io", "rates")
    # One table at a time, each streamed from the spans (Parquet parts for a long trace).
    tables = {name: getattr(figures, name).collect(engine="streaming") for name in names}
    tables["buckets"] = figures.buckets.collect()
    if counter_specs:
        from tracetool.counters import parse_spec, reconcile_all
        from tracetool.stats import spans_and_ios

        specs = [parse_spec(spec) for spec in counter_specs]
        spans, _ = spans_and_ios(trace, era)
        tables["counters"] = reconcile_all(spans, specs)
    if html_out:
        from tracetool.pages import stats_page

        page = {
            **tables,
            "cdf": figures.cdf.collect(),
            "bpftrace_histograms": trace.table("histograms").collect(),
        }
        html_out.write_text(stats_page(page, list(inputs)), encoding="utf-8")
        click.echo(f"wrote {html_out}", err=True)
    shown = tables if window_ns else {k: v for k, v in tables.items() if k != "rates"}
    emit_tables(
        tables, out_format, output, lambda: "\n".join(render.stats_text(shown, columns)) + "\n"
    )


@main.command(name="diff")
@click.argument("run_a", metavar="A")
@click.argument("run_b", metavar="B")
@input_format_option
@click.option(
    "--window",
    "window_ns",
    callback=_duration,
    metavar="DURATION",
    help="Window the rates are resampled by (100ms, 250us); default: a 50th of the longer run.",
)
@click.option(
    "--replicates",
    type=click.IntRange(100, 100_000),
    default=2000,
    show_default=True,
    help="Bootstrap replicates per figure.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the resampling.")
@html_option
@tables_format_option
@tables_output_option
@kernel_option
@rules_option
@cache_option
@errors
def diff_command(
    run_a: str,
    run_b: str,
    fmt: str | None,
    window_ns: int | None,
    replicates: int,
    seed: int,
    html_out: Path | None,
    out_format: str,
    output: Path | None,
    kernel: str | None,
    rule_dirs: tuple[str, ...],
    no_cache: bool,
) -> None:
    """Compare run B with run A (say strict and lazy flushing): for IOPS, MB/s, RPCIT
    rates, RPCITs per I/O, unmaps per RPCIT and the p50/p90/p99/mean of every latency,
    the value in each run, the ratio B/A and its 95 % bootstrap interval; a two-sample
    test per distribution; and which rule findings appeared, vanished or persisted.

    \b
    Example:
      tracetool diff samples/flush/s390-fio-zvm-strict.txt samples/flush/s390-fio-zvm-lazy.txt
      tracetool diff strict.txt lazy.txt --window 100ms --format json -o diff.json
    """
    from tracetool.diff import compare

    era = era_from_version(kernel) if kernel else None
    runs = [_parse_with_progress([p], fmt, use_cache=not no_cache) for p in (run_a, run_b)]
    cmp = compare(
        runs[0],
        runs[1],
        window_ns=window_ns,
        replicates=replicates,
        seed=seed,
        rule_dirs=rule_dirs,
        era=era,
    )
    if html_out:
        from tracetool.pages import diff_page

        html_out.write_text(diff_page(cmp, run_a, run_b), encoding="utf-8")
        click.echo(f"wrote {html_out}", err=True)
    run = {
        "a": run_a,
        "b": run_b,
        "level": cmp.level,
        "replicates": cmp.replicates,
        "seed": cmp.seed,
        "window_ns": cmp.window_ns,
    }
    tables = {"metrics": cmp.metrics, "tests": cmp.tests, "findings": cmp.findings}
    emit_tables(
        # In files, what the run was is a one-row table beside the others.
        {"comparison": pl.DataFrame([run]), **tables},
        out_format,
        output,
        lambda: "\n".join(render.diff_text(cmp, run_a, run_b)) + "\n",
        document={**run, **{k: v.to_dicts() for k, v in tables.items()}},
    )
