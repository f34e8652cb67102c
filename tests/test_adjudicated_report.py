"""The report end to end with two graders: the disagreement section cites each grader's held-out
accuracy on the grader truth set, the gains are read under each grader, and the summary says so
only when a gain's verdict changes with the grader."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_judge import JudgeServer
from testbed import DATA, ROOT, TOY_REGISTRY
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.grading.adjudication import grade_truth_cases
from rlvr_audit.grading.truth import load_truth_set

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")

LIMIT = 30
GRADERS = ["math_verify", "boxed_strict"]


def integer_problems() -> list[tuple[str, str]]:
    """The problems among the first :data:`LIMIT` of MATH-500 whose gold is a plain integer."""
    rows = [json.loads(line) for line in (DATA / "math500.jsonl").read_text().splitlines()[:LIMIT]]
    return [(r["id"], r["answer"]) for r in rows if r["answer"].isdigit()]


def run_report(tmp: Path, rl_answer: str) -> tuple[str, Path]:
    """Base answers every problem wrong (boxed); the RL checkpoint answers the integer problems
    right, written as ``rl_answer`` (a format string of the gold). Returns (index.md, tables/)."""
    (tmp / "checkpoints.yaml").write_text(TOY_REGISTRY)
    problems = integer_problems()
    script = {
        "toy/base": {pid: "So the answer is $\\boxed{999999}$." for pid, _ in problems},
        "toy/rl": {pid: rl_answer.format(gold) for pid, gold in problems},
    }
    (tmp / "script.json").write_text(json.dumps(script))
    args = ["run", "--backend", "scripted", "--model-args", f"script={tmp / 'script.json'}"]
    args += ["--checkpoints", "toy/rl", "--tasks", "math500", "--prompts", "no_template", "--limit", str(LIMIT)]
    args += ["--graders", ",".join(GRADERS), "--workers", "2", "--resamples", "300", "--no-browser", "--quiet"]
    args += ["--report-dir", str(tmp / "report"), "--store", str(tmp / "store"), "--config-dir", str(ROOT)]
    args += ["--registry", str(tmp / "checkpoints.yaml"), "--data-dir", str(DATA)]
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return (tmp / "report" / "index.md").read_text(encoding="utf-8"), tmp / "report" / "tables"


def store_args(tmp: Path) -> list[str]:
    return ["--store", str(tmp / "store"), "--config-dir", str(ROOT)]


def section(md: str, title: str) -> str:
    return md.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def intro(md: str) -> str:
    return md.split("\n## ", 1)[0]


def test_unboxed_gain_the_strict_grader_misses(tmp_path: Path) -> None:
    n = len(integer_problems())
    assert n >= 10
    md, tables = run_report(tmp_path, "Adding these up, the final answer is {}.")

    # the disagreement section: held-out rates of both graders, counted again here independently
    held_out = load_truth_set().split("held_out")
    graded = grade_truth_cases(held_out, GRADERS, workers=2, timeout=30)
    left_out = set(graded.loc[graded["verdict"] == "timeout", "case_id"])
    kept = graded[~graded["case_id"].isin(left_out)]
    right = kept.groupby("grader")["right"].sum()
    adj = pd.read_csv(tables / "grader_adjudication.csv", keep_default_na=False)
    cases = adj[adj["scope"] == "cases"].set_index("grader")
    assert list(cases.index) == GRADERS and (cases["split"] == "held_out").all()
    for g in GRADERS:
        assert cases.loc[g, "n_right"] == right[g] and cases.loc[g, "n"] == 100 - len(left_out)
    dis = section(md, "Grader disagreement")
    assert f"Which grader is right: each grader's accuracy on the {100 - len(left_out)} held-out cases" in dis
    for g in GRADERS:
        acc = float(cases.loc[g, "accuracy"])
        lo, hi = float(cases.loc[g, "accuracy_low"]), float(cases.loc[g, "accuracy_high"])
        assert f"| `{g}` | {100 * acc:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] |" in dis
    # the store's disagreements (the unboxed answers) are cited with the held-out rates of their kind
    pattern = adj[(adj["scope"] == "pattern") & (adj["pattern"] == "math_verify | boxed_strict")]
    assert set(pattern["n_store_samples"]) == {n}
    n_truth = int(pattern["n"].iloc[0])
    assert n_truth > 0  # the held-out split has unboxed answers boxed_strict rejects
    mv = pattern.set_index("grader").loc["math_verify"]
    assert (
        f"{n} samples accepted by `math_verify` and rejected by `boxed_strict`: on adjudicated disagreements of "
        f"this kind ({n_truth} held-out cases), `math_verify` is right in {100 * mv['accuracy']:.1f}% ["
    ) in dis

    # gains under each grader: a gain under math_verify, nothing under boxed_strict
    gains = section(md, "Gains under each grader")
    row = next(line for line in gains.splitlines() if line.startswith("| toy/rl "))
    assert f"+{100 * n / LIMIT:.1f} [" in row and "] gain |" in row
    assert "+0.0 [" in row and "no detectable change" in row and row.endswith("| changes with the grader |")
    verdicts = pd.read_csv(tables / "gain_verdicts.csv").set_index("grader")
    assert verdicts.loc["math_verify", "verdict"] == "gain"
    assert verdicts.loc["boxed_strict", "verdict"] == "no detectable change"
    assert verdicts["changes"].all() and verdicts.loc["math_verify", "delta"] == pytest.approx(n / LIMIT)

    # and the summary says so, before any section
    head = intro(md)
    assert "The verdict on 1 of 1 gains changes with the grader" in head
    assert f"toy/rl over toy/base on math500 (avg@1): +{100 * n / LIMIT:.1f} (gain) under math_verify" in head


def test_a_gain_every_grader_sees_has_no_summary_line(tmp_path: Path) -> None:
    md, tables = run_report(tmp_path, "So the answer is $\\boxed{{{}}}$.")
    gains = section(md, "Gains under each grader")
    row = next(line for line in gains.splitlines() if line.startswith("| toy/rl "))
    assert row.count("] gain |") == 2 and row.endswith("| same under every grader |")
    assert "The verdict changes with the grader for 0 of 1 gains." in gains
    assert not pd.read_csv(tables / "gain_verdicts.csv")["changes"].any()
    assert "changes with the grader" not in intro(md)
    # no disagreement in the store: the held-out rates are still cited, no pattern of the store is
    dis = section(md, "Grader disagreement")
    assert "Which grader is right" in dis and "most frequent disagreement patterns" not in dis
    adj = pd.read_csv(tables / "grader_adjudication.csv")
    assert (adj["n_store_samples"] == 0).all()


def test_gains_are_read_under_the_judge_when_present(tmp_path: Path) -> None:
    """A judge (the local chat-completions test server) that calls every disagreement incorrect:
    the RL gain holds under math_verify only; the judge is a column of the gains, not measured
    by the truth set."""
    run_report(tmp_path, "Adding these up, the final answer is {}.")
    (tmp_path / "server").mkdir()
    server = JudgeServer(tmp_path / "server", {"default": {"verdict": "incorrect", "final_answer": "none"}})
    try:
        judge = ["--judge-endpoint", server.url, "--judge-model", "toy-judge", "--judge-retries", "0"]
        grade = ["grade", "--graders", ",".join(GRADERS), "--quiet", *store_args(tmp_path), *judge]
        r = CliRunner().invoke(app, grade, catch_exceptions=False)
        assert r.exit_code == 0, r.output
    finally:
        server.stop()
    assert len(server.requests()) == len(integer_problems())  # the unboxed answers, nothing else
    out = tmp_path / "judged"
    report = ["report", "--graders", ",".join([*GRADERS, "judge"]), "--resamples", "300", "--no-browser"]
    report += [
        "--quiet",
        "--report-dir",
        str(out),
        *store_args(tmp_path),
        "--registry",
        str(tmp_path / "checkpoints.yaml"),
    ]
    r = CliRunner().invoke(app, report, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    md = (out / "index.md").read_text(encoding="utf-8")
    gains = section(md, "Gains under each grader")
    assert "| `math_verify` | `boxed_strict` | `judge` | Verdict |" in gains
    verdicts = pd.read_csv(out / "tables" / "gain_verdicts.csv").set_index("grader")["verdict"]
    assert verdicts.to_dict() == {
        "math_verify": "gain",
        "boxed_strict": "no detectable change",
        "judge": "no detectable change",
    }
    assert "under judge." in intro(md)
    assert "`judge` not measured here" in section(md, "Grader disagreement")
    assert set(pd.read_csv(out / "tables" / "grader_adjudication.csv")["grader"]) == set(GRADERS)
