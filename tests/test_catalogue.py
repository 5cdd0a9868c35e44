"""The catalogue: every parsers/*.toml loads, is consistent, and is exercised by a sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLES

from tracetool import catalogue
from tracetool._builtin import builtin
from tracetool.errors import CatalogueError


def test_builtin_parsers_found() -> None:
    assert {"ftrace", "trace-cmd"} <= set(catalogue.formats())
    assert builtin("parsers").is_dir()


def test_field_names_have_one_type_everywhere() -> None:
    seen: dict[str, tuple[str, str]] = {}
    for spec in catalogue.formats().values():
        for event in spec.events.values():
            for name, ftype in event.fields.items():
                if name in seen:
                    assert seen[name][0] == ftype, (name, seen[name], (ftype, event.name))
                seen[name] = (ftype, event.name)


@pytest.mark.parametrize("name", sorted(catalogue.formats()))
def test_every_format_has_samples(name: str) -> None:
    assert any((SAMPLES / name).glob("*")), f"samples/{name}/ is empty"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'description = "x"\nengine = "ftrace"\nsniffz = []\n',
            "unknown key 'sniffz'; did you mean",
        ),
        ('engine = "ftrace"\n', "missing required key 'description'"),
        (
            'description = "x"\nengine = "ftrace"\n[events.a]\npattern = "(?P<x>\\\\d+"\nfields = {x = "int"}\n',
            "invalid regex",
        ),
        (
            'description = "x"\nengine = "ftrace"\n[events.a]\npattern = "(?P<x>\\\\d+)"\nfields = {x = "integer"}\n',
            "unknown type 'integer'",
        ),
        (
            'description = "x"\nengine = "ftrace"\n[events.a]\npattern = "(?P<x>\\\\d+)"\n',
            "have no type",
        ),
        (
            'description = "x"\nengine = "ftrace"\n[[lines]]\nname = "l"\nkind = "loss"\n'
            'pattern = "^L$"\nwindow = "nearby"\n',
            r"lines\[0\]\.window: 'nearby' is not one of",
        ),
    ],
)
def test_malformed_format_files_are_explained(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CatalogueError, match=message) as err:
        catalogue.load_format(path)
    assert str(path) in str(err.value)


def test_dialect_is_catalogue_data(tmp_path: Path) -> None:
    assert catalogue.get_format("trace-cmd").dialect == "trace-cmd"
    assert catalogue.get_format("ftrace").dialect == "kernel"
    assert catalogue.get_format("function-graph").dialect == "kernel"
    path = tmp_path / "bad.toml"
    path.write_text('description = "x"\nengine = "ftrace"\ndialect = "perf"\n')
    with pytest.raises(CatalogueError, match="dialect must be one of kernel, trace-cmd"):
        catalogue.load_format(path)
