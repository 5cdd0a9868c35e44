"""deconfigure-during-vfio-init: the 2022 race of docs/domain.md section 8.3, per
kernel era.

Per device, at boot a kworker sets up the DMA API and the IOMMU core probes the
device. Later QEMU (VFIO) attaches the device to an IOMMU domain under the group
mutex, maps a few pages and detaches again; meanwhile a PEC 0x303 event makes kmcheck
deconfigure the device, which releases it from the IOMMU (``s390_iommu_release_device``
detaches it itself when a domain is still set). What keeps the two apart depends on
the era:

* ``v6.0``: nothing. Release runs without the group mutex, so it can overlap QEMU's
  attach or detach. When release's ``zpci_dma_init_device`` runs while the attach has
  set ``zdev->s390_domain``, ``WARN_ON(zdev->s390_domain)`` fires; with panic_on_warn
  the kernel panics and ``ftrace_dump_on_oops`` dumps the trace into the log.
* ``v6.0+dma_domain_lock`` (the proposed patch): attach, detach and release take
  ``zdev->dma_domain_lock`` (traced ``mutex_lock``/``mutex_unlock`` probes); release
  finds the device already released by the time attach could run, and attach gives up.
* ``v6.1``: VFIO's strict group lifetime: the deconfigure waits in
  ``vfio_unregister_group_dev`` until QEMU dropped the group, so release comes after
  QEMU's detach.
* ``v6.5``: the IOMMU core releases the device with the group mutex held.

Every overlap, lock hold and flush goes into the ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from tracetool.simulate.engine import Engine, Process, Resource, Task, acquire, at, park

ERAS = ("v6.0", "v6.0+dma_domain_lock", "v6.1", "v6.5")
T0 = 318_207_400_000  # boot-time probing, 318 s after boot
KWORKER: Task = ("kworker/u64:2", 123)
KMCHECK: Task = ("kmcheck", 41)
FLAGS = "...1."


@dataclass(frozen=True)
class RaceOptions:
    era: str = "v6.0"
    devices: int = 1
    seed: int = 2022
    maps: int = 4  # VFIO_IOMMU_MAP_DMA calls between attach and detach


@dataclass
class Dev:
    index: int
    name: str
    fid: int
    fh: int
    dev: int
    zdev: int
    domain: int
    group: int
    qemu: Task
    s390_domain: bool = False
    released: bool = False


@dataclass
class RaceTruth:
    spans: list[dict[str, Any]] = field(default_factory=list)
    overlaps: list[dict[str, Any]] = field(default_factory=list)
    locks: list[dict[str, Any]] = field(default_factory=list)
    flushes: list[tuple[int, int, int, str, str, int, int, int]] = field(default_factory=list)
    warns: list[dict[str, Any]] = field(default_factory=list)


class RaceRun:
    def __init__(self, opts: RaceOptions, engine: Engine) -> None:
        if opts.era not in ERAS:
            raise ValueError(f"unknown era {opts.era!r}; choose one of {', '.join(ERAS)}")
        self.o = opts
        self.engine = engine
        self.rng = random.Random(opts.seed)
        self.truth = RaceTruth()
        self.devs = [
            Dev(
                i,
                f"{4 + i:04x}:00:00.0",
                0x12 + i,
                0x80A00000 + (i << 8),
                0x8F3A40C8 + i * 0x11000,
                0x8C1E2000 + i * 0x4000,
                0x9A7C1E00 + i * 0x2000,
                4 + i,
                ("qemu-system-s39", 5082 + 37 * i),
            )
            for i in range(opts.devices)
        ]
        self.group_mutex = [Resource(f"group{d.group}->mutex") for d in self.devs]
        self.dma_lock = [Resource(f"zdev{d.index}->dma_domain_lock") for d in self.devs]
        self.qemu_done = [False] * opts.devices
        self.waiting_release: list[bool] = [False] * opts.devices
        self.kmcheck_procs: list[Process] = []
        self.warned = False
        self.open: dict[tuple[int, str], list[dict[str, Any]]] = {}

    # --- recording helpers -------------------------------------------------------------
    def ev(self, t: int, cpu: int, task: Task, code: str, *values: Any, flags: str = FLAGS) -> None:
        self.engine.emit(t, cpu, task, flags, code, *values)

    def enter(self, t: int, cpu: int, task: Task, d: Dev, kind: str, func: str, *args: Any) -> None:
        self.ev(t, cpu, task, "call", func, *args)
        span = {
            "device": d.name,
            "kind": kind,
            "func": func,
            "pid": task[1],
            "comm": task[0],
            "cpu": cpu,
            "start_ns": t,
            "end_ns": None,
        }
        self.open.setdefault((d.index, func), []).append(span)
        self.truth.spans.append(span)

    def leave(self, t: int, cpu: int, task: Task, d: Dev, func: str, site: str, ret: Any) -> None:
        self.ev(t, cpu, task, "ret", func, site, ret)
        span = self.open[(d.index, func)].pop()
        span["end_ns"] = t

    def step(self, lo: int, hi: int) -> int:
        return self.rng.randrange(lo, hi)

    # --- the three actors --------------------------------------------------------------
    def boot(self, d: Dev) -> Process:
        cpu, k = 2, KWORKER
        t = yield at(0)
        self.ev(t, cpu, k, "call", "zpci_dma_init_device", ("zdev", d.zdev))
        t += self.step(8_000, 15_000)
        self.enter(
            t, cpu, k, d, "probe", "s390_iommu_probe_device", ("dev", d.dev), ("name", d.name)
        )
        t += self.step(2_000, 5_000)
        self.leave(t, cpu, k, d, "s390_iommu_probe_device", "__iommu_probe_device", 0)
        t += self.step(3_000, 9_000)
        self.ev(t, cpu, k, "group", "add_device_to_group", d.group, d.name, flags=".....")

    def locked(self, d: Dev, t: int, cpu: int, task: Task, what: str) -> Any:
        """mutex_lock(&zdev->dma_domain_lock) as the patch era traces it."""
        lock = self.dma_lock[d.index]
        self.ev(t, cpu, task, "call", "mutex_lock", ("lock", d.zdev + 0x2F8))
        t = yield acquire(lock, t + 300)
        self.truth.locks.append(
            {
                "device": d.name,
                "lock": "zdev->dma_domain_lock",
                "pid": task[1],
                "what": what,
                "acquired_ns": t,
            }
        )
        return t

    def unlocked(self, d: Dev, t: int, cpu: int, task: Task) -> None:
        self.ev(t, cpu, task, "call", "mutex_unlock", ("lock", d.zdev + 0x2F8))
        self.truth.locks[-1]["released_ns"] = t  # the last hold is the one being released
        self.engine.release(self.dma_lock[d.index], t)

    def qemu(self, d: Dev) -> Process:
        """VFIO_SET_IOMMU (attach), a few VFIO_IOMMU_MAP_DMA calls, then close (detach)."""
        cpu, q, era = d.index % 2, d.qemu, self.o.era
        mutex = self.group_mutex[d.index]
        t = yield at(0)
        t = yield acquire(mutex, t)
        self.truth.locks.append(
            {
                "device": d.name,
                "lock": "group->mutex",
                "pid": q[1],
                "what": "attach",
                "acquired_ns": t,
                "implicit": True,
            }
        )
        hold = self.truth.locks[-1]
        self.enter(
            t,
            cpu,
            q,
            d,
            "attach",
            "s390_iommu_attach_device",
            ("domain", d.domain),
            ("dev", d.dev),
            ("name", d.name),
        )
        attached = True
        if era == "v6.0+dma_domain_lock":
            t = yield from self.locked(d, t + 1_000, cpu, q, "attach")
            attached = not d.released  # the patch: dev_iommu_priv_get() is NULL once released
        if attached:
            t = yield at(t + self.step(4_000, 9_000))
            self.ev(t, cpu, q, "call", "zpci_dma_exit_device", ("zdev", d.zdev))
            t = yield at(t + self.step(10_000, 20_000))
            self.ev(t, cpu, q, "call", "zpci_register_ioat", ("zdev", d.zdev))
            t = yield at(t + self.step(20_000, 40_000))
            d.s390_domain = True
            t = yield at(t + self.step(5_000, 15_000))
        if era == "v6.0+dma_domain_lock":
            self.unlocked(d, t, cpu, q)
            t += 500
        self.leave(t, cpu, q, d, "s390_iommu_attach_device", "__iommu_attach_device", 0)
        if attached:
            self.ev(t + 4_000, cpu, q, "dev", "attach_device_to_domain", d.name, flags=".....")
        t += 6_000
        hold["released_ns"] = t
        self.engine.release(mutex, t)
        # VFIO maps guest memory; each map refreshes the translations of every device
        # still in the domain (one RPCIT per device and page).
        iovas = [0x20000 + n * 0x1000 for n in range(self.o.maps if attached else 0)]
        for n, iova in enumerate(iovas):
            t = yield at(t + self.step(30_000, 90_000))
            t = self.update(d, t, cpu, q, "map", (iova, 0x1000, 0x7F4A000 + n * 0x1000))
        # The guest sees the device go away; QEMU closes the container, which unmaps
        # everything (vfio_iommu_unmap_unpin_all) and then detaches the group.
        t = yield at(t + self.step(200_000, 400_000))
        for iova in iovas:
            t = self.update(d, t, cpu, q, "unmap", (iova, 0x1000))
            t = yield at(t + self.step(2_000, 6_000))
        t = yield acquire(mutex, t)
        self.truth.locks.append(
            {
                "device": d.name,
                "lock": "group->mutex",
                "pid": q[1],
                "what": "detach",
                "acquired_ns": t,
                "implicit": True,
            }
        )
        hold = self.truth.locks[-1]
        t = yield from self.detach(d, t, cpu, q, "__iommu_detach_device")
        hold["released_ns"] = t + 2_000
        self.engine.release(mutex, t + 2_000)
        self.qemu_done[d.index] = True
        if self.waiting_release[d.index]:  # v6.1: the deconfigure waited for the group
            self.engine.wake(self.kmcheck_procs[d.index], t + 15_000)

    def update(self, d: Dev, t: int, cpu: int, q: Task, op: str, values: tuple[int, ...]) -> int:
        """One VFIO map or unmap of a page (``op``: map or unmap) and its RPCIT for the
        device while it is in the domain, then the core's iommu:map/unmap tracepoint.
        Up to v6.1 the RPCIT comes from s390_iommu_update_trans inside
        s390_iommu_map/unmap; from v6.2 from the IOTLB op the core calls after
        map_pages/unmap_pages (iotlb_sync_map, iotlb_sync)."""
        iova = values[0]
        if self.o.era in ("v6.0", "v6.0+dma_domain_lock", "v6.1"):
            outer, site, back = f"s390_iommu_{op}", "s390_iommu_update_trans", f"__iommu_{op}"
            self.ev(t, cpu, q, "call", outer, ("domain", d.domain))
            t = self.refresh(d, t + self.step(2_000, 4_000), cpu, q, site, iova)
            self.ev(t + 1_000, cpu, q, "ret", outer, back, 0)
        else:
            outer, back = f"s390_iommu_{op}_pages", f"__iommu_{op}"
            self.ev(t, cpu, q, "call", outer, ("domain", d.domain))
            t += self.step(2_000, 4_000)
            self.ev(t, cpu, q, "ret", outer, back, 0)
            sync = "s390_iommu_iotlb_sync_map" if op == "map" else "s390_iommu_iotlb_sync"
            t += 1_000
            self.ev(t, cpu, q, "call", sync, ("domain", d.domain))
            t = self.refresh(d, t + 1_000, cpu, q, sync, iova)
            self.ev(t + 1_000, cpu, q, "ret", sync, f"iommu_{op}", None)
        t += 1_000
        self.ev(t + 2_000, cpu, q, f"iommu_{op}", *values, flags=".....")
        return t + 3_000

    def refresh(self, d: Dev, t: int, cpu: int, q: Task, site: str, iova: int) -> int:
        """zpci_refresh_trans() of one page from ``site``, if the device is attached."""
        if not d.s390_domain:
            return t
        done = t + self.step(5_000, 12_000)
        self.ev(t, cpu, q, "rpcit", d.fh << 32, iova, 0x1000)
        self.ev(done, cpu, q, "rpcit_r", site, 0)
        self.truth.flushes.append((t, done, cpu, site, "ranged", iova, 0x1000, 0))
        return done

    def detach(self, d: Dev, t: int, cpu: int, task: Task, site: str) -> Generator[Any, int, int]:
        self.enter(
            t,
            cpu,
            task,
            d,
            "detach",
            "s390_iommu_detach_device",
            ("domain", d.domain),
            ("dev", d.dev),
            ("name", d.name),
        )
        if self.o.era == "v6.0+dma_domain_lock":
            t = yield from self.locked(d, t + 800, cpu, task, "detach")
        if d.s390_domain or self.attaching(d, task):
            t = yield at(t + self.step(5_000, 10_000))
            d.s390_domain = False
            self.ev(t, cpu, task, "call", "zpci_unregister_ioat", ("zdev", d.zdev))
            t = yield at(t + self.step(10_000, 25_000))
            self.dma_init(d, t, cpu, task)
            t += self.step(15_000, 30_000)
        if self.o.era == "v6.0+dma_domain_lock":
            self.unlocked(d, t, cpu, task)
            t += 500
        t = yield at(t + 1_000)
        self.leave(t, cpu, task, d, "s390_iommu_detach_device", site, None)
        return t

    def attaching(self, d: Dev, task: Task) -> bool:
        """Another task is inside attach_dev on ``d`` right now, with nothing to keep
        them apart (v6.0 only: later eras serialize or order them)."""
        return self.o.era == "v6.0" and any(
            s["pid"] != task[1] for s in self.open.get((d.index, "s390_iommu_attach_device"), [])
        )

    def dma_init(self, d: Dev, t: int, cpu: int, task: Task) -> None:
        self.ev(t, cpu, task, "call", "zpci_dma_init_device", ("zdev", d.zdev))
        # WARN_ON(zdev->s390_domain): set by an attach that ran, or runs, beside us.
        if (d.s390_domain or self.attaching(d, task)) and not self.warned:
            self.warned = True
            self.truth.warns.append(
                {
                    "device": d.name,
                    "ts_ns": t + 3_000,
                    "cpu": cpu,
                    "pid": task[1],
                    "comm": task[0],
                    "func": "zpci_dma_init_device",
                }
            )

    def kmcheck(self, d: Dev) -> Process:
        """PEC 0x303: zpci_deconfigure_device -> ... -> s390_iommu_release_device."""
        cpu, k, era = 3, KMCHECK, self.o.era
        t = yield at(0)
        self.ev(t, cpu, k, "call", "zpci_event_availability", ("pec", 0x303))
        t = yield at(t + self.step(5_000, 9_000))
        self.ev(t, cpu, k, "call", "zpci_deconfigure_device", ("zdev", d.zdev))
        if era in ("v6.1", "v6.5") and not self.qemu_done[d.index]:
            # vfio_unregister_group_dev() waits until the group's users are gone.
            self.waiting_release[d.index] = True
            t = yield park()
        mutex = self.group_mutex[d.index]
        hold: dict[str, Any] | None = None
        if era == "v6.5":
            t = yield acquire(mutex, t)
            self.truth.locks.append(
                {
                    "device": d.name,
                    "lock": "group->mutex",
                    "pid": k[1],
                    "what": "release",
                    "acquired_ns": t,
                    "implicit": True,
                }
            )
            hold = self.truth.locks[-1]
        t = yield at(t + self.step(3_000, 6_000))
        self.enter(
            t, cpu, k, d, "release", "s390_iommu_release_device", ("dev", d.dev), ("name", d.name)
        )
        if era == "v6.0+dma_domain_lock":
            t = yield from self.locked(d, t + 700, cpu, k, "release")
            d.released = True
            self.unlocked(d, t + 400, cpu, k)
            t += 1_000
        t = yield at(t + self.step(4_000, 8_000))
        # v6.0 release: if (zdev->s390_domain) detach, and the core's group domain is
        # already set while attach_dev runs.
        if d.s390_domain or self.attaching(d, k):
            t = yield from self.detach(d, t, cpu, k, "s390_iommu_release_device")
        t = yield at(t + self.step(3_000, 6_000))
        site = "iommu_deinit_device" if era == "v6.5" else "iommu_release_device"
        self.leave(t, cpu, k, d, "s390_iommu_release_device", site, None)
        if hold is not None:
            hold["released_ns"] = t + 1_000
            self.engine.release(mutex, t + 1_000)
        t += self.step(10_000, 20_000)
        self.ev(t, cpu, k, "group", "remove_device_from_group", d.group, d.name, flags=".....")
        t = yield at(t + self.step(20_000, 40_000))
        self.ev(t, cpu, k, "call", "zpci_dma_exit_device", ("zdev", d.zdev))

    def start(self) -> None:
        for d in self.devs:
            self.engine.start(self.boot(d), T0 + d.index * 1_000_000)
            base = 530_000_000_000 + d.index * 5_000_000_000
            self.engine.start(self.qemu(d), base)
            # The deconfigure lands around QEMU's attach: depending on the seed,
            # release starts inside the attach or after it.
            proc = self.kmcheck(d)
            self.kmcheck_procs.append(proc)
            self.engine.start(proc, base + self.step(1_000, 120_000))

    def overlaps(self) -> list[dict[str, Any]]:
        """Release spans that overlap attach/detach spans of another task on the same
        device, with the locks both held over their whole length."""
        out = []
        for rel in (s for s in self.truth.spans if s["kind"] == "release"):
            for other in self.truth.spans:
                if other["kind"] not in ("attach", "detach") or other["pid"] == rel["pid"]:
                    continue
                if other["device"] != rel["device"]:
                    continue
                if other["start_ns"] < rel["end_ns"] and rel["start_ns"] < other["end_ns"]:
                    # The patch's zdev->dma_domain_lock serializes what both do inside.
                    common = (
                        ["zdev->dma_domain_lock"] if self.o.era == "v6.0+dma_domain_lock" else []
                    )
                    out.append(
                        {
                            "device": rel["device"],
                            "release": rel,
                            "other": other,
                            "common_locks": common,
                        }
                    )
        return out
