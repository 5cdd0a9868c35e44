"""The command line: output, exit codes, help examples."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from click.testing import CliRunner
from conftest import ROOT, SAMPLES

from tracetool.cli import main

SAMPLE = SAMPLES / "ftrace" / "x86-default.trace.txt"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_parse_prints_table_and_accounting() -> None:
    code, out, err = run("parse", str(SAMPLE), "--limit", "5")
    assert code == 0
    assert out.splitlines()[0].split() == ["line", "ts", "cpu", "task", "event", "body"]
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "all lines accounted" in err


def test_parse_writes_outputs(tmp_path: Path) -> None:
    for suffix in (".parquet", ".csv", ".json", ".ndjson"):
        out = tmp_path / f"events{suffix}"
        code, _, err = run("parse", str(SAMPLE), "-o", str(out), "--events", "sched_switch")
        assert code == 0, err
        assert out.stat().st_size > 0
    assert pl.read_parquet(tmp_path / "events.parquet")["event"].unique().to_list() == [
        "sched_switch"
    ]
    assert (
        json.loads((tmp_path / "events.ndjson").read_text().splitlines()[0])["event"]
        == "sched_switch"
    )


def test_strict_fails_on_diagnostics(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(SAMPLE.read_text() + "garbage\n")
    assert run("parse", str(path))[0] == 0
    code, _, err = run("parse", str(path), "--strict")
    assert code == 2
    assert f"{path}:71: no context prefix" in err


def test_errors_exit_2_with_hints(tmp_path: Path) -> None:
    code, _, err = run("parse", "--format", "ftrac", str(SAMPLE))
    assert code == 2 and 'did you mean "ftrace"' in err
    code, _, err = run("parse", str(tmp_path / "missing.txt"))
    assert code == 2 and "no such file" in err
    prose = tmp_path / "prose.txt"
    prose.write_text("hello\n")
    code, _, err = run("parse", str(prose))
    # Every known format is listed (whatever other formats exist besides these).
    assert code == 2 and "known formats: " in err
    formats = ("bpftrace", "dmesg", "ftrace", "function-graph", "perf", "trace-cmd")
    assert all(f in err for f in formats)


def test_list_formats_and_events() -> None:
    code, out, _ = run("list", "formats")
    assert code == 0 and "ftrace" in out and "trace-cmd" in out
    code, out, _ = run("list", "events", str(SAMPLE))
    assert code == 0 and "sched_switch" in out and "declared" in out


def test_help_ends_with_sample_examples() -> None:
    for command in (["--help"], ["parse", "--help"], ["list", "events", "--help"]):
        code, out, _ = run(*command)
        assert code == 0
        examples = [
            w for line in out.splitlines() for w in line.split() if w.startswith("samples/")
        ]
        assert examples, command
        for example in examples:
            assert (ROOT / example).exists(), example


def test_counter_clock_is_called_out() -> None:
    code, _, err = run(
        "parse", str(SAMPLES / "ftrace" / "x86-clock-counter.trace.txt"), "--limit", "1"
    )
    assert code == 0
    assert "timestamps are raw clock counts" in err


def test_list_events_says_how_fields_are_typed() -> None:
    code, out, _ = run("list", "events", str(SAMPLES / "ftrace" / "s390-rpcit-flush.txt"))
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert rows["rpcit"][-1] == "probe"
    assert rows["block_rq_issue"][-1] == "declared"
    assert rows["rpcit"][4] == "620.000100"  # first time, as seconds
