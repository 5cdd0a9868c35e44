#!/usr/bin/env python3
"""Render the rule samples: for every rule in rules/, traces that trigger it and traces that
do not, in the ftrace `trace` layout (same printf re-implementations as make_s390_samples.py).

    python3 samples/capture/make_rule_samples.py            # (re)write samples/rules/
    python3 samples/capture/make_rule_samples.py --check    # exit 1 if a file on disk differs

Layout: samples/rules/<rule-id>/trigger-<what>.txt and clean-<what>.txt. The story and
pointers are those of make_s390_samples.py (device 0004:00:00.0, dev 0x8f3a40c8); a second
device 0005:00:00.0 (dev 0x8f3a5000) shows that other devices' events change nothing.
Kernel eras show through the return site of release_device: iommu_release_device up to
v6.4, iommu_deinit_device from v6.5.
"""

# ruff: noqa: UP031

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_s390_samples as s  # noqa: E402

Ev = s.Ev
OUT = s.SAMPLES / "rules"
DEV2 = ("0005:00:00.0", 0x8F3A5000, 0x8C1E6000)  # name, struct device *, zdev
DEV1 = (s.PCI, s.DEV, s.ZDEV)
QEMU2 = ("qemu-system-s39", 6120)
UDEV = ("systemd-udevd", 733)

s.SYMS.setdefault("iommu_deinit_device", (0x95BDFE7A0, 0x148))
s.SYMS.setdefault("__iommu_detach_device", (0x95BDFC3C8, 0xC0))
s.SYMS.setdefault("iommu_probe_device", (0x95BDFE210, 0x1A0))
s.SYMS.setdefault("s390_dma_unmap_pages", (0x95B5A3380, 0x160))
s.SYMS.setdefault("s390_iommu_map", (0x95BE0F7A8, 0x60))
s.SYMS.setdefault("iommu_map", (0x95BDFD110, 0x88))
s.SYMS.setdefault("s390_iommu_unmap", (0x95BE0F810, 0x78))


def t(sec: float) -> int:
    return s.us(sec)


class Story:
    """A list of ring-buffer entries built call by call."""

    def __init__(self) -> None:
        self.events: list[Ev] = []

    def ev(self, ts: float, cpu: int, task: tuple[str, int], body: str, flags: str = "...1.") -> None:
        self.events.append(Ev(t(ts), cpu, task, flags, body))

    def probe(self, ts: float, cpu: int, task: tuple[str, int], dev=DEV1) -> None:
        self.ev(ts, cpu, task, s.kp("s390_probe", "s390_iommu_probe_device", s.a(dev=s.x64(dev[1]))))
        self.ev(ts + 0.000009, cpu, task, s.iommu_group("add_device_to_group", dev=dev[0]), ".....")

    def attach(self, start: float, end: float, cpu: int, task=s.QEMU, dev=DEV1, ret: str = "0") -> None:
        self.ev(
            start,
            cpu,
            task,
            s.kp("s390_att", "s390_iommu_attach_device", s.a(domain=s.x64(s.DOM), dev=s.x64(dev[1]))),
        )
        self.ev(
            end,
            cpu,
            task,
            s.krp("s390_att_r", "__iommu_attach_device", 0x3A, "s390_iommu_attach_device", s.a(ret=ret)),
        )
        if ret == "0":
            self.ev(end + 0.000004, cpu, task, s.iommu_dev("attach_device_to_domain", dev[0]), ".....")

    def detach(
        self,
        start: float,
        end: float,
        cpu: int,
        task=s.QEMU,
        dev=DEV1,
        dma_init: bool = True,
        site: str = "__iommu_detach_device",
    ) -> None:
        self.ev(
            start,
            cpu,
            task,
            s.kp("s390_det", "s390_iommu_detach_device", s.a(domain=s.x64(s.DOM), dev=s.x64(dev[1]))),
        )
        if dma_init:
            self.ev((start + end) / 2, cpu, task, s.kp("dma_init", "zpci_dma_init_device", s.a(zdev=s.x64(dev[2]))))
        self.ev(end, cpu, task, s.krp("s390_det_r", site, 0x4E, "s390_iommu_detach_device"))

    def release(
        self,
        start: float,
        end: float,
        cpu: int,
        task=s.KMCHECK,
        dev=DEV1,
        detach: bool = True,
        era_site: str = "iommu_release_device",
        dma_init: bool = True,
    ) -> None:
        self.ev(start, cpu, task, s.kp("s390_rel", "s390_iommu_release_device", s.a(dev=s.x64(dev[1]))))
        if detach:
            d0 = start + (end - start) / 4
            self.detach(d0, d0 + (end - start) / 2, cpu, task, dev, dma_init=dma_init, site="s390_iommu_release_device")
        self.ev(end, cpu, task, s.krp("s390_rel_r", era_site, 0x5C, "s390_iommu_release_device"))
        self.ev(end + 0.000017, cpu, task, s.iommu_group("remove_device_from_group", dev=dev[0]), ".....")

    def dma(self, ts: float, cpu: int, task, which: str, dev=DEV1) -> None:
        sym = "zpci_dma_init_device" if which == "init" else "zpci_dma_exit_device"
        self.ev(ts, cpu, task, s.kp(f"dma_{which}", sym, s.a(zdev=s.x64(dev[2]))))

    def unmap_flush(self, start: float, cpu: int, task=s.FIO, dev=DEV1) -> None:
        """s390_dma_unmap_pages(dev, ...) with its strict-mode RPCIT of the page."""
        self.ev(start, cpu, task, s.kp("unmap", "s390_dma_unmap_pages", s.a(dev=s.x64(dev[1]))))
        self.ev(start + 0.000002, cpu, task, s.rpcit(s.START_DMA + 0x5000, 0x1000))
        self.ev(start + 0.000009, cpu, task, s.rpcit_r("__dma_purge_tlb", 0x62, 0))

    def vfio_map(self, ts: float, cpu: int = 0, task=s.QEMU, iova: int = 0x20000) -> None:
        """VFIO_IOMMU_MAP_DMA: s390_iommu_map(domain, ...) then the iommu:map tracepoint."""
        self.ev(ts, cpu, task, s.kp("s390_map", "s390_iommu_map", s.a(domain=s.x64(s.DOM))))
        self.ev(
            ts + 0.000011, cpu, task, s.iommu_map(iova, 0x7F4A000, 0x1000), "....."
        )

    def vfio_unmap(self, ts: float, iova: int = 0x20000, size: int = 0x1000, cpu: int = 0, task=s.QEMU) -> None:
        """VFIO_IOMMU_UNMAP_DMA: s390_iommu_unmap(domain, ...) then the iommu:unmap tracepoint."""
        self.ev(ts, cpu, task, s.kp("s390_unmap", "s390_iommu_unmap", s.a(domain=s.x64(s.DOM))))
        self.ev(ts + 0.000009, cpu, task, s.iommu_unmap(iova, size, size), ".....")

    def render(self) -> list[str]:
        body = s.render_events(s.Fmt(), self.events)
        return s.trace_file("nop", s.header_irq5(False), body, entries=s.n_entries(self.events))


# Marks of trace_find_mark() for the gap to the next entry, in ns.
_MARKS = ((1_000_000_000, "$"), (100_000_000, "@"), (10_000_000, "*"), (1_000_000, "#"), (100_000, "!"), (10_000, "+"))


def _mark(gap_ns: int) -> str:
    return next((m for limit, m in _MARKS if gap_ns > limit), " ")


def dmesg_line(ts_ns: int, text: str) -> str:
    return "[%5d.%06d] %s" % (ts_ns // 10**9, ts_ns % 10**9 // 1000, text)


class KernelLog(Story):
    """The story's events as an ftrace_dump_on_oops dump in a kernel log, after a WARN
    printed by ``warn_task`` at ``warn_at`` in ``warn_func`` and the panic it led to
    (panic_on_warn). The buffer was reset at ``reset`` seconds, so the dump's
    latency-format times count from there."""

    def __init__(self, warn_at: float, warn_task: tuple[str, int], warn_func: str, location: str, reset: float = 300.0) -> None:
        super().__init__()
        self.warn_at, self.warn_task, self.warn_func, self.location = warn_at, warn_task, warn_func, location
        self.reset = t(reset)

    def render(self) -> list[str]:
        comm, pid = self.warn_task
        at = t(self.warn_at)
        report = [
            "------------[ cut here ]------------",
            "WARNING: CPU: 3 PID: %d at %s %s+0x1ca/0x220" % (pid, self.location, self.warn_func),
            "Modules linked in: vfio_pci vfio_pci_core vfio_iommu_type1 vfio kvm mlx5_core nvme nvme_core",
            "CPU: 3 PID: %d Comm: %s Not tainted 6.0.0 #1" % (pid, comm),
            "Hardware name: IBM 8561 T01 703 (z/VM 7.2.0)",
            "Krnl PSW : 0704c00180000000 00000000d5a1b2c2 (%s+0x1ca/0x220)" % self.warn_func,
            "           R:0 T:1 IO:1 EX:1 Key:0 M:1 W:0 P:0 AS:3 CC:2 PM:0 RI:0 EA:3",
            "Call Trace:",
            " [<00000000d5a1b2c2>] %s+0x1ca/0x220" % self.warn_func,
            " [<00000000d5e0f1a4>] s390_iommu_detach_device+0xc4/0xd0",
            " [<00000000d5e0f2b0>] s390_iommu_release_device+0x58/0x98",
            " [<00000000d5dfe6a2>] iommu_release_device+0x5a/0x130",
            " [<00000000d5a1c3ee>] zpci_deconfigure_device+0x3e/0x110",
            "Last Breaking-Event-Address:",
            " [<00000000d5a1b2be>] %s+0x1c6/0x220" % self.warn_func,
            "---[ end trace 0000000000000000 ]---",
            "Kernel panic - not syncing: panic_on_warn set ...",
        ]
        out = [dmesg_line(at + i * 2000, text) for i, text in enumerate(report)]
        dumped = at + len(report) * 2000 + 10_000
        events = s.merge(list(self.events))
        dump = ["Dumping ftrace buffer:", "-" * 33]
        for e, nxt in zip(events, [*events[1:], None], strict=True):
            gap = (nxt.ts - e.ts) if nxt else 0
            dump.append(
                "%8.8s-%-7d %3d%s %4dus%s: %s"
                % (e.task[0], e.task[1], e.cpu, e.flags, (e.ts - self.reset) // 1000, _mark(gap), e.body)
            )
        dump.append("-" * 33)
        out += [dmesg_line(dumped + i * 2000, text) for i, text in enumerate(dump)]
        return out


def boot(st: Story, *devs: tuple[str, int, int]) -> None:
    """zpci_bus_prepare_device sets up the DMA API, then the IOMMU core probes the device."""
    for i, dev in enumerate(devs or (DEV1,)):
        st.dma(318.2074 + i * 0.001, 2, s.KWORKER, "init", dev)
        st.probe(318.2075 + i * 0.001, 2, s.KWORKER, dev)


# ---- one function per sample: name -> story ---------------------------------------------


def overlap_attach_trigger() -> Story:
    """v6.0: the deconfigure releases the device while QEMU attaches it (CPU 3 vs CPU 0)."""
    st = Story()
    boot(st)
    st.attach(531.000064, 531.000130, 0)
    st.release(531.000080, 531.000120, 3)
    return st


def overlap_attach_clean_serial() -> Story:
    """v6.0: the same two calls, but release starts after attach returned."""
    st = Story()
    boot(st)
    st.attach(531.000064, 531.000130, 0)
    st.release(531.000200, 531.000260, 3)
    return st


def overlap_attach_clean_other_device() -> Story:
    """v6.0: release of 0005:00:00.0 overlaps an attach of 0004:00:00.0: different devices."""
    st = Story()
    boot(st, DEV1, DEV2)
    st.attach(531.000064, 531.000130, 0, dev=DEV1)
    st.release(531.000080, 531.000120, 3, dev=DEV2)
    return st


def overlap_detach_trigger() -> Story:
    """v6.0: QEMU closes the group (detach under group->mutex) while release detaches too."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.detach(531.000070, 531.000140, 0)
    st.release(531.000090, 531.000160, 3)
    return st


def overlap_detach_clean_v65() -> Story:
    """v6.5: release runs under group->mutex (it returns into iommu_deinit_device), so the
    core's detach and the release are serialised: detach ends before release starts."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.detach(531.000070, 531.000140, 0, dma_init=False)
    st.release(531.000150, 531.000210, 3, era_site="iommu_deinit_device", detach=False)
    return st


def attach_after_release_trigger() -> Story:
    """v6.0: VFIO keeps using the group after the device was released and attaches it."""
    st = Story()
    boot(st)
    st.release(531.000080, 531.000120, 3, detach=False)
    st.attach(531.250000, 531.250070, 0)
    return st


def attach_after_release_clean_reprobe() -> Story:
    """v6.0: the function is configured again (probe, add to group) before QEMU attaches."""
    st = Story()
    boot(st)
    st.release(531.000080, 531.000120, 3, detach=False)
    st.probe(540.100000, 2, s.KWORKER)
    st.attach(541.000000, 541.000070, 0)
    return st


def detach_after_release_trigger() -> Story:
    """v6.0: QEMU closes the VFIO group after the release already detached the device."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.release(531.000080, 531.000160, 3)
    st.detach(531.400000, 531.400060, 0)
    return st


def detach_after_release_clean() -> Story:
    """v6.0: QEMU detaches first, then the device is released."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.detach(530.000000, 530.000060, 0)
    st.release(531.000080, 531.000120, 3, detach=False)
    return st


def double_release_trigger() -> Story:
    """v6.0: sysfs remove and a PEC 0x303 deconfigure both release the device."""
    st = Story()
    boot(st)
    st.release(531.000080, 531.000120, 1, task=s.BASH, detach=False)
    st.release(531.000300, 531.000340, 3, detach=False)
    return st


def double_release_clean_replug() -> Story:
    """v6.0: released, configured again (probe), released again: two lifetimes."""
    st = Story()
    boot(st)
    st.release(531.000080, 531.000120, 1, task=s.BASH, detach=False)
    st.probe(540.100000, 2, s.KWORKER)
    st.release(545.000300, 545.000340, 3, detach=False)
    return st


def dma_init_in_release_trigger() -> Story:
    """v6.0: release detaches the attached device, and detach hands it back to the DMA API."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.release(531.000080, 531.000160, 3)
    return st


def dma_init_in_release_clean() -> Story:
    """v6.0: the device was never attached: release has nothing to detach."""
    st = Story()
    boot(st)
    st.release(531.000080, 531.000120, 3, detach=False)
    st.dma(531.000150, 3, s.KMCHECK, "exit")
    return st


def dma_api_attached_trigger() -> Story:
    """v6.0: error recovery re-initialises DMA while QEMU's domain is still attached."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.dma(600.000100, 3, s.KMCHECK, "init")
    return st


def dma_api_attached_clean() -> Story:
    """v6.0: QEMU detaches first (back to the DMA API), then recovery re-initialises DMA."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.detach(590.000000, 590.000080, 0, dma_init=False)
    st.dma(600.000100, 3, s.KMCHECK, "init")
    return st


def flush_after_release_trigger() -> Story:
    """v6.0 strict DMA: an unmap completes after the deconfigure released the device, and
    its RPCIT goes to the released function handle."""
    st = Story()
    boot(st)
    st.unmap_flush(530.900000, 1)
    st.release(531.000080, 531.000120, 3, detach=False)
    st.unmap_flush(531.000300, 1)
    return st


def flush_after_release_clean() -> Story:
    """v6.0 strict DMA: the last unmap and its RPCIT finish before the release."""
    st = Story()
    boot(st)
    st.unmap_flush(530.900000, 1)
    st.unmap_flush(530.950000, 1)
    st.release(531.000080, 531.000120, 3, detach=False)
    return st


def map_after_detach_trigger() -> Story:
    """v6.0: QEMU maps guest memory into the domain after the device was detached from it."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.vfio_map(512.200000)
    st.detach(530.000000, 530.000060, 0)
    st.vfio_map(530.100000, iova=0x40000)
    return st


def map_after_detach_clean() -> Story:
    """v6.0: maps only while the device is attached; the domain is re-attached before the
    last map."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.vfio_map(512.200000)
    st.detach(530.000000, 530.000060, 0)
    st.attach(530.050000, 530.050090, 0)
    st.vfio_map(530.100000, iova=0x40000)
    return st


def warn_after_overlap_trigger() -> Story:
    """v6.0: release races attach (as in release-overlaps-attach) and the releasing task
    hits WARN_ON(zdev->s390_domain) in zpci_dma_init_device inside the race; the panic
    dumps the trace buffer into the log."""
    st = KernelLog(531.000115, s.KMCHECK, "zpci_dma_init_device", "arch/s390/pci/pci_dma.c:592")
    boot(st)
    st.attach(531.000064, 531.000130, 0)
    st.release(531.000080, 531.000120, 3)
    return st


def warn_after_overlap_clean_serial() -> Story:
    """v6.0: the same WARN, but release ran after attach returned: no race led to it."""
    st = KernelLog(531.000240, s.KMCHECK, "zpci_dma_init_device", "arch/s390/pci/pci_dma.c:592")
    boot(st)
    st.attach(531.000064, 531.000130, 0)
    st.release(531.000200, 531.000260, 3)
    return st


def unmap_without_map_trigger() -> Story:
    """v6.0: QEMU unmaps a range it never mapped after attaching (a stale vfio_dma after
    the device was released and probed again)."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.vfio_map(512.200000)
    st.vfio_unmap(512.300000)
    st.vfio_unmap(512.400000, iova=0x80000)
    return st


def unmap_without_map_clean() -> Story:
    """v6.0: one unmap ends a range mapped in two pieces; every unmap ends a mapping."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.vfio_map(512.200000)
    st.vfio_map(512.210000, iova=0x21000)
    st.vfio_unmap(512.300000, size=0x2000)
    return st


def live_at_release_trigger() -> Story:
    """v6.0: the device is deconfigured while QEMU still has guest memory mapped in the
    domain: release_device runs with the mapping live."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.vfio_map(512.200000)
    st.vfio_map(512.210000, iova=0x21000)
    st.vfio_unmap(512.300000, iova=0x21000)
    st.release(531.000080, 531.000120, 3)
    return st


def live_at_release_clean() -> Story:
    """v6.0: QEMU unmaps everything and detaches before the device is released."""
    st = Story()
    boot(st)
    st.attach(512.104420, 512.104549, 0)
    st.vfio_map(512.200000)
    st.vfio_unmap(512.300000)
    st.detach(530.000000, 530.000060, 0)
    st.release(531.000080, 531.000120, 3)
    return st


SAMPLES: dict[str, Callable[[], Story]] = {
    "release-overlaps-attach/trigger-v6.0-release-inside-attach.txt": overlap_attach_trigger,
    "release-overlaps-attach/clean-v6.0-serialised.txt": overlap_attach_clean_serial,
    "release-overlaps-attach/clean-v6.0-other-device.txt": overlap_attach_clean_other_device,
    "release-overlaps-detach/trigger-v6.0-group-close-during-release.txt": overlap_detach_trigger,
    "release-overlaps-detach/clean-v6.5-release-under-group-mutex.txt": overlap_detach_clean_v65,
    "attach-after-release/trigger-v6.0-vfio-attach-after-release.txt": attach_after_release_trigger,
    "attach-after-release/clean-v6.0-reprobed-before-attach.txt": attach_after_release_clean_reprobe,
    "detach-after-release/trigger-v6.0-group-close-after-release.txt": detach_after_release_trigger,
    "detach-after-release/clean-v6.0-detach-before-release.txt": detach_after_release_clean,
    "double-release/trigger-v6.0-remove-and-deconfigure.txt": double_release_trigger,
    "double-release/clean-v6.0-replugged.txt": double_release_clean_replug,
    "dma-init-in-release/trigger-v6.0-release-detaches-to-dma-api.txt": dma_init_in_release_trigger,
    "dma-init-in-release/clean-v6.0-release-of-unattached-device.txt": dma_init_in_release_clean,
    "dma-api-while-domain-attached/trigger-v6.0-recovery-while-attached.txt": dma_api_attached_trigger,
    "dma-api-while-domain-attached/clean-v6.0-recovery-after-detach.txt": dma_api_attached_clean,
    "flush-after-release/trigger-v6.0-unmap-rpcit-after-release.txt": flush_after_release_trigger,
    "flush-after-release/clean-v6.0-rpcits-before-release.txt": flush_after_release_clean,
    "map-after-detach/trigger-v6.0-vfio-map-after-detach.txt": map_after_detach_trigger,
    "map-after-detach/clean-v6.0-map-after-reattach.txt": map_after_detach_clean,
    "unmap-without-map/trigger-v6.0-unmap-of-unmapped-range.txt": unmap_without_map_trigger,
    "unmap-without-map/clean-v6.0-one-unmap-of-two-maps.txt": unmap_without_map_clean,
    "mappings-live-at-release/trigger-v6.0-release-with-guest-memory-mapped.txt": live_at_release_trigger,
    "mappings-live-at-release/clean-v6.0-unmapped-and-detached-first.txt": live_at_release_clean,
    "warn-after-overlap/trigger-v6.0-warn-in-race-dmesg.txt": warn_after_overlap_trigger,
    "warn-after-overlap/clean-v6.0-warn-after-serial-calls-dmesg.txt": warn_after_overlap_clean_serial,
}


def outputs() -> dict[Path, str]:
    return {OUT / name: "\n".join(make().render()) + "\n" for name, make in SAMPLES.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    args = ap.parse_args(argv)
    bad = 0
    for path, text in outputs().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                print("differs: %s" % path.relative_to(s.SAMPLES.parent))
                bad += 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print("wrote %s" % path.relative_to(s.SAMPLES.parent))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
