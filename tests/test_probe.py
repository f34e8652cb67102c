"""The partial-prompt contamination probe: the cut and the scores as data tables, exact rates and
comparisons for a scripted engine that reproduces some problems verbatim, resuming, the report
section, bad input, and the hf engine end to end on the tiny model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from rlvr_audit.analysis import contamination as probe
from rlvr_audit.analysis import contamination_sections
from rlvr_audit.cli import app
from rlvr_audit.core.errors import UsageError
from rlvr_audit.core.records import EffectiveSampling, SamplingProtocol
from rlvr_audit.core.store import Store
from rlvr_audit.generation import probes
from rlvr_audit.generation import work as generate_module
from rlvr_audit.generation.engines import GenOutput, GenRequest
from rlvr_audit.generation.engines.scripted import ChatMLStandIn

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "benchmarks"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


# ---- the cut and the scores -------------------------------------------------------------------

CUTS = [
    # text, percent, prefix, remainder
    ("one two three four five", 40, "one two", " three four five"),
    ("one two three four five", 60, "one two three", " four five"),
    ("one two three four five", 80, "one two three four", " five"),
    ("one two three four five", 99, "one two three four", " five"),  # at most n - 1 words
    ("one two three four five", 1, "one", " two three four five"),  # at least one word
    ("Let $x=2$.\n\nFind  $x^2$.", 50, "Let $x=2$.", "\n\nFind  $x^2$."),  # whitespace kept as it was
    ("  lead two", 50, "  lead", " two"),
]


@pytest.mark.parametrize(("text", "percent", "prefix", "remainder"), CUTS)
def test_cut(text: str, percent: int, prefix: str, remainder: str) -> None:
    cut = probes.cut_problem(text, percent)
    assert cut is not None
    assert (cut.prefix, cut.remainder) == (prefix, remainder)
    assert cut.prefix + cut.remainder == text


def test_a_one_word_problem_cannot_be_cut() -> None:
    assert probes.cut_problem("42", 60) is None
    assert probes.cut_problem("   ", 60) is None


@pytest.mark.parametrize("bad", [0, 100, -5, 150, 60.5, True, "60"])
def test_percent_must_be_a_whole_number_strictly_between_0_and_100(bad: object) -> None:
    with pytest.raises(UsageError, match="--percents must be"):
        probes.check_percent(bad)


QUESTION = "Let $x = 2$. What is $x^2 + 1$?"
PREFIX = "Let $x = 2$. What"  # 60% of 9 words -> 5 words
SCORES = [
    # continuation, exact match, ROUGE-L (rouge-score tokens: lower-case alphanumeric runs)
    (" is $x^2 + 1$?", True, 1.0),
    (" is $x^2 + 1$? We compute 4 + 1 = 5, so \\boxed{5}.", True, 1.0),  # a solution after it is fine
    ("\n is   $x^2 +\n1$?", True, 1.0),  # whitespace runs collapse
    ("is $x^2 + 1$?", False, 1.0),  # "Whatis": a missing space is another text
    (" is $x^2 - 1$?", False, 1.0),  # a changed sign: not exact; ROUGE-L's tokens drop signs
    (" is $x^3 + 1$?", False, 0.75),  # tokens is x 3 1 vs is x 2 1: LCS 3 of 4
    (" zzz qqq", False, 0.0),
    ("", False, 0.0),
]


@pytest.mark.parametrize(("continuation", "em", "rouge"), SCORES)
def test_scores(continuation: str, em: bool, rouge: float) -> None:
    cut = probes.cut_problem(QUESTION, 60)
    assert cut is not None and cut.prefix == PREFIX
    assert probe.exact_match(QUESTION, cut.prefix, continuation) is em
    assert probe.rouge_l(cut.remainder, continuation) == pytest.approx(rouge)


def test_rouge_l_cuts_the_continuation_to_the_remainders_length() -> None:
    # the remainder has 3 words; the continuation's first 3 words are "a b c": LCS 3 -> F = 1
    assert probe.rouge_l(" a b c", " a b c d e f g h") == pytest.approx(1.0)
    # "a x c": LCS "a c" = 2 of 3 on both sides -> F = 2/3
    assert probe.rouge_l(" a b c", " a x c d") == pytest.approx(2 / 3)


# ---- a scripted engine that has memorised some problems ------------------------------------


MEMORISED = {
    # checkpoint -> percent -> problem indices it reproduces (and answers)
    "toy/base": {40: range(6), 60: range(6), 80: range(6)},
    "toy/rl": {40: range(6), 60: range(6), 80: range(8)},
    "other/base": {40: range(0), 60: range(0), 80: range(0)},
}

REGISTRY = """\
families:
  toy:
    display_name: Toy
    checkpoints:
      base:
        model: org/toy-base
        prompt: qwen_math_default
      rl:
        model: org/toy-rl
        base: toy/base
        reward: random
        step: 50
        prompt: qwen_math_default
  other:
    display_name: Other
    checkpoints:
      base:
        model: org/other-base
        prompt: qwen_math_default
"""

N = 10
WILSON_ZERO = 1.959963984540054**2 / (N + 1.959963984540054**2)
"""The default interval's upper end at 0 of N (Wilson), the gain bound when nothing differs."""


class MemorisingEngine:
    """Completes the problems it 'memorised' verbatim (then answers them); otherwise writes
    nonsense. Asked under the chat template, answers memorised problems correctly."""

    backend = "scripted"

    def __init__(self, checkpoint_id: str, order: list[str]) -> None:
        self.checkpoint_id = checkpoint_id
        self.order = order
        self.calls: list[int] = []

    @property
    def tokenizer(self) -> Any:
        return ChatMLStandIn()

    def sampling(self, protocol: SamplingProtocol, stop: list[str]) -> EffectiveSampling:
        return EffectiveSampling(
            temperature=protocol.temperature, top_p=protocol.top_p, max_new_tokens=protocol.max_new_tokens, stop=stop
        )

    def generate(
        self,
        requests: list[GenRequest],
        *,
        protocol: SamplingProtocol,
        stop: list[str],
        keep_stop: bool = False,
        progress: Any = None,
    ) -> Iterator[list[tuple[int, GenOutput]]]:
        yield list(enumerate(self._answer(requests, protocol)))

    def _answer(self, requests: list[GenRequest], protocol: SamplingProtocol) -> list[GenOutput]:
        assert protocol.temperature == 0.0 and protocol.n == 1  # greedy
        self.calls.append(len(requests))
        out = []
        for req in requests:
            p = req.problem
            if "probe_percent" not in p.metadata:  # a normal evaluation: always right
                out.append(GenOutput(text=f"\\boxed{{{p.answer}}}", n_tokens=1, finish_reason="stop"))
                continue
            percent = p.metadata["probe_percent"]
            index = self.order.index(p.problem_id) if p.problem_id in self.order else -1
            knows = index in MEMORISED[self.checkpoint_id].get(percent, range(0))
            if req.prompt.startswith("<|im_start|>"):  # the answer probe, under the chat template
                assert p.question in req.prompt
                text = f"\\boxed{{{p.answer if knows else '999999'}}}"
            else:  # the completion probe: the raw prefix, nothing else
                assert req.prompt == p.question
                rest = p.metadata["probe_remainder"]
                text = f"{rest}\n\nSolution: so the answer is $\\boxed{{{p.answer}}}$." if knows else " zzz qqq"
            out.append(GenOutput(text=text, n_tokens=len(text.split()), finish_reason="stop"))
        return out

    def close(self) -> None:
        pass


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints.yaml").write_text(REGISTRY)
    order = [json.loads(line)["id"] for line in (DATA / "math500.jsonl").read_text().splitlines()]
    engines: dict[str, MemorisingEngine] = {}

    def fake_create_engine(backend: str, *, checkpoint_id: str, **kwargs: Any) -> MemorisingEngine:
        assert backend == "scripted"
        engines[checkpoint_id] = MemorisingEngine(checkpoint_id, order)
        return engines[checkpoint_id]

    monkeypatch.setattr(generate_module, "create_engine", fake_create_engine)
    return {"tmp": tmp_path, "engines": engines}


def probe_args(env: dict[str, Any], *extra: str) -> list[str]:
    return [
        "probe",
        "contamination",
        "--backend",
        "scripted",
        "--checkpoints",
        "toy/rl,other/base",
        "--tasks",
        "math500",
        "--limit",
        str(N),
        "--workers",
        "1",
        "--resamples",
        "2000",
        "--config-dir",
        str(ROOT),
        "--registry",
        str(env["tmp"] / "checkpoints.yaml"),
        "--data-dir",
        str(DATA),
        "--store",
        str(env["tmp"] / "store"),
        "--quiet",
        *extra,
    ]


@needs_data
def test_rates_and_comparisons_are_exact(env: dict[str, Any]) -> None:
    r = invoke(*probe_args(env))
    assert r.exit_code == 0, r.output
    assert "18 probe units; 180 samples generated, 0 reused; 180 graded" in " ".join(r.output.split())
    store = Store(env["tmp"] / "store")
    assert store.unit_keys() == []  # probe units never show up as evaluation units
    analysis = probe.analyse_probes(store, n_resamples=2000)
    rates = probe.rates_frame(analysis)
    assert len(rates) == 3 * 3 * 4  # checkpoints x fractions x (EM, ROUGE-L, answer in continuation, when asked)
    assert set(rates.n_problems) == {N}
    want = {ck: {p: len(idx) / N for p, idx in per.items()} for ck, per in MEMORISED.items()}
    for row in rates.itertuples():
        expected = want[row.checkpoint][row.percent]
        assert row.value == pytest.approx(expected), (row.checkpoint, row.percent, row.metric)
        assert row.ci_low <= row.value <= row.ci_high
        if expected == 0.0:  # 0 of N: the default (wilson) gives Wilson's bound, not [0, 0]
            assert (row.ci_low, row.ci_high) == (0.0, pytest.approx(WILSON_ZERO))
    assert set(rates.metric) == set(probe.METRICS)
    assert set(rates[rates.metric.isin(["exact_match", "rouge_l"])].grader) == {""}
    assert set(rates[rates.metric.str.startswith("answer")].grader) == {"math_verify"}
    assert set(rates[rates.metric == "answer_accuracy"].prompt) == {"qwen_math_default"}

    comp = probe.comparisons_frame(analysis).set_index(["treatment", "baseline", "percent", "metric"])
    # toy/rl vs its base: the same 6 problems at 40 and 60; two more at 80 -> +20 points,
    # McNemar: 2 discordant pairs, both one way -> p = 2 * 0.5**2 = 0.5
    rl80 = comp.loc[("toy/rl", "toy/base", 80, "exact_match")]
    assert (rl80.relation, rl80.delta, rl80.n_problems, rl80.p_value) == ("vs base", pytest.approx(0.2), N, 0.5)
    assert rl80.test == "mcnemar-exact"
    rl40 = comp.loc[("toy/rl", "toy/base", 40, "exact_match")]  # identical: the bound on the share that differ
    assert (rl40.delta, rl40.ci_low, rl40.ci_high, rl40.p_value) == (
        0.0,
        pytest.approx(-WILSON_ZERO),
        pytest.approx(WILSON_ZERO),
        1.0,
    )
    # across families: the reference checkpoints, in id order (other/base -> toy/base): +60 points,
    # 6 discordant pairs one way -> p = 2 * 0.5**6
    cross = comp.loc[("toy/base", "other/base", 60, "exact_match")]
    assert cross.relation == "cross-family" and cross.delta == pytest.approx(0.6)
    assert cross.p_value == pytest.approx(2 * 0.5**6)
    # Holm over the six exact-match comparisons: p-values 1/32 (x3), 0.5, 1, 1 -> 6/32 for the smallest
    assert cross.p_holm == pytest.approx(6 / 32)
    assert comp.loc[("toy/rl", "toy/base", 80, "exact_match")].p_holm == pytest.approx(1.0)
    rouge = comp.loc[("toy/base", "other/base", 40, "rouge_l")]
    assert rouge.delta == pytest.approx(0.6) and pd.isna(rouge.p_value)  # interval only
    assert rouge.ci_low < 0.6 < rouge.ci_high

    # the printed table has the rates with their intervals
    out = " ".join(r.output.split())
    assert "Contamination probe" in out and "60.0" in out and "[95% CI]" in out


@needs_data
def test_probe_units_resume_and_never_collide(env: dict[str, Any]) -> None:
    first = invoke(*probe_args(env, "--percents", "60"))
    assert first.exit_code == 0, first.output
    store = Store(env["tmp"] / "store")
    pstore = probes.probe_store(store)
    keys = pstore.unit_keys()
    assert len(keys) == 6  # 3 checkpoints x (completion, answer)
    env["engines"].clear()
    again = invoke(*probe_args(env, "--percents", "60"))
    assert "0 samples generated, 60 reused; 0 graded" in " ".join(again.output.split())
    assert env["engines"] == {}  # nothing missing: no model loaded
    more = invoke(*probe_args(env, "--percents", "60,80"))
    assert "60 samples generated, 60 reused" in " ".join(more.output.split())
    infos = {k: probes.read_probe_info(pstore, k) for k in pstore.unit_keys()}
    assert len(infos) == 12
    assert {(i.kind, i.percent) for i in infos.values()} == {(k, p) for k in probes.KINDS for p in (60, 80)}
    for key, info in infos.items():
        spec = pstore.load_unit(key).spec
        assert info.unit_key == key and spec.template_id.startswith(f"contamination/{info.kind}/p{info.percent}/")
        gens = pstore.read_generations(key)
        assert len(gens) == N
        if info.kind == "completion":
            assert info.template_id == "raw"
            assert all(g.prompt == p.question for g, p in zip(gens, pstore.load_problems(spec.data_hash), strict=False))
            assert spec.protocol.max_new_tokens == probes.DEFAULT_COMPLETION_TOKENS
        else:
            assert spec.protocol.max_new_tokens == 3072  # the task's
    # a normal evaluation of the same checkpoint and task has another key
    run = invoke(
        "run",
        "--backend",
        "scripted",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500",
        "--limit",
        str(N),
        "--config-dir",
        str(ROOT),
        "--registry",
        str(env["tmp"] / "checkpoints.yaml"),
        "--data-dir",
        str(DATA),
        "--store",
        str(env["tmp"] / "store"),
        "--workers",
        "1",
        "--resamples",
        "500",
        "--no-browser",
        "--quiet",
    )
    assert run.exit_code == 0, run.output
    assert not set(store.unit_keys()) & set(infos)


@needs_data
def test_report_has_the_probe_section_and_figure(env: dict[str, Any]) -> None:
    assert invoke(*probe_args(env, "--percents", "40,80")).exit_code == 0
    args = ["--config-dir", str(ROOT), "--registry", str(env["tmp"] / "checkpoints.yaml")]
    args += ["--data-dir", str(DATA), "--store", str(env["tmp"] / "store"), "--workers", "1"]
    run = invoke(
        "run", "--backend", "scripted", "--checkpoints", "toy/rl", "--tasks", "math500", "--limit", "4",
        *args, "--resamples", "500", "--no-browser", "--quiet",
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    report = env["tmp"] / "reports" / "audit"
    md = (report / "index.md").read_text()
    assert "## Contamination probe: partial prompts" in md
    assert "![Contamination probe, MATH-500](figures/contamination_math500.png)" in md
    assert (report / "figures" / "contamination_math500.png").stat().st_size > 1000
    rates = pd.read_csv(report / "tables" / "contamination_rates.csv")
    assert list(rates.columns) == probe.RATE_COLUMNS and len(rates) == 3 * 2 * 4
    em = rates[(rates.metric == "exact_match") & (rates.checkpoint == "toy/rl")].set_index("percent").value
    assert em.to_dict() == {40: pytest.approx(0.6), 80: pytest.approx(0.8)}
    comp = pd.read_csv(report / "tables" / "contamination_comparisons.csv")
    assert set(comp.relation) == {"vs base", "cross-family"}
    assert "| toy/rl | toy/base | vs base | math500 | 80% | `qwen_math_default` |" in md
    html = (report / "index.html").read_text()
    assert "Contamination probe" in html and "data:image/png;base64" in html


@needs_data
def test_a_store_of_probes_only_reports_them(env: dict[str, Any]) -> None:
    assert invoke(*probe_args(env, "--percents", "60")).exit_code == 0
    r = invoke(
        "report", "--store", str(env["tmp"] / "store"), "--registry", str(env["tmp"] / "checkpoints.yaml"),
        "--config-dir", str(ROOT), "--resamples", "200", "--no-browser", "--quiet",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    md = (env["tmp"] / "reports" / "audit" / "index.md").read_text()
    assert "## Contamination probe: partial prompts" in md
    assert "No evaluation units in this report" in md and "Nothing graded yet" not in md
    rates = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "contamination_rates.csv")
    assert set(rates.percent) == {60} and len(rates) == 3 * 4


def test_no_probe_units_no_section(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    assert (
        contamination_sections.stored_probe_section(
            store, registry=None, graders=None, seed=0, n_resamples=100, level=0.95, ci_method="percentile"
        )
        is None
    )
    assert contamination_sections.probe_section(probe.ProbeAnalysis()) is None


@needs_data
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--percents", "0"], "--percents must be strictly between 0 and 100 (exclusive), got 0"),
        (["--percents", "40,100"], "--percents must be strictly between 0 and 100 (exclusive), got 100"),
        (["--percents", "-20"], "got -20"),
        (["--percents", "sixty"], "--percents must be comma-separated whole numbers strictly between 0 and 100"),
        (["--percents", ","], "--percents is empty"),
        (["--percents", "60,60"], "--percents lists 60 twice"),
        (["--kinds", "vibes"], "unknown probe kind 'vibes'; valid kinds: completion, answer"),
        (["--tasks", ","], "--tasks is empty"),
        (["--tasks", "gsm8k"], "unknown task 'gsm8k'"),
        (["--completion-max-new-tokens", "0"], "--completion-max-new-tokens must be >= 1"),
        (["--graders", "vibes"], "unknown grader 'vibes'"),
        (["--limit", "0"], "--limit must be a positive number"),
        (["--level", "95"], "--level must be in (0, 1)"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(env: dict[str, Any], extra: list[str], message: str) -> None:
    args = probe_args(env)
    for i in range(0, len(extra), 2):
        flag = extra[i]
        if flag in args:
            args[args.index(flag) + 1] = extra[i + 1]
        else:
            args += extra[i : i + 2]
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert not (env["tmp"] / "store").exists()


def _custom_task(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    config = tmp_path / "config"
    (config / "tasks").mkdir(parents=True)
    (config / "prompts").mkdir()
    text = (ROOT / "tasks" / "math500.yaml").read_text().replace("task: math500", "task: tiny")
    (config / "tasks" / "tiny.yaml").write_text(text.replace("    expected_size: 500\n", ""))
    for name in ("qwen_math_default", "no_template"):
        (config / "prompts" / f"{name}.yaml").write_text((ROOT / "prompts" / f"{name}.yaml").read_text())
    data = tmp_path / "data"
    data.mkdir()
    (data / "tiny.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return config


@needs_data
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no problems found"),
        (
            [{"id": "a", "problem": "42", "answer": "42"}],
            "task 'tiny' has no problem of two or more words to cut at 40%",
        ),
    ],
)
def test_an_empty_task_is_refused(env: dict[str, Any], rows: list[dict[str, str]], message: str) -> None:
    config = _custom_task(env["tmp"], rows)
    args = probe_args(env)
    args[args.index("--tasks") + 1] = "tiny"
    args[args.index("--config-dir") + 1] = str(config)
    args[args.index("--data-dir") + 1] = str(env["tmp"] / "data")
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert not (env["tmp"] / "store").exists()


@needs_data
def test_short_problems_are_skipped_and_listed(env: dict[str, Any]) -> None:
    rows = [{"id": "a", "problem": "42", "answer": "42"}, {"id": "b", "problem": "What is 6 times 7?", "answer": "42"}]
    config = _custom_task(env["tmp"], rows)
    args = probe_args(env, "--percents", "50", "--kinds", "completion")
    args[args.index("--tasks") + 1] = "tiny"
    args[args.index("--config-dir") + 1] = str(config)
    args[args.index("--data-dir") + 1] = str(env["tmp"] / "data")
    env["engines"].clear()
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    pstore = probes.probe_store(Store(env["tmp"] / "store"))
    infos = [probes.read_probe_info(pstore, k) for k in pstore.unit_keys()]
    assert infos and all(i.skipped == ["a"] for i in infos)
    assert all([g.problem_id for g in pstore.read_generations(i.unit_key)] == ["b"] for i in infos)


# ---- the hf engine on the tiny model -----------------------------------------------------------


@needs_data
def test_probe_end_to_end_with_hf(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "probe",
        "contamination",
        "--backend",
        "hf",
        "--checkpoints",
        str(tiny_model_dir),
        "--tasks",
        "math500",
        "--limit",
        "2",
        "--percents",
        "50,80",
        "--completion-max-new-tokens",
        "6",
        "--max-new-tokens",
        "6",
        "--model-args",
        "dtype=float32",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--workers",
        "1",
        "--resamples",
        "200",
        "--data-dir",
        str(DATA),
        "--config-dir",
        str(ROOT),
        "--quiet",
    ]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    assert "4 probe units; 8 samples generated, 0 reused; 8 graded" in " ".join(r.output.split())
    store = Store(tmp_path / "rlvr-audit-store")
    pstore = probes.probe_store(store)
    problems = {
        p.problem_id: p
        for p in store.load_problems(probes.read_probe_info(pstore, pstore.unit_keys()[0]).source_data_hash)
    }
    for key in pstore.unit_keys():
        info = probes.read_probe_info(pstore, key)
        gens = pstore.read_generations(key)
        assert len(gens) == 2 and all(g.backend == "hf" and g.n_tokens is not None and g.n_tokens <= 6 for g in gens)
        for g in gens:
            cut = probes.cut_problem(problems[g.problem_id].question, info.percent)
            assert cut is not None
            if info.kind == "completion":
                assert g.prompt == cut.prefix  # raw: no chat markers, no instruction
            else:
                assert g.prompt.startswith("<|im_start|>") and cut.prefix in g.prompt
        assert len(pstore.read_grades(key, "math_verify")) == 2
    rates = probe.rates_frame(probe.analyse_probes(store, n_resamples=200))
    assert len(rates) == 2 * 4 and rates.value.between(0, 1).all()
    # a random-weight model reproduces nothing
    assert (rates[rates.metric == "exact_match"].value == 0).all()
    again = invoke(*args)
    assert "0 samples generated, 8 reused; 0 graded" in " ".join(again.output.split())


def test_help_has_an_example() -> None:
    r = CliRunner().invoke(app, ["probe", "contamination", "--help"])
    assert r.exit_code == 0 and "Example:" in r.output and "--percents" in r.output
