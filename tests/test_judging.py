"""``rlvr-audit grade --judge-endpoint URL --judge-model NAME`` end to end, against a real local
chat-completions server process (tests/judge_server.py): only disagreements are sent, verdicts
are stored and cached as the ``judge`` grader, judge errors are counted and retried, a second
judge model is refused, and the judge appears in the report like any other grader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_judge import JudgeServer
from testbed import DATA, ROOT
from testbed import TOY_REGISTRY as REGISTRY
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.store import Store
from rlvr_audit.grading import get_grader
from rlvr_audit.grading.judge import PROMPT_VERSION
from rlvr_audit.grading.judging import BASE_GRADERS, JUDGE_ID

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")

ANSWERS = {  # the first 8 MATH-500 problems: boxed, unboxed and wrong answers
    "test/precalculus/807.json": "So the point is $\\boxed{(3, \\frac{\\pi}{2})}$.",
    "test/intermediate_algebra/1994.json": "Therefore the sum is $\\boxed{p - q}$.",
    "test/algebra/2584.json": "Adding the three values, the answer is 14/3.",
    "test/number_theory/572.json": "Since 196 = 2^2 * 7^2, it has (2+1)(2+1) = 9 divisors. So 196 has 9 divisors.",
    "test/algebra/1349.json": "The fastest is $\\boxed{\\text{Evelyn}}$.",
    "test/prealgebra/1622.json": "The perimeter is $\\boxed{41}$ inches.",
    "test/number_theory/515.json": "Checking cubes in turn, the answer is 27.",
    "test/precalculus/927.json": "The angle is $\\boxed{90^\\circ}$.",
}
SCRIPT = {  # the judge: malformed about the perfect cube, 'incorrect' about the divisors, else 'correct'
    "default": {"verdict": "correct", "final_answer": "as stated"},
    "rules": [
        {"match": "smallest positive perfect cube", "then": [{"content": "It looks right to me."}]},
        {"match": "positive whole-number divisors", "then": [{"verdict": "incorrect", "final_answer": "9"}]},
    ],
}


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints.yaml").write_text(REGISTRY)
    (tmp_path / "script.json").write_text(json.dumps({"toy/rl": ANSWERS}))
    servers: list[JudgeServer] = []

    def serve(script: dict[str, Any]) -> JudgeServer:
        folder = tmp_path / f"server{len(servers)}"
        folder.mkdir()
        servers.append(JudgeServer(folder, script))
        return servers[-1]

    store_args = ["--store", str(tmp_path / "store"), "--config-dir", str(ROOT)]
    r = invoke(
        "generate",
        "--backend",
        "scripted",
        "--model-args",
        f"script={tmp_path / 'script.json'}",
        "--checkpoints",
        "toy/rl",
        "--no-bases",
        "--tasks",
        "math500",
        "--limit",
        "8",
        "--registry",
        str(tmp_path / "checkpoints.yaml"),
        "--data-dir",
        str(DATA),
        "--quiet",
        *store_args,
    )
    assert r.exit_code == 0, r.output
    yield {"tmp": tmp_path, "store": tmp_path / "store", "args": store_args, "serve": serve}
    for server in servers:
        server.stop()


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def grade(env: dict[str, Any], *extra: str) -> Any:
    return invoke("grade", "--graders", ",".join(BASE_GRADERS), "--quiet", *env["args"], *extra)


def judge_args(server: JudgeServer, model: str = "toy-judge") -> list[str]:
    return ["--judge-endpoint", server.url, "--judge-model", model, "--judge-retries", "0", "--judge-timeout", "10"]


def disagreements(store: Store, key: str) -> set[str]:
    """Problems on which the base graders (current versions) disagree, from the store."""
    correct: dict[str, set[bool]] = {}
    for g in BASE_GRADERS:
        for x in store.read_grades(key, g, get_grader(g).version):
            correct.setdefault(x.problem_id, set()).add(x.verdict == "correct")
    return {pid for pid, seen in correct.items() if len(seen) > 1}


def test_only_disagreements_are_sent_and_the_verdicts_are_the_judge_grader(env: dict[str, Any]) -> None:
    server = env["serve"](SCRIPT)
    r = grade(env)  # no judge option: nothing is sent
    assert r.exit_code == 0, r.output
    assert server.requests() == []
    store = Store(env["store"])
    (key,) = store.unit_keys()
    disagree = disagreements(store, key)
    # the graders disagree on the unboxed answers (boxed_strict and minerva find no box), and
    # agree on the boxed right and wrong ones
    assert {"test/algebra/2584.json", "test/number_theory/572.json", "test/number_theory/515.json"} <= disagree
    assert "test/prealgebra/1622.json" not in disagree and "test/intermediate_algebra/1994.json" not in disagree

    r = grade(env, *judge_args(server))
    assert r.exit_code == 0, r.output
    sent = server.requests()
    problems = {p.problem_id: p.question for p in store.load_problems(store.load_unit(key).spec.data_hash)}
    asked = {pid for pid, q in problems.items() for req in sent if q in req["message"]}
    assert asked == disagree and len(sent) == len(disagree)
    assert all(req["model"] == "toy-judge" for req in sent)
    assert ANSWERS["test/algebra/2584.json"] in "".join(req["message"] for req in sent)
    out = " ".join(r.output.split())
    assert f"judge: {len(disagree)} of 8 samples disagree over 1 units" in out
    assert "judge_error: 1" in out and "test/number_theory/515.json#0: reply is not JSON" in out

    judged = {g.problem_id: g for g in store.read_grades(key, JUDGE_ID)}
    assert set(judged) == set(ANSWERS) - {"test/number_theory/515.json"}  # the judge error is not stored
    assert {g.grader_version for g in judged.values()} == {f"p{PROMPT_VERSION}:toy-judge"}
    assert judged["test/number_theory/572.json"].verdict == "incorrect"  # the judge's verdict
    assert judged["test/number_theory/572.json"].extracted == "9"
    assert judged["test/algebra/2584.json"].verdict == "correct"
    math_verify = {x.problem_id: x for x in store.read_grades(key, "math_verify")}
    for pid in set(ANSWERS) - disagree:  # agreements: the graders' verdict, no request
        assert judged[pid].verdict == math_verify[pid].verdict
        assert judged[pid].extracted == math_verify[pid].extracted

    # cached: a second run sends only the sample that has no verdict yet
    fixed = env["serve"]({"default": {"verdict": "correct", "final_answer": "27"}})
    r = grade(env, *judge_args(fixed))
    assert r.exit_code == 0, r.output
    assert len(fixed.requests()) == 1 and problems["test/number_theory/515.json"] in fixed.requests()[0]["message"]
    assert "judge_error: 0" in " ".join(r.output.split())
    assert {g.problem_id for g in store.read_grades(key, JUDGE_ID)} == set(ANSWERS)
    r = grade(env, *judge_args(fixed))
    assert r.exit_code == 0 and len(fixed.requests()) == 1  # everything cached now

    # the judge is a grader in the report's tables
    r = invoke("report", "--graders", f"math_verify,{JUDGE_ID}", "--no-browser", "--quiet", *env["args"])
    assert r.exit_code == 0, r.output
    est = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "estimates.csv")
    by_grader = est.set_index("grader")["value"]
    judge_correct = sum(g.verdict == "correct" for g in store.read_grades(key, JUDGE_ID))
    assert by_grader[JUDGE_ID] == pytest.approx(judge_correct / 8)


def test_an_unreachable_judge_counts_errors_and_the_run_goes_on(env: dict[str, Any]) -> None:
    server = env["serve"]({"default": {"status": 503}})
    url = server.url
    server.stop()  # nobody listens any more
    assert grade(env).exit_code == 0
    r = grade(env, "--judge-endpoint", url, "--judge-model", "toy-judge", "--judge-retries", "1")
    assert r.exit_code == 0, r.output
    store = Store(env["store"])
    (key,) = store.unit_keys()
    n = len(disagreements(store, key))
    out = " ".join(r.output.split())
    assert f"judge_error: {n}" in out and "cannot reach" in out and "(2 tries)" in out
    assert len(store.read_grades(key, JUDGE_ID)) == 8 - n  # agreements only


def test_one_judge_per_store_and_bad_options_exit_2(env: dict[str, Any]) -> None:
    server = env["serve"]({"default": {"verdict": "correct"}})
    assert grade(env).exit_code == 0
    assert grade(env, *judge_args(server, "judge-a")).exit_code == 0
    before = len(server.requests())
    r = grade(env, *judge_args(server, "judge-b"))
    assert r.exit_code == 2
    assert f"already holds judge grades of p{PROMPT_VERSION}:judge-a" in r.output and "judge-b" in r.output
    assert len(server.requests()) == before  # refused before anything was sent
    r = grade(env, "--judge-endpoint", server.url)
    assert r.exit_code == 2 and "--judge-endpoint and --judge-model go together" in r.output
    r = grade(env, "--judge-endpoint", "localhost:1234", "--judge-model", "m")
    assert r.exit_code == 2 and "must be an http(s) URL" in r.output


def test_consensus_is_graded_and_listed_like_any_grader(env: dict[str, Any]) -> None:
    r = invoke("grade", "--graders", "consensus", "--quiet", *env["args"])
    assert r.exit_code == 0, r.output
    store = Store(env["store"])
    (key,) = store.unit_keys()
    grades = {g.problem_id: g for g in store.read_grades(key, "consensus")}
    assert set(grades) == set(ANSWERS)
    assert {g.grader_version for g in grades.values()} == {get_grader("consensus").version}
    assert grades["test/number_theory/572.json"].verdict == "correct"  # a finished prose answer
    assert grades["test/prealgebra/1622.json"].verdict == "incorrect"  # boxed 41, gold 42
    listing = invoke("ls", "graders")
    assert listing.exit_code == 0 and "consensus" in listing.output
