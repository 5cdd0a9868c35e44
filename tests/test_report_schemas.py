"""The CI outputs of ``check`` and ``triage`` against their schemas: JUnit XML against an
XSD of what CI servers read, SARIF against the objects of the 2.1.0 standard that we
write (tests/data). The schemas are checked to reject what they must."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
from click.testing import CliRunner
from conftest import SAMPLES

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
