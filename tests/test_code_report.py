"""Code-reasoning and behaviour-flag report sections end to end: hand-computed numbers, figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rlvr_audit.analysis import behaviour
from rlvr_audit.analysis import code_reasoning as code_report
from rlvr_audit.analysis.behaviour import BehaviourFlags, ResponseBehaviour
from rlvr_audit.analysis.behaviour_stats import summarize_unit, transition_table
from rlvr_audit.analysis.code_reasoning import (
    CODE_COLUMNS,
    FLAG_COLUMNS,
    STEP_COLUMNS,
    TRANSITION_COLUMNS,
    build_code_report,
)
from rlvr_audit.analysis.estimates import analyse
from rlvr_audit.cli import app
from rlvr_audit.core.errors import UnknownNameError
from rlvr_audit.core.records import Generation
from rlvr_audit.core.store import Store

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "benchmarks"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")

REGISTRY = """\
families:
  toy:
    display_name: Toy
    checkpoints:
      base:
        model: org/toy-base
        prompt: no_template
      rl50:
        model: org/toy-rl-50
        base: toy/base
        reward: random
        step: 50
        prompt: no_template
      rl100:
        model: org/toy-rl-100
        base: toy/base
        reward: random
        step: 100
        prompt: no_template
"""


def code(answer: str) -> str:
    return f"Let me compute.\n```python\nx = 1\nprint(x)\n```\nSo the answer is $\\boxed{{{answer}}}$."


def lang(answer: str) -> str:
    return f"We reason step by step.\nSo the answer is $\\boxed{{{answer}}}$."


def lang_python(answer: str) -> str:
    """Language only, but it mentions Python (code under the paper's rule only)."""
    return f"We could use Python, but reasoning suffices.\nSo the answer is $\\boxed{{{answer}}}$."


REPEAT = "The answer is seven. " * 12  # degenerate repetition, no boxed answer
EMPTY = ""
WRONG = "999999"

# Four AIME 2024 problems (a0..a3) with two samples each; R = the gold answer.
PLAN = {
    "toy/base": [
        [("code", "R"), ("code", "R")],
        [("code", "W"), ("lang", "R")],
        [("lang", "W"), ("lang", "W")],
        [("lang", "R"), ("empty", "")],
    ],
    "toy/rl50": [
        [("code", "R"), ("code", "R")],
        [("code", "R"), ("lang", "W")],
        [("code", "W"), ("lang", "W")],
        [("lang", "R"), ("lang", "R")],
    ],
    "toy/rl100": [
        [("code", "R"), ("code", "R")],
        [("code", "R"), ("code", "R")],
        [("code", "W"), ("lang_python", "R")],
        [("repeat", ""), ("lang", "R")],
    ],
}


def render(kind: str, mark: str, gold: str) -> str:
    answer = gold if mark == "R" else WRONG
    return {
        "code": lambda: code(answer),
        "lang": lambda: lang(answer),
        "lang_python": lambda: lang_python(answer),
        "repeat": lambda: REPEAT,
        "empty": lambda: EMPTY,
    }[kind]()


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def make_env(tmp: Path) -> dict[str, Path]:
    (tmp / "checkpoints.yaml").write_text(REGISTRY)
    rows = [json.loads(line) for line in (DATA / "aime24.jsonl").read_text().splitlines()[:4]]
    script = {
        ck: {
            r["id"]: [render(kind, mark, r["answer"]) for kind, mark in samples]
            for r, samples in zip(rows, plan, strict=True)
        }
        for ck, plan in PLAN.items()
    }
    (tmp / "script.json").write_text(json.dumps(script))
    return {"tmp": tmp, "registry": tmp / "checkpoints.yaml", "store": tmp / "store", "script": tmp / "script.json"}


def common(env: dict[str, Path]) -> list[str]:
    return ["--config-dir", str(ROOT), "--registry", str(env["registry"]), "--store", str(env["store"])]


def report(env: dict[str, Path], *extra: str) -> Path:
    """Write a report of the store into a new folder and return it."""
    out = env["tmp"] / "reports" / f"report{len(list((env['tmp'] / 'reports').glob('report*')))}"
    r = invoke("report", "--quiet", "--report-dir", str(out), *extra, *common(env))
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Base, step 50 and step 100 of one run, on four AIME 2024 problems with two samples."""
    env = make_env(tmp_path_factory.mktemp("code"))
    r = invoke(
        "run", "--backend", "scripted", "--model-args", f"script={env['script']}", "--checkpoints",
        "toy/rl50,toy/rl100", "--tasks", "aime24", "--limit", "4", "--samples", "2", "--quiet",
        "--data-dir", str(DATA), "--report-dir", str(env["tmp"] / "reports" / "run"), *common(env),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return env


@pytest.fixture(scope="module")
def out(env: dict[str, Path]) -> Path:
    return report(env)


def rows(frame: pd.DataFrame, **where: object) -> pd.DataFrame:
    for column, value in where.items():
        frame = frame[frame[column] == value]
    return frame


def test_code_frequency_and_accuracy_given_code(out: Path) -> None:
    table = pd.read_csv(out / "tables" / "code_reasoning.csv")
    assert list(table.columns) == CODE_COLUMNS
    assert len(table) == 6  # 3 units x 2 definitions x 1 grader
    got = rows(table, definition="code_lines").set_index("checkpoint")
    base, rl = got.loc["toy/base"], got.loc["toy/rl100"]
    # base: 3 code responses of 8, 2 of them right; 5 language responses (the empty one among
    # them), 2 right
    assert (base.n_responses, base.n_code, base.n_language) == (8, 3, 5)
    assert (base.code_frequency, base.accuracy, base.accuracy_code, base.accuracy_language) == pytest.approx(
        (3 / 8, 4 / 8, 2 / 3, 2 / 5)
    )
    assert base.code_minus_language == pytest.approx(2 / 3 - 2 / 5)
    # rl100: 5 code responses (4 right), 3 language ones (2 right)
    assert (rl.code_frequency, rl.accuracy, rl.accuracy_code, rl.accuracy_language) == pytest.approx(
        (5 / 8, 6 / 8, 4 / 5, 2 / 3)
    )
    assert got.loc["toy/rl50", "code_frequency"] == pytest.approx(4 / 8)
    # per-problem code shares of rl100 are [1, 1, .5, 0]: the mean of 4 draws is <= .125 with
    # probability .0195 and <= .25 with .074 (2.5% quantile .25); 1 with probability .0625
    assert (rl.code_ci_low, rl.code_ci_high) == pytest.approx((0.25, 1.0))
    # the paper's rule: every fenced python block says "python", and so does one language answer
    paper = rows(table, definition="mentions_python").set_index("checkpoint")
    assert paper.loc["toy/rl100", "code_frequency"] == pytest.approx(6 / 8)
    assert paper.loc["toy/base", "code_frequency"] == pytest.approx(3 / 8)
    # accuracy is the reproduction table's avg@2
    est = pd.read_csv(out / "tables" / "estimates.csv")
    avg = rows(est, metric="avg@2").set_index("unit_key")["value"]
    for r in table.itertuples():
        assert r.accuracy == pytest.approx(avg[r.unit_key])


def test_transition_table_cells_and_shares(out: Path) -> None:
    table = pd.read_csv(out / "tables" / "code_transitions.csv")
    assert list(table.columns) == TRANSITION_COLUMNS
    t = rows(table, checkpoint="toy/rl100", definition="code_lines").set_index("transition")
    assert list(t.index) == ["Code->Code", "Code->Lang", "Lang->Code", "Lang->Lang"]
    assert set(t.base) == {"toy/base"} and set(t.n_problems) == {4}
    assert t.gain.iloc[0] == pytest.approx(0.75 - 0.5)
    # a0 stays code (1 -> 1); a1 goes language -> code (.5 -> 1); a2 (0 -> .5) and a3 (.5 -> .5)
    # stay language (a2's two samples split 1-1: a tie is language)
    assert t.cell_problems.tolist() == [1, 0, 1, 2]
    assert t.loc["Lang->Code", ["cell_acc_before", "cell_acc_after", "contribution", "share"]].tolist() == (
        pytest.approx([0.5, 1.0, 0.125, 0.5])
    )
    assert t.loc["Lang->Lang", ["cell_acc_before", "cell_acc_after", "contribution", "share"]].tolist() == (
        pytest.approx([0.25, 0.5, 0.125, 0.5])
    )
    assert t.loc["Code->Code", ["contribution", "share"]].tolist() == pytest.approx([0.0, 0.0])
    assert pd.isna(t.loc["Code->Lang", "cell_acc_before"])
    # under the paper's rule a2 is code after RLVR too (both of its samples mention Python)
    p = rows(table, checkpoint="toy/rl100", definition="mentions_python").set_index("transition")
    assert p.cell_problems.tolist() == [1, 0, 2, 1]
    assert p.loc["Lang->Code", ["cell_acc_before", "cell_acc_after", "share"]].tolist() == pytest.approx(
        [0.25, 0.75, 1.0]
    )
    # step 50: everything but a0 stays language, and explains the whole gain
    s = rows(table, checkpoint="toy/rl50", definition="code_lines").set_index("transition")
    assert s.cell_problems.tolist() == [1, 0, 0, 3]
    assert s.loc["Lang->Lang", "share"] == pytest.approx(1.0)


def test_steps_table_and_figure(out: Path) -> None:
    steps = pd.read_csv(out / "tables" / "code_steps.csv")
    assert list(steps.columns) == STEP_COLUMNS
    assert steps.step.tolist() == [0, 50, 100]
    assert steps.checkpoint.tolist() == ["toy/base", "toy/rl50", "toy/rl100"]
    assert steps.code_frequency.tolist() == pytest.approx([3 / 8, 4 / 8, 5 / 8])
    assert steps.accuracy.tolist() == pytest.approx([4 / 8, 5 / 8, 6 / 8])
    assert set(steps.reward) == {"random"} and set(steps.definition) == {"code_lines"}
    figure = out / "figures" / "code_steps_toy_random_aime24_no_template_math_verify.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_behaviour_flags(out: Path) -> None:
    flags = pd.read_csv(out / "tables" / "behaviour_flags.csv")
    assert list(flags.columns) == FLAG_COLUMNS
    got = flags.set_index("checkpoint")
    assert got.loc["toy/base", ["empty_rate", "boxed_nothing_rate", "repetition_rate"]].tolist() == pytest.approx(
        [1 / 8, 1 / 8, 0.0]
    )
    assert got.loc["toy/rl100", ["empty_rate", "boxed_nothing_rate", "repetition_rate"]].tolist() == pytest.approx(
        [0.0, 1 / 8, 1 / 8]
    )
    # the scripted engine never runs out of tokens: a rate of 0 on every problem, zero width
    assert set(flags.truncation_rate) == {0.0} and set(flags.truncation_ci_high) == {0.0}
    # tokens: the scripted engine counts whitespace-separated words
    store = Store(out.parents[1] / "store")
    for r in flags.itertuples():
        gens = store.read_generations(r.unit_key)
        assert r.mean_tokens == pytest.approx(np.mean([len(g.completion.split()) for g in gens]))
        assert r.n_responses == r.n_tokens_known == 8


def test_sections_in_the_report(out: Path) -> None:
    md = (out / "index.md").read_text()
    assert "## Code reasoning" in md and "## Behaviour flags" in md
    code_md = md.split("## Code reasoning", 1)[1].split("\n## ", 1)[0]
    assert "| toy/rl100 | aime24 | `no_template` | 8 | 62.5 [25.0, 100.0] | 75.0 [" in code_md
    assert "(n=5)" in code_md and "(n=3)" in code_md  # code and language responses of rl100
    assert "**toy/rl100** vs toy/base · aime24 · `no_template`" in code_md and "+25.0 points over 4 problems" in code_md
    assert "| Lang->Code | 1 | 50.0 | 100.0 | +12.5 | 50.0 |" in code_md
    assert "### Across training steps" in code_md and "(figures/code_steps_toy_random_aime24" in code_md
    flags_md = md.split("## Behaviour flags", 1)[1].split("\n## ", 1)[0]
    assert "| toy/rl100 | aime24 | `no_template` | 8 | 0.0 [0.0, 0.0] | 12.5 [" in flags_md


def test_each_response_is_classified_once(env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, int]] = []
    original = behaviour.response_behaviour

    def counted(g: Generation) -> ResponseBehaviour:
        calls.append((g.unit_key, g.problem_id, g.sample_idx))
        return original(g)

    def forbidden(g: Generation) -> ResponseBehaviour:
        raise AssertionError("a summary classified a response again")

    monkeypatch.setattr(code_report, "response_behaviour", counted)
    monkeypatch.setattr(behaviour, "response_behaviour", forbidden)
    monkeypatch.setenv("RLVR_AUDIT_COLUMN_CACHE", "0")  # else the classification comes from the store's cache
    store = Store(env["store"])
    result = build_code_report(analyse(store, n_resamples=200), store, n_resamples=200)
    assert len(calls) == len(set(calls)) == 24  # 3 units x 4 problems x 2 samples, once each
    assert len(result.code) == 6 and len(result.transitions) == 4 and len(result.steps) == 1


def test_selection_and_determinism(env: dict[str, Path]) -> None:
    first = report(env, "--checkpoints", "toy/rl100")
    table = pd.read_csv(first / "tables" / "code_reasoning.csv")
    assert set(table.checkpoint) == {"toy/rl100"}  # only the selected unit is listed ...
    transitions = pd.read_csv(first / "tables" / "code_transitions.csv")
    assert set(transitions.base) == {"toy/base"}  # ... but it is still compared with its base
    assert not (first / "tables" / "code_steps.csv").exists()  # one step selected: no series
    again = report(env, "--checkpoints", "toy/rl100")
    for name in ("code_reasoning.csv", "code_transitions.csv", "behaviour_flags.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(first / "tables" / name), pd.read_csv(again / "tables" / name))
    narrow = pd.read_csv(report(env, "--checkpoints", "toy/rl100", "--level", "0.5") / "tables" / "code_reasoning.csv")
    assert set(narrow.level) == {0.5}
    row = rows(narrow, definition="code_lines").iloc[0]
    # shares [1, 1, .5, 0]: the mean of 4 draws is <= .375 with probability .18 and <= .5 with .375,
    # <= .625 with .59 and <= .75 with .81: quartiles .5 and .75
    assert (row.code_ci_low, row.code_ci_high) == pytest.approx((0.5, 0.75))


def test_ungraded_units_get_flags_but_no_code_accuracy(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    r = invoke(
        "generate", "--backend", "scripted", "--model-args", f"script={env['script']}", "--checkpoints", "toy/base",
        "--tasks", "aime24", "--limit", "4", "--samples", "2", "--quiet", "--data-dir", str(DATA), *common(env),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    out = report(env)
    md = (out / "index.md").read_text()
    assert "## Behaviour flags" in md and "## Code reasoning" not in md
    assert pd.read_csv(out / "tables" / "behaviour_flags.csv").empty_rate.tolist() == pytest.approx([1 / 8])
    assert not (out / "tables" / "code_reasoning.csv").exists()


def test_bad_options(env: dict[str, Path]) -> None:
    store = Store(env["store"])
    analysis = analyse(store, n_resamples=200)
    with pytest.raises(UnknownNameError, match="valid code definitions: code_lines, mentions_python"):
        build_code_report(analysis, store, definitions=("python_words",))
    with pytest.raises(ValueError, match="definitions is empty; valid: code_lines, mentions_python"):
        build_code_report(analysis, store, definitions=())
    with pytest.raises(ValueError, match="level"):
        build_code_report(analysis, store, level=95)


def test_summaries_use_given_behaviours() -> None:
    """summarize_unit and transition_table take precomputed classifications instead of redoing them."""

    def gen(unit: str, pid: str, text: str) -> Generation:
        return Generation(
            unit_key=unit, checkpoint_id=unit, task="t", problem_id=pid, template_id="x", sample_idx=0, seed=0,
            prompt="q", prompt_hash="h", completion=text, finish_reason="stop", n_tokens=3, backend="scripted",
        )  # fmt: skip

    gens = [gen("u1", f"p{i}", "plain words") for i in range(4)]
    flags = BehaviourFlags(truncated=False, repetition=False, empty=False, boxed_nothing=True, n_tokens=3)
    said_code = {("p0", 0): ResponseBehaviour("p0", 0, {"code_lines": True, "mentions_python": False}, flags)}
    s = summarize_unit(gens, rng=np.random.default_rng(0), n_resamples=100, behaviours=said_code)
    assert s.n_code == 1 and s.code_frequency.value == pytest.approx(0.25)
    assert summarize_unit(gens, rng=np.random.default_rng(0), n_resamples=100).n_code == 0
    other = [gen("u2", f"p{i}", "plain words") for i in range(4)]
    ok = {(f"p{i}", 0): True for i in range(4)}
    t = transition_table(gens, other, base_correct=ok, rlvr_correct=ok, base_behaviours=said_code)
    assert t.cell("code", "language").n_problems == 1


def test_worker_processes_give_the_same_report(env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(env["store"])
    analysis = analyse(store, n_resamples=300)
    alone = build_code_report(analysis, store, n_resamples=300, workers=1)
    monkeypatch.setattr(code_report, "PARALLEL_MIN_BYTES", 0)  # this small store would stay in-process
    pooled = build_code_report(analysis, store, n_resamples=300, workers=2)
    for frame in (code_report.code_frame, code_report.flags_frame, code_report.transitions_frame):
        pd.testing.assert_frame_equal(frame(alone), frame(pooled))
    pd.testing.assert_frame_equal(code_report.steps_frame(alone), code_report.steps_frame(pooled))
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        build_code_report(analysis, store, workers=0)


def test_the_strategy_table_is_not_repeated_per_grader(env: dict[str, Path], tmp_path: Path) -> None:
    """Whether a response reasons in code does not depend on the grader: on main the whole per-unit
    table (code rates included) came once per grader; now the rates come once per unit and only the
    accuracies per grader."""
    copy = {**env, "store": tmp_path / "store", "tmp": tmp_path}
    shutil.copytree(env["store"], copy["store"])
    (tmp_path / "reports").mkdir()
    r = invoke("grade", "--graders", "boxed_strict", "--workers", "1", "--quiet", "--store", str(copy["store"]))
    assert r.exit_code == 0, r.output
    md = (report(copy) / "index.md").read_text()
    code_md = md.split("## Code reasoning", 1)[1].split("\n## ", 1)[0]
    assert code_md.count("| toy/rl100 | aime24 | `no_template` | 8 | 62.5 [25.0, 100.0] | 75.0 [") == 1
    accuracy = code_md.split("### Accuracy by strategy, per grader", 1)[1].split("\n### ", 1)[0]
    rl100 = [line for line in accuracy.splitlines() if line.startswith("| toy/rl100 |")]
    assert [line.split(" | ")[3] for line in rl100] == ["`math_verify`", "`boxed_strict`"]
    assert "Per unit, grader" not in code_md
