"""Speed and memory of ``tracetool stats`` on a long strict/lazy fio trace; prints JSON.

    python tests/benchmarks/stats.py              # about 10 M lines (2000 tiles)
    python tests/benchmarks/stats.py --smoke      # about 100 k lines, for CI
    python tests/benchmarks/stats.py --tiles N --keep DIR
    python tests/benchmarks/stats.py --big 10 --keep DIR   # only the 10 GB memory run

The trace is samples/flush/s390-fio-zvm-lazy.txt repeated ``tiles`` times, each copy
shifted by the sample's length in time, so every figure of the sample scales exactly (the
benchmark checks that the counts are ``tiles`` times the sample's). Measured in one run
on the same file, so machine noise cancels:

* ``stats_cached_vs_parse``: ``stats`` over a trace whose parse and timeline are in the
  Parquet cache (every table collected), over parsing the text (events collected).
  Target <= 0.25.
* ``stats_first_on_cached_events_s``: the first ``stats`` after a parse, which builds the
  timeline (and caches it); ``stats_text_s``: ``stats`` with no cache at all.
* ``peak_rss_cached_mb``, ``peak_rss_text_mb``: peak RSS of a child running the CLI's
  ``stats`` with the cache warm, and from the text with no cache (also over the file
  size).

``--big GB`` writes a trace of at least that many gigabytes (streamed to disk, a tile
at a time) and runs only the CLI's ``stats --no-cache --html`` on it in a child: its peak RSS
(target <= 1.5 GB for 10 GB), its time, and the check that the counts are ``tiles``
times the sample's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "flush" / "s390-fio-zvm-lazy.txt"
LINE = r"^(.{16}-\S+\s+\[\d+\] \S+\s+)(\d+)\.(\d{6})(: .*)$"


def generate(path: Path, tiles: int) -> int:
    """Write ``tiles`` time-shifted copies of the sample's events after its header;
    returns the number of event lines. Vectorised per tile (a few thousand rows)."""
    text = SAMPLE.read_text().splitlines()
    header = [line for line in text if line.startswith("#")]
    body = pl.DataFrame({"line": [line for line in text if not line.startswith("#")]})
    parts = body.select(pl.col("line").str.extract_groups(LINE)).unnest("line")
    parts.columns = ["prefix", "sec", "usec", "rest"]
    us = pl.col("sec").cast(pl.Int64) * 1_000_000 + pl.col("usec").cast(pl.Int64)
    parts = parts.with_columns(us=us)
    period = int(parts["us"].max() - parts["us"].min()) + 50  # type: ignore[operator]
    with path.open("w") as out:
        out.write("\n".join(header) + "\n")
        for tile in range(tiles):
            t = pl.col("us") + tile * period
            lines = parts.select(
                pl.format(
                    "{}{}.{}{}",
                    "prefix",
                    (t // 1_000_000).cast(pl.String).str.pad_start(5),
                    (t % 1_000_000).cast(pl.String).str.zfill(6),
                    "rest",
                )
            ).to_series()
            out.write("\n".join(lines.to_list()) + "\n")
    return body.height * tiles


def timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()  # type: ignore[operator]
    return time.perf_counter() - start, value


def collect_all(figures: object) -> dict[str, pl.DataFrame]:
    names = ("latency", "histogram", "flushes", "flush_paths", "io", "rates")
    return {n: getattr(figures, n).collect(engine="streaming") for n in names}


def child_rss(path: Path, cache_dir: Path, *flags: str, out: str = "/dev/null") -> int:
    """Peak RSS (bytes) of the CLI's ``stats`` in a fresh process. VmHWM, not
    ru_maxrss: the latter survives exec, so a child would report this process's size."""
    env = {**os.environ, "TRACETOOL_CACHE_DIR": str(cache_dir)}
    code = (
        "import re, sys\nfrom tracetool.cli import main\n"
        f"try:\n    main(['stats', *sys.argv[1:], '--format', 'json', '-o', {out!r}])\n"
        "except SystemExit:\n    pass\n"
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), *flags],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1]) * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=2000)
    ap.add_argument("--smoke", action="store_true", help="20 tiles, for CI")
    ap.add_argument("--keep", type=Path, help="write the trace here and keep it")
    ap.add_argument("--big", type=float, metavar="GB", help="only the memory run on GB")
    args = ap.parse_args()
    tiles = 20 if args.smoke else args.tiles

    work = args.keep or Path(tempfile.mkdtemp(prefix="tt-stats-"))
    work.mkdir(parents=True, exist_ok=True)
    truth = json.loads(SAMPLE.with_suffix(".truth.json").read_text())
    if args.big:
        big(work, args.big, truth)
    else:
        figures(work, tiles, truth)
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def check_counts(
    tables: dict[str, list[dict[str, int]]], truth: dict[str, int], tiles: int
) -> None:
    """Every copy of the sample adds the sample's counts, exactly."""
    (flush,) = tables["flushes"]
    (io,) = tables["io"]
    assert flush["flushes"] == truth["rpcit"] * tiles, (flush, truth)
    assert flush["global"] == truth["rpcit_global"] * tiles
    assert io["ios"] == truth["ios"] * tiles


def big(work: Path, gb: float, truth: dict[str, int]) -> None:
    sample_mb = SAMPLE.stat().st_size / 1e6
    tiles = int(gb * 1000 / sample_mb) + 1
    path = work / f"fio-lazy-{tiles}.txt"
    gen_s = 0.0
    if not path.exists():
        gen_s, _ = timed(lambda: generate(path, tiles))
    result = work / "stats.json"
    cache_dir = Path(tempfile.mkdtemp(prefix="tt-cache-", dir=work))
    # The HTML report too: its CDFs must not hold every duration either.
    page = work / "stats.html"
    flags = ("--no-cache", "--html", str(page))
    run_s, rss = timed(lambda: child_rss(path, cache_dir, *flags, out=str(result)))
    check_counts(json.loads(result.read_text()), truth, tiles)
    size = path.stat().st_size
    print(
        json.dumps(
            {
                "tiles": tiles,
                "file_gb": round(size / 1e9, 2),
                "generate_s": round(gen_s, 1),
                "stats_text_s": round(run_s, 1),  # type: ignore[arg-type]
                "mb_s": round(size / 1e6 / run_s, 1),  # type: ignore[operator]
                "peak_rss_text_mb": round(rss / 1e6, 1),  # type: ignore[operator]
                "peak_rss_vs_file": round(rss / size, 3),  # type: ignore[operator]
                "html_mb": round(page.stat().st_size / 1e6, 1),
                "counts_match_truth": True,
                "targets": {"peak_rss_text_mb": "<= 1500 for >= 10 GB"},
            },
            indent=2,
        )
    )


def figures(work: Path, tiles: int, truth: dict[str, int]) -> None:
    import tracetool

    path = work / "fio-lazy-tiled.txt"
    gen_s, lines = timed(lambda: generate(path, tiles))

    parse_s, trace = timed(lambda: tracetool.parse(path, use_cache=False).events.collect())
    del trace
    text_s, _ = timed(lambda: collect_all(tracetool.stats(tracetool.parse(path, use_cache=False))))

    cache_dir = Path(tempfile.mkdtemp(prefix="tt-cache-", dir=work))
    os.environ["TRACETOOL_CACHE_DIR"] = str(cache_dir)
    tracetool.parse(path).events.collect()  # fills the cache
    assert tracetool.parse(path).inputs[0].cached
    # The first stats over cached events builds the timeline and caches it too.
    first_s, _ = timed(lambda: collect_all(tracetool.stats(tracetool.parse(path))))
    cached_s, tables = timed(lambda: collect_all(tracetool.stats(tracetool.parse(path))))
    check_counts({n: t.to_dicts() for n, t in tables.items()}, truth, tiles)  # type: ignore[attr-defined]
    rss = child_rss(path, cache_dir)
    rss_text = child_rss(path, cache_dir, "--no-cache")
    size = path.stat().st_size
    print(
        json.dumps(
            {
                "lines": lines,
                "file_mb": round(size / 1e6, 1),
                "generate_s": round(gen_s, 2),
                "parse_text_s": round(parse_s, 2),
                "stats_text_s": round(text_s, 2),
                "stats_first_on_cached_events_s": round(first_s, 2),
                "stats_cached_s": round(cached_s, 2),
                "stats_cached_vs_parse": round(cached_s / parse_s, 3),
                "peak_rss_cached_mb": round(rss / 1e6, 1),
                "peak_rss_text_mb": round(rss_text / 1e6, 1),
                "peak_rss_text_vs_file": round(rss_text / size, 2),
                "targets": {"stats_cached_vs_parse": "<= 0.25"},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
