"""Errors the library raises; the CLI turns each into one message and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TraceToolError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class InputError(TraceToolError):
    """An input cannot be read or recognised."""


class CatalogueError(TraceToolError):
    """A file under parsers/ or rules/ is malformed: ``path: key: reason``."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class StrictError(TraceToolError):
    """``--strict`` was given and at least one line was not understood."""


def closest(name: str, known: Iterable[str]) -> str:
    """Return ``; did you mean "x"?`` for the nearest known name, or an empty string."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f'; did you mean "{match[0]}"?' if match else ""


class UnknownName(TraceToolError):
    """A name (format, event, column) that the catalogue does not know."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        super().__init__(
            f'unknown {kind} "{name}"{closest(name, known)} (known: {", ".join(known)})'
        )
        self.kind = kind
        self.name = name
        self.known = known
