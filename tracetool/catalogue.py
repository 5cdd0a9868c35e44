"""Loading ``parsers/*.toml``: the formats we read and the fields each event declares."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tracetool._builtin import builtin
from tracetool.errors import CatalogueError, UnknownName, closest
from tracetool.events import DTYPES, ENGINE_FIELDS, PROBE_FIELDS

_FORMAT_KEYS = {
    "description",
    "engine",
    "inherit",
    "sniff",
    "sniff_strong",
    "line",
    "lines",
    "events",
    "examples",
    "nocontext",
    "dialect",
    "reports",
}
_EVENT_KEYS = {"pattern", "fields", "device", "description", "probe"}
# ``probe``: the probe a printed line reports (bpftrace printf formats name no function),
# so the timeline can pair entries and returns as it does for kprobe events.
_PROBE_KEY = re.compile(r"^(?P<probe>kprobe|kretprobe|uprobe|uretprobe):(?P<func>[\w.]+)$")
_LINE_KEYS = {"name", "kind", "prefix", "pattern", "description", "window"}
# Where a loss marker's events were lost: on its CPU between that CPU's events around
# it (markers with a cpu group), between the events around it on any CPU, or anywhere
# in the input.
_WINDOWS = {"cpu", "neighbours", "input"}
_LINE_KINDS = {"loss", "header"}


@dataclass(frozen=True)
class EventSpec:
    """An event whose payload the format declares: regexes and typed fields."""

    name: str
    patterns: tuple[str, ...]
    fields: dict[str, str]
    device: str | None = None
    probe: tuple[str, str] | None = None  # ("kprobe", "s390_iommu_attach_device")


@dataclass(frozen=True)
class LineClass:
    """A non-event line the format recognises (loss marker, preamble)."""

    name: str
    kind: str
    prefix: str
    pattern: str
    window: str = "input"  # loss markers: see _WINDOWS


@dataclass(frozen=True)
class FormatSpec:
    """One ``parsers/<name>.toml``."""

    name: str
    path: Path
    description: str
    engine: str
    sniff: tuple[str, ...]
    sniff_strong: tuple[str, ...]
    line: tuple[str, ...]  # alternative grammars, tried in order
    lines: tuple[LineClass, ...]
    nocontext: str | None  # grammar of prefix-less lines (ftrace's nocontext-info)
    dialect: str  # "kernel" or "trace-cmd": who printed the text (see ftrace.Dialect)
    events: dict[str, EventSpec]
    # Engine-specific grammar of multi-line records (dmesg crash reports), validated by
    # the engine that reads it.
    reports: dict[str, Any] = field(default_factory=dict)

    def sniff_score(self, head: list[str]) -> int:
        """How many of the first lines look like this format (strong markers count 1000)."""
        strong = [re.compile(p) for p in self.sniff_strong]
        weak = [re.compile(p) for p in self.sniff]
        score = 0
        for text in head:
            if any(p.search(text) for p in strong):
                score += 1000
            elif any(p.search(text) for p in weak):
                score += 1
        return score


def _check_regex(path: Path, where: str, pattern: str) -> list[str]:
    # Polars (Rust regex) is the engine that runs these, so it is the one that validates.
    try:
        names = re.compile(pattern).groupindex
        pl.select(pl.lit("").str.contains(pattern)).item()
    except (re.error, pl.exceptions.ComputeError) as exc:
        raise CatalogueError(path, f"{where}: invalid regex: {exc}") from None
    return list(names)


def _load_events(path: Path, raw: dict[str, Any]) -> dict[str, EventSpec]:
    events: dict[str, EventSpec] = {}
    for name, spec in raw.items():
        unknown = set(spec) - _EVENT_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise CatalogueError(
                path, f"events.{name}: unknown key {key!r}{closest(key, _EVENT_KEYS)}"
            )
        patterns = spec.get("pattern")
        if isinstance(patterns, str):
            patterns = [patterns]
        if not patterns:
            raise CatalogueError(path, f"events.{name}: needs a 'pattern'")
        fields = dict(spec.get("fields", {}))
        for fname, ftype in fields.items():
            if ftype not in DTYPES:
                raise CatalogueError(
                    path,
                    f"events.{name}.fields.{fname}: unknown type {ftype!r}"
                    f"{closest(ftype, DTYPES)} (known: {', '.join(DTYPES)})",
                )
        for i, pattern in enumerate(patterns):
            groups = _check_regex(path, f"events.{name}.pattern[{i}]", pattern)
            extra = set(groups) - set(fields)
            if extra:
                raise CatalogueError(
                    path,
                    f"events.{name}.pattern[{i}]: group(s) {sorted(extra)} "
                    "have no type in 'fields'",
                )
        device = spec.get("device")
        if device is not None and device not in fields:
            raise CatalogueError(path, f"events.{name}.device: {device!r} is not one of its fields")
        probe = spec.get("probe")
        if probe is not None:
            m = _PROBE_KEY.match(str(probe))
            if not m:
                raise CatalogueError(
                    path,
                    f"events.{name}.probe: {probe!r} is not 'kprobe:FUNC', 'kretprobe:FUNC', "
                    "'uprobe:FUNC' or 'uretprobe:FUNC'",
                )
            probe = (m["probe"], m["func"])
        events[name] = EventSpec(name, tuple(patterns), fields, device, probe)
    return events


_DIALECTS = ("kernel", "trace-cmd")


def _dialect(path: Path, raw: dict[str, Any]) -> str:
    # Not inherited: a format that inherits trace-cmd's events is not trace-cmd's text.
    dialect = str(raw.get("dialect", "kernel"))
    if dialect not in _DIALECTS:
        raise CatalogueError(
            path, f"dialect must be one of {', '.join(_DIALECTS)}, not {dialect!r}"
        )
    return dialect


def _nocontext(path: Path, raw: dict[str, Any], inherited: FormatSpec | None) -> str | None:
    grammar = raw.get("nocontext", inherited.nocontext if inherited else None)
    if grammar is not None:
        _check_regex(path, "nocontext", grammar)
    return grammar


def _reports(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """The ``[reports]`` table; every string or list of strings in it is a regex, and
    ``titles`` is a list of ``{kind, pattern, title[, continues]}``."""
    reports = dict(raw.get("reports", {}))
    for key, value in reports.items():
        if key == "titles":
            for i, entry in enumerate(value):
                missing = {"kind", "pattern", "title"} - set(entry)
                if missing:
                    raise CatalogueError(path, f"reports.titles[{i}]: needs {sorted(missing)}")
                extra = set(entry) - {"kind", "pattern", "title", "continues"}
                if extra:
                    raise CatalogueError(
                        path, f"reports.titles[{i}]: unknown key {sorted(extra)[0]!r}"
                    )
                _check_regex(path, f"reports.titles[{i}].pattern", entry["pattern"])
        elif isinstance(value, str):
            _check_regex(path, f"reports.{key}", value)
        else:
            for i, pattern in enumerate(value):
                _check_regex(path, f"reports.{key}[{i}]", pattern)
    return reports


def load_format(path: Path, inherited: FormatSpec | None = None) -> FormatSpec:
    """Load and validate one format file."""
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(path, f"not valid TOML: {exc}") from None
    unknown = set(raw) - _FORMAT_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise CatalogueError(path, f"unknown key {key!r}{closest(key, _FORMAT_KEYS)}")
    for key in ("description", "engine"):
        if key not in raw:
            raise CatalogueError(path, f"missing required key {key!r}")
    from tracetool.engines import ENGINES  # the registry imports the catalogue

    if raw["engine"] not in ENGINES:
        raise CatalogueError(
            path,
            f"unknown engine {raw['engine']!r}{closest(raw['engine'], ENGINES)} "
            f"(known: {', '.join(sorted(ENGINES))})",
        )
    events = dict(inherited.events) if inherited else {}
    events.update(_load_events(path, raw.get("events", {})))
    lines = list(inherited.lines) if inherited else []
    for i, spec in enumerate(raw.get("lines", [])):
        unknown = set(spec) - _LINE_KEYS
        if unknown:
            raise CatalogueError(path, f"lines[{i}]: unknown key {sorted(unknown)[0]!r}")
        if spec.get("kind") not in _LINE_KINDS:
            raise CatalogueError(path, f"lines[{i}]: kind must be one of {sorted(_LINE_KINDS)}")
        _check_regex(path, f"lines[{i}].pattern", spec["pattern"])
        window = spec.get(
            "window", "cpu" if "cpu" in re.compile(spec["pattern"]).groupindex else "input"
        )
        if window not in _WINDOWS:
            raise CatalogueError(
                path, f"lines[{i}].window: {window!r} is not one of {', '.join(sorted(_WINDOWS))}"
            )
        lines.append(
            LineClass(spec["name"], spec["kind"], spec.get("prefix", ""), spec["pattern"], window)
        )
    line = raw.get("line", list(inherited.line) if inherited else [])
    line = [line] if isinstance(line, str) else list(line)
    for i, grammar in enumerate(line):
        _check_regex(path, f"line[{i}]", grammar)
    return FormatSpec(
        name=path.stem,
        path=path,
        description=raw["description"].strip(),
        engine=raw["engine"],
        sniff=tuple(raw.get("sniff", [])),
        sniff_strong=tuple(raw.get("sniff_strong", [])),
        line=tuple(line),
        lines=tuple(lines),
        nocontext=_nocontext(path, raw, inherited),
        dialect=_dialect(path, raw),
        events=events,
        reports=_reports(path, raw),
    )


@functools.cache
def formats(directory: Path | None = None) -> dict[str, FormatSpec]:
    """All formats in ``directory`` (default: the built-in ``parsers/``), by name."""
    directory = directory or builtin("parsers")
    paths = sorted(directory.glob("*.toml"))
    raws = {p.stem: tomllib.loads(p.read_text()) for p in paths}
    loaded: dict[str, FormatSpec] = {}

    def load(name: str, chain: tuple[str, ...] = ()) -> FormatSpec:
        if name in loaded:
            return loaded[name]
        if name in chain:
            raise CatalogueError(directory / f"{name}.toml", f"inherit cycle: {' -> '.join(chain)}")
        parent_name = raws[name].get("inherit")
        parent = None
        if parent_name:
            if parent_name not in raws:
                raise UnknownName("format to inherit", parent_name, raws)
            parent = load(parent_name, (*chain, name))
        loaded[name] = load_format(directory / f"{name}.toml", parent)
        return loaded[name]

    for name in raws:
        load(name)
    return loaded


def get_format(name: str) -> FormatSpec:
    """The format called ``name``, or an error naming the known ones."""
    known = formats()
    if name not in known:
        raise UnknownName("format", name, known)
    return known[name]


def args_fields() -> dict[str, pl.DataType]:
    """The union of all declared fields (plus probe fields), as one ``args`` struct layout.

    A field name means the same thing, with the same type, in every event that declares
    it; the catalogue tests hold the files to that.
    """
    fields: dict[str, pl.DataType] = {}
    for spec in formats().values():
        for event in spec.events.values():
            for fname, ftype in event.fields.items():
                fields.setdefault(fname, DTYPES[ftype])
    for fname, dtype in {**PROBE_FIELDS, **ENGINE_FIELDS}.items():
        fields.setdefault(fname, dtype)
    return dict(sorted(fields.items()))


def args_struct() -> pl.Struct:
    return pl.Struct(args_fields())
