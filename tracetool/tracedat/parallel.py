"""A trace.dat's events written as Parquet parts, chunks built in worker processes.

``reader.prepare`` walks and merges the pages in this process (numpy, in bulk); the
rendering and args of the merged records (``rows.build``, most of the time) then run a
chunk of records at a time in a pool of processes, each writing its chunk as one
``events-NNNNNN.parquet`` part, so parts in name order are the events in time order. The
workers are programs of their own (``worker``), not ``multiprocessing`` children, so the
caller's main module is not re-imported and polars' threads are never forked. The
workers map an uncompressed file themselves; decompressed CPU data goes to them once,
through shared memory. Only a chunk's offsets, times and CPUs are sent with it, and only
its diagnostics come back. Memory stays bounded: a worker holds one chunk at a time.
Small files (under ``PARALLEL_BYTES``) are built in this process, where starting workers
would cost more than it saves.
"""

from __future__ import annotations

import mmap
import os
import pickle
import queue
import subprocess
import sys
import threading
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tracetool.events import InputInfo, write_part
from tracetool.tracedat.reader import CHUNK_ROWS, Plan, finish, open_data, prepare
from tracetool.tracedat.rows import Chunk, Context, Rows, build

PROCESSES = 2
PARALLEL_BYTES = 32 << 20


def part_name(index: int) -> str:
    return f"events-{index:06d}.parquet"


def _warm() -> None:
    """Import and load the catalogue while the parent walks the pages."""
    from tracetool.catalogue import args_fields, get_format

    get_format("trace-cmd")
    args_fields()


def _write(chunk: Chunk, out: Path) -> Chunk:
    """The chunk's events as a part (``write_part``)."""
    write_part(chunk.events, out)
    chunk.events = pl.DataFrame()  # written: not sent back
    return chunk


def _part_of_file(path: Path, ctx: Context, rows: Rows, lo: int, out: Path) -> Chunk:
    """A chunk whose ``rows.at`` are offsets in the (uncompressed) file, mapped here."""
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        big = np.frombuffer(data, np.uint8)
        chunk = build(ctx, big, rows, lo, threads=1)
        del big
    return _write(chunk, out)


def _part(shm_name: str, size: int, ctx: Context, rows: Rows, lo: int, out: Path) -> Chunk:
    shm = shared_memory.SharedMemory(name=shm_name)
    # The parent owns the segment: this process's resource tracker must not unlink it.
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    try:
        big = np.ndarray((size,), np.uint8, buffer=shm.buf)
        chunk = build(ctx, big, rows, lo, threads=1)
        del big
    finally:
        shm.close()
    return _write(chunk, out)


class Pool:
    """Worker processes (``tracetool.tracedat.worker``) that run this module's functions.

    Tasks go to whichever worker is free; ``map`` returns results in task order."""

    def __init__(self, processes: int) -> None:
        cmd = [sys.executable, "-m", "tracetool.tracedat.worker"]
        # One thread each: the processes already keep every core busy, and polars'
        # own threads in each would only contend with the other workers. Every chunk
        # allocates the same big arrays again: glibc (numpy) and jemalloc (polars) keep
        # freed memory for reuse instead of returning it to the kernel, whose fresh
        # pages (faulted in, zeroed) cost ~10% of a worker's time.
        env = {
            **os.environ,
            "POLARS_MAX_THREADS": "1",
            "MALLOC_MMAP_THRESHOLD_": str(1 << 30),
            "MALLOC_TRIM_THRESHOLD_": str(1 << 31),
            "MALLOC_TOP_PAD_": str(64 << 20),
            "_RJEM_MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1",
        }
        self.procs = [
            subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
            for _ in range(processes)
        ]

    def map(self, name: str, tasks: list[tuple[Any, ...]]) -> list[Any]:
        todo: queue.Queue[int] = queue.Queue()
        for i in range(len(tasks)):
            todo.put(i)
        results: list[Any] = [None] * len(tasks)
        errors: list[str] = []

        def drive(proc: subprocess.Popen[bytes]) -> None:
            assert proc.stdin is not None
            assert proc.stdout is not None
            while not errors:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    pickle.dump((name, tasks[i]), proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                    proc.stdin.flush()
                    ok, value = pickle.load(proc.stdout)
                except (OSError, EOFError, pickle.UnpicklingError) as exc:
                    ok, value = False, f"worker process {proc.pid} failed: {exc!r}"
                if not ok:
                    errors.append(str(value))
                    return
                results[i] = value

        threads = [threading.Thread(target=drive, args=(p,)) for p in self.procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(f"a trace.dat worker process failed:\n{errors[0]}")
        return results

    def close(self) -> None:
        for p in self.procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in self.procs:
            if p.wait(timeout=30) is None:
                p.kill()
            if p.stdout is not None:
                p.stdout.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_parts(
    path: Path,
    name: str,
    sink: Path,
    chunk_rows: int = CHUNK_ROWS,
    processes: int = PROCESSES,
    parallel_bytes: int = PARALLEL_BYTES,
) -> tuple[pl.DataFrame, pl.DataFrame, InputInfo]:
    """Events of ``path`` as Parquet parts in ``sink``; diagnostics, losses and info."""
    data = open_data(path)
    if processes < 2 or len(data) < parallel_bytes:
        return _serial(prepare(data, name), sink, chunk_rows)
    with Pool(processes) as pool:
        warm = threading.Thread(target=pool.map, args=("_warm", [()] * processes))
        warm.start()  # the workers import while this process walks the pages
        plan = prepare(data, name)
        warm.join()
        ranges = plan.ranges(chunk_rows)
        if len(ranges) < 2:
            return _serial(plan, sink, chunk_rows)
        tasks: list[tuple[Any, ...]]
        if plan.whole is not None and isinstance(data, mmap.mmap):
            # Nothing compressed: the workers map the file themselves, nothing is copied.
            tasks = [
                (path, plan.ctx, plan.rows.slice(lo, hi), lo, sink / part_name(i))
                for i, (lo, hi) in enumerate(ranges)
            ]
            chunks: list[Chunk] = pool.map("_part_of_file", tasks)
            diagnostics, info = finish(plan, chunks)
            return diagnostics, plan.losses, info
        size = sum(len(b) for b in plan.bufs)
        shm = shared_memory.SharedMemory(create=True, size=max(size, 1))
        try:
            big = np.ndarray((size,), np.uint8, buffer=shm.buf)
            at = 0
            for b in plan.bufs:
                big[at : at + len(b)] = b
                at += len(b)
            del big
            tasks = [
                (shm.name, size, plan.ctx, plan.rows.slice(lo, hi), lo, sink / part_name(i))
                for i, (lo, hi) in enumerate(ranges)
            ]
            chunks = pool.map("_part", tasks)
        finally:
            shm.close()
            shm.unlink()
    diagnostics, info = finish(plan, chunks)
    return diagnostics, plan.losses, info


def _serial(
    plan: Plan, sink: Path, chunk_rows: int
) -> tuple[pl.DataFrame, pl.DataFrame, InputInfo]:
    big = plan.big()
    ranges = plan.ranges(chunk_rows) or [(0, 0)]
    chunks = [
        _write(build(plan.ctx, big, plan.rows.slice(lo, hi), lo), sink / part_name(i))
        for i, (lo, hi) in enumerate(ranges)
    ]
    diagnostics, info = finish(plan, chunks)
    return diagnostics, plan.losses, info
