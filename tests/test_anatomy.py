"""Gain anatomy: exact parts by behaviour class, the transition table, the report section, real generations."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from testbed import DATA, ROOT, TOY_REGISTRY, needs_data
from typer.testing import CliRunner

from rlvr_audit.analysis import stats
from rlvr_audit.analysis.anatomy import ComparisonAnatomy, gain_anatomy
from rlvr_audit.analysis.anatomy_sections import (
    ANATOMY_COLUMNS,
    anatomy_figure,
    anatomy_frame,
    anatomy_section,
    anatomy_summary,
)
from rlvr_audit.analysis.behaviour import BEHAVIOUR_CLASSES
from rlvr_audit.cli import app
from rlvr_audit.core.records import Comparison, Generation
from rlvr_audit.generation.engines.scripted import cut_at_limit
from rlvr_audit.report.markdown import render_blocks

REAL = ROOT.parent / "shared" / "data" / "real_generations" / "sky-t1"

DEG = "The answer is seven. " * 12  # degenerate repetition, no box
CLEAN = "We reason step by step.\nSo the answer is $\\boxed{1}$."
CODE = "Let me compute.\n```python\nx = 1\nprint(x)\n```\nSo the answer is $\\boxed{1}$."
NOANS = "I am not sure what the answer is."
CUT = "We expand the product step by step and collect the terms of"  # cut at the limit (finish length)


def gen(unit: str, problem: str, sample: int, completion: str, finish: str = "stop") -> Generation:
    return Generation(
        unit_key=unit,
        checkpoint_id=unit,
        task="aime24",
        problem_id=problem,
        template_id="no_template",
        sample_idx=sample,
        seed=sample,
        prompt="Q",
        prompt_hash="h",
        completion=completion,
        finish_reason=finish,  # type: ignore[arg-type]
        n_tokens=None if finish == "unknown" else len(completion.split()),
        backend="scripted",
    )


# per problem, two samples: (text, finish reason, correct)
BASE = {
    "p0": [(DEG, "stop", False), (DEG, "stop", False)],  # degenerate, 0
    "p1": [(DEG, "stop", False), (CLEAN, "stop", True)],  # tie -> degenerate, 1/2
    "p2": [(CLEAN, "stop", True), (CLEAN, "stop", True)],  # clean, 1
    "p3": [(CLEAN, "stop", False), (CLEAN, "stop", True)],  # clean, 1/2
    "p4": [(NOANS, "stop", False), (NOANS, "stop", False)],  # no_answer, 0
    "p5": [(CUT, "length", False), (CLEAN, "stop", False)],  # tie -> truncated, 0
}
RLVR = {
    "p0": [(CLEAN, "stop", True), (CLEAN, "stop", True)],  # clean, 1
    "p1": [(CLEAN, "stop", True), (CLEAN, "stop", False)],  # clean, 1/2
    "p2": [(CLEAN, "stop", True), (DEG, "stop", False)],  # tie -> degenerate, 1/2
    "p3": [(CODE, "stop", True), (CODE, "stop", True)],  # code, 1
    "p4": [(CLEAN, "stop", True), (NOANS, "stop", False)],  # tie -> no_answer, 1/2
    "p5": [(CLEAN, "stop", True), (CLEAN, "stop", True)],  # clean, 1
}


Plan = dict[str, list[tuple[str, str, bool]]]


def side(unit: str, plan: Plan) -> tuple[list[Generation], dict[tuple[str, int], bool]]:
    gens = [gen(unit, p, i, text, finish) for p, rows in plan.items() for i, (text, finish, _) in enumerate(rows)]
    correct = {(p, i): ok for p, rows in plan.items() for i, (_, _, ok) in enumerate(rows)}
    return gens, correct


def test_parts_are_exact_and_add_up_to_the_gain() -> None:
    base, base_ok = side("base", BASE)
    rlvr, rlvr_ok = side("rlvr", RLVR)
    an = gain_anatomy(
        base, rlvr, base_correct=base_ok, rlvr_correct=rlvr_ok, rng=np.random.default_rng(0), n_resamples=2000
    )
    # per-problem differences +1, 0, -1/2, +1/2, +1/2, +1 over 6 problems
    assert an.n_problems == 6 and an.gain == Fraction(5, 12)
    assert [p.before for p in an.problems] == ["degenerate", "degenerate", "clean", "clean", "no_answer", "truncated"]
    assert [p.after for p in an.problems] == ["clean", "clean", "degenerate", "code", "no_answer", "clean"]
    by_base = {p.before: p.contribution for p in an.by_base}
    assert by_base == {
        "degenerate": Fraction(1, 6),
        "truncated": Fraction(1, 6),
        "no_answer": Fraction(1, 12),
        "code": 0,
        "clean": 0,
    }
    by_rlvr = {p.after: p.contribution for p in an.by_rlvr}
    assert by_rlvr == {
        "degenerate": Fraction(-1, 12),
        "truncated": 0,
        "no_answer": Fraction(1, 12),
        "code": Fraction(1, 12),
        "clean": Fraction(1, 3),
    }
    # exactly, not up to rounding: every split sums to the gain, shares to 1
    for parts in (an.by_base, an.by_rlvr, an.transitions):
        assert sum(p.contribution for p in parts) == an.gain
        assert sum(p.share for p in parts if p.share is not None) == 1
        assert sum(p.n_problems for p in parts) == 6
    assert len(an.transitions) == len(BEHAVIOUR_CLASSES) ** 2
    cell = an.cell("degenerate", "clean")
    assert (cell.n_problems, cell.acc_before, cell.acc_after) == (2, Fraction(1, 4), Fraction(3, 4))
    assert cell.contribution == Fraction(1, 6) and cell.label == "degenerate -> clean"
    assert an.cell("clean", "degenerate").contribution == Fraction(-1, 12)
    assert an.degenerate_or_truncated == Fraction(1, 3) and an.n_degenerate_or_truncated == 3
    # every part's interval holds its value; an empty part's is [0, 0]
    for p in (*an.by_base, *an.by_rlvr, *an.transitions):
        assert p.interval.ci_low <= float(p.contribution) <= p.interval.ci_high
        if p.n_problems == 0:
            assert (p.interval.ci_low, p.interval.ci_high) == (0.0, 0.0)
    # gain on clean problems (p2, p3): -1/2 and +1/2
    assert an.clean.n_problems == 2 and an.clean.gain == 0
    assert an.clean.interval is not None and an.clean.p_value == pytest.approx(1.0)
    assert an.truncation_unknown_base == 0


def test_one_class_part_equals_the_total_and_clean_gain_uses_mcnemar() -> None:
    rng = np.random.default_rng(3)
    b_ok = rng.random(40) < 0.4
    t_ok = rng.random(40) < 0.7
    base = [gen("b", f"q{i}", 0, CLEAN, "unknown") for i in range(40)]
    rlvr = [gen("t", f"q{i}", 0, CLEAN, "unknown") for i in range(40)]
    an = gain_anatomy(
        base,
        rlvr,
        base_correct={(f"q{i}", 0): bool(v) for i, v in enumerate(b_ok)},
        rlvr_correct={(f"q{i}", 0): bool(v) for i, v in enumerate(t_ok)},
        rng=np.random.default_rng(1),
        n_resamples=1000,
    )
    assert an.gain == Fraction(int(t_ok.sum()) - int(b_ok.sum()), 40)
    clean = an.base_part("clean")
    assert clean.n_problems == 40 and clean.contribution == an.gain
    assert (clean.interval.ci_low, clean.interval.ci_high) == (an.gain_interval.ci_low, an.gain_interval.ci_high)
    assert an.clean.gain == an.gain and an.clean.test == stats.MCNEMAR_TEST
    assert an.clean.p_value == pytest.approx(stats.mcnemar_exact(b_ok, t_ok))
    iv = stats.paired_wilson_ci(b_ok[:, None], t_ok[:, None])
    assert an.clean.interval is not None and an.clean.interval.ci_low == pytest.approx(iv.ci_low)
    # imported: truncation unknown on both sides, said
    assert an.truncation_unknown_base == 40 and an.truncation_unknown_rlvr == 40
    with pytest.raises(ValueError, match="same unit"):
        gain_anatomy(base, base, base_correct={}, rlvr_correct={}, rng=np.random.default_rng(0))


def test_steps_of_a_run_sort_numerically_in_the_table_section_and_figure(tmp_path: Path) -> None:
    base, base_ok = side("base", BASE)
    rlvr, rlvr_ok = side("rlvr", RLVR)
    an = gain_anatomy(base, rlvr, base_correct=base_ok, rlvr_correct=rlvr_ok, rng=np.random.default_rng(0))
    items = []
    for step in (1000, 50, 200):
        c = Comparison(
            baseline="toy/base", treatment=f"toy/rl{step}", baseline_unit="base", treatment_unit=f"rl{step}",
            task="aime24", template_id="no_template", grader_id="math_verify", metric="avg@2",
            baseline_value=float(an.acc_before), treatment_value=float(an.acc_after), delta=float(an.gain),
            ci_low=-0.1, ci_high=0.8, level=0.95, method="mover-wilson", n_problems=6, seed=0,
        )  # fmt: skip
        items.append(ComparisonAnatomy(c, an, "toy", "random", step, "2 samples"))
    frame = anatomy_frame(items)
    assert list(dict.fromkeys(frame.step)) == [50, 200, 1000]
    section = anatomy_section(items)
    assert section is not None and [f.file for f in section.figures] == ["gain_anatomy_math_verify.png"]
    assert anatomy_figure(items, "math_verify", tmp_path / "f.png").stat().st_size > 5000


def _item(an: object, step: int) -> ComparisonAnatomy:
    c = Comparison(
        baseline="toy/base", treatment=f"toy/rl{step}", baseline_unit="base", treatment_unit=f"rl{step}",
        task="aime24", template_id="no_template", grader_id="math_verify", metric="avg@2",
        baseline_value=0.0, treatment_value=0.0, delta=0.0,
        ci_low=-0.1, ci_high=0.8, level=0.95, method="mover-wilson", n_problems=6, seed=0,
    )  # fmt: skip
    return ComparisonAnatomy(c, an, "toy", "random", step, "2 samples")  # type: ignore[arg-type]


def test_the_summary_lists_only_comparisons_with_degenerate_or_truncated_base_responses() -> None:
    base, base_ok = side("base", BASE)
    rlvr, rlvr_ok = side("rlvr", RLVR)
    with_loops = gain_anatomy(base, rlvr, base_correct=base_ok, rlvr_correct=rlvr_ok, rng=np.random.default_rng(0))
    clean_plan: Plan = {p: [(CLEAN, "stop", ok) for _, _, ok in rows] for p, rows in BASE.items()}
    cbase, cbase_ok = side("base", clean_plan)
    no_loops = gain_anatomy(cbase, rlvr, base_correct=cbase_ok, rlvr_correct=rlvr_ok, rng=np.random.default_rng(0))
    assert with_loops.n_degenerate_or_truncated == 3 and no_loops.n_degenerate_or_truncated == 0

    def text(items: list[ComparisonAnatomy]) -> str:
        return render_blocks(anatomy_summary(items))

    none = text([_item(no_loops, 1), _item(no_loops, 2)])
    assert "no base response was degenerate or truncated in the 2 comparisons" in none
    assert "comes from problems" not in none
    mixed = text([_item(with_loops, 1), _item(no_loops, 2), _item(no_loops, 3)])
    assert mixed.count("comes from problems where the base response was degenerate or truncated") == 1
    assert "(3 of 6 problems)" in mixed and "toy/rl1" in mixed and "toy/rl2" not in mixed
    assert "The other 2 comparisons: no degenerate or truncated base response." in mixed


def test_scripted_engine_cuts_at_the_word_limit() -> None:
    assert cut_at_limit("a  b\nc d", 3) == ("a  b\nc", 3, "length")
    assert cut_at_limit("a b", 3) == ("a b", 2, "stop")


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


LONG = " ".join(f"term{i}" for i in range(80))  # no repetition, no box: cut at 50 words


@needs_data
def test_report_section_figure_and_summary_from_a_store_with_known_classes(tmp_path: Path) -> None:
    (tmp_path / "checkpoints.yaml").write_text(TOY_REGISTRY)
    rows = [json.loads(line) for line in (DATA / "aime24.jsonl").read_text().splitlines()[:6]]
    gold = [r["answer"] for r in rows]
    boxed = [f"So the answer is $\\boxed{{{g}}}$." for g in gold]
    wrong = "So the answer is $\\boxed{999999}$."
    base = [DEG, DEG, LONG, boxed[3], wrong, NOANS]  # degenerate x2, truncated, clean right/wrong, no answer
    rl = [boxed[0], wrong, boxed[2], boxed[3], boxed[4], wrong]
    script = {
        "toy/base": {r["id"]: t for r, t in zip(rows, base, strict=True)},
        "toy/rl": {r["id"]: t for r, t in zip(rows, rl, strict=True)},
    }
    (tmp_path / "script.json").write_text(json.dumps(script))
    out = tmp_path / "report"
    r = invoke(
        "run", "--backend", "scripted", "--model-args", f"script={tmp_path / 'script.json'}", "--checkpoints",
        "toy/rl", "--tasks", "aime24", "--limit", "6", "--max-new-tokens", "50", "--quiet", "--data-dir", str(DATA),
        "--report-dir", str(out), "--config-dir", str(ROOT), "--registry", str(tmp_path / "checkpoints.yaml"),
        "--store", str(tmp_path / "store"),
    )  # fmt: skip
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    table = pd.read_csv(out / "tables" / "gain_anatomy.csv", keep_default_na=False)
    assert list(table.columns) == ANATOMY_COLUMNS
    for grader, rows_g in table.groupby("grader"):
        by_base = rows_g[rows_g.split == "base"].set_index("base_class")
        exact = {c: Fraction(v) for c, v in by_base.contribution_exact.items()}
        # p0 +1 (degenerate), p1 0 (degenerate), p2 +1 (truncated), p3 0, p4 +1 (clean), p5 0 (no answer)
        assert exact == {
            "degenerate": Fraction(1, 6),
            "truncated": Fraction(1, 6),
            "no_answer": 0,
            "code": 0,
            "clean": Fraction(1, 6),
        }, grader
        assert list(by_base.part_problems) == [2, 1, 1, 0, 2]
        for split in ("base", "trained", "transition"):
            assert sum(Fraction(v) for v in rows_g[rows_g.split == split].contribution_exact) == Fraction(1, 2)
        assert float(by_base.gain.iloc[0]) == pytest.approx(0.5)
    comparisons = pd.read_csv(out / "tables" / "comparisons.csv")
    assert set(comparisons.delta.round(9)) == {0.5}
    text = (out / "index.md").read_text()
    head = text.split("## ")[0]
    assert "+33.3 of the +50.0-point gain of **toy/rl**" in head
    assert "(3 of 6 problems)" in head
    assert "## Gain anatomy" in text and "| degenerate | clean | 2 | 0.0 | 50.0 |" in text
    assert "_Truncation unknown_" not in text  # scripted responses carry their finish reason
    assert (out / "figures" / "gain_anatomy_math_verify.png").stat().st_size > 5000


@pytest.mark.skipif(not REAL.is_dir() or not DATA.is_dir(), reason="../shared/data/real_generations is not here")
def test_real_generations_wrong_vs_correct_amc(tmp_path: Path) -> None:
    """Sky-T1 14B distilled on wrong vs correct traces, AMC 2023 (40 problems, greedy)."""
    store = ["--config-dir", str(ROOT), "--store", str(tmp_path / "store")]
    common = ["--temperature", "0", "--max-new-tokens", "32768", "--data-dir", str(DATA), "--quiet", *store]
    for name, extra in (
        ("correct", ["--reward", "correct-answers"]),
        ("wrong", ["--reward", "wrong-answers", "--base", "sky-t1/correct-14b"]),
    ):
        r = invoke(
            "import", "qwen-math-jsonl", str(REAL / f"Sky-T1-math-{name}-5K-14B.amc23.jsonl"), "--checkpoint",
            f"sky-t1/{name}-14b", "--family", "sky-t1", "--step", "5000", *extra, *common,
        )  # fmt: skip
        assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    r = invoke("grade", "--graders", "math_verify", "--quiet", *store)
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    out = tmp_path / "report"
    r = invoke("report", "--quiet", "--report-dir", str(out), *store)
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    table = pd.read_csv(out / "tables" / "gain_anatomy.csv", keep_default_na=False)
    by_base = table[table.split == "base"].set_index("base_class")
    assert set(table.checkpoint) == {"sky-t1/wrong-14b"} and set(table.n_problems) == {40}
    # measured: 55.0 -> 50.0; the 15 problems where the correct-trace model looped carry +5 points,
    # the 24 clean ones -10
    assert Fraction(by_base.gain.iloc[0]).limit_denominator(40) == Fraction(-1, 20)
    assert by_base.loc["degenerate", "part_problems"] == 15
    assert Fraction(by_base.loc["degenerate", "contribution_exact"]) == Fraction(1, 20)
    assert by_base.loc["clean", "part_problems"] == 24
    assert Fraction(by_base.loc["clean", "contribution_exact"]) == Fraction(-1, 10)
    assert sum(Fraction(v) for v in by_base.contribution_exact) == Fraction(-1, 20)
    text = (out / "index.md").read_text()
    assert "+5.0 of the -5.0-point gain" in text.split("## ")[0]
    assert "_Truncation unknown_" in text  # imported: no finish reason, said
