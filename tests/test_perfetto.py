"""``tracetool export --perfetto``: Chrome trace-event JSON that validates against the
format, whose complete events nest on every thread, and that shows the race."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import polars as pl
import pytest
from click.testing import CliRunner
from conftest import ROOT, SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

import tracetool
from tracetool.cli import main
from tracetool.perfetto import CPU_PID, nest

SCHEMA = json.loads((Path(__file__).parent / "data" / "trace-event.schema.json").read_text())
SIM = SAMPLES / "simulated"
RACE = SIM / "race-v6.0-overlap-warn.txt"
RACE_LOG = SIM / "race-v6.0-overlap-warn-dmesg.txt"


def _export(tmp_path: Path, *inputs: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    out = tmp_path / "trace.json"
    args = ["export", "--perfetto", str(out), *map(str, inputs), *extra, "--no-cache"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def _improper(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Complete events that start inside another on their thread and end after it."""
    bad = []
    tracks: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            tracks[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for key, spans in tracks.items():
        stack: list[float] = []
        for a, b in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1] <= a:
                stack.pop()
            if stack and b > stack[-1] + 1e-6:
                bad.append((key, a, b, stack[-1]))
            stack.append(b)
    return bad


def _names(doc: dict[str, Any]) -> dict[tuple[int, int | None], str]:
    return {
        (e["pid"], e.get("tid")): e["args"]["name"]
        for e in doc["traceEvents"]
        if e["ph"] == "M" and e["name"] in ("process_name", "thread_name")
    }


def test_the_race_exports_valid_nested_trace_events(tmp_path: Path) -> None:
    doc = _export(tmp_path, RACE, RACE_LOG)
    jsonschema.validate(doc, SCHEMA)
    assert not _improper(doc["traceEvents"])
    names = _names(doc)
    assert "device 0004:00:00.0" in names.values() and "CPUs" in names.values()
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    thread = {k: v for k, v in names.items() if k[1] is not None}
    release = next(e for e in xs if e["name"] == "s390_iommu_release_device" and e["ts"] > 5e8)
    attach = next(e for e in xs if e["name"] == "s390_iommu_attach_device" and e["ts"] > 5e8)
    # Both inputs recorded the calls (the log's ftrace dump): each has its own tracks.
    assert thread[(release["pid"], release["tid"])].startswith("kmcheck-41 (race-v6.0-")
    assert thread[(attach["pid"], attach["tid"])].startswith("qemu-system-s39-5082 (race-")
    assert (
        release["args"]["evidence"][0]
        .rsplit(":", 1)[0]
        .endswith(thread[(release["pid"], release["tid"])].split("(")[1].rstrip(")"))
    )
    assert release["pid"] == attach["pid"]
    # The race: the two calls overlap in time on one device, each on its task's track.
    assert (
        release["ts"] < attach["ts"] + attach["dur"]
        and attach["ts"] < release["ts"] + release["dur"]
    )
    assert release["args"]["locks"] == [] and "group->mutex" in attach["args"]["locks"]
    # The implicit lock is a slice on the task's locks track.
    locks = [e for e in xs if e["cat"] == "lock" and e["args"]["implicit"]]
    assert any(e["name"] == "group->mutex" and e["ts"] == attach["ts"] for e in locks)


def test_crashes_findings_and_the_flush_rate_are_there(tmp_path: Path) -> None:
    doc = _export(tmp_path, RACE, RACE_LOG)
    events = doc["traceEvents"]
    names = _names(doc)
    crash = next(e for e in events if e["ph"] == "i" and e["cat"] == "crash")
    assert crash["name"] == "WARNING in zpci_dma_init_device"
    assert names[(crash["pid"], crash["tid"])].startswith("CPU 3")
    reports = tracetool.parse([str(RACE), str(RACE_LOG)]).table("crashes").collect()
    assert crash["ts"] == reports["ts"][0] / 1000
    findings = [e for e in events if e["ph"] == "i" and e["cat"] == "finding"]
    overlap = next(e for e in findings if e["args"]["rule"] == "release-overlaps-attach")
    assert any("race-v6.0-overlap-warn" in ev for ev in overlap["args"]["evidence"])
    counters = [e for e in events if e["ph"] == "C"]
    assert counters and sum(e["args"].get("ranged", 0) for e in counters) > 0


def test_losses_are_slices_on_their_own_track(tmp_path: Path) -> None:
    doc = _export(tmp_path, SAMPLES / "ftrace" / "s390-trace-pipe-lost.txt")
    jsonschema.validate(doc, SCHEMA)
    assert not _improper(doc["traceEvents"])
    lost = [e for e in doc["traceEvents"] if e.get("cat") == "loss"]
    assert len(lost) == 2 and {e["args"]["cpu"] for e in lost} == {1, 2}


def test_a_dma_run_exports_cpu_and_device_tracks(tmp_path: Path) -> None:
    doc = _export(tmp_path, SIM / "dma-s390-strict-zvm.txt")
    jsonschema.validate(doc, SCHEMA)
    assert not _improper(doc["traceEvents"])
    flushes = [e for e in doc["traceEvents"] if e.get("cat") == "flush"]
    on_cpus = [e for e in flushes if e["pid"] == CPU_PID]
    flushes = [e for e in flushes if e["pid"] != CPU_PID]
    # No scheduler events in this run: the CPU tracks show the calls that ran there.
    assert len(on_cpus) == len(flushes)
    spans = tracetool.timeline(tracetool.parse(str(SIM / "dma-s390-strict-zvm.txt")).events)
    want = spans.spans.filter(pl.col("kind") == "flush").collect().height
    assert len(flushes) == want > 0
    instants = [e for e in doc["traceEvents"] if e.get("cat") == "rpcit"]
    assert len(instants) == want
    assert {e["name"] for e in instants} == {"RPCIT ranged"}
    assert all(e["ph"] == "i" and e["args"]["latency_ns"] > 0 for e in instants)


def test_global_flushes_are_told_apart(tmp_path: Path) -> None:
    doc = _export(tmp_path, SIM / "dma-s390-lazy-zvm-wraps.txt")
    jsonschema.validate(doc, SCHEMA)
    names = {e["name"] for e in doc["traceEvents"] if e.get("cat") == "rpcit"}
    assert {"RPCIT global", "RPCIT ranged"} <= names


def test_one_input_has_plain_track_names(tmp_path: Path) -> None:
    doc = _export(tmp_path, RACE)
    threads = {v for (_, tid), v in _names(doc).items() if tid is not None}
    assert "kmcheck-41" in threads and "CPU 3" in threads


def test_the_export_opens_in_a_trace_event_viewer(tmp_path: Path) -> None:
    """speedscope (a viewer of the trace-event format) imports the export in Chromium
    and finds every track, with no complaint about how the slices nest."""
    from browser import opened

    viewer = Path(os.environ.get("TRACETOOL_SPEEDSCOPE", ROOT / ".ci-tools" / "speedscope"))
    index = viewer / "package" / "dist" / "release" / "index.html"
    if not index.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{index} is missing; .ci/run fetches speedscope with npm pack")
        pytest.skip("speedscope is not unpacked (see .ci/run)")
    doc = _export(tmp_path, RACE, RACE_LOG)
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(doc))
    tracks = {(e["pid"], e["tid"]) for e in doc["traceEvents"] if e["ph"] == "X"}
    with opened(index, ready="document.querySelector('input[type=file]') !== null") as o:
        page = o.page
        warnings: list[str] = []
        page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
        page.set_input_files("input[type=file]", str(path))
        page.wait_for_function("document.body.innerText.includes('Time Order')")
        title = page.inner_text("body")
        assert f"(1/{len(tracks)})" in title, title[:300]
        nesting = [w for w in warnings if "Tried to end" in w or "still open" in w]
        assert not nesting, nesting[:3]
        assert not o.errors, o.errors


def test_window_and_device_restrict_the_export(tmp_path: Path) -> None:
    doc = _export(
        tmp_path, RACE, extra=("--window", "530.00003:530.00008", "--device", "0004:00:00.0")
    )
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert xs and all(e["ts"] + e["dur"] >= 530000030 and e["ts"] <= 530000080 for e in xs)
    assert doc["otherData"]["window_ns"] == [530000030000, 530000080000]
    # A device the trace does not show is an error naming the ones it does, as for timeline.
    bad = CliRunner().invoke(
        main, ["export", "--perfetto", str(tmp_path / "x.json"), str(RACE), "--device", "x"]
    )
    assert bad.exit_code == 2 and "no such device" in bad.output and "0004:00:00.0" in bad.output


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 200), st.integers(0, 60)),
        min_size=1,
        max_size=60,
    )
)
@settings(max_examples=80, deadline=None)
def test_nest_leaves_no_partial_overlap(raw: list[tuple[int, int, int]]) -> None:
    df = pl.DataFrame(
        {
            "pid": [1] * len(raw),
            "tid": [t for t, _, _ in raw],
            "start_ts": [a for _, a, _ in raw],
            "end_ts": [a + d for _, a, d in raw],
        },
        schema={"pid": pl.Int64, "tid": pl.Int64, "start_ts": pl.Int64, "end_ts": pl.Int64},
    )
    out = nest(df, ["pid", "tid"])
    assert out.height == df.height
    assert (out["end_ts"] >= out["start_ts"]).all()
    assert (out["end_ts"] <= df["end_ts"]).all()
    events = [
        {"ph": "X", "pid": 1, "tid": t, "ts": float(a), "dur": float(b - a)}
        for t, a, b in out.select("tid", "start_ts", "end_ts").iter_rows()
    ]
    assert not _improper(events)
