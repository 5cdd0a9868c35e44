"""Kernel-log parse throughput on a generated s390 console log; prints JSON.

    python tests/benchmarks/parse_dmesg.py            # 1 M lines
    python tests/benchmarks/parse_dmesg.py --smoke    # 20 k lines, for CI
    python tests/benchmarks/parse_dmesg.py --lines N

The log mixes what a busy s390 host prints: dev_printk lines of zPCI functions with
printk caller ids, WARN reports (30 lines, with another context's line interleaved in
the call trace) and an ftrace_dump_on_oops dump after every tenth report. Figures:

* ``lines_per_s``: ``tracetool.parse`` of the whole file (events, crash reports,
  dumps, no cache), collecting the events and the crashes table;
* ``typed_vs_raw``: that throughput relative to polars reading the same file as raw
  lines into memory, measured in the same run (best of both polars engines);
* ``reports``: the crash reports found, which must equal the number written.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parse import best, raw_read

import tracetool

MESSAGES = [
    "pci {dev}: Adding to iommu group {n}",
    "vfio-pci {dev}: enabling device (0000 -> 0002)",
    "zpci: {dev}: Event 0x303 reconfigured PCI function 0x{n:x}",
    "nvme nvme{n}: 4/0/0 default/read/poll queues",
    "mlx5_core {dev}: firmware version: 22.31.1014",
    "pci {dev}: Removing from iommu group {n}",
]


def _report(rng: random.Random, pid: int, dump: bool) -> list[str]:
    lines = [
        "------------[ cut here ]------------",
        f"WARNING: CPU: 3 PID: {pid} at arch/s390/pci/pci_dma.c:592 zpci_dma_init_device+0x1ca/0x220",
        "Modules linked in: vfio_pci vfio_pci_core vfio_iommu_type1 vfio kvm mlx5_core nvme",
        f"CPU: 3 PID: {pid} Comm: kmcheck Tainted: G        W          6.0.0 #1",
        "Hardware name: IBM 8561 T01 703 (z/VM 7.2.0)",
        "Krnl PSW : 0704c00180000000 00000000d5a1b2c2 (zpci_dma_init_device+0x1ca/0x220)",
        "           R:0 T:1 IO:1 EX:1 Key:0 M:1 W:0 P:0 AS:3 CC:2 PM:0 RI:0 EA:3",
        "Krnl GPRS: 0000000000000001 0000000900000027 0000000000000039 000000095c97ffe0",
        "           00000000fffeffff 00000009fc290000 00000000af1fda50 00000000af590b58",
        "           00000000af1fdaf0 0000000135c7a320 0000000135e52258 0000000135e52200",
        "           00000000a29e8000 00000000af590b40 00000000d5a1b2be 0000038004b13c98",
        "Call Trace:",
    ]
    for func in (
        "zpci_dma_init_device",
        "s390_iommu_detach_device",
        "s390_iommu_release_device",
        "iommu_release_device",
        "iommu_bus_notifier",
        "blocking_notifier_call_chain",
        "device_del",
        "zpci_deconfigure_device",
        "zpci_event_availability",
    ):
        lines.append(f" [<{rng.getrandbits(40):016x}>] {func}+0x{rng.randint(1, 400):x}/0x220")
    if dump:
        lines += ["Dumping ftrace buffer:", "-" * 33]
        us = rng.randint(10**6, 10**9)
        for i in range(8):
            lines.append(
                f" kmcheck-{pid:<7} 3d..1. {us + i * 13}us : s390_iommu_detach_device <-s390_iommu_release_device"
            )
        lines.append("-" * 33)
    lines += [
        "Last Breaking-Event-Address:",
        f" [<{rng.getrandbits(40):016x}>] zpci_dma_init_device+0x1c6/0x220",
        "---[ end trace 0000000000000000 ]---",
    ]
    return lines


def generate(path: Path, lines: int, seed: int = 3) -> int:
    """Write about ``lines`` lines; return the number of crash reports written."""
    rng = random.Random(seed)
    t = 10_000_000
    reports = 0
    written = 0
    with path.open("w") as out:
        buf: list[str] = []
        while written < lines:
            if rng.random() < 0.002:
                report = _report(rng, 41, dump=reports % 10 == 9)
                reports += 1
                for i, text in enumerate(report):
                    t += rng.randint(1, 30)
                    buf.append(f"[{t // 10**6:5d}.{t % 10**6:06d}][   T41] {text}\n")
                    if i == 14:  # another context prints in the middle of the trace
                        buf.append(
                            f"[{t // 10**6:5d}.{t % 10**6:06d}][    C1] pci 0004:00:00.0: Removing from iommu group 4\n"
                        )
                        written += 1
                written += len(report)
            else:
                t += rng.randint(10, 5000)
                n = rng.randint(0, 63)
                text = rng.choice(MESSAGES).format(dev=f"{n:04x}:00:00.0", n=n)
                buf.append(
                    f"[{t // 10**6:5d}.{t % 10**6:06d}][{'T' + str(rng.choice((1, 41, 5082))):>6}] {text}\n"
                )
                written += 1
            if len(buf) >= 10000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
    return reports


def consume(path: Path) -> int:
    trace = tracetool.parse(path, use_cache=False)
    trace.events.select("ts", "event", "args").collect()
    return trace.table("crashes").select("title", "frames").collect().height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="20 k lines, one repetition")
    args = parser.parse_args()
    lines = 20_000 if args.smoke else args.lines
    repeat = 1 if args.smoke else 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "console.log"
        written = generate(path, lines)
        count = sum(1 for _ in path.open())
        raw = raw_read(path)
        found = [0]

        def run() -> None:
            found[0] = consume(path)

        started = time.perf_counter()
        typed = best(run, repeat)
        elapsed = time.perf_counter() - started
        result = {
            "lines": count,
            "bytes": path.stat().st_size,
            "seconds": {"raw_read": round(raw, 3), "typed_parse": round(typed, 3)},
            "lines_per_s": round(count / typed),
            "typed_vs_raw": round(raw / typed, 3),
            "reports": {"written": written, "found": found[0]},
            "wall_s": round(elapsed, 1),
        }
        print(json.dumps(result, indent=2))
        if found[0] != written:
            sys.exit(f"found {found[0]} crash reports, wrote {written}")


if __name__ == "__main__":
    main()
