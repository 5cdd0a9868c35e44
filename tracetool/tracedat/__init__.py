"""Native reader of trace-cmd's binary trace.dat files (versions 6 and 7).

``parse_source`` is what ``tracetool.parse`` calls for an input that starts with the
trace.dat magic: it reads the container (``container``), walks every CPU's ring-buffer
pages in bulk (``pages``), reads the fields of each record from the event format
layouts (``formats``, ``columns``) and renders the text trace-cmd would print
(``printfmt``, ``render``, ``rows``), in worker processes for large files
(``parallel``), so the ``events``/``losses``/``diagnostics`` tables are the
ones parsing ``trace-cmd report -t`` gives. With ``via="trace-cmd"`` the file is read by
running ``trace-cmd report -t`` and parsing its text instead.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import polars as pl

from tracetool.errors import InputError
from tracetool.events import InputInfo, scan_events
from tracetool.tracedat.container import MAGIC, is_tracedat
from tracetool.tracedat.errors import TraceDatError
from tracetool.tracedat.parallel import read_parts
from tracetool.tracedat.reader import read_file

if TYPE_CHECKING:
    from tracetool.inputs import Source

VIA = ("native", "trace-cmd")

__all__ = ["MAGIC", "VIA", "TraceDatError", "is_tracedat", "parse_source", "read_file", "sniff"]


def sniff(source: Source) -> bool:
    """True when ``source`` is a plain (not .gz/.zst) file that starts with the magic."""
    if source.path is None or source.compression:
        return False
    try:
        with source.path.open("rb") as fh:
            return is_tracedat(fh.read(len(MAGIC)))
    except OSError:
        return False


Parts = tuple[pl.LazyFrame, pl.DataFrame, pl.DataFrame, dict[str, pl.DataFrame], InputInfo]


def parse_source(
    source: Source,
    sink: Path,
    via: str | None = None,
    parse_text: Callable[[IO[bytes]], Parts] | None = None,
) -> Parts:
    """Read a trace.dat; its events go to a Parquet part in ``sink`` (as the text
    parser's do), so the cache keeps them the same way. With ``via="trace-cmd"``, the
    text of ``trace-cmd report -t`` goes through ``parse_text`` instead."""
    assert source.path is not None
    if via not in (None, *VIA):
        raise InputError(f"--via {via}: unknown reader (known: {', '.join(VIA)})")
    if via == "trace-cmd":
        assert parse_text is not None
        proc = report_text(source.path, source.name)
        assert proc.stdout is not None
        assert proc.stderr is not None
        with proc, proc.stdout as stream, proc.stderr as errors:
            parts = parse_text(stream)
            err = errors.read().decode("utf-8", "replace").strip()
        if proc.returncode != 0:
            raise InputError(f"{source.name}: trace-cmd report failed: {err}")
        parts[4].meta["via"] = "trace-cmd"
        return parts
    diagnostics, losses, info = read_parts(source.path, source.name, sink)
    events = scan_events(str(sink / "events-*.parquet"))
    return events, diagnostics, losses, {}, info


def report_text(path: Path, name: str) -> subprocess.Popen[bytes]:
    """``trace-cmd report -t`` of ``path``, streaming (for ``--via trace-cmd``)."""
    exe = shutil.which("trace-cmd")
    if exe is None:
        raise InputError(
            f"{name}: --via trace-cmd needs the trace-cmd program (apt-get install trace-cmd); "
            "without it, leave --via out and the native reader is used"
        )
    return subprocess.Popen(
        [exe, "report", "-t", "-i", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
