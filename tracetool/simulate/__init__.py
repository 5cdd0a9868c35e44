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
from tracetool.simulate.engine import Engine
from tracetool.simulate.writers import WRITERS

__all__ = ["DmaOptions", "dma_model", "simulate_dma"]


class _Discard:
    """A sink that keeps nothing: the model alone, for calibration."""

    def write(self, events: list[Any]) -> None:
        pass


def dma_model(opts: DmaOptions, costs: costs_mod.Costs | None = None) -> dict[str, Any]:
    """Run the DMA workload without writing a trace; return its summary."""
    run = DmaRun(opts, costs or costs_mod.load(), Engine(_Discard()))
    run.start()
    run.engine.run()
    return run.summary()


def simulate_dma(
    opts: DmaOptions,
    out: Path,
    fmt: str = "ftrace",
    costs: costs_mod.Costs | None = None,
    truth: Path | None = None,
) -> dict[str, Any]:
    """Write a run of the DMA workload to ``out`` in ``fmt`` and its ground truth to
    ``truth`` (default: ``out`` with ``.truth.json``). Returns the truth's summary."""
    if fmt not in WRITERS:
        raise InputError(f"cannot write format {fmt!r}; choose one of {', '.join(WRITERS)}")
    table = costs or costs_mod.load()
    writer = WRITERS[fmt](out, opts.jobs)
    run = DmaRun(opts, table, Engine(writer))
    try:
        run.start()
        run.engine.run()
    except BaseException:
        writer.abort()
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
        "flush_columns": ["start_ns", "end_ns", "cpu", "caller", "scope", "addr", "range", "ret"],
        "flushes": run.truth.flushes,
    }
    sidecar = truth or out.with_name(out.name + ".truth.json")
    with sidecar.open("w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    return summary
