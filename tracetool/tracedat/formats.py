"""Event format files (tracefs ``events/SYSTEM/EVENT/format``) parsed into layouts.

A layout lists every field with its offset and size in the record, whether it is
signed, an array (``char comm[16]``), a ``__data_loc``/``__rel_loc`` dynamic array (a
32-bit word: offset in the low 16 bits, length in the high 16), or a trailing
variable-length array (``char buf[]``), and keeps the event's ``print fmt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tracetool.tracedat.errors import TraceDatError

_FIELD = re.compile(
    r"^\s*field:\s*(?P<decl>[^;]*);\s*offset:\s*(?P<offset>\d+);\s*size:\s*(?P<size>\d+);"
    r"(?:\s*signed:\s*(?P<signed>\d+);)?",
    re.M,
)
_DECL = re.compile(r"^(?P<type>.*?)\s*(?P<name>[A-Za-z_]\w*)\s*(?:\[(?P<len>[^\]]*)\])?\s*$")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    offset: int
    size: int
    signed: bool
    array: int | None = None  # element count of a fixed array; 0 for "name[]"
    dynamic: str | None = None  # "data_loc" or "rel_loc"

    @property
    def is_string(self) -> bool:
        base = self.type.replace("const", "").replace("unsigned", "").replace("signed", "")
        return base.replace("[]", "").strip() == "char" and (
            self.array is not None or bool(self.dynamic)
        )

    @property
    def elem_size(self) -> int:
        if self.array:
            return max(1, self.size // self.array)
        if self.dynamic or self.array == 0:
            base = self.type.replace("[]", "").strip()
            for name, size in _ELEM_SIZES.items():
                if base.endswith(name):
                    return size
            return 1
        return self.size


_ELEM_SIZES = {
    "char": 1,
    "u8": 1,
    "s8": 1,
    "short": 2,
    "u16": 2,
    "s16": 2,
    "int": 4,
    "u32": 4,
    "s32": 4,
    "long": 8,
    "u64": 8,
    "s64": 8,
}


@dataclass
class EventFormat:
    """One event's layout: ``id``, ``system``, ``name``, fields and the print fmt."""

    id: int
    system: str
    name: str
    fields: list[Field]
    common: list[Field]
    print_fmt: str
    by_name: dict[str, Field] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name = {f.name: f for f in [*self.common, *self.fields]}


def parse_field(decl: str, offset: int, size: int, signed: bool) -> Field:
    dynamic = None
    for tag, kind in (("__data_loc", "data_loc"), ("__rel_loc", "rel_loc")):
        if decl.startswith(tag):
            dynamic = kind
            decl = decl[len(tag) :].strip()
    m = _DECL.match(decl.replace("[]", "", 1) if dynamic else decl)
    if not m:
        raise ValueError(f"cannot read field declaration {decl!r}")
    array = None
    if m.group("len") is not None:
        text = m.group("len").strip()
        array = (
            int(text, 0) if re.fullmatch(r"\d+|0x[0-9a-fA-F]+", text) else (0 if not text else None)
        )
        if array is None:  # a length given by a macro: the size says it
            array = size
    ftype = m.group("type").strip() + ("[]" if dynamic else "")
    return Field(m.group("name"), ftype, offset, size, signed, array, dynamic)


def parse_format(text: str, system: str, file: str, where: str) -> EventFormat:
    """One format file; ``where`` names it in errors."""
    name = re.search(r"^name:\s*(\S+)", text, re.M)
    ident = re.search(r"^ID:\s*(\d+)", text, re.M)
    if not name or not ident:
        raise TraceDatError(file, 0, f"expected name: and ID: lines in {where}", "")
    common: list[Field] = []
    fields: list[Field] = []
    body = text.split("format:", 1)[-1].split("print fmt:", 1)[0]
    # The common fields come first, separated from the event's own by a blank line.
    groups = re.split(r"\n\s*\n", body.strip("\n"))
    for i, group in enumerate(groups):
        for m in _FIELD.finditer(group):
            try:
                f = parse_field(
                    m.group("decl").strip(),
                    int(m.group("offset")),
                    int(m.group("size")),
                    m.group("signed") == "1",
                )
            except ValueError as exc:
                raise TraceDatError(file, 0, f"{where}: {exc}", "") from None
            (common if i == 0 and len(groups) > 1 else fields).append(f)
    pf = text.split("print fmt:", 1)
    return EventFormat(
        int(ident.group(1)),
        system,
        name.group(1),
        fields,
        common,
        pf[1].strip() if len(pf) > 1 else "",
    )


def parse_header_page(text: str) -> dict[str, Field]:
    """The header page's fields (timestamp, commit, overwrite, data)."""
    out: dict[str, Field] = {}
    for m in _FIELD.finditer(text):
        decl = m.group("decl").strip()
        f = parse_field(
            decl, int(m.group("offset")), int(m.group("size")), m.group("signed") == "1"
        )
        out.setdefault(f.name, f)
    return out
