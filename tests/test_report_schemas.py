"""The CI outputs of ``check`` and ``triage`` against their schemas: JUnit XML against an
XSD of what CI servers read, SARIF against the objects of the 2.1.0 standard that we
write (tests/data). The schemas are checked to reject what they must."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
from click.testing import CliRunner
from conftest import ROOT, SAMPLES

from tracetool.cli import main

DATA = Path(__file__).parent / "data"
SARIF = json.loads((DATA / "sarif-2.1.0-subset.schema.json").read_text())
JUNIT = xmlschema.XMLSchema(str(DATA / "junit.xsd"))
RACE = SAMPLES / "simulated" / "race-v6.0-overlap-warn.txt"
RACE_LOG = SAMPLES / "simulated" / "race-v6.0-overlap-warn-dmesg.txt"
LOST = SAMPLES / "ftrace" / "s390-trace-pipe-lost.txt"


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code in (0, 1, 3), result.output
    return result.stdout


@pytest.fixture(scope="module")
def check_sarif() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_run("check", str(RACE), "--format", "sarif", "--no-cache"))
    return doc


@pytest.mark.parametrize("inputs", [[RACE], [RACE, RACE_LOG], [LOST]])
def test_check_outputs_validate(inputs: list[Path]) -> None:
    paths = [str(p) for p in inputs]
    JUNIT.validate(_run("check", *paths, "--format", "junit", "--no-cache"))
    jsonschema.validate(json.loads(_run("check", *paths, "--format", "sarif", "--no-cache")), SARIF)


def test_triage_outputs_validate(tmp_path: Path) -> None:
    logs = tmp_path / "ci"
    logs.mkdir()
    (logs / "race.txt").write_bytes(RACE_LOG.read_bytes())
    (logs / "clean.txt").write_text("[    0.000000] Linux version 6.1.0 (b@h) (gcc) #1 SMP\n")
    (logs / "broken.txt").write_bytes(b"\xff\xfe\x00 not a log")
    JUNIT.validate(_run("triage", str(logs), "--format", "junit"))
    jsonschema.validate(json.loads(_run("triage", str(logs), "--format", "sarif")), SARIF)


def test_the_sarif_schema_rejects_what_the_standard_forbids(check_sarif: dict[str, Any]) -> None:
    jsonschema.validate(check_sarif, SARIF)
    result = next(r for r in check_sarif["runs"][0]["results"] if r["kind"] == "fail")
    for break_it in (
        lambda d, r: d.update(version="2.0.0"),
        lambda d, r: r.update(level="fatal"),
        lambda d, r: r.update(kind="review"),  # level stays "error": forbidden
        lambda d, r: r["locations"][0]["physicalLocation"]["region"].update(startLine=0),
        lambda d, r: r.update(mesage={"text": "typo"}),
        lambda d, r: d["runs"][0]["tool"]["driver"].pop("name"),
    ):
        doc = copy.deepcopy(check_sarif)
        res = next(x for x in doc["runs"][0]["results"] if x == result)
        break_it(doc, res)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, SARIF)


def test_the_junit_schema_rejects_what_ci_servers_do_not_read() -> None:
    good = _run("check", str(RACE), "--format", "junit", "--no-cache")
    JUNIT.validate(good)
    for bad in (
        good.replace('tests="', 'tests="-', 1),
        good.replace("<testcase ", "<testcase2 ", 1),
        good.replace(' classname="', ' klass="', 1),
    ):
        assert not JUNIT.is_valid(bad)


def _multitool() -> Path:
    where = Path(
        os.environ.get("TRACETOOL_SARIF_MULTITOOL", ROOT / ".ci-tools" / "sarif-multitool")
    )
    tool = where / "package" / "Sarif.Multitool"
    if not tool.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing; .ci/run fetches it with npm pack")
        pytest.skip("the SARIF Multitool is not unpacked (see .ci/run)")
    return tool


def test_sarif_passes_the_official_schema_and_validator(tmp_path: Path) -> None:
    """The SARIF of check and triage against the OASIS 2.1.0 schema as the SARIF SDK
    ships it, and through the SDK's own validator (its errors: none)."""
    tool = _multitool()
    official = json.loads((tool.parent / "sarif-2.1.0.json").read_text())
    logs = tmp_path / "ci"
    logs.mkdir()
    (logs / "race log.txt").write_bytes(RACE_LOG.read_bytes())  # a space: encoded in URIs
    docs = {
        "check.sarif": _run("check", str(RACE), str(RACE_LOG), "--format", "sarif", "--no-cache"),
        "check-abs.sarif": _run("check", str(RACE.resolve()), "--format", "sarif", "--no-cache"),
        "triage.sarif": _run("triage", str(logs), "--format", "sarif"),
    }
    for name, text in docs.items():
        jsonschema.validate(json.loads(text), official)
        path = tmp_path / name
        path.write_text(text)
        out = tmp_path / (name + ".validation")
        done = subprocess.run(
            [str(tool), "validate", str(path), "--output", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        results = json.loads(out.read_text())["runs"][0].get("results", [])
        errors = [r for r in results if r.get("level", "warning") == "error"]
        assert not errors, [r["message"] for r in errors]
