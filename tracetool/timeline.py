"""Per-device timelines: calls and instants as ``spans``, each resolved to a device and
carrying the locks held over it.

``spans`` (one row per interval on an entity; instants have ``start_ts == end_ts``):

``device``        the PCI name (``0004:00:00.0``) where the trace lets us resolve it; else
                  the pointer or function handle the event carried (``dev@0x8f3a40c8``)
``device_how``    ``exact`` (the event names the device), ``inferred`` (correlated; see
                  ``device_why`` and ``device_evidence``), ``pointer`` (no name known)
``kind``          attach, detach, release, probe, dma_init, flush, lock, ... or ``call``
``func``          the function (calls) or event name (instants)
``start_ts`` ``end_ts`` ``exact``   ``exact`` is false when an end had to be bounded by
                  the task's neighbouring event (no return traced)
``lockset``       locks held over the whole span: traced holds (``lock@0x...``) and the
                  ones the kernel era guarantees (``group->mutex``)
``evidence``      ``path:line`` of the lines the span was built from

Calls come from kprobe/kretprobe pairs (per task, nesting and recursion by depth),
function_graph entries/exits, and function-tracer entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tracetool import graph
from tracetool.events import KV
from tracetool.kernel import (
    ARG_NAMES,
    ARG_ROLES,
    LOCK_ACQUIRE,
    LOCK_RELEASE,
    SPAN_KINDS,
    SYMBOL_ERAS,
    EraChoice,
    implicit_locks,
    infer_era,
)

PCI_NAME = r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$"
# A name event is tied to the last keyed call of its task only this close in time.
CORRELATE_NS = 10_000_000

SPANS_SCHEMA = pl.Schema(
    {
        "device": pl.String(),
        "device_how": pl.String(),
        "device_why": pl.String(),
        "kind": pl.String(),
        "func": pl.String(),
        "start_ts": pl.Int64(),
        "end_ts": pl.Int64(),
        "exact": pl.Boolean(),
        "pid": pl.Int32(),
        "tgid": pl.Int32(),
        "comm": pl.String(),
        "cpu": pl.Int32(),
        "lockset": pl.List(pl.String()),
        "ret": pl.Int64(),
        "domain": pl.UInt64(),
        "lock": pl.String(),
        "file": pl.String(),
        "start_line": pl.UInt32(),
        "end_line": pl.UInt32(),
        "evidence": pl.List(pl.String()),
        "device_evidence": pl.List(pl.String()),
    }
)


@dataclass
class Timeline:
    """Spans of one trace and the kernel era they were read with."""

    spans: pl.LazyFrame
    era: EraChoice


def task_key() -> pl.Expr:
    """Task identity: the pid, except that every CPU's idle task (pid 0) is its own."""
    return (
        pl.when(pl.col("pid").is_null() | (pl.col("pid") == 0))
        .then(-1 - pl.col("cpu"))
        .otherwise(pl.col("pid"))
        .alias("task")
    )


def _where(file: str, line: str) -> pl.Expr:
    return pl.format("{}:{}", pl.col(file), pl.col(line))


# ---------------------------------------------------------------------------------------
# calls: probe pairs, function_graph, function tracer
# ---------------------------------------------------------------------------------------


def _ret_value(kv: pl.Expr) -> pl.Expr:
    """The return value a kretprobe printed (``ret=``/``retval=``/``$retval``)."""
    return (
        kv.list.eval(
            pl.element()
            .filter(pl.element().struct.field("name").is_in(["ret", "retval", "$retval", "rc"]))
            .struct.field("num")
        )
        .list.first()
        .cast(pl.Int64, strict=False)
    )


def _probe_calls(events: pl.LazyFrame) -> pl.LazyFrame:
    a = pl.col("args")
    probes = (
        events.filter(a.struct.field("probe").is_in(["kprobe", "kretprobe"]))
        .select(
            "file",
            "line",
            "ts",
            "cpu",
            "pid",
            "tgid",
            "comm",
            "event",
            task_key(),
            func=a.struct.field("func"),
            probe=a.struct.field("probe"),
            kv=a.struct.field("kv"),
        )
        .sort("file", "task", "line")
    )
    who = ["file", "task"]
    # Several probes on one function fire together (s390_rel and p_..._0): consecutive
    # probe events of a task on the same function and side are one firing, unless an
    # event name repeats, which is recursion.
    changed = (pl.col("func") != pl.col("func").shift(1)) | (
        pl.col("probe") != pl.col("probe").shift(1)
    )
    probes = probes.with_columns(run=changed.fill_null(True).cum_sum().over(who)).with_columns(
        firing=pl.int_range(pl.len()).over([*who, "run", "event"])
    )
    has_kv = pl.col("kv").list.len() > 0
    fired = probes.group_by([*who, "run", "firing"]).agg(
        pl.col("line").min(),
        last_line=pl.col("line").max(),
        ts=pl.col("ts").min(),
        cpu=pl.col("cpu").first(),
        pid=pl.col("pid").first(),
        tgid=pl.col("tgid").first(),
        comm=pl.col("comm").first(),
        func=pl.col("func").first(),
        probe=pl.col("probe").first(),
        kv=pl.col("kv").filter(has_kv).first(),
        lines=pl.col("line"),
    )
    side = ["file", "task", "func"]
    is_ret = pl.col("probe") == "kretprobe"
    fired = fired.sort("file", "task", "func", "line").with_columns(
        level=pl.when(is_ret).then(-1).otherwise(1).cum_sum().over(side) + is_ret.cast(pl.Int32)
    )
    grp = [*side, "level"]
    nxt = {
        c: pl.col(c).shift(-1).over(grp)
        for c in ("probe", "ts", "line", "last_line", "kv", "lines")
    }
    prev_probe = pl.col("probe").shift(1).over(grp)
    fired = fired.with_columns(
        nxt_ret=nxt["probe"] == "kretprobe",
        nxt_ts=nxt["ts"],
        nxt_line=nxt["line"],
        nxt_last=nxt["last_line"],
        nxt_kv=nxt["kv"],
        nxt_lines=nxt["lines"],
        orphan_ret=is_ret & (prev_probe != "kprobe").fill_null(True),
    )
    entry = ~is_ret
    paired = pl.col("nxt_ret").fill_null(False)
    base = ("file", "task", "pid", "tgid", "comm", "cpu", "func")
    entries = fired.filter(entry).select(
        *base,
        start_ts="ts",
        end_ts=pl.when(paired).then("nxt_ts"),
        exact=paired,
        start_line="line",
        end_line=pl.when(paired).then("nxt_line"),
        last_line=pl.when(paired).then("nxt_last").otherwise("last_line"),
        kv="kv",
        ret=pl.when(paired).then(_ret_value(pl.col("nxt_kv"))),
        lines=pl.when(paired).then(pl.concat_list("lines", "nxt_lines")).otherwise("lines"),
    )
    orphans = fired.filter(pl.col("orphan_ret")).select(
        *base,
        start_ts=pl.lit(None, pl.Int64),
        end_ts="ts",
        exact=pl.lit(False),
        start_line="line",
        end_line="line",
        last_line="last_line",
        kv=pl.lit(None, KV),
        ret=_ret_value(pl.col("kv")),
        lines="lines",
    )
    return pl.concat([entries, orphans], how="vertical_relaxed").with_columns(
        name=pl.lit(None, pl.String)
    )


def _graph_calls(events: pl.LazyFrame) -> pl.LazyFrame:
    calls = graph.calls(events).filter(pl.col("start_ts").is_not_null())
    return calls.select(
        "file",
        task_key(),
        "pid",
        tgid=pl.lit(None, pl.Int32),
        comm="comm",
        cpu="cpu",
        func="func",
        start_ts="start_ts",
        end_ts="end_ts",
        exact=pl.col("end_ts").is_not_null(),
        start_line=pl.coalesce("entry_line", "exit_line"),
        end_line="exit_line",
        last_line=pl.coalesce("exit_line", "entry_line"),
        kv=pl.lit(None, KV),
        ret=pl.lit(None, pl.Int64),
        lines=pl.concat_list("entry_line", "exit_line").list.drop_nulls().list.unique(),
        name=pl.lit(None, pl.String),
    )


def _function_calls(events: pl.LazyFrame) -> pl.LazyFrame:
    """Function-tracer entries: the start is exact, the end is not traced."""
    return events.filter(pl.col("event") == "function").select(
        "file",
        task_key(),
        "pid",
        "tgid",
        "comm",
        "cpu",
        func=pl.col("args").struct.field("func"),
        start_ts="ts",
        end_ts=pl.lit(None, pl.Int64),
        exact=pl.lit(False),
        start_line="line",
        end_line=pl.lit(None, pl.UInt32),
        last_line="line",
        kv=pl.lit(None, KV),
        ret=pl.lit(None, pl.Int64),
        lines=pl.concat_list("line"),
        name=pl.lit(None, pl.String),
    )


def _instants(events: pl.LazyFrame) -> pl.LazyFrame:
    """Events (not calls) that name a device or have a kind: instants on the timeline."""
    a = pl.col("args")
    device = a.struct.field("device")
    is_call = a.struct.field("probe").is_not_null() | pl.col("event").is_in(
        ["function", "funcgraph_entry", "funcgraph_exit", "kernel_stack", "user_stack"]
    )
    keep = ~is_call & (pl.col("event").is_in(list(SPAN_KINDS)) | device.str.contains(PCI_NAME))
    return events.filter(keep).select(
        "file",
        task_key(),
        "pid",
        "tgid",
        "comm",
        "cpu",
        func="event",
        start_ts="ts",
        end_ts="ts",
        exact=pl.lit(True),
        start_line="line",
        end_line="line",
        last_line="line",
        kv=pl.lit(None, KV),
        ret=pl.lit(None, pl.Int64),
        lines=pl.concat_list("line"),
        name=pl.when(device.str.contains(PCI_NAME)).then(device),
    )


def _bound_ends(rows: pl.LazyFrame, events: pl.LazyFrame) -> pl.LazyFrame:
    """Fill unknown ends with the task's next event and unknown starts with its previous
    one (``exact`` is already false for them)."""
    stream = events.select("file", task_key(), "line", "ts").drop_nulls("ts").sort("line")
    rows = rows.sort("last_line").join_asof(
        stream.rename({"line": "n_line", "ts": "n_ts"}),
        left_on="last_line",
        right_on="n_line",
        by=["file", "task"],
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    rows = rows.sort("start_line").join_asof(
        stream.rename({"line": "p_line", "ts": "p_ts"}),
        left_on="start_line",
        right_on="p_line",
        by=["file", "task"],
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    last_ts = events.group_by("file").agg(f_last=pl.col("ts").max())
    return (
        rows.join(last_ts, on="file", how="left")
        .with_columns(
            end_ts=pl.coalesce("end_ts", "n_ts", "f_last"),
            start_ts=pl.coalesce("start_ts", "p_ts", "end_ts"),
        )
        .drop("n_line", "n_ts", "p_line", "p_ts", "f_last")
    )


# ---------------------------------------------------------------------------------------
# device keys and attribution
# ---------------------------------------------------------------------------------------


def _roles() -> pl.LazyFrame:
    rows = [
        {"func": func, "name": f"arg{i}", "role_pos": role}
        for func, roles in ARG_ROLES.items()
        for i, role in enumerate(roles, start=1)
    ]
    return pl.LazyFrame(rows, schema={"func": pl.String, "name": pl.String, "role_pos": pl.String})


def _keys(rows: pl.LazyFrame) -> pl.LazyFrame:
    """``dev``, ``zdev``, ``fh``, ``domain``, ``lock`` and a PCI ``name`` from fetch-args:
    named (``dev=``, ``zdev=``, ``fn=``) or positional (``arg2`` of attach is the device)."""
    kv = (
        rows.select("rid", "func", "kv")
        .explode("kv")
        .drop_nulls("kv")
        .unnest("kv")
        .join(_roles(), on=["func", "name"], how="left")
        .with_columns(
            role=pl.coalesce(pl.col("name").replace_strict(ARG_NAMES, default=None), "role_pos"),
            u64=pl.col("num").cast(pl.UInt64, strict=False),
            pci=pl.col("value").str.strip_chars('"').str.extract(f"({PCI_NAME[1:-1]})", 1),
        )
    )

    def role(name: str) -> pl.Expr:
        return pl.col("u64").filter(pl.col("role") == name).first()

    keys = kv.group_by("rid").agg(
        dev=role("dev"),
        zdev=role("zdev"),
        fh=pl.coalesce(role("fh"), role("fn") // (1 << 32)),
        domain=role("domain"),
        lock=role("lock"),
        kv_name=pl.col("pci").drop_nulls().first(),
    )
    return (
        rows.join(keys, on="rid", how="left")
        .with_columns(name=pl.coalesce("name", "kv_name"))
        .drop("kv_name")
    )


_KEYS = ("dev", "zdev", "fh")


def _mappings(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Pointer/handle -> PCI name, from a task's last keyed call before an event that
    names the device (probe_device then add_device_to_group, release_device then
    remove_device_from_group, attach then attach_device_to_domain)."""
    named = rows.filter(pl.col("name").is_not_null()).select(
        "file", "task", "start_line", "start_ts", "name", n_func="func"
    )
    out = []
    for key in _KEYS:
        keyed = (
            rows.filter(pl.col("name").is_null() & pl.col(key).is_not_null())
            .select("file", "task", "func", k_line="start_line", k_ts="start_ts", key=key)
            .sort("k_line")
        )
        m = (
            named.sort("start_line")
            .join_asof(
                keyed,
                left_on="start_line",
                right_on="k_line",
                by=["file", "task"],
                strategy="backward",
                check_sortedness=False,
            )
            .filter(
                pl.col("key").is_not_null() & (pl.col("start_ts") - pl.col("k_ts") <= CORRELATE_NS)
            )
            .select(
                "file",
                "key",
                "name",
                ts="start_ts",
                kind=pl.lit(key),
                why=pl.format(
                    "{} {}={} is the last call of its task before {} names {}",
                    "func",
                    pl.lit(key),
                    hex_str(pl.col("key")),
                    "n_func",
                    "name",
                ),
                ev=pl.concat_list(_where("file", "k_line"), _where("file", "start_line")),
            )
        )
        out.append(m)
    return pl.concat(out)


def hex_str(expr: pl.Expr) -> pl.Expr:
    """An unsigned 64-bit integer as ``0x`` lowercase hex, vectorised nibble by nibble."""
    u = expr.cast(pl.UInt64)
    nibbles = [
        ((u // (1 << (4 * i))) % 16).replace_strict(
            list(range(16)), list("0123456789abcdef"), return_dtype=pl.String
        )
        for i in reversed(range(16))
    ]
    digits = pl.concat_str(nibbles).str.strip_chars_start("0")
    return (
        pl.when(u.is_null())
        .then(None)
        .otherwise(pl.concat_str(pl.lit("0x"), digits.replace("", "0")))
    )


def _resolve_by_keys(rows: pl.LazyFrame, maps: pl.LazyFrame) -> pl.LazyFrame:
    """Give unnamed rows the name their pointer or handle maps to nearest in time (an
    earlier mapping first: a pointer may be reused after the device is gone)."""
    rows = rows.sort("start_ts")
    for key in _KEYS:
        m = (
            maps.filter(pl.col("kind") == key)
            .select(
                "file",
                m_key="key",
                m_ts="ts",
                m_name="name",
                m_why="why",
                m_ev="ev",
            )
            .sort("m_ts")
        )
        for strategy in ("backward", "forward"):
            rows = (
                rows.join_asof(
                    m,
                    left_on="start_ts",
                    right_on="m_ts",
                    by_left=["file", key],
                    by_right=["file", "m_key"],
                    strategy=strategy,
                    check_sortedness=False,
                )
                .with_columns(
                    hit=pl.col("device").is_null() & pl.col("m_name").is_not_null(),
                )
                .with_columns(
                    device=pl.when("hit").then("m_name").otherwise("device"),
                    device_how=pl.when("hit").then(pl.lit("inferred")).otherwise("device_how"),
                    device_why=pl.when("hit").then("m_why").otherwise("device_why"),
                    device_evidence=pl.when("hit").then("m_ev").otherwise("device_evidence"),
                )
                .drop("m_ts", "m_name", "m_why", "m_ev", "hit")
            )
    return rows


def _resolve_nested(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Rows still without a device take the device of the call of their task that was
    running when they started (``zpci_dma_exit_device`` inside an attach)."""
    outer = (
        rows.filter(pl.col("device").is_not_null() & (pl.col("end_ts") > pl.col("start_ts")))
        .select(
            "file",
            "task",
            o_line="start_line",
            o_end="end_ts",
            o_dev="device",
            o_func="func",
            o_ev=pl.concat_list(_where("file", "start_line")),
        )
        .sort("o_line")
    )
    rows = rows.sort("start_line").join_asof(
        outer,
        left_on="start_line",
        right_on="o_line",
        by=["file", "task"],
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    hit = pl.col("device").is_null() & (pl.col("o_end") >= pl.col("end_ts"))
    return (
        rows.with_columns(hit=hit.fill_null(False))
        .with_columns(
            device=pl.when("hit").then("o_dev").otherwise("device"),
            device_how=pl.when("hit").then(pl.lit("inferred")).otherwise("device_how"),
            device_why=pl.when("hit")
            .then(
                pl.format(
                    "ran inside {} ({}) on {}", "o_func", pl.col("o_ev").list.first(), "o_dev"
                )
            )
            .otherwise("device_why"),
            device_evidence=pl.when("hit").then("o_ev").otherwise("device_evidence"),
        )
        .drop("o_line", "o_end", "o_dev", "o_func", "o_ev", "hit")
    )


def _learned(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Mappings learned from rows resolved by nesting: their own zdev/fh keys."""
    nested = rows.filter(pl.col("device_why").str.starts_with("ran inside"))
    return pl.concat(
        [
            nested.filter(pl.col(key).is_not_null()).select(
                "file",
                key=key,
                name="device",
                ts="start_ts",
                kind=pl.lit(key),
                why=pl.format(
                    "{} {}={} {}", "func", pl.lit(key), hex_str(pl.col(key)), "device_why"
                ),
                ev="device_evidence",
            )
            for key in _KEYS
        ]
    )


def _attribute(rows: pl.LazyFrame) -> pl.LazyFrame:
    rows = rows.with_columns(
        device=pl.col("name"),
        device_how=pl.when(pl.col("name").is_not_null()).then(pl.lit("exact")),
        device_why=pl.when(pl.col("name").is_not_null()).then(pl.lit("named by the event")),
        device_evidence=pl.lit(None, pl.List(pl.String)),
    )
    # Each step reads its input twice; materialise so plans do not grow exponentially.
    rows = _resolve_by_keys(rows, _mappings(rows).collect().lazy()).collect().lazy()
    rows = _resolve_nested(rows).collect().lazy()
    rows = _resolve_by_keys(rows, _learned(rows).collect().lazy()).collect().lazy()
    # No name anywhere: the key itself identifies the device within its lifetime.
    own = pl.coalesce(
        pl.format("dev@{}", hex_str(pl.col("dev"))),
        pl.format("zdev@{}", hex_str(pl.col("zdev"))),
        pl.format("fh@{}", hex_str(pl.col("fh"))),
    )
    unresolved = pl.col("device").is_null() & own.is_not_null()
    return rows.with_columns(
        device=pl.when(unresolved).then(own).otherwise("device"),
        device_how=pl.when(unresolved).then(pl.lit("pointer")).otherwise("device_how"),
        device_why=pl.when(unresolved)
        .then(pl.lit("no event in the trace names this device"))
        .otherwise("device_why"),
    )


# ---------------------------------------------------------------------------------------
# locks
# ---------------------------------------------------------------------------------------


def _lock_holds(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Traced holds: an acquire's return (or entry) to the next release of the same lock
    by the same task."""
    is_acq = pl.col("func").is_in(LOCK_ACQUIRE)
    locks = (
        rows.filter((is_acq | pl.col("func").is_in(LOCK_RELEASE)) & pl.col("lock").is_not_null())
        .with_columns(
            acq=is_acq, at=pl.when(is_acq & pl.col("exact")).then("end_ts").otherwise("start_ts")
        )
        .sort("file", "task", "lock", "start_line")
    )
    grp = ["file", "task", "lock"]
    nxt_rel = (~pl.col("acq")).shift(-1).over(grp).fill_null(False)
    last_ts = rows.group_by("file").agg(f_last=pl.col("end_ts").max())
    return (
        locks.with_columns(
            r_at=pl.col("at").shift(-1).over(grp),
            r_line=pl.col("start_line").shift(-1).over(grp),
            paired=nxt_rel,
        )
        .filter("acq")
        .join(last_ts, on="file", how="left")
        .select(
            "file",
            "task",
            "pid",
            "tgid",
            "comm",
            "cpu",
            "func",
            start_ts="at",
            end_ts=pl.when("paired").then("r_at").otherwise("f_last"),
            exact=pl.col("paired") & pl.col("exact"),
            start_line="start_line",
            end_line=pl.when("paired").then("r_line"),
            lock=pl.format("lock@{}", hex_str(pl.col("lock"))),
            evidence=pl.concat_list(
                _where("file", "start_line"), _where("file", "r_line")
            ).list.drop_nulls(),
        )
    )


def _locksets(spans: pl.LazyFrame, holds: pl.LazyFrame, era: EraChoice) -> pl.LazyFrame:
    held = (
        spans.select("sid", "file", "task", "start_ts", "end_ts")
        .join(
            holds.select("file", "task", h_start="start_ts", h_end="end_ts", h_lock="lock"),
            on=["file", "task"],
        )
        .filter((pl.col("h_start") <= pl.col("start_ts")) & (pl.col("h_end") >= pl.col("end_ts")))
        .group_by("sid")
        .agg(traced=pl.col("h_lock").unique().sort())
    )
    releases = (
        spans.filter(pl.col("kind") == "release")
        .select("file", "task", r_line="start_line", r_end="end_ts")
        .sort("r_line")
    )
    nested = (
        spans.select("sid", "file", "task", "start_line", "end_ts")
        .sort("start_line")
        .join_asof(
            releases,
            left_on="start_line",
            right_on="r_line",
            by=["file", "task"],
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .select("sid", in_release=(pl.col("r_end") >= pl.col("end_ts")).fill_null(False))
    )
    implicit = pl.LazyFrame(
        [
            {
                "kind": kind,
                "in_release": inside,
                "implicit": list(implicit_locks(kind, inside, era)),
            }
            for kind in ("attach", "detach", "release")
            for inside in (False, True)
        ],
        schema={"kind": pl.String, "in_release": pl.Boolean, "implicit": pl.List(pl.String)},
    )
    return (
        spans.join(held, on="sid", how="left")
        .join(nested, on="sid", how="left")
        .join(implicit, on=["kind", "in_release"], how="left")
        .with_columns(
            lockset=pl.concat_list(pl.col("traced").fill_null([]), pl.col("implicit").fill_null([]))
            .list.unique()
            .list.sort()
        )
        .drop("traced", "implicit", "in_release")
    )


# ---------------------------------------------------------------------------------------
# era and the whole stage
# ---------------------------------------------------------------------------------------


def _evidence(rows: pl.LazyFrame) -> pl.LazyFrame:
    """``path:line`` of every line a row was built from, in line order."""
    return (
        rows.select("rid", "file", line="lines")
        .explode("line")
        .drop_nulls("line")
        .sort("line")
        .group_by("rid")
        .agg(evidence=_where("file", "line"))
    )


_ARGS_USED = ("probe", "func", "kv", "site", "parent", "device", "depth", "dur")


def _needed(events: pl.LazyFrame) -> pl.LazyFrame:
    """The columns the timeline reads, materialised once: every stage reads events
    several times, and stored events are a scan of many Parquet columns."""
    a = pl.col("args")
    return (
        events.select(
            "file",
            "line",
            "ts",
            "cpu",
            "pid",
            "tgid",
            "comm",
            "event",
            "stack",
            args=pl.struct(*(a.struct.field(f) for f in _ARGS_USED)),
        )
        .collect()
        .lazy()
    )


def symbols_seen(events: pl.LazyFrame) -> dict[str, str]:
    """Known era symbols in the trace (functions, return sites, events, stack frames),
    each with the ``path:line`` where it first appears."""
    a = pl.col("args")
    bare = r"^\s*(?:=>\s*)?([A-Za-z_][\w.]*).*$"
    cols = [
        a.struct.field("func"),
        a.struct.field("site"),
        a.struct.field("parent"),
        pl.col("event"),
    ]
    parts = [events.select("file", "line", sym=c) for c in cols]
    parts.append(events.select("file", "line", sym="stack").explode("sym"))
    found = (
        pl.concat(parts)
        .with_columns(sym=pl.col("sym").str.extract(bare, 1))
        .filter(pl.col("sym").is_in(list(SYMBOL_ERAS)))
        .group_by("sym")
        .agg(pl.col("file", "line").sort_by("line").first())
        .collect()
    )
    return {r["sym"]: f"{r['file']}:{r['line']}" for r in found.iter_rows(named=True)}


def timeline(events: pl.LazyFrame, era: EraChoice | None = None) -> Timeline:
    """Build the ``spans`` of a trace (see the module doc). ``era`` defaults to the one
    the trace's symbols tell (``kernel.infer_era``)."""
    events = _needed(events)
    if era is None:
        era = infer_era(symbols_seen(events))
    rows = pl.concat(
        [_probe_calls(events), _graph_calls(events), _function_calls(events), _instants(events)],
        how="vertical_relaxed",
    )
    rows = _bound_ends(rows, events).with_row_index("rid").collect().lazy()
    rows = _attribute(_keys(rows))
    rows = rows.with_columns(
        kind=pl.col("func").replace_strict(SPAN_KINDS, default="call"),
    ).join(_evidence(rows), on="rid", how="left")
    rows = rows.collect().lazy()
    holds = _lock_holds(rows).collect().lazy()
    calls = rows.filter(~pl.col("func").is_in([*LOCK_ACQUIRE, *LOCK_RELEASE]))
    spans = (
        pl.concat(
            [
                calls.select(
                    *(c for c in SPANS_SCHEMA if c not in ("lockset", "lock", "kind", "evidence")),
                    "task",
                    "kind",
                    "evidence",
                    lock=pl.lit(None, pl.String),
                    dev="dev",
                ),
                holds.select(
                    "file",
                    "task",
                    "pid",
                    "tgid",
                    "comm",
                    "cpu",
                    "func",
                    "start_ts",
                    "end_ts",
                    "exact",
                    "start_line",
                    "end_line",
                    "lock",
                    "evidence",
                    kind=pl.lit("lock"),
                ),
            ],
            how="diagonal_relaxed",
        )
        .with_row_index("sid")
        .collect()
        .lazy()
    )
    spans = _locksets(spans, holds, era)
    out = spans.sort("start_ts", "file", "start_line").select(
        *(pl.col(c).cast(t) for c, t in SPANS_SCHEMA.items())
    )
    return Timeline(out, era)
