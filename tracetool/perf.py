"""The ``perf script`` engine (tools/perf/builtin-script.c text output).

A sample line is ``comm tid [cpu] secs.frac: [period] event: payload`` (see
``parsers/perf.toml`` for the grammar and its ``-F`` variants). With ``-g`` the
callchain follows as one line per frame, ``\\t<hex ip> sym+0xoff (dso)``, and a blank
line ends the sample. Every line of a chunk becomes one ``kind``:

``event``   a sample line; tracepoints ``system:name`` become event ``name`` with
            ``args.system``, perf probes ``probe:func[__return]`` also get
            ``args.probe``/``args.func`` so they pair into calls like tracefs kprobes
``frame``   a callchain line, folded into the ``stack`` of the sample above it
``header``  ``--header`` comments, blank lines, perf's own warnings
``loss``    ``PERF_RECORD_LOST``/``_LOST_SAMPLES`` lines and perf's ``Processed N
            events and lost M chunks!`` and ``... lost X% samples!`` warnings
``diag``    anything else, and frames with no sample above them (with a reason)

The payload's declared fields are extracted by ``ftrace.extract_args`` with the
declarations ``parsers/perf.toml`` inherits from ``parsers/ftrace.toml``.
"""

from __future__ import annotations

import re

import polars as pl

from tracetool.catalogue import FormatSpec
from tracetool.ftrace import (
    _HIT,
    Dialect,
    _group_names,
    _int,
    _line_classes,
    _typed,
    _with_sentinel,
    timestamp_ns,
)

# "\t<ip> sym+0xoff (dso)"; perf's JIT and C++ symbols hold spaces, "(" and ":" but not
# " (", which opens the dso. -F without dso prints no "(dso)"; [unknown] stays as it is.
FRAME = r"^\s*(?P<ip>[0-9a-f]+) (?P<sym>.*?)(?:\+0x(?P<off>[0-9a-f]+))?(?: \((?P<dso>.*)\))?\s*$"
# The same shape as the payload of a sample event without -g.
SAMPLE = r"^(?P<ip>[0-9a-f]+) (?P<sym>.*?)(?:\+0x(?P<off>[0-9a-f]+))? \((?P<dso>.*)\)$"
# "sched:sched_switch" or "probe:zpci_refresh_trans__return"; "cpu-clock:ppp" is an
# event with modifiers (tools/perf/util/parse-events.l), not a system.
TRACEPOINT = r"^(?P<system>[A-Za-z_][\w-]*):(?P<name>[A-Za-z_][\w.-]*)$"
MODIFIERS = r"^[ukhIGHpPSDWebB]+$"
# The class of ioprio as a number: libtraceevent cannot evaluate IOPRIO_PRIO_CLASS()
# in the block events' print fmt and prints "0x2,0,4" where the kernel prints "be,0,4".
IOPRIO_RAW = r" 0x([0-7]),\d+,\d+(?: \|\d+\|)? \[[^\]]*\]$"
IOPRIO_CLASSES = {"0": "none", "1": "rt", "2": "be", "3": "idle"}
ORPHAN_FRAME = (
    "callchain line with no sample line above it (a blank line ends a sample's callchain)"
)
BAD_FRAME = "tab-indented line that is not a callchain frame (<hex ip> symbol (dso))"
LOST_COUNT = r"lost (\d+)"
# A line that starts a new record, so a chunk may be cut just before it: a sample line
# with a timestamp, or the blank line that ends a callchain. Never a frame (tab).
SAFE_LINE = re.compile(
    rb"(?:[ \t]*\r?$|(?!\t)\s*\S.*? \d+(?:/\d+)?\s+(?:\[\d+\]\s+|\d+\s+)?\d+\.\d+: )"
)

_SCRATCH = ("__ev", "__fr", "__weak")
_PREFIX = "tt_prefix"


def _prefixed(grammar: str) -> str:
    """``grammar`` (which matches a line's prefix) with a group around all it matched,
    so the payload is one slice after it."""
    body = grammar.removeprefix("^")
    return _with_sentinel(f"^(?P<{_PREFIX}>{body})")


def classify(lines: pl.LazyFrame, spec: FormatSpec, dialect: Dialect) -> pl.LazyFrame:
    """Split every line into the columns ``ftrace.classify`` returns (same contract),
    plus ``arg_*`` columns with the fields the line itself names and, for frames,
    ``fr_*`` columns with the frame's parts."""
    t = pl.col("text")
    strong, *rest = spec.line
    weak = rest[0] if rest else strong
    is_tab = t.str.starts_with("\t")
    blank = t.str.strip_chars() == ""
    comment = t.str.starts_with("#")
    text_line = ~is_tab & ~blank & ~comment
    lf = lines.with_columns(__ev=pl.when(text_line).then(t).str.extract_groups(_prefixed(strong)))
    ev_hit = pl.col("__ev").struct.field(_HIT).is_not_null()
    lf = lf.with_columns(
        __weak=pl.when(text_line & ~ev_hit).then(t).str.extract_groups(_prefixed(weak))
    )
    weak_hit = pl.col("__weak").struct.field(_HIT).is_not_null()
    # perf indents frames with a tab; stripped copies (FlameGraph inputs) may not, and
    # then only a line ending in "(dso)" is taken for a frame.
    lf = lf.with_columns(
        __fr=pl.when(is_tab | (text_line & ~ev_hit & ~weak_hit))
        .then(t)
        .str.extract_groups(_with_sentinel(FRAME))
    )
    fr = pl.col("__fr").struct
    fr_hit = fr.field(_HIT).is_not_null() & (is_tab | fr.field("dso").is_not_null())
    grammars = (
        ("__ev", [*_group_names(strong), _PREFIX]),
        ("__weak", [*_group_names(weak), _PREFIX]),
    )

    def group(name: str) -> pl.Expr:
        found = [pl.col(c).struct.field(name) for c, names in grammars if name in names]
        return pl.coalesce(found) if found else pl.lit(None, pl.String)

    # Line classes (loss and header lines perf prints) only for lines nothing else took.
    lf = lf.with_columns(f_ok=ev_hit | fr_hit | weak_hit | blank | comment)
    lf = _line_classes(lf, spec).drop("f_ok")
    is_event = ev_hit | weak_hit
    token = pl.coalesce(group("event"), group("event2"))
    lf = lf.with_columns(
        __tok=pl.when(is_event).then(token),
        __rest=pl.when(is_event).then(
            t.str.slice(group(_PREFIX).str.len_chars()).str.strip_chars_end()
        ),
        __ts=group("ts"),
    )
    lf = timestamp_ns(lf, "__ts", "ts")
    tok = pl.col("__tok")
    tp = tok.str.extract_groups(TRACEPOINT)
    lf = lf.with_columns(__tp=tp)
    system, name = pl.col("__tp").struct.field("system"), pl.col("__tp").struct.field("name")
    is_tp = name.is_not_null() & ~name.str.contains(MODIFIERS).fill_null(False)
    record = tok.str.starts_with("PERF_RECORD_")
    lost = record & tok.is_in(["PERF_RECORD_LOST", "PERF_RECORD_LOST_SAMPLES"])
    probe_group = is_tp & system.str.starts_with("probe")
    is_return = name.str.ends_with("__return")
    user = system.str.starts_with("probe_")
    event = pl.when(is_tp).then(name).otherwise(tok)
    # "PERF_RECORD_COMM: perf:1234/1234", "PERF_RECORD_FORK(1235:1235):(1234:1234)".
    body = pl.when(record).then(pl.col("__rest").str.strip_chars_start(": ")).otherwise("__rest")
    probe_kind = (
        pl.when(~probe_group | ~body.str.starts_with("("))
        .then(None)
        .when(user)
        .then(pl.when(is_return).then(pl.lit("uretprobe")).otherwise(pl.lit("uprobe")))
        .when(is_return)
        .then(pl.lit("kretprobe"))
        .otherwise(pl.lit("kprobe"))
    )
    sample = pl.when(is_event & ~is_tp & ~record).then(body).str.extract_groups(SAMPLE)
    pid_tid = _int(group("pid"), pl.Int32())
    cpu = pl.coalesce(_int(group("cpu"), pl.Int32()), _int(group("lcpu"), pl.Int32()))
    ioprio = (
        pl.when(is_tp & (system == "block"))
        .then(body.str.extract(IOPRIO_RAW, 1))
        .replace_strict(IOPRIO_CLASSES, default=None, return_dtype=pl.String)
    )
    kind = (
        pl.when(blank | comment)
        .then(pl.lit("header"))
        .when(is_event & lost)
        .then(pl.lit("loss"))
        .when(is_event)
        .then(pl.lit("event"))
        .when(fr_hit)
        .then(pl.lit("frame"))
        .when(pl.col("class_kind").is_not_null())
        .then(pl.col("class_kind"))
        .otherwise(pl.lit("diag"))
    )
    lf = lf.with_columns(
        kind=kind,
        comm=pl.when(is_event).then(group("comm")),
        pid=_int(group("tid"), pl.Int32()),
        tgid=pid_tid,
        cpu=cpu,
        flags=pl.lit(None, pl.String),
        event=pl.when(is_event).then(event),
        body=pl.when(is_event).then(body),
        loss_cpu=pl.when(is_event & lost).then(cpu).otherwise("loss_cpu"),
        loss_lost=pl.when(is_event & lost)
        .then(_int(body.str.extract(LOST_COUNT, 1)))
        .otherwise("loss_lost"),
        marker=pl.when(is_event & lost).then(tok).otherwise("marker"),
        reason=pl.when(is_tab & ~fr_hit).then(pl.lit(BAD_FRAME)),
        arg_system=pl.when(is_tp).then(system),
        arg_probe=probe_kind,
        arg_func=pl.when(probe_kind.is_not_null()).then(name.str.strip_suffix("__return")),
        arg_period=_int(group("period"), pl.UInt64()),
        arg_sample_ip=_typed(sample.struct.field("ip"), "hex"),
        arg_sym=sample.struct.field("sym"),
        arg_sym_off=_typed(sample.struct.field("off"), "hex"),
        arg_dso=sample.struct.field("dso"),
        arg_ioprio_class=ioprio,
        fr_ip=pl.when(fr_hit).then(fr.field("ip")),
        fr_sym=pl.when(fr_hit).then(fr.field("sym")),
        fr_off=pl.when(fr_hit).then(fr.field("off")),
        fr_dso=pl.when(fr_hit).then(fr.field("dso")),
    )
    return lf.drop(*_SCRATCH, "__tok", "__rest", "__ts", "__tp", "class_kind")


def fold(
    df: pl.DataFrame, spec: FormatSpec, file: str
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Fold callchain frames into the ``stack`` of the sample above them (one entry
    per frame, ``sym+0xoff (dso) <ip>``, innermost first); a sample with a callchain and
    no ip of its own takes its ip, symbol and dso from the first frame. Frames after a
    blank line or a non-sample line are diagnostics. Fills no record tables."""
    kind, line = pl.col("kind"), pl.col("line")
    owner = pl.when(kind != "frame").then(line).forward_fill()
    owner_kind = pl.when(kind != "frame").then(kind).forward_fill()
    orphan = (kind == "frame") & (owner_kind != "event").fill_null(True)
    df = df.with_columns(
        kind=pl.when(orphan).then(pl.lit("diag")).otherwise(kind),
        reason=pl.when(orphan).then(pl.lit(ORPHAN_FRAME)).otherwise("reason"),
        owner=owner,
    )
    # concat_str skips nulls: no "+0x" without an offset, no "()" without a dso.
    entry = pl.concat_str(
        pl.col("fr_sym"),
        pl.lit("+0x") + pl.col("fr_off"),
        pl.lit(" (") + pl.col("fr_dso") + pl.lit(")"),
        pl.lit(" <") + pl.col("fr_ip") + pl.lit(">"),
        ignore_nulls=True,
    )
    frames = (
        df.filter(pl.col("kind") == "frame")
        .group_by("owner", maintain_order=True)
        .agg(
            frames=entry,
            top_ip=pl.col("fr_ip").first(),
            top_sym=pl.col("fr_sym").first(),
            top_off=pl.col("fr_off").first(),
            top_dso=pl.col("fr_dso").first(),
        )
    )
    df = df.join(frames, left_on="line", right_on="owner", how="left", maintain_order="left")
    has_chain = pl.col("frames").is_not_null()
    top = pl.when(has_chain & pl.col("arg_sample_ip").is_null() & (pl.col("arg_system").is_null()))
    df = df.with_columns(
        frames_k=pl.col("frames"),
        frames_u=pl.lit(None, pl.List(pl.String)),
        arg_sample_ip=pl.coalesce("arg_sample_ip", top.then(_typed(pl.col("top_ip"), "hex"))),
        arg_sym=pl.coalesce("arg_sym", top.then(pl.col("top_sym"))),
        arg_sym_off=pl.coalesce("arg_sym_off", top.then(_typed(pl.col("top_off"), "hex"))),
        arg_dso=pl.coalesce("arg_dso", top.then(pl.col("top_dso"))),
    )
    return df.drop(
        "owner",
        "frames",
        "top_ip",
        "top_sym",
        "top_off",
        "top_dso",
        "fr_ip",
        "fr_sym",
        "fr_off",
        "fr_dso",
    ), {}
