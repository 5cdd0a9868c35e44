"""The s390 PCI debugfs ``statistics`` file, and our RPCIT counts reconciled with it.

``/sys/kernel/debug/pci/<pci-name>/statistics`` (arch/s390/pci/pci_debug.c) prints, when
function measurement is enabled::

    Update interval: 4000 ms
    Samples: 1234
    Last update TOD: d9c1a2b3c4d5e6f7
               Load operations:	123
            Refresh operations:	658
            ...
                 Global RPCITs:	5

every counter as ``"%26s:\\t%llu"``: the hardware's function measurement block (``Load
operations`` ... ``Refresh operations``, then per-format counters such as ``DMA read
bytes``) and the software counters (up to v6.6 ``Allocated pages``, ``Mapped pages``,
``Unmapped pages``; from v6.7 ``Mapped pages``, ``Unmapped pages``, ``Global RPCITs``,
``Sync Map RPCITs``, ``Sync RPCITs``). A snapshot taken before and one after the trace
give what the kernel itself counted meanwhile; ``reconcile`` puts that beside what the
trace shows for the same device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tracetool.devices import PCI_NAME
from tracetool.errors import InputError
from tracetool.stats import MAP_OPS, UNMAP_OPS, op_counts, scoped

COUNTER = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?):\t(\d+)$")
HEADER = re.compile(
    r"^(Update interval: \d+ ms|Samples: \d+|Last update TOD: [0-9a-fA-F]+"
    r"|FMB statistics disabled|Unknown format)$"
)


@dataclass
class Snapshot:
    """One read of the statistics file: its counters and its header lines."""

    path: str
    counters: dict[str, int] = field(default_factory=dict)
    header: dict[str, str] = field(default_factory=dict)


def read_snapshot(path: str | Path) -> Snapshot:
    """Parse a saved statistics file; any line that is neither a counter nor one of the
    file's header lines is an error naming ``path:line``."""
    snap = Snapshot(str(path))
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the statistics snapshot: {exc.strerror}") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if m := COUNTER.match(line):
            snap.counters[m.group(1)] = int(m.group(2))
        elif HEADER.match(line):
            key, _, value = line.partition(":")
            snap.header[key] = value.strip()
        else:
            raise InputError(
                f"{path}:{number}: not a line of the s390 PCI debugfs statistics file "
                f"({line.strip()[:60]!r}); give a copy of /sys/kernel/debug/pci/<device>/statistics"
            )
    if not snap.counters and "FMB statistics disabled" not in snap.header:
        raise InputError(f"{path}: no counters in it; is it a debugfs statistics file?")
    return snap


def device_of(path: str) -> str | None:
    """The PCI name in a snapshot's path (``.../pci/0004:00:00.0/statistics``), if any."""
    m = re.search(PCI_NAME[1:-1], path)
    return m.group(0) if m else None


# counter -> (what of the trace it is compared with, how the kernel counts it)
COMPARED = {
    "Refresh operations": ("RPCITs traced", "every RPCIT the function issued (hardware count)"),
    "Global RPCITs": ("global RPCITs traced", "flush_iotlb_all and the -ENOMEM fallbacks"),
    "Sync Map RPCITs": ("RPCITs from s390_iommu_iotlb_sync_map", "RPCITs after a map"),
    "Sync RPCITs": ("RPCITs from s390_iommu_iotlb_sync", "RPCITs for gathered unmaps"),
    "Mapped pages": ("pages of traced maps", "pages mapped"),
    "Unmapped pages": ("pages of traced unmaps", "pages unmapped"),
}


def traced_counts(spans: pl.LazyFrame) -> dict[str, dict[str, int | None]]:
    """What the trace shows per device, per compared counter (None: not traced).
    Streamed from ``spans``: only per-device figures are held."""
    is_caller = {
        "Sync Map RPCITs": "s390_iommu_iotlb_sync_map",
        "Sync RPCITs": "s390_iommu_iotlb_sync",
    }
    flushes = (
        scoped(spans)
        .group_by("device")
        .agg(
            pl.len().alias("Refresh operations"),
            (pl.col("scope") == "global").sum().alias("Global RPCITs"),
            *((pl.col("caller") == c).sum().alias(name) for name, c in is_caller.items()),
        )
        .collect(engine="streaming")
    )
    counts: dict[str, dict[str, int | None]] = {
        row.pop("device"): row for row in flushes.iter_rows(named=True)
    }
    known = spans.filter(pl.col("device").is_not_null())
    # A v6.7 DMA-API call fires the iommu:map/unmap tracepoint itself: counted once.
    for name, ops in (("Mapped pages", MAP_OPS), ("Unmapped pages", UNMAP_OPS)):
        pages = op_counts(known, {"device": pl.col("device")}, ops)
        for device, n in pages.select("device", "pages").collect(engine="streaming").rows():
            counts.setdefault(device, {})[name] = n
    return counts


def reconcile(
    before: Snapshot, after: Snapshot, traced: dict[str, int | None], device: str
) -> pl.DataFrame:
    """One row per counter both snapshots have that the trace can be compared with:
    the kernel's count over the trace (after - before), the trace's, and the verdict."""
    rows = []
    for counter, (what, meaning) in COMPARED.items():
        if counter not in before.counters or counter not in after.counters:
            continue
        delta = after.counters[counter] - before.counters[counter]
        seen = traced.get(counter)
        hint = ""
        if seen is None:
            verdict = "not traced"
        elif delta < 0:
            verdict = "counter went back"
            hint = "was the device re-enabled between the snapshots?"
        elif seen == delta:
            verdict = "match"
        elif seen < delta:
            verdict = f"trace misses {delta - seen}"
            hint = "lost events, or probes attached after the first snapshot?"
        else:
            verdict = f"trace has {seen - delta} more"
            hint = "were the snapshots taken while the trace ran?"
        rows.append(
            {
                "device": device,
                "counter": counter,
                "kernel": delta,
                "traced": seen,
                "compared_with": what,
                "meaning": meaning,
                "verdict": verdict,
                "hint": hint,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "device": pl.String,
            "counter": pl.String,
            "kernel": pl.Int64,
            "traced": pl.Int64,
            "compared_with": pl.String,
            "meaning": pl.String,
            "verdict": pl.String,
            "hint": pl.String,
        },
    )


def parse_spec(spec: str) -> tuple[str | None, str, str]:
    """``[DEVICE=]BEFORE,AFTER`` as given to ``--counters``."""
    device, _, files = spec.rpartition("=") if "=" in spec.split(",")[0] else (None, "", spec)
    before, sep, after = files.partition(",")
    if not sep or not before or not after:
        raise InputError(
            f"--counters {spec!r}: give two snapshots, BEFORE,AFTER "
            "(optionally DEVICE=BEFORE,AFTER), such as 0004:00:00.0=before.txt,after.txt"
        )
    return device or None, before, after


def reconcile_all(spans: pl.LazyFrame, specs: list[tuple[str | None, str, str]]) -> pl.DataFrame:
    """``reconcile`` for every ``(device, before, after)``; the device defaults to a PCI
    name in the snapshot's path, else the only device with RPCITs in the trace."""
    traced = traced_counts(spans)
    flushed = sorted(d for d, c in traced.items() if c.get("Refresh operations"))
    tables = []
    for device, before_path, after_path in specs:
        dev = device or device_of(before_path) or device_of(after_path)
        if dev is None:
            if len(flushed) != 1:
                raise InputError(
                    f"--counters {before_path},{after_path}: which device? The trace has "
                    f"RPCITs on {', '.join(flushed) or 'no device'}; give DEVICE=BEFORE,AFTER"
                )
            dev = flushed[0]
        before, after = read_snapshot(before_path), read_snapshot(after_path)
        tables.append(reconcile(before, after, traced.get(dev, {}), dev))
    return pl.concat(tables) if tables else reconcile(Snapshot(""), Snapshot(""), {}, "")
