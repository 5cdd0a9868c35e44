"""trace.dat reading speed against trace-cmd itself, on the same file in the same run.

    python tests/benchmarks/tracedat.py            # a 200 MB trace.dat
    python tests/benchmarks/tracedat.py --smoke    # 8 MB, for CI
    python tests/benchmarks/tracedat.py --mb N --keep DIR

The file is synthesized from the real v6 capture in samples/tracedat: its CPU pages
repeated until the file is N MB, each copy's page timestamps moved past the previous
copy's, so it is a valid trace.dat trace-cmd reads like any other. Timed (best of
two; one with --smoke):

* ``native``: ``tracetool.parse`` of the file (no cache): events with typed args, then
  a query touching every event;
* ``trace_cmd_pipe``: ``trace-cmd report -t`` piped into tracetool's text parser, the
  same query;
* ``trace_cmd_report``: ``trace-cmd report -t > /dev/null`` alone.

Targets: native at least 2x faster than the pipe and no slower than report alone.
Without trace-cmd only the native figures are printed.

Figures (200.6 MB, 4.19 M events, 2 cores, idle machine): native 5.18 s, report
7.74 s, pipe 13.41 s: native_vs_pipe 2.59 (target 2, met), native_vs_report 1.50
(target 1, met). Before the tuning (worker threads and allocator settings, lazy field
reads, block_rq args without regexes, parts without all-null columns, file mapped by
the workers): native 9.81 s, report 8.75 s, pipe 18.14 s (1.85 and 0.89, not met).
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "tracedat" / "x86-v6.dat"


def synthesize(out: Path, megabytes: int) -> None:
    """``SAMPLE`` with its CPU data repeated to about ``megabytes`` MB."""
    from tracetool.tracedat import container

    data = SAMPLE.read_bytes()
    td = container.read(data, str(SAMPLE))
    (buffer,) = td.buffers
    table = b"".join(struct.pack("<QQ", c.offset, c.size) for c in buffer.cpus)
    at = data.find(table)
    assert at > 0, "cannot find the CPU table of the sample"
    page = buffer.page_size
    cpus = [np.frombuffer(data[c.offset : c.offset + c.size], np.uint8) for c in buffer.cpus]
    first = min(int(np.frombuffer(c[:8].tobytes(), "<u8")[0]) for c in cpus)
    last = max(int(np.frombuffer(c[-page : -page + 8].tobytes(), "<u8")[0]) for c in cpus)
    span = last - first + 50_000_000  # each copy starts 50 ms after the previous ends
    per_copy = sum(len(c) for c in cpus)
    copies = max(1, megabytes * 1_000_000 // per_copy)
    head_end = (len(data[: at + len(table)]) + page - 1) // page * page
    offsets, blobs = [], []
    pos = head_end
    for c in cpus:
        pages = np.tile(c.reshape(-1, page), (copies, 1))
        stamps = pages[:, :8].copy().view("<u8").reshape(-1)
        shift = np.repeat(np.arange(copies, dtype=np.uint64) * np.uint64(span), len(c) // page)
        pages[:, :8] = (stamps + shift).view(np.uint8).reshape(-1, 8)
        offsets.append((pos, pages.size))
        blobs.append(pages)
        pos += pages.size
    new_table = b"".join(struct.pack("<QQ", o, s) for o, s in offsets)
    with out.open("wb") as fh:
        head = data[:at] + new_table
        fh.write(head + b"\0" * (head_end - len(head)))
        for blob in blobs:
            fh.write(blob.tobytes())


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def consume(trace: object) -> pl.DataFrame:
    a = pl.col("args")
    return trace.events.select(  # type: ignore[attr-defined, no-any-return]
        pl.len(),
        pl.col("ts").max(),
        pl.col("event").n_unique(),
        a.struct.field("next_pid").max(),
        pl.col("body").str.len_bytes().sum(),
    ).collect()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--smoke", action="store_true", help="8 MB, one repetition")
    ap.add_argument("--keep", type=Path, help="generate into (and reuse) this directory")
    opts = ap.parse_args()
    mb = 8 if opts.smoke else opts.mb
    repeat = 1 if opts.smoke else 2
    work = opts.keep or Path(tempfile.mkdtemp(prefix="tt-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"tracedat-{mb}mb.dat"
    if not path.exists():
        synthesize(path, mb)

    import tracetool
    from tracetool.inputs import Source
    from tracetool.parse import _parse_stream

    size = path.stat().st_size
    native = best(lambda: consume(tracetool.parse(path, use_cache=False)), repeat)
    trace = tracetool.parse(path, use_cache=False)
    (info,) = trace.inputs
    events = info.counts["events"]
    assert info.accounted() and info.counts["diagnostics"] == 0, info
    result: dict[str, object] = {
        "file": {"bytes": size, "events": events, "version": info.meta.get("container")},
        "seconds": {"native": round(native, 3)},
        "throughput_mb_s": {"native": round(size / native / 1e6, 1)},
        "events_per_s": {"native": round(events / native)},
    }
    exe = shutil.which("trace-cmd")
    if exe:
        cmd = [exe, "report", "-t", "-i", str(path)]

        def report_only() -> None:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

        def piped() -> pl.DataFrame:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            assert proc.stdout is not None
            sink = Path(tempfile.mkdtemp(prefix="tt-bench-sink-", dir=work))
            with proc.stdout as stream:
                ev, *_ = _parse_stream(Source(str(path), None), stream, "trace-cmd", False, sink)
            proc.wait()
            out = consume(type("T", (), {"events": ev})())
            shutil.rmtree(sink, ignore_errors=True)
            return out

        report = best(report_only, repeat)
        pipe = best(piped, repeat)
        result["seconds"].update(  # type: ignore[attr-defined]
            trace_cmd_report=round(report, 3), trace_cmd_pipe=round(pipe, 3)
        )
        result["throughput_mb_s"].update(  # type: ignore[attr-defined]
            trace_cmd_report=round(size / report / 1e6, 1),
            trace_cmd_pipe=round(size / pipe / 1e6, 1),
        )
        result["ratios"] = {
            "native_vs_pipe": round(pipe / native, 2),
            "native_vs_report": round(report / native, 2),
        }
    print(json.dumps(result, indent=2))
    if not opts.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
