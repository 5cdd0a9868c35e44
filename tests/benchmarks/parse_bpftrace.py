"""Parse throughput of bpftrace text and -f json output on generated files; prints JSON.

    python tests/benchmarks/parse_bpftrace.py            # 1 M lines of each format
    python tests/benchmarks/parse_bpftrace.py --smoke    # 20 k lines, for CI (< 20 s)
    python tests/benchmarks/parse_bpftrace.py --lines N --keep DIR

The generated outputs are what samples/capture/*.bt print on a busy s390 host: declared
printf lines of the lifetime script (typed events), undeclared printf lines, block issue
lines followed by a 4-frame kstack, time() prefixed per-second map prints, "Lost N
events", and at the end hist/lhist blocks, stats and kstack-keyed maps. The JSON file
holds the same records as NDJSON objects.

``typed_vs_raw`` is, in the same run on the same file, polars reading the file as raw
lines (best of its engines) over ``tracetool.parse`` (no cache) followed by one query
over typed columns of every event and of the record tables: the share of raw ingest
speed the typed parse keeps.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import polars as pl

# The ftrace benchmark beside this script: the same timing and raw-ingest baseline.
from parse import best, raw_read

import tracetool

COMMS = [("kmcheck", 41), ("qemu-system-s39", 5082), ("kworker/u64:2", 123), ("fio", 2211)]
FRAMES = ["nvme_queue_rq+1021", "__blk_mq_issue_directly+86", "blk_mq_submit_bio+1273"]
KSTACK = [
    "        zpci_refresh_trans+0",
    "        s390_iommu_iotlb_sync+108",
    "        __iommu_unmap+402",
]


def _bar(count: int, top: int) -> str:
    return "@" * (count * 52 // max(top, 1))


def _printf(line: str, frames: list[str] | None = None) -> str:
    data = line + "\n" + ("\n" + "\n".join(frames) + "\n\n" if frames else "")
    return json.dumps({"type": "printf", "data": data})


def records(rng: random.Random, ts: int) -> tuple[list[str], list[str]]:
    """One burst of output at ``ts``: its text lines and its JSON objects."""
    comm, tid = rng.choice(COMMS)
    r = rng.random()
    if r < 0.55:
        kind = rng.choice(["probe", "release_enter", "attach_enter", "detach_enter"])
        dev = f"dev=0x{rng.randrange(1 << 40):x}"
        both = "attach" in kind or "detach" in kind
        line = (
            f"{ts} {tid} {comm} {kind} {f'dom=0x{rng.randrange(1 << 40):x} ' if both else ''}{dev}"
        )
        return [line], [_printf(line)]
    if r < 0.70:
        line = f"{ts} {tid} {comm} attach_exit ret={rng.choice([0, 0, 0, -5])}"
        return [line], [_printf(line)]
    if r < 0.88:
        line = f"{ts} {comm} pid={tid} rwbs=W sector={rng.randrange(1 << 30)}"
        frames = [f"        {f}" for f in FRAMES]
        return [line, "", *frames, ""], [_printf(line, frames)]
    if r < 0.95:
        line = f"unrelated printf output {rng.randrange(1000)} from {comm}"
        return [line], [_printf(line)]
    if r < 0.99:
        s = ts // 10**9
        clock = f"{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
        ops = {k: rng.randrange(99999) for k in ("flush_all", "iotlb_sync", "sync_map")}
        text = [f"{clock} @op[flush_all]: {ops['flush_all']}"]
        text += [f"@op[{k}]: {v}" for k, v in ops.items() if k != "flush_all"]
        objs = [json.dumps({"type": "time", "data": f"{clock} "})]
        objs += [json.dumps({"type": "map", "data": {"@op": ops}})]
        return [*text, ""], objs
    lost = rng.randint(1, 500)
    return [f"Lost {lost} events"], [json.dumps({"type": "lost_events", "data": {"events": lost}})]


def end_of_run(rng: random.Random) -> tuple[list[str], list[str]]:
    """The maps printed at exit: scalars, kstack keys, stats and a hist."""
    alloc, callers = rng.randrange(10**6), rng.randrange(10**5)
    rc = {"-12": rng.randrange(99), "0": rng.randrange(10**5)}
    counts = [rng.randint(0, 5000) for _ in range(12)]
    text = ["^C", f"@alloc: {alloc}", "", "@callers[", *KSTACK, f"]: {callers}", ""]
    text += [f"@rc[{k}]: {v}" for k, v in rc.items()] + [""]
    text += ["@rpcit_by_size[global]: count 12, average 48211, total 578532", "", "@rpcit_ns:"]
    for i, c in enumerate(counts):
        lo, hi = 1 << (i + 10), 1 << (i + 11)
        label = f"[{lo >> 10}K, {hi >> 10}K)"
        text.append(f"{label:<16}{c:>8} |{_bar(c, max(counts)):<52}|")
    text.append("")
    key = "\n" + "\n".join(KSTACK) + "\n"
    stats = {"global": {"count": 12, "average": 48211, "total": 578532}}
    buckets = [
        {"min": 1 << (i + 10), "max": (1 << (i + 11)) - 1, "count": c} for i, c in enumerate(counts)
    ]
    objs = [
        json.dumps({"type": "map", "data": {"@alloc": alloc}}),
        json.dumps({"type": "map", "data": {"@callers": {key: callers}}}),
        json.dumps({"type": "map", "data": {"@rc": rc}}),
        json.dumps({"type": "stats", "data": {"@rpcit_by_size": stats}}),
        json.dumps({"type": "hist", "data": {"@rpcit_ns": buckets}}),
    ]
    return text, objs


def generate(text: Path, js: Path, lines: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    out_t: list[str] = ["Attaching 14 probes..."]
    out_j: list[str] = ['{"type": "attached_probes", "data": {"probes": 14}}']
    ts = 5_000_000_000_000
    bursts = 0
    while len(out_t) < lines:
        ts += rng.randint(200, 90_000)
        t, j = records(rng, ts)
        bursts += 1
        if bursts % 2000 == 0:  # a print() of every map now and then
            more_t, more_j = end_of_run(rng)
            t, j = t + more_t[1:], j + more_j
        out_t += t
        out_j += j
    t, j = end_of_run(rng)
    text.write_text("\n".join(out_t + t) + "\n")
    js.write_text("\n".join(out_j + j) + "\n")


def consume(trace: tracetool.Trace) -> tuple[pl.DataFrame, ...]:
    """Touch typed columns of every event and of every record table."""
    a = pl.col("args")
    events = trace.events.select(
        pl.len(),
        pl.col("ts").max(),
        pl.col("pid").n_unique(),
        a.struct.field("dev").max(),
        pl.col("stack").list.len().sum(),
    ).collect()
    maps = trace.table("maps").select(pl.len(), pl.col("num").sum()).collect()
    hist = trace.table("histograms").select(pl.len(), pl.col("count").sum()).collect()
    return events, maps, hist


def measure(path: Path, fmt: str, repeat: int) -> dict[str, object]:
    raw = raw_read(path)
    typed = best(lambda: consume(tracetool.parse(path, format=fmt, use_cache=False)), repeat)
    trace = tracetool.parse(path, format=fmt, use_cache=False)
    info = trace.inputs[0]
    return {
        "lines": info.lines,
        "bytes": path.stat().st_size,
        "counts": info.counts,
        "accounted": info.accounted(),
        "seconds": {"raw_read": round(raw, 3), "typed_parse": round(typed, 3)},
        "lines_per_s": {
            "raw_read": round(info.lines / raw),
            "typed_parse": round(info.lines / typed),
        },
        "typed_vs_raw": round(raw / typed, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="20 k lines, one repeat")
    parser.add_argument("--keep", type=Path, help="write the generated files here")
    opts = parser.parse_args()
    lines = 20_000 if opts.smoke else opts.lines
    repeat = 1 if opts.smoke else 3
    with tempfile.TemporaryDirectory() as tmp:
        where = opts.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        text, js = where / "bpftrace.txt", where / "bpftrace.ndjson"
        generate(text, js, lines)
        result = {
            "benchmark": "parse_bpftrace",
            "text": measure(text, "bpftrace", repeat),
            "json": measure(js, "bpftrace-json", repeat),
        }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
