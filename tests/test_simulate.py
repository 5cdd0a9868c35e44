"""The simulator: deterministic bytes, clean parses, ground truth that round-trips
through the parser and stats, and the calibration of docs/domain.md section 9.3."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import tracetool
from tracetool.cli import main
from tracetool.errors import InputError
from tracetool.simulate import DmaOptions, dma_model, simulate_dma
from tracetool.simulate import costs as costs_mod
from tracetool.simulate.dma import SCHEMES

SMALL = {"duration_ms": 6.0, "jobs": 4, "iodepth": 4, "aperture_pages": 256}


def write(tmp_path: Path, name: str = "run.txt", **kw: object) -> tuple[Path, dict[str, object]]:
    out = tmp_path / name
    simulate_dma(DmaOptions(**{**SMALL, **kw}), out)  # type: ignore[arg-type]
    return out, json.loads(out.with_name(out.name + ".truth.json").read_text())


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, _ = write(tmp_path, "a.txt", scheme="fq-percpu", seed=7)
    b, _ = write(tmp_path, "b.txt", scheme="fq-percpu", seed=7)
    c, _ = write(tmp_path, "c.txt", scheme="fq-percpu", seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("env", ["lpar", "zvm"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_truth_round_trips(tmp_path: Path, scheme: str, env: str) -> None:
    """Every scheme parses with no diagnostic, and what stats recovers from the trace
    equals what the model did: I/Os, RPCITs by scope and by caller, unmaps."""
    out, truth = write(tmp_path, scheme=scheme, env=env)
    trace = tracetool.parse(out, use_cache=False)
    assert trace.diagnostics.collect().height == 0
    header = out.read_text().splitlines()[2]
    n = truth["events"]
    assert header == f"# entries-in-buffer/entries-written: {n}/{n}   #P:4"
    assert trace.events.collect().height == n
    s = truth["summary"]
    figures = tracetool.stats(trace)
    (io,) = figures.io.collect().to_dicts()
    assert io["ios"] == s["ios"]
    flushes = figures.flushes.collect().to_dicts()
    if s["rpcit"] == 0:
        assert flushes == []
        return
    (flush,) = flushes
    assert flush["device"] == "0004:00:00.0"
    assert (flush["flushes"], flush["global"], flush["unmaps"]) == (
        s["rpcit"],
        s["rpcit_global"],
        s["unmaps"],
    )
    assert (flush["enomem"], flush["fallback"]) == (s["rpcit_enomem"], s["rpcit_fallback"])
    by_caller: dict[str, int] = {}
    for row in figures.flush_paths.collect().to_dicts():
        by_caller[row["caller"]] = by_caller.get(row["caller"], 0) + row["flushes"]
    assert by_caller == s["rpcit_by_caller"]
    # Each flush the sidecar lists is one RPCIT span with its start, end and range.
    spans = tracetool.timeline(trace.events).spans.filter(kind="flush").collect()
    # The trace has microseconds, rounded as ns2usecs() rounds.
    got = sorted(
        (a // 1000, b // 1000, c)
        for a, b, c in zip(spans["start_ts"], spans["end_ts"], spans["size"], strict=True)
    )
    want = sorted(((f[0] + 500) // 1000, (f[1] + 500) // 1000, f[6]) for f in truth["flushes"])
    assert got == want


@pytest.mark.parametrize("scheme", SCHEMES)
def test_enomem_and_its_global_fallback_round_trip(tmp_path: Path, scheme: str) -> None:
    """A hypervisor that pins at most 3 unmapped pages: the schemes that leave pages
    pinned (lazy, flush queues) see map RPCITs fail with -ENOMEM, each answered by a
    global RPCIT from the same function; stats finds exactly those, strict ones none."""
    kw = {"fq_size": 1 << 20, "fq_timeout_ms": 1000.0} if scheme.startswith("fq-") else {}
    out, truth = write(tmp_path, scheme=scheme, env="zvm", shadow_pages=3, **kw)
    s = truth["summary"]
    assert (s["rpcit_enomem"] > 0) == (scheme not in ("s390-strict", "dma-strict"))
    assert s["rpcit_fallback"] == s["rpcit_enomem"]
    fails = [f for f in truth["flushes"] if f[7] == -12]
    assert len(fails) == s["rpcit_enomem"]
    (flush,) = tracetool.stats(tracetool.parse(out, use_cache=False)).flushes.collect().to_dicts()
    assert (flush["failed"], flush["enomem"], flush["fallback"], flush["global"]) == (
        s["rpcit_enomem"],
        s["rpcit_enomem"],
        s["rpcit_fallback"],
        s["rpcit_global"],
    )


def test_shadow_limit_needs_a_hypervisor(tmp_path: Path) -> None:
    out = tmp_path / "x.txt"
    args = ["simulate", "dma", "--env", "lpar", "--shadow-pages", "4", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "use --env zvm or kvm" in result.output
    assert not out.exists()


def test_lazy_wraps_flush_globally(tmp_path: Path) -> None:
    """With a 1 MiB aperture (256 pages) the lazy scheme wraps and flushes the whole
    aperture from dma_alloc_address; strict never does."""
    _, lazy = write(tmp_path, "lazy.txt", scheme="s390-lazy")
    _, strict = write(tmp_path, "strict.txt", scheme="s390-strict")
    ios = lazy["summary"]["ios"]
    assert lazy["summary"]["rpcit_global"] == ios // 256
    assert lazy["summary"]["rpcit_by_caller"]["dma_alloc_address"] == ios // 256
    assert strict["summary"]["rpcit_global"] == 0
    assert strict["summary"]["rpcit"] == 2 * strict["summary"]["ios"]


def test_flush_queue_fills(tmp_path: Path) -> None:
    _, truth = write(tmp_path, scheme="fq-single", fq_size=50, fq_timeout_ms=1000.0)
    s = truth["summary"]
    assert s["rpcit_global"] == s["unmaps"] // 50
    assert s["rpcit_by_caller"]["s390_iommu_flush_iotlb_all"] == s["unmaps"] // 50


def test_flush_queue_timer(tmp_path: Path) -> None:
    """A queue that never fills is flushed by its timer, in softirq context."""
    out, truth = write(tmp_path, scheme="fq-single", fq_size=1 << 20, fq_timeout_ms=1.0)
    assert truth["summary"]["rpcit_global"] >= 4
    timers = [line for line in out.read_text().splitlines() if "fqtimeout:" in line]
    assert len(timers) == truth["summary"]["rpcit_global"]
    assert all(" ..s1. " in line for line in timers)


# --- calibration (docs/domain.md section 9.3) ------------------------------------------

CAL = {"duration_ms": 1000.0}


@pytest.fixture(scope="module")
def zvm_lazy_iops() -> float:
    return float(dma_model(DmaOptions(scheme="s390-lazy", env="zvm", **CAL))["iops"])


@pytest.mark.parametrize(
    ("kw", "ratio"),
    [
        ({"scheme": "s390-strict"}, 0.5),  # lazy ~2x strict
        ({"scheme": "fq-single", "fq_size": 32768, "fq_timeout_ms": 4000.0}, 0.91),
        ({"scheme": "fq-single", "fq_size": 8192, "fq_timeout_ms": 100.0}, 0.76),
    ],
)
def test_calibration_zvm(zvm_lazy_iops: float, kw: dict[str, object], ratio: float) -> None:
    iops = dma_model(DmaOptions(env="zvm", **CAL, **kw))["iops"]  # type: ignore[arg-type]
    assert iops / zvm_lazy_iops == pytest.approx(ratio, rel=0.10)


def test_calibration_default_per_cpu_queue(zvm_lazy_iops: float) -> None:
    iops = dma_model(DmaOptions(scheme="fq-percpu", env="zvm", **CAL))["iops"]
    assert iops / zvm_lazy_iops < 0.08


def test_calibration_lpar_queue_matches_lazy() -> None:
    opts = {"env": "lpar", "duration_ms": 60.0}
    lazy = dma_model(DmaOptions(scheme="s390-lazy", **opts))["iops"]  # type: ignore[arg-type]
    for scheme in ("fq-percpu", "fq-single"):
        iops = dma_model(DmaOptions(scheme=scheme, **opts))["iops"]  # type: ignore[arg-type]
        assert iops / lazy == pytest.approx(1.0, rel=0.10)


# --- cost table and CLI -------------------------------------------------------------------


def test_cost_table_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "costs.toml"
    text = costs_mod.DEFAULT.read_text().replace("rpcit_ns = 7_000", "rpcit_nss = 7_000")
    bad.write_text(text)
    with pytest.raises(
        InputError, match=r"costs.toml \[env.zvm\]: missing rpcit_ns; unknown rpcit_nss"
    ):
        costs_mod.load(bad)
    bad.write_text("[workload\n")
    with pytest.raises(InputError, match="not valid TOML"):
        costs_mod.load(bad)


def test_a_changed_cost_table_changes_the_run(tmp_path: Path) -> None:
    cheap = tmp_path / "cheap.toml"
    cheap.write_text(costs_mod.DEFAULT.read_text().replace("rpcit_ns = 7_000", "rpcit_ns = 700"))
    opts = DmaOptions(scheme="s390-strict", duration_ms=20.0)
    base = dma_model(opts)["iops"]
    faster = dma_model(opts, costs_mod.load(cheap))["iops"]
    assert faster > 2 * base


def test_cli_writes_trace_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "t.txt"
    result = CliRunner().invoke(
        main, ["simulate", "dma", "--scheme", "dma-strict", "--duration", "3ms", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "t.txt.truth.json").read_text())
    assert truth["kernel"] == "v6.7" and truth["options"]["scheme"] == "dma-strict"
    assert "RPCITs" in result.output
    bad = CliRunner().invoke(main, ["simulate", "dma", "--env", "lapr", "-o", str(out)])
    assert bad.exit_code == 2
    assert "no environment 'lapr'" in bad.output


# --- deconfigure-during-vfio-init -------------------------------------------------------

from tracetool.simulate import RaceOptions, simulate_race  # noqa: E402
from tracetool.simulate.race import ERAS  # noqa: E402

OVERLAP_RULES = {"release-overlaps-attach", "release-overlaps-detach"}


def race(tmp_path: Path, era: str, seed: int, fmt: str = "ftrace", devices: int = 2):
    out = tmp_path / f"race-{era}-{seed}.{fmt}"
    simulate_race(RaceOptions(era=era, seed=seed, devices=devices), out, fmt)
    truth = json.loads(out.with_name(out.name + ".truth.json").read_text())
    trace = tracetool.parse(out, use_cache=False)
    assert trace.diagnostics.collect().height == 0
    return out, truth, trace


def test_race_same_seed_same_bytes(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    simulate_race(RaceOptions(seed=3, devices=2), a)
    simulate_race(RaceOptions(seed=3, devices=2), b)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("seed", [1, 2, 4])
def test_race_truth_round_trips(tmp_path: Path, era: str, seed: int) -> None:
    """The spans, flushes and unlocked overlaps the parser and rules recover equal the
    model's: an overlap finding exactly where release overlapped attach or detach with
    no common lock, on the right device, and none in the eras that prevent it."""
    _, truth, trace = race(tmp_path, era, seed)
    tl = tracetool.timeline(trace.events)
    assert era in tl.era.eras  # inferred from the symbols; v6.0 and v6.1 look alike
    spans = tl.spans.filter(pl.col("kind").is_in(["attach", "detach", "release"])).collect()
    got = sorted(
        zip(spans["device"], spans["kind"], spans["start_ts"], spans["end_ts"], strict=True)
    )
    want = sorted(
        (
            s["device"],
            s["kind"],
            (s["start_ns"] + 500) // 1000 * 1000,
            (s["end_ns"] + 500) // 1000 * 1000,
        )
        for s in truth["spans"]
        if s["kind"] in ("attach", "detach", "release")
    )
    assert got == want
    findings = tracetool.check(trace).collect()
    flagged = sorted(findings.filter(pl.col("rule").is_in(OVERLAP_RULES))["device"])
    unlocked = sorted(o["device"] for o in truth["overlaps"] if not o["common_locks"])
    assert flagged == unlocked
    if era in ("v6.1", "v6.5"):
        assert truth["overlaps"] == [] and findings.height == 0
    per_device: dict[str, int] = {}
    for row in tracetool.stats(trace).flushes.collect().to_dicts():
        per_device[row["device"]] = row["flushes"]
    assert sum(per_device.values()) == len(truth["flushes"])
    assert all(d.endswith(":00:00.0") for d in per_device)


def test_race_hits_in_v60_for_some_seeds_only(tmp_path: Path) -> None:
    hits = [simulate_race(RaceOptions(seed=s), tmp_path / f"{s}.txt")["overlaps"] for s in range(8)]
    assert 0 < sum(1 for h in hits if h) < 8


@pytest.mark.parametrize("seed", [1, 3])
def test_race_warn_comes_with_the_dump(tmp_path: Path, seed: int) -> None:
    """As dmesg, a WARN the race caused is printed with the panic's ftrace dump; the
    rules link it to the overlap (warn-after-overlap)."""
    out, truth, trace = race(tmp_path, "v6.0", seed, "dmesg", devices=1)
    assert truth["warns"] and truth["panic_ns"] is not None
    text = out.read_text()
    assert "WARNING: CPU: 3 PID: 41 at arch/s390/pci/pci_dma.c:592 zpci_dma_init_device" in text
    assert "Dumping ftrace buffer:" in text
    rules = set(tracetool.check(trace).collect()["rule"])
    assert {"release-overlaps-attach", "warn-after-overlap"} <= rules


def test_race_without_warn_has_no_dump(tmp_path: Path) -> None:
    out, truth, _ = race(tmp_path, "v6.5", 1, "dmesg", devices=1)
    assert truth["warns"] == [] and truth["panic_ns"] is None
    text = out.read_text()
    assert "Dumping ftrace buffer:" not in text
    assert "pci 0004:00:00.0: Removing from iommu group 4" in text


def test_race_patch_era_traces_its_lock(tmp_path: Path) -> None:
    out, truth, _ = race(tmp_path, "v6.0+dma_domain_lock", 1, devices=1)
    text = out.read_text()
    assert text.count("dma_domain_lock: (mutex_lock+0x0/0x48)") == sum(
        1 for h in truth["locks"] if h["lock"] == "zdev->dma_domain_lock"
    )
    assert all(o["common_locks"] == ["zdev->dma_domain_lock"] for o in truth["overlaps"])


@pytest.mark.parametrize("fmt", ["trace-cmd", "perf"])
@pytest.mark.parametrize("scenario", ["dma", "race"])
def test_other_layouts_parse_cleanly(tmp_path: Path, scenario: str, fmt: str) -> None:
    """The run as `trace-cmd report` or `perf script` prints it: every line an event,
    the same events at the same times (perf truncates to the µs, ftrace rounds), and
    the same block I/O. Kprobes show raw addresses, as libtraceevent prints them."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    if scenario == "dma":
        opts = DmaOptions(**SMALL, scheme="s390-strict")  # type: ignore[arg-type]
        simulate_dma(opts, a)
        simulate_dma(opts, b, fmt)
    else:
        simulate_race(RaceOptions(seed=1, devices=2), a)
        simulate_race(RaceOptions(seed=1, devices=2), b, fmt)
    text = b.read_text().splitlines()
    if fmt == "trace-cmd":
        assert text[0] == "cpus=4"
    if scenario == "race":
        entry = {
            "trace-cmd": " s390_att:             (95be0ee18) domain=",
            "perf": " probe:s390_iommu_attach_device: (95be0ee18) domain=",
        }[fmt]
        assert any(entry in line for line in text)
    ta, tb = tracetool.parse(a, use_cache=False), tracetool.parse(b, use_cache=False)
    assert tb.diagnostics.collect().height == 0
    ea, eb = ta.events.collect(), tb.events.collect()
    assert eb.height == ea.height
    assert all(abs(x - y) <= 1000 for x, y in zip(ea["ts"], eb["ts"], strict=True))
    if scenario == "dma":
        ios_a = tracetool.stats(ta).io.collect()["ios"].to_list()
        assert tracetool.stats(tb).io.collect()["ios"].to_list() == ios_a
    if fmt == "perf":  # perf names the probed function, so the RPCITs are found too
        truth = json.loads(b.with_name(b.name + ".truth.json").read_text())
        flushes = tracetool.stats(tb).flushes.collect()["flushes"].sum()
        assert flushes == len(truth["flushes"])


@pytest.mark.parametrize("fmt", ["bpftrace", "bpftrace-json"])
def test_bpftrace_layouts(tmp_path: Path, fmt: str) -> None:
    """As the capture scripts print it: the race's lifetime lines give the same unlocked
    overlaps as the truth; the DMA run's latency histograms count every I/O, and each
    I/O's latency falls in the bucket the writer put it in."""
    race_out = tmp_path / "race.txt"
    simulate_race(RaceOptions(seed=1, devices=2), race_out, fmt)
    truth = json.loads(race_out.with_name("race.txt.truth.json").read_text())
    trace = tracetool.parse(race_out, use_cache=False)
    assert trace.diagnostics.collect().height == 0
    assert trace.inputs[0].meta["probes"] == 19  # samples/capture/s390/v6.0.bt
    flagged = tracetool.check(trace).filter(pl.col("rule").is_in(OVERLAP_RULES)).collect()
    assert sorted(flagged["device"]) == sorted(
        o["device"] for o in truth["overlaps"] if not o["common_locks"]
    )
    dma_out = tmp_path / "dma.txt"
    ftrace_out = tmp_path / "dma-ftrace.txt"
    opts = DmaOptions(**SMALL, scheme="fq-single")  # type: ignore[arg-type]
    summary = simulate_dma(opts, dma_out, fmt)
    simulate_dma(opts, ftrace_out)
    trace = tracetool.parse(dma_out, use_cache=False)
    assert trace.diagnostics.collect().height == 0
    hist = trace.table("histograms").collect()
    totals = dict(hist.group_by("map").agg(pl.col("count").sum()).iter_rows())
    assert totals == {"@lat_us": summary["ios"], "@lat_lhist": summary["ios"]}
    # The exact latencies of the same run (its ftrace layout) lie within the bounds
    # the histograms give (to the µs the trace rounds to).
    (io,) = tracetool.stats(tracetool.parse(ftrace_out, use_cache=False)).io.collect().to_dicts()
    for row in tracetool.stats(trace).buckets.collect().to_dicts():
        for q in ("p50", "p90", "p99"):
            exact_us = io[f"lat_{q}"] / 1000
            assert row[f"{q}_lo"] - 1 <= exact_us <= row[f"{q}_hi"] + 1, (row["map"], q)


def test_overwritten_buffer_loss_windows_round_trip(tmp_path: Path) -> None:
    """A ring buffer too small for the run keeps each CPU's newest entries; the parser's
    losses (the header's overwritten count, each CPU's "buffer started" marker) equal
    the truth's, and every RPCIT after a CPU's loss window is still counted."""
    out = tmp_path / "lossy.txt"
    simulate_dma(DmaOptions(**SMALL), out, buffer_events=150)  # type: ignore[arg-type]
    truth = json.loads(out.with_name("lossy.txt.truth.json").read_text())
    lost = truth["losses"]
    assert lost and all(x["lost"] > 0 for x in lost)
    trace = tracetool.parse(out, use_cache=False)
    assert trace.diagnostics.collect().height == 0
    losses = trace.losses.collect()
    (over,) = losses.filter(marker="overwritten").to_dicts()
    assert over["lost"] == sum(x["lost"] for x in lost)
    started = {r["cpu"]: r["end_ts"] for r in losses.filter(marker="buffer-started").to_dicts()}
    window_end = {x["cpu"]: x["first_kept_us"] * 1000 for x in lost}
    first_cpu = min(window_end, key=lambda c: window_end[c])
    assert over["end_ts"] == window_end[first_cpu]
    assert {c: e for c, e in window_end.items() if c != first_cpu} == started
    kept = [f for f in truth["flushes"] if (f[0] + 500) // 1000 * 1000 >= window_end[f[2]]]
    flushes = tracetool.stats(trace).flushes.collect()["flushes"].sum()
    assert flushes == len(kept)
    header = out.read_text().splitlines()[2]
    kept_n = 150 * len(lost)
    assert header == f"# entries-in-buffer/entries-written: {kept_n}/{truth['events']}   #P:4"


def test_function_graph_layout(tmp_path: Path) -> None:
    """The race as function_graph prints it (abstime, proc): exact spans for the traced
    calls at the truth's times, leaves for entry-only calls, tracepoints as comments;
    with no probe arguments the device is unknown, so an overlap is inconclusive."""
    out = tmp_path / "graph.txt"
    simulate_race(RaceOptions(seed=1), out, "function-graph")
    truth = json.loads(out.with_name("graph.txt.truth.json").read_text())
    text = out.read_text().splitlines()
    assert text[0] == "# tracer: function_graph"
    assert any(
        line.endswith("|  /* add_device_to_group: IOMMU: groupID=4 device=0004:00:00.0 */")
        for line in text
    )
    trace = tracetool.parse(out, use_cache=False)
    assert trace.diagnostics.collect().height == 0
    spans = (
        tracetool.timeline(trace.events)
        .spans.filter(pl.col("kind").is_in(["attach", "release"]))
        .collect()
    )
    got = sorted(
        zip(spans["kind"], spans["start_ts"] // 1000, spans["end_ts"] // 1000, strict=True)
    )
    want = sorted(
        (s["kind"], s["start_ns"] // 1000, s["end_ns"] // 1000)
        for s in truth["spans"]
        if s["kind"] in ("attach", "release")
    )
    assert got == want
    assert set(spans["exact"]) == {True}
    findings = tracetool.check(trace).filter(pl.col("rule").is_in(OVERLAP_RULES)).collect()
    assert findings.height == len(truth["overlaps"]) == 1
    assert findings["status"].to_list() == ["inconclusive"]


def test_dma_run_as_sysrq_dump(tmp_path: Path) -> None:
    """With no crash, the DMA run reaches the kernel log through SysRq-z: the dump holds
    every event, and stats counts the truth's RPCITs and I/Os from it."""
    out = tmp_path / "dma.log"
    summary = simulate_dma(DmaOptions(**SMALL, scheme="s390-strict"), out, "dmesg")  # type: ignore[arg-type]
    text = out.read_text().splitlines()
    assert text[0].endswith("] sysrq: Dump ftrace buffer")
    assert text[1].endswith("] Dumping ftrace buffer:")
    trace = tracetool.parse(out, use_cache=False)
    assert trace.diagnostics.collect().height == 0
    truth = json.loads(out.with_name("dma.log.truth.json").read_text())
    # Every traced event, plus the log's own "sysrq: Dump ftrace buffer" line.
    assert trace.events.collect().height == truth["events"] + 1
    figures = tracetool.stats(trace)
    assert figures.flushes.collect()["flushes"].to_list() == [summary["rpcit"]]
    assert figures.io.collect()["ios"].to_list() == [summary["ios"]]


from tracetool.simulate import FORMATS  # noqa: E402


@pytest.mark.parametrize("fmt", FORMATS["race"])
@pytest.mark.parametrize("era", ERAS)
def test_every_era_in_every_format_parses_cleanly(tmp_path: Path, era: str, fmt: str) -> None:
    out = tmp_path / "race.out"
    simulate_race(RaceOptions(era=era, seed=2, devices=2), out, fmt)
    trace = tracetool.parse(out, use_cache=False)
    assert trace.diagnostics.collect().height == 0
    assert trace.events.collect().height > 0


@pytest.mark.parametrize("fmt", FORMATS["dma"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_in_every_format_parses_cleanly(tmp_path: Path, scheme: str, fmt: str) -> None:
    out = tmp_path / "dma.out"
    opts = DmaOptions(scheme=scheme, duration_ms=1.0, jobs=2, iodepth=2, fq_size=8)
    simulate_dma(opts, out, fmt)
    trace = tracetool.parse(out, use_cache=False)
    assert trace.diagnostics.collect().height == 0
    assert trace.events.collect().height > 0
