"""Train specs (issue 13, item 13): a string of a spec must reach verl as exactly that string.

verl's overrides are written one per line (``verl_overrides.txt``); ``train launch`` reads that
file back line by line while ``launch.sh`` carries the same overrides as shell words, so a line
break inside a value made the two run different commands. And Hydra resolves ``${...}`` in
every override value, so a name or path holding it was replaced by something else. Line breaks
are refused (exit 2, one line naming the key, nothing written) and ``${`` is escaped. How verl's
own Hydra reads the escaped values is checked in ``tests/train/test_train_verl.py``
(``test_hydra_values_round_trip`` and ``test_interpolation_in_a_spec_string_stays_literal``).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from reliability_helpers import ROOT, one_line
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.train.launch import launch

SPEC = ROOT / "experiments" / "qwen2.5-math-7b-random.yaml"
SHARED = ROOT.parent / "shared"


def spec_text(**changes: object) -> str:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    spec["data"]["path"] = str(SHARED / "data" / "train" / "deepscaler_level3_sample.jsonl")
    spec["eval"]["path"] = str(SHARED / "data" / "benchmarks" / "math500.jsonl")
    for key, value in changes.items():
        section, _, field = key.rpartition(".")
        (spec[section] if section else spec)[field] = value
    return yaml.safe_dump(spec)


def launch_sh_words(run: Path) -> list[str]:
    """The arguments launch.sh passes to verl, as bash would split them."""
    text = (run / "launch.sh").read_text(encoding="utf-8")
    body = text[text.index('"$PYTHON" -m ') :].split("2>&1 | tee")[0].replace("\\\n", " ")
    return shlex.split(body)[3:]


needs_shared = pytest.mark.skipif(not (SHARED / "data" / "train").is_dir(), reason="no ../shared training data")


@needs_shared
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("project", "audit\ntrainer.total_training_steps=1"),
        ("model.path", "Qwen/Qwen2.5-Math-7B\rdata.train_files=/elsewhere"),
        ("model.registry_id", "qwen2.5-math-7b/base\u2028x"),
        ("verl_overrides", ["trainer.save_freq=10\ntrainer.total_training_steps=1"]),
    ],
    ids=["newline-in-project", "carriage-return-in-model-path", "line-separator-in-registry-id", "newline-override"],
)
def test_a_line_break_in_a_spec_string_is_refused(tmp_path: Path, key: str, value: object) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(**{key: value}), encoding="utf-8")
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "plan", str(spec), "--run-dir", str(run), "--quiet"])
    lines = [line for line in r.output.strip().splitlines() if line.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    message = one_line(r.output)
    assert str(spec) in message and key in message and "line break" in message, message
    assert not run.exists() and list(tmp_path.glob(".run.plan-*")) == []


@needs_shared
def test_a_line_break_in_the_run_directory_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(), encoding="utf-8")
    run = tmp_path / "run\nnext"
    r = CliRunner().invoke(app, ["train", "plan", str(spec), "--run-dir", str(run), "--quiet"])
    assert r.exit_code == 2 and "line break" in one_line(r.output), r.output
    assert not run.exists()


@needs_shared
def test_interpolation_is_escaped_and_launch_agrees_with_launch_sh(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text(project="team-${oc.env:HOME}", **{"data.data_source": "src-${x}"}), encoding="utf-8")
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "plan", str(spec), "--run-dir", str(run), "--quiet"])
    assert r.exit_code == 0, r.output
    lines = (run / "verl_overrides.txt").read_text(encoding="utf-8").splitlines()
    (project,) = [line for line in lines if line.startswith("trainer.project_name=")]
    assert project == "trainer.project_name='team-\\${oc.env:HOME}'"
    assert not any("${" in line.replace("\\${", "") for line in lines), lines
    command = launch(run, dry_run=True).command
    assert command[3:] == lines == launch_sh_words(run)
