"""``tracetool triage``: CI logs grouped by what broke, classified against known issues."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import click
import polars as pl

from tracetool import render, triage
from tracetool.cli import Failure, _emit, errors, main

FORMATS = ("table", "json", "junit", "sarif", "markdown", "html")


def _groups_table(groups: pl.DataFrame) -> str:
    rows = groups.select(
        "class",
        "count",
        "logs",
        "signature",
        kernels=pl.col("kernels").list.join(" "),
        example="example",
    )
    return render.table(rows, flex="example", caps={"signature": 38, "kernels": 16})


def _markdown(logs: pl.DataFrame, groups: pl.DataFrame) -> str:
    counts = {c: int((groups["class"] == c).sum()) for c in ("new", "regression", "known")}
    out = [
        f"**tracetool triage**: {logs.height} log(s), {groups.height} group(s): "
        f"{counts['new']} new, {counts['regression']} regression(s), {counts['known']} known",
        "",
        "| class | count | logs | signature | kernels | example | bug |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in groups.iter_rows(named=True):
        cells = [
            r["class"],
            str(r["count"]),
            str(r["logs"]),
            f"`{r['signature']}`",
            " ".join(r["kernels"] or []),
            f"`{r['example']}`",
            r["bug"] or "",
        ]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    errors_ = logs.filter(pl.col("error").is_not_null())
    if errors_.height:
        out += ["", "Logs that could not be read:", ""]
        out += [f"- `{r['log']}`: {r['error']}" for r in errors_.iter_rows(named=True)]
    return "\n".join(out) + "\n"


def _junit(logs: pl.DataFrame, reports: pl.DataFrame, groups: pl.DataFrame) -> str:
    """One testcase per log; it fails when the log has reports of a new group or a
    regression (the message lists them), and errors when it could not be read."""
    cls = dict(zip(groups["signature"], groups["class"], strict=True))
    by_log: dict[str, list[dict[str, object]]] = {}
    for r in reports.iter_rows(named=True):
        by_log.setdefault(str(r["log"]), []).append(r)
    cases, failures, errs = [], 0, 0
    for log in logs.iter_rows(named=True):
        name = quoteattr(str(log["log"]))
        body = ""
        if log["error"]:
            errs += 1
            body = f"<error message={quoteattr(str(log['error']))}/>"
        else:
            bad = [
                r
                for r in by_log.get(str(log["log"]), [])
                if cls.get(str(r["signature"])) in ("new", "regression")
            ]
            if bad:
                failures += 1
                text = "\n".join(
                    f"{cls[str(r['signature'])]}: {r['signature']} ({r['log']}:{r['line']})"
                    for r in bad
                )
                first = f"{cls[str(bad[0]['signature'])]}: {bad[0]['signature']}"
                body = f"<failure message={quoteattr(first)}>{escape(text)}</failure>"
        cases.append(f'    <testcase classname="tracetool.triage" name={name}>{body}</testcase>')
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n  <testsuite name="tracetool '
        f'triage" tests="{logs.height}" failures="{failures}" errors="{errs}">'
    )
    return "\n".join([head, *cases, "  </testsuite>", "</testsuites>"]) + "\n"


@main.command(name="triage")
@click.argument("inputs", nargs=-1, metavar="LOG_OR_DIR...")
@click.option(
    "--known",
    "known_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="known-issues.toml: [[issue]] pattern, bug, status, fixed_in.",
)
@click.option(
    "--format",
    "out_format",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of stdout.",
)
@click.option(
    "--vmlinux",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The kernel the logs come from: crash reports get their guilty frame's source "
    "line (an Oops prints none).",
)
@click.option(
    "--history",
    "history",
    type=click.Path(file_okay=False, path_type=Path),
    help="Append this triage's reports to the Parquet dataset in DIR (partitioned by date).",
)
@click.option(
    "--trend",
    is_flag=True,
    help="With --history: counts per signature and day over every triage kept there.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="local: this machine (--jobs processes); dask: a Dask distributed cluster.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="With --engine dask: the scheduler (tcp://host:8786); default a local cluster.",
)
@click.option(
    "--shared",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --engine dask: a directory every worker and this machine see, for the "
    "per-task Parquet partitions (default: a temporary directory here).",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Logs triaged in parallel, one process each.",
)
@errors
def triage_command(
    inputs: tuple[str, ...],
    known_path: Path | None,
    out_format: str,
    output: Path | None,
    vmlinux: Path | None,
    history: Path | None,
    trend: bool,
    engine: str,
    scheduler: str | None,
    shared: Path | None,
    jobs: int,
) -> None:
    """What broke in each kernel log, grouped across logs by signature (the same WARN
    printed by different kernels is one group) and classified against known issues:
    new, known, or a regression (a fixed issue seen again on a kernel at or after its
    fix). Crash reports come from the dmesg parser; the rules run on any trace a log
    embeds (a panic's ftrace dump, SysRq-z).

    Exit status: 0 nothing new, 1 a new group or a regression, 2 a log could not be
    read, 3 nothing new but inconclusive results.

    \b
    Example:
      tracetool triage ci-logs/ --known known-issues.toml
      tracetool triage ci-logs/ --format junit -o triage.xml --jobs 2
      tracetool triage ci-logs/ --history triage-history/ --format html -o triage.html
      tracetool triage --history triage-history/ --trend
      tracetool triage /shared/logs --engine dask --scheduler tcp://sched:8786 --shared /shared/tt
    """
    if trend:
        if history is None:
            raise Failure("--trend reads the history: give --history DIR")
        counts = triage.trend(history)
        if out_format == "json":
            _emit(json.dumps(counts.to_dicts(), indent=1, default=str) + "\n", output)
        else:
            _emit(render.table(counts, flex="signature") + "\n", output)
        return
    if not inputs:
        raise Failure("give the logs to triage (files or directories), or --trend")
    known = triage.load_known(known_path) if known_path else []
    files = triage.logs_in(list(inputs))
    # A bar over the logs on a terminal; nothing in CI or when stderr is redirected.
    show = sys.stderr.isatty() and not os.environ.get("CI") and len(files) > 1
    with click.progressbar(
        length=len(files), label="triage", file=sys.stderr if show else io.StringIO()
    ) as bar:
        if vmlinux is not None:
            from tracetool.symbols import load

            load(vmlinux)  # read the DWARF once, here; the workers use the cached tables
        kernel = str(vmlinux) if vmlinux else None
        if engine == "dask":
            with tempfile.TemporaryDirectory(prefix="tracetool-triage-") as tmp:
                out = shared or Path(tmp)
                logs, reports = triage.run_dask(files, scheduler, out, kernel, progress=bar.update)
        else:
            logs, reports = triage.run(files, jobs, bar.update, kernel)
    if history is not None:
        import time

        part = triage.append_history(history, reports, time.time())
        click.echo(f"history: {part}", err=True)
    groups = triage.classify(triage.group(logs, reports), known)
    if out_format == "json":
        doc = (
            json.dumps(
                {
                    "logs": logs.to_dicts(),
                    "groups": groups.to_dicts(),
                    "reports": reports.to_dicts(),
                },
                indent=1,
                default=str,
            )
            + "\n"
        )
    elif out_format == "junit":
        doc = _junit(logs, reports, groups)
    elif out_format == "sarif":
        doc = json.dumps(triage.sarif(reports, groups), indent=1) + "\n"
    elif out_format == "markdown":
        doc = _markdown(logs, groups)
    elif out_format == "html":
        from tracetool import triage_page

        doc = triage_page.report(
            logs, reports, groups, triage.trend(history) if history is not None else None
        )
    else:
        doc = _groups_table(groups) + "\n" if groups.height else "nothing broke\n"
    _emit(doc, output)
    bad = logs.filter(pl.col("error").is_not_null())
    for r in bad.iter_rows(named=True):
        click.echo(f"tracetool: {r['log']}: {r['error']}", err=True)
    click.echo(
        f"{logs.height} log(s), {reports.height} report(s), {groups.height} group(s)", err=True
    )
    sys.exit(triage.exit_code(logs, groups))
