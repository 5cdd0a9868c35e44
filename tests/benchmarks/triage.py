"""Throughput and memory of ``tracetool triage`` on generated CI logs; prints JSON.

    python tests/benchmarks/triage.py                # 10,000 logs of ~200 KB
    python tests/benchmarks/triage.py --logs 400     # fewer
    python tests/benchmarks/triage.py --smoke        # 20 logs, for CI

Each log is a console log of ~200 KB: boot and service noise, and in one log of three
a crash report (a WARN, an Oops or a WARN in the old kernel format) somewhere inside.
Measured in one run, each triage a child process:

* ``mb_per_s_jobs1`` and ``mb_per_s_jobs2``: MB of logs triaged per second with one
  and two processes; ``speedup_jobs2`` their ratio (target: >= 50 MB/s with 2 jobs);
* ``peak_rss_mb`` for all the logs and for half of them: memory bounded means the two
  stay close (``rss_ratio``).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORTS = [
    ROOT / "samples" / "dmesg" / "s390-warn-zpci-dma-v6.0.txt",
    ROOT / "samples" / "dmesg" / "s390-oops-ftrace-dump.txt",
]
OLD_WARN = [
    "------------[ cut here ]------------",
    "WARNING: at drivers/iommu/iommu.c:1961 iommu_detach_group+0x6c/0x80()",
    "Pid: 5082, comm: qemu-system-s39 Not tainted 3.10.0 #1",
    "Call Trace:",
    " [<000000095bb10d28>] iommu_detach_group+0x70/0x80",
    "---[ end trace 0000000000000000 ]---",
]


def generate(where: Path, n: int, size: int = 200_000) -> int:
    """``n`` logs of about ``size`` bytes; returns the total bytes."""
    rng = random.Random(11)
    crash_texts = [p.read_text().splitlines() for p in REPORTS]
    total = 0
    for i in range(n):
        lines: list[str] = []
        t = 0.0
        while sum(len(x) + 1 for x in lines) < size:
            t += rng.random() * 0.01
            lines.append(
                f"[{t:12.6f}] systemd[1]: Started session {rng.randrange(1 << 20)} of user ci."
            )
        if i % 3 == 0:
            kind = (i // 3) % 3
            if kind < 2:
                report = crash_texts[kind]
            else:
                report = [f"[{t + 1:12.6f}] {x}" for x in OLD_WARN]
            cut = rng.randrange(len(lines))
            lines[cut:cut] = report
        text = "\n".join(lines) + "\n"
        (where / f"run{i:05d}.log").write_text(text)
        total += len(text)
    return total


def triage(logs: Path, jobs: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``tracetool triage`` child."""
    code = (
        "import resource, sys\n"
        "from tracetool.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "triage",
            str(logs),
            "--jobs",
            str(jobs),
            "--format",
            "json",
            "-o",
            str(logs.parent / f"out-{jobs}.json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    rss_kb = int(done.stderr.strip().splitlines()[-1])
    return wall, rss_kb / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--logs", type=int, default=None)
    args = ap.parse_args()
    n = args.logs or (20 if args.smoke else 10_000)
    with tempfile.TemporaryDirectory(prefix="tt-triage-bench-") as tmp:
        root = Path(tmp)
        logs = root / "logs"
        half = root / "half"
        logs.mkdir()
        half.mkdir()
        total = generate(logs, n)
        for p in sorted(logs.iterdir())[: n // 2]:
            (half / p.name).symlink_to(p)
        wall1, rss1 = triage(logs, 1)
        wall2, _ = triage(logs, 2)
        _, rss_half = triage(half, 1)
        groups = json.loads((root / "out-1.json").read_text())["groups"]
        figures = {
            "benchmark": "triage",
            "logs": n,
            "total_mb": round(total / 1e6, 1),
            "groups": len(groups),
            "seconds_jobs1": round(wall1, 1),
            "seconds_jobs2": round(wall2, 1),
            "mb_per_s_jobs1": round(total / 1e6 / wall1, 2),
            "mb_per_s_jobs2": round(total / 1e6 / wall2, 2),
            "speedup_jobs2": round(wall1 / wall2, 2),
            "peak_rss_mb": round(rss1, 1),
            "peak_rss_half_mb": round(rss_half, 1),
            "rss_ratio": round(rss1 / rss_half, 2),
            "targets": {"mb_per_s_jobs2": ">= 50", "rss_ratio": "~1"},
        }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
