#!/usr/bin/env python3
"""Render hand-made s390 ftrace / trace-cmd samples with the exact kernel/tool printf formats.

Why: the capture machine is x86 and cannot produce kprobe or function_graph output, so the s390
samples under samples/ftrace/s390-*.txt, samples/function-graph/s390-*.txt and samples/trace-cmd/s390-*.report.txt are rendered here.
Pure stdlib, deterministic (no randomness, no clock): running it twice writes identical bytes.

    python3 samples/capture/make_s390_samples.py            # (re)write all samples
    python3 samples/capture/make_s390_samples.py --check    # exit 1 if a file on disk differs

Every format below is a re-implementation of a printf path read in the source; the function names
in the comments say where (kernel/trace/trace.c, trace_output.c, trace_kprobe.c,
trace_functions_graph.c; trace-cmd tracecmd/trace-read.c; libtraceevent src/event-parse.c).
The values (pids, addresses, timestamps) are invented; the story is the 2022 s390 release_device
vs attach/detach race (docs/domain.md section 8.3) on device 0004:00:00.0 (fid 0x12, fh 0x80a00000).
"""

# The formats below mirror C printf strings on purpose: keep %-formatting.
# ruff: noqa: UP031

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent
FTRACE_DIR = SAMPLES / "ftrace"
GRAPH_DIR = FTRACE_DIR.parent / "function-graph"
TRACECMD_DIR = SAMPLES / "trace-cmd"

# --------------------------------------------------------------------------------------------
# The story: one device, a handful of tasks, invented kernel addresses (s390 v6.0, KASLR base
# like the 6.0.0-rc3 WARN quoted in domain.md section 5.3: text at 0x000000095b......).
# --------------------------------------------------------------------------------------------
PCI = "0004:00:00.0"
FID = 0x12
FH = 0x80A00000
FN = FH << 32  # zpci_refresh_trans() arg1: (u64)zdev->fh << 32
DEV = 0x8F3A40C8  # struct device * (inside struct pci_dev)
ZDEV = 0x8C1E2000  # struct zpci_dev *
DOM = 0x9A7C1E00  # struct iommu_domain * (first member of struct s390_domain)
GROUP = 4
START_DMA = 0x100000000
APERTURE = 0x1000000000  # 64 GiB: range of a global RPCIT (start_dma .. end_dma)

KMCHECK = ("kmcheck", 41)
QEMU = ("qemu-system-s39", 5082)  # comm is truncated to 15 chars (TASK_COMM_LEN 16)
FIO = ("fio", 2211)
KWORKER = ("kworker/u64:2", 123)
IDLE = ("<idle>", 0)
BASH = ("bash", 4411)

# symbol -> (address, size) for the functions the samples print
SYMS = {
    "s390_iommu_release_device": (0x95BE0F258, 0x98),
    "s390_iommu_attach_device": (0x95BE0EE18, 0x1F0),
    "s390_iommu_detach_device": (0x95BE0F188, 0xD0),
    "s390_iommu_probe_device": (0x95BE0F0F0, 0x70),
    "zpci_dma_init_device": (0x95B5A1F80, 0x220),
    "zpci_dma_exit_device": (0x95B5A21A0, 0x98),
    "zpci_refresh_trans": (0x95B5A5E10, 0x110),
    "iommu_release_device": (0x95BDFE648, 0x130),
    "__iommu_attach_device": (0x95BDFC2F0, 0xD8),
    "__dma_purge_tlb": (0x95B5A2B40, 0x120),
    "s390_iommu_update_trans": (0x95BE0F4A0, 0x2B8),
    "dma_alloc_address": (0x95B5A2C60, 0x1A8),
    "s390_iommu_iotlb_sync_map": (0x95BE0F6A0, 0xB0),
    "s390_iommu_flush_iotlb_all": (0x95BE0F5F8, 0x98),
}


def sym_addr(sym: str, off: int = 0) -> int:
    return SYMS[sym][0] + off


# --------------------------------------------------------------------------------------------
# Kernel text output: trace_print_context() / trace_print_lat_fmt() (kernel/trace/trace_output.c)
# --------------------------------------------------------------------------------------------
FLAG_CHARS = set(".dDbXnNpBLlzZhHs0123456789abcdef")


def ns2usecs(ns: int) -> int:
    """kernel ns2usecs(): rounds to the nearest microsecond (adds 500 ns)."""
    return (ns + 500) // 1000


def ts_ns_clock(ns: int) -> str:
    """trace_print_context(): " %5lu.%06lu" for clocks with in_ns (local, global, mono, tai...)."""
    t = ns2usecs(ns)
    return " %5d.%06d" % (t // 1000000, t % 1000000)


def ts_raw_clock(value: int) -> str:
    """trace_print_context(): " %12llu" for counter / uptime / x86-tsc (no dot)."""
    return " %12d" % value


@dataclass
class Fmt:
    """Output options of one capture (what trace_print_context() depends on)."""

    pid_width: int = (
        7  # "%16s-%-7d " since v5.10 ("tracing: Make the space reserved for the pid wider")
    )
    tgid: bool = False  # option record-tgid
    irq_info: bool = True  # option irq-info (default on)
    nflags: int = 5  # 4 before migrate-disable column, 5 mainline >= 5.1x, 7 in -rt trees
    in_ns: bool = True  # False for the counter/uptime/x86-tsc clocks


def context(fmt: Fmt, comm: str, pid: int, cpu: int, flags: str, ts: int, tgid: int | None) -> str:
    assert len(comm) <= 15, comm
    s = "%16s-%-*d " % (comm, fmt.pid_width, pid)
    if fmt.tgid:
        s += "(-------) " if not tgid else "(%7d) " % tgid
    s += "[%03d] " % cpu
    if fmt.irq_info:
        assert len(flags) == fmt.nflags, (flags, fmt.nflags)
        assert set(flags) <= FLAG_CHARS, flags
        s += flags
    s += ts_ns_clock(ts) if fmt.in_ns else ts_raw_clock(ts)
    return s + ": "


@dataclass
class Ev:
    """One ring-buffer entry as the `trace` file prints it."""

    ts: int  # ns (or the raw counter value for non-ns clocks)
    cpu: int
    task: tuple[str, int]
    flags: str
    body: (
        str  # what follows the context prefix ("event: payload", "func <-parent", "<stack trace>")
    )
    tgid: int | None = None
    frames: list[str] = field(default_factory=list)  # continuation lines (stack frames)
    lost: str | None = None  # "CPU:%d [LOST %lu EVENTS]" printed before this entry
    seq: int = 0


def merge(events: list[Ev]) -> list[Ev]:
    """__find_next_entry(): oldest timestamp first; on equal timestamps the lowest CPU wins;
    each CPU's own order is kept."""
    for i, e in enumerate(events):
        e.seq = i
    per_cpu: dict[int, list[Ev]] = {}
    for e in events:
        per_cpu.setdefault(e.cpu, []).append(e)
    for cpu, lst in per_cpu.items():
        for a, b in itertools.pairwise(lst):
            assert a.ts <= b.ts, ("per-CPU time went backwards", cpu, a.body, b.body)
    return sorted(events, key=lambda e: (e.ts, e.cpu, e.seq))


def render_events(fmt: Fmt, events: list[Ev], annotate_overrun: bool = False) -> list[str]:
    out: list[str] = []
    started: set[int] = set()
    for idx, e in enumerate(merge(events), start=1):
        if e.lost:
            out.append(e.lost)
        # test_cpu_buff_start(): once the buffer had overruns (TRACE_FILE_ANNOTATE is global), the
        # first entry of *every* CPU is preceded by the marker, except the very first entry.
        if annotate_overrun and e.cpu not in started:
            started.add(e.cpu)
            if idx > 1:
                out.append("##### CPU %u buffer started ####" % e.cpu)
        comm, pid = e.task
        out.append(context(fmt, comm, pid, e.cpu, e.flags, e.ts, e.tgid) + e.body)
        out.extend(e.frames)
    return out


# ---- headers: s_show() + print_event_info() + print_func_help_header[_irq]() (trace.c) -------


def event_info(entries: int, written: int, ncpus: int) -> list[str]:
    return ["# entries-in-buffer/entries-written: %d/%d   #P:%d" % (entries, written, ncpus), "#"]


def header_irq5(tgid: bool) -> list[str]:
    """print_func_help_header_irq(), v5.1x..v6.x mainline (5 flag columns)."""
    space, prec = " " * 12, (12 if tgid else 2)
    sp = space[:prec]
    return [
        "#                            %s  _-----=> irqs-off/BH-disabled" % sp,
        "#                            %s / _----=> need-resched" % sp,
        "#                            %s| / _---=> hardirq/softirq" % sp,
        "#                            %s|| / _--=> preempt-depth" % sp,
        "#                            %s||| / _-=> migrate-disable" % sp,
        "#                            %s|||| /     delay" % sp,
        "#           TASK-PID  %s CPU#  |||||  TIMESTAMP  FUNCTION" % "     TGID   "[:prec],
        "#              | |    %s   |   |||||     |         |" % "       |    "[:prec],
    ]


def header_noirq(tgid: bool) -> list[str]:
    """print_func_help_header() (option noirq-info), v5.10+."""
    return [
        "#           TASK-PID    %s CPU#     TIMESTAMP  FUNCTION" % ("   TGID   " if tgid else ""),
        "#              | |      %s   |         |         |" % ("     |    " if tgid else ""),
    ]


def header_irq4_old() -> list[str]:
    """print_func_help_header_irq() before v5.10 (pid %-5d, 4 flag columns, no tgid)."""
    sp = "  "
    return [
        "#                          %s  _-----=> irqs-off" % sp,
        "#                          %s / _----=> need-resched" % sp,
        "#                          %s| / _---=> hardirq/softirq" % sp,
        "#                          %s|| / _--=> preempt-depth" % sp,
        "#                          %s||| /     delay" % sp,
        "#           TASK-PID %sCPU#  ||||    TIMESTAMP  FUNCTION" % "   TGID   "[:2],
        "#              | |   %s  |   ||||       |         |" % "     |    "[:2],
    ]


def header_irq7_rt() -> list[str]:
    """print_func_help_header_irq() of the PREEMPT_RT patch set (6.0-rt .. 6.x-rt, before lazy
    preemption went mainline): 7 flag columns (need-resched-lazy, preempt-lazy-depth added)."""
    sp = "  "
    return [
        "#                            %s  _-------=> irqs-off/BH-disabled" % sp,
        "#                            %s / _------=> need-resched" % sp,
        "#                            %s| / _-----=> need-resched-lazy" % sp,
        "#                            %s|| / _----=> hardirq/softirq" % sp,
        "#                            %s||| / _---=> preempt-depth" % sp,
        "#                            %s|||| / _--=> preempt-lazy-depth" % sp,
        "#                            %s||||| / _-=> migrate-disable" % sp,
        "#                            %s|||||| /     delay" % sp,
        "#           TASK-PID  %s CPU#  |||||||  TIMESTAMP  FUNCTION" % "     TGID   "[:2],
        "#              | |    %s   |   |||||||      |         |" % "       |    "[:2],
    ]


# The live 6.18 header quoted in domain.md section 3.2 [V-live]; header_irq5(False) must match it.
LIVE_HEADER_IRQ5 = [
    "#                                _-----=> irqs-off/BH-disabled",
    "#                               / _----=> need-resched",
    "#                              | / _---=> hardirq/softirq",
    "#                              || / _--=> preempt-depth",
    "#                              ||| / _-=> migrate-disable",
    "#                              |||| /     delay",
    "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
    "#              | |         |   |||||     |         |",
]
assert header_irq5(False) == LIVE_HEADER_IRQ5


def trace_file(
    tracer: str,
    header: list[str],
    body: list[str],
    entries: int | None = None,
    written: int | None = None,
    ncpus: int = 4,
    info: bool = True,
) -> list[str]:
    out = ["# tracer: %s" % tracer, "#"]
    if info:
        out += event_info(entries or 0, written if written is not None else (entries or 0), ncpus)
    return out + header + body


def n_entries(events: list[Ev]) -> int:
    return len(events)  # each Ev is one ring-buffer entry (a stack trace is its own entry)


# ---- payload builders ------------------------------------------------------------------------


def kp(name: str, sym: str, args: str = "") -> str:
    """print_kprobe_event(): "%s: (" + sym+off/size (TRACE_ITER_SYM_OFFSET forced) + ")" + args."""
    return "%s: (%s+0x0/0x%x)%s" % (name, sym, SYMS[sym][1], args)


def krp(name: str, site: str, site_off: int, func: str, args: str = "") -> str:
    """print_kretprobe_event(): "(" ret_ip sym+off/size " <- " func (no offset) ")" + args."""
    return "%s: (%s+0x%x/0x%x <- %s)%s" % (name, site, site_off, SYMS[site][1], func, args)


def a(**kw: str) -> str:
    """trace_probe_print_args(): " %s=" + value per argument, in definition order."""
    return "".join(" %s=%s" % (k, v) for k, v in kw.items())


def x64(v: int) -> str:  # default fetch type on 64-bit: x64 -> "0x%Lx"
    return "0x%x" % v


def iommu_group(event: str, gid: int = GROUP, dev: str = PCI) -> str:
    return "%s: IOMMU: groupID=%d device=%s" % (event, gid, dev)


def iommu_dev(event: str, dev: str = PCI) -> str:
    return "%s: IOMMU: device=%s" % (event, dev)


def iommu_map(iova: int, paddr: int, size: int, old: bool = False) -> str:
    if old:  # before ~v5.13
        return "map: IOMMU: iova=0x%016x paddr=0x%016x size=%d" % (iova, paddr, size)
    return "map: IOMMU: iova=0x%016x - 0x%016x paddr=0x%016x size=%d" % (
        iova,
        iova + size,
        paddr,
        size,
    )


def iommu_unmap(iova: int, size: int, unmapped: int, old: bool = False) -> str:
    if old:
        return "unmap: IOMMU: iova=0x%016x size=%d unmapped_size=%d" % (iova, size, unmapped)
    return "unmap: IOMMU: iova=0x%016x - 0x%016x size=%d unmapped_size=%d" % (
        iova,
        iova + size,
        size,
        unmapped,
    )


def rq_issue(
    rwbs: str, nbytes: int, sector: int, nr: int, comm: str, prio: str | None, dev: str = "259,0"
) -> str:
    tail = (" %s" % prio) if prio else ""  # "none,0,0" ioprio triple only on 6.10+ kernels
    return "block_rq_issue: %s %s %d () %d + %d%s [%s]" % (
        dev,
        rwbs,
        nbytes,
        sector,
        nr,
        tail,
        comm,
    )


def rq_complete(
    rwbs: str, sector: int, nr: int, err: int, prio: str | None, dev: str = "259,0"
) -> str:
    tail = (" %s" % prio) if prio else ""
    return "block_rq_complete: %s %s () %d + %d%s [%d]" % (dev, rwbs, sector, nr, tail, err)


def sched_switch(pc: str, pp: int, pprio: int, state: str, nc: str, np_: int, nprio: int) -> str:
    return (
        "sched_switch: prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s ==> "
        "next_comm=%s next_pid=%d next_prio=%d" % (pc, pp, pprio, state, nc, np_, nprio)
    )


def sched_wakeup(comm: str, pid: int, prio: int, cpu: int) -> str:
    return "sched_wakeup: comm=%s pid=%d prio=%d target_cpu=%03d" % (comm, pid, prio, cpu)


def us(sec_us: float) -> int:
    """Story time given in seconds (float, microsecond resolution) -> ns."""
    return round(sec_us * 1_000_000) * 1000


def nsec(sec: float) -> int:
    """Story time in seconds (float, ns resolution; only for uptimes well below 1e6 s) -> ns."""
    assert sec < 1e6
    return round(sec * 1_000_000_000)


RELEASE_STACK = [
    " => s390_iommu_release_device",
    " => iommu_release_device",
    " => iommu_bus_notifier",
    " => blocking_notifier_call_chain",
    " => device_del",
    " => pci_remove_bus_device",
    " => pci_stop_and_remove_bus_device_locked",
    " => zpci_bus_remove_device",
    " => zpci_deconfigure_device",
    " => zpci_event_availability",
    " => chsc_process_crw",
    " => crw_collect_info",
    " => kthread",
    " => __ret_from_fork",
    " => ret_from_fork",
]

# --------------------------------------------------------------------------------------------
# 1. kprobe race on v6.0
# --------------------------------------------------------------------------------------------


def race_events() -> list[Ev]:
    K, Q, W = KMCHECK, QEMU, KWORKER
    dev, zd, dom = x64(DEV), x64(ZDEV), x64(DOM)
    E = Ev
    return [
        # boot-time probe by the zPCI bus scan worker
        E(us(318.207488), 2, W, "...1.", kp("dma_init", "zpci_dma_init_device", a(zdev=zd))),
        E(us(318.207502), 2, W, "...1.", kp("s390_probe", "s390_iommu_probe_device", a(dev=dev))),
        E(us(318.207511), 2, W, ".....", iommu_group("add_device_to_group")),
        # QEMU: VFIO_SET_IOMMU -> first attach (no overlap)
        E(
            us(512.104420),
            0,
            Q,
            "...1.",
            kp("s390_att", "s390_iommu_attach_device", a(domain=dom, dev=dev)),
        ),
        E(us(512.104431), 0, Q, "...1.", kp("dma_exit", "zpci_dma_exit_device", a(zdev=zd))),
        E(
            us(512.104549),
            0,
            Q,
            "...1.",
            krp(
                "s390_att_r", "__iommu_attach_device", 0x3A, "s390_iommu_attach_device", a(ret="0")
            ),
        ),
        E(us(512.104553), 0, Q, ".....", iommu_dev("attach_device_to_domain")),
        E(us(530.500000), 1, BASH, "...1.", "tracing_mark_write: CI: deconfigure fid 0x12 now"),
        # the race: QEMU re-attaches on CPU 0 while kmcheck deconfigures the function on CPU 3
        E(
            us(531.000064),
            0,
            Q,
            "...1.",
            kp("s390_att", "s390_iommu_attach_device", a(domain=dom, dev=dev)),
        ),
        E(us(531.000071), 0, Q, "...1.", kp("dma_exit", "zpci_dma_exit_device", a(zdev=zd))),
        E(us(531.000087), 3, K, "...1.", kp("s390_rel", "s390_iommu_release_device", a(dev=dev))),
        E(us(531.000087) + 310, 3, K, "...1.", "<stack trace>", frames=RELEASE_STACK),
        E(
            us(531.000088),
            3,
            K,
            "...1.",
            kp("p_s390_iommu_release_device_0", "s390_iommu_release_device"),
        ),
        E(
            us(531.000091),
            3,
            K,
            "...1.",
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        E(us(531.000109), 3, K, "...1.", kp("dma_init", "zpci_dma_init_device", a(zdev=zd))),
        E(
            us(531.000118),
            0,
            Q,
            "...1.",
            krp(
                "s390_att_r", "__iommu_attach_device", 0x3A, "s390_iommu_attach_device", a(ret="0")
            ),
        ),
        E(us(531.000120), 0, Q, ".....", iommu_dev("attach_device_to_domain")),
        E(
            us(531.000126),
            0,
            Q,
            "...1.",
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        E(
            us(531.000133),
            3,
            K,
            "...1.",
            krp("s390_rel_r", "iommu_release_device", 0x5C, "s390_iommu_release_device"),
        ),
        E(
            us(531.000133) + 290,
            3,
            K,
            "...1.",
            krp(
                "r_s390_iommu_release_device_0",
                "iommu_release_device",
                0x5C,
                "s390_iommu_release_device",
            ),
        ),
        E(us(531.000140), 0, Q, "...1.", kp("dma_init", "zpci_dma_init_device", a(zdev=zd))),
        E(us(531.000147), 0, Q, ".....", iommu_dev("detach_device_from_domain")),
        E(us(531.000150), 3, K, ".....", iommu_group("remove_device_from_group")),
        E(us(531.000171), 3, K, "...1.", kp("dma_exit", "zpci_dma_exit_device", a(zdev=zd))),
    ]


def s390_kprobe_race() -> list[str]:
    ev = race_events()
    body = render_events(Fmt(), ev)
    return trace_file("nop", header_irq5(False), body, entries=n_entries(ev))


# --------------------------------------------------------------------------------------------
# 2. RPCIT flushes, DMA and block I/O (deliberately mixes kernel-version forms, see README)
# --------------------------------------------------------------------------------------------


def rpcit(addr: int, rng: int) -> str:
    return kp("rpcit", "zpci_refresh_trans", a(fn=x64(FN), addr=x64(addr), range=x64(rng)))


def rpcit_r(site: str, off: int, ret: int) -> str:
    return krp("rpcit_r", site, off, "zpci_refresh_trans", a(ret=str(ret)))


def dma_map_phys(dma: int, size: int, phys: int, d: str = "FROM_DEVICE") -> str:
    return "dma_map_phys: %s dir=%s dma_addr=%x size=%d phys_addr=%x attrs=" % (
        PCI,
        d,
        dma,
        size,
        phys,
    )


def dma_unmap_phys(dma: int, size: int, d: str = "FROM_DEVICE") -> str:
    return "dma_unmap_phys: %s dir=%s dma_addr=%x size=%d attrs=" % (PCI, d, dma, size)


def s390_rpcit_flush() -> list[str]:
    """Two blocks on one time line (a composite for parser coverage, see README):
    620.000xxx: a v6.17+ kernel (dma-iommu; dma_map_phys; 6.10+ block format; z/VM guest, so
    maps need an RPCIT from s390_iommu_iotlb_sync_map; single flush queue; fq timer flush);
    620.001xxx: a v5.x kernel (<= 5.12 iommu map/unmap format for QEMU's VFIO mappings, s390
    DMA API in pci_dma.c for fio: -ENOMEM from __dma_purge_tlb -> global flush; pre-6.10 block)."""
    F, F2, Id, Q = FIO, ("fio", 2213), IDLE, QEMU
    E = Ev
    lock = "00000000b7c4d1e0"  # the single flush queue's fq->lock (hashed %p)
    mtx = "000000009d1e2f3a"  # iommu_group->mutex
    sm = ("s390_iommu_iotlb_sync_map", 0x6E)
    fl = ("s390_iommu_flush_iotlb_all", 0x5A)
    ev = [
        # --- v6.17+ block ---
        E(us(620.000050), 1, F, ".....", sched_wakeup("fio", 2213, 120, 2)),
        E(us(620.000098), 1, F, "...1.", dma_map_phys(0x100002000, 4096, 0xC0F37000)),
        E(us(620.000099), 1, F, ".....", iommu_map(0x100002000, 0xC0F37000, 4096)),
        E(us(620.000100), 1, F, "...1.", rpcit(0x100002000, 0x1000)),
        E(us(620.000109), 1, F, "...1.", rpcit_r(sm[0], sm[1], 0)),
        E(us(620.000112), 1, F, ".....", rq_issue("R", 4096, 123456, 8, "fio", "none,0,0")),
        E(us(620.000120), 1, F, "d..2.", sched_switch("fio", 2211, 120, "D", "swapper/1", 0, 120)),
        E(us(620.000180), 1, Id, "d.h1.", "irq_handler_entry: irq=37 name=nvme0q2"),
        E(us(620.000184), 1, Id, "d.h1.", rq_complete("R", 123456, 8, 0, "none,0,0")),
        E(us(620.000186), 1, Id, "d.h1.", dma_unmap_phys(0x100002000, 4096)),
        E(us(620.000187), 1, Id, "d.h1.", iommu_unmap(0x100002000, 4096, 4096)),
        E(us(620.000189), 1, Id, "dNh2.", sched_wakeup("fio", 2211, 120, 1)),
        E(us(620.000191), 1, Id, "dNh1.", "irq_handler_exit: irq=37 ret=handled"),
        E(us(620.000195), 1, Id, "d..2.", sched_switch("swapper/1", 0, 120, "R", "fio", 2211, 120)),
        # hypervisor out of shadow resources: -ENOMEM, then a global refresh (zpci_refresh_all)
        E(
            us(620.000202),
            2,
            F2,
            "...1.",
            dma_map_phys(0x100010000, 131072, 0xC1200000, "TO_DEVICE"),
        ),
        E(us(620.000203), 2, F2, ".....", iommu_map(0x100010000, 0xC1200000, 131072)),
        E(us(620.000204), 2, F2, "...1.", rpcit(0x100010000, 0x20000)),
        E(us(620.000215), 2, F2, "...1.", rpcit_r(sm[0], sm[1], -12)),
        E(us(620.000216), 2, F2, "...1.", rpcit(START_DMA, APERTURE)),
        E(us(620.000251), 2, F2, "...1.", rpcit_r(sm[0], 0x8C, 0)),
        E(us(620.000262), 2, F2, ".....", rq_issue("WS", 131072, 987648, 256, "fio", "be,0,4")),
        # flush-queue timer (softirq on the idle CPU 3) holds fq->lock while fio queues an IOVA
        E(us(620.000300), 3, Id, "d.s2.", rpcit(START_DMA, APERTURE)),
        E(us(620.000301), 1, F, "d..1.", "contention_begin: %s (flags=SPIN)" % lock),
        E(us(620.000346), 3, Id, "d.s2.", rpcit_r(fl[0], fl[1], 0)),
        E(us(620.000349), 1, F, "d..1.", "contention_end: %s (ret=0)" % lock),
        E(us(620.000398), 2, Id, "d.h1.", "irq_handler_entry: irq=38 name=nvme0q3"),
        E(us(620.000401), 2, Id, "d.h1.", rq_complete("WS", 987648, 256, 0, "be,0,4")),
        E(us(620.000403), 2, Id, "d.h1.", dma_unmap_phys(0x100010000, 131072, "TO_DEVICE")),
        E(us(620.000404), 2, Id, "d.h1.", iommu_unmap(0x100010000, 131072, 131072)),
        E(us(620.000405), 2, Id, "d.h1.", "irq_handler_exit: irq=38 ret=handled"),
        # --- v5.x block ---
        E(us(620.001450), 0, Q, ".....", "contention_begin: %s (flags=MUTEX)" % mtx),
        E(us(620.001611), 0, Q, ".....", "contention_end: %s (ret=0)" % mtx),
        E(us(620.001620), 0, Q, "d..1.", rpcit(0x200000000, 0x200000)),
        E(us(620.001652), 0, Q, "d..1.", rpcit_r("s390_iommu_update_trans", 0x1F2, 0)),
        E(us(620.001655), 0, Q, ".....", iommu_map(0x200000000, 0xC8A400000, 2097152, old=True)),
        E(us(620.001702), 1, F, ".....", rq_issue("W", 8192, 40960, 16, "fio", None)),
        E(us(620.001712), 1, F, "d..1.", rpcit(0x100004000, 0x2000)),
        E(us(620.001721), 1, F, "d..1.", rpcit_r("__dma_purge_tlb", 0x7C, -12)),
        E(us(620.001722), 1, F, "d..1.", rpcit(START_DMA, APERTURE)),
        E(us(620.001760), 1, F, "d..1.", rpcit_r("__dma_purge_tlb", 0xB4, 0)),
        E(us(620.001950), 1, Id, "d.h1.", "irq_handler_entry: irq=37 name=nvme0q2"),
        E(us(620.001953), 1, Id, "d.h1.", rq_complete("W", 40960, 16, -5, None)),
        E(us(620.001957), 1, Id, "d.h1.", "irq_handler_exit: irq=37 ret=handled"),
        E(us(620.002100), 0, Q, "d..1.", rpcit(0x200000000, 0x200000)),
        E(us(620.002131), 0, Q, "d..1.", rpcit_r("s390_iommu_update_trans", 0x1F2, 0)),
        E(us(620.002133), 0, Q, ".....", iommu_unmap(0x200000000, 2097152, 2097152, old=True)),
    ]
    return trace_file("nop", header_irq5(False), render_events(Fmt(), ev), entries=n_entries(ev))


# --------------------------------------------------------------------------------------------
# 3. function tracer (print_fn_trace(): "func <-parent"; seq_print_sym())
# --------------------------------------------------------------------------------------------


def fn_events(symoff: bool) -> list[Ev]:
    def f(func: str, parent: str) -> str:
        return "%s <-%s" % (func, parent)

    if symoff:  # sym-offset: sprint_symbol() -> "name+0xoff/0xsize [module]"
        names = {
            "zpci_event_availability": "zpci_event_availability+0x0/0x250",
            "chsc_process_crw": "chsc_process_crw+0x2f4/0x3b8",
            "zpci_deconfigure_device": "zpci_deconfigure_device+0x0/0x110",
            "zpci_event_availability.p": "zpci_event_availability+0x1be/0x250",
            "s390_iommu_release_device": "s390_iommu_release_device+0x0/0x98",
            "iommu_release_device": "iommu_release_device+0x5c/0x130",
            "s390_iommu_detach_device": "s390_iommu_detach_device+0x0/0xd0",
            "s390_iommu_release_device.p": "s390_iommu_release_device+0x58/0x98",
            "__iommu_detach_device": "__iommu_detach_device+0x2c/0xa8",
            "vfio_iommu_type1_detach_group": (
                "vfio_iommu_type1_detach_group+0x0/0x6c8 [vfio_iommu_type1]"
            ),
            "__vfio_group_unset_container": "__vfio_group_unset_container+0x58/0x158 [vfio]",
            "zpci_dma_init_device": "zpci_dma_init_device+0x0/0x220",
            "s390_iommu_detach_device.p": "s390_iommu_detach_device+0xc4/0xd0",
            "_raw_spin_lock_irqsave": "_raw_spin_lock_irqsave+0x0/0x90",
            "s390_iommu_detach_device.q": "s390_iommu_detach_device+0x3e/0xd0",
            "_raw_spin_unlock_irqrestore": "_raw_spin_unlock_irqrestore+0x0/0x68",
            "s390_iommu_detach_device.r": "s390_iommu_detach_device+0x7a/0xd0",
        }
    else:  # kallsyms_lookup(): name only, no module suffix
        names = {
            k: k.split(".")[0]
            for k in [
                "zpci_event_availability",
                "chsc_process_crw",
                "zpci_deconfigure_device",
                "zpci_event_availability.p",
                "s390_iommu_release_device",
                "iommu_release_device",
                "s390_iommu_detach_device",
                "s390_iommu_release_device.p",
                "__iommu_detach_device",
                "vfio_iommu_type1_detach_group",
                "__vfio_group_unset_container",
                "zpci_dma_init_device",
                "s390_iommu_detach_device.p",
                "_raw_spin_lock_irqsave",
                "s390_iommu_detach_device.q",
                "_raw_spin_unlock_irqrestore",
                "s390_iommu_detach_device.r",
            ]
        }
    n = names
    K, Q = KMCHECK, QEMU
    E = Ev
    ev = [
        E(us(531.000021), 3, K, ".....", f(n["zpci_event_availability"], n["chsc_process_crw"])),
        E(
            us(531.000034),
            3,
            K,
            ".....",
            f(n["zpci_deconfigure_device"], n["zpci_event_availability.p"]),
        ),
        # a kretprobe is armed on s390_iommu_release_device: its return address is the trampoline
        E(
            us(531.000087),
            3,
            K,
            ".....",
            f(n["s390_iommu_release_device"], "[unknown/kretprobe'd]"),
        ),
        E(
            us(531.000091),
            3,
            K,
            ".....",
            f(n["s390_iommu_detach_device"], n["s390_iommu_release_device.p"]),
        ),
        E(
            us(531.000093),
            3,
            K,
            ".....",
            f(n["_raw_spin_lock_irqsave"], n["s390_iommu_detach_device.q"]),
        ),
        E(
            us(531.000095),
            3,
            K,
            "d..1.",
            f(n["_raw_spin_unlock_irqrestore"], n["s390_iommu_detach_device.r"]),
        ),
        E(
            us(531.000098),
            0,
            Q,
            ".....",
            f(n["vfio_iommu_type1_detach_group"], n["__vfio_group_unset_container"]),
        ),
        E(
            us(531.000102),
            0,
            Q,
            ".....",
            f(n["s390_iommu_detach_device"], n["__iommu_detach_device"]),
        ),
        E(
            us(531.000104),
            0,
            Q,
            ".....",
            f(n["_raw_spin_lock_irqsave"], n["s390_iommu_detach_device.q"]),
        ),
        E(
            us(531.000106),
            0,
            Q,
            "d..1.",
            f(n["_raw_spin_unlock_irqrestore"], n["s390_iommu_detach_device.r"]),
        ),
        E(
            us(531.000109),
            3,
            K,
            ".....",
            f(n["zpci_dma_init_device"], n["s390_iommu_detach_device.p"]),
        ),
        E(
            us(531.000140),
            0,
            Q,
            ".....",
            f(n["zpci_dma_init_device"], n["s390_iommu_detach_device.p"]),
        ),
    ]
    if not symoff:
        # an address kallsyms cannot resolve any more (module text freed) prints as 0x%08lx
        ev.append(E(us(531.000158), 0, Q, ".....", f("0x3ff80243b0e", "0x3ff80137780")))
        ev.append(
            E(us(531.000163), 0, Q, ".....", f("iommu_group_release_dma_owner", "0x3ff80137780"))
        )
    return ev


def s390_function_tracer(symoff: bool) -> list[str]:
    ev = fn_events(symoff)
    return trace_file(
        "function", header_irq5(False), render_events(Fmt(), ev), entries=n_entries(ev)
    )


# --------------------------------------------------------------------------------------------
# 4. trace_pipe with lost events and a truncated last line
# --------------------------------------------------------------------------------------------


def s390_trace_pipe_lost() -> tuple[list[str], str]:
    F2 = ("fio", 2213)
    E = Ev
    ev: list[Ev] = []
    t = 621.000000
    addrs = [0x100020000 + i * 0x1000 for i in range(8)]
    for i, ad in enumerate(addrs):
        cpu, task = (1, FIO) if i % 2 == 0 else (2, F2)
        ev.append(E(us(t + i * 0.000021), cpu, task, "...1.", rpcit(ad, 0x1000)))
        ev.append(
            E(
                us(t + i * 0.000021 + 0.000009),
                cpu,
                task,
                "...1.",
                rpcit_r("s390_iommu_update_trans", 0x1F2, 0),
            )
        )
    # CPU 2 dropped events (reader too slow) before its next entry
    ev.append(
        E(
            us(621.004100),
            2,
            F2,
            "...1.",
            rpcit(0x1000A0000, 0x1000),
            lost="CPU:2 [LOST 1234 EVENTS]",
        )
    )
    ev.append(E(us(621.004109), 2, F2, "...1.", rpcit_r("s390_iommu_update_trans", 0x1F2, 0)))
    ev.append(E(us(621.004120), 1, FIO, ".....", rq_issue("R", 4096, 524288, 8, "fio", "none,0,0")))
    ev.append(E(us(621.004201), 3, KWORKER, "d..1.", rpcit(START_DMA, APERTURE)))
    ev.append(E(us(621.004239), 3, KWORKER, "d..1.", rpcit_r("s390_iommu_update_trans", 0x226, 0)))
    # CPU 1: the ring buffer knew events were missed but not how many
    ev.append(
        E(
            us(621.009950),
            1,
            IDLE,
            "d.h1.",
            "irq_handler_entry: irq=37 name=nvme0q2",
            lost="CPU:1 [LOST EVENTS]",
        )
    )
    ev.append(E(us(621.009953), 1, IDLE, "d.h1.", rq_complete("R", 524288, 8, 0, "none,0,0")))
    ev.append(E(us(621.009957), 1, IDLE, "d.h1.", "irq_handler_exit: irq=37 ret=handled"))
    ev.append(E(us(621.010002), 2, F2, "...1.", rpcit(0x1000A1000, 0x1000)))
    ev.append(E(us(621.010011), 2, F2, "...1.", rpcit_r("s390_iommu_update_trans", 0x1F2, 0)))
    ev.append(E(us(621.010030), 1, FIO, "...1.", rpcit(0x1000A2000, 0x1000)))
    lines = render_events(Fmt(), ev)
    last = lines.pop()
    cut = last[
        : last.index("addr=") + len("addr=0x1000a")
    ]  # `cat trace_pipe > f` interrupted mid-line
    return lines, cut


# --------------------------------------------------------------------------------------------
# 5. overrun: entries-in-buffer < entries-written, "##### CPU N buffer started ####"
# --------------------------------------------------------------------------------------------


def s390_overrun() -> list[str]:
    F2 = ("fio", 2213)
    dev, dom = x64(DEV), x64(DOM)
    E = Ev
    ev: list[Ev] = [
        # CPU 3 is quiet, so its buffer still holds the oldest surviving entries
        E(
            us(531.000087),
            3,
            KMCHECK,
            "...1.",
            kp("s390_rel", "s390_iommu_release_device", a(dev=dev)),
        ),
        E(
            us(531.000091),
            3,
            KMCHECK,
            "...1.",
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        # CPU 0 wrapped: its s390_att entry is gone, only the return survived
        E(
            us(531.000118),
            0,
            QEMU,
            "...1.",
            krp(
                "s390_att_r", "__iommu_attach_device", 0x3A, "s390_iommu_attach_device", a(ret="0")
            ),
        ),
        E(us(531.000120), 0, QEMU, ".....", iommu_dev("attach_device_to_domain")),
        E(
            us(531.000126),
            0,
            QEMU,
            "...1.",
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        E(
            us(531.000133),
            3,
            KMCHECK,
            "...1.",
            krp("s390_rel_r", "iommu_release_device", 0x5C, "s390_iommu_release_device"),
        ),
        E(us(531.000147), 0, QEMU, ".....", iommu_dev("detach_device_from_domain")),
        E(us(531.000150), 3, KMCHECK, ".....", iommu_group("remove_device_from_group")),
    ]
    # CPUs 1 and 2 run an RPCIT storm and wrapped many times: only the last entries survive
    t = 531.000200
    i = 0
    while len(ev) < 40:
        cpu, task = (1, FIO) if i % 2 == 0 else (2, F2)
        base = t + i * 0.000013
        if i % 5 == 4:
            ev.append(
                E(
                    us(base),
                    cpu,
                    task,
                    ".....",
                    rq_issue("R", 4096, 2048 + 8 * i, 8, task[0], "none,0,0"),
                )
            )
        else:
            ev.append(E(us(base), cpu, task, "...1.", rpcit(0x100040000 + i * 0x1000, 0x1000)))
            if len(ev) < 40:
                ev.append(
                    E(
                        us(base + 0.000008),
                        cpu,
                        task,
                        "...1.",
                        rpcit_r("s390_iommu_update_trans", 0x1F2, 0),
                    )
                )
        i += 1
    assert len(ev) == 40
    return trace_file(
        "nop",
        header_irq5(False),
        render_events(Fmt(), ev, annotate_overrun=True),
        entries=40,
        written=9000,
    )


# --------------------------------------------------------------------------------------------
# 6. record-tgid on, irq-info off
# --------------------------------------------------------------------------------------------


def s390_tgid_noirqinfo() -> list[str]:
    fmt = Fmt(tgid=True, irq_info=False)
    dev, zd, dom = x64(DEV), x64(ZDEV), x64(DOM)
    E = Ev
    vcpu = ("CPU 0/KVM", 5090)  # a QEMU vCPU thread: comm with a space and a slash, tgid 5082
    ev = [
        # kworker ran before record-tgid was switched on: no tgid saved -> "(-------)"
        E(
            us(530.998001),
            2,
            KWORKER,
            "",
            iommu_group("remove_device_from_group", dev="0004:00:00.1"),
            tgid=None,
        ),
        E(
            us(531.000064),
            0,
            QEMU,
            "",
            kp("s390_att", "s390_iommu_attach_device", a(domain=dom, dev=dev)),
            tgid=5082,
        ),
        E(
            us(531.000071),
            0,
            QEMU,
            "",
            kp("dma_exit", "zpci_dma_exit_device", a(zdev=zd)),
            tgid=5082,
        ),
        E(
            us(531.000087),
            3,
            KMCHECK,
            "",
            kp("s390_rel", "s390_iommu_release_device", a(dev=dev)),
            tgid=41,
        ),
        E(
            us(531.000091),
            3,
            KMCHECK,
            "",
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
            tgid=41,
        ),
        E(
            us(531.000102),
            1,
            vcpu,
            "",
            "tracing_mark_write: vcpu0: guest saw PCI hot-unplug",
            tgid=5082,
        ),
        E(
            us(531.000109),
            3,
            KMCHECK,
            "",
            kp("dma_init", "zpci_dma_init_device", a(zdev=zd)),
            tgid=41,
        ),
        E(
            us(531.000118),
            0,
            QEMU,
            "",
            krp(
                "s390_att_r", "__iommu_attach_device", 0x3A, "s390_iommu_attach_device", a(ret="0")
            ),
            tgid=5082,
        ),
        E(us(531.000120), 0, QEMU, "", iommu_dev("attach_device_to_domain"), tgid=5082),
        E(
            us(531.000126),
            0,
            QEMU,
            "",
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
            tgid=5082,
        ),
        E(
            us(531.000133),
            3,
            KMCHECK,
            "",
            krp("s390_rel_r", "iommu_release_device", 0x5C, "s390_iommu_release_device"),
            tgid=41,
        ),
        E(
            us(531.000140),
            0,
            QEMU,
            "",
            kp("dma_init", "zpci_dma_init_device", a(zdev=zd)),
            tgid=5082,
        ),
        E(us(531.000147), 0, QEMU, "", iommu_dev("detach_device_from_domain"), tgid=5082),
        E(us(531.000150), 3, KMCHECK, "", iommu_group("remove_device_from_group"), tgid=41),
        # pid 0: trace_find_tgid(0) has nothing saved -> "(-------)"
        E(us(531.000188), 1, IDLE, "", "irq_handler_entry: irq=37 name=nvme0q2", tgid=None),
        E(us(531.000191), 1, IDLE, "", "irq_handler_exit: irq=37 ret=handled", tgid=None),
        E(
            us(531.000240),
            1,
            vcpu,
            "",
            "tracing_mark_write: vcpu0: ioctl(KVM_RUN) returned -EINTR",
            tgid=5082,
        ),
    ]
    return trace_file("nop", header_noirq(True), render_events(fmt, ev), entries=n_entries(ev))


# --------------------------------------------------------------------------------------------
# 7. pre-v5.10 kernel: "%16s-%-5d ", 4 flag columns
# --------------------------------------------------------------------------------------------


def s390_old_kernel_4flags() -> list[str]:
    fmt = Fmt(pid_width=5, nflags=4)
    dev, dom = x64(DEV), x64(DOM)
    E = Ev
    udev = ("systemd-udevd", 104857)  # 6-digit pid overflows %-5d (pid_max raised by systemd)
    ev = [
        E(
            us(412.731002),
            0,
            QEMU,
            "...1",
            kp("s390_att", "s390_iommu_attach_device", a(domain=dom, dev=dev)),
        ),
        E(
            us(412.731090),
            0,
            QEMU,
            "...1",
            krp(
                "s390_att_r", "__iommu_attach_device", 0x3A, "s390_iommu_attach_device", a(ret="0")
            ),
        ),
        E(us(412.731093), 0, QEMU, "....", iommu_dev("attach_device_to_domain")),
        E(us(412.731311), 0, QEMU, "....", iommu_map(0x100000000, 0xC8A400000, 2097152, old=True)),
        E(
            us(419.002201),
            3,
            KMCHECK,
            "...1",
            kp("s390_rel", "s390_iommu_release_device", a(dev=dev)),
        ),
        E(
            us(419.002205),
            3,
            KMCHECK,
            "...1",
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        E(
            us(419.002214),
            0,
            QEMU,
            "...1",
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        E(
            us(419.002240),
            3,
            KMCHECK,
            "...1",
            krp("s390_rel_r", "iommu_release_device", 0x5C, "s390_iommu_release_device"),
        ),
        E(us(419.002251), 0, QEMU, "....", iommu_dev("detach_device_from_domain")),
        E(us(419.002259), 3, KMCHECK, "....", iommu_group("remove_device_from_group")),
        E(us(419.002730), 1, IDLE, "d.h.", "irq_handler_entry: irq=37 name=nvme0q2"),
        E(us(419.002733), 1, IDLE, "d.h.", "irq_handler_exit: irq=37 ret=handled"),
        E(
            us(419.003002),
            2,
            udev,
            "....",
            "tracing_mark_write: udev: remove /devices/pci0004:00/0004:00:00.0",
        ),
        E(us(419.003100), 0, QEMU, "....", iommu_unmap(0x100000000, 2097152, 2097152, old=True)),
    ]
    return trace_file("nop", header_irq4_old(), render_events(fmt, ev), entries=n_entries(ev))


# --------------------------------------------------------------------------------------------
# 8. RT trees: 7 flag columns (verified) and a 6-column tolerance sample (synthetic)
# --------------------------------------------------------------------------------------------


def rt_events(nflags: int) -> list[Ev]:
    """Long uptime (5-digit seconds), CPU >= 100, 7-digit pids (PID_MAX_LIMIT is 4194304, so a pid
    never has more than 7 digits: a 7-digit pid fills %-7d exactly)."""
    dev, dom = x64(DEV), x64(DOM)
    Qbig = ("qemu-system-s39", 4194301)
    Kbig = ("kmcheck", 41)
    # RT column order: irqs-off, need-resched, need-resched-lazy, hard/softirq, preempt-depth,
    # preempt-lazy-depth, migrate-disable
    f7 = {"a": "..L.1..", "b": "d..h1..", "c": "....1.1", "d": ".n..2..", "e": "....11."}
    # synthetic 6-column variant: the same without the migrate-disable column
    f6 = {k: v[:6] for k, v in f7.items()}
    f = f7 if nflags == 7 else f6
    E = Ev
    F = ("fio", 3000017)
    ev = [
        E(
            us(12345.678901),
            123,
            Qbig,
            f["c"],
            kp("s390_att", "s390_iommu_attach_device", a(domain=dom, dev=dev)),
        ),
        E(
            us(12345.678905),
            123,
            Qbig,
            f["c"],
            kp("dma_exit", "zpci_dma_exit_device", a(zdev=x64(ZDEV))),
        ),
        E(
            us(12345.678934),
            7,
            Kbig,
            f["a"],
            kp("s390_rel", "s390_iommu_release_device", a(dev=dev)),
        ),
        E(
            us(12345.678940),
            7,
            Kbig,
            f["e"],
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        E(
            us(12345.678961),
            7,
            Kbig,
            f["e"],
            kp("dma_init", "zpci_dma_init_device", a(zdev=x64(ZDEV))),
        ),
        E(
            us(12345.678977),
            123,
            Qbig,
            f["c"],
            krp(
                "s390_att_r", "__iommu_attach_device", 0x3A, "s390_iommu_attach_device", a(ret="0")
            ),
        ),
        E(us(12345.678980), 123, Qbig, f["d"], iommu_dev("attach_device_to_domain")),
        E(
            us(12345.679002),
            7,
            Kbig,
            f["e"],
            krp("s390_rel_r", "iommu_release_device", 0x5C, "s390_iommu_release_device"),
        ),
        E(
            us(12345.679010),
            123,
            Qbig,
            f["c"],
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        E(
            us(12345.679031),
            123,
            Qbig,
            f["c"],
            kp("dma_init", "zpci_dma_init_device", a(zdev=x64(ZDEV))),
        ),
        E(us(12345.679044), 123, Qbig, f["d"], iommu_dev("detach_device_from_domain")),
        E(us(12345.679060), 200, F, f["c"], rpcit(0x100002000, 0x1000)),
        E(us(12345.679069), 200, F, f["c"], rpcit_r("__dma_purge_tlb", 0x7C, 0)),
        E(us(12345.679101), 250, IDLE, f["b"], "irq_handler_entry: irq=37 name=nvme0q2"),
        E(us(12345.679104), 250, IDLE, f["b"], "irq_handler_exit: irq=37 ret=handled"),
        E(us(12345.679120), 200, F, f["c"], rpcit(0x100003000, 0x1000)),
        E(us(12345.679129), 200, F, f["c"], rpcit_r("__dma_purge_tlb", 0x7C, 0)),
        E(us(12345.679230), 7, Kbig, f["d"], iommu_group("remove_device_from_group")),
        E(
            us(12345.679250),
            7,
            Kbig,
            f["e"],
            kp("dma_exit", "zpci_dma_exit_device", a(zdev=x64(ZDEV))),
        ),
        E(us(12345.679301), 99, BASH, f["c"], "tracing_mark_write: rt: release window closed"),
    ]
    return ev


def s390_rt_7flags() -> list[str]:
    ev = rt_events(7)
    fmt = Fmt(nflags=7)
    return trace_file(
        "nop", header_irq7_rt(), render_events(fmt, ev), entries=n_entries(ev), ncpus=256
    )


def s390_rt_6flags() -> list[str]:
    ev = rt_events(6)
    return render_events(Fmt(nflags=6), ev)  # trace_pipe style: no header to invent


# --------------------------------------------------------------------------------------------
# 9. odd comms and flag letters (modern kernel with lazy preemption, v6.13+)
# --------------------------------------------------------------------------------------------


def s390_odd_comms() -> list[str]:
    dev, dom = x64(DEV), x64(DOM)
    E = Ev
    ev = [
        E(
            us(702.100001),
            0,
            ("Web Content", 3301),
            ".....",
            sched_wakeup("Web Content", 3302, 120, 2),
        ),
        E(
            us(702.100004),
            0,
            ("Web Content", 3301),
            "d.L2.",
            sched_switch("Web Content", 3301, 120, "S", "foo-123", 456, 120),
        ),
        E(us(702.100010), 0, ("foo-123", 456), ".....", "tracing_mark_write: comm foo-123 pid 456"),
        E(
            us(702.100012),
            1,
            ("[kworker]", 77),
            ".l...",
            "tracing_mark_write: comm [kworker] pid 77 (prctl-renamed)",
        ),
        E(us(702.100013), 1, ("a] [b", 78), ".b...", "tracing_mark_write: comm 'a] [b' pid 78"),
        E(us(702.100015), 2, ("x-", 88), "dB.1.", "tracing_mark_write: comm 'x-' pid 88"),
        E(
            us(702.100016),
            2,
            ("(sd-pam)", 1203),
            "b....",
            "tracing_mark_write: comm (sd-pam), bh disabled",
        ),
        E(us(702.100020), 3, KWORKER, "D..1.", iommu_group("remove_device_from_group")),
        E(
            us(702.100022),
            3,
            ("<...>", 31337),
            ".....",
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        E(us(702.100030), 1, IDLE, "d.h2.", "irq_handler_entry: irq=37 name=nvme0q2"),
        E(
            us(702.100031),
            1,
            IDLE,
            "d.Z1.",
            "tracing_mark_write: machine check (NMI) inside a hardirq",
        ),
        E(us(702.100032), 1, IDLE, "d.z1.", "tracing_mark_write: machine check (NMI) from idle"),
        E(us(702.100033), 1, IDLE, "d.H2.", "irq_handler_exit: irq=37 ret=handled"),
        E(
            us(702.100040),
            2,
            QEMU,
            "dN.2.",
            sched_switch("qemu-system-s39", 5082, 120, "R+", "kworker/u64:2", 123, 120),
        ),
        E(
            us(702.100041),
            2,
            ("qemu-system-s390x"[:15], 5082),
            ".p...",
            iommu_dev("attach_device_to_domain"),
        ),
        E(us(702.100045), 0, ("kworker/0:1H", 150), "dn.1.", rq_complete("R", 8, 8, 0, "none,0,0")),
    ]
    return trace_file("nop", header_irq5(False), render_events(Fmt(), ev), entries=n_entries(ev))


# --------------------------------------------------------------------------------------------
# 10. non-ns clock (counter) and the tai clock (10-digit seconds)
# --------------------------------------------------------------------------------------------


def s390_counter_clock() -> list[str]:
    fmt = Fmt(in_ns=False)
    dev, dom = x64(DEV), x64(DOM)
    E = Ev
    # trace_clock_counter(): one global atomic counter -> strictly increasing across CPUs
    ev = [
        E(
            1037,
            0,
            QEMU,
            "...1.",
            kp("s390_att", "s390_iommu_attach_device", a(domain=dom, dev=dev)),
        ),
        E(1038, 3, KMCHECK, "...1.", kp("s390_rel", "s390_iommu_release_device", a(dev=dev))),
        E(
            1039,
            3,
            KMCHECK,
            "...1.",
            kp("s390_det", "s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        E(
            1040,
            0,
            QEMU,
            "...1.",
            krp(
                "s390_att_r", "__iommu_attach_device", 0x3A, "s390_iommu_attach_device", a(ret="0")
            ),
        ),
        E(1041, 0, QEMU, ".....", iommu_dev("attach_device_to_domain")),
        E(
            1042,
            3,
            KMCHECK,
            "...1.",
            krp("s390_rel_r", "iommu_release_device", 0x5C, "s390_iommu_release_device"),
        ),
        E(1043, 3, KMCHECK, ".....", iommu_group("remove_device_from_group")),
        E(1044, 1, IDLE, "d.h1.", "irq_handler_entry: irq=37 name=nvme0q2"),
        E(1045, 1, IDLE, "d.h1.", "irq_handler_exit: irq=37 ret=handled"),
    ]
    return trace_file("nop", header_irq5(False), render_events(fmt, ev), entries=n_entries(ev))


def s390_tai_clock() -> list[str]:
    dev, dom = x64(DEV), x64(DOM)
    E = Ev
    base = 1795512387.000000  # TAI seconds since 1970 (Nov 2026), 10 digits
    ev = [
        E(
            us(base + 0.000064),
            0,
            QEMU,
            "...1.",
            kp("s390_att", "s390_iommu_attach_device", a(domain=dom, dev=dev)),
        ),
        E(
            us(base + 0.000087),
            3,
            KMCHECK,
            "...1.",
            kp("s390_rel", "s390_iommu_release_device", a(dev=dev)),
        ),
        E(
            us(base + 0.000118),
            0,
            QEMU,
            "...1.",
            krp(
                "s390_att_r", "__iommu_attach_device", 0x3A, "s390_iommu_attach_device", a(ret="0")
            ),
        ),
        E(
            us(base + 0.000133),
            3,
            KMCHECK,
            "...1.",
            krp("s390_rel_r", "iommu_release_device", 0x5C, "s390_iommu_release_device"),
        ),
        E(us(base + 0.000150), 3, KMCHECK, ".....", iommu_group("remove_device_from_group")),
        E(us(base + 0.000188), 1, IDLE, "d.h1.", "irq_handler_entry: irq=37 name=nvme0q2"),
        E(us(base + 0.000191), 1, IDLE, "d.h1.", "irq_handler_exit: irq=37 ret=handled"),
        E(us(base + 0.000300), 2, FIO, "...1.", rpcit(0x100002000, 0x1000)),
        E(us(base + 0.000309), 2, FIO, "...1.", rpcit_r("__dma_purge_tlb", 0x7C, 0)),
        E(us(base + 0.500000), 1, BASH, "...1.", "tracing_mark_write: CI: wall clock (TAI) marker"),
    ]
    return trace_file("nop", header_irq5(False), render_events(Fmt(), ev), entries=n_entries(ev))


# --------------------------------------------------------------------------------------------
# 11/12. function_graph (kernel/trace/trace_functions_graph.c)
# --------------------------------------------------------------------------------------------


def find_mark(ns: int) -> str:
    """trace_find_mark(): '$' >1s, '@' >100ms, '*' >10ms, '#' >1ms, '!' >100us, '+' >10us."""
    for limit, sym in (
        (1_000_000_000, "$"),
        (100_000_000, "@"),
        (10_000_000, "*"),
        (1_000_000, "#"),
        (100_000, "!"),
        (10_000, "+"),
    ):
        if ns > limit:
            return sym
    return " "


def graph_duration_str(ns: int) -> str:
    """trace_print_graph_duration(): usecs, '.', up to 3 ns digits (7 chars at most),
    " us ", padded to 8."""
    usecs, rem = divmod(ns, 1000)
    ustr = "%d" % usecs
    s = ustr
    length = len(ustr)
    if length < 7:
        slen = min(5, 8 - length)  # snprintf size incl. NUL -> slen-1 digits of "%03lu"
        nstr = ("%03d" % rem)[: slen - 1]
        s += "." + nstr
        length += len(nstr) + 1
    s += " us "
    s += " " * max(0, 8 - length)
    return s


@dataclass
class GRec:
    kind: str  # "ent", "ret", "cmt"
    ts: int
    cpu: int
    task: tuple[str, int]
    func: str = ""
    depth: int = 0
    calltime: int = 0
    retval: int | None = None
    text: str = ""
    seq: int = 0


@dataclass
class GOpts:
    cpu_width: int  # max_bytes_for_cpu = digits of (nr_cpu_ids - 1)
    abstime: bool = False
    proc: bool = False
    duration: bool = True
    overhead: bool = True
    retval: bool = False
    irqentry: frozenset[str] = frozenset({"do_io_irq"})


class GraphScript:
    """Builds per-CPU funcgraph entry/return records from nested calls (per-task depth)."""

    def __init__(self) -> None:
        self.recs: list[GRec] = []
        self.stack: dict[int, list[tuple[str, int]]] = {}

    def _add(self, r: GRec) -> None:
        prev = [x for x in self.recs if x.cpu == r.cpu]
        assert not prev or prev[-1].ts <= r.ts, (
            "graph script out of order on CPU",
            r.cpu,
            r.func,
            r.text,
        )
        self.recs.append(r)

    def enter(self, t: float, cpu: int, task: tuple[str, int], func: str) -> None:
        st = self.stack.setdefault(task[1], [])
        self._add(GRec("ent", nsec(t), cpu, task, func, len(st)))
        st.append((func, nsec(t)))

    def ret(self, t: float, cpu: int, task: tuple[str, int], retval: int | None = None) -> None:
        func, t0 = self.stack[task[1]].pop()
        depth = len(self.stack[task[1]])
        self._add(GRec("ret", nsec(t), cpu, task, func, depth, calltime=t0, retval=retval))

    def leaf(
        self,
        t: float,
        cpu: int,
        task: tuple[str, int],
        func: str,
        dur_ns: int,
        retval: int | None = None,
    ) -> None:
        depth = len(self.stack.setdefault(task[1], []))
        self._add(GRec("ent", nsec(t), cpu, task, func, depth))
        self._add(
            GRec("ret", nsec(t) + dur_ns, cpu, task, func, depth, calltime=nsec(t), retval=retval)
        )

    def comment(self, t: float, cpu: int, task: tuple[str, int], text: str) -> None:
        self._add(GRec("cmt", nsec(t), cpu, task, text=text))


def proc_str(comm: str, pid: int) -> str:
    """print_graph_proc(): comm cut to 7 chars, "comm-pid" centred in 14 columns."""
    s = "%s-%d" % (comm[:7], pid)
    spaces = max(0, 14 - len(s))
    return " " * (spaces // 2) + s + " " * (spaces - spaces // 2)


def retval_str(v: int) -> str:
    """print_graph_retval(): error codes (-4095..-1) as %ld, everything else as 0x%lx."""
    if v != 0 and -4095 <= v <= -1:
        return "ret=%d" % v
    return "ret=0x%x" % (v & 0xFFFFFFFFFFFFFFFF)


def render_graph(o: GOpts, recs: list[GRec]) -> list[str]:
    for i, r in enumerate(recs):
        r.seq = i
    queues: dict[int, list[GRec]] = {}
    for r in recs:  # each CPU's records in script order (asserted chronological)
        queues.setdefault(r.cpu, []).append(r)
    for q in queues.values():
        q.reverse()  # pop() from the end = oldest first
    last_pid: dict[int, int] = {}
    cdepth: dict[int, int] = {}
    enter_funcs: dict[int, dict[int, str]] = {}
    out: list[str] = []
    cur = ""

    def emit(s: str) -> None:
        nonlocal cur
        cur += s

    def flush() -> None:
        nonlocal cur
        out.append(cur)
        cur = ""

    def cpu_col(cpu: int) -> str:
        return " %*d) " % (o.cpu_width, cpu)

    def verif_pid(r: GRec) -> None:
        prev = last_pid.get(r.cpu, -1)
        if prev == r.task[1]:
            return
        last_pid[r.cpu] = r.task[1]
        if prev == -1:
            return
        out.append(" ------------------------------------------")
        out.append(cpu_col(r.cpu) + proc_str(*names[prev]) + " => " + proc_str(*r.task))
        out.append(" ------------------------------------------")
        out.append("")

    def prefix(r: GRec, ts: int) -> None:
        if o.abstime:
            t = ts // 1000
            emit("%5d.%06d |  " % (t // 1000000, t % 1000000))
        emit(cpu_col(r.cpu))
        if o.proc:
            emit(proc_str(*r.task) + " | ")

    def irq_marker(r: GRec, entry: bool, ts: int) -> None:
        prefix(r, ts)
        if o.duration:
            emit("  ")  # FLAGS_FILL_START
        emit("==========>" if entry else "<==========")
        if o.duration:
            emit(" |")  # FLAGS_FILL_END
        flush()

    def duration(ns: int | None) -> None:
        if not o.duration:
            return
        if ns is None:
            emit("              |  ")  # FLAGS_FILL_FULL: 14 spaces + "|  " (17 columns)
            return
        emit(("%s " % find_mark(ns)) if o.overhead else "  ")
        emit(graph_duration_str(ns))
        emit("|  ")

    names: dict[int, tuple[str, int]] = {r.task[1]: r.task for r in recs}

    while True:
        heads = [(q[-1].ts, cpu) for cpu, q in queues.items() if q]
        if not heads:
            break
        _, cpu = min(heads)
        r = queues[cpu].pop()
        ef = enter_funcs.setdefault(cpu, {})
        if r.kind == "ent":
            verif_pid(r)
            if r.func in o.irqentry:
                irq_marker(r, True, r.ts)
            prefix(r, r.ts)
            q = queues[cpu]
            nxt = q[-1] if q else None
            if nxt and nxt.kind == "ret" and nxt.task == r.task and nxt.func == r.func:  # leaf
                q.pop()
                cdepth[cpu] = r.depth - 1
                ef[r.depth] = ""
                duration(nxt.ts - nxt.calltime)
                emit(" " * (2 * r.depth))
                if o.retval:
                    emit("%s(); /* %s */" % (r.func, retval_str(nxt.retval or 0)))
                else:
                    emit("%s();" % r.func)
                flush()
                if r.func in o.irqentry:
                    irq_marker(r, False, r.ts)
            else:
                cdepth[cpu] = r.depth
                ef[r.depth] = r.func
                duration(None)
                emit(" " * (2 * r.depth) + "%s() {" % r.func)
                flush()
        elif r.kind == "ret":
            cdepth[cpu] = r.depth - 1
            match = ef.get(r.depth) == r.func
            ef[r.depth] = ""
            verif_pid(r)
            prefix(r, r.ts)
            duration(r.ts - r.calltime)
            emit(" " * (2 * r.depth))
            if o.retval:
                emit("} /* %s %s */" % (r.func, retval_str(r.retval or 0)))
            elif match:
                emit("}")
            else:
                emit("} /* %s */" % r.func)
            flush()
            if r.func in o.irqentry:
                irq_marker(r, False, r.ts)
        else:  # print_graph_comment(): trace_printk / trace_marker text at depth + 1
            verif_pid(r)
            prefix(r, r.ts)
            duration(None)
            d = cdepth.get(cpu, 0)
            if d > 0:
                emit(" " * ((d + 1) * 2))
            emit("/* %s */" % r.text)
            flush()
    return out


def graph_header(o: GOpts) -> list[str]:
    """__print_graph_headers_flags()."""
    l1, l2 = "#", "#"
    if o.abstime:
        l1 += "     TIME       "
        l2 += "      |         "
    l1 += " CPU"
    l2 += " |  "
    if o.proc:
        l1 += "  TASK/PID       "
        l2 += "   |    |        "
    if o.duration:
        l1 += "  DURATION   "
        l2 += "   |   |      "
    l1 += "               FUNCTION CALLS"
    l2 += "               |   |   |   |"
    return ["# tracer: function_graph", "#", l1, l2]


def funcgraph_story() -> GraphScript:
    """v6.0: set_graph_function='s390_iommu_* zpci_dma_* zpci_refresh_trans do_io_irq'.
    Times are seconds; leaf durations are ns."""
    g = GraphScript()
    K, Q, F = KMCHECK, QEMU, FIO
    b = 531.0
    u = 1e-6
    # CPU 0: QEMU attaches (VFIO_SET_IOMMU)
    g.enter(b + 20.000 * u, 0, Q, "s390_iommu_attach_device")
    g.leaf(b + 21.000 * u, 0, Q, "kmalloc_trace", 512)
    g.enter(b + 22.000 * u, 0, Q, "zpci_dma_exit_device")
    g.comment(b + 22.500 * u, 0, Q, "zpci: exit dma fid=0x12 fh=0x80a00000")
    g.leaf(b + 23.000 * u, 0, Q, "zpci_unregister_ioat", 8123)
    g.leaf(b + 32.000 * u, 0, Q, "dma_cleanup_tables", 30876)
    g.ret(b + 63.231 * u, 0, Q)
    g.enter(b + 64.000 * u, 0, Q, "zpci_register_ioat")
    g.leaf(b + 64.200 * u, 0, Q, "zpci_mod_fc", 18555)
    g.ret(b + 83.874 * u, 0, Q)
    g.leaf(b + 83.900 * u, 0, Q, "_raw_spin_lock_irqsave", 245)
    g.leaf(b + 84.200 * u, 0, Q, "_raw_spin_unlock_irqrestore", 198)
    g.ret(b + 84.412 * u, 0, Q)
    # CPU 3: kmcheck enters release and sleeps in vzalloc (reclaim) inside zpci_dma_init_device
    g.enter(b + 87.000 * u, 3, K, "s390_iommu_release_device")
    g.enter(b + 88.100 * u, 3, K, "s390_iommu_detach_device")
    g.leaf(b + 88.300 * u, 3, K, "_raw_spin_lock_irqsave", 245)
    g.leaf(b + 88.700 * u, 3, K, "_raw_spin_unlock_irqrestore", 198)
    g.leaf(b + 89.000 * u, 3, K, "zpci_unregister_ioat", 8123)
    g.enter(b + 98.000 * u, 3, K, "zpci_dma_init_device")
    g.enter(b + 98.400 * u, 3, K, "vzalloc")
    # CPU 3: QEMU (migrated here) closes the group while kmcheck sleeps: a second DMA-API init
    g.enter(b + 105.000 * u, 3, Q, "s390_iommu_detach_device")
    g.leaf(b + 105.300 * u, 3, Q, "_raw_spin_lock_irqsave", 251)
    g.leaf(b + 105.700 * u, 3, Q, "_raw_spin_unlock_irqrestore", 201)
    g.leaf(b + 106.000 * u, 3, Q, "zpci_unregister_ioat", 7944)
    g.enter(b + 114.000 * u, 3, Q, "zpci_dma_init_device")
    g.leaf(b + 114.200 * u, 3, Q, "dma_alloc_cpu_table", 2110)
    g.leaf(b + 117.000 * u, 3, Q, "vzalloc", 1180311)
    g.leaf(b + 1297.500 * u, 3, Q, "zpci_register_ioat", 19877)
    g.ret(b + 1321.100 * u, 3, Q)
    g.ret(b + 1339.567 * u, 3, Q)
    # CPU 11: fio's RPCIT and an I/O interrupt
    g.leaf(b + 150.000 * u, 11, F, "zpci_refresh_trans", 123456)
    g.enter(b + 400.000 * u, 11, F, "do_io_irq")
    g.enter(b + 401.000 * u, 11, F, "zpci_floating_irq_handler")
    g.leaf(b + 402.000 * u, 11, F, "nvme_irq", 3012)
    g.ret(b + 405.790 * u, 11, F)
    g.ret(b + 412.345 * u, 11, F)
    # CPU 3 again, 1.2 s later: kmcheck wakes up. QEMU's entries and leaves at depth 0..2 have
    # overwritten this CPU's enter_funcs[0..2], so the kernel names the function on those closers
    g.ret(b + 1204418.000 * u, 3, K)  # vzalloc: enter_funcs[3] untouched -> plain "}"
    g.leaf(b + 1204420.000 * u, 3, K, "zpci_register_ioat", 18102)
    g.ret(b + 1204440.000 * u, 3, K)  # zpci_dma_init_device -> "} /* zpci_dma_init_device */"
    g.ret(b + 1204441.000 * u, 3, K)  # s390_iommu_detach_device
    g.ret(b + 1204443.000 * u, 3, K)  # s390_iommu_release_device (1.2 s: '$')
    g.enter(b + 1204510.000 * u, 3, K, "zpci_dma_exit_device")
    g.leaf(b + 1204511.000 * u, 3, K, "zpci_unregister_ioat", 7807)
    g.leaf(b + 1204520.000 * u, 3, K, "dma_cleanup_tables", 12345670)
    g.ret(b + 1216867.000 * u, 3, K)
    # CPU 11: a global flush that the hypervisor (z/VM) takes 234 ms to complete
    g.leaf(b + 1300000.000 * u, 11, F, "zpci_refresh_trans", 234567800)
    return g


def s390_funcgraph_default() -> list[str]:
    o = GOpts(cpu_width=2)  # nr_cpu_ids 64 on this LPAR -> "%2d)"
    return graph_header(o) + render_graph(o, funcgraph_story().recs)


def s390_funcgraph_abstime_proc() -> list[str]:
    o = GOpts(cpu_width=1, abstime=True, proc=True)  # a 4-CPU guest: nr_cpu_ids 4 -> "%1d)"
    g = GraphScript()
    K, Q, F, W = KMCHECK, QEMU, FIO, KWORKER
    b = 531.0
    u = 1e-6
    g.enter(b + 20.000 * u, 0, Q, "s390_iommu_attach_device")
    g.enter(b + 22.000 * u, 0, Q, "zpci_dma_exit_device")
    g.leaf(b + 23.000 * u, 0, Q, "zpci_unregister_ioat", 8123)
    g.leaf(b + 32.000 * u, 0, Q, "dma_cleanup_tables", 30876)
    g.ret(b + 63.231 * u, 0, Q)
    g.leaf(b + 64.000 * u, 0, Q, "zpci_register_ioat", 19874)
    g.ret(b + 84.412 * u, 0, Q)
    g.enter(b + 87.000 * u, 3, K, "s390_iommu_release_device")
    g.enter(b + 88.100 * u, 3, K, "s390_iommu_detach_device")
    g.leaf(b + 89.000 * u, 3, K, "zpci_unregister_ioat", 8123)
    g.comment(b + 97.500 * u, 3, K, "release: fid 0x12 still attached to a domain")
    g.leaf(b + 98.000 * u, 3, K, "zpci_dma_init_device", 33711)
    g.ret(b + 132.000 * u, 3, K)
    g.enter(b + 126.000 * u, 0, Q, "s390_iommu_detach_device")
    g.leaf(b + 126.400 * u, 0, Q, "zpci_unregister_ioat", 6015)
    g.leaf(b + 140.000 * u, 0, Q, "zpci_dma_init_device", 29950)
    g.ret(b + 170.123 * u, 0, Q)
    g.ret(b + 133.000 * u, 3, K)
    g.enter(b + 140.000 * u, 1, F, "do_io_irq")
    g.enter(b + 140.500 * u, 1, F, "zpci_floating_irq_handler")
    g.leaf(b + 141.000 * u, 1, F, "nvme_irq", 3012)
    g.ret(b + 144.800 * u, 1, F)
    g.ret(b + 146.000 * u, 1, F)
    g.leaf(b + 149.000 * u, 1, F, "zpci_refresh_trans", 8877)
    # the bus worker finishes the removal on CPU 3 -> context switch block on CPU 3
    g.enter(b + 150.000 * u, 3, W, "zpci_dma_exit_device")
    g.leaf(b + 151.000 * u, 3, W, "zpci_unregister_ioat", 7807)
    g.ret(b + 160.000 * u, 3, W)
    return graph_header(o) + render_graph(o, g.recs)


def s390_funcgraph_retval() -> list[str]:
    """v6.7+ (dma-iommu, pci_dma.c gone) with funcgraph-retval on (needs v6.5+): the first attach
    fails with -EIO because the function is gone (cc 3 from zpci_register_ioat)."""
    o = GOpts(cpu_width=2, retval=True)
    g = GraphScript()
    K, Q, W = KMCHECK, QEMU, KWORKER
    b = 845.0
    u = 1e-6
    irqflags = 0x0700000000000000  # stosm stores the old system mask in the top byte
    # boot-time probe of a second function, then QEMU attaches and fails
    g.enter(b + 1.000 * u, 2, W, "s390_iommu_probe_device")
    g.leaf(b + 1.300 * u, 2, W, "zpci_init_iommu", 904, retval=0)
    g.ret(b + 3.204 * u, 2, W, retval=ZDEV + 0x4A10)  # &zdev->iommu_dev
    g.enter(b + 10.000 * u, 0, Q, "s390_iommu_attach_device")
    g.leaf(b + 11.000 * u, 0, Q, "_raw_spin_lock_irqsave", 312, retval=irqflags)
    g.leaf(
        b + 12.000 * u, 0, Q, "_raw_spin_unlock_irqrestore", 201, retval=irqflags
    )  # void: r2 leftover
    g.leaf(
        b + 13.000 * u, 0, Q, "s390_iommu_detach_device", 9114, retval=ZDEV
    )  # static void: r2 leftover
    g.leaf(b + 23.000 * u, 0, Q, "zpci_register_ioat", 7912, retval=3)  # cc 3: not available
    g.ret(b + 31.118 * u, 0, Q, retval=-5)
    g.enter(b + 40.000 * u, 3, K, "s390_iommu_release_device")
    g.enter(b + 40.500 * u, 3, K, "s390_iommu_detach_device")
    g.leaf(b + 41.000 * u, 3, K, "_raw_spin_lock_irqsave", 298, retval=irqflags)
    g.leaf(b + 41.500 * u, 3, K, "_raw_spin_unlock_irqrestore", 187, retval=irqflags)
    g.leaf(b + 42.000 * u, 3, K, "zpci_unregister_ioat", 7770, retval=3)
    g.ret(b + 50.600 * u, 3, K, retval=3)  # static void: r2 still holds the cc
    g.ret(b + 51.000 * u, 3, K, retval=3)  # void
    # QEMU retries against a device that is gone: probe of the stale struct device fails
    g.enter(b + 90.000 * u, 0, Q, "s390_iommu_probe_device")
    g.ret(b + 91.044 * u, 0, Q, retval=-19)
    # the successful case on the other function: ret=0x0
    g.enter(b + 120.000 * u, 2, W, "s390_iommu_attach_device")
    g.leaf(b + 121.000 * u, 2, W, "zpci_register_ioat", 8107, retval=0)
    g.ret(b + 130.420 * u, 2, W, retval=0)
    return graph_header(o) + render_graph(o, g.recs)


# --------------------------------------------------------------------------------------------
# 13. trace-cmd report (tracecmd/trace-read.c trace_show_data(); libtraceevent)
# --------------------------------------------------------------------------------------------


def tc_lat_flags(kflags: str) -> str:
    """libtraceevent data_latency_format(): 'd'/'X'/'.', 'N'/'.', 'H'/'h'/'s'/'.', then the
    preempt-count byte's low and high nibble. It knows neither 'n'/'p'/lazy letters, nor NMI, nor
    the BH-disabled letters, so e.g. kernel 'dn.1.' becomes 'd..1.' and 'd.Z1.' becomes 'd.h1.'."""
    c1 = "d" if kflags[0] in "dD" else ("X" if kflags[0] == "X" else ".")
    c2 = "N" if kflags[1] in "NnBb" else "."
    c3 = {"h": "h", "H": "H", "s": "s", "Z": "h"}.get(kflags[2], ".")
    return c1 + c2 + c3 + kflags[3] + kflags[4]


def tc_time(ns: int, nsec: bool) -> str:
    """print_event_time(): " %6.1000d:" -> "%5llu.%06llu" (rounded to us), -t " %9.1d:" -> ns."""
    if nsec:
        return " %5d.%09d:" % (ns // 1_000_000_000, ns % 1_000_000_000)
    t = (ns + 500) // 1000
    return " %5d.%06d:" % (t // 1000000, t % 1000000)


def tc_name(name: str) -> str:
    """print_event_name(): " %s: " then pad the name to 20 columns."""
    return " %s: " % name + " " * max(0, 20 - len(name))


@dataclass
class TcEv:
    ts: int
    cpu: int
    task: tuple[str, int]
    kflags: str
    name: str
    info: str
    inst: str | None = None  # buffer instance name; None = top-level buffer
    dropped: int | None = None  # -1 = unknown count
    seq: int = 0


def tc_line(e: TcEv, latency: bool, nsec: bool) -> str:
    comm, pid = e.task
    if latency:
        s = "%8.8s-%-5d %3d" % (comm, pid, e.cpu) + tc_lat_flags(e.kflags)
    else:
        s = "%16s-%-5d [%03d]" % (comm, pid, e.cpu)
    return s + tc_time(e.ts, nsec) + tc_name(e.name) + e.info


def tc_kp(sym: str, args: str = "") -> str:
    """kprobe print fmt "(%lx)" + args: libtraceevent prints the raw ip, no symbol."""
    return "(%x)%s" % (sym_addr(sym), args)


def tc_krp(func: str, site: str, off: int, args: str = "") -> str:
    """kretprobe print fmt "(%lx <- %lx)", REC->__probe_func, REC->__probe_ret_ip: the probed
    function comes FIRST here, the return site first in the kernel's own text output."""
    return "(%x <- %x)%s" % (sym_addr(func), sym_addr(site, off), args)


def tc_events() -> list[TcEv]:
    dev, zd, dom = x64(DEV), x64(ZDEV), x64(DOM)
    T = TcEv
    K, Q = KMCHECK, QEMU
    return [
        T(
            us(512.104420),
            0,
            Q,
            "...1.",
            "s390_att",
            tc_kp("s390_iommu_attach_device", a(domain=dom, dev=dev)),
        ),
        T(
            us(512.104431) + 217,
            0,
            Q,
            "...1.",
            "dma_exit",
            tc_kp("zpci_dma_exit_device", a(zdev=zd)),
        ),
        T(
            us(512.104549) + 402,
            0,
            Q,
            "...1.",
            "s390_att_r",
            tc_krp("s390_iommu_attach_device", "__iommu_attach_device", 0x3A, a(ret="0")),
        ),
        T(us(512.104553) + 88, 0, Q, ".....", "attach_device_to_domain", "IOMMU: device=%s" % PCI),
        T(
            us(530.500000) + 731,
            2,
            BASH,
            "...1.",
            "print",
            "tracing_mark_write: CI: deconfigure fid 0x12 now",
        ),
        T(
            us(531.000064) + 123,
            0,
            Q,
            "...1.",
            "s390_att",
            tc_kp("s390_iommu_attach_device", a(domain=dom, dev=dev)),
        ),
        T(
            us(531.000087) + 42,
            3,
            K,
            "...1.",
            "s390_rel",
            tc_kp("s390_iommu_release_device", a(dev=dev)),
        ),
        T(
            us(531.000091) + 311,
            3,
            K,
            "...1.",
            "s390_det",
            tc_kp("s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        T(
            us(531.000118) + 266,
            0,
            Q,
            "...1.",
            "s390_att_r",
            tc_krp("s390_iommu_attach_device", "__iommu_attach_device", 0x3A, a(ret="0")),
        ),
        T(us(531.000120) + 9, 0, Q, ".....", "attach_device_to_domain", "IOMMU: device=%s" % PCI),
        T(
            us(531.000126) + 490,
            0,
            Q,
            "...1.",
            "s390_det",
            tc_kp("s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        T(
            us(531.000133) + 5,
            3,
            K,
            "...1.",
            "s390_rel_r",
            tc_krp("s390_iommu_release_device", "iommu_release_device", 0x5C),
        ),
        T(
            us(531.000147) + 301,
            0,
            Q,
            ".....",
            "detach_device_from_domain",
            "IOMMU: device=%s" % PCI,
        ),
        T(
            us(531.000150) + 77,
            3,
            K,
            ".....",
            "remove_device_from_group",
            "IOMMU: groupID=%d device=%s" % (GROUP, PCI),
        ),
        T(
            us(531.000171) + 98,
            3,
            K,
            "...1.",
            "dma_exit",
            tc_kp("zpci_dma_exit_device", a(zdev=zd)),
        ),
        T(us(531.000188) + 12, 0, IDLE, "d.h1.", "irq_handler_entry", "irq=37 name=nvme0q2"),
        T(us(531.000191) + 450, 0, IDLE, "d.h1.", "irq_handler_exit", "irq=37 ret=handled"),
        # fio's DMA-API traffic on another function (v6.0: pci_dma.c, RPCIT from __dma_purge_tlb)
        T(
            us(531.000301) + 77,
            2,
            FIO,
            ".....",
            "block_rq_issue",
            "259,0 R 4096 () 123456 + 8 [fio]",
        ),
        T(
            us(531.000302) + 5,
            2,
            FIO,
            "d..1.",
            "rpcit",
            tc_kp("zpci_refresh_trans", a(fn=x64(FN), addr=x64(0x100002000), range=x64(0x1000))),
        ),
        T(
            us(531.000311) + 650,
            2,
            FIO,
            "d..1.",
            "rpcit_r",
            tc_krp("zpci_refresh_trans", "__dma_purge_tlb", 0x7C, a(ret="-12")),
        ),
        T(
            us(531.000312) + 3,
            2,
            FIO,
            "d..1.",
            "rpcit",
            tc_kp("zpci_refresh_trans", a(fn=x64(FN), addr=x64(START_DMA), range=x64(APERTURE))),
        ),
        T(
            us(531.000350) + 901,
            2,
            FIO,
            "d..1.",
            "rpcit_r",
            tc_krp("zpci_refresh_trans", "__dma_purge_tlb", 0xB4, a(ret="0")),
        ),
        T(us(531.000498) + 20, 2, IDLE, "d.h1.", "block_rq_complete", "259,0 R () 123456 + 8 [0]"),
    ]


def tc_sorted(events: list[TcEv]) -> list[TcEv]:
    for i, e in enumerate(events):
        e.seq = i
    return sorted(events, key=lambda e: (e.ts, e.cpu, e.seq))


def s390_report(latency: bool = False, nsec: bool = False, old_preamble: bool = False) -> list[str]:
    out: list[str] = []
    ev = tc_events()
    if old_preamble:
        # trace-cmd 2.x: pr_stat("version = %s") when opening the file, init_cpu() prints
        # "CPU %d is empty" for CPUs without data, then read_data_info() prints "cpus=%d"
        out.append("version = 6")
        assert all(e.cpu != 1 for e in ev)
        out.append("CPU 1 is empty")
    out.append("cpus=4")
    out += [tc_line(e, latency, nsec) for e in tc_sorted(ev)]
    return out


def s390_report_instances() -> list[str]:
    """One trace.dat with the top buffer and two instances ("iommu", "blk"), trace-cmd 3.x:
    read_data_info() prints "cpus=%d" once (instance handles are skipped); print_handle_file()
    prefixes every line with "%*s: " (instance name, width = longest name) or, for the top
    buffer, "%*s  " (blanks); the EVENTS DROPPED line is part of trace_show_data()'s output, so
    the prefix lands on it and the event line after it starts at column 0."""
    dev, dom = x64(DEV), x64(DOM)
    T = TcEv
    K, Q = KMCHECK, QEMU
    ev = [
        T(
            us(531.000064) + 123,
            0,
            Q,
            "...1.",
            "s390_att",
            tc_kp("s390_iommu_attach_device", a(domain=dom, dev=dev)),
            inst="iommu",
        ),
        T(
            us(531.000087) + 42,
            3,
            K,
            "...1.",
            "s390_rel",
            tc_kp("s390_iommu_release_device", a(dev=dev)),
            inst="iommu",
        ),
        T(
            us(531.000101) + 17,
            1,
            FIO,
            ".....",
            "block_rq_issue",
            "259,0 R 4096 () 123456 + 8 [fio]",
            inst="blk",
            dropped=120,
        ),
        T(
            us(531.000118) + 266,
            0,
            Q,
            "...1.",
            "s390_att_r",
            tc_krp("s390_iommu_attach_device", "__iommu_attach_device", 0x3A, a(ret="0")),
            inst="iommu",
        ),
        T(us(531.000120) + 9, 0, Q, ".....", "attach_device_to_domain", "IOMMU: device=%s" % PCI),
        T(
            us(531.000133) + 5,
            3,
            K,
            "...1.",
            "s390_rel_r",
            tc_krp("s390_iommu_release_device", "iommu_release_device", 0x5C),
            inst="iommu",
        ),
        T(
            us(531.000150) + 77,
            3,
            K,
            ".....",
            "remove_device_from_group",
            "IOMMU: groupID=%d device=%s" % (GROUP, PCI),
        ),
        T(
            us(531.000187) + 300,
            1,
            IDLE,
            "d.h1.",
            "block_rq_complete",
            "259,0 R () 123456 + 8 [0]",
            inst="blk",
        ),
        T(
            us(531.000290) + 14,
            2,
            ("fio", 2213),
            ".....",
            "block_rq_issue",
            "259,0 WS 131072 () 987648 + 256 [fio]",
            inst="blk",
            dropped=-1,
        ),
        T(
            us(531.000401) + 3,
            2,
            IDLE,
            "d.h1.",
            "block_rq_complete",
            "259,0 WS () 987648 + 256 [0]",
            inst="blk",
        ),
        T(
            us(531.000420) + 61,
            1,
            FIO,
            ".....",
            "block_rq_issue",
            "259,0 R 4096 () 123464 + 8 [fio]",
            inst="blk",
        ),
        T(
            us(531.000421) + 11,
            1,
            FIO,
            "d..1.",
            "rpcit",
            tc_kp("zpci_refresh_trans", a(fn=x64(FN), addr=x64(0x100003000), range=x64(0x1000))),
            inst="iommu",
        ),
        T(
            us(531.000430) + 7,
            1,
            FIO,
            "d..1.",
            "rpcit_r",
            tc_krp("zpci_refresh_trans", "__dma_purge_tlb", 0x7C, a(ret="0")),
            inst="iommu",
        ),
        T(
            us(531.000502) + 2,
            3,
            KWORKER,
            "d..1.",
            "rpcit",
            tc_kp("zpci_refresh_trans", a(fn=x64(FN), addr=x64(START_DMA), range=x64(APERTURE))),
            inst="iommu",
        ),
        T(
            us(531.000540) + 800,
            3,
            KWORKER,
            "d..1.",
            "rpcit_r",
            tc_krp("zpci_refresh_trans", "__dma_purge_tlb", 0xB4, a(ret="0")),
            inst="iommu",
        ),
        T(
            us(531.000611) + 300,
            1,
            IDLE,
            "d.h1.",
            "block_rq_complete",
            "259,0 R () 123464 + 8 [0]",
            inst="blk",
        ),
        T(us(531.000700) + 41, 0, BASH, "...1.", "print", "tracing_mark_write: CI: instances done"),
        T(
            us(531.000890) + 5,
            2,
            ("fio", 2213),
            ".....",
            "block_rq_issue",
            "259,0 R 4096 () 987904 + 8 [fio]",
            inst="blk",
        ),
        T(
            us(531.001022) + 5,
            2,
            IDLE,
            "d.h1.",
            "block_rq_complete",
            "259,0 R () 987904 + 8 [0]",
            inst="blk",
        ),
    ]
    width = max(len(e.inst) for e in ev if e.inst)
    out = ["cpus=4"]
    for e in tc_sorted(ev):
        pre = ("%*s: " % (width, e.inst)) if e.inst else ("%*s  " % (width, ""))
        line = pre
        if e.dropped is not None:
            line += (
                ("CPU:%d [%d EVENTS DROPPED]" % (e.cpu, e.dropped))
                if e.dropped > 0
                else ("CPU:%d [EVENTS DROPPED]" % e.cpu)
            )
            out.append(line)
            line = ""
        out.append(line + tc_line(e, False, False))
    return out


def s390_report_multi_input() -> list[str]:
    """`trace-cmd report -i host.dat -i guest.dat`: each file is its own handle, so each gets
    "%*s: cpus=%d" (after its own "CPU %d is empty" lines, which carry no prefix), and every
    event line is prefixed with its file's base name. The two clocks are NOT aligned (no
    --ts-offset): the guest's boot-relative times sort before all host times."""
    dev, dom = x64(DEV), x64(DOM)
    T = TcEv
    host = [
        T(
            us(531.000064) + 123,
            0,
            QEMU,
            "...1.",
            "s390_att",
            tc_kp("s390_iommu_attach_device", a(domain=dom, dev=dev)),
        ),
        T(
            us(531.000087) + 42,
            3,
            KMCHECK,
            "...1.",
            "s390_rel",
            tc_kp("s390_iommu_release_device", a(dev=dev)),
        ),
        T(
            us(531.000133) + 5,
            3,
            KMCHECK,
            "...1.",
            "s390_rel_r",
            tc_krp("s390_iommu_release_device", "iommu_release_device", 0x5C),
        ),
        T(
            us(531.000150) + 77,
            3,
            KMCHECK,
            ".....",
            "remove_device_from_group",
            "IOMMU: groupID=%d device=%s" % (GROUP, PCI),
        ),
        T(
            us(531.000118) + 266,
            0,
            QEMU,
            "...1.",
            "s390_att_r",
            tc_krp("s390_iommu_attach_device", "__iommu_attach_device", 0x3A, a(ret="0")),
        ),
        T(
            us(531.000120) + 9,
            0,
            QEMU,
            ".....",
            "attach_device_to_domain",
            "IOMMU: device=%s" % PCI,
        ),
        T(
            us(531.000126) + 490,
            0,
            QEMU,
            "...1.",
            "s390_det",
            tc_kp("s390_iommu_detach_device", a(domain=dom, dev=dev)),
        ),
        T(
            us(531.000147) + 301,
            0,
            QEMU,
            ".....",
            "detach_device_from_domain",
            "IOMMU: device=%s" % PCI,
        ),
        T(
            us(531.000301) + 77,
            2,
            FIO,
            ".....",
            "block_rq_issue",
            "259,0 R 4096 () 123456 + 8 [fio]",
        ),
        T(us(531.000498) + 20, 2, IDLE, "d.h1.", "block_rq_complete", "259,0 R () 123456 + 8 [0]"),
    ]
    # the s390 KVM guest that owned the passed-through function (PCI name inside the guest differs)
    G1, G2 = ("kworker/0:2", 61), ("irq/25-nvme0q1", 244)
    guest = [
        T(
            us(212.480011) + 9,
            0,
            ("nvme", 602),
            ".....",
            "block_rq_issue",
            "259,0 R 4096 () 2048 + 8 [nvme]",
        ),
        T(
            us(212.480112) + 5,
            0,
            G1,
            ".....",
            "remove_device_from_group",
            "IOMMU: groupID=0 device=0001:00:00.0",
        ),
        T(
            us(212.480201) + 3,
            0,
            G1,
            ".....",
            "print",
            "tracing_mark_write: guest: hot-unplug of 0001:00:00.0",
        ),
        T(us(212.480350) + 1, 1, G2, ".....", "block_rq_complete", "259,0 R () 2048 + 8 [-5]"),
        T(
            us(212.480360) + 4,
            1,
            G2,
            ".....",
            "block_rq_issue",
            "259,0 R 4096 () 2048 + 8 [irq/25-nvme0q1]",
        ),
        T(us(212.480380) + 2, 1, G2, ".....", "block_rq_complete", "259,0 R () 2048 + 8 [-19]"),
    ]
    files = [("host.dat", 4, [], host), ("guest.dat", 4, [2, 3], guest)]
    width = max(len(f[0]) for f in files)
    out: list[str] = []
    for name, cpus, empty, _ in files:
        out += ["CPU %d is empty" % c for c in empty]
        out.append("%*s: cpus=%d" % (width, name, cpus))
    tagged = [(e, name) for name, _, _, evs in files for e in evs]
    for i, (e, _) in enumerate(tagged):
        e.seq = i
    for e, name in sorted(tagged, key=lambda p: (p[0].ts, p[0].seq)):
        out.append("%*s: " % (width, name) + tc_line(e, False, False))
    return out


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------


def outputs() -> dict[Path, str]:
    files: dict[Path, str] = {}

    def put(path: Path, lines: list[str], tail: str | None = None) -> None:
        text = "\n".join(lines) + "\n"
        if tail is not None:
            text += tail  # no final newline
        files[path] = text

    F, T = FTRACE_DIR, TRACECMD_DIR
    put(F / "s390-kprobe-race-v6.0.txt", s390_kprobe_race())
    put(F / "s390-rpcit-flush.txt", s390_rpcit_flush())
    put(F / "s390-function-tracer.txt", s390_function_tracer(symoff=False))
    put(F / "s390-function-tracer-symoffset.txt", s390_function_tracer(symoff=True))
    lines, cut = s390_trace_pipe_lost()
    put(F / "s390-trace-pipe-lost.txt", lines, tail=cut)
    put(F / "s390-overrun-buffer-started.txt", s390_overrun())
    put(F / "s390-tgid-noirqinfo.txt", s390_tgid_noirqinfo())
    put(F / "s390-old-kernel-4flags.txt", s390_old_kernel_4flags())
    put(F / "s390-rt-7flags.txt", s390_rt_7flags())
    put(F / "s390-rt-6flags.txt", s390_rt_6flags())
    put(F / "s390-odd-comms.txt", s390_odd_comms())
    put(F / "s390-counter-clock.txt", s390_counter_clock())
    put(F / "s390-tai-clock.txt", s390_tai_clock())
    put(GRAPH_DIR / "s390-funcgraph-default.txt", s390_funcgraph_default())
    put(GRAPH_DIR / "s390-funcgraph-abstime-proc.txt", s390_funcgraph_abstime_proc())
    put(GRAPH_DIR / "s390-funcgraph-retval.txt", s390_funcgraph_retval())
    put(T / "s390-report.report.txt", s390_report(old_preamble=True))
    put(T / "s390-report-l.report.txt", s390_report(latency=True))
    put(T / "s390-report-t.report.txt", s390_report(nsec=True))
    put(T / "s390-report-instances.report.txt", s390_report_instances())
    put(T / "s390-report-multi-input.report.txt", s390_report_multi_input())
    for path, text in files.items():
        n = text.count("\n") + (0 if text.endswith("\n") else 1)
        assert 20 <= n <= 120, (path.name, n)
    return files


def main(argv: list[str] | None = None) -> int:
    return render(outputs(), __doc__.splitlines()[0], argv)


def render(files: dict[Path, str], description: str, argv: list[str] | None = None) -> int:
    """Write ``files`` (path -> text), or with --check only compare them with the disk."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument(
        "--check", action="store_true", help="compare with the files on disk, write nothing"
    )
    args = ap.parse_args(argv)
    bad = 0
    for path, text in files.items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                print("differs: %s" % path.relative_to(SAMPLES.parent))
                bad += 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print("wrote %s" % path.relative_to(SAMPLES.parent))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
