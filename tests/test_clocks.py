"""Several inputs on one clock: given offsets, shared events, boot time, none."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import SAMPLES

import tracetool
from tracetool.cli import main

LOG = SAMPLES / "dmesg" / "sysrq-z-anchored.txt"
TRACE = """\
         kmcheck-41      [003] ..... 1402.117850: console: zpci: 0004:00:00.0: Event 0x303 reconfigured PCI function 0x4
         kmcheck-41      [003] ..... 1402.117930: remove_device_from_group: IOMMU: groupID=4 device=0004:00:00.0
         kmcheck-41      [003] ..... 1402.118044: console: pci 0004:00:00.0: Removing from iommu group 4
"""


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    path = tmp_path / "trace.txt"
    path.write_text(TRACE)
    return path


def _clock(trace: tracetool.Trace, name: str) -> dict[str, object]:
    (info,) = [i for i in trace.inputs if Path(i.file).name == name]
    clock = info.meta["clock"]
    assert isinstance(clock, dict)
    return clock


def test_shared_events_anchor_the_clocks(trace_file: Path) -> None:
    trace = tracetool.parse([LOG, trace_file], use_cache=False)
    clock = _clock(trace, "trace.txt")
    # console events: log - trace = -30 us and -40 us; the dump's copy of the three
    # events (on the log clock since its own alignment) adds three more pairs.
    assert clock["how"] == "anchored on 5 event(s) both inputs show"
    assert clock["reference"] == str(LOG)
    assert _clock(trace, LOG.name)["how"] == "reference"
    offset = clock["offset_ns"]
    assert isinstance(offset, int) and -40_000 <= offset <= -11_000
    ts = trace.events.filter(pl.col("file") == str(trace_file)).collect()["ts"].to_list()
    assert ts == [t + offset for t in (1402117850000, 1402117930000, 1402118044000)]


def test_given_offset_wins(trace_file: Path) -> None:
    trace = tracetool.parse([LOG, trace_file], use_cache=False, offsets={"trace.txt": -1.5})
    assert _clock(trace, "trace.txt")["how"] == "given"
    first = trace.events.filter(pl.col("file") == str(trace_file)).collect()["ts"][0]
    assert first == 1402117850000 - 1_500_000_000


def test_boot_clocks_are_taken_as_equal_but_said_so() -> None:
    ftrace = SAMPLES / "ftrace" / "s390-kprobe-race-v6.0.txt"
    trace = tracetool.parse(
        [SAMPLES / "dmesg" / "s390-warn-zpci-dma-v6.0.txt", ftrace], use_cache=False
    )
    assert _clock(trace, ftrace.name)["how"] == "boot"


def test_counter_clock_is_not_aligned() -> None:
    counter = SAMPLES / "ftrace" / "s390-counter-clock.txt"
    trace = tracetool.parse([LOG, counter], use_cache=False)
    assert _clock(trace, counter.name)["how"] == "none"


def test_unknown_offset_source_is_explained(trace_file: Path) -> None:
    with pytest.raises(tracetool.InputError, match="matches no input"):
        tracetool.parse([LOG, trace_file], use_cache=False, offsets={"other.txt": 1.0})


def test_cli_merges_and_says_how(trace_file: Path) -> None:
    result = CliRunner().invoke(main, ["parse", str(LOG), str(trace_file), "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "anchored on 5 event(s)" in result.stderr
    assert "trace.txt:1" in result.stdout and "sysrq-z-anchored.txt:1" in result.stdout
    bad = CliRunner().invoke(main, ["parse", str(LOG), "--offset", "trace.txt"])
    assert bad.exit_code == 2 and "expected SOURCE=SECONDS" in bad.output
