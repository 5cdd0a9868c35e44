"""Parquet cache of parsed inputs, so a second command on a trace starts from columns.

Keyed by the input's resolved path, size and mtime, the tool version, the catalogue's
content and the parse options. Lives in ``$TRACETOOL_CACHE_DIR``, else
``$XDG_CACHE_HOME/tracetool``, else ``~/.cache/tracetool``; never next to the input.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

from tracetool import __version__
from tracetool._builtin import builtin
from tracetool.events import InputInfo, Parsed, Trace, scan_events
from tracetool.inputs import Source


def directory() -> Path:
    """The cache root."""
    explicit = os.environ.get("TRACETOOL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tracetool"


def _catalogue_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(builtin("parsers").glob("*.toml")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def key(source: Source, format: str | None, kv: bool) -> str | None:
    """Cache key of a file input, or None when it cannot be cached."""
    if source.path is None:
        return None
    try:
        stat = source.path.stat()
    except OSError:
        return None
    ident = [
        str(source.path.resolve()),
        str(stat.st_size),
        str(stat.st_mtime_ns),
        __version__,
        _catalogue_digest(),
        format or "",
        str(kv),
        source.name,
    ]
    return hashlib.sha256("\0".join(ident).encode()).hexdigest()[:32]


def load(cache_key: str) -> Parsed | None:
    """The cached frames (lazy Parquet scans) and input facts, or None on a miss."""
    entry = directory() / cache_key
    meta = entry / "info.json"
    if not meta.is_file():
        return None
    try:
        info = InputInfo(**json.loads(meta.read_text()))
    except (ValueError, TypeError):
        return None
    info.cached = True
    records = {
        path.stem.removeprefix("records-"): pl.scan_parquet(path)
        for path in sorted(entry.glob("records-*.parquet"))
    }
    return Parsed(
        scan_events(str(entry / "events-*.parquet")),
        pl.scan_parquet(entry / "diagnostics.parquet"),
        pl.scan_parquet(entry / "losses.parquet"),
        records,
        info,
    )


def begin() -> Path:
    """A fresh directory inside the cache root for an entry being written; a parse that
    dies leaves only a ``.tmp-*`` directory, never a half-written entry."""
    root = directory()
    try:
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError:
        # A cache that cannot be written (read-only home, full disk) is not an error:
        # the parse still happens, in scratch space.
        return scratch()


def commit(
    tmp: Path,
    cache_key: str,
    diagnostics: pl.DataFrame,
    losses: pl.DataFrame,
    records: dict[str, pl.DataFrame],
    info: InputInfo,
) -> bool:
    """Complete the entry begun in ``tmp`` and move it into place atomically."""
    try:
        diagnostics.write_parquet(tmp / "diagnostics.parquet")
        losses.write_parquet(tmp / "losses.parquet")
        for name, table in records.items():
            table.write_parquet(tmp / f"records-{name}.parquet")
        (tmp / "info.json").write_text(json.dumps(dataclasses.asdict(info)))
        final = directory() / cache_key
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        return True
    except OSError:
        # The trace being returned still reads the parts in tmp; drop them at exit.
        _remove_at_exit(tmp)
        return False


@functools.cache
def _code_digest() -> str:
    """The package's own source: a derived table is only as current as the code that
    built it, and the version number does not move with every change."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _derived_path(trace: Trace, name: str, params: str) -> Path | None:
    """Where a table built from ``trace`` is kept: keyed by every input's cache entry
    and clock, ``name``, ``params`` and the code; None when an input has no cache entry
    (stdin, a text snippet, --no-cache)."""
    if not trace.inputs or any(i.cache_key is None for i in trace.inputs):
        return None
    ident = [name, params, __version__, _code_digest()]
    for info in trace.inputs:
        ident += [str(info.cache_key), json.dumps(info.meta.get("clock"), sort_keys=True)]
    digest = hashlib.sha256(chr(0).join(ident).encode()).hexdigest()[:32]
    return directory() / "derived" / f"{name}-{digest}"


def derived(
    trace: Trace, name: str, params: str, build: Callable[[], pl.DataFrame]
) -> pl.DataFrame:
    """``build()``, kept in the cache beside the inputs it was built from (see
    ``_derived_path``); built every time when an input has no cache entry."""
    where = _derived_path(trace, name, params)
    if where is None:
        return build()
    path = where.with_suffix(".parquet")
    if path.is_file():
        try:
            return pl.read_parquet(path)
        except (OSError, pl.exceptions.ComputeError):
            pass  # a damaged entry is rebuilt below
    table = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        table.write_parquet(tmp)
        tmp.rename(path)
    except OSError:
        pass  # an unwritable cache is not an error
    return table


def cached_parts(trace: Trace, name: str, params: str) -> Path | None:
    """The directory ``derived_parts`` keeps for these arguments, if it was built."""
    where = _derived_path(trace, name, params)
    return where if where is not None and where.is_dir() else None


def derived_parts(trace: Trace, name: str, params: str, build: Callable[[Path], object]) -> Path:
    """A directory of Parquet parts that ``build(directory)`` writes, kept in the cache
    like ``derived`` (complete entries only: it is built aside and renamed), or in a
    scratch directory when an input has no cache entry or the cache is unwritable."""
    where = cached_parts(trace, name, params)
    if where is not None:
        return where
    where = _derived_path(trace, name, params)
    if where is not None:
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=where.parent))
        except OSError:
            where = None
    if where is None:
        out = scratch()
        build(out)
        return out
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        tmp.rename(where)
    except OSError:  # another process kept its build first, or the cache is read-only
        if not where.is_dir():
            _remove_at_exit(tmp)
            return tmp
        shutil.rmtree(tmp, ignore_errors=True)
    return where


_SCRATCH: list[Path] = []


def scratch() -> Path:
    """A temporary directory for the event parts of an uncached parse (stdin,
    ``--no-cache``); removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="tracetool-"))
    _remove_at_exit(path)
    return path


def _remove_at_exit(path: Path) -> None:
    if not _SCRATCH:
        atexit.register(_remove_scratch)
    _SCRATCH.append(path)


def _remove_scratch() -> None:
    for path in _SCRATCH:
        shutil.rmtree(path, ignore_errors=True)


def clear() -> int:
    """Remove every entry; return how many there were."""
    root = directory()
    if not root.is_dir():
        return 0
    entries = [p for p in root.iterdir() if p.is_dir()]
    for entry in entries:
        shutil.rmtree(entry, ignore_errors=True)
    return len(entries)
