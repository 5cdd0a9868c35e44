"""The rule catalogue and the rule engine: every rule triggers on its trigger samples and
stays silent on its clean ones; rule files are validated; outputs are well formed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest
from conftest import GOLDENS, ROOT, SAMPLES
from test_cli import run

import tracetool
from tracetool.check import run as run_check
from tracetool.errors import CatalogueError
from tracetool.rules import load_rule, rules

RULE_SAMPLES = sorted((SAMPLES / "rules").glob("*/*.txt"))
RACE = SAMPLES / "ftrace" / "s390-kprobe-race-v6.0.txt"


def findings_of(path: Path) -> list[dict[str, object]]:
    """Findings with evidence paths relative to the project, as a user in it sees them."""
    result = run_check(tracetool.parse(path.relative_to(ROOT), use_cache=False))
    return result.findings.drop("file").to_dicts()


def test_every_rule_has_trigger_and_clean_samples() -> None:
    for rule_id in rules():
        folder = SAMPLES / "rules" / rule_id
        assert list(folder.glob("trigger-*.txt")), f"{rule_id} has no trigger sample"
        assert list(folder.glob("clean-*.txt")), f"{rule_id} has no clean sample"


@pytest.fixture(autouse=True)
def _in_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("path", RULE_SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rule_sample(path: Path, update_goldens: bool) -> None:
    found = findings_of(path)
    hits = {f["rule"] for f in found if f["status"] == "finding"}
    if path.name.startswith("trigger-"):
        assert path.parent.name in hits
    else:
        assert path.parent.name not in hits
    golden = GOLDENS / "check" / path.parent.name / (path.name + ".golden")
    got = "".join(json.dumps(f, sort_keys=True) + "\n" for f in found)
    if update_goldens or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got)
        if not update_goldens:
            pytest.fail(f"{golden} did not exist; written now, review and commit it")
    assert got == golden.read_text()


def test_race_sample_findings() -> None:
    found = findings_of(RACE)
    by_rule = {f["rule"]: f for f in found}
    overlap = by_rule["release-overlaps-attach"]
    assert overlap["device"] == "0004:00:00.0" and overlap["status"] == "finding"
    assert overlap["dur"] == 31_000
    assert "kmcheck-41" in str(overlap["message"]) and "qemu-system-s39-5082" in str(
        overlap["message"]
    )
    assert overlap["evidence"] == [
        f"samples/ftrace/s390-kprobe-race-v6.0.txt:{n}" for n in (16, 19, 21, 23, 40, 43, 46, 47)
    ]
    assert by_rule["release-overlaps-detach"]["status"] == "finding"


def write_rule(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "my-rule.toml"
    path.write_text(
        'title = "t"\nseverity = "error"\ndescription = "d"\nreferences = ["r"]\n'
        'eras = ["all"]\n' + body
    )
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('kind = "overlp"\na = "kind = \'x\'"\nb = "kind = \'y\'"', 'did you mean "overlap"'),
        ('kind = "overlap"\na = "knd = \'x\'"\nb = "kind = \'y\'"', 'unknown column "knd"'),
        ('kind = "overlap"\na = "kind = \'x\'"\nbb = "kind = \'y\'"', 'unknown key "bb"'),
        ('kind = "overlap"\na = "kind = \'x\'"', 'missing key "b"'),
        ('kind = "overlap"\na = "kind = = 1"\nb = "kind = \'y\'"', "not a valid SQL"),
        (
            'kind = "missing"\nfirst = "kind = \'x\'"\nthen = "kind = \'y\'"\nwithin = "3 parsecs"',
            "not a duration",
        ),
        (
            'kind = "ranges"\nmap = "kind = \'iommu_map\'"\nunmap = "kind = \'iommu_unmap\'"\n'
            'check = "unmaped"',
            'did you mean "unmapped"',
        ),
        (
            'kind = "ranges"\nmap = "kind = \'iommu_map\'"\nunmap = "kind = \'iommu_unmap\'"\n'
            'check = "live"',
            'check = "live" needs',
        ),
    ],
)
def test_rule_validation(tmp_path: Path, body: str, message: str) -> None:
    path = write_rule(tmp_path, body)
    with pytest.raises(CatalogueError, match=message) as err:
        load_rule(path)
    assert str(path) in str(err.value)


def test_user_rule_dir_and_missing_kind(tmp_path: Path) -> None:
    write_rule(
        tmp_path,
        'kind = "missing"\nfirst = "kind = \'attach\'"\nthen = "kind = \'detach\'"\n'
        'within = "1ms"\n',
    )
    result = run_check(tracetool.parse(RACE), rule_dirs=(str(tmp_path),), only=("my-rule",))
    rows = result.findings.to_dicts()
    # The 512 s attach is never detached within 1 ms; the 531 s one is (531.000126).
    assert [r["ts"] for r in rows] == [512_104_420_000]
    assert "was not followed by" in rows[0]["message"]


def test_cli_check_exit_codes_and_formats(tmp_path: Path) -> None:
    trigger = SAMPLES / "rules" / "double-release" / "trigger-v6.0-remove-and-deconfigure.txt"
    clean = SAMPLES / "rules" / "double-release" / "clean-v6.0-replugged.txt"
    code, out, _ = run("check", str(trigger))
    assert code == 1 and "double-release" in out
    # Only a single path:lines token that no wrap can split may pass 80 columns.
    assert all(len(line) <= 80 or " " not in line.strip() for line in out.splitlines())
    code, out, _ = run("check", str(clean))
    assert code == 0 and "no findings" in out
    code, out, _ = run("check", str(trigger), "--fail-on", "error", "--only", "dma-init-in-release")
    assert code == 0
    code, out, _ = run("check", str(trigger), "--format", "json")
    assert json.loads(out)["findings"][0]["rule"] == "double-release"
    junit = tmp_path / "out.xml"
    code, _, _ = run("check", str(trigger), "--format", "junit", "-o", str(junit))
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and int(root.get("failures", "0")) == 1
    code, out, _ = run("check", str(trigger), "--format", "sarif")
    doc = json.loads(out)
    assert doc["version"] == "2.1.0" and doc["runs"][0]["results"][0]["ruleId"] == "double-release"
    code, _, err = run("check", str(trigger), "--only", "double-relase")
    assert code == 2 and 'did you mean "double-release"' in err
    code, _, err = run("check", str(trigger), "--kernel", "banana")
    assert code == 2 and "expected a version" in err


def test_cli_list_rules() -> None:
    code, out, _ = run("list", "rules")
    assert code == 0
    assert {line.split()[0] for line in out.splitlines()[2:]} == set(rules())


def test_rule_samples_match_their_renderer() -> None:
    import sys

    sys.path.insert(0, str(SAMPLES / "capture"))
    try:
        import make_rule_samples
    finally:
        sys.path.pop(0)
    assert make_rule_samples.main(["--check"]) == 0


def test_loss_in_window_makes_a_finding_inconclusive(tmp_path: Path) -> None:
    text = (
        SAMPLES / "rules" / "release-overlaps-attach" / "trigger-v6.0-release-inside-attach.txt"
    ).read_text()
    lines = text.splitlines(keepends=True)
    # trace_pipe-style marker right before the release's entry on CPU 3
    at = next(i for i, line in enumerate(lines) if "s390_rel:" in line)
    lines.insert(at, "CPU:3 [LOST 12 EVENTS]\n")
    path = tmp_path / "lost.txt"
    path.write_text("".join(lines))
    result = run_check(tracetool.parse(path, use_cache=False), only=("release-overlaps-attach",))
    (row,) = result.findings.to_dicts()
    assert row["status"] == "inconclusive" and "events were lost" in row["message"]
    code, _, _ = run("check", str(path), "--only", "release-overlaps-attach")
    assert code == 3


def test_traces_without_device_identity_give_only_inconclusive_hits() -> None:
    for path in (
        SAMPLES / "function-graph" / "s390-funcgraph-abstime-proc.txt",
        SAMPLES / "ftrace" / "s390-function-tracer.txt",
    ):
        rows = findings_of(path)
        assert rows, path
        assert {r["device"] for r in rows} == {"unknown"}
        assert {r["status"] for r in rows} == {"inconclusive"}
        assert all("may concern different devices" in str(r["message"]) for r in rows)
    # the function tracer's untraced returns: the release's own nested detach is not "after"
    rows = findings_of(SAMPLES / "ftrace" / "s390-function-tracer.txt")
    assert all("kmcheck-41) started" not in str(r["message"]) for r in rows)
    code, _, _ = run("check", str(SAMPLES / "ftrace" / "s390-function-tracer.txt"))
    assert code == 3


def test_cli_list_devices() -> None:
    path = SAMPLES / "rules" / "release-overlaps-attach" / "clean-v6.0-other-device.txt"
    code, out, err = run("list", "devices", str(path))
    assert code == 0 and "kernel era" in err
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [(r[0], r[1]) for r in rows] == [
        ("0004:00:00.0", "exact,inferred"),
        ("0005:00:00.0", "exact,inferred"),
    ]


def test_a_directory_of_inputs_checks_each_with_its_own_era() -> None:
    """samples/rules/ mixes v6.0 and v6.5 traces: the v6.5 one must not make the v6.0
    ones look serialised, and every trigger still fires in its own file."""
    result = run_check(tracetool.parse(Path("samples/rules"), use_cache=False))
    assert result.era.how == "per-input"
    assert result.eras[
        "samples/rules/release-overlaps-detach/clean-v6.5-release-under-group-mutex.txt"
    ].eras == ("v6.5",)
    hits = {
        (
            r["rule"],
            Path(r["evidence"][0].rpartition(":")[0]).parent.name,
            Path(r["evidence"][0]).name.split(":")[0],
        )
        for r in result.findings.filter(pl.col("status") == "finding").to_dicts()
    }
    for trigger in (SAMPLES / "rules").glob("*/trigger-*.txt"):
        assert (trigger.parent.name, trigger.parent.name, trigger.name) in hits, trigger
    for clean in (SAMPLES / "rules").glob("*/clean-*.txt"):
        assert (clean.parent.name, clean.parent.name, clean.name) not in hits, clean


def test_follows_rule_names_existing_plain_rules(tmp_path: Path) -> None:
    follows = 'kind = "follows"\nthen = "kind = \'crash\'"\nwithin = "1s"\n'
    cases = [
        ('after = ["no-such-rule"]\n', 'after: unknown rule "no-such-rule"'),
        ('after = ["warn-after-overlap"]\n', "is itself a follows rule"),
        ("after = []\n", "name at least one rule"),
    ]
    for i, (after, message) in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        write_rule(folder, follows + after)
        with pytest.raises(CatalogueError, match=message):
            rules((folder,))


WARN = SAMPLES / "rules" / "warn-after-overlap" / "trigger-v6.0-warn-in-race-dmesg.txt"


def test_crash_report_is_a_span_on_the_device_its_task_worked_on() -> None:
    trace = tracetool.parse(WARN, use_cache=False)
    spans = tracetool.timeline(trace.events, crashes=trace.table("crashes")).spans.collect()
    crashes = spans.filter(pl.col("kind") == "crash")
    assert crashes["func"].to_list() == ["WARNING in zpci_dma_init_device"]
    crash = crashes.row(0, named=True)
    assert (crash["device"], crash["device_how"], crash["pid"]) == ("0004:00:00.0", "inferred", 41)
    assert "kmcheck-41 ran s390_iommu_detach_device on it" in crash["device_why"]
    # The report and the panic_on_warn panic after it.
    assert crash["evidence"][0].endswith("dmesg.txt:1") and len(crash["evidence"]) == 17


def test_crash_of_a_task_with_no_device_stays_unattributed(tmp_path: Path) -> None:
    text = WARN.read_text().replace("PID: 41", "PID: 777").replace("kmcheck", "udevadm", 1)
    path = tmp_path / "other-task.txt"
    path.write_text(text)
    trace = tracetool.parse(path, use_cache=False)
    spans = tracetool.timeline(trace.events, crashes=trace.table("crashes")).spans.collect()
    crash = spans.filter(pl.col("kind") == "crash").row(0, named=True)
    assert crash["device"] is None and crash["pid"] == 777
    assert run_check(trace, only=("warn-after-overlap",)).findings.is_empty()


def test_crash_in_a_log_beside_the_trace(tmp_path: Path) -> None:
    """The race in a trace file, the WARN in a separate kernel log on the same clock."""
    log = tmp_path / "dmesg.txt"
    log.write_text(
        "".join(
            line + "\n"
            for line in WARN.read_text().splitlines()
            if "Dumping" not in line and "-----------------" not in line and "us" not in line[15:40]
        )
    )
    trace = tracetool.parse([RACE, log], use_cache=False)
    assert trace.table("crashes").collect().height == 1
    found = run_check(trace, only=("warn-after-overlap",)).findings
    # The race sample's release (531.000080-531.000120) overlaps attach; the log's WARN
    # by kmcheck-41 at 531.000117 falls inside it.
    assert found["status"].to_list() == ["finding"]
    assert any(e.endswith("dmesg.txt:16") for e in found["evidence"][0])


GRAPH_LOCKS = """\
# tracer: function_graph
#
#     TIME        CPU  TASK/PID         DURATION                  FUNCTION CALLS
#      |          |     |    |           |   |                     |   |   |   |
  530.000001 |   0)  qemu-sy-5082  |   0.500 us    |  mutex_lock();
  530.000002 |   0)  qemu-sy-5082  |               |  s390_iommu_attach_device() {
  530.000010 |   3)   kmcheck-41   |   0.500 us    |  mutex_lock();
  530.000011 |   3)   kmcheck-41   |               |  s390_iommu_release_device() {
  530.000040 |   3)   kmcheck-41   | + 29.000 us   |  }
  530.000041 |   3)   kmcheck-41   |   0.500 us    |  mutex_unlock();
  530.000050 |   0)  qemu-sy-5082  | + 48.000 us   |  }
  530.000051 |   0)  qemu-sy-5082  |   0.500 us    |  mutex_unlock();
"""


def test_function_graph_mutexes_are_holds_of_an_unidentified_lock() -> None:
    """function_graph shows mutex_lock()/mutex_unlock() but not which mutex: the holds
    are "mutex@?" and pair as they nest; an overlap where both sides hold such a mutex
    may be serialized by it, so it is inconclusive, never a proven race."""
    trace = tracetool.parse_text(GRAPH_LOCKS, name="graph.txt")
    spans = tracetool.timeline(trace.events).spans.collect()
    holds = spans.filter(pl.col("kind") == "lock")
    assert holds["lock"].to_list() == ["mutex@?", "mutex@?"]
    release = spans.filter(pl.col("kind") == "release").row(0, named=True)
    assert "mutex@?" in release["lockset"]
    found = tracetool.check(trace).collect()
    race = found.filter(pl.col("rule") == "release-overlaps-attach")
    assert race.height == 1 and race["status"][0] == "inconclusive"
    assert "both held a mutex the trace does not identify" in race["message"][0]
