"""``tracetool symbolize``: a log or trace written back with source lines on its frames."""

from __future__ import annotations

import json
from pathlib import Path

import click
import polars as pl

from tracetool.cli import Failure, _emit, errors, main
from tracetool.dmesg import log_release
from tracetool.symbols import Modules, load, load_symbol_map
from tracetool.symbols.frames import addresses, find


def _location(frame: dict[str, object]) -> str:
    if not frame.get("file"):
        return "??:?"
    loc = f"{frame['file']}:{frame['line']}"
    if frame.get("discriminator"):
        loc += f" (discriminator {frame['discriminator']})"
    return loc


def annotation(frames: list[dict[str, object]] | None) -> str:
    """`` file:line`` of the printed function, then what was inlined at that address,
    innermost first: `` (inlined: inner file:line <- outer file:line)``."""
    if not frames or not any(f.get("file") for f in frames):
        return ""  # symbols only: the log already names the function
    text = " " + _location(frames[-1])
    if len(frames) > 1:
        inner = " <- ".join(f"{f['func']} {_location(f)}" for f in frames[:-1])
        text += f" (inlined: {inner})"
    return text


@main.command(name="symbolize")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--vmlinux",
    "vmlinux",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The kernel (or any ELF) the frames come from, with DWARF for lines.",
)
@click.option(
    "--system-map",
    "symbol_map",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Without a vmlinux: its System.map, for function names and offsets only.",
)
@click.option(
    "--kallsyms",
    "kallsyms",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Without a vmlinux: a saved /proc/kallsyms (the running kernel's relocated "
    "addresses), for function names and offsets only.",
)
@click.option(
    "--modules",
    "modules",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory holding the modules (NAME.ko, searched recursively) that frames "
    "marked [NAME] come from.",
)
@click.option(
    "--kaslr-offset",
    "kaslr",
    default=None,
    metavar="HEX",
    help="Load offset of the kernel; default: derived from frames that print "
    "both an address and a name.",
)
@click.option("--json", "as_json", is_flag=True, help="Write the frames table as JSON.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here instead of stdout (never over SOURCE).",
)
@click.option("--no-cache", is_flag=True, help="Read the ELF again instead of its cached tables.")
@errors
def symbolize_command(
    source: Path,
    vmlinux: Path | None,
    symbol_map: Path | None,
    kallsyms: Path | None,
    modules: Path | None,
    kaslr: str | None,
    as_json: bool,
    output: Path | None,
    no_cache: bool,
) -> None:
    """Append the source line (and what was inlined there) to every frame in SOURCE, in
    the spirit of scripts/decode_stacktrace.sh but for a whole log at once: crash
    reports (WARN, Oops, s390 call traces with unreliable frames), ftrace stack traces,
    anything printing func+0x1a/0x80 or [<address>] func+off/size.

    \b
    Example:
      tracetool symbolize dmesg.txt --vmlinux vmlinux -o dmesg.decoded.txt
      tracetool symbolize dmesg.txt --vmlinux vmlinux --json
      tracetool symbolize dmesg.txt --system-map System.map-6.0.0
    """
    if output is not None and output.resolve() == source.resolve():
        raise Failure("-o names the input; write the decoded log somewhere else")
    try:
        offset = int(kaslr, 16) if kaslr is not None else None
    except ValueError:
        raise Failure(f"--kaslr-offset {kaslr!r} is not a hex number (e.g. 0x1e000000)") from None
    given = [p for p in (vmlinux, symbol_map, kallsyms) if p is not None]
    if len(given) != 1:
        raise Failure("give one of --vmlinux, --system-map or --kallsyms")
    elf = given[0]
    binary = load(vmlinux, use_cache=not no_cache) if vmlinux else load_symbol_map(elf)
    text = source.read_text(encoding="utf-8", errors="replace").splitlines()
    release = log_release(text)
    if release and binary.tables.release and release != binary.tables.release:
        click.echo(
            f"warning: {source} comes from kernel {release} but {elf} is "
            f"{binary.tables.release}: lines may be wrong; give the log's own vmlinux",
            err=True,
        )
    lines = pl.DataFrame({"log_line": pl.int_range(1, len(text) + 1, eager=True), "text": text})
    frames, offset = addresses(find(lines), binary.tables, offset)
    resolved = binary.resolve(frames.filter(pl.col("addr").is_not_null()))
    if modules is not None:
        mods = Modules(modules, use_cache=not no_cache)
        parts = [resolved]
        for (name,), group in frames.filter(pl.col("module").is_not_null()).group_by(
            "module", maintain_order=True
        ):
            parts.append(mods.resolve(str(name), group))
        for note in mods.notes:
            click.echo(note, err=True)
        resolved = pl.concat([p for p in parts if p.height], how="diagonal_relaxed")
    click.echo(
        f"{elf}: build-id {binary.build_id or 'none'}"
        f"{' (cached tables)' if binary.cached else ''}; {frames.height} frames, "
        f"{resolved.filter(pl.col('file').is_not_null()).height} with a source line"
        + (f"; KASLR offset {offset:#x}" if offset else ""),
        err=True,
    )
    if vmlinux is not None and not binary.tables.has_dwarf:
        click.echo(
            f"{vmlinux}: no DWARF (.debug_info): functions only, no source lines; "
            "build with CONFIG_DEBUG_INFO or give the unstripped vmlinux",
            err=True,
        )
    if as_json:
        rows = resolved.select(
            "log_line",
            "func",
            "off",
            "size",
            "module",
            "unreliable",
            "raw",
            "addr",
            "how",
            "symbol",
            "offset",
            "file",
            "line",
            "discriminator",
            "frames",
        ).to_dicts()
        _emit(
            json.dumps(
                {"build_id": binary.build_id, "kaslr_offset": offset, "frames": rows},
                indent=1,
                default=str,
            )
            + "\n",
            output,
        )
        return
    notes = {}
    for row in resolved.select("log_line", "func", "how", "symbol", "offset", "frames").iter_rows(
        named=True
    ):
        note = annotation(row["frames"])
        if row["how"] == "raw" and row["symbol"] and row["symbol"] != row["func"]:
            # The printed name is not in the binary: say where the address really is.
            note += f" [address in {row['symbol']}+{row['offset']:#x}]"
        notes[row["log_line"]] = note
    out = "".join(t + notes.get(i, "") + "\n" for i, t in enumerate(text, start=1))
    _emit(out, output)
