"""A seeded discrete-event model of the s390 IOMMU/DMA code paths that writes traces in
the formats tracetool reads, with a ground-truth sidecar (see ``engine`` for the core,
``dma`` for the I/O workload, ``writers`` for the output layouts).

Real s390 machines are not at hand, so tests, rules and stats check themselves against
runs of this model whose truth is known exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tracetool.errors import InputError
from tracetool.simulate import costs as costs_mod
from tracetool.simulate.dma import DmaOptions, DmaRun
from tracetool.simulate.engine import Engine, RowSpill
from tracetool.simulate.race import RaceOptions, RaceRun
from tracetool.simulate.writers import WRITERS, Warn

__all__ = ["DmaOptions", "RaceOptions", "dma_model", "simulate_dma", "simulate_race"]

# What each scenario can be written as.
FORMATS = {
    "dma": ("ftrace", "trace-cmd", "perf", "bpftrace", "bpftrace-json", "dmesg"),
    "race": ("ftrace", "function-graph", "trace-cmd", "perf", "bpftrace", "bpftrace-json", "dmesg"),
}
# Kernel release strings by era, as a WARN's "CPU: ... Not tainted" line prints them.
RELEASES = {
    "v6.0": "6.0.0",
    "v6.0+dma_domain_lock": "6.0.0-dma-domain-lock",
    "v6.1": "6.1.0",
    "v6.5": "6.5.0",
}


class _Discard:
    """A sink that keeps nothing: the model alone, for calibration."""

    def write(self, events: list[Any]) -> None:
        pass


def dma_model(opts: DmaOptions, costs: costs_mod.Costs | None = None) -> dict[str, Any]:
    """Run the DMA workload without writing a trace; return its summary."""
    run = DmaRun(opts, costs or costs_mod.load(), Engine(_Discard()))
    try:
        run.start()
        run.engine.run()
        return run.summary()
    finally:
        run.truth.flushes.close()


def _writer(fmt: str, out: Path, ncpus: int, scenario: str, buffer_events: int | None) -> Any:
    if buffer_events is not None and fmt != "ftrace":
        raise InputError("--buffer-events applies to the ftrace trace file only")
    return WRITERS[fmt](out, ncpus, scenario, buffer_events)


def simulate_dma(
    opts: DmaOptions,
    out: Path,
    fmt: str = "ftrace",
    costs: costs_mod.Costs | None = None,
    truth: Path | None = None,
    buffer_events: int | None = None,
) -> dict[str, Any]:
    """Write a run of the DMA workload to ``out`` in ``fmt`` and its ground truth to
    ``truth`` (default: ``out`` with ``.truth.json``). With ``buffer_events`` the ring
    buffer holds that many entries per CPU and the oldest are overwritten (the truth
    says how many per CPU, and until when). Returns the truth's summary."""
    _check_format("dma", fmt)
    table = costs or costs_mod.load()
    writer = _writer(fmt, out, opts.jobs, "dma", buffer_events)
    run = DmaRun(opts, table, Engine(writer))
    try:
        run.start()
        run.engine.run()
    except BaseException:
        writer.abort()
        run.truth.flushes.close()
        raise
    writer.close()
    summary = run.summary()
    doc = {
        "scenario": "dma",
        "format": fmt,
        "kernel": run.era,
        "options": asdict(opts),
        "costs": table.as_dict(),
        "events": run.engine.emitted,
        "summary": summary,
        "losses": getattr(writer, "losses", []),
        "flush_columns": ["start_ns", "end_ns", "cpu", "caller", "scope", "addr", "range", "ret"],
        "flushes": run.truth.flushes,
    }
    _write_truth(doc, truth or out.with_name(out.name + ".truth.json"))
    return summary


def _check_format(scenario: str, fmt: str) -> None:
    if fmt not in FORMATS[scenario]:
        raise InputError(
            f"the {scenario} scenario cannot be written as {fmt!r}; "
            f"choose one of {', '.join(FORMATS[scenario])}"
        )


def _write_truth(doc: dict[str, Any], path: Path) -> None:
    """The sidecar as one JSON object; the flush rows (millions in a long run) are
    written row by row rather than through the generic encoder."""
    flushes = doc.pop("flushes")
    if not isinstance(flushes, RowSpill):
        spill = RowSpill()
        for row in flushes:
            spill.append(row)
        flushes = spill
    head = json.dumps(doc, separators=(",", ":"))
    with path.open("w", encoding="utf-8") as f:
        f.write(head[:-1] + ',"flushes":[')
        for chunk in flushes.json_chunks():
            f.write(chunk)
        f.write("]}\n")


def simulate_race(
    opts: RaceOptions,
    out: Path,
    fmt: str = "ftrace",
    truth: Path | None = None,
    buffer_events: int | None = None,
) -> dict[str, Any]:
    """Write a run of deconfigure-during-vfio-init to ``out`` and its ground truth
    (every span, overlap, lock hold, flush and WARN) beside it. Returns the summary."""
    _check_format("race", fmt)
    era = opts.era if opts.era in ("v6.0", "v6.0+dma_domain_lock", "v6.1", "v6.5") else "v6.0"
    writer = _writer(fmt, out, 4, f"race/{era}", buffer_events)
    run = RaceRun(opts, Engine(writer))
    try:
        run.start()
        run.engine.run()
    except BaseException:
        writer.abort()
        raise
    t = run.truth
    warn = t.warns[0] if t.warns else None
    if fmt == "dmesg" and warn is not None:
        writer.warn = Warn(
            warn["ts_ns"],
            warn["cpu"],
            (warn["comm"], warn["pid"]),
            warn["func"],
            "arch/s390/pci/pci_dma.c:592",
            (
                "s390_iommu_detach_device",
                "s390_iommu_release_device",
                "iommu_release_device",
                "zpci_deconfigure_device",
                "zpci_event_availability",
            ),
            RELEASES[opts.era],
        )
    writer.close()
    overlaps = run.overlaps()
    summary = {
        "era": opts.era,
        "devices": opts.devices,
        "overlaps": len(overlaps),
        "warns": len(t.warns),
        "flushes": len(t.flushes),
        "lock_holds": len(t.locks),
    }
    doc = {
        "scenario": "race",
        "format": fmt,
        "kernel": opts.era,
        "options": asdict(opts),
        "events": run.engine.emitted,
        "panic_ns": warn["ts_ns"] if (warn and fmt == "dmesg") else None,
        "summary": summary,
        "devices": [
            {
                "name": d.name,
                "fid": d.fid,
                "fh": d.fh,
                "dev": d.dev,
                "zdev": d.zdev,
                "domain": d.domain,
                "group": d.group,
            }
            for d in run.devs
        ],
        "spans": t.spans,
        "overlaps": overlaps,
        "locks": t.locks,
        "warns": t.warns,
        "losses": getattr(writer, "losses", []),
        "flush_columns": ["start_ns", "end_ns", "cpu", "caller", "scope", "addr", "range", "ret"],
        "flushes": t.flushes,
    }
    _write_truth(doc, truth or out.with_name(out.name + ".truth.json"))
    return summary
