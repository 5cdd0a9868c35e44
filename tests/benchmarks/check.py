"""Overlap detection throughput of the rule engine on generated spans; prints JSON.

    python tests/benchmarks/check.py            # 100 k, 1 M, 3 M and 10 M intervals
    python tests/benchmarks/check.py --smoke    # 20 k and 200 k, for CI
    python tests/benchmarks/check.py --sizes 100000,1000000

Spans are generated directly (no parsing): one device per 200 intervals, release and
attach spans of random tasks with random starts and 1-50 us durations, a third of the
attaches holding group->mutex. Each size runs the ``release-overlaps-attach`` rule through
``tracetool.check.evaluate`` and reports:

* ``intervals_per_s``: intervals in over wall time of the whole rule (selection, interval
  join, lockset test, messages, evidence). Target >= 2.5 M/s.
* ``growth``: time per interval at the largest size over time per interval at the
  smallest (1.0 is perfectly linear).
"""

from __future__ import annotations

import argparse
import json
import time

import polars as pl

from tracetool.check import evaluate
from tracetool.kernel import GROUP_MUTEX, era_from_version
from tracetool.rules import rules
from tracetool.timeline import SPANS_SCHEMA, Timeline

PER_DEVICE = 200


def _rand(seed: int, modulo: int) -> pl.Expr:
    """Deterministic pseudo-random integers in [0, modulo), vectorised."""
    return (pl.int_range(pl.len(), dtype=pl.UInt64).hash(seed) % modulo).cast(pl.Int64)


def spans(n: int, seed: int = 7) -> pl.DataFrame:
    devices = max(1, n // PER_DEVICE)
    base = pl.DataFrame({"i": pl.int_range(n, eager=True, dtype=pl.UInt32)})
    frame = base.with_columns(
        device=_rand(seed, devices).cast(pl.String),
        release=_rand(seed + 1, 2) == 0,
        start_ts=_rand(seed + 2, PER_DEVICE * 400_000),  # ~400 us of timeline per interval
        dur=_rand(seed + 3, 49_000) + 1_000,
        pid=(_rand(seed + 4, 4999) + 1).cast(pl.Int32),
        locked=_rand(seed + 5, 3) == 0,
        start_line="i",
    )
    return frame.with_columns(
        kind=pl.when("release").then(pl.lit("release")).otherwise(pl.lit("attach")),
        func=pl.when("release")
        .then(pl.lit("s390_iommu_release_device"))
        .otherwise(pl.lit("s390_iommu_attach_device")),
        end_ts=pl.col("start_ts") + pl.col("dur"),
        cpu=pl.col("pid") % 8,
        lockset=pl.when(~pl.col("release") & pl.col("locked"))
        .then(pl.lit([GROUP_MUTEX]))
        .otherwise(pl.lit([], pl.List(pl.String))),
        evidence=pl.concat_list(pl.format("bench.txt:{}", "start_line")),
        end_line="start_line",
        exact=pl.lit(True),
        device_how=pl.lit("exact"),
        file=pl.lit("bench.txt"),
        comm=pl.lit("task"),
    ).select(
        *(
            (pl.col(c) if c in _FILLED else pl.lit(None)).cast(t).alias(c)
            for c, t in SPANS_SCHEMA.items()
        )
    )


_FILLED = {
    "device",
    "kind",
    "func",
    "start_ts",
    "end_ts",
    "pid",
    "cpu",
    "lockset",
    "start_line",
    "evidence",
    "end_line",
    "exact",
    "device_how",
    "file",
    "comm",
}


def measure(n: int) -> dict[str, float]:
    frame = spans(n)
    selected = {"release-overlaps-attach": rules()["release-overlaps-attach"]}
    empty = pl.LazyFrame(
        schema={"file": pl.String, "line": pl.UInt32, "start_ts": pl.Int64, "end_ts": pl.Int64}
    )
    tl = Timeline(frame.lazy(), {"bench.txt": era_from_version("6.0")})
    t0 = time.perf_counter()
    result = evaluate(selected, tl, empty)
    seconds = time.perf_counter() - t0
    return {
        "intervals": n,
        "seconds": round(seconds, 3),
        "intervals_per_s": round(n / seconds),
        "findings": result.findings.height,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="small sizes, for CI")
    ap.add_argument("--sizes", help="comma-separated interval counts")
    args = ap.parse_args()
    if args.sizes:
        sizes = [int(x) for x in args.sizes.split(",")]
    elif args.smoke:
        sizes = [20_000, 200_000]
    else:
        sizes = [100_000, 1_000_000, 3_000_000, 10_000_000]
    runs = [measure(n) for n in sizes]
    per = [r["seconds"] / r["intervals"] for r in runs]
    report = {
        "benchmark": "check-overlap",
        "runs": runs,
        "growth": round(per[-1] / per[0], 2),
        "target_intervals_per_s": 2_500_000,
        "met": runs[-1]["intervals_per_s"] >= 2_500_000,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
