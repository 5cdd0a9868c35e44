"""The rule engine: evaluate ``rules/*.toml`` over a timeline's spans into ``findings``.

``findings``: ``rule severity status device ts dur message evidence file``. ``status`` is
``finding``, or ``inconclusive`` when the hit is only possible (an end that was not
traced) or its window overlaps a loss window of the same input. ``evidence`` lists the
``path:line`` of every line involved, the device attribution's included.

Every kind is a handful of joins over the spans: overlaps are an inequality join per
device, sequences and misses an as-of join, states a forward fill. No per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from tracetool import render
from tracetool.devices import UNKNOWN_DEVICE
from tracetool.events import Trace
from tracetool.finding_text import evidence as _evidence
from tracetool.finding_text import inferred_note as _inferred_note
from tracetool.finding_text import note as _note
from tracetool.finding_text import side as _side
from tracetool.finding_text import sorted_evidence
from tracetool.finding_text import who as _who
from tracetool.kernel import UNKNOWN_LOCK, EraChoice
from tracetool.mappings import ranges as _ranges
from tracetool.render import duration_text
from tracetool.rules import Rule, select
from tracetool.rules import rules as load_rules
from tracetool.timeline import Timeline, task_key, timeline

FINDINGS_SCHEMA = pl.Schema(
    {
        "rule": pl.String(),
        "severity": pl.String(),
        "status": pl.String(),
        "device": pl.String(),
        "ts": pl.Int64(),
        "dur": pl.Int64(),
        "message": pl.String(),
        "evidence": pl.List(pl.String()),
        "file": pl.String(),
    }
)
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass
class CheckResult:
    """Findings plus what the check did: the era it used and the rules it ran/skipped."""

    findings: pl.DataFrame
    era: EraChoice
    ran: list[Rule] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # rule id -> why
    devices: list[str] = field(default_factory=list)  # every device the timeline shows
    eras: dict[str, EraChoice] = field(default_factory=dict)  # input file -> era


def intersecting(left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
    """Pairs of rows whose ``[lo, hi)`` intervals intersect; ``left`` has ``a_lo``,
    ``a_hi``, ``right`` has ``b_lo``, ``b_hi``, both sorted by their ``lo``.

    Every intersecting pair has exactly one of the two starting inside the other (ties
    go to ``a``), so two binary searches over the sorted starts find all of them in
    O((n + k) log n), k the pairs, with no per-row Python.
    """

    def starts_inside(
        inner: pl.DataFrame, outer: pl.DataFrame, i: str, o: str, side: Literal["left", "right"]
    ) -> pl.DataFrame:
        """Pairs where ``inner`` starts in [outer.lo, outer.hi) (side="left") or in
        (outer.lo, outer.hi) (side="right")."""
        starts = inner[f"{i}lo"]
        first = starts.search_sorted(outer[f"{o}lo"], side=side)
        stop = starts.search_sorted(outer[f"{o}hi"], side="left")
        idx = (
            pl.DataFrame({"o": pl.int_range(outer.height, eager=True), "f": first, "s": stop})
            .filter(pl.col("s") > pl.col("f"))
            .select("o", i=pl.int_ranges("f", "s"))
            .explode("i")
        )
        return pl.concat(
            [outer[idx["o"]], inner[idx["i"]]] if o == "a_" else [inner[idx["i"]], outer[idx["o"]]],
            how="horizontal",
        ).rechunk()

    pairs = pl.concat(
        [
            starts_inside(left, right, "a_", "b_", "left"),  # a starts in [b.lo, b.hi)
            starts_inside(right, left, "b_", "a_", "right"),  # b starts in (a.lo, a.hi)
        ]
    )
    return pairs.filter((pl.col("a_lo") < pl.col("b_hi")) & (pl.col("b_lo") < pl.col("a_hi")))


def banded(spans: pl.DataFrame) -> pl.DataFrame:
    """``lo``/``hi``: span times shifted into one disjoint band per (file, device),
    ``band * width + (ts - first of the band)``, so one interval search covers all
    devices and spans of different devices never meet. Null when the bands would
    overflow 64 bits (then ``_overlap`` joins per device instead)."""

    def code(col: str) -> pl.Expr:
        return pl.col(col).cast(pl.Categorical).to_physical().cast(pl.Int64)

    one_file = spans["file"].n_unique() <= 1
    band = (
        code("device") if one_file else code("file") * (code("device").max() + 1) + code("device")
    )
    # Both ends per band in one window context (polars groups once for both).
    spans = spans.with_columns(band=band).with_columns(
        __first=pl.col("start_ts").min().over("band"), __last=pl.col("end_ts").max().over("band")
    )
    stats = spans.select(
        width=(pl.col("__last") - pl.col("__first")).max() + 1, bands=pl.col("band").max() + 1
    )
    w, n = stats.row(0)
    if w is None or n is None or n * w >= 2**62:
        return spans.drop("__first", "__last").with_columns(
            lo=pl.lit(None, pl.Int64), hi=pl.lit(None, pl.Int64)
        )
    offset = pl.col("band") * w - pl.col("__first")
    return spans.with_columns(lo=pl.col("start_ts") + offset, hi=pl.col("end_ts") + offset).drop(
        "__first", "__last"
    )


def _overlap(rule: Rule, spans: pl.LazyFrame) -> pl.LazyFrame:
    full = spans.collect().rechunk().with_row_index("pos")  # materialised by ``evaluate``
    banded_ok = full.height > 0 and full["lo"].is_not_null().any()

    def narrow(expr: pl.Expr, p: str) -> pl.DataFrame:
        keep = expr & pl.col("device").is_not_null()
        # The banded search needs only the band times and the task (the pairs' other
        # columns are fetched by position afterwards); the per-device join needs more.
        cols = ["pos", "lo", "hi", "task"]
        if not banded_ok:
            cols += ["file", "device", "start_ts", "end_ts"]
        return (
            full.lazy()
            .filter(keep)
            .select(*(pl.col(c).alias(p + c) for c in cols))
            .sort(f"{p}lo")
            .collect()
            .rechunk()  # one chunk: the binary searches and gathers take the fast path
        )

    a, b = narrow(rule.expr("a"), "a_"), narrow(rule.expr("b"), "b_")
    if banded_ok:
        meeting = intersecting(a, b)
    else:  # bands would overflow Int64 (huge ranges): join per device, then compare
        meeting = a.join(b, left_on=["a_file", "a_device"], right_on=["b_file", "b_device"]).filter(
            (pl.col("a_start_ts") < pl.col("b_end_ts"))
            & (pl.col("b_start_ts") < pl.col("a_end_ts"))
        )
    ids = meeting.filter(pl.col("a_task") != pl.col("b_task")).select("a_pos", "b_pos")
    # Fetch the few pairs' full rows by position.
    side_a = _side(full[ids["a_pos"]].lazy(), pl.lit(True), "a_")
    side_b = _side(full[ids["b_pos"]].lazy(), pl.lit(True), "b_").drop("file")
    # rechunk: string kernels on a filtered horizontal concat of differently chunked
    # frames can index past a chunk in polars 2.1
    pairs = pl.concat([side_a.collect(), side_b.collect()], how="horizontal").rechunk().lazy()

    # A lock the trace does not identify ("mutex@?": function_graph shows the call, not
    # its argument) is never a proven common lock; when both sides hold one of the same
    # kind, the overlap may be serialized by it, so it is only inconclusive.
    def named(col: str) -> pl.Expr:
        return pl.col(col).list.eval(pl.element().filter(~pl.element().str.ends_with(UNKNOWN_LOCK)))

    def unnamed(col: str) -> pl.Expr:
        return pl.col(col).list.eval(pl.element().filter(pl.element().str.ends_with(UNKNOWN_LOCK)))

    pairs = pairs.filter(
        named("a_lockset").list.set_intersection(named("b_lockset")).list.len() == 0
    )
    maybe = unnamed("a_lockset").list.set_intersection(unnamed("b_lockset")).list.len() > 0
    # Both filters may match one span pair the other way round: keep one.
    pairs = pairs.with_columns(
        lo=pl.min_horizontal("a_sid", "b_sid"), hi=pl.max_horizontal("a_sid", "b_sid")
    ).unique(["lo", "hi"], keep="first", maintain_order=True)
    start = pl.max_horizontal("a_start_ts", "b_start_ts")
    end = pl.min_horizontal("a_end_ts", "b_end_ts")
    # Certain when the later start lies before the earlier span's traced end.
    a_first = pl.col("a_start_ts") <= pl.col("b_start_ts")
    earlier_exact = pl.when(a_first).then("a_exact").otherwise("b_exact")
    certain = (earlier_exact | (pl.col("a_start_ts") == pl.col("b_start_ts"))) & ~maybe
    inside = (pl.col("a_start_ts") >= pl.col("b_start_ts")) & (
        pl.col("a_end_ts") <= pl.col("b_end_ts")
    )
    overlap = duration_text(end - start)
    relation = (
        pl.when(inside)
        .then(pl.concat_str(pl.lit("ran "), overlap, pl.lit(" inside "), _who("b_")))
        .otherwise(pl.concat_str(pl.lit("overlapped "), _who("b_"), pl.lit(" for "), overlap))
    )
    untraced = (
        pl.when(maybe)
        .then(
            pl.format(
                "; both held a {} the trace does not identify (no lock address traced): "
                "it may be the same one",
                unnamed("a_lockset").list.first().str.replace(r"@\?$", ""),
            )
        )
        .when(~pl.col("a_exact"))
        .then(pl.format("; the return of {} was not traced", "a_func"))
        .when(~pl.col("b_exact"))
        .then(pl.format("; the return of {} was not traced", "b_func"))
        .otherwise(pl.lit(""))
    )
    locks = (
        pl.when(pl.col("a_lockset").list.len() + pl.col("b_lockset").list.len() == 0)
        .then(pl.lit("with no lock held"))
        .otherwise(
            pl.format(
                "with no common lock held ({} vs {})",
                pl.col("a_lockset").list.join(", ").replace("", "none"),
                pl.col("b_lockset").list.join(", ").replace("", "none"),
            )
        )
    )
    return pairs.select(
        "file",
        device="a_device",
        ts=start,
        dur=end - start,
        certain=certain,
        message=pl.concat_str(
            _who("a_"),
            pl.lit(" "),
            relation,
            pl.lit(" on "),
            "a_device",
            pl.lit(" "),
            locks,
            _note(rule),
            untraced,
            _inferred_note("a_"),
        ),
        evidence=_evidence("a_", "b_"),
    )


def _sequence(rule: Rule, spans: pl.LazyFrame) -> pl.LazyFrame:
    first = _side(spans, rule.expr("first"), "f_")
    then = _side(spans, rule.expr("then"), "t_")
    if rule.nested:
        hits = (
            then.sort("t_start_line")
            .join_asof(
                first.sort("f_start_line"),
                left_on="t_start_line",
                right_on="f_start_line",
                by_left=["file", "t_task"],
                by_right=["file", "f_task"],
                strategy="backward",
                allow_exact_matches=False,
                check_sortedness=False,
            )
            .filter(pl.col("f_sid").is_not_null() & (pl.col("t_start_ts") <= pl.col("f_end_ts")))
        )
        relation = pl.lit(" ran inside ")
    else:
        marks = first.select(
            "file", m_device="f_device", m_at="f_end_ts", m_sid="f_sid", m_first=pl.lit(True)
        )
        if "unless" in rule.filters:
            marks = pl.concat(
                [
                    marks,
                    _side(spans, rule.expr("unless"), "u_").select(
                        "file",
                        m_device="u_device",
                        m_at="u_start_ts",
                        m_sid="u_sid",
                        m_first=pl.lit(False),
                    ),
                ]
            )
        hits = (
            then.sort("t_start_ts")
            .join_asof(
                marks.sort("m_at"),
                left_on="t_start_ts",
                right_on="m_at",
                by_left=["file", "t_device"],
                by_right=["file", "m_device"],
                strategy="backward",
                check_sortedness=False,
            )
            .filter(pl.col("m_first").fill_null(False) & (pl.col("m_sid") != pl.col("t_sid")))
            .join(first, left_on=["file", "m_sid"], right_on=["file", "f_sid"], how="inner")
            .with_columns(f_sid="m_sid")
            # A first span whose return was not traced ends at its task's next event at
            # the earliest; that task's own call starting there ran inside it.
            .filter(
                pl.col("f_exact")
                | (pl.col("t_task") != pl.col("f_task"))
                | (pl.col("t_start_ts") > pl.col("f_end_ts"))
            )
        )
        relation = pl.format(
            " started {} after ", duration_text(pl.col("t_start_ts") - pl.col("f_end_ts"))
        )
    if rule.within is not None:
        hits = hits.filter(pl.col("t_start_ts") - pl.col("f_end_ts") <= rule.within)
    return hits.select(
        "file",
        device="t_device",
        ts="f_start_ts",
        dur=pl.max_horizontal("t_end_ts", "f_end_ts") - pl.col("f_start_ts"),
        certain=pl.col("f_exact") | pl.lit(rule.nested),
        message=pl.concat_str(
            _who("t_"),
            relation,
            _who("f_"),
            pl.lit(" on "),
            "t_device",
            _note(rule),
            _inferred_note("t_"),
        ),
        evidence=_evidence("f_", "t_"),
    )


def _missing(rule: Rule, spans: pl.LazyFrame) -> pl.LazyFrame:
    assert rule.within is not None
    first = _side(spans, rule.expr("first"), "f_")
    then = _side(spans, rule.expr("then"), "t_").select(
        "file", "t_device", "t_start_ts", "t_sid", "t_evidence"
    )
    hits = (
        first.sort("f_end_ts")
        .join_asof(
            then.sort("t_start_ts"),
            left_on="f_end_ts",
            right_on="t_start_ts",
            by_left=["file", "f_device"],
            by_right=["file", "t_device"],
            strategy="forward",
            check_sortedness=False,
        )
        .join(spans.group_by("file").agg(last_ts=pl.col("end_ts").max()), on="file", how="left")
        .filter(
            pl.col("t_sid").is_null() | (pl.col("t_start_ts") - pl.col("f_end_ts") > rule.within)
        )
    )
    # The trace ended before the bound ran out: whether it came cannot be known.
    cut = pl.col("last_ts") - pl.col("f_end_ts") < rule.within
    return hits.select(
        "file",
        device="f_device",
        ts="f_start_ts",
        dur=pl.lit(rule.within, pl.Int64) + pl.col("f_end_ts") - pl.col("f_start_ts"),
        certain=~cut,
        message=pl.concat_str(
            _who("f_"),
            pl.lit(" on "),
            "f_device",
            pl.lit(f" was not followed by {rule.filters['then']} within "),
            duration_text(pl.lit(rule.within)),
            pl.when(cut).then(pl.lit(" (the trace ends before the bound)")).otherwise(pl.lit("")),
            _note(rule),
            _inferred_note("f_"),
        ),
        evidence=_evidence("f_"),
    )


def _state(rule: Rule, spans: pl.LazyFrame) -> pl.LazyFrame:
    steps = []
    for t in rule.transitions:
        side = _side(spans, pl.sql_expr(t.on), "s_")
        steps.append(
            side.select(
                "file",
                device="s_device",
                at=f"s_{t.at}_ts",
                prio=pl.lit(1),
                to=pl.lit(t.to),
                flag=pl.lit(None, pl.Int32),
                t_sid="s_sid",
                t_at=f"s_{t.at}_ts",
                c_sid=pl.lit(None, pl.UInt32),
            )
        )
    for i, f in enumerate(rule.flags):
        side = _side(spans, pl.sql_expr(f.on), "s_")
        steps.append(
            side.select(
                "file",
                device="s_device",
                at="s_start_ts",
                prio=pl.lit(0),  # a check sees the state before a transition at the same time
                to=pl.lit(None, pl.String),
                flag=pl.lit(i, pl.Int32),
                t_sid=pl.lit(None, pl.UInt32),
                t_at=pl.lit(None, pl.Int64),
                c_sid="s_sid",
            )
        )
    grp = ["file", "device"]
    walked = (
        pl.concat(steps, how="vertical_relaxed")
        .sort("file", "device", "at", "prio")
        .with_columns(
            state=pl.col("to").forward_fill().over(grp).fill_null(rule.initial),
            by_sid=pl.col("t_sid").forward_fill().over(grp),
            by_at=pl.col("t_at").forward_fill().over(grp),
        )
        .filter(pl.col("flag").is_not_null())
    )
    states = pl.LazyFrame(
        {"flag": list(range(len(rule.flags))), "bad": [list(f.states) for f in rule.flags]},
        schema={"flag": pl.Int32, "bad": pl.List(pl.String)},
    )
    checked = _side(spans, pl.lit(True), "s_").drop("file")
    by = _side(spans, pl.lit(True), "b_").select("b_sid", "b_func", "b_evidence")
    hits = (
        walked.join(states, on="flag")
        .filter(pl.col("bad").list.contains(pl.col("state")))
        .unique("c_sid", keep="first", maintain_order=True)
        .join(checked, left_on="c_sid", right_on="s_sid")
        .join(by, left_on="by_sid", right_on="b_sid", how="left")
    )
    since = (
        pl.when(pl.col("b_func").is_not_null())
        .then(pl.format(" (since {} at {} s)", "b_func", (pl.col("by_at") / 1e9).round(6)))
        .otherwise(pl.lit(""))
    )
    begin = pl.coalesce("by_at", "s_start_ts")
    return hits.select(
        "file",
        device="s_device",
        ts=begin,
        dur=pl.col("s_end_ts") - begin,
        certain=pl.lit(True),
        message=pl.concat_str(
            _who("s_"),
            pl.lit(" on "),
            "s_device",
            pl.lit(" while the device was "),
            "state",
            since,
            _note(rule),
            _inferred_note("s_"),
        ),
        evidence=sorted_evidence(
            pl.concat_list(pl.col("b_evidence").fill_null([]), _evidence("s_"))
        ),
    )


def _follows(rule: Rule, spans: pl.LazyFrame) -> pl.LazyFrame:
    """A ``then`` span on a device that starts while a finding of an ``after`` rule lasts
    there or within ``within`` after it: the crash report the race led to. Inputs are
    on one clock, so the span and the finding may come from different files."""
    windows = [
        _KIND_FUNCS[r.kind](r, spans).select(
            o_device="device",
            o_ts="ts",
            o_end=pl.col("ts") + pl.col("dur"),
            o_certain="certain",
            o_message="message",
            o_evidence="evidence",
            o_rule=pl.lit(r.id),
        )
        for r in rule.after_rules
    ]
    then = _side(spans, rule.expr("then"), "t_")
    within = rule.within or 0
    hits = (
        then.join(
            pl.concat(windows, how="vertical_relaxed"), left_on="t_device", right_on="o_device"
        )
        .filter(
            (pl.col("t_start_ts") >= pl.col("o_ts"))
            & (pl.col("t_start_ts") - pl.col("o_end") <= within)
        )
        # The window nearest before each span explains it.
        .sort("o_ts")
        .group_by("t_sid", maintain_order=True)
        .last()
    )
    after = pl.col("t_start_ts") - pl.col("o_end")
    when = (
        pl.when(after <= 0)
        .then(pl.lit("during"))
        .otherwise(pl.concat_str(duration_text(after), pl.lit(" after")))
    )
    return hits.select(
        "file",
        device="t_device",
        ts="o_ts",
        dur=pl.max_horizontal("t_end_ts", "o_end") - pl.col("o_ts"),
        certain="o_certain",
        message=pl.concat_str(
            pl.format("{} on CPU {} ({}-{})", "t_func", "t_cpu", "t_comm", "t_pid"),
            pl.format(" at {}", "t_location").fill_null(""),
            pl.lit(" came "),
            when,
            pl.format(" the {} race on {} ", "o_rule", "t_device"),
            pl.format(
                "({} s, {})",
                render.seconds(pl.col("o_ts")),
                duration_text(pl.col("o_end") - pl.col("o_ts")),
            ),
            _note(rule),
            _inferred_note("t_"),
        ),
        evidence=sorted_evidence(
            pl.concat_list(
                pl.col("o_evidence"),
                pl.col("t_evidence").fill_null([]),
                pl.col("t_device_evidence").fill_null([]),
            )
        ),
    )


_KIND_FUNCS = {
    "overlap": _overlap,
    "sequence": _sequence,
    "missing": _missing,
    "state": _state,
    "follows": _follows,
    "ranges": _ranges,
}


def _losses_mark(found: pl.LazyFrame, losses: pl.LazyFrame) -> pl.LazyFrame:
    """Mark findings whose window overlaps a loss window of the same input."""
    lost = losses.select(
        "file",
        l_start=pl.col("start_ts").fill_null(-(2**62)),
        l_end=pl.col("end_ts").fill_null(2**62),
        l_where=pl.format("{}:{}", "file", "line"),
    )
    windows = found.with_row_index("fid")
    hit = (
        windows.select("fid", "file", "ts", "dur")
        .join(lost, on="file")
        .filter(
            (pl.col("l_start") <= pl.col("ts") + pl.col("dur")) & (pl.col("l_end") >= pl.col("ts"))
        )
        .group_by("fid")
        .agg(loss=pl.col("l_where").first())
    )
    return windows.join(hit, on="fid", how="left").drop("fid")


def evaluate(selected: dict[str, Rule], tl: Timeline, losses: pl.LazyFrame) -> CheckResult:
    """Run ``selected`` rules over a timeline."""
    spans = banded(tl.spans.with_row_index("sid").with_columns(task_key()).collect()).lazy()
    devices = spans.select(pl.col("device").drop_nulls().unique().sort()).collect()
    result = CheckResult(
        pl.DataFrame(schema=FINDINGS_SCHEMA),
        tl.era,
        devices=devices["device"].to_list(),
        eras=tl.eras,
    )
    parts = []
    for rule in selected.values():
        # A rule runs on the inputs whose kernel era it applies to.
        files = [f for f, e in tl.eras.items() if set(rule.eras) & set(e.eras)]
        if not files:
            result.skipped[rule.id] = (
                f"applies to {', '.join(rule.eras)}; trace is {tl.era.label()}"
            )
            continue
        result.ran.append(rule)
        scope = spans if len(files) == len(tl.eras) else spans.filter(pl.col("file").is_in(files))
        found = _KIND_FUNCS[rule.kind](rule, scope)
        parts.append(found.with_columns(rule=pl.lit(rule.id), severity=pl.lit(rule.severity)))
    if not parts:
        return result
    found = _losses_mark(pl.concat(parts, how="vertical_relaxed"), losses)
    blind = pl.col("device") == UNKNOWN_DEVICE
    status = pl.when(pl.col("certain") & pl.col("loss").is_null() & ~blind)
    found = found.with_columns(
        status=status.then(pl.lit("finding")).otherwise(pl.lit("inconclusive")),
        message=pl.concat_str(
            "message",
            pl.when(pl.col("loss").is_not_null())
            .then(pl.format("; events were lost in this window ({})", "loss"))
            .otherwise(pl.lit("")),
            pl.when(blind)
            .then(
                pl.lit("; the trace names no device, so these calls may concern different devices")
            )
            .otherwise(pl.lit("")),
        ),
    )
    result.findings = (
        found.select(*(pl.col(c).cast(t) for c, t in FINDINGS_SCHEMA.items()))
        # A total order, so the same trace always lists its findings the same way.
        .sort("ts", "rule", "device", "dur", "message", nulls_last=True)
        .collect()
    )
    return result


def run(
    trace: Trace,
    rule_dirs: tuple[str, ...] = (),
    only: tuple[str, ...] = (),
    era: EraChoice | None = None,
) -> CheckResult:
    """Parse-to-findings in one call: timeline of ``trace``, then its rules."""
    selected = select(load_rules(tuple(Path(d) for d in rule_dirs)), only)
    tl = timeline(trace.events, era, trace.table("crashes"))
    return evaluate(selected, tl, trace.losses)


def check(
    trace: Trace, rules: dict[str, Rule] | None = None, era: EraChoice | None = None
) -> pl.LazyFrame:
    """``findings`` of ``trace`` under ``rules`` (default: the built-in catalogue)."""
    chosen = load_rules() if rules is None else rules
    tl = timeline(trace.events, era, trace.table("crashes"))
    return evaluate(chosen, tl, trace.losses).findings.lazy()
