"""Small things a user trips over (issue: data safety, item 14): ``--version``, flags shown as
flags, unknown names in huge registries, and Ctrl-C handled the same under CI as at a terminal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_helpers import ROOT, child_env, cli, run_cli
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.errors import MAX_LISTED, UnknownNameError


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    from importlib import metadata

    r = run_cli(cli("--version"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"rlvr-audit {metadata.version('rlvr-audit')}"


@pytest.mark.parametrize("command", [["run"], ["report"], ["grade"], ["train", "plan"], ["simulate", "clipping"], []])
def test_help_shows_on_off_options_as_flags(command: list[str]) -> None:
    r = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    assert "<bool>" not in r.output, r.output
    if command and command[0] in ("run", "report", "grade"):
        assert re.search(r"--quiet\s+-q\s+No progress", r.output), r.output


def test_quiet_is_a_flag_that_takes_no_value() -> None:
    r = CliRunner().invoke(app, ["grade", "--quiet", "true"])
    assert r.exit_code == 2  # "true" is not a value of --quiet but an unexpected argument
    assert "unexpected extra argument" in r.output.lower()


def test_an_unknown_name_in_a_huge_registry_lists_the_closest_and_the_count() -> None:
    valid = [f"family{i}/step{j}" for i in range(2000) for j in range(100)]
    message = str(UnknownNameError("checkpoint", "family12/step7x", valid))
    assert len(message) < 400
    assert "200,000 valid checkpoints" in message and "family12/step7" in message
    few = [f"t{i}" for i in range(MAX_LISTED)]
    assert str(UnknownNameError("task", "nope", few)).endswith(", ".join(sorted(few)))


def test_ctrl_c_test_passes_in_ci_conditions(tmp_path: Path) -> None:
    """CI runs pytest with no terminal and no stdin, possibly as a background job of a
    non-interactive shell, where SIGINT starts out ignored: the Ctrl-C test must pass there too."""
    env = child_env()
    env["CI"] = "true"
    script = (
        f"{sys.executable} -m pytest -q -p no:cacheprovider {ROOT / 'tests' / 'test_cli.py'} -k ctrl_c "
        f"> {tmp_path / 'out.txt'} 2>&1 & wait $!"
    )
    r = subprocess.run(
        ["sh", "-c", script], cwd=ROOT, stdin=subprocess.DEVNULL, env=env, timeout=600, start_new_session=True
    )
    out = (tmp_path / "out.txt").read_text(encoding="utf-8", errors="replace")
    assert r.returncode == 0, out
    assert "1 passed" in out, out
