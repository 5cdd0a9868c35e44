"""How big a ``tracetool timeline`` page gets and how fast Chromium first paints it; prints JSON.

    python tests/benchmarks/timeline.py                  # a 1 M-event simulated DMA run
    python tests/benchmarks/timeline.py --smoke          # about 50 k events, for CI
    python tests/benchmarks/timeline.py --events 10000000

For the whole run, and for a 5 ms ``--window`` of it (exact detail, nothing binned):

* ``html_mb``: the page's size (plotly.js is embedded: about 4.7 MB of it);
* ``first_paint_s``: from navigation to the figure drawn, in headless Chromium (Debian's
  ``chromium`` through Playwright; the page marks the moment in ``tracetoolPainted``);
* ``build_s``: parse, spans, rules and page, wall time of the CLI (a child process,
  ``peak_rss_mb`` its own);
* ``aggregated``: what the header says was drawn as counts per bin.

Targets (issue: timelines): a 1 M-event trace gives a page of at most 15 MB whose first
paint takes at most 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EVENTS_PER_MS = 1_140  # of the default simulated dma run


def child(argv: list[str]) -> tuple[float, float, str]:
    """Run the CLI in a child; its wall time, peak RSS (MB) and stderr."""
    code = (
        "import resource, sys\n"
        "from tracetool.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
    )
    return time.perf_counter() - t0, int(done.stdout.split()[-1]) / 1024, done.stderr


def first_paint(html: Path) -> float:
    """Seconds from navigation to the figure drawn, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(html.resolve().as_uri(), timeout=120_000)
            page.wait_for_function("window.tracetoolPainted !== undefined", timeout=120_000)
            return float(page.evaluate("window.tracetoolPainted")) / 1000
        finally:
            browser.close()


def measure(trace: Path, out: Path, extra: list[str]) -> dict[str, object]:
    wall, rss, err = child(["timeline", str(trace), "-o", str(out), *extra])
    return {
        "build_s": round(wall, 2),
        "peak_rss_mb": round(rss, 1),
        "html_mb": round(out.stat().st_size / 1e6, 2),
        "first_paint_s": round(first_paint(out), 2),
        "aggregated": [
            line[len("aggregated: ") :]
            for line in err.splitlines()
            if line.startswith("aggregated: ")
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="about 50 k events")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="write the trace and pages here and keep them")
    args = ap.parse_args()
    events = 50_000 if args.smoke else args.events
    ms = events / EVENTS_PER_MS
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="tt-timeline-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        trace = tmp / "dma.txt"
        child(["simulate", "dma", "--duration", f"{ms:.3f}ms", "-o", str(trace)])
        with trace.with_name(trace.name + ".truth.json").open(encoding="utf-8") as f:
            written = int(re.search(r'"events":(\d+)', f.read(1 << 16)).group(1))  # type: ignore[union-attr]
        whole = measure(trace, tmp / "whole.html", ["--no-cache"])
        # A 5 ms window from the middle of the run: exact detail.
        start = 700.0 + ms / 2000  # the simulated run starts at 700 s
        window = measure(
            trace, tmp / "window.html", ["--window", f"{start:.6f}:{start + 0.005:.6f}"]
        )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    figures = {
        "benchmark": "timeline",
        "events": written,
        "whole": whole,
        "window_5ms": window,
        "targets": {"html_mb": "<= 15 for 1 M events", "first_paint_s": "<= 5"},
        "met": bool(whole["html_mb"] <= 15 and whole["first_paint_s"] <= 5),  # type: ignore[operator]
        "cpu": os.cpu_count(),
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
