"""Symbolization: addresses and ``func+0x1a/0x80`` frames to function, ``file:line`` and
inline chain, from an ELF with DWARF (a vmlinux, a module, any binary), in bulk.

``load(path)`` reads the ELF once (``tables``) and caches its tables as Parquet keyed
by the ELF's build-id, so a second run reads columns instead of DWARF. ``resolve``
(``resolve.resolve``) joins sorted addresses against them; ``frames`` finds the frames
a kernel log or trace prints and gives each its address.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from tracetool import cache
from tracetool.errors import InputError
from tracetool.events import Trace
from tracetool.symbols import tables as tables_mod
from tracetool.symbols.resolve import resolve
from tracetool.symbols.tables import Tables

__all__ = ["Binary", "Modules", "load", "load_symbol_map", "resolve", "symbolize_trace"]

# Bump when the tables' content or layout changes: old cache entries are then ignored.
TABLES_VERSION = "1"
_NAMES = ("functions", "lines", "scopes", "chains")


@dataclass
class Binary:
    path: Path
    tables: Tables
    cached: bool  # the tables came from the cache

    @property
    def build_id(self) -> str | None:
        return self.tables.build_id

    def resolve(self, addrs: pl.DataFrame, column: str = "addr") -> pl.DataFrame:
        return resolve(self.tables, addrs, column)


def _key(path: Path, build_id: str | None) -> str:
    if build_id:
        return f"{build_id}-v{TABLES_VERSION}"
    st = path.stat()
    raw = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:v{TABLES_VERSION}"
    return "nobuildid-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def _peek_build_id(path: Path) -> tuple[str | None, str, bool]:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            return tables_mod.build_id(elf), elf["e_machine"], not elf.little_endian
    except ELFError as e:
        raise InputError(
            f"{path}: not an ELF file ({e}); give a vmlinux, module or binary"
        ) from None


def load(path: str | Path, use_cache: bool = True) -> Binary:
    """The tables of the ELF at ``path``, from the cache when its build-id is there."""
    path = Path(path)
    try:
        build_id, machine, big_endian = _peek_build_id(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    where = cache.directory() / "symbols" / _key(path, build_id)
    if use_cache and (where / "meta.json").is_file():
        meta = json.loads((where / "meta.json").read_text())
        frames = {n: pl.read_parquet(where / f"{n}.parquet") for n in _NAMES}
        return Binary(
            path,
            Tables(
                build_id,
                machine,
                big_endian,
                meta["has_dwarf"],
                **frames,
                release=meta.get("release"),
            ),
            cached=True,
        )
    t = tables_mod.read(str(path))
    if use_cache:
        tmp = where.with_name(where.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        for n in _NAMES:
            getattr(t, n).write_parquet(tmp / f"{n}.parquet")
        (tmp / "meta.json").write_text(
            json.dumps(
                {
                    "has_dwarf": t.has_dwarf,
                    "path": str(path),
                    "machine": machine,
                    "release": t.release,
                }
            )
        )
        if where.exists():
            for f in where.iterdir():
                f.unlink()
            where.rmdir()
        tmp.rename(where)
    return Binary(path, t, cached=False)


def load_symbol_map(path: str | Path) -> Binary:
    """Functions only, from a System.map or a saved /proc/kallsyms: the fallback when
    no vmlinux is at hand (no source lines, no inline chains)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    t = tables_mod.from_symbol_map(text)
    if t.functions.height == 0:
        raise InputError(
            f"{path}: no text symbols; a System.map or kallsyms file has lines like "
            "'ffffffff81000000 T _text'"
        )
    return Binary(path, t, cached=False)


MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")
_BUILD_ID = re.compile(r"^[0-9a-f]{16,64}$")


def module_name(printed: str) -> tuple[str, str | None]:
    """The module and the build-id a ``[module]`` frame suffix names: kernels built
    with CONFIG_STACKTRACE_BUILD_ID print ``[nvme 3f2a...]``."""
    name, _, rest = printed.strip().partition(" ")
    tag = rest.strip()
    return name, tag if _BUILD_ID.match(tag) else None


def unpacked(path: Path) -> Path:
    """``path`` itself, or for a compressed module (``.ko.xz``, ``.ko.gz``, ``.ko.zst``)
    an unpacked copy in the cache (the ELF reader needs a seekable file); the original
    is never touched."""
    suffix = path.suffix
    if suffix == ".ko":
        return path
    st = path.stat()
    raw = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    out = cache.directory() / "modules" / (hashlib.sha256(raw.encode()).hexdigest()[:24] + ".ko")
    if out.is_file():
        return out
    if suffix == ".xz":
        opener = lzma.open
    elif suffix == ".gz":
        import gzip

        opener = gzip.open  # type: ignore[assignment]
    else:
        try:
            import zstandard
        except ImportError:
            raise InputError(
                f"{path}: is zstd-compressed and the optional 'zstandard' package is not "
                "installed; run: pip install 'tracetool[zstd]' (or unpack it with zstd -d)"
            ) from None

        def opener(p: Path, mode: str = "rb") -> Any:  # type: ignore[misc]
            return zstandard.ZstdDecompressor().stream_reader(p.open("rb"), closefd=True)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    try:
        with opener(path, "rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError, lzma.LZMAError) as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot unpack: {e}") from None
    tmp.replace(out)
    return out


class Modules:
    """The modules under a directory (``--modules``), loaded as frames name them:
    ``NAME.ko``, or compressed as distributions ship them (``.ko.xz``, ``.ko.gz``,
    ``.ko.zst``)."""

    def __init__(self, root: Path, use_cache: bool = True) -> None:
        self.root = root
        self.use_cache = use_cache
        self.loaded: dict[str, Binary | None] = {}
        self.notes: list[str] = []

    def find(self, name: str) -> Path | None:
        """The module file under the root; module names use '_' where file names may
        use '-'."""
        for candidate in sorted({name, name.replace("_", "-"), name.replace("-", "_")}):
            for suffix in MODULE_SUFFIXES:
                hits = sorted(self.root.rglob(f"{candidate}{suffix}"))
                if hits:
                    return hits[0]
        return None

    def get(self, name: str) -> Binary | None:
        if name not in self.loaded:
            path = self.find(name)
            if path is None:
                self.notes.append(
                    f"{self.root}: no {name}.ko (nor .ko.xz/.ko.gz/.ko.zst); its frames "
                    "stay unresolved"
                )
            self.loaded[name] = load(unpacked(path), use_cache=self.use_cache) if path else None
        return self.loaded[name]

    def resolve(self, printed: str, frames: pl.DataFrame) -> pl.DataFrame:
        """``frames`` (func, off) of the module a frame suffix names, resolved in it:
        func+off is an offset into the function, wherever the module was loaded. When
        the log printed the module's build-id and it is not the file's, the frames stay
        unresolved (its lines would be another build's) and a note says so."""
        name, printed_id = module_name(printed)
        module = self.get(name)
        if module is None:
            return pl.DataFrame()
        if printed_id and module.build_id and printed_id != module.build_id:
            note = (
                f"{module.path}: build-id {module.build_id}, but the log's {name} frames "
                f"were printed by build-id {printed_id}: not the module that ran; its frames "
                "stay unresolved (give the matching .ko)"
            )
            if note not in self.notes:
                self.notes.append(note)
            return pl.DataFrame()
        funcs = module.tables.functions.select(func="name", __m_addr="addr").unique(
            "func", keep="first"
        )
        placed = (
            frames.drop("addr", strict=False)
            .join(funcs, on="func", how="left")
            .with_columns(addr=pl.col("__m_addr") + pl.col("off"), how=pl.lit("module"))
            .drop("__m_addr")
            .filter(pl.col("addr").is_not_null())
        )
        return module.resolve(placed)


def symbolize_trace(
    trace: Trace,
    vmlinux: Path,
    modules: Path | None = None,
    use_cache: bool = True,
    stacks: bool = False,
) -> tuple[Trace, list[str]]:
    """``trace`` with its crash reports symbolized (``sources``, and ``location`` from
    the guilty frame where the report printed none), and notes for the user. With
    ``stacks``, the events' stacks too (``stack_src``, see ``frames.symbolize_stacks``)."""
    from tracetool.symbols.frames import locate_guilty, symbolize_reports, symbolize_stacks

    binary = load(vmlinux, use_cache=use_cache)
    mods = Modules(modules, use_cache=use_cache) if modules else None
    resolve_module = mods.resolve if mods else None
    crashes = trace.table("crashes").collect()
    done, _ = symbolize_reports(crashes, binary.tables, resolve_module)
    records = {**trace.records, "crashes": locate_guilty(done).lazy()}
    out = replace(trace, records=records)
    notes = [f"{vmlinux}: build-id {binary.build_id or 'none'}"]
    built = binary.tables.release
    seen = sorted(set(crashes["release"].drop_nulls().to_list())) if crashes.height else []
    if built and any(r != built for r in seen):
        notes.append(
            f"warning: the reports come from kernel {', '.join(seen)} but {vmlinux} is "
            f"{built}: lines may be wrong; give the log's own vmlinux"
        )
    if not binary.tables.has_dwarf:
        notes.append(f"{vmlinux}: no DWARF (.debug_info): functions only, no source lines")
    if stacks:
        events = symbolize_stacks(trace.events.collect(), binary.tables, resolve_module)
        placed = events.select(
            pl.col("stack_src")
            .list.eval(pl.element().struct.field("file").is_not_null())
            .explode()
            .sum()
        ).item()
        notes.append(f"{placed or 0} stack frame(s) given a source line (events' stack_src)")
        out = replace(out, events=events.lazy())
    return out, notes + list(mods.notes if mods else [])
