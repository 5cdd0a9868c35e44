"""Comparing two runs: the resampling against brute force, the KS test against known values,
the strict vs lazy samples against the model's ground truth, findings, the CLI."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import GOLDENS, SAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

import tracetool
from tracetool.cli import main
from tracetool.diff import compare
from tracetool.resample import (
    _kolmogorov_q,
    ks_test,
    mean_interval,
    percentile_interval,
    quantile_replicates,
    ratio_interval,
    window_replicates,
)

FLUSH = SAMPLES / "flush"
STRICT = FLUSH / "s390-fio-zvm-strict.txt"
LAZY = FLUSH / "s390-fio-zvm-lazy.txt"


def truth(path: Path) -> dict[str, int]:
    return json.loads(path.with_suffix(".truth.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def strict_vs_lazy() -> tracetool.Comparison:
    return compare(tracetool.parse(STRICT), tracetool.parse(LAZY), replicates=1000)


def metric(cmp: object, name: str, group: str) -> dict[str, object]:
    rows = cmp.metrics.filter((pl.col("metric") == name) & (pl.col("group") == group))  # type: ignore[attr-defined]
    assert rows.height == 1, (name, group)
    return rows.row(0, named=True)  # type: ignore[no-any-return]


def brute_quantiles(values: list[int], q: float, replicates: int, seed: int) -> pl.Series:
    """The bootstrap done the slow, obvious way: resample, sort, interpolate."""
    rng = random.Random(seed)
    out = []
    for _ in range(replicates):
        drawn = sorted(rng.choice(values) for _ in values)
        h = (len(drawn) - 1) * q
        lo = math.floor(h)
        hi = min(lo + 1, len(drawn) - 1)
        out.append(drawn[lo] + (drawn[hi] - drawn[lo]) * (h - lo))
    return pl.Series(out, dtype=pl.Float64)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_order_statistic_bootstrap_matches_brute_force(q: float) -> None:
    gen = random.Random(7)
    values = [int(gen.expovariate(1 / 50_000)) for _ in range(40)]
    fast = quantile_replicates(pl.Series(values), q, 20_000, random.Random(1))
    slow = brute_quantiles(values, q, 20_000, seed=2)
    spread = float(slow.std() or 1.0)  # type: ignore[arg-type]
    # Same distribution: mean, spread and the 2.5/97.5 % points agree to within noise.
    assert abs(float(fast.mean()) - float(slow.mean())) < 0.05 * spread + 1  # type: ignore[arg-type]
    assert abs(float(fast.std()) - spread) < 0.08 * spread + 1  # type: ignore[arg-type]
    for f, s in zip(percentile_interval(fast), percentile_interval(slow), strict=True):
        assert abs(f - s) <= 0.15 * spread + 1


@given(
    values=st.lists(st.integers(0, 10**9), min_size=1, max_size=60),
    q=st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]),
)
@settings(max_examples=60, deadline=None)
def test_quantile_replicates_stay_within_the_data(values: list[int], q: float) -> None:
    reps = quantile_replicates(pl.Series(values), q, 50, random.Random(0))
    assert reps.len() == 50
    assert reps.min() >= min(values) and reps.max() <= max(values)  # type: ignore[operator]
    if len(set(values)) == 1:
        assert reps.unique().to_list() == [float(values[0])]


def test_empty_samples_give_no_interval() -> None:
    assert quantile_replicates(pl.Series([], dtype=pl.Int64), 0.5, 10, random.Random(0)).len() == 0
    reps, interval = mean_interval(pl.Series([], dtype=pl.Int64), 10, 0)
    assert reps is None and interval.method == "empty"
    assert ratio_interval(None, pl.Series([1.0])) == (None, None)
    assert ks_test(pl.Series([], dtype=pl.Int64), pl.Series([1])) == (None, None)


def test_mean_interval_switches_to_normal_for_large_samples() -> None:
    gen = random.Random(3)
    values = pl.Series([gen.gauss(100.0, 10.0) for _ in range(5000)])
    reps, boot = mean_interval(values, 1000, seed=0)
    assert reps is not None and boot.method == "bootstrap"
    _, normal = mean_interval(values, 10_000, seed=0)  # 5000 x 10000 draws > the limit
    assert normal.method == "normal"
    # Both about mean ± 1.96·10/√5000 = ±0.277.
    for interval in (boot, normal):
        assert interval.lo is not None and interval.hi is not None
        assert abs((interval.hi - interval.lo) - 2 * 1.96 * 10 / math.sqrt(5000)) < 0.06


def test_window_replicates_sum_the_windows_drawn() -> None:
    windows = pl.DataFrame({"seconds": [0.5, 0.5, 0.5], "ios|x": [10.0, 10.0, 10.0]})
    reps = window_replicates(windows, ["ios|x"], 200, seed=0)
    assert reps.height == 200
    assert reps["ios|x"].unique().to_list() == [30.0]
    assert reps["seconds"].unique().to_list() == [1.5]
    uneven = pl.DataFrame({"seconds": [1.0, 1.0], "ios|x": [0.0, 4.0]})
    drawn = window_replicates(uneven, ["ios|x"], 400, seed=1)["ios|x"]
    assert set(drawn.unique().to_list()) == {0.0, 4.0, 8.0}
    assert 3.0 < float(drawn.mean()) < 5.0  # type: ignore[arg-type]


def test_ks_distance_and_p_values() -> None:
    d, p = ks_test(pl.Series([1, 2, 3, 4]), pl.Series([3, 4, 5, 6]))
    assert d == pytest.approx(0.5)
    same_d, same_p = ks_test(pl.Series(range(100)), pl.Series(range(100)))
    assert same_d == 0.0 and same_p == 1.0
    apart_d, apart_p = ks_test(pl.Series(range(100)), pl.Series(range(1000, 1100)))
    assert apart_d == 1.0 and apart_p is not None and apart_p < 1e-20
    # The 5 % critical value of the Kolmogorov distribution is 1.358.
    assert _kolmogorov_q(1.358) == pytest.approx(0.05, abs=5e-4)
    assert p is not None and 0 < p <= 1


def test_strict_vs_lazy_counts_equal_the_model_truth(strict_vs_lazy: object) -> None:
    ts, tl = truth(STRICT), truth(LAZY)
    per_io = metric(strict_vs_lazy, "RPCITs per I/O", "all")
    assert per_io["a"] == pytest.approx(ts["rpcit"] / ts["ios"])
    assert per_io["b"] == pytest.approx(tl["rpcit"] / tl["ios"])
    unmaps = metric(strict_vs_lazy, "unmaps per RPCIT", "0004:00:00.0")
    assert unmaps["a"] == pytest.approx(ts["unmaps"] / ts["rpcit"])
    assert unmaps["b"] == pytest.approx(tl["unmaps"] / tl["rpcit"])
    stats = tracetool.stats(tracetool.parse(LAZY))
    (flush,) = stats.flushes.collect().to_dicts()
    assert (flush["flushes"], flush["global"], flush["unmaps"]) == (
        tl["rpcit"],
        tl["rpcit_global"],
        tl["unmaps"],
    )
    (io,) = stats.io.collect().to_dicts()
    assert (io["ios"], io["bytes"]) == (tl["ios"], tl["bytes"])


def test_lazy_doubles_iops_with_an_interval_that_excludes_one(strict_vs_lazy: object) -> None:
    iops = metric(strict_vs_lazy, "IOPS", "259:0")
    assert 1.8 < iops["ratio"] < 2.1  # type: ignore[operator]
    assert 1 < iops["lo"] < iops["ratio"] < iops["hi"]  # type: ignore[operator]
    # The device itself did not get faster: the I/O latency interval holds 1.
    io_p50 = metric(strict_vs_lazy, "p50", "io 259:0")
    assert io_p50["lo"] <= 1 <= io_p50["hi"]  # type: ignore[operator]
    # RPCIT latency (serialised by the hypervisor) fell, and KS says the shape changed.
    flush = strict_vs_lazy.tests.filter(pl.col("group") == "flush zpci_refresh_trans")  # type: ignore[attr-defined]
    assert flush["p_value"].item() < 1e-10
    io = strict_vs_lazy.tests.filter(pl.col("group") == "io 259:0")  # type: ignore[attr-defined]
    assert io["p_value"].item() > 0.05


def test_same_seed_same_intervals() -> None:
    a, b = tracetool.parse(STRICT), tracetool.parse(LAZY)
    one = compare(a, b, replicates=200, seed=5).metrics
    two = compare(a, b, replicates=200, seed=5).metrics
    assert one.equals(two)


def test_findings_appear_and_vanish() -> None:
    rule = SAMPLES / "rules" / "release-overlaps-attach"
    clean = tracetool.parse(rule / "clean-v6.0-serialised.txt")
    trigger = tracetool.parse(rule / "trigger-v6.0-release-inside-attach.txt")
    forward = compare(clean, trigger, replicates=100).findings
    row = forward.filter(pl.col("rule") == "release-overlaps-attach").row(0, named=True)
    assert (row["status"], row["device"], row["a"], row["b"]) == (
        "appeared",
        "0004:00:00.0",
        0,
        1,
    )
    assert row["example"].startswith(str(rule / "trigger-v6.0-release-inside-attach.txt"))
    back = compare(trigger, clean, replicates=100).findings
    assert "vanished" in back.filter(pl.col("rule") == "release-overlaps-attach")["status"]
    same = compare(trigger, trigger, replicates=100).findings
    assert set(same["status"]) == {"persisted"}


def test_diff_golden(update_goldens: bool) -> None:
    """Point values, which do not depend on the resampling."""
    args = ["diff", str(STRICT), str(LAZY), "--format", "json", "--replicates", "200"]
    result = CliRunner().invoke(main, [*args, "--no-cache"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)

    def sig(v: object) -> object:  # summation order may move the last bits
        return float(f"{v:.10g}") if isinstance(v, float) else v

    points = [
        {k: sig(r[k]) for k in ("metric", "group", "unit", "a", "b", "ratio", "n_a", "n_b")}
        for r in doc["metrics"]
    ]
    tests = [{k: sig(r[k]) for k in ("group", "n_a", "n_b", "ks_d")} for r in doc["tests"]]
    got = {"window_ns": doc["window_ns"], "metrics": points, "tests": tests}
    golden = GOLDENS / "diff" / "s390-fio-zvm-strict-vs-lazy.json"
    if update_goldens or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(got, indent=2) + "\n")
        if not update_goldens:
            pytest.fail(f"{golden} did not exist; written now, review and commit it")
    assert got == json.loads(golden.read_text())


def test_cli_table_fits_80_columns_and_window_is_checked() -> None:
    args = ["diff", str(STRICT), str(LAZY), "--replicates", "200", "--window", "1ms"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    assert "windows of 1000 µs" in result.stdout
    assert any(
        line.startswith("IOPS") and line.endswith("*") for line in result.stdout.splitlines()
    )
    bad = CliRunner().invoke(main, ["diff", str(STRICT), str(LAZY), "--window", "fast"])
    assert bad.exit_code == 2 and "give a number and a unit" in bad.output


def test_flush_samples_are_what_the_generator_renders() -> None:
    import sys

    sys.path.insert(0, str(SAMPLES / "capture"))
    try:
        import make_flush_samples
    finally:
        sys.path.pop(0)
    assert make_flush_samples.main(["--check"]) == 0


def test_p_values_below_the_smallest_double_print() -> None:
    """Two large, clearly different runs give a p-value that underflows to 0."""
    from tracetool.render import _small

    shown = pl.DataFrame({"p": [0.0, 5.8e-149, 0.0012, 0.95, None]}).select(_small(pl.col("p")))
    assert shown.to_series().to_list() == ["<1e-308", "5.8e-149", "0.0012", "0.95", "—"]


def test_diff_table_files(tmp_path: Path) -> None:
    """csv and parquet: one file per table, and the run's settings as a one-row table."""
    args = ["diff", str(STRICT), str(LAZY), "--replicates", "200", "--no-cache"]
    doc = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).stdout)
    for fmt in ("csv", "parquet"):
        out = tmp_path / fmt
        result = CliRunner().invoke(main, [*args, "--format", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.output
        read = pl.read_parquet if fmt == "parquet" else pl.read_csv
        (run,) = read(out / f"comparison.{fmt}").to_dicts()
        assert run == {k: doc[k] for k in ("a", "b", "level", "replicates", "seed", "window_ns")}
        assert read(out / f"metrics.{fmt}").to_dicts() == doc["metrics"]
        assert read(out / f"tests.{fmt}").height == len(doc["tests"])
