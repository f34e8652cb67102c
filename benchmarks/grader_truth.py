"""Benchmark: how often each grader is right on the grader truth set, by split and category.

The truth set (``rlvr_audit/grading/data/grader_truth.jsonl``, :mod:`rlvr_audit.grading.truth`)
holds real responses whose verdict was decided by careful reading. Every registered grader (or
``--graders``) grades each case's ``response_tail`` in worker processes, exactly as ``rlvr-audit
grade`` would; the script prints, per split (``tune``: rules may be chosen on it; ``held_out``: only
measured; ``all``), grader and category:

- **accuracy**: the grader's verdict (``correct`` vs anything else) matches the truth;
- **false-accept rate**: graded ``correct`` among the truly incorrect cases;
- **false-reject rate**: not graded ``correct`` among the truly correct cases;

each with a Wilson score interval at ``--level`` (95% by default; ``scipy.stats.binomtest(...)
.proportion_ci(method="wilson")``). Then the accuracy of every grader on each disagreement
pattern (which graders accept | which reject), and the held-out check the ``consensus``
grader must pass: its held-out accuracy against every single grader's.

With ``--judge-endpoint URL --judge-model NAME`` it also asks that OpenAI-compatible server
(:mod:`rlvr_audit.grading.judge`) about every case on which the four rule-based graders
disagree (the only samples ``grade --judge-endpoint`` sends), and reports the judge's
agreement with the truth there and the accuracy of the ``judge`` grader as the store records
it (unanimous verdicts where the graders agree, the judge's where they disagree). Nothing is
sent without the option.

Run::

    python benchmarks/grader_truth.py                           # about a minute on 2 cores
    python benchmarks/grader_truth.py --csv out.csv             # also write the full table
    python benchmarks/grader_truth.py --judge-endpoint http://localhost:8000/v1 --judge-model Qwen/Qwen2.5-7B-Instruct

Figures (truth set v3: 413 cases, 313 tune, 100 held out; graders of this commit; the closing
lines this script prints)::

    held-out accuracy: consensus 91.0% (91/100); math_verify 89.0% (89/100), paper 84.0% (84/100),
    boxed_strict 84.0% (84/100), minerva 87.0% (87/100)
    consensus beats every single grader on the held-out split: yes

The ``consensus`` module docstring says how its rule was chosen and what the lead means.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from rlvr_audit.grading import GRADERS
from rlvr_audit.grading.adjudication import ALL, accuracy_table, compare_on_split, grade_truth_cases, pattern_accuracy
from rlvr_audit.grading.truth import DEFAULT_TRUTH_SET, load_truth_set

BASE_GRADERS = ("math_verify", "paper", "boxed_strict", "minerva")
"""The rule-based graders whose disagreements the judge is asked about."""


def _pct(x: float) -> str:
    return "  -  " if pd.isna(x) else f"{100 * x:5.1f}"


def _rate(row: pd.Series, stem: str, k: str, n: str) -> str:
    if row[n] == 0:
        return f"{'-':>24}"
    rate, low, high = row[f"{stem}_rate"], row[f"{stem}_low"], row[f"{stem}_high"]
    return f"{_pct(rate)} [{_pct(low)},{_pct(high)}] {int(row[k]):>3}/{int(row[n]):<3}"


def print_accuracy(table: pd.DataFrame, *, split: str, categories: bool) -> None:
    """One block per split: a line per grader (and per category under it)."""
    part = table[table["split"] == split]
    print(f"\n== split: {split} ==")
    head = f"{'grader':<13} {'category':<16} {'accuracy [CI] right/n':<27} {'false accept [CI] k/n':<27} "
    print(head + "false reject [CI] k/n")
    for _, row in part.iterrows():
        if row["category"] != ALL and not categories:
            continue
        acc = f"{_pct(row['accuracy'])} [{_pct(row['accuracy_low'])},{_pct(row['accuracy_high'])}]"
        acc += f" {int(row['n_right']):>3}/{int(row['n']):<3}"
        fa = _rate(row, "false_accept", "false_accepts", "n_truly_incorrect")
        fr = _rate(row, "false_reject", "false_rejects", "n_truly_correct")
        name = row["grader"] if row["category"] == ALL else ""
        print(f"{name:<13} {row['category']:<16} {acc:<27} {fa:<27} {fr}")


def print_patterns(patterns: pd.DataFrame) -> None:
    print("\n== disagreement patterns (accepting | rejecting), all splits: % right [CI] ==")
    for pattern, group in patterns.groupby("pattern", sort=False):
        n = int(group["n"].iloc[0])
        cells = "  ".join(
            f"{r.grader} {_pct(r.accuracy)} [{_pct(r.accuracy_low)},{_pct(r.accuracy_high)}]"
            for r in group.itertuples()
        )
        print(f"{pattern}  (n={n}): {cells}")


def judge_block(args: argparse.Namespace, truth_cases: list, graded: pd.DataFrame) -> None:
    """Ask the judge about the cases the base graders disagree on; print its agreement with the truth."""
    from concurrent.futures import ThreadPoolExecutor

    from rlvr_audit.grading.adjudication import wilson_interval
    from rlvr_audit.grading.judge import JudgeClient, JudgeSettings

    base = graded[graded["grader"].isin(BASE_GRADERS)]
    wide = base.pivot_table(index="case_id", columns="grader", values="accepted", aggfunc="first")
    disagree = {str(i) for i, row in wide.iterrows() if row.nunique() > 1}
    unanimous = {str(i): bool(row.iloc[0]) for i, row in wide.iterrows() if row.nunique() == 1}
    cases = [c for c in truth_cases if c.id in disagree]
    settings = JudgeSettings(
        endpoint=args.judge_endpoint, model=args.judge_model, timeout=args.judge_timeout, concurrency=4
    )
    client = JudgeClient(settings)
    print(f"\n== judge {args.judge_model} at {args.judge_endpoint} (version {settings.version}) ==")
    names = ", ".join(BASE_GRADERS)
    print(f"{len(cases)} of {len(truth_cases)} cases are disagreements of {names}; asking about those")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
        results = list(
            pool.map(lambda c: client.judge(problem=c.problem, gold=c.gold, response=c.response_tail), cases)
        )
    errors = [r for r in results if r.verdict is None]
    print(f"{len(cases) - len(errors)} answered, judge_error {len(errors)}, {time.perf_counter() - started:.1f} s")
    for r in errors[:3]:
        print(f"  judge_error: {r.error}")
    verdicts = {c.id: r.verdict for c, r in zip(cases, results, strict=True)}

    def line(label: str, oks: list[int]) -> None:
        if not oks:
            return
        lo, hi = wilson_interval(sum(oks), len(oks), level=args.level)
        print(f"  {label:<44} {_pct(sum(oks) / len(oks))}% [{_pct(lo)},{_pct(hi)}] ({sum(oks)}/{len(oks)})")

    print("agreement with the truth on the disagreements (judge errors left out):")
    for split in ("tune", "held_out", ALL):
        mine = [c for c in cases if split == ALL or c.split == split]
        line(split, [int(verdicts[c.id] == c.verdict) for c in mine if verdicts[c.id] is not None])
    print("for scale, a judge that always says 'correct' on the same cases:")
    for split in ("tune", "held_out", ALL):
        mine = [c for c in cases if (split == ALL or c.split == split) and verdicts[c.id] is not None]
        line(split, [int(c.verdict == "correct") for c in mine])
    print("the judge grader as stored (graders' verdict where they agree, a judge error counts as wrong):")
    for split in ("tune", "held_out", ALL):
        mine = [c for c in truth_cases if split == ALL or c.split == split]
        oks = []
        for c in mine:
            if c.id in unanimous:
                oks.append(int(unanimous[c.id] == (c.verdict == "correct")))
            else:
                oks.append(int(verdicts.get(c.id) == c.verdict))
        line(split, oks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--truth", type=Path, default=DEFAULT_TRUTH_SET, help="truth-set file")
    parser.add_argument("--graders", default=",".join(GRADERS), help="comma-separated grader ids (default: all)")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of the Wilson intervals")
    parser.add_argument("--workers", type=int, default=None, help="grading worker processes (default: all cores)")
    parser.add_argument("--timeout", type=float, default=20.0, help="wall-clock seconds per grading step")
    parser.add_argument("--no-categories", action="store_true", help="only the per-grader lines")
    parser.add_argument("--csv", type=Path, default=None, help="write the accuracy table here")
    parser.add_argument("--judge-endpoint", default=None, help="OpenAI-compatible base URL (…/v1) of a judge")
    parser.add_argument("--judge-model", default=None, help="the judge's model name on that server")
    parser.add_argument("--judge-timeout", type=float, default=60.0, help="seconds per judge request")
    args = parser.parse_args(argv)
    if (args.judge_endpoint is None) != (args.judge_model is None):
        parser.error("--judge-endpoint and --judge-model go together")
    graders = [g for g in args.graders.split(",") if g]
    truth = load_truth_set(args.truth)
    print(
        f"truth set {args.truth.name}: {len(truth.cases)} cases "
        f"({len(truth.split('tune'))} tune, {len(truth.split('held_out'))} held out); graders: {', '.join(graders)}"
    )
    started = time.perf_counter()
    graded = grade_truth_cases(truth.cases, graders, workers=args.workers, timeout=args.timeout)
    print(f"graded {len(graded)} (case, grader) pairs in {time.perf_counter() - started:.1f} s")
    table = accuracy_table(graded, level=args.level)
    for split in ("tune", "held_out", ALL):
        print_accuracy(table, split=split, categories=not args.no_categories)
    base = [g for g in BASE_GRADERS if g in graders]
    if len(base) >= 2:
        print_patterns(pattern_accuracy(graded, base, level=args.level))
    if args.csv is not None:
        table.to_csv(args.csv, index=False)
        print(f"\nwrote {args.csv}")
    if args.judge_endpoint is not None:
        judge_block(args, list(truth.cases), graded)
    if "consensus" not in graders:
        return 0
    held = compare_on_split(graded, split="held_out")
    note = f" ({len(held.left_out)} case(s) left out: a grader timed out on them)" if held.left_out else ""
    others = ", ".join(f"{g} {100 * k / held.n:.1f}% ({k}/{held.n})" for g, k in held.right.items() if g != "consensus")
    mine = held.right["consensus"]
    print(f"\nheld-out accuracy{note}: consensus {100 * mine / held.n:.1f}% ({mine}/{held.n}); {others}")
    beaten = held.beats_all("consensus")
    print("consensus beats every single grader on the held-out split:", "yes" if beaten else "NO")
    return 0 if beaten else 1


if __name__ == "__main__":
    sys.exit(main())
