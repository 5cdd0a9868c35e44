"""The race as the function_graph tracer prints it (kernel/trace/trace_functions_graph.c),
with the options ``funcgraph-abstime`` and ``funcgraph-proc`` on.

The model's calls become graph entries and returns per task: a call whose return the
model traced keeps its exact end; a call it traced only on entry (zpci_dma_init_device,
mutex_lock, ...) becomes a leaf of a nominal microsecond, cut short if the task's next
record comes sooner. An entry directly followed by its return on the same CPU prints as
one leaf line ``func();``; otherwise ``func() {`` ... ``}``. Tracepoints print as
comments at the current depth, and a task switch on a CPU as the ``=>`` banner. There
are no probe arguments in this layout, so nothing names the device.
"""

# The formats mirror the kernel's printf formats: keep %-formatting.
# ruff: noqa: UP031

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tracetool.simulate.engine import Event

LEAF_NS = 1_200


# trace_find_mark(): the gap to the next entry (ns) -> the mark after "us".
_MARKS = (
    (1_000_000_000, "$"),
    (100_000_000, "@"),
    (10_000_000, "*"),
    (1_000_000, "#"),
    (100_000, "!"),
    (10_000, "+"),
)


def find_mark(gap_ns: int) -> str:
    """trace_find_mark(): '$' >1s, '@' >100ms, '*' >10ms, '#' >1ms, '!' >100us, '+' >10us."""
    return next((m for limit, m in _MARKS if gap_ns > limit), " ")


def duration_str(ns: int) -> str:
    """trace_print_graph_duration(): usecs, '.', up to 3 ns digits (7 chars at most),
    " us ", padded to 8."""
    usecs, rem = divmod(ns, 1000)
    s = "%d" % usecs
    length = len(s)
    if length < 7:
        nstr = ("%03d" % rem)[: min(5, 8 - length) - 1]
        s += "." + nstr
        length += len(nstr) + 1
    return s + " us " + " " * max(0, 8 - length)


def proc_str(comm: str, pid: int) -> str:
    """print_graph_proc(): comm cut to 7 chars, "comm-pid" centred in 14 columns."""
    s = "%s-%d" % (comm[:7], pid)
    spaces = max(0, 14 - len(s))
    return " " * (spaces // 2) + s + " " * (spaces - spaces // 2)


@dataclass
class Rec:
    kind: str  # "ent", "ret", "cmt"
    ts: int
    cpu: int
    task: tuple[str, int]
    func: str = ""
    depth: int = 0
    calltime: int = 0
    text: str = ""


def records(events: list[tuple[int, int, tuple[str, int], str, tuple[Any, ...], str]]) -> list[Rec]:
    """Graph records from the model's events (ts, cpu, task, code, values, text), in
    time order. ``text`` is the event's ftrace payload, for comments."""
    out: list[Rec] = []
    stacks: dict[int, list[tuple[str, int]]] = {}
    # Which entries have a traced return: match per task with a stack of open calls.
    has_return: set[int] = set()
    open_calls: dict[tuple[int, str], list[int]] = {}
    for i, (_, _, task, code, values, _) in enumerate(events):
        if code in ("call", "rpcit"):
            open_calls.setdefault((task[1], _func(code, values)), []).append(i)
        elif code in ("ret", "rpcit_r"):
            pending = open_calls.get((task[1], _func(code, values)))
            if pending:
                has_return.add(pending.pop())
    next_ts: dict[int, int] = {}
    following: list[int] = [0] * len(events)
    for i in range(len(events) - 1, -1, -1):  # each event's task's next event time
        pid = events[i][2][1]
        following[i] = next_ts.get(pid, events[i][0] + 10 * LEAF_NS)
        next_ts[pid] = events[i][0]
    for i, (ts, cpu, task, code, values, text) in enumerate(events):
        st = stacks.setdefault(task[1], [])
        if code in ("call", "rpcit"):
            func = _func(code, values)
            if i in has_return:
                out.append(Rec("ent", ts, cpu, task, func, len(st)))
                st.append((func, ts))
            else:  # only the entry was traced: a short leaf
                end = min(ts + LEAF_NS, following[i] - 1)
                out.append(Rec("ent", ts, cpu, task, func, len(st)))
                out.append(Rec("ret", max(end, ts), cpu, task, func, len(st), calltime=ts))
        elif code in ("ret", "rpcit_r"):
            func = _func(code, values)
            if st and st[-1][0] == func:
                _, t0 = st.pop()
                out.append(Rec("ret", ts, cpu, task, func, len(st), calltime=t0))
        else:
            out.append(Rec("cmt", ts, cpu, task, text=text))
    out.sort(key=lambda r: (r.ts, r.cpu))
    return out


def _func(code: str, values: tuple[Any, ...]) -> str:
    return "zpci_refresh_trans" if code in ("rpcit", "rpcit_r") else str(values[0])


def render(recs: list[Rec], cpu_width: int = 1) -> list[str]:
    """print_graph_function_flags() over per-CPU records merged by time."""
    out: list[str] = []
    last_pid: dict[int, tuple[str, int]] = {}
    cdepth: dict[int, int] = {}
    enter_funcs: dict[int, dict[int, str]] = {}
    queues: dict[int, list[Rec]] = {}
    for r in recs:
        queues.setdefault(r.cpu, []).append(r)
    for q in queues.values():
        q.reverse()

    def prefix(r: Rec) -> str:
        t = r.ts // 1000
        return (
            "%5d.%06d |  " % (t // 1000000, t % 1000000)
            + " %*d) " % (cpu_width, r.cpu)
            + proc_str(*r.task)
            + " | "
        )

    def verif_pid(r: Rec) -> None:
        prev = last_pid.get(r.cpu)
        last_pid[r.cpu] = r.task
        if prev is None or prev == r.task:
            return
        col = " %*d) " % (cpu_width, r.cpu)
        out.extend(
            [
                " ------------------------------------------",
                col + proc_str(*prev) + " => " + proc_str(*r.task),
                " ------------------------------------------",
                "",
            ]
        )

    while True:
        heads = [(q[-1].ts, cpu) for cpu, q in queues.items() if q]
        if not heads:
            break
        _, cpu = min(heads)
        q = queues[cpu]
        r = q.pop()
        ef = enter_funcs.setdefault(cpu, {})
        verif_pid(r)
        if r.kind == "ent":
            nxt = q[-1] if q else None
            if nxt and nxt.kind == "ret" and nxt.task == r.task and nxt.func == r.func:
                q.pop()
                cdepth[cpu] = r.depth - 1
                ef[r.depth] = ""
                ns = nxt.ts - nxt.calltime
                out.append(
                    prefix(r)
                    + "%s %s|  " % (find_mark(ns), duration_str(ns))
                    + " " * (2 * r.depth)
                    + "%s();" % r.func
                )
            else:
                cdepth[cpu] = r.depth
                ef[r.depth] = r.func
                out.append(
                    prefix(r) + "              |  " + " " * (2 * r.depth) + "%s() {" % r.func
                )
        elif r.kind == "ret":
            cdepth[cpu] = r.depth - 1
            match = ef.get(r.depth) == r.func
            ef[r.depth] = ""
            ns = r.ts - r.calltime
            close = "}" if match else "} /* %s */" % r.func
            out.append(
                prefix(r)
                + "%s %s|  " % (find_mark(ns), duration_str(ns))
                + " " * (2 * r.depth)
                + close
            )
        else:
            d = cdepth.get(cpu, 0)
            indent = " " * ((d + 1) * 2) if d > 0 else ""
            out.append(prefix(r) + "              |  " + indent + "/* %s */" % r.text)
    return out


# __print_graph_headers_flags() with abstime, proc and duration.
HEADER = [
    "# tracer: function_graph",
    "#",
    "#"
    + "     TIME       "
    + " CPU"
    + "  TASK/PID       "
    + "  DURATION   "
    + "               FUNCTION CALLS",
    "#"
    + "      |         "
    + " |  "
    + "   |    |        "
    + "   |   |      "
    + "               |   |   |   |",
]


class GraphWriter:
    """The ``trace`` file of the function_graph tracer (abstime, proc)."""

    def __init__(self, path: Path, ncpus: int) -> None:
        from tracetool.simulate.writers import _ftrace_templates

        self.path = path
        self.templates = _ftrace_templates()
        self.events: list[tuple[int, int, tuple[str, int], str, tuple[Any, ...], str]] = []
        self.cpu_width = len(str(max(0, ncpus - 1)))

    def write(self, events: list[Event]) -> None:
        tpl = self.templates
        for ts, cpu, _, task, _, code, values in events:
            text = "" if code in ("call", "ret", "rpcit", "rpcit_r") else tpl[code](*values)
            self.events.append((ts, cpu, task, code, values, text))

    def close(self) -> None:
        lines = HEADER + render(records(self.events), self.cpu_width)
        out: IO[str]
        with self.path.open("w", encoding="utf-8", newline="\n") as out:
            out.write("\n".join(lines) + "\n")

    def abort(self) -> None:
        pass
