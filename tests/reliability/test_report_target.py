"""A report never destroys anything but an earlier report (issue: data safety, item 1).

``report``/``run`` used to rename the target folder aside and delete it whatever it was: a store,
a checkout with its ``.git``, the folder holding every other report, any absolute path. Now
``--name`` is one folder name, and an existing folder is replaced only when it carries the
marker rlvr-audit writes into every report it builds; everything else is refused with one line,
exit code 2, and nothing is written.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from reliability_helpers import DATA, needs_data, one_line, write_registry
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.report.writer import REPORT_MARKER

pytestmark = needs_data


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones too) with its content hash."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder with a registry, a small scripted store and one report, ``reports/first``."""
    root = tmp_path_factory.mktemp("project")
    write_registry(root)
    r = CliRunner().invoke(
        app,
        [
            "run", "--backend", "scripted", "--model-args", "accuracy=0.6", "--checkpoints", "toy/rl",
            "--tasks", "math500", "--limit", "3", "--quiet", "--no-browser", "--resamples", "200",
            "--registry", str(root / "checkpoints.yaml"), "--data-dir", str(DATA),
            "--store", str(root / "store"), "--report-dir", str(root / "reports" / "first"),
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return root


@pytest.fixture()
def work(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of :func:`project` as the current directory."""
    root = tmp_path / "work"
    shutil.copytree(project, root)
    monkeypatch.chdir(root)
    return root


def report(work: Path, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(
        app,
        [
            "report", "--quiet", "--no-browser", "--resamples", "200",
            "--registry", str(work / "checkpoints.yaml"), "--store", str(work / "store"), *args,
        ],
        catch_exceptions=False,
    )  # fmt: skip
    return r.exit_code, r.output


def refused(code: int, output: str, *fragments: str) -> None:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert code == 2, output
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    for fragment in fragments:
        assert fragment in one_line(output), (fragment, output)


def test_every_report_carries_the_marker(project: Path) -> None:
    assert (project / "reports" / "first" / REPORT_MARKER).is_file()


@pytest.mark.parametrize("name", ["", ".", "..", "../../victim", "a/b", "/tmp/victim", "sub\\dir"])
def test_a_name_that_is_not_one_folder_name_is_refused_and_nothing_changes(work: Path, name: str) -> None:
    before = _tree(work)
    code, output = report(work, "--name", name)
    refused(code, output, "--name", "not a valid report name")
    assert _tree(work) == before


def test_a_store_is_never_replaced_by_a_report(work: Path) -> None:
    before = _tree(work / "store")
    code, output = report(work, "--report-dir", str(work / "store"))
    refused(code, output, "store")
    assert _tree(work / "store") == before


def test_a_checkout_is_never_replaced(work: Path) -> None:
    checkout = work / "elsewhere" / "checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / "code.py").write_text("print('precious')\n", encoding="utf-8")
    code, output = report(work, "--report-dir", str(checkout))
    refused(code, output, "git checkout", str(checkout))
    assert (checkout / "code.py").read_text(encoding="utf-8") == "print('precious')\n"


def test_the_folder_of_all_reports_is_never_replaced(work: Path) -> None:
    before = _tree(work / "reports")
    code, output = report(work, "--report-dir", "reports")
    refused(code, output, "folder of reports")
    assert _tree(work / "reports") == before


@pytest.mark.parametrize("where", [".", ".."])
def test_the_current_directory_and_its_ancestors_are_refused(work: Path, where: str) -> None:
    before = _tree(work)
    code, output = report(work, "--report-dir", where)
    refused(code, output, "current directory")
    assert _tree(work) == before


def test_a_foreign_non_empty_folder_is_refused_and_an_empty_one_is_used(work: Path) -> None:
    foreign = work / "data"
    foreign.mkdir()
    (foreign / "results.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    code, output = report(work, "--report-dir", str(foreign))
    refused(code, output, "non-empty folder", REPORT_MARKER)
    assert (foreign / "results.csv").read_text(encoding="utf-8") == "a,b\n1,2\n"
    empty = work / "empty"
    empty.mkdir()
    code, output = report(work, "--report-dir", str(empty))
    assert code == 0, output
    assert (empty / "tables" / "estimates.csv").is_file() and (empty / REPORT_MARKER).is_file()


def test_an_earlier_report_is_replaced(work: Path) -> None:
    first = work / "reports" / "first"
    (first / "tables" / "stale.csv").write_text("old\n", encoding="utf-8")
    code, output = report(work, "--name", "first")
    assert code == 0, output
    assert (first / "tables" / "estimates.csv").is_file()
    assert not (first / "tables" / "stale.csv").exists()
    assert not [p for p in (work / "reports").iterdir() if p.name.startswith(".")]  # no build or old folder left


def test_a_symbolic_link_as_the_report_folder_is_refused(work: Path) -> None:
    target = work / "linked-target"
    target.mkdir()
    (target / "keep.txt").write_text("keep\n", encoding="utf-8")
    (work / "reports" / "link").symlink_to(target, target_is_directory=True)
    code, output = report(work, "--name", "link")
    refused(code, output, "symbolic link")
    assert (target / "keep.txt").read_text(encoding="utf-8") == "keep\n"


def test_run_refuses_a_bad_target_before_generating(work: Path) -> None:
    """``run`` checks the report folder before anything is generated or written."""
    before = _tree(work)
    r = CliRunner().invoke(
        app,
        [
            "run", "--backend", "scripted", "--model-args", "accuracy=0.6", "--checkpoints", "toy/rl",
            "--tasks", "math500", "--limit", "5", "--quiet", "--no-browser", "--resamples", "200",
            "--registry", str(work / "checkpoints.yaml"), "--data-dir", str(DATA),
            "--store", str(work / "store"), "--report-dir", str(work / "store"),
        ],
        catch_exceptions=False,
    )  # fmt: skip
    refused(r.exit_code, r.output, "store")
    assert _tree(work) == before


def test_claims_only_refuses_the_store_as_report_folder(work: Path) -> None:
    before = _tree(work / "store")
    r = CliRunner().invoke(
        app,
        ["run", "--claims-only", "--store", str(work / "store"), "--report-dir", str(work / "store"), "--quiet"],
        catch_exceptions=False,
    )
    refused(r.exit_code, r.output, "store")
    assert _tree(work / "store") == before


def test_a_report_folder_follows_the_umask(work: Path) -> None:
    """Reports are shared like any folder a team makes: not 0700 (``mkdtemp``'s mode)."""
    import os

    old = os.umask(0o022)
    try:
        code, output = report(work, "--name", "shared")
    finally:
        os.umask(old)
    assert code == 0, output
    assert (work / "reports" / "shared").stat().st_mode & 0o777 == 0o755
