"""ftrace text: every context-prefix variant, clock, event family and special line."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

import tracetool


def rows(text: str, **kw: Any) -> list[dict[str, Any]]:
    return tracetool.parse_text(text, **kw).events.collect().to_dicts()


def one(text: str, **kw: Any) -> dict[str, Any]:
    found = rows(text, **kw)
    assert len(found) == 1, found
    return found[0]


def args(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row["args"].items() if v is not None}


HEADER = """\
# tracer: nop
#
# entries-in-buffer/entries-written: 2/2   #P:4
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


def test_trace_file_with_header_accounts_every_line() -> None:
    text = HEADER + (
        "         kmcheck-41      [003] .....   531.000090: remove_device_from_group: "
        "IOMMU: groupID=4 device=0004:00:00.0\n"
        " qemu-system-s39-5082    [000] .....   531.000102: detach_device_from_domain: "
        "IOMMU: device=0004:00:00.0\n"
    )
    trace = tracetool.parse_text(text)
    (info,) = trace.inputs
    assert info.format == "ftrace"
    assert info.counts == {"events": 2, "records": 0, "headers": 12, "losses": 0, "diagnostics": 0}
    assert info.accounted()
    assert info.meta["tracer"] == "nop" and info.meta["ncpus"] == 4
    ev = trace.events.collect()
    assert ev["line"].to_list() == [13, 14]
    assert ev["ts"].to_list() == [531_000_090_000, 531_000_102_000]
    assert ev["comm"].to_list() == ["kmcheck-41"[:7], "qemu-system-s39"]
    assert ev["pid"].to_list() == [41, 5082]
    assert ev["cpu"].to_list() == [3, 0]
    assert ev["args"].struct.field("device").to_list() == ["0004:00:00.0"] * 2
    assert ev["args"].struct.field("gid").to_list() == [4, None]


def test_trace_pipe_without_header() -> None:
    row = one("            bash-4411    [002] .....   530.500000: tracing_mark_write: CI: go\n")
    assert (row["comm"], row["pid"], row["cpu"], row["flags"]) == ("bash", 4411, 2, ".....")
    assert row["event"] == "tracing_mark_write"
    assert args(row) == {"text": "CI: go"}


@pytest.mark.parametrize(
    ("line", "comm", "pid", "tgid", "cpu", "flags"),
    [
        # irq-info off: no flag column
        (
            " qemu-system-s39-5082    [000]    531.000102: x: y",
            "qemu-system-s39",
            5082,
            None,
            0,
            None,
        ),
        # record-tgid, known and unknown tgid
        (
            " qemu-system-s39-5090    (   5082) [000] .....   531.000102: x: y",
            "qemu-system-s39",
            5090,
            5082,
            0,
            ".....",
        ),
        (
            "   kworker/u64:2-123     (-------) [003] .....   531.000102: x: y",
            "kworker/u64:2",
            123,
            None,
            3,
            ".....",
        ),
        (
            "          <idle>-0       (-------) [001]    531.000102: x: y",
            "<idle>",
            0,
            None,
            1,
            None,
        ),
        # 4 flags (before 5.13, pid width 5) and 6 flags (RT trees)
        ("         kmcheck-41    [003] d..1   531.000102: x: y", "kmcheck", 41, None, 3, "d..1"),
        (
            "         kmcheck-41      [003] dNs2.1   531.000102: x: y",
            "kmcheck",
            41,
            None,
            3,
            "dNs2.1",
        ),
        # comms with spaces, dashes and digits, brackets; <...>
        (
            "     Web Content-1234    [001] .....   531.000102: x: y",
            "Web Content",
            1234,
            None,
            1,
            ".....",
        ),
        (
            "         foo-123-456     [001] .....   531.000102: x: y",
            "foo-123",
            456,
            None,
            1,
            ".....",
        ),
        ("          a] [b-77       [001] .....   531.000102: x: y", "a] [b", 77, None, 1, "....."),
        (
            "       [kworker]-9       [001] .....   531.000102: x: y",
            "[kworker]",
            9,
            None,
            1,
            ".....",
        ),
        (
            "           <...>-2211    [001] .....   531.000102: x: y",
            "<...>",
            2211,
            None,
            1,
            ".....",
        ),
        ("            a: b-12      [001] .....   531.000102: x: y", "a: b", 12, None, 1, "....."),
        # pid wider than its column, CPU >= 1000, tab indentation
        (
            "          stress-123456789 [1023] .....   531.000102: x: y",
            "stress",
            123456789,
            None,
            1023,
            ".....",
        ),
        ("\t  <idle>-0     [006] ....  7115.449607: x: y", "<idle>", 0, None, 6, "...."),
    ],
)
def test_context_prefix_variants(
    line: str, comm: str, pid: int, tgid: int | None, cpu: int, flags: str | None
) -> None:
    row = one(line + "\n", format="ftrace")
    assert (row["comm"], row["pid"], row["tgid"], row["cpu"], row["flags"]) == (
        comm,
        pid,
        tgid,
        cpu,
        flags,
    )
    assert (row["ts"], row["event"], row["body"]) == (
        531_000_102_000 if "531" in line else row["ts"],
        "x",
        "y",
    )


@pytest.mark.parametrize(
    ("stamp", "ns"),
    [
        ("  531.000087", 531_000_087_000),  # local/global/mono/boot: secs.usecs
        ("12345.678901", 12_345_678_901_000),  # 5-digit seconds leave one space
        (" 1732443201.123456", 1_732_443_201_123_456_000),  # tai: 10-digit seconds
        ("     77123456", 77_123_456),  # counter/uptime: raw integer, no dot
        (" 7603865355593", 7_603_865_355_593),  # x86-tsc: wider than its 12 columns
    ],
)
def test_clocks(stamp: str, ns: int) -> None:
    row = one(f"            bash-4411    [002] ..... {stamp}: tracing_mark_write: hi\n")
    assert row["ts"] == ns


def test_function_tracer_lines() -> None:
    text = (
        "         kmcheck-41      [003] .....   531.000087: s390_iommu_release_device <-iommu_release_device\n"
        " qemu-system-s39-5082    [000] .....   531.000102: s390_iommu_detach_device+0x0/0xd0 <-__iommu_detach_device+0x2c/0xa8\n"
        "         kmcheck-41      [003] .....   531.000103: 0x3ff80012345 <-[unknown/kretprobe'd]\n"
        "         kmcheck-41      [003] .....   531.000104: zpci_dma_exit_device\n"
    )
    found = rows(text)
    assert [r["event"] for r in found] == ["function"] * 4
    assert [args(r) for r in found] == [
        {"func": "s390_iommu_release_device", "parent": "iommu_release_device"},
        {"func": "s390_iommu_detach_device", "parent": "__iommu_detach_device"},
        {"func": "0x3ff80012345", "parent": "[unknown/kretprobe'd]"},
        {"func": "zpci_dma_exit_device"},
    ]


def test_kprobe_kretprobe_fetch_args_are_typed() -> None:
    text = (
        '         kmcheck-41      [003] .....   531.000088: s390_rel: (s390_iommu_release_device+0x0/0x98) dev=0x8f3a40c8 name="0004:00:00.0"\n'
        " qemu-system-s39-5082    [000] .....   512.104553: s390_att_ret: (__iommu_attach_device+0x3a/0xd8 <- s390_iommu_attach_device) ret=-19\n"
        "             fio-2211    [001] d..1.   620.000140: rpcit: (zpci_refresh_trans+0x0/0x110 [zpci]) fn=0x80a0000000000000 addr=0x100000000 range=0x1000 arg4=7\n"
        "         kmcheck-41      [003] .....   531.000133: r_s390_iommu_release_device_0: (iommu_release_device+0x5c/0x130 <- s390_iommu_release_device)\n"
    )
    rel, att, rpcit, ret0 = rows(text)
    assert args(rel)["probe"] == "kprobe"
    assert args(rel)["func"] == "s390_iommu_release_device"
    assert (args(rel)["func_off"], args(rel)["func_size"]) == (0, 0x98)
    assert args(rel)["kv"] == [
        {"name": "dev", "value": "0x8f3a40c8", "num": 0x8F3A40C8},
        {"name": "name", "value": "0004:00:00.0", "num": None},
    ]
    assert args(att)["probe"] == "kretprobe"
    assert args(att)["func"] == "s390_iommu_attach_device"
    assert args(att)["site"] == "__iommu_attach_device+0x3a/0xd8"
    assert args(att)["kv"] == [{"name": "ret", "value": "-19", "num": -19}]
    assert args(rpcit)["mod"] == "zpci"
    kv = {a["name"]: a["num"] for a in args(rpcit)["kv"]}
    assert kv == {"fn": 0x80A0000000000000, "addr": 0x100000000, "range": 0x1000, "arg4": 7}
    assert kv["fn"] >> 32 == 0x80A00000  # the function handle
    assert args(ret0)["probe"] == "kretprobe" and args(ret0)["kv"] == []


def test_uprobe_and_uretprobe() -> None:
    text = (
        "              dd-12911   [001] DBZff  2954.235449: corpus_write: (0x7f1b3565f340) fd=1 count=16384\n"
        "              dd-12911   [001] DBZff  2954.235450: corpus_write_ret: (0x7f1b35600000 <- 0x7f1b3565f340) ret=-1\n"
    )
    up, ret = rows(text)
    assert (args(up)["probe"], args(up)["addr"]) == ("uprobe", 0x7F1B3565F340)
    assert up["flags"] == "DBZff"
    assert args(ret)["probe"] == "uretprobe"
    assert args(ret)["kv"] == [{"name": "ret", "value": "-1", "num": -1}]


def test_trace_printk_and_multiline_marker() -> None:
    text = (
        " qemu-system-s39-5082    [000] .....   512.100000: s390_iommu_attach_device: attach fid=0x12\n"
        "            bash-4411    [002] .....   530.500000: tracing_mark_write: first\n"
        "second line\n"
        "third line\n"
        "            bash-4411    [002] .....   530.500001: tracing_mark_write: next\n"
    )
    trace = tracetool.parse_text(text)
    printk, marker, nxt = trace.events.collect().to_dicts()
    assert (printk["event"], printk["body"]) == ("s390_iommu_attach_device", "attach fid=0x12")
    assert args(marker) == {"text": "first\nsecond line\nthird line"}
    assert nxt["line"] == 5
    assert trace.inputs[0].counts["records"] == 2


def test_stack_traces_are_records_of_their_event() -> None:
    text = (
        "         kmcheck-41      [003] .....   531.000087: s390_rel: (s390_iommu_release_device+0x0/0x98) dev=0x1\n"
        " qemu-system-s39-5082    [000] .....   531.000088: sched_switch: prev_comm=a prev_pid=1 prev_prio=120 prev_state=S ==> next_comm=b next_pid=2 next_prio=120\n"
        "         kmcheck-41      [003] .....   531.000089: <stack trace>\n"
        " => s390_iommu_release_device\n"
        " => iommu_release_device\n"
        " qemu-system-s39-5082    [000] .....   531.000103: <user stack trace>\n"
        " => /usr/lib64/libc.so.6[+0x10a5b2]\n"
    )
    trace = tracetool.parse_text(text)
    assert trace.inputs[0].counts == {
        "events": 4,
        "records": 3,
        "headers": 0,
        "losses": 0,
        "diagnostics": 0,
    }
    stacks = trace.events.filter(pl.col("event").is_in(["kernel_stack", "user_stack"])).collect()
    assert stacks["stack"].to_list() == [
        ["s390_iommu_release_device", "iommu_release_device"],
        None,
    ]
    assert stacks["ustack"].to_list() == [None, ["/usr/lib64/libc.so.6[+0x10a5b2]"]]
    attached = tracetool.attach_stacks(trace.events).collect()
    assert attached["event"].to_list() == ["s390_rel", "sched_switch"]
    assert attached["stack"].to_list() == [
        ["s390_iommu_release_device", "iommu_release_device"],
        None,
    ]
    assert attached["ustack"].to_list() == [None, ["/usr/lib64/libc.so.6[+0x10a5b2]"]]


def test_frame_without_stack_line_is_a_diagnostic() -> None:
    trace = tracetool.parse_text(
        "            bash-4411    [002] .....   530.500000: sched_wakeup: comm=a pid=1 prio=120 target_cpu=002\n"
        " => orphan_frame\n"
    )
    diag = trace.diagnostics.collect().to_dicts()
    assert [(d["line"], d["kind"]) for d in diag] == [(2, "unparsed")]
    assert "no <stack trace>" in diag[0]["reason"]


def test_loss_markers_become_windows() -> None:
    text = (
        "            bash-4411    [002] .....   530.000001: tracing_mark_write: a\n"
        "            bash-4411    [001] .....   530.000002: tracing_mark_write: b\n"
        "CPU:2 [LOST 904 EVENTS]\n"
        "            bash-4411    [002] .....   530.000005: tracing_mark_write: c\n"
        "CPU:1 [LOST EVENTS]\n"
        "##### CPU 2 buffer started ####\n"
        "            bash-4411    [002] .....   530.000009: tracing_mark_write: d\n"
        "            bash-4411    [001] .....   530.000010: tracing_mark_write: e\n"
    )
    trace = tracetool.parse_text(text)
    losses = (
        trace.losses.collect().select("line", "cpu", "start_ts", "end_ts", "lost", "marker").rows()
    )
    assert losses == [
        (3, 2, 530_000_001_000, 530_000_005_000, 904, "lost-events"),
        (5, 1, 530_000_002_000, 530_000_010_000, None, "lost-events"),
        (6, 2, None, 530_000_009_000, None, "buffer-started"),
    ]
    assert trace.inputs[0].counts["losses"] == 3


def test_header_overwrite_is_a_loss() -> None:
    text = HEADER.replace("2/2", "2/9000") + (
        "            bash-4411    [002] .....   530.000001: tracing_mark_write: a\n"
    )
    (loss,) = tracetool.parse_text(text).losses.collect().to_dicts()
    assert (loss["lost"], loss["cpu"], loss["start_ts"], loss["end_ts"]) == (
        8998,
        None,
        None,
        530_000_001_000,
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            "map: IOMMU: iova=0x0000000100000000 - 0x0000000100200000 paddr=0x0000000c8a400000 size=2097152",
            {"iova": 0x100000000, "iova_end": 0x100200000, "paddr": 0xC8A400000, "size": 2097152},
        ),
        (
            "map: IOMMU: iova=0x0000000100000000 paddr=0x0000000c8a400000 size=4096",
            {"iova": 0x100000000, "paddr": 0xC8A400000, "size": 4096},
        ),
        (
            "unmap: IOMMU: iova=0x0000000100000000 - 0x0000000100200000 size=2097152 unmapped_size=2097152",
            {
                "iova": 0x100000000,
                "iova_end": 0x100200000,
                "size": 2097152,
                "unmapped_size": 2097152,
            },
        ),
        (
            "io_page_fault: IOMMU:arm-smmu 0000:01:00.0 iova=0x00000000fffff000 flags=0x0000",
            {"driver": "arm-smmu", "device": "0000:01:00.0", "iova": 0xFFFFF000, "fault_flags": 0},
        ),
        ("attach_device_to_domain: IOMMU: device=0004:00:00.0", {"device": "0004:00:00.0"}),
        (
            "dma_map_phys: 0000:00:00.0 dir=FROM_DEVICE dma_addr=ffffe000 size=4096 phys_addr=c0f37000 attrs=",
            {
                "device": "0000:00:00.0",
                "dir": "FROM_DEVICE",
                "dma_addr": 0xFFFFE000,
                "size": 4096,
                "phys_addr": 0xC0F37000,
                "attrs": "",
            },
        ),
        (
            "dma_unmap_phys: 0000:00:00.0 dir=FROM_DEVICE dma_addr=ffffe000 size=4096 attrs=SKIP_CPU_SYNC",
            {
                "device": "0000:00:00.0",
                "dir": "FROM_DEVICE",
                "dma_addr": 0xFFFFE000,
                "size": 4096,
                "attrs": "SKIP_CPU_SYNC",
            },
        ),
        (
            "block_rq_issue: 259,0 R 4096 () 123456 + 8 none,0,0 [fio]",
            {
                "dev_major": 259,
                "dev_minor": 0,
                "rwbs": "R",
                "bytes": 4096,
                "cmd": "",
                "sector": 123456,
                "nr_sector": 8,
                "ioprio_class": "none",
                "ioprio_hint": 0,
                "ioprio_level": 0,
                "rq_comm": "fio",
            },
        ),
        (
            "block_rq_issue: 259,0 R 4096 () 123456 + 8 [fio]",
            {
                "dev_major": 259,
                "dev_minor": 0,
                "rwbs": "R",
                "bytes": 4096,
                "cmd": "",
                "sector": 123456,
                "nr_sector": 8,
                "rq_comm": "fio",
            },
        ),
        (
            "block_rq_complete: 259,0 W () 987648 + 256 be,0,4 [-5]",
            {
                "dev_major": 259,
                "dev_minor": 0,
                "rwbs": "W",
                "cmd": "",
                "sector": 987648,
                "nr_sector": 256,
                "ioprio_class": "be",
                "ioprio_hint": 0,
                "ioprio_level": 4,
                "error": -5,
            },
        ),
        (
            "contention_begin: 000000009d1e2f3a (flags=MUTEX)",
            {"lock_addr": 0x9D1E2F3A, "lock_flags": "MUTEX"},
        ),
        ("contention_end: 000000009d1e2f3a (ret=0)", {"lock_addr": 0x9D1E2F3A, "ret": 0}),
        (
            "sched_switch: prev_comm=kmcheck prev_pid=41 prev_prio=120 prev_state=R+ ==> next_comm=Web Content next_pid=7 next_prio=100",
            {
                "prev_comm": "kmcheck",
                "prev_pid": 41,
                "prev_prio": 120,
                "prev_state": "R+",
                "next_comm": "Web Content",
                "next_pid": 7,
                "next_prio": 100,
            },
        ),
        (
            "sched_wakeup: comm=kworker/1:1H pid=59 prio=100 target_cpu=001",
            {"target_comm": "kworker/1:1H", "target_pid": 59, "prio": 100, "target_cpu": 1},
        ),
        ("irq_handler_entry: irq=36 name=virtio1-req.0", {"irq": 36, "name": "virtio1-req.0"}),
        ("irq_handler_exit: irq=36 ret=handled", {"irq": 36, "irq_ret": "handled"}),
    ],
)
def test_declared_fields(payload: str, expected: dict[str, Any]) -> None:
    trace = tracetool.parse_text(f"             fio-2211    [001] d..1.   620.000101: {payload}\n")
    (row,) = trace.events.collect().to_dicts()
    assert args(row) == expected
    assert trace.diagnostics.collect().is_empty()


def test_declared_event_with_unexpected_payload_is_kept_and_flagged() -> None:
    trace = tracetool.parse_text(
        "             fio-2211    [001] d..1.   620.000101: map: something new\n"
    )
    assert trace.events.collect()["event"].to_list() == ["map"]
    (diag,) = trace.diagnostics.collect().to_dicts()
    assert diag["kind"] == "args" and "parsers/ftrace.toml" in diag["reason"]


def test_syscall_events_are_named_enter_and_exit() -> None:
    text = (
        "              dd-12505   [001] .....  2937.000001: sys_openat(dfd: ffffff9c, filename: 7ffd, flags: 0)\n"
        "              dd-12505   [001] .....  2937.000002: sys_openat -> 0x3\n"
    )
    enter, exit_ = rows(text)
    assert (enter["event"], enter["body"]) == (
        "sys_enter_openat",
        "(dfd: ffffff9c, filename: 7ffd, flags: 0)",
    )
    assert (exit_["event"], exit_["body"]) == ("sys_exit_openat", "-> 0x3")


def test_generic_key_values_on_request() -> None:
    text = "              dd-12505   [001] .....  2937.000001: sched_process_exec: filename=/usr/bin/dd pid=12505 old_pid=12505\n"
    assert args(one(text)) == {}
    kv = args(one(text, kv=True))["kv"]
    assert kv == [
        {"name": "filename", "value": "/usr/bin/dd", "num": None},
        {"name": "pid", "value": "12505", "num": 12505},
        {"name": "old_pid", "value": "12505", "num": 12505},
    ]


def test_garbage_lines_are_diagnostics_with_reasons() -> None:
    text = (
        HEADER
        + "this is not a trace line\n"
        + (
            "            bash-4411    [002] .....   530.500000: sched_wakeup: comm=a pid=1 prio=120 target_cpu=002\n"
        )
    )
    trace = tracetool.parse_text(text)
    (diag,) = trace.diagnostics.collect().to_dicts()
    assert (diag["line"], diag["kind"], diag["text"]) == (
        13,
        "unparsed",
        "this is not a trace line",
    )
    assert trace.inputs[0].accounted()


def test_truncated_last_line_is_reported() -> None:
    text = (
        "            bash-4411    [002] .....   530.500000: tracing_mark_write: a\n"
        "            bash-4411    [002] .....   530.5"
    )
    trace = tracetool.parse_text(text)
    (diag,) = trace.diagnostics.collect().to_dicts()
    assert (diag["line"], diag["kind"]) == (2, "truncated")
    assert trace.inputs[0].lines == 2 and trace.inputs[0].accounted()


def test_crlf_line_endings() -> None:
    row = one("            bash-4411    [002] .....   530.500000: tracing_mark_write: a\r\n")
    assert args(row) == {"text": "a"}


def test_sym_offset_marker_ip_is_still_tracing_mark_write() -> None:
    row = one(
        " capture_stack.s-12142   [001] ...1.  1505.188878: tracing_mark_write+0x8a/0x170 "
        "<ffffffff8149895a>: tt: hello\n"
    )
    assert (row["event"], args(row)) == ("tracing_mark_write", {"text": "tt: hello"})


def test_latency_format_lines() -> None:
    # trace_print_lat_context(): "%8.8s-%-7d %3d" + flags + " %4lldus%c: ", as the
    # latency-format option, the latency tracers and ftrace_dump_on_oops print it.
    text = (
        " kmcheck-41        3..... 9876543us : s390_iommu_release_device <-iommu_release_device\n"
        "qemu-sys-5082      0d..1. 9876556us!: s390_iommu_detach_device <-__iommu_detach_device\n"
        "  <idle>-0        11d.h2.    0us+: irq_handler_entry: irq=10 name=zpci\n"
    )
    trace = tracetool.parse_text(text)
    assert trace.inputs[0].meta["timestamps"] == "relative-us"
    got = trace.events.select("comm", "pid", "cpu", "flags", "ts", "event").collect().rows()
    assert got == [
        ("kmcheck", 41, 3, ".....", 9_876_543_000, "function"),
        ("qemu-sys", 5082, 0, "d..1.", 9_876_556_000, "function"),
        ("<idle>", 0, 11, "d.h2.", 0, "irq_handler_entry"),
    ]
    assert trace.diagnostics.collect().is_empty()


def test_latency_format_with_counter_clock_and_verbose() -> None:
    counter = tracetool.parse_text(
        " kmcheck-41        3.....   77: s390_iommu_release_device <-iommu_release_device\n"
    )
    assert counter.inputs[0].meta["timestamps"] == "relative-counter"
    assert counter.events.select("ts", "cpu", "event").collect().row(0) == (77, 3, "function")
    # verbose: "%16s %7d %3d %d %08x %08lx " then "[%08llx] %ld.%03ldms (+%ld.%03ldms): "
    line = (
        f"{'kmcheck':>16s} {41:7d} {3:3d} {1:d} {0:08x} {0x2A:08x} "
        f"[{531000087:08x}] {9876:d}.{543:03d}ms (+{0:d}.{13:03d}ms): "
        "s390_iommu_release_device <-iommu_release_device\n"
    )
    verbose = tracetool.parse_text(line)
    assert verbose.inputs[0].meta["timestamps"] == "us"
    row = verbose.events.select("comm", "pid", "cpu", "flags", "ts", "event").collect().row(0)
    assert row == ("kmcheck", 41, 3, "1", 531_000_087_000, "function")
    assert verbose.diagnostics.collect().is_empty()


def test_nocontext_info_lines_are_events_without_context() -> None:
    text = (
        "# tracer: nop\n#\n"
        "sched_switch: prev_comm=bash prev_pid=1 prev_prio=120 prev_state=S ==> next_comm=dd next_pid=2 next_prio=120\n"
        "sched_wakeup: comm=dd pid=2 prio=120 target_cpu=000\n"
    )
    trace = tracetool.parse_text(text)
    assert trace.inputs[0].meta["timestamps"] == "none"
    got = (
        trace.events.select("ts", "cpu", "pid", "event", pl.col("args").struct.field("next_pid"))
        .collect()
        .rows()
    )
    assert got == [(None, None, None, "sched_switch", 2), (None, None, None, "sched_wakeup", None)]
    assert trace.diagnostics.collect().is_empty()


def test_prose_is_not_taken_for_nocontext_events() -> None:
    # (After a declared single-line event, so it cannot be a print's continuation.)
    text = (
        "            bash-4411    [002] .....   530.500000: sched_wakeup: comm=a pid=1 prio=120 target_cpu=002\n"
        "Note: this line is prose\n"
    )
    trace = tracetool.parse_text(text)
    assert trace.events.collect().height == 1
    assert trace.diagnostics.collect()["text"].to_list() == ["Note: this line is prose"]


def test_indented_header_lines_are_comments() -> None:
    text = (
        "\t\t# tracer: function\n"
        "\t\t#\n"
        "              #x-12      [001] .....   531.000102: tracing_mark_write: comm starts with #\n"
    )
    trace = tracetool.parse_text(text, format="ftrace")
    assert trace.inputs[0].counts["headers"] == 2
    assert trace.events.select("comm").collect().item() == "#x"
