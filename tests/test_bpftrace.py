"""bpftrace text and -f json output: inline snippets for every structure, the reasons
given for lines that are not understood, extra printf declarations, and probe
declarations feeding the timeline (properties: test_bpftrace_properties.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import tracetool
from tracetool import bpftrace, inputs
from tracetool.errors import CatalogueError
from tracetool.printf_spec import with_printf_formats

BAR = "|" + " " * 52 + "|"


def parse(text: str, format: str | Any = "bpftrace") -> tracetool.Trace:
    return tracetool.parse_text(text, format=format)


def rows(trace: tracetool.Trace, table: str) -> list[dict[str, Any]]:
    frame = {"events": trace.events, "diagnostics": trace.diagnostics, "losses": trace.losses}
    lf = frame[table] if table in frame else trace.table(table)
    return lf.collect().to_dicts()


def args(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row["args"].items() if v is not None}


def bucket(label: str, count: int, width: int = 0) -> str:
    bar = "@" * width
    return f"{label:<16}{count:>8} |{bar:<52}|"


# --- text: headers, printf, time ----------------------------------------------------


@pytest.mark.parametrize(
    ("first", "probes"), [("Attaching 7 probes...", 7), ("Attached 1 probe", 1)]
)
def test_attach_line_is_a_header_with_the_probe_count(first: str, probes: int) -> None:
    trace = parse(f"{first}\nhello\n")
    (info,) = trace.inputs
    assert info.meta["probes"] == probes
    assert info.counts == {"events": 1, "records": 0, "headers": 1, "losses": 0, "diagnostics": 0}


def test_declared_printf_is_typed_and_fills_ts_pid_comm() -> None:
    trace = parse(
        "Attaching 2 probes...\n"
        "4215902011873 41 kmcheck release_enter dev=0x8f3a40c8\n"
        "4215902040666 41 kmcheck release_exit dur=28793\n"
        "Tracing... Hit Ctrl-C to end.\n"
    )
    enter, leave, other = rows(trace, "events")
    assert (enter["event"], enter["ts"], enter["pid"], enter["comm"]) == (
        "release_enter",
        4215902011873,
        41,
        "kmcheck",
    )
    assert args(enter)["dev"] == 0x8F3A40C8
    assert args(leave)["dur_ns"] == 28793
    assert (other["event"], other["body"], other["ts"]) == (
        "printf",
        "Tracing... Hit Ctrl-C to end.",
        None,
    )
    assert trace.inputs[0].meta["timestamps"] == "nsecs"


def test_comm_with_spaces_and_both_pid_and_tid() -> None:
    trace = parse("1000 77 kworker/u64:2 probe dev=0x10\n2000 fio job pid=3112 rwbs=WS sector=8\n")
    probe, issue = rows(trace, "events")
    assert (probe["pid"], probe["comm"]) == (77, "kworker/u64:2")
    assert (issue["event"], issue["comm"], issue["pid"]) == ("rq_issue", "fio job", 3112)


def test_time_lines_set_the_wall_clock_and_a_time_prefix_is_stripped() -> None:
    trace = parse(
        "Attaching 1 probe...\n"
        "10:18:05\n"
        "exec pid=14996 /bin/bash\n"
        "10:18:06 exec pid=14997 /usr/bin/mkdir\n"
        "10:18:12.%f tick\n"
        "09:56:19 @op[flush_all]: 12\n"
    )
    first, second, tick = rows(trace, "events")
    assert first["ts"] == (10 * 3600 + 18 * 60 + 5) * 10**9
    assert (second["body"], second["ts"]) == (
        "exec pid=14997 /usr/bin/mkdir",
        (36000 + 1086) * 10**9,
    )
    assert (tick["body"], tick["ts"]) == ("tick", (36000 + 1092) * 10**9)  # "%f" counts as .0
    (op,) = rows(trace, "maps")
    assert (op["ts"], op["keys"], op["num"]) == (
        (9 * 3600 + 56 * 60 + 19) * 10**9,
        ["flush_all"],
        12,
    )
    assert trace.inputs[0].meta["timestamps"] == "wall-clock"


def test_events_with_their_own_clock_do_not_take_the_wall_clock() -> None:
    trace = parse("10:00:00\n1000 1 a probe dev=0x1\nplain line\n")
    _, plain = rows(trace, "events")
    assert plain["ts"] is None


# --- text: maps ------------------------------------------------------------------------


def test_map_dumps_scalar_keyed_and_multi_key() -> None:
    trace = parse(
        "@alloc: 178437\n\n@rc[-12]: 3\n@rc[0]: 178434\n\n@fsync[dd, 14998]: 1\n\n@s: a b\n"
    )
    got = [(r["map"], r["keys"], r["value"], r["num"], r["stat"]) for r in rows(trace, "maps")]
    assert got == [
        ("@alloc", [], "178437", 178437, None),
        ("@rc", ["-12"], "3", 3, None),
        ("@rc", ["0"], "178434", 178434, None),
        ("@fsync", ["dd", "14998"], "1", 1, None),
        ("@s", [], "a b", None, None),
    ]
    assert trace.inputs[0].counts["records"] == 5


@pytest.mark.parametrize(
    ("key", "keys"),
    [
        ('"a, b", 3', ['"a, b"', "3"]),
        ("[1, 2], foo", ["[1, 2]", "foo"]),
        ("(1, (2, 3)), bar", ["(1, (2, 3))", "bar"]),
        ("a,b, c", ["a,b", "c"]),
        (
            "0xffff8f3a40c8, s390_iommu_attach_device",
            ["0xffff8f3a40c8", "s390_iommu_attach_device"],
        ),
    ],
)
def test_map_keys_split_outside_quotes_and_brackets(key: str, keys: list[str]) -> None:
    (row,) = rows(parse(f"@m[{key}]: 1\n"), "maps")
    assert row["keys"] == keys


def test_stats_value_is_one_row_per_statistic() -> None:
    trace = parse("@rpcit_by_size[global]: count 12, average 48211, total 578532\n@avg: 42\n")
    got = [(r["keys"], r["stat"], r["num"]) for r in rows(trace, "maps")]
    assert got == [
        (["global"], "count", 12),
        (["global"], "average", 48211),
        (["global"], "total", 578532),
        ([], None, 42),
    ]


def test_kstack_map_key_is_one_key_of_frames() -> None:
    trace = parse(
        "@[\n        zpci_refresh_trans+0\n        s390_iommu_iotlb_sync+108\n]: 18234\n\n"
    )
    (row,) = rows(trace, "maps")
    assert row["keys"] == ["zpci_refresh_trans+0\ns390_iommu_iotlb_sync+108"]
    assert (row["line"], row["num"]) == (4, 18234)
    assert trace.inputs[0].counts["records"] == 4


def test_kstack_key_with_a_second_key_and_a_histogram() -> None:
    text = "\n".join(
        [
            "@usecs[nvme0, ",
            "    blk_account_io_start+1",
            "    submit_bio+115",
            "]:",
            bucket("[64K, 128K)", 1, 52),
            "",
        ]
    )
    (row,) = rows(parse(text), "histograms")
    assert row["keys"] == ["nvme0", "blk_account_io_start+1\nsubmit_bio+115"]
    assert (row["lower"], row["upper"], row["count"]) == (65536, 131072, 1)


# --- text: histograms and tseries ----------------------------------------------------


def test_hist_block_bounds_suffixes_and_single_buckets() -> None:
    text = "\n".join(
        [
            "@rpcit_ns:",
            bucket("(..., 0)", 1),
            bucket("[0]", 2),
            bucket("[1]", 0),
            bucket("[2, 4)", 5),
            bucket("[512, 1K)", 125),
            bucket("[1M, 2M)", 3),
            bucket("[4G, 8G)", 1),
            "",
        ]
    )
    got = [(r["lower"], r["upper"], r["count"], r["func"]) for r in rows(parse(text), "histograms")]
    assert got == [
        (None, 0, 1, "hist"),
        (0, 1, 2, "hist"),
        (1, 2, 0, "hist"),
        (2, 4, 5, "hist"),
        (512, 1024, 125, "hist"),
        (1 << 20, 2 << 20, 3, "hist"),
        (4 << 30, 8 << 30, 1, "hist"),
    ]


def test_lhist_block_with_open_buckets_and_a_keyed_header() -> None:
    text = "\n".join(
        [
            "@lat[nvme0n1]:",
            bucket("(..., 0)", 1),
            bucket("[0, 100)", 9),
            bucket("[100, 200)", 0),
            bucket("[200, ...)", 2),
            "",
        ]
    )
    got = [(r["keys"], r["lower"], r["upper"], r["func"]) for r in rows(parse(text), "histograms")]
    assert got == [
        (["nvme0n1"], None, 0, "lhist"),
        (["nvme0n1"], 0, 100, "lhist"),
        (["nvme0n1"], 100, 200, "lhist"),
        (["nvme0n1"], 200, None, "lhist"),
    ]


def test_old_lowercase_suffix_and_fractional_buckets() -> None:
    text = "@h:\n" + bucket("[512, 1k)", 3) + "\n" + bucket("[1.5K, 2K)", 1) + "\n"
    got = [(r["lower"], r["upper"]) for r in rows(parse(text), "histograms")]
    assert got == [(512, 1024), (1536, 2048)]


def test_tseries_rows_go_to_maps() -> None:
    text = "\n".join(
        [
            "@a[one]:",
            "             0                                                   5",
            "hh:mm:ss.ms  |___________________________________________________|",
            "10:00:00.000 *                                                   | 0",
            "10:00:00.100 |                                                   * 5",
            "10:00:00.200 |                                                   | -",
            "             v___________________________________________________v",
            "             0                                                   5",
            "",
        ]
    )
    trace = parse(text)
    got = [(r["keys"], r["ts"], r["value"], r["num"], r["stat"]) for r in rows(trace, "maps")]
    assert got == [
        (["one"], 36000 * 10**9, "0", 0, "tseries"),
        (["one"], 36000 * 10**9 + 100_000_000, "5", 5, "tseries"),
        (["one"], 36000 * 10**9 + 200_000_000, "-", None, "tseries"),
    ]
    assert trace.inputs[0].accounted() and trace.inputs[0].counts["diagnostics"] == 0


# --- text: stacks, losses, prose, diagnostics ----------------------------------------


def test_kstack_after_a_printf_line_is_its_stack() -> None:
    text = (
        "3092746208587 dd pid=15096 rwbs=WS sector=50425856\n"
        "\n"
        "        blk_mq_start_request+207\n"
        "        virtio_queue_rq+67\n"
        "\n"
        "next line\n"
    )
    trace = parse(text)
    issue, nxt = rows(trace, "events")
    assert issue["stack"] == ["blk_mq_start_request+207", "virtio_queue_rq+67"]
    assert nxt["stack"] is None
    assert trace.inputs[0].counts == {
        "events": 2,
        "records": 2,
        "headers": 2,
        "losses": 0,
        "diagnostics": 0,
    }


def test_lost_events_are_losses_with_their_count() -> None:
    trace = parse("1 1 a probe dev=0x1\nLost 58 events\n2 1 a probe dev=0x1\n")
    (loss,) = rows(trace, "losses")
    assert (loss["line"], loss["lost"], loss["cpu"]) == (2, 58, None)


def test_prose_of_an_example_document_is_a_header() -> None:
    text = (
        "Demonstrations of biolatency, the Linux BPF/bpftrace version.\n"
        "\n"
        "# ./biolatency.bt\n"
        "Attached 3 probes\n"
        "Tracing block device I/O... Hit Ctrl-C to end.\n"
        "^C\n"
        "\n"
        "@usecs:\n" + bucket("[256, 512)", 2) + "\n"
        "\n"
        "While tracing, this shows that 426 block I/O had a latency of between 1K and 2K\n"
        "usecs (1024 and 2048 microseconds).\n"
    )
    trace = parse(text)
    (event,) = rows(trace, "events")
    assert event["body"] == "Tracing block device I/O... Hit Ctrl-C to end."
    assert len(rows(trace, "histograms")) == 1
    assert trace.inputs[0].counts["headers"] == 9


def test_without_a_shell_prompt_text_stays_printf() -> None:
    trace = parse("While tracing, this shows that 426 block I/O had a latency\n\nmore\n")
    assert [r["event"] for r in rows(trace, "events")] == ["printf", "printf"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("        orphan_frame+12\n", bpftrace.ORPHAN_FRAME),
        (bucket("[0, 1)", 1) + "\n", bpftrace.ORPHAN_BUCKET),
        ("@m[\n        frame+1\n", "no closing ']:' line"),
    ],
)
def test_lines_not_understood_are_diagnostics_with_a_reason(text: str, reason: str) -> None:
    trace = parse(text)
    diags = rows(trace, "diagnostics")
    assert diags and all(reason in d["reason"] for d in diags)
    assert trace.inputs[0].accounted()


def test_chunk_cuts_never_split_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Chunks of about two records: every cut must fall between records.
    monkeypatch.setattr(inputs, "CHUNK_BYTES", 2000)
    block = ["@callers[", "        zpci_refresh_trans+0", "        iommu_map+190", "]:"]
    block += [bucket(f"[{1 << i}, {1 << (i + 1)})", i + 1) for i in range(1, 9)]
    printf = ["1 dd pid=1 rwbs=W sector=1", "", "        blk_mq_start_request+207", ""]
    text = "\n".join([*block, "", *printf] * 20) + "\n"
    trace = parse(text)
    assert trace.inputs[0].counts["diagnostics"] == 0
    assert len(rows(trace, "histograms")) == 20 * 8
    assert all(len(r["keys"][0].split("\n")) == 2 for r in rows(trace, "histograms"))
    assert all(r["stack"] == ["blk_mq_start_request+207"] for r in rows(trace, "events"))


def test_safe_line_never_matches_inside_a_record() -> None:
    inside = [
        "        zpci_refresh_trans+0",
        "\tffffffff81234 zpci_refresh_trans+0",
        "]: 18234",
        ", bash]: 3",
        bucket("[2, 4)", 1),
        bucket("(..., 0)", 1),
        "10:00:00.100 |                        *                          | 5",
        "",
    ]
    for text in inside:
        assert not bpftrace.SAFE_LINE.match(text.encode()), text
    for text in ["Attaching 3 probes...", "Lost 5 events", "@x[a]: 1", "3092746208587 dd"]:
        assert bpftrace.SAFE_LINE.match(text.encode()), text


# --- JSON ------------------------------------------------------------------------------


def jparse(*objs: object | str) -> tracetool.Trace:
    lines = [o if isinstance(o, str) else json.dumps(o) for o in objs]
    return parse("\n".join(lines) + "\n", format="bpftrace-json")


def test_json_printf_time_and_probes() -> None:
    trace = jparse(
        {"type": "attached_probes", "data": {"probes": 6}},
        {"type": "time", "data": "10:18:05 "},
        {"type": "printf", "data": "exec pid=1 /bin/bash\n"},
        {"type": "printf", "data": "1000 7 kmcheck probe dev=0x8f3a40c8\n"},
    )
    exec_, probe = rows(trace, "events")
    assert (exec_["event"], exec_["body"], exec_["ts"]) == ("printf", "exec pid=1 /bin/bash", None)
    assert (probe["event"], probe["ts"], probe["pid"], args(probe)["dev"]) == (
        "probe",
        1000,
        7,
        0x8F3A40C8,
    )
    assert trace.inputs[0].meta == {"probes": 6, "timestamps": "nsecs"}
    assert trace.inputs[0].counts["headers"] == 2


def test_json_printf_with_a_kstack_fills_the_stack() -> None:
    data = "1 dd pid=1 rwbs=W sector=8\n\n        blk_mq_start_request+207\n        virtio_queue_rq+67\n\n"
    (row,) = rows(jparse({"type": "printf", "data": data}), "events")
    assert (row["event"], row["stack"]) == (
        "rq_issue",
        ["blk_mq_start_request+207", "virtio_queue_rq+67"],
    )


def test_json_maps_keep_duplicate_keys_and_split_multi_keys() -> None:
    trace = jparse(
        '{"type": "map", "data": {"@rwbs": {"WSM": 1, "W": 1, "WSM": 6}}}',
        {"type": "map", "data": {"@fsync": {"dd,14998": 1}}},
        {"type": "map", "data": {"@scalar_str": "a b \n d e"}},
        {
            "type": "map",
            "data": {"@stacks": {"\n    zpci_refresh_trans+0\n    iommu_map+190\n": 3}},
        },
    )
    got = [(r["map"], r["keys"], r["value"]) for r in rows(trace, "maps")]
    assert got == [
        ("@rwbs", ["WSM"], "1"),
        ("@rwbs", ["W"], "1"),
        ("@rwbs", ["WSM"], "6"),
        ("@fsync", ["dd", "14998"], "1"),
        ("@scalar_str", [], "a b \n d e"),
        ("@stacks", ["zpci_refresh_trans+0\niommu_map+190"], "3"),
    ]


def test_json_stats_scalar_keyed_and_avg() -> None:
    trace = jparse(
        {"type": "stats", "data": {"@bytes": {"count": 39, "average": 224544, "total": 8757248}}},
        {"type": "stats", "data": {"@by": {"global": {"count": 12, "average": 4, "total": 48}}}},
        {"type": "stats", "data": {"@": {"c": 3, "d": 4}}},
        {"type": "stats", "data": {"@avg_prio": 118}},
    )
    got = [(r["map"], r["keys"], r["stat"], r["num"]) for r in rows(trace, "maps")]
    assert got == [
        ("@bytes", [], "count", 39),
        ("@bytes", [], "average", 224544),
        ("@bytes", [], "total", 8757248),
        ("@by", ["global"], "count", 12),
        ("@by", ["global"], "average", 4),
        ("@by", ["global"], "total", 48),
        ("@", ["c"], None, 3),
        ("@", ["d"], None, 4),
        ("@avg_prio", [], None, 118),
    ]


def test_json_hist_and_lhist_with_open_buckets() -> None:
    trace = jparse(
        {
            "type": "hist",
            "data": {
                "@h": [
                    {"max": -1, "count": 1},
                    {"min": 0, "max": 0, "count": 2},
                    {"min": 2, "max": 3, "count": 1},
                ]
            },
        },
        {
            "type": "hist",
            "data": {"@l": {"curl": [{"min": 0, "max": 9, "count": 1}, {"min": 100, "count": 1}]}},
        },
        {"type": "hist", "data": {"@z": []}},
    )
    got = [
        (r["map"], r["keys"], r["func"], r["lower"], r["upper"], r["count"])
        for r in rows(trace, "histograms")
    ]
    assert got == [
        ("@h", [], "hist", None, 0, 1),
        ("@h", [], "hist", 0, 1, 2),
        ("@h", [], "hist", 2, 4, 1),
        ("@l", ["curl"], "lhist", 0, 10, 1),
        ("@l", ["curl"], "lhist", 100, None, 1),
    ]


def test_json_pretty_printed_objects_are_grouped() -> None:
    text = (
        '{"type": "hist", "data": {\n'
        '  "@hist": [\n'
        '      {"min": 2, "max": 3, "count": 1},\n'
        '      {"min": 1024, "max": 2047, "count": 1}\n'
        "    ]\n"
        "}}\n"
        "{\n"
        '  "type": "tseries",\n'
        '  "data": {"@a": [{"interval_start": "1970-01-01 00:00:00.500000000", "value": 9}]}\n'
        "}\n"
    )
    trace = parse(text, format="bpftrace-json")
    assert [(r["lower"], r["line"]) for r in rows(trace, "histograms")] == [(2, 1), (1024, 1)]
    (ts,) = rows(trace, "maps")
    assert (ts["ts"], ts["num"], ts["stat"], ts["line"]) == (500_000_000, 9, "tseries", 7)
    assert trace.inputs[0].counts == {
        "events": 0,
        "records": 10,
        "headers": 0,
        "losses": 0,
        "diagnostics": 0,
    }


def test_json_lost_events_helper_error_and_other_types() -> None:
    trace = jparse(
        {"type": "lost_events", "data": {"events": 58}},
        {
            "type": "helper_error",
            "msg": "Bad address",
            "helper": "probe_read",
            "retcode": -14,
            "filename": "stdin",
            "line": 1,
            "col": 37,
        },
        {"type": "syscall", "data": "a b c\n"},
    )
    (loss,) = rows(trace, "losses")
    assert loss["lost"] == 58
    helper, syscall = rows(trace, "events")
    assert helper["event"] == "helper_error"
    assert args(helper) == {
        "helper": "probe_read",
        "msg": "Bad address",
        "retcode": -14,
        "location": "stdin:1:37",
    }
    assert (syscall["event"], syscall["body"]) == ("syscall", "a b c\n")


def test_json_lines_not_understood_are_diagnostics() -> None:
    trace = parse(
        'not json\n{"type": "map", "data": {"@x": 1}}\n{"data": 3}\n', format="bpftrace-json"
    )
    reasons = {d["line"]: d["reason"] for d in rows(trace, "diagnostics")}
    assert "one object per line" in reasons[1]
    assert "malformed JSON object" in reasons[3]
    assert trace.inputs[0].accounted()


def test_formats_are_sniffed() -> None:
    assert parse_sniffed("Attaching 1 probe...\nx\n") == "bpftrace"
    assert parse_sniffed('{"type": "attached_probes", "data": {"probes": 1}}\n') == "bpftrace-json"
    assert parse_sniffed("@x[a]: 1\n@x[b]: 2\n") == "bpftrace"


def parse_sniffed(text: str) -> str:
    return tracetool.parse_text(text).inputs[0].format


# --- extra printf declarations ----------------------------------------------------------


def test_extra_printf_declarations(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        "[events.rpcit]\n"
        "pattern = '^(?P<nsecs>\\d+) rpcit fh=(?P<fh>0x[0-9a-f]+) ret=(?P<ret>-?\\d+)$'\n"
        'fields = { nsecs = "int", fh = "hex", ret = "int" }\n'
    )
    spec = with_printf_formats(path)
    text = "100 rpcit fh=0x1234 ret=-12\n101 1 kmcheck probe dev=0x10\n"
    rpcit, probe = rows(parse(text, format=spec), "events")
    assert (rpcit["event"], rpcit["ts"]) == ("rpcit", 100)
    assert args(rpcit)["ret"] == -12
    assert args(rpcit)["kv"] == [{"name": "fh", "value": "0x1234", "num": 0x1234}]
    assert probe["event"] == "probe"
    (row,) = rows(
        parse(
            '{"type": "printf", "data": "7 rpcit fh=0x1 ret=0\\n"}\n',
            with_printf_formats(path, "bpftrace-json"),
        ),
        "events",
    )
    assert (row["event"], row["ts"]) == ("rpcit", 7)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[events.x]\npattern = "(?P<dur>\\\\d+)"\nfields = {dur = "int"}\n',
            "types 'dur' as 'usecs'",
        ),
        ('[events.probe]\npattern = "(?P<a>\\\\d+)"\nfields = {a = "int"}\n', "already declared"),
        ('[event.x]\npattern = "x"\n', "unknown key 'event'; did you mean"),
        ("description = 'none'\n", "declares no"),
    ],
)
def test_extra_printf_declarations_are_checked(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CatalogueError, match=message) as err:
        with_printf_formats(path)
    assert str(path) in str(err.value)


def test_json_stray_brackets_do_not_swallow_the_objects_after_them() -> None:
    good = '{"type": "printf", "data": "hello\\n"}'
    text = f'oops [ {{\n{good}\n}}\n{good}\n{{\n  "type": "map",\n  "data": {{"@x": 1}}\n}}\n'
    trace = parse(text, format="bpftrace-json")
    assert [r["body"] for r in rows(trace, "events")] == ["hello", "hello"]
    assert [(r["map"], r["num"]) for r in rows(trace, "maps")] == [("@x", 1)]
    assert [d["line"] for d in rows(trace, "diagnostics")] == [1, 3]


# --- probe declarations feed the timeline ----------------------------------------------

LIFETIME = """Attaching 8 probes...
4215902004410 5082 qemu-system-s39 attach_enter dom=0x9a7c1e00 dev=0x8f3a40c8
4215902011873 41 kmcheck release_enter dev=0x8f3a40c8
4215902031178 5082 qemu-system-s39 attach_exit ret=-5
4215902040666 41 kmcheck release_exit dur=28793
"""


def test_probe_declarations_give_probe_func_and_fetch_args() -> None:
    attach, _, leave, _ = rows(parse(LIFETIME), "events")
    assert (args(attach)["probe"], args(attach)["func"]) == ("kprobe", "s390_iommu_attach_device")
    assert [(kv["name"], kv["num"]) for kv in args(attach)["kv"]] == [
        ("dom", 0x9A7C1E00),
        ("dev", 0x8F3A40C8),
    ]
    assert (args(leave)["probe"], args(leave)["ret"]) == ("kretprobe", -5)


def test_probe_declarations_apply_to_json_printf_too() -> None:
    data = "4215902031178 5082 qemu-system-s39 attach_exit ret=-5\n"
    (row,) = rows(jparse({"type": "printf", "data": data}), "events")
    assert (args(row)["probe"], args(row)["func"], args(row)["ret"]) == (
        "kretprobe",
        "s390_iommu_attach_device",
        -5,
    )
    assert args(row)["kv"] == [{"name": "ret", "value": "-5", "num": -5}]


def test_check_finds_the_release_attach_race_in_bpftrace_output() -> None:
    from tracetool.check import run

    found = run(parse(LIFETIME)).findings
    race = found.filter(pl.col("rule") == "release-overlaps-attach").to_dicts()
    assert [(r["device"], r["status"], r["dur"]) for r in race] == [
        ("dev@0x8f3a40c8", "finding", 4215902031178 - 4215902011873)
    ]
    assert "s390_iommu_release_device (kmcheck-41) overlapped" in race[0]["message"]
    # "Lost N events" lost events between the lines printed around it: inside the
    # race it makes the finding inconclusive; after the last event it does not.
    lines = LIFETIME.splitlines(keepends=True)
    inside = "".join([*lines[:3], "Lost 3 events\n", *lines[3:]])
    for text, status in ((inside, "inconclusive"), (LIFETIME + "Lost 3 events\n", "finding")):
        lost = run(parse(text)).findings
        assert set(lost.filter(pl.col("rule") == "release-overlaps-attach")["status"]) == {status}


@pytest.mark.parametrize("probe", ["kprobe", "kprobe:", "fentry:s390_iommu_attach_device", "x y"])
def test_probe_key_is_checked(tmp_path: Path, probe: str) -> None:
    from tracetool import catalogue

    path = tmp_path / "bad.toml"
    path.write_text(
        'description = "x"\nengine = "bpftrace"\n[events.a]\n'
        f'pattern = "(?P<x>\\\\d+)"\nfields = {{x = "int"}}\nprobe = "{probe}"\n'
    )
    with pytest.raises(CatalogueError, match="is not 'kprobe:FUNC'"):
        catalogue.load_format(path)


def test_a_derived_format_is_cached_under_its_own_key(tmp_path: Path) -> None:
    spec_path = tmp_path / "mine.toml"
    spec_path.write_text(
        "[events.rpcit]\npattern = '^(?P<nsecs>\\d+) rpcit$'\nfields = { nsecs = \"int\" }\n"
    )
    trace_path = tmp_path / "out.txt"
    trace_path.write_text("Attaching 1 probe...\n100 rpcit\n")
    spec = with_printf_formats(spec_path)
    first = tracetool.parse(trace_path, format=spec)
    again = tracetool.parse(trace_path, format=spec)
    plain = tracetool.parse(trace_path, format="bpftrace")
    assert (first.inputs[0].cached, again.inputs[0].cached) == (False, True)
    assert again.events.collect()["event"].to_list() == ["rpcit"]
    assert plain.events.collect()["event"].to_list() == ["printf"]


def test_cli_spec_file_declares_a_users_printf(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tracetool.cli import main

    spec = tmp_path / "mine.toml"
    spec.write_text(
        "[events.rpcit_lat]\n"
        "pattern = '^(?P<nsecs>\\d+) rpcit fh=(?P<fh>0x[0-9a-f]+) ret=(?P<ret>-?\\d+)$'\n"
        'fields = { nsecs = "int", fh = "hex", ret = "int" }\n'
    )
    out = tmp_path / "run.out"
    out.write_text("Attaching 2 probes...\n4215902004410 rpcit fh=0x80a00000 ret=-12\n")
    events = tmp_path / "events.ndjson"
    result = CliRunner().invoke(
        main, ["parse", str(out), "--spec", str(spec), "--no-cache", "-o", str(events)]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(events.read_text().splitlines()[0])
    assert (row["event"], row["ts"], row["args"]["ret"]) == ("rpcit_lat", 4215902004410, -12)
    bad = tmp_path / "bad.toml"
    bad.write_text("[events.x]\npattern = '(?P<y>\\d+)'\n")
    result = CliRunner().invoke(main, ["parse", str(out), "--spec", str(bad), "--no-cache"])
    assert result.exit_code == 2 and "bad.toml" in result.output
