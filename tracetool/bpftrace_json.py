"""The bpftrace ``-f json`` engine: NDJSON objects ``{"type": T, "data": D}``.

Every object becomes rows of the same tables as the text engine (``bpftrace.py``):

``printf``            an event: declared formats (inherited from the text format) name
                      and type it, others stay ``printf``; kstack lines inside the data
                      become its ``stack``
``map`` ``stats``     ``maps`` rows (one per key; stats() one per statistic)
``hist``              ``histograms`` rows (inclusive ``min``/``max`` become ``lower`` and
                      the exclusive ``upper``; a missing bound is an open bucket)
``tseries``           ``maps`` rows with ``stat = "tseries"``, ``ts`` the interval start
                      (ns since the epoch, as printed)
``time``              a header that sets the wall clock of the rows after it
``attached_probes``   a header (``InputInfo.meta["probes"]``)
``lost_events``       a loss with its count
``helper_error``      an event ``helper_error`` (helper, msg, retcode, location)
other types           an event named after the type, the data as body

JSON is read with polars' own decoding (``str.json_path_match``) for strings and
numbers. Map objects are split into key/value pairs with a regex instead, because
bpftrace repeats object keys (a ``char[]`` key keeps the bytes after its NUL, so two
keys print alike) and a JSON decoder keeps only one of them. Objects printed over
several lines (the runtime-test fixtures) are grouped back by bracket depth.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from tracetool.bpftrace import (
    TIME,
    _int,
    empty_records,
    finish_record,
    hist_func,
    name_printf,
    no_context,
    split_keys,
    timestamps_kind,
    wall_ns,
)
from tracetool.catalogue import FormatSpec
from tracetool.ftrace import Dialect

Records = dict[str, pl.DataFrame]

SAFE_LINE = re.compile(rb'\{(?:"type"|\s*$)')
UNPARSED = "not part of a JSON object: bpftrace -f json prints one object per line"
MALFORMED = 'malformed JSON object (no "type", or cut short)'

_STR = r'"(?:[^"\\]|\\.)*"'
_ARRAY = rf"\[(?:{_STR}|[^\[\]\"]|\[(?:{_STR}|[^\[\]\"]|\[[^\[\]]*\])*\])*\]"
_OBJECT = rf"\{{(?:{_STR}|[^{{}}\"]|\{{(?:{_STR}|[^{{}}\"]|\{{[^{{}}]*\}})*\}})*\}}"
_VALUE = rf"(?:{_STR}|{_ARRAY}|{_OBJECT}|[^,\s{{}}\[\]\"]+)"
PAIR = rf"{_STR}\s*:\s*{_VALUE}"
PAIR_PARTS = rf"(?s)^(?P<k>{_STR})\s*:\s*(?P<v>.*)$"
STAT_NAMES = ["count", "average", "total", "min", "max"]


def unescape(quoted: pl.Expr) -> pl.Expr:
    """A JSON string literal's text (quotes off, the escapes bpftrace writes undone)."""
    s = quoted.str.strip_chars().str.strip_prefix('"').str.strip_suffix('"')
    s = s.str.replace_all("\\\\", "\x00", literal=True)  # an escaped backslash
    for esc, char in (("\\n", "\n"), ("\\t", "\t"), ('\\"', '"'), ("\\/", "/"), ("\\r", "\r")):
        s = s.str.replace_all(esc, char, literal=True)
    return s.str.replace_all("\x00", "\\", literal=True)


def classify(lines: pl.LazyFrame, spec: FormatSpec, dialect: Dialect) -> pl.LazyFrame:
    """Group lines into objects (``obj``: the line an object starts on) by bracket depth
    outside strings. A line that is one whole ``{"type"...}`` object and a blank line
    end any open object, so a stray bracket in a line that is not JSON cannot swallow
    more than the lines up to the next of them."""
    t = pl.col("text")
    blank = t.str.strip_chars() == ""
    whole = t.str.starts_with('{"type"') & t.str.strip_chars_end().str.ends_with("}")
    bare = pl.when(~whole & ~blank).then(t).str.replace_all(_STR, "")
    opens = bare.str.count_matches(r"[\[{]").cast(pl.Int64)
    delta = (opens - bare.str.count_matches(r"[\]}]").cast(pl.Int64)).fill_null(0)
    # Depth since the last reset (blank or whole line): the running sum minus its value
    # at that reset. A negative depth (a stray closing bracket) counts as zero.
    reset = whole | blank
    lf = lines.with_columns(__cs=delta.cum_sum(), __whole=whole, __blank=blank, __reset=reset)
    base = pl.when(pl.col("__reset")).then(pl.col("__cs")).forward_fill().fill_null(0)
    lf = lf.with_columns(__after=pl.col("__cs") - base).with_columns(
        __before=pl.when(pl.col("__reset"))
        .then(0)
        .otherwise(pl.col("__after").shift(1).fill_null(0).clip(lower_bound=0))
    )
    start = pl.col("__whole") | (
        ~pl.col("__blank")
        & (pl.col("__before") <= 0)
        & t.str.strip_chars_start().str.starts_with("{")
    )
    inside = (pl.col("__before") > 0) & ~start & ~pl.col("__blank")
    lf = lf.with_columns(
        obj=pl.when(start).then(pl.col("line")).when(inside).then(None).otherwise(pl.lit(0)),
        __member=start | inside,
    ).with_columns(obj=pl.col("obj").forward_fill().fill_null(0))
    # Lines inside brackets that no object opened are not JSON either.
    member = pl.col("__member") & (pl.col("obj") > 0)
    return lf.with_columns(
        kind=pl.when(member)
        .then(None)
        .when(pl.col("__blank"))
        .then(pl.lit("header"))
        .otherwise(pl.lit("diag")),
        obj=pl.when(member).then("obj").otherwise(0),
        marker=pl.when(pl.col("__blank")).then(pl.lit("blank")),
        **no_context(),
        loss_lost=pl.lit(None, pl.Int64),
    ).drop("__cs", "__whole", "__blank", "__reset", "__after", "__before", "__member")


def _objects(df: pl.DataFrame) -> pl.DataFrame:
    """One row per object: ``obj`` (its first line), ``json`` (its lines joined)."""
    member = (pl.col("obj") > 0) & pl.col("kind").is_null()
    multi = df.filter(member).group_by("obj").len().filter(pl.col("len") > 1)
    single = df.filter(member & ~pl.col("obj").is_in(multi.get_column("obj").implode()))
    joined = (
        df.filter(member & pl.col("obj").is_in(multi.get_column("obj").implode()))
        .group_by("obj", maintain_order=True)
        .agg(json=pl.col("text").str.join("\n"))
    )
    return pl.concat([single.select("obj", json="text"), joined]).sort("obj")


def fold(df: pl.DataFrame, spec: FormatSpec, file: str) -> tuple[pl.DataFrame, Records]:
    """Decode every object into events, headers, losses and the record tables."""
    objs = _objects(df)
    j = pl.col("json")
    # Each JSON or list step runs only on the rows it is for (a when/then computes its
    # branches on every row, so the input is masked, not the result).
    fast = j.str.extract(r'^\{"type": ?"(\w+)"', 1)
    objs = objs.with_columns(
        type=pl.coalesce(fast, pl.when(fast.is_null()).then(j).str.json_path_match("$.type"))
    )
    t = pl.col("type")
    # The data's own JSON text, for all but printf (whose data is only ever a string).
    objs = objs.with_columns(
        raw=pl.when(t != "printf").then(j).str.extract(r'(?s)"data"\s*:\s*(.*?)\s*\}\s*$', 1)
    )
    is_str = (t == "printf") | pl.col("raw").str.starts_with('"')
    objs = objs.with_columns(text=pl.when(is_str).then(j).str.json_path_match("$.data"))
    clock = (
        pl.when(t == "time").then(pl.col("text")).str.strip_chars().str.extract_groups(TIME)
    ).struct.field
    objs = objs.with_columns(
        wall=wall_ns(clock("h"), clock("m"), clock("s"), clock("frac"))
    ).with_columns(__wall=pl.col("wall").forward_fill())
    maplike = t.is_in(["map", "hist", "stats", "tseries"])
    err = pl.when(t == "helper_error").then(j)
    helper = pl.format(
        "{}: {} (retcode {}) at {}:{}:{}",
        *(
            err.str.json_path_match(f"$.{k}")
            for k in ("helper", "msg", "retcode", "filename", "line", "col")
        ),
    )
    loss = pl.when(t == "lost_events")
    lost = pl.coalesce(
        loss.then(j).str.json_path_match("$.data.events"),
        loss.then(pl.col("raw")).str.extract(r"^(\d+)$", 1),
    )
    printf = t == "printf"
    # A printf whose data holds more than its final newline (a kstack, a multi-line
    # format) is split into its text lines and its indented frame lines.
    multi = printf & pl.col("text").str.strip_suffix("\n").str.contains("\n", literal=True)
    lines = pl.when(multi).then(pl.col("text")).str.strip_suffix("\n").str.split("\n")
    frame_line = pl.element().str.contains(r"^\s+\S")
    objs = objs.with_columns(
        okind=pl.when(t.is_null())
        .then(pl.lit("diag"))
        .when(t.is_in(["attached_probes", "time"]))
        .then(pl.lit("header"))
        .when(t == "lost_events")
        .then(pl.lit("loss"))
        .when(maplike)
        .then(pl.lit("record"))
        .otherwise(pl.lit("event")),
        oevent=pl.when(printf).then(None).otherwise(t),
        obody=pl.when(t == "helper_error")
        .then(helper)
        .when(multi)
        .then(
            lines.list.eval(pl.element().filter(~frame_line & (pl.element() != ""))).list.join("\n")
        )
        .when(printf)
        .then(pl.col("text").str.strip_suffix("\n"))
        .otherwise(pl.coalesce("text", "raw")),
        oframes=lines.list.eval(pl.element().filter(frame_line).str.strip_chars()),
    ).with_columns(
        oframes=pl.when(pl.col("oframes").list.len() > 0).then("oframes"),
        olost=_int(lost),
    )
    first = pl.col("line") == pl.col("obj")
    df = df.join(
        objs.select("obj", "okind", "oevent", "obody", "oframes", "olost", "__wall"),
        on="obj",
        how="left",
        maintain_order="left",
    )
    member = pl.col("kind").is_null()
    okind = pl.col("okind")
    later = (
        pl.when(okind == "event")
        .then(pl.lit("cont"))
        .when(okind == "loss")
        .then(pl.lit("record"))
        .otherwise(okind)
    )
    df = df.with_columns(
        kind=pl.when(member & first).then(okind).when(member).then(later).otherwise("kind"),
        body=pl.when(member & first & (okind == "event")).then("obody"),
        event=pl.when(member & first & (okind == "event")).then("oevent"),
        loss_lost=pl.when(member & first & (okind == "loss")).then("olost"),
        marker=pl.when(member & first & (okind == "loss"))
        .then(pl.lit("lost_events"))
        .otherwise("marker"),
        reason=pl.when(pl.col("kind") == "diag")
        .then(pl.lit(UNPARSED))
        .when(member & (okind == "diag"))
        .then(pl.lit(MALFORMED)),
        frames_k=pl.when(member & first & (okind == "event")).then("oframes"),
        frames_u=pl.lit(None, pl.List(pl.String)),
        wall=pl.col("__wall"),
    )
    named = name_printf(df.with_columns(event=pl.lit(None, pl.String)), spec)
    taken = [
        c for c in named.columns if c in ("pid", "tgid", "comm", "cpu") or c.startswith("arg_")
    ]
    df = df.with_columns(
        *(named.get_column(c) for c in taken),
        event=pl.coalesce("event", named.get_column("event")),
        ts=pl.coalesce(
            named.get_column("ts"),
            pl.when(pl.col("kind") == "event").then("wall")
            if named.get_column("ts_field").is_null().all()
            else None,
        ),
    ).with_columns(kind=pl.when(pl.col("kind") == "event").then(pl.lit("event")).otherwise("kind"))
    drop = ["okind", "oevent", "obody", "oframes", "olost", "__wall"]
    records = _records(objs.filter(maplike), file)
    return df.drop(drop), records


def _pairs(objs: pl.DataFrame, text: str, prefix: str) -> pl.DataFrame:
    """Explode the top-level ``"key": value`` pairs of the object in ``text`` into
    ``<prefix>key`` (unescaped) and ``<prefix>v`` (the value's JSON text)."""
    inner = pl.col(text).str.strip_chars().str.strip_prefix("{").str.strip_suffix("}")
    out = objs.with_columns(__pairs=inner.str.extract_all(PAIR)).explode("__pairs")
    out = out.filter(pl.col("__pairs").is_not_null())
    parts = pl.col("__pairs").str.extract_groups(PAIR_PARTS).struct.field
    return out.with_columns(
        **{f"{prefix}key": unescape(parts("k")), f"{prefix}v": parts("v").str.strip_chars()}
    ).drop("__pairs")


def _keys(key: pl.Expr) -> pl.Expr:
    """A JSON map key to its keys: a kstack/ustack key (it holds newlines) is one key of
    stripped frames; otherwise keys joined by "," are split."""
    frames = (
        key.str.split("\n")
        .list.eval(pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != ""))
        .list.join("\n")
    )
    return (
        pl.when(key.str.contains("\n", literal=True))
        .then(pl.concat_list(frames))
        .otherwise(split_keys(key, sep=","))
    )


def _records(objs: pl.DataFrame, file: str) -> Records:
    if objs.is_empty():
        return empty_records()
    maps = _pairs(objs.select("obj", "type", "raw", ts="__wall"), "raw", "m")
    shape = pl.col("mv").str.slice(0, 1)
    scalar = maps.filter(~shape.is_in(["{", "["]))
    arrays = maps.filter(shape == "[").with_columns(keys=pl.lit([], pl.List(pl.String)))
    objects = _pairs(maps.filter(shape == "{"), "mv", "k")
    # stats() of a scalar map prints {"count": .., "average": .., "total": ..}.
    is_stat = pl.col("kkey").is_in(STAT_NAMES) & ~pl.col("kv").str.starts_with("{")
    whole_stat = (pl.col("type") == "stats") & is_stat.all().over("obj", "mkey")
    stat_rows = objects.filter(whole_stat).select(
        "obj", "ts", "mkey", keys=pl.lit([], pl.List(pl.String)), stat="kkey", v="kv"
    )
    keyed = objects.filter(~whole_stat).with_columns(keys=_keys(pl.col("kkey")))
    kshape = pl.col("kv").str.slice(0, 1)
    keyed_stats = _pairs(
        keyed.filter(kshape == "{").select("obj", "ts", "mkey", "keys", "kv"), "kv", "s"
    ).select("obj", "ts", "mkey", "keys", stat="skey", v="sv")
    plain = pl.concat(
        [
            scalar.select("obj", "ts", "mkey", keys=pl.lit([], pl.List(pl.String)), v="mv"),
            keyed.filter(~kshape.is_in(["{", "["])).select("obj", "ts", "mkey", "keys", v="kv"),
        ]
    ).with_columns(stat=pl.lit(None, pl.String))
    values = pl.concat([plain, stat_rows, keyed_stats], how="diagonal_relaxed").with_columns(
        value=pl.when(pl.col("v").str.starts_with('"')).then(unescape(pl.col("v"))).otherwise("v")
    )
    series = pl.concat(
        [
            arrays.select("obj", "type", "ts", "mkey", "keys", arr="mv"),
            keyed.filter(kshape == "[").select("obj", "type", "ts", "mkey", "keys", arr="kv"),
        ]
    ).with_columns(
        block=pl.int_range(pl.len()),
        item=pl.col("arr").str.extract_all(r"\{[^{}]*\}"),
    )
    items = series.explode("item").filter(pl.col("item").is_not_null())

    def num(name: str) -> pl.Expr:
        return _int(pl.col("item").str.extract(rf'"{name}"\s*:\s*(-?\d+)', 1))

    hist = (
        items.filter(pl.col("type") == "hist")
        .with_columns(lower=num("min"), upper=num("max") + 1, count=num("count"))
        .with_columns(func=hist_func(pl.col("lower"), pl.col("upper"), "block"))
        .select(
            line="obj",
            ts="ts",
            map="mkey",
            keys="keys",
            func="func",
            lower="lower",
            upper="upper",
            count="count",
        )
    )
    start = pl.col("item").str.extract(r'"interval_start"\s*:\s*"([^"]*)"', 1)
    tseries = items.filter(pl.col("type") == "tseries").select(
        line="obj",
        ts=start.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="ns").dt.epoch(
            "ns"
        ),
        map="mkey",
        keys="keys",
        value=pl.col("item").str.extract(r'"value"\s*:\s*([^,}\s]+)', 1),
        stat=pl.lit("tseries"),
    )
    rows = pl.concat(
        [
            values.select(line="obj", ts="ts", map="mkey", keys="keys", value="value", stat="stat"),
            tseries,
        ]
    ).with_columns(num=_int(pl.col("value")))
    return {
        "maps": finish_record(rows.sort("line"), "maps", file),
        "histograms": finish_record(hist, "histograms", file),
    }


def head_meta(head: list[str], spec: FormatSpec) -> dict[str, Any]:
    """``probes`` from the ``attached_probes`` object and the ``timestamps`` kind of the
    first printf objects (see ``bpftrace.timestamps_kind``)."""
    meta: dict[str, Any] = {}
    texts: list[str] = []
    for text in head:
        m = re.search(r'"type": ?"attached_probes".*"probes": ?(\d+)', text)
        if m and "probes" not in meta:
            meta["probes"] = int(m.group(1))
        p = re.match(r'^\{"type": ?"(printf|time)", "data": "(.*)"\}\s*$', text)
        if p:
            data = p.group(2).replace("\\n", "\n").split("\n")[0]
            texts.append(data)
    meta["timestamps"] = timestamps_kind(texts, spec)
    return meta
