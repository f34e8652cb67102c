"""Numbers from the scripted backend never pass for measurements of a real model (issue: data
safety, item 5).

``run --backend scripted --model-args accuracy=0.6 --checkpoints 'qwen2.5-math-7b/*'`` files a
seeded oracle's answers under the real Qwen2.5-Math-7B checkpoints; ``run --claims-only`` then
showed 57.0 as a **measured** baseline of that model. Synthetic units are marked as such and never
count as a measurement of a real checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from reliability_helpers import DATA, needs_data
from typer.testing import CliRunner

from rlvr_audit.cli import app

pytestmark = needs_data


def test_scripted_units_of_a_claimed_model_are_no_measured_baseline(tmp_path: Path) -> None:
    store = tmp_path / "store"
    r = CliRunner().invoke(
        app,
        [
            "run", "--backend", "scripted", "--model-args", "accuracy=0.6", "--checkpoints", "qwen2.5-math-7b/base",
            "--tasks", "math500", "--limit", "20", "--quiet", "--no-browser", "--resamples", "200",
            "--data-dir", str(DATA), "--store", str(store), "--report-dir", str(tmp_path / "report"),
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    index = (tmp_path / "report" / "index.md").read_text(encoding="utf-8")
    assert "synthetic: scripted, no model" in index
    assert not (tmp_path / "report" / "tables" / "baseline_correction.csv").exists()

    r = CliRunner().invoke(
        app,
        ["run", "--claims-only", "--store", str(store), "--report-dir", str(tmp_path / "claims"), "--quiet"],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "claims" / "tables" / "baseline_correction.csv")
    assert "measured" not in set(table["baseline_kind"]), table[table["baseline_kind"] == "measured"]
    text = (tmp_path / "claims" / "index.md").read_text(encoding="utf-8")
    assert "synthetic unit of claimed models" in text and "ignored" in text
