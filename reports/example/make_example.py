"""Regenerate the committed example report in this folder (no model, no GPU, no network).

    .venv/bin/python reports/example/make_example.py [--data-dir ../shared/data/benchmarks]

Builds a small store with the ``scripted`` backend: two toy families (``toy-math``, a base that
learns from RLVR, and ``toy-llama``, one that barely does), each a base model and two RLVR
checkpoints (``random`` and ``ground_truth`` rewards), answering the first 16 MATH-500 problems
(toy-math under two prompt templates); the answers are drawn from fixed per-checkpoint accuracies with a
seeded generator (language or code reasoning, sometimes an unboxed final answer, so graders
disagree). Then grades with ``math_verify`` and ``boxed_strict``, writes the report, replaces
``index.md``, ``index.html``, ``tables/``, ``figures/`` and ``samples/`` here, and takes
``screenshot.png`` (the README's picture) with headless Chromium when one is installed.

The numbers are synthetic: the example shows what the tool produces, not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

REGISTRY = """\
families:
  toy-math:
    display_name: Toy-Math (learns from RLVR)
    checkpoints:
      base:
        model: example/toy-math-base
        prompt: qwen_math_default
      random:
        model: example/toy-math-random
        base: toy-math/base
        reward: random
        step: 150
        prompt: qwen_math_default
      ground_truth:
        model: example/toy-math-gt
        base: toy-math/base
        reward: ground_truth
        step: 150
        prompt: qwen_math_default
  toy-llama:
    display_name: Toy-Llama (barely moves)
    checkpoints:
      base:
        model: example/toy-llama-base
        prompt: qwen_math_default
      random:
        model: example/toy-llama-random
        base: toy-llama/base
        reward: random
        step: 150
        prompt: qwen_math_default
      ground_truth:
        model: example/toy-llama-gt
        base: toy-llama/base
        reward: ground_truth
        step: 150
        prompt: qwen_math_default
"""

N_PROBLEMS = 16
PROMPTS = {"qwen_math_default": "toy-math/*,toy-llama/*", "no_template": "toy-math/*"}
"""Template -> the checkpoints run under it (the sweep compares templates for toy-math)."""
# checkpoint -> (accuracy, share of code reasoning, share of unboxed final answers)
BEHAVIOUR = {
    "toy-math/base": (0.50, 0.35, 0.15),
    "toy-math/random": (0.70, 0.80, 0.05),
    "toy-math/ground_truth": (0.78, 0.45, 0.02),
    "toy-llama/base": (0.25, 0.05, 0.20),
    "toy-llama/random": (0.25, 0.05, 0.25),
    "toy-llama/ground_truth": (0.33, 0.05, 0.10),
}
PROMPT_EFFECT = {"qwen_math_default": 0.0, "no_template": -0.12}
"""Accuracy added under each template (the raw question without a chat template hurts)."""


def wrong_answer(answer: str) -> str:
    """A plausible wrong answer."""
    try:
        return str(int(answer) + 1)
    except ValueError:
        return "0" if answer.strip() != "0" else "1"


def response(rng: random.Random, question: str, answer: str, *, right: bool, code: bool, boxed: bool) -> str:
    """A synthetic response in language or code style ending in ``answer`` (or a wrong one)."""
    final = answer if right else wrong_answer(answer)
    statement = f"The final answer is $\\boxed{{{final}}}$." if boxed else f"So the final answer is {final}."
    first = question.split(".")[0].splitlines()[0][:80]
    if code:
        return (
            "Let's solve this step by step with Python.\n"
            "```python\n"
            "from sympy import *\n\n"
            "def solve():\n"
            f"    # {first}\n"
            f"    result = {json.dumps(final)}\n"
            "    return result\n\n"
            "print(solve())\n"
            "```\n"
            f"```output\n{final}\n```\n"
            f"{statement}"
        )
    step = rng.choice(
        [
            "Let $x$ be the unknown. Writing the condition as an equation, $x$ satisfies it.",
            "We simplify: \\frac{a}{b} \\cdot \\frac{b}{c} = \\frac{a}{c}, and substitute.",
            "Consider the cases separately; only one of them is consistent with the constraints.",
        ]
    )
    return (
        f"We need to work out: {first}.\n\n{step}\n\nChecking the result against the problem once more.\n\n{statement}"
    )


def script(problems: list[dict[str, str]], prompt: str) -> dict[str, dict[str, str]]:
    """The scripted backend's answers for every checkpoint under one prompt template."""
    out: dict[str, dict[str, str]] = {}
    for checkpoint, (accuracy, code_share, unboxed) in BEHAVIOUR.items():
        rng = random.Random(f"{checkpoint}|{prompt}")
        answers = {}
        for p in problems:
            right = rng.random() < accuracy + PROMPT_EFFECT[prompt]
            code = rng.random() < code_share
            boxed = rng.random() >= unboxed
            answers[p["id"]] = response(rng, p["problem"], p["answer"], right=right, code=code, boxed=boxed)
        out[checkpoint] = answers
    return out


def chromium() -> str | None:
    """A headless Chromium binary, if one is installed."""
    for name in (os.environ.get("RLVR_AUDIT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def screenshot(page: Path, out: Path, size: str) -> bool:
    """Save a PNG of ``page`` (a file) taken by headless Chromium; ``False`` when none is installed."""
    binary = chromium()
    if binary is None:
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                f"--screenshot={out}",
                page.as_uri(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
    return True


def main() -> int:
    """Build the store, the report and the screenshot; replace the example report here."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "benchmarks")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    if not (data_dir / "math500.jsonl").is_file():
        print(f"no math500.jsonl in {data_dir}: pass --data-dir", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from typer.testing import CliRunner

    from rlvr_audit.cli import app

    problems = [json.loads(line) for line in (data_dir / "math500.jsonl").read_text().splitlines()[:N_PROBLEMS]]
    work = Path(tempfile.mkdtemp(prefix="rlvr-audit-example-"))
    cwd = Path.cwd()
    try:
        os.chdir(work)  # relative store path: the report names the store `store`, not this machine's path
        Path("checkpoints.yaml").write_text(REGISTRY)
        common = ["--config-dir", str(ROOT), "--registry", "checkpoints.yaml", "--store", "store"]
        runner = CliRunner()
        for prompt, checkpoints in PROMPTS.items():
            Path(f"script-{prompt}.json").write_text(json.dumps(script(problems, prompt), indent=1))
            result = runner.invoke(
                app,
                [
                    "run",
                    "--backend",
                    "scripted",
                    "--model-args",
                    f"script=script-{prompt}.json",
                    "--checkpoints",
                    checkpoints,
                    "--tasks",
                    "math500",
                    "--prompts",
                    prompt,
                    "--limit",
                    str(N_PROBLEMS),
                    "--graders",
                    "math_verify,boxed_strict",
                    "--data-dir",
                    str(data_dir),
                    "--no-browser",
                    "--quiet",
                    "--report-dir",
                    "partial",
                    *common,
                ],
                catch_exceptions=False,
            )
            if result.exit_code != 0:
                print(result.output, file=sys.stderr)
                return result.exit_code
        result = runner.invoke(
            app, ["report", "--name", "example", "--report-dir", "report", *common], catch_exceptions=False
        )
        if result.exit_code != 0:
            print(result.output, file=sys.stderr)
            return result.exit_code
        for name in ("index.md", "index.html", "tables", "figures", "samples"):
            target = HERE / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            source = work / "report" / name
            if source.is_dir():
                shutil.copytree(source, target)
            elif source.exists():
                shutil.copy2(source, target)
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    if screenshot(HERE / "index.html", HERE / "screenshot.png", "1280,1400"):
        print(f"wrote {HERE / 'screenshot.png'}")
    else:
        print("no Chromium installed: screenshot.png left as it was", file=sys.stderr)
    size = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"example report in {HERE} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
