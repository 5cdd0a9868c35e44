"""The timeline as a plotly figure: lanes on top, the flush-rate track and the latency
panel under them, all on one time axis with a range slider.

``plot_timeline(trace)`` returns a ``plotly.graph_objects.Figure`` for a notebook;
``tracetool timeline`` wraps it in a page (``tracetool.timeline_page``). This is the only
module of the timeline that imports plotly. Spans, marks and density are WebGL traces
(``scattergl``); findings, crash lines and loss windows are shapes. Every string in a label
or hover came through ``lanes.escaped`` or ``html.escape``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from tracetool.events import Trace
from tracetool.kernel import EraChoice
from tracetool.lanes import Lanes, build

# Span colours by kind; findings and crashes use red, which nothing else does.
KIND_COLOURS = {
    "release": "#7b3294",
    "attach": "#2166ac",
    "detach": "#35978f",
    "probe": "#1b7837",
    "dma_init": "#e08214",
    "dma_exit": "#8c510a",
    "register_ioat": "#b8a000",
    "unregister_ioat": "#806600",
    "deconfigure": "#5e3c99",
    "zpci_event": "#999999",
    "group_add": "#4d9221",
    "group_remove": "#8e0152",
    "domain_attached": "#4393c3",
    "domain_detached": "#80cdc1",
    "call": "#878787",
    "dma_map": "#66a61e",
    "dma_unmap": "#a6761d",
    "flush": "#1f78b4",
    "iommu_map": "#b2df8a",
    "iommu_unmap": "#fdbf6f",
    "lock": "#252525",
    "lock_implicit": "#bdbdbd",  # lighter than a traced hold: the era holds it
    "mapping": "#a6dba0",
    "running": "#6a51a3",
    "irq": "#f46d43",
    "softirq": "#fdae61",
}
DEFAULT_COLOUR = "#66c2a5"
MARK_STYLE = {
    "flush_global": ("diamond", 11, "#d95f02", "RPCIT, global"),
    "flush_ranged": ("triangle-down", 7, "#1f78b4", "RPCIT, ranged"),
    "flush_failed": ("x", 11, "#000000", "RPCIT, failed"),
    "unmap": ("line-ns-open", 8, "#33a02c", "unmap"),
}
FINDING_COLOUR = "rgba(228, 26, 28, 0.30)"
FINDING_EDGE = "rgba(228, 26, 28, 0.9)"
CRASH_COLOUR = "#b2182b"
LOSS_COLOUR = "rgba(120, 120, 120, 0.22)"
WIDTHS = (14, 8, 4)  # line width by nesting depth
MAX_SHAPES = 400
ROW_PX = 26


def _s(ts: pl.Series) -> np.ndarray:
    """ns to seconds, as a numpy array (sent to the page as binary)."""
    return (ts.cast(pl.Float64) / 1e9).to_numpy()


def _segment_xy(part: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """x/y of line segments, one NaN-separated pair of vertices each. numpy arrays travel
    to the page as binary (base64), a fraction of the size of decimal text."""
    a = pl.col("start_ts").cast(pl.Float64) / 1e9
    b = pl.col("end_ts").cast(pl.Float64) / 1e9
    gap = pl.lit(float("nan"), pl.Float64)
    row = pl.col("row").cast(pl.Float64)
    long = part.select(x=pl.concat_list(a, b, gap), y=pl.concat_list(row, row, gap)).explode(
        "x", "y"
    )
    return long["x"].to_numpy(), long["y"].to_numpy()


def _focus(lanes: Lanes) -> tuple[float, float] | None:
    """The initial x range: the findings and crashes with a margin, when there are any."""
    ts = [
        *lanes.findings["start_ts"].to_list(),
        *lanes.findings["end_ts"].to_list(),
        *lanes.crashes["ts"].to_list(),
    ]
    if not ts:
        return None
    lo, hi = min(ts), max(ts)
    pad = max((hi - lo) * 0.15, 5_000)
    return (lo - pad) / 1e9, (hi + pad) / 1e9


def figure(lanes: Lanes, title: str = "tracetool timeline") -> go.Figure:
    """The figure of ``lanes`` (see the module doc)."""
    nrows = max(1, lanes.rows.height)
    lane_px = max(160, nrows * ROW_PX)
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        row_heights=[lane_px, 110, 150],
        subplot_titles=("", "RPCIT rate (per second)", html.escape(lanes.latency_of)),
    )
    _spans(fig, lanes)
    _marks(fig, lanes)
    _density(fig, lanes)
    _findings(fig, lanes)
    _crashes(fig, lanes)
    _rate(fig, lanes)
    _latency(fig, lanes)
    _losses(fig, lanes)  # last: plotly shades only the subplots that have traces
    labels = lanes.rows.sort("row")
    fig.update_yaxes(
        row=1,
        col=1,
        tickmode="array",
        tickvals=labels["row"].to_list(),
        ticktext=labels["label"].to_list(),
        range=[nrows - 0.4, -0.6],
        showgrid=False,
        zeroline=False,
        fixedrange=True,
        tickfont={"size": 10},
    )
    focus = _focus(lanes)
    lo, hi = lanes.window[0] / 1e9, lanes.window[1] / 1e9
    fig.update_xaxes(range=list(focus) if focus else [lo, hi], showspikes=True, spikemode="across")
    fig.update_xaxes(
        row=3,
        col=1,
        title_text="time (s, trace clock)",
        rangeslider={"visible": True, "thickness": 0.06, "range": [lo, hi]},
    )
    fig.update_layout(
        title={"text": html.escape(title), "x": 0.01} if title else None,
        height=lane_px + 110 + 150 + 260,
        hovermode="closest",
        hoverlabel={"align": "left", "font": {"family": "monospace", "size": 11}},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0.0},
        margin={"l": 260, "r": 30, "t": 90, "b": 40},
        dragmode="zoom",
        plot_bgcolor="white",
    )
    return fig


def _spans(fig: go.Figure, lanes: Lanes) -> None:
    seg = lanes.segments
    if seg.is_empty():
        return
    seg = seg.with_columns(level=pl.col("depth").clip(0, len(WIDTHS) - 1))
    kinds = seg["kind"].unique().sort().to_list()
    for kind in kinds:
        for level in range(len(WIDTHS)):
            part = seg.filter((pl.col("kind") == kind) & (pl.col("level") == level))
            if part.is_empty():
                continue
            x, y = _segment_xy(part)
            colour = KIND_COLOURS.get(kind, DEFAULT_COLOUR)
            first = level == 0 or not (seg["kind"] == kind).filter(seg["level"] == 0).any()
            fig.add_trace(
                go.Scattergl(
                    x=x,
                    y=y,
                    mode="lines",
                    line={
                        "width": WIDTHS[level],
                        "color": colour,
                    },
                    hoverinfo="skip",
                    name=kind.replace("_", " "),
                    legendgroup=kind,
                    showlegend=first,
                    opacity=1.0 if kind != "running" else 0.8,
                ),
                row=1,
                col=1,
            )
            # The hover text once per span, on a mark at its middle.
            fig.add_trace(
                go.Scattergl(
                    x=_s((part["start_ts"] + part["end_ts"]) // 2),
                    y=part["row"].cast(pl.Float64).to_numpy(),
                    mode="markers",
                    marker={"size": max(4, WIDTHS[level] - 4), "color": colour, "opacity": 0.0},
                    hovertext=part["hover"].to_list(),
                    hoverinfo="text",
                    name=kind.replace("_", " "),
                    legendgroup=kind,
                    showlegend=False,
                ),
                row=1,
                col=1,
            )


def _marks(fig: go.Figure, lanes: Lanes) -> None:
    for kind in lanes.marks["kind"].unique().sort().to_list():
        part = lanes.marks.filter(pl.col("kind") == kind)
        symbol, size, colour, name = MARK_STYLE.get(kind, ("circle", 7, DEFAULT_COLOUR, kind))
        fig.add_trace(
            go.Scattergl(
                x=_s(part["ts"]),
                y=part["row"].cast(pl.Float64).to_numpy(),
                mode="markers",
                marker={"symbol": symbol, "size": size, "color": colour},
                hovertext=part["hover"].to_list(),
                hoverinfo="text",
                name=name,
            ),
            row=1,
            col=1,
        )


def _density(fig: go.Figure, lanes: Lanes) -> None:
    """What was aggregated: a square per row and bin, darker for more, one trace per
    kind (the hover template names it, so no text travels per bin)."""
    d = lanes.density
    if d.is_empty():
        return
    top = float(d["count"].max()) or 1.0  # type: ignore[arg-type]
    for i, kind in enumerate(d["kind"].unique().sort().to_list()):
        part = d.filter(pl.col("kind") == kind)
        label = html.escape(kind.replace("_", " "))
        fig.add_trace(
            go.Scattergl(
                x=_s((part["start_ts"] + part["end_ts"]) // 2),
                y=part["row"].cast(pl.Float64).to_numpy(),
                mode="markers",
                marker={
                    "symbol": "square",
                    "size": 9,
                    "color": part["count"].cast(pl.Float64).log10().to_numpy(),
                    "cmin": 0.0,
                    "cmax": float(np.log10(top)),
                    "colorscale": "Viridis",
                    "showscale": False,
                },
                customdata=part["count"].to_numpy(),
                hovertemplate=f"%{{customdata:,}} {label} in this bin"
                "<br>(aggregated: --window or --device for detail)<extra></extra>",
                name="aggregated (counts per bin)",
                legendgroup="aggregated",
                showlegend=i == 0,
            ),
            row=1,
            col=1,
        )


def _findings(fig: go.Figure, lanes: Lanes) -> None:
    f = lanes.findings
    if f.is_empty():
        return
    # Overlaps (the races) filled; the other kinds outlined, so many do not bury them.
    boxes = f.select("start_ts", "end_ts", "row_lo", "row_hi", race=pl.col("kind") == "overlap")
    boxes = boxes.unique().sort("race")
    if boxes.height <= MAX_SHAPES:
        for a, b, lo, hi, race in boxes.iter_rows():
            fig.add_shape(
                type="rect",
                x0=a / 1e9,
                x1=max(b, a + 1) / 1e9,
                y0=lo - 0.45,
                y1=hi + 0.45,
                fillcolor=FINDING_COLOUR if race else "rgba(0, 0, 0, 0)",
                line={
                    "color": FINDING_EDGE,
                    "width": 2 if race else 1,
                    "dash": "solid" if race else "dot",
                },
                layer="above",
                row=1,
                col=1,
            )
    fig.add_trace(
        go.Scattergl(
            x=_s(f["start_ts"]),
            y=(f["row_lo"].cast(pl.Float64) - 0.3).to_list(),
            mode="markers",
            marker={
                "symbol": "star",
                "size": 14,
                "color": "#e41a1c",
                "line": {"width": 1, "color": "#67000d"},
            },
            hovertext=f["hover"].to_list(),
            hoverinfo="text",
            customdata=f["key"].to_list(),
            name="finding (click for evidence)",
        ),
        row=1,
        col=1,
    )


def _crashes(fig: go.Figure, lanes: Lanes) -> None:
    c = lanes.crashes
    if c.is_empty():
        return
    for ts in c["ts"].to_list()[:MAX_SHAPES]:
        fig.add_vline(
            x=ts / 1e9, line={"color": CRASH_COLOUR, "width": 2, "dash": "dash"}, row=1, col=1
        )
    fig.add_trace(
        go.Scattergl(
            x=_s(c["ts"]),
            # Just above the CPU's run row, so a span's vertex there does not take the hover.
            y=(c["row"].cast(pl.Float64) - 0.35).to_list(),
            mode="markers",
            marker={
                "symbol": "x",
                "size": 18,
                "color": CRASH_COLOUR,
                "line": {"width": 2, "color": "#000"},
            },
            hovertext=c["hover"].to_list(),
            hoverinfo="text",
            customdata=c["key"].to_list(),
            name="WARN / Oops (click for the report)",
        ),
        row=1,
        col=1,
    )


def _merged(losses: pl.DataFrame, limit: int) -> list[tuple[int, int, str]]:
    """Loss windows, merged where they overlap (or, past ``limit`` of them, come closer
    than the window over ``limit``), each with the text of its first six markers."""
    gap = 0
    if losses.height > limit:
        gap = int(losses.select(pl.col("end_ts").max() - pl.col("start_ts").min()).item())
        gap //= limit
    count = pl.col("lost").cast(pl.String).fill_null("an unknown number of")
    what = pl.format(
        "CPU {}: {} events lost ({}) at {}",
        pl.col("cpu").cast(pl.String).fill_null("?"),
        count,
        pl.col("marker").fill_null("?"),
        pl.col("where").fill_null("?"),
    )
    # Sorted by start, a window opens a new group when it starts after every earlier end.
    opens = pl.col("start_ts") > pl.col("end_ts").cum_max().shift(1) + gap
    merged = (
        losses.sort("start_ts")
        .with_columns(group=opens.fill_null(True).cum_sum(), what=what)
        .group_by("group", maintain_order=True)
        .agg(
            a=pl.col("start_ts").min(),
            b=pl.col("end_ts").max(),
            text=pl.col("what").head(6).str.join("<br>"),
        )
    )
    return list(merged.select("a", "b", "text").iter_rows())


def _losses(fig: go.Figure, lanes: Lanes) -> None:
    if lanes.losses.is_empty():
        return
    windows = _merged(lanes.losses, MAX_SHAPES)
    for a, b, _ in windows:
        for r in (1, 2, 3):
            fig.add_vrect(
                x0=a / 1e9,
                x1=max(b, a + 1) / 1e9,
                fillcolor=LOSS_COLOUR,
                line_width=0,
                layer="below",
                row=r,
                col=1,
            )
    fig.add_trace(
        go.Scattergl(
            x=[(a + b) / 2e9 for a, b, _ in windows],
            y=[-0.45] * len(windows),
            mode="markers",
            marker={"symbol": "square", "size": 10, "color": "rgba(90,90,90,0.8)"},
            hovertext=[html.escape(w).replace("&lt;br&gt;", "<br>") for _, _, w in windows],
            hoverinfo="text",
            name="lost events (shaded)",
        ),
        row=1,
        col=1,
    )


def _rate(fig: go.Figure, lanes: Lanes) -> None:
    r = lanes.flush_rate
    for scope, colour in (("ranged", "#1f78b4"), ("global", "#d95f02")):
        part = r.filter(pl.col("scope") == scope)
        if part.is_empty() or not part["count"].sum():
            continue
        fig.add_trace(
            go.Scattergl(
                x=_s(part["start_ts"]),
                y=part["per_s"].to_numpy(),
                mode="lines",
                line={"shape": "hv", "color": colour, "width": 1.5},
                name=f"{scope} RPCITs/s",
                hovertemplate="%{y:.3s}/s<extra>" + scope + "</extra>",
            ),
            row=2,
            col=1,
        )


def _latency(fig: go.Figure, lanes: Lanes) -> None:
    lat = lanes.latency
    if lat.is_empty():
        return
    xs = sorted(set(lat["start_ts"].to_list()))
    ys = sorted(set(lat["lo_ns"].to_list()))
    xi = {x: i for i, x in enumerate(xs)}
    yi = {y: i for i, y in enumerate(ys)}
    z: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    for x, y, n in lat.select("start_ts", "lo_ns", "count").iter_rows():
        z[yi[y]][xi[x]] = n
    width = int(lat["end_ts"][0] - lat["start_ts"][0])
    fig.add_trace(
        go.Heatmap(
            x=[(x + width / 2) / 1e9 for x in xs],
            y=list(range(len(ys))),
            z=z,
            colorscale="Blues",
            showscale=False,
            hovertemplate="%{z} in %{customdata}<extra></extra>",
            customdata=[[_bucket(y)] * len(xs) for y in ys],
            name="latency",
        ),
        row=3,
        col=1,
    )
    fig.update_yaxes(
        row=3,
        col=1,
        tickmode="array",
        tickvals=list(range(len(ys))),
        ticktext=[_bucket(y) for y in ys],
        tickfont={"size": 9},
    )


def _bucket(lo_ns: int) -> str:
    def t(ns: int) -> str:
        return (
            f"{ns / 1e6:g} ms"
            if ns >= 1_000_000
            else f"{ns / 1e3:g} µs"
            if ns >= 1000
            else f"{ns} ns"
        )

    return f"[{t(lo_ns)}, {t(2 * lo_ns)})"


def plot_timeline(
    trace: Trace,
    *,
    devices: Iterable[str] = (),
    window: tuple[int | None, int | None] = (None, None),
    rule_dirs: Sequence[str] = (),
    era: EraChoice | None = None,
) -> go.Figure:
    """The timeline of ``trace`` as a plotly figure (for notebooks): device and CPU lanes,
    findings, crashes, loss windows, RPCIT rate and latency. ``window`` is in ns."""
    return figure(build(trace, devices=devices, window=window, rule_dirs=rule_dirs, era=era))
