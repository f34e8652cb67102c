"""A second ``rlvr-audit run`` into the same report folder adds its units to the report instead
of making the first run's units vanish (issue 21); the record is ``.rlvr-audit-units.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from testbed import DATA, ROOT, TOY_REGISTRY
from typer.testing import CliRunner

from rlvr_audit.api.report_units import UNITS_FILE
from rlvr_audit.cli import app
from rlvr_audit.core.store import Store

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints.yaml").write_text(TOY_REGISTRY)
    (tmp_path / "script.json").write_text(json.dumps({"toy/base": {}, "toy/rl": {}}))
    return tmp_path


def run(task: str, *extra: str, store: str = "store") -> str:
    args = ["run", "--backend", "scripted", "--model-args", "script=script.json", "--checkpoints", "toy/rl"]
    args += ["--tasks", task, "--limit", "2", "--quiet", "--no-browser", "--config-dir", str(ROOT)]
    args += ["--registry", "checkpoints.yaml", "--data-dir", str(DATA), "--store", store, *extra]
    r = CliRunner().invoke(app, args, catch_exceptions=False, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    return r.output


def reported_tasks(report: Path) -> set[str]:
    return set(pd.read_csv(report / "tables" / "estimates.csv")["task"])


def test_a_second_run_keeps_the_first_runs_units_in_the_report(project: Path) -> None:
    run("math500")
    report = project / "reports" / "audit"
    first = json.loads((report / UNITS_FILE).read_text())["units"]
    assert len(first) == 2 and reported_tasks(report) == {"math500"}
    out = run("aime24")
    record = json.loads((report / UNITS_FILE).read_text())
    assert record["store"] == str((project / "store").resolve())
    assert set(first) < set(record["units"]) and set(record["units"]) == set(Store(project / "store").unit_keys())
    assert reported_tasks(report) == {"math500", "aime24"}
    assert "also shows 2 unit(s) of the earlier report" in out
    run("aime24")  # the same run again: nothing doubled
    assert sorted(json.loads((report / UNITS_FILE).read_text())["units"]) == sorted(record["units"])


def test_another_report_name_or_store_starts_afresh(project: Path) -> None:
    run("math500")
    out = run("aime24", "--name", "other")
    assert "earlier report" not in out
    assert reported_tasks(project / "reports" / "other") == {"aime24"}
    out = run("aime24", store="store2")  # reports/audit was made from another store: not merged
    assert "earlier report" not in out
    assert reported_tasks(project / "reports" / "audit") == {"aime24"}


def test_an_unreadable_record_is_ignored(project: Path) -> None:
    run("math500")
    (project / "reports" / "audit" / UNITS_FILE).write_text("{not json")
    out = run("aime24")
    assert "earlier report" not in out
    assert reported_tasks(project / "reports" / "audit") == {"aime24"}
