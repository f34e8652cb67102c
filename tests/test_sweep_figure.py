"""The prompt-sweep figure (issue 21): an all-zero sweep gets a readable 0-based axis, a local
checkpoint's default template is marked as default, and the legend sits outside the axes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from testbed import DATA, ROOT, TOY_REGISTRY
from typer.testing import CliRunner

from rlvr_audit.analysis.estimates import analyse
from rlvr_audit.analysis.figures import pyplot
from rlvr_audit.analysis.sweep import build_sweep, local_default_template
from rlvr_audit.analysis.sweep_sections import dot_figure
from rlvr_audit.cli import app
from rlvr_audit.core.store import Store

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")


def test_sweep_figure_all_zero_local_default_marked_legend_outside(
    tmp_path: Path, tiny_model_dir_no_chat: Path
) -> None:
    (tmp_path / "checkpoints.yaml").write_text(TOY_REGISTRY)
    store = tmp_path / "store"
    args = [
        "run", "--backend", "scripted", "--model-args", "accuracy=0", "--checkpoints", str(tiny_model_dir_no_chat),
        "--tasks", "math500", "--limit", "3", "--prompts", "no_template,r1_think", "--quiet", "--no-browser",
        "--data-dir", str(DATA), "--config-dir", str(ROOT), "--registry", str(tmp_path / "checkpoints.yaml"),
        "--store", str(store), "--report-dir", str(tmp_path / "report"),
    ]  # fmt: skip
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    # the local checkpoint (no chat template) ran `default` as no_template: the report says so
    sweep = pd.read_csv(tmp_path / "report" / "tables" / "prompt_sweep.csv")
    assert set(sweep["checkpoint"]) == {next(iter(Store(store).units())).spec.checkpoint.checkpoint_id}
    assert dict(zip(sweep["prompt"], sweep["is_default"], strict=True)) == {"no_template": True, "r1_think": False}
    assert (sweep["accuracy"] == 0).all()
    assert any((tmp_path / "report" / "figures").glob("*.png"))

    s = Store(store)
    assert {local_default_template(u) for u in s.units()} == {"no_template"}
    groups = build_sweep(analyse(s, n_resamples=200), s, n_resamples=200)
    assert len(groups) == 1 and groups[0].default_template == "no_template"
    fig = dot_figure(groups)
    try:
        ax = fig.axes[0]
        low, high = ax.get_ylim()
        assert low == 0 and high >= 5  # not matplotlib's -0.04..0.04 around all-zero values
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == [groups[0].checkpoint_id, "default prompt"]
        fig.canvas.draw()
        box = legend.get_window_extent()
        axes_box = ax.get_window_extent()
        assert box.x0 >= axes_box.x1  # right of the axes: covers no point
        diamonds = [ln for ln in ax.get_lines() if ln.get_marker() == "D"]
        assert len(diamonds) == 1 and list(diamonds[0].get_ydata()) == [0.0]
    finally:
        pyplot().close(fig)
