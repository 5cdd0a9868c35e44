"""Device attribution: which device each call or instant of a timeline concerns.

The PCI name (``0004:00:00.0``) when the event carries it (``exact``). Otherwise keys
from fetch-args (``dev``/``zdev`` pointers, the function handle in ``fn``, the domain)
are correlated to names (``inferred``, with the reason and the lines that show it):

* a task's last keyed call before an event that names a device within
  ``CORRELATE_NS`` (``probe_device`` then ``add_device_to_group``, ``release_device`` then
  ``remove_device_from_group``, attach then ``attach_device_to_domain``);
* the call of the same task a keyless or unresolved call ran inside;
* for ``iommu:map``/``unmap``, which carry no device: the domain of the task's last call
  that had one, and the device that domain was last attached to.

With no name anywhere, the key itself is the device (``dev@0x...``, ``pointer``).
A pointer may be reused after its device is gone, so a key maps to the name nearest in
time, earlier mappings first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from tracetool.kernel import ARG_NAMES, ARG_ROLES, SPAN_KINDS

PCI_NAME = r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$"
# The device of lifecycle calls in a trace that identifies no device at all.
UNKNOWN_DEVICE = "unknown"
# A name event is tied to the last keyed call of its task only this close in time.
CORRELATE_NS = 10_000_000


def where(file: str, line: str) -> pl.Expr:
    """``path:line`` from two columns."""
    return pl.format("{}:{}", pl.col(file), pl.col(line))


def in_task(
    left: pl.LazyFrame,
    right: pl.LazyFrame,
    left_on: str,
    right_on: str,
    strategy: Literal["backward", "forward"] = "backward",
) -> pl.LazyFrame:
    """Each ``left`` row with the nearest ``right`` row of the same input and task on an
    earlier (``backward``) or later (``forward``) line; never the same line."""
    return left.sort(left_on).join_asof(
        right.sort(right_on),
        left_on=left_on,
        right_on=right_on,
        by=["file", "task"],
        strategy=strategy,
        allow_exact_matches=False,
        check_sortedness=False,
    )


def _roles() -> pl.LazyFrame:
    rows = [
        {"func": func, "name": f"arg{i}", "role_pos": role}
        for func, roles in ARG_ROLES.items()
        for i, role in enumerate(roles, start=1)
    ]
    return pl.LazyFrame(rows, schema={"func": pl.String, "name": pl.String, "role_pos": pl.String})


def keys(rows: pl.LazyFrame) -> pl.LazyFrame:
    """``dev``, ``zdev``, ``fh``, ``domain``, ``lock`` and a PCI ``name`` from fetch-args:
    named (``dev=``, ``zdev=``, ``fn=``) or positional (``arg2`` of attach is the device)."""
    kv = (
        rows.select("rid", "func", "kv")
        .explode("kv")
        .drop_nulls("kv")
        .unnest("kv")
        .join(_roles(), on=["func", "name"], how="left")
        .with_columns(
            role=pl.coalesce(pl.col("name").replace_strict(ARG_NAMES, default=None), "role_pos"),
            u64=pl.col("num").cast(pl.UInt64, strict=False),
            pci=pl.col("value").str.strip_chars('"').str.extract(f"({PCI_NAME[1:-1]})", 1),
        )
    )

    def role(name: str) -> pl.Expr:
        return pl.col("u64").filter(pl.col("role") == name).first()

    keys = kv.group_by("rid").agg(
        dev=role("dev"),
        zdev=role("zdev"),
        fh=pl.coalesce(role("fh"), role("fn") // (1 << 32)),
        domain=role("domain"),
        lock=role("lock"),
        # RPCIT: the range zpci_refresh_trans(fn, addr, range) flushes
        flush_addr=role("addr"),
        flush_range=role("range"),
        kv_name=pl.col("pci").drop_nulls().first(),
    )
    return (
        rows.join(keys, on="rid", how="left")
        .with_columns(name=pl.coalesce("name", "kv_name"))
        .drop("kv_name")
    )


_KEYS = ("dev", "zdev", "fh")


def _mappings(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Pointer/handle -> PCI name, from a task's last keyed call before an event that
    names the device (probe_device then add_device_to_group, release_device then
    remove_device_from_group, attach then attach_device_to_domain)."""
    named = rows.filter(pl.col("name").is_not_null()).select(
        "file", "task", "start_line", "start_ts", "name", n_func="func"
    )
    out = []
    for key in _KEYS:
        keyed = rows.filter(pl.col("name").is_null() & pl.col(key).is_not_null()).select(
            "file", "task", "func", k_line="start_line", k_ts="start_ts", key=key
        )
        m = (
            in_task(named, keyed, "start_line", "k_line")
            .filter(
                pl.col("key").is_not_null() & (pl.col("start_ts") - pl.col("k_ts") <= CORRELATE_NS)
            )
            .select(
                "file",
                "key",
                "name",
                ts="start_ts",
                kind=pl.lit(key),
                why=pl.format(
                    "{} {}={} is the last call of its task before {} names {}",
                    "func",
                    pl.lit(key),
                    hex_str(pl.col("key")),
                    "n_func",
                    "name",
                ),
                ev=pl.concat_list(where("file", "k_line"), where("file", "start_line")),
            )
        )
        out.append(m)
    return pl.concat(out)


def hex_str(expr: pl.Expr) -> pl.Expr:
    """An unsigned 64-bit integer as ``0x`` lowercase hex, vectorised nibble by nibble."""
    u = expr.cast(pl.UInt64)
    nibbles = [
        ((u // (1 << (4 * i))) % 16).replace_strict(
            list(range(16)), list("0123456789abcdef"), return_dtype=pl.String
        )
        for i in reversed(range(16))
    ]
    digits = pl.concat_str(nibbles).str.strip_chars_start("0")
    return (
        pl.when(u.is_null())
        .then(None)
        .otherwise(pl.concat_str(pl.lit("0x"), digits.replace("", "0")))
    )


def _adopt(
    rows: pl.LazyFrame, hit: pl.Expr, device: pl.Expr, why: pl.Expr, evidence: pl.Expr
) -> pl.LazyFrame:
    """Rows without a device where ``hit`` holds take ``device`` as inferred, with the
    reason and the lines that show it."""
    take = (pl.col("device").is_null() & hit).fill_null(False)
    return (
        rows.with_columns(_take=take)
        .with_columns(
            device=pl.when("_take").then(device).otherwise("device"),
            device_how=pl.when("_take").then(pl.lit("inferred")).otherwise("device_how"),
            device_why=pl.when("_take").then(why).otherwise("device_why"),
            device_evidence=pl.when("_take").then(evidence).otherwise("device_evidence"),
        )
        .drop("_take")
    )


def _resolve_by_keys(rows: pl.LazyFrame, maps: pl.LazyFrame) -> pl.LazyFrame:
    """Give unnamed rows the name their pointer or handle maps to nearest in time (an
    earlier mapping first: a pointer may be reused after the device is gone)."""
    rows = rows.sort("start_ts")
    for key in _KEYS:
        m = (
            maps.filter(pl.col("kind") == key)
            .select(
                "file",
                m_key="key",
                m_ts="ts",
                m_name="name",
                m_why="why",
                m_ev="ev",
            )
            .sort("m_ts")
        )
        for strategy in ("backward", "forward"):
            rows = (
                rows.join_asof(
                    m,
                    left_on="start_ts",
                    right_on="m_ts",
                    by_left=["file", key],
                    by_right=["file", "m_key"],
                    strategy=strategy,
                    check_sortedness=False,
                )
                .pipe(
                    _adopt,
                    pl.col("m_name").is_not_null(),
                    pl.col("m_name"),
                    pl.col("m_why"),
                    pl.col("m_ev"),
                )
                .drop("m_ts", "m_name", "m_why", "m_ev")
            )
    return rows


def _resolve_nested(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Rows still without a device take the device of the call of their task that was
    running when they started (``zpci_dma_exit_device`` inside an attach)."""
    outer = rows.filter(
        pl.col("device").is_not_null() & (pl.col("end_ts") > pl.col("start_ts"))
    ).select(
        "file",
        "task",
        o_line="start_line",
        o_end="end_ts",
        o_exact="exact",
        o_dev="device",
        o_func="func",
        o_ev=pl.concat_list(where("file", "start_line")),
    )
    rows = in_task(rows, outer, "start_line", "o_line")
    # An outer call whose return was not traced ends at its task's next event at the
    # earliest: a call starting there most likely ran inside it.
    inside = pl.when(pl.col("o_exact")).then(pl.col("o_end") >= pl.col("end_ts"))
    why = pl.format(
        "ran inside {} ({}) on {}{}",
        "o_func",
        pl.col("o_ev").list.first(),
        "o_dev",
        pl.when(pl.col("o_exact"))
        .then(pl.lit(""))
        .otherwise(pl.lit(", as far as its untraced return lets us tell")),
    )
    hit = inside.otherwise(pl.col("o_end") >= pl.col("start_ts"))
    return _adopt(rows, hit, pl.col("o_dev"), why, pl.col("o_ev")).drop(
        "o_line", "o_end", "o_exact", "o_dev", "o_func", "o_ev"
    )


def _learned(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Mappings learned from rows resolved by nesting: their own zdev/fh keys."""
    nested = rows.filter(pl.col("device_why").str.starts_with("ran inside"))
    return pl.concat(
        [
            nested.filter(pl.col(key).is_not_null()).select(
                "file",
                key=key,
                name="device",
                ts="start_ts",
                kind=pl.lit(key),
                why=pl.format(
                    "{} {}={} {}", "func", pl.lit(key), hex_str(pl.col(key)), "device_why"
                ),
                ev="device_evidence",
            )
            for key in _KEYS
        ]
    )


_ATTACH = [f for f, k in SPAN_KINDS.items() if k == "attach"]
_DOMAIN_INSTANTS = ("map", "unmap")


def _instant_domains(rows: pl.LazyFrame) -> pl.LazyFrame:
    """``iommu:map``/``unmap`` take the domain of their task's last call that had one
    (``s390_iommu_map(domain, ...)`` then the tracepoint in ``iommu_map``)."""
    keyed = rows.filter(
        pl.col("domain").is_not_null() & ~pl.col("func").is_in(_DOMAIN_INSTANTS)
    ).select("file", "task", k_line="start_line", k_ts="start_ts", k_dom="domain")
    fill = (
        pl.col("func").is_in(_DOMAIN_INSTANTS)
        & pl.col("domain").is_null()
        & pl.col("k_dom").is_not_null()
        & (pl.col("start_ts") - pl.col("k_ts") <= CORRELATE_NS)
    )
    return (
        in_task(rows, keyed, "start_line", "k_line")
        .with_columns(fill=fill.fill_null(False))
        .with_columns(
            domain=pl.when("fill").then("k_dom").otherwise("domain"),
            dom_ev=pl.when("fill").then(pl.concat_list(where("file", "k_line"))),
        )
        .drop("k_line", "k_ts", "k_dom", "fill")
    )


def _attaches(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Successful attaches of a known device to a domain: ``file a_dom a_at a_dev
    a_func a_ev``."""
    ok = pl.col("ret").is_null() | (pl.col("ret") == 0)
    return rows.filter(
        pl.col("func").is_in(_ATTACH)
        & pl.col("device").is_not_null()
        & pl.col("domain").is_not_null()
        & ok
    ).select(
        "file",
        a_dom="domain",
        a_at="end_ts",
        a_dev="device",
        a_func="func",
        a_ev=pl.concat_list(where("file", "start_line")),
    )


def _resolve_by_domain(rows: pl.LazyFrame, prior: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Rows with a domain and no device: the device that domain was last attached to
    (``prior``: attaches seen before these rows, see ``Prior``)."""
    attached = _attaches(rows)
    if prior is not None:
        attached = pl.concat([prior, attached], how="vertical_relaxed")
    attached = attached.sort("a_at")
    rows = rows.sort("start_ts").join_asof(
        attached,
        left_on="start_ts",
        right_on="a_at",
        by_left=["file", "domain"],
        by_right=["file", "a_dom"],
        strategy="backward",
        check_sortedness=False,
    )
    why = pl.format(
        "domain {} was last attached to {} by {} ({})",
        hex_str(pl.col("domain")),
        "a_dev",
        "a_func",
        pl.col("a_ev").list.first(),
    )
    evidence = pl.concat_list(pl.col("dom_ev").fill_null([]), "a_ev")
    return _adopt(rows, pl.col("a_dev").is_not_null(), pl.col("a_dev"), why, evidence).drop(
        "a_at", "a_dev", "a_func", "a_ev", "dom_ev"
    )


@dataclass
class Prior:
    """What attribution learned before a window of a long trace (``tracetool.windowed``):
    per input and key, the last mapping from names (``maps``) and from nesting
    (``learned``), and per domain the last attach. Lookups that look back in time are
    then the same as over the whole trace."""

    maps: pl.DataFrame
    learned: pl.DataFrame
    attached: pl.DataFrame

    @classmethod
    def empty(cls) -> Prior:
        none = pl.LazyFrame(
            schema={
                "file": pl.String,
                "task": pl.Int64,
                "func": pl.String,
                "start_line": pl.UInt32,
                "start_ts": pl.Int64,
                "end_ts": pl.Int64,
                "name": pl.String,
                "device": pl.String,
                "device_why": pl.String,
                "device_evidence": pl.List(pl.String),
                "domain": pl.UInt64,
                "ret": pl.Int64,
                **dict.fromkeys(_KEYS, pl.UInt64),
            }
        )
        return cls(_mappings(none).collect(), _learned(none).collect(), _attaches(none).collect())

    def after(self, rows: pl.LazyFrame, before_ts: int) -> Prior:
        """This state updated with the attributed ``rows`` of a window, up to (not
        including) ``before_ts``: only the last entry per key is kept."""

        def last(old: pl.DataFrame, new: pl.LazyFrame, ts: str, by: list[str]) -> pl.DataFrame:
            both = pl.concat(
                [old.lazy(), new.filter(pl.col(ts) < before_ts)], how="vertical_relaxed"
            )
            last = both.sort(ts).group_by(by, maintain_order=True).last()
            return last.select(old.columns).collect()

        return Prior(
            last(self.maps, _mappings(rows), "ts", ["file", "kind", "key"]),
            last(self.learned, _learned(rows), "ts", ["file", "kind", "key"]),
            last(self.attached, _attaches(rows), "a_at", ["file", "a_dom"]),
        )


def attribute(rows: pl.LazyFrame, prior: Prior | None = None) -> pl.LazyFrame:
    """Rows with ``device``, ``device_how``, ``device_why`` and ``device_evidence`` (see
    the module doc); ``prior`` carries what earlier windows of a long trace learned."""

    def with_prior(maps: pl.LazyFrame, old: pl.DataFrame | None) -> pl.LazyFrame:
        return maps if old is None else pl.concat([old.lazy(), maps], how="vertical_relaxed")

    rows = rows.with_columns(
        device=pl.col("name"),
        device_how=pl.when(pl.col("name").is_not_null()).then(pl.lit("exact")),
        device_why=pl.when(pl.col("name").is_not_null()).then(pl.lit("named by the event")),
        device_evidence=pl.lit(None, pl.List(pl.String)),
    )
    # Each step reads its input twice; materialise so plans do not grow exponentially
    # (the input too: it is the keys' extraction, which would otherwise run twice).
    rows = rows.collect().lazy()
    maps = with_prior(_mappings(rows), prior.maps if prior else None)
    rows = _resolve_by_keys(rows, maps.collect().lazy()).collect().lazy()
    if rows.select(pl.col("device").is_null().any()).collect().item() is False:
        # Every row has its device (a trace whose events name it or carry a mapped key):
        # the later steps only fill rows without one. Only the domains that map/unmap
        # take from their task's call are still filled in, as those steps would.
        return _instant_domains(rows).drop("dom_ev").pipe(_unresolved)
    learned = prior.learned if prior else None
    rows = _resolve_nested(rows).collect().lazy()
    rows = _resolve_by_keys(rows, with_prior(_learned(rows), learned).collect().lazy())
    rows = rows.collect().lazy()
    attached = prior.attached.lazy() if prior else None
    rows = _resolve_by_domain(_instant_domains(rows).collect().lazy(), attached)
    rows = rows.collect().lazy()
    # A call placed by its domain (VFIO's s390_iommu_map) passes its device on to what
    # ran inside it (the RPCIT of s390_iommu_update_trans), and their keys spread.
    rows = _resolve_nested(rows).collect().lazy()
    rows = _resolve_by_keys(rows, with_prior(_learned(rows), learned).collect().lazy())
    return _unresolved(rows.collect().lazy())


def _unresolved(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Rows the trace gives no name for: their own key as the device, or the one
    ``unknown`` device for lifecycle calls with no key at all."""
    # No name anywhere: the key itself identifies the device within its lifetime.
    own = pl.coalesce(
        pl.format("dev@{}", hex_str(pl.col("dev"))),
        pl.format("zdev@{}", hex_str(pl.col("zdev"))),
        pl.format("fh@{}", hex_str(pl.col("fh"))),
    )
    unresolved = pl.col("device").is_null() & own.is_not_null()
    rows = rows.with_columns(
        device=pl.when(unresolved).then(own).otherwise("device"),
        device_how=pl.when(unresolved).then(pl.lit("pointer")).otherwise("device_how"),
        device_why=pl.when(unresolved)
        .then(pl.lit("no event in the trace names this device"))
        .otherwise("device_why"),
    )
    # Lifecycle calls with no key at all (function_graph, function tracer): they go on
    # one "unknown" device, so rules still see them, and every hit on it is
    # inconclusive because the calls may concern different devices.
    blind = pl.col("device").is_null() & pl.col("func").is_in(list(SPAN_KINDS))
    return rows.with_columns(
        device=pl.when(blind).then(pl.lit(UNKNOWN_DEVICE)).otherwise("device"),
        device_how=pl.when(blind).then(pl.lit("unknown")).otherwise("device_how"),
        device_why=pl.when(blind)
        .then(pl.lit("the trace names no device for this call"))
        .otherwise("device_why"),
    )
