"""Every bpftrace output in ../shared/corpus (MANIFEST.tsv format bpftrace-text or
bpftrace-json, under bpftrace/ and bcc/) parses with every line accounted for, no
crash, and the format sniffed from its content; skipped when the corpus is absent."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest
from conftest import CORPUS

import tracetool

FORMATS = {"bpftrace-text": "bpftrace", "bpftrace-json": "bpftrace-json"}


def _manifest() -> list[tuple[Path, str]]:
    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [
        (CORPUS / row["path"], FORMATS[row["format"]])
        for row in rows
        if row["format"] in FORMATS
        and row["path"].startswith(("bpftrace/", "bcc/"))
        and (CORPUS / row["path"]).is_file()
    ]


FILES = _manifest()

pytestmark = pytest.mark.corpus


@pytest.mark.skipif(not FILES, reason="../shared/corpus not present")
@pytest.mark.parametrize(
    ("path", "fmt"), FILES, ids=lambda v: str(v.relative_to(CORPUS)) if isinstance(v, Path) else v
)
def test_corpus_bpftrace_file_is_accounted(path: Path, fmt: str) -> None:
    trace = tracetool.parse(path, use_cache=False)
    (info,) = trace.inputs
    assert info.format == fmt
    assert info.accounted(), info
    assert info.lines == len(path.read_bytes().splitlines())
    diag = trace.diagnostics.collect()
    assert diag.filter(diag["kind"] == "unparsed").height == info.counts["diagnostics"]
    trace.events.collect()
    for name in ("maps", "histograms"):
        trace.table(name).collect()


@pytest.mark.skipif(not FILES, reason="../shared/corpus not present")
def test_corpus_captures_parse_cleanly() -> None:
    """The files captured with bpftrace 0.17 have no line that is not understood, and
    their structures land where they belong."""
    kstack = tracetool.parse(CORPUS / "bpftrace/block_kstack_printf_interval_iommu_probes.out")
    assert kstack.inputs[0].counts["diagnostics"] == 0
    events = kstack.events.collect()
    stacks = events.filter(events["stack"].is_not_null())["stack"].list.len()
    assert stacks.len() == 8 and stacks.min() >= 20  # every block_rq_issue with its kstack
    lost = tracetool.parse(CORPUS / "bpftrace/lost_events_small_ringbuf.out")
    assert lost.losses.collect()["lost"].sum() == 58 + 58 + 47 + 36 + 117
    js = tracetool.parse(CORPUS / "bpftrace/block_latency_stacks.json.out")
    assert js.inputs[0].counts["diagnostics"] == 0
    rwbs = js.table("maps").filter(pl.col("map") == "@rwbs").collect()
    assert rwbs.height == 9  # duplicate JSON keys are all kept
    hist = js.table("histograms").collect()
    assert set(hist["func"]) == {"hist", "lhist"}
