"""What the kernel's s390 IOMMU code looked like in each era, as far as a trace can tell.

The facts come from docs/domain.md section 1 (history, symbol table, probe points) and
section 8.3 (the 2022 race). They decide three things:

* which function is which kind of span (``SPAN_KINDS``) and what its positional probe
  arguments mean (``ARG_ROLES``);
* which era a trace comes from, by the symbols it contains (``SYMBOL_ERAS``; presence, not
  version numbers, wherever a symbol tells);
* which locks an era holds without the trace showing them (``implicit_locks``): the IOMMU
  core holds ``group->mutex`` across attach/detach in every era and across release from
  about v6.5; the never-merged ``dma_domain_lock`` patch serialises all three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tracetool.errors import TraceToolError, closest


@dataclass(frozen=True)
class Era:
    name: str
    version: tuple[int, int]
    summary: str


ERAS: tuple[Era, ...] = (
    Era("v6.0", (6, 0), "pre-fix: release_device runs without group->mutex; VFIO does not wait"),
    Era(
        "v6.0+dma_domain_lock",
        (6, 0),
        "v6.0 with the proposed (never merged) zdev->dma_domain_lock patch",
    ),
    Era("v6.1", (6, 1), "VFIO follows a strict iommu_group lifetime (ca5f21b2)"),
    Era("v6.2", (6, 2), "s390 driver rework: detach on attach, IOTLB ops (bf8d2dd2, c228f5a0)"),
    Era("v6.5", (6, 5), "IOMMU core calls release_device with group->mutex held"),
    Era("v6.7", (6, 7), "dma-iommu conversion: pci_dma.c is gone, flush queues"),
    Era("v6.13", (6, 13), "blocking domain: release_device and detach_dev ops are gone"),
)
ERA_NAMES = tuple(e.name for e in ERAS)
_PATCH = "v6.0+dma_domain_lock"
_MAINLINE = tuple(e.name for e in ERAS if e.name != _PATCH)


def _span(first: str, last: str | None = None) -> frozenset[str]:
    """Mainline eras from ``first`` to ``last`` inclusive (plus the patch era with v6.0)."""
    lo = _MAINLINE.index(first)
    hi = _MAINLINE.index(last) if last else len(_MAINLINE) - 1
    eras = set(_MAINLINE[lo : hi + 1])
    if "v6.0" in eras:
        eras.add(_PATCH)
    return frozenset(eras)


_PCI_DMA = _span("v6.0", "v6.5")  # arch/s390/pci/pci_dma.c exists up to v6.6
# symbol (function or tracepoint) -> eras in which a trace can contain it
SYMBOL_ERAS: dict[str, frozenset[str]] = {
    **dict.fromkeys(
        (
            "zpci_dma_init_device",
            "zpci_dma_exit_device",
            "s390_dma_map_pages",
            "s390_dma_unmap_pages",
            "s390_dma_map_sg",
            "__s390_dma_map_sg",
            "s390_dma_unmap_sg",
            "s390_dma_alloc",
            "s390_dma_free",
            "dma_alloc_address",
            "dma_free_address",
            "__dma_alloc_iommu",
            "dma_update_trans",
            "__dma_update_trans",
            "__dma_purge_tlb",
            "zpci_refresh_global",
        ),
        _PCI_DMA,
    ),
    "s390_iommu_update_trans": _span("v6.0", "v6.1"),
    "s390_iommu_map": _span("v6.0", "v6.1"),
    "s390_iommu_unmap": _span("v6.0", "v6.1"),
    "s390_domain_alloc": _span("v6.0", "v6.5"),
    "__s390_iommu_detach_device": _span("v6.2", "v6.5"),
    "s390_iommu_detach_device": _span("v6.0", "v6.7"),
    "s390_iommu_release_device": _span("v6.0", "v6.7"),
    "detach_device_from_domain": _span("v6.0", "v6.2"),
    # release_device returns into iommu_release_device until the ~v6.5 core rework
    "iommu_release_device": _span("v6.0", "v6.2"),
    "iommu_deinit_device": _span("v6.5"),
    **dict.fromkeys(
        (
            "s390_iommu_map_pages",
            "s390_iommu_unmap_pages",
            "s390_iommu_iotlb_sync",
            "s390_iommu_iotlb_sync_map",
            "s390_iommu_flush_iotlb_all",
            "s390_iommu_validate_trans",
            "s390_iommu_invalidate_trans",
        ),
        _span("v6.2"),
    ),
    **dict.fromkeys(
        (
            "s390_domain_alloc_paging",
            "iommu_dma_map_page",
            "iommu_dma_unmap_page",
            "__iommu_dma_unmap",
            "queue_iova",
            "fq_flush_timeout",
            "fq_flush_iotlb",
            "fq_ring_free",
            "iommu_dma_init_fq",
            "zpci_refresh_all",
        ),
        _span("v6.7"),
    ),
    "blocking_domain_attach_device": _span("v6.13"),
    "dma_domain_lock": frozenset({_PATCH}),
}

# function -> span kind (docs/domain.md section 1.8)
SPAN_KINDS: dict[str, str] = {
    "s390_iommu_probe_device": "probe",
    "s390_iommu_release_device": "release",
    "s390_iommu_attach_device": "attach",
    "s390_iommu_detach_device": "detach",
    "__s390_iommu_detach_device": "detach",
    "blocking_domain_attach_device": "detach",
    "zpci_dma_init_device": "dma_init",
    "zpci_dma_exit_device": "dma_exit",
    "zpci_register_ioat": "register_ioat",
    "zpci_unregister_ioat": "unregister_ioat",
    "zpci_refresh_trans": "flush",
    "s390_dma_map_pages": "dma_map",
    "s390_dma_map_sg": "dma_map",
    "iommu_dma_map_page": "dma_map",
    "s390_dma_unmap_pages": "dma_unmap",
    "s390_dma_unmap_sg": "dma_unmap",
    "iommu_dma_unmap_page": "dma_unmap",
    "zpci_deconfigure_device": "deconfigure",
    "zpci_event_availability": "zpci_event",
    # tracepoints: instants on the device
    "add_device_to_group": "group_add",
    "remove_device_from_group": "group_remove",
    "attach_device_to_domain": "domain_attached",
    "detach_device_from_domain": "domain_detached",
    "map": "iommu_map",
    "unmap": "iommu_unmap",
}

# What positional fetch-args (arg1, arg2, ...) of a function mean (docs/domain.md 1.8).
ARG_ROLES: dict[str, tuple[str, ...]] = {
    "s390_iommu_probe_device": ("dev",),
    "s390_iommu_release_device": ("dev",),
    "s390_iommu_attach_device": ("domain", "dev"),
    "s390_iommu_detach_device": ("domain", "dev"),
    "__s390_iommu_detach_device": ("zdev",),
    "blocking_domain_attach_device": ("domain", "dev"),
    "zpci_dma_init_device": ("zdev",),
    "zpci_dma_exit_device": ("zdev",),
    "zpci_register_ioat": ("zdev",),
    "zpci_unregister_ioat": ("zdev",),
    "zpci_deconfigure_device": ("zdev",),
    "zpci_refresh_trans": ("fn", "addr", "range"),
    "s390_iommu_map": ("domain",),
    "s390_iommu_unmap": ("domain",),
    "s390_iommu_map_pages": ("domain",),
    "s390_iommu_unmap_pages": ("domain",),
    "s390_iommu_update_trans": ("domain",),  # struct s390_domain *: the domain is its first member
    "s390_iommu_iotlb_sync": ("domain",),
    "s390_iommu_iotlb_sync_map": ("domain",),
    "s390_iommu_flush_iotlb_all": ("domain",),
    "s390_dma_map_pages": ("dev",),
    "s390_dma_unmap_pages": ("dev",),
    "s390_dma_map_sg": ("dev",),
    "s390_dma_unmap_sg": ("dev",),
    "mutex_lock": ("lock",),
    "mutex_unlock": ("lock",),
}
# Fetch-arg names users give, by the role they play.
ARG_NAMES: dict[str, str] = {
    "dev": "dev",
    "device": "dev",
    "pdev": "dev",
    "zdev": "zdev",
    "fh": "fh",
    "fn": "fn",
    "domain": "domain",
    "dom": "domain",
    "lock": "lock",
    "mutex": "lock",
    "addr": "addr",
    "dma_addr": "addr",
    "range": "range",
    "size": "range",  # a map's or unmap's length, as a kprobe fetches it
}

# Explicit lock functions: a hold runs from the acquire's return to the release's entry.
LOCK_ACQUIRE = (
    "mutex_lock",
    "mutex_lock_nested",
    "mutex_lock_interruptible",
    "mutex_lock_killable",
    "_raw_spin_lock",
    "_raw_spin_lock_irq",
    "_raw_spin_lock_irqsave",
    "_raw_spin_lock_bh",
    "down_read",
    "down_write",
)
LOCK_RELEASE = (
    "mutex_unlock",
    "_raw_spin_unlock",
    "_raw_spin_unlock_irq",
    "_raw_spin_unlock_irqrestore",
    "_raw_spin_unlock_bh",
    "up_read",
    "up_write",
)

# The kind of lock each function takes or drops: a trace that shows the calls but not
# their argument (function_graph) still tells a mutex from a spinlock.
LOCK_FAMILY: dict[str, str] = {
    **{f: "mutex" for f in (*LOCK_ACQUIRE[:4], "mutex_unlock")},
    **{f: "spinlock" for f in (*LOCK_ACQUIRE[4:8], *LOCK_RELEASE[1:5])},
    **{f: "rwsem" for f in ("down_read", "down_write", "up_read", "up_write")},
}
# A hold whose lock the trace does not identify is named "<family>@?".
UNKNOWN_LOCK = "@?"

GROUP_MUTEX = "group->mutex"
DMA_DOMAIN_LOCK = "zdev->dma_domain_lock"


@dataclass(frozen=True)
class EraChoice:
    """The eras a trace may come from, and why."""

    eras: tuple[str, ...]
    how: str  # "given" | "inferred" | "default" | "per-input"
    evidence: tuple[str, ...] = field(default_factory=tuple)  # "symbol (path:line)"

    def label(self) -> str:
        names = self.eras
        span = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
        if self.how == "given":
            return f"{span} (given)"
        if self.how == "default":
            return f"{span} (nothing in the trace tells the era; assuming any)"
        if self.how == "per-input":
            return f"{span} (inputs differ; each is checked with its own era)"
        return f"{span} (inferred from {', '.join(self.evidence[:3])})"

    def always(self, pred: set[str] | frozenset[str]) -> bool:
        """True when every possible era is in ``pred``."""
        return all(e in pred for e in self.eras)


_RELEASE_UNDER_GROUP_MUTEX = frozenset({"v6.5", "v6.7", "v6.13"})


def implicit_locks(kind: str, nested_in_release: bool, era: EraChoice) -> tuple[str, ...]:
    """Locks that every possible era holds over a span of ``kind`` without tracing them."""
    locks: list[str] = []
    if kind in ("attach", "detach", "release"):
        # the core calls attach/detach under group->mutex; release (and the detach it
        # makes itself) only from about v6.5
        from_release = kind == "release" or nested_in_release
        if not from_release or era.always(_RELEASE_UNDER_GROUP_MUTEX):
            locks.append(GROUP_MUTEX)
        if era.always({_PATCH}):
            locks.append(DMA_DOMAIN_LOCK)
    return tuple(dict.fromkeys(locks))


def era_from_version(text: str) -> EraChoice:
    """``--kernel``: "6.0", "v6.3.1", "6.0+dma_domain_lock" -> the era that version is in."""
    if text in ERA_NAMES:
        return EraChoice((text,), "given")
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:[.\-][\w.\-]*)?(\+dma_domain_lock)?", text.strip())
    if not m:
        raise TraceToolError(
            f'--kernel "{text}": expected a version like 6.0 or 6.5.3, or an era name'
            f"{closest(text, ERA_NAMES)} (eras: {', '.join(ERA_NAMES)})"
        )
    version = (int(m[1]), int(m[2]))
    if m[3]:
        if version[:2] != (6, 0):
            raise TraceToolError(f'--kernel "{text}": the dma_domain_lock patch was for v6.0')
        return EraChoice((_PATCH,), "given")
    candidates = [e for e in ERAS if e.version <= version and e.name != _PATCH]
    if not candidates:
        raise TraceToolError(
            f'--kernel "{text}": older than the eras tracetool knows (from v6.0; the race'
            " rules apply to every kernel before it as to v6.0, so pass --kernel 6.0)"
        )
    return EraChoice((candidates[-1].name,), "given")


def infer_era(seen: dict[str, str]) -> EraChoice:
    """Eras consistent with every known symbol in ``seen`` (symbol -> ``path:line``).

    Symbols that contradict each other (a trace mixing kernels, or a sample written by
    hand) leave the eras open rather than picking one.
    """
    possible = set(ERA_NAMES)
    evidence: list[str] = []
    for sym in sorted(seen, key=lambda s: (len(SYMBOL_ERAS.get(s, ERA_NAMES)), s)):
        eras = SYMBOL_ERAS.get(sym)
        if eras is None:
            continue
        if possible & eras:
            if not possible <= eras:
                evidence.append(f"{sym} ({seen[sym]})")
            possible &= eras
    if possible == set(ERA_NAMES):
        return EraChoice(ERA_NAMES, "default")
    ordered = tuple(n for n in ERA_NAMES if n in possible)
    return EraChoice(ordered, "inferred", tuple(evidence))
