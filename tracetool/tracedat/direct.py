"""Declared ``args`` read straight from the record fields, for the most frequent events.

For these events the values are exactly what ``parsers/*.toml``'s patterns extract from
the text trace-cmd prints (the tests compare both ways), without running the regexes:
``sched_switch`` (trace-cmd's plugin prints the state letters), the ``sched_wakeup``
family and the IRQ handler events. Every other event goes through
``tracetool.ftrace.extract_args`` on its rendered text.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from tracetool.tracedat.render import Env, _per_value, _state

Direct = Callable[[Env], dict[str, pl.Series]]


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
}


def direct_for(system: str, name: str, fields: set[str], print_fmt: str) -> Direct | None:
    entry = DIRECT.get((system, name))
    if entry is None or not set(entry[0]) <= fields:
        return None
    if entry[2] and not print_fmt.startswith(entry[2]):
        return None  # another kernel's text: let the patterns read it
    return entry[1]
