"""Golden group tables of ``tracetool triage``: the simulator's kernel logs across eras
and seeds with the sample logs, and, when present, every dmesg file of ../shared/corpus.
``pytest --update-goldens`` rewrites them for review."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import CORPUS, GOLDENS, SAMPLES

from tracetool import triage
from tracetool.cli import main

ERAS = ("v6.0", "v6.0+dma_domain_lock", "v6.1", "v6.5")
SEEDS = (1, 2, 3)


def _table(groups: pl.DataFrame, root: Path) -> str:
    """One line per group: class, count, logs, kernels, signature, and the example's
    path relative to ``root`` (so the golden does not depend on where it ran)."""
    lines = []
    for g in groups.sort("signature").iter_rows(named=True):
        example = str(g["example"]).replace(str(root) + "/", "")
        kernels = " ".join(g["kernels"] or []) or "-"
        lines.append(
            f"{g['class']}\t{g['count']}\t{g['logs']}\t{kernels}\t{g['signature']}\t{example}"
        )
    return "\n".join(lines) + "\n"


def _check(got: str, golden: Path, update: bool) -> None:
    if update or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got)
        if not update:
            pytest.fail(f"{golden} did not exist; written now, review and commit it")
    assert got == golden.read_text()


def test_simulated_and_sample_logs(tmp_path: Path, update_goldens: bool) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    runner = CliRunner()
    for era in ERAS:
        for seed in SEEDS:
            out = logs / f"sim-{era}-seed{seed}.txt"
            args = ["simulate", "deconfigure-during-vfio-init", "--era", era, "--seed", str(seed)]
            result = runner.invoke(main, [*args, "--format", "dmesg", "-o", str(out)])
            assert result.exit_code == 0, result.output
            out.with_name(out.name + ".truth.json").unlink()
    dma = logs / "sim-dma-sysrq.txt"
    args = ["simulate", "dma", "--scheme", "s390-strict", "--duration", "1ms", "--jobs", "2"]
    result = runner.invoke(main, [*args, "--format", "dmesg", "-o", str(dma)])
    assert result.exit_code == 0, result.output
    dma.with_name(dma.name + ".truth.json").unlink()
    for sample in sorted((SAMPLES / "dmesg").iterdir()):
        shutil.copy(sample, logs / f"sample-{sample.name}")
    files = triage.logs_in([str(logs)])
    groups = triage.classify(triage.group(*triage.run(files)), [])
    # The eras: v6.0 races and may WARN; the later ones must not race.
    races = groups.filter(pl.col("signature") == "release-overlaps-attach")
    assert races.height == 1 and races["kernels"][0].to_list() == ["6.0.0"]
    _check(_table(groups, logs), GOLDENS / "triage" / "simulated-and-samples.tsv", update_goldens)


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared/corpus is not present")
def test_corpus_dmesg(update_goldens: bool) -> None:
    files = triage.logs_in([str(CORPUS / "dmesg")])
    logs, reports = triage.run(files, jobs=2)
    groups = triage.classify(triage.group(logs, reports), [])
    assert groups.height > 100
    # Every log was read: the few that are not logs say why, none is lost.
    assert logs.height == len(files)
    unread = logs.filter(pl.col("error").is_not_null())
    assert unread["error"].str.contains("cannot tell the format|looks binary").all()
    _check(_table(groups, CORPUS), GOLDENS / "triage" / "corpus-dmesg.tsv", update_goldens)
