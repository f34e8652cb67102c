"""Two local model folders are two checkpoints, whatever their names (issue: data safety, item 3).

verl saves every training step as ``.../global_step_N/actor/huggingface``: with ids taken from the
folder's name alone, ``run --checkpoints a/model,b/model`` silently skipped the second folder and
the report showed one row. A local folder's id is unique to its resolved path and readable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from reliability_helpers import DATA, needs_data
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.registry import local_checkpoint_id

pytestmark = needs_data


def model_dir(path: Path, tag: str) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "qwen2", "tag": tag}), encoding="utf-8")
    return path


def test_same_basename_folders_are_two_rows(tmp_path: Path) -> None:
    a = model_dir(tmp_path / "a" / "model", "a")
    b = model_dir(tmp_path / "b" / "model", "b")
    r = CliRunner().invoke(
        app,
        [
            "run", "--backend", "scripted", "--model-args", "accuracy=0.5", "--checkpoints", f"{a},{b}",
            "--tasks", "math500", "--limit", "4", "--quiet", "--no-browser", "--resamples", "200",
            "--data-dir", str(DATA), "--store", str(tmp_path / "store"), "--report-dir", str(tmp_path / "report"),
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    est = pd.read_csv(tmp_path / "report" / "tables" / "estimates.csv")
    assert sorted(est.checkpoint) == sorted([local_checkpoint_id(a), local_checkpoint_id(b)])
    assert local_checkpoint_id(a) != local_checkpoint_id(b)


def test_verl_step_folders_get_readable_distinct_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = {
        step: local_checkpoint_id(model_dir(tmp_path / "run" / f"global_step_{step}" / "actor" / "huggingface", "x"))
        for step in (50, 100)
    }
    assert re.fullmatch(r"local/global_step_50-actor-huggingface-[0-9a-f]{8}", ids[50])
    assert ids[50] != ids[100]
    # the same folder has the same id from anywhere, through a relative path or a link
    monkeypatch.chdir(tmp_path / "run")
    assert local_checkpoint_id(Path("global_step_50/actor/huggingface")) == ids[50]
    (tmp_path / "link").symlink_to(tmp_path / "run" / "global_step_50" / "actor" / "huggingface")
    assert local_checkpoint_id(tmp_path / "link") == ids[50]
