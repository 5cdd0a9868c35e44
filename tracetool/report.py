"""Findings as text, JSON, JUnit XML and SARIF 2.1.0 (strings; the CLI prints them)."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Any

import polars as pl

from tracetool import __version__
from tracetool.check import SEVERITY_RANK, CheckResult
from tracetool.render import duration_text

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def compact_evidence(evidence: list[str]) -> list[str]:
    """``a.txt:16, a.txt:19, b.txt:3`` -> ``a.txt:16,19``, ``b.txt:3`` (lines sorted)."""
    lines: dict[str, list[int]] = defaultdict(list)
    for where in evidence:
        path, _, line = where.rpartition(":")
        lines[path].append(int(line))
    return [f"{p}:{','.join(str(n) for n in sorted(set(ls)))}" for p, ls in lines.items()]


def _rows(result: CheckResult) -> list[dict[str, Any]]:
    return list(result.findings.iter_rows(named=True))


def text(result: CheckResult, width: int = 80) -> str:
    """Findings grouped by device, each with its message and evidence, then a summary."""
    top = textwrap.TextWrapper(
        width=width, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False
    )
    out: list[str] = top.wrap(f"kernel era: {result.era.label()}")
    for rule_id, why in sorted(result.skipped.items()):
        out += top.wrap(f"skipped {rule_id}: {why}")
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    spans = result.findings.select(span=duration_text(pl.col("dur")))["span"]
    for row, span in zip(_rows(result), spans, strict=True):
        row["span"] = span
        by_device[row["device"]].append(row)
    for device, rows in by_device.items():
        out += ["", device]
        for r in rows:
            head = f"  {r['severity']:<8} {r['rule']:<30} {r['ts'] / 1e9:.6f} s  {r['span']}"
            if r["status"] != "finding":
                head += f"  [{r['status']}]"
            out.append(head)
            wrap = textwrap.TextWrapper(
                width=width,
                initial_indent=" " * 11,
                subsequent_indent=" " * 11,
                break_on_hyphens=False,
                break_long_words=False,
            )
            out += wrap.wrap(r["message"])
            out += wrap.wrap("evidence: " + " ".join(compact_evidence(r["evidence"])))
    findings = result.findings
    counts = findings.group_by("status").len().rows()
    devices = len(result.devices)
    nouns = {"finding": ("finding", "findings"), "inconclusive": ("inconclusive", "inconclusive")}
    summary = ", ".join(f"{n} {nouns[s][n != 1]}" for s, n in sorted(counts)) or "no findings"
    out += [
        "",
        f"{summary}; {devices} device{'s' if devices != 1 else ''} checked, "
        f"{len(result.ran)} rule{'s' if len(result.ran) != 1 else ''} ran, "
        f"{len(result.skipped)} skipped",
    ]
    return "\n".join(out) + "\n"


def as_json(result: CheckResult) -> str:
    doc = {
        "tool": {"name": "tracetool", "version": __version__},
        "era": {
            "eras": list(result.era.eras),
            "how": result.era.how,
            "evidence": list(result.era.evidence),
        },
        "eras_by_input": {
            f: {"eras": list(e.eras), "how": e.how, "evidence": list(e.evidence)}
            for f, e in result.eras.items()
        },
        "rules_ran": [r.id for r in result.ran],
        "rules_skipped": result.skipped,
        "findings": _rows(result),
    }
    return json.dumps(doc, indent=2) + "\n"


def junit(result: CheckResult) -> str:
    """One testsuite per rule, one testcase per rule and device: a failure per finding,
    ``skipped`` when the device's only hits are inconclusive."""
    root = ET.Element("testsuites", name="tracetool check")
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in _rows(result):
        by_key[(row["rule"], row["device"])].append(row)
    total = failures = skipped = 0
    for rule in result.ran:
        suite = ET.SubElement(root, "testsuite", name=rule.id)
        s_fail = s_skip = 0
        for device in result.devices:
            case = ET.SubElement(suite, "testcase", classname=f"tracetool.{rule.id}", name=device)
            hits = by_key.get((rule.id, device), [])
            real = [h for h in hits if h["status"] == "finding"]
            if real:
                s_fail += 1
                body = "\n\n".join(
                    h["message"] + "\nevidence: " + " ".join(compact_evidence(h["evidence"]))
                    for h in real
                )
                el = ET.SubElement(case, "failure", message=real[0]["message"], type=rule.severity)
                el.text = body
            elif hits:
                s_skip += 1
                ET.SubElement(case, "skipped", message="inconclusive: " + hits[0]["message"])
        suite.set("tests", str(len(result.devices)))
        suite.set("failures", str(s_fail))
        suite.set("errors", "0")
        suite.set("skipped", str(s_skip))
        total += len(result.devices)
        failures += s_fail
        skipped += s_skip
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("skipped", str(skipped))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def artifact_uri(path: str) -> str:
    """A file path as SARIF wants it: an absolute path as a ``file:`` URI, a relative one
    as a relative reference with forward slashes, percent-encoded (SARIF 3.4.3)."""
    from pathlib import Path, PurePosixPath
    from urllib.parse import quote

    if Path(path).is_absolute():
        return Path(path).as_uri()
    return quote(str(PurePosixPath(*Path(path).parts)), safe="/")


def _location(where: str, index: int | None = None) -> dict[str, Any]:
    path, _, line = where.rpartition(":")
    loc: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": {"uri": artifact_uri(path)},
            "region": {"startLine": int(line)},
        }
    }
    if index is not None:
        loc["id"] = index
    return loc


def sarif(result: CheckResult) -> str:
    """SARIF 2.1.0: one run, the rules that ran, a result per finding located at its first
    evidence line, the other lines as related locations."""
    rules = result.ran
    index = {r.id: i for i, r in enumerate(rules)}
    driver: dict[str, Any] = {
        "name": "tracetool",
        "version": __version__,
        "rules": [
            {
                "id": r.id,
                "name": "".join(w.capitalize() for w in r.id.split("-")),
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": " ".join(r.description.split())},
                "defaultConfiguration": {"level": _LEVEL[r.severity]},
                "properties": {
                    "kind": r.kind,
                    "eras": list(r.eras),
                    "references": list(r.references),
                },
                **(
                    {"helpUri": next(u for u in r.references if u.startswith("http"))}
                    if any(u.startswith("http") for u in r.references)
                    else {}
                ),
            }
            for r in rules
        ],
    }
    results = []
    for row in _rows(result):
        ev = row["evidence"]
        res: dict[str, Any] = {
            "ruleId": row["rule"],
            "ruleIndex": index[row["rule"]],
            "message": {"text": row["message"]},
            "locations": [_location(ev[0])] if ev else [],
            "relatedLocations": [_location(w, i) for i, w in enumerate(ev[1:], start=1)],
            "properties": {
                "device": row["device"],
                "ts_ns": row["ts"],
                "dur_ns": row["dur"],
                "status": row["status"],
            },
        }
        if row["status"] == "finding":
            res["kind"] = "fail"
            res["level"] = _LEVEL[row["severity"]]
        else:
            res["kind"] = "review"
            res["level"] = "none"
        results.append(res)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "results": results,
                "properties": {"era": result.era.label()},
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def exit_code(findings: pl.DataFrame, fail_on: str) -> int:
    """1 when a finding is at or above ``fail_on``; 3 when only inconclusive hits are;
    0 otherwise."""
    level = SEVERITY_RANK[fail_on]
    at_or_above = findings.filter(
        pl.col("severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int64) >= level
    )
    if at_or_above.filter(pl.col("status") == "finding").height:
        return 1
    if at_or_above.height:
        return 3
    return 0
