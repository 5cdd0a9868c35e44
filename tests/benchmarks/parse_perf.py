"""Parse throughput on a generated ``perf script`` text; prints JSON.

    python tests/benchmarks/parse_perf.py            # 1.5 M lines, about a third callchains
    python tests/benchmarks/parse_perf.py --smoke    # 30 k lines, for CI (< 20 s)
    python tests/benchmarks/parse_perf.py --lines N --keep DIR

The file mixes what an s390 IOMMU capture holds: iommu and block tracepoints, perf
probe kprobes/kretprobes with fetch args, and cpu-clock samples with ``-g``
callchains (blank-line separated). Ratios are measured in the same run on the same
file, so machine noise cancels:

* ``typed_vs_raw``: throughput of ``tracetool.parse`` (typed header columns, declared
  ``args``, callchains folded into ``stack``; no cache), followed by one query over
  typed columns of every event, relative to polars reading the same bytes as raw
  lines into memory (best of both polars engines).
* ``lines_per_s``: input lines (events, frames, blank lines) parsed per second.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parse import best, raw_read, setup  # the ftrace benchmark's timing helpers

TASKS = [
    ("qemu-system-s39", 5082),
    ("fio", 2211),
    ("fio", 2213),
    ("kmcheck", 41),
    ("kworker/1:1H", 150),
    ("irq/34-zpci", 212),
    ("swapper", 0),
]
KERNEL_CHAIN = [
    ("95a1c4d3c", "zpci_refresh_trans+0x2c"),
    ("95a1c6e6a", "__dma_purge_tlb+0x7a"),
    ("95a1c7b10", "dma_update_trans+0x1c8"),
    ("95a1c8e02", "s390_dma_map_pages+0x102"),
    ("95b3e1c08", "nvme_queue_rq+0x1e8"),
    ("95a7c0a10", "blk_mq_dispatch_rq_list+0x1a0"),
    ("95a7c6e22", "__blk_mq_sched_dispatch_requests+0xd2"),
    ("95a0e2aa4", "__do_syscall+0x1d4"),
]
WIDTH = 40  # perf right-aligns event names to the longest one


def _tracepoint(rng: random.Random) -> tuple[str, str]:
    r = rng.random()
    a = rng.randint(0, 1 << 30) << 12
    if r < 0.25:
        return "iommu:map", (
            f"IOMMU: iova=0x{a:016x} - 0x{a + 4096:016x} paddr=0x{a * 3:016x} size=4096"
        )
    if r < 0.45:
        return "iommu:unmap", (
            f"IOMMU: iova=0x{a:016x} - 0x{a + 4096:016x} size=4096 unmapped_size=4096"
        )
    if r < 0.65:
        return "block:block_rq_issue", (
            f"259,0 R 4096 () {rng.randint(0, 10**8)} + 8 0x2,0,4 [fio]"
        )
    if r < 0.8:
        return "block:block_rq_complete", f"259,0 R () {rng.randint(0, 10**8)} + 8 0x2,0,4 [0]"
    if r < 0.9:
        return "probe:zpci_refresh_trans", (
            f"(95a1c4d10) fn=0x80a0000000000000 addr=0x{a:x} range=0x1000"
        )
    return "probe:zpci_refresh_trans__return", f"(95a1c4d10 <- 95a1c6e6a) ret={rng.choice((0, -5))}"


def generate(path: Path, lines: int, seed: int = 3) -> None:
    """About a third of the lines are callchain frames of cpu-clock samples."""
    rng = random.Random(seed)
    t = 500_000_000_000
    written = 0
    with path.open("w") as out:
        buf: list[str] = []
        while written < lines:
            t += rng.randint(200, 4000)
            comm, tid = rng.choice(TASKS)
            stamp = f"{t // 10**9:5d}.{t % 10**9 // 1000:06d}"
            if rng.random() < 0.1:
                depth = rng.randint(2, len(KERNEL_CHAIN))
                buf.append(
                    f"{comm} {tid:5d} [{rng.randint(0, 3):03d}] {stamp:>12s}:     250000 cpu-clock:ppp: \n"
                )
                buf.extend(
                    f"\t{ip:>16s} {sym} ([kernel.kallsyms])\n" for ip, sym in KERNEL_CHAIN[:depth]
                )
                buf.append(f"\t{'3ff8a1c2e4a':>16s} [unknown] (/usr/lib64/libaio.so.1.0.1)\n\n")
                written += depth + 3
            else:
                name, payload = _tracepoint(rng)
                buf.append(
                    f"{comm:>16s} {tid:5d} [{rng.randint(0, 3):03d}] {stamp:>12s}: "
                    f"{name:>{WIDTH}s}: {payload}\n"
                )
                written += 1
            if len(buf) >= 10000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))


def consume(trace: object) -> pl.DataFrame:
    """Touch typed columns of every event: header fields, declared and engine fields,
    probe args and the folded callchains."""
    a = pl.col("args")
    return trace.events.select(  # type: ignore[attr-defined, no-any-return]
        pl.len(),
        pl.col("ts").max(),
        pl.col("cpu").n_unique(),
        a.struct.field("iova").max(),
        a.struct.field("system").n_unique(),
        a.struct.field("kv").list.len().sum(),
        pl.col("stack").list.len().sum(),
    ).collect()


def main() -> None:
    path, _, repeat = setup(__doc__, 1_500_000, 30_000, "perf", generate)

    import tracetool

    size = path.stat().st_size
    raw = raw_read(path)
    typed = best(lambda: consume(tracetool.parse(path, format="perf", use_cache=False)), repeat)
    trace = tracetool.parse(path, use_cache=False)
    (info,) = trace.inputs
    assert info.format == "perf" and info.accounted() and info.counts["diagnostics"] == 0, info
    result = {
        "file": {"lines": info.lines, "bytes": size, **info.counts},
        "seconds": {"raw_read": round(raw, 3), "typed_parse": round(typed, 3)},
        "lines_per_s": {
            "raw_read": round(info.lines / raw),
            "typed_parse": round(info.lines / typed),
        },
        "throughput_mb_s": {
            "raw_read": round(size / raw / 1e6, 1),
            "typed_parse": round(size / typed / 1e6, 1),
        },
        "ratios": {"typed_vs_raw": round(raw / typed, 3)},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
