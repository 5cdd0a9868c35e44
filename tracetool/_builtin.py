"""The one place that knows where the built-in catalogue (parsers/, rules/) lives."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def builtin(kind: str) -> Path:
    """Return the directory of built-in ``parsers`` or ``rules``.

    A wheel carries them under ``tracetool/_builtin/``; a checkout or an editable
    install finds them beside the package.
    """
    packaged = Path(str(files("tracetool"))) / "_builtin" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / kind
