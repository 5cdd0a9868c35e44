"""The discrete-event core of the simulator: processes, serialized resources, and a
recorder that streams events to a writer in time order.

A process is a generator. It yields ``("at", t)`` to sleep until ``t`` or
``("acquire", resource, t)`` to wait for a resource it asks for at ``t``; the engine
resumes it with the time it got what it asked for. Processes are resumed in time order
(ties by the order they asked), so a resource is granted first-come first-served and
the model is deterministic for a seed.

Events are emitted with a time at or after the current one (a return whose end the
process already knows may lie in the future). Everything before the engine's current
time is final, so the recorder writes it out and keeps only the events still ahead:
memory is bounded by what is in flight, not by the length of the run.
"""

from __future__ import annotations

import bisect
import heapq
import tempfile
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

# One event: (ts, cpu, seq, task, flags, code, values), in the order the kernel merges
# its per-CPU buffers: oldest first, then the lowest CPU, then each CPU's own order.
# ``code`` names a template that each writer renders with ``values``; ``task`` is
# (comm, pid).
Task = tuple[str, int]
Event = tuple[int, int, int, Task, str, str, tuple[Any, ...]]
Command = tuple[Any, ...]
Process = Generator[Command, int, None]


class Sink(Protocol):
    def write(self, events: list[Event]) -> None: ...


@dataclass
class Resource:
    """Something one process holds at a time (a CPU, the hypervisor's RPCIT path, a
    mutex). Waiters are served in the order they asked."""

    name: str
    holder: Process | None = None
    waiting: deque[tuple[int, Process]] = field(default_factory=deque)
    busy_ns: int = 0
    since: int = 0


class Engine:
    """Runs processes until none is left or time passes ``until``."""

    def __init__(self, sink: Sink, flush_every: int = 65536) -> None:
        # (time, order, process, resource): a process to resume (after taking the
        # resource, if one is given), or with no process, a resource to release.
        self._ready: list[tuple[int, int, Process | None, Resource | None]] = []
        self._seq = 0
        self.now = 0
        self.sink = sink
        self._pending: list[Event] = []
        self._flush_every = flush_every
        self.emitted = 0

    # --- processes -----------------------------------------------------------------
    def start(self, proc: Process, t: int) -> None:
        """Run ``proc`` from ``t``: it is primed up to its first ``yield at(...)`` (whose
        time is ignored) and resumed at ``t``."""
        next(proc)
        self._wake(proc, t)

    def wake(self, proc: Process, t: int) -> None:
        """Resume a parked process at ``t``."""
        self._wake(proc, t)

    def _wake(self, proc: Process, t: int, res: Resource | None = None) -> None:
        self._seq += 1
        heapq.heappush(self._ready, (t, self._seq, proc, res))

    def release(self, res: Resource, t: int) -> None:
        """The holder of ``res`` lets go at ``t`` (now or later); the longest waiter
        gets it then."""
        if t > self.now:
            self._seq += 1
            heapq.heappush(self._ready, (t, self._seq, None, res))
            return
        res.busy_ns += t - res.since
        if res.waiting:
            asked, proc = res.waiting.popleft()
            res.holder = proc
            res.since = max(t, asked)
            self._wake(proc, res.since)
        else:
            res.holder = None

    def run(self, until: int | None = None) -> None:
        """Resume processes in time order. With ``until``, stop before the first one
        due later (it stays queued)."""
        ready = self._ready
        while ready:
            if until is not None and ready[0][0] > until:
                break
            t, _, proc, res = heapq.heappop(ready)
            if t > self.now:
                self.now = t
                if len(self._pending) >= self._flush_every:
                    self._drain(t)
            if proc is None:
                assert res is not None
                self.release(res, t)
                continue
            if res is not None and not self._take(res, proc, t):
                continue
            self._step(proc, t)
        self._drain(None)

    def _take(self, res: Resource, proc: Process, t: int) -> bool:
        if res.holder is None:
            res.holder = proc
            res.since = t
            return True
        res.waiting.append((t, proc))
        return False

    def _step(self, proc: Process, t: int) -> None:
        while True:
            try:
                cmd = proc.send(t)
            except StopIteration:
                return
            if cmd[0] == "park":  # until someone wakes it
                return
            when: int = cmd[-1]
            if cmd[0] == "at":
                self._wake(proc, when)
                return
            res: Resource = cmd[1]
            if when > t:  # ask in time order, so the queue is first-come first-served
                self._wake(proc, when, res)
                return
            if not self._take(res, proc, t):
                return

    # --- events --------------------------------------------------------------------
    def emit(self, ts: int, cpu: int, task: Task, flags: str, code: str, *values: Any) -> None:
        self._seq += 1
        self._pending.append((ts, cpu, self._seq, task, flags, code, values))

    def _drain(self, before: int | None) -> None:
        """Write out the pending events older than ``before`` (all, with None). The
        list is nearly sorted already, which is what timsort is quickest on."""
        pending = self._pending
        pending.sort()
        cut = len(pending) if before is None else bisect.bisect_left(pending, (before,))
        if cut:
            out = pending[:cut]
            del pending[:cut]
            self.emitted += len(out)
            self.sink.write(out)


def acquire(res: Resource, t: int) -> Command:
    return ("acquire", res, t)


def at(t: int) -> Command:
    return ("at", t)


def park() -> Command:
    """Sleep until another process calls ``Engine.wake``."""
    return ("park",)


FLUSH_ROW = '[%d,%d,%d,"%s","%s",%d,%d,%d]'


class RowSpill:
    """Ground-truth rows (one per RPCIT: millions in a long run) rendered as JSON arrays
    and spilled to a temporary file past ``limit``, so memory stays bounded."""

    def __init__(self, row_format: str = FLUSH_ROW, limit: int = 65536) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.format = row_format
        self.limit = limit
        self.count = 0
        self._file: Any = None

    def append(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        self.count += 1
        if len(self.rows) >= self.limit:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - lives across calls, closed by json_chunks()/close()
        fmt = self.format
        self._file.write("".join(fmt % row + "," for row in self.rows))
        self.rows = []

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        """Drop the rows (and the spill file) without writing them."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.rows = []

    def json_chunks(self) -> Iterator[str]:
        """The rows as the text of a JSON array's items (no brackets)."""
        if self._file is not None:
            self._spill()
            self._file.seek(0)
            tail = ""
            while chunk := self._file.read(1 << 20):
                yield tail + chunk[:-1]
                tail = chunk[-1]
            self._file.close()
            self._file = None
            return
        yield ",".join(self.format % row for row in self.rows)
