"""Two runs compared, for a patch cover letter: strict vs lazy flushing, LPAR vs z/VM.

For every figure both runs have, ``compare`` gives the value in A and in B, the ratio
B/A and a 95 % bootstrap interval of that ratio (``tracetool.resample``):

``metrics``        one row per figure:
                   * rates over the run, resampled by time window: IOPS and MB/s per
                     block device; RPCITs, global RPCITs and unmaps per second per
                     device; RPCITs per I/O and unmaps per RPCIT;
                   * latency distributions (every traced call kind and function, and
                     block I/O per device): p50, p90, p99 and mean;
``tests``          per distribution: the two-sample Kolmogorov–Smirnov distance and
                   p-value, so a change of shape shows even where no percentile moved;
``findings``       the rules run on both: each (rule, device) ``appeared``,
                   ``vanished`` or ``persisted``, with counts and an example line.

A run's span is from its first I/O issue or RPCIT to its last completion or RPCIT; it
is cut into windows of ``window_ns`` (default: a 50th of the span, at least 100 µs).
A window that saw nothing counts as a window with zero events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import polars as pl

from tracetool.check import run as run_rules
from tracetool.events import Trace
from tracetool.kernel import EraChoice
from tracetool.resample import (
    LEVEL,
    REPLICATES,
    Interval,
    ks_test,
    mean_interval,
    quantile_replicates,
    ratio_interval,
    window_replicates,
)
from tracetool.stats import durations, grid, rates, spans_and_ios, window_counts

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
WINDOWS = 50
MIN_WINDOW_NS = 100_000

METRICS_SCHEMA = pl.Schema(
    {
        "metric": pl.String(),
        "group": pl.String(),
        "unit": pl.String(),
        "a": pl.Float64(),
        "b": pl.Float64(),
        "ratio": pl.Float64(),
        "lo": pl.Float64(),
        "hi": pl.Float64(),
        "method": pl.String(),
        "n_a": pl.Int64(),
        "n_b": pl.Int64(),
    }
)


@dataclass
class Run:
    """What ``compare`` needs of one run: its spans, its I/Os and the rules' input."""

    spans: pl.DataFrame
    ios: pl.DataFrame
    trace: Trace

    @classmethod
    def of(cls, trace: Trace, era: EraChoice | None = None) -> Run:
        spans, ios = spans_and_ios(trace, era)
        return cls(spans.collect(), ios.collect(), trace)

    @property
    def span_ns(self) -> int:
        g = grid(self.spans, self.ios)
        return 0 if g is None else g.end - g.start

    def windows(self, width_ns: int) -> pl.DataFrame:
        """Per window: its length in seconds and the counts the rates are made of,
        in columns named ``what|group`` (``ios|259:0``, ``flushes|0004:00:00.0``) and
        ``what|all``."""
        g = grid(self.spans, self.ios, width_ns)
        if g is None:
            return pl.DataFrame(schema={"w": pl.Int64, "seconds": pl.Float64})
        counts = window_counts(self.spans, self.ios, g).collect()
        counts = pl.concat([counts, counts.with_columns(group=pl.lit("all"))])
        frame = g.frame().drop("start_ts")
        if counts.is_empty():
            return frame
        wide = counts.with_columns(key=pl.format("{}|{}", "what", "group")).pivot(
            "key", index="w", values="n", aggregate_function="sum"
        )
        return frame.join(wide, on="w", how="left").fill_null(0.0).sort("w")


# name, numerator, denominator ("seconds" for a rate), scale, unit, which groups:
# "io" block devices, "iommu" the devices RPCITs and unmaps were attributed to, "all" the
# run (I/Os and RPCITs are on different devices, 259:0 vs 0004:00:00.0, so "per I/O" is
# only meaningful over the whole run).
RATES: list[tuple[str, str, str, float, str, str]] = [
    ("IOPS", "ios", "seconds", 1.0, "1/s", "io"),
    ("MB/s", "bytes", "seconds", 1e-6, "MB/s", "io"),
    ("RPCITs/s", "flushes", "seconds", 1.0, "1/s", "iommu"),
    ("global RPCITs/s", "global", "seconds", 1.0, "1/s", "iommu"),
    ("unmaps/s", "unmaps", "seconds", 1.0, "1/s", "iommu"),
    ("RPCITs per I/O", "flushes", "ios", 1.0, "ratio", "all"),
    ("unmaps per RPCIT", "unmaps", "flushes", 1.0, "ratio", "iommu"),
]


def _groups(keys: list[str], what: tuple[str, ...]) -> list[str]:
    return sorted({k.split("|", 1)[1] for k in keys if k.split("|", 1)[0] in what} - {"all"})


def _rate_rows(
    a: Run, b: Run, width_ns: int, replicates: int, seed: int
) -> list[dict[str, object]]:
    wa, wb = a.windows(width_ns), b.windows(width_ns)
    keys = sorted((set(wa.columns) | set(wb.columns)) - {"w", "seconds"})
    wa = wa.with_columns(pl.lit(0.0).alias(k) for k in keys if k not in wa.columns)
    wb = wb.with_columns(pl.lit(0.0).alias(k) for k in keys if k not in wb.columns)
    ra = window_replicates(wa, keys, replicates, seed)
    rb = window_replicates(wb, keys, replicates, seed + 1)
    scopes = {
        "io": _groups(keys, ("ios",)),
        "iommu": _groups(keys, ("flushes", "unmaps")),
        "all": ["all"],
    }
    rows = []
    for name, num, den, scale, unit, scope in RATES:
        for group in scopes[scope]:
            nk = f"{num}|{group}"
            dk = den if den == "seconds" else f"{den}|{group}"
            if nk not in keys or dk not in [*keys, "seconds"]:
                continue

            def point(
                w: pl.DataFrame, nk: str = nk, dk: str = dk, scale: float = scale
            ) -> float | None:
                d = float(w[dk].sum()) if w.height else 0.0
                return float(w[nk].sum()) * scale / d if d else None

            def reps(
                r: pl.DataFrame, nk: str = nk, dk: str = dk, scale: float = scale
            ) -> pl.Series | None:
                if r.height == 0:
                    return None
                return r.select(
                    pl.when(pl.col(dk) != 0).then(pl.col(nk) * scale / pl.col(dk))
                ).to_series()

            va, vb = point(wa), point(wb)
            if va is None and vb is None:
                continue
            lo, hi = ratio_interval(reps(ra), reps(rb))
            rows.append(_row(name, group, unit, va, vb, lo, hi, "windows", wa.height, wb.height))
    return rows


def _row(
    metric: str,
    group: str,
    unit: str,
    a: float | None,
    b: float | None,
    lo: float | None,
    hi: float | None,
    method: str,
    n_a: int,
    n_b: int,
) -> dict[str, object]:
    ratio = b / a if a and b is not None else None
    return {
        "metric": metric,
        "group": group,
        "unit": unit,
        "a": a,
        "b": b,
        "ratio": ratio,
        "lo": lo,
        "hi": hi,
        "method": method,
        "n_a": n_a,
        "n_b": n_b,
    }


def distributions(run: Run) -> pl.DataFrame:
    """``group`` and ``value`` (ns) of a run (see ``stats.durations``)."""
    return durations(run.spans.lazy(), run.ios.lazy()).collect()


def _distribution_rows(
    a: Run, b: Run, replicates: int, seed: int
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    da, db = distributions(a), distributions(b)
    groups = sorted(set(da["group"].unique()) & set(db["group"].unique()))
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    tests: list[dict[str, object]] = []
    for group in groups:
        xa = da.filter(pl.col("group") == group)["value"]
        xb = db.filter(pl.col("group") == group)["value"]
        for name, q in QUANTILES.items():
            qa = quantile_replicates(xa, q, replicates, rng)
            qb = quantile_replicates(xb, q, replicates, rng)
            lo, hi = ratio_interval(qa, qb)
            va = xa.quantile(q, interpolation="linear")
            vb = xb.quantile(q, interpolation="linear")
            rows.append(
                _row(name, group, "ns", va, vb, lo, hi, "order-statistic", xa.len(), xb.len())
            )
        ma, ia = mean_interval(xa, replicates, seed)
        mb, ib = mean_interval(xb, replicates, seed + 1)
        lo, hi = _mean_ratio(ma, mb, ia, ib)
        rows.append(
            _row("mean", group, "ns", xa.mean(), xb.mean(), lo, hi, ia.method, xa.len(), xb.len())  # type: ignore[arg-type]
        )
        d, p = ks_test(xa, xb)
        tests.append({"group": group, "n_a": xa.len(), "n_b": xb.len(), "ks_d": d, "p_value": p})
    return rows, tests


def _mean_ratio(
    ma: pl.Series | None, mb: pl.Series | None, ia: Interval, ib: Interval
) -> tuple[float | None, float | None]:
    if ma is not None and mb is not None:
        return ratio_interval(ma, mb)
    # Normal intervals: the ratio's bounds from the bounds of each side (conservative).
    if None in (ia.lo, ia.hi, ib.lo, ib.hi) or not ia.lo or not ia.hi or ia.lo <= 0:
        return None, None
    return (ib.lo or 0.0) / ia.hi, (ib.hi or 0.0) / ia.lo


def _finding_rows(a: Run, b: Run, rule_dirs: tuple[str, ...]) -> pl.DataFrame:
    def per(run: Run, side: str) -> pl.DataFrame:
        found = run_rules(run.trace, rule_dirs).findings
        return found.group_by("rule", "device").agg(
            pl.len().alias(side),
            pl.col("evidence").list.first().first().alias(f"example_{side}"),
        )

    fa, fb = per(a, "a"), per(b, "b")
    both = fa.join(fb, on=["rule", "device"], how="full", coalesce=True, nulls_equal=True)
    return (
        both.with_columns(pl.col("a", "b").fill_null(0).cast(pl.Int64))
        .with_columns(
            status=pl.when(pl.col("a") == 0)
            .then(pl.lit("appeared"))
            .when(pl.col("b") == 0)
            .then(pl.lit("vanished"))
            .otherwise(pl.lit("persisted")),
            example=pl.coalesce("example_b", "example_a"),
        )
        .select("status", "rule", "device", "a", "b", "example")
        .sort("status", "rule", "device", nulls_last=True)
    )


@dataclass
class Comparison:
    """The result of ``compare`` (see the module doc)."""

    metrics: pl.DataFrame
    tests: pl.DataFrame
    findings: pl.DataFrame
    window_ns: int
    replicates: int
    seed: int
    level: float = LEVEL
    spans_s: tuple[float, float] = (0.0, 0.0)
    samples: dict[str, pl.DataFrame] = field(default_factory=dict)  # "a"/"b": durations
    rates: dict[str, pl.DataFrame] = field(default_factory=dict)  # "a"/"b": stats.rates


def default_window(a: Run, b: Run) -> int:
    return max(MIN_WINDOW_NS, max(a.span_ns, b.span_ns) // WINDOWS)


def compare(
    a: Trace,
    b: Trace,
    window_ns: int | None = None,
    replicates: int = REPLICATES,
    seed: int = 0,
    rule_dirs: tuple[str, ...] = (),
    era: EraChoice | None = None,
) -> Comparison:
    """``b`` against ``a``: ratios are B/A (see the module doc)."""
    ra, rb = Run.of(a, era), Run.of(b, era)
    width = window_ns or default_window(ra, rb)
    rows = _rate_rows(ra, rb, width, replicates, seed)
    dist_rows, tests = _distribution_rows(ra, rb, replicates, seed + 2)
    metrics = pl.DataFrame(rows + dist_rows, schema=METRICS_SCHEMA)
    return Comparison(
        metrics=metrics,
        tests=pl.DataFrame(
            tests,
            schema={
                "group": pl.String,
                "n_a": pl.Int64,
                "n_b": pl.Int64,
                "ks_d": pl.Float64,
                "p_value": pl.Float64,
            },
        ),
        findings=_finding_rows(ra, rb, rule_dirs),
        window_ns=width,
        replicates=replicates,
        seed=seed,
        spans_s=(ra.span_ns / 1e9, rb.span_ns / 1e9),
        samples={"a": distributions(ra), "b": distributions(rb)},
        rates={"a": rates(ra.spans, ra.ios, width), "b": rates(rb.spans, rb.ios, width)},
    )
