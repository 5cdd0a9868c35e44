"""The s390 capture recipes (samples/capture/s390/*.sh) define exactly the probes that
traces of their era carry: every kprobe line `tracetool simulate` writes for an era is
a probe of that era's recipe, on the same function, with fetch-args the recipe
defines. So what a user captures with a recipe is what the tests parse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import SAMPLES

from tracetool.simulate import DmaOptions, RaceOptions, simulate_dma, simulate_race

RECIPES = SAMPLES / "capture" / "s390"
# era -> the recipe scripts whose probes a trace of that era may use
ERA_RECIPES = {
    "v6.0": ["common.sh", "v6.0.sh"],
    "v6.1": ["common.sh", "v6.0.sh"],
    "v6.0+dma_domain_lock": ["common.sh", "v6.0.sh", "v6.0-dma-domain-lock.sh"],
    "v6.5": ["common.sh", "v6.2.sh"],
    "v6.7": ["v6.7.sh"],
}
PROBE = re.compile(r"""^\s*probe\s+(['"])([pr]):(\w+)\s+(\w+)(.*)\1\s*$""")
ENTRY = re.compile(r": (\w+): \((\w+)\+0x0/0x[0-9a-f]+\)(.*)$")
RETURN = re.compile(r": (\w+): \(\w+\+0x[0-9a-f]+/0x[0-9a-f]+ <- (\w+)\)(.*)$")
NAME_ARG = "name=+0(+0($arg1)):string"
NAME2_ARG = "name=+0(+0($arg2)):string"


def recipe_probes(era: str) -> dict[str, tuple[str, str, set[str]]]:
    """probe name -> (p or r, function, fetch-arg names)."""
    probes = {}
    for script in ERA_RECIPES[era]:
        for line in (RECIPES / script).read_text().splitlines():
            text = line.replace("$NAME2", NAME2_ARG).replace("$NAME", NAME_ARG)
            m = PROBE.match(text.replace("\\$", "$"))
            if m:
                args = {a.split("=")[0] for a in m.group(5).split()}
                probes[m.group(3)] = (m.group(2), m.group(4), args)
    return probes


def kprobe_lines(path: Path) -> list[tuple[str, str, str, set[str]]]:
    out = []
    for line in path.read_text().splitlines():
        if m := ENTRY.search(line):
            kind = "p"
        elif m := RETURN.search(line):
            kind = "r"
        else:
            continue
        args = {a.split("=")[0] for a in m.group(3).split()}
        out.append((m.group(1), kind, m.group(2), args))
    return out


def runs(tmp_path: Path) -> list[tuple[str, Path]]:
    out = []
    for era in ("v6.0", "v6.0+dma_domain_lock", "v6.1", "v6.5"):
        path = tmp_path / f"race-{era}.txt"
        simulate_race(RaceOptions(era=era, seed=1), path)
        out.append((era, path))
    for scheme in ("s390-lazy", "s390-strict", "dma-strict", "fq-single", "fq-percpu"):
        path = tmp_path / f"dma-{scheme}.txt"
        opts = DmaOptions(
            scheme=scheme,
            duration_ms=1.0,
            jobs=2,
            iodepth=2,
            fq_size=8,
            fq_timeout_ms=0.3,
            aperture_pages=16,
        )
        simulate_dma(opts, path)
        out.append((opts.era(), path))
    return out


def test_simulated_kprobes_are_the_recipes_probes(tmp_path: Path) -> None:
    for era, path in runs(tmp_path):
        defined = recipe_probes(era)
        seen = kprobe_lines(path)
        assert seen, path
        for name, kind, func, args in seen:
            assert name in defined, f"{era}: {name} ({func}) is in no recipe of the era"
            want_kind, want_func, want_args = defined[name]
            assert (kind, func) == (want_kind, want_func), (era, name)
            assert args <= want_args, (era, name, args - want_args)


@pytest.mark.parametrize("script", sorted(p.name for p in RECIPES.glob("*.sh")))
def test_recipes_are_valid_shell(script: str) -> None:
    import subprocess

    subprocess.run(["bash", "-n", str(RECIPES / script)], check=True)


BT_PROBE = re.compile(r"\b(kprobe|kretprobe):(\w+)")


def bt_probes(script: Path) -> list[tuple[str, str]]:
    """(probe type, function) of every probe a bpftrace script attaches."""
    heads = re.findall(r"((?:k(?:ret)?probe:\w+[,\s]*)+)\{", script.read_text())
    return [m for head in heads for m in BT_PROBE.findall(head)]


@pytest.mark.parametrize("name", ["v6.0.bt", "v6.2.bt", "v6.7.bt"])
def test_bpftrace_recipes_match_the_simulator(name: str) -> None:
    """The simulator writes what each era's bpftrace script prints: the same probes,
    and each function in the line shape the script gives it."""
    from tracetool.simulate.bpftrace_out import SCRIPTS

    script = SCRIPTS[name]
    text = (RECIPES / name).read_text()
    probes = bt_probes(RECIPES / name)
    assert len(probes) == script.probes()
    blocks = re.findall(r"((?:k(?:ret)?probe:\w+[,\s]*)+)\{(.*?)\}\s*$", text, re.S | re.M)
    shapes = {
        "dev": "dev=%p name=%s",
        "dom_dev": "dom=%p dev=%p name=%s",
        "zdev": "zdev=%p",
        "domain": "domain=%p",
        "ret": "ret=%d",
    }
    for head, body in blocks:
        funcs = {f for kind, f in BT_PROBE.findall(head)}
        for field, shape in shapes.items():
            if "%llu %d %s %s " + shape + "\\n" in body:
                assert funcs <= set(getattr(script, field)), (name, field, funcs)
