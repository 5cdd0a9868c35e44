"""Parse throughput, memory and cache speed-up on generated ftrace files; prints JSON.

    python tests/benchmarks/parse.py            # 5 M lines (about 650 MB)
    python tests/benchmarks/parse.py --smoke    # 50 k lines, for CI
    python tests/benchmarks/parse.py --lines N --keep DIR

Every ratio is measured in the same run on the same file, so machine noise cancels:

* ``typed_vs_raw``: throughput of ``tracetool.parse`` (typed header columns and declared
  ``args``, no cache), followed by one query over typed columns of every event, relative
  to polars reading the same file as raw lines into memory (best of both polars
  engines). Target >= 0.60.
* ``peak_rss_vs_file``: peak RSS of a child process that parses with the cache (the CLI's
  default) over the file size. Target <= 1.0.
* ``cache_speedup``: first cached parse (text in, Parquet out) over a second one that
  reads the Parquet entry, both collecting all events. Target >= 20.
* ``floor_vs_raw``: the fastest polars pipeline we know for typed header columns only
  (ts, cpu, pid, comm, event of this file's layout, by literal finds and slices, no
  args, no validation, no accounting) over the same raw read: a bound on what any
  typed parse written with polars can reach here, for judging ``typed_vs_raw``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

COMMS = [
    ("kmcheck", 41),
    ("qemu-system-s39", 5082),
    ("fio", 2211),
    ("<idle>", 0),
    ("kworker/u64:2", 123),
    ("fio", 2213),
    ("irq/34-zpci", 212),
]
FUNCS = [
    ("zpci_refresh_trans", "__dma_purge_tlb"),
    ("s390_iommu_attach_device", "__iommu_attach_device"),
    ("dma_alloc_address", "s390_dma_map_pages"),
    ("_raw_spin_lock_irqsave", "s390_dma_unmap_pages"),
]


def _payload(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.22:
        return (
            "sched_switch: prev_comm=fio prev_pid=2211 prev_prio=120 prev_state=S ==> "
            "next_comm=kworker/u64:2 next_pid=123 next_prio=120"
        )
    if r < 0.30:
        return f"sched_wakeup: comm=fio pid=2211 prio=120 target_cpu={rng.randint(0, 3):03d}"
    if r < 0.40:
        return f"block_rq_issue: 259,0 R 4096 () {rng.randint(0, 10**8)} + 8 none,0,0 [fio]"
    if r < 0.48:
        return f"block_rq_complete: 259,0 R () {rng.randint(0, 10**8)} + 8 none,0,0 [0]"
    if r < 0.58:
        a = rng.randint(0, 1 << 30) << 12
        return f"map: IOMMU: iova=0x{a:016x} - 0x{a + 4096:016x} paddr=0x{a * 3:016x} size=4096"
    if r < 0.66:
        a = rng.randint(0, 1 << 30) << 12
        return f"unmap: IOMMU: iova=0x{a:016x} - 0x{a + 4096:016x} size=4096 unmapped_size=4096"
    if r < 0.74:
        return (
            f"rpcit: (zpci_refresh_trans+0x0/0x110) fn=0x80a0000000000000 "
            f"addr=0x{rng.randint(0, 1 << 40):x} range=0x1000"
        )
    if r < 0.80:
        return f"rpcit_r: (__dma_purge_tlb+0x7c/0x120 <- zpci_refresh_trans) ret={rng.choice((0, 0, 0, -12))}"
    if r < 0.84:
        return "irq_handler_entry: irq=34 name=zpci"
    func, parent = rng.choice(FUNCS)
    return f"{func} <-{parent}"


def generate(path: Path, lines: int, seed: int = 1) -> None:
    """A `trace` file: header, then events of every kind merged in time order."""
    rng = random.Random(seed)
    t = 500_000_000_000
    with path.open("w") as out:
        out.write(
            f"# tracer: function\n#\n# entries-in-buffer/entries-written: {lines}/{lines}   #P:4\n#\n"
        )
        buf = []
        for _ in range(lines):
            t += rng.randint(200, 4000)
            comm, pid = rng.choice(COMMS)
            flags = rng.choice(("d..1.", ".....", "..s1.", "d.h2."))
            buf.append(
                f"{comm:>16}-{pid:<7} [{rng.randint(0, 3):03d}] {flags} "
                f"{t // 10**9:5d}.{t % 10**9 // 1000:06d}: {_payload(rng)}\n"
            )
            if len(buf) == 10000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))


GRAPH_FUNCS = [
    "s390_iommu_attach_device",
    "zpci_dma_exit_device",
    "zpci_unregister_ioat",
    "dma_cleanup_tables",
    "zpci_register_ioat",
    "zpci_refresh_trans",
    "_raw_spin_lock_irqsave",
    "dma_alloc_cpu_table",
]


def _mark(ns: int) -> str:
    # Overhead marks as print_graph_duration() prints them.
    for limit, mark in (
        (10**9, "$"),
        (10**8, "@"),
        (10**7, "*"),
        (10**6, "#"),
        (10**5, "!"),
        (10**4, "+"),
    ):
        if ns > limit:
            return mark
    return " "


def generate_graph(path: Path, lines: int, seed: int = 2) -> None:
    """A function_graph `trace` file: nested calls, leaves and returns on four CPUs."""
    rng = random.Random(seed)
    stacks: list[list[str]] = [[] for _ in range(4)]
    with path.open("w") as out:
        out.write("# tracer: function_graph\n#\n# CPU  DURATION                  FUNCTION CALLS\n")
        out.write("# |     |   |                     |   |   |   |\n")
        buf = []
        for _ in range(lines):
            cpu = rng.randrange(4)
            stack = stacks[cpu]
            indent = "  " * len(stack)
            r = rng.random()
            if r < 0.3 and len(stack) < 6:
                func = rng.choice(GRAPH_FUNCS)
                stack.append(func)
                buf.append(f"{cpu:>3})               |  {indent}{func}() {{\n")
            elif r < 0.6 and stack:
                stack.pop()
                ns = rng.randint(100, 2_000_000)
                buf.append(
                    f"{cpu:>3}) {_mark(ns)} {ns / 1000:>7.3f} us   |  {'  ' * len(stack)}}}\n"
                )
            else:
                ns = rng.randint(100, 50_000)
                buf.append(
                    f"{cpu:>3}) {_mark(ns)} {ns / 1000:>7.3f} us   |  {indent}{rng.choice(GRAPH_FUNCS)}();\n"
                )
            if len(buf) == 10000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def consume(trace: object) -> pl.DataFrame:
    """Touch typed columns of every event: header fields, a declared field, probe args."""
    a = pl.col("args")
    return trace.events.select(  # type: ignore[attr-defined, no-any-return]
        pl.len(),
        pl.col("ts").max(),
        pl.col("cpu").n_unique(),
        a.struct.field("iova").max(),
        a.struct.field("kv").list.len().sum(),
    ).collect()


def consume_graph(trace: object) -> pl.DataFrame:
    a = pl.col("args")
    return trace.events.select(  # type: ignore[attr-defined, no-any-return]
        pl.len(), a.struct.field("dur").sum(), a.struct.field("depth").max()
    ).collect()


def raw_read(path: Path) -> float:
    # Polars reading the file as raw lines into memory: the fastest of its engines.
    return min(
        best(lambda: pl.scan_lines(path).collect(engine="streaming"), 3),
        best(lambda: pl.scan_lines(path).collect(engine="in-memory"), 3),
    )


def floor_read(path: Path) -> float:
    """The header-only lower bound (see the module doc), best of both engines."""
    t = pl.col("text")
    ib, ic = pl.col("ib"), pl.col("ic")

    def plan() -> pl.LazyFrame:
        lf = (
            pl.scan_lines(path, name="text")
            .filter(~t.str.starts_with("#"))
            .with_columns(ib=t.str.find("] ", literal=True), ic=t.str.find(": ", literal=True))
        )
        rest = t.str.slice(ic + 2)
        secs = t.str.slice(ic - 13, 6).str.strip_chars_start(" ").str.to_integer(strict=False)
        return lf.select(
            ts=secs * 1_000_000_000 + t.str.slice(ic - 6, 6).str.to_integer(strict=False) * 1000,
            cpu=t.str.slice(ib - 3, 3).str.to_integer(strict=False, dtype=pl.Int32),
            pid=t.str.slice(17, ib - 21)
            .str.strip_chars_end(" ")
            .str.to_integer(strict=False, dtype=pl.Int32),
            comm=t.str.slice(0, 16).str.strip_chars_start(" "),
            event=rest.str.slice(0, rest.str.find(": ", literal=True)),
        )

    return min(
        best(lambda: plan().collect(engine="streaming"), 3),
        best(lambda: plan().collect(engine="in-memory"), 3),
    )


def child_rss(path: Path, cache_dir: Path) -> int:
    # VmHWM, not ru_maxrss: the latter survives exec, so a child would report the
    # size of this (large) benchmark process at fork time.
    code = (
        "import re, sys, polars as pl, tracetool\n"
        "t = tracetool.parse(sys.argv[1])\n"
        "t.events.select(pl.len()).collect()\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)))\n"
    )
    env = {**os.environ, "TRACETOOL_CACHE_DIR": str(cache_dir)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return int(out.strip()) * 1024


def setup(
    doc: str | None, default: int, smoke: int, name: str, make: Callable[[Path, int], None]
) -> tuple[Path, int, int]:
    """Parse the common options; generate (or reuse, with --keep) the input file.

    :return: the file, its number of generated lines and how often to repeat a timing.
    """
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=default)
    ap.add_argument("--smoke", action="store_true", help=f"{smoke} lines, one repetition")
    ap.add_argument("--keep", type=Path, help="generate into (and reuse) this directory")
    opts = ap.parse_args()
    lines = smoke if opts.smoke else opts.lines
    work = opts.keep or Path(tempfile.mkdtemp(prefix="tt-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{name}-{lines}.txt"
    if not path.exists():
        make(path, lines)
    return path, lines, 1 if opts.smoke else 2


def main() -> None:
    path, lines, repeat = setup(__doc__, 5_000_000, 50_000, "ftrace", generate)
    work = path.parent

    import tracetool

    size = path.stat().st_size

    raw = raw_read(path)
    floor = floor_read(path)
    typed = best(lambda: consume(tracetool.parse(path, use_cache=False)), repeat)

    graph_path = work / f"graph-{lines}.txt"
    if not graph_path.exists():
        generate_graph(graph_path, lines)
    graph_raw = raw_read(graph_path)
    graph_typed = best(lambda: consume_graph(tracetool.parse(graph_path, use_cache=False)), repeat)

    cache_dir = Path(tempfile.mkdtemp(prefix="tt-cache-", dir=work))
    os.environ["TRACETOOL_CACHE_DIR"] = str(cache_dir)
    start = time.perf_counter()
    first = tracetool.parse(path)
    consume(first)
    first_s = time.perf_counter() - start
    second_s = best(lambda: consume(tracetool.parse(path)), 3)
    assert tracetool.parse(path).inputs[0].cached

    rss = child_rss(path, Path(tempfile.mkdtemp(prefix="tt-rss-", dir=work)))
    baseline_rss = child_rss(
        _touch(work / "empty.txt"), Path(tempfile.mkdtemp(prefix="tt-rss-", dir=work))
    )

    events = first.events.select(pl.len()).collect().item()
    result = {
        "file": {"lines": lines, "bytes": size, "events": events},
        "seconds": {
            "raw_read": round(raw, 3),
            "header_floor": round(floor, 3),
            "typed_parse": round(typed, 3),
            "cached_first": round(first_s, 3),
            "cached_second": round(second_s, 4),
        },
        "throughput_mb_s": {
            "raw_read": round(size / raw / 1e6, 1),
            "typed_parse": round(size / typed / 1e6, 1),
        },
        "peak_rss_bytes": {"parse": rss, "interpreter_and_imports": baseline_rss},
        "ratios": {
            "typed_vs_raw": round(raw / typed, 3),
            "floor_vs_raw": round(raw / floor, 3),
            "typed_vs_floor": round(floor / typed, 3),
            "peak_rss_vs_file": round(rss / size, 3),
            "peak_rss_above_imports_vs_file": round((rss - baseline_rss) / size, 3),
            "cache_speedup": round(first_s / second_s, 1),
        },
        "function_graph": {
            "bytes": graph_path.stat().st_size,
            "seconds": {"raw_read": round(graph_raw, 3), "typed_parse": round(graph_typed, 3)},
            "typed_vs_raw": round(graph_raw / graph_typed, 3),
        },
        "targets": {
            "typed_vs_raw": ">= 0.60",
            "peak_rss_vs_file": "<= 1.0",
            "cache_speedup": ">= 20",
        },
    }
    print(json.dumps(result, indent=2))


def _touch(path: Path) -> Path:
    path.write_text("# tracer: nop\n")
    return path


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
