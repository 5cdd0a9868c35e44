"""The ``ranges`` rule kind: IOVA mappings, from each map to the unmap that ended it,
matched against unmaps and releases (``unmap-without-map``,
``mappings-live-at-release``)."""

from __future__ import annotations

import polars as pl

from tracetool import render
from tracetool.devices import hex_str
from tracetool.finding_text import evidence as _evidence
from tracetool.finding_text import inferred_note as _inferred_note
from tracetool.finding_text import note as _note
from tracetool.finding_text import side as _side
from tracetool.finding_text import who as _who
from tracetool.rules import Rule


def _mappings(rule: Rule, spans: pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Maps (with ``r_ts``, when the unmap that ended them came) and unmaps (with
    ``ended``, how many mappings each ended) of every device."""
    cols = ["sid", "device", "start_ts", "iova", "size", "evidence", "device_evidence"]
    cols += ["func", "cpu", "comm", "pid", "device_how", "device_why"]

    def side(name: str, p: str) -> pl.DataFrame:
        keep = rule.expr(name) & pl.col("device").is_not_null() & pl.col("iova").is_not_null()
        return (
            spans.filter(keep)
            .select("file", *(pl.col(c).alias(p + c) for c in cols))
            .with_columns(**{f"{p}end": pl.col(f"{p}iova") + pl.col(f"{p}size").fill_null(1)})
            .collect()
        )

    maps, unmaps = side("map", "m_"), side("unmap", "u_")
    by = (["file", "m_device", "m_iova"], ["file", "u_device", "u_iova"])
    # The next unmap of the same IOVA ends a mapping; failing that, the first later
    # unmap whose range holds its start (one unmap of a range mapped in pieces).
    same = maps.sort("m_start_ts").join_asof(
        unmaps.sort("u_start_ts").select(*by[1], "u_start_ts", "u_sid"),
        left_on="m_start_ts",
        right_on="u_start_ts",
        by_left=by[0],
        by_right=by[1],
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    wide = (
        same.filter(pl.col("u_sid").is_null())
        .select("file", "m_sid", "m_device", "m_iova", "m_start_ts")
        .join(
            unmaps.select("file", "u_device", "u_iova", "u_end", "u_start_ts", "u_sid"),
            left_on=["file", "m_device"],
            right_on=["file", "u_device"],
        )
        .filter(
            (pl.col("u_iova") <= pl.col("m_iova"))
            & (pl.col("m_iova") < pl.col("u_end"))
            & (pl.col("u_start_ts") > pl.col("m_start_ts"))
        )
        .sort("u_start_ts")
        .group_by("m_sid")
        .first()
        .select("m_sid", w_ts="u_start_ts", w_sid="u_sid")
    )
    maps = same.join(wide, on="m_sid", how="left").select(
        *maps.columns,
        r_ts=pl.coalesce("u_start_ts", "w_ts"),
        r_sid=pl.coalesce("u_sid", "w_sid"),
    )
    ended = maps.group_by("r_sid").agg(ended=pl.len())
    unmaps = unmaps.join(ended, left_on="u_sid", right_on="r_sid", how="left")
    return maps, unmaps.with_columns(ended=pl.col("ended").fill_null(0))


def _bytes(n: pl.Expr) -> pl.Expr:
    return pl.format("{} KiB", (n.cast(pl.Float64) / 1024).round(1))


def ranges(rule: Rule, spans: pl.LazyFrame) -> pl.LazyFrame:
    """IOVA ranges per device and input (see ``rules`` for the two checks): a mapping
    lives in the trace that shows it."""
    maps, unmaps = _mappings(rule, spans)
    rng = pl.format("[0x{}, 0x{})", _hex("u_iova"), _hex("u_end"))
    if rule.check == "unmapped":
        # Mappings made before the trace began are unknown; only an unmap after the
        # device was attached in the trace is certain to have nothing to end.
        attached = (
            spans.filter(pl.col("kind").is_in(["attach", "domain_attached"]))
            .select("file", a_device="device", a_ts="start_ts")
            .sort("a_ts")
            .collect()
        )
        hits = (
            unmaps.filter(pl.col("ended") == 0)
            .sort("u_start_ts")
            .join_asof(
                attached,
                left_on="u_start_ts",
                right_on="a_ts",
                by_left=["file", "u_device"],
                by_right=["file", "a_device"],
                strategy="backward",
                check_sortedness=False,
            )
        )
        since = (
            pl.when(pl.col("a_ts").is_not_null())
            .then(
                pl.format(
                    "nothing mapped it since the device was attached at {} s",
                    render.seconds(pl.col("a_ts")),
                )
            )
            .otherwise(
                pl.lit(
                    "the trace shows no attach of the device before it, so it may have been "
                    "mapped before the trace began"
                )
            )
        )
        return hits.lazy().select(
            "file",
            device="u_device",
            ts="u_start_ts",
            dur=pl.lit(0, pl.Int64),
            certain=pl.col("a_ts").is_not_null(),
            message=pl.concat_str(
                _who("u_"),
                pl.format(
                    " unmapped {} ({}) on {} but no mapping of it was live: ",
                    rng,
                    _bytes(pl.col("u_size")),
                    "u_device",
                ),
                since,
                _note(rule),
                _inferred_note("u_"),
            ),
            evidence=_evidence("u_"),
        )
    at = _side(spans, rule.expr("at"), "r_").collect()
    live = (
        at.join(maps, left_on=["file", "r_device"], right_on=["file", "m_device"])
        .filter(
            (pl.col("m_start_ts") < pl.col("r_start_ts"))
            & (pl.col("r_ts").is_null() | (pl.col("r_ts") > pl.col("r_start_ts")))
        )
        .sort("m_start_ts")
        .group_by("r_sid", maintain_order=True)
        .agg(
            pl.exclude("^m_.*$").first(),
            # Mapping an IOVA twice without unmapping it is one live range.
            n=pl.col("m_iova").n_unique(),
            total=pl.col("m_size").filter(pl.col("m_iova").is_first_distinct()).sum(),
            first_iova=pl.col("m_iova").first(),
            first_ts=pl.col("m_start_ts").first(),
            m_evidence=pl.col("m_evidence").head(8).list.explode(),
            m_device_evidence=pl.col("m_device_evidence").head(8).list.explode(),
        )
    )
    return live.lazy().select(
        "file",
        device="r_device",
        ts="first_ts",
        dur=pl.col("r_start_ts") - pl.col("first_ts"),
        certain=pl.lit(True),
        message=pl.concat_str(
            _who("r_"),
            pl.format(
                " on {} came while {} IOVA mapping(s) were live ({}, first ",
                "r_device",
                "n",
                _bytes(pl.col("total")),
            ),
            pl.format(
                "0x{} mapped at {} s) and unmapped only later or never",
                _hex("first_iova"),
                render.seconds(pl.col("first_ts")),
            ),
            _note(rule),
            _inferred_note("r_"),
        ),
        evidence=_evidence("r_", "m_"),
    )


def _hex(col: str) -> pl.Expr:
    return hex_str(pl.col(col)).str.strip_prefix("0x")
