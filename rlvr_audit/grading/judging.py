"""The ``judge`` grader: an LLM judge asked only about the samples the graders disagree on.

``rlvr-audit grade --judge-endpoint URL --judge-model NAME`` runs this after grading. For every
selected unit graded by two or more of the rule-based graders (:data:`BASE_GRADERS`, current
versions), each sample they all graded gets one ``judge`` grade:

- where they **agree** (all call it correct, or none does), their verdict, with no request
  (``extracted`` is ``math_verify``'s answer, or the first present grader's);
- where they **disagree**, the judge's verdict (:mod:`rlvr_audit.grading.judge`: a fixed,
  versioned prompt with the problem, the gold answer and the response's final part;
  ``extracted`` is the final answer the judge read).

So ``judge`` covers the same samples as the graders and appears in every table like them.
Judgements are stored as ``Grade`` records in the unit's ``grades/judge.jsonl`` with grader
version ``p<prompt version>:<judge model>``: that file is the cache, keyed by (judge model,
prompt version, sample): a sample already judged by this model and prompt is never sent again.
A store holds one judge: a unit whose judge grades come from another model or prompt version is
refused (exit 2) before anything is sent, naming both.

A **judge error** (unreachable endpoint, timeout, HTTP error after the retries, a reply that
is not JSON or whose verdict is not ``correct``/``incorrect``) is counted and reported with an
example; its sample gets no judge grade, so the next run asks again, and until then the
problem is left out of the judge's tables. The run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from ..core.errors import UsageError
from ..core.records import Grade
from ..core.store import Store
from ..core.ui import Progress
from . import GRADERS, get_grader
from .judge import JudgeClient, JudgeResult, JudgeSettings

JUDGE_ID = "judge"
"""The grader id judge grades are stored under (not in :data:`~rlvr_audit.grading.GRADERS`:
it needs an endpoint)."""

BASE_GRADERS: tuple[str, ...] = ("math_verify", "paper", "boxed_strict", "minerva")
"""The rule-based graders whose disagreement sends a sample to the judge."""


@dataclass
class JudgeSummary:
    """What a judging pass did."""

    units: int = 0
    """Units with two or more base graders (the others are listed in ``skipped``)."""
    samples: int = 0
    """Samples graded by every base grader present, over those units."""
    disagreements: int = 0
    """Of those, samples on which the base graders disagree."""
    cached: int = 0
    """Samples that already had a judge grade of this model and prompt version."""
    agreed: int = 0
    """Samples given the base graders' common verdict now (no request)."""
    judged: int = 0
    """Disagreements the judge answered now."""
    judge_errors: int = 0
    """Disagreements with no verdict (judge_error): not stored, asked again next run."""
    error_examples: list[str] = field(default_factory=list)
    """The first few judge errors, ``unit problem#sample: reason``."""
    skipped: list[str] = field(default_factory=list)
    """Units left out, with why."""

    def lines(self) -> list[str]:
        """One-line notes for the command's summary."""
        out = [
            f"judge: {self.disagreements} of {self.samples} samples disagree over {self.units} units; "
            f"{self.judged} judged now, {self.cached} from the store, {self.agreed} agreements recorded; "
            f"judge_error: {self.judge_errors}"
        ]
        if self.judge_errors:
            out.append("judge errors are not stored; run the same command again to retry them. First ones:")
            out.extend(f"  {e}" for e in self.error_examples)
        out.extend(f"judge skipped {s}" for s in self.skipped)
        return out


MAX_ERROR_EXAMPLES = 3


def _current_versions() -> dict[str, str]:
    return {g: get_grader(g).version for g in BASE_GRADERS if g in GRADERS}


def judge_units(
    store: Store,
    unit_keys: Sequence[str],
    settings: JudgeSettings,
    *,
    progress: Progress,
    client: JudgeClient | None = None,
    save_every: int = 50,
) -> JudgeSummary:
    """Give every sample of ``unit_keys`` graded by two or more base graders a ``judge`` grade.

    Args:
        store: Where grades are read and judge grades appended.
        unit_keys: Units to judge.
        settings: The judge (endpoint, model, timeouts, retries, concurrency).
        progress: Advanced by one per request.
        client: The client to ask (default: :class:`~rlvr_audit.grading.judge.JudgeClient`).
        save_every: Judge grades held per unit before they are appended.

    Raises:
        UsageError: a unit already holds judge grades of another model or prompt version
            (checked for every unit before any request).
    """
    versions = _current_versions()
    summary = JudgeSummary()
    plans = []
    for key in unit_keys:
        stored = store.read_grades(key, JUDGE_ID)
        other = sorted({g.grader_version for g in stored} - {settings.version})
        if other:
            raise UsageError(
                f"unit {key} already holds judge grades of {', '.join(other)}; this run's judge is "
                f"{settings.version}. A store holds one judge: move {store.grades_path(key, JUDGE_ID)} aside "
                "(in every unit) to judge with another model or prompt"
            )
        by_grader = {}
        for g, version in versions.items():
            grades = store.read_grades(key, g, version)
            if grades:
                by_grader[g] = {(x.problem_id, x.sample_idx): x for x in grades}
        if len(by_grader) < 2:
            if store.read_generations(key):
                summary.skipped.append(
                    f"unit {key}: graded by {len(by_grader)} of {', '.join(BASE_GRADERS)}; "
                    "grade it with two or more first"
                )
            continue
        plans.append((key, by_grader, {(g.problem_id, g.sample_idx) for g in stored}))
    work: list[tuple[str, str, int, str, str, str]] = []
    for key, by_grader, cached in plans:
        summary.units += 1
        info = store.load_unit(key)
        problems = {p.problem_id: p for p in store.load_problems(info.spec.data_hash)}
        completions = {(g.problem_id, g.sample_idx): g.completion for g in store.read_generations(key)}
        common = set.intersection(*(set(m) for m in by_grader.values())) & set(completions)
        agreements: list[Grade] = []
        for sample in sorted(common, key=lambda s: (s[0], s[1])):
            outcomes = {g: m[sample] for g, m in by_grader.items()}
            accepted = {o.verdict == "correct" for o in outcomes.values()}
            summary.samples += 1
            if len(accepted) > 1:
                summary.disagreements += 1
            if sample in cached:
                summary.cached += 1
                continue
            if len(accepted) == 1:
                lead = outcomes.get("math_verify") or next(iter(outcomes.values()))
                agreements.append(_grade(key, sample, settings, lead.verdict, lead.extracted, lead.error))
                continue
            problem = problems.get(sample[0])
            if problem is None:
                summary.skipped.append(f"unit {key}: problem {sample[0]} is not in the stored task data")
                continue
            work.append((key, sample[0], sample[1], problem.question, problem.answer, completions[sample]))
        store.append_grades(key, JUDGE_ID, agreements)
        summary.agreed += len(agreements)
    if work:
        _ask(
            store,
            work,
            settings,
            summary,
            progress=progress,
            client=client or JudgeClient(settings),
            save_every=save_every,
        )
    return summary


def _grade(
    key: str,
    sample: tuple[str, int],
    settings: JudgeSettings,
    verdict: str,
    extracted: str | None,
    error: str | None = None,
) -> Grade:
    return Grade(
        unit_key=key,
        problem_id=sample[0],
        sample_idx=sample[1],
        grader_id=JUDGE_ID,
        grader_version=settings.version,
        extracted=extracted,
        verdict=verdict,  # type: ignore[arg-type]  # a base grader's verdict, or correct/incorrect
        error=error,
    )


def _ask(
    store: Store,
    work: list[tuple[str, str, int, str, str, str]],
    settings: JudgeSettings,
    summary: JudgeSummary,
    *,
    progress: Progress,
    client: JudgeClient,
    save_every: int,
) -> None:
    """Send the disagreements, ``settings.concurrency`` at a time; store verdicts as they come."""
    task = progress.add_task(f"judging · {settings.model}", total=len(work))
    pending: dict[str, list[Grade]] = {}

    def flush(key: str) -> None:
        grades = pending.pop(key, [])
        if grades:
            store.append_grades(key, JUDGE_ID, grades)

    ask: Callable[[tuple[str, str, int, str, str, str]], JudgeResult] = lambda item: client.judge(  # noqa: E731
        problem=item[3], gold=item[4], response=item[5]
    )
    pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="judge")
    try:
        futures = {pool.submit(ask, item): item for item in work}
        for future in as_completed(futures):
            key, pid, idx = futures[future][:3]
            result = future.result()
            progress.advance(task)
            if result.verdict is None:
                summary.judge_errors += 1
                if len(summary.error_examples) < MAX_ERROR_EXAMPLES:
                    summary.error_examples.append(f"{key} {pid}#{idx}: {result.error}")
                continue
            summary.judged += 1
            pending.setdefault(key, []).append(_grade(key, (pid, idx), settings, result.verdict, result.final_answer))
            if len(pending[key]) >= save_every:
                flush(key)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: drop what was not sent yet
        for key in list(pending):  # keep what was judged, even on Ctrl-C
            flush(key)


__all__ = ["BASE_GRADERS", "JUDGE_ID", "JudgeSummary", "judge_units"]
