"""Properties of the bpftrace engines: rendered hist blocks, map dumps, JSON maps and
whole runs parse back to what was rendered; random bytes and shuffled structures never
crash either engine, and every line is accounted for."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_bpftrace import bucket, parse, rows

import tracetool

SUFFIXES = ["", "K", "M", "G"]


def label(value: int) -> str:
    """A power-of-two bound as bpftrace prints it (1024 -> 1K)."""
    for i in range(len(SUFFIXES) - 1, -1, -1):
        unit = 1 << (10 * i)
        if value >= unit and value % unit == 0:
            return f"{value // unit}{SUFFIXES[i]}"
    return str(value)


@st.composite
def hist_blocks(draw: st.DrawFn) -> tuple[str, list[tuple[int | None, int | None, int]]]:
    linear = draw(st.booleans())
    n = draw(st.integers(1, 12))
    counts = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n))
    buckets: list[tuple[str, int | None, int | None]] = []
    if linear:
        start, step = draw(st.integers(-50, 50)) * 10, draw(st.integers(2, 100))
        if draw(st.booleans()):
            buckets.append((f"(..., {start})", None, start))
        for i in range(n - len(buckets)):
            lo = start + i * step
            buckets.append((f"[{lo}, {lo + step})", lo, lo + step))
        if draw(st.booleans()):
            end = start + (n - 1) * step
            buckets[-1] = (f"[{end}, ...)", end, None)
    else:
        first = draw(st.integers(0, 30))
        for i in range(n):
            k = first + i
            if k == 0:
                buckets.append(("[0]", 0, 1))
            elif k == 1:
                buckets.append(("[1]", 1, 2))
            else:
                lo = 1 << (k - 1)
                buckets.append((f"[{label(lo)}, {label(lo * 2)})", lo, lo * 2))
    top = max(counts) or 1
    lines = ["@h:"] + [bucket(b[0], c, c * 52 // top) for b, c in zip(buckets, counts, strict=True)]
    return "\n".join(lines) + "\n\n", [
        (b[1], b[2], c) for b, c in zip(buckets, counts, strict=True)
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hist_blocks())
def test_rendered_hist_blocks_parse_back(
    block: tuple[str, list[tuple[int | None, int | None, int]]],
) -> None:
    text, expected = block
    trace = parse(text)
    got = [(r["lower"], r["upper"], r["count"]) for r in rows(trace, "histograms")]
    assert got == expected
    assert trace.inputs[0].accounted() and trace.inputs[0].counts["diagnostics"] == 0


KEY = st.one_of(
    st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_./:-]{0,12}\Z"),
    st.integers(-(10**12), 10**12).map(str),
    st.from_regex(r'\A"[a-z ,]{0,8}"\Z'),
    st.lists(st.integers(0, 99), min_size=1, max_size=3).map(
        lambda xs: "[" + ", ".join(map(str, xs)) + "]"
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.lists(KEY, min_size=0, max_size=3), st.integers(-(10**15), 10**15)),
        min_size=1,
        max_size=8,
    )
)
def test_rendered_map_dumps_parse_back(entries: list[tuple[list[str], int]]) -> None:
    text = "".join(
        f"@m[{', '.join(keys)}]: {value}\n" if keys else f"@m: {value}\n" for keys, value in entries
    )
    got = [(r["keys"], r["num"]) for r in rows(parse(text), "maps")]
    assert got == [(keys, value) for keys, value in entries]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.sampled_from(["bpftrace", "bpftrace-json"]))
def test_random_bytes_never_crash_and_every_line_is_counted(data: bytes, fmt: str) -> None:
    text = data.decode("utf-8", "replace")
    trace = tracetool.parse_text(text, format=fmt)
    info = trace.inputs[0]
    assert info.accounted()
    trace.events.collect()
    for name in ("maps", "histograms"):
        trace.table(name).collect()


PIECES = st.sampled_from(
    [
        "Attaching 2 probes...",
        "Lost 3 events",
        "@x[a, b]: 3",
        "@h:",
        bucket("[4K, 8K)", 12, 3),
        "@[",
        "        zpci_refresh_trans+0",
        "]: 5",
        "]:",
        "10:00:01",
        "1 1 a probe dev=0x1",
        "",
        "^C",
        "# ./x.bt",
        "prose text here",
        '{"type": "printf", "data": "x\\n"}',
        "{",
        "}",
        '  "type": "map",',
    ]
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=40), st.sampled_from(["bpftrace", "bpftrace-json"]))
def test_shuffled_structures_are_always_accounted(pieces: list[str], fmt: str) -> None:
    trace = tracetool.parse_text("\n".join(pieces) + "\n", format=fmt)
    info = trace.inputs[0]
    assert info.accounted()
    assert info.lines == max(len(pieces), 1)
    diag = trace.diagnostics.collect()
    assert diag.filter(pl.col("reason").is_null()).is_empty()


JSON_KEY = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=","),
    min_size=1,
    max_size=12,
).filter(lambda k: k.strip() == k)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(JSON_KEY, st.integers(-(10**15), 10**15)), min_size=1, max_size=8))
@example([("\\", 0), ('a"b', 1), ("[x", 2), ("\\n", 3), ("dup", 4), ("dup", 5)])
def test_rendered_json_maps_parse_back_with_every_key(pairs: list[tuple[str, int]]) -> None:
    # Rendered by hand, so keys may repeat as bpftrace repeats them.
    body = ", ".join(f"{json.dumps(k)}: {v}" for k, v in pairs)
    trace = parse('{"type": "map", "data": {"@m": {' + body + "}}}\n", format="bpftrace-json")
    got = [(r["keys"], r["num"]) for r in rows(trace, "maps")]
    assert got == [([k], v) for k, v in pairs]


FRAME = st.from_regex(r"\A[a-z_][a-z0-9_.]{0,20}\+\d{1,5}\Z")


@st.composite
def outputs(draw: st.DrawFn) -> tuple[str, list[tuple[str, list[str] | None]], list[int]]:
    """A bpftrace run: declared and undeclared printf lines, some followed by a kstack
    (blank line, frames, blank line), "Lost N events" lines, then a map dump."""
    lines = [draw(st.sampled_from(["Attaching 3 probes...", "Attached 3 probes"]))]
    events: list[tuple[str, list[str] | None]] = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.booleans()):
            text = f"{draw(st.integers(1, 10**13))} {draw(st.integers(1, 99999))} kmcheck probe dev=0x{draw(st.integers(1, 2**48)):x}"
        else:
            text = draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9 =,.:/-]{0,30}\Z"))
            if text.strip() != text or text.startswith(("Lost ", "Attach", "ERROR", "WARNING")):
                text = "x" + text.strip()
        stack = draw(st.one_of(st.none(), st.lists(FRAME, min_size=1, max_size=6)))
        lines.append(text)
        if stack is not None:
            lines += ["", *(f"        {f}" for f in stack), ""]
        events.append((text, stack))
        if draw(st.integers(0, 9)) == 0:
            lines.append(f"Lost {draw(st.integers(1, 999))} events")
    values = draw(st.lists(st.integers(0, 10**9), max_size=5))
    lines += ["^C", *(f"@c[k{i}]: {v}" for i, v in enumerate(values)), ""]
    return "\n".join(lines) + "\n", events, values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outputs())
def test_rendered_runs_parse_back(
    run: tuple[str, list[tuple[str, list[str] | None]], list[int]],
) -> None:
    text, events, values = run
    trace = parse(text)
    got = [(r["body"], r["stack"]) for r in rows(trace, "events")]
    assert got == events
    assert [r["num"] for r in rows(trace, "maps")] == values
    info = trace.inputs[0]
    assert info.accounted() and info.counts["diagnostics"] == 0
