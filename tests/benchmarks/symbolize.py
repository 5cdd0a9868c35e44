"""Speed of the symbolizer on a generated binary; prints JSON.

    python tests/benchmarks/symbolize.py            # 50 k functions, 1 M addresses
    python tests/benchmarks/symbolize.py --smoke    # 2 k functions, 100 k addresses, for CI

The C source is generated: ``--functions`` exported functions in 50 units, each calling
two static inline helpers (so the DWARF has inline chains and a large line table),
built with ``gcc -g -O2``. Measured in one run:

* ``cold_load_s``: reading the ELF and its DWARF into tables (and caching them);
* ``warm_load_s``: the same from the Parquet cache; ``warm_vs_cold`` their ratio
  (target >= 20);
* ``first_resolve_s``: the first resolution after loading, which also builds the
  per-scope inline frames once (kept with the tables);
* ``resolve_per_s``: addresses resolved per second from then on: functions, lines and
  inline chains (target >= 1 M/s; best of three runs).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

UNITS = 50


def generate(where: Path, functions: int) -> Path:
    per = max(1, functions // UNITS)
    sources = []
    for u in range(UNITS):
        lines = []
        for i in range(4):
            lines.append(
                f"static inline int h{u}_{i}(int x) {{ return x * {i + 3} ^ (x >> {i}); }}"
            )
        for i in range(per):
            a, b = i % 4, (i + 1) % 4
            lines.append(
                f"int f{u}_{i}(int x) {{ int s = h{u}_{a}(x);"
                f" for (int k = 0; k < (x & 3); k++) s += h{u}_{b}(s + k); return s + {i}; }}"
            )
        src = where / f"u{u}.c"
        src.write_text("\n".join(lines) + "\n")
        sources.append(str(src))
    main = where / "main.c"
    main.write_text("int f0_0(int); int main(int c, char **v) { return f0_0(c); }\n")
    binary = where / "big"
    subprocess.run(["gcc", "-g", "-O2", "-o", str(binary), *sources, str(main)], check=True)
    return binary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--functions", type=int, default=None)
    ap.add_argument("--addresses", type=int, default=None)
    args = ap.parse_args()
    functions = args.functions or (2_000 if args.smoke else 50_000)
    n_addrs = args.addresses or (100_000 if args.smoke else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="tt-sym-bench-") as tmp:
        where = Path(tmp)
        os.environ["TRACETOOL_CACHE_DIR"] = str(where / "cache")
        from tracetool.symbols import load

        t0 = time.perf_counter()
        binary = generate(where, functions)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        cold = load(binary)
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = load(binary)
        warm_s = time.perf_counter() - t0
        assert warm.cached and not cold.cached
        funcs = warm.tables.functions.filter(pl.col("size") > 0)
        rng = random.Random(7)
        starts, sizes = funcs["addr"].to_list(), funcs["size"].to_list()
        picks = [rng.randrange(len(starts)) for _ in range(n_addrs)]
        addrs = pl.DataFrame(
            {
                "addr": pl.Series(
                    [starts[i] + rng.randrange(sizes[i]) for i in picks], dtype=pl.UInt64
                )
            }
        )
        t0 = time.perf_counter()
        warm.resolve(addrs.head(1000))
        first_s = time.perf_counter() - t0
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = warm.resolve(addrs)
            runs.append(time.perf_counter() - t0)
        resolve_s = min(runs)
        with_line = out.filter(pl.col("file").is_not_null()).height
        inlined = out.filter(pl.col("frames").list.len() > 1).height
        figures = {
            "benchmark": "symbolize",
            "functions": warm.tables.functions.height,
            "line_rows": warm.tables.lines.height,
            "scopes": warm.tables.chains.height,
            "binary_mb": round(binary.stat().st_size / 1e6, 1),
            "build_s": round(build_s, 1),
            "cold_load_s": round(cold_s, 2),
            "warm_load_s": round(warm_s, 3),
            "warm_vs_cold": round(cold_s / warm_s, 1),
            "first_resolve_s": round(first_s, 2),
            "addresses": n_addrs,
            "resolve_s": round(resolve_s, 2),
            "resolve_per_s": round(n_addrs / resolve_s),
            "with_line": with_line,
            "inlined": inlined,
            "targets": {"warm_vs_cold": ">= 20", "resolve_per_s": ">= 1000000"},
        }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
