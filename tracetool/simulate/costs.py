"""The simulator's cost model: a small declared table (``costs.toml`` beside this
module) that a user can copy, change and pass with ``--costs``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tracetool.errors import InputError

DEFAULT = Path(__file__).with_name("costs.toml")


@dataclass(frozen=True)
class Workload:
    device_ns: float
    think_ns: float
    map_cpu_ns: float
    unmap_cpu_ns: float
    submit_ns: float
    complete_ns: float
    jitter: float


@dataclass(frozen=True)
class Environment:
    description: str
    tlb_refresh: bool
    serialized: bool
    rpcit_ns: float
    rpcit_page_ns: float
    global_ns: float
    global_page_ns: float
    unpin_page_ns: float


def _build(cls: type[Any], table: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    missing = sorted(names - table.keys())
    unknown = sorted(table.keys() - names)
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if unknown:
            parts.append("unknown " + ", ".join(unknown))
        raise InputError(
            f"{where}: {'; '.join(parts)}. Start from a copy of {DEFAULT} and change values only."
        )
    return cls(**table)


@dataclass(frozen=True)
class Costs:
    workload: Workload
    envs: dict[str, Environment]
    source: str

    def env(self, name: str) -> Environment:
        try:
            return self.envs[name]
        except KeyError:
            known = ", ".join(sorted(self.envs))
            raise InputError(
                f"{self.source}: no environment {name!r}; it declares {known}"
            ) from None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "workload": vars(self.workload),
            "env": {k: vars(v) for k, v in self.envs.items()},
        }


def load(path: Path | None = None) -> Costs:
    """The cost table at ``path``, or the built-in one."""
    src = path or DEFAULT
    try:
        data = tomllib.loads(src.read_text())
    except OSError as e:
        raise InputError(f"{src}: cannot read the cost table: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{src}: not valid TOML: {e}") from None
    if "workload" not in data or "env" not in data:
        raise InputError(f"{src}: a cost table needs [workload] and [env.NAME] tables")
    workload = _build(Workload, data["workload"], f"{src} [workload]")
    envs = {
        name: _build(Environment, table, f"{src} [env.{name}]")
        for name, table in data["env"].items()
    }
    return Costs(workload, envs, "built-in costs.toml" if path is None else str(src))
