"""Golden tests: every sample parses to exactly what tests/goldens/ records.

Regenerate after a deliberate change with ``pytest tests/test_samples.py --update-goldens``
and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import GOLDENS, SAMPLES

import tracetool
from tracetool.catalogue import formats

SAMPLE_DIRS = tuple(sorted(formats()))
SAMPLE_FILES = sorted(p for d in SAMPLE_DIRS for p in (SAMPLES / d).glob("*") if p.is_file())


def _compact(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("args", "file", "source") and v is not None}
    args = {k: v for k, v in (row.get("args") or {}).items() if v is not None}
    if args:
        out["args"] = args
    return out


def snapshot(path: Path) -> str:
    trace = tracetool.parse(path, use_cache=False)
    (info,) = trace.inputs
    head = {"format": info.format, "lines": info.lines, "counts": info.counts, "meta": info.meta}
    parts = [json.dumps(head, sort_keys=True)]
    for name, frame in (
        ("events", trace.events),
        ("diagnostics", trace.diagnostics),
        ("losses", trace.losses),
    ):
        parts.append(f"# {name}")
        parts.extend(json.dumps(_compact(r), sort_keys=True) for r in frame.collect().to_dicts())
    for name in sorted(trace.records):
        parts.append(f"# records: {name}")
        rows = trace.table(name).drop("file").collect().to_dicts()
        parts.extend(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return "\n".join(parts) + "\n"


def test_there_are_samples() -> None:
    assert len(SAMPLE_FILES) >= 20


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_matches_golden(path: Path, update_goldens: bool) -> None:
    golden = GOLDENS / path.parent.name / (path.name + ".golden")
    got = snapshot(path)
    if update_goldens or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got)
        if not update_goldens:
            pytest.fail(f"{golden} did not exist; written now, review and commit it")
    assert got == golden.read_text(), f"{path} no longer parses as {golden} says"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_is_fully_understood(path: Path) -> None:
    trace = tracetool.parse(path, use_cache=False)
    (info,) = trace.inputs
    assert info.accounted()
    assert info.format == path.parent.name
    unparsed = trace.diagnostics.collect()
    assert unparsed.filter(unparsed["kind"] != "truncated").is_empty(), unparsed.to_dicts()
