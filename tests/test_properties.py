"""Property tests: rendering events as the kernel does and parsing them back is the
identity, in every context-prefix variant; no input crashes a parser."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tracetool

COMM_CHARS = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_/:.[]()<> "))
PAYLOAD_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@dataclass(frozen=True)
class Variant:
    """One combination of trace options, as trace_print_context() would apply them."""

    irq_info: bool
    tgid: bool
    flag_width: int
    pid_width: int  # 7 since about v5.10, 5 before (and in trace-cmd)
    counter_clock: bool


variants = st.builds(
    Variant,
    irq_info=st.booleans(),
    tgid=st.booleans(),
    flag_width=st.integers(4, 7),
    pid_width=st.sampled_from([5, 7]),
    counter_clock=st.booleans(),
)


@st.composite
def comms(draw: st.DrawFn) -> str:
    comm = draw(st.text(COMM_CHARS, min_size=1, max_size=15))
    # Leading/trailing blanks cannot be told from the column padding, and "-<digits> "
    # inside a comm is the one thing that makes "comm-pid" ambiguous.
    assume(comm == comm.strip() and not re.search(r"-\d+\s", comm + " "))
    return comm


@st.composite
def events(draw: st.DrawFn, variant: Variant) -> dict[str, object]:
    flags = draw(
        st.text(
            st.sampled_from(list(".dDbXNnpBLlhHsSzZ0123456789")),
            min_size=variant.flag_width,
            max_size=variant.flag_width,
        )
    )
    tgid = draw(st.one_of(st.none(), st.integers(1, 4194304))) if variant.tgid else None
    return {
        "comm": draw(comms()),
        "pid": draw(st.integers(0, 4194304)),
        "tgid": tgid,
        "cpu": draw(st.integers(0, 4095)),
        "flags": flags if variant.irq_info else None,
        "ts": draw(st.integers(0, 10**14))
        if variant.counter_clock
        else draw(st.integers(0, 99_999_999)) * 10**9 + draw(st.integers(0, 999_999)) * 1000,
        "event": "ev_" + draw(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)),
        "body": draw(st.text(PAYLOAD_CHARS, max_size=60)).rstrip(" "),
    }


def render(ev: dict[str, object], v: Variant) -> str:
    line = f"{ev['comm']:>16}-{ev['pid']:<{v.pid_width}} "
    if v.tgid:
        line += "(-------) " if ev["tgid"] is None else f"({ev['tgid']:>7}) "
    line += f"[{ev['cpu']:03d}] "
    if v.irq_info:
        line += str(ev["flags"])
    ts = int(ev["ts"])  # type: ignore[call-overload]
    line += f" {ts:12d}" if v.counter_clock else f" {ts // 10**9:5d}.{ts % 10**9 // 1000:06d}"
    return line + f": {ev['event']}: {ev['body']}\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_render_then_parse_is_identity(data: st.DataObject) -> None:
    variant = data.draw(variants)
    drawn = data.draw(st.lists(events(variant), min_size=1, max_size=12))
    text = "".join(render(ev, variant) for ev in drawn)
    trace = tracetool.parse_text(text, format="ftrace")
    got = (
        trace.events.select("comm", "pid", "tgid", "cpu", "flags", "ts", "event", "body")
        .collect()
        .to_dicts()
    )
    assert got == drawn, text
    assert trace.diagnostics.collect().is_empty()


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    trace = tracetool.parse_text(text, format="ftrace")
    (info,) = trace.inputs
    assert info.accounted()
    trace.events.collect()
    trace.losses.collect()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(PAYLOAD_CHARS, max_size=80),
            st.sampled_from(
                [
                    " => frame",
                    "CPU:1 [LOST 3 EVENTS]",
                    "##### CPU 2 buffer started ####",
                    "#",
                    "",
                    "  2)   8.123 us    |  f();",
                    "cpus=4",
                    "  bash-1 [000] ..... 1.000001: <stack trace>",
                    "  bash-1 [000] ..... 1.000001: tracing_mark_write: x",
                ]
            ),
        ),
        max_size=30,
    ),
    st.sampled_from(["ftrace", "trace-cmd", "function-graph"]),
)
def test_random_lines_are_accounted_in_every_format(lines: list[str], fmt: str) -> None:
    text = "\n".join(lines) + "\n"
    trace = tracetool.parse_text(text, format=fmt)
    (info,) = trace.inputs
    assert info.accounted()
    assert info.lines == len(text.splitlines())
    diag = trace.diagnostics.collect()
    assert diag.filter(diag["kind"] == "unparsed").height == info.counts["diagnostics"]
