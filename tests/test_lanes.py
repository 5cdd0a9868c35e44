"""The tables a timeline draws: rows per device task and CPU, the locks under the calls,
findings over the spans they involve, crashes on their CPU, loss windows, aggregation."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from conftest import SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

import tracetool
from tracetool import lanes
from tracetool.errors import TraceToolError

SIM = SAMPLES / "simulated"
RACE = SIM / "race-v6.0-overlap-warn.txt"
RACE_LOG = SIM / "race-v6.0-overlap-warn-dmesg.txt"
DEVICE = "0004:00:00.0"


def _build(*paths: Path, **kw: object) -> lanes.Lanes:
    return lanes.build(tracetool.parse([str(p) for p in paths]), **kw)  # type: ignore[arg-type]


def _row(built: lanes.Lanes, label: str) -> int:
    hit = built.rows.filter(pl.col("label") == label)
    assert hit.height == 1, (label, built.rows["label"].to_list())
    return int(hit["row"][0])


def _on(built: lanes.Lanes, row: int, kind: str) -> pl.DataFrame:
    return built.segments.filter((pl.col("row") == row) & (pl.col("kind") == kind))


def test_each_device_task_gets_a_calls_and_a_locks_row_and_cpus_follow() -> None:
    built = _build(RACE, RACE_LOG)
    labels = built.rows.sort("row")["label"].to_list()
    release = _row(built, f"{DEVICE} · kmcheck-41")
    attach = _row(built, f"{DEVICE} · qemu-system-s39-5082")
    # The log cuts the comm short ("qemu-sys"); one row per pid, with the full name.
    assert not any("qemu-sys-5082" in label for label in labels)
    assert labels[release + 1] == f"{DEVICE} · kmcheck-41 locks"
    assert _on(built, release, "release").height >= 1
    assert _on(built, attach, "attach").height >= 1
    cpus = built.rows.filter(pl.col("group") == "cpu")
    assert cpus["row"].min() > built.rows.filter(pl.col("group") == "device")["row"].max()
    assert "CPU 3" in cpus["label"].to_list()


def test_v60_release_holds_no_lock_while_attach_holds_the_group_mutex() -> None:
    built = _build(RACE)
    release = _row(built, f"{DEVICE} · kmcheck-41")
    attach = _row(built, f"{DEVICE} · qemu-system-s39-5082")
    assert built.segments.filter(pl.col("row") == release + 1).is_empty()
    held = _on(built, attach + 1, "lock_implicit")
    assert "group-&gt;mutex" in held["label"].to_list()  # escaped: it reaches a label
    a = _on(built, attach, "attach").row(0, named=True)
    assert (
        held.filter(
            (pl.col("start_ts") == a["start_ts"]) & (pl.col("end_ts") == a["end_ts"])
        ).height
        == 1
    )


def test_v65_release_runs_under_the_group_mutex() -> None:
    built = _build(SIM / "race-v6.5-group-mutex.txt")
    release = _row(built, f"{DEVICE} · kmcheck-41")
    rel = _on(built, release, "release")
    held = _on(built, release + 1, "lock_implicit")
    assert held.height == rel.height > 0
    assert set(held["start_ts"].to_list()) == set(rel["start_ts"].to_list())


def test_traced_lock_holds_sit_under_the_call_of_their_task() -> None:
    built = _build(SIM / "race-v6.0-dma-domain-lock.txt")
    attach = _row(built, f"{DEVICE} · qemu-system-s39-5082")
    holds = _on(built, attach + 1, "lock")
    assert holds.height >= 1 and holds["label"].str.starts_with("lock@").all()
    call = _on(built, attach, "attach").row(0, named=True)
    assert (holds["start_ts"] >= call["start_ts"]).any()


def test_an_overlap_finding_covers_the_rows_of_both_sides() -> None:
    built = _build(RACE)
    release = _row(built, f"{DEVICE} · kmcheck-41")
    attach = _row(built, f"{DEVICE} · qemu-system-s39-5082")
    hit = built.findings.filter(pl.col("rule") == "release-overlaps-attach").row(0, named=True)
    assert (hit["row_lo"], hit["row_hi"]) == (min(release, attach), max(release, attach))
    assert hit["kind"] == "overlap"
    text = built.details[hit["key"]]
    assert "release-overlaps-attach" in text
    # Every evidence line comes with its text, read back from the input.
    assert "race-v6.0-overlap-warn.txt:" in text and "s390_rel:" in text


def test_the_warn_sits_on_its_cpu_at_its_aligned_time_with_context() -> None:
    built = _build(RACE, RACE_LOG)
    crash = built.crashes.row(0, named=True)
    assert crash["row"] == _row(built, "CPU 3")
    reports = tracetool.parse([str(RACE), str(RACE_LOG)]).table("crashes").collect()
    assert crash["ts"] == reports["ts"][0]
    text = built.details[crash["key"]]
    assert "WARNING: CPU: 3 PID: 41 at arch/s390/pci/pci_dma.c:592" in text
    assert "traced events of CPU 3 before it" in text
    assert "traced events of task kmcheck-41 before it" in text
    assert "s390_rel:" in text


def test_loss_windows_span_the_gap_a_marker_reports() -> None:
    trace = tracetool.parse(str(SAMPLES / "ftrace" / "s390-trace-pipe-lost.txt"))
    built = lanes.build(trace)
    raw = trace.losses.collect()
    assert built.losses.height == raw.height > 0
    assert (built.losses["end_ts"] >= built.losses["start_ts"]).all()
    lo, hi = built.window
    assert built.losses["start_ts"].min() >= lo and built.losses["end_ts"].max() <= hi


def test_a_busy_trace_is_aggregated_within_the_budget_and_says_so() -> None:
    path = SIM / "dma-s390-strict-zvm.txt"
    full = _build(path)
    small = _build(path, max_detail=50)
    assert full.density.is_empty() and not full.aggregated
    assert small.segments.height + small.marks.height <= 50
    assert not small.density.is_empty() and small.aggregated
    # Nothing is lost: what is not drawn one by one is counted in the bins.
    drawn = full.segments.height + full.marks.height
    binned = int(small.density["count"].sum())
    assert small.segments.height + small.marks.height + binned == drawn
    assert any("drawn as counts per" in note for note in small.aggregated)


def test_window_and_device_narrow_the_picture() -> None:
    trace = tracetool.parse(str(RACE))
    lo, hi = 530_000_030_000, 530_000_080_000
    built = lanes.build(trace, window=(lo, hi), devices=[DEVICE])
    assert built.window == (lo, hi)
    assert built.segments["start_ts"].min() >= lo and built.segments["end_ts"].max() <= hi
    assert set(built.rows.filter(pl.col("group") == "device")["lane"]) == {DEVICE}
    with pytest.raises(TraceToolError, match=r"no such device.*0004:00:00\.0"):
        lanes.build(trace, devices=["0009:00:00.0"])


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("531.5:532", (531_500_000_000, 532_000_000_000)),
        (":2", (None, 2_000_000_000)),
        ("", (None, None)),
    ],
)
def test_parse_window(text: str, want: tuple[int | None, int | None]) -> None:
    assert lanes.parse_window(text) == want


@pytest.mark.parametrize("text", ["531", "a:b", "5:4"])
def test_parse_window_says_what_it_wants(text: str) -> None:
    with pytest.raises(TraceToolError, match="START:END"):
        lanes.parse_window(text)


@st.composite
def _nested(draw: st.DrawFn) -> list[tuple[int, int]]:
    """Properly nested intervals: children inside their parent, siblings apart."""
    out: list[tuple[int, int]] = []

    def grow(lo: int, hi: int, level: int) -> None:
        t = lo
        for _ in range(draw(st.integers(0, 3 if level < 3 else 0))):
            a = t + draw(st.integers(1, 5))
            b = a + draw(st.integers(2, 40))
            if b >= hi:
                break
            out.append((a, b))
            grow(a, b, level + 1)
            t = b

    grow(0, 10_000, 0)
    return out


@given(_nested())
@settings(max_examples=60, deadline=None)
def test_depth_counts_the_enclosing_calls(spans: list[tuple[int, int]]) -> None:
    df = pl.DataFrame(
        {"g": [0] * len(spans), "start_ts": [a for a, _ in spans], "end_ts": [b for _, b in spans]},
        schema={"g": pl.Int64, "start_ts": pl.Int64, "end_ts": pl.Int64},
    )
    got = lanes.depth(df, ["g"]).to_list() if spans else []
    want = [sum(1 for c, d in spans if c <= a and b <= d and (c, d) != (a, b)) for a, b in spans]
    assert got == want


def test_plot_timeline_returns_a_figure_and_plotly_loads_only_then() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tracetool\n"
        "assert 'plotly' not in sys.modules, 'tracetool imported plotly'\n"
        f"fig = tracetool.plot_timeline(tracetool.parse({str(RACE)!r}))\n"
        "import plotly.graph_objects as go\n"
        "assert isinstance(fig, go.Figure)\n"
        "names = {t.name for t in fig.data}\n"
        "assert {'release', 'attach', 'lock implicit'} <= names, names\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_cpu_lanes_show_who_ran_and_the_interrupt_handlers() -> None:
    trace = tracetool.parse(str(SAMPLES / "ftrace" / "s390-rpcit-flush.txt"))
    built = lanes.build(trace)
    running = _on(built, _row(built, "CPU 1"), "running")
    switches = (
        trace.events.filter((pl.col("event") == "sched_switch") & (pl.col("cpu") == 1))
        .collect()
        .filter(pl.col("args").struct.field("next_pid") != 0)
    )
    assert running.height == switches.height > 0
    assert running["label"][0] == "{}-{}".format(
        switches["args"].struct.field("next_comm")[0], switches["args"].struct.field("next_pid")[0]
    )
    irqs = _on(built, _row(built, "CPU 1 irq"), "irq")
    entries = trace.events.filter(
        (pl.col("event") == "irq_handler_entry") & (pl.col("cpu") == 1)
    ).collect()
    assert irqs.height == entries.height > 0
    assert irqs["label"].str.contains("nvme0q2").all()
    assert (irqs["end_ts"] > irqs["start_ts"]).all()
