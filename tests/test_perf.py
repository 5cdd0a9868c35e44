"""perf script text: every line-layout variant, callchains, headers, losses, probes that
pair like tracefs kprobes, diagnostics, and properties over generated input."""

from __future__ import annotations

import io
import random
from typing import Any

import polars as pl
import pytest
from conftest import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracetool
from tracetool import inputs
from tracetool.check import run as run_check
from tracetool.perf import BAD_FRAME, ORPHAN_FRAME, SAFE_LINE
from tracetool.timeline import SPANS_SCHEMA


def parse(text: str) -> tracetool.Trace:
    return tracetool.parse_text(text, format="perf")


def rows(text: str) -> list[dict[str, Any]]:
    return parse(text).events.collect().to_dicts()


def one(text: str) -> dict[str, Any]:
    found = rows(text)
    assert len(found) == 1, found
    return found[0]


def args(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row["args"].items() if v is not None}


def diagnostics(text: str) -> list[dict[str, Any]]:
    return parse(text).diagnostics.collect().to_dicts()


# --- sample line layouts -------------------------------------------------------------


def test_default_tracepoint_line() -> None:
    payload = "259,0 R 4096 () 123456 + 8 none,0,0 [fio]"
    row = one(f"             fio  2211 [001]   620.000101:     block:block_rq_issue: {payload}\n")
    assert (row["comm"], row["pid"], row["tgid"], row["cpu"]) == ("fio", 2211, None, 1)
    assert row["ts"] == 620_000_101_000
    assert row["event"] == "block_rq_issue"
    # The payload is typed exactly as the ftrace declaration types the kernel's text.
    kernel = tracetool.parse_text(
        f"             fio-2211    [001] d..1.   620.000101: block_rq_issue: {payload}\n"
    )
    (expected,) = kernel.events.collect().to_dicts()
    assert args(row) == {**args(expected), "system": "block"}
    assert args(row)["sector"] == 123456 and args(row)["ioprio_class"] == "none"


def test_libtraceevent_numeric_ioprio_class_reads_as_the_kernel_names_it() -> None:
    # perf 6.1 cannot evaluate IOPRIO_PRIO_CLASS() and prints the class as a number.
    row = one(
        "         swapper     0 [001]   620.000187: block:block_rq_complete: "
        "259,0 W () 987648 + 256 0x2,0,4 [-5]\n"
    )
    assert args(row)["ioprio_class"] == "be"
    assert args(row)["error"] == -5
    assert row["body"].endswith("0x2,0,4 [-5]")  # the text stays as printed


@pytest.mark.parametrize(
    ("line", "comm", "pid", "tgid", "cpu"),
    [
        # pid/tid (-F +pid): pid is the thread, tgid the process, as in ftrace.
        ("             fio  2211/2213  [001]   620.000101: x:y: z", "fio", 2213, 2211, 1),
        # A comm with spaces and digits.
        ("  Web Content 2 1234 [003]   620.000101: x:y: z", "Web Content 2", 1234, None, 3),
        ("kworker/1:1H   150 [001]   620.000101: x:y: z", "kworker/1:1H", 150, None, 1),
        # -F without cpu.
        ("             fio  2211   620.000101: x:y: z", "fio", 2211, None, None),
        # -F without comm.
        ("  2211 [001]   620.000101: x:y: z", None, 2211, None, 1),
        # Latency mode (-L): "%8.8s " comm and an unbracketed cpu.
        ("qemu-sys  5082   0   620.000101: x:y: z", "qemu-sys", 5082, None, 0),
        # -F +tod: wall-clock time before the timestamp.
        (
            "             fio  2211 [001] 2026-11-24 10:12:03.123456   620.000101: x:y: z",
            "fio",
            2211,
            None,
            1,
        ),
    ],
)
def test_prefix_variants(
    line: str, comm: str | None, pid: int, tgid: int | None, cpu: int | None
) -> None:
    row = one(line + "\n")
    assert (row["comm"], row["pid"], row["tgid"], row["cpu"]) == (comm, pid, tgid, cpu)
    assert (row["ts"], row["event"], row["body"]) == (620_000_101_000, "y", "z")
    assert args(row) == {"system": "x"}


def test_ns_timestamps_and_padded_payload() -> None:
    text = (
        "            perf 13933 [000]  3047.924348287:       sched:sched_wakeup:"
        "                         comm=migration/0 pid=18 prio=0 target_cpu=000\n"
    )
    trace = parse(text)
    row = trace.events.collect().to_dicts()[0]
    assert row["ts"] == 3047_924_348_287
    assert row["body"].startswith("comm=migration/0")
    assert args(row)["target_cpu"] == 0 and args(row)["target_comm"] == "migration/0"
    assert trace.inputs[0].meta["timestamps"] == "ns"


def test_iommu_tracepoints_are_named_as_tracefs_names_them() -> None:
    found = rows(
        " qemu-system-s39  5082 [000]   512.104553: iommu:attach_device_to_domain: "
        "IOMMU: device=0004:00:00.0\n"
        " qemu-system-s39  5082 [000]   512.104601:                     iommu:map: "
        "IOMMU: iova=0x0000000100000000 - 0x0000000100001000 paddr=0x000000008f3b2000 size=4096\n"
    )
    assert [r["event"] for r in found] == ["attach_device_to_domain", "map"]
    assert args(found[0]) == {"system": "iommu", "device": "0004:00:00.0"}
    assert args(found[1])["iova_end"] == 0x100001000 and args(found[1])["size"] == 4096


def test_sample_event_with_ip_sym_dso() -> None:
    row = one(
        "             fio  2211 [001]   620.000140:     250000 cpu-clock:ppp: "
        "       95a1c4d3c zpci_refresh_trans+0x2c ([kernel.kallsyms])\n"
    )
    assert row["event"] == "cpu-clock:ppp"  # modifiers are not a tracepoint system
    assert args(row) == {
        "period": 250000,
        "sample_ip": 0x95A1C4D3C,
        "sym": "zpci_refresh_trans",
        "sym_off": 0x2C,
        "dso": "[kernel.kallsyms]",
    }


def test_timeless_lines_of_stripped_output() -> None:
    # FlameGraph-style stripped output: "comm tid event:" then unindented frames.
    trace = parse(
        "java 19983 cycles:\nffffffff8103d0ca native_write_msr_safe ([kernel.kallsyms])\n"
        "7f7241fbe6d8 arrayOopDesc::base(BasicType) const (/opt/jdk/libjvm.so)\n\n"
    )
    (row,) = trace.events.collect().to_dicts()
    assert (row["comm"], row["pid"], row["ts"], row["event"]) == ("java", 19983, None, "cycles")
    assert row["stack"] == [
        "native_write_msr_safe ([kernel.kallsyms]) <ffffffff8103d0ca>",
        "arrayOopDesc::base(BasicType) const (/opt/jdk/libjvm.so) <7f7241fbe6d8>",
    ]
    assert trace.inputs[0].accounted()


def test_a_hex_looking_comm_is_not_a_frame() -> None:
    # "dd" and "400577" are hex; only a tab or a "(dso)" ending makes a frame.
    trace = parse("  dd  1234 cycles:\n  400577 func_b (/root/func_ab)\n\n")
    (row,) = trace.events.collect().to_dicts()
    assert (row["comm"], row["pid"], row["event"]) == ("dd", 1234, "cycles")
    assert row["stack"] == ["func_b (/root/func_ab) <400577>"]


# --- perf probes ---------------------------------------------------------------------


def test_perf_probe_kprobe_and_kretprobe() -> None:
    found = rows(
        "         kmcheck    41 [003]   531.000087: probe:s390_iommu_release_device: "
        "(95bb0f2a8) dev=0x8f3a40c8\n"
        "             fio  2211 [001]   620.000151: probe:zpci_refresh_trans__return: "
        "(95a1c4d10 <- 95a1c6e6a) ret=-5\n"
    )
    entry, ret = found
    assert entry["event"] == "s390_iommu_release_device"
    assert args(entry) == {
        "system": "probe",
        "probe": "kprobe",
        "func": "s390_iommu_release_device",
        "addr": 0x95BB0F2A8,
        "kv": [{"name": "dev", "value": "0x8f3a40c8", "num": 0x8F3A40C8}],
    }
    assert ret["event"] == "zpci_refresh_trans__return"
    assert args(ret) == {
        "system": "probe",
        "probe": "kretprobe",
        "func": "zpci_refresh_trans",
        "site": "95a1c6e6a",
        "kv": [{"name": "ret", "value": "-5", "num": -5}],
    }


def test_uprobes_of_perf_probe_x() -> None:
    found = rows(
        "             fio  2211 [001]   620.000151: probe_libc:fsync: (3ff8a1c2e4a)\n"
        "             fio  2211 [001]   620.000191: probe_libc:fsync__return: "
        "(3ff8a1c2e4a <- 2aa0b41c2f0)\n"
    )
    assert [args(r)["probe"] for r in found] == ["uprobe", "uretprobe"]
    assert [args(r)["func"] for r in found] == ["fsync", "fsync"]


def test_timeline_of_perf_probes_equals_the_ftrace_one() -> None:
    # The same run, captured with tracefs kprobes and with perf probe (see the samples).
    # Everything but where in its file a span came from, and the caller: perf prints a
    # return site as a bare address, which names no function.
    where = ("file", "start_line", "end_line", "evidence", "device_evidence", "device_why")
    where += ("caller",)
    cols = [c for c in SPANS_SCHEMA if c not in where]
    timelines = [
        tracetool.timeline(tracetool.parse(SAMPLES / d / "s390-kprobe-race-v6.0.txt").events)
        for d in ("ftrace", "perf")
    ]
    ftrace, perf = (t.spans.collect().select(cols) for t in timelines)
    assert ftrace.height >= 10 and ftrace.filter(pl.col("kind") == "release").height == 1
    assert perf.equals(ftrace), (perf, ftrace)
    callers = [
        t.spans.collect()["caller"].drop_nulls().unique().sort().to_list() for t in timelines
    ]
    assert callers == [["__iommu_attach_device", "iommu_release_device"], []]
    (ftrace_era,), (perf_era,) = (t.eras.values() for t in timelines)
    assert ftrace_era.eras == perf_era.eras and "v6.0" in perf_era.eras


def test_rules_find_the_same_race_in_perf_and_ftrace() -> None:
    def findings(fmt: str) -> list[tuple[object, ...]]:
        trace = tracetool.parse(SAMPLES / fmt / "s390-kprobe-race-v6.0.txt", use_cache=False)
        found = run_check(trace).findings.sort("rule")
        return found.select("rule", "device", "status", "dur").rows()

    perf = findings("perf")
    assert perf == findings("ftrace")
    assert ("release-overlaps-attach", "0004:00:00.0", "finding", 31_000) in perf


# --- callchains ----------------------------------------------------------------------

CHAIN = (
    "fio  2211 [001]   620.000140:     250000 cpu-clock:ppp: \n"
    "\t       95a1c4d3c zpci_refresh_trans+0x2c ([kernel.kallsyms])\n"
    "\t     3ff8a1c2e4a [unknown] (/usr/lib64/libaio.so.1.0.1)\n"
    "\n"
)


def test_callchain_folds_into_the_stack_of_its_sample() -> None:
    trace = parse(CHAIN + CHAIN.replace("620.000140", "620.000390"))
    found = trace.events.collect().to_dicts()
    assert len(found) == 2
    assert found[0]["stack"] == [
        "zpci_refresh_trans+0x2c ([kernel.kallsyms]) <95a1c4d3c>",
        "[unknown] (/usr/lib64/libaio.so.1.0.1) <3ff8a1c2e4a>",
    ]
    # Without an ip on its line, the sample is where its innermost frame is.
    assert args(found[0])["sym"] == "zpci_refresh_trans" and args(found[0])["sym_off"] == 0x2C
    info = trace.inputs[0]
    assert info.counts == {"events": 2, "records": 4, "headers": 2, "losses": 0, "diagnostics": 0}


def test_frames_without_offset_or_dso() -> None:
    # -F ip,sym (no symoff, no dso): the entry has only what was printed.
    (row,) = rows("fio  2211 [001]   620.000140: cpu-clock: \n\t  95a1c4d3c zpci_refresh_trans\n\n")
    assert row["stack"] == ["zpci_refresh_trans <95a1c4d3c>"]
    assert args(row)["sym"] == "zpci_refresh_trans" and "dso" not in args(row)


def test_orphan_frames_are_diagnostics_with_a_reason() -> None:
    text = "\n\t       95a1c4d3c zpci_refresh_trans+0x2c ([kernel.kallsyms])\n" + CHAIN
    trace = parse(text)
    (diag,) = trace.diagnostics.collect().to_dicts()
    assert diag["line"] == 2 and diag["reason"] == ORPHAN_FRAME
    assert trace.inputs[0].accounted()


def test_a_tab_line_that_is_no_frame_says_so() -> None:
    text = CHAIN.replace("\n\n", "\n\tgarbage here\n\n")
    (diag,) = diagnostics(text)
    assert diag["reason"] == BAD_FRAME and diag["text"] == "\tgarbage here"


def test_a_line_that_is_nothing_is_explained() -> None:
    (diag,) = diagnostics(CHAIN + "what is this\n")
    assert diag["kind"] == "unparsed" and "not a perf script line" in diag["reason"]


def test_payload_mismatch_keeps_the_event_and_says_why() -> None:
    trace = parse("             fio  2211 [001]   620.000101: iommu:map: IOMMU: nonsense\n")
    assert trace.events.collect().height == 1
    (diag,) = trace.diagnostics.collect().to_dicts()
    assert diag["kind"] == "args" and "parsers/perf.toml" in diag["reason"]


def test_safe_line_never_cuts_inside_a_callchain() -> None:
    assert SAFE_LINE.match(CHAIN.splitlines()[0].encode())
    assert SAFE_LINE.match(b"")  # the blank line after a callchain
    assert not SAFE_LINE.match(CHAIN.splitlines()[1].encode())
    assert not SAFE_LINE.match(CHAIN.splitlines()[2].encode())


def test_chunked_parse_equals_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    text = "".join(
        CHAIN.replace("620.000140", f"620.{i:06d}").replace("2211", str(rng.randint(1, 9999)))
        for i in range(400)
    )
    whole = parse(text).events.collect()
    monkeypatch.setattr(inputs, "CHUNK_BYTES", 997)
    chunks = list(inputs.read_chunks(io.BytesIO(text.encode()), lambda _: SAFE_LINE))
    assert len(chunks) > 50 and b"".join(chunks) == text.encode()
    # Every cut falls before a sample line or the blank line after a callchain.
    assert all(not c.startswith(b"\t") for c in chunks)
    chunked = parse(text)
    assert chunked.events.collect().equals(whole)
    assert chunked.diagnostics.collect().is_empty()


# --- headers and losses --------------------------------------------------------------

HEADER = """\
# ========
# captured on    : Tue Nov 24 10:12:03 2026
# hostname : s390-lpar07
# os release : 6.0.0-rc3
# perf version : 6.1.0
# arch : s390x
# nrcpus online : 4
# nrcpus avail : 4
# cmdline : /usr/bin/perf record -e probe:* -a{SPACE}
# ========
#
""".format(SPACE=" ")


def test_header_facts_go_to_meta() -> None:
    trace = tracetool.parse_text(
        HEADER + "         kmcheck    41 [003]   531.000087: probe:f: (95bb0f2a8)\n"
    )
    (info,) = trace.inputs
    assert info.format == "perf"
    assert {k: info.meta[k] for k in ("perf_version", "hostname", "os_release", "arch")} == {
        "perf_version": "6.1.0",
        "hostname": "s390-lpar07",
        "os_release": "6.0.0-rc3",
        "arch": "s390x",
    }
    assert info.meta["ncpus"] == 4 and info.meta["cmdline"] == "/usr/bin/perf record -e probe:* -a"
    assert info.counts["headers"] == 11


def test_lost_records_and_the_lost_chunks_summary() -> None:
    trace = parse(
        "         kmcheck  4471 [003]   530.999010: PERF_RECORD_LOST lost 37\n"
        "         kmcheck  4471 [003]   531.000087: probe:f: (95bb0f2a8)\n"
        "Warning:\nProcessed 1892 events and lost 3 chunks!\n\nCheck IO/CPU overload!\n\n"
    )
    losses = trace.losses.collect().to_dicts()
    assert [(r["line"], r["cpu"], r["lost"], r["marker"]) for r in losses] == [
        (1, 3, 37, "PERF_RECORD_LOST"),
        (4, None, 3, "lost-chunks"),
    ]
    assert losses[0]["end_ts"] == 531_000_087_000
    assert trace.inputs[0].counts == {
        "events": 1,
        "records": 0,
        "headers": 4,
        "losses": 2,
        "diagnostics": 0,
    }


def test_other_perf_messages_are_headers_or_losses() -> None:
    trace = parse(
        "[ perf record: Woken up 1 times to write data ]\n"
        "Warning:\n3 out of order events recorded.\n"
        "Warning:\nProcessed 1892 samples and lost 3.45%  samples!\n\n"
    )
    (loss,) = trace.losses.collect().to_dicts()
    assert (loss["line"], loss["lost"], loss["marker"]) == (5, None, "lost-samples")
    assert trace.inputs[0].counts["headers"] == 5 and trace.inputs[0].accounted()


def test_task_events_are_events() -> None:
    found = rows(
        "            bash  4410 [002]   530.990102: PERF_RECORD_FORK(4471:4471):(4410:4410)\n"
        "            bash  4471 [002]   530.990388: PERF_RECORD_COMM exec: kmcheck:4471/4471\n"
        "         kmcheck  4471 [003]   531.000133: PERF_RECORD_EXIT(4471:4471):(4410:4410)\n"
        "         kmcheck  4471 [003]   531.000140: PERF_RECORD_MMAP2 4471/4471: "
        "[0x2aa0b400000(0x1c000) @ 0 fd:00 1234 0]: r-xp /usr/bin/kmcheck\n"
    )
    assert [(r["event"], r["body"]) for r in found] == [
        ("PERF_RECORD_FORK", "(4471:4471):(4410:4410)"),
        ("PERF_RECORD_COMM", "exec: kmcheck:4471/4471"),
        ("PERF_RECORD_EXIT", "(4471:4471):(4410:4410)"),
        (
            "PERF_RECORD_MMAP2",
            "4471/4471: [0x2aa0b400000(0x1c000) @ 0 fd:00 1234 0]: r-xp /usr/bin/kmcheck",
        ),
    ]


def test_perf_text_is_sniffed() -> None:
    assert tracetool.parse_text(CHAIN).inputs[0].format == "perf"
    line = "             fio  2211 [001]   620.000101: iommu:map: IOMMU: x\n"
    assert tracetool.parse_text(line * 3).inputs[0].format == "perf"


# --- properties ----------------------------------------------------------------------

COMMS = st.sampled_from(["fio", "kworker/1:1H", "qemu-system-s39", "Web Content 2", "swapper"])
EVENTS = st.sampled_from(
    [
        ("iommu:attach_device_to_domain", "IOMMU: device=0004:00:00.0", "device", "0004:00:00.0"),
        ("iommu:unmap", "IOMMU: iova=0x1000 size=4096 unmapped_size=4096", "size", 4096),
        ("probe:s390_iommu_attach_device", "(95bb0f5f0) dev=0x8f3a40c8", "probe", "kprobe"),
        (
            "probe:zpci_refresh_trans__return",
            "(95a1c4d10 <- 95a1c6e6a) ret=0",
            "probe",
            "kretprobe",
        ),
        ("sched:sched_wakeup", "comm=fio pid=2211 prio=120 target_cpu=001", "target_pid", 2211),
    ]
)
SAMPLE_EVENT = st.tuples(
    COMMS,
    st.integers(0, 99999),
    st.one_of(st.none(), st.integers(0, 99999)),
    st.integers(0, 255),
    st.integers(0, 10**6),
    st.integers(0, 999_999_999),
    st.booleans(),
    EVENTS,
    st.lists(st.integers(1, 2**64 - 1), max_size=3),
)


def _render(ev: tuple[Any, ...]) -> str:
    comm, tid, pid, cpu, secs, nsecs, ns, (name, payload, _, _), chain = ev
    who = f"{pid:5d}/{tid:<5d}" if pid is not None else f"{tid:5d}"
    stamp = f"{secs:5d}.{nsecs:09d}" if ns else f"{secs:5d}.{nsecs // 1000:06d}"
    text = f"{comm:>16s} {who} [{cpu:03d}] {stamp:>12s}: {name}: {payload}\n"
    if chain:
        text += "".join(
            f"\t{ip:16x} func_{i}+0x{i:x} ([kernel.kallsyms])\n" for i, ip in enumerate(chain)
        )
        text += "\n"
    return text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SAMPLE_EVENT, min_size=1, max_size=12))
def test_rendered_events_parse_back(events: list[tuple[Any, ...]]) -> None:
    trace = parse("".join(_render(e) for e in events))
    got = trace.events.collect().to_dicts()
    assert len(got) == len(events)
    assert trace.diagnostics.collect().is_empty()
    assert trace.inputs[0].accounted()
    for row, (comm, tid, pid, cpu, secs, nsecs, ns, evspec, chain) in zip(got, events, strict=True):
        name, _, field, value = evspec
        assert (row["comm"], row["pid"], row["tgid"], row["cpu"]) == (comm, tid, pid, cpu)
        assert row["ts"] == secs * 10**9 + (nsecs if ns else nsecs // 1000 * 1000)
        assert row["event"] == name.split(":")[1]
        assert row["args"]["system"] == name.split(":")[0]
        assert row["args"][field] == value
        assert len(row["stack"] or []) == len(chain)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_and_every_line_is_accounted(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    trace = tracetool.parse_text(text, format="perf")
    info = trace.inputs[0]
    assert info.accounted()
    trace.events.collect()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([*CHAIN.splitlines(), "", "junk", "# c"]), max_size=30))
def test_shuffled_perf_lines_are_all_accounted(lines: list[str]) -> None:
    text = "".join(f"{line}\n" for line in lines)
    trace = tracetool.parse_text(text, format="perf")
    info = trace.inputs[0]
    assert info.accounted() and info.lines == len(lines)
    diag = trace.diagnostics.collect()
    assert diag["reason"].is_not_null().all()
