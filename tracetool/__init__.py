"""tracetool: what each IOMMU device went through, from the traces and logs a kernel left.

>>> import tracetool
>>> trace = tracetool.parse_text(
...     "  kmcheck-41  [003] .....   531.000090: "
...     "remove_device_from_group: IOMMU: groupID=4 device=0004:00:00.0\\n"
... )
>>> trace.events.select("ts", "event", pl.col("args").struct.field("device")).collect().row(0)
(531000090000, 'remove_device_from_group', '0004:00:00.0')
"""

from __future__ import annotations

__version__ = "0.1.0"

import polars as pl

from tracetool.catalogue import formats, get_format
from tracetool.check import check
from tracetool.diff import Comparison, compare
from tracetool.errors import InputError, StrictError, TraceToolError, UnknownName
from tracetool.events import InputInfo, Trace, attach_stacks, event_summary
from tracetool.parse import parse, parse_text
from tracetool.stats import Stats, stats
from tracetool.timeline import device_summary, timeline


def plot_timeline(trace: Trace, **options: object) -> object:
    """The timeline of ``trace`` as a ``plotly.graph_objects.Figure``, for notebooks:
    device and CPU lanes, findings, crashes, loss windows, RPCIT rate and latency.
    Options: ``devices``, ``window`` (ns pair), ``rule_dirs``, ``era``. plotly is
    imported only when this is called."""
    from tracetool.plot import plot_timeline as plot

    return plot(trace, **options)  # type: ignore[arg-type]


__all__ = [
    "Comparison",
    "InputError",
    "InputInfo",
    "Stats",
    "StrictError",
    "Trace",
    "TraceToolError",
    "UnknownName",
    "attach_stacks",
    "check",
    "compare",
    "device_summary",
    "event_summary",
    "formats",
    "get_format",
    "parse",
    "parse_text",
    "pl",
    "plot_timeline",
    "stats",
    "timeline",
]
