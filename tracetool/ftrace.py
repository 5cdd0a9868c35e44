"""The ftrace-family line engine: tracefs text and ``trace-cmd report`` text.

Every line of a chunk is classified in one vectorised pass into a ``kind``:

``event``     a context-prefixed event line (function tracer lines become ``function``,
              ``<stack trace>`` lines become ``kernel_stack``/``user_stack`` events)
``frame``     a `` => `` stack frame, folded into the stack event above it
``cont``      a continuation of a multi-line print, folded into the event above it
``header``    ``#`` comments and headers, blank lines, trace-cmd preamble lines
``loss``      lost-event markers
``diag``      anything else (with a reason)

Well-formed prefixes are taken apart with literal finds and slices; only lines that
fail validation go through the format's full ``line`` regex. Declared payload fields are
extracted per event with the regex masked to that event's rows, so the cost follows the
number of matching lines, not the file size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl
from polars.datatypes import IntegerType

from tracetool.catalogue import FormatSpec, args_fields
from tracetool.events import DTYPES, KV, PROBE_FIELDS

# Payload of kprobe/kretprobe/fprobe and uprobe/uretprobe events (print_kprobe_event,
# print_kretprobe_event, print_uprobe_event): "(sym+off/size)", "(site <- func)",
# "(0xaddr)" or "(0xaddr <- 0xaddr)", then " name=value" fetch args. trace-cmd prints an
# unresolved kernel ip as bare hex ("(95be0ee18)") and a return probe the other way
# round: "(func <- site)".
PROBE = (
    r"^\((?:(?P<func>[^+\s()]+)\+0x(?P<func_off>[0-9a-f]+)/0x(?P<func_size>[0-9a-f]+)"
    r"(?: \[(?P<mod>[^\]]+)\])?|(?P<addr>(?:0x)?[0-9a-f]+)"
    r"|(?P<site>[^\s()]+) <- (?P<ret>[^)\s]+))\)"
    r"(?P<kvtext>(?: .*)?)$"
)
KV_PAIR = r"""[\w.\[\]]+=(?:"(?:[^"\\]|\\.)*"|\S*)"""
PRINT_EVENTS = ("tracing_mark_write", "print", "bprint", "bputs")


@dataclass(frozen=True)
class Dialect:
    """What the engine needs to know about one input beyond its format."""

    trace_cmd: bool = False
    kv: bool = False  # generic key=value extraction for undeclared events


_INT64 = pl.Int64()


def _int(expr: pl.Expr, dtype: pl.DataType = _INT64, base: int = 10) -> pl.Expr:
    assert isinstance(dtype, IntegerType)
    return expr.str.to_integer(base=base, strict=False, dtype=dtype)


def timestamp_ns(ts: pl.Expr) -> pl.Expr:
    """``secs.frac`` (6 digits from the kernel, 9 from ``trace-cmd report -t``) to ns;
    a bare integer (counter, uptime, x86-tsc clocks) stays as printed."""
    parts = ts.str.split_exact(".", 1)
    secs = _int(parts.struct.field("field_0"))
    frac = parts.struct.field("field_1")
    scale = pl.lit(10, pl.Int64).pow(9 - frac.str.len_bytes().cast(pl.Int64))
    return (
        pl.when(frac.is_null())
        .then(secs)
        .when(frac.str.len_bytes() <= 9)
        .then(secs * 1_000_000_000 + _int(frac) * scale)
        .cast(pl.Int64)
    )


def _fast_prefix() -> dict[str, pl.Expr]:
    # "%16s-%-7d [(%7d) ][%03d] FLAGS %5lu.%06lu: rest": comm is right-aligned in 16
    # columns (at most 15 chars), so the '-' is at column 16 on every kernel and in
    # trace-cmd. The first "] " closes the CPU field and the first ": " ends the
    # timestamp, unless the comm contains them; such lines fail validation below.
    t = pl.col("text")
    ib = t.str.find("] ", literal=True)
    ic = t.str.find(": ", literal=True)
    pidcpu = t.str.slice(17, ib - 17).str.split_exact("[", 1)
    pidtgid = pidcpu.struct.field("field_0").str.split_exact("(", 1)
    mid = t.str.slice(ib + 2, ic - ib - 2).str.strip_chars_start(" ").str.splitn(" ", 2)
    second = mid.struct.field("field_1").str.strip_chars_start(" ")
    return {
        "f_ok": (t.str.slice(16, 1) == "-") & (ic > ib),
        "f_comm": t.str.slice(0, 16).str.strip_chars_start(" "),
        "f_pid": pidtgid.struct.field("field_0").str.strip_chars_end(" "),
        "f_tgid": pidtgid.struct.field("field_1").str.strip_chars(" )"),
        "f_cpu": pidcpu.struct.field("field_1"),
        "f_flags": pl.when(second.is_not_null()).then(mid.struct.field("field_0")),
        "f_ts": pl.coalesce(second, mid.struct.field("field_0")),
        "f_rest": t.str.slice(ic + 2),
    }


def _line_classes(spec: FormatSpec) -> tuple[pl.Expr, dict[str, pl.Expr]]:
    """Kind and loss fields from the format's ``[[lines]]`` classes."""
    t = pl.col("text")
    kind: pl.Expr = pl.lit(None, pl.String)
    cpu: pl.Expr = pl.lit(None, pl.String)
    lost: pl.Expr = pl.lit(None, pl.String)
    marker: pl.Expr = pl.lit(None, pl.String)
    for lc in reversed(spec.lines):
        candidate = t.str.starts_with(lc.prefix) if lc.prefix else pl.lit(True)
        masked = pl.when(candidate).then(t)
        if lc.kind == "loss":
            groups = masked.str.extract_groups(lc.pattern)
            names = _group_names(lc.pattern)
            hit = masked.str.contains(lc.pattern).fill_null(False)
            if "cpu" in names:
                cpu = pl.when(hit).then(groups.struct.field("cpu")).otherwise(cpu)
            if "lost" in names:
                lost = pl.when(hit).then(groups.struct.field("lost")).otherwise(lost)
        else:
            hit = masked.str.contains(lc.pattern).fill_null(False)
        kind = pl.when(hit).then(pl.lit(lc.kind)).otherwise(kind)
        marker = pl.when(hit).then(pl.lit(lc.name)).otherwise(marker)
    return kind, {"loss_cpu": _int(cpu, pl.Int32()), "loss_lost": _int(lost), "marker": marker}


def classify(lines: pl.LazyFrame, spec: FormatSpec, dialect: Dialect) -> pl.LazyFrame:
    """Split every line into prefix columns and a ``kind`` (see the module docstring).

    :param lines: ``line`` (UInt32, 1-based) and ``text``.
    :return: ``line text kind comm pid tgid cpu flags ts event body loss_cpu loss_lost
        marker reason``.
    """
    t = pl.col("text")
    class_kind, loss_cols = _line_classes(spec)
    pre = (
        pl.when(t.str.strip_chars() == "")
        .then(pl.lit("header"))
        .when(class_kind.is_not_null())
        .then(class_kind)
        .when(t.str.starts_with("#"))
        .then(pl.lit("header"))
        .when(t.str.starts_with(" =>"))
        .then(pl.lit("frame"))
    )
    lf = lines.with_columns(pre_kind=pre, **loss_cols).with_columns(**_fast_prefix())
    ok = (
        pl.col("f_ok")
        & _int(pl.col("f_pid")).is_not_null()
        & _int(pl.col("f_cpu")).is_not_null()
        & timestamp_ns(pl.col("f_ts")).is_not_null()
        & (pl.col("f_flags").is_null() | pl.col("f_flags").str.len_bytes().is_between(4, 7))
        & pl.col("f_tgid").is_null().or_(pl.col("f_tgid").str.len_bytes() > 0)
    )
    lf = lf.with_columns(fast=pl.col("pre_kind").is_null() & ok.fill_null(False))
    slow = (
        pl.when(pl.col("pre_kind").is_null() & ~pl.col("fast"))
        .then(t)
        .str.extract_groups(spec.line)
    )
    names = set(_group_names(spec.line))

    def group(name: str) -> pl.Expr:
        return slow.struct.field(name) if name in names else pl.lit(None, pl.String)

    cpu_s = pl.coalesce(group("cpu"), group("lcpu"))
    flags_s = pl.coalesce(group("flags"), group("lflags"))
    lf = lf.with_columns(
        comm=pl.when("fast").then("f_comm").otherwise(group("comm")),
        pid=_int(pl.when("fast").then("f_pid").otherwise(group("pid")), pl.Int32()),
        tgid=_int(pl.when("fast").then("f_tgid").otherwise(group("tgid")), pl.Int32()),
        cpu=_int(pl.when("fast").then("f_cpu").otherwise(cpu_s), pl.Int32()),
        flags=pl.when("fast").then("f_flags").otherwise(flags_s),
        ts=timestamp_ns(pl.when("fast").then("f_ts").otherwise(group("ts"))),
        rest=pl.when("fast").then("f_rest").otherwise(group("rest")),
    ).drop("f_ok", "f_comm", "f_pid", "f_tgid", "f_cpu", "f_flags", "f_ts", "f_rest")
    return lf.pipe(_name_events, dialect)


def _group_names(pattern: str) -> list[str]:
    return list(re.compile(pattern).groupindex)


def _name_events(lf: pl.LazyFrame, dialect: Dialect) -> pl.LazyFrame:
    # The text after "timestamp: " names the event: "name: payload" for tracepoints,
    # kprobes and trace_printk; "func <-parent" for the function tracer; "sys_x(args)"
    # and "sys_x -> ret" for syscall events; "<stack trace>" records.
    rest = pl.col("rest")
    if dialect.trace_cmd:
        rest = rest.str.strip_chars_start(" ").str.replace(r"^\(\+\d+\)\s+", "")
    # With sym-offset/sym-addr the ip of a print reads "tracing_mark_write+0x8a/0x170
    # <ffffffff8149895a>: text"; the event is still tracing_mark_write.
    rest = (
        pl.when(rest.str.contains("+0x", literal=True))
        .then(rest.str.replace(r"^([\w.]+)\+0x[0-9a-f]+/0x[0-9a-f]+(?: <[0-9a-f]+>)?: ", "$1: "))
        .otherwise(rest)
    )
    lf = lf.with_columns(rest=rest).with_columns(name_end=pl.col("rest").str.find(r"[\s:(]"))
    rest = pl.col("rest")
    end = pl.col("name_end")
    name = rest.str.slice(0, end)
    payload = rest.str.slice(end + 2)
    if dialect.trace_cmd:
        payload = payload.str.strip_chars_start(" ")
    parsed = pl.col("rest").is_not_null() & pl.col("pre_kind").is_null()
    syscall = name.str.strip_prefix("sys_")
    event = (
        pl.when(rest == "<stack trace>")
        .then(pl.lit("kernel_stack"))
        .when(rest == "<user stack trace>")
        .then(pl.lit("user_stack"))
        .when(rest.str.slice(end, 2) == ": ")
        .then(name)
        .when(rest.str.contains(" <-", literal=True) | end.is_null())
        .then(pl.lit("function"))
        .when(rest.str.slice(end, 1) == "(")
        .then(pl.concat_str(pl.lit("sys_enter_"), syscall))
        .when(rest.str.slice(end, 4) == " -> ")
        .then(pl.concat_str(pl.lit("sys_exit_"), syscall))
        .otherwise(pl.lit("print"))
    )
    body = (
        pl.when(rest.is_in(["<stack trace>", "<user stack trace>"]))
        .then(pl.lit(""))
        .when(rest.str.slice(end, 2) == ": ")
        .then(payload)
        .when(rest.str.slice(end, 4) == " -> ")
        .then(rest.str.slice(end + 1))
        .when(rest.str.slice(end, 1) == "(")
        .then(rest.str.slice(end))
        .otherwise(rest)
    )
    kind = (
        pl.when(pl.col("pre_kind").is_not_null())
        .then(pl.col("pre_kind"))
        .when(parsed)
        .then(pl.lit("event"))
        .otherwise(pl.lit("diag"))
    )
    return lf.with_columns(
        kind=kind,
        event=pl.when(parsed).then(event),
        body=pl.when(parsed).then(body),
    ).drop("pre_kind", "fast", "rest", "name_end")


def extract_args(events: pl.LazyFrame, spec: FormatSpec, dialect: Dialect) -> pl.LazyFrame:
    """Add ``args`` (the struct of all declared fields) and ``args_ok``.

    ``args_ok`` is false for a declared event whose payload matched none of its patterns.
    """
    fields = args_fields()
    per_field: dict[str, list[pl.Expr]] = {name: [] for name in fields}
    matched: list[pl.Expr] = []
    ev, body = pl.col("event"), pl.col("body")
    for espec in spec.events.values():
        mask = ev == espec.name
        hits: list[pl.Expr] = []
        for pattern in espec.patterns:
            groups = pl.when(mask).then(body).str.extract_groups(_with_sentinel(pattern))
            names = _group_names(pattern)
            hit = groups.struct.field(_HIT).is_not_null()
            hits.append(hit)
            for fname in names:
                value = pl.when(hit).then(groups.struct.field(fname))
                per_field[fname].append(_typed(value, espec.fields[fname]))
        matched.append(pl.when(mask).then(pl.any_horizontal(hits) if hits else pl.lit(True)))
    probe = _probe_fields(body, dialect)
    for fname, expr in probe.items():
        per_field[fname].insert(0, expr)
    columns = {
        name: (pl.coalesce(exprs) if exprs else pl.lit(None)).cast(fields[name]).alias(name)
        for name, exprs in per_field.items()
    }
    if dialect.kv:
        generic = ~ev.is_in(list(spec.events)) & pl.col("args_kv").is_null()
        columns["kv"] = pl.coalesce(columns["kv"], _kv(pl.when(generic).then(body)))
    declared_ok = pl.coalesce(matched) if matched else pl.lit(None, pl.Boolean)
    return (
        events.with_columns(args_kv=probe["kv"])
        .with_columns(args=pl.struct(list(columns.values())), args_ok=declared_ok.fill_null(True))
        .drop("args_kv")
    )


_HIT = "tt_hit"


def _with_sentinel(pattern: str) -> str:
    # An empty group that is "" when the pattern matched and null when it did not, since
    # every real group may legitimately be null (optional parts).
    flags = re.match(r"^(?:\(\?[a-zA-Z]+\))*", pattern)
    cut = flags.end() if flags else 0
    return f"{pattern[:cut]}(?P<{_HIT}>){pattern[cut:]}"


def _typed(value: pl.Expr, ftype: str) -> pl.Expr:
    dtype = DTYPES[ftype]
    if ftype == "str":
        return value
    if ftype == "hex":
        return _int(value.str.strip_prefix("0x"), dtype, base=16)
    if ftype == "int":
        hexa = _int(value.str.strip_prefix("0x"), dtype, base=16)
        return pl.when(value.str.starts_with("0x")).then(hexa).otherwise(_int(value, dtype))
    if ftype == "usecs":
        parts = value.str.split_exact(".", 1)
        frac = parts.struct.field("field_1").fill_null("").str.pad_end(3, "0").str.slice(0, 3)
        return _int(parts.struct.field("field_0")) * 1000 + _int(frac)
    if ftype == "depth":
        return ((value.str.len_bytes().cast(pl.Int32) - 2) // 2).cast(dtype)
    return _int(value, dtype)


def _probe_fields(body: pl.Expr, dialect: Dialect) -> dict[str, pl.Expr]:
    # Only payloads that start with "(" can be probe events; syscall entries also do,
    # but the engine already renamed those to sys_enter_*.
    candidate = body.str.starts_with("(") & ~pl.col("event").str.starts_with("sys_enter_")
    g = pl.when(candidate).then(body).str.extract_groups(PROBE)
    groups = {name: g.struct.field(name) for name in _group_names(PROBE)}
    if dialect.trace_cmd:
        groups["site"], groups["ret"] = groups["ret"], groups["site"]

    def f(name: str) -> pl.Expr:
        return groups[name]

    is_probe = f("func").is_not_null() | f("addr").is_not_null() | f("site").is_not_null()
    user = (f("addr").str.starts_with("0x") | f("site").str.starts_with("0x")).fill_null(False)
    is_return = f("site").is_not_null()
    probe = (
        pl.when(~is_probe)
        .then(None)
        .when(user & is_return)
        .then(pl.lit("uretprobe"))
        .when(user)
        .then(pl.lit("uprobe"))
        .when(is_return)
        .then(pl.lit("kretprobe"))
        .otherwise(pl.lit("kprobe"))
    )
    hexa = {
        k: f(k).str.strip_prefix("0x").str.to_integer(base=16, strict=False, dtype=pl.UInt64())
        for k in ("func_off", "func_size", "addr")
    }
    return {
        "probe": probe,
        "func": pl.coalesce(f("func"), pl.when(~user).then(f("ret"))),
        "func_off": hexa["func_off"],
        "func_size": hexa["func_size"],
        "mod": f("mod"),
        "addr": pl.coalesce(
            hexa["addr"],
            pl.when(user).then(
                f("ret")
                .str.strip_prefix("0x")
                .str.to_integer(base=16, strict=False, dtype=pl.UInt64())
            ),
        ),
        "site": f("site"),
        "kv": pl.when(is_probe).then(_kv(f("kvtext"))),
    }


def _kv(text: pl.Expr) -> pl.Expr:
    """``" a=1 b=0x10 s=\\"x y\\""`` to a list of ``{name, value, num}``."""
    pairs = text.str.extract_all(KV_PAIR)
    element = pl.element().str.splitn("=", 2)
    value = element.struct.field("field_1")
    unquoted = (
        pl.when(
            value.str.starts_with('"') & value.str.ends_with('"') & (value.str.len_bytes() >= 2)
        )
        .then(value.str.slice(1, value.str.len_bytes() - 2))
        .otherwise(value)
    )
    num = (
        pl.when(value.str.starts_with("0x"))
        .then(value.str.slice(2).str.to_integer(base=16, strict=False, dtype=pl.Int128()))
        .otherwise(value.str.to_integer(strict=False, dtype=pl.Int128()))
    )
    as_struct = pl.struct(name=element.struct.field("field_0"), value=unquoted, num=num)
    return pairs.list.eval(as_struct).cast(KV)


__all__ = ["PRINT_EVENTS", "PROBE", "PROBE_FIELDS", "Dialect", "classify", "extract_args"]
