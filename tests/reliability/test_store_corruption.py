"""Corrupted store: each fault is detected, reported with its file (and line), and either
repaired safely or refused, never turned into a silently different number.

One small store (a scripted run of ``toy/rl`` and its base on 12 MATH-500 problems) is built per
module; every test damages a copy of it and runs the CLI in-process.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from reliability_helpers import DATA, ROOT, needs_data, one_line, snapshot, table_bytes, write_registry
from typer.testing import CliRunner, Result

from rlvr_audit.cli import app
from rlvr_audit.core.store import Store

pytestmark = needs_data

LIMIT = 12


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def common(tmp: Path, store: Path) -> list[str]:
    return ["--store", str(store), "--config-dir", str(ROOT), "--registry", str(tmp / "checkpoints.yaml")]


def grade_args(store: Path, *extra: str) -> list[str]:
    return ["grade", "--quiet", "--workers", "1", "--store", str(store), "--config-dir", str(ROOT), *extra]


def run_args(tmp: Path, store: Path, report: Path) -> list[str]:
    return [
        "run",
        "--backend",
        "scripted",
        "--model-args",
        "accuracy=0.6",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500",
        "--limit",
        str(LIMIT),
        "--samples",
        "2",
        "--workers",
        "1",
        "--resamples",
        "200",
        "--no-browser",
        "--quiet",
        "--report-dir",
        str(report),
        "--data-dir",
        str(DATA),
        *common(tmp, store),
    ]


def report_args(tmp: Path, store: Path, report: Path) -> list[str]:
    return ["report", "--resamples", "200", "--no-browser", "--quiet", "--report-dir", str(report), *common(tmp, store)]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    tmp = tmp_path_factory.mktemp("pristine")
    write_registry(tmp)
    r = invoke(*run_args(tmp, tmp / "store", tmp / "report"))
    assert r.exit_code == 0, r.output
    return tmp / "store", table_bytes(tmp / "report")


@pytest.fixture()
def damaged(tmp_path: Path, pristine: tuple[Path, dict[str, bytes]]) -> Path:
    """A private copy of the pristine store (and a registry beside it)."""
    write_registry(tmp_path)
    shutil.copytree(pristine[0], tmp_path / "store")
    return tmp_path / "store"


def unit_of(store: Path, checkpoint: str) -> Path:
    for unit_json in store.glob("units/*/unit.json"):
        if json.loads(unit_json.read_text())["spec"]["checkpoint"]["checkpoint_id"] == checkpoint:
            return unit_json.parent
    raise AssertionError(checkpoint)


def test_torn_last_generation_line_is_moved_aside_reported_and_regenerated(
    damaged: Path, pristine: tuple[Path, dict[str, bytes]]
) -> None:
    tmp = damaged.parent
    gens = unit_of(damaged, "toy/rl") / "generations.jsonl"
    data = gens.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = last_start + (len(data) - last_start) // 2
    gens.write_bytes(data[:cut])  # a write interrupted half-way through the last record
    r = invoke(*report_args(tmp, damaged, tmp / "report"))
    assert r.exit_code == 0, r.output
    out = one_line(r.output)
    assert f"{gens}: the last line was torn" in out and ".torn" in out
    assert Path(str(gens) + ".torn").read_bytes() == data[last_start:cut] + b"\n"  # kept, not dropped
    assert gens.read_bytes() == data[:last_start]
    # the grade of the lost sample is not counted: its problem leaves the estimate, with a warning
    assert "grades are of samples with no stored generation" in out
    est = (tmp / "report" / "tables" / "estimates.csv").read_text()
    assert f",{LIMIT - 1},2," in est
    # generating it again would give the new text the old text's grade: refused, naming what to do
    r = invoke(*run_args(tmp, damaged, tmp / "report"))
    assert r.exit_code == 1, r.output
    grades = gens.parent / "grades"
    assert f"{grades / 'math_verify.jsonl'}: grades 1 samples missing from {gens}" in one_line(r.output)
    assert f"move {grades} aside" in one_line(r.output)
    # done as told: the lost sample is generated again, everything regraded, the pristine numbers
    shutil.move(grades, tmp / "grades-aside")
    r = invoke(*run_args(tmp, damaged, tmp / "report"))
    assert r.exit_code == 0, r.output
    assert "1 samples generated" in one_line(r.output)
    assert table_bytes(tmp / "report") == pristine[1]
    assert snapshot(damaged).generations == snapshot(pristine[0]).generations


def test_torn_last_grade_line_is_regraded(damaged: Path, pristine: tuple[Path, dict[str, bytes]]) -> None:
    tmp = damaged.parent
    grades = unit_of(damaged, "toy/base") / "grades" / "math_verify.jsonl"
    data = grades.read_bytes()
    grades.write_bytes(data[:-7])
    r = invoke(*grade_args(damaged))
    assert r.exit_code == 0, r.output
    assert f"{grades}: the last line was torn" in one_line(r.output) and "1 graded" in one_line(r.output)
    r = invoke(*report_args(tmp, damaged, tmp / "report"))
    assert r.exit_code == 0, r.output
    assert table_bytes(tmp / "report") == pristine[1]


@pytest.mark.parametrize("what", ["generations", "grades", "problems"])
@pytest.mark.parametrize(
    "garbage",
    [b"{not json", b"\x00" * 40, b'{"unit_key": 1}', "{\xe9t\xe9}".encode("latin-1")],
    ids=["syntax", "nul-bytes", "wrong-fields", "invalid-utf8"],
)
def test_garbage_line_in_the_middle_is_refused_with_file_and_line(damaged: Path, what: str, garbage: bytes) -> None:
    tmp = damaged.parent
    unit = unit_of(damaged, "toy/rl")
    if what == "generations":
        path = unit / "generations.jsonl"
    elif what == "grades":
        path = unit / "grades" / "math_verify.jsonl"
    else:
        (path,) = damaged.glob("problems/*.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(3, garbage + b"\n")
    path.write_bytes(b"".join(lines))
    before = snapshot_bytes(damaged)
    command = grade_args(damaged) if what == "problems" else report_args(tmp, damaged, tmp / "r")
    if what == "problems":  # grading needs the gold answers: make one sample ungraded
        grades = unit / "grades" / "math_verify.jsonl"
        grades.write_bytes(b"".join(grades.read_bytes().splitlines(keepends=True)[:-1]))
        before = snapshot_bytes(damaged)
    r = invoke(*command)
    assert r.exit_code == 1, r.output
    out = one_line(r.output)
    assert f"error: {path}:4: not a valid" in out and "the store is corrupt" in out
    assert len(r.output.strip().splitlines()) <= 3  # one message (wrapped at most), no traceback
    assert not (tmp / "r").exists()  # no report from a corrupt store
    after = snapshot_bytes(damaged)
    # The derived column cache of intact sources may be refreshed (the fixture copied the store, so their
    # inodes changed); the records stay as they were, and nothing is cached from the damaged file.
    derived = f"cache{os.sep}columns{os.sep}"
    from_damage = f"{derived}{unit.name}{os.sep}" + ("generations" if what == "generations" else "grades-")

    def kept(snap: dict[str, bytes]) -> dict[str, bytes]:
        return {k: v for k, v in snap.items() if not k.startswith(derived) or k.startswith(from_damage)}

    assert kept(after) == kept(before)  # refused: nothing repaired behind the user's back


def snapshot_bytes(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def test_record_filed_under_another_unit_is_refused(damaged: Path) -> None:
    """A grades file copied from another unit would give that unit's numbers to this one."""
    tmp = damaged.parent
    rl, base = unit_of(damaged, "toy/rl"), unit_of(damaged, "toy/base")
    shutil.copy(base / "grades" / "math_verify.jsonl", rl / "grades" / "math_verify.jsonl")
    r = invoke(*report_args(tmp, damaged, tmp / "r"))
    assert r.exit_code == 1
    assert f"{rl / 'grades' / 'math_verify.jsonl'}:1: a Grade record of unit_key" in one_line(r.output)
    assert not (tmp / "r").exists()


def test_grades_filed_under_another_grader_are_refused(damaged: Path) -> None:
    tmp = damaged.parent
    grades = unit_of(damaged, "toy/rl") / "grades"
    shutil.copy(grades / "math_verify.jsonl", grades / "paper.jsonl")
    r = invoke(*report_args(tmp, damaged, tmp / "r"))
    assert r.exit_code == 1
    assert f"{grades / 'paper.jsonl'}:1: a Grade record of grader_id 'math_verify'" in one_line(r.output)


def test_missing_unit_file_with_records_is_listed_as_broken_and_skipped(damaged: Path) -> None:
    """Without unit.json the unit used to vanish silently from every report (and its checkpoint's
    gain); failing the whole store instead hid everything else (issue 13.9). Now the rest is graded
    and reported, and the broken unit is named with its path on the console and in the report."""
    tmp = damaged.parent
    base = unit_of(damaged, "toy/base")
    (base / "unit.json").unlink()
    line = f"{base / 'unit.json'}: missing, but the folder holds records"
    for command in (report_args(tmp, damaged, tmp / "r"), grade_args(damaged)):
        r = invoke(*command)
        assert r.exit_code == 0, r.output
        assert line in one_line(r.output)
    index = one_line((tmp / "r" / "index.md").read_text())
    assert "## Broken units" in index and str(base / "unit.json") in index
    broken = pd.read_csv(tmp / "r" / "tables" / "broken_units.csv")
    assert list(broken["unit"]) == [base.name] and list(broken["path"]) == [str(base / "unit.json")]
    est = pd.read_csv(tmp / "r" / "tables" / "estimates.csv")
    assert set(est["checkpoint"]) == {"toy/rl"}
    r = invoke("ls", "units", "--format", "json", "--store", str(damaged), "--config-dir", str(ROOT))
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output[r.output.index("[") :])
    assert [row["checkpoint"].startswith("BROKEN: " + line) for row in rows].count(True) == 1
    assert any(row["checkpoint"] == "toy/rl" for row in rows)


def test_half_created_unit_folder_is_ignored(damaged: Path, pristine: tuple[Path, dict[str, bytes]]) -> None:
    """A run killed while writing unit.json leaves only its temporary file: nothing to report."""
    tmp = damaged.parent
    half = damaged / "units" / "0123456789abcdef"
    half.mkdir()
    (half / ".unit.json.x1y2.tmp").write_text('{"key": "0123')
    r = invoke(*report_args(tmp, damaged, tmp / "report"))
    assert r.exit_code == 0, r.output
    assert table_bytes(tmp / "report") == pristine[1]


@pytest.mark.parametrize("version", [0, 2])
def test_unit_file_of_another_schema_version_is_listed_as_broken(damaged: Path, version: int) -> None:
    tmp = damaged.parent
    unit_json = unit_of(damaged, "toy/rl") / "unit.json"
    info = json.loads(unit_json.read_text())
    info["spec"]["schema_version"] = version
    unit_json.write_text(json.dumps(info))
    r = invoke(*report_args(tmp, damaged, tmp / "r"))
    assert r.exit_code == 0, r.output
    line = f"{unit_json}: written with schema version {version}, this rlvr-audit reads version 1"
    assert line in one_line(r.output)
    assert line.split(": ", 1)[1] in one_line((tmp / "r" / "index.md").read_text())
    assert set(pd.read_csv(tmp / "r" / "tables" / "estimates.csv")["checkpoint"]) == {"toy/base"}


def test_record_of_a_newer_schema_is_refused_with_its_line(damaged: Path) -> None:
    tmp = damaged.parent
    gens = unit_of(damaged, "toy/rl") / "generations.jsonl"
    lines = gens.read_text().splitlines(keepends=True)
    record = json.loads(lines[5])
    record["logprobs"] = [-0.1, -0.2]  # a field this version does not know
    lines[5] = json.dumps(record) + "\n"
    gens.write_text("".join(lines))
    r = invoke(*report_args(tmp, damaged, tmp / "r"))
    assert r.exit_code == 1
    assert f"{gens}:6: not a valid Generation record (logprobs: Extra inputs are not permitted)" in one_line(r.output)


def test_missing_and_unreadable_run_manifests_are_reported(
    damaged: Path, pristine: tuple[Path, dict[str, bytes]]
) -> None:
    tmp = damaged.parent
    (manifest,) = damaged.glob("runs/*.json")
    manifest.write_text('{"run_id": "x", "status": "bogus"')
    r = invoke(*report_args(tmp, damaged, tmp / "report"))
    assert r.exit_code == 0, r.output
    assert f"skipping unreadable run manifest {manifest}" in one_line(r.output)
    md = (tmp / "report" / "index.md").read_text()
    assert "_No run manifest in the store for these units._" in md
    assert table_bytes(tmp / "report") == pristine[1]  # provenance lost, numbers unchanged
    shutil.rmtree(damaged / "runs")
    r = invoke(*report_args(tmp, damaged, tmp / "report"))
    assert r.exit_code == 0, r.output
    assert "_No run manifest in the store for these units._" in (tmp / "report" / "index.md").read_text()


def test_conflicting_duplicate_is_reported_and_the_first_kept(
    damaged: Path, pristine: tuple[Path, dict[str, bytes]]
) -> None:
    tmp = damaged.parent
    grades = unit_of(damaged, "toy/rl") / "grades" / "math_verify.jsonl"
    first = json.loads(grades.read_text().splitlines()[0])
    flipped = dict(first, verdict="incorrect" if first["verdict"] == "correct" else "correct")
    with grades.open("a") as fh:
        fh.write(json.dumps(flipped) + "\n")
    r = invoke(*report_args(tmp, damaged, tmp / "report"))
    assert r.exit_code == 0, r.output
    assert f"{grades}: 1 records repeat a sample already stored with other content" in one_line(r.output)
    assert table_bytes(tmp / "report") == pristine[1]


def test_missing_problems_file_is_refused_when_grading(damaged: Path) -> None:
    (problems,) = damaged.glob("problems/*.jsonl")
    problems.unlink()
    r = invoke(*grade_args(damaged, "--graders", "boxed_strict"))
    assert r.exit_code == 1
    assert f"{problems}: missing (problems of task version" in one_line(r.output)
    assert not list(damaged.glob("units/*/grades/boxed_strict.jsonl"))


def test_store_api_appends_each_sample_once(damaged: Path) -> None:
    """The append protocol: a batch that repeats stored samples stores only the new ones."""
    store = Store(damaged)
    key = unit_of(damaged, "toy/rl").name
    gens = store.read_generations(key)
    path = store.generations_path(key)
    before = path.read_bytes()
    store.append_generations(key, gens[:5])
    assert path.read_bytes() == before
    other = Store(damaged)  # another process's view: reads what was appended since
    path.write_bytes(b"".join(before.splitlines(keepends=True)[:-2]))
    other.append_generations(key, gens[-3:])
    assert len(path.read_bytes().splitlines()) == len(gens)
    assert [g.problem_id for g in other.read_generations(key)] == [g.problem_id for g in gens]


def test_edited_gold_answers_are_reported(damaged: Path) -> None:
    """The problems file is named by the hash of its contents: an edited gold answer shows."""
    (problems,) = damaged.glob("problems/*.jsonl")
    lines = problems.read_text(encoding="utf-8").splitlines(keepends=True)
    record = json.loads(lines[0])
    record["answer"] = record["answer"] + "0"
    lines[0] = json.dumps(record) + "\n"
    problems.write_text("".join(lines), encoding="utf-8")
    r = invoke(*grade_args(damaged, "--graders", "boxed_strict"))
    assert r.exit_code == 0, r.output
    assert f"{problems}: its problems do not hash to the file's name" in one_line(r.output)
