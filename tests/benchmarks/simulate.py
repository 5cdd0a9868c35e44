"""How fast ``tracetool simulate`` writes a trace, and that it streams; prints JSON.

    python tests/benchmarks/simulate.py              # about 10 M events (dma, z/VM, lazy)
    python tests/benchmarks/simulate.py --smoke      # about 100 k events, for CI
    python tests/benchmarks/simulate.py --duration 2s --keep DIR

Each run is a child process (the CLI), so its peak RSS is the writer's own:

* ``events_per_s``: events written per second of wall time, the trace file and its
  ground-truth sidecar included. Target: 10 M events well under a minute.
* ``peak_rss_mb`` for the long run and for a run a tenth as long: streaming means the
  two stay close (memory bounded by what is in flight, not by the length of the run);
  ``rss_ratio`` is their quotient.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# 1 ms of the default run writes about 1,140 events.
EVENTS_PER_MS = 1_140


def run(duration_ms: float, out: Path) -> dict[str, float]:
    """One child writing ``duration_ms`` of the lazy z/VM run; its figures."""
    code = (
        "import resource, sys\n"
        "from tracetool.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    argv = ["simulate", "dma", "--duration", f"{duration_ms}ms", "-o", str(out)]
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - t0
    # The count sits before the flush rows; reading only the head keeps this process
    # small (a child forked from it would start at its size).
    with out.with_name(out.name + ".truth.json").open(encoding="utf-8") as f:
        head = f.read(1 << 16)
    events = int(re.search(r'"events":(\d+)', head).group(1))  # type: ignore[union-attr]
    return {
        "events": events,
        "wall_s": round(wall, 2),
        "events_per_s": round(events / wall),
        "trace_mb": round(out.stat().st_size / 1e6, 1),
        "peak_rss_mb": round(int(done.stdout.split()[-1]) / 1024, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="about 100 k events")
    ap.add_argument("--duration", default=None, help="simulated time, e.g. 2s or 500ms")
    ap.add_argument("--keep", type=Path, help="write the traces here and keep them")
    args = ap.parse_args()
    if args.duration:
        value = args.duration
        ms = float(value[:-2]) if value.endswith("ms") else float(value.rstrip("s")) * 1000
    else:
        ms = 100.0 if args.smoke else 10_000_000 / EVENTS_PER_MS
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="tt-sim-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        short = run(ms / 10, tmp / "short.txt")
        long = run(ms, tmp / "long.txt")
    finally:
        if not args.keep:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    figures = {
        "benchmark": "simulate",
        "long": long,
        "short": short,
        "rss_ratio": round(long["peak_rss_mb"] / short["peak_rss_mb"], 2),
        "seconds_per_10M_events": round(10_000_000 / long["events_per_s"], 1),
        "targets": {"seconds_per_10M_events": "< 60", "rss_ratio": "~1 (streaming)"},
        "cpu": os.cpu_count(),
        "self_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
