#!/usr/bin/env python3
"""Render a strict and a lazy run of the same fio workload under z/VM (s390 DMA API, v6.0).

    python3 samples/capture/make_flush_samples.py            # (re)write samples/flush/
    python3 samples/capture/make_flush_samples.py --check    # exit 1 if a file on disk differs

Why: `tracetool stats` and `tracetool diff` need two runs whose flush behaviour differs the way
docs/domain.md section 9 describes, and whose truth is known. The model is small and seeded
(same bytes on every run):

* eight fio jobs, one per CPU, each with one 4 KiB read in flight (QD1) on nvme 259,0, device
  0004:00:00.0 (fh 0x80a00000);
* every map needs an RPCIT under z/VM (``tlb_refresh``): ``s390_dma_map_pages`` ->
  ``__dma_purge_tlb`` -> ``zpci_refresh_trans`` of the mapped page;
* strict (``s390_iommu=strict``): every unmap issues a second RPCIT from ``__dma_purge_tlb``;
* lazy (the default): unmaps issue none; when the IOVA bitmap wraps, ``dma_alloc_address``
  issues one global RPCIT over the whole aperture;
* the hypervisor shadows the I/O translation tables and serialises RPCITs across CPUs, so an
  RPCIT waits for the one before it (its traced latency includes that wait).

With RPCIT the bottleneck, halving the RPCITs per I/O about doubles the IOPS: lazy ~2x strict,
the figure of the 2022 discussion. A ground-truth JSON beside each trace lists what the model
did (I/Os, RPCITs by scope, unmaps, mean RPCIT latency).

The formats are those of make_s390_samples.py (kprobe/kretprobe, block_rq_* of v6.0).
"""

# ruff: noqa: UP031

from __future__ import annotations

import heapq
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_s390_samples as s

OUT = s.SAMPLES / "flush"
JOBS = 8
DURATION_NS = 12_000_000
T0 = s.us(700.0)
IOVA_PAGES = 128  # a small aperture, so the lazy run wraps a few times
PAGE = 4096
RPCIT_NS = 18_000  # one page, shadowed by the hypervisor
GLOBAL_RPCIT_NS = 55_000
DEVICE_NS = 80_000
THINK_NS = 4_000  # fio between two I/Os
NAME = '"%s"' % s.PCI

s.SYMS.setdefault("s390_dma_map_pages", (0x95B5A3100, 0x280))
s.SYMS.setdefault("s390_dma_unmap_pages", (0x95B5A3380, 0x160))
s.SYMS.setdefault("dma_map_page_attrs", (0x95B6C1E08, 0x1A8))
s.SYMS.setdefault("dma_unmap_page_attrs", (0x95B6C1FB0, 0x190))


@dataclass
class Run:
    """The model's state and what it did."""

    strict: bool
    rng: random.Random
    events: list[s.Ev] = field(default_factory=list)
    hv_free: int = 0  # when the hypervisor can take the next RPCIT
    next_bit: int = 0
    truth: dict[str, int] = field(
        default_factory=lambda: {
            "ios": 0,
            "bytes": 0,
            "rpcit": 0,
            "rpcit_global": 0,
            "rpcit_ranged": 0,
            "unmaps": 0,
            "rpcit_ns": 0,
        }
    )

    def jitter(self, ns: int, spread: float = 0.25) -> int:
        return int(ns * (1 + self.rng.uniform(-spread, spread)))

    def rpcit(
        self,
        t: int,
        cpu: int,
        task: tuple[str, int],
        flags: str,
        addr: int,
        rng: int,
        site: str,
        off: int,
        cost: int,
    ) -> int:
        """One zpci_refresh_trans() from ``site``: entry at ``t``, return when the
        hypervisor is done. Returns the return time."""
        start = max(t, self.hv_free)
        done = start + self.jitter(cost)
        self.hv_free = done
        self.events.append(s.Ev(t, cpu, task, flags, s.rpcit(addr, rng)))
        self.events.append(s.Ev(done, cpu, task, flags, s.rpcit_r(site, off, 0)))
        self.truth["rpcit"] += 1
        self.truth["rpcit_global" if rng > PAGE else "rpcit_ranged"] += 1
        self.truth["rpcit_ns"] += done - t
        return done + 1_000

    def alloc(self, t: int, cpu: int, task: tuple[str, int]) -> Iterator[int]:
        """dma_alloc_address(): the next IOVA; on a wrap the lazy run flushes globally.
        Yields the times it needs the hypervisor at; returns (iova, time)."""
        if self.next_bit == IOVA_PAGES:
            self.next_bit = 0
            if not self.strict:
                yield t
                t = self.rpcit(
                    t,
                    cpu,
                    task,
                    "d..1.",
                    s.START_DMA,
                    IOVA_PAGES * PAGE,
                    "dma_alloc_address",
                    0x10C,
                    GLOBAL_RPCIT_NS,
                )
        iova = s.START_DMA + self.next_bit * PAGE
        self.next_bit += 1
        return iova, t

    def io(self, t: int, job: int) -> Iterator[int]:
        """One read of job ``job`` starting at ``t``. Yields each time it needs the
        hypervisor at (the caller resumes it in time order); returns when the job can
        go on."""
        cpu, task = job, ("fio", 2300 + job)
        dev = s.x64(s.DEV)

        def ev(t: int, body: str, in_irq: bool = False) -> None:
            """An entry of the fio task, or of the completion irq on its CPU."""
            who, flags = (s.IDLE, "d.h1.") if in_irq else (task, ".....")
            self.events.append(s.Ev(t, cpu, who, flags, body))

        map_args = s.a(dev=dev, name=NAME, size="0x1000")
        ev(t, s.kp("dmamap", "s390_dma_map_pages", map_args))
        iova, t = yield from self.alloc(t + 1_000, cpu, task)
        yield t
        t = self.rpcit(t, cpu, task, "...1.", iova, PAGE, "__dma_purge_tlb", 0x7C, RPCIT_NS)
        ret = s.a(ret=s.x64(iova))
        ev(t, s.krp("dmamap_r", "dma_map_page_attrs", 0x9C, "s390_dma_map_pages", ret))
        sector = self.rng.randrange(0, 1 << 24) * 8
        t += 2_000
        ev(t, s.rq_issue("R", PAGE, sector, 8, "fio", None))
        t += self.jitter(DEVICE_NS)
        ev(t, s.rq_complete("R", sector, 8, 0, None), in_irq=True)
        t += 1_000
        unmap_args = s.a(dev=dev, name=NAME, addr=s.x64(iova), size="0x1000")
        ev(t, s.kp("dmaunmap", "s390_dma_unmap_pages", unmap_args), in_irq=True)
        t += 1_000
        if self.strict:
            yield t
            t = self.rpcit(t, cpu, s.IDLE, "d.h1.", iova, PAGE, "__dma_purge_tlb", 0x7C, RPCIT_NS)
        unmapped = s.krp("dmaunmap_r", "dma_unmap_page_attrs", 0x7A, "s390_dma_unmap_pages")
        ev(t, unmapped, in_irq=True)
        self.truth["unmaps"] += 1
        self.truth["ios"] += 1
        self.truth["bytes"] += PAGE
        return t + self.jitter(THINK_NS)


def job(run: Run, n: int) -> Iterator[int]:
    """Job ``n``'s reads, one after another, until the run's time is up."""
    t = T0 + n * 7_000
    while t < T0 + DURATION_NS:
        t = yield from run.io(t, n)


def simulate(strict: bool, seed: int) -> Run:
    """Every job runs until it needs the hypervisor; the earliest request goes next, so
    RPCITs are served in the order they were asked for."""
    run = Run(strict, random.Random(seed))
    waiting: list[tuple[int, int, Iterator[int]]] = []
    for n in range(JOBS):
        steps = job(run, n)
        for t in steps:
            heapq.heappush(waiting, (t, n, steps))
            break
    while waiting:
        _, n, steps = heapq.heappop(waiting)
        for t in steps:
            heapq.heappush(waiting, (t, n, steps))
            break
    return run


def trace(run: Run) -> list[str]:
    events = s.merge(run.events)
    body = s.render_events(s.Fmt(), events)
    n = s.n_entries(events)
    return s.trace_file("nop", s.header_irq5(False), body, n, n, ncpus=JOBS)


# The counters of /sys/kernel/debug/pci/0004:00:00.0/statistics before a run (v6.0 names:
# function measurement block, format 0, then the DMA API's software counters).
BASELINE = {
    "Load operations": 1_208_331,
    "Store operations": 96_114,
    "Store block operations": 0,
    "Refresh operations": 4_410_927,
    "DMA read bytes": 18_253_824_000,
    "DMA write bytes": 7_340_032_000,
    "Allocated pages": 1_024,
    "Mapped pages": 4_456_448,
    "Unmapped pages": 4_456_320,
}


def statistics(counters: dict[str, int], samples: int) -> str:
    """pci_perf_show() (arch/s390/pci/pci_debug.c): header, then "%26s:\t%llu" lines."""
    lines = ["Update interval: 4000 ms", "Samples: %u" % samples]
    lines.append("Last update TOD: %x" % (0xDC1F3A5B00000000 + samples * 0xEE6B2800))
    lines += ["%26s:\t%d" % (name, value) for name, value in counters.items()]
    return "\n".join(lines) + "\n"


def snapshots(run: Run) -> tuple[str, str]:
    """The statistics file read before and after ``run``: the kernel counted every RPCIT
    (Refresh operations), every page mapped and unmapped, every byte read by DMA."""
    after = dict(BASELINE)
    after["Refresh operations"] += run.truth["rpcit"]
    after["Mapped pages"] += run.truth["ios"]
    after["Unmapped pages"] += run.truth["unmaps"]
    after["DMA read bytes"] += run.truth["bytes"]
    after["Load operations"] += 3 * run.truth["ios"]  # doorbells and completions
    return statistics(BASELINE, 301), statistics(after, 304)


def outputs() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for mode in ("strict", "lazy"):
        run = simulate(mode == "strict", seed=2022)
        files[OUT / ("s390-fio-zvm-%s.txt" % mode)] = "\n".join(trace(run)) + "\n"
        before, after = snapshots(run)
        files[OUT / ("s390-fio-zvm-%s.statistics-before" % mode)] = before
        files[OUT / ("s390-fio-zvm-%s.statistics-after" % mode)] = after
        truth = dict(run.truth, mode=mode, jobs=JOBS, duration_ns=DURATION_NS)  # type: ignore[arg-type]
        files[OUT / ("s390-fio-zvm-%s.truth.json" % mode)] = json.dumps(truth, indent=2) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    return s.render(outputs(), __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
