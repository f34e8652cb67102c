"""The lm-eval round trip, with the real `lm_eval` CLI, offline: `rlvr-audit task export` writes task
files, `lm_eval --include_path` runs them (`--log_samples`), `rlvr-audit import lm-eval-samples` reads
what it wrote, and grading agrees with lm-eval's own `exact_match` where the two rules agree.

Two engines: the tiny Qwen2 model through lm-eval's `hf` model (a chat template, `--limit 5`, CPU),
and lm-eval's `local-completions` model against a local server (tests/replay_server.py) that answers
each MATH-500 prompt with Sky-T1's published response (../shared/data/real_generations), so lm-eval's
filters and metrics run on 500 real long responses. About 2 minutes, most of it lm-eval starting.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.prompts import PromptTemplate, load_prompt, render
from rlvr_audit.core.records import stable_hash
from rlvr_audit.core.store import Store, UnitInfo
from rlvr_audit.core.tasks import load_problems, load_task
from rlvr_audit.grading.latex import matching_brace

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "benchmarks"
SKY_T1 = ROOT.parent / "shared" / "data" / "real_generations" / "sky-t1" / "Sky-T1-math-correct-5K-27B.math500.jsonl"
SERVER = Path(__file__).resolve().parent / "replay_server.py"
LM_EVAL = Path(sys.executable).with_name("lm_eval")
pytestmark = pytest.mark.skipif(not SKY_T1.is_file(), reason="../shared/data is not beside the project")


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def offline_env(tmp: Path) -> dict[str, str]:
    """The environment of an lm-eval run with no network: the Hub is never asked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp / "hf"))
    return env


def run_lm_eval(tmp: Path, *args: str) -> tuple[Path, Path]:
    """Run the `lm_eval` CLI; the samples file and the results file it wrote."""
    out = tmp / "lm_eval_out"
    proc = subprocess.run(
        [str(LM_EVAL), *args, "--log_samples", "--output_path", str(out)],
        cwd=tmp,
        env=offline_env(tmp),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    (samples,) = out.glob("*/samples_*.jsonl")
    (results,) = out.glob("*/results_*.json")
    return samples, results


def export(tmp: Path, *args: str) -> Path:
    out = tmp / "tasks"
    r = invoke("task", "export", "--data-dir", str(DATA), "--out", str(out), "--config-dir", str(ROOT), *args)
    assert r.exit_code == 0, r.output
    return out


def import_and_grade(samples: Path, store: Path, checkpoint: str) -> UnitInfo:
    loc = ("--config-dir", str(ROOT), "--store", str(store), "-q")
    r = invoke("import", "lm-eval-samples", str(samples), "--checkpoint", checkpoint, "--data-dir", str(DATA), *loc)
    assert r.exit_code == 0, r.output
    r = invoke("grade", "--graders", "boxed_strict,math_verify", *loc)
    assert r.exit_code == 0, r.output
    (unit,) = Store(store).units()
    return unit


def rows(samples: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()]


def rules_agree(text: str) -> bool:
    """Whether lm-eval's `last_boxed` filter (regex `\\boxed\\{(.*)\\}`, last match, greedy within one
    line) and boxed_strict (the last `\\boxed{}`/`\\fbox{}`, brace-matched) must find the same answer:
    no box at all, or a last `\\boxed{` that is the first on its line, closes on that line, and has no
    `}` after its closing brace on that line."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return "\\fbox{" not in text
    if "\\fbox{" in text[start:]:
        return False
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    close = matching_brace(text, start + len("\\boxed"))
    return (
        text.find("\\boxed{", line_start) == start
        and close is not None
        and close < line_end
        and "}" not in text[close + 1 : line_end]
    )


# ---- the tiny model through lm-eval's hf model, with a chat template ---------------------------------


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("lm-eval-tiny")
    tasks = export(tmp, "--tasks", "math500", "--prompt", "qwen_math_default")
    samples, results = run_lm_eval(
        tmp,
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model_dir},dtype=float32",
        "--device",
        "cpu",
        "--include_path",
        str(tasks),
        "--tasks",
        "math500",
        "--apply_chat_template",
        "--limit",
        "5",
        "--gen_kwargs",
        "max_gen_toks=16",
    )
    return {"tmp": tmp, "samples": samples, "results": results, "model": tiny_model_dir}


def test_lm_eval_sends_the_prompt_we_render(tiny_run: dict[str, Path]) -> None:
    """Offline, the exported task reads the local file and lm-eval's chat rendering of description +
    doc_to_text is, character for character, the prompt rlvr-audit renders with qwen_math_default."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_run["model"]))
    template = load_prompt("qwen_math_default", ROOT)
    problems = load_problems(load_task("math500", ROOT), data_dir=DATA)
    got = rows(tiny_run["samples"])
    assert [r["doc_id"] for r in got] == [0, 1, 2, 3, 4]
    for r in got:
        ours = render(template, "qwen_math_default", problems[r["doc_id"]], tokenizer=tokenizer).text
        assert r["arguments"]["gen_args_0"]["arg_0"] == ours
        assert r["target"] == problems[r["doc_id"]].answer
    assert "<|im_start|>system\nPlease reason step by step" in got[0]["arguments"]["gen_args_0"]["arg_0"]


def test_import_records_lm_eval_version_and_task_config_hash(tiny_run: dict[str, Path]) -> None:
    tmp = tiny_run["tmp"]
    unit = import_and_grade(tiny_run["samples"], tmp / "store", "tiny/lm-eval")
    results = json.loads(tiny_run["results"].read_text(encoding="utf-8"))
    assert unit.imported is not None
    assert unit.imported.tool_version == version("lm_eval") == results["lm_eval_version"]
    assert unit.imported.task_config_hash == stable_hash(results["configs"]["math500"])
    assert unit.spec.protocol.max_new_tokens == 16 and unit.spec.protocol.temperature == 0.0
    stored = {g.problem_id: g for g in Store(tmp / "store").read_generations(unit.key)}
    for r in rows(tiny_run["samples"]):
        g = stored[r["doc"]["id"]]
        assert (g.prompt, g.completion) == (r["arguments"]["gen_args_0"]["arg_0"], r["resps"][0][0])
    grades = {g.problem_id: g for g in Store(tmp / "store").read_grades(unit.key, "boxed_strict")}
    for r in rows(tiny_run["samples"]):
        if rules_agree(r["resps"][0][0]):
            assert r["filtered_resps"][0] == (grades[r["doc"]["id"]].extracted or "[invalid]")

    # without the results file beside it nothing is recorded; with a damaged one nothing is stored
    alone = tmp / "alone"
    alone.mkdir()
    shutil.copy(tiny_run["samples"], alone)
    unit = import_and_grade(alone / tiny_run["samples"].name, tmp / "store-alone", "tiny/lm-eval")
    assert unit.imported is not None and (unit.imported.tool_version, unit.imported.task_config_hash) == (None, None)
    (alone / tiny_run["results"].name).write_text("{not json", encoding="utf-8")
    r = invoke(
        "import", "lm-eval-samples", str(alone / tiny_run["samples"].name), "--checkpoint", "tiny/other",
        "--data-dir", str(DATA), "--config-dir", str(ROOT), "--store", str(tmp / "store-bad"), "-q",
    )  # fmt: skip
    assert r.exit_code == 2 and tiny_run["results"].name in r.output
    assert not (tmp / "store-bad").exists() or Store(tmp / "store-bad").units() == []


# ---- Sky-T1's published responses replayed through lm-eval's local-completions model -----------------


@pytest.fixture(scope="module")
def replay_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("lm-eval-replay")
    problems = load_problems(load_task("math500", ROOT), data_dir=DATA)
    template = load_prompt("no_template", ROOT)
    sky = [json.loads(line) for line in SKY_T1.read_text(encoding="utf-8").splitlines()]
    assert [s["question"].strip() for s in sky] == [p.question.strip() for p in problems]
    replies = {
        render(template, "no_template", p, tokenizer=None).text: s["code"][0]
        for p, s in zip(problems, sky, strict=True)
    }
    (tmp / "replies.json").write_text(json.dumps(replies), encoding="utf-8")
    command = [sys.executable, str(SERVER), str(tmp / "replies.json")]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("PORT "), line
        url = f"http://127.0.0.1:{int(line.split()[1])}/v1/completions"
        tasks = export(tmp, "--tasks", "math500")
        samples, results = run_lm_eval(
            tmp,
            "--model",
            "local-completions",
            "--model_args",
            f"base_url={url},model=replay,tokenizer_backend=none,tokenized_requests=False",
            "--include_path",
            str(tasks),
            "--tasks",
            "math500",
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    unit = import_and_grade(samples, tmp / "store", "sky-t1/correct-5k-27b")
    store = Store(tmp / "store")
    return {
        "rows": rows(samples),
        "results": json.loads(results.read_text(encoding="utf-8")),
        "sky": sky,
        "unit": unit,
        "grades": {
            grader: {g.problem_id: g for g in store.read_grades(unit.key, grader)}
            for grader in ("boxed_strict", "math_verify")
        },
    }


def test_replayed_responses_extract_as_lm_eval_does(replay_run: dict[str, Any]) -> None:
    """On 500 real long responses: lm-eval got back exactly the published text, and wherever its
    regex rule and boxed_strict's brace matching must agree they find the same answer."""
    got = replay_run["rows"]
    assert len(got) == 500
    boxed = replay_run["grades"]["boxed_strict"]
    agree = 0
    for r in got:
        text = r["resps"][0][0]
        assert text == replay_run["sky"][r["doc_id"]]["code"][0]
        if rules_agree(text):
            agree += 1
            assert r["filtered_resps"][0] == (boxed[r["doc"]["id"]].extracted or "[invalid]"), r["doc_id"]
    assert agree >= 490  # 499 of 500: one answer has a `}` after its box on the same line


def test_lm_eval_exact_match_implies_our_verdict(replay_run: dict[str, Any]) -> None:
    """lm-eval's exact_match is string equality after its filter: where it says 1, our graders
    (normalised strings, mathematical equivalence) say correct; and the unit keeps lm-eval's number."""
    got = replay_run["rows"]
    hits = [r for r in got if r["exact_match"] == 1.0]
    assert len(hits) >= 100
    for grader, grades in replay_run["grades"].items():
        wrong = [r["doc_id"] for r in hits if grades[r["doc"]["id"]].verdict != "correct"]
        assert wrong == [], (grader, wrong)
        correct = sum(g.verdict == "correct" for g in grades.values())
        assert correct >= len(hits)
    unit = replay_run["unit"]
    (metric,) = [m for m in unit.imported.metrics if m.name == "exact_match,last_boxed"]
    assert metric.value == pytest.approx(replay_run["results"]["results"]["math500"]["exact_match,last_boxed"])
    assert metric.value == pytest.approx(len(hits) / 500)


# ---- the exported files themselves -------------------------------------------------------------------


def test_export_writes_literal_templates_lm_eval_renders_exactly(tmp_path: Path) -> None:
    """Template text that looks like Jinja (`{{ }}`, `{% %}`, even `{% endraw %}`) and LaTeX braces
    reach lm-eval literally; the exported name overrides lm-eval's own task of that name (aime24)."""
    from lm_eval.tasks import TaskManager

    config = tmp_path / "config"
    shutil.copytree(ROOT / "tasks", config / "tasks")
    (config / "prompts").mkdir()
    hostile = "Solve {{ x }} {% if y %}\\boxed{} {% endraw %}{#c#}: {question}\n\nEnd \\frac{1}{2} "
    (config / "prompts" / "hostile.yaml").write_text(
        yaml.safe_dump({"description": "t", "chat": False, "text": hostile, "assistant_prefix": "Answer:"})
    )
    (config / "prompts" / "chatty.yaml").write_text(
        yaml.safe_dump({"description": "t", "chat": True, "system": "Sys {{ a }} \\boxed{}", "user": "Q: {question}"})
    )
    problems = load_problems(load_task("aime24", ROOT), data_dir=DATA)
    for prompt in ("hostile", "chatty"):
        out = tmp_path / prompt
        r = invoke("task", "export", "--data-dir", str(DATA), "--out", str(out), "--tasks", "aime24",
                   "--prompt", prompt, "--config-dir", str(config))  # fmt: skip
        assert r.exit_code == 0, r.output
        # lm-eval's own catalogue is indexed once (slow); the exported aime24 must win over its own
        manager = TaskManager(include_path=str(out), include_defaults=prompt == "hostile")
        task = manager.load(["aime24"])["tasks"]["aime24"]
        docs = list(task.eval_docs)
        assert len(docs) == 30 and task.config.dataset_path == "json" and task.config.repeats == 8
        template = PromptTemplate.model_validate(yaml.safe_load((config / "prompts" / f"{prompt}.yaml").read_text()))
        context = task.fewshot_context(docs[3], num_fewshot=0, gen_prefix=task.doc_to_prefix(docs[3]))
        if prompt == "hostile":  # raw: lm-eval's string is ours
            assert context == render(template, prompt, problems[3], tokenizer=None).text
        else:  # chat: the system turn and the user turn, as lm-eval hands them to the chat template
            assert task.resolve_field(docs[3], task.config.description) == "Sys {{ a }} \\boxed{}"
            assert task.doc_to_text(docs[3]) == "Q: " + problems[3].question


def test_export_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cases = [
        (("--data-dir", str(tmp_path), "--tasks", "math500"), "no data file for task 'math500'"),
        (("--data-dir", str(DATA), "--tasks", "nope"), "nope"),
        (("--data-dir", str(DATA), "--tasks", "math500", "--prompt", "nope"), "nope"),
        (("--data-dir", str(tmp_path / "missing")), "is not a folder"),
    ]
    for args, message in cases:
        r = invoke("task", "export", "--out", str(out), "--config-dir", str(ROOT), *args)
        assert r.exit_code == 2, r.output
        assert message in " ".join(r.output.split())
        assert not out.exists()
    r = invoke("task", "export", "--data-dir", str(DATA), "--out", str(out), "--config-dir", str(ROOT))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["aime24.yaml", "aime25.yaml", "amc.yaml", "math500.yaml"]


def test_question_from_the_first_field_present() -> None:
    """A task whose question is in one of several fields (question_field: [a, b]) reads the first present,
    as rlvr-audit does; literal text around it stays literal."""
    from lm_eval.utils import apply_template

    from rlvr_audit.generation.task_export import jinja_literal, question_jinja

    expr = question_jinja(["problem", "question"])
    assert apply_template(expr, {"problem": "P {{x}}", "question": "Q"}) == "P {{x}}"
    assert apply_template(expr, {"problem": None, "question": "Q"}) == "Q"
    assert apply_template(expr, {"question": "Q"}) == "Q"
    for text in ("", "{% endraw %}", "a {{ b }} {% raw %} c {# d #}\n", "\\frac{1}{2}}"):
        assert apply_template(jinja_literal(text), {}) == text
