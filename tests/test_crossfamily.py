"""Cross-family grids: picking cells, Holm over a grid, claimed beside measured, CSV, heatmap."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlvr_audit.analysis.crossfamily import ClaimedGain, build_grids, figure_name, grid_blocks, grid_frame, heatmap
from rlvr_audit.analysis.estimates import Analysis
from rlvr_audit.core.records import CheckpointRef, Comparison, SamplingProtocol, UnitSpec
from rlvr_audit.core.store import UnitInfo
from rlvr_audit.report.markdown import render_blocks


def _unit(
    family: str, name: str, reward: str | None, step: int | None, template: str = "qwen_math_default"
) -> UnitInfo:
    spec = UnitSpec(
        checkpoint=CheckpointRef(checkpoint_id=f"{family}/{name}", model=f"org/{family}-{name}"),
        task="math500",
        data_hash="d" * 16,
        template_id=template,
        template_hash="t" * 16,
        protocol=SamplingProtocol(n=1, temperature=0.0, max_new_tokens=3072),
        backend="scripted",
    )
    return UnitInfo(
        key=spec.key,
        spec=spec,
        family=family,
        family_display=family.upper(),
        base=None if reward is None else f"{family}/base",
        reward=reward,
        step=step,
        task_display="MATH-500",
    )


def _cmp(treat: UnitInfo, base: UnitInfo, delta: float, p: float | None) -> Comparison:
    return Comparison(
        baseline=base.spec.checkpoint.checkpoint_id,
        treatment=treat.spec.checkpoint.checkpoint_id,
        baseline_unit=base.key,
        treatment_unit=treat.key,
        task="math500",
        template_id=treat.spec.template_id,
        grader_id="math_verify",
        metric="avg@1",
        baseline_value=0.5,
        treatment_value=0.5 + delta,
        delta=delta,
        ci_low=delta - 0.04,
        ci_high=delta + 0.04,
        level=0.95,
        method="paired-bootstrap",
        p_value=p,
        n_problems=500,
        seed=0,
    )


@pytest.fixture
def analysis() -> Analysis:
    qb, lb = _unit("qwen", "base", None, 0), _unit("llama", "base", None, 0, "model_default")
    q_rand_50 = _unit("qwen", "random-50", "random", 50)
    q_rand_150 = _unit("qwen", "random-150", "random", 150)
    q_rand_other_prompt = _unit("qwen", "random-300", "random", 300, "no_template")
    q_gt = _unit("qwen", "gt-150", "ground_truth", 150)
    l_rand = _unit("llama", "random-150", "random", 150, "model_default")
    units = [qb, lb, q_rand_50, q_rand_150, q_rand_other_prompt, q_gt, l_rand]
    comps = [
        _cmp(q_rand_50, qb, 0.05, 0.2),
        _cmp(q_rand_150, qb, 0.20, 0.001),
        _cmp(q_rand_other_prompt, qb, 0.30, 0.0001),
        _cmp(q_gt, qb, 0.25, 0.02),
        _cmp(l_rand, lb, -0.01, 0.03),
    ]
    return Analysis(units=units, matrices={}, estimates=[], comparisons=comps, graders=["math_verify"])


def test_grid_cells_holm_and_claims(analysis: Analysis, tmp_path: Path) -> None:
    claimed = [
        ClaimedGain("qwen", "random", "math500", 21.4, "SR-v1", 300, "v1.q.r"),
        ClaimedGain("qwen", "random", "math500", 24.6, "SR-preprint", 150, "pre.q.r"),
        ClaimedGain("olmo", "random", "math500", -1.2, "SR-v1", 300, "v1.o.r"),
        ClaimedGain("qwen", "random", "aime24", 6.1, "SR-v1", 300, "v1.q.r.aime"),
    ]
    grids = build_grids(
        analysis,
        claimed=claimed,
        family_order=["qwen", "llama", "olmo"],
        default_prompt={"qwen": "qwen_math_default", "llama": "model_default"},
    )
    assert [(g.task, g.grader) for g in grids] == [("math500", "math_verify"), ("aime24", "")]
    grid = grids[0]
    assert grid.families == ["qwen", "llama", "olmo"]
    assert grid.rewards == ["ground_truth", "random"]
    # the default-prompt comparison at the highest step wins over the no_template one at step 300
    cell = grid.measured[("qwen", "random")]
    assert cell.comparison.delta == pytest.approx(0.20) and cell.step == 150
    # Holm over the 3 measured cells: sorted p 0.001, 0.02, 0.03 -> 0.003, 0.04, 0.04
    assert cell.p_holm == pytest.approx(0.003)
    assert grid.measured[("qwen", "ground_truth")].p_holm == pytest.approx(0.04)
    assert grid.measured[("llama", "random")].p_holm == pytest.approx(0.04)
    assert all(m.significant for m in grid.measured.values())
    assert {g.version for g in grid.claimed[("qwen", "random")]} == {"SR-v1", "SR-preprint"}

    md = render_blocks(grid_blocks(grid))
    # the significance star is escaped text in the Markdown
    assert "| QWEN | **+25.0** [+21.0, +29.0] \\* | **+20.0** [+16.0, +24.0] \\*<br>_claimed +24.6 (SR-preprint" in md
    assert "+21.4 (SR-v1, step 300)" in md
    assert "| olmo | – | _claimed -1.2 (SR-v1, step 300)_ |" in md

    frame = grid_frame(grids)
    measured = frame[frame.kind == "measured"]
    assert len(measured) == 3 and set(frame[frame.kind == "claimed"].version) == {"SR-v1", "SR-preprint"}
    row = measured[(measured.family == "qwen") & (measured.reward == "random")].iloc[0]
    assert row.gain == pytest.approx(20.0) and row.step == 150 and row.prompt == "qwen_math_default"

    png = heatmap(grid, tmp_path / "figures" / figure_name(grid))
    assert png.name == "cross_family_math500_math_verify_avgat1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    claims_only = heatmap(grids[1], tmp_path / "figures" / figure_name(grids[1]))
    assert claims_only.name == "cross_family_aime24_claimed_SR-v1.png" and claims_only.stat().st_size > 1000


def test_not_significant_after_holm(analysis: Analysis) -> None:
    # p = 0.03 alone is significant; as the smallest of three p-values Holm multiplies it by 3
    comps = [c for c in analysis.comparisons if c.p_value in (0.2, 0.03)]
    comps.append(comps[0].model_copy(update={"p_value": 0.04, "treatment_unit": analysis.units[5].key}))
    grids = build_grids(Analysis(units=analysis.units, matrices={}, estimates=[], comparisons=comps, graders=[]))
    cells = grids[0].measured
    assert cells[("llama", "random")].p_holm == pytest.approx(0.09)
    assert not any(m.significant for m in cells.values())
