"""The clean synthetic benchmark: reproducible from its seed, exact gold answers our graders accept,
bad settings refused, and the task running through the same pipeline and table as MATH-500."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from testbed import DATA, ROOT
from testbed import TOY_REGISTRY as REGISTRY
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core import synthetic
from rlvr_audit.core.errors import UsageError
from rlvr_audit.core.synthetic import SynthConfig, generate_rows, gold_answer, jsonl_bytes, make_config
from rlvr_audit.core.tasks import data_hash, load_problems, load_task
from rlvr_audit.grading import GRADERS, get_grader

SYNTH_ARITH_SHA256 = "cbf388c86ebec739e167a5920b46d7a51d59ac66108d17a364b1d4d7b7b4156f"
"""SHA-256 of the file of tasks/synth_arith.yaml (generator v1). If a change to the generator moves
it, bump GENERATOR_VERSION (a new task version) and update this pin."""


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _value(answer: str) -> Fraction:
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", answer)
    if m:
        return Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)
    assert re.fullmatch(r"-?\d+", answer), answer
    return Fraction(int(answer))


def test_the_task_file_is_the_same_everywhere(tmp_path: Path) -> None:
    """Two users (two calls, two files) get byte-identical files; the hash is pinned."""
    a = invoke("task", "synth", "--out", str(tmp_path / "a.jsonl"), "--config-dir", str(ROOT))
    b = invoke("task", "synth", "--out", str(tmp_path / "b.jsonl"), "--config-dir", str(ROOT))
    assert a.exit_code == 0 and b.exit_code == 0, a.output
    data_a, data_b = (tmp_path / "a.jsonl").read_bytes(), (tmp_path / "b.jsonl").read_bytes()
    assert data_a == data_b
    assert hashlib.sha256(data_a).hexdigest() == SYNTH_ARITH_SHA256
    assert f"sha256 {SYNTH_ARITH_SHA256}" in a.output
    # the task generates the same problems as the file holds, hence one data hash on every machine
    spec = load_task("synth_arith", ROOT)
    problems = load_problems(spec)
    rows = [json.loads(line) for line in data_a.decode().splitlines()]
    assert [(p.problem_id, p.question, p.answer) for p in problems] == [
        (r["id"], r["problem"], r["answer"]) for r in rows
    ]
    assert data_hash(problems) == data_hash(load_problems(spec, data_dir=tmp_path))  # a data dir is ignored


def test_seed_and_settings_change_the_problems() -> None:
    base = jsonl_bytes(generate_rows(SynthConfig(n=40)))
    assert jsonl_bytes(generate_rows(SynthConfig(n=40))) == base
    assert jsonl_bytes(generate_rows(SynthConfig(n=40, seed=1))) != base
    assert jsonl_bytes(generate_rows(SynthConfig(n=40, operand_max=30))) != base
    # more problems: the first ones stay the same
    assert jsonl_bytes(generate_rows(SynthConfig(n=80))).startswith(base)


def test_generator_version_is_in_the_ids_and_the_data_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_task("synth_arith", ROOT)
    v1 = load_problems(spec)
    assert all(p.problem_id.startswith("v1-") for p in v1)
    assert {p.metadata["generator"] for p in v1} == {f"arithmetic-v1:{spec.settings.generator.config_hash}"}  # type: ignore[union-attr]
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", 2)
    rows = generate_rows(SynthConfig(version=2, n=3))
    assert [r["id"] for r in rows] == ["v2-0000", "v2-0001", "v2-0002"]
    # a task written for version 1 is refused by a generator of another version
    with pytest.raises(UsageError, match="this rlvr-audit generates version 2"):
        load_task("synth_arith", ROOT).settings.generator  # noqa: B018  (loads and validates)
    monkeypatch.undo()
    v2_hash = data_hash([p.model_copy(update={"problem_id": "v2" + p.problem_id[2:]}) for p in v1])
    assert v2_hash != data_hash(v1)


@pytest.mark.parametrize("grader_id", sorted(GRADERS))
def test_every_grader_accepts_every_gold_answer(grader_id: str) -> None:
    problems = load_problems(load_task("synth_arith", ROOT))
    grader = get_grader(grader_id)
    wrong = []
    for p in problems:
        right = grader.grade(completion=f"So the value is $\\boxed{{{p.answer}}}$.", gold=p.answer, truncated=False)
        off = gold_answer(_value(p.answer) + 1)
        miss = grader.grade(completion=f"So the value is $\\boxed{{{off}}}$.", gold=p.answer, truncated=False)
        if right.verdict != "correct" or miss.verdict != "incorrect":
            wrong.append((p.problem_id, p.answer, right.verdict, miss.verdict))
    assert wrong == []


def test_the_written_expression_has_the_gold_value() -> None:
    """The LaTeX shown to the model evaluates (by math-verify's parser, independently of our
    Fraction arithmetic) to the gold answer: parentheses and operator order are right."""
    import sympy
    from math_verify import parse

    for row in generate_rows(SynthConfig(n=60, seed=3)):
        expr = str(row["problem"]).split("\n\n", 1)[1]
        parsed = parse(expr)
        assert parsed, expr
        value = float(sympy.N(parsed[0], 40))
        gold = _value(str(row["answer"]))
        assert value == pytest.approx(float(gold), rel=1e-12, abs=1e-12), (expr, row["answer"])


def test_steps_operands_and_bounds() -> None:
    cfg = SynthConfig(n=60, min_steps=2, max_steps=5, operand_min=1, operand_max=9, decimal_share=0.0)
    rows = generate_rows(cfg)
    assert [r["steps"] for r in rows[:8]] == [2, 3, 4, 5, 2, 3, 4, 5]  # stratified
    for r in rows:
        expr = str(r["problem"]).split("\n\n", 1)[1]
        ops = len(re.findall(r" (?:\+|-|\\times|\\div) ", expr))
        assert ops == r["steps"], expr
        assert "." not in expr  # no decimals asked for
        assert all(1 <= int(x) <= 9 for x in re.findall(r"(?<![\d{])(\d+)(?![\d}])", expr))
        value = _value(str(r["answer"]))
        assert abs(value.numerator) <= synthetic.MAX_NUMERATOR and value.denominator <= synthetic.MAX_DENOMINATOR
    ints = generate_rows(SynthConfig(n=30, fraction_share=0.0, decimal_share=0.0, min_steps=1, max_steps=1))
    assert not any("frac" in str(r["problem"]).split("\n\n", 1)[1] for r in ints)


def test_gold_answer_forms() -> None:
    assert [gold_answer(Fraction(x)) for x in ("12", "-12", "7/3", "-7/3", "0")] == [
        "12",
        "-12",
        "\\frac{7}{3}",
        "-\\frac{7}{3}",
        "0",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-steps", "0"], "--min-steps must be in 1..20, got 0"),
        (["--max-steps", "21"], "--max-steps must be in 1..20, got 21"),
        (["--n", "0"], "--n must be in 1..100000, got 0"),
        (["--seed", "-1"], "--seed must be in >= 0, got -1"),
        (["--operand-min", "5", "--operand-max", "1"], "--operand-min (5) must be <= --operand-max (1)"),
        (["--min-steps", "6", "--max-steps", "3"], "--min-steps (6) must be <= --max-steps (3)"),
        (["--max-denominator", "1"], "--max-denominator must be in 2..1000, got 1"),
        (["--fraction-share", "0.8", "--decimal-share", "0.5"], "--fraction-share + --decimal-share must be <= 1"),
        (["--operand-min", "0", "--operand-max", "0"], "only holds zero"),
        (["--task", "math500"], "task 'math500' is not synthetic"),
        (["--task", "nope"], "unknown task 'nope'"),
        (["--write-task", "Bad-Name"], "--write-task must be a task id"),
        (["--write-task", "math500"], "math500.yaml exists"),
    ],
)
def test_bad_settings_exit_2_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    r = invoke("task", "synth", "--out", str(tmp_path / "out.jsonl"), "--config-dir", str(ROOT), *args)
    assert r.exit_code == 2
    assert message in " ".join(r.output.split())
    assert not (tmp_path / "out.jsonl").exists()


def test_make_config_names_the_option() -> None:
    with pytest.raises(UsageError, match=r"--decimal-places must be in 1\.\.4, got 9"):
        make_config(decimal_places=9)


def test_write_task_registers_a_variant(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    shutil.copy(ROOT / "tasks" / "synth_arith.yaml", tmp_path / "tasks")
    r = invoke(
        "task",
        "synth",
        "--out",
        str(tmp_path / "easy.jsonl"),
        "--seed",
        "7",
        "--n",
        "25",
        "--max-steps",
        "3",
        "--write-task",
        "synth_easy",
        "--config-dir",
        str(tmp_path),
    )
    assert r.exit_code == 0, r.output
    spec = load_task("synth_easy", tmp_path)
    assert spec.settings.generator is not None and spec.settings.generator.seed == 7
    assert spec.settings.expected_size == 25
    problems = load_problems(spec)
    rows = [json.loads(line) for line in (tmp_path / "easy.jsonl").read_text().splitlines()]
    assert [p.question for p in problems] == [r["problem"] for r in rows] and len(rows) == 25
    assert max(p.metadata["steps"] for p in problems) == 3
    assert yaml.safe_load((tmp_path / "tasks" / "synth_easy.yaml").read_text())["task"] == "synth_easy"
    again = invoke(
        "task", "synth", "--out", str(tmp_path / "x.jsonl"), "--write-task", "synth_easy", "--config-dir", str(tmp_path)
    )
    assert again.exit_code == 2 and "exists" in again.output


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")
def test_gain_on_math500_and_on_clean_problems_is_one_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The synthetic task runs through the same generation, grading, statistics and report as
    MATH-500: one reproduction table, a column per benchmark, the gain over base in each."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints.yaml").write_text(REGISTRY)
    math = [json.loads(line) for line in (DATA / "math500.jsonl").read_text().splitlines()[:4]]
    clean = load_problems(load_task("synth_arith", ROOT))[:4]

    def boxed(a: str) -> str:
        return f"The answer is $\\boxed{{{a}}}$."

    # MATH-500: base 1/4, rl 3/4 (+50); clean arithmetic: base 2/4, rl 2/4 (+0)
    script = {
        "toy/base": {
            **{r["id"]: boxed(r["answer"] if i < 1 else "999999") for i, r in enumerate(math)},
            **{p.problem_id: boxed(p.answer if i < 2 else "999999") for i, p in enumerate(clean)},
        },
        "toy/rl": {
            **{r["id"]: boxed(r["answer"] if i < 3 else "999999") for i, r in enumerate(math)},
            **{p.problem_id: boxed(p.answer if i in (1, 2) else "999999") for i, p in enumerate(clean)},
        },
    }
    (tmp_path / "script.json").write_text(json.dumps(script))
    r = invoke(
        "run",
        "--backend",
        "scripted",
        "--model-args",
        f"script={tmp_path / 'script.json'}",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500,synth_arith",
        "--limit",
        "4",
        "--config-dir",
        str(ROOT),
        "--registry",
        str(tmp_path / "checkpoints.yaml"),
        "--data-dir",
        str(DATA),
        "--store",
        str(tmp_path / "store"),
        "--workers",
        "1",
        "--no-browser",
        "--quiet",
    )
    assert r.exit_code == 0, r.output
    md = (tmp_path / "reports" / "audit" / "index.md").read_text()
    table = md.split("## Reproduction table: grader `math_verify`", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in table.splitlines() if line.startswith("| Checkpoint"))
    assert "MATH-500 (avg@1)" in header and "Clean arithmetic (avg@1)" in header
    rl_row = next(line for line in table.splitlines() if line.startswith("| rl "))
    math_cell, clean_cell = rl_row.split(" | ")[2:4]
    assert "75.0" in math_cell and "+50.0" in math_cell and "vs base" in math_cell
    assert "50.0" in clean_cell and "+0.0" in clean_cell and "vs base" in clean_cell


def test_task_yaml_loads_as_an_lm_eval_task(tmp_path: Path) -> None:
    """lm-eval users write the file with `rlvr-audit task synth`, then run the task YAML as is."""
    from lm_eval.tasks import TaskManager

    out = tmp_path / "synth_arith.jsonl"
    assert invoke("task", "synth", "--out", str(out), "--config-dir", str(ROOT)).exit_code == 0
    cfg = yaml.safe_load((ROOT / "tasks" / "synth_arith.yaml").read_text())
    cfg["dataset_kwargs"] = {"data_files": {"test": str(out)}}
    task = TaskManager(include_path=str(ROOT / "tasks"), include_defaults=False).load([cfg])["tasks"]["synth_arith"]
    docs = list(task.eval_docs)
    problems = load_problems(load_task("synth_arith", ROOT))
    assert len(docs) == 500
    assert task.doc_to_text(docs[7]) == problems[7].question
    assert str(task.doc_to_target(docs[7])) == problems[7].answer


def test_help_has_an_example() -> None:
    r = CliRunner().invoke(app, ["task", "synth", "--help"])
    assert r.exit_code == 0 and "Example:" in r.output
