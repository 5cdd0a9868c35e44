"""ELF and DWARF read once with pyelftools into three polars tables.

* ``functions``: the symbol table's functions: ``name``, ``addr``, ``size``, ``bind``.
* ``lines``: the DWARF line program: one row per row of every sequence, ``addr``,
  ``file`` (the full path, as addr2line prints it), ``line``, ``discriminator`` and
  ``seq_end`` (where the row's sequence ends; an address past it has no line).
* ``scopes``: where each function body and inlined call is, flattened into
  non-overlapping segments ``lo``..``hi`` that each name the innermost ``scope``; and
  ``chains``: for each scope the list of frames from it outwards: the function's name,
  and where it was called from (``call_file``, ``call_line``; null for the outermost).

Reading walks every DIE and line-program row in Python; that is the cold start, paid
once per build-id (``tracetool.symbols`` caches the tables as Parquet).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from elftools.construct.lib.container import Container
from elftools.dwarf.compileunit import CompileUnit
from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo
from elftools.dwarf.ranges import BaseAddressEntry
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection, Symbol, SymbolTableSection

FUNCTIONS_SCHEMA = pl.Schema(
    {"name": pl.String, "addr": pl.UInt64, "size": pl.UInt64, "bind": pl.String}
)
LINES_SCHEMA = pl.Schema(
    {
        "addr": pl.UInt64,
        "file": pl.String,
        "line": pl.UInt32,
        "discriminator": pl.UInt32,
        "seq_end": pl.UInt64,
    }
)
SCOPES_SCHEMA = pl.Schema({"lo": pl.UInt64, "hi": pl.UInt64, "scope": pl.UInt32})
FRAMES_DTYPE: pl.DataType = pl.List(
    pl.Struct({"func": pl.String, "call_file": pl.String, "call_line": pl.UInt32})
)
CHAINS_SCHEMA = pl.Schema([("scope", pl.UInt32()), ("frames", FRAMES_DTYPE)])


@dataclass
class Tables:
    build_id: str | None
    machine: str
    big_endian: bool
    has_dwarf: bool
    functions: pl.DataFrame
    lines: pl.DataFrame
    scopes: pl.DataFrame
    chains: pl.DataFrame
    release: str | None = None  # a kernel's release, from its linux_banner


def kernel_release(elf: ELFFile) -> str | None:
    """The release in a vmlinux's ``linux_banner`` ("Linux version 6.0.0-rc3 (...)")."""
    symtab = elf.get_section_by_name(".symtab")
    if not isinstance(symtab, SymbolTableSection):
        return None
    for sym in symtab.get_symbol_by_name("linux_banner") or []:
        section = elf.get_section(sym["st_shndx"]) if isinstance(sym["st_shndx"], int) else None
        if section is None or section["sh_type"] == "SHT_NOBITS":
            continue
        start = sym["st_value"] - section["sh_addr"]
        data = section.data()[start : start + 256]
        text = data.split(b"\0", 1)[0].decode("ascii", "replace")
        if text.startswith("Linux version "):
            return text.split()[2]
    return None


def from_symbol_map(text: str) -> Tables:
    """Functions only, from a System.map or /proc/kallsyms ("ADDR TYPE NAME [module]"):
    text symbols, each running to the next symbol's address."""
    rows = (
        pl.DataFrame({"raw": text.splitlines()})
        .select(
            pl.col("raw").str.extract_groups(
                r"^\s*(?P<addr>[0-9a-fA-F]+)\s+(?P<type>[A-Za-z])\s+(?P<name>\S+)(?:\s+\[(?P<module>[^\]]+)\])?"
            )
        )
        .unnest("raw")
    )
    everything = (
        rows.filter(pl.col("addr").is_not_null())
        .with_columns(addr=pl.col("addr").str.to_integer(base=16).cast(pl.UInt64))
        .filter(pl.col("module").is_null() & (pl.col("addr") > 0))
        .sort("addr")
    )
    everything = everything.with_columns(
        size=(pl.col("addr").shift(-1) - pl.col("addr")).fill_null(0).cast(pl.UInt64)
    )
    functions = everything.filter(pl.col("type").is_in(["t", "T", "w", "W"])).select(
        "name",
        "addr",
        "size",
        bind=pl.when(pl.col("type").str.to_lowercase() == pl.col("type"))
        .then(pl.lit("local"))
        .otherwise(pl.lit("global")),
    )
    return Tables(
        None,
        "",
        False,
        False,
        functions.cast(dict(FUNCTIONS_SCHEMA)),  # type: ignore[arg-type]
        pl.DataFrame(schema=LINES_SCHEMA),
        pl.DataFrame(schema=SCOPES_SCHEMA),
        pl.DataFrame(schema=CHAINS_SCHEMA),
    )


def build_id(elf: ELFFile) -> str | None:
    """The GNU build-id note, as hex."""
    for section in elf.iter_sections():
        if section["sh_type"] != "SHT_NOTE":
            continue
        if not isinstance(section, NoteSection):
            continue
        for note in section.iter_notes():
            if note["n_type"] == "NT_GNU_BUILD_ID":
                return str(note["n_desc"])
    return None


def read_functions(elf: ELFFile, bases: dict[int, int] | None = None) -> pl.DataFrame:
    """Functions of the symbol table; in a relocatable object (a module), each at its
    section's base (``bases``) plus its offset."""
    rows: dict[str, list[Any]] = {"name": [], "addr": [], "size": [], "bind": []}
    for section in (elf.get_section_by_name(".symtab"), elf.get_section_by_name(".dynsym")):
        if not isinstance(section, SymbolTableSection):
            continue
        for sym in section.iter_symbols():
            if sym["st_info"]["type"] != "STT_FUNC" or not sym.name:
                continue
            if bases is None and sym["st_value"] == 0:
                continue  # an undefined function of an executable
            shndx = sym["st_shndx"]
            if bases is not None and not (isinstance(shndx, int) and shndx in bases):
                continue
            rows["name"].append(sym.name)
            rows["addr"].append(sym["st_value"] + (bases[shndx] if bases else 0))
            rows["size"].append(sym["st_size"])
            rows["bind"].append(sym["st_info"]["bind"].removeprefix("STB_").lower())
        if rows["name"]:
            break  # .dynsym only when there is no .symtab (a stripped binary)
    return pl.DataFrame(rows, schema=FUNCTIONS_SCHEMA).unique(["addr", "name"]).sort("addr")


def _file_names(dwarf: DWARFInfo, cu: Any, prog: Any) -> list[str]:
    """The line program's file table as full paths, indexed as the program's rows
    index it (from 1 before DWARF 5, from 0 in DWARF 5)."""
    top = cu.get_top_DIE()
    comp_dir = _str(top.attributes.get("DW_AT_comp_dir")) or ""
    version = prog["version"]
    dirs = [_str(d) for d in prog["include_directory"]]
    names = []
    for entry in prog["file_entry"]:
        name = _str(entry.name)
        d = entry.dir_index
        if version >= 5:
            base = dirs[d] if d < len(dirs) else ""
        else:
            base = comp_dir if d == 0 else dirs[d - 1]
        if base and not posixpath.isabs(base) and comp_dir and base != comp_dir:
            base = posixpath.join(comp_dir, base)
        names.append(name if posixpath.isabs(name) else posixpath.join(base, name))
    return names if version >= 5 else ["", *names]


def _str(value: Any) -> str:
    if value is None:
        return ""
    raw = value.value if hasattr(value, "value") else value
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def read_lines(dwarf: DWARFInfo) -> pl.DataFrame:
    addr: list[int] = []
    file: list[str] = []
    line: list[int] = []
    disc: list[int] = []
    seq_end: list[int] = []
    for cu in dwarf.iter_CUs():
        prog = dwarf.line_program_for_CU(cu)
        if prog is None:
            continue
        names = _file_names(dwarf, cu, prog)
        pending: list[int] = []  # rows of the current sequence, to get its end
        for entry in prog.get_entries():
            state = entry.state
            if state is None:
                continue
            if state.end_sequence:
                seq_end.extend([state.address] * len(pending))
                pending = []
                continue
            pending.append(len(addr))
            addr.append(state.address)
            f = state.file
            file.append(names[f] if 0 <= f < len(names) else "??")
            line.append(state.line)
            disc.append(state.discriminator)
        seq_end.extend([0] * len(pending))  # a sequence without its end: never matches
    frame = pl.DataFrame(
        {"addr": addr, "file": file, "line": line, "discriminator": disc, "seq_end": seq_end},
        schema=LINES_SCHEMA,
    )
    # Several rows at one address: the last one is the one that stands (as in bfd).
    return (
        frame.with_row_index("row")
        .sort("addr", "row")
        .unique("addr", keep="last", maintain_order=True)
        .drop("row")
    )


def _name(die: DIE) -> str:
    """A function's name, through DW_AT_abstract_origin or DW_AT_specification."""
    seen = 0
    while die is not None and seen < 8:
        if "DW_AT_name" in die.attributes:
            return _str(die.attributes["DW_AT_name"])
        ref = die.attributes.get("DW_AT_abstract_origin") or die.attributes.get(
            "DW_AT_specification"
        )
        if ref is None:
            break
        die = die.get_DIE_from_attribute(ref.name)
        seen += 1
    return "??"


def _ranges(dwarf: DWARFInfo, die: DIE, cu_base: int) -> list[tuple[int, int]]:
    attrs = die.attributes
    if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
        lo = attrs["DW_AT_low_pc"].value
        high = attrs["DW_AT_high_pc"]
        hi = high.value if high.form == "DW_FORM_addr" else lo + high.value
        return [(lo, hi)] if hi > lo else []
    if "DW_AT_ranges" in attrs:
        lists = dwarf.range_lists()
        if lists is None:
            return []
        out = []
        base = cu_base
        cu = die.cu if isinstance(die.cu, CompileUnit) else None
        for entry in lists.get_range_list_at_offset(attrs["DW_AT_ranges"].value, cu=cu):
            if isinstance(entry, BaseAddressEntry):
                base = entry.base_address
                continue
            absolute = getattr(entry, "is_absolute", False)
            lo = entry.begin_offset if absolute else base + entry.begin_offset
            hi = entry.end_offset if absolute else base + entry.end_offset
            if hi > lo:
                out.append((lo, hi))
        return out
    return []


def read_scopes(dwarf: DWARFInfo) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Function bodies and inlined calls: (segments, chains); see the module doc."""
    pieces: list[tuple[int, int, int, int]] = []  # lo, hi, depth, scope
    chains: list[list[dict[str, Any]]] = []
    for cu in dwarf.iter_CUs():
        top = cu.get_top_DIE()
        cu_base = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
        names = None
        prog = dwarf.line_program_for_CU(cu)
        if prog is not None:
            names = _file_names(dwarf, cu, prog)
        # (die, chain of the enclosing scope or None)
        stack: list[tuple[DIE, list[dict[str, Any]] | None, int]] = [(top, None, 0)]
        while stack:
            die, outer, depth = stack.pop()
            chain = outer
            tag = die.tag
            if tag in ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine"):
                ranges = _ranges(dwarf, die, cu_base)
                if ranges or tag == "DW_TAG_inlined_subroutine":
                    frame: dict[str, Any] = {
                        "func": _name(die),
                        "call_file": None,
                        "call_line": None,
                    }
                    if tag == "DW_TAG_inlined_subroutine" and outer is not None:
                        f = die.attributes.get("DW_AT_call_file")
                        ln = die.attributes.get("DW_AT_call_line")
                        if f is not None and names is not None and 0 <= f.value < len(names):
                            frame["call_file"] = names[f.value]
                        frame["call_line"] = ln.value if ln is not None else 0
                        chain = [frame, *outer]
                    elif tag == "DW_TAG_subprogram":
                        chain = [frame]
                    else:  # an inlined call outside any function body: skip
                        chain = outer
                    if chain is not None and chain is not outer:
                        scope = len(chains)
                        chains.append(chain)
                        for lo, hi in ranges:
                            pieces.append((lo, hi, depth, scope))
                        depth += 1
            for child in die.iter_children():
                stack.append((child, chain, depth))
    return _segments(pieces), pl.DataFrame(
        {"scope": list(range(len(chains))), "frames": chains}, schema=CHAINS_SCHEMA
    )


def _segments(pieces: list[tuple[int, int, int, int]]) -> pl.DataFrame:
    """Nested ranges -> non-overlapping segments naming the innermost range."""
    pieces.sort(key=lambda p: (p[0], -p[1], p[2]))
    out_lo: list[int] = []
    out_hi: list[int] = []
    out_scope: list[int] = []
    stack: list[tuple[int, int]] = []  # (hi, scope)
    pos = 0

    def emit(lo: int, hi: int, scope: int) -> None:
        if hi > lo:
            if out_scope and out_scope[-1] == scope and out_hi[-1] == lo:
                out_hi[-1] = hi
            else:
                out_lo.append(lo)
                out_hi.append(hi)
                out_scope.append(scope)

    for lo, hi, _, scope in pieces:
        while stack and stack[-1][0] <= lo:
            top_hi, top_scope = stack.pop()
            emit(pos, top_hi, top_scope)
            pos = max(pos, top_hi)
        if stack:
            emit(pos, lo, stack[-1][1])
        pos = lo
        stack.append((hi, scope))
    while stack:
        top_hi, top_scope = stack.pop()
        emit(pos, top_hi, top_scope)
        pos = max(pos, top_hi)
    return pl.DataFrame({"lo": out_lo, "hi": out_hi, "scope": out_scope}, schema=SCOPES_SCHEMA)


SECTION_STRIDE = 1 << 40  # a module's code sections, apart in one address space
SHF_EXECINSTR = 0x4


def section_bases(elf: ELFFile) -> dict[int, int] | None:
    """In a relocatable object (a kernel module), every code section starts at offset 0,
    so .text and .init.text would collide: give code section n the base n << 40. None
    for an executable or a vmlinux, whose addresses are already distinct."""
    if elf["e_type"] != "ET_REL":
        return None
    return {
        n: n * SECTION_STRIDE
        for n, section in enumerate(elf.iter_sections())
        if section["sh_flags"] & SHF_EXECINSTR
    }


@contextmanager
def _relocated_at(bases: dict[int, int] | None) -> Iterator[None]:
    """While DWARF is read, relocations against a code section (or a function in one)
    resolve to that section's base plus the symbol's offset, so the DWARF addresses of
    a module land where ``read_functions`` put its functions."""
    if not bases:
        yield
        return
    original = SymbolTableSection.get_symbol

    def get_symbol(self: SymbolTableSection, n: int) -> Any:
        sym = original(self, n)
        shndx = sym["st_shndx"]
        if isinstance(shndx, int) and shndx in bases:
            entry = dict(sym.entry)
            entry["st_value"] = sym["st_value"] + bases[shndx]
            return Symbol(Container(**entry), sym.name)
        return sym

    SymbolTableSection.get_symbol = get_symbol  # type: ignore[method-assign]
    try:
        yield
    finally:
        SymbolTableSection.get_symbol = original  # type: ignore[method-assign]


def read(path: str) -> Tables:
    with Path(path).open("rb") as f:
        elf = ELFFile(f)
        bases = section_bases(elf)
        functions = read_functions(elf, bases)
        has_dwarf = elf.has_dwarf_info() and elf.get_section_by_name(".debug_info") is not None
        if has_dwarf:
            with _relocated_at(bases):
                dwarf = elf.get_dwarf_info()
                lines = read_lines(dwarf)
                scopes, chains = read_scopes(dwarf)
        else:
            lines = pl.DataFrame(schema=LINES_SCHEMA)
            scopes = pl.DataFrame(schema=SCOPES_SCHEMA)
            chains = pl.DataFrame(schema=CHAINS_SCHEMA)
        return Tables(
            build_id(elf),
            elf["e_machine"],
            not elf.little_endian,
            has_dwarf,
            functions,
            lines,
            scopes,
            chains,
            kernel_release(elf),
        )
