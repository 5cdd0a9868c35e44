"""The trace.dat container, versions 6 and 7 (trace-cmd.dat.v6(5), trace-cmd.dat.v7(5)).

Reads the initial header (magic, version, byte order, long size, page size), then the
metadata: header page and header event formats, ftrace and event format files,
kallsyms, printk formats, saved cmdlines, the options (clock, time offset, TSC to ns
conversion, guest time shift, CPU stats, buffer instances) and where each CPU's ring
buffer pages are. Version 7 keeps all of these in sections, possibly compressed (zlib,
or zstd with the optional ``zstandard`` package); version 6 in a fixed order.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from tracetool.tracedat.cursor import Cursor
from tracetool.tracedat.errors import TraceDatError

MAGIC = b"\x17\x08\x44tracing"

# Option ids (shared by v6 and v7) and v7 section ids.
OPT_DONE, OPT_DATE, OPT_CPUSTAT, OPT_BUFFER, OPT_TRACECLOCK, OPT_UNAME = 0, 1, 2, 3, 4, 5
OPT_HOOK, OPT_OFFSET, OPT_CPUCOUNT, OPT_VERSION, OPT_PROCMAPS, OPT_TRACEID = 6, 7, 8, 9, 10, 11
OPT_TIME_SHIFT, OPT_GUEST, OPT_TSC2NSEC, OPT_STRINGS = 12, 13, 14, 15
SEC_HEADER, SEC_FTRACE, SEC_EVENTS, SEC_KALLSYMS, SEC_PRINTK, SEC_CMDLINES = 16, 17, 18, 19, 20, 21
OPT_BUFFER_TEXT = 22
SECTION_NAMES = {
    SEC_HEADER: "header info",
    SEC_FTRACE: "ftrace event formats",
    SEC_EVENTS: "event formats",
    SEC_KALLSYMS: "kallsyms",
    SEC_PRINTK: "printk formats",
    SEC_CMDLINES: "saved cmdlines",
}
ZSTD_MISSING = (
    "is zstd-compressed and the optional 'zstandard' package is not installed; run: "
    "pip install 'tracetool[zstd]' (or convert it with `trace-cmd convert --compression "
    "none`, or read it with --via trace-cmd)"
)


@dataclass
class CpuData:
    """One CPU's ring-buffer pages: where they are in the file and how many bytes."""

    cpu: int
    offset: int
    size: int


@dataclass
class Buffer:
    """One trace instance ("" for the top level) and its CPUs' data."""

    name: str
    clock: str
    page_size: int
    cpus: list[CpuData]
    compressed: bool = False


@dataclass
class TraceDat:
    """Everything a trace.dat says besides the events themselves."""

    file: str
    data: bytes | memoryview
    version: int
    big_endian: bool
    long_size: int
    page_size: int
    compression: str = "none"
    header_page: str = ""
    header_event: str = ""
    ftrace_formats: list[str] = field(default_factory=list)
    event_formats: list[tuple[str, str]] = field(default_factory=list)
    kallsyms: str = ""
    printk: str = ""
    cmdlines: str = ""
    buffers: list[Buffer] = field(default_factory=list)
    clock: str = "local"
    meta: dict[str, Any] = field(default_factory=dict)
    # Time fixes trace-cmd applies when it reads: an offset in ns (OFFSET option) and
    # the TSC to ns conversion (TSC2NSEC: mult, shift, offset).
    ts_offset: int = 0
    tsc2nsec: tuple[int, int, int] | None = None
    time_shift: list[tuple[list[int], list[int], list[int]]] = field(default_factory=list)

    def cursor(self, pos: int = 0) -> Cursor:
        return Cursor(self.data, self.file, big_endian=self.big_endian, pos=pos)

    def decompress(self, payload: bytes, size: int, at: int, what: str) -> bytes:
        """Uncompress one block of ``what`` found at file offset ``at``."""
        algo = self.compression
        try:
            if algo == "zlib":
                out = zlib.decompress(payload)
            elif algo == "zstd":
                try:
                    import zstandard
                except ImportError:
                    raise TraceDatError(
                        self.file, at, f"{what}: the file {ZSTD_MISSING}", ""
                    ) from None
                out = zstandard.ZstdDecompressor().decompress(payload, max_output_size=size)
            else:
                raise TraceDatError(
                    self.file,
                    at,
                    f"{what} is compressed with {algo!r}, which tracetool does not know "
                    "(known: zlib, zstd)",
                    "convert it with `trace-cmd convert --compression none`",
                )
        except TraceDatError:
            raise
        except Exception as exc:  # zlib.error, zstandard.ZstdError
            raise TraceDatError(
                self.file, at, f"expected a {algo} block of {len(payload)} bytes ({what}): {exc}"
            ) from None
        if len(out) != size:
            raise TraceDatError(
                self.file,
                at,
                f"expected {what} to decompress to {size} bytes, got {len(out)}",
            )
        return out

    def cpu_bytes(self, buffer: Buffer, cpu: CpuData) -> bytes | memoryview:
        """The raw pages of one CPU, decompressed when the buffer is compressed."""
        what = f"the ring buffer of CPU {cpu.cpu}" + (
            f" of instance {buffer.name}" if buffer.name else ""
        )
        if cpu.offset + cpu.size > len(self.data):
            raise TraceDatError(
                self.file,
                cpu.offset,
                f"expected {cpu.size} bytes of {what}, but the file ends at byte {len(self.data)}",
            )
        if not buffer.compressed:
            return memoryview(self.data)[cpu.offset : cpu.offset + cpu.size]
        if cpu.size == 0:
            return b""
        c = self.cursor(cpu.offset)
        count = c.u32(f"the chunk count of {what}")
        parts = []
        for i in range(count):
            at = c.offset()
            csize = c.u32(f"the compressed size of chunk {i} of {what}")
            usize = c.u32(f"the uncompressed size of chunk {i} of {what}")
            parts.append(self.decompress(c.take(csize, f"chunk {i} of {what}"), usize, at, what))
        return b"".join(parts)


def is_tracedat(head: bytes) -> bool:
    return head.startswith(MAGIC)


def read(data: bytes | memoryview, file: str) -> TraceDat:
    """Read the container of a trace.dat held in ``data``."""
    c = Cursor(data, file)
    c.expect(MAGIC, "the trace.dat magic")
    version_text = c.cstr("the file version", limit=16)
    if not version_text.isdigit():
        raise TraceDatError(
            file, len(MAGIC), f"expected a file version number, found {version_text!r}"
        )
    version = int(version_text)
    if version not in (6, 7):
        raise TraceDatError(
            file,
            len(MAGIC),
            f"trace.dat version {version} is not supported (this reader knows 6 and 7)",
            "convert it with `trace-cmd convert --file-version 7`, or use --via trace-cmd",
        )
    at = c.pos
    endian = c.u8("the endianness flag (0 little, 1 big)")
    if endian not in (0, 1):
        raise TraceDatError(file, at, f"expected the endianness flag 0 or 1, found {endian}")
    at = c.pos
    long_size = c.u8("the long size")
    if long_size not in (4, 8):
        raise TraceDatError(file, at, f"expected a long size of 4 or 8, found {long_size}")
    c.order = ">" if endian else "<"
    at = c.pos
    page_size = c.u32("the page size")
    if page_size < 64 or page_size > (1 << 24) or page_size & (page_size - 1):
        raise TraceDatError(file, at, f"expected a power-of-two page size, found {page_size}")
    td = TraceDat(file, data, version, bool(endian), long_size, page_size)
    if version == 7:
        _read_v7(td, c)
    else:
        _read_v6(td, c)
    return td


def _read_headers(td: TraceDat, c: Cursor) -> None:
    c.expect(b"header_page\0", "the header page tag")
    td.header_page = c.sized_text(c.u64("the header page size"), "the header page format")
    c.expect(b"header_event\0", "the header event tag")
    td.header_event = c.sized_text(c.u64("the header event size"), "the header event format")


def _read_ftrace(td: TraceDat, c: Cursor) -> None:
    count = c.u32("the number of ftrace event formats")
    for i in range(count):
        size = c.u64(f"the size of ftrace format {i}")
        td.ftrace_formats.append(c.sized_text(size, f"ftrace format {i}"))


def _read_events(td: TraceDat, c: Cursor) -> None:
    systems = c.u32("the number of event systems")
    for _ in range(systems):
        system = c.cstr("an event system name")
        count = c.u32(f"the number of events of system {system}")
        for i in range(count):
            size = c.u64(f"the size of format {i} of system {system}")
            td.event_formats.append((system, c.sized_text(size, f"format {i} of system {system}")))


def _read_v6(td: TraceDat, c: Cursor) -> None:
    _read_headers(td, c)
    _read_ftrace(td, c)
    _read_events(td, c)
    td.kallsyms = c.sized_text(c.u32("the kallsyms size"), "kallsyms")
    td.printk = c.sized_text(c.u32("the printk formats size"), "the printk formats")
    td.cmdlines = c.sized_text(c.u64("the saved cmdlines size"), "the saved cmdlines")
    ncpus = c.u32("the CPU count")
    instances: list[tuple[str, int]] = []
    while True:
        at = c.pos
        tag = c.take(10, 'the "options  ", "latency  " or "flyrecord" tag')
        if tag == b"options  \0":
            while True:
                opt = c.u16("an option id")
                if opt == 0:
                    break
                size = c.u32(f"the size of option {opt}")
                start = c.pos
                body = Cursor(
                    c.take(size, f"option {opt}"), td.file, big_endian=td.big_endian, base=start
                )
                if opt == OPT_BUFFER:
                    offset = body.u64("the buffer instance's data offset")
                    instances.append((body.cstr("the buffer instance name"), offset))
                else:
                    _option(td, opt, body)
            continue
        if tag == b"latency  \0":
            raise TraceDatError(
                td.file,
                at,
                "this file holds latency-tracer text, not ring-buffer pages",
                "read it with `trace-cmd report`, or --via trace-cmd",
            )
        if tag != b"flyrecord\0":
            raise TraceDatError(td.file, at, f'expected "options  " or "flyrecord", found {tag!r}')
        break
    td.buffers.append(Buffer("", td.clock, td.page_size, _cpu_table(td, c, ncpus)))
    for name, offset in instances:
        td.buffers.append(
            Buffer(name, td.clock, td.page_size, _cpu_table(td, td.cursor(offset), ncpus))
        )


def _cpu_table(td: TraceDat, c: Cursor, ncpus: int) -> list[CpuData]:
    cpus = []
    for cpu in range(ncpus):
        offset = c.u64(f"the data offset of CPU {cpu}")
        size = c.u64(f"the data size of CPU {cpu}")
        cpus.append(CpuData(cpu, offset, size))
    return cpus


def _section(td: TraceDat, offset: int, expect_id: int | None, what: str) -> Cursor:
    """The data of the v7 section at ``offset`` (decompressed), as a cursor."""
    c = td.cursor()
    c.seek(offset, f"the {what} section offset")
    sid = c.u16(f"the id of the {what} section")
    if expect_id is not None and sid != expect_id:
        raise TraceDatError(
            td.file, offset, f"expected the {what} section (id {expect_id}), found id {sid}"
        )
    flags = c.u16(f"the flags of the {what} section")
    c.u32(f"the description of the {what} section")
    size = c.u64(f"the size of the {what} section")
    if flags & 1:
        at = c.pos
        csize = c.u32(f"the compressed size of the {what} section")
        usize = c.u32(f"the uncompressed size of the {what} section")
        payload = td.decompress(
            c.take(csize, f"the compressed {what} section"), usize, at, f"the {what} section"
        )
        return Cursor(
            payload,
            td.file,
            big_endian=td.big_endian,
            base=offset,
            where=f"the compressed {what} section at byte {offset}",
        )
    c.need(size, f"the {what} section")
    return Cursor(
        memoryview(td.data)[c.pos : c.pos + size], td.file, big_endian=td.big_endian, base=c.pos
    )


def _read_v7(td: TraceDat, c: Cursor) -> None:
    td.compression = c.cstr("the compression algorithm name", limit=64)
    comp_version = c.cstr("the compression algorithm version", limit=64)
    td.meta["compression"] = (
        td.compression if td.compression == "none" else f"{td.compression} {comp_version}"
    )
    next_options = c.u64("the offset of the first options section")
    sections: dict[int, int] = {}
    buffers: list[tuple[int, Cursor]] = []
    seen: set[int] = set()
    while next_options:
        if next_options in seen:
            raise TraceDatError(td.file, next_options, "the options sections form a loop")
        seen.add(next_options)
        oc = _section(td, next_options, 0, "options")
        next_options = 0
        while True:
            opt = oc.u16("an option id")
            size = oc.u32(f"the size of option {opt}")
            start = oc.offset()
            body = Cursor(
                oc.take(size, f"option {opt}"),
                td.file,
                big_endian=td.big_endian,
                base=start,
                where=oc.where,
            )
            if opt == OPT_DONE:
                next_options = body.u64("the offset of the next options section")
                break
            if opt in SECTION_NAMES:
                sections[opt] = body.u64(f"the offset of the {SECTION_NAMES[opt]} section")
            elif opt == OPT_BUFFER:
                buffers.append((start, body))
            elif opt == OPT_BUFFER_TEXT:
                td.meta["latency_text"] = True
            else:
                _option(td, opt, body)
    if SEC_HEADER in sections:
        _read_headers(td, _section(td, sections[SEC_HEADER], SEC_HEADER, "header info"))
    if SEC_FTRACE in sections:
        _read_ftrace(td, _section(td, sections[SEC_FTRACE], SEC_FTRACE, "ftrace event formats"))
    if SEC_EVENTS in sections:
        _read_events(td, _section(td, sections[SEC_EVENTS], SEC_EVENTS, "event formats"))
    if SEC_KALLSYMS in sections:
        k = _section(td, sections[SEC_KALLSYMS], SEC_KALLSYMS, "kallsyms")
        td.kallsyms = k.sized_text(k.u32("the kallsyms size"), "kallsyms")
    if SEC_PRINTK in sections:
        p = _section(td, sections[SEC_PRINTK], SEC_PRINTK, "printk formats")
        td.printk = p.sized_text(p.u32("the printk formats size"), "the printk formats")
    if SEC_CMDLINES in sections:
        m = _section(td, sections[SEC_CMDLINES], SEC_CMDLINES, "saved cmdlines")
        td.cmdlines = m.sized_text(m.u64("the saved cmdlines size"), "the saved cmdlines")
    for start, body in buffers:
        data_offset = body.u64("the buffer's section offset")
        name = body.cstr("the buffer instance name")
        clock = body.cstr("the buffer's trace clock")
        page_size = body.u32("the buffer's page size")
        count = body.u32("the buffer's CPU count")
        cpus = []
        for _ in range(count):
            cpu = body.u32("a CPU id")
            cpus.append(
                CpuData(
                    cpu,
                    body.u64(f"the data offset of CPU {cpu}"),
                    body.u64(f"the data size of CPU {cpu}"),
                )
            )
        sc = td.cursor()
        sc.seek(data_offset, "the buffer section offset")
        sid = sc.u16("the id of a buffer section")
        flags = sc.u16("the flags of a buffer section")
        if sid != OPT_BUFFER:
            raise TraceDatError(
                td.file, data_offset, f"expected a buffer flyrecord section (id 3), found id {sid}"
            )
        td.buffers.append(Buffer(name, clock or td.clock, page_size, cpus, bool(flags & 1)))
        del start
    if not td.header_page:
        raise TraceDatError(td.file, 0, "the file has no header info section (no page format)")


def _option(td: TraceDat, opt: int, body: Cursor) -> None:
    """The options that are neither sections nor buffers: facts and time fixes."""
    size = len(body.data)
    if opt == OPT_TRACECLOCK:
        text = body.sized_text(size, "the trace clock").rstrip("\0\n")
        td.clock = text[text.find("[") + 1 : text.find("]")] if "[" in text else text.strip()
        td.meta["trace_clock"] = td.clock
    elif opt == OPT_OFFSET:
        text = body.sized_text(size, "the time offset").rstrip("\0\n ")
        try:
            td.ts_offset = int(text, 0)
        except ValueError:
            raise body.fail(f"expected a time offset as an integer, found {text!r}") from None
        td.meta["ts_offset"] = td.ts_offset
    elif opt == OPT_TSC2NSEC:
        mult = body.u32("the TSC multiplier")
        shift = body.u32("the TSC shift")
        offset = body.u64("the TSC offset")
        td.tsc2nsec = (mult, shift, offset)
        td.meta["tsc2nsec"] = {"mult": mult, "shift": shift, "offset": offset}
    elif opt == OPT_TIME_SHIFT:
        peer = body.u64("the peer trace id")
        flags = body.u32("the time sync flags")
        cpus = body.u32("the time sync CPU count")
        for cpu in range(cpus):
            n = body.u32(f"the correction count of CPU {cpu}")
            times = [body.u64("a correction time") for _ in range(n)]
            offsets = [body.u64("a correction offset") for _ in range(n)]
            scalings = [body.u64("a correction scaling") for _ in range(n)]
            td.time_shift.append((times, offsets, scalings))
        td.meta["time_shift"] = {"peer": peer, "flags": flags, "cpus": cpus}
    elif opt == OPT_UNAME:
        td.meta["uname"] = body.sized_text(size, "uname").rstrip("\0\n")
    elif opt == OPT_VERSION:
        td.meta["trace_cmd_version"] = body.sized_text(size, "version").rstrip("\0\n")
    elif opt == OPT_CPUCOUNT:
        td.meta["ncpus"] = body.u32("the CPU count")
    elif opt == OPT_CPUSTAT:
        td.meta.setdefault("cpustat", []).append(body.sized_text(size, "CPU stats").rstrip("\0\n"))
    elif opt == OPT_DATE:
        td.meta["date"] = body.sized_text(size, "date").rstrip("\0\n")
    elif opt == OPT_TRACEID:
        td.meta["trace_id"] = body.u64("the trace id")
    elif opt == OPT_GUEST:
        td.meta.setdefault("guests", []).append(body.cstr("the guest name"))
