"""The DMA I/O workload: fio-like 4 KiB NVMe reads through the DMA API, under one of
the IOTLB flush schemes of docs/domain.md section 9.2, on LPAR or under a hypervisor.

Each fio job runs on its own CPU with ``iodepth`` reads in flight. A read maps its
buffer (process context), is issued, completes after the device latency (hard irq on
the same CPU) and is unmapped there. What the map and unmap cost depends on the scheme:

* ``s390-lazy`` / ``s390-strict`` (v6.0 ``arch/s390/pci/pci_dma.c``): a map takes an
  IOVA from the bitmap under ``iommu_bitmap_lock``; ``__dma_purge_tlb`` issues an
  RPCIT for the mapped page when the hypervisor needs one (``tlb_refresh``), and for
  every unmapped page in strict mode. Lazy mode instead flushes the whole aperture
  once, from ``dma_alloc_address``, when the bitmap wraps.
* ``dma-strict`` (v6.7+ dma-iommu, ``iommu.strict=1``): ``iotlb_sync_map`` after a map
  (only with ``tlb_refresh``), ``iotlb_sync`` after every unmap.
* ``fq-percpu`` / ``fq-single`` (v6.7+ lazy dma-iommu): unmapped IOVAs wait in a flush
  queue; a full queue, or the queue's timer, flushes everything with
  ``flush_iotlb_all``. Per-CPU queues hold 256 entries with a 10 ms timer, the single
  queue 32768 entries with 1 s, unless ``fq_size``/``fq_timeout_ms`` say otherwise.

A CPU runs one thing at a time (the map path, an irq, the flush timer); an RPCIT keeps
its CPU until it returns. Under a hypervisor RPCITs are also serialized across CPUs.

Under a hypervisor (``tlb_refresh``) a page the guest unmapped without an RPCIT (lazy
s390 unmaps, flush-queue entries) stays pinned in its shadow tables until a global
RPCIT. With ``shadow_pages`` set, once that many are pinned the next map's RPCIT fails
with -ENOMEM (cc 1, status 4 or 16), and the kernel answers with a global RPCIT from
the same place (``zpci_refresh_global`` in ``__dma_purge_tlb``, ``zpci_refresh_all`` in
``iotlb_sync_map``) so the hypervisor can unpin them.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from tracetool.simulate.costs import Costs
from tracetool.simulate.engine import Engine, Process, Resource, RowSpill, Task, acquire, at

PAGE = 4096
SCHEMES = ("s390-lazy", "s390-strict", "dma-strict", "fq-percpu", "fq-single")
FQ_DEFAULTS = {"fq-percpu": (256, 10), "fq-single": (32768, 1000)}
T0 = 700_000_000_000  # the run starts 700 s after boot
ENOMEM = -12


@dataclass(frozen=True)
class Device:
    """One zPCI function (docs/domain.md section 8.1)."""

    name: str = "0004:00:00.0"
    fh: int = 0x80A00000
    dev: int = 0x8F3A40C8  # struct device *
    domain: int = 0x9A7C1E00  # struct iommu_domain *
    blockdev: str = "259,0"
    start_dma: int = 0x100000000


@dataclass(frozen=True)
class DmaOptions:
    scheme: str = "s390-lazy"
    env: str = "zvm"
    jobs: int = 8
    iodepth: int = 8
    duration_ms: float = 100.0
    seed: int = 2022
    aperture_pages: int = 16384 * 256  # 16 GiB of 4 KiB pages
    fq_size: int | None = None
    fq_timeout_ms: float | None = None
    shadow_pages: int | None = None  # pinned pages past which RPCITs fail with -ENOMEM
    device: Device = field(default_factory=Device)

    def era(self) -> str:
        return "v6.0" if self.scheme.startswith("s390-") else "v6.7"

    def queue(self) -> tuple[int, float]:
        size, timeout = FQ_DEFAULTS.get(self.scheme, (0, 0))
        return (
            self.fq_size if self.fq_size is not None else size,
            self.fq_timeout_ms if self.fq_timeout_ms is not None else timeout,
        )


@dataclass
class Truth:
    """What the model did, for the ground-truth sidecar."""

    ios: int = 0
    bytes: int = 0
    unmaps: int = 0
    rpcit: int = 0
    rpcit_global: int = 0
    rpcit_ranged: int = 0
    rpcit_ns: int = 0
    rpcit_enomem: int = 0  # RPCITs that failed with -ENOMEM
    rpcit_fallback: int = 0  # the global RPCITs the kernel issued in answer
    by_caller: dict[str, int] = field(default_factory=dict)
    first_issue: int | None = None
    last_complete: int = 0
    flushes: RowSpill = field(default_factory=RowSpill)


class DmaRun:
    """One run of the workload: the processes, the shared state and the truth."""

    def __init__(self, opts: DmaOptions, costs: Costs, engine: Engine) -> None:
        if opts.scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {opts.scheme!r}; choose one of {', '.join(SCHEMES)}")
        self.o = opts
        self.env = costs.env(opts.env)
        self.w = costs.workload
        self.engine = engine
        self.rng = random.Random(opts.seed)
        self.truth = Truth()
        self.cpus = [Resource(f"cpu{n}") for n in range(opts.jobs)]
        self.hv = Resource("hypervisor")
        self.bitmap_lock = Resource("iommu_bitmap_lock")
        self.aperture_pages = opts.aperture_pages
        self.next_bit = 0
        self.pinned = 0  # unmapped pages the hypervisor still holds (see the module doc)
        self.end = T0 + int(opts.duration_ms * 1_000_000)
        self.fq_size, fq_timeout_ms = opts.queue()
        self.fq_timeout = int(fq_timeout_ms * 1_000_000)
        self.fq_pending = [0] * opts.jobs  # entries queued per CPU since the last flush
        self.fq_timer_on = False
        self.jitter = self.w.jitter
        self.era = opts.era()

    # --- helpers ---------------------------------------------------------------------
    def draw(self, ns: float) -> int:
        j = self.jitter
        return int(ns * (1.0 + j * (2.0 * self.rng.random() - 1.0))) if j else int(ns)

    def rpcit(
        self,
        t: int,
        cpu: int,
        task: Task,
        flags: str,
        addr: int,
        size: int,
        site: str,
        scope: str,
        cost: float,
        ret: int = 0,
    ) -> Generator[Any, int, int]:
        """One zpci_refresh_trans() called from ``site`` at ``t`` that returns ``ret``;
        returns its end."""
        em = self.engine.emit
        fn = self.o.device.fh << 32
        em(t, cpu, task, flags, "rpcit", fn, addr, size)
        start = t
        if self.env.serialized:
            start = yield acquire(self.hv, t)
        done = start + self.draw(cost)
        if self.env.serialized:
            self.engine.release(self.hv, done)
        em(done, cpu, task, flags, "rpcit_r", site, ret)
        tr = self.truth
        tr.rpcit += 1
        tr.rpcit_ns += done - t
        if scope == "global":
            tr.rpcit_global += 1
            self.pinned = 0
        else:
            tr.rpcit_ranged += 1
        tr.by_caller[site] = tr.by_caller.get(site, 0) + 1
        tr.flushes.append((t, done, cpu, site, scope, addr, size, ret))
        return done

    def map_rpcit(
        self, t: int, cpu: int, task: Task, flags: str, iova: int, site: str
    ) -> Generator[Any, int, int]:
        """The RPCIT a map needs under a hypervisor. When the hypervisor holds
        ``shadow_pages`` pinned it fails with -ENOMEM, and the kernel flushes globally
        from the same function. (Strict s390 unmaps pin nothing, so this never fails
        there; its kernel would not fall back.)"""
        limit = self.o.shadow_pages
        full = limit is not None and self.pinned >= limit
        t = yield from self.rpcit(
            t,
            cpu,
            task,
            flags,
            iova,
            PAGE,
            site,
            "ranged",
            self.ranged_cost(1, False),
            ENOMEM if full else 0,
        )
        if full:
            self.truth.rpcit_enomem += 1
            t = yield from self.rpcit(
                t + 300,
                cpu,
                task,
                flags,
                self.o.device.start_dma,
                self.aperture_pages * PAGE,
                site,
                "global",
                self.global_cost(self.pinned),
            )
            self.truth.rpcit_fallback += 1
        return t

    def ranged_cost(self, pages: int, unpin: bool) -> float:
        e = self.env
        return (
            e.rpcit_ns + e.rpcit_page_ns * (pages - 1) + (e.unpin_page_ns * pages if unpin else 0)
        )

    def global_cost(self, freed: int) -> float:
        e = self.env
        return e.global_ns + e.global_page_ns * self.aperture_pages + e.unpin_page_ns * freed

    # --- map and unmap -----------------------------------------------------------------
    def map(self, t: int, cpu: int, task: Task) -> Generator[Any, int, tuple[int, int]]:
        d, em = self.o.device, self.engine.emit
        func = "s390_dma_map_pages" if self.era == "v6.0" else "iommu_dma_map_page"
        em(t, cpu, task, ".....", "dma_map", func, d.dev, d.name, PAGE)
        t += self.draw(self.w.map_cpu_ns)
        if self.era == "v6.0":
            t = yield acquire(self.bitmap_lock, t)
            if self.next_bit >= self.aperture_pages:  # the bitmap wraps
                self.next_bit = 0
                if self.o.scheme == "s390-lazy":
                    freed = self.aperture_pages
                    t = yield from self.rpcit(
                        t,
                        cpu,
                        task,
                        "d..1.",
                        d.start_dma,
                        self.aperture_pages * PAGE,
                        "dma_alloc_address",
                        "global",
                        self.global_cost(freed),
                    )
            iova = d.start_dma + self.next_bit * PAGE
            self.next_bit += 1
            self.engine.release(self.bitmap_lock, t)
            if self.env.tlb_refresh:
                t = yield from self.map_rpcit(t, cpu, task, "...1.", iova, "__dma_purge_tlb")
        else:
            iova = d.start_dma + (self.next_bit % self.aperture_pages) * PAGE
            self.next_bit += 1
            em(t, cpu, task, ".....", "iommu_map", iova, PAGE, 0x2_0000_0000 + iova)
            if self.env.tlb_refresh:
                t = yield from self.map_rpcit(
                    t, cpu, task, ".....", iova, "s390_iommu_iotlb_sync_map"
                )
        t += 200
        em(t, cpu, task, ".....", "dma_map_r", func, iova)
        return iova, t

    def unmap(self, t: int, cpu: int, task: Task, iova: int) -> Generator[Any, int, int]:
        d, em, scheme = self.o.device, self.engine.emit, self.o.scheme
        func = "s390_dma_unmap_pages" if self.era == "v6.0" else "iommu_dma_unmap_page"
        irq = "d.h1."
        em(t, cpu, task, irq, "dma_unmap", func, d.dev, d.name, iova, PAGE)
        t += self.draw(self.w.unmap_cpu_ns)
        if self.era != "v6.0":
            em(t, cpu, task, irq, "iommu_unmap", iova, PAGE)
        if scheme in ("s390-strict", "dma-strict"):
            site = "__dma_purge_tlb" if scheme == "s390-strict" else "s390_iommu_iotlb_sync"
            t = yield from self.rpcit(
                t, cpu, task, irq, iova, PAGE, site, "ranged", self.ranged_cost(1, True)
            )
        else:  # the page stays pinned until a global RPCIT
            if self.env.tlb_refresh:
                self.pinned += 1
            if scheme.startswith("fq-"):
                t = yield from self.queue_iova(t, cpu, task, irq)
        t += 200
        em(t, cpu, task, irq, "dma_unmap_r", func)
        self.truth.unmaps += 1
        return t

    # --- flush queues ------------------------------------------------------------------
    def queue_iova(self, t: int, cpu: int, task: Task, flags: str) -> Generator[Any, int, int]:
        """queue_iova(): the entry waits for the next flush; a full queue flushes now."""
        q = cpu if self.o.scheme == "fq-percpu" else 0
        self.fq_pending[q] += 1
        if self.fq_pending[q] >= self.fq_size:
            t = yield from self.flush_all(t, cpu, task, flags, "fq_flush_iotlb")
        if not self.fq_timer_on:
            self.fq_timer_on = True
            self.engine.start(self.fq_timer(cpu), t + self.fq_timeout)
        return t

    def flush_all(
        self, t: int, cpu: int, task: Task, flags: str, caller: str
    ) -> Generator[Any, int, int]:
        """flush_iotlb_all(): one global RPCIT; every queued IOVA is then free."""
        d, em = self.o.device, self.engine.emit
        freed = sum(self.fq_pending)
        self.fq_pending = [0] * len(self.fq_pending)
        em(t, cpu, task, flags, "flush_all", d.domain)
        t += 300
        t = yield from self.rpcit(
            t,
            cpu,
            task,
            flags,
            d.start_dma,
            self.aperture_pages * PAGE,
            "s390_iommu_flush_iotlb_all",
            "global",
            self.global_cost(freed),
        )
        t += 200
        em(t, cpu, task, flags, "flush_all_r", caller)
        return t

    def fq_timer(self, cpu: int) -> Process:
        """fq_flush_timeout(): the timer softirq on the CPU that armed it."""
        t = yield at(0)  # resumed at the expiry
        if t > self.end:  # the capture stopped with the workload
            self.fq_timer_on = False
            return
        t = yield acquire(self.cpus[cpu], t)
        self.fq_timer_on = False
        task, flags = self.task(cpu), "..s1."
        self.engine.emit(t, cpu, task, flags, "fq_timeout")
        t = yield from self.flush_all(t + 500, cpu, task, flags, "fq_flush_timeout")
        t += 300
        self.engine.emit(t, cpu, task, flags, "fq_timeout_r")
        self.engine.release(self.cpus[cpu], t)

    # --- the jobs ----------------------------------------------------------------------
    def task(self, cpu: int) -> Task:
        return ("fio", 2300 + cpu)

    def slot(self, cpu: int, k: int) -> Process:
        """One of the job's in-flight reads, resubmitted until the run's time is up."""
        d, em, w, tr = self.o.device, self.engine.emit, self.w, self.truth
        task, res = self.task(cpu), self.cpus[cpu]
        t = yield at(0)
        while t < self.end:
            t = yield acquire(res, t)
            iova, t = yield from self.map(t, cpu, task)
            t += self.draw(w.submit_ns)
            sector = self.rng.randrange(0, 1 << 24) * 8
            em(t, cpu, task, ".....", "rq_issue", d.blockdev, PAGE, sector, task[0])
            if tr.first_issue is None:
                tr.first_issue = t
            self.engine.release(res, t)
            t = yield acquire(res, t + self.draw(w.device_ns))
            em(t, cpu, task, "d.h1.", "rq_complete", d.blockdev, sector)
            tr.ios += 1
            tr.bytes += PAGE
            tr.last_complete = t
            t = yield from self.unmap(t + self.draw(w.complete_ns), cpu, task, iova)
            self.engine.release(res, t)
            t += self.draw(w.think_ns)

    def start(self) -> None:
        for cpu in range(self.o.jobs):
            for k in range(self.o.iodepth):
                self.engine.start(self.slot(cpu, k), T0 + cpu * 7_000 + k * 53_000)

    def summary(self) -> dict[str, Any]:
        tr = self.truth
        span = (tr.last_complete - tr.first_issue) if tr.first_issue is not None else 0
        return {
            "ios": tr.ios,
            "bytes": tr.bytes,
            "unmaps": tr.unmaps,
            "rpcit": tr.rpcit,
            "rpcit_global": tr.rpcit_global,
            "rpcit_ranged": tr.rpcit_ranged,
            "rpcit_enomem": tr.rpcit_enomem,
            "rpcit_fallback": tr.rpcit_fallback,
            "rpcit_by_caller": dict(sorted(tr.by_caller.items())),
            "rpcit_mean_ns": tr.rpcit_ns / tr.rpcit if tr.rpcit else None,
            "iops": tr.ios / (span / 1e9) if span > 0 else None,
            "hypervisor_busy": self.hv.busy_ns / span if span > 0 else None,
        }
