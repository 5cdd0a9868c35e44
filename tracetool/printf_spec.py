"""Extra printf declarations for bpftrace output: a user's own script formats.

A bpftrace script prints whatever its ``printf()`` calls say, so the built-in
``parsers/bpftrace.toml`` can only know the project's own capture scripts. A user with
another script writes its formats in a TOML file of ``[events.NAME]`` tables, the same
shape as the catalogue's::

    [events.rpcit]
    pattern = '^(?P<nsecs>\\d+) rpcit fh=(?P<fh>0x[0-9a-f]+) ret=(?P<ret>-?\\d+)$'
    fields = { nsecs = "int", fh = "hex", ret = "int" }

``with_printf_formats(path)`` returns a format derived from ``bpftrace`` (or
``bpftrace-json``) that also knows them; ``tracetool.parse(..., format=spec)`` uses it.
Fields whose name the catalogue already types (``nsecs``, ``dev``, ``ret``, ...) become
typed ``args`` fields and must keep that type; other fields go to ``args.kv`` as
name/value pairs (``num`` holds the value when it is an integer), since ``args`` has
one fixed layout for every input.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tracetool.catalogue import (
    EventSpec,
    FormatSpec,
    _load_events,
    args_fields,
    formats,
    get_format,
)
from tracetool.errors import CatalogueError, closest
from tracetool.events import DTYPES

_SPEC_KEYS = {"description", "events"}


@dataclass(frozen=True)
class PrintfFormats(FormatSpec):
    """A bpftrace format plus printf declarations the catalogue does not hold. The
    engine names and types those events itself (``printf``); ``events`` stays the
    catalogue's."""

    printf: dict[str, EventSpec] = field(default_factory=dict)


def with_printf_formats(path: Path, base: str = "bpftrace") -> PrintfFormats:
    """``base`` with the ``[events.*]`` of the TOML file ``path`` added.

    :raise CatalogueError: (naming ``path``) for invalid TOML, unknown keys, bad regexes,
        untyped groups, an event the base already declares, or a field whose name the
        catalogue types differently.
    """
    spec = get_format(base)
    if spec.engine not in ("bpftrace", "bpftrace-json"):
        raise CatalogueError(path, f"printf declarations extend bpftrace formats, not {base!r}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(path, f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise CatalogueError(path, f"cannot read: {exc.strerror}") from None
    unknown = set(raw) - _SPEC_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise CatalogueError(path, f"unknown key {key!r}{closest(key, _SPEC_KEYS)}")
    events = _load_events(path, raw.get("events", {}))
    if not events:
        raise CatalogueError(path, "declares no [events.NAME] table")
    known = args_fields()
    declared = {
        fname: ftype
        for fmt in formats().values()
        for event in fmt.events.values()
        for fname, ftype in event.fields.items()
    }
    for name, event in events.items():
        if name in spec.events or name == "printf":
            raise CatalogueError(
                path, f"events.{name}: already declared by parsers/{base}.toml; pick another name"
            )
        for fname, ftype in event.fields.items():
            want = declared.get(fname)
            if (want is not None and want != ftype) or (
                fname in known and known[fname] != DTYPES[ftype]
            ):
                raise CatalogueError(
                    path,
                    f"events.{name}.fields.{fname}: the catalogue types {fname!r} as "
                    f"{want or known[fname]!r}, not {ftype!r}; use that type or another name",
                )
    return PrintfFormats(**{f: getattr(spec, f) for f in _base_fields()}, printf=events)


def _base_fields() -> list[str]:
    return [f for f in FormatSpec.__dataclass_fields__]


def extra_events(spec: FormatSpec) -> dict[str, EventSpec]:
    """The printf declarations a ``PrintfFormats`` adds (none for a catalogue format)."""
    return spec.printf if isinstance(spec, PrintfFormats) else {}


__all__ = ["PrintfFormats", "extra_events", "with_printf_formats"]
