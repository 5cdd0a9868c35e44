"""``tracetool triage --format html``, opened in a real headless Chromium: the table of
groups, a chart per group over time (from the history when there is one), no console
errors or network, and no markup from a log's path or a bug link."""

from __future__ import annotations

from pathlib import Path

from browser import opened
from click.testing import CliRunner
from conftest import SAMPLES
from test_triage import NEW, OLD

from tracetool.cli import main

DRAWN = "document.querySelectorAll('.js-plotly-plot .main-svg').length"
EVIL_NAME = "a<img src=x onerror=window.pwned=1>.txt"  # sorts first: the example


def _logs(tmp_path: Path) -> Path:
    d = tmp_path / "ci"
    d.mkdir()
    (d / "run1-old.txt").write_text(OLD)
    (d / "run2-new.txt").write_text(NEW)
    (d / EVIL_NAME).write_text(NEW)
    (d / "run4-race.txt").write_bytes(
        (SAMPLES / "simulated" / "race-v6.0-overlap-warn-dmesg.txt").read_bytes()
    )
    return d


def _triage(*args: str) -> None:
    result = CliRunner().invoke(main, ["triage", *args])
    assert result.exit_code in (0, 1), result.output


def test_report_has_groups_and_a_chart_each(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    known = tmp_path / "known.toml"
    known.write_text(
        '[[issue]]\npattern = "zpci_dma_init_device"\nbug = "javascript:window.pwned=2"\n'
        'status = "open"\n'
    )
    out = tmp_path / "triage.html"
    _triage(str(logs), "--known", str(known), "--format", "html", "-o", str(out))
    with opened(out, ready=f"{DRAWN} >= 2") as o:
        page = o.page
        rows = page.query_selector_all("table.groups tr")
        # A header; the drifted WARNs are one group, the race log's WARN another, and
        # the rules' findings on its ftrace dump five more.
        assert len(rows) == 1 + 7
        text = page.inner_text("table.groups")
        assert "WARNING in iommu_detach_group" in text and "new" in text
        assert "WARNING in zpci_dma_init_device" in text and "known" in text
        assert "3.10.0 6.1.0" in text
        charts = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        assert charts == 7
        # The detach WARN was seen three times, on the day the logs were written.
        counts = page.evaluate(
            "Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".map(gd => gd._fullData[0].y.reduce((a, b) => a + b, 0))"
        )
        assert sorted(counts) == [1, 1, 1, 1, 1, 1, 3]
        # Markup in a log's file name and a javascript: bug link stay text.
        assert EVIL_NAME in text
        assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0
        assert page.evaluate("document.querySelectorAll('a[href^=javascript]').length") == 0
        assert page.evaluate("window.pwned") is None
        assert not o.errors, o.errors


def test_report_charts_the_history(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    history = tmp_path / "history"
    _triage(str(logs / "run2-new.txt"), "--history", str(history))
    out = tmp_path / "triage.html"
    _triage(str(logs), "--history", str(history), "--format", "html", "-o", str(out))
    with opened(out, ready=f"{DRAWN} >= 2") as o:
        page = o.page
        assert "per day of the triage history" in page.inner_text("table.meta")
        counts = page.evaluate(
            "Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".map(gd => gd._fullData[0].y.reduce((a, b) => a + b, 0))"
        )
        # Two triages kept: the detach WARN once in the first, three times in this one.
        assert sorted(counts) == [1, 1, 1, 1, 1, 1, 4]
        assert not o.errors, o.errors
