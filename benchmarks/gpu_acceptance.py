"""GPU acceptance: rlvr-audit's vLLM path on one GPU against the published numbers and a bare vLLM call.

For a machine with one GPU and the ``vllm`` extra (``pip install -e '.[vllm]'``). Evaluates
Qwen2.5-Math-1.5B base (``--model``: the registry's Hub id, or a local copy of it) on

- MATH-500, greedy, 3072 tokens, the ``qwen_math_default`` template (the paper's protocol), and
- AIME 2024, avg@8 at T=0.6, 3072 tokens, the same template,

through rlvr-audit's own pipeline (plan, one engine call per unit, store, grade with ``paper`` and
``math_verify``), prints each accuracy beside the claims ledger's published numbers for that model
(``checkpoints.yaml``), then sends exactly the same requests (token ids, sampling parameters, seeds)
through a bare ``vllm.LLM.generate`` call on the same loaded engine and prints the overhead ratio
(rlvr-audit's generation time / the bare call's; target <= 1.05) and how many samples came out
identical. Both timings exclude the model load (one engine serves both), and the prefix cache is
reset before each.

Exit status: 0 when every reference number holds, 1 when an accuracy under the ``paper`` grader is
further from its reference published number than that number's interval, or the overhead ratio is
above ``--max-overhead``; 2 for bad arguments. The reference for a task is the ledger's evaluation of
the model whose protocol matches ours (samples and temperature; else the first listed); its interval
is the larger of the 95% confidence half-width of a benchmark of that size at that accuracy (k
samples per problem) and 1.96 x the source's seed-to-seed spread, where it gives one.

It should finish in under 10 minutes on one H100 (model load about 1 minute, MATH-500 greedy and
240 AIME samples of up to 3072 tokens twice each). Everything that does not need a GPU runs in
``tests/test_gpu_acceptance.py`` with the scripted engine and the recording fake of vLLM::

    python benchmarks/gpu_acceptance.py                            # Hub model (needs network once)
    python benchmarks/gpu_acceptance.py --model /models/Qwen2.5-Math-1.5B --data-dir ../shared/data/benchmarks
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FAMILY = "qwen2.5-math-1.5b"
"""The model's family in the registry and the claims ledger."""
CHECKPOINT = f"{FAMILY}/base"
TASKS = ("math500", "aime24")
PROMPT = "qwen_math_default"
GRADERS = ("paper", "math_verify")
CHECKED_GRADER = "paper"
"""The grader whose accuracies must match the published numbers (the paper's own grader)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="Hub id or local folder (default: the registry's Qwen2.5-Math-1.5B)")
    p.add_argument("--backend", default="vllm", help="engine (vllm; 'scripted' runs the pipeline without a GPU)")
    p.add_argument("--model-args", default="gpu_memory_utilization=0.85,max_model_len=4096,dtype=bfloat16")
    p.add_argument("--data-dir", type=Path, default=None, help="benchmark files (<task>.jsonl) instead of the Hub")
    p.add_argument("--store", type=Path, default=None, help="store folder (default: a temporary one)")
    p.add_argument("--limit", type=int, default=None, help="first N problems per task (a quicker, partial check)")
    p.add_argument("--max-overhead", type=float, default=1.05, help="largest accepted overhead ratio")
    p.add_argument("--config-dir", type=Path, default=ROOT)
    opts = p.parse_args(argv)
    if opts.limit is not None and opts.limit < 1:
        p.error(f"--limit must be a positive number of problems, got {opts.limit}")
    if not opts.max_overhead >= 1.0:
        p.error(f"--max-overhead must be >= 1.0, got {opts.max_overhead}")
    return opts


@dataclass(frozen=True)
class Measured:
    """Our accuracy of one task under one grader."""

    task: str
    grader: str
    accuracy: float
    """Percent."""
    n_problems: int
    k: int
    temperature: float


@dataclass(frozen=True)
class Row:
    """One line of the comparison."""

    task: str
    grader: str
    ours: float
    published: float | None
    claim: str
    protocol: str
    interval: float | None
    reference: bool
    """Whether this row decides the exit status."""

    @property
    def gap(self) -> float | None:
        """Ours minus published, in points."""
        return None if self.published is None else self.ours - self.published

    @property
    def holds(self) -> bool:
        """Within the published number's interval (or nothing to compare)."""
        return self.gap is None or self.interval is None or abs(self.gap) <= self.interval


def interval(value: float, std: float | None, *, n_problems: int, k: int) -> float:
    """The published number's interval half-width, in points (see module docstring)."""
    from rlvr_audit.analysis.stats import ci_half_width

    half = 100.0 * ci_half_width(n_problems=n_problems, k=k, accuracy=min(max(value / 100.0, 0.0), 1.0))
    return max(half, 1.96 * std) if std is not None else half


def _protocol(ledger: Any, claim: Any) -> Any:
    p = claim.protocol
    return ledger.protocols.get(p) if isinstance(p, str) else p


def compare(measured: list[Measured], ledger: Any, *, family: str = FAMILY) -> list[Row]:
    """Each measurement beside every published evaluation of ``family``'s base model on its task."""
    rows = []
    for m in measured:
        claims = [
            c
            for c in ledger.claims
            if c.kind == "evaluation" and c.model == family and c.variant == "base" and c.benchmark == m.task
        ]

        def matches(c: Any, m: Measured = m) -> bool:
            p = _protocol(ledger, c)
            return p is not None and p.n == m.k and p.temperature == m.temperature and c.prompt in (None, PROMPT)

        ref = next((c for c in claims if matches(c)), claims[0] if claims else None)
        if not claims:
            rows.append(Row(m.task, m.grader, m.accuracy, None, "-", "-", None, m.grader == CHECKED_GRADER))
        for c in claims:
            p = _protocol(ledger, c)
            label = c.protocol if isinstance(c.protocol, str) else "inline"
            std = getattr(c, "std", None)
            half = interval(c.value, std, n_problems=m.n_problems, k=m.k)
            rows.append(
                Row(
                    m.task,
                    m.grader,
                    m.accuracy,
                    c.value,
                    c.id,
                    f"{label} (n={getattr(p, 'n', '?')}, T={getattr(p, 'temperature', '?')})",
                    half,
                    c is ref and m.grader == CHECKED_GRADER,
                )
            )
    return rows


@dataclass(frozen=True)
class Timing:
    """rlvr-audit's generation time against a bare ``LLM.generate`` of the same requests."""

    ours_s: float
    bare_s: float | None
    identical: int
    samples: int

    @property
    def ratio(self) -> float | None:
        """Overhead ratio (``None`` without a bare measurement)."""
        return None if not self.bare_s else self.ours_s / self.bare_s


def render(rows: list[Row], timing: Timing, *, max_overhead: float) -> tuple[str, bool]:
    """The report the script prints, and whether everything holds."""
    lines = ["task      grader       ours   published  interval  gap     claim (protocol)"]
    for r in rows:
        pub = "-" if r.published is None else f"{r.published:9.1f}"
        half = "-" if r.interval is None else f"±{r.interval:.1f}"
        gap = "-" if r.gap is None else f"{r.gap:+.1f}"
        mark = ("ok  " if r.holds else "FAIL") if r.reference else "    "
        lines.append(
            f"{r.task:9s} {r.grader:11s} {r.ours:5.1f}  {pub:>9s}  {half:>8s}  {gap:>6s}  "
            f"{mark} {r.claim} ({r.protocol})"
        )
    ok = all(r.holds for r in rows if r.reference)
    if timing.ratio is None:
        lines.append(f"generation {timing.ours_s:.1f} s; overhead: not measured (no bare vLLM engine for this backend)")
    else:
        within = timing.ratio <= max_overhead
        ok = ok and within
        lines.append(
            f"generation {timing.ours_s:.1f} s, bare LLM.generate {timing.bare_s:.1f} s: overhead ratio "
            f"{timing.ratio:.3f} (target <= {max_overhead}) {'ok' if within else 'FAIL'}; "
            f"identical samples {timing.identical}/{timing.samples}"
        )
    lines.append("ACCEPTED" if ok else "NOT ACCEPTED")
    return "\n".join(lines), ok


@contextlib.contextmanager
def shared_engine(engine: Any) -> Iterator[None]:
    """Make rlvr-audit's generation use ``engine`` (already loaded) instead of loading its own."""
    from rlvr_audit.generation import work as stage

    original, close = stage.create_engine, engine.close
    stage.create_engine = lambda *a, **k: engine  # type: ignore[assignment]
    engine.close = lambda: None
    try:
        yield
    finally:
        stage.create_engine, engine.close = original, close


def _bare(engine: Any, store: Any, keys: list[str], units: dict[str, Any]) -> tuple[float, int, int]:
    """Time ``LLM.generate`` on exactly the stored requests; count identical completions."""
    elapsed, same, total = 0.0, 0, 0
    for key in keys:
        unit = units[key]
        gens = store.read_generations(key)
        sampling = engine.sampling(unit.spec.protocol, unit.template.stop)
        prompts = [engine._prompt(g.prompt, sampling.max_new_tokens) for g in gens]
        params = [engine._params(sampling, g.seed, unit.template.keep_stop) for g in gens]
        if hasattr(engine.llm, "reset_prefix_cache"):
            engine.llm.reset_prefix_cache()
        t0 = time.perf_counter()
        outs = engine.llm.generate(prompts, params, use_tqdm=False)
        elapsed += time.perf_counter() - t0
        same += sum(o.outputs[0].text == g.completion for o, g in zip(outs, gens, strict=True))
        total += len(gens)
    return elapsed, same, total


def run(opts: argparse.Namespace) -> tuple[str, bool]:
    """Generate, grade, compare, time; return the report and whether it is accepted."""
    from rlvr_audit import api as audit
    from rlvr_audit.core.store import Store
    from rlvr_audit.core.ui import make_progress
    from rlvr_audit.generation.engines import create_engine, parse_model_args
    from rlvr_audit.generation.plan import ProtocolOverrides, Selection
    from rlvr_audit.generation.runner import generate_units
    from rlvr_audit.generation.work import EngineSpec

    store_dir = opts.store or Path(tempfile.mkdtemp(prefix="rlvr-audit-gpu-"))
    loc = audit.Locations(config_dir=opts.config_dir, store=store_dir, data_dir=opts.data_dir)
    model_args = parse_model_args(opts.model_args)
    engine_opts = audit.EngineOptions(backend=opts.backend, model_args=model_args, limit=opts.limit)
    selection = Selection(
        checkpoints=[opts.model or CHECKPOINT], tasks=list(TASKS), prompts=[PROMPT], include_bases=False
    )
    units = audit.plan_units(selection, ProtocolOverrides(), engine_opts, loc)
    ck = units[0].checkpoint
    engine = create_engine(
        opts.backend,
        model=ck.model,
        revision=ck.revision,
        model_args=model_args,
        batch_size=8,
        device=None,
        checkpoint_id=ck.checkpoint_id,
    )
    store = Store(store_dir)
    try:
        with shared_engine(engine), make_progress(True) as prog:
            if hasattr(getattr(engine, "llm", None), "reset_prefix_cache"):
                engine.llm.reset_prefix_cache()
            t0 = time.perf_counter()
            generate_units(
                store,
                units,
                engine=EngineSpec(backend=opts.backend, model_args=model_args),
                limit=opts.limit,
                progress=prog,
            )
            ours = time.perf_counter() - t0
        keys = [u.key for u in units]
        bare = _bare(engine, store, keys, {u.key: u for u in units}) if opts.backend == "vllm" else None
    finally:
        engine.close()
    audit.grade(keys, audit.GradeOptions(graders=list(GRADERS)), loc, progress=False)
    measured = []
    for u in units:
        n = len(u.problems[: opts.limit] if opts.limit else u.problems)
        for grader in GRADERS:
            grades = store.read_grades(u.key, grader)
            acc = 100.0 * sum(g.verdict == "correct" for g in grades) / max(1, len(grades))
            measured.append(Measured(u.spec.task, grader, acc, n, u.spec.protocol.n, u.spec.protocol.temperature))
    rows = compare(measured, audit.load_registry(loc).ledger)
    timing = Timing(ours, bare[0] if bare else None, bare[1] if bare else 0, bare[2] if bare else 0)
    return render(rows, timing, max_overhead=opts.max_overhead)


def main(argv: list[str] | None = None) -> int:
    """Run and print; the exit status (see module docstring)."""
    from rlvr_audit.core.errors import AuditError

    opts = parse_args(argv)
    try:
        text, ok = run(opts)
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
