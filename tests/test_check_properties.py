"""Property tests of the overlap engine on rendered traces: a finding exactly when two
tasks' spans on a device intersect with no common lock; other devices change nothing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracetool
from tracetool.check import check
from tracetool.kernel import era_from_version
from tracetool.rules import rules

OVERLAP_RULES = {k: v for k, v in rules().items() if k == "release-overlaps-attach"}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def line(ts_us: int, comm: str, pid: int, cpu: int, body: str) -> tuple[int, int, str]:
    ctx = (
        f"{comm:>16}-{pid:<7d} [{cpu:03d}] ...1. {ts_us // 1_000_000:5d}.{ts_us % 1_000_000:06d}: "
    )
    return ts_us, cpu, ctx + body


def span(kind: str, start: int, end: int, who: tuple[str, int, int], dev: int, lock: bool):
    """Probe lines of one call (and, with ``lock``, a traced mutex hold around it)."""
    func = {"release": "s390_iommu_release_device", "attach": "s390_iommu_attach_device"}[kind]
    out = []
    if lock:
        out.append(line(start - 3, *who, "ml: (mutex_lock+0x0/0x40) lock=0xfeed"))
        out.append(line(start - 2, *who, "ml_r: (x+0x1/0x2 <- mutex_lock)"))
    out.append(line(start, *who, f"p: ({func}+0x0/0x98) dev=0x{dev:x}"))
    out.append(line(end, *who, f"r: (y+0x4/0x20 <- {func}) ret=0"))
    if lock:
        out.append(line(end + 2, *who, "mu: (mutex_unlock+0x0/0x40) lock=0xfeed"))
    return out


def render(lines: list[tuple[int, int, str]]) -> str:
    return "# tracer: nop\n#\n" + "".join(text + "\n" for _, _, text in sorted(lines))


def findings(text: str) -> list[tuple[str, str, int, int]]:
    trace = tracetool.parse_text(text)
    frame = check(trace, OVERLAP_RULES, era_from_version("6.0")).collect()
    return sorted(frame.select("device", "status", "ts", "dur").iter_rows())


times = st.tuples(
    st.integers(10, 400), st.integers(1, 200), st.integers(10, 400), st.integers(1, 200)
)


@SETTINGS
@given(times, st.booleans())
def test_finding_iff_intersect_without_common_lock(
    t: tuple[int, int, int, int], lock: bool
) -> None:
    s1, d1, s2, d2 = t
    base = 1_000_000_000
    s1, s2 = base + 10 * s1, base + 10 * s2
    e1, e2 = s1 + 10 * d1, s2 + 10 * d2
    text = render(
        span("release", s1, e1, ("kmcheck", 41, 3), 0xABC, lock)
        + span("attach", s2, e2, ("qemu", 77, 0), 0xABC, lock)
    )
    got = findings(text)
    expected = (s1 < e2 and s2 < e1) and not lock
    assert bool(got) == expected, (t, lock, got)
    if expected:
        ((device, status, ts, dur),) = got
        assert device == "dev@0xabc" and status == "finding"
        assert ts == max(s1, s2) * 1000 and dur == (min(e1, e2) - max(s1, s2)) * 1000


@SETTINGS
@given(times, st.lists(st.tuples(times, st.integers(1, 5), st.booleans()), max_size=6))
def test_other_devices_never_change_a_devices_findings(
    t: tuple[int, int, int, int], others: list[tuple[tuple[int, int, int, int], int, bool]]
) -> None:
    base = 1_000_000_000
    s1, d1, s2, d2 = t
    s1, s2 = base + 10 * s1, base + 10 * s2
    lines = span("release", s1, s1 + 10 * d1, ("kmcheck", 41, 3), 0xABC, False) + span(
        "attach", s2, s2 + 10 * d2, ("qemu", 77, 0), 0xABC, False
    )
    alone = findings(render(lines))
    for i, ((o1, od1, o2, od2), dev, lock) in enumerate(others):
        # other tasks on other CPUs, other devices
        r_who = ("kmcheck", 100 + i, 4 + 2 * i)
        a_who = ("qemu", 200 + i, 5 + 2 * i)
        lines += span("release", base + 10 * o1, base + 10 * (o1 + od1), r_who, 0xD00 + dev, lock)
        lines += span("attach", base + 10 * o2, base + 10 * (o2 + od2), a_who, 0xD00 + dev, lock)
    mixed = [f for f in findings(render(lines)) if f[0] == "dev@0xabc"]
    assert mixed == alone


def test_regression_string_kernels_after_pair_concat() -> None:
    """A generated case (five devices, traced locks on some) on which polars 2.1 panicked
    formatting messages of a filtered horizontal concat; it must give plain findings."""
    from pathlib import Path

    text = (Path(__file__).parent / "data" / "overlaps-five-devices.txt").read_text()
    got = findings(text)
    assert {device for device, *_ in got} == {"dev@0xd03", "dev@0xd04"}
    assert all(status == "finding" for _, status, _, _ in got)


RANGE_RULES = {
    k: v for k, v in rules().items() if k in ("unmap-without-map", "mappings-live-at-release")
}


@SETTINGS
@given(
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 4)), max_size=25), release=st.booleans()
)
def test_iova_liveness_matches_a_naive_model(ops: list[tuple[bool, int]], release: bool) -> None:
    """Random maps and unmaps of a few one-page IOVAs after an attach (then maybe a
    release): the rules agree with replaying them through a set of live IOVAs."""
    import sys

    from conftest import SAMPLES

    sys.path.insert(0, str(SAMPLES / "capture"))
    import make_rule_samples as mr

    story = mr.Story()
    mr.boot(story)
    story.attach(512.104420, 512.104549, 0)
    live: set[int] = set()
    unmapped_nothing = 0
    for i, (is_map, key) in enumerate(ops):
        iova = 0x20000 + key * 0x1000
        ts = 512.2 + i * 0.001
        if is_map:
            story.vfio_map(ts, iova=iova)
            live.add(iova)
        else:
            story.vfio_unmap(ts, iova=iova)
            if iova in live:
                live.discard(iova)
            else:
                unmapped_nothing += 1
    if release:
        story.release(531.000080, 531.000120, 3)
    text = "\n".join(story.render()) + "\n"
    found = check(tracetool.parse_text(text), RANGE_RULES).collect()
    unmapped = found.filter(found["rule"] == "unmap-without-map")
    assert unmapped.height == unmapped_nothing
    assert (unmapped["status"] == "finding").all()
    at_release = found.filter(found["rule"] == "mappings-live-at-release")
    assert at_release.height == int(release and bool(live))
    if at_release.height:
        assert f"while {len(live)} IOVA mapping(s) were live" in at_release["message"][0]
