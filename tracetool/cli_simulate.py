"""``tracetool simulate``: write a seeded model run as a trace with its ground truth."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tracetool.cli import Failure, errors, main
from tracetool.cli_figures import _duration
from tracetool.simulate import FORMATS, DmaOptions, RaceOptions, simulate_dma, simulate_race
from tracetool.simulate import costs as costs_mod
from tracetool.simulate.dma import SCHEMES
from tracetool.simulate.race import ERAS
from tracetool.simulate.writers import WRITERS

RACE = "deconfigure-during-vfio-init"
SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size_pages(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """``256K``, ``1M``, ``16G`` as a number of 4 KiB pages (at least one)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT])i?B?\s*", value, re.IGNORECASE)
    if not m or int(m.group(1)) == 0:
        raise click.BadParameter(f"{value!r} is not a size; give a number and K, M, G or T: 1M")
    size = int(m.group(1)) * SIZE_UNITS[m.group(2).upper()]
    if size < 4096:
        raise click.BadParameter(f"{value!r} is less than one 4 KiB page")
    return size // 4096


SCENARIOS = ("dma", RACE)


@main.command(name="simulate")
@click.argument("scenario", type=click.Choice(SCENARIOS))
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The trace to write; the truth goes beside it "
    "(OUTPUT.truth.json) unless --truth says where.",
)
@click.option(
    "--truth",
    "truth",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the ground-truth JSON.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(WRITERS)),
    default="ftrace",
    show_default=True,
    help="Layout of the trace.",
)
@click.option(
    "--scheme",
    type=click.Choice(SCHEMES),
    default="s390-lazy",
    show_default=True,
    help="IOTLB flush scheme (dma): s390-lazy/s390-strict are the v6.0 DMA API, "
    "dma-strict/fq-percpu/fq-single the v6.7+ dma-iommu layer.",
)
@click.option(
    "--env",
    default="zvm",
    show_default=True,
    help="Environment from the cost table: lpar, zvm or kvm.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="fio jobs, one per CPU.",
)
@click.option(
    "--iodepth",
    type=click.IntRange(1, 1024),
    default=8,
    show_default=True,
    help="Reads in flight per job.",
)
@click.option(
    "--duration",
    "duration_ns",
    callback=_duration,
    default="100ms",
    show_default=True,
    metavar="DURATION",
    help="Length of the run (100ms, 2s).",
)
@click.option(
    "--seed",
    type=int,
    default=2022,
    show_default=True,
    help="Seed: the same seed writes the same bytes.",
)
@click.option(
    "--aperture",
    "aperture_pages",
    callback=_size_pages,
    default="16G",
    show_default=True,
    metavar="SIZE",
    help="DMA aperture per device (256K, 1M, 16G); a small one makes the s390 lazy "
    "scheme wrap, and flush globally, often.",
)
@click.option(
    "--fq-size",
    type=click.IntRange(1, 1 << 24),
    default=None,
    help="Flush-queue entries (fq-*; default 256 per CPU, 32768 single).",
)
@click.option(
    "--fq-timeout",
    "fq_timeout_ns",
    callback=_duration,
    default=None,
    metavar="DURATION",
    help="Flush-queue timer (fq-*; default 10ms per CPU, 1s single).",
)
@click.option(
    "--shadow-pages",
    type=click.IntRange(0, None),
    default=None,
    metavar="N",
    help="Pages the hypervisor (zvm, kvm) keeps pinned for unmaps no RPCIT told it of "
    "(lazy, fq-*); at N the next map's RPCIT fails with -ENOMEM and the kernel flushes "
    "globally. Default: no limit.",
)
@click.option(
    "--buffer-events",
    type=click.IntRange(1, None),
    default=None,
    metavar="N",
    help="Ring buffer of N entries per CPU in overwrite mode (ftrace): the oldest are "
    "lost, as when buffer_size_kb is too small; the truth lists the losses.",
)
@click.option(
    "--era",
    type=click.Choice(ERAS),
    default="v6.0",
    show_default=True,
    help=f"Kernel era ({RACE}): v6.0 races; the dma_domain_lock patch serializes; "
    "v6.1 orders release after QEMU's detach; v6.5 holds the group mutex.",
)
@click.option(
    "--devices",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help=f"zPCI functions, each with its own QEMU ({RACE}).",
)
@click.option(
    "--costs",
    "costs_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help=f"A cost table to use instead of the built-in one "
    f"({costs_mod.DEFAULT}): copy that file and change values.",
)
@errors
def simulate_command(
    scenario: str,
    output: Path,
    truth: Path | None,
    fmt: str,
    scheme: str,
    env: str,
    jobs: int,
    iodepth: int,
    duration_ns: int,
    seed: int,
    aperture_pages: int,
    fq_size: int | None,
    fq_timeout_ns: int | None,
    shadow_pages: int | None,
    buffer_events: int | None,
    era: str,
    devices: int,
    costs_path: Path | None,
) -> None:
    """Run a seeded model of the s390 IOMMU/DMA code paths and write what a kernel
    would have traced, plus a ground-truth JSON of every flush it made.

    \b
    Scenarios:
      dma                           fio-like 4 KiB NVMe reads through the DMA API
                                    under one flush scheme (--scheme, --env)
      deconfigure-during-vfio-init  a PEC 0x303 deconfigure while QEMU attaches the
                                    device (--era); as dmesg, a WARN it causes
                                    comes with the panic's ftrace dump
    \b
    Example:
      tracetool simulate dma --scheme s390-strict --env zvm -o strict.txt
      tracetool simulate dma --scheme fq-single --fq-size 8192 --fq-timeout 100ms -o fq.txt
      tracetool stats strict.txt
      tracetool simulate deconfigure-during-vfio-init --era v6.0 --seed 1 -o race.txt
    """
    if fmt not in FORMATS["race" if scenario == RACE else scenario]:
        known = ", ".join(FORMATS["race" if scenario == RACE else scenario])
        raise Failure(f"the {scenario} scenario cannot be written as {fmt}; choose {known}")
    where = truth or output.with_name(output.name + ".truth.json")
    if scenario == RACE:
        race = simulate_race(
            RaceOptions(era=era, devices=devices, seed=seed), output, fmt, truth, buffer_events
        )
        click.echo(
            f"wrote {output} ({race['era']}: {race['overlaps']} overlap(s), "
            f"{race['warns']} WARN(s), {race['lock_holds']} lock hold(s)) and {where}",
            err=True,
        )
        return
    table = costs_mod.load(costs_path)
    table.env(env)  # an unknown environment fails before anything is written
    if (fq_size is not None or fq_timeout_ns is not None) and not scheme.startswith("fq-"):
        raise Failure(f"--fq-size and --fq-timeout apply to the fq-* schemes, not {scheme}")
    if shadow_pages is not None and not table.env(env).tlb_refresh:
        raise Failure(
            f"--shadow-pages is a limit of a hypervisor's shadow tables; {env} has none "
            "(use --env zvm or kvm)"
        )
    opts = DmaOptions(
        scheme=scheme,
        env=env,
        jobs=jobs,
        iodepth=iodepth,
        duration_ms=duration_ns / 1e6,
        seed=seed,
        aperture_pages=aperture_pages,
        fq_size=fq_size,
        fq_timeout_ms=fq_timeout_ns / 1e6 if fq_timeout_ns is not None else None,
        shadow_pages=shadow_pages,
    )
    summary = simulate_dma(opts, output, fmt, table, truth, buffer_events)
    iops = summary["iops"] or 0.0
    click.echo(
        f"wrote {output} ({summary['ios']} I/Os, {iops:,.0f} IOPS, {summary['rpcit']} RPCITs, "
        f"{summary['rpcit_global']} global"
        + (f", {summary['rpcit_enomem']} -ENOMEM" if summary["rpcit_enomem"] else "")
        + f") and {where}",
        err=True,
    )
