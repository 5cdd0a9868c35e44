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
from dataclasses import dataclass, replace
from pathlib import Path

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


class Modules:
    """The modules under a directory (``--modules``), loaded as frames name them."""

    def __init__(self, root: Path, use_cache: bool = True) -> None:
        self.root = root
        self.use_cache = use_cache
        self.loaded: dict[str, Binary | None] = {}
        self.notes: list[str] = []

    def find(self, name: str) -> Path | None:
        """NAME.ko under the root; module names use '_' where file names may use '-'."""
        for candidate in sorted({name, name.replace("_", "-"), name.replace("-", "_")}):
            hits = sorted(self.root.rglob(f"{candidate}.ko"))
            if hits:
                return hits[0]
        return None

    def get(self, name: str) -> Binary | None:
        if name not in self.loaded:
            path = self.find(name)
            if path is None:
                self.notes.append(
                    f"{self.root}: no {name}.ko (compressed .ko.xz/.ko.zst are not read: "
                    "unpack them); its frames stay unresolved"
                )
            self.loaded[name] = load(path, use_cache=self.use_cache) if path else None
        return self.loaded[name]

    def resolve(self, name: str, frames: pl.DataFrame) -> pl.DataFrame:
        """``frames`` (func, off) of module ``name`` resolved in it: func+off is an
        offset into the function, wherever the module was loaded."""
        module = self.get(name)
        if module is None:
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
    trace: Trace, vmlinux: Path, modules: Path | None = None, use_cache: bool = True
) -> tuple[Trace, list[str]]:
    """``trace`` with its crash reports symbolized (``sources``, and ``location`` from
    the guilty frame where the report printed none), and notes for the user."""
    from tracetool.symbols.frames import locate_guilty, symbolize_reports

    binary = load(vmlinux, use_cache=use_cache)
    mods = Modules(modules, use_cache=use_cache) if modules else None
    crashes = trace.table("crashes").collect()
    done, _ = symbolize_reports(crashes, binary.tables, mods.resolve if mods else None)
    records = {**trace.records, "crashes": locate_guilty(done).lazy()}
    return replace(trace, records=records), list(mods.notes if mods else [])
