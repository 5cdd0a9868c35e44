"""CI log triage: what broke in each log, grouped across logs by signature, and
classified against a list of known issues.

Per log (``triage_log``, independent of every other log, so logs can be spread over
processes): the crash reports the dmesg parser assembles (kind, title, signature,
guilty frame, release), the rules' findings on any trace the log embeds (a panic's
ftrace dump, a SysRq-z dump), lost events, and the log's identity: the kernel release
(``Linux version`` or a report's ``CPU:`` line) and the run (the file's path).

Across logs (``group``): one row per signature: how often, in how many logs, first and
last seen, the kernels affected, an example ``path:line`` and the guilty frame. The
signature is the crash parser's normalised title, so the same WARN printed by an old
and a new kernel format falls into one group.

Known issues (``known-issues.toml``): each ``[[issue]]`` has a ``pattern`` (a regex on
the signature), a ``bug`` link, a ``status`` (open or fixed) and, when fixed, a
``fixed_in`` release. A group is **known** when an issue matches; a **regression** when
the issue is fixed and the group was seen on a kernel at or after ``fixed_in``; **new**
otherwise.
"""

from __future__ import annotations

import functools
import multiprocessing
import re
import tomllib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tracetool.dmesg import log_release
from tracetool.errors import InputError, TraceToolError

REPORTS_SCHEMA = pl.Schema(
    {
        "log": pl.String(),
        "line": pl.UInt32(),
        "kind": pl.String(),
        "title": pl.String(),
        "signature": pl.String(),
        "guilty": pl.String(),
        "release": pl.String(),
        "corrupted": pl.Boolean(),
        "source": pl.String(),  # "crash" or "rule"
        "location": pl.String(),  # printed file:line, or the guilty frame's (--vmlinux)
    }
)
LOGS_SCHEMA = pl.Schema(
    {
        "log": pl.String(),
        "release": pl.String(),
        "mtime": pl.Float64(),
        "reports": pl.UInt32(),
        "findings": pl.UInt32(),
        "inconclusive": pl.UInt32(),
        "lost": pl.Int64(),
        "error": pl.String(),
    }
)


@dataclass(frozen=True)
class KnownIssue:
    pattern: re.Pattern[str]
    bug: str
    status: str
    fixed_in: tuple[int, ...] | None
    fixed_in_text: str | None


def release_key(release: str | None) -> tuple[int, ...] | None:
    """ "6.1.0-13-s390x" -> (6, 1, 0); None when it does not start with numbers."""
    if not release:
        return None
    m = re.match(r"v?(\d+(?:\.\d+)*)", release)
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def load_known(path: Path) -> list[KnownIssue]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML: {e}") from None
    out = []
    for n, entry in enumerate(data.get("issue", []), start=1):
        where = f"{path}: [[issue]] #{n}"
        for key in ("pattern", "bug", "status"):
            if key not in entry:
                raise InputError(f"{where}: needs {key} (pattern, bug, status, fixed_in)")
        status = entry["status"]
        if status not in ("open", "fixed"):
            raise InputError(f'{where}: status is "open" or "fixed", not {status!r}')
        if status == "fixed" and "fixed_in" not in entry:
            raise InputError(f"{where}: a fixed issue needs fixed_in (the release, e.g. 6.1)")
        try:
            pattern = re.compile(entry["pattern"])
        except re.error as e:
            raise InputError(f"{where}: pattern is not a regex: {e}") from None
        fixed = entry.get("fixed_in")
        out.append(KnownIssue(pattern, entry["bug"], status, release_key(fixed), fixed))
    return out


QUIET_LIMIT = 64 << 20  # logs up to this size are read whole for the quiet check


@functools.cache
def _candidates() -> str:
    """A regex that matches every kernel-log line that can open a crash report (a title
    or a cut line), start an ftrace dump, or mark lost messages: the dmesg format's own
    patterns, unanchored, so it matches anywhere on a line (a superset: never less)."""
    from tracetool.catalogue import get_format
    from tracetool.crashes import grammar
    from tracetool.dmesg import DUMP_START

    spec = get_format("dmesg")
    g = grammar(spec)
    patterns = [t.pattern for t in g.titles] + [g.cut, DUMP_START]
    patterns += [line.pattern for line in spec.lines if line.kind == "loss"]
    unanchored = [re.sub(r"\(\?P<\w+>", "(?:", p.removeprefix("^")) for p in patterns]
    return "(?m)" + "|".join(f"(?:{p})" for p in unanchored)


def quiet(path: Path) -> bool | None:
    """True when ``path`` is a kernel log with no line that could start a report, a
    dump or a loss: there is nothing to parse for triage. None when it is not a kernel
    log (or too big to check whole); it is then parsed."""
    from tracetool.inputs import Source, choose_format

    if path.suffix in (".gz", ".zst", ".zstd") or path.stat().st_size > QUIET_LIMIT:
        return None
    with Source(str(path), path).open() as stream:
        data = stream.read()
    try:
        if choose_format(str(path), data[: 1 << 16], None).name != "dmesg":
            return None
    except TraceToolError:
        return None  # empty, binary: the parse says so
    text = data.decode("utf-8", "replace")
    return not pl.Series([text]).str.contains(_candidates()).item()


def triage_log(
    path: str, vmlinux: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One log's row and its reports (crash reports and rule findings). With
    ``vmlinux``, crash reports are symbolized (a location from the guilty frame)."""
    import tracetool

    p = Path(path)
    row: dict[str, Any] = {
        "log": path,
        "release": None,
        "mtime": p.stat().st_mtime,
        "reports": 0,
        "findings": 0,
        "inconclusive": 0,
        "lost": 0,
        "error": None,
    }
    try:
        if quiet(p):
            with p.open(encoding="utf-8", errors="replace") as f:
                row["release"] = log_release(f)
            return row, []
        trace = tracetool.parse(p, use_cache=False, in_memory=True)
        if vmlinux is not None:
            from tracetool.symbols import symbolize_trace

            trace, _ = symbolize_trace(trace, Path(vmlinux))
        crashes = trace.table("crashes").collect()
        # The rules need a trace; most logs embed none (only their own printk lines).
        traced = trace.events.filter(pl.col("event") != "printk").head(1).collect().height
        findings = (
            tracetool.check(trace).collect()
            if traced
            else pl.DataFrame(
                schema={
                    "status": pl.String,
                    "evidence": pl.List(pl.String),
                    "rule": pl.String,
                    "device": pl.String,
                }
            )
        )
    except TraceToolError as e:
        row["error"] = str(e)
        return row, []
    with p.open(encoding="utf-8", errors="replace") as f:
        release = log_release(f)
    row["release"] = release
    lost = trace.losses.collect()["lost"].sum()
    row["lost"] = int(lost or 0)
    reports = [
        {
            "log": path,
            "line": r["line"],
            "kind": r["kind"],
            "title": r["title"],
            "signature": r["signature"],
            "guilty": r["guilty"],
            "release": r["release"] or release,
            "corrupted": r["corrupted"],
            "source": "crash",
            "location": r["location"],
        }
        for r in crashes.iter_rows(named=True)
    ]
    found = findings.filter(pl.col("status") == "finding")
    for r in found.iter_rows(named=True):
        first = (r["evidence"] or [f"{path}:0"])[0]
        at = int(first.rsplit(":", 1)[1].split(",")[0]) if ":" in first else 0
        reports.append(
            {
                "log": path,
                "line": at,
                "kind": "rule",
                "title": f"{r['rule']} on {r['device']}",
                "signature": f"{r['rule']}",
                "guilty": None,
                "release": release,
                "corrupted": False,
                "source": "rule",
                "location": None,
            }
        )
    row["reports"] = crashes.height
    row["findings"] = found.height
    row["inconclusive"] = findings.height - found.height
    return row, reports


def logs_in(inputs: list[str]) -> list[str]:
    """Every file under the inputs (directories recursively), in a stable order."""
    out = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += [str(f) for f in sorted(p.rglob("*")) if f.is_file()]
        elif p.is_file():
            out.append(str(p))
        else:
            raise InputError(f"{item}: no such file or directory")
    return out


def run(
    inputs: list[str],
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    vmlinux: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(logs, reports) for every log; ``jobs`` > 1 spreads logs over processes.
    ``progress(n)`` is called as logs are done."""
    files = logs_in(inputs)
    results = []
    if jobs > 1 and len(files) > 1:
        # polars' thread pool does not survive fork(): start fresh interpreters.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            chunk = max(1, len(files) // (8 * jobs))
            work = functools.partial(triage_log, vmlinux=vmlinux)
            for result in pool.map(work, files, chunksize=chunk):
                results.append(result)
                if progress:
                    progress(1)
    else:
        for f in files:
            results.append(triage_log(f, vmlinux))
            if progress:
                progress(1)
    logs = pl.DataFrame([r for r, _ in results], schema=LOGS_SCHEMA)
    reports = pl.DataFrame([x for _, rs in results for x in rs], schema=REPORTS_SCHEMA)
    return logs, reports


def triage_part(files: list[str], out: str, vmlinux: str | None = None) -> str:
    """Triage ``files`` and write their logs and reports as one Parquet partition pair
    under ``out`` (shared storage, for a cluster); returns the partition's stem."""
    import hashlib
    import os

    results = [triage_log(f, vmlinux) for f in files]
    stem = hashlib.sha256("\0".join(files).encode()).hexdigest()[:16]
    where = Path(out)
    where.mkdir(parents=True, exist_ok=True)
    logs = pl.DataFrame([r for r, _ in results], schema=LOGS_SCHEMA)
    reports = pl.DataFrame([x for _, rs in results for x in rs], schema=REPORTS_SCHEMA)
    for name, frame in (("logs", logs), ("reports", reports)):
        tmp = where / f".{name}-{stem}.{os.getpid()}.tmp"
        frame.write_parquet(tmp)
        tmp.rename(where / f"{name}-{stem}.parquet")
    return stem


def run_dask(
    inputs: list[str],
    scheduler: str | None,
    out: Path,
    vmlinux: str | None = None,
    per_task: int = 64,
    progress: Callable[[int], None] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The same per-log work on a Dask distributed cluster (``scheduler`` is its
    address; None starts a local one): each task triages ``per_task`` logs and writes
    a Parquet partition under ``out``, which must be storage every worker and this
    process see; the partitions are then read back and reduced here."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError(
            "--engine dask needs the optional dependency: pip install 'tracetool[dask]'"
        ) from None
    files = logs_in(inputs)
    chunks = [files[i : i + per_task] for i in range(0, len(files), per_task)]
    cluster = (
        None if scheduler else LocalCluster(n_workers=2, threads_per_worker=1)  # type: ignore[no-untyped-call]
    )
    try:
        with Client(scheduler or cluster) as client:  # type: ignore[no-untyped-call]
            sizes = {}
            futures = []
            for chunk in chunks:
                future = client.submit(triage_part, chunk, str(out), vmlinux, pure=False)
                sizes[future.key] = len(chunk)
                futures.append(future)
            stems = []
            for done in as_completed(futures):  # type: ignore[no-untyped-call]
                stems.append(done.result())
                if progress:
                    progress(sizes[done.key])
    finally:
        if cluster is not None:
            cluster.close()
    logs = (
        pl.concat([pl.read_parquet(out / f"logs-{s}.parquet") for s in stems], how="vertical")
        if stems
        else pl.DataFrame(schema=LOGS_SCHEMA)
    )
    reports = (
        pl.concat([pl.read_parquet(out / f"reports-{s}.parquet") for s in stems], how="vertical")
        if stems
        else pl.DataFrame(schema=REPORTS_SCHEMA)
    )
    return logs.sort("log"), reports.sort("log", "line")


def group(logs: pl.DataFrame, reports: pl.DataFrame) -> pl.DataFrame:
    """One row per signature, ordered by how often it was seen (then by signature)."""
    when = reports.join(logs.select("log", "mtime"), on="log", how="left")
    return (
        when.sort("log", "line")
        .group_by("signature")
        .agg(
            count=pl.len(),
            logs=pl.col("log").n_unique(),
            first_seen=pl.col("mtime").min(),
            last_seen=pl.col("mtime").max(),
            kernels=pl.col("release").drop_nulls().unique().sort(),
            example=pl.format("{}:{}", pl.col("log"), pl.col("line")).first(),
            guilty=pl.col("guilty").drop_nulls().first(),
            location=pl.col("location").drop_nulls().first(),
            kind=pl.col("kind").first(),
            title=pl.col("title").first(),
        )
        .sort(["count", "signature"], descending=[True, False])
    )


def classify(groups: pl.DataFrame, known: list[KnownIssue]) -> pl.DataFrame:
    """``groups`` with ``class`` (new, known, regression) and ``bug``."""
    classes: list[str] = []
    bugs: list[str | None] = []
    for sig, kernels in zip(groups["signature"], groups["kernels"].to_list(), strict=True):
        issue = next((k for k in known if k.pattern.search(sig)), None)
        if issue is None:
            classes.append("new")
            bugs.append(None)
            continue
        bugs.append(issue.bug)
        seen = [release_key(k) for k in kernels or []]
        after = issue.fixed_in is not None and any(
            s is not None and s >= issue.fixed_in for s in seen
        )
        classes.append("regression" if issue.status == "fixed" and after else "known")
    return groups.with_columns(
        **{"class": pl.Series(classes, dtype=pl.String), "bug": pl.Series(bugs, dtype=pl.String)}
    )


def exit_code(logs: pl.DataFrame, groups: pl.DataFrame) -> int:
    """0 nothing new; 1 a new group or a regression; 2 a log could not be read;
    3 nothing new, but some logs had only inconclusive results."""
    if groups.height and groups["class"].is_in(["new", "regression"]).any():
        return 1
    if logs["error"].is_not_null().any():
        return 2
    if logs.height and (logs["inconclusive"] > 0).any():
        return 3
    return 0


def sarif(reports: pl.DataFrame, groups: pl.DataFrame) -> dict[str, Any]:
    """SARIF 2.1.0: a rule per group (its signature), a result per report located at
    the report's first line; new groups and regressions are errors, known ones notes."""
    from tracetool import __version__
    from tracetool.report import SARIF_SCHEMA, artifact_uri

    index = {sig: i for i, sig in enumerate(groups["signature"])}
    cls = dict(zip(groups["signature"], groups["class"], strict=True))
    bug = dict(zip(groups["signature"], groups["bug"], strict=True))
    rules = [
        {
            "id": f"triage/{i}",
            "name": sig,
            "shortDescription": {"text": sig},
            "properties": {"class": cls[sig]},
            **({"helpUri": bug[sig]} if bug[sig] else {}),
        }
        for sig, i in index.items()
    ]
    results = [
        {
            "ruleId": f"triage/{index[r['signature']]}",
            "ruleIndex": index[r["signature"]],
            "level": "error" if cls[r["signature"]] in ("new", "regression") else "note",
            "message": {"text": f"{cls[r['signature']]}: {r['title']}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": artifact_uri(r["log"])},
                        "region": {"startLine": max(1, int(r["line"] or 1))},
                    }
                }
            ],
            "properties": {"kind": r["kind"], "release": r["release"]},
        }
        for r in reports.iter_rows(named=True)
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {"name": "tracetool triage", "version": __version__, "rules": rules}
                },
                "results": results,
            }
        ],
    }


def append_history(history: Path, reports: pl.DataFrame, when: float) -> Path:
    """Append this triage's reports to the Parquet dataset under ``history``,
    partitioned by date (``date=YYYY-MM-DD/part-<time>.parquet``); returns the file."""
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(when, tz=dt.UTC)
    where = history / f"date={stamp:%Y-%m-%d}"
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"part-{stamp:%H%M%S}-{int(when * 1e6) % 1_000_000:06d}.parquet"
    reports.with_columns(triaged_at=pl.lit(stamp)).write_parquet(path)
    return path


def trend(history: Path) -> pl.DataFrame:
    """Counts per signature and date over every triage in ``history``."""
    files = sorted(history.glob("date=*/*.parquet"))
    if not files:
        raise InputError(f"{history}: no triage history yet (run triage with --history first)")
    return (
        pl.scan_parquet(files)
        .with_columns(date=pl.col("triaged_at").dt.date())
        .group_by("signature", "date")
        .agg(count=pl.len(), logs=pl.col("log").n_unique())
        .sort("signature", "date")
        .collect()
    )
