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

import functools
import re
import shutil
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

from tracetool.simulate.engine import Event
from tracetool.simulate.graph_out import find_mark

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
    "zpci_register_ioat": (0x95B59E2C0, 0x108),
    "zpci_unregister_ioat": (0x95B59E3C8, 0xC0),
    "zpci_event_availability": (0x95B5A7D40, 0x3B0),
    "zpci_deconfigure_device": (0x95B59F1A8, 0x110),
    "mutex_lock": (0x95BE4C0E0, 0x48),
    "mutex_unlock": (0x95BE4C128, 0x40),
    "s390_iommu_map": (0x95BE0F7A8, 0x60),
    "s390_iommu_unmap": (0x95BE0F810, 0x78),
    "iommu_map": (0x95BDFD110, 0x88),
    "__iommu_unmap": (0x95BDFD3A0, 0x170),
    "__iommu_map": (0x95BDFCE48, 0x2C8),
    "iommu_unmap": (0x95BDFD510, 0x98),
    "s390_iommu_map_pages": (0x95BE0F860, 0x120),
    "s390_iommu_unmap_pages": (0x95BE0F980, 0xF8),
    "s390_iommu_update_trans": (0x95BE0F4A0, 0x2B8),
    "__iommu_probe_device": (0x95BDFDF70, 0x2A0),
    "__iommu_attach_device": (0x95BDFC2F0, 0xD8),
    "__iommu_detach_device": (0x95BDFC3C8, 0xC0),
    "iommu_release_device": (0x95BDFE648, 0x130),
    "iommu_deinit_device": (0x95BDFE7A0, 0x148),
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
    "s390_iommu_update_trans": 0x1A6,
    "__iommu_probe_device": 0x118,
    "__iommu_attach_device": 0x3A,
    "__iommu_detach_device": 0x4E,
    "s390_iommu_release_device": 0x5C,
    "iommu_release_device": 0x5C,
    "iommu_deinit_device": 0x64,
    "iommu_map": 0x4C,
    "__iommu_unmap": 0xD2,
    "__iommu_map": 0x1A4,
    "iommu_unmap": 0x5E,
}
# kprobe event names of the capture recipes (samples/capture), by probed function.
PROBE_NAMES: dict[str, str] = {
    "s390_iommu_probe_device": "s390_probe",
    "s390_iommu_attach_device": "s390_att",
    "s390_iommu_detach_device": "s390_det",
    "s390_iommu_release_device": "s390_rel",
    "zpci_dma_init_device": "dma_init",
    "zpci_dma_exit_device": "dma_exit",
    "zpci_register_ioat": "reg_ioat",
    "zpci_unregister_ioat": "unreg_ioat",
    "zpci_event_availability": "zpci_event",
    "zpci_deconfigure_device": "zpci_deconf",
    "s390_iommu_map": "s390_map",
    "s390_iommu_unmap": "s390_unmap",
    "s390_iommu_map_pages": "map_pages",
    "s390_iommu_unmap_pages": "unmap_pages",
    "s390_iommu_iotlb_sync_map": "sync_map",
    "s390_iommu_iotlb_sync": "sync",
    "s390_iommu_flush_iotlb_all": "flushall",
    # v6.0+dma_domain_lock recipe: mutex probes filtered on &zdev->dma_domain_lock
    "mutex_lock": "dma_domain_lock",
    "mutex_unlock": "dma_domain_unlock",
}


@functools.cache
def _entry(name: str, sym: str) -> str:
    """print_kprobe_event(): ``name: (sym+0x0/0xsize)``."""
    return "%s: (%s+0x0/0x%x)" % (name, sym, SYMS[sym][1])


@functools.cache
def _ret(name: str, site: str, func: str) -> str:
    """print_kretprobe_event(): ``name: (site+off/size <- func)``."""
    return "%s: (%s+0x%x/0x%x <- %s)" % (name, site, RETURN_OFF[site], SYMS[site][1], func)


def _ftrace_templates() -> dict[str, Callable[..., str]]:
    rpcit = _entry("rpcit", "zpci_refresh_trans")
    flush_all = _entry("flushall", "s390_iommu_flush_iotlb_all")
    timeout = _entry("fqtimeout", "fq_flush_timeout")
    timeout_r = _ret("fqtimeout_r", "call_timer_fn", "fq_flush_timeout")

    def call(func: str, *args: tuple[str, int | str]) -> str:
        """Fetch-args as the kernel prints them: x64 as 0x%Lx, strings quoted."""
        name = PROBE_NAMES.get(func, func)
        return _entry(name, func) + "".join(
            ' %s="%s"' % (k, v) if isinstance(v, str) else " %s=0x%x" % (k, v) for k, v in args
        )

    def ret(func: str, site: str, value: int | None) -> str:
        text = _ret(PROBE_NAMES.get(func, func) + "_r", site, func)
        return text if value is None else "%s ret=%d" % (text, value)

    return {
        "call": call,
        "ret": ret,
        "group": lambda event, gid, dev: "%s: IOMMU: groupID=%d device=%s" % (event, gid, dev),
        "dev": lambda event, dev: "%s: IOMMU: device=%s" % (event, dev),
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

    def __init__(self, path: Path, ncpus: int, buffer_events: int | None = None) -> None:
        self.path = path
        self.ncpus = ncpus
        self.part = path.with_name(path.name + ".part")
        self._body: IO[str] = self.part.open("w", encoding="utf-8", newline="\n")
        self.templates = _ftrace_templates()
        self._prefix: dict[tuple[str, int, int], str] = {}
        self.entries = 0
        # Overwrite mode with room for ``buffer_events`` entries per CPU: the oldest
        # are lost. The CPU of every line is kept (2 bytes each) to drop them at close.
        self.capacity = buffer_events
        self._cpus = array("H")
        self.per_cpu: Counter[int] = Counter()
        self.losses: list[dict[str, int]] = []

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
        if self.capacity is not None:
            cpus = [e[1] for e in events]
            self._cpus.extend(cpus)
            self.per_cpu.update(cpus)
        self.entries += len(lines)
        self._body.write("".join(lines))

    def close(self) -> None:
        self._body.close()
        written = self.entries
        drop = (
            {c: max(0, n - self.capacity) for c, n in self.per_cpu.items()}
            if (self.capacity is not None)
            else {}
        )
        kept = written - sum(drop.values())
        with self.path.open("w", encoding="utf-8", newline="\n") as out:
            out.write("# tracer: nop\n#\n")
            out.write(
                "# entries-in-buffer/entries-written: %d/%d   #P:%d\n#\n"
                % (kept, written, self.ncpus)
            )
            out.write("".join(line + "\n" for line in self.HEADER))
            with self.part.open(encoding="utf-8") as body:
                if kept == written:
                    shutil.copyfileobj(body, out, 1 << 20)
                else:
                    self._overwritten(body, out, drop)
        self.part.unlink()

    def _overwritten(self, body: IO[str], out: IO[str], drop: dict[int, int]) -> None:
        """Copy what an overwritten ring buffer still holds: each CPU's newest
        ``capacity`` entries. As the kernel annotates a buffer that had overruns, the
        first entry of every CPU but the very first one gets a "buffer started" line.
        The losses (per CPU: how many, from when, to the first entry kept) go to
        ``self.losses`` for the ground truth (test_cpu_buff_start() in trace.c)."""
        seen: Counter[int] = Counter()
        first_line = True
        first_lost: dict[int, str] = {}
        started: set[int] = set()
        cpus = self._cpus
        for i, line in enumerate(body):
            cpu = cpus[i]
            n = seen[cpu]
            seen[cpu] = n + 1
            if n < drop[cpu]:
                first_lost.setdefault(cpu, line)
                continue
            if cpu not in started:
                started.add(cpu)
                if not first_line:  # not for the trace's first entry
                    out.write("##### CPU %u buffer started ####\n" % cpu)
                if drop[cpu]:
                    self.losses.append(
                        {
                            "cpu": cpu,
                            "lost": drop[cpu],
                            "first_lost_us": _line_us(first_lost[cpu]),
                            "first_kept_us": _line_us(line),
                        }
                    )
            first_line = False
            out.write(line)

    def abort(self) -> None:
        self._body.close()
        self.part.unlink(missing_ok=True)


_LINE_TS = re.compile(r" (\d+)\.(\d{6}): ")


def _line_us(line: str) -> int:
    """The timestamp of a ``trace`` line, in µs."""
    m = _LINE_TS.search(line)
    assert m is not None, line
    return int(m.group(1)) * 1_000_000 + int(m.group(2))


_KP_ENTRY = re.compile(r"(\w+): \((\w+)\+0x0/0x[0-9a-f]+\)(.*)")
_KP_RETURN = re.compile(r"(\w+): \((\w+)\+0x([0-9a-f]+)/0x[0-9a-f]+ <- (\w+)\)(.*)")


class TraceCmdWriter:
    """``trace-cmd report`` of the run (trace-cmd 3.x, default options): "cpus=N", then
    per event "%16s-%-5d [%03d] %5lu.%06lu: " and the event name padded to 20 columns.
    libtraceevent prints a kprobe's location as the raw address ("(%lx)") and a
    kretprobe's as "(function <- return site)", where the kernel prints symbols."""

    def __init__(self, path: Path, ncpus: int) -> None:
        self.templates = _ftrace_templates()
        self._out: IO[str] = path.open("w", encoding="utf-8", newline="\n")
        self._out.write("cpus=%d\n" % ncpus)
        self._info: dict[str, tuple[str, str]] = {}

    def _split(self, body: str) -> tuple[str, str]:
        """The kernel's ``name: payload`` as trace-cmd's name and payload."""
        if m := _KP_ENTRY.fullmatch(body):
            return m.group(1), "(%x)%s" % (SYMS[m.group(2)][0], m.group(3))
        if m := _KP_RETURN.fullmatch(body):
            name, site, off, func, rest = m.groups()
            return name, "(%x <- %x)%s" % (SYMS[func][0], SYMS[site][0] + int(off, 16), rest)
        name, _, payload = body.partition(": ")
        return name, payload

    def write(self, events: list[Event]) -> None:
        tpl = self.templates
        lines = []
        for ts, cpu, _, task, _flags, code, values in events:
            name, payload = self._split(tpl[code](*values))
            us = (ts + 500) // 1000
            lines.append(
                "%16s-%-5d [%03d] %5d.%06d: %s: %s%s\n"
                % (
                    task[0],
                    task[1],
                    cpu,
                    us // 1_000_000,
                    us % 1_000_000,
                    name,
                    " " * max(0, 20 - len(name)),
                    payload,
                )
            )
        self._out.write("".join(lines))

    def close(self) -> None:
        self._out.close()

    def abort(self) -> None:
        self._out.close()


# The subsystem of each tracepoint the scenarios emit, for perf's "sys:name".
TRACEPOINT_SYSTEMS = {
    "block_rq_issue": "block",
    "block_rq_complete": "block",
    "map": "iommu",
    "unmap": "iommu",
    "add_device_to_group": "iommu",
    "remove_device_from_group": "iommu",
    "attach_device_to_domain": "iommu",
}


class PerfWriter:
    """``perf script`` of a ``perf record -e probe:* -e iommu:* -e block:...`` session
    (perf_sample__fprintf_start: "%16s %5d [%03d] %12s: ", time truncated to µs; then
    the event name right-aligned to the longest one the session recorded, and the
    payload). Probes are named as ``perf probe`` names them: ``probe:FUNC`` and
    ``probe:FUNC__return``, with libtraceevent's raw addresses. The name width is known
    only once every event has been seen, so lines go to a temporary file first and are
    padded in one vectorised pass."""

    def __init__(self, path: Path, ncpus: int) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.templates = _ftrace_templates()
        self._body: IO[str] = self.part.open("w", encoding="utf-8", newline="\n")
        self.width = 0

    def _split(self, body: str) -> tuple[str, str]:
        if m := _KP_ENTRY.fullmatch(body):
            return "probe:" + m.group(2), "(%x)%s" % (SYMS[m.group(2)][0], m.group(3))
        if m := _KP_RETURN.fullmatch(body):
            _, site, off, func, rest = m.groups()
            payload = "(%x <- %x)%s" % (SYMS[func][0], SYMS[site][0] + int(off, 16), rest)
            return "probe:%s__return" % func, payload
        name, _, payload = body.partition(": ")
        return "%s:%s" % (TRACEPOINT_SYSTEMS[name], name), payload

    def write(self, events: list[Event]) -> None:
        tpl = self.templates
        lines = []
        width = self.width
        for ts, cpu, _, task, _flags, code, values in events:
            name, payload = self._split(tpl[code](*values))
            width = max(width, len(name))
            lines.append(
                "%16s %5d [%03d] %12s: \x00%s\x00%s\n"
                % (
                    task[0],
                    task[1],
                    cpu,
                    "%d.%06d" % (ts // 1_000_000_000, ts % 1_000_000_000 // 1000),
                    name,
                    payload,
                )
            )
        self.width = width
        self._body.write("".join(lines))

    def close(self) -> None:
        self._body.close()
        width = self.width
        with (
            self.path.open("w", encoding="utf-8", newline="\n") as out,
            self.part.open(encoding="utf-8") as body,
        ):
            while chunk := body.readlines(1 << 22):
                parts = (line.split("\x00") for line in chunk)
                out.write("".join(p + n.rjust(width) + ": " + rest for p, n, rest in parts))
        self.part.unlink()

    def abort(self) -> None:
        self._body.close()
        self.part.unlink(missing_ok=True)


def _printk(ts: int, text: str) -> str:
    """A kernel log line as dmesg prints it: ``[%5lu.%06lu] text``."""
    return "[%5d.%06d] %s\n" % (ts // 1_000_000_000, ts % 1_000_000_000 // 1000, text)


@dataclass(frozen=True)
class Warn:
    """A WARN_ON that fired: where, who, and the call chain that led there."""

    ts: int
    cpu: int
    task: tuple[str, int]
    func: str
    location: str
    chain: tuple[str, ...]
    release: str = "6.0.0"


class DmesgWriter:
    """The kernel log of the run (``dmesg``). The IOMMU core's messages come from the
    events that print them; a WARN (``Warn``) is printed at its time and, as with
    panic_on_warn and ftrace_dump_on_oops, followed by the panic and a latency-format
    dump of the trace buffer (kernel/trace/trace.c ftrace_dump()). Nothing after the
    panic happens. With no crash, the DMA run reaches the log the other way a trace
    does: SysRq-z (``echo z > /proc/sysrq-trigger``) after the run dumps the buffer.
    The ring buffer is bounded, so events are kept in memory."""

    def __init__(self, path: Path, ncpus: int, scenario: str = "race") -> None:
        self.path = path
        self.scenario = scenario
        self.templates = _ftrace_templates()
        self.events: list[tuple[int, int, tuple[str, int], str, str]] = []
        self.warn: Warn | None = None

    def write(self, events: list[Event]) -> None:
        tpl = self.templates
        self.events.extend(
            (ts, cpu, task, flags, tpl[code](*values))
            for ts, cpu, _, task, flags, code, values in events
        )

    def _messages(self, until: int | None) -> list[tuple[int, str]]:
        out = []
        for ts, _, _, _, body in self.events:
            if until is not None and ts > until:
                break
            if body.startswith(("add_device_to_group:", "remove_device_from_group:")):
                gid = body.split("groupID=")[1].split()[0]
                dev = body.rsplit("device=", 1)[1]
                verb = "Adding to" if body.startswith("add") else "Removing from"
                out.append((ts + 2_000, "pci %s: %s iommu group %s" % (dev, verb, gid)))
        return out

    @staticmethod
    def _dump(
        at: int, kept: list[tuple[int, int, tuple[str, int], str, str]]
    ) -> list[tuple[int, str]]:
        """ftrace_dump() printed from ``at``: the entries in the latency format, between
        dashed lines, each its own printk."""
        dump = ["Dumping ftrace buffer:", "-" * 33]
        for n, (ts, cpu, (comm, pid), flags, body) in enumerate(kept):
            gap = kept[n + 1][0] - ts if n + 1 < len(kept) else 0
            dump.append(
                "%8.8s-%-7d %3d%s %4dus%s: %s"
                % (comm, pid, cpu, flags, ts // 1000, find_mark(gap), body)
            )
        dump.append("-" * 33)
        return [(at + i * 1_000, text) for i, text in enumerate(dump)]

    def _report(self, w: Warn) -> list[str]:
        comm, pid = w.task
        addr, size = SYMS[w.func]
        off = 0x1CA if size > 0x1CA else size - 0x8
        psw = addr + off
        frames = [" [<%016x>] %s+0x%x/0x%x" % (psw, w.func, off, size)]
        frames.append("([<%016x>] %s+0x%x/0x%x)" % (psw - 4, w.func, off - 4, size))
        for caller in w.chain:
            site = RETURN_OFF.get(caller, 0x3E)
            frames.append(
                " [<%016x>] %s+0x%x/0x%x" % (SYMS[caller][0] + site, caller, site, SYMS[caller][1])
            )
        return [
            "------------[ cut here ]------------",
            "WARNING: CPU: %d PID: %d at %s %s+0x%x/0x%x"
            % (w.cpu, pid, w.location, w.func, off, size),
            "Modules linked in: vfio_pci vfio_pci_core vfio_iommu_type1 vfio kvm mlx5_core nvme "
            "nvme_core",
            "CPU: %d PID: %d Comm: %s Not tainted %s #1" % (w.cpu, pid, comm, w.release),
            "Hardware name: IBM 8561 T01 703 (z/VM 7.2.0)",
            "Krnl PSW : 0704c00180000000 %016x (%s+0x%x/0x%x)" % (psw, w.func, off, size),
            "           R:0 T:1 IO:1 EX:1 Key:0 M:1 W:0 P:0 AS:3 CC:2 PM:0 RI:0 EA:3",
            "Call Trace:",
            *frames,
            "Last Breaking-Event-Address:",
            " [<%016x>] %s+0x%x/0x%x" % (psw - 4, w.func, off - 4, size),
            "---[ end trace 0000000000000000 ]---",
            "Kernel panic - not syncing: panic_on_warn set ...",
        ]

    def close(self) -> None:
        w = self.warn
        lines = self._messages(w.ts if w else None)
        if w is not None:
            report = self._report(w)
            lines += [(w.ts + i * 2_000, text) for i, text in enumerate(report)]
            at = w.ts + len(report) * 2_000 + 10_000
            # Other CPUs trace on while the WARN prints; ftrace_dump() stops tracing.
            lines += self._dump(at, [e for e in self.events if e[0] < at])
        elif self.scenario == "dma" and self.events:
            at = self.events[-1][0] + 5_000_000
            lines.append((at, "sysrq: Dump ftrace buffer"))
            lines += self._dump(at + 2_000, self.events)
        lines.sort(key=lambda x: x[0])
        with self.path.open("w", encoding="utf-8", newline="\n") as out:
            out.write("".join(_printk(ts, text) for ts, text in lines))

    def abort(self) -> None:
        pass


Factory = Callable[[Path, int, str, "int | None"], Any]


def _writers() -> dict[str, Factory]:
    """Format name -> factory(path, ncpus, scenario, ring-buffer entries per CPU); only
    the ftrace trace file models a ring buffer that overwrites."""
    from tracetool.simulate.bpftrace_out import BpftraceWriter
    from tracetool.simulate.graph_out import GraphWriter

    return {
        "ftrace": lambda p, n, sc, buf: FtraceWriter(p, n, buf),
        "trace-cmd": lambda p, n, sc, buf: TraceCmdWriter(p, n),
        "perf": lambda p, n, sc, buf: PerfWriter(p, n),
        "bpftrace": lambda p, n, sc, buf: BpftraceWriter(p, n, sc),
        "bpftrace-json": lambda p, n, sc, buf: BpftraceWriter(p, n, sc, as_json=True),
        "dmesg": lambda p, n, sc, buf: DmesgWriter(p, n, sc),
        "function-graph": lambda p, n, sc, buf: GraphWriter(p, n),
    }


WRITERS = _writers()
