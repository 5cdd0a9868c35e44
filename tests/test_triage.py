"""tracetool triage: grouping across logs (format drift included), known issues and
regressions, exit codes, the output formats, and parallel runs giving the same groups."""

from __future__ import annotations

import json
import random
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES

from tracetool import triage
from tracetool.cli import main
from tracetool.errors import InputError

OLD = """\
[  100.000001] ------------[ cut here ]------------
[  100.000002] WARNING: at drivers/iommu/iommu.c:1961 iommu_detach_group+0x6c/0x80()
[  100.000003] Modules linked in: vfio_pci
[  100.000004] Pid: 5082, comm: qemu-system-s39 Not tainted 3.10.0 #1
[  100.000005] Call Trace:
[  100.000006]  [<000000095bb10d28>] iommu_detach_group+0x70/0x80
[  100.000007] ---[ end trace 0000000000000000 ]---
"""
NEW = """\
[  200.000001] ------------[ cut here ]------------
[  200.000002] WARNING: CPU: 0 PID: 5082 at drivers/iommu/iommu.c:1961 iommu_detach_group+0x6c/0x80
[  200.000003] Modules linked in: vfio_pci
[  200.000004] CPU: 0 PID: 5082 Comm: qemu-system-s39 Not tainted 6.1.0 #5
[  200.000005] Hardware name: IBM 3931 A01 782 (LPAR)
[  200.000006] Call Trace:
[  200.000007]  [<000000095bb10d28>] iommu_detach_group+0x70/0x80
[  200.000008] ---[ end trace 0000000000000000 ]---
"""
CLEAN = "[    0.000000] Linux version 6.1.0 (builder@host) (gcc) #1 SMP\n[    1.0] all good\n"


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    d = tmp_path / "ci"
    d.mkdir()
    (d / "run1-old.txt").write_text(OLD)
    (d / "run2-new.txt").write_text(NEW)
    (d / "run3-clean.txt").write_text(CLEAN)
    (d / "run4-race.txt").write_bytes(
        (SAMPLES / "simulated" / "race-v6.0-overlap-warn-dmesg.txt").read_bytes()
    )
    return d


def test_format_drift_falls_into_one_group(logs: Path) -> None:
    got_logs, reports = triage.run([str(logs)])
    groups = triage.group(got_logs, reports)
    (row,) = groups.filter(signature="WARNING in iommu_detach_group").to_dicts()
    assert (row["count"], row["logs"]) == (2, 2)
    assert row["kernels"] == ["3.10.0", "6.1.0"]
    assert row["guilty"] == "iommu_detach_group"
    # The simulated race's log: its WARN, and the rules' findings on its ftrace dump.
    race = set(reports.filter(log=str(logs / "run4-race.txt"))["signature"])
    assert {
        "WARNING in zpci_dma_init_device",
        "release-overlaps-attach",
        "warn-after-overlap",
    } <= race


def write_known(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "known-issues.toml"
    path.write_text(text)
    return path


def test_known_and_regression(logs: Path, tmp_path: Path) -> None:
    known = write_known(
        tmp_path,
        """
[[issue]]
pattern = "iommu_detach_group"
bug = "https://bugs.example/1"
status = "fixed"
fixed_in = "6.1"

[[issue]]
pattern = "zpci_dma_init_device|release-overlaps|warn-after|dma-"
bug = "https://bugs.example/2"
status = "open"

[[issue]]
pattern = "flush-after-release"
bug = "https://bugs.example/3"
status = "fixed"
fixed_in = "6.2"
""",
    )
    issues = triage.load_known(known)
    got_logs, reports = triage.run([str(logs)])
    groups = triage.classify(triage.group(got_logs, reports), issues)
    cls = dict(zip(groups["signature"], groups["class"], strict=True))
    # Fixed in 6.1 and seen on 6.1.0: a regression. Fixed in 6.2, seen on 6.0: known.
    assert cls["WARNING in iommu_detach_group"] == "regression"
    assert cls["flush-after-release"] == "known"
    assert cls["release-overlaps-attach"] == "known"
    assert triage.exit_code(got_logs, groups) == 1
    # Without the regression and the new groups, nothing new: exit 0.
    quiet = groups.filter(groups["class"] == "known")
    assert triage.exit_code(got_logs, quiet) == 0


def test_known_issue_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"#1: a fixed issue needs fixed_in"):
        triage.load_known(
            write_known(tmp_path, '[[issue]]\npattern="x"\nbug="b"\nstatus="fixed"\n')
        )
    with pytest.raises(InputError, match="not a regex"):
        triage.load_known(write_known(tmp_path, '[[issue]]\npattern="("\nbug="b"\nstatus="open"\n'))


def test_outputs(logs: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    junit = runner.invoke(main, ["triage", str(logs), "--format", "junit"])
    assert junit.exit_code == 1
    root = ET.fromstring(junit.stdout)
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "4"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases[str(logs / "run3-clean.txt")].find("failure") is None
    failure = cases[str(logs / "run2-new.txt")].find("failure")
    assert failure is not None and "WARNING in iommu_detach_group" in failure.get("message", "")
    md = runner.invoke(main, ["triage", str(logs), "--format", "markdown"]).stdout
    assert md.startswith("**tracetool triage**: 4 log(s)")
    assert "| new | 2 | 2 | `WARNING in iommu_detach_group` | 3.10.0 6.1.0 |" in md
    doc = json.loads(runner.invoke(main, ["triage", str(logs), "--format", "json"]).stdout)
    assert {g["signature"] for g in doc["groups"]} >= {"WARNING in iommu_detach_group"}
    clean = runner.invoke(main, ["triage", str(logs / "run3-clean.txt")])
    assert clean.exit_code == 0 and "nothing broke" in clean.stdout


def test_order_and_jobs_do_not_change_the_groups(logs: Path) -> None:
    files = sorted(str(p) for p in logs.iterdir())
    base = triage.group(*triage.run(files)).drop("first_seen", "last_seen", "example")
    shuffled = files[:]
    random.Random(3).shuffle(shuffled)
    for order, jobs in ((shuffled, 1), (files, 2)):
        again = triage.group(*triage.run(order, jobs)).drop("first_seen", "last_seen", "example")
        assert again.sort("signature").equals(base.sort("signature"))


def test_missing_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["triage", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such file or directory" in result.output


def test_sarif_history_and_trend(logs: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    history = tmp_path / "history"
    out = runner.invoke(main, ["triage", str(logs), "--format", "sarif", "--history", str(history)])
    assert out.exit_code == 1, out.output
    doc = json.loads(out.stdout)
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(set(ids)) == len(ids)
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        (loc,) = res["locations"]
        assert loc["physicalLocation"]["region"]["startLine"] >= 1
        uri = loc["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("file:///")  # the logs were given as absolute paths
        assert Path(urllib.parse.unquote(uri.removeprefix("file://"))).is_file()
        assert res["level"] == "error"  # no known issues given: everything is new
    runner.invoke(main, ["triage", str(logs / "run2-new.txt"), "--history", str(history)])
    parts = sorted(history.glob("date=*/*.parquet"))
    assert len(parts) == 2
    trend = json.loads(
        runner.invoke(
            main, ["triage", "--history", str(history), "--trend", "--format", "json"]
        ).stdout
    )
    counts = {row["signature"]: row["count"] for row in trend}
    # Two triages: the first saw both drifted WARNs, the second one of them again.
    assert counts["WARNING in iommu_detach_group"] == 3
    missing = runner.invoke(main, ["triage", "--trend"])
    assert missing.exit_code == 2 and "--history" in missing.output


def test_dask_engine_gives_the_local_result(logs: Path, tmp_path: Path) -> None:
    """The per-log work on a Dask LocalCluster of 2 workers, each task writing a
    Parquet partition to shared storage, reduces to exactly the local groups."""
    pytest.importorskip("distributed")
    files = sorted(str(p) for p in logs.iterdir())
    local = triage.group(*triage.run(files))
    shared = tmp_path / "shared"
    on_dask = triage.group(*triage.run_dask(files, None, shared, per_task=1))
    assert len(list(shared.glob("reports-*.parquet"))) == len(files)
    drop = ["first_seen", "last_seen"]
    assert on_dask.drop(drop).sort("signature").equals(local.drop(drop).sort("signature"))


def _kernel_logs() -> list[Path]:
    from conftest import CORPUS

    logs = sorted((SAMPLES / "dmesg").iterdir()) + sorted((SAMPLES / "simulated").glob("*dmesg*"))
    if CORPUS.exists():
        logs += sorted(p for p in (CORPUS / "dmesg").rglob("*") if p.is_file())
    return [p for p in logs if not p.name.endswith(".json")]


def test_a_quiet_log_has_nothing_the_parse_would_find() -> None:
    """The quick check that lets triage skip a log never skips one with a report, a
    dump, an embedded trace or a loss (every sample log and, when present, the corpus)."""
    import polars as pl

    import tracetool

    skipped = 0
    for path in _kernel_logs():
        if not triage.quiet(path):
            continue
        skipped += 1
        trace = tracetool.parse(path, use_cache=False, in_memory=True)
        crashes = trace.table("crashes").collect().height if "crashes" in trace.records else 0
        traced = trace.events.filter(pl.col("event") != "printk").collect().height
        assert (crashes, traced, trace.losses.collect().height) == (0, 0, 0), path
    assert skipped > 0
    # And the check does say no to a log with a report.
    assert triage.quiet(SAMPLES / "dmesg" / "s390-warn-zpci-dma-v6.0.txt") is False
    assert triage.quiet(SAMPLES / "ftrace" / "x86-default.trace.txt") is None  # not a log


def test_a_quiet_log_triages_like_a_parsed_one(tmp_path: Path) -> None:
    log = tmp_path / "clean.txt"
    log.write_text(CLEAN)
    assert triage.quiet(log)
    row, reports = triage.triage_log(str(log))
    assert reports == [] and row["release"] == "6.1.0" and row["error"] is None
