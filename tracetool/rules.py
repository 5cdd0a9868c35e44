"""Loading ``rules/*.toml``: what we flag, as data a kernel developer can review.

One file per rule; the id is the file name. Every rule has a title, a severity, a
description of the race or misuse it detects, references, the kernel eras it applies to
and a ``kind`` from the closed set below. Filters are polars SQL expressions over the
columns of ``spans`` (``tracetool.timeline.SPANS_SCHEMA``).

``overlap``   ``a``, ``b``: a span matching ``a`` and one matching ``b`` on the same device,
              from different tasks, intersect in time with no common lock held.
``sequence``  ``first``, ``then`` [, ``unless``, ``within``, ``nested``]: a ``then`` span
              follows a ``first`` span on the same device (with ``nested``: starts inside
              it, in the same task) with no ``unless`` span between them.
``missing``   ``first``, ``then``, ``within``: a ``first`` span not followed by a ``then``
              span on the same device within the bound.
``follows``   ``after``, ``then``, ``within``: a ``then`` span on a device starts while a
              finding of one of the ``after`` rules lasts on that device, or within the
              bound after it ended (a crash report after a race), in any input.
``ranges``    ``map``, ``unmap``, ``check`` [, ``at``]: IOVA ranges per device. A map lives
              until the next unmap of its IOVA (or one whose range holds it);
              ``check = "unmapped"`` flags unmaps that end no live mapping,
              ``check = "live"`` flags ``at`` spans (release) while mappings live.
``state``     ``initial``, ``[[transition]]`` (``on``, ``to``, ``at`` = start|end) and
              ``[[flag]]`` (``on``, ``in``): a per-device state machine; a span matching a
              flag's ``on`` while the device is in one of its ``in`` states is a finding.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from tracetool._builtin import builtin
from tracetool.errors import CatalogueError, UnknownName, closest
from tracetool.kernel import ERA_NAMES
from tracetool.timeline import SPANS_SCHEMA

KINDS = ("overlap", "sequence", "missing", "state", "follows", "ranges")
RANGE_CHECKS = ("unmapped", "live")
SEVERITIES = ("error", "warning", "info")
_COMMON = {"title", "severity", "kind", "description", "references", "eras", "note"}
_KIND_KEYS: dict[str, set[str]] = {
    "overlap": {"a", "b"},
    "sequence": {"first", "then", "unless", "within", "nested"},
    "missing": {"first", "then", "within"},
    "state": {"initial", "transition", "flag"},
    "follows": {"after", "then", "within"},
    "ranges": {"map", "unmap", "check", "at"},
}
_REQUIRED: dict[str, set[str]] = {
    "overlap": {"a", "b"},
    "sequence": {"first", "then"},
    "missing": {"first", "then", "within"},
    "state": {"initial", "transition", "flag"},
    "follows": {"after", "then", "within"},
    "ranges": {"map", "unmap", "check"},
}
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


@dataclass(frozen=True)
class Transition:
    on: str
    to: str
    at: str = "end"


@dataclass(frozen=True)
class Flag:
    on: str
    states: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """One ``rules/<id>.toml``."""

    id: str
    path: Path
    title: str
    severity: str
    kind: str
    description: str
    references: tuple[str, ...]
    eras: tuple[str, ...]
    note: str = ""
    filters: dict[str, str] = field(default_factory=dict)  # a/b/first/then/unless/map/...
    within: int | None = None  # ns
    nested: bool = False
    initial: str = ""
    transitions: tuple[Transition, ...] = ()
    flags: tuple[Flag, ...] = ()
    after: tuple[str, ...] = ()  # follows: ids of the rules whose findings open windows
    after_rules: tuple[Rule, ...] = ()  # ... resolved when the catalogue is loaded
    check: str = ""  # ranges: "unmapped" or "live"

    def expr(self, name: str) -> pl.Expr:
        return pl.sql_expr(self.filters[name])


def duration_ns(text: str) -> int:
    """``"10ms"``, ``"1.5 s"``, ``"250us"`` -> nanoseconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)\s*", text)
    if not m:
        raise ValueError(f'"{text}" is not a duration; write it like 10ms, 250us or 1.5s')
    return round(float(m[1]) * _UNITS[m[2]])


def _check_filter(path: Path, where: str, text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise CatalogueError(path, f"{where}: expected a SQL expression string")
    try:
        expr = pl.sql_expr(text)
        names = expr.meta.root_names()
    except Exception as exc:  # polars raises several types for bad SQL
        raise CatalogueError(
            path, f'{where}: "{text}" is not a valid SQL expression: {exc}'
        ) from None
    for name in names:
        if name not in SPANS_SCHEMA:
            raise CatalogueError(
                path,
                f'{where}: unknown column "{name}"{closest(name, SPANS_SCHEMA)}'
                f" (spans columns: {', '.join(SPANS_SCHEMA)})",
            )
    try:
        pl.DataFrame(schema=SPANS_SCHEMA).filter(expr)
    except Exception as exc:
        raise CatalogueError(path, f'{where}: "{text}" does not apply to spans: {exc}') from None
    return text


def _str(path: Path, raw: dict[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise CatalogueError(path, f"{key}: expected a non-empty string")
    return value


def _unknown_keys(path: Path, where: str, keys: Any, known: set[str]) -> None:
    for key in keys:
        if key not in known:
            raise CatalogueError(
                path,
                f'{where}unknown key "{key}"{closest(key, known)}'
                f" (known: {', '.join(sorted(known))})",
            )


def load_rule(path: Path) -> Rule:
    """Parse and validate one rule file; every problem is a ``CatalogueError``."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(path, f"cannot read: {exc}") from None
    kind = raw.get("kind")
    if kind not in KINDS:
        raise CatalogueError(
            path, f'kind: "{kind}" is not one of {", ".join(KINDS)}{closest(str(kind), KINDS)}'
        )
    _unknown_keys(path, "", raw, _COMMON | _KIND_KEYS[kind])
    for key in sorted(_REQUIRED[kind] | {"title", "severity", "description", "references", "eras"}):
        if key not in raw:
            raise CatalogueError(path, f'missing key "{key}" (required for kind "{kind}")')
    severity = _str(path, raw, "severity")
    if severity not in SEVERITIES:
        raise CatalogueError(
            path,
            f'severity: "{severity}" is not one of {", ".join(SEVERITIES)}'
            f"{closest(severity, SEVERITIES)}",
        )
    refs = raw["references"]
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise CatalogueError(path, "references: expected a non-empty list of strings")
    eras = raw["eras"]
    if eras == ["all"]:
        eras = list(ERA_NAMES)
    if not isinstance(eras, list) or not eras:
        raise CatalogueError(path, 'eras: expected a list of era names, or ["all"]')
    for era in eras:
        if era not in ERA_NAMES:
            raise CatalogueError(
                path,
                f'eras: unknown era "{era}"{closest(str(era), ERA_NAMES)}'
                f" (eras: {', '.join(ERA_NAMES)})",
            )
    filters: dict[str, str] = {
        k: _check_filter(path, k, raw[k])
        for k in ("a", "b", "first", "then", "unless", "map", "unmap", "at")
        if k in raw
    }
    check = str(raw.get("check", ""))
    if kind == "ranges":
        if check not in RANGE_CHECKS:
            raise CatalogueError(
                path,
                f'check: "{check}" is not one of {", ".join(RANGE_CHECKS)}'
                f"{closest(check, RANGE_CHECKS)}",
            )
        if check == "live" and "at" not in filters:
            raise CatalogueError(path, 'at: check = "live" needs the spans to check at')
    within = None
    if "within" in raw:
        try:
            within = duration_ns(str(raw["within"]))
        except ValueError as exc:
            raise CatalogueError(path, f"within: {exc}") from None
    nested = raw.get("nested", False)
    if not isinstance(nested, bool):
        raise CatalogueError(path, "nested: expected true or false")
    transitions: list[Transition] = []
    flags: list[Flag] = []
    if kind == "state":
        for i, t in enumerate(raw["transition"]):
            _unknown_keys(path, f"transition[{i}]: ", t, {"on", "to", "at"})
            at = t.get("at", "end")
            if at not in ("start", "end"):
                raise CatalogueError(path, f'transition[{i}].at: "{at}" is not start or end')
            transitions.append(
                Transition(
                    _check_filter(path, f"transition[{i}].on", t.get("on")), _str(path, t, "to"), at
                )
            )
        states = {t.to for t in transitions} | {_str(path, raw, "initial")}
        for i, f in enumerate(raw["flag"]):
            _unknown_keys(path, f"flag[{i}]: ", f, {"on", "in"})
            ins = f.get("in")
            if not isinstance(ins, list) or not ins:
                raise CatalogueError(path, f"flag[{i}].in: expected a list of states")
            for s in ins:
                if s not in states:
                    raise CatalogueError(
                        path,
                        f'flag[{i}].in: no transition leads to state "{s}"{closest(s, states)}',
                    )
            flags.append(Flag(_check_filter(path, f"flag[{i}].on", f.get("on")), tuple(ins)))
    after = raw.get("after", [])
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise CatalogueError(path, "after: expected a list of rule ids")
    if kind == "follows" and not after:
        raise CatalogueError(path, "after: name at least one rule whose findings open the window")
    return Rule(
        id=path.stem,
        path=path,
        title=_str(path, raw, "title"),
        severity=severity,
        kind=kind,
        description=_str(path, raw, "description"),
        references=tuple(refs),
        eras=tuple(e for e in ERA_NAMES if e in eras),
        note=_str(path, raw, "note", ""),
        filters=filters,
        within=within,
        nested=nested,
        initial=str(raw.get("initial", "")),
        transitions=tuple(transitions),
        flags=tuple(flags),
        after=tuple(after),
        check=check,
    )


def _resolve(found: dict[str, Rule]) -> dict[str, Rule]:
    """Give every ``follows`` rule the rules it names in ``after``."""
    out = dict(found)
    for rid, rule in found.items():
        if not rule.after:
            continue
        resolved = []
        for name in rule.after:
            if name not in found:
                raise CatalogueError(
                    rule.path, f'after: unknown rule "{name}"{closest(name, found)}'
                )
            if found[name].kind == "follows":
                raise CatalogueError(rule.path, f'after: "{name}" is itself a follows rule')
            resolved.append(found[name])
        out[rid] = replace(rule, after_rules=tuple(resolved))
    return out


@functools.cache
def _load_dir(directory: Path) -> dict[str, Rule]:
    return {p.stem: load_rule(p) for p in sorted(directory.glob("*.toml"))}


def rules(directories: tuple[Path, ...] = ()) -> dict[str, Rule]:
    """The built-in rules plus those in ``directories`` (a later file with the same id
    replaces an earlier one)."""
    out: dict[str, Rule] = {}
    for directory in (builtin("rules"), *directories):
        if not directory.is_dir():
            raise CatalogueError(directory, "not a directory of rule files (*.toml)")
        out.update(_load_dir(directory.resolve()))
    return _resolve(out)


def select(all_rules: dict[str, Rule], only: tuple[str, ...]) -> dict[str, Rule]:
    """The rules named in ``only`` (all when empty); unknown names are errors."""
    for name in only:
        if name not in all_rules:
            raise UnknownName("rule", name, all_rules)
    return {k: v for k, v in all_rules.items() if not only or k in only}
