"""``tracetool timeline`` (an interactive HTML page) and ``tracetool export`` (Chrome
trace-event JSON for Perfetto and chrome://tracing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tracetool import render
from tracetool.cli import (
    _format_for,
    _parse_with_progress,
    cache_option,
    errors,
    input_args,
    input_format_option,
    kernel_option,
    main,
    modules_option,
    offset_option,
    rules_option,
    spec_option,
    symbolized,
    vmlinux_option,
)
from tracetool.events import Trace
from tracetool.kernel import era_from_version


def _load(
    inputs: tuple[str, ...],
    fmt: str | None,
    spec: Path | None,
    offsets: dict[str, float],
    no_cache: bool,
    vmlinux: Path | None,
    modules: Path | None,
) -> Trace:
    trace = _parse_with_progress(
        list(inputs), _format_for(fmt, spec), use_cache=not no_cache, offsets=offsets
    )
    for line in render.clock_lines(trace, bool(offsets)):
        click.echo(line, err=True)
    return symbolized(trace, vmlinux, modules, no_cache)


def _common(func: Any) -> Any:
    for option in reversed(
        [
            input_args,
            input_format_option,
            click.option(
                "--device",
                "devices",
                multiple=True,
                metavar="D",
                help="Only this device (PCI name such as 0004:00:00.0; repeatable): exact "
                "detail for it, and the locks and CPUs of the tasks that worked on it.",
            ),
            click.option(
                "--window",
                metavar="START:END",
                help="Only this time range, in seconds on the trace clock (either side may "
                "be empty): exact detail where a whole trace would be aggregated.",
            ),
            rules_option,
            kernel_option,
            spec_option,
            vmlinux_option,
            modules_option,
            offset_option,
            cache_option,
        ]
    ):
        func = option(func)
    return func


@main.command(name="timeline")
@_common
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("timeline.html"),
    show_default=True,
    help="The HTML file to write.",
)
@click.option(
    "--max-detail",
    type=click.IntRange(min=1),
    default=25_000,
    show_default=True,
    help="Spans and marks drawn one by one; beyond it the busiest lanes are drawn as "
    "counts per time bin (the header says which).",
)
@errors
def timeline_cmd(
    inputs: tuple[str, ...],
    fmt: str | None,
    devices: tuple[str, ...],
    window: str | None,
    rule_dirs: tuple[str, ...],
    kernel: str | None,
    spec: Path | None,
    vmlinux: Path | None,
    modules: Path | None,
    offsets: dict[str, float],
    no_cache: bool,
    output: Path,
    max_detail: int,
) -> None:
    """Write an interactive timeline: a lane per device (calls, the locks held under
    them, mappings, RPCITs) and per CPU, findings over the spans they involve, WARNs and
    Oopses at their aligned times, loss windows shaded, the RPCIT rate and latency.
    One self-contained HTML file: it opens from disk with no network.

    \b
    Example:
      tracetool timeline samples/simulated/race-v6.0-overlap-warn.txt \\
          samples/simulated/race-v6.0-overlap-warn-dmesg.txt -o race.html
      tracetool timeline big.txt --window 531.00005:531.0002 --device 0004:00:00.0
    """
    from tracetool import lanes, timeline_page

    trace = _load(inputs, fmt, spec, offsets, no_cache, vmlinux, modules)
    built = lanes.build(
        trace,
        devices=devices,
        window=lanes.parse_window(window),
        rule_dirs=rule_dirs,
        era=era_from_version(kernel) if kernel else None,
        max_detail=max_detail,
    )
    title = "tracetool timeline: " + ", ".join(Path(i).name for i in inputs)
    output.write_text(timeline_page.page(trace, built, title), encoding="utf-8")
    for line in timeline_page.describe(built):
        click.echo(line, err=True)
    click.echo(f"wrote {output}", err=True)


@main.command(name="export")
@_common
@click.option(
    "--perfetto",
    "perfetto_out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    metavar="FILE",
    help="Write Chrome trace-event JSON (opens in ui.perfetto.dev and chrome://tracing).",
)
@errors
def export_cmd(
    inputs: tuple[str, ...],
    fmt: str | None,
    devices: tuple[str, ...],
    window: str | None,
    rule_dirs: tuple[str, ...],
    kernel: str | None,
    spec: Path | None,
    vmlinux: Path | None,
    modules: Path | None,
    offsets: dict[str, float],
    no_cache: bool,
    perfetto_out: Path,
) -> None:
    """Export the timeline as Chrome trace-event JSON: a track per CPU and per device
    task, spans as complete events, RPCITs, findings and crashes as instants, and the
    RPCIT rate as a counter.

    \b
    Example:
      tracetool export --perfetto race.json samples/simulated/race-v6.0-overlap-warn.txt
    """
    from tracetool import lanes, perfetto

    trace = _load(inputs, fmt, spec, offsets, no_cache, vmlinux, modules)
    doc = perfetto.export(
        trace,
        devices=devices,
        window=lanes.parse_window(window),
        rule_dirs=rule_dirs,
        era=era_from_version(kernel) if kernel else None,
    )
    with perfetto_out.open("w", encoding="utf-8") as out:
        json.dump(doc, out, separators=(",", ":"))
    n = len(doc["traceEvents"])
    click.echo(f"wrote {perfetto_out}: {n:,} trace events", err=True)
