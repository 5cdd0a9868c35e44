"""The timeline stage: calls from probe pairs, device attribution, locksets, eras."""

from __future__ import annotations

import polars as pl
import pytest

import tracetool
from tracetool.errors import TraceToolError
from tracetool.kernel import GROUP_MUTEX, era_from_version, infer_era
from tracetool.timeline import timeline

HEAD = "# tracer: nop\n#\n"


def ctx(comm: str, pid: int, cpu: int, ts: str) -> str:
    return f"{comm:>16}-{pid:<7d} [{cpu:03d}] ...1. {ts:>12}: "


def spans_of(text: str, era: str | None = None) -> pl.DataFrame:
    trace = tracetool.parse_text(HEAD + text)
    choice = era_from_version(era) if era else None
    return timeline(trace.events, choice).spans.collect()


def test_probe_pairs_nest_and_recurse() -> None:
    a = ctx("t", 10, 0, "1.000001")
    b = ctx("t", 10, 0, "1.000002")
    c = ctx("t", 10, 0, "1.000003")
    d = ctx("t", 10, 0, "1.000004")
    text = (
        a
        + "f: (foo+0x0/0x10) x=1\n"
        + b
        + "f: (foo+0x0/0x10) x=2\n"
        + c
        + "f_r: (bar+0x4/0x20 <- foo) ret=0\n"
        + d
        + "f_r: (bar+0x4/0x20 <- foo) ret=-12\n"
    )
    spans = spans_of(text).sort("start_ts")
    assert spans.select("start_ts", "end_ts", "ret", "exact").rows() == [
        (1_000_001_000, 1_000_004_000, -12, True),
        (1_000_002_000, 1_000_003_000, 0, True),
    ]


def test_duplicate_probes_are_one_call_and_orphans_are_bounded() -> None:
    text = (
        ctx("t", 10, 0, "1.000001")
        + "s390_rel: (s390_iommu_release_device+0x0/0x98) dev=0x10\n"
        + ctx("t", 10, 0, "1.000001")
        + "p_rel: (s390_iommu_release_device+0x0/0x98)\n"
        + ctx("t", 10, 0, "1.000005")
        + "s390_rel_r: (x+0x1/0x2 <- s390_iommu_release_device)\n"
        + ctx("t", 10, 0, "1.000005")
        + "r_rel: (x+0x1/0x2 <- s390_iommu_release_device)\n"
        + ctx("u", 11, 1, "1.000006")
        + "att_r: (y+0x1/0x2 <- s390_iommu_attach_device) ret=0\n"
    )
    spans = spans_of(text).sort("start_ts")
    release = spans.filter(pl.col("kind") == "release").row(0, named=True)
    assert (release["start_ts"], release["end_ts"], release["exact"]) == (
        1_000_001_000,
        1_000_005_000,
        True,
    )
    assert release["device"] == "dev@0x10" and release["device_how"] == "pointer"
    attach = spans.filter(pl.col("kind") == "attach").row(0, named=True)
    assert attach["exact"] is False and attach["end_ts"] == 1_000_006_000


def test_device_inferred_from_the_tracepoint_that_follows() -> None:
    text = (
        ctx("kworker/0:1", 5, 1, "1.000001")
        + "pr: (s390_iommu_probe_device+0x0/0x70) dev=0xabc\n"
        + ctx("kworker/0:1", 5, 1, "1.000002")
        + "add_device_to_group: IOMMU: groupID=4 device=0004:00:00.0\n"
        + ctx("qemu", 77, 0, "2.000000")
        + "att: (s390_iommu_attach_device+0x0/0x1f0) domain=0x1 dev=0xabc\n"
        + ctx("qemu", 77, 0, "2.000003")
        + "ex: (zpci_dma_exit_device+0x0/0x98) zdev=0xdef\n"
        + ctx("qemu", 77, 0, "2.000009")
        + "att_r: (x+0x1/0x2 <- s390_iommu_attach_device) ret=0\n"
        + ctx("other", 78, 2, "3.000000")
        + "ex: (zpci_dma_exit_device+0x0/0x98) zdev=0xdef\n"
    )
    spans = spans_of(text).sort("start_ts")
    got = spans.select("kind", "device", "device_how").rows()
    assert got == [
        ("probe", "0004:00:00.0", "inferred"),
        ("group_add", "0004:00:00.0", "exact"),
        ("attach", "0004:00:00.0", "inferred"),
        ("dma_exit", "0004:00:00.0", "inferred"),
        ("dma_exit", "0004:00:00.0", "inferred"),
    ]
    last = spans.row(-1, named=True)
    assert "zdev=0xdef" in last["device_why"] and last["device_evidence"]


def test_traced_mutex_and_implicit_group_mutex_in_lockset() -> None:
    q = ("qemu", 77, 0)
    text = (
        ctx(*q, "1.000000")
        + "ml: (mutex_lock+0x0/0x40) lock=0xfeed\n"
        + ctx(*q, "1.000001")
        + "ml_r: (s+0x1/0x2 <- mutex_lock)\n"
        + ctx(*q, "1.000002")
        + "att: (s390_iommu_attach_device+0x0/0x1f0) dev=0x1\n"
        + ctx(*q, "1.000003")
        + "att_r: (s+0x1/0x2 <- s390_iommu_attach_device) ret=0\n"
        + ctx(*q, "1.000004")
        + "mu: (mutex_unlock+0x0/0x40) lock=0xfeed\n"
        + ctx("k", 41, 3, "1.000005")
        + "rel: (s390_iommu_release_device+0x0/0x98) dev=0x1\n"
        + ctx("k", 41, 3, "1.000006")
        + "rel_r: (s+0x1/0x2 <- s390_iommu_release_device)\n"
    )
    spans = spans_of(text, "6.0")
    attach = spans.filter(pl.col("kind") == "attach").row(0, named=True)
    assert attach["lockset"] == [GROUP_MUTEX, "lock@0xfeed"]
    lock = spans.filter(pl.col("kind") == "lock").row(0, named=True)
    assert (lock["start_ts"], lock["end_ts"]) == (1_000_001_000, 1_000_004_000)
    assert spans.filter(pl.col("kind") == "release")["lockset"].to_list() == [[]]
    late = spans_of(text, "6.5").filter(pl.col("kind") == "release")["lockset"].to_list()
    assert late == [[GROUP_MUTEX]]


def test_era_inference_and_versions() -> None:
    era = infer_era({"iommu_deinit_device": "f:1", "zpci_dma_init_device": "f:2"})
    assert era.eras == ("v6.5",) and era.how == "inferred"
    assert infer_era({}).how == "default"
    assert era_from_version("6.3.1").eras == ("v6.2",)
    assert era_from_version("v6.0+dma_domain_lock").eras == ("v6.0+dma_domain_lock",)
    with pytest.raises(TraceToolError, match="expected a version"):
        era_from_version("sixpointfive")


def test_function_tracer_and_graph_calls_become_spans() -> None:
    path = "samples/function-graph/s390-funcgraph-abstime-proc.txt"
    spans = timeline(tracetool.parse(path).events).spans.collect()
    release = spans.filter(pl.col("kind") == "release")
    assert release.height >= 1 and release["exact"].all()
    ftr = timeline(tracetool.parse("samples/ftrace/s390-function-tracer.txt").events)
    kinds = ftr.spans.collect().filter(pl.col("kind") == "release")
    assert kinds.height >= 1 and not kinds["exact"].any()
