"""HTML reports of stats and diff, loaded in a real headless Chromium: every plot is drawn,
the page needs no network, and markup from an input never becomes markup on the page."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import SAMPLES

from tracetool.cli import main
from tracetool.pages import cdf_figure, cdf_points, page

STRICT = SAMPLES / "flush" / "s390-fio-zvm-strict.txt"
LAZY = SAMPLES / "flush" / "s390-fio-zvm-lazy.txt"
EVIL = "<img src=x onerror=\"document.title='pwned'\">"


def browser_dom(html: Path, tmp_path: Path) -> str:
    """The DOM after the page's scripts ran, serialised by headless Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs the Debian package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        html.resolve().as_uri(),
    ]
    done = subprocess.run(
        [chromium, *flags], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def drawn_plots(dom: str) -> int:
    return len(re.findall(r'class="plotly-graph-div js-plotly-plot"', dom))


def test_stats_page_draws_every_plot_offline(tmp_path: Path) -> None:
    out = tmp_path / "stats.html"
    result = CliRunner().invoke(main, ["stats", str(LAZY), "--html", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "<script src=" not in text  # plotly.js is embedded: opens with no network
    assert text.count("Plotly.newPlot") == 4
    dom = browser_dom(out, tmp_path)
    assert drawn_plots(dom) == 4
    assert "flush zpci_refresh_trans" in dom  # legend entries are drawn
    assert "<title>tracetool stats</title>" in dom


def stats_page_dom(sample: Path, tmp_path: Path) -> str:
    """``stats --html`` of ``sample``, as Chromium drew it."""
    out = tmp_path / f"{sample.stem}.html"
    result = CliRunner().invoke(main, ["stats", str(sample), "--html", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    return browser_dom(out, tmp_path)


def test_stats_page_says_what_failed(tmp_path: Path) -> None:
    dom = stats_page_dom(SAMPLES / "ftrace" / "s390-rpcit-flush.txt", tmp_path)
    assert "failed RPCITs" in dom
    assert "2, 2 of them -ENOMEM, answered by 2 global RPCIT(s)" in dom
    lazy = tmp_path / "lazy.html"
    CliRunner().invoke(main, ["stats", str(LAZY), "--html", str(lazy), "--no-cache"])
    assert "failed RPCITs" not in lazy.read_text()  # only where something failed


def test_diff_page_draws_ratios_cdfs_and_rates(tmp_path: Path) -> None:
    out = tmp_path / "diff.html"
    args = ["diff", str(STRICT), str(LAZY), "--replicates", "200", "--html", str(out)]
    result = CliRunner().invoke(main, [*args, "--no-cache"])
    assert result.exit_code == 0, result.output
    dom = browser_dom(out, tmp_path)
    assert drawn_plots(dom) == 4
    assert "IOPS · 259:0" in dom
    assert "B: flush zpci_refresh_trans" in dom


def test_markup_from_inputs_stays_text(tmp_path: Path) -> None:
    evil_dir = tmp_path / EVIL
    evil_dir.mkdir()
    evil = evil_dir / "trace.txt"
    evil.write_bytes(LAZY.read_bytes())
    out = tmp_path / "stats.html"
    result = CliRunner().invoke(main, ["stats", str(evil), "--html", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    # A label made of markup, straight into a figure.
    samples = pl.DataFrame({"group": [EVIL, EVIL], "value": [1000, 2000]})
    figure_page = tmp_path / "figure.html"
    figure_page.write_text(page(EVIL, [(EVIL, EVIL)], [(EVIL, cdf_figure(samples)), (EVIL, EVIL)]))
    for html in (out, figure_page):
        dom = browser_dom(html, tmp_path)
        assert re.findall(r"<title>(.*?)</title>", dom)[0] != "pwned"  # no handler ran
        assert not re.search(r"<img\b", dom), "markup from an input became an element"
        assert "&lt;img src=x" in dom  # shown, as text


def test_cdf_points_are_thinned_but_keep_both_ends() -> None:
    n = 100_000
    samples = pl.DataFrame({"group": ["a"] * n, "value": list(range(n, 0, -1))})
    points = cdf_points(samples, points=500)
    assert 500 <= points.height <= 502
    assert points["value"].is_sorted() and points["p"].is_sorted()
    assert points.row(0) == ("a", 1, 1 / n)
    assert points.row(-1) == ("a", n, 1.0)


def test_stats_page_of_a_bpftrace_capture_draws_its_histograms(tmp_path: Path) -> None:
    dom = stats_page_dom(SAMPLES / "bpftrace" / "s390-rpcit-maps.txt", tmp_path)
    assert drawn_plots(dom) == 1
    assert "[1024, 2048)" in dom  # a bucket on the category axis
