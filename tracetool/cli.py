"""The ``tracetool`` command: click options, one library call, rendering, exit codes.

Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage/input/internal error,
3 no findings but inconclusive because of lost data.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import polars as pl

import tracetool
from tracetool import cache, render, report
from tracetool.catalogue import formats
from tracetool.check import run as run_check
from tracetool.errors import TraceToolError, UnknownName
from tracetool.kernel import era_from_version
from tracetool.rules import rules

F = TypeVar("F", bound=Callable[..., Any])
OUTPUT_SUFFIXES = (".parquet", ".csv", ".json", ".ndjson")


class Failure(click.ClickException):
    """Any error the user can fix; exits 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"tracetool: error: {self.format_message()}", err=True)


def errors(func: F) -> F:
    """Translate library errors into one message and exit code 2, in one place."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TraceToolError as exc:
            raise Failure(str(exc)) from None
        except pl.exceptions.PolarsError as exc:
            raise Failure(f"internal error while processing the input: {exc}") from exc

    return wrapper  # type: ignore[return-value]


def _format_choice(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and value not in formats():
        raise click.BadParameter(str(UnknownName("format", value, formats())))
    return value


input_args = click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
format_option = click.option(
    "--format",
    "-f",
    "fmt",
    callback=_format_choice,
    metavar="NAME",
    help="Input format (see `tracetool list formats`); sniffed from content if omitted.",
)


def _offsets(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for value in values:
        name, sep, seconds = value.rpartition("=")
        try:
            out[name] = float(seconds)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise click.BadParameter(f"{value!r}: expected SOURCE=SECONDS, e.g. trace.txt=-1.25")
    return out


offset_option = click.option(
    "--offset",
    "offsets",
    multiple=True,
    callback=_offsets,
    metavar="SOURCE=SECONDS",
    help="Add SECONDS to the times of input SOURCE (path or file name) to put it on the "
    "clock of the others (repeatable); derived from shared events if omitted.",
)
spec_option = click.option(
    "--spec",
    "spec",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="FILE",
    help="Printf formats of your own bpftrace script: a TOML of [events.NAME] tables with "
    "a regex 'pattern' and typed 'fields'. Reads the inputs as bpftrace (or as --format "
    "bpftrace-json).",
)


def _format_for(fmt: str | None, spec: Path | None) -> Any:
    """The format to parse with: a name, or with --spec a bpftrace format that also
    knows the user's printf formats."""
    if spec is None:
        return fmt
    from tracetool.printf_spec import with_printf_formats

    return with_printf_formats(spec, fmt or "bpftrace")


cache_option = click.option(
    "--no-cache", is_flag=True, help="Neither read nor write the Parquet cache of parsed inputs."
)
output_option = click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE."
)
kernel_option = click.option(
    "--kernel",
    metavar="VERSION",
    help="Kernel the trace comes from (6.0, 6.5.3, 6.0+dma_domain_lock); inferred from the "
    "symbols in the trace if omitted.",
)
html_option = click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write a self-contained HTML report with plots (opens offline).",
)
TABLE_FILES = {"csv": ".csv", "parquet": ".parquet"}  # one file per table, in a directory
tables_format_option = click.option(
    "--format",
    "out_format",
    type=click.Choice(["table", "json", *TABLE_FILES]),
    default="table",
    show_default=True,
    help="Output: tables that fit 80 columns, JSON with every column, or one CSV or "
    "Parquet file per table in the directory that -o names.",
)
tables_output_option = click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Write to FILE (table, json) or into DIRECTORY, created if missing (csv, parquet).",
)


def _emit(doc: str, output: Path | None) -> None:
    """``doc`` to FILE (saying so on stderr) or to stdout."""
    if output:
        output.write_text(doc)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(doc, nl=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(tracetool.__version__, prog_name="tracetool")
def main() -> None:
    """Reconstruct what each IOMMU device went through from the traces and logs a kernel
    left behind (ftrace, trace-cmd, bpftrace, perf, dmesg).

    \b
    Example:
      tracetool parse samples/ftrace/s390-kprobe-race-v6.0.txt
    """


vmlinux_option = click.option(
    "--vmlinux",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The kernel the logs come from: crash report frames get source lines and "
    "inline chains from its DWARF.",
)
modules_option = click.option(
    "--modules",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="With --vmlinux: where the NAME.ko of [NAME] frames are.",
)


@main.command()
@input_args
@format_option
@click.option(
    "--events", "event_names", metavar="NAMES", help="Only these events (comma-separated)."
)
@click.option(
    "--kv", is_flag=True, help="Extract key=value pairs of undeclared events into args.kv."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write all events to FILE (.parquet, .csv, .json or .ndjson).",
)
@click.option("--diagnostics", "show_diagnostics", is_flag=True, help="Print every diagnostic.")
@click.option("--strict", is_flag=True, help="Exit 2 if any line was not understood.")
@click.option("--limit", default=20, show_default=True, help="Rows to show without -o.")
@click.option(
    "--via",
    type=click.Choice(["native", "trace-cmd"]),
    default="native",
    help="How to read trace.dat inputs: the native reader, or `trace-cmd report -t` text.",
)
@spec_option
@offset_option
@vmlinux_option
@modules_option
@cache_option
@errors
def parse(
    inputs: tuple[str, ...],
    fmt: str | None,
    event_names: str | None,
    kv: bool,
    output: Path | None,
    show_diagnostics: bool,
    strict: bool,
    limit: int,
    via: str,
    spec: Path | None,
    offsets: dict[str, float],
    vmlinux: Path | None,
    modules: Path | None,
    no_cache: bool,
) -> None:
    """Parse inputs into typed events; print the first rows and how every line was
    accounted for (events, multi-line records, headers, loss markers, diagnostics).

    INPUT is a file, a directory (read recursively), `-` for stdin, or a .gz/.zst file.

    \b
    Example:
      tracetool parse samples/ftrace/s390-kprobe-race-v6.0.txt
      tracetool parse samples/trace-cmd/ -o events.parquet
      tracetool parse stacks.txt --vmlinux vmlinux -o events.parquet   # + stack_src
    """
    trace = _parse_with_progress(
        list(inputs),
        _format_for(fmt, spec),
        kv=kv,
        use_cache=not no_cache,
        offsets=offsets,
        via=via,
    )
    # Stacks get stack_src (written with -o), crash reports their source lines
    # (`tracetool list crashes --vmlinux` prints them).
    trace = symbolized(trace, vmlinux, modules, no_cache, stacks=True)
    events = trace.events
    if render.clock_lines(trace, bool(offsets)):
        # One clock across inputs: show them merged in time order.
        events = events.sort("ts", "file", "line", nulls_last=True)
    if event_names:
        wanted = [n.strip() for n in event_names.split(",") if n.strip()]
        events = events.filter(pl.col("event").is_in(wanted))
    if output:
        _write(events, output)
        click.echo(f"wrote {output}", err=True)
    else:
        merged = len(trace.inputs) > 1
        preview = render.events_preview(events.head(limit).collect(), files=merged)
        caps = {"task": 18, "event": 20, "line": 24}
        click.echo(render.table(preview, flex="body", caps=caps))
    diagnostics = trace.diagnostics.collect()
    for line in render.accounting(trace):
        click.echo(line, err=True)
    for line in render.clock_lines(trace, bool(offsets)):
        click.echo(line, err=True)
    for line in render.losses_summary(trace.losses.collect()):
        click.echo(line, err=True)
    for line in render.dumps_summary(trace.table("dumps").collect()):
        click.echo(line, err=True)
    crashes = trace.table("crashes").select(pl.len()).collect().item()
    if crashes:
        click.echo(f"{crashes} crash report(s); see `tracetool list crashes`", err=True)
    shown = diagnostics.height if show_diagnostics else 5
    for line in render.diagnostics_summary(diagnostics, limit=shown):
        click.echo(line, err=True)
    if strict and diagnostics.height:
        raise Failure(f"--strict: {diagnostics.height} diagnostic(s); see above")


def symbolized(
    trace: tracetool.Trace,
    vmlinux: Path | None,
    modules: Path | None,
    no_cache: bool,
    stacks: bool = False,
) -> tracetool.Trace:
    """``trace`` with source lines from ``--vmlinux`` (``--modules``) on its crash
    reports and, with ``stacks``, on its events' stacks; the notes go to stderr."""
    if modules and not vmlinux:
        raise Failure("--modules needs --vmlinux")
    if not vmlinux:
        return trace
    from tracetool.symbols import symbolize_trace

    trace, notes = symbolize_trace(trace, vmlinux, modules, use_cache=not no_cache, stacks=stacks)
    for note in notes:
        click.echo(note, err=True)
    return trace


def _parse_with_progress(inputs: list[str], fmt: Any, **options: Any) -> tracetool.Trace:
    """Parse, with a progress bar on stderr when it is a terminal and the inputs are big."""
    sizes = [Path(i).stat().st_size for i in inputs if i != "-" and Path(i).is_file()]
    if not sys.stderr.isatty() or sum(sizes) < 64 << 20:
        return tracetool.parse(inputs, fmt, **options)
    with click.progressbar(length=sum(sizes), label="parsing", file=sys.stderr) as bar:
        return tracetool.parse(inputs, fmt, progress=bar.update, **options)


def flat_for_csv(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with its nested columns as text, since CSV has none: a struct (args) as
    JSON, a list of strings (stack, evidence lines) joined by `` | ``, any other list
    as a JSON array."""

    def flat(name: str, dtype: pl.DataType) -> pl.Expr:
        if isinstance(dtype, pl.Struct):
            return pl.col(name).struct.json_encode()
        if dtype == pl.List(pl.String):
            return pl.col(name).list.join(" | ")
        # A one-field struct encodes as {"v": [...]}: keep the array after the key.
        encoded = pl.struct(pl.col(name).alias("v")).struct.json_encode()
        return pl.when(pl.col(name).is_not_null()).then(encoded.str.slice(5).str.head(-1))

    nested = {c: t for c, t in df.schema.items() if isinstance(t, (pl.Struct, pl.List, pl.Array))}
    return df.with_columns(flat(c, t).alias(c) for c, t in nested.items())


def emit_tables(
    tables: dict[str, pl.DataFrame],
    out_format: str,
    output: Path | None,
    text: Callable[[], str],
    document: dict[str, Any] | None = None,
) -> None:
    """``tables`` as ``out_format``: ``text()`` for ``table``; for ``json``, one
    document of every table's rows (or ``document``, when given); or one
    ``NAME.csv``/``NAME.parquet`` per table in the directory ``output``."""
    if out_format == "table":
        _emit(text(), output)
    elif out_format == "json":
        doc = document if document is not None else {k: v.to_dicts() for k, v in tables.items()}
        _emit(json.dumps(doc, indent=2) + "\n", output)
    else:
        suffix = TABLE_FILES[out_format]
        if output is None:
            raise Failure(
                f"--format {out_format} writes one file per table: name a directory "
                "for them with -o DIR"
            )
        if output.exists() and not output.is_dir():
            raise Failure(
                f"{output}: --format {out_format} writes one file per table into a "
                "directory, and this is a file; name a directory (it is created if missing)"
            )
        output.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            path = output / f"{name}{suffix}"
            if out_format == "csv":
                flat_for_csv(table).write_csv(path)
            else:
                table.write_parquet(path)
        names = ", ".join(f"{n}{suffix}" for n in tables)
        click.echo(f"wrote {len(tables)} tables to {output}: {names}", err=True)


def _write(events: pl.LazyFrame, output: Path) -> None:
    suffix = output.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise Failure(
            f"{output}: unknown output type {suffix!r}; use one of {', '.join(OUTPUT_SUFFIXES)}"
        )
    if suffix == ".parquet":
        events.sink_parquet(output)
        return
    df = events.collect()
    if suffix == ".csv":
        flat_for_csv(df).write_csv(output)
    elif suffix == ".json":
        df.write_json(output)
    else:
        df.write_ndjson(output)


CHECK_OUTPUTS = ("text", "json", "junit", "sarif")
# Commands whose --format names the output take the input format as -i.
input_format_option = click.option(
    "--input-format",
    "-i",
    "fmt",
    callback=_format_choice,
    metavar="NAME",
    help="Input format (see `tracetool list formats`); sniffed from content if omitted.",
)
rules_option = click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    type=click.Path(file_okay=False, exists=True),
    metavar="DIR",
    help="Also load the rules in DIR (repeatable); a rule there replaces a built-in one "
    "with the same id.",
)


@main.command()
@input_args
@input_format_option
@rules_option
@click.option("--only", multiple=True, metavar="RULE", help="Run only this rule (repeatable).")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "info"]),
    default="warning",
    show_default=True,
    help="Exit 1 when a finding is at least this severe.",
)
@kernel_option
@click.option(
    "--format",
    "out_format",
    type=click.Choice(CHECK_OUTPUTS),
    default="text",
    show_default=True,
    help="Output: text, json, junit (XML) or sarif (2.1.0).",
)
@output_option
@spec_option
@vmlinux_option
@modules_option
@offset_option
@cache_option
@errors
def check(
    inputs: tuple[str, ...],
    fmt: str | None,
    rule_dirs: tuple[str, ...],
    only: tuple[str, ...],
    fail_on: str,
    kernel: str | None,
    out_format: str,
    output: Path | None,
    spec: Path | None,
    vmlinux: Path | None,
    modules: Path | None,
    offsets: dict[str, float],
    no_cache: bool,
) -> None:
    """Check the inputs against the rules: unlocked overlaps of release_device with
    attach/detach, use after release, DMA API misuse. Every finding names the device,
    the time and the input lines that prove it.

    Exit status: 0 clean, 1 findings at or above --fail-on, 2 error, 3 no findings but
    inconclusive ones (lost events, untraced returns).

    \b
    Example:
      tracetool check samples/ftrace/s390-kprobe-race-v6.0.txt
      tracetool check samples/ftrace/ --format sarif -o findings.sarif
      tracetool check samples/rules/warn-after-overlap/trigger-v6.0-warn-in-race-dmesg.txt
    """
    era = era_from_version(kernel) if kernel else None
    trace = _parse_with_progress(
        list(inputs), _format_for(fmt, spec), use_cache=not no_cache, offsets=offsets
    )
    for line in render.clock_lines(trace, bool(offsets)):
        click.echo(line, err=True)
    trace = symbolized(trace, vmlinux, modules, no_cache)
    result = run_check(trace, rule_dirs, only, era)
    if out_format == "json":
        doc = report.as_json(result)
    elif out_format == "junit":
        doc = report.junit(result)
    elif out_format == "sarif":
        doc = report.sarif(result)
    else:
        doc = report.text(result)
    _emit(doc, output)
    sys.exit(report.exit_code(result.findings, fail_on))


@main.group(name="list")
def list_() -> None:
    """List what tracetool knows: formats, rules, or the events in an input."""


@list_.command(name="rules")
@rules_option
@errors
def list_rules(rule_dirs: tuple[str, ...]) -> None:
    """The rules `check` runs (one TOML file each under rules/).

    \b
    Example:
      tracetool list rules
    """
    rows = [
        {
            "rule": r.id,
            "severity": r.severity,
            "kind": r.kind,
            "title": r.title,
        }
        for r in rules(tuple(Path(d) for d in rule_dirs)).values()
    ]
    click.echo(render.table(pl.DataFrame(rows), flex="title"))


@list_.command(name="formats")
def list_formats() -> None:
    """The input formats (one TOML file each under parsers/).

    \b
    Example:
      tracetool list formats
    """
    rows = [
        {
            "format": name,
            "engine": spec.engine,
            "events": len(spec.events),
            "description": " ".join(spec.description.split()),
        }
        for name, spec in sorted(formats().items())
    ]
    click.echo(render.table(pl.DataFrame(rows), flex="description"))


@list_.command(name="devices")
@input_args
@format_option
@kernel_option
@offset_option
@cache_option
@errors
def list_devices(
    inputs: tuple[str, ...],
    fmt: str | None,
    kernel: str | None,
    offsets: dict[str, float],
    no_cache: bool,
) -> None:
    """Devices the timeline resolved, with how (exact: named by an event; inferred:
    correlated, see `check`; pointer: no name in the trace; unknown: no key at all), the
    kinds of spans seen on each and their time range.

    \b
    Example:
      tracetool list devices samples/ftrace/s390-kprobe-race-v6.0.txt
    """
    era = era_from_version(kernel) if kernel else None
    trace = _parse_with_progress(list(inputs), fmt, use_cache=not no_cache, offsets=offsets)
    tl = tracetool.timeline(trace.events, era, trace.table("crashes"))
    summary = (
        tracetool.device_summary(tl.spans)
        .collect()
        .with_columns(
            first_ts=render.seconds(pl.col("first_ts")), last_ts=render.seconds(pl.col("last_ts"))
        )
    )
    click.echo(render.table(summary, flex="kinds"))
    click.echo(f"kernel era: {tl.era.label()}", err=True)


@list_.command(name="crashes")
@input_args
@format_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the whole table (frames, signature, lines) to FILE (.parquet, .csv, .json, "
    ".ndjson).",
)
@click.option(
    "--by-signature",
    is_flag=True,
    help="One line per distinct signature (the same bug), with how often it occurred.",
)
@vmlinux_option
@modules_option
@offset_option
@cache_option
@errors
def list_crashes(
    inputs: tuple[str, ...],
    fmt: str | None,
    output: Path | None,
    by_signature: bool,
    vmlinux: Path | None,
    modules: Path | None,
    offsets: dict[str, float],
    no_cache: bool,
) -> None:
    """Crash reports in kernel logs (WARNING, BUG, Oops, panic, KASAN, lockdep, hung
    task, RCU stall), assembled even when other CPUs' lines interleave: where, when,
    which task, the title and the guilty frame; reports with the same signature are
    the same bug.

    \b
    Example:
      tracetool list crashes samples/dmesg/s390-warn-zpci-dma-v6.0.txt
      tracetool list crashes ci-logs/ --by-signature
      tracetool list crashes dmesg.txt --vmlinux vmlinux --modules /lib/modules/6.0.0
    """
    trace = _parse_with_progress(list(inputs), fmt, use_cache=not no_cache, offsets=offsets)
    crashes = symbolized(trace, vmlinux, modules, no_cache).table("crashes").collect()
    if output:
        _write(crashes.lazy(), output)
        click.echo(f"wrote {output}", err=True)
    elif by_signature:
        rows = render.crash_signatures(crashes)
        click.echo(render.table(rows, flex="signature", caps={"first": 28}))
    else:
        for line in render.crashes_text(crashes):
            click.echo(line)
    distinct = crashes["signature"].n_unique() if crashes.height else 0
    corrupted = int(crashes["corrupted"].sum()) if crashes.height else 0
    click.echo(
        f"{crashes.height} report(s), {distinct} distinct signature(s), {corrupted} corrupted",
        err=True,
    )
    for line in render.dumps_summary(trace.table("dumps").collect()):
        click.echo(line, err=True)


@list_.command(name="events")
@input_args
@format_option
@cache_option
@errors
def list_events(inputs: tuple[str, ...], fmt: str | None, no_cache: bool) -> None:
    """Events in the inputs: how many, on how many CPUs and tasks, first and last time,
    and whether the format declares their fields.

    \b
    Example:
      tracetool list events samples/ftrace/s390-rpcit-flush.txt
    """
    trace = _parse_with_progress(list(inputs), fmt, use_cache=not no_cache)
    summary = tracetool.event_summary(trace.events).collect()
    summary = summary.with_columns(
        first_ts=render.seconds(pl.col("first_ts")), last_ts=render.seconds(pl.col("last_ts"))
    )
    click.echo(render.table(summary, flex="event"))
    for line in render.accounting(trace):
        click.echo(line, err=True)


@main.group(name="cache")
def cache_group() -> None:
    """The Parquet cache of parsed inputs."""


@cache_group.command(name="clear")
def cache_clear() -> None:
    """Remove every cached parse."""
    click.echo(f"removed {cache.clear()} cached input(s) from {cache.directory()}")


@cache_group.command(name="dir")
def cache_dir() -> None:
    """Print where the cache lives."""
    click.echo(str(cache.directory()))


# The figures commands (stats, diff) live in their own module; importing it registers them.
from tracetool import (  # noqa: E402, F401
    cli_figures,
    cli_simulate,
    cli_symbols,
    cli_timeline,
    cli_triage,
)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
