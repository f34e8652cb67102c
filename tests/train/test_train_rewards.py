"""The rewards on canned responses, from worker threads as verl calls them; the random reward
is reproducible across processes."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from rlvr_audit.core.errors import ConfigError
from rlvr_audit.train.rewards import compute_score, random_draw

GOOD = "We add them. So the final answer is $\\boxed{\\frac{1}{2}}$."
WRONG = "Therefore the answer is $\\boxed{3}$."
EQUIVALENT = "Simplifying, we get $\\boxed{0.5}$."  # needs the symbolic step of the paper grader
PYTHON = "Let's solve this using Python.\n```python\nprint(1/2)\n```\nThe answer is $\\boxed{\\frac12}$."
LOOP = "Let me check again. " * 40


def score(reward: dict[str, Any], response: str, label: str = "\\frac{1}{2}", question: str = "q1") -> float:
    return compute_score("rlvr_audit", response, label, {"question": question, "index": 0}, reward=reward)


CASES = [
    # (reward, response, label, expected)
    ({"name": "ground_truth"}, GOOD, "\\frac{1}{2}", 1.0),
    ({"name": "ground_truth"}, WRONG, "\\frac{1}{2}", 0.0),
    ({"name": "ground_truth"}, "", "\\frac{1}{2}", 0.0),
    ({"name": "ground_truth"}, PYTHON, "\\frac{1}{2}", 1.0),  # \frac12 normalised
    ({"name": "ground_truth"}, "The answer is $\\boxed{070}$", "70", 1.0),
    ({"name": "ground_truth", "grader": "boxed_strict"}, GOOD, "\\frac{1}{2}", 1.0),
    ({"name": "ground_truth", "grader": "boxed_strict"}, EQUIVALENT, "\\frac{1}{2}", 0.0),
    ({"name": "majority_vote"}, WRONG, "3", 1.0),
    ({"name": "incorrect"}, WRONG, "3", 1.0),
    ({"name": "incorrect"}, GOOD, "3", 0.0),
    ({"name": "format_boxed"}, WRONG, "x", 1.0),
    ({"name": "format_boxed"}, "The answer is $\\boxed{ }$", "x", 0.0),
    ({"name": "format_boxed"}, "The answer is 3.", "x", 0.0),
    ({"name": "format_boxed"}, "cut off \\boxed{3", "x", 0.0),
    ({"name": "python"}, PYTHON, "x", 1.0),
    ({"name": "python"}, "I would use PYTHON here", "x", 1.0),
    ({"name": "python"}, GOOD, "x", 0.0),
    ({"name": "python", "negate": True}, GOOD, "x", 1.0),
    ({"name": "no_repetition"}, GOOD, "x", 1.0),
    ({"name": "no_repetition"}, LOOP, "x", 0.0),
    ({"name": "random", "gamma": 0.0}, GOOD, "x", 0.0),
    ({"name": "random", "gamma": 1.0}, WRONG, "x", 1.0),
    (
        {"name": "compound", "rewards": [{"name": "ground_truth"}, {"name": "python", "negate": True}]},
        GOOD,
        "\\frac{1}{2}",
        1.0,
    ),
    (
        {"name": "compound", "rewards": [{"name": "ground_truth"}, {"name": "python", "negate": True}]},
        PYTHON,
        "\\frac{1}{2}",
        0.0,
    ),
    ({"name": "compound", "op": "or", "rewards": [{"name": "python"}, {"name": "format_boxed"}]}, WRONG, "x", 1.0),
    ({"name": "compound", "negate": True, "rewards": [{"name": "python"}, {"name": "format_boxed"}]}, PYTHON, "x", 0.0),
]


@pytest.mark.parametrize(("reward", "response", "label", "expected"), CASES)
def test_rewards_on_canned_responses(reward: dict[str, Any], response: str, label: str, expected: float) -> None:
    assert score(reward, response, label) == expected


def test_rewards_from_worker_threads() -> None:
    """verl calls compute_score from executor threads: every case, and the symbolic comparisons
    that need a time limit (paper grader's sympy step, math-verify), give the same answers."""
    cases = [*CASES, ({"name": "ground_truth"}, EQUIVALENT, "\\frac{1}{2}", 1.0)]
    cases += [
        ({"name": "ground_truth", "grader": "math_verify"}, GOOD, "\\frac{1}{2}", 1.0),
        ({"name": "ground_truth", "grader": "math_verify"}, EQUIVALENT, "\\frac{1}{2}", 1.0),
        ({"name": "ground_truth", "grader": "math_verify"}, WRONG, "\\frac{1}{2}", 0.0),
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(score, r, resp, label) for r, resp, label, _ in cases]
        got = [f.result(timeout=120) for f in futures]
    assert got == [expected for *_, expected in cases]


def test_reward_kwargs_as_verl_passes_them() -> None:
    """verl hands reward_kwargs values as OmegaConf containers: plain mappings work too."""

    class Config(Mapping[str, Any]):
        def __init__(self, data: dict[str, Any]) -> None:
            self.data = data

        def __getitem__(self, key: str) -> Any:
            value = self.data[key]
            return Config(value) if isinstance(value, dict) else value

        def __iter__(self) -> Any:
            return iter(self.data)

        def __len__(self) -> int:
            return len(self.data)

    reward = Config({"name": "compound", "rewards": [{"name": "format_boxed"}, {"name": "python", "negate": True}]})
    assert compute_score("src", GOOD, "x", extra_info=Config({"question": "q"}), reward=reward) == 1.0
    assert compute_score("src", GOOD, "\\frac{1}{2}") == 1.0  # no spec: ground truth


def test_a_bad_reward_spec_names_the_key() -> None:
    with pytest.raises(ConfigError, match="gamma"):
        score({"name": "random", "gamma": 2}, GOOD)
    with pytest.raises(ConfigError, match="'lucky'"):
        score({"name": "lucky"}, GOOD)


def test_random_reward_rate_and_determinism() -> None:
    reward = {"name": "random", "gamma": 0.3, "seed": 7}
    draws = [score(reward, f"response {i}", question=f"q{i % 13}") for i in range(4000)]
    assert abs(sum(draws) / len(draws) - 0.3) < 0.03
    assert draws == [score(reward, f"response {i}", question=f"q{i % 13}") for i in range(4000)]
    # the draw depends on the seed, the prompt and the response
    base = random_draw(seed=7, prompt="q", response="r")
    assert base != random_draw(seed=8, prompt="q", response="r")
    assert base != random_draw(seed=7, prompt="q2", response="r")
    assert base != random_draw(seed=7, prompt="q", response="r2")


def test_random_reward_is_reproducible_across_processes() -> None:
    reward = {"name": "random", "gamma": 0.5, "seed": 42}
    items = [(f"question {i}", f"answer {i * i}") for i in range(200)]
    here = [score(reward, resp, question=q) for q, resp in items]
    code = (
        "import json, sys\n"
        "from rlvr_audit.train.rewards import compute_score\n"
        "reward, items = json.load(sys.stdin)\n"
        "print(json.dumps([compute_score('rlvr_audit', r, 'x', {'question': q}, reward=reward) for q, r in items]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([reward, items]),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert json.loads(out.stdout) == here
    assert 60 < sum(here) < 140


FIRST_CALLS_AT_ONCE = """
import threading
from rlvr_audit.train.rewards import compute_score

barrier = threading.Barrier(16)
errors = []


def call(i):
    barrier.wait()
    try:
        response = f"The answer is $\\\\boxed{{{i}}}$"
        compute_score("rlvr_audit", response, "3", {"question": "q"}, reward={"name": "ground_truth"})
    except Exception as exc:
        errors.append(repr(exc))


threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors)
"""


def test_the_first_calls_of_a_fresh_process_may_come_from_many_threads() -> None:
    """verl's reward loop calls compute_score from several executor threads at once, the very
    first time too: the graders' lazy imports must not race (seen in a verl reward-loop worker as
    "cannot import name 'PaperGrader' from partially initialized module"; about half of fresh
    processes hit it before the fix, so ten in a row pass by luck well under 1% of the time)."""
    for _ in range(10):
        out = subprocess.run([sys.executable, "-c", FIRST_CALLS_AT_ONCE], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]
