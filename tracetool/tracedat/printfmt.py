"""An event's ``print fmt`` (a C format string and C expressions over ``REC->field``)
parsed into a small expression tree.

The grammar is the subset the kernel's TRACE_EVENT macros expand to: integer and
string literals, ``REC->field``, casts, unary and binary C operators, ``?:``, calls
(``__get_str``, ``__print_symbolic``, ``__print_flags``, ...) and ``{ value, "name" }``
lists. ``render.py`` evaluates the tree column-wise over all records of the event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<chr>'(?:[^'\\]|\\.)+')
  | (?P<num>0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<op>->|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^!~<>?:(),{}\[\].])
    )""",
    re.X,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
_TYPE_WORDS = {
    "unsigned",
    "signed",
    "int",
    "long",
    "short",
    "char",
    "void",
    "bool",
    "const",
    "struct",
    "u8",
    "u16",
    "u32",
    "u64",
    "s8",
    "s16",
    "s32",
    "s64",
    "size_t",
    "ssize_t",
    "pid_t",
    "__u8",
    "__u16",
    "__u32",
    "__u64",
    "__s8",
    "__s16",
    "__s32",
    "__s64",
    "gfp_t",
    "uint8_t",
    "uint16_t",
    "uint32_t",
    "uint64_t",
    "int8_t",
    "int16_t",
    "int32_t",
    "int64_t",
    "dma_addr_t",
    "phys_addr_t",
    "resource_size_t",
    "sector_t",
    "dev_t",
    "umode_t",
    "__le32",
    "__le16",
    "__le64",
    "__be32",
    "__be16",
    "__be64",
    "loff_t",
    "off_t",
    "uid_t",
    "gid_t",
    "u_long",
    "ulong",
    "uint",
    "enum",
    "union",
}
_BINARY = {
    "||": 1,
    "&&": 2,
    "|": 3,
    "^": 4,
    "&": 5,
    "==": 6,
    "!=": 6,
    "<": 7,
    ">": 7,
    "<=": 7,
    ">=": 7,
    "<<": 8,
    ">>": 8,
    "+": 9,
    "-": 9,
    "*": 10,
    "/": 10,
    "%": 10,
}

Node = tuple[Any, ...]


class FmtError(ValueError):
    """A print fmt this parser does not understand."""


@dataclass(frozen=True)
class Spec:
    """One printf conversion: flags, width, precision, length and conversion letter;
    ``ext`` is the %p extension letters (``%pS`` -> "S")."""

    flags: str
    width: int | None
    prec: int | None
    length: str
    conv: str
    ext: str = ""
    star_width: bool = False
    star_prec: bool = False


def unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if (nxt in "01234567" and nxt != "0") or (
                nxt == "0" and i + 2 < len(text) and text[i + 2] in "01234567"
            ):
                m = re.match(r"[0-7]{1,3}", text[i + 1 :])
                assert m
                out.append(chr(int(m.group(0), 8)))
                i += 1 + len(m.group(0))
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FmtError(f"cannot read {text[pos : pos + 20]!r}")
        kind = m.lastgroup
        assert kind
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.toks = tokens
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("end", "")

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.next()
        if tok[1] != value:
            raise FmtError(f"expected {value!r}, found {tok[1]!r}")

    def expr(self) -> Node:
        """An expression the way libtraceevent reads one, so that values come out as
        trace-cmd prints them: binary operators nest to the right, and when the right
        operand is an operator of lower priority the two are rotated once, whether
        or not that operand was in parentheses (``a & (b | c)`` reads as
        ``(a & b) | c``, as in libtraceevent)."""
        left = self.unary()
        kind, op = self.peek()
        if kind != "op":
            return left
        if op == "?":
            self.next()
            a = self.expr()
            self.expect(":")
            b = self.expr()
            return ("cond", left, a, b)
        if op not in _BINARY:
            return left
        self.next()
        right = self.expr()
        if right[0] == "bin" and _BINARY[op] > _BINARY[right[1]]:
            return ("bin", right[1], ("bin", op, left, right[2]), right[3])
        if right[0] == "cond":
            return ("cond", ("bin", op, left, right[1]), right[2], right[3])
        return ("bin", op, left, right)

    def _is_cast(self) -> bool:
        j = self.i + 1
        saw = False
        while j < len(self.toks):
            kind, value = self.toks[j]
            if value == ")":
                return saw
            if kind == "id" and (
                value in _TYPE_WORDS
                or value.endswith("_t")
                or (saw and self.toks[j - 1][1] in ("struct", "enum", "union"))
            ):
                saw = True
            elif value == "*" and saw:
                pass
            else:
                return False
            j += 1
        return False

    def unary(self) -> Node:
        kind, value = self.peek()
        if kind == "op" and value in ("-", "!", "~", "+", "*", "&"):
            self.next()
            operand = self.unary()
            return operand if value in ("+", "*", "&") else ("un", value, operand)
        if value == "(" and self._is_cast():
            self.next()
            words = []
            while self.peek()[1] != ")":
                words.append(self.next()[1])
            self.next()
            return ("cast", " ".join(words), self.unary())
        if kind == "id" and value == "sizeof":
            self.next()
            self.expect("(")
            depth, words = 1, []
            while depth:
                tok = self.next()
                if tok[0] == "end":
                    raise FmtError("unterminated sizeof")
                depth += {"(": 1, ")": -1}.get(tok[1], 0)
                if depth:
                    words.append(tok[1])
            return ("sizeof", " ".join(words))
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            value = self.peek()[1]
            if value == "->" or value == ".":
                self.next()
                name = self.next()[1]
                node = ("field", name) if node == ("id", "REC") else ("member", node, name)
            elif value == "[":
                self.next()
                index = self.expr()
                self.expect("]")
                node = ("index", node, index)
            else:
                return node

    def primary(self) -> Node:
        kind, value = self.next()
        if kind == "num":
            return ("num", int(value.rstrip("uUlL"), 0))
        if kind == "str":
            text = unescape(value[1:-1])
            while self.peek()[0] == "str":  # "a" "b" concatenation
                text += unescape(self.next()[1][1:-1])
            return ("str", text)
        if kind == "chr":
            return ("num", ord(unescape(value[1:-1])[0]))
        if kind == "id":
            if self.peek()[1] == "(":
                self.next()
                args = []
                while self.peek()[1] != ")":
                    args.append(self.expr())
                    if self.peek()[1] == ",":
                        self.next()
                    elif self.peek()[1] != ")":
                        raise FmtError(f"expected ',' or ')' in the arguments of {value}")
                self.next()
                return ("call", value, args)
            return ("id", value)
        if value == "(":
            node = self.expr()
            self.expect(")")
            return node
        if value == "{":
            items = []
            while self.peek()[1] != "}":
                items.append(self.expr())
                if self.peek()[1] == ",":
                    self.next()
                elif self.peek()[1] != "}":
                    raise FmtError("expected ',' or '}' in a { } list")
            self.next()
            return ("list", items)
        raise FmtError(f"unexpected {value!r}")


def parse_print_fmt(text: str) -> tuple[str, list[Node]]:
    """``"format", arg, arg`` to the format string and the argument trees."""
    tokens = tokenize(text)
    p = _Parser(tokens)
    first = p.primary()
    if first[0] != "str":
        raise FmtError("print fmt does not start with a string")
    args = []
    while p.peek()[0] != "end":
        p.expect(",")
        args.append(p.expr())
    return first[1], args


def parse_expr(text: str) -> Node:
    p = _Parser(tokenize(text))
    node = p.expr()
    if p.peek()[0] != "end":
        raise FmtError(f"unexpected {p.peek()[1]!r} after an expression")
    return node


_SPEC = re.compile(
    r"%(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?"
    r"(?P<len>hh|h|ll|l|L|z|j|t)?(?P<conv>[diouxXcspfeEgG%])"
)


def split_format(fmt: str) -> list[str | Spec]:
    """The format as literal text and conversions (``%%`` becomes text)."""
    out: list[str | Spec] = []
    pos = 0
    text = ""
    while pos < len(fmt):
        at = fmt.find("%", pos)
        if at < 0:
            text += fmt[pos:]
            break
        text += fmt[pos:at]
        m = _SPEC.match(fmt, at)
        if not m:
            raise FmtError(f"cannot read the conversion {fmt[at : at + 6]!r}")
        pos = m.end()
        if m.group("conv") == "%":
            text += "%"
            continue
        ext = ""
        if m.group("conv") == "p":
            e = re.match(r"[a-zA-Z]+", fmt[pos:])
            # %pS, %ps, %pF, %pf, %pB, %pK, %pM, %pI4, %pU...: letters that extend %p
            if e and e.group(0)[0] in "SsFfBbKMmIiUhdDgaE":
                ext = e.group(0)[0]
                if ext in "Ii" and fmt[pos + 1 : pos + 2] in ("4", "6"):
                    ext += fmt[pos + 1]
                    pos += 1
                pos += 1
        if text:
            out.append(text)
            text = ""
        width, prec = m.group("width"), m.group("prec")
        out.append(
            Spec(
                m.group("flags"),
                int(width) if width and width != "*" else None,
                int(prec) if prec and prec != "*" else None,
                m.group("len") or "",
                m.group("conv"),
                ext,
                width == "*",
                prec == "*",
            )
        )
    if text:
        out.append(text)
    return out
