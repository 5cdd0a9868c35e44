"""Symbolization against binutils addr2line, the reference (in tests only): every byte
of every function of C programs built here with inlining, for x86-64 and for big-endian
s390x (Debian's cross compiler, which .ci/run installs), with DWARF 5 and 4, and
stripped of their DWARF."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import tracetool
from tracetool.cli import main
from tracetool.errors import InputError
from tracetool.symbols import load, symbolize_trace

TOOLCHAINS = {
    "x86_64": ("gcc", "addr2line", "strip"),
    "s390x": ("s390x-linux-gnu-gcc", "s390x-linux-gnu-addr2line", "s390x-linux-gnu-strip"),
}


def _source(where: Path) -> list[Path]:
    """Three units of small functions: static inline helpers inlined two deep into
    exported functions, loops, and an unlikely branch (a .cold part)."""
    rng = random.Random(1)
    files = []
    for cu in range(3):
        lines = ["#include <stdlib.h>"]
        for i in range(12):
            lines.append(
                f"static inline int h{cu}_{i}(int x) {{ if (x & {i + 1}) return x * {i + 3};"
                f" return x - {i}; }}"
            )
        for i in range(8):
            a, b, c = rng.sample(range(12), 3)
            lines.append(
                f"static inline int g{cu}_{i}(int x) {{ int s = h{cu}_{a}(x);"
                f" for (int k = 0; k < (x & 7); k++) s += h{cu}_{b}(k + s);"
                f" return s ^ h{cu}_{c}(s); }}"
            )
        for i in range(6):
            a, b = rng.sample(range(8), 2)
            lines.append(
                f"int f{cu}_{i}(int x) {{ if (__builtin_expect(x < 0, 0)) abort();"
                f" return g{cu}_{a}(x) + g{cu}_{b}(x + 1); }}"
            )
        path = where / f"cu{cu}.c"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    main_c = where / "main.c"
    main_c.write_text(
        "int f0_0(int); int f1_0(int); int f2_0(int);\n"
        'const char linux_banner[] = "Linux version 6.0.0-tt (builder@host) (gcc) #1 SMP\\n";\n'
        "int main(int c, char **v) { return f0_0(c) + f1_0(c) + f2_0(c) + linux_banner[c]; }\n"
    )
    return [*files, main_c]


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing; .ci/run installs it")
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """name -> (binary, its addr2line)."""
    where = tmp_path_factory.mktemp("elf")
    sources = [str(p) for p in _source(where)]
    out: dict[str, tuple[Path, str]] = {}
    for arch, (cc, a2l, strip) in TOOLCHAINS.items():
        if shutil.which(cc) is None:
            continue
        for name, flags in (("o2", ["-g", "-O2"]), ("o3-dwarf4", ["-gdwarf-4", "-O3"])):
            binary = where / f"{arch}-{name}"
            subprocess.run([cc, *flags, "-o", str(binary), *sources], check=True)
            out[f"{arch}-{name}"] = (binary, a2l)
        stripped = where / f"{arch}-nodwarf"
        subprocess.run(
            [strip, "--strip-debug", "-o", str(stripped), str(out[f"{arch}-o2"][0])], check=True
        )
        out[f"{arch}-nodwarf"] = (stripped, a2l)
    return out


def _addr2line(a2l: str, binary: Path, addrs: list[int]) -> dict[int, list[str]]:
    done = subprocess.run(
        [a2l, "-a", "-f", "-i", "-e", str(binary), *(hex(a) for a in addrs)],
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[int, list[str]] = {}
    current = 0
    for line in done.stdout.splitlines():
        if line.startswith("0x"):
            current = int(line, 16)
            out[current] = []
        else:
            out[current].append(line)
    return out


def _note(want: list[str]) -> str:
    """What symbolize appends for addr2line's answer: the printed function's own line,
    then what was inlined there, innermost first."""
    pairs = list(zip(want[::2], want[1::2], strict=True))
    note = " " + pairs[-1][1]
    if len(pairs) > 1:
        note += " (inlined: " + " <- ".join(f"{f} {loc}" for f, loc in pairs[:-1]) + ")"
    return note


def _as_addr2line(frames: list[dict[str, object]] | None) -> list[str]:
    if not frames:
        return ["??", "??:0"]
    out = []
    for f in frames:
        out.append(str(f["func"] or "??"))
        loc = f"{f['file']}:{f['line']}" if f["file"] else "??:?"
        if f["discriminator"]:
            loc += f" (discriminator {f['discriminator']})"
        out.append(loc)
    return out


@pytest.mark.parametrize(
    "name",
    [f"{arch}-{kind}" for arch in TOOLCHAINS for kind in ("o2", "o3-dwarf4", "nodwarf")],
)
def test_every_address_matches_addr2line(binaries: dict[str, tuple[Path, str]], name: str) -> None:
    arch = name.split("-")[0]
    _need(TOOLCHAINS[arch][0])
    binary, a2l = binaries[name]
    _need(a2l)
    b = load(binary, use_cache=False)
    assert b.tables.big_endian == (arch == "s390x")
    assert b.tables.has_dwarf == (name.split("-", 1)[1] != "nodwarf")
    funcs = b.tables.functions.filter(pl.col("size") > 0)
    addrs = sorted(
        {a for lo, n in zip(funcs["addr"], funcs["size"], strict=True) for a in range(lo, lo + n)}
    )
    got = b.resolve(pl.DataFrame({"addr": pl.Series(addrs, dtype=pl.UInt64)}))
    want = _addr2line(a2l, binary, addrs)
    inlined = 0
    for addr, frames in zip(got["addr"], got["frames"].to_list(), strict=True):
        assert _as_addr2line(frames) == want[addr], hex(addr)
        inlined += len(frames or []) > 1
    assert len(addrs) > 1000
    if b.tables.has_dwarf:
        assert inlined > 100  # the chains were exercised


def test_tables_are_cached_by_build_id(binaries: dict[str, tuple[Path, str]]) -> None:
    _need("gcc")
    binary, _ = binaries["x86_64-o2"]
    first = load(binary)
    again = load(binary)
    assert not first.cached and again.cached
    assert first.build_id and len(first.build_id) == 40
    for name in ("functions", "lines", "scopes", "chains"):
        assert getattr(again.tables, name).equals(getattr(first.tables, name)), name


def test_not_an_elf(tmp_path: Path) -> None:
    path = tmp_path / "vmlinux"
    path.write_text("not an ELF\n")
    with pytest.raises(InputError, match="not an ELF file"):
        load(path)


def test_symbolize_a_log(binaries: dict[str, tuple[Path, str]], tmp_path: Path) -> None:
    """An s390 call trace of a kernel loaded 16 MiB up: the KASLR offset is derived from
    frames printing both address and name, an unreliable frame keeps its parentheses,
    a frame whose name is not in the binary is placed by its address, and every frame
    gets the source line and inline chain addr2line gives."""
    _need("s390x-linux-gnu-gcc")
    binary, a2l = binaries["s390x-o2"]
    b = load(binary, use_cache=False)
    funcs = dict(zip(b.tables.functions["name"], b.tables.functions["addr"], strict=True))
    sizes = dict(zip(b.tables.functions["name"], b.tables.functions["size"], strict=True))
    shift = 0x1000000
    f03, f12 = funcs["f0_3"], funcs["f1_2"]
    log = tmp_path / "dmesg.txt"
    log.write_text(
        "[  531.000129] Call Trace:\n"
        f"[  531.000131]  [<{f03 + shift + 0x10:016x}>] f0_3+0x10/{sizes['f0_3']:#x}\n"
        f"[  531.000133] ([<{f12 + shift + 4:016x}>] f1_2+0x4/{sizes['f1_2']:#x})\n"
        f"[  531.000135]  [<{f03 + shift + 0x20:016x}>] gone+0x4/0x50\n"
        "[  531.000137] no frame here\n"
    )
    result = CliRunner().invoke(main, ["symbolize", str(log), "--vmlinux", str(binary)])
    assert result.exit_code == 0, result.output
    assert f"KASLR offset {shift:#x}" in result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "[  531.000129] Call Trace:" and lines[4] == "[  531.000137] no frame here"
    for line, addr in ((lines[1], f03 + 0x10), (lines[2], f12 + 4)):
        assert line.endswith(_note(_addr2line(a2l, binary, [addr])[addr])), line
    assert _note(_addr2line(a2l, binary, [f03 + 0x20])[f03 + 0x20]) in lines[3]
    assert lines[2].startswith("[  531.000133] ([<")
    assert lines[3].endswith("[address in f0_3+0x20]")
    doc = json.loads(
        CliRunner().invoke(main, ["symbolize", str(log), "--vmlinux", str(binary), "--json"]).stdout
    )
    assert doc["kaslr_offset"] == shift
    assert [f["how"] for f in doc["frames"]] == ["symbol", "symbol", "raw"]
    assert [f["unreliable"] for f in doc["frames"]] == [False, True, False]


def test_other_frame_forms_and_the_release_check(
    binaries: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """perf callchain frames (func+0x1a, no size), bpftrace kstack frames (func+26,
    decimal) and ftrace stack lines resolve too; a log from another kernel release than
    the vmlinux's linux_banner gets a warning."""
    _need("gcc")
    binary, a2l = binaries["x86_64-o2"]
    b = load(binary, use_cache=False)
    assert b.tables.release == "6.0.0-tt"
    log = tmp_path / "mixed.txt"
    log.write_text(
        "CPU: 0 PID: 41 Comm: kmcheck Not tainted 6.1.0 #1\n"
        "\t ffffffff81000000 f0_3+0x10 (vmlinux)\n"
        "        f1_2+4\n"
        " => f2_1+0x8/0x40\n"
    )
    result = CliRunner().invoke(main, ["symbolize", str(log), "--vmlinux", str(binary)])
    assert result.exit_code == 0, result.output
    assert "comes from kernel 6.1.0 but" in result.stderr and "is 6.0.0-tt" in result.stderr
    funcs = dict(zip(b.tables.functions["name"], b.tables.functions["addr"], strict=True))
    out = result.stdout.splitlines()
    for line, addr in zip(
        out[1:], (funcs["f0_3"] + 0x10, funcs["f1_2"] + 4, funcs["f2_1"] + 8), strict=True
    ):
        assert line.endswith(_note(_addr2line(a2l, binary, [addr])[addr])), line
    same = tmp_path / "same.txt"
    same.write_text("CPU: 0 PID: 41 Comm: kmcheck Not tainted 6.0.0-tt #1\n")
    result = CliRunner().invoke(main, ["symbolize", str(same), "--vmlinux", str(binary)])
    assert "comes from kernel" not in result.stderr


def test_system_map_fallback(binaries: dict[str, tuple[Path, str]], tmp_path: Path) -> None:
    """With only a System.map: names and offsets, no source lines, and a clear error for
    a file that is not one."""
    _need("gcc")
    binary, _ = binaries["x86_64-o2"]
    nm = subprocess.run(["nm", str(binary)], capture_output=True, text=True, check=True)
    smap = tmp_path / "System.map"
    smap.write_text(nm.stdout)
    funcs = load(binary, use_cache=False).tables.functions
    f03 = funcs.filter(name="f0_3")["addr"][0]
    log = tmp_path / "log.txt"
    log.write_text(f"[<{f03 + 0x1000000 + 8:016x}>] gone+0x8/0x40\n")
    result = CliRunner().invoke(
        main, ["symbolize", str(log), "--system-map", str(smap), "--kaslr-offset", "0x1000000"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("[address in f0_3+0x8]")
    bad = tmp_path / "not-a-map"
    bad.write_text("hello\n")
    result = CliRunner().invoke(main, ["symbolize", str(log), "--system-map", str(bad)])
    assert result.exit_code == 2 and "no text symbols" in result.output
    result = CliRunner().invoke(main, ["symbolize", str(log)])
    assert result.exit_code == 2 and "give one of --vmlinux" in result.output


MODULE_C = """
static inline int helper(int x) { return x * 3 + 1; }
static inline int twice(int x) { return helper(x) + helper(x + 1); }
int mod_entry(int n) { int s = 0; for (int i = 0; i < n; i++) s += twice(i) ^ s; return s; }
int mod_other(int n) { return twice(n) - 7; }
static int __attribute__((section(".init.text"), used)) mod_init(void) { return mod_other(3); }
"""


@pytest.mark.parametrize("arch", list(TOOLCHAINS))
def test_module_sections_match_addr2line(arch: str, tmp_path: Path) -> None:
    """A module is a relocatable object whose code sections all start at 0; every byte
    of its functions in .text and .init.text resolves as addr2line -j SECTION says."""
    cc, a2l, _ = TOOLCHAINS[arch]
    _need(cc)
    _need(a2l)
    src = tmp_path / "mod.c"
    src.write_text(MODULE_C.lstrip("\n"))
    ko = tmp_path / "mod.ko"
    subprocess.run([cc, "-g", "-O2", "-c", "-o", str(ko), str(src)], check=True)
    m = load(ko, use_cache=False)
    from tracetool.symbols.tables import SECTION_STRIDE

    sections = {".text": [], ".init.text": []}  # type: dict[str, list[int]]
    from elftools.elf.elffile import ELFFile

    with ko.open("rb") as f:
        names = [s.name for s in ELFFile(f).iter_sections()]
    for addr, size in zip(m.tables.functions["addr"], m.tables.functions["size"], strict=True):
        section = names[addr // SECTION_STRIDE]
        sections[section].extend(range(addr, addr + size))
    assert sections[".text"] and sections[".init.text"]
    for section, addrs in sections.items():
        got = m.resolve(pl.DataFrame({"addr": pl.Series(addrs, dtype=pl.UInt64)}))
        offsets = [a % SECTION_STRIDE for a in addrs]
        done = subprocess.run(
            [a2l, "-a", "-f", "-i", "-j", section, "-e", str(ko), *(hex(o) for o in offsets)],
            capture_output=True,
            text=True,
            check=True,
        )
        want: dict[int, list[str]] = {}
        for line in done.stdout.splitlines():
            if line.startswith("0x"):
                current = int(line, 16)
                want[current] = []
            else:
                want[current].append(line)
        for off, frames in zip(offsets, got["frames"].to_list(), strict=True):
            assert _as_addr2line(frames) == want[off], (section, hex(off))


def test_module_frames_in_a_log(binaries: dict[str, tuple[Path, str]], tmp_path: Path) -> None:
    _need("gcc")
    binary, _ = binaries["x86_64-o2"]
    src = tmp_path / "mod.c"
    src.write_text(MODULE_C.lstrip("\n"))
    tree = tmp_path / "lib" / "modules" / "kernel"
    tree.mkdir(parents=True)
    subprocess.run(["gcc", "-g", "-O2", "-c", "-o", str(tree / "my-mod.ko"), str(src)], check=True)
    log = tmp_path / "log.txt"
    log.write_text(
        " [<000003ff80243b0e>] mod_other+0x2/0x8 [my_mod]\n"
        " [<000003ff80243b10>] mod_init+0x2/0x6 [my_mod]\n"
        " other_fn+0x2/0x8 [absent]\n"
    )
    result = CliRunner().invoke(
        main, ["symbolize", str(log), "--vmlinux", str(binary), "--modules", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0].endswith(f"[my_mod] {src}:4 (inlined: helper {src}:1 <- twice {src}:2)")
    assert out[1].endswith(f"[my_mod] {src}:5")
    assert out[2] == " other_fn+0x2/0x8 [absent]"
    assert "no absent.ko" in result.stderr


def test_crash_reports_symbolized_end_to_end(
    binaries: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """The dmesg parser's crash report, its frames given source lines: `tracetool list
    crashes --vmlinux` prints every frame (unreliable ones in parentheses) with the
    line addr2line gives and what was inlined there."""
    _need("s390x-linux-gnu-gcc")
    binary, a2l = binaries["s390x-o2"]
    b = load(binary, use_cache=False)
    funcs = dict(zip(b.tables.functions["name"], b.tables.functions["addr"], strict=True))
    sizes = dict(zip(b.tables.functions["name"], b.tables.functions["size"], strict=True))
    shift = 0x3E000000
    frames = [("f0_3", 0x10, True), ("f1_2", 0x4, False), ("f2_1", 0x8, True)]

    def frame(name: str, off: int, reliable: bool) -> str:
        text = f"[<{funcs[name] + shift + off:016x}>] {name}+{off:#x}/{sizes[name]:#x}"
        return f" {text}" if reliable else f"({text})"

    report = [
        "------------[ cut here ]------------",
        f"WARNING: CPU: 3 PID: 41 at cu0.c:17 f0_3+0x10/{sizes['f0_3']:#x}",
        "Modules linked in: vfio_pci",
        "CPU: 3 PID: 41 Comm: kmcheck Not tainted 6.0.0-tt #1",
        "Hardware name: IBM 8561 T01 703 (z/VM 7.2.0)",
        f"Krnl PSW : 0704c00180000000 {funcs['f0_3'] + shift + 0x10:016x} (f0_3+0x10/{sizes['f0_3']:#x})",
        "           R:0 T:1 IO:1 EX:1 Key:0 M:1 W:0 P:0 AS:3 CC:2 PM:0 RI:0 EA:3",
        "Call Trace:",
        *(frame(*f) for f in frames),
        "Last Breaking-Event-Address:",
        f" [<{funcs['f0_3'] + shift + 0xC:016x}>] f0_3+0xc/{sizes['f0_3']:#x}",
        "---[ end trace 0000000000000000 ]---",
    ]
    log = tmp_path / "dmesg.txt"
    log.write_text("".join(f"[  531.{i:06d}] {line}\n" for i, line in enumerate(report)))
    result = CliRunner().invoke(main, ["list", "crashes", str(log), "--vmlinux", str(binary)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for name, off, reliable in frames:
        addr = funcs[name] + off
        text = f"{name}+{off:#x}/{sizes[name]:#x}"
        shown = f"    {text}" if reliable else f"    ({text})"
        note = _note(_addr2line(a2l, binary, [addr])[addr])
        pairs = note.strip()
        want = shown + "  " + pairs
        assert want in lines, (want, lines)


def _oops_log(where: Path, pc: int) -> Path:
    """An s390 Oops (no file:line printed) in f0_3 at ``pc``, as dmesg shows it."""
    report = [
        "Unable to handle kernel pointer dereference in virtual kernel address space",
        "Oops: 0004 ilc:3 [#1] PREEMPT SMP",
        "CPU: 3 PID: 41 Comm: kmcheck Not tainted 6.0.0-tt #1",
        f"Krnl PSW : 0704c00180000000 {pc:016x} (f0_3+0x10/0x90)",
        "Call Trace:",
        f" [<{pc:016x}>] f0_3+0x10/0x90",
        "---[ end trace 0000000000000000 ]---",
    ]
    log = where / "oops.txt"
    log.write_text("".join(f"[  531.{i:06d}] {line}\n" for i, line in enumerate(report)))
    return log


def test_oops_gets_its_location_from_the_guilty_frame(
    binaries: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """An Oops prints no file:line; with the vmlinux its location is the guilty frame's
    source line, which crash spans (and so check's findings) carry."""
    _need("s390x-linux-gnu-gcc")
    binary, a2l = binaries["s390x-o2"]
    b = load(binary, use_cache=False)
    funcs = dict(zip(b.tables.functions["name"], b.tables.functions["addr"], strict=True))
    f03 = funcs["f0_3"]
    log = _oops_log(tmp_path, f03 + 0x10)

    trace = tracetool.parse(log, use_cache=False)
    assert trace.table("crashes").collect()["location"].to_list() == [None]
    symbolized, _ = symbolize_trace(trace, binary, use_cache=False)
    want = _addr2line(a2l, binary, [f03 + 0x10])[f03 + 0x10][-1]
    assert symbolized.table("crashes").collect()["location"].to_list() == [want]
    # A crash span needs a device; the location rides along whatever the device.
    spans = tracetool.timeline(
        symbolized.events, crashes=symbolized.table("crashes")
    ).spans.collect()
    assert spans.filter(kind="crash")["location"].to_list() in ([], [want])


def test_triage_locates_an_oops(binaries: dict[str, tuple[Path, str]], tmp_path: Path) -> None:
    """tracetool triage --vmlinux: the group of an Oops (which prints no file:line)
    carries its guilty frame's source line."""
    _need("s390x-linux-gnu-gcc")
    binary, a2l = binaries["s390x-o2"]
    funcs = load(binary, use_cache=False).tables.functions
    f03 = funcs.filter(name="f0_3")["addr"][0]
    log = _oops_log(tmp_path, f03 + 0x10)
    result = CliRunner().invoke(
        main, ["triage", str(log), "--vmlinux", str(binary), "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    (group,) = json.loads(result.stdout)["groups"]
    assert group["location"] == _addr2line(a2l, binary, [f03 + 0x10])[f03 + 0x10][-1]


def test_timeline_and_export_locate_an_oops(
    binaries: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """tracetool timeline/export --vmlinux: the crash marker's report names its guilty
    frame's source line."""
    _need("s390x-linux-gnu-gcc")
    binary, a2l = binaries["s390x-o2"]
    funcs = load(binary, use_cache=False).tables.functions
    f03 = funcs.filter(name="f0_3")["addr"][0]
    log = _oops_log(tmp_path, f03 + 0x10)
    want = _addr2line(a2l, binary, [f03 + 0x10])[f03 + 0x10][-1]
    from tracetool import lanes

    trace = tracetool.parse(str(log), use_cache=False)
    trace, notes = symbolize_trace(trace, binary, use_cache=False)
    assert any("build-id" in n for n in notes)
    assert not any("warning" in n for n in notes)  # the log is 6.0.0-tt, as the binary
    other = tmp_path / "other.txt"
    other.write_text(log.read_text().replace("6.0.0-tt", "6.1.0"))
    _, notes = symbolize_trace(tracetool.parse(str(other), use_cache=False), binary)
    assert any("kernel 6.1.0 but" in n and "6.0.0-tt" in n for n in notes), notes
    built = lanes.build(trace)
    (key,) = built.crashes["key"].to_list()
    assert f"source: {want}" in built.details[key]
    out = tmp_path / "t.json"
    result = CliRunner().invoke(
        main, ["export", "--perfetto", str(out), str(log), "--vmlinux", str(binary)]
    )
    assert result.exit_code == 0, result.output
    crash = next(e for e in json.loads(out.read_text())["traceEvents"] if e.get("cat") == "crash")
    assert crash["args"]["location"] == want


@pytest.mark.parametrize("packing", ["xz", "gz", "zst"])
def test_compressed_modules_are_read(
    packing: str, binaries: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """Distributions ship modules compressed; the frames resolve the same, and the
    compressed file is left as it was."""
    import gzip
    import lzma

    import zstandard

    _need("gcc")
    binary, _ = binaries["x86_64-o2"]
    src = tmp_path / "mod.c"
    src.write_text(MODULE_C.lstrip("\n"))
    obj = tmp_path / "my-mod.o"
    subprocess.run(["gcc", "-g", "-O2", "-c", "-o", str(obj), str(src)], check=True)
    tree = tmp_path / "lib" / "modules" / "kernel"
    tree.mkdir(parents=True)
    packed = tree / f"my-mod.ko.{packing}"
    pack = {
        "xz": lzma.compress,
        "gz": gzip.compress,
        "zst": lambda b: zstandard.ZstdCompressor().compress(b),
    }[packing]
    packed.write_bytes(pack(obj.read_bytes()))
    before = packed.read_bytes()
    log = tmp_path / "log.txt"
    log.write_text(" [<000003ff80243b0e>] mod_other+0x2/0x8 [my_mod]\n")
    result = CliRunner().invoke(
        main, ["symbolize", str(log), "--vmlinux", str(binary), "--modules", str(tree)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip("\n").endswith(
        f"[my_mod] {src}:4 (inlined: helper {src}:1 <- twice {src}:2)"
    )
    assert packed.read_bytes() == before


def test_a_module_of_another_build_is_not_used(
    binaries: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """A CONFIG_STACKTRACE_BUILD_ID kernel prints each module's build-id in its frames;
    a .ko with another build-id would give wrong lines, so its frames stay unresolved
    and the user is told which file to give."""
    _need("gcc")
    _need("ld")
    binary, _ = binaries["x86_64-o2"]
    src = tmp_path / "mod.c"
    src.write_text(MODULE_C.lstrip("\n"))
    obj = tmp_path / "mod.o"
    subprocess.run(["gcc", "-g", "-O2", "-c", "-o", str(obj), str(src)], check=True)
    tree = tmp_path / "mods"
    tree.mkdir()
    ko = tree / "my_mod.ko"
    subprocess.run(["ld", "-r", "--build-id=sha1", "-o", str(ko), str(obj)], check=True)
    from tracetool.symbols import load

    real = load(ko, use_cache=False).build_id
    assert real and len(real) == 40
    other = "0" * 40
    log = tmp_path / "log.txt"
    log.write_text(f" mod_other+0x2/0x8 [my_mod {real}]\n mod_init+0x2/0x6 [my_mod {other}]\n")
    result = CliRunner().invoke(
        main, ["symbolize", str(log), "--vmlinux", str(binary), "--modules", str(tree)]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0].endswith(f"[my_mod {real}] {src}:4 (inlined: helper {src}:1 <- twice {src}:2)")
    assert out[1] == f" mod_init+0x2/0x6 [my_mod {other}]"
    assert f"build-id {real}" in result.stderr and f"build-id {other}" in result.stderr


def test_trace_stacks_symbolized_by_parse(
    binaries: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """`tracetool parse --vmlinux`: every frame of an ftrace <stack trace> (sym-offset
    form) gets the source line addr2line gives, written out as ``stack_src``."""
    _need("gcc")
    binary, a2l = binaries["x86_64-o2"]
    b = load(binary, use_cache=False)
    funcs = dict(zip(b.tables.functions["name"], b.tables.functions["addr"], strict=True))
    sizes = dict(zip(b.tables.functions["name"], b.tables.functions["size"], strict=True))
    frames = [("f0_3", 0x10), ("f1_2", 0x4), ("f2_1", 0x8)]
    text = (
        "# tracer: nop\n#\n"
        "       kmcheck-41      [003] .....   531.000100: tracing_mark_write: go\n"
        "       kmcheck-41      [003] .....   531.000101: <stack trace>\n"
        + "".join(f" => {n}+{o:#x}/{sizes[n]:#x}\n" for n, o in frames)
        + " => not_in_the_binary+0x4/0x10\n"
    )
    trace_file = tmp_path / "trace.txt"
    trace_file.write_text(text)
    out = tmp_path / "events.parquet"
    result = CliRunner().invoke(
        main, ["parse", str(trace_file), "--vmlinux", str(binary), "-o", str(out), "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    assert "3 stack frame(s) given a source line" in result.stderr
    events = pl.read_parquet(out).filter(pl.col("stack").list.len() > 0)
    assert events.height == 1
    src = events["stack_src"][0].to_list()
    assert len(src) == 4 and src[3] is None
    want = _addr2line(a2l, binary, [funcs[n] + o for n, o in frames])
    for (name, off), got in zip(frames, src, strict=False):
        pairs = want[funcs[name] + off]
        assert f"{got['file']}:{got['line']}" == pairs[-1], name
        inner = [f"{f} {loc}" for f, loc in zip(pairs[:-2:2], pairs[1:-2:2], strict=True)]
        assert got["inlined"] == inner, name


def test_perf_callchains_symbolized_by_parse(
    binaries: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    """perf callchain entries name their DSO: kernel frames get addr2line's line, a
    user-space frame of the same name does not (it did not run in the vmlinux)."""
    _need("gcc")
    binary, a2l = binaries["x86_64-o2"]
    b = load(binary, use_cache=False)
    funcs = dict(zip(b.tables.functions["name"], b.tables.functions["addr"], strict=True))
    text = (
        "fio  2211 [001]   620.000140:     250000 cpu-clock:ppp: \n"
        f"\t       {funcs['f0_3'] + 0x10:x} f0_3+0x10 ([kernel.kallsyms])\n"
        f"\t       {funcs['f1_2'] + 0x4:x} f1_2+0x4 ([kernel.kallsyms])\n"
        "\t     3ff8a1c1000 f2_1+0x8 (/usr/lib64/libaio.so.1.0.1)\n"
        "\n"
    )
    trace_file = tmp_path / "perf.txt"
    trace_file.write_text(text)
    out = tmp_path / "events.parquet"
    result = CliRunner().invoke(
        main, ["parse", str(trace_file), "--vmlinux", str(binary), "-o", str(out), "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    (src,) = pl.read_parquet(out).filter(pl.col("stack").list.len() > 0)["stack_src"].to_list()
    assert len(src) == 3 and src[2] is None
    want = _addr2line(a2l, binary, [funcs["f0_3"] + 0x10, funcs["f1_2"] + 0x4])
    assert f"{src[0]['file']}:{src[0]['line']}" == want[funcs["f0_3"] + 0x10][-1]
    assert f"{src[1]['file']}:{src[1]['line']}" == want[funcs["f1_2"] + 0x4][-1]
