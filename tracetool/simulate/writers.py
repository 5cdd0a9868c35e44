"""Writers: the simulator's events in the byte layout a kernel or tool prints.

Each writer is a sink for ``Engine``: it receives events in merge order, renders each
with the template of its code and streams the lines to disk. Templates mirror the
kernel's printf formats (kernel/trace/trace_output.c, trace_kprobe.c, the tracepoint
``TP_printk``s of include/trace/events/iommu.h and block.h), as docs/domain.md
sections 2 and 3 give them.

The ``trace`` file starts with a header that counts the entries, which is known only at
the end: the body goes to a temporary file beside the output first and is copied after
the header.
"""

# The templates mirror C printf formats on purpose: keep %-formatting.
# ruff: noqa: UP031

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar

from tracetool.simulate.engine import Event

# Kernel text the probes and return sites resolve to: symbol -> (address, size).
SYMS: dict[str, tuple[int, int]] = {
    "s390_iommu_release_device": (0x95BE0F258, 0x98),
    "s390_iommu_attach_device": (0x95BE0EE18, 0x1F0),
    "s390_iommu_detach_device": (0x95BE0F188, 0xD0),
    "s390_iommu_probe_device": (0x95BE0F0F0, 0x70),
    "zpci_dma_init_device": (0x95B5A1F80, 0x220),
    "zpci_dma_exit_device": (0x95B5A21A0, 0x98),
    "zpci_refresh_trans": (0x95B5A5E10, 0x110),
    "__dma_purge_tlb": (0x95B5A2B40, 0x120),
    "dma_alloc_address": (0x95B5A2C60, 0x1A8),
    "s390_dma_map_pages": (0x95B5A3100, 0x280),
    "s390_dma_unmap_pages": (0x95B5A3380, 0x160),
    "dma_map_page_attrs": (0x95B6C1E08, 0x1A8),
    "dma_unmap_page_attrs": (0x95B6C1FB0, 0x190),
    "iommu_dma_map_page": (0x95BE12A40, 0x2A8),
    "iommu_dma_unmap_page": (0x95BE12CE8, 0x118),
    "s390_iommu_iotlb_sync_map": (0x95BE0F6A0, 0xB0),
    "s390_iommu_iotlb_sync": (0x95BE0F750, 0xB8),
    "s390_iommu_flush_iotlb_all": (0x95BE0F5F8, 0x98),
    "fq_flush_iotlb": (0x95BE11F10, 0x88),
    "fq_flush_timeout": (0x95BE11F98, 0x70),
    "call_timer_fn": (0x95B3D2A10, 0x180),
}
# Where each caller's call returns to: caller -> offset of the instruction after it.
RETURN_OFF: dict[str, int] = {
    "__dma_purge_tlb": 0x7C,
    "dma_alloc_address": 0x10C,
    "s390_iommu_iotlb_sync_map": 0x4E,
    "s390_iommu_iotlb_sync": 0x52,
    "s390_iommu_flush_iotlb_all": 0x5E,
    "fq_flush_iotlb": 0x3E,
    "fq_flush_timeout": 0x32,
    "dma_map_page_attrs": 0x9C,
    "dma_unmap_page_attrs": 0x7A,
    "call_timer_fn": 0x3A,
}


def _entry(name: str, sym: str) -> str:
    """print_kprobe_event(): ``name: (sym+0x0/0xsize)``."""
    return "%s: (%s+0x0/0x%x)" % (name, sym, SYMS[sym][1])


def _ret(name: str, site: str, func: str) -> str:
    """print_kretprobe_event(): ``name: (site+off/size <- func)``."""
    return "%s: (%s+0x%x/0x%x <- %s)" % (name, site, RETURN_OFF[site], SYMS[site][1], func)


def _ftrace_templates() -> dict[str, Callable[..., str]]:
    rpcit = _entry("rpcit", "zpci_refresh_trans")
    flush_all = _entry("flushall", "s390_iommu_flush_iotlb_all")
    timeout = _entry("fqtimeout", "fq_flush_timeout")
    timeout_r = _ret("fqtimeout_r", "call_timer_fn", "fq_flush_timeout")
    return {
        "dma_map": lambda func, dev, name, size: (
            '%s dev=0x%x name="%s" size=0x%x' % (_entry("dmamap", func), dev, name, size)
        ),
        "dma_map_r": lambda func, iova: (
            "%s ret=0x%x" % (_ret("dmamap_r", "dma_map_page_attrs", func), iova)
        ),
        "dma_unmap": lambda func, dev, name, iova, size: (
            '%s dev=0x%x name="%s" addr=0x%x size=0x%x'
            % (_entry("dmaunmap", func), dev, name, iova, size)
        ),
        "dma_unmap_r": lambda func: _ret("dmaunmap_r", "dma_unmap_page_attrs", func),
        "rpcit": lambda fn, addr, size: "%s fn=0x%x addr=0x%x range=0x%x" % (rpcit, fn, addr, size),
        "rpcit_r": lambda site, ret: (
            "%s ret=%d" % (_ret("rpcit_r", site, "zpci_refresh_trans"), ret)
        ),
        "iommu_map": lambda iova, size, paddr: (
            "map: IOMMU: iova=0x%016x - 0x%016x paddr=0x%016x size=%d"
            % (iova, iova + size, paddr, size)
        ),
        "iommu_unmap": lambda iova, size: (
            "unmap: IOMMU: iova=0x%016x - 0x%016x size=%d unmapped_size=%d"
            % (iova, iova + size, size, size)
        ),
        "rq_issue": lambda dev, nbytes, sector, comm: (
            "block_rq_issue: %s R %d () %d + %d [%s]" % (dev, nbytes, sector, nbytes // 512, comm)
        ),
        "rq_complete": lambda dev, sector: "block_rq_complete: %s R () %d + 8 [0]" % (dev, sector),
        "flush_all": lambda domain: "%s domain=0x%x" % (flush_all, domain),
        "flush_all_r": lambda caller: _ret("flushall_r", caller, "s390_iommu_flush_iotlb_all"),
        "fq_timeout": lambda: timeout,
        "fq_timeout_r": lambda: timeout_r,
    }


class FtraceWriter:
    """The ``trace`` file (tracer nop, irq-info on, 5 flag columns, clock local)."""

    HEADER: ClassVar[list[str]] = [
        "#                                _-----=> irqs-off/BH-disabled",
        "#                               / _----=> need-resched",
        "#                              | / _---=> hardirq/softirq",
        "#                              || / _--=> preempt-depth",
        "#                              ||| / _-=> migrate-disable",
        "#                              |||| /     delay",
        "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
        "#              | |         |   |||||     |         |",
    ]

    def __init__(self, path: Path, ncpus: int) -> None:
        self.path = path
        self.ncpus = ncpus
        self.part = path.with_name(path.name + ".part")
        self._body: IO[str] = self.part.open("w", encoding="utf-8", newline="\n")
        self.templates = _ftrace_templates()
        self._prefix: dict[tuple[str, int, int], str] = {}
        self.entries = 0

    def write(self, events: list[Event]) -> None:
        tpl, prefixes = self.templates, self._prefix
        lines: list[str] = []
        add = lines.append
        for ts, cpu, _, task, flags, code, values in events:
            key = (task[0], task[1], cpu)
            prefix = prefixes.get(key)
            if prefix is None:
                prefix = prefixes[key] = "%16s-%-7d [%03d] " % (task[0], task[1], cpu)
            us = (ts + 500) // 1000  # ns2usecs() rounds
            add(
                "%s%s %5d.%06d: %s\n"
                % (prefix, flags, us // 1_000_000, us % 1_000_000, tpl[code](*values))
            )
        self.entries += len(lines)
        self._body.write("".join(lines))

    def close(self) -> None:
        self._body.close()
        n = self.entries
        with self.path.open("w", encoding="utf-8", newline="\n") as out:
            out.write("# tracer: nop\n#\n")
            out.write(
                "# entries-in-buffer/entries-written: %d/%d   #P:%d\n#\n" % (n, n, self.ncpus)
            )
            out.write("".join(line + "\n" for line in self.HEADER))
            with self.part.open(encoding="utf-8") as body:
                shutil.copyfileobj(body, out, 1 << 20)
        self.part.unlink()

    def abort(self) -> None:
        self._body.close()
        self.part.unlink(missing_ok=True)


WRITERS: dict[str, Callable[..., Any]] = {"ftrace": FtraceWriter}
