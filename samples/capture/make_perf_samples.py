#!/usr/bin/env python3
"""Render the hand-made s390 ``perf script`` samples (samples/perf/) with perf's printf widths.

Why: there is no s390 machine, so these files are rendered, like make_s390_samples.py renders
the ftrace ones. Stdlib only and deterministic.

    python3 samples/capture/make_perf_samples.py            # (re)write samples/perf/s390-*.txt
    python3 samples/capture/make_perf_samples.py --check    # exit 1 if a file on disk differs

The widths are those of perf 6.1 (tools/perf/builtin-script.c, perf_sample__fprintf_start and
process_event), checked against the perf 6.1 captures in the shared corpus: comm "%16s " (plain
"%s " when a callchain follows), tid "%5d " or pid/tid "%5d/%-5d ", cpu "[%03d] ", time "%12s: "
(--ns: "%5lu.%09llu: "), period "%10lu ", event names right-aligned to the longest one, frames
"\\t%16lx sym+0xoff (dso)" and a blank line after each callchain. Tracepoint payloads are what
libtraceevent prints (the block ioprio class as a number: "0x2,0,4"); perf probe payloads are
"(%lx)" and "(%lx <- %lx)" plus fetch args. The story and values are those of
make_s390_samples.py: device 0004:00:00.0, fh 0x80a00000, the 2022 release/attach race.
"""

# The formats below mirror C printf strings on purpose.
# Sample lines are data: long, and the header keeps perf's trailing spaces.
# ruff: noqa: UP031, E501, W291

from __future__ import annotations

import re
import sys
from pathlib import Path

from make_s390_samples import render

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent
PERF_DIR = SAMPLES / "perf"

# Invented kernel addresses of the probed functions and the return sites (s390 v6.0 layout).
ADDR = {
    "zpci_dma_init_device": "95a1c2a10",
    "s390_iommu_probe_device": "95bb0f118",
    "s390_iommu_attach_device": "95bb0f5f0",
    "zpci_dma_exit_device": "95a1c2e90",
    "s390_iommu_release_device": "95bb0f2a8",
    "s390_iommu_detach_device": "95bb0f4d8",
    "zpci_refresh_trans": "95a1c4d10",
}
SITE = {
    "__iommu_attach_device+0x3a/0xd8": "95bb0a3fa",
    "iommu_release_device+0x5c/0x130": "95bb09d84",
}
MAP = "IOMMU: iova=0x0000000100000000 - 0x0000000100001000 paddr=0x000000008f3b2000 size=4096"
UNMAP = "IOMMU: iova=0x0000000100000000 - 0x0000000100001000 size=4096 unmapped_size=4096"
RPCIT = "(95a1c4d10) fn=0x80a0000000000000 addr=0x100000000 range=0x1000"

Row = tuple[str, int, int | None, str, str, str]  # comm, tid, cpu, time, event, payload


def prefix(
    comm: str, tid: int, cpu: int | None, ts: str, *, pad: bool = True, pid: int | None = None
) -> str:
    """perf_sample__fprintf_start: comm, [pid/]tid, [cpu], time."""
    out = ("%16s " % comm) if pad else ("%s " % comm)
    out += ("%5d/%-5d " % (pid, tid)) if pid is not None else ("%5d " % tid)
    if cpu is not None:
        out += "[%03d] " % cpu
    return out + "%12s: " % ts


def tracepoints(rows: list[Row]) -> str:
    width = max(len(r[4]) for r in rows)
    return "".join(
        prefix(comm, tid, cpu, ts) + "%*s: %s\n" % (width, event, payload)
        for comm, tid, cpu, ts, event, payload in rows
    )


def nvme_tracepoints() -> str:
    """iommu and block tracepoints of an s390 NVMe run (perf record -e iommu:* -e block:*)."""
    dev = "IOMMU: device=0004:00:00.0"
    return tracepoints(
        [
            ("qemu-system-s39", 5082, 0, "512.104410", "iommu:detach_device_from_domain", dev),
            ("qemu-system-s39", 5082, 0, "512.104553", "iommu:attach_device_to_domain", dev),
            ("qemu-system-s39", 5082, 0, "512.104601", "iommu:map", MAP),
            (
                "fio",
                2211,
                1,
                "620.000101",
                "block:block_rq_issue",
                "259,0 R 4096 () 123456 + 8 0x2,0,4 [fio]",
            ),
            (
                "fio",
                2211,
                1,
                "620.000102",
                "block:block_rq_issue",
                "259,0 W 131072 () 987648 + 256 0x2,0,4 [fio]",
            ),
            (
                "swapper",
                0,
                1,
                "620.000187",
                "block:block_rq_complete",
                "259,0 R () 123456 + 8 0x2,0,4 [0]",
            ),
            (
                "kworker/1:1H",
                150,
                1,
                "620.000250",
                "block:block_rq_complete",
                "259,0 W () 987648 + 256 0x2,0,4 [-5]",
            ),
            ("qemu-system-s39", 5082, 0, "620.100220", "iommu:unmap", UNMAP),
            (
                "kmcheck",
                41,
                3,
                "621.000090",
                "iommu:remove_device_from_group",
                "IOMMU: groupID=4 device=0004:00:00.0",
            ),
        ]
    )


def probe_release_race() -> str:
    """perf probe -a s390_iommu_release_device -a 's390_iommu_attach_device domain=%r2 dev=%r3'
    -a 's390_iommu_attach_device%return ret=$retval:s32' -a 'zpci_refresh_trans fn=%r2 addr=%r3
    range=%r4' -a 'zpci_refresh_trans%return ret=$retval:s32'."""
    att = "(95bb0f5f0) domain=0x9a7c1e00 dev=0x8f3a40c8"
    return tracepoints(
        [
            ("qemu-system-s39", 5082, 0, "512.104420", "probe:s390_iommu_attach_device", att),
            ("qemu-system-s39", 5082, 0, "512.104480", "probe:zpci_refresh_trans", RPCIT),
            (
                "qemu-system-s39",
                5082,
                0,
                "512.104491",
                "probe:zpci_refresh_trans__return",
                "(95a1c4d10 <- 95a1c6e6a) ret=0",
            ),
            (
                "qemu-system-s39",
                5082,
                0,
                "512.104553",
                "probe:s390_iommu_attach_device__return",
                "(95bb0f5f0 <- 95bb0a3fa) ret=0",
            ),
            (
                "kmcheck",
                41,
                3,
                "531.000087",
                "probe:s390_iommu_release_device",
                "(95bb0f2a8) dev=0x8f3a40c8",
            ),
            ("qemu-system-s39", 5082, 0, "531.000102", "probe:s390_iommu_attach_device", att),
            (
                "kmcheck",
                41,
                3,
                "531.000133",
                "probe:s390_iommu_release_device__return",
                "(95bb0f2a8 <- 95bb09d84)",
            ),
            (
                "qemu-system-s39",
                5082,
                0,
                "531.000290",
                "probe:s390_iommu_attach_device__return",
                "(95bb0f5f0 <- 95bb0a3fa) ret=-19",
            ),
        ]
    )


def ns_pid_tid() -> str:
    """perf script --ns -F +pid: "%5lu.%09llu" time and pid/tid."""
    rows = [
        ("fio", 2211, 2213, 1, 620, 101348, "block:block_rq_issue", "259,0 R 4096 () 123456 + 8 0x2,0,4 [fio]"),
        ("fio", 2211, 2213, 1, 620, 140112, "probe:zpci_refresh_trans", RPCIT),
        ("fio", 2211, 2213, 1, 620, 151907, "probe:zpci_refresh_trans__return", "(95a1c4d10 <- 95a1c6e6a) ret=0"),
        ("swapper", 0, 0, 1, 620, 187020, "block:block_rq_complete", "259,0 R () 123456 + 8 0x2,0,4 [0]"),
        (
            "fio", 2211, 2211, 2, 620, 190554, "sched:sched_switch",
            "prev_comm=fio prev_pid=2211 prev_prio=120 prev_state=S ==> next_comm=swapper/2 next_pid=0 next_prio=120",
        ),
    ]  # fmt: skip
    width = max(len(r[6]) for r in rows)
    return "".join(
        prefix(comm, tid, cpu, "%5d.%09d" % (secs, nsecs), pid=pid)
        + "%*s: %s\n" % (width, event, payload)
        for comm, pid, tid, cpu, secs, nsecs, event, payload in rows
    )


def callchains() -> str:
    """perf record -F 4000 -g -a; perf script: cpu-clock samples with kernel and user frames."""
    samples = [
        ("fio", 2211, 1, "620.000140", [
            ("95a1c4d3c", "zpci_refresh_trans+0x2c", "[kernel.kallsyms]"),
            ("95a1c6e6a", "__dma_purge_tlb+0x7a", "[kernel.kallsyms]"),
            ("95a1c7b10", "dma_update_trans+0x1c8", "[kernel.kallsyms]"),
            ("95a1c8e02", "s390_dma_map_pages+0x102", "[kernel.kallsyms]"),
            ("3ff8a1c2e4a", "[unknown]", "/usr/lib64/libaio.so.1.0.1"),
            ("3ff8a1c1000", "io_submit+0x1c", "/usr/lib64/libaio.so.1.0.1"),
        ]),
        ("swapper", 0, 0, "620.000391", [
            ("95a0d21aa", "psw_idle_exit+0x3a", "[kernel.kallsyms]"),
            ("95a0d2410", "arch_cpu_idle+0x30", "[kernel.kallsyms]"),
        ]),
        ("irq/34-zpci", 212, 1, "620.000412", [
            ("95b3e1c08", "nvme_irq+0x88", "[nvme]"),
            ("ffffffffffffffff", "[unknown]", "[unknown]"),
        ]),
    ]  # fmt: skip
    out = ""
    for comm, tid, cpu, ts, frames in samples:
        out += prefix(comm, tid, cpu, ts, pad=False) + "%10d cpu-clock:ppp: \n" % 250000
        out += "".join("\t%16s %s (%s)\n" % frame for frame in frames) + "\n"
    return out


HEADER = """\
# ========
# captured on    : Tue Nov 24 10:12:03 2026
# header version : 1
# data offset    : 392
# data size      : 81920
# feat offset    : 82312
# hostname : s390-lpar07
# os release : 6.0.0-rc3
# perf version : 6.1.0
# arch : s390x
# nrcpus online : 4
# nrcpus avail : 4
# cpudesc : IBM/8561/703/710
# total memory : 16364564 kB
# cmdline : /usr/bin/perf record -e probe:s390_iommu_release_device -e iommu:* -a -m 1 
# event : name = probe:s390_iommu_release_device, , id = { 12, 13, 14, 15 }, type = 2 (PERF_TYPE_TRACEPOINT), size = 128, config = 0x6a1, { sample_period, sample_freq } = 1, sample_type = IP|TID|TIME|CPU|PERIOD|RAW|IDENTIFIER, read_format = ID, disabled = 1, inherit = 1, sample_id_all = 1, exclude_guest = 1
# CPU_TOPOLOGY info available, use -I to display
# pmu mappings: cpum_cf = 8, software = 1, tracepoint = 2, breakpoint = 5
# time of first sample : 530.990102
# time of last sample : 531.000133
# sample duration :     10.031 ms
# missing features: TRACING_DATA BRANCH_STACK GROUP_DESC AUXTRACE STAT CLOCKID DIR_FORMAT COMPRESSED CLOCK_DATA 
# ========
#
"""


def header_lost_task() -> str:
    """perf script --header --show-task-events --show-lost-events 2>&1: PERF_RECORD_* lines
    (perf_event__fprintf) and, on stderr, the lost-chunks warning of perf_session."""
    rows = [
        ("bash", 4410, 2, "530.990102", "PERF_RECORD_FORK(4471:4471):(4410:4410)"),
        ("bash", 4471, 2, "530.990388", "PERF_RECORD_COMM exec: kmcheck:4471/4471"),
        ("kmcheck", 4471, 3, "530.999010", "PERF_RECORD_LOST lost 37"),
        ("kmcheck", 4471, 3, "531.000087", "probe:s390_iommu_release_device: (95bb0f2a8)"),
        (
            "kmcheck",
            4471,
            3,
            "531.000090",
            "iommu:remove_device_from_group: IOMMU: groupID=4 device=0004:00:00.0",
        ),
        ("kmcheck", 4471, 3, "531.000133", "PERF_RECORD_EXIT(4471:4471):(4410:4410)"),
    ]
    body = "".join(prefix(comm, tid, cpu, ts) + what + "\n" for comm, tid, cpu, ts, what in rows)
    return (
        HEADER
        + body
        + "Warning:\nProcessed 1892 events and lost 3 chunks!\n\nCheck IO/CPU overload!\n\n"
    )


def no_cpu() -> str:
    """perf script -F comm,tid,time,event,trace: no cpu column."""
    rows = [
        (
            "qemu-system-s39",
            5082,
            "512.104553",
            "iommu:attach_device_to_domain",
            "IOMMU: device=0004:00:00.0",
        ),
        ("qemu-system-s39", 5082, "512.104601", "iommu:map", MAP),
        ("qemu-system-s39", 5082, "512.204601", "iommu:unmap", UNMAP),
    ]
    width = max(len(r[3]) for r in rows)
    return "".join(prefix(c, t, None, ts) + "%*s: %s\n" % (width, e, p) for c, t, ts, e, p in rows)


def samples_ip_sym() -> str:
    """cpu-clock samples without -g: period, event, " %16lx sym+off (dso)"."""
    rows = [
        ("fio", 2211, 1, "620.000140", "95a1c4d3c", "zpci_refresh_trans+0x2c", "[kernel.kallsyms]"),
        ("fio", 2211, 1, "620.000390", "95a1c6e6a", "__dma_purge_tlb+0x7a", "[kernel.kallsyms]"),
        (
            "qemu-system-s39",
            5082,
            0,
            "620.000402",
            "2aa0b41c2f0",
            "[unknown]",
            "/usr/bin/qemu-system-s390x",
        ),
    ]
    return "".join(
        prefix(c, t, cpu, ts) + "%10d cpu-clock:ppp: %16s %s (%s)\n" % (250000, ip, sym, dso)
        for c, t, cpu, ts, ip, sym, dso in rows
    )


def kprobe_race_twin() -> str:
    """The run of samples/ftrace/s390-kprobe-race-v6.0.txt as perf would have recorded it with
    perf probe (default event names) and iommu:* (the stack trace and the marker left out), so
    the timeline of both can be compared span for span."""
    source = (SAMPLES / "ftrace" / "s390-kprobe-race-v6.0.txt").read_text().splitlines()
    ctx = re.compile(r"^\s*(.*?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): (.*)$")
    rows: list[Row] = []
    for line in source:
        m = ctx.match(line)
        if not m or m[5].startswith(("p_", "r_")) or m[5] == "tracing_mark_write":
            continue
        comm, tid, cpu, ts, name, body = m[1], int(m[2]), int(m[3]), m[4], m[5], m[6]
        entry = re.match(r"^\((\w+)\+0x0/0x[0-9a-f]+\)(.*)$", body)
        ret = re.match(r"^\((\S+) <- (\w+)\)(.*)$", body)
        if entry:
            rows.append(
                (comm, tid, cpu, ts, "probe:" + entry[1], "(%s)%s" % (ADDR[entry[1]], entry[2]))
            )
        elif ret:
            payload = "(%s <- %s)%s" % (ADDR[ret[2]], SITE[ret[1]], ret[3])
            rows.append((comm, tid, cpu, ts, "probe:%s__return" % ret[2], payload))
        else:
            rows.append((comm, tid, cpu, ts, "iommu:" + name, body))
    return tracepoints(rows)


def outputs() -> dict[Path, str]:
    return {
        PERF_DIR / "s390-nvme-tracepoints.txt": nvme_tracepoints(),
        PERF_DIR / "s390-probe-release-race.txt": probe_release_race(),
        PERF_DIR / "s390-ns-pid-tid.txt": ns_pid_tid(),
        PERF_DIR / "s390-callchain-g.txt": callchains(),
        PERF_DIR / "s390-header-lost-task.txt": header_lost_task(),
        PERF_DIR / "s390-F-no-cpu.txt": no_cpu(),
        PERF_DIR / "s390-samples-ip-sym.txt": samples_ip_sym(),
        PERF_DIR / "s390-kprobe-race-v6.0.txt": kprobe_race_twin(),
    }


def main(argv: list[str] | None = None) -> int:
    return render(outputs(), __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
