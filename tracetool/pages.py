"""HTML pages of ``stats`` and ``diff``: one self-contained file each (plotly.js is
embedded once, so the page opens from disk with no network).

Every string that came from an input (file names, device names, function names) is
HTML-escaped before it reaches the page or a plotly label: plotly renders a subset of
HTML in labels, and a trace must not be able to put markup, let alone script, on it.
Figures are drawn from aggregates (histogram buckets, at most ``CDF_POINTS`` points per
CDF, one point per window), so the page size does not grow with the trace.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

from tracetool.distributions import cdf_points

if TYPE_CHECKING:
    from tracetool.diff import Comparison

MAX_CDFS = 12

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table.meta { border-collapse: collapse; font-size: 0.9em; }
table.meta td { padding: 2px 10px 2px 0; vertical-align: top; }
table.meta td:first-child { color: #666; }
p.note { color: #555; font-size: 0.9em; max-width: 60em; }
"""


class Markup(str):
    """HTML that ``page`` puts in as it is: built here from escaped parts (a table of
    ``esc``-aped cells), never from an input's text directly."""


def esc(text: object) -> str:
    """``text`` safe for HTML and for plotly labels."""
    return html.escape(str(text), quote=True)


def page(
    title: str, meta: Sequence[tuple[str, str]], sections: Sequence[tuple[str, object]]
) -> str:
    """A whole HTML document: a header table of ``meta`` (label, value) and one section
    per (heading, plotly figure, ``Markup`` or note text)."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        '<table class="meta">',
        *(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in meta),
        "</table>",
    ]
    embedded = False
    for heading, body in sections:
        parts.append(f"<h2>{esc(heading)}</h2>")
        if isinstance(body, go.Figure):
            parts.append(
                pio.to_html(
                    body,
                    include_plotlyjs=not embedded,
                    full_html=False,
                    config={"displaylogo": False, "responsive": True},
                )
            )
            embedded = True
        elif isinstance(body, Markup):
            parts.append(str(body))
        else:
            parts.append(f'<p class="note">{esc(body)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _us_axis(fig: go.Figure, title: str, log: bool = False) -> None:
    fig.update_xaxes(title_text=title, type="log" if log else "linear")


def histogram_figure(hist: pl.DataFrame) -> go.Figure:
    """Log2 buckets per call kind and function: bars of counts."""
    fig = go.Figure()
    for (kind, func), rows in hist.group_by("kind", "func", maintain_order=True):
        fig.add_trace(
            go.Bar(
                x=(rows["lower"] / 1000).to_list(),
                y=rows["count"].to_list(),
                name=esc(f"{kind} {func}"),
                hovertemplate="%{x} µs ≤ d < 2×: %{y}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(barmode="group", height=380, margin={"t": 20})
    _us_axis(fig, "bucket lower bound (µs, log2 buckets)", log=True)
    fig.update_yaxes(title_text="calls")
    return fig


def cdf_figure(samples: pl.DataFrame, runs: Sequence[tuple[str, pl.DataFrame]] = ()) -> go.Figure:
    """Empirical CDFs of the durations (``group``, ``value``; or points of them with
    ``p``): one line per group, or per group and run."""
    fig = go.Figure()
    sources = runs or [("", samples)]
    dashes = ["solid", "dash"]
    groups = sorted(set().union(*(set(f["group"]) for _, f in sources)))
    palette = plotly.colors.qualitative.Plotly
    for i, (run, frame) in enumerate(sources):
        # Samples are thinned here; a frame with ``p`` is thinned already (stats.cdf).
        thinned = frame if "p" in frame.columns else cdf_points(frame)
        for (group,), rows in thinned.group_by("group", maintain_order=True):
            label = f"{run}: {group}" if run else str(group)
            color = palette[groups.index(group) % len(palette)]
            fig.add_trace(
                go.Scatter(
                    x=(rows["value"] / 1000).to_list(),
                    y=rows["p"].to_list(),
                    mode="lines",
                    line={"dash": dashes[i % 2], "shape": "hv", "color": color},
                    name=esc(label),
                )
            )
    fig.update_layout(height=380, margin={"t": 20})
    _us_axis(fig, "duration (µs)", log=True)
    fig.update_yaxes(title_text="fraction ≤ duration", range=[0, 1.02])
    return fig


RATE_COUNTS = {"iops": "ios", "mb_s": "bytes", "flushes_per_s": "flushes"}


def rate_figure(rates: Sequence[tuple[str, pl.DataFrame]], column: str, title: str) -> go.Figure:
    """``column`` per window over time, one line per device (and run) that had any."""
    fig = go.Figure()
    for run, frame in rates:
        shown = frame.filter(pl.col(RATE_COUNTS[column]).sum().over("device") > 0)
        if shown.is_empty():
            continue
        t0 = shown["start_ts"].min()
        for (device,), rows in shown.group_by("device", maintain_order=True):
            fig.add_trace(
                go.Scatter(
                    x=((rows["start_ts"] - t0) / 1e6).to_list(),
                    y=rows[column].to_list(),
                    mode="lines+markers",
                    line={"shape": "hv"},
                    name=esc(f"{run}: {device}" if run else device),
                )
            )
    fig.update_layout(height=320, margin={"t": 20})
    fig.update_xaxes(title_text="ms from the start of the run", rangeslider={"visible": True})
    fig.update_yaxes(title_text=title)
    return fig


def bucket_figure(hist: pl.DataFrame) -> go.Figure:
    """bpftrace ``hist()``/``lhist()`` prints as bars, one trace per map and keys (its
    last print), buckets in order; an open bucket shows ``...`` for its unknown edge."""
    last = hist.filter(pl.col("ts") == pl.col("ts").max().over("file", "map", "keys"))
    label = pl.format(
        "[{}, {})",
        pl.col("lower").cast(pl.String).fill_null("..."),
        pl.col("upper").cast(pl.String).fill_null("..."),
    )
    fig = go.Figure()
    groups = last.with_columns(
        name=pl.format("{}{}", "map", pl.col("keys").list.join(",")), bucket=label
    ).group_by("file", "map", "keys", maintain_order=True)
    for _, rows in groups:
        fig.add_trace(
            go.Bar(
                x=[esc(b) for b in rows["bucket"]],
                y=rows["count"].to_list(),
                name=esc(rows["name"][0]),
            )
        )
    fig.update_layout(barmode="group", height=360, margin={"t": 20})
    fig.update_xaxes(title_text="bucket (the map's unit)", type="category")
    fig.update_yaxes(title_text="count")
    return fig


def stats_page(tables: dict[str, pl.DataFrame], inputs: Sequence[str]) -> str:
    """The ``stats --html`` report."""
    rates = tables["rates"]
    width = rates["seconds"].max() if rates.height else None
    meta = [
        ("inputs", ", ".join(inputs)),
        ("window", f"{float(width) * 1e3:g} ms" if width else "—"),  # type: ignore[arg-type]
        (
            "calls timed",
            str(int(tables["latency"]["count"].sum()) if tables["latency"].height else 0),
        ),
        ("RPCITs", str(int(tables["flushes"]["flushes"].sum()) if tables["flushes"].height else 0)),
        ("block I/Os", str(int(tables["io"]["ios"].sum()) if tables["io"].height else 0)),
    ]
    flushes = tables["flushes"]
    if flushes.height and flushes["failed"].sum():
        failed, enomem, fallback = (int(flushes[c].sum()) for c in ("failed", "enomem", "fallback"))
        meta.append(
            (
                "failed RPCITs",
                f"{failed}, {enomem} of them -ENOMEM, answered by {fallback} global RPCIT(s)",
            )
        )
    sections: list[tuple[str, object]] = []
    if tables["histogram"].height:
        sections.append(("Latency histograms", histogram_figure(tables["histogram"])))
    if tables["cdf"].height:
        sections.append(("Latency CDFs", cdf_figure(tables["cdf"])))
    hist = tables.get("bpftrace_histograms")
    if hist is not None and hist.height:
        sections.append(("bpftrace histograms", bucket_figure(hist)))
    if rates.height:
        sections.append(
            ("RPCITs per second", rate_figure([("", rates)], "flushes_per_s", "RPCITs/s"))
        )
        sections.append(("IOPS", rate_figure([("", rates)], "iops", "IOPS")))
    if not sections:
        sections.append(
            ("Nothing to show", "no timed calls, RPCITs, block I/O or histograms in the inputs")
        )
    return page("tracetool stats", meta, sections)


def ratio_figure(metrics: pl.DataFrame) -> go.Figure:
    """B/A per figure with its interval; log axis, a line at 1."""
    shown = metrics.filter(pl.col("ratio").is_not_null() & (pl.col("ratio") > 0))
    labels = [esc(f"{m} · {g}") for m, g in zip(shown["metric"], shown["group"], strict=True)]
    lo = (shown["ratio"] - shown["lo"].fill_null(shown["ratio"])).to_list()
    hi = (shown["hi"].fill_null(shown["ratio"]) - shown["ratio"]).to_list()
    excludes = ((shown["lo"] > 1) | (shown["hi"] < 1)).fill_null(False).to_list()
    fig = go.Figure(
        go.Scatter(
            x=shown["ratio"].to_list(),
            y=labels,
            mode="markers",
            marker={"color": ["#c0392b" if e else "#7f8c8d" for e in excludes], "size": 9},
            error_x={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
            hovertemplate="%{y}: B/A %{x:.3g}<extra></extra>",
        )
    )
    fig.add_vline(x=1, line_dash="dot", line_color="#333")
    fig.update_layout(height=max(300, 26 * len(labels) + 80), margin={"t": 20, "l": 10})
    fig.update_xaxes(type="log", title_text="B / A (95 % interval; red: excludes 1)")
    fig.update_yaxes(autorange="reversed")
    return fig


def diff_page(cmp: Comparison, a_name: str, b_name: str) -> str:
    """The ``diff --html`` report."""
    meta = [
        ("A", a_name),
        ("B", b_name),
        (
            "intervals",
            f"{round(cmp.level * 100)} % bootstrap, {cmp.replicates} replicates, seed {cmp.seed}",
        ),
        ("windows", f"{cmp.window_ns / 1000:g} µs"),
        (
            "findings",
            ", ".join(f"{s}: {n}" for s, n in cmp.findings.group_by("status").len().iter_rows())
            or "none",
        ),
    ]
    sections: list[tuple[str, object]] = [("B / A", ratio_figure(cmp.metrics))]
    a, b = cmp.samples.get("a"), cmp.samples.get("b")
    if a is not None and b is not None and a.height and b.height:
        common = sorted(set(a["group"]) & set(b["group"]))[:MAX_CDFS]
        pick = pl.col("group").is_in(common)
        sections.append(
            (
                "Latency CDFs, A solid and B dashed",
                cdf_figure(a, [("A", a.filter(pick)), ("B", b.filter(pick))]),
            )
        )
    ra, rb = cmp.rates.get("a"), cmp.rates.get("b")
    if ra is not None and rb is not None:
        sections.append(("IOPS over time", rate_figure([("A", ra), ("B", rb)], "iops", "IOPS")))
        sections.append(
            (
                "RPCITs per second over time",
                rate_figure([("A", ra), ("B", rb)], "flushes_per_s", "RPCITs/s"),
            )
        )
    return page("tracetool diff", meta, sections)
