"""Kernel logs: prefixes, printk events, loss lines, crash reports and ftrace dumps."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import SAMPLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracetool
from tracetool.cli import main

MSG = "pci 0004:00:00.0: Adding to iommu group 4"


def _one(text: str) -> dict[str, object]:
    trace = tracetool.parse_text(text, format="dmesg")
    (row,) = trace.events.collect().to_dicts()
    assert trace.inputs[0].accounted()
    return row


@pytest.mark.parametrize(
    ("line", "ts", "level", "facility", "pid", "cpu"),
    [
        (f"[  318.207511] {MSG}", 318_207_511_000, None, None, None, None),
        (f"<6>[  318.207511] {MSG}", 318_207_511_000, 6, "kern", None, None),
        (f"<14>[  318.207511] {MSG}", 318_207_511_000, 6, "user", None, None),
        (f"kern  :info  : [  318.207511] {MSG}", 318_207_511_000, 6, "kern", None, None),
        (f"[  318.207511][   T41] {MSG}", 318_207_511_000, None, None, 41, None),
        (f"[    5.689457][    C3] {MSG}", 5_689_457_000, None, None, None, 3),
        (f"6,1234,318207511,-;{MSG}", 318_207_511_000, 6, "kern", None, None),
        (f"[  318.207511] s390host kernel: {MSG}", 318_207_511_000, None, None, None, None),
        (
            f"Nov 24 09:56:18 s390host kernel: [  318.207511] {MSG}",
            318_207_511_000,
            None,
            None,
            None,
            None,
        ),
        (f"2026-11-24T09:56:18.123Z [  318.207511] {MSG}", 318_207_511_000, None, None, None, None),
        (f"> [  318.207511] {MSG}", 318_207_511_000, None, None, None, None),
        (f"[Tue Nov 24 09:56:18 2026] {MSG}", 1_795_514_178_000_000_000, None, None, None, None),
        (
            f"kern  :info  : [Tue Nov 24 09:56:18 2026] {MSG}",
            1_795_514_178_000_000_000,
            6,
            "kern",
            None,
            None,
        ),
        (
            f"2026-11-24T09:56:18,207511+00:00 {MSG}",
            1_795_514_178_207_511_000,
            None,
            None,
            None,
            None,
        ),
        (
            f"2026-11-24T09:56:18.207511+00:00 s390host kernel: {MSG}",
            1_795_514_178_207_511_000,
            None,
            None,
            None,
            None,
        ),
        (
            f"2026-11-24T09:56:18+0000 s390host kernel: {MSG}",
            1_795_514_178_000_000_000,
            None,
            None,
            None,
            None,
        ),
        (
            f"Nov 24 09:56:18.207511 s390host kernel: {MSG}",
            28_288_578_207_511_000,
            None,
            None,
            None,
            None,
        ),
        (MSG, None, None, None, None, None),
    ],
)
def test_prefix_variants(
    line: str,
    ts: int | None,
    level: int | None,
    facility: str | None,
    pid: int | None,
    cpu: int | None,
) -> None:
    row = _one(line + "\n")
    args = row["args"]
    assert isinstance(args, dict)
    assert (row["event"], row["ts"], row["pid"], row["cpu"]) == ("printk", ts, pid, cpu)
    assert (args["level"], args["facility"]) == (level, facility)
    assert (args["driver"], args["device"], args["text"]) == (
        "pci",
        "0004:00:00.0",
        "Adding to iommu group 4",
    )


@pytest.mark.parametrize(
    ("line", "lost"),
    [
        ("[  530.999001] ** 12 printk messages dropped **", 12),
        ("[  530.999001] printk: 7 messages dropped", 7),
        ("printk messages dropped", None),
    ],
)
def test_dropped_printk_messages_are_losses(line: str, lost: int | None) -> None:
    trace = tracetool.parse_text(f"[  530.998870] {MSG}\n{line}\n", format="dmesg")
    (loss,) = trace.losses.collect().to_dicts()
    assert (loss["line"], loss["lost"], loss["marker"]) == (2, lost, "printk-dropped")


def test_kmsg_dictionary_lines_are_accounted() -> None:
    trace = tracetool.parse_text(
        f"6,1205,318207511,-;{MSG}\n SUBSYSTEM=pci\n DEVICE=+pci:0004:00:00.0\n", format="dmesg"
    )
    info = trace.inputs[0]
    assert info.accounted() and info.counts["events"] == 1 and info.counts["headers"] == 2


def _crashes(path: Path) -> pl.DataFrame:
    return tracetool.parse(path, use_cache=False).table("crashes").collect()


def test_s390_warn_report() -> None:
    (report,) = _crashes(SAMPLES / "dmesg" / "s390-warn-zpci-dma-v6.0.txt").to_dicts()
    assert report["kind"] == "warning"
    assert report["title"] == "WARNING in zpci_dma_init_device"
    assert (report["cpu"], report["pid"], report["comm"]) == (3, 41, "kmcheck")
    assert (report["tainted"], report["release"]) == ("G        W", "6.0.0")
    assert report["location"] == "arch/s390/pci/pci_dma.c:592"
    assert report["ts"] == 531_000_152_000
    assert (report["line"], report["end_line"]) == (4, 38)
    assert not report["corrupted"]
    frames = report["frames"]
    assert [f["func"] for f in frames[:3]] == ["zpci_dma_init_device"] * 2 + [
        "s390_iommu_detach_device"
    ]
    assert [f["reliable"] for f in frames[:3]] == [True, False, True]
    assert (
        frames[0]["off"] == 0x1CA and frames[0]["size"] == 0x220 and frames[0]["addr"] == 0xD5A1B2C2
    )
    # The breaking-event address is not part of the call trace.
    assert frames[-1]["func"] == "chsc_process_crw"
    # Another context's line in the middle of the call trace stays an event.
    assert 27 not in report["lines"]


def test_interleaved_line_stays_an_event() -> None:
    trace = tracetool.parse(SAMPLES / "dmesg" / "s390-warn-zpci-dma-v6.0.txt", use_cache=False)
    lines = trace.events.select("line").collect()["line"].to_list()
    assert lines == [1, 2, 3, 27, 39]


def test_reports_of_two_tasks_interleaved_line_by_line() -> None:
    reports = _crashes(SAMPLES / "dmesg" / "s390-caller-ids-interleaved.txt").sort("pid")
    assert reports["title"].to_list() == [
        "WARNING in s390_iommu_release_device",
        "WARNING in iommu_detach_group",
    ]
    assert reports["pid"].to_list() == [41, 5082]
    assert reports["message"].to_list() == [
        None,
        "iommu driver failed to attach the default/blocking domain",
    ]
    assert reports["frames"].list.len().to_list() == [7, 8]
    assert reports["frames"].list.last().struct.field("func").to_list() == [
        "zpci_event_availability",
        "system_call",
    ]
    assert not reports["corrupted"].any()
    assert reports["frames"].list.get(2).struct.field("module").to_list() == [
        None,
        "vfio_iommu_type1",
    ]


def test_report_cut_off_is_corrupted_not_dropped() -> None:
    (report,) = _crashes(SAMPLES / "dmesg" / "console-ci-truncated.txt").to_dicts()
    assert report["corrupted"] and report["title"] == "WARNING in s390_iommu_detach_device"
    assert len(report["frames"]) == 2


def test_x86_report_unreliable_frames_and_markers() -> None:
    (report,) = _crashes(SAMPLES / "dmesg" / "x86-warn-vfio.txt").to_dicts()
    assert report["title"] == "WARNING in iommu_detach_group"
    assert [f["reliable"] for f in report["frames"]] == [True, False, True, True, True, True]
    assert report["guilty"] == "vfio_iommu_type1_detach_group"
    assert report["lines"] == list(range(1, 21))


def test_oops_with_panic_and_dump() -> None:
    reports = _crashes(SAMPLES / "dmesg" / "s390-oops-ftrace-dump.txt")
    # The panic that panic_on_oops raises right after the end belongs to the report.
    assert reports["kind"].to_list() == ["oops"]
    oops = reports.row(0, named=True)
    assert (oops["end_line"], 30 in oops["lines"]) == (30, True)
    assert oops["title"] == (
        "Unable to handle kernel pointer dereference in virtual kernel address space "
        "in zpci_dma_exit_device"
    )
    # The dump inside the report is not part of it.
    assert not set(oops["lines"]) & set(range(6, 15))


def test_ftrace_dump_events_on_the_log_clock() -> None:
    trace = tracetool.parse(SAMPLES / "dmesg" / "s390-oops-ftrace-dump.txt", use_cache=False)
    dump = trace.events.filter(pl.col("source") == "ftrace-dump").collect()
    assert dump["event"].to_list()[:2] == ["s390_iommu_release_device", "s390_iommu_attach_device"]
    assert dump["args"].struct.field("probe").to_list()[:2] == ["kprobe", "kprobe"]
    # The last event is placed at the "Dumping ftrace buffer:" line (612.339201).
    assert dump["ts"].max() == 612_339_201_000
    assert dump["ts"].to_list()[0] == 612_339_201_000 - (9_876_699 - 9_876_501) * 1000
    (row,) = trace.table("dumps").collect().to_dicts()
    assert (row["line"], row["end_line"], row["events"], row["lost"]) == (6, 14, 5, 1402)
    assert row["offset_ns"] == 612_339_201_000 - 9_876_699_000
    # Good to the time since the report began (612.338901), plus the 1 µs resolution.
    assert row["uncertainty_ns"] == 300_000 + 1000
    (loss,) = trace.losses.collect().to_dicts()
    assert (loss["cpu"], loss["lost"]) == (3, 1402)


def test_dump_anchored_on_events_the_log_printed_too() -> None:
    trace = tracetool.parse(SAMPLES / "dmesg" / "sysrq-z-anchored.txt", use_cache=False)
    dumps = trace.table("dumps").collect().to_dicts()
    assert dumps[0]["how"].startswith("anchored on 2 event")
    assert dumps[0]["offset_ns"] == 1_402_117_820_000 - 402_117_801_000
    assert (
        dumps[0]["uncertainty_ns"]
        == (1_402_118_004_000 - 402_117_985_000) - dumps[0]["offset_ns"] + 1000
    )
    assert (dumps[1]["instance"], dumps[1]["events"]) == ("zpci", 0)
    removed = trace.events.filter(pl.col("event") == "remove_device_from_group").collect()
    assert removed["ts"].item() == 402_117_900_000 + dumps[0]["offset_ns"]


def test_dump_in_a_log_without_timestamps_keeps_its_own_clock() -> None:
    text = (
        "Dumping ftrace buffer:\n---------------------------------\n"
        " kmcheck-41        3..... 9876501us : s390_iommu_release_device <-iommu_release_device\n"
        "---------------------------------\n"
    )
    trace = tracetool.parse_text(text, format="dmesg")
    assert trace.events.collect()["ts"].to_list() == [9_876_501_000]
    (row,) = trace.table("dumps").collect().to_dicts()
    assert row["how"].startswith("the log has no timestamps")


def test_dump_cut_off_is_incomplete() -> None:
    text = (
        "[  612.339201] Dumping ftrace buffer:\n[  612.339205] ---------------------------------\n"
        "[  612.339211]  kmcheck-41        3..... 9876501us : s390_iommu_release_device <-iommu_release_device\n"
    )
    (row,) = tracetool.parse_text(text, format="dmesg").table("dumps").collect().to_dicts()
    assert not row["complete"] and row["events"] == 1


_HEX = re.compile(r"(?<=\[<)[0-9a-f]{16}(?=>\])|(?<=\+0x)[0-9a-f]+|(?<=/0x)[0-9a-f]+")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), shift=st.integers(0, 10**6))
def test_signature_stable_under_addresses_offsets_and_times(seed: int, shift: int) -> None:
    import random

    rng = random.Random(seed)
    text = (SAMPLES / "dmesg" / "s390-warn-zpci-dma-v6.0.txt").read_text()
    changed = _HEX.sub(lambda m: f"{rng.getrandbits(4 * len(m.group())):0{len(m.group())}x}", text)
    changed = re.sub(
        r"\[\s*(\d+)\.(\d{6})\]",
        lambda m: f"[{int(m.group(1)) + shift:5d}.{m.group(2)}]",
        changed,
    )
    changed = changed.replace("pci_dma.c:592", f"pci_dma.c:{rng.randint(1, 9999)}")
    base = tracetool.parse_text(text, format="dmesg").table("crashes").collect()
    other = tracetool.parse_text(changed, format="dmesg").table("crashes").collect()
    assert other["signature"].to_list() == base["signature"].to_list()
    assert other["title"].to_list() == base["title"].to_list()


def test_signature_normalises_numbers_and_clones() -> None:
    from tracetool.crashes import signature

    titles = pl.Series(
        ["BUG: spinlock bad magic on CPU#0 in foo.isra.3+0x1a/0x20 at ffff88802bde1e40:17"]
    )
    out = pl.select(signature(pl.lit(titles))).to_series().to_list()
    assert out == ["BUG: spinlock bad magic on CPU#NUM in foo at ADDR"]


def _report(pid: int, func: str) -> list[str]:
    return [
        "------------[ cut here ]------------",
        f"WARNING: CPU: 1 PID: {pid} at drivers/iommu/s390-iommu.c:99 {func}+0x8e/0x98",
        "Modules linked in: vfio_pci vfio",
        f"CPU: 1 PID: {pid} Comm: task{pid} Not tainted 6.0.0 #1",
        "Call Trace:",
        f" [<000000095bb0f336>] {func}+0x8e/0x98",
        " [<000000095bb0e6a2>] iommu_release_device+0x5a/0x130",
        "Last Breaking-Event-Address:",
        f" [<000000095bb0f332>] {func}+0x8a/0x98",
        "---[ end trace 0000000000000000 ]---",
    ]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.lists(st.sampled_from("abf"), min_size=0, max_size=40), data=st.data())
def test_interleaved_reports_reassemble(order: list[str], data: st.DataObject) -> None:
    """Two reports printed by two tasks at once, with foreign lines from a third
    context, reassemble into exactly the reports each gives alone."""
    a, b = _report(41, "s390_iommu_release_device"), _report(5082, "s390_iommu_attach_device")
    streams = {"a": (41, list(a)), "b": (5082, list(b))}
    foreign = data.draw(
        st.lists(st.sampled_from([MSG, "zpci: event 0x303", "vfio: noise"]), max_size=10)
    )
    out: list[str] = []
    ts = 100_000_000
    picks = order + ["a"] * len(a) + ["b"] * len(b) + ["f"] * len(foreign)
    for pick in picks:
        ts += 7
        if pick == "f":
            if foreign:
                out.append(f"[{ts // 10**6:5d}.{ts % 10**6:06d}][    C2] {foreign.pop()}")
            continue
        pid, lines = streams[pick]
        if lines:
            out.append(f"[{ts // 10**6:5d}.{ts % 10**6:06d}][{'T' + str(pid):>6}] {lines.pop(0)}")
    trace = tracetool.parse_text("\n".join(out) + "\n", format="dmesg")
    got = trace.table("crashes").collect().sort("pid")
    assert got["title"].to_list() == [
        "WARNING in s390_iommu_release_device",
        "WARNING in s390_iommu_attach_device",
    ]
    assert got["frames"].list.len().to_list() == [2, 2]
    assert got["lines"].list.len().to_list() == [len(a), len(b)]
    assert not got["corrupted"].any()
    assert trace.events.collect().height == sum(1 for line in out if "[    C2]" in line)
    assert trace.inputs[0].accounted()


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(data: bytes) -> None:
    text = data.decode("utf-8", "replace").replace("\r", "")
    trace = tracetool.parse_text(text + "\n", format="dmesg")
    trace.table("crashes").collect()
    trace.table("dumps").collect()
    assert trace.inputs[0].accounted()


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                *_report(41, "f"),
                "Dumping ftrace buffer:",
                "-" * 33,
                "(ftrace buffer empty)",
                MSG,
                "",
            ]
        ),
        max_size=30,
    )
)
def test_shuffled_report_lines_never_crash(lines: list[str]) -> None:
    trace = tracetool.parse_text(
        "\n".join(f"[  100.{i:06d}] {t}" for i, t in enumerate(lines)) + "\n", format="dmesg"
    )
    crashes = trace.table("crashes").collect()
    assert crashes["title"].null_count() == 0
    assert trace.inputs[0].accounted()


def test_cli_list_crashes() -> None:
    result = CliRunner().invoke(main, ["list", "crashes", str(SAMPLES / "dmesg"), "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "x86-warn-vfio.txt:1-20  123.456760  CPU 3  qemu-system-x86-1234" in result.stdout
    assert "  WARNING in zpci_dma_init_device\n" in result.stdout
    assert "[corrupted]" in result.stdout
    assert "9 report(s)" in result.stderr and "anchored on 2 event(s)" in result.stderr


def test_cli_list_crashes_to_json(tmp_path: Path) -> None:
    out = tmp_path / "crashes.json"
    result = CliRunner().invoke(
        main,
        [
            "list",
            "crashes",
            str(SAMPLES / "dmesg" / "x86-warn-vfio.txt"),
            "-o",
            str(out),
            "--no-cache",
        ],
    )
    assert result.exit_code == 0, result.output
    assert pl.read_json(out)["guilty"].to_list() == ["vfio_iommu_type1_detach_group"]


def test_cli_list_crashes_by_signature(tmp_path: Path) -> None:
    # The same WARN on two boots: other addresses, times and line number.
    text = (SAMPLES / "dmesg" / "s390-warn-zpci-dma-v6.0.txt").read_text()
    other = text.replace("531.", "977.").replace("d5a1", "e7b2").replace(":592", ":601")
    (tmp_path / "boot1.txt").write_text(text)
    (tmp_path / "boot2.txt").write_text(other)
    result = CliRunner().invoke(main, ["list", "crashes", str(tmp_path), "--by-signature"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert rows == [["2", "2", "0", "WARNING", "in", "zpci_dma_init_device", "boot1.txt:4"]]
