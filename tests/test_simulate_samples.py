"""The simulated samples (samples/simulated/MANIFEST.toml): each command still writes
the same bytes, parses with no diagnostic, and gives exactly the findings of its
FILE.findings.json."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES

import tracetool
from tracetool.cli import main

HERE = SAMPLES / "simulated"
MANIFEST = tomllib.loads((HERE / "MANIFEST.toml").read_text())["sample"]
FINDING_COLUMNS = ["rule", "severity", "status", "device", "ts", "dur"]


@pytest.mark.parametrize("sample", MANIFEST, ids=[s["file"] for s in MANIFEST])
def test_simulated_sample(sample: dict[str, object], tmp_path: Path, update_goldens: bool) -> None:
    name = str(sample["file"])
    dest = HERE if update_goldens else tmp_path
    out = dest / name
    result = CliRunner().invoke(main, ["simulate", *sample["args"], "-o", str(out)])  # type: ignore[misc]
    assert result.exit_code == 0, result.output
    for suffix in ("", ".truth.json"):
        assert (HERE / (name + suffix)).read_bytes() == (dest / (name + suffix)).read_bytes(), (
            f"{name}{suffix} changed: rerun with --update-goldens if the model changed on purpose"
        )
    trace = tracetool.parse(HERE / name, use_cache=False)
    assert trace.diagnostics.collect().height == 0
    findings = tracetool.check(trace).select(FINDING_COLUMNS).collect().to_dicts()
    expected = HERE / (name + ".findings.json")
    if update_goldens:
        expected.write_text(json.dumps(findings, indent=1) + "\n")
    assert findings == json.loads(expected.read_text())


def test_every_sample_is_listed() -> None:
    listed = {str(s["file"]) for s in MANIFEST}
    on_disk = {p.name for p in HERE.iterdir() if p.suffix in (".txt", ".ndjson")}
    assert on_disk == listed
    for name in listed:
        assert (HERE / (name + ".truth.json")).is_file()
        assert (HERE / (name + ".findings.json")).is_file()
