"""Event text as ``trace-cmd report`` prints it, computed a column at a time.

The event's print fmt (``printfmt.py``) is evaluated over all records of one event at
once: integers as numpy arrays, text as polars String columns, and each conversion
(``%d``, ``%lx``, ``%08x``, ``%s``, ``%p``, ``%ps``...) turned into strings in bulk. Helpers
whose output depends on one value (``__print_flags``, ``__print_symbolic``, ``%c``) are
computed once per distinct value. trace-cmd's plugins that replace the kernel's text
for some events (sched_switch, sched_wakeup, hrtimer_start, hrtimer_expire_entry) are
reproduced in ``PLUGINS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tracetool.tracedat.columns import I64, Symbols
from tracetool.tracedat.formats import EventFormat
from tracetool.tracedat.printfmt import FmtError, Node, Spec, parse_print_fmt, split_format

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_UP = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


@dataclass
class Env:
    """The columns of one event's records."""

    n: int
    ints: Mapping[str, I64]
    strs: Mapping[str, pl.Series]
    raw: Callable[[str], list[bytes]]
    symbols: Symbols
    unsigned: set[str] = field(default_factory=set)
    long_size: int = 8
    # Each conversion's text, in print fmt order, once ``Renderer.render`` has run.
    converted: list[pl.Series] | None = None


@dataclass
class Val:
    ints: I64 | None = None
    strs: pl.Series | None = None
    unsigned: bool = False
    items: list[Node] | None = None


def _width(length: str, long_size: int) -> int:
    return {
        "hh": 8,
        "h": 16,
        "": 32,
        "l": long_size * 8,
        "ll": 64,
        "L": 64,
        "z": long_size * 8,
        "j": 64,
        "t": long_size * 8,
    }[length]


def _mask(v: I64, bits: int, signed: bool) -> I64:
    if bits >= 64:
        return v
    m = np.int64((1 << bits) - 1)
    out = v & m
    if signed:
        out = np.where(out >= (1 << (bits - 1)), out - (1 << bits), out)
    return out


def _cast_bits(ctype: str, long_size: int) -> tuple[int, bool] | None:
    words = ctype.replace("const", "").split()
    if "*" in ctype:
        return (long_size * 8, False)
    t = " ".join(words)
    table = {
        "char": (8, True),
        "u8": (8, False),
        "s8": (8, True),
        "__u8": (8, False),
        "short": (16, True),
        "u16": (16, False),
        "s16": (16, True),
        "__u16": (16, False),
        "int": (32, True),
        "u32": (32, False),
        "s32": (32, True),
        "__u32": (32, False),
        "u64": (64, False),
        "s64": (64, True),
        "__u64": (64, False),
        "bool": (8, False),
    }
    unsigned = "unsigned" in words
    base = [w for w in words if w not in ("unsigned", "signed")]
    key = " ".join(base) or "int"
    if key in ("long", "long int"):
        return (long_size * 8, not unsigned)
    if key in ("long long", "long long int"):
        return (64, not unsigned)
    if key in ("short int",):
        key = "short"
    if key in table:
        bits, signed = table[key]
        return (bits, signed and not unsigned)
    if t.endswith("_t") or key.startswith("struct") or key.startswith("enum"):
        return None
    return None


def hex_strings(v: I64, upper: bool = False) -> pl.Series:
    """Unsigned hex of each value, no leading zeros ("0" for zero)."""
    # Most significant byte first, each byte to its two nibbles: byte-sized work only.
    octets = v.astype(">u8").view(np.uint8).reshape(-1, 8)
    nib = np.empty((len(v), 16), np.uint8)
    nib[:, 0::2] = octets >> 4
    nib[:, 1::2] = octets & 15
    chars = (_HEX_UP if upper else _HEX)[nib]
    s = pl.Series(chars.view("S16").reshape(-1)).cast(pl.String)
    s = s.str.strip_chars_start("0")
    return pl.select(pl.when(s == "").then(pl.lit("0")).otherwise(s)).to_series()


def _dec(v: I64, unsigned: bool) -> pl.Series:
    return pl.Series(v.view(np.uint64) if unsigned else v).cast(pl.String)


def _per_value(v: I64, fn: Callable[[int], str]) -> pl.Series:
    uniq, inv = np.unique(v, return_inverse=True)
    table = pl.Series([fn(int(x)) for x in uniq.tolist()], dtype=pl.String)
    return table.gather(pl.Series(inv.reshape(-1).astype(np.uint32)))


class Renderer:
    """Evaluates one event's print fmt over an ``Env``."""

    def __init__(self, fmt: EventFormat, long_size: int) -> None:
        self.fmt = fmt
        self.long_size = long_size
        try:
            text, self.args = parse_print_fmt(fmt.print_fmt)
            self.parts = split_format(text)
        except FmtError as exc:
            raise FmtError(f"print fmt of {fmt.system}:{fmt.name}: {exc}") from None

    def render(self, env: Env) -> pl.Series:
        pieces: list[pl.Series | str] = []
        args = list(self.args)
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            width, prec = part.width, part.prec
            if part.star_width:
                width = None
                w = self.eval(args.pop(0), env)
                if w.ints is not None and len(w.ints):
                    width = int(w.ints[0])
            if part.star_prec:
                p = self.eval(args.pop(0), env)
                prec = int(p.ints[0]) if p.ints is not None and len(p.ints) else None
            if not args:
                raise FmtError(f"{self.fmt.name}: more conversions than arguments")
            value = self.eval(args.pop(0), env)
            pieces.append(self.convert(part, width, prec, value, env))
        env.converted = [p for p in pieces if not isinstance(p, str)]
        if not pieces:
            return pl.repeat("", env.n, dtype=pl.String, eager=True)
        exprs = [pl.lit(p, dtype=pl.String) if isinstance(p, str) else pl.lit(p) for p in pieces]
        return pl.select(pl.concat_str(exprs, ignore_nulls=True)).to_series()

    # -- conversions ---------------------------------------------------------------

    def convert(
        self, spec: Spec, width: int | None, prec: int | None, v: Val, env: Env
    ) -> pl.Series:
        conv = spec.conv
        if conv == "s":
            s = v.strs if v.strs is not None else self._int_as_str(v, env)
            if prec is not None:
                s = s.str.slice(0, prec)
        elif conv == "p":
            s = self._pointer(spec, self._ints(v, env), env)
        elif conv == "c":
            s = _per_value(self._ints(v, env) & 0xFF, lambda x: chr(x))
        elif conv in "di":
            bits = _width(spec.length, self.long_size)
            s = _dec(_mask(self._ints(v, env), bits, True), False)
            if "+" in spec.flags:
                s = pl.select(
                    pl.when(s.str.starts_with("-")).then(s).otherwise("+" + s)
                ).to_series()
        elif conv in "uxXo":
            bits = _width(spec.length, self.long_size)
            ints = _mask(self._ints(v, env), bits, False)
            if conv == "u":
                s = _dec(ints, True)
            elif conv == "o":
                s = _per_value(ints, lambda x: format(x & 0xFFFFFFFFFFFFFFFF, "o"))
            else:
                s = hex_strings(ints, conv == "X")
            if prec is not None:
                s = s.str.pad_start(prec, "0")
            if "#" in spec.flags and conv in "xX":
                prefix = "0x" if conv == "x" else "0X"
                s = pl.select(pl.when(pl.lit(ints) == 0).then(s).otherwise(prefix + s)).to_series()
        else:
            raise FmtError(f"conversion %{conv} is not supported")
        if width:
            if "-" in spec.flags:
                s = s.str.pad_end(width, " ")
            elif "0" in spec.flags and conv not in "sc" and prec is None:
                neg = s.str.starts_with("-")
                body = pl.select(pl.when(neg).then(s.str.slice(1)).otherwise(s)).to_series()
                padded = pl.select(
                    pl.when(neg)
                    .then("-" + body.str.pad_start(width - 1, "0"))
                    .otherwise(body.str.pad_start(width, "0"))
                ).to_series()
                s = padded
            else:
                s = s.str.pad_start(width, " ")
        return s

    def _int_as_str(self, v: Val, env: Env) -> pl.Series:
        return _dec(self._ints(v, env), v.unsigned)

    def _pointer(self, spec: Spec, ints: I64, env: Env) -> pl.Series:
        ext = spec.ext
        if ext and ext[0] in "SsFfBb":
            idx, addr = env.symbols.lookup(ints)
            names = env.symbols.names
            offset = (ints.view(np.uint64) - addr).view(np.int64)
            plain = "0x" + hex_strings(ints)
            found = pl.Series(idx >= 0)
            name = (
                pl.Series([names[i] if i >= 0 else "" for i in idx.tolist()], dtype=pl.String)
                if len(names)
                else plain
            )
            if ext[0] in "SFB":
                name = name + "+0x" + hex_strings(offset)
            return pl.select(pl.when(found).then(name).otherwise(plain)).to_series()
        return "0x" + hex_strings(ints)

    def _ints(self, v: Val, env: Env) -> I64:
        if v.ints is None:
            raise FmtError("a number was expected")
        return v.ints

    # -- expressions ---------------------------------------------------------------

    def eval(self, node: Node, env: Env) -> Val:
        kind = node[0]
        n = env.n
        if kind == "num":
            return Val(
                np.full(n, node[1], np.int64)
                if node[1] < (1 << 63)
                else np.full(n, node[1] - (1 << 64), np.int64)
            )
        if kind == "str":
            return Val(strs=pl.Series([node[1]] * n, dtype=pl.String))
        if kind == "field":
            name = node[1]
            if name in env.strs:
                return Val(strs=env.strs[name])
            if name in env.ints:
                return Val(env.ints[name], unsigned=name in env.unsigned)
            raise FmtError(f"no field {name!r}")
        if kind == "cast":
            v = self.eval(node[2], env)
            if v.ints is None:
                return v
            cb = _cast_bits(node[1], self.long_size)
            if cb is None:
                return v
            bits, signed = cb
            return Val(_mask(v.ints, bits, signed), unsigned=not signed)
        if kind == "un":
            v = self.eval(node[2], env)
            a = self._ints(v, env)
            op = node[1]
            if op == "-":
                return Val(-a)
            if op == "~":
                return Val(~a, unsigned=v.unsigned)
            return Val((a == 0).astype(np.int64))
        if kind == "bin":
            return self._binary(node[1], self.eval(node[2], env), self.eval(node[3], env), env)
        if kind == "cond":
            c = self._ints(self.eval(node[1], env), env) != 0
            va, vb = self.eval(node[2], env), self.eval(node[3], env)
            if va.ints is not None and vb.ints is not None:
                return Val(np.where(c, va.ints, vb.ints), unsigned=va.unsigned and vb.unsigned)
            sa = va.strs if va.strs is not None else self._int_as_str(va, env)
            sb = vb.strs if vb.strs is not None else self._int_as_str(vb, env)
            return Val(
                strs=pl.select(pl.when(pl.lit(pl.Series(c))).then(sa).otherwise(sb)).to_series()
            )
        if kind == "call":
            return self._call(node[1], node[2], env)
        if kind == "list":
            return Val(items=node[1])
        if kind == "sizeof":
            cb = _cast_bits(node[1], self.long_size)
            return Val(np.full(n, (cb[0] // 8) if cb else self.long_size, np.int64))
        raise FmtError(f"expression {kind} is not supported")

    def _binary(self, op: str, a: Val, b: Val, env: Env) -> Val:
        x, y = self._ints(a, env), self._ints(b, env)
        unsigned = a.unsigned or b.unsigned
        with np.errstate(all="ignore"):
            if op == "+":
                return Val(x + y, unsigned=unsigned)
            if op == "-":
                return Val(x - y, unsigned=unsigned)
            if op == "*":
                return Val(x * y, unsigned=unsigned)
            if op in ("/", "%"):
                safe = np.where(y == 0, 1, y)
                if unsigned:
                    ux, uy = x.view(np.uint64), safe.view(np.uint64)
                    r = (ux // uy) if op == "/" else (ux % uy)
                    return Val(np.where(y == 0, 0, r.view(np.int64)), unsigned=True)
                q = np.trunc(x / safe).astype(np.int64) if op == "/" else np.fmod(x, safe)
                return Val(np.where(y == 0, 0, q))
            if op == "<<":
                return Val(x << np.clip(y, 0, 63), unsigned=unsigned)
            if op == ">>":
                if a.unsigned:
                    return Val(
                        (x.view(np.uint64) >> np.clip(y, 0, 63).astype(np.uint64)).view(np.int64),
                        unsigned=True,
                    )
                return Val(x >> np.clip(y, 0, 63), unsigned=False)
            if op == "&":
                return Val(x & y, unsigned=unsigned)
            if op == "|":
                return Val(x | y, unsigned=unsigned)
            if op == "^":
                return Val(x ^ y, unsigned=unsigned)
            if unsigned and op in ("<", ">", "<=", ">="):
                x, y = x.view(np.uint64), y.view(np.uint64)
            result = {
                "==": x == y,
                "!=": x != y,
                "<": x < y,
                ">": x > y,
                "<=": x <= y,
                ">=": x >= y,
                "&&": (x != 0) & (y != 0),
                "||": (x != 0) | (y != 0),
            }.get(op)
        if result is None:
            raise FmtError(f"operator {op} is not supported")
        return Val(np.asarray(result).astype(np.int64))

    def _pairs(self, items: list[Node], env: Env) -> list[tuple[int, str]]:
        out = []
        for item in items:
            if item[0] != "list" or len(item[1]) != 2:
                raise FmtError('expected { value, "name" } pairs')
            if item[1][0][0] == "id":  # an enum name the file does not define: no match
                continue
            value = self.eval(item[1][0], Env(1, {}, {}, env.raw, env.symbols))
            name = item[1][1]
            if name[0] != "str" or value.ints is None:
                raise FmtError('expected { value, "name" } pairs')
            out.append((int(value.ints[0]), name[1]))
        return out

    def _call(self, name: str, args: list[Node], env: Env) -> Val:
        if name in ("__get_str", "__get_rel_str", "__get_dynamic_array", "__get_rel_dynamic_array"):
            if args and args[0][0] == "id":
                args = [("field", args[0][1])]
            return self.eval(args[0], env)
        if name in ("__print_symbolic", "__print_symbolic_u64"):
            v = self._ints(self.eval(args[0], env), env)
            table = dict(reversed(self._pairs(args[1:], env)))
            return Val(strs=_per_value(v, lambda x: table.get(x, f"0x{x & 0xFFFFFFFFFFFFFFFF:x}")))
        if name in ("__print_flags", "__print_flags_u64"):
            v = self._ints(self.eval(args[0], env), env)
            delim_v = self.eval(args[1], env)
            delim = delim_v.strs[0] if delim_v.strs is not None and env.n else ""
            pairs = self._pairs(args[2:], env)
            return Val(strs=_per_value(v, lambda x: _flags_text(x, str(delim or ""), pairs)))
        if name in ("__print_hex", "__print_hex_str", "__print_array"):
            return Val(strs=self._hexdump(name, args, env))
        dyn_len = ("__get_dynamic_array_len", "__get_rel_dynamic_array_len")
        if name in dyn_len and args and args[0][0] in ("id", "field"):
            data = env.raw(args[0][1])
            return Val(np.array([len(d) for d in data], np.int64))
        raise FmtError(f"helper {name}() is not supported")

    def _hexdump(self, name: str, args: list[Node], env: Env) -> pl.Series:
        target = args[0]
        while target[0] in ("cast", "call") and target[0] != "field":
            target = target[2] if target[0] == "cast" else (target[2][0] if target[2] else target)
            if target[0] == "call" and not target[2]:
                break
        if target[0] not in ("field", "id"):
            raise FmtError(f"{name}() of an expression is not supported")
        data = env.raw(target[1])
        length = self._ints(self.eval(args[1], env), env)
        if name == "__print_array":
            size = int(self._ints(self.eval(args[2], env), env)[0]) if env.n else 1
            out = []
            for raw, count in zip(data, length.tolist(), strict=True):
                vals = [
                    int.from_bytes(raw[i * size : (i + 1) * size], "little")
                    for i in range(min(count, len(raw) // max(size, 1)))
                ]
                out.append("{" + ",".join(f"0x{x:x}" for x in vals) + "}")
            return pl.Series(out, dtype=pl.String)
        sep = "" if name == "__print_hex_str" else " "
        return pl.Series(
            [
                sep.join(f"{b:02x}" for b in raw[:count])
                for raw, count in zip(data, length.tolist(), strict=True)
            ],
            dtype=pl.String,
        )


def _flags_text(value: int, delim: str, pairs: list[tuple[int, str]]) -> str:
    value &= 0xFFFFFFFFFFFFFFFF
    out: list[str] = []
    for fval, text in pairs:
        fval &= 0xFFFFFFFFFFFFFFFF
        if value == 0 and fval == 0:
            out.append(text)
            break
        if fval and (value & fval) == fval:
            out.append(text)
            value &= ~fval
    text = delim.join(out)
    if value:
        text += (delim if out else "") + f"0x{value:x}"
    return text


# -- trace-cmd plugins -------------------------------------------------------------------


def _state(value: int) -> str:
    letters = [ch for i, ch in enumerate("SDTtZXxW") if value & (1 << i)]
    return "|".join(letters) if letters else "R"


def _plugin_sched_switch(env: Env) -> pl.Series:
    state = _per_value(env.ints["prev_state"], _state)
    return pl.select(
        pl.concat_str(
            pl.lit(env.strs["prev_comm"]),
            pl.lit(":"),
            pl.lit(_dec(env.ints["prev_pid"], False)),
            pl.lit(" ["),
            pl.lit(_dec(env.ints["prev_prio"], False)),
            pl.lit("] "),
            pl.lit(state),
            pl.lit(" ==> "),
            pl.lit(env.strs["next_comm"]),
            pl.lit(":"),
            pl.lit(_dec(env.ints["next_pid"], False)),
            pl.lit(" ["),
            pl.lit(_dec(env.ints["next_prio"], False)),
            pl.lit("]"),
        )
    ).to_series()


def _plugin_sched_wakeup(env: Env) -> pl.Series:
    parts = [
        pl.lit(env.strs["comm"]),
        pl.lit(":"),
        pl.lit(_dec(env.ints["pid"], False)),
        pl.lit(" ["),
        pl.lit(_dec(env.ints["prio"], False)),
        pl.lit("]"),
    ]
    if "success" in env.ints:
        parts += [pl.lit(" success="), pl.lit(_dec(env.ints["success"], False))]
    if "target_cpu" in env.ints:
        parts += [
            pl.lit(" CPU:"),
            pl.lit(_dec(env.ints["target_cpu"], False).str.pad_start(3, "0")),
        ]
    return pl.select(pl.concat_str(parts)).to_series()


def _func_field(ints: I64, env: Env) -> pl.Series:
    """libtraceevent's tep_print_func_field: "name/0x<symbol address - value>"."""
    idx, addr = env.symbols.lookup(ints)
    names = env.symbols.names
    name = pl.Series([names[i] if i >= 0 else "" for i in idx.tolist()], dtype=pl.String)
    rel = (addr - ints.view(np.uint64)).view(np.int64)
    found = name + "/0x" + hex_strings(rel)
    missing = "0x" + hex_strings(ints).str.pad_start(8, "0")
    return pl.select(
        pl.when(pl.lit(pl.Series(idx >= 0))).then(found).otherwise(missing)
    ).to_series()


def _timer_ptr(env: Env) -> pl.Series:
    key = "timer" if "timer" in env.ints else "hrtimer"
    return "0x" + hex_strings(env.ints[key])


def _plugin_hrtimer_start(env: Env) -> pl.Series:
    return pl.select(
        pl.concat_str(
            pl.lit("hrtimer="),
            pl.lit(_timer_ptr(env)),
            pl.lit(" function="),
            pl.lit(_func_field(env.ints["function"], env)),
            pl.lit(" expires="),
            pl.lit(_dec(env.ints["expires"], True)),
            pl.lit(" softexpires="),
            pl.lit(_dec(env.ints["softexpires"], True)),
        )
    ).to_series()


def _plugin_hrtimer_expire_entry(env: Env) -> pl.Series:
    return pl.select(
        pl.concat_str(
            pl.lit("hrtimer="),
            pl.lit(_timer_ptr(env)),
            pl.lit(" now="),
            pl.lit(_dec(env.ints["now"], True)),
            pl.lit(" function="),
            pl.lit(_func_field(env.ints["function"], env)),
        )
    ).to_series()


PLUGINS: dict[tuple[str, str], tuple[tuple[str, ...], Callable[[Env], pl.Series]]] = {
    ("sched", "sched_switch"): (
        ("prev_comm", "prev_pid", "prev_prio", "prev_state", "next_comm", "next_pid", "next_prio"),
        _plugin_sched_switch,
    ),
    ("sched", "sched_wakeup"): (("comm", "pid", "prio"), _plugin_sched_wakeup),
    ("sched", "sched_wakeup_new"): (("comm", "pid", "prio"), _plugin_sched_wakeup),
    ("timer", "hrtimer_start"): (("function", "expires", "softexpires"), _plugin_hrtimer_start),
    ("timer", "hrtimer_expire_entry"): (("function", "now"), _plugin_hrtimer_expire_entry),
}


def plugin_for(fmt: EventFormat) -> Callable[[Env], pl.Series] | None:
    entry = PLUGINS.get((fmt.system, fmt.name))
    if entry and all(name in fmt.by_name for name in entry[0]):
        return entry[1]
    return None


def raw_fields(env: Env, fmt: EventFormat) -> pl.Series:
    """``name=value`` of every field: the text of an event whose print fmt is not
    understood (a diagnostic says so)."""
    cols: list[pl.Series] = []
    for i, f in enumerate(fmt.fields):
        if f.name in env.strs:
            value = env.strs[f.name]
        elif f.name in env.ints:
            value = _dec(env.ints[f.name], f.name in env.unsigned)
        else:
            continue
        cols.append(pl.Series([("" if not cols else " ") + f.name + "="] * env.n, dtype=pl.String))
        cols.append(value.alias(f"v{i}"))
    if not cols:
        return pl.Series([""] * env.n, dtype=pl.String)
    frame = pl.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
    return frame.select(pl.concat_str(pl.all(), ignore_nulls=True)).to_series()
