"""The HTML report of ``tracetool triage --format html``: one self-contained page (plotly.js
embedded once) with the triage's figures, a table of groups, and a chart per group of how
often it was seen over time.

Over time means: per day of the triage history when ``--history`` is given (every triage
kept there, this one included), else per day of the logs' own modification times. Every
cell and label is escaped; a link is made only of an ``http(s)`` bug URL.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from tracetool.pages import Markup, esc, page

MAX_CHARTS = 24  # groups charted, the most frequent first
CLASS_COLOURS = {"new": "#d7301f", "regression": "#7a0177", "known": "#4d9221"}

TABLE_STYLE = """
<style>
table.groups { border-collapse: collapse; font-size: 0.85em; margin-top: 0.5em; }
table.groups th, table.groups td { padding: 3px 8px; border-bottom: 1px solid #e4e4e4;
  text-align: left; vertical-align: top; }
table.groups td.sig { font-family: monospace; }
span.class { color: white; border-radius: 3px; padding: 1px 6px; font-size: 0.9em; }
</style>
"""


def over_time(
    logs: pl.DataFrame, reports: pl.DataFrame, history: pl.DataFrame | None
) -> pl.DataFrame:
    """``signature date count``: from the history's trend when there is one, else from
    the day each log was written."""
    if history is not None and history.height:
        return history.select("signature", "date", "count")
    when = reports.join(logs.select("log", "mtime"), on="log", how="left")
    return (
        when.with_columns(
            date=pl.from_epoch(
                pl.col("mtime").fill_null(0.0).cast(pl.Int64), time_unit="s"
            ).dt.date()
        )
        .group_by("signature", "date")
        .agg(count=pl.len())
        .sort("signature", "date")
    )


def _badge(cls: str) -> str:
    colour = CLASS_COLOURS.get(cls, "#666")
    return f'<span class="class" style="background:{colour}">{esc(cls)}</span>'


def _bug(url: str | None) -> str:
    if not url:
        return ""
    if url.startswith(("http://", "https://")):
        return f'<a href="{esc(url)}" rel="noopener noreferrer">{esc(url)}</a>'
    return esc(url)


def _day(ts: float | None) -> str:
    if ts is None:
        return ""
    import datetime as dt

    return f"{dt.datetime.fromtimestamp(ts, tz=dt.UTC):%Y-%m-%d %H:%M}"


def groups_table(groups: pl.DataFrame) -> Markup:
    """The groups as an HTML table of escaped cells."""
    head = [
        "class",
        "count",
        "logs",
        "signature",
        "kernels",
        "first seen",
        "last seen",
        "example",
        "guilty frame",
        "bug",
    ]
    rows = []
    for g in groups.iter_rows(named=True):
        cells = [
            _badge(g["class"]),
            esc(g["count"]),
            esc(g["logs"]),
            f'<td class="sig">{esc(g["signature"])}</td>',
            esc(" ".join(g["kernels"] or [])),
            esc(_day(g["first_seen"])),
            esc(_day(g["last_seen"])),
            esc(g["example"]),
            esc(" ".join(x for x in (g["guilty"], g["location"]) if x)),
            _bug(g["bug"]),
        ]
        rows.append(
            "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>"
        )
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    return Markup(f'{TABLE_STYLE}<table class="groups"><tr>{header}</tr>{"".join(rows)}</table>')


def chart(signature: str, cls: str, counts: pl.DataFrame) -> go.Figure:
    """Reports of one group per day."""
    fig = go.Figure(
        go.Bar(
            x=counts["date"].cast(pl.String).to_list(),
            y=counts["count"].to_list(),
            marker_color=CLASS_COLOURS.get(cls, "#666"),
            hovertemplate="%{x}: %{y} report(s)<extra></extra>",
        )
    )
    fig.update_layout(
        height=220,
        margin={"l": 50, "r": 20, "t": 10, "b": 40},
        xaxis={"type": "category", "title": "day"},
        yaxis={"title": "reports", "rangemode": "tozero"},
        plot_bgcolor="white",
    )
    return fig


def report(
    logs: pl.DataFrame,
    reports: pl.DataFrame,
    groups: pl.DataFrame,
    history: pl.DataFrame | None = None,
) -> str:
    """The whole page (see the module doc)."""
    counts = {c: int((groups["class"] == c).sum()) for c in ("new", "regression", "known")}
    errors = logs.filter(pl.col("error").is_not_null())
    meta = [
        ("logs", f"{logs.height} ({errors.height} could not be read)"),
        ("reports", str(reports.height)),
        (
            "groups",
            f"{groups.height}: {counts['new']} new, {counts['regression']} "
            f"regression(s), {counts['known']} known",
        ),
        (
            "over time",
            "per day of the triage history"
            if history is not None and history.height
            else "per day the logs were written",
        ),
    ]
    sections: list[tuple[str, object]] = [
        ("Groups", groups_table(groups) if groups.height else "Nothing broke."),
    ]
    series = over_time(logs, reports, history)
    for g in groups.head(MAX_CHARTS).iter_rows(named=True):
        mine = series.filter(pl.col("signature") == g["signature"]).sort("date")
        sections.append(
            (f"{g['class']}: {g['signature']}", chart(g["signature"], g["class"], mine))
        )
    if groups.height > MAX_CHARTS:
        sections.append(
            (
                "More groups",
                f"{groups.height - MAX_CHARTS} less frequent group(s) "
                "are in the table above without a chart.",
            )
        )
    if errors.height:
        items = "".join(
            f"<li>{esc(r['log'])}: {esc(r['error'])}</li>" for r in errors.iter_rows(named=True)
        )
        sections.append(("Logs that could not be read", Markup(f"<ul>{items}</ul>")))
    return page("tracetool triage", meta, sections)
