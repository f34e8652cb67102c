"""Bad configuration, table-driven: every malformed registry, task file, prompt file and option
makes ``rlvr-audit run`` exit with code 2 and one line naming the file (or option), the key and
what was expected, and nothing is written (no store, no report).

Each case starts from a private copy of a small valid configuration (the toy registry, the
project's ``math500`` task and ``no_template`` prompt) and changes one thing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability_helpers import DATA, REGISTRY, ROOT, needs_data, one_line
from typer.testing import CliRunner

from rlvr_audit.cli import app

pytestmark = needs_data


@dataclass(frozen=True)
class Case:
    """One malformed input."""

    file: str
    """File changed (relative to the config folder), or ``""`` for a command-line option."""
    change: Callable[[str], str | bytes] | None
    """How the file's text is changed."""
    expect: tuple[str, ...]
    """Fragments the one-line message must hold (file name, key, expectation)."""
    args: tuple[str, ...] = ()
    """Options replacing or added to the valid command line."""


def sub(old: str, new: str) -> Callable[[str], str]:
    def change(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return change


REG = "checkpoints.yaml"
TASK = "tasks/math500.yaml"
PROMPT = "prompts/no_template.yaml"

CASES: dict[str, Case] = {
    # ---- the checkpoint registry
    "registry-unknown-key": Case(
        REG,
        sub("reward: random", "reward: random\n        lr: 1e-6"),
        (REG, "families.toy.checkpoints.rl.lr", "unknown key", "valid keys here"),
    ),
    "registry-step-not-a-number": Case(
        REG, sub("step: 50", "step: fifty"), (REG, "families.toy.checkpoints.rl.step", "integer")
    ),
    "registry-missing-model": Case(
        REG, sub("        model: org/toy-rl\n", ""), (REG, "families.toy.checkpoints.rl.model", "missing")
    ),
    "registry-unknown-base": Case(REG, sub("base: toy/base", "base: toy/nope"), (REG, "toy/nope", "base")),
    "registry-unknown-prompt": Case(
        REG,
        sub("reward: random\n        step: 50\n        prompt: no_template", "step: 50\n        prompt: fancy"),
        (REG, "fancy", "prompt"),
    ),
    "registry-yaml-syntax": Case(REG, sub("families:", "families: ["), (REG, "invalid YAML at line")),
    "registry-not-a-mapping": Case(REG, lambda _: "- toy\n- base\n", (REG, "mapping")),
    "registry-empty": Case(REG, lambda _: "", (REG, "mapping")),
    "registry-duplicate-key": Case(
        REG,
        sub("        model: org/toy-rl\n", "        model: org/toy-rl\n        model: org/other\n"),
        (REG, "model", "duplicate key"),
    ),
    # ---- the task file
    "task-unknown-key": Case(TASK, sub("repeats: 1", "repeats: 1\nrepeat: 2"), (TASK, "repeat", "unknown key")),
    "task-temperature-not-a-number": Case(
        TASK, sub("temperature: 0.0", "temperature: hot"), (TASK, "generation_kwargs.temperature", "number")
    ),
    "task-negative-tokens": Case(
        TASK, sub("max_gen_toks: 3072", "max_gen_toks: -5"), (TASK, "generation_kwargs.max_gen_toks", "greater")
    ),
    "task-zero-repeats": Case(TASK, sub("repeats: 1", "repeats: 0"), (TASK, "repeats", "greater")),
    "task-unknown-rlvr-key": Case(
        TASK,
        sub("    expected_size: 500", "    expected_size: 500\n    grader: paper"),
        (TASK, "metadata.rlvr_audit.grader", "unknown key"),
    ),
    "task-answer-field-absent-from-data": Case(
        TASK, sub("answer_field: answer", "answer_field: solution_text"), ("math500", "solution_text")
    ),
    "task-yaml-syntax": Case(TASK, sub("repeats: 1", "repeats: [1"), (TASK, "invalid YAML at line")),
    # ---- the prompt file
    "prompt-unknown-key": Case(
        PROMPT, sub("chat: false", "chat: false\ntemperature: 0.7"), (PROMPT, "temperature", "unknown key")
    ),
    "prompt-chat-not-a-boolean": Case(PROMPT, sub("chat: false", "chat: maybe"), (PROMPT, "chat", "boolean")),
    "prompt-without-question": Case(
        PROMPT, sub("text: '{question}'", "text: 'Solve it.'"), (PROMPT, "text", "{question}")
    ),
    "prompt-chat-without-user": Case(PROMPT, sub("chat: false", "chat: true"), (PROMPT, "user", "{question}")),
    "prompt-not-utf8": Case(PROMPT, lambda t: t.encode("utf-8") + b"# caf\xe9\n", (PROMPT, "not UTF-8")),
    "prompt-yaml-syntax": Case(PROMPT, sub("chat: false", "chat: [false"), (PROMPT, "invalid YAML at line")),
    # ---- options
    "option-samples-zero": Case("", None, ("--samples", ">= 1"), ("--samples", "0")),
    "option-negative-temperature": Case("", None, ("--temperature", ">= 0"), ("--temperature", "-0.5")),
    "option-top-p-zero": Case("", None, ("--top-p", "(0, 1]"), ("--top-p", "0")),
    "option-top-p-above-one": Case("", None, ("--top-p", "(0, 1]"), ("--top-p", "1.5")),
    "option-max-new-tokens-zero": Case("", None, ("--max-new-tokens", ">= 1"), ("--max-new-tokens", "0")),
    "option-limit-negative": Case("", None, ("--limit", "positive"), ("--limit", "-3")),
    "option-batch-size-zero": Case("", None, ("--batch-size", ">= 1"), ("--batch-size", "0")),
    "option-save-every-zero": Case("", None, ("--save-every", ">= 1"), ("--save-every", "0")),
    "option-grade-save-every-zero": Case("", None, ("--grade-save-every", ">= 1"), ("--grade-save-every", "0")),
    "option-timeout-zero": Case("", None, ("--timeout", "> 0"), ("--timeout", "0")),
    "option-timeout-nan": Case("", None, ("--timeout", "> 0"), ("--timeout", "nan")),
    "option-timeout-infinite": Case("", None, ("--timeout", "finite"), ("--timeout", "inf")),
    "option-level-one": Case("", None, ("--level", "(0, 1)"), ("--level", "1")),
    "option-level-nan": Case("", None, ("--level", "(0, 1)"), ("--level", "nan")),
    "option-resamples-few": Case("", None, ("--resamples", ">= 100"), ("--resamples", "10")),
    "option-ci-method": Case("", None, ("--ci-method", "percentile, bca"), ("--ci-method", "student")),
    "option-page-size-zero": Case("", None, ("--browser-page-size", ">= 1"), ("--browser-page-size", "0")),
    "option-empty-graders": Case("", None, ("no graders given",), ("--graders", ",")),
    "option-unknown-task": Case("", None, ("unknown task 'math5000'", "math500"), ("--tasks", "math5000")),
    "model-args-accuracy-above-one": Case(
        "", None, ("scripted backend", "accuracy", "[0, 1]"), ("--model-args", "accuracy=1.5")
    ),
    "model-args-delay-not-a-number": Case(
        "", None, ("scripted backend", "delay", "number"), ("--model-args", "accuracy=0.6,delay=soon")
    ),
    "model-args-negative-delay": Case(
        "", None, ("scripted backend", "delay", ">= 0"), ("--model-args", "accuracy=0.6,delay=-1")
    ),
    "model-args-unknown": Case("", None, ("scripted backend", "temperatur", "valid"), ("--model-args", "temperatur=1")),
    "model-args-missing-script": Case(
        "", None, ("scripted backend", "cannot read script", "nope.json"), ("--model-args", "script=nope.json")
    ),
}


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config"
    (cfg / "tasks").mkdir(parents=True)
    (cfg / "prompts").mkdir()
    shutil.copy(ROOT / TASK, cfg / TASK)
    shutil.copy(ROOT / PROMPT, cfg / PROMPT)
    (cfg / REG).write_text(REGISTRY, encoding="utf-8")
    return cfg


def command(cfg: Path, replace: tuple[str, ...]) -> list[str]:
    args = ["run", "--backend", "scripted", "--model-args", "accuracy=0.6", "--checkpoints", "toy/rl"]
    args += ["--tasks", "math500", "--limit", "2", "--quiet", "--no-browser", "--resamples", "200"]
    args += ["--config-dir", str(cfg), "--data-dir", str(DATA), "--store", str(cfg.parent / "store")]
    args += ["--report-dir", str(cfg.parent / "report")]
    for i in range(0, len(replace), 2):
        flag, value = replace[i], replace[i + 1]
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    return args


def test_the_unchanged_configuration_runs(config: Path) -> None:
    """The baseline every case changes is valid (so each failure below is the change's)."""
    r = CliRunner().invoke(app, command(config, ()), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert (config.parent / "report" / "tables" / "estimates.csv").is_file()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_configuration_exits_2_with_one_line_and_writes_nothing(config: Path, name: str) -> None:
    case = CASES[name]
    if case.change is not None:
        path = config / case.file
        changed = case.change(path.read_text(encoding="utf-8"))
        path.write_bytes(changed if isinstance(changed, bytes) else changed.encode("utf-8"))
    r = CliRunner().invoke(app, command(config, case.args), catch_exceptions=False)
    lines = [line for line in r.output.strip().splitlines() if line.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    message = one_line(r.output)
    for fragment in case.expect:
        assert fragment in message, (fragment, message)
    assert not (config.parent / "store").exists() and not (config.parent / "report").exists()


# ---- train specs (rlvr_audit/train: `rlvr-audit train plan`)

SPEC = ROOT / "experiments" / "qwen2.5-math-7b-random.yaml"
SPEC_CASES: dict[str, tuple[Callable[[str], str], tuple[str, ...]]] = {
    "unknown-key": (sub("  seed: 0\n", "  seed: 0\n  sharpness: 3\n"), ("reward.random.sharpness", "unknown key")),
    "gamma-above-one": (sub("gamma: 0.5", "gamma: 2"), ("reward.random.gamma", "less than or equal to 1")),
    "negative-steps": (sub("steps: 150", "steps: -1"), ("steps", "greater than or equal to 1")),
    "unknown-clipping": (sub("clipping: standard", "clipping: sometimes"), ("clipping", "'standard'")),
    "unknown-reward": (sub("name: random", "name: vibes"), ("reward", "'vibes'", "'ground_truth'")),
    "duplicate-key": (sub("steps: 150", "steps: 150\nsteps: 300"), ("duplicate key 'steps'",)),
}


@pytest.mark.skipif(not SPEC.is_file(), reason="no experiment spec to start from")
@pytest.mark.parametrize("name", list(SPEC_CASES))
def test_bad_train_spec_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, name: str) -> None:
    change, expect = SPEC_CASES[name]
    text = SPEC.read_text(encoding="utf-8").replace("../../shared/", str(ROOT.parent / "shared") + "/")
    spec = tmp_path / "spec.yaml"
    spec.write_text(change(text), encoding="utf-8")
    run_dir = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "plan", str(spec), "--run-dir", str(run_dir), "--quiet"])
    lines = [line for line in r.output.strip().splitlines() if line.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    message = one_line(r.output)
    for fragment in (str(spec), *expect):
        assert fragment in message, (fragment, message)
    assert not run_dir.exists()
