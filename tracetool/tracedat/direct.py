"""Declared ``args`` read straight from the record fields, for the most frequent events.

For these events the values are exactly what ``parsers/*.toml``'s patterns extract from
the text trace-cmd prints (the tests compare both ways), without running the regexes:
``sched_switch`` (trace-cmd's plugin prints the state letters), the ``sched_wakeup``
family, the IRQ handler events and the block_rq class (from the text of each print fmt
conversion, without matching the whole line). Every other event goes through
``tracetool.ftrace.extract_args`` on its rendered text.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from tracetool.tracedat.render import Env, _per_value, _state

# The args columns, or None when these records must go through the patterns.
Direct = Callable[[Env], dict[str, pl.Series] | None]


def _sched_switch(env: Env) -> dict[str, pl.Series]:
    return {
        "prev_comm": env.strs["prev_comm"],
        "prev_pid": pl.Series(env.ints["prev_pid"]),
        "prev_prio": pl.Series(env.ints["prev_prio"]),
        "prev_state": _per_value(env.ints["prev_state"], _state),
        "next_comm": env.strs["next_comm"],
        "next_pid": pl.Series(env.ints["next_pid"]),
        "next_prio": pl.Series(env.ints["next_prio"]),
    }


def _wakeup(env: Env) -> dict[str, pl.Series]:
    return {
        "target_comm": env.strs["comm"],
        "target_pid": pl.Series(env.ints["pid"]),
        "prio": pl.Series(env.ints["prio"]),
        "target_cpu": pl.Series(env.ints["target_cpu"]),
    }


def _irq_entry(env: Env) -> dict[str, pl.Series]:
    return {"irq": pl.Series(env.ints["irq"]), "name": env.strs["name"]}


def _irq_exit(env: Env) -> dict[str, pl.Series]:
    ret = np.where(env.ints["ret"] != 0, 1, 0)
    return {
        "irq": pl.Series(env.ints["irq"]),
        "irq_ret": pl.Series(ret).replace_strict({1: "handled", 0: "unhandled"}),
    }


def _block(last: str, with_bytes: bool) -> Direct:
    """The block_rq class: each pattern group is one conversion of the print fmt, so the
    args are the conversions' text (``Env.converted``), typed as the patterns type them.
    Only when every record's text splits unambiguously (rwbs without blanks, cmd without
    ")", a plain ioprio class, rq_comm on one line) do the groups equal the conversions;
    otherwise the records go through the patterns, which decide what matches."""
    names = ["dev_major", "dev_minor", "rwbs", *(["bytes"] if with_bytes else [])]
    names += ["cmd", "sector", "nr_sector", "ioprio_class", "ioprio_hint", "ioprio_level", last]
    ints = {"dev_major", "dev_minor", "ioprio_hint", "ioprio_level", "error"}
    u64 = {"bytes", "sector", "nr_sector"}

    def read(env: Env) -> dict[str, pl.Series] | None:
        if env.converted is None or len(env.converted) != len(names):
            return None
        text = dict(zip(names, env.converted, strict=True))
        plain = (
            text["rwbs"].str.contains(r"^\S+$").all()
            and not text["cmd"].str.contains(")", literal=True).any()
            and text["ioprio_class"].str.contains(r"^[a-z0-9x]+$").all()
            and not (last == "rq_comm" and text[last].str.contains("\n", literal=True).any())
        )
        if not plain:
            return None
        out = {}
        for name, value in text.items():
            if name in ints or name in u64:
                dtype = pl.Int64 if name in ints else pl.UInt64
                value = value.str.to_integer(strict=False, dtype=dtype)
                if value.null_count():
                    return None
            out[name] = value
        return out

    return read


_BLOCK_RQ = '"%d,%d %s %u (%s) %llu + %u %s,%u,%u [%s]"'
_BLOCK_DONE = '"%d,%d %s (%s) %llu + %u %s,%u,%u [%d]"'
_BLOCK_FIELDS = ("dev", "sector", "nr_sector", "ioprio", "rwbs", "cmd")


# (system, event): (fields the layout must have, the reader, the print fmt it assumes)
DIRECT: dict[tuple[str, str], tuple[tuple[str, ...], Direct, str]] = {
    ("sched", "sched_switch"): (
        ("prev_comm", "prev_pid", "prev_prio", "prev_state", "next_comm", "next_pid"),
        _sched_switch,
        "",
    ),
    ("sched", "sched_wakeup"): (("comm", "pid", "prio", "target_cpu"), _wakeup, ""),
    ("sched", "sched_wakeup_new"): (("comm", "pid", "prio", "target_cpu"), _wakeup, ""),
    ("sched", "sched_waking"): (
        ("comm", "pid", "prio", "target_cpu"),
        _wakeup,
        '"comm=%s pid=%d prio=%d target_cpu=%03d"',
    ),
    ("irq", "irq_handler_entry"): (("irq", "name"), _irq_entry, '"irq=%d name=%s"'),
    ("irq", "irq_handler_exit"): (
        ("irq", "ret"),
        _irq_exit,
        '"irq=%d ret=%s", REC->irq, REC->ret ? "handled" : "unhandled"',
    ),
    **{
        ("block", name): (_BLOCK_FIELDS, _block("rq_comm", True), _BLOCK_RQ)
        for name in ("block_rq_issue", "block_rq_insert", "block_io_start", "block_io_done")
    },
    **{
        ("block", name): (_BLOCK_FIELDS, _block("error", False), _BLOCK_DONE)
        for name in ("block_rq_complete", "block_rq_error")
    },
}


def direct_for(system: str, name: str, fields: set[str], print_fmt: str) -> Direct | None:
    entry = DIRECT.get((system, name))
    if entry is None or not set(entry[0]) <= fields:
        return None
    if entry[2] and not print_fmt.startswith(entry[2]):
        return None  # another kernel's text: let the patterns read it
    return entry[1]
