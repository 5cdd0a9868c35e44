"""The simulator's runs as the capture scripts' bpftrace output, text or ``-f json``.

A bpftrace script prints only what it probes, so each scenario is written as the
script a user would run for it (samples/capture/*.bt, whose printf formats
parsers/bpftrace.toml declares):

* the race: the era's ``samples/capture/s390/v6.*.bt``: one line per entry and return,
  ``nsecs tid comm probe [args]``, with the device's pointer and name, the DMA-API
  hand-over, VFIO's map/unmap and the RPCITs;
* the DMA workload: ``s390_dma_block.bt``: iommu map/unmap and block_rq_issue lines
  (with a 4-frame kstack), and at exit the maps: a log2 and a linear histogram of the
  I/O latency in µs, the bytes per request, and counts per task.

Map output follows bpftrace's text printer (src/output/text.cpp): buckets from the
first to the last non-empty one, the label left-aligned in 16 columns and the count
right-aligned in 8, then a bar of up to 52 ``@``; count maps sorted by value.
"""

# The formats mirror bpftrace's own printf and map printers: keep %-formatting.
# ruff: noqa: UP031

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tracetool.simulate.engine import Event

DMA_BLOCK_PROBES = 6  # BEGIN, iommu:map, iommu:unmap, block_rq_issue/complete, END
KSTACK = (
    "nvme_queue_rq+1021",
    "__blk_mq_issue_directly+86",
    "blk_mq_submit_bio+1273",
    "submit_bio_noacct_nocheck+644",
)
BAR = 52


@dataclass(frozen=True)
class Script:
    """Which functions an era's capture script prints, by line shape (see
    samples/capture/s390/v6.*.bt; tests/test_capture_recipes.py keeps them in step)."""

    dev: tuple[str, ...]  # "dev=%p name=%s" from arg0
    dom_dev: tuple[str, ...]  # "dom=%p dev=%p name=%s"
    zdev: tuple[str, ...]
    domain: tuple[str, ...]
    bare: tuple[str, ...]  # entries with no arguments
    ret: tuple[str, ...]  # returns with "ret=%d"
    ret_bare: tuple[str, ...]  # returns with nothing

    def probes(self) -> int:
        """How many probes the script attaches (zpci_refresh_trans's entry included)."""
        groups = (
            self.dev,
            self.dom_dev,
            self.zdev,
            self.domain,
            self.bare,
            self.ret,
            self.ret_bare,
        )
        return 1 + sum(len(g) for g in groups)


_LIFE = ("s390_iommu_probe_device", "s390_iommu_release_device")
_ATT = "s390_iommu_attach_device"
_DET = "s390_iommu_detach_device"
_ZDEV = ("zpci_register_ioat", "zpci_unregister_ioat", "zpci_deconfigure_device")
_DMA_API = ("zpci_dma_init_device", "zpci_dma_exit_device")
_RPCIT = "zpci_refresh_trans"
_IOTLB = ("s390_iommu_iotlb_sync_map", "s390_iommu_iotlb_sync", "s390_iommu_flush_iotlb_all")
SCRIPTS = {
    "v6.0.bt": Script(
        dev=_LIFE,
        dom_dev=(_ATT, _DET),
        zdev=_DMA_API + _ZDEV,
        domain=("s390_iommu_map", "s390_iommu_unmap"),
        bare=(),
        ret=(_LIFE[0], _ATT, "s390_iommu_map", "s390_iommu_unmap", _RPCIT),
        ret_bare=(_LIFE[1], _DET),
    ),
    "v6.2.bt": Script(
        dev=_LIFE,
        dom_dev=(_ATT, _DET),
        zdev=_DMA_API + _ZDEV,
        domain=("s390_iommu_map_pages", "s390_iommu_unmap_pages", *_IOTLB),
        bare=(),
        ret=(_LIFE[0], _ATT, "s390_iommu_map_pages", "s390_iommu_unmap_pages", _RPCIT),
        ret_bare=(_LIFE[1], _DET, *_IOTLB),
    ),
    "v6.7.bt": Script(
        dev=(*_LIFE, "iommu_dma_map_page", "iommu_dma_unmap_page"),
        dom_dev=(_ATT,),
        zdev=_ZDEV,
        domain=("s390_iommu_flush_iotlb_all",),
        bare=("fq_flush_timeout",),
        ret=(_LIFE[0], _ATT, _RPCIT),
        ret_bare=(
            _LIFE[1],
            "iommu_dma_map_page",
            "iommu_dma_unmap_page",
            "s390_iommu_flush_iotlb_all",
            "fq_flush_timeout",
        ),
    ),
}
ERA_SCRIPTS = {
    "v6.0": "v6.0.bt",
    "v6.0+dma_domain_lock": "v6.0.bt",
    "v6.1": "v6.0.bt",
    "v6.5": "v6.2.bt",
    "v6.7": "v6.7.bt",
}


def size_label(n: int) -> str:
    """bpftrace's hist labels: 1024 -> 1K, 1048576 -> 1M, others as numbers."""
    for suffix, shift in (("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return "%d%s" % (n >> shift, suffix)
    return str(n)


def log2_bucket(value: int) -> int:
    """hist(): bucket 0 holds 0, 1 holds 1, k >= 2 holds [2^(k-1), 2^k)."""
    return 0 if value <= 0 else value.bit_length()


def log2_bounds(b: int) -> tuple[int, int]:
    return (0, 0) if b == 0 else (1 << (b - 1), (1 << b) - 1)


def _bars(rows: list[tuple[str, int]]) -> list[str]:
    top = max((c for _, c in rows), default=0) or 1
    return ["%-16s%8d |%-52s|" % (label, c, "@" * (c * BAR // top)) for label, c in rows]


def _span(counts: dict[int, int]) -> range:
    used = [k for k, c in counts.items() if c]
    return range(min(used), max(used) + 1) if used else range(0)


class BpftraceWriter:
    """bpftrace output of the capture script for ``scenario`` (``race`` or ``dma``)."""

    def __init__(self, path: Path, ncpus: int, scenario: str = "race", as_json: bool = False):
        """``scenario`` is ``dma``, or ``race/ERA`` (the era picks the script)."""
        scenario, _, era = scenario.partition("/")
        self.scenario = scenario
        self.script = SCRIPTS[ERA_SCRIPTS[era or "v6.0"]]
        self.json = as_json
        self._out: IO[str] = path.open("w", encoding="utf-8", newline="\n")
        self.entry: dict[tuple[str, int], int] = {}  # @rel[tid], @att[tid]
        self.issued: dict[tuple[str, int], int] = {}  # @issue[dev, sector]
        self.hist: Counter[int] = Counter()
        self.lhist: Counter[int] = Counter()  # -1 below 0, 4 at and above 400
        self.bytes: list[int] = []
        self.counts: dict[str, Counter[str]] = {
            "@maps": Counter(),
            "@unmaps": Counter(),
            "@rwbs": Counter(),
        }
        probes = self.script.probes() if scenario == "race" else DMA_BLOCK_PROBES
        if as_json:
            self._emit_json("attached_probes", {"probes": probes})
        else:
            self._out.write("Attaching %d probes...\n" % probes)
        if scenario == "dma":
            self._printf("Tracing iommu map/unmap and block I/O on zPCI... Hit Ctrl-C to end.\n")

    # --- output ------------------------------------------------------------------------
    def _emit_json(self, kind: str, data: Any) -> None:
        self._out.write(json.dumps({"type": kind, "data": data}) + "\n")

    def _printf(self, text: str) -> None:
        if self.json:
            self._emit_json("printf", text)
        else:
            self._out.write(text)

    # --- events ------------------------------------------------------------------------
    def write(self, events: list[Event]) -> None:
        handle = self._race if self.scenario == "race" else self._dma
        for ts, _, _, task, _, code, values in events:
            text = handle(ts, task, code, values)
            if text:
                self._printf(text)

    def _race(self, ts: int, task: tuple[str, int], code: str, v: tuple[Any, ...]) -> str:
        """The line the era's script prints for this event, or nothing."""
        sc = self.script
        head = "%d %d %s " % (ts, task[1], task[0])
        if code == "call":
            func, args = v[0], dict(v[1:])
            if func in sc.dev:
                return head + "kprobe:%s dev=0x%x name=%s\n" % (func, args["dev"], args["name"])
            if func in sc.dom_dev:
                return head + "kprobe:%s dom=0x%x dev=0x%x name=%s\n" % (
                    func,
                    args["domain"],
                    args["dev"],
                    args["name"],
                )
            if func in sc.zdev:
                return head + "kprobe:%s zdev=0x%x\n" % (func, args["zdev"])
            if func in sc.domain:
                return head + "kprobe:%s domain=0x%x\n" % (func, args["domain"])
            if func in sc.bare:
                return head + "kprobe:%s\n" % func
        elif code == "ret":
            func, _, ret = v
            if func in sc.ret:
                return head + "kretprobe:%s ret=%d\n" % (func, ret or 0)
            if func in sc.ret_bare:
                return head + "kretprobe:%s\n" % func
        elif code == "rpcit":
            fn, addr, size = v
            return head + "kprobe:zpci_refresh_trans fn=0x%x addr=0x%x range=0x%x\n" % (
                fn,
                addr,
                size,
            )
        elif code == "rpcit_r":
            return head + "kretprobe:zpci_refresh_trans ret=%d\n" % v[1]
        return ""

    def _dma(self, ts: int, task: tuple[str, int], code: str, v: tuple[Any, ...]) -> str:
        comm, pid = task
        if code == "iommu_map":
            iova, size, paddr = v
            self.counts["@maps"][comm] += 1
            return "%d iommu_map iova=0x%x paddr=0x%x size=%d\n" % (ts, iova, paddr, size)
        if code == "iommu_unmap":
            iova, size = v
            self.counts["@unmaps"][comm] += 1
            return "%d iommu_unmap iova=0x%x size=%d unmapped=%d\n" % (ts, iova, size, size)
        if code == "rq_issue":
            dev, _, sector, _ = v
            self.issued[(dev, sector)] = ts
            stack = "".join("        %s\n" % f for f in KSTACK)
            return "%d %s pid=%d rwbs=R sector=%d\n\n%s\n" % (ts, comm, pid, sector, stack)
        if code == "rq_complete":
            dev, sector = v
            start = self.issued.pop((dev, sector), None)
            if start is not None:
                us = (ts - start) // 1000
                self.hist[log2_bucket(us)] += 1
                self.lhist[-1 if us < 0 else min(us // 100, 4)] += 1
                self.bytes.append(8 * 512)
                self.counts["@rwbs"]["R, %s" % comm] += 1
        return ""

    # --- maps at exit --------------------------------------------------------------------
    def _hist_rows(self) -> list[tuple[str, int, dict[str, int]]]:
        rows = []
        for b in _span(self.hist):
            lo, hi = log2_bounds(b)
            label = "[%d]" % lo if lo == hi else "[%s, %s)" % (size_label(lo), size_label(hi + 1))
            rows.append((label, self.hist[b], {"min": lo, "max": hi, "count": self.hist[b]}))
        return rows

    def _lhist_rows(self) -> list[tuple[str, int, dict[str, int]]]:
        rows = []
        for b in _span(self.lhist):
            c = self.lhist[b]
            if b == -1:
                rows.append(("(..., 0)", c, {"max": -1, "count": c}))
            elif b == 4:
                rows.append(("[400, ...)", c, {"min": 400, "count": c}))
            else:
                lo = b * 100
                rows.append(
                    ("[%d, %d)" % (lo, lo + 100), c, {"min": lo, "max": lo + 99, "count": c})
                )
        return rows

    def _maps(self) -> None:
        if self.json:
            self._out.write("\n\n")
        else:
            self._out.write("\n")
        if self.bytes:
            n, total = len(self.bytes), sum(self.bytes)
            if self.json:
                self._emit_json(
                    "stats", {"@bytes": {"count": n, "average": total // n, "total": total}}
                )
            else:
                self._out.write(
                    "@bytes: count %d, average %d, total %d\n\n" % (n, total // n, total)
                )
        for name, rows in (("@lat_lhist", self._lhist_rows()), ("@lat_us", self._hist_rows())):
            if not rows:
                continue
            if self.json:
                self._emit_json("hist", {name: [r[2] for r in rows]})
            else:
                lines = _bars([(label, c) for label, c, _ in rows])
                self._out.write("%s:\n%s\n\n" % (name, "\n".join(lines)))
        for name in ("@maps", "@rwbs", "@unmaps"):
            counter = self.counts[name]
            if not counter:
                continue
            ordered = sorted(counter.items(), key=lambda kv: (kv[1], kv[0]))
            if self.json:
                self._emit_json("map", {name: {k.replace(", ", ","): c for k, c in ordered}})
            else:
                self._out.write("".join("%s[%s]: %d\n" % (name, k, c) for k, c in ordered) + "\n")

    def close(self) -> None:
        if self.scenario == "dma":
            self._maps()
        self._out.close()

    def abort(self) -> None:
        self._out.close()
