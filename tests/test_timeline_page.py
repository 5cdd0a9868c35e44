"""``tracetool timeline`` pages, opened in a real headless Chromium: no console errors and
no network, the lanes and traces a user expects, hover text with evidence, click-through
to a crash report, and no way for a trace's strings to put markup on the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from browser import opened
from click.testing import CliRunner
from conftest import SAMPLES

from tracetool.cli import main

SIM = SAMPLES / "simulated"
RACE = SIM / "race-v6.0-overlap-warn.txt"
RACE_LOG = SIM / "race-v6.0-overlap-warn-dmesg.txt"
DIV = "tracetool-timeline"


def _timeline(tmp_path: Path, *inputs: Path, extra: tuple[str, ...] = ()) -> Path:
    out = tmp_path / "timeline.html"
    args = ["timeline", *map(str, inputs), "-o", str(out), "--no-cache", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


def _graph(page: Any) -> dict[str, Any]:
    """What plotly drew: trace names, y tick labels, shapes."""
    data: dict[str, Any] = page.evaluate(
        f"""() => {{
          const gd = document.getElementById({DIV!r});
          return {{
            names: gd.data.map(t => t.name),
            types: gd.data.map(t => t.type),
            ticks: gd.layout.yaxis.ticktext,
            shapes: (gd.layout.shapes || []).map(s => ({{fill: s.fillcolor, type: s.type}})),
          }};
        }}"""
    )
    return data


def _point(page: Any, name: str, index: int = 0) -> tuple[float, float]:
    """Where on the screen point ``index`` of the trace called ``name*`` is drawn."""
    pos: list[float] = page.evaluate(
        f"""([name, i]) => {{
          const gd = document.getElementById({DIV!r});
          const t = gd._fullData.find(t => (t.name || '').startsWith(name));
          const xa = gd._fullLayout[(t.xaxis || 'x').replace('x', 'xaxis')];
          const ya = gd._fullLayout[(t.yaxis || 'y').replace('y', 'yaxis')];
          const r = gd.getBoundingClientRect();
          return [r.left + xa._offset + xa.l2p(t.x[i]), r.top + ya._offset + ya.l2p(t.y[i])];
        }}""",
        [name, index],
    )
    return pos[0], pos[1]


def _hover(page: Any, name: str, index: int = 0) -> str:
    x, y = _point(page, name, index)
    page.mouse.move(x, y)
    page.wait_for_selector(".hoverlayer .hovertext", timeout=5_000)
    text: str = page.evaluate(
        "() => Array.from(document.querySelectorAll('.hoverlayer .hovertext'))"
        ".map(e => e.textContent).join('\\n')"
    )
    return text


def test_the_race_shows_overlap_locks_and_warn(tmp_path: Path) -> None:
    html = _timeline(tmp_path, RACE, RACE_LOG)
    with opened(html) as o:
        page = o.page
        graph = _graph(page)
        for name in ("release", "attach", "detach", "lock implicit", "RPCIT, ranged"):
            assert name in graph["names"], graph["names"]
        assert any(n.startswith("finding") for n in graph["names"])
        assert any(n.startswith("WARN / Oops") for n in graph["names"])
        assert "scattergl" in graph["types"]
        ticks = graph["ticks"]
        assert "0004:00:00.0 · kmcheck-41" in ticks and "0004:00:00.0 · kmcheck-41 locks" in ticks
        assert "CPU 3" in ticks
        # The overlap is a filled red box over release and attach.
        assert any(s["fill"] and "228, 26, 28, 0.3" in s["fill"] for s in graph["shapes"])
        # Hovering a finding shows the rule and its evidence lines with their text.
        hover = _hover(page, "finding")
        assert re.search(r"\(error|\(warning", hover)
        assert "race-v6.0-overlap-warn" in hover and ".txt:" in hover
        # Hovering the WARN names it; clicking it shows the report and what ran before.
        page.mouse.move(0, 0)
        assert "WARNING in zpci_dma_init_device" in _hover(page, "WARN / Oops")
        page.mouse.click(*_point(page, "WARN / Oops"))
        page.wait_for_function(
            "document.getElementById('details').getAttribute('data-key') === 'crash0'"
        )
        details = page.inner_text("#details")
        assert "WARNING: CPU: 3 PID: 41 at arch/s390/pci/pci_dma.c:592" in details
        assert "traced events of CPU 3 before it" in details
        page.screenshot(path=str(tmp_path / "race.png"), full_page=True)
        assert not o.errors, o.errors
        header = page.inner_text("table.meta")
        assert "kernel era" in header and "v6.0" in header
        assert "release-overlaps-attach: 2" in header
        assert "anchored on 20 event(s)" in page.inner_text("table.inputs")


def test_clicking_a_finding_shows_all_its_evidence(tmp_path: Path) -> None:
    html = _timeline(tmp_path, RACE)
    with opened(html) as o:
        page = o.page
        count = page.evaluate(
            f"() => document.getElementById({DIV!r})._fullData"
            ".find(t => (t.name || '').startsWith('finding')).x.length"
        )
        for i in range(count):
            page.mouse.click(*_point(page, "finding", i))
            key = page.evaluate("document.getElementById('details').getAttribute('data-key')")
            if key and "release-overlaps-attach" in page.inner_text("#details"):
                break
        else:
            pytest.fail("no finding of release-overlaps-attach could be clicked")
        details = page.inner_text("#details")
        assert "evidence:" in details and "s390_rel:" in details and "s390_att:" in details
        assert not o.errors, o.errors


EVIL_COMM = "<script>window.pwned=1</script>"
EVIL_TEXT = '<img src=x onerror="window.pwned=2">'


def test_markup_in_a_trace_stays_text(tmp_path: Path) -> None:
    trace = tmp_path / "evil.txt"
    log = tmp_path / "evil-dmesg.txt"
    trace.write_text(RACE.read_text().replace("kmcheck", EVIL_COMM))
    log.write_text(
        RACE_LOG.read_text()
        .replace("kmcheck", EVIL_COMM)
        .replace("Modules linked in:", f"Modules linked in: {EVIL_TEXT}")
    )
    html = _timeline(tmp_path, trace, log)
    with opened(html) as o:
        page = o.page
        assert page.evaluate("window.pwned") is None
        assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0
        # The label carries the escaped text, and the page shows it as the text it is.
        shown = page.evaluate(
            "() => Array.from(document.querySelectorAll('.ytick text')).map(e => e.textContent)"
        )
        assert any(EVIL_COMM in t for t in shown), shown
        page.mouse.click(*_point(page, "WARN / Oops"))
        page.wait_for_function("document.getElementById('details').getAttribute('data-key')")
        details = page.inner_text("#details")
        assert EVIL_TEXT in details and EVIL_COMM in details
        assert page.evaluate("window.pwned") is None
        assert not o.errors, o.errors


def test_loss_windows_are_shaded(tmp_path: Path) -> None:
    html = _timeline(tmp_path, SAMPLES / "ftrace" / "s390-trace-pipe-lost.txt")
    with opened(html) as o:
        graph = _graph(o.page)
        assert any(n.startswith("lost events") for n in graph["names"])
        assert sum(1 for s in graph["shapes"] if s["fill"] and "120, 120, 120" in s["fill"]) >= 3
        assert "lost" in _hover(o.page, "lost events")
        assert not o.errors, o.errors


def test_an_aggregated_timeline_says_what_it_binned(tmp_path: Path) -> None:
    html = _timeline(tmp_path, SIM / "dma-s390-strict-zvm.txt", extra=("--max-detail", "40"))
    with opened(html) as o:
        assert "aggregated (counts per bin)" in _graph(o.page)["names"]
        assert "drawn as counts per" in o.page.inner_text("ul.notes")
        assert not o.errors, o.errors


def test_bad_window_and_unknown_device_are_clear_errors(tmp_path: Path) -> None:
    out = tmp_path / "t.html"
    bad = CliRunner().invoke(main, ["timeline", str(RACE), "-o", str(out), "--window", "5"])
    assert bad.exit_code == 2 and "START:END" in bad.output
    bad = CliRunner().invoke(main, ["timeline", str(RACE), "-o", str(out), "--device", "x"])
    assert bad.exit_code == 2 and "no such device" in bad.output and "0004:00:00.0" in bad.output
    assert not out.exists()
