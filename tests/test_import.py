"""`rlvr-audit import`: published generation files -> stored units, graded and reported.

Fixture files are built in tmp_path from real benchmark problems (../shared/data), in the
shapes the source tools write, with problems shuffled so that matching by position would fail.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from rlvr_audit.analysis.estimates import analyse
from rlvr_audit.analysis.reproduction import estimates_frame, imported_section
from rlvr_audit.cli import app
from rlvr_audit.core.records import Problem, natural_key
from rlvr_audit.core.store import Store, UnitInfo
from rlvr_audit.grading import GRADERS
from rlvr_audit.importers import FORMATS
from rlvr_audit.importers.matching import ProblemIndex, normalise, same_gold
from rlvr_audit.report.markdown import render_section

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
      rl:
        model: org/toy-rl
        base: toy/base
        reward: random
        step: 50
        prompt: no_template
      other:
        model: org/toy-other
        prompt: no_template
"""

QWEN_TOKENS = ("--max-new-tokens", "2048")
"""math_eval.py records no new-token limit: imports of its files state it (here its default)."""

WANTED_GRADERS = ["math_verify", "paper", "boxed_strict", "minerva"]
"""The graders the import -> grade -> report path must work with (those registered so far)."""


# ---- fixture builders ---------------------------------------------------------------------------
def rows(task: str, n: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """The first ``n`` problems of a task, shuffled (so file order != task order)."""
    out = [json.loads(line) for line in (DATA / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()[:n]]
    random.Random(seed).shuffle(out)
    return out


def chat_prompt(question: str) -> str:
    """A Qwen chat-formatted prompt with the problem inside (as eval_checkpoint.py renders it)."""
    return (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    )


def boxed(answer: str) -> str:
    return f"So the answer is $\\boxed{{{answer}}}$."


def spurious_file(
    path: Path,
    problems: list[dict[str, Any]],
    *,
    dataset: str = "MATH-500",
    k: int = 1,
    temperature: float = 0.0,
    correct: list[list[bool]] | None = None,
    metrics: dict[str, float] | None = None,
    model: str = "/ckpts/qwen2.5-math-7b",
    extra_items: tuple[dict[str, Any], ...] = (),
) -> Path:
    """An eval_checkpoint.py output file; ``correct[i][j]``: is sample j of problem i right."""
    correct = correct or [[i % 2 == 0] * k for i in range(len(problems))]
    meta = [
        {
            "prompt": chat_prompt(r["problem"]),
            "label": r["answer"],
            "index": i,
            "outputs": [boxed(r["answer"] if ok else "999999") for ok in correct[i]],
        }
        for i, r in enumerate(problems)
    ]
    meta += list(extra_items)
    avg = sum(sum(c) / k for c in correct) / len(correct)
    passk = sum(any(c) for c in correct) / len(correct)
    obj = {
        f"avg@{k}": avg,
        f"pass@{k}": passk,
        **(metrics or {}),
        "dataset": dataset,
        "model": model,
        "temperature": temperature,
        "rollouts": k,
        "gpu_type": "NVIDIA H100",
        "shards": 4,
        "metadata": meta,
    }
    path.write_text(json.dumps(obj, indent=4), encoding="utf-8")
    return path


def qwen_file(
    folder: Path,
    problems: list[dict[str, Any]],
    *,
    data_name: str = "aime24",
    k: int = 2,
    temperature: float = 0.6,
    start: int = 0,
    end: int = -1,
    acc: float | None = 50.0,
    name: str | None = None,
) -> Path:
    """A math_eval.py output file (+ its metrics file); problem i's samples alternate right/wrong."""
    out = folder / data_name
    out.mkdir(parents=True, exist_ok=True)
    stem = name or f"test_qwen25-math-cot_-1_seed0_t{temperature}_s{start}_e{end}"
    lines = []
    for i, r in enumerate(problems):
        ok = [(i + j) % 2 == 0 for j in range(k)]
        lines.append(
            json.dumps(
                {
                    "idx": start + i,
                    "question": r["problem"],
                    "gt_cot": "",
                    "gt": r["answer"],
                    "code": [boxed(r["answer"] if o else "1") for o in ok],
                    "pred": [r["answer"] if o else "1" for o in ok],
                    "report": [None] * k,
                    "score": ok,
                }
            )
        )
    path = out / f"{stem}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if acc is not None:
        (out / f"{stem}_qwen25-math-cot_metrics.json").write_text(
            json.dumps({"num_samples": len(problems), "acc": acc})
        )
    return path


def lm_eval_file(
    folder: Path,
    problems: list[dict[str, Any]],
    *,
    task_name: str = "math500",
    k: int = 1,
    gen_kwargs: dict[str, Any] | None = None,
    filters: tuple[str, ...] = ("last_boxed",),
) -> Path:
    """An lm-eval --log_samples file; doc i is right iff i is even; one line per doc and filter."""
    gen_kwargs = gen_kwargs if gen_kwargs is not None else {"until": [], "do_sample": False, "max_gen_toks": 3072}
    lines = []
    for doc_id, r in enumerate(problems):
        resps = [boxed(r["answer"] if doc_id % 2 == 0 else "999999")] * k
        for filt in filters:
            lines.append(
                json.dumps(
                    {
                        "doc_id": doc_id,
                        "doc": {"problem": r["problem"], "answer": r["answer"], "unique_id": r["id"]},
                        "target": r["answer"],
                        "arguments": {
                            "gen_args_0": {"arg_0": f"Problem: {r['problem']}\nAnswer:", "arg_1": gen_kwargs}
                        },
                        "resps": [resps],
                        "filtered_resps": [resps[0]],
                        "filter": filt,
                        "metrics": ["exact_match"],
                        "exact_match": 1.0 if doc_id % 2 == 0 else 0.0,
                        "doc_hash": "x",
                        "prompt_hash": "y",
                        "target_hash": "z",
                    }
                )
            )
    path = folder / f"samples_{task_name}_2025-06-01T10-20-30.123456.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---- helpers ------------------------------------------------------------------------------------
@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints.yaml").write_text(REGISTRY)
    (tmp_path / "src").mkdir()
    return {
        "tmp": tmp_path,
        "registry": tmp_path / "checkpoints.yaml",
        "store": tmp_path / "store",
        "src": tmp_path / "src",
    }


def loc_args(env: dict[str, Path], *, data: bool = True) -> list[str]:
    args = ["--config-dir", str(ROOT), "--registry", str(env["registry"]), "--store", str(env["store"])]
    return [*args, "--data-dir", str(DATA)] if data else args


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def do_import(
    env: dict[str, Path], fmt: str, *paths: Path, checkpoint: str = "toy/rl", extra: tuple[str, ...] = ()
) -> Any:
    return invoke("import", fmt, *map(str, paths), "--checkpoint", checkpoint, "-q", *extra, *loc_args(env))


def only_unit(env: dict[str, Path]) -> UnitInfo:
    units = Store(env["store"]).units()
    assert len(units) == 1, [u.spec.task for u in units]
    return units[0]


def store_files(env: dict[str, Path]) -> list[str]:
    root = env["store"]
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def flat(output: str) -> str:
    """CLI output with line wrapping undone."""
    return " ".join(output.split())


# ---- round trips --------------------------------------------------------------------------------
def test_spurious_json_round_trip_matches_shuffled_problems_by_text(env: dict[str, Path]) -> None:
    probs = rows("math500", 8, seed=3)
    path = spurious_file(env["src"] / "Qwen2.5-Math-7B_MATH-500.json", probs)
    r = do_import(env, "spurious-rewards-json", path)
    assert r.exit_code == 0, r.output
    assert "8 samples imported, 0 already stored" in flat(r.output)

    u = only_unit(env)
    s = u.spec
    assert (s.task, s.template_id, s.backend) == ("math500", "imported", "import:spurious-rewards-json")
    assert (s.protocol.n, s.protocol.temperature, s.protocol.max_new_tokens, s.protocol.top_p) == (1, 0.0, 3072, 1.0)
    assert s.checkpoint.checkpoint_id == "toy/rl" and s.checkpoint.model == "org/toy-rl"  # the registry's identity
    assert (u.family, u.base, u.reward, u.step, u.source) == (
        "toy",
        "toy/base",
        "random",
        50,
        "imported:spurious-rewards-json",
    )
    assert u.n_problems_total == 500 and u.task_display == "MATH-500"
    assert u.imported is not None
    assert u.imported.files == [str(path)] and u.imported.model == "/ckpts/qwen2.5-math-7b"
    assert (u.imported.items, u.imported.unmatched, u.imported.gold_mismatches) == (8, 0, 0)
    assert {(m.name, m.metric, m.value) for m in u.imported.metrics} == {
        ("avg@1", "avg@1", 0.5),
        ("pass@1", "avg@1", 0.5),
    }

    store = Store(env["store"])
    gens = store.read_generations(u.key)
    by_id = {p["id"]: p for p in probs}
    assert sorted(g.problem_id for g in gens) == sorted(by_id)
    for i, p in enumerate(probs):  # file item i is problem p: its prompt and completion went to p's id
        g = next(g for g in gens if g.problem_id == p["id"])
        assert g.prompt == chat_prompt(p["problem"])
        assert g.completion == boxed(p["answer"] if i % 2 == 0 else "999999")
        assert (g.sample_idx, g.finish_reason, g.n_tokens, g.backend) == (0, "unknown", None, s.backend)
    assert len(store.load_problems(s.data_hash)) == 500  # gold answers for grading without the data dir


def test_spurious_json_percentages_are_normalised_and_samples_kept_in_order(env: dict[str, Path]) -> None:
    probs = rows("aime24", 5)
    correct = [
        [True, False, True, False],
        [False] * 4,
        [True] * 4,
        [False, False, False, True],
        [True, True, False, False],
    ]
    path = spurious_file(
        env["src"] / "m_AIME-2024.json",
        probs,
        dataset="AIME-2024",
        k=4,
        temperature=0.6,
        correct=correct,
        metrics={"avg@4": 45.0, "pass@4": 80.0},  # a writer that reports percentages
    )
    r = do_import(env, "spurious-rewards-json", path)
    assert r.exit_code == 0, r.output
    u = only_unit(env)
    assert (u.spec.task, u.spec.protocol.n, u.spec.protocol.temperature) == ("aime24", 4, 0.6)
    assert u.imported is not None
    got = {m.name: (m.metric, m.value) for m in u.imported.metrics}
    assert got == {"avg@4": ("avg@4", pytest.approx(0.45)), "pass@4": ("pass@4", pytest.approx(0.80))}
    assert all("percent" in m.origin for m in u.imported.metrics)
    gens = {(g.problem_id, g.sample_idx): g.completion for g in Store(env["store"]).read_generations(u.key)}
    for i, p in enumerate(probs):
        for j, ok in enumerate(correct[i]):
            assert gens[(p["id"], j)] == boxed(p["answer"] if ok else "999999")


def test_qwen_math_jsonl_round_trip(env: dict[str, Path]) -> None:
    probs = rows("aime24", 6, seed=1)
    path = qwen_file(env["src"], probs, k=2, temperature=0.6, acc=50.0)
    r = do_import(env, "qwen-math-jsonl", path, extra=QWEN_TOKENS)
    assert r.exit_code == 0, r.output
    u = only_unit(env)
    p = u.spec.protocol
    assert (u.spec.task, p.n, p.temperature, p.seed, p.max_new_tokens) == ("aime24", 2, 0.6, 0, 2048)
    assert u.imported is not None
    metrics = {m.name: m for m in u.imported.metrics}
    assert metrics["acc"].value == pytest.approx(0.5) and metrics["acc"].metric is None  # first sample only, k=2
    assert (metrics["mean score"].metric, metrics["mean score"].value) == ("avg@2", pytest.approx(0.5))
    assert (metrics["any score"].metric, metrics["any score"].value) == ("pass@2", pytest.approx(1.0))
    gens = Store(env["store"]).read_generations(u.key)
    assert len(gens) == 12
    first = next(g for g in gens if g.problem_id == probs[0]["id"] and g.sample_idx == 1)
    assert first.completion == boxed("1") and first.prompt == probs[0]["problem"]


def test_qwen_math_shards_become_one_unit_and_overlap_is_refused(env: dict[str, Path]) -> None:
    probs = rows("aime24", 6)
    a = qwen_file(env["src"], probs[:3], k=1, temperature=0.0, start=0, end=3, acc=100.0 * 2 / 3)
    b = qwen_file(env["src"], probs[3:], k=1, temperature=0.0, start=3, end=6, acc=100.0 / 3)
    r = do_import(env, "qwen-math-jsonl", a, b, extra=QWEN_TOKENS)
    assert r.exit_code == 0, r.output
    u = only_unit(env)
    assert u.imported is not None and len(u.imported.files) == 2
    acc = next(m for m in u.imported.metrics if m.name == "acc")
    assert (acc.metric, acc.value) == ("avg@1", pytest.approx(0.5))  # item-weighted over the shards
    assert len(Store(env["store"]).read_generations(u.key)) == 6

    c = qwen_file(env["src"], probs[2:4], k=1, temperature=0.0, start=2, end=4)
    r = do_import(env, "qwen-math-jsonl", a, c, checkpoint="toy/other", extra=QWEN_TOKENS)
    assert r.exit_code == 2
    assert probs[2]["id"] in flat(r.output) and "import them separately" in flat(r.output)


def test_lm_eval_samples_round_trip(env: dict[str, Path]) -> None:
    probs = rows("math500", 6, seed=2)
    path = lm_eval_file(
        env["src"],
        probs,
        task_name="hendrycks_math500",
        gen_kwargs={"until": ["Problem:"], "do_sample": False, "temperature": 0.0, "max_gen_toks": 1024},
        filters=("last_boxed", "flexible"),
    )
    r = do_import(env, "lm-eval-samples", path)
    assert r.exit_code == 0, r.output
    u = only_unit(env)
    assert (u.spec.task, u.spec.protocol.n, u.spec.protocol.temperature, u.spec.protocol.max_new_tokens) == (
        "math500",
        1,
        0.0,
        1024,
    )
    assert u.imported is not None
    assert {(m.name, m.metric, m.value) for m in u.imported.metrics} == {
        ("exact_match,last_boxed", "avg@1", 0.5),
        ("exact_match,flexible", "avg@1", 0.5),
    }
    gens = Store(env["store"]).read_generations(u.key)
    assert len(gens) == 6  # two lines per document (two filters) are one item
    g = next(g for g in gens if g.problem_id == probs[1]["id"])
    assert g.prompt == f"Problem: {probs[1]['problem']}\nAnswer:" and g.completion == boxed("999999")


def test_lm_eval_samples_with_an_unknown_task_name_need_task(env: dict[str, Path]) -> None:
    probs = rows("aime25", 3)
    path = lm_eval_file(
        env["src"], probs, task_name="my_aime_variant", k=2, gen_kwargs={"do_sample": True, "temperature": 0.6}
    )
    r = do_import(env, "lm-eval-samples", path)
    assert r.exit_code == 2
    out = flat(r.output)
    assert "my_aime_variant" in out and "--task" in out and "aime25, amc, math500" in out
    assert store_files(env) == []
    r = do_import(env, "lm-eval-samples", path, extra=("--task", "aime25"))
    assert r.exit_code == 0, r.output
    u = only_unit(env)
    assert (u.spec.task, u.spec.protocol.n, u.spec.protocol.temperature, u.spec.protocol.max_new_tokens) == (
        "aime25",
        2,
        0.6,
        256,
    )
    r = do_import(env, "lm-eval-samples", path, checkpoint="toy/other", extra=("--task", "nope"))
    assert r.exit_code == 2 and "unknown task 'nope'" in flat(r.output)


# ---- idempotence, unmatched, gold ---------------------------------------------------------------
def test_reimport_is_idempotent_and_another_file_is_a_new_unit(env: dict[str, Path]) -> None:
    probs = rows("math500", 4)
    path = spurious_file(env["src"] / "a.json", probs)
    assert do_import(env, "spurious-rewards-json", path).exit_code == 0
    key = only_unit(env).key
    before = Store(env["store"]).generations_path(key).read_bytes()
    r = do_import(env, "spurious-rewards-json", path)
    assert r.exit_code == 0 and "0 samples imported, 4 already stored" in flat(r.output)
    assert only_unit(env).key == key
    assert Store(env["store"]).generations_path(key).read_bytes() == before

    other = spurious_file(env["src"] / "b.json", probs, correct=[[True]] * 4)
    assert do_import(env, "spurious-rewards-json", other).exit_code == 0
    keys = Store(env["store"]).unit_keys()
    assert len(keys) == 2 and key in keys


def test_unmatched_items_are_listed_and_refused_unless_allowed(env: dict[str, Path]) -> None:
    probs = rows("math500", 5)
    stray = {
        "prompt": chat_prompt("What is the airspeed velocity of an unladen swallow?"),
        "label": "11",
        "index": 99,
        "outputs": ["11"],
    }
    path = spurious_file(env["src"] / "m.json", probs, extra_items=(stray,))
    r = do_import(env, "spurious-rewards-json", path)
    assert r.exit_code == 2
    out = flat(r.output)
    assert "1 of 6 items match no task problem" in out and "index 99" in out and "airspeed velocity" in out
    assert "--allow-unmatched" in out and "Nothing was stored" in out
    assert store_files(env) == []

    r = do_import(env, "spurious-rewards-json", path, extra=("--allow-unmatched",))
    assert r.exit_code == 0, r.output
    assert "skipped 1 items matching no task problem" in flat(r.output)
    u = only_unit(env)
    assert u.imported is not None and (u.imported.items, u.imported.unmatched) == (6, 1)
    assert len(Store(env["store"]).read_generations(u.key)) == 5


def test_a_file_for_another_task_is_refused_even_with_allow_unmatched(env: dict[str, Path]) -> None:
    path = spurious_file(env["src"] / "m.json", rows("aime24", 3), dataset="MATH-500")
    r = do_import(env, "spurious-rewards-json", path, extra=("--allow-unmatched",))
    assert r.exit_code == 2 and "none of its 3 items matches a problem of task math500" in flat(r.output)
    assert store_files(env) == []


def test_gold_mismatches_are_counted_and_reported(env: dict[str, Path]) -> None:
    probs = rows("aime24", 4)
    path = spurious_file(env["src"] / "m.json", probs, dataset="AIME-2024")
    obj = json.loads(path.read_text())
    obj["metadata"][1]["label"] = "12345"
    obj["metadata"][2]["label"] = str(int(probs[2]["answer"]))  # "025" written as "25": the same answer
    path.write_text(json.dumps(obj))
    r = do_import(env, "spurious-rewards-json", path)
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    assert "1 items have a gold answer other than the task file's" in out and "'12345'" in out
    u = only_unit(env)
    assert u.imported is not None and u.imported.gold_mismatches == 1


# ---- wrong format: names the format and the field, stores nothing --------------------------------
def _bad_spurious(tmp: Path, mutate: Any) -> Path:
    path = spurious_file(tmp / "bad.json", rows("math500", 3))
    obj = json.loads(path.read_text())
    mutate(obj)
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize(
    ("fmt", "make", "expected"),
    [
        (
            "spurious-rewards-json",
            lambda d: qwen_file(d, rows("aime24", 3)),
            ["not a spurious-rewards-json file", "not valid JSON"],
        ),
        (
            "spurious-rewards-json",
            lambda d: _bad_spurious(d, lambda o: o.pop("metadata")),
            ["not a spurious-rewards-json file", "no field 'metadata'"],
        ),
        (
            "spurious-rewards-json",
            lambda d: _bad_spurious(d, lambda o: o["metadata"][1].pop("outputs")),
            ["not a spurious-rewards-json file", "metadata[1] has no field 'outputs'"],
        ),
        (
            "spurious-rewards-json",
            lambda d: _bad_spurious(d, lambda o: o.update(rollouts=2)),
            ["metadata[0].outputs has 1 responses but 'rollouts' is 2"],
        ),
        (
            "qwen-math-jsonl",
            lambda d: lm_eval_file(d, rows("math500", 3)),
            ["not a qwen-math-jsonl file", "line 1 has no field 'idx'"],
        ),
        (
            "qwen-math-jsonl",
            lambda d: spurious_file(d / "x.json", rows("math500", 3)),
            ["not a qwen-math-jsonl file", "line 1 is not valid JSON"],
        ),
        (
            "lm-eval-samples",
            lambda d: qwen_file(d, rows("aime24", 3)),
            ["not a lm-eval-samples file", "line 1 has no field 'doc_id'"],
        ),
    ],
)
def test_wrong_format_names_format_and_field_and_stores_nothing(
    env: dict[str, Path], fmt: str, make: Any, expected: list[str]
) -> None:
    good = spurious_file(env["src"] / "good.json", rows("math500", 3)) if fmt == "spurious-rewards-json" else None
    bad = make(env["src"])
    files = [good, bad] if good is not None else [bad]  # a valid file first: still nothing stored
    r = do_import(env, fmt, *[f for f in files if f is not None])
    assert r.exit_code == 2, r.output
    out = flat(r.output)
    assert str(bad.name) in out
    for text in expected:
        assert text in out
    assert store_files(env) == []


def test_bad_names_are_usage_errors_listing_the_valid_ones(env: dict[str, Path]) -> None:
    path = spurious_file(env["src"] / "m.json", rows("math500", 3))
    r = do_import(env, "paper-json", path)
    assert r.exit_code == 2 and "unknown import format 'paper-json'" in flat(r.output)
    assert "lm-eval-samples, qwen-math-jsonl, spurious-rewards-json" in flat(r.output)
    r = do_import(env, "spurious-rewards-json", path, extra=("--base", "toy/nope"))
    assert r.exit_code == 2 and "unknown base checkpoint 'toy/nope'" in flat(r.output) and "toy/base" in flat(r.output)
    r = do_import(env, "spurious-rewards-json", path, checkpoint="toy/rl", extra=("--base", "toy/rl"))
    assert r.exit_code == 2 and "is the checkpoint itself" in flat(r.output)
    r = do_import(env, "spurious-rewards-json", path, checkpoint="my model*")
    assert r.exit_code == 2 and "not a valid new id" in flat(r.output)
    r = do_import(env, "spurious-rewards-json", path, extra=("--task", "aime24"))
    assert r.exit_code == 2 and "'MATH-500' (task math500), but --task aime24" in flat(r.output)
    r = do_import(env, "spurious-rewards-json", path, extra=("--temperature", "0.6"))
    assert r.exit_code == 2 and "records temperature 0, but --temperature 0.6" in flat(r.output)
    r = do_import(env, "spurious-rewards-json", env["src"] / "missing.json")
    assert r.exit_code == 2 and "missing.json: no such file" in flat(r.output)
    assert store_files(env) == []


def test_a_renamed_qwen_file_needs_temperature(env: dict[str, Path]) -> None:
    path = qwen_file(env["src"], rows("aime24", 3), k=1, name="renamed", acc=None)
    r = do_import(env, "qwen-math-jsonl", path)
    assert r.exit_code == 2 and "records no sampling temperature; pass --temperature" in flat(r.output)
    r = do_import(env, "qwen-math-jsonl", path, extra=("--temperature", "0", "--max-new-tokens", "4096"))
    assert r.exit_code == 0, r.output
    u = only_unit(env)
    assert (u.spec.protocol.temperature, u.spec.protocol.max_new_tokens) == (0.0, 4096)
    assert u.imported is not None and [m.name for m in u.imported.metrics] == ["mean score"]


# ---- checkpoints, bases, pairing ----------------------------------------------------------------
def test_new_checkpoint_id_with_base_is_paired_with_the_imported_base(env: dict[str, Path]) -> None:
    probs = rows("math500", 6)
    base = spurious_file(env["src"] / "base.json", probs, correct=[[i < 2] for i in range(6)], model="org/toy-base")
    rl = spurious_file(env["src"] / "rl.json", probs[::-1], correct=[[i >= 1] for i in range(6)], model="org/my-run")
    assert do_import(env, "spurious-rewards-json", base, checkpoint="toy/base").exit_code == 0
    r = do_import(env, "spurious-rewards-json", rl, checkpoint="my-run", extra=("--base", "toy/base"))
    assert r.exit_code == 0, r.output
    assert "'my-run' is not in the registry" in flat(r.output)
    units = {u.spec.checkpoint.checkpoint_id: u for u in Store(env["store"]).units()}
    new = units["my-run"]
    assert (new.family, new.family_display, new.base, new.spec.checkpoint.model) == (
        "imported",
        "Imported (not in the registry)",
        "toy/base",
        "org/my-run",
    )
    assert new.spec.template_hash == units["toy/base"].spec.template_hash  # same prompt template -> pairable

    assert invoke("grade", "-q", "--store", str(env["store"]), "--config-dir", str(ROOT)).exit_code == 0
    r = invoke("report", *loc_args(env, data=False))
    assert r.exit_code == 0, r.output
    comp = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "comparisons.csv")
    assert list(comp["checkpoint"]) == ["my-run"] and list(comp["base"]) == ["toy/base"]
    assert comp["baseline_value"][0] == pytest.approx(2 / 6) and comp["treatment_value"][0] == pytest.approx(5 / 6)


def test_base_given_at_import_overrides_the_registry_in_reports(env: dict[str, Path]) -> None:
    probs = rows("math500", 4)
    other = spurious_file(env["src"] / "other.json", probs, correct=[[True]] * 4)
    rl = spurious_file(env["src"] / "rl.json", probs, correct=[[False]] * 4)
    assert do_import(env, "spurious-rewards-json", other, checkpoint="toy/other").exit_code == 0
    assert (
        do_import(env, "spurious-rewards-json", rl, checkpoint="toy/rl", extra=("--base", "toy/other")).exit_code == 0
    )
    assert invoke("grade", "-q", "--store", str(env["store"]), "--config-dir", str(ROOT)).exit_code == 0
    assert invoke("report", *loc_args(env, data=False)).exit_code == 0
    comp = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "comparisons.csv")
    assert list(comp["base"]) == ["toy/other"] and comp["delta"][0] == pytest.approx(-1.0)


def test_other_prompt_template_gets_another_template_hash(env: dict[str, Path]) -> None:
    probs = rows("math500", 3)
    a = spurious_file(env["src"] / "a.json", probs)
    b = spurious_file(env["src"] / "b.json", probs)
    obj = json.loads(b.read_text())
    for item in obj["metadata"]:
        item["prompt"] = "Question: " + item["prompt"]
    b.write_text(json.dumps(obj))
    assert do_import(env, "spurious-rewards-json", a, checkpoint="toy/base").exit_code == 0
    assert do_import(env, "spurious-rewards-json", b, checkpoint="toy/rl").exit_code == 0
    hashes = {u.spec.template_hash for u in Store(env["store"]).units()}
    assert len(hashes) == 2


# ---- end to end: import -> grade -> report --------------------------------------------------------
def test_cli_import_grade_report_shows_source_numbers_beside_ours(env: dict[str, Path]) -> None:
    graders = [g for g in WANTED_GRADERS if g in GRADERS]
    math = spurious_file(env["src"] / "rl_MATH-500.json", rows("math500", 6), metrics={"avg@1": 0.6, "pass@1": 0.6})
    aime = spurious_file(
        env["src"] / "rl_AIME-2024.json",
        rows("aime24", 4),
        dataset="AIME-2024",
        k=2,
        temperature=0.6,
        correct=[[True, False], [True, True], [False, False], [False, True]],
    )
    r = do_import(env, "spurious-rewards-json", math, aime)
    assert r.exit_code == 0, r.output
    assert len(Store(env["store"]).units()) == 2
    r = invoke("grade", "--graders", ",".join(graders), "-q", "--store", str(env["store"]), "--config-dir", str(ROOT))
    assert r.exit_code == 0, r.output
    r = invoke("report", *loc_args(env, data=False))
    assert r.exit_code == 0, r.output

    md = (env["tmp"] / "reports" / "audit" / "index.md").read_text()
    section = md.split("## Imported generations: the source's numbers beside ours", 1)[1].split("\n## ", 1)[0]
    rows_md = [line for line in section.splitlines() if line.startswith("| toy/rl")]
    assert len(rows_md) == 4  # two units x (avg@k, pass@k)
    for g in graders:
        assert f"Ours: `{g}`" in section
    math_avg = next(line for line in rows_md if "'avg@1' field" in line)
    assert "| 60.0 on its 6 items |" in math_avg and "avg@1 50.0 [" in math_avg
    assert "-10.0 vs source on the same 6 problems" in math_avg
    aime_pass = next(line for line in rows_md if "'pass@2' field" in line)
    assert "| 75.0 on its 4 items |" in aime_pass and "pass@2 75.0 [" in aime_pass
    assert "+0.0 vs source on the same 4 problems" in aime_pass

    est = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "estimates.csv")
    assert set(est["grader"]) == set(graders)
    mv = est[(est["grader"] == "math_verify")].set_index(["task", "metric"])
    assert mv.loc[("math500", "avg@1"), "source_value"] == pytest.approx(0.6)
    assert mv.loc[("aime24", "avg@2"), "source_value"] == pytest.approx(0.5)
    assert mv.loc[("aime24", "avg@2"), "value"] == pytest.approx(0.5)
    if len(graders) > 1:
        assert "## Grader disagreement" in md


def test_ls_formats_lists_every_import_format(env: dict[str, Path]) -> None:
    r = invoke("ls", "formats", "--format", "json")
    assert r.exit_code == 0
    assert [row["format"] for row in json.loads(r.output)] == list(FORMATS)


# ---- matching and gold comparison (units) --------------------------------------------------------
def _problem(pid: str, question: str) -> Problem:
    return Problem(task="t", problem_id=pid, question=question, answer="1")


def test_matching_normalises_whitespace_and_unicode_and_prefers_the_longest() -> None:
    index = ProblemIndex(
        [
            _problem("a", "Compute  $1+1$.\nGive a number."),
            _problem("b", "Compute $1+1$."),
            _problem("c", "Find x (ﬁrst solution)."),
        ]
    )
    assert normalise(" a\n\tb\u00a0 c ") == "a b c"
    hit = index.match(["Compute $1+1$. Give a number."])
    assert (hit.kind, hit.problem and hit.problem.problem_id) == ("exact", "a")
    hit = index.match(["<user>\nCompute $1+1$.\n\nGive a  number.<end>"])  # both a and b occur: longest wins
    assert (hit.kind, hit.problem and hit.problem.problem_id) == ("contained", "a")
    hit = index.match(["Q: Find x (first solution). A:"])  # the ligature is NFKC-normalised
    assert hit.problem is not None and hit.problem.problem_id == "c"
    assert index.match(["Something else entirely."]).kind == "none"
    hit = index.match(["", "Compute $1+1$."])  # the first text is empty: the next one is tried
    assert hit.problem is not None and hit.problem.problem_id == "b"


def test_equal_questions_are_ambiguous() -> None:
    index = ProblemIndex([_problem("a", "Same text here."), _problem("b", "Same  text here.")])
    hit = index.match(["Same text here."])
    assert hit.kind == "ambiguous" and hit.candidates == ("a", "b") and hit.problem is None


@pytest.mark.parametrize(
    ("source", "ours", "same"),
    [
        ("070", "070", True),
        ("70", "070", True),
        ("142", "142.0", True),
        ("$\\frac{1}{2}$", "\\frac{1}{2}", True),
        ("p-q", "p - q", True),
        ("1,000", "1000", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left(3,\\frac{\\pi}{2}\\right)", True),
        ("3", "4", False),
        ("\\frac{1}{2}", "0.5", False),  # not the grader: only plain numbers are compared by value
    ],
)
def test_same_gold(source: str, ours: str, same: bool) -> None:
    assert same_gold(source, ours) is same


# ---- issue 15: real Qwen2.5-Math outputs (../shared/data/real_generations) ----------------------
REAL = ROOT.parent / "shared" / "data" / "real_generations" / "sky-t1"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real_generations is not beside the project")
REAL_SETTINGS = ("--temperature", "0", "--max-new-tokens", "32768")
"""The README of the real files: greedy decoding; the runs used 32768 new tokens (not math_eval.py's 2048)."""


@needs_real
def test_a_qwen_file_that_records_no_token_limit_needs_it_stated(env: dict[str, Path]) -> None:
    """math_eval.py writes its limit nowhere: on main the import guessed 2048 silently."""
    path = REAL / "Sky-T1-math-wrong-5K-14B.amc23.jsonl"
    r = do_import(env, "qwen-math-jsonl", path, checkpoint="sky/wrong", extra=("--temperature", "0"))
    assert r.exit_code == 2, r.output
    assert "records the new-token limit" in flat(r.output) and "pass --max-new-tokens N" in flat(r.output)
    assert store_files(env) == []
    r = do_import(env, "qwen-math-jsonl", path, checkpoint="sky/wrong", extra=REAL_SETTINGS)
    assert r.exit_code == 0, r.output
    u = only_unit(env)
    assert (u.spec.task, u.spec.protocol.max_new_tokens, u.spec.protocol.n) == ("amc", 32768, 1)
    assert u.imported is not None  # the metrics file beside it ('<stem>.metrics.json') is read: acc 50.0
    assert {m.name: m.value for m in u.imported.metrics} == {"acc": pytest.approx(0.5), "mean score": 0.5}


@needs_real
def test_a_token_limit_recorded_in_the_metrics_file_is_used_and_a_contradicting_option_refused(
    env: dict[str, Path],
) -> None:
    folder = env["src"] / "amc23"
    folder.mkdir()
    data = (REAL / "Sky-T1-math-correct-5K-14B.amc23.jsonl").read_bytes()
    path = folder / "test_Sky-T1_-1_seed0_t0.0_s0_e-1.jsonl"
    path.write_bytes(data)
    metrics = json.loads((REAL / "Sky-T1-math-correct-5K-14B.amc23.metrics.json").read_text())
    (folder / "test_Sky-T1_-1_seed0_t0.0_s0_e-1_Sky-T1_metrics.json").write_text(
        json.dumps({**metrics, "max_tokens_per_call": 32768})
    )
    r = do_import(env, "qwen-math-jsonl", path, checkpoint="sky/correct", extra=("--max-new-tokens", "2048"))
    assert r.exit_code == 2 and "records max_new_tokens 32768, but --max-new-tokens 2048" in flat(r.output)
    r = do_import(env, "qwen-math-jsonl", path, checkpoint="sky/correct")
    assert r.exit_code == 0, r.output
    p = only_unit(env).spec.protocol
    assert (p.max_new_tokens, p.temperature) == (32768, 0.0)  # temperature from the script's file name


@needs_real
def test_questions_without_their_figure_match_and_what_still_fails_is_named_by_its_full_path(
    env: dict[str, Path],
) -> None:
    """Four AIME 2024 questions in the published file lack the task's [asy] block or 'Graph <url>'
    line: on main they (and the fifth, whose words differ) matched nothing."""
    copies = []
    for name in ("Sky-T1-math-correct-5K-14B.aime24.jsonl", "Sky-T1-math-wrong-5K-14B.aime24.jsonl"):
        folder = env["src"] / name.split(".")[0]
        folder.mkdir()
        copies.append(folder / "test.aime24.jsonl")  # one basename, two folders
        copies[-1].write_bytes((REAL / name).read_bytes())
    r = do_import(env, "qwen-math-jsonl", *copies, checkpoint="sky/both", extra=REAL_SETTINGS)
    assert r.exit_code == 2, r.output
    out = flat(r.output)
    assert "2 of 60 items match no task problem" in out
    for path in copies:  # the full path of each file, not the basename they share
        assert f"{path}: line 29 (idx 28): 'Torus $T$ is the surface" in out
    r = do_import(
        env, "qwen-math-jsonl", copies[1], checkpoint="sky/wrong", extra=(*REAL_SETTINGS, "--allow-unmatched")
    )
    assert r.exit_code == 0, r.output
    u = only_unit(env)
    assert u.spec.task == "aime24"  # from '.aime24' in the file name (the folder names no benchmark)
    assert u.imported is not None and (u.imported.items, u.imported.unmatched) == (30, 1)
    gens = Store(env["store"]).read_generations(u.key)
    assert len({g.problem_id for g in gens}) == 29


def test_figure_text_is_ignored_on_both_sides_and_other_text_is_kept_exact() -> None:
    problems = [
        Problem(task="t", problem_id="a", question="Find $x$.\n[asy] draw((0,0)--(1,1)); [/asy]", answer="1"),
        Problem(task="t", problem_id="b", question="How many zeros?\nGraph\nhttps://www.desmos.com/x1", answer="2"),
        Problem(task="t", problem_id="c", question="Find $y$.", answer="3"),
    ]
    index = ProblemIndex(problems)
    assert index.match(("Find $x$.",)).problem == problems[0]
    assert index.match(("<user>\nFind $x$.\n[asy] other figure [/asy]</user>",)).problem == problems[0]
    assert index.match(("How many zeros?",)).problem == problems[1]
    assert index.match(("Find $x$ .",)).kind == "none"  # a character more is another text
    assert index.match(("Find $y$.",)).problem == problems[2]


@needs_real
def test_family_step_and_reward_of_imported_checkpoints_and_steps_sort_numerically(env: dict[str, Path]) -> None:
    path = REAL / "Sky-T1-math-wrong-5K-14B.amc23.jsonl"
    for step in (1000, 50):
        shutil.copy(path, env["src"] / f"step{step}.amc23.jsonl")
        r = do_import(
            env,
            "qwen-math-jsonl",
            env["src"] / f"step{step}.amc23.jsonl",
            checkpoint=f"sky/step{step}",
            extra=(*REAL_SETTINGS, "--family", "sky-t1", "--step", str(step), "--reward", "wrong-answers"),
        )
        assert r.exit_code == 0, r.output
    units = Store(env["store"]).units()
    assert {(u.family, u.family_display, u.step, u.reward) for u in units} == {
        ("sky-t1", "sky-t1", 1000, "wrong-answers"),
        ("sky-t1", "sky-t1", 50, "wrong-answers"),
    }
    from rlvr_audit.api import report_order

    order = report_order(Store(env["store"]), [u.key for u in units])
    assert [Store(env["store"]).load_unit(k).spec.checkpoint.checkpoint_id for k in order] == [
        "sky/step50",
        "sky/step1000",
    ]
    # a registry checkpoint's step, reward and family come from the registry: a contradiction is refused
    r = do_import(env, "qwen-math-jsonl", path, checkpoint="toy/rl", extra=(*REAL_SETTINGS, "--step", "100"))
    assert r.exit_code == 2 and "--step 100 contradicts the registry, which gives toy/rl step 50" in flat(r.output)
    r = do_import(env, "qwen-math-jsonl", path, checkpoint="sky/x", extra=(*REAL_SETTINGS, "--step", "-1"))
    assert r.exit_code == 2 and "--step must be a training step >= 0" in flat(r.output)


def test_natural_key_sorts_digit_runs_as_numbers() -> None:
    ids = ["f/step1000", "f/step50", "f/step200", "f/base", "g/step5"]
    assert sorted(ids, key=natural_key) == ["f/base", "f/step50", "f/step200", "f/step1000", "g/step5"]


@needs_real
def test_the_sources_number_is_compared_over_the_same_problems_and_its_own_total_shown_apart(
    env: dict[str, Path],
) -> None:
    """The AIME 2024 files hold 30 items, 29 of which match a task problem: main set ours over 29
    problems against the source's total over 30 (a false +0.7 for the correct-trace model)."""
    for name, cid, base in (("correct", "sky/correct", ()), ("wrong", "sky/wrong", ("--base", "sky/correct"))):
        path = REAL / f"Sky-T1-math-{name}-5K-14B.aime24.jsonl"
        r = do_import(env, "qwen-math-jsonl", path, checkpoint=cid, extra=(*REAL_SETTINGS, "--allow-unmatched", *base))
        assert r.exit_code == 0, r.output
    units = {u.spec.checkpoint.checkpoint_id: u for u in Store(env["store"]).units()}
    src = units["sky/wrong"].imported
    assert src is not None and set(src.problem_scores) == {"acc", "mean score"}
    assert len(src.problem_scores["mean score"]) == 29 and sum(src.problem_scores["mean score"].values()) == 5
    r = invoke("grade", "--graders", "math_verify", "--workers", "1", "-q", "--store", str(env["store"]))
    assert r.exit_code == 0, r.output
    a = analyse(Store(env["store"]), n_resamples=200)
    frame = estimates_frame(a).set_index("checkpoint")
    wrong, correct = frame.loc["sky/wrong"], frame.loc["sky/correct"]
    assert (wrong["value"], wrong["source_value"], wrong["source_value_same_problems"]) == pytest.approx(
        (4 / 29, 0.167, 5 / 29)  # the metrics file rounds: acc 16.7
    )
    assert (correct["value"], correct["source_value"], correct["source_value_same_problems"]) == pytest.approx(
        (6 / 29, 6 / 30, 6 / 29)
    )
    section = imported_section(a)
    assert section is not None
    md = render_section(section)
    row = next(line for line in md.splitlines() if line.startswith("| sky/wrong") and "mean score" in line)
    assert "16.7 on its 30 items<br>17.2 on the same 29 problems as ours" in row
    assert "avg@1 13.8 [" in row and "-3.4 vs source on the same 29 problems" in row
    row = next(line for line in md.splitlines() if line.startswith("| sky/correct") and "mean score" in line)
    assert "+0.0 vs source on the same 29 problems" in row and "+0.7" not in row


def test_a_source_without_per_problem_scores_is_not_differenced_over_other_problems(env: dict[str, Path]) -> None:
    """The paper's JSON reports only totals: with an item unmatched, its total is over other problems."""
    items = rows("math500", 6)
    path = spurious_file(env["src"] / "out.json", items)
    obj = json.loads(path.read_text())
    obj["metadata"][0]["prompt"] = chat_prompt("A question that is in no task file at all?")
    path.write_text(json.dumps(obj))
    r = do_import(env, "spurious-rewards-json", path, extra=("--allow-unmatched",))
    assert r.exit_code == 0, r.output
    assert only_unit(env).imported.problem_scores == {}  # type: ignore[union-attr]
    assert (
        invoke("grade", "--graders", "math_verify", "--workers", "1", "-q", "--store", str(env["store"])).exit_code == 0
    )
    a = analyse(Store(env["store"]), n_resamples=200)
    assert estimates_frame(a)["source_value_same_problems"].isna().all()
    section = imported_section(a)
    assert section is not None
    md = render_section(section)
    table = md[md.index("| Checkpoint") :]
    assert (
        "vs source" not in table and "no difference: the source's number is over 6 items, ours over 5 problems" in table
    )


def test_ls_units_and_claims_stay_readable_at_80_columns_and_wide_shows_everything(env: dict[str, Path]) -> None:
    """`ls units` did not list the token limit, all that tells two imports of one file apart; at 80
    columns it must stay readable (the fitting itself: `rlvr_audit.cli.listing_table`)."""
    path = spurious_file(env["src"] / "a-rather-long-file-name-of-the-paper_MATH-500.json", rows("math500", 4))
    for tokens in ("3072", "1024"):  # one file imported as if made with two token limits: two units
        r = do_import(env, "spurious-rewards-json", path, extra=("--max-new-tokens", tokens))
        assert r.exit_code == 0, r.output
    runner = CliRunner()
    narrow = runner.invoke(app, ["ls", "units", *loc_args(env, data=False)], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    lines = narrow.output.splitlines()
    assert max(len(line) for line in lines) <= 80, narrow.output
    units = Store(env["store"]).units()
    assert len(units) == 2
    for u in units:
        tokens = str(u.spec.protocol.max_new_tokens)
        assert any(u.key in line and "toy/rl" in line and tokens in line for line in lines), narrow.output
    assert "tokens" in lines[0].split() and "--wide" in " ".join(lines)
    wide = runner.invoke(app, ["ls", "units", "--wide", *loc_args(env, data=False)], env={"COLUMNS": "80"})
    assert f"import:spurious-rewards-json (src/{path.name})" in wide.output and "graders" in wide.output
    claims = runner.invoke(app, ["ls", "claims", "--config-dir", str(ROOT)], env={"COLUMNS": "80"})
    assert claims.exit_code == 0 and max(len(line) for line in claims.output.splitlines()) <= 80, claims.output
    assert "pre.fig1.qwen2.5-math-7b" in claims.output  # ids are wrapped, never cut


def test_per_problem_source_scores_of_lm_eval_documents_logged_once_per_filter(env: dict[str, Path]) -> None:
    """lm-eval logs a document once per filter: each filter's metric is kept per problem (doc i is
    right iff i is even), keyed by the problem the document matched, not by its line."""
    probs = rows("math500", 6, seed=2)
    path = lm_eval_file(env["src"], probs, filters=("last_boxed", "flexible"))
    r = do_import(env, "lm-eval-samples", path)
    assert r.exit_code == 0, r.output
    src = only_unit(env).imported
    assert src is not None
    expected = {p["id"]: 1.0 if i % 2 == 0 else 0.0 for i, p in enumerate(probs)}
    assert src.problem_scores == {"exact_match,flexible": expected, "exact_match,last_boxed": expected}
    assert src.value_over("exact_match,flexible", [probs[0]["id"], probs[2]["id"]]) == 1.0
    assert src.value_over("exact_match,flexible", [probs[1]["id"], "not-a-problem"]) is None
