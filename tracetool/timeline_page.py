"""The page of ``tracetool timeline``: one self-contained HTML file (plotly.js embedded,
no network) with a header (inputs, parse accounting, kernel era, clock alignment, what
was aggregated), the figure, and a details panel.

Clicking a finding or a crash marker fills the panel with its full text: the rule's
message and every evidence line, or the report and the last events of the crashing CPU
and task. That text travels in a JSON block whose ``<``, ``>`` and ``&`` are escaped as
``\\u003c`` and friends, and the page puts it in with ``textContent``: a trace's strings
never become markup.
"""

from __future__ import annotations

import json

import plotly.io as pio
import polars as pl

from tracetool import clocks
from tracetool.events import Trace
from tracetool.lanes import Lanes
from tracetool.pages import STYLE, esc
from tracetool.plot import figure

DIV_ID = "tracetool-timeline"

PAGE_STYLE = (
    STYLE
    + """
#details { white-space: pre; font-family: monospace; font-size: 12px; background: #f7f7f7;
  border: 1px solid #ddd; padding: 0.8em; max-height: 32em; overflow: auto; }
table.inputs { border-collapse: collapse; font-size: 0.85em; }
table.inputs td, table.inputs th { padding: 2px 8px; border-bottom: 1px solid #eee;
  text-align: left; }
ul.notes { font-size: 0.85em; color: #555; }
"""
)

SCRIPT = """
(function () {
  var gd = document.getElementById(%(div)s);
  var details = JSON.parse(document.getElementById("tracetool-details").textContent);
  gd.on("plotly_click", function (ev) {
    var p = ev.points && ev.points[0];
    var key = p && p.customdata;
    var panel = document.getElementById("details");
    if (typeof key === "string" && Object.prototype.hasOwnProperty.call(details, key)) {
      panel.textContent = details[key];
      panel.setAttribute("data-key", key);
      panel.scrollIntoView({block: "nearest"});
    }
  });
  // When the figure was first drawn, in ms since navigation (benchmarks read it).
  window.tracetoolPainted = performance.now();
})();
"""


def _json_script(data: object) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' survives as itself."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _inputs_table(trace: Trace) -> str:
    acc = trace.accounting()
    cols = ["file", "format", "lines", "events", "records", "headers", "losses", "diagnostics"]
    head = "".join(f"<th>{esc(c)}</th>" for c in [*cols, "clock"])
    rows = []
    clock = {i.file: clocks.describe(i) or "reference" for i in trace.inputs}
    for rec in acc.select([c for c in cols if c in acc.columns]).iter_rows(named=True):
        cells = "".join(f"<td>{esc(rec.get(c, ''))}</td>" for c in cols)
        rows.append(f"<tr>{cells}<td>{esc(clock.get(rec['file'], ''))}</td></tr>")
    return f'<table class="inputs"><tr>{head}</tr>{"".join(rows)}</table>'


def page(trace: Trace, lanes: Lanes, title: str = "tracetool timeline") -> str:
    """The whole HTML document of a timeline."""
    fig = figure(lanes, "")  # the page has the title
    eras = lanes.timeline.eras if lanes.timeline else {}
    era_text = "; ".join(f"{f}: {e.label()}" for f, e in sorted(eras.items())) or "?"
    lo, hi = lanes.window
    findings = lanes.findings
    counts = (
        findings.group_by("rule").len().sort("rule").iter_rows() if not findings.is_empty() else []
    )
    meta: list[tuple[str, str]] = [
        ("kernel era", era_text),
        ("window", f"{lo / 1e9:.9f} s to {hi / 1e9:.9f} s ({(hi - lo) / 1e9:.6f} s)"),
        ("findings", ", ".join(f"{r}: {n}" for r, n in counts) or "none"),
        ("crash reports", str(lanes.crashes.height)),
        ("loss windows", str(lanes.losses.height)),
    ]
    notes = lanes.aggregated or ["nothing aggregated: every span and mark is drawn"]
    plot_html = pio.to_html(
        fig,
        include_plotlyjs=True,
        full_html=False,
        div_id=DIV_ID,
        config={"displaylogo": False, "scrollZoom": True},
        post_script=SCRIPT % {"div": json.dumps(DIV_ID)},
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{PAGE_STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        '<table class="meta">',
        *(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in meta),
        "</table>",
        "<h2>Inputs</h2>",
        _inputs_table(trace),
        "<h2>Drawn</h2>",
        '<ul class="notes">',
        *(f"<li>{esc(n)}</li>" for n in notes),
        "<li>shaded bands are loss windows: the trace lost events there, a gap is not "
        "silence. Red boxes are findings (filled: an unlocked overlap); dashed red lines "
        "are WARNs and Oopses. Click a star or a cross for its evidence.</li>",
        "</ul>",
        # The details first: the figure's script reads them as it is set up.
        '<script type="application/json" id="tracetool-details">'
        f"{_json_script(lanes.details)}</script>",
        plot_html,
        "<h2>Details</h2>",
        '<div id="details">Click a finding (star) or a crash (cross) to see its evidence '
        "here.</div>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def describe(lanes: Lanes) -> list[str]:
    """What the command tells on stderr about the page it wrote."""
    rows = lanes.rows
    devices = rows.filter(pl.col("group") == "device")["lane"].n_unique()
    cpus = rows.filter(pl.col("group") == "cpu")["lane"].n_unique()
    drawn = lanes.segments.height + lanes.marks.height
    out = [
        f"{devices} device lane(s), {cpus} CPU lane(s), {drawn:,} spans and marks drawn, "
        f"{lanes.findings.height} finding(s), {lanes.crashes.height} crash report(s), "
        f"{lanes.losses.height} loss window(s)"
    ]
    return out + [f"aggregated: {n}" for n in lanes.aggregated]
