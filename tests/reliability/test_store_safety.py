"""The store never writes outside its root, one unreadable unit never disables the rest, and a
store that is a file, read-only or on a full disk fails with one line (issue 13, items 2, 9, 11
and 14).

One small store (a scripted run of ``toy/rl`` and its base on 8 MATH-500 problems) is built per
module; every test works on a copy of it and runs the CLI in-process (the disk tests mount a
small tmpfs, which needs root; they are skipped elsewhere).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_helpers import DATA, ROOT, needs_data, one_line, snapshot, write_registry
from typer.testing import CliRunner, Result

from rlvr_audit.cli import app
from rlvr_audit.core.store import Store

pytestmark = needs_data

LIMIT = 8


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def common(tmp: Path, store: Path) -> list[str]:
    return ["--store", str(store), "--config-dir", str(ROOT), "--registry", str(tmp / "checkpoints.yaml")]


def run_args(tmp: Path, store: Path, *extra: str) -> list[str]:
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
        "--workers",
        "1",
        "--resamples",
        "200",
        "--no-browser",
        "--quiet",
        "--report-dir",
        str(tmp / "report"),
        "--data-dir",
        str(DATA),
        *extra,
        *common(tmp, store),
    ]


def report_args(tmp: Path, store: Path) -> list[str]:
    return [
        "report",
        "--resamples",
        "200",
        "--no-browser",
        "--quiet",
        "--report-dir",
        str(tmp / "r"),
        *common(tmp, store),
    ]


def grade_args(store: Path, *extra: str) -> list[str]:
    return ["grade", "--quiet", "--workers", "1", "--store", str(store), "--config-dir", str(ROOT), *extra]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("pristine")
    write_registry(tmp)
    r = invoke(*run_args(tmp, tmp / "store"))
    assert r.exit_code == 0, r.output
    return tmp / "store"


@pytest.fixture()
def store(tmp_path: Path, pristine: Path) -> Path:
    write_registry(tmp_path)
    shutil.copytree(pristine, tmp_path / "store")
    return tmp_path / "store"


def unit_of(store: Path, checkpoint: str) -> Path:
    for unit_json in store.glob("units/*/unit.json"):
        if json.loads(unit_json.read_text())["spec"]["checkpoint"]["checkpoint_id"] == checkpoint:
            return unit_json.parent
    raise AssertionError(checkpoint)


# ---- 13.2: links ---------------------------------------------------------------------------------
def test_report_never_truncates_a_file_outside_the_store_through_a_link(store: Path) -> None:
    """`report` (read-only by intent) used to 'repair' the torn last line of a file outside the
    store reached through a link, truncating that file."""
    tmp = store.parent
    gens = unit_of(store, "toy/rl") / "generations.jsonl"
    outside = tmp / "outside.jsonl"
    outside.write_bytes(gens.read_bytes() + b'{"torn": ')  # ends without a newline: looks torn
    before = outside.read_bytes()
    gens.unlink()
    gens.symlink_to(outside)
    r = invoke(*report_args(tmp, store))
    assert r.exit_code == 0, r.output  # the rest of the store is reported
    assert outside.read_bytes() == before and not Path(str(outside) + ".torn").exists()
    assert f"{gens}: a symbolic link inside the store" in one_line(r.output)
    assert "## Broken units" in (tmp / "r" / "index.md").read_text()
    with pytest.raises(Exception, match=r"is a symbolic link inside the store"):
        Store(store).read_generations(gens.parent.name)  # direct access refuses it too
    assert outside.read_bytes() == before


def test_grade_never_creates_a_file_outside_the_store_through_a_dangling_link(store: Path) -> None:
    tmp = store.parent
    grades = unit_of(store, "toy/rl") / "grades"
    target = tmp / "elsewhere" / "created-by-grade.jsonl"
    target.parent.mkdir()
    (grades / "boxed_strict.jsonl").symlink_to(target)  # dangling: grading boxed_strict would create it
    r = invoke(*grade_args(store, "--graders", "boxed_strict"))
    assert r.exit_code == 0, r.output
    assert not target.exists() and list(target.parent.iterdir()) == []
    assert f"{grades / 'boxed_strict.jsonl'}: a symbolic link inside the store" in one_line(r.output)
    # the other unit was graded
    assert (unit_of(store, "toy/base") / "grades" / "boxed_strict.jsonl").is_file()


@pytest.mark.parametrize("folder", ["problems", "runs", "units"])
def test_a_linked_store_folder_is_refused_with_its_path_and_nothing_is_written_through_it(
    store: Path, folder: str
) -> None:
    tmp = store.parent
    outside = tmp / f"outside-{folder}"
    shutil.move(store / folder, outside)
    (store / folder).symlink_to(outside, target_is_directory=True)
    before = sorted((p.relative_to(outside), p.stat().st_mtime_ns) for p in outside.rglob("*"))
    r = invoke(*run_args(tmp, store, "--samples", "2"))  # a new unit: would write problems, runs, units
    assert r.exit_code == 1, r.output
    assert f"{store / folder}: is a symbolic link inside the store" in one_line(r.output)
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1
    assert sorted((p.relative_to(outside), p.stat().st_mtime_ns) for p in outside.rglob("*")) == before


# ---- 13.9: an unreadable unit never disables the rest ------------------------------------------
def test_run_with_a_non_finite_temperature_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    write_registry(tmp_path)
    for value in ("inf", "nan", "-inf", "1e999"):
        r = invoke(*run_args(tmp_path, tmp_path / "store", "--temperature", value))
        assert r.exit_code == 2, r.output
        assert "--temperature must be a finite number >= 0" in one_line(r.output)
    r = invoke(*run_args(tmp_path, tmp_path / "store", "--top-p", "nan"))
    assert r.exit_code == 2 and "--top-p must be a number in (0, 1]" in one_line(r.output)
    assert not (tmp_path / "store").exists()


def test_a_unit_file_that_cannot_be_read_back_is_listed_and_skipped_by_ls_grade_and_report(store: Path) -> None:
    """What `run --temperature inf` wrote on main: `"temperature": null`, after which ls, grade and
    report failed on the whole store."""
    tmp = store.parent
    unit_json = unit_of(store, "toy/rl") / "unit.json"
    info = json.loads(unit_json.read_text())
    info["spec"]["protocol"]["temperature"] = None
    unit_json.write_text(json.dumps(info))
    r = invoke("ls", "units", "--format", "json", "--store", str(store), "--config-dir", str(ROOT))
    assert r.exit_code == 0, r.output
    rows = {row["unit"]: row for row in json.loads(r.output[r.output.index("[") :])}
    broken = rows[unit_json.parent.name]["checkpoint"]
    assert broken.startswith(f"BROKEN: {unit_json}: not a valid unit file: spec.protocol.temperature")
    assert any(row["checkpoint"] == "toy/base" for row in rows.values())
    r = invoke(*grade_args(store, "--graders", "boxed_strict"))
    assert r.exit_code == 0 and f"skipping broken unit {unit_json.parent.name}: {unit_json}" in one_line(r.output)
    assert (unit_of(store, "toy/base") / "grades" / "boxed_strict.jsonl").is_file()
    r = invoke(*report_args(tmp, store))
    assert r.exit_code == 0, r.output
    assert str(unit_json) in (tmp / "r" / "index.md").read_text()


# ---- 13.11: a store that is a file, read-only, or on a full disk ---------------------------------
def test_a_store_that_is_a_file_is_one_line_for_every_command(tmp_path: Path) -> None:
    write_registry(tmp_path)
    store = tmp_path / "store.txt"
    store.write_text("not a store\n")
    for args in (
        ["ls", "units", "--store", str(store)],
        grade_args(store),
        report_args(tmp_path, store),
        run_args(tmp_path, store),
    ):
        r = invoke(*args)
        assert r.exit_code == 2, (args, r.output)
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert len(lines) == 1 and f"{store}: is a file, not a store folder" in lines[0], r.output
    assert store.read_text() == "not a store\n"


@contextlib.contextmanager
def mounted(folder: Path, *options: str) -> Iterator[None]:
    """A tmpfs at ``folder`` (root only), unmounted afterwards."""
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.decode().strip()}); needs root")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_store_is_read_and_refuses_writes_with_one_line(store: Path) -> None:
    tmp = store.parent
    ro = tmp / "ro"
    ro.mkdir()
    with mounted(ro, "size=50m"):
        shutil.copytree(store, ro / "store")
        res = subprocess.run(["mount", "-o", "remount,ro", str(ro)], capture_output=True)
        if res.returncode != 0:
            pytest.skip(f"cannot remount read-only ({res.stderr.decode().strip()})")
        r = invoke(*report_args(tmp, ro / "store"))  # reading needs no write
        assert r.exit_code == 0, r.output
        r = invoke("ls", "units", "--store", str(ro / "store"), "--config-dir", str(ROOT))
        assert r.exit_code == 0, r.output
        r = invoke(*grade_args(ro / "store", "--graders", "boxed_strict"))
        assert r.exit_code == 1, r.output
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "the store" in lines[0] and "is read-only to this user" in lines[0], r.output
        assert "Traceback" not in r.output


def test_a_full_disk_is_one_line_and_freeing_space_recovers_exactly(tmp_path: Path, pristine: Path) -> None:
    write_registry(tmp_path)
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted(disk, "size=48k"):
        store = disk / "store"
        r = invoke(*run_args(tmp_path, store, "--save-every", "2"))
        assert r.exit_code == 1, r.output
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "no space left on the device holding the store" in lines[0], r.output
        assert not list(store.rglob("*.torn"))  # an append that failed was cut back: nothing torn
        for path in store.rglob("*.jsonl"):
            data = path.read_bytes()
            assert not data or data.endswith(b"\n"), path
        subprocess.run(["mount", "-o", "remount,size=50m", str(disk)], check=True)
        r = invoke(*run_args(tmp_path, store, "--save-every", "2"))
        assert r.exit_code == 0, r.output
        got, want = snapshot(store), snapshot(pristine)
        assert got.generations == want.generations and not got.duplicates
        assert {
            k: {kk: {x: v for x, v in g.items() if x != "error"} for kk, g in gs.items()}
            for k, gs in got.grades.items()
        } == {
            k: {kk: {x: v for x, v in g.items() if x != "error"} for kk, g in gs.items()}
            for k, gs in want.grades.items()
        }


# ---- 13.14: files follow the umask ---------------------------------------------------------------
def test_store_files_follow_the_umask(tmp_path: Path) -> None:
    """unit.json, problems and manifests were written 0600 (tempfile's mode), unreadable by a team."""
    write_registry(tmp_path)
    old = os.umask(0o002)
    try:
        r = invoke(*run_args(tmp_path, tmp_path / "store"))
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    files = [p for p in (tmp_path / "store").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert {p.name for p in files} >= {"unit.json", "generations.jsonl"}
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {"0o664"}, modes
