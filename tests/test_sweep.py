"""Prompt-sensitivity sweep end to end with the scripted backend: hand-computed numbers, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import scipy.stats
from testbed import DATA, ROOT
from testbed import TOY_REGISTRY as REGISTRY
from typer.testing import CliRunner

from rlvr_audit.analysis.estimates import analyse
from rlvr_audit.analysis.sweep import GAIN_COLUMNS, SPREAD_COLUMNS, SWEEP_COLUMNS, build_sweep
from rlvr_audit.analysis.sweep_sections import sweep_section
from rlvr_audit.cli import app
from rlvr_audit.core.store import Store

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")


# Per template, per checkpoint, the four MATH-500 problems: R right (boxed gold), W wrong (boxed
# 999999), N no answer at all (nothing to extract).
ANSWERS = {
    "no_template": {"toy/base": "RWWN", "toy/rl": "RRWW"},
    "qwen_math_default": {"toy/base": "RRRW", "toy/rl": "RRRR"},
    "lipsum": {"toy/base": "RRWW", "toy/rl": "RWNN"},
}
TEMPLATES = sorted(ANSWERS)
# The hand-computed intervals below are percentile-bootstrap quantiles (the default is wilson,
# checked in test_default_interval_flows_into_the_sweep).
PERCENTILE = ("--ci-method", "percentile")


def first_ids(task: str, n: int) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (DATA / f"{task}.jsonl").read_text().splitlines()[:n]]
    return [(r["id"], r["answer"]) for r in rows]


def response(kind: str, gold: str) -> str:
    if kind == "N":
        return "I could not solve this problem."
    return f"So the answer is $\\boxed{{{gold if kind == 'R' else '999999'}}}$."


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def make_env(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "checkpoints.yaml").write_text(REGISTRY)
    problems = first_ids("math500", 4)
    for template, per_checkpoint in ANSWERS.items():
        script = {
            ck: {pid: response(kind, gold) for (pid, gold), kind in zip(problems, kinds, strict=True)}
            for ck, kinds in per_checkpoint.items()
        }
        (tmp_path / f"script_{template}.json").write_text(json.dumps(script))
    return {"tmp": tmp_path, "registry": tmp_path / "checkpoints.yaml", "store": tmp_path / "store"}


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(tmp_path)
    return make_env(tmp_path)


def common(env: dict[str, Path]) -> list[str]:
    return [
        "--config-dir",
        str(ROOT),
        "--registry",
        str(env["registry"]),
        "--store",
        str(env["store"]),
    ]


def run_template(env: dict[str, Path], template: str, checkpoint: str = "toy/rl") -> None:
    """One run per template: each template has its own script (answers differ per template)."""
    r = invoke(
        "run",
        "--backend",
        "scripted",
        "--model-args",
        f"script={env['tmp'] / f'script_{template}.json'}",
        "--checkpoints",
        checkpoint,
        "--tasks",
        "math500",
        "--limit",
        "4",
        "--prompts",
        template,
        "--quiet",
        "--data-dir",
        str(DATA),
        "--report-dir",
        str(env["tmp"] / "reports" / "run"),
        *common(env),
    )
    assert r.exit_code == 0, r.output


def report(env: dict[str, Path], *extra: str) -> Path:
    """Write a report of the store into a new folder and return it."""
    out = env["tmp"] / "reports" / f"report{len(list((env['tmp'] / 'reports').glob('report*')))}"
    r = invoke("report", "--quiet", "--report-dir", str(out), *extra, *common(env))
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both checkpoints under the three templates (built once; tests only write reports)."""
    env = make_env(tmp_path_factory.mktemp("swept"))
    for template in TEMPLATES:
        run_template(env, template)
    return env


def test_accuracy_parse_rate_and_rank_per_template(swept: dict[str, Path]) -> None:
    out = report(swept, *PERCENTILE)
    sweep = pd.read_csv(out / "tables" / "prompt_sweep.csv")
    assert list(sweep.columns) == SWEEP_COLUMNS
    got = {(r.checkpoint, r.prompt): r for r in sweep.itertuples()}
    assert len(got) == 6 and set(sweep.n_prompts) == {3} and set(sweep.n_problems) == {4}
    expected = {  # (accuracy, parse rate, rank)
        ("toy/base", "no_template"): (0.25, 0.75, 3),
        ("toy/base", "qwen_math_default"): (0.75, 1.0, 1),
        ("toy/base", "lipsum"): (0.5, 1.0, 2),
        ("toy/rl", "no_template"): (0.5, 1.0, 2),
        ("toy/rl", "qwen_math_default"): (1.0, 1.0, 1),
        ("toy/rl", "lipsum"): (0.25, 0.5, 3),
    }
    for key, (acc, parse, rank) in expected.items():
        row = got[key]
        assert (row.accuracy, row.parse_rate, row.rank) == pytest.approx((acc, parse, rank)), key
        assert row.is_default == (key[1] == "no_template")
        assert row.base == ("toy/base" if key[0] == "toy/rl" else "") or pd.isna(row.base)
    # base under qwen_math_default: 3/4 right; bootstrap count ~ Binomial(4, .75):
    # P(X=0)=.004 < .025 < P(X<=1)=.051 and P(X<=3)=.68 < .975, so the interval is [.25, 1]
    row = got[("toy/base", "qwen_math_default")]
    assert (row.ci_low, row.ci_high) == pytest.approx((0.25, 1.0))
    # every template is measured on all 4 problems, so each interval is the reproduction table's
    est = pd.read_csv(out / "tables" / "estimates.csv").set_index("unit_key")
    for row in sweep.itertuples():
        assert (row.ci_low, row.ci_high) == pytest.approx(tuple(est.loc[row.unit_key, ["ci_low", "ci_high"]]))
    # a parse rate that is 1 on every problem has a zero-width interval
    row = got[("toy/rl", "no_template")]
    assert (row.parse_ci_low, row.parse_ci_high) == (1.0, 1.0)


def test_spread_and_default_rank(swept: dict[str, Path]) -> None:
    spread = pd.read_csv(report(swept, *PERCENTILE) / "tables" / "prompt_sweep_spread.csv").set_index("checkpoint")
    assert list(spread.columns) == SPREAD_COLUMNS[1:]
    base = spread.loc["toy/base"]
    assert (base.best_prompt, base.worst_prompt, base.default_prompt) == (
        "qwen_math_default",
        "no_template",
        "no_template",
    )
    assert (base.best, base.worst, base.spread, base.default_rank) == pytest.approx((0.75, 0.25, 0.5, 3))
    # paired differences qwen - no_template per problem: [0, 1, 1, 0]; mean of 4 draws of them has
    # quantiles 0 (P(0 ones) = 1/16 > .025) and 1 (P(4 ones) = 1/16 > .025)
    assert (base.spread_ci_low, base.spread_ci_high) == pytest.approx((0.0, 1.0))
    # the selection-aware interval re-picks best and worst in every replicate: never narrower above
    assert base.spread_pick_ci_high >= base.spread_ci_high and base.spread_pick_ci_low >= 0
    rl = spread.loc["toy/rl"]
    assert (rl.best_prompt, rl.worst_prompt, rl.spread, rl.default_rank) == ("qwen_math_default", "lipsum", 0.75, 2)


def test_gains_under_each_template_and_over_the_best_prompted_base(swept: dict[str, Path]) -> None:
    out = report(swept, *PERCENTILE)
    gains = pd.read_csv(out / "tables" / "prompt_sweep_gains.csv")
    assert list(gains.columns) == GAIN_COLUMNS
    got = {r.prompt: r for r in gains.itertuples()}
    assert set(gains.checkpoint) == {"toy/rl"} and set(gains.base_best_prompt) == {"qwen_math_default"}
    same = {"no_template": 0.25, "qwen_math_default": 0.25, "lipsum": -0.25}
    over_best = {"no_template": 0.5 - 0.75, "qwen_math_default": 1.0 - 0.75, "lipsum": 0.25 - 0.75}
    for template in TEMPLATES:
        assert got[template].gain_same_prompt == pytest.approx(same[template])
        assert got[template].gain_over_best == pytest.approx(over_best[template])
        assert got[template].best_n_problems == 4
        assert got[template].base_best_value == pytest.approx(0.75)
    # the same-prompt gains are the comparisons of the report (same numbers, same intervals)
    comp = pd.read_csv(out / "tables" / "comparisons.csv").set_index("prompt")
    for template in TEMPLATES:
        assert got[template].same_ci_low == pytest.approx(comp.loc[template, "ci_low"])
        assert got[template].same_p_value == pytest.approx(comp.loc[template, "p_value"])
    # rl under no_template vs base under qwen_math_default: differences [0, 0, -1, 0]; the count
    # of -1s in 4 draws ~ Binomial(4, 1/4): 97.5% quantile 3 (P(X<=2)=.949), 2.5% quantile 0
    row = got["no_template"]
    assert (row.best_ci_low, row.best_ci_high) == pytest.approx((-0.75, 0.0))
    # when the rl checkpoint's template is the base's best, the gain over the best-prompted base
    # is the same-prompt comparison (same problems, same resampling plan)
    row = got["qwen_math_default"]
    assert (row.best_ci_low, row.best_ci_high) == pytest.approx((row.same_ci_low, row.same_ci_high))


def test_section_and_figure(swept: dict[str, Path]) -> None:
    out = report(swept, *PERCENTILE)
    md = (out / "index.md").read_text()
    assert "## Prompt sensitivity" in md
    section = md.split("## Prompt sensitivity", 1)[1].split("\n## ", 1)[0]
    assert "biased upward" in section and "biased downward" in section
    assert "**25.0 [" in section  # the base's default template, in bold
    assert "3 of 3" in section and "2 of 3" in section  # default ranks
    assert "+50.0 [+0.0, +100.0]<br>`qwen_math_default` - `no_template`" in section  # base spread
    assert "| toy/rl | **`no_template`** | +25.0 [" in section  # the gains table marks the default
    assert "-25.0 [-75.0, +0.0]" in section  # ... and shows the gain over the best-prompted base
    figure = out / "figures" / "prompt_sweep_math500_math_verify.png"
    assert figure.is_file() and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](figures/prompt_sweep_math500_math_verify.png)" in section


def test_report_is_deterministic_and_follows_the_level(swept: dict[str, Path]) -> None:
    first = pd.read_csv(report(swept) / "tables" / "prompt_sweep_gains.csv")
    again = pd.read_csv(report(swept) / "tables" / "prompt_sweep_gains.csv")
    pd.testing.assert_frame_equal(first, again)
    wide = pd.read_csv(report(swept, *PERCENTILE) / "tables" / "prompt_sweep.csv").set_index(["checkpoint", "prompt"])
    narrow = report(swept, "--level", "0.5", "--resamples", "2000", *PERCENTILE)
    narrow = pd.read_csv(narrow / "tables" / "prompt_sweep.csv")
    assert set(narrow.level) == {0.5} and set(wide.level) == {0.95}
    narrow = narrow.set_index(["checkpoint", "prompt"])
    # base under no_template, 1 of 4 right: count ~ Binomial(4, 1/4) with P(0)=.316, P(<=1)=.738,
    # P(<=2)=.949: 95% interval [0, 3/4], 50% interval [0, 2/4]
    key = ("toy/base", "no_template")
    assert (wide.loc[key, "ci_low"], wide.loc[key, "ci_high"]) == pytest.approx((0.0, 0.75))
    assert (narrow.loc[key, "ci_low"], narrow.loc[key, "ci_high"]) == pytest.approx((0.0, 0.5))


def test_default_interval_flows_into_the_sweep(swept: dict[str, Path]) -> None:
    """Under the default (wilson) a template's accuracy interval is the Wilson score interval of its
    count (scipy's, one sample per problem) and the same as the reproduction table's."""
    out = report(swept)
    sweep = pd.read_csv(out / "tables" / "prompt_sweep.csv").set_index(["checkpoint", "prompt"])
    est = pd.read_csv(out / "tables" / "estimates.csv").set_index("unit_key")
    for (checkpoint, template), correct in {
        ("toy/base", "qwen_math_default"): 3,
        ("toy/base", "no_template"): 1,
        ("toy/rl", "lipsum"): 1,
    }.items():
        row = sweep.loc[(checkpoint, template)]
        ci = scipy.stats.binomtest(correct, 4).proportion_ci(method="wilson")
        assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high))
        assert (row.ci_low, row.ci_high) == pytest.approx(tuple(est.loc[row.unit_key, ["ci_low", "ci_high"]]))
        assert est.loc[row.unit_key, "method"] == "wilson-cluster(problems)"


def test_gain_over_best_prompted_base_when_only_the_base_was_swept(env: dict[str, Path]) -> None:
    run_template(env, "no_template")  # rl and its base under the default template
    for template in ("qwen_math_default", "lipsum"):
        run_template(env, template, checkpoint="toy/base")  # the base alone under the others
    out = report(env)
    gains = pd.read_csv(out / "tables" / "prompt_sweep_gains.csv")
    assert gains.prompt.tolist() == ["no_template"]
    assert gains.base_best_prompt.tolist() == ["qwen_math_default"]
    assert gains.gain_over_best.tolist() == pytest.approx([-0.25])
    assert gains.gain_same_prompt.tolist() == pytest.approx([0.25])
    # reporting the rl checkpoint alone still measures it against every template of its base
    out = report(env, "--checkpoints", "toy/rl")
    gains = pd.read_csv(out / "tables" / "prompt_sweep_gains.csv")
    assert gains.gain_over_best.tolist() == pytest.approx([-0.25])
    sweep = pd.read_csv(out / "tables" / "prompt_sweep.csv")
    assert sorted(set(sweep.checkpoint)) == ["toy/base", "toy/rl"]  # the yardstick is shown


def test_no_section_without_two_templates(env: dict[str, Path]) -> None:
    run_template(env, "no_template")
    out = report(env)
    assert "## Prompt sensitivity" not in (out / "index.md").read_text()
    assert not (out / "tables" / "prompt_sweep.csv").exists()
    store = Store(env["store"])
    groups = build_sweep(analyse(store, n_resamples=200), store, n_resamples=200)
    assert [g.n_templates for g in groups] == [1, 1] and sweep_section(groups) is None
    with pytest.raises(ValueError, match="method"):
        build_sweep(analyse(store, n_resamples=200), store, ci_method="studentized")


def test_prompts_all_runs_every_template_end_to_end(env: dict[str, Path]) -> None:
    r = invoke(
        "run",
        "--backend",
        "scripted",
        "--model-args",
        "accuracy=0.5",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500",
        "--limit",
        "2",
        "--prompts",
        "all",
        "--resamples",
        "200",
        "--quiet",
        "--data-dir",
        str(DATA),
        *common(env),
    )
    assert r.exit_code == 0, r.output
    templates = sorted(p.stem for p in (ROOT / "prompts").glob("*.yaml"))
    sweep = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "prompt_sweep.csv")
    for checkpoint in ("toy/base", "toy/rl"):
        assert sorted(sweep[sweep.checkpoint == checkpoint].prompt) == templates
    assert (env["tmp"] / "reports" / "audit" / "figures" / "prompt_sweep_math500_math_verify.png").is_file()
    # the chat templates were rendered (ChatML stand-in for Hub checkpoints), the raw ones not
    gens = {
        g.template_id: g.prompt
        for u in Store(env["store"]).units()
        for g in Store(env["store"]).read_generations(u.key)
    }
    assert gens["qwen_math_default"].startswith("<|im_start|>system\n") and not gens["no_template"].startswith("<|im")


@pytest.mark.parametrize("prompts", ["no_template,fancy", "fancy"])
def test_unknown_template_lists_the_valid_ones(env: dict[str, Path], prompts: str) -> None:
    r = invoke(
        "run", "--backend", "scripted", "--checkpoints", "toy/rl", "--tasks", "math500", "--limit", "1",
        "--prompts", prompts, "--data-dir", str(DATA), *common(env),
    )  # fmt: skip
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "unknown prompt 'fancy'; valid prompts: all, code_forcing, default, lipsum" in text
    assert not env["store"].exists()


def _config_dir(tmp: Path) -> Path:
    """A configuration folder with the math500 task and three templates: raw, chat, chat with
    a raw fallback."""
    config = tmp / "config"
    (config / "tasks").mkdir(parents=True)
    (config / "prompts").mkdir()
    (config / "tasks" / "math500.yaml").write_text((ROOT / "tasks" / "math500.yaml").read_text())
    (config / "prompts" / "no_template.yaml").write_text((ROOT / "prompts" / "no_template.yaml").read_text())
    (config / "prompts" / "chatty.yaml").write_text(
        "description: chat\nchat: true\nsystem: Be brief.\nuser: 'Q: {question}'\n"
    )
    (config / "prompts" / "fallback.yaml").write_text(
        "description: chat or raw\nchat: true\nsystem: Be brief.\nuser: 'Q: {question}'\nraw_fallback: true\n"
    )
    return config


def test_chat_template_on_a_checkpoint_without_one(env: dict[str, Path], tiny_model_dir_no_chat: Path) -> None:
    config = _config_dir(env["tmp"])
    args = [
        "run", "--backend", "scripted", "--model-args", "accuracy=1", "--checkpoints", str(tiny_model_dir_no_chat),
        "--tasks", "math500", "--limit", "1", "--quiet", "--data-dir", str(DATA), "--config-dir", str(config),
        "--registry", str(env["registry"]), "--store", str(env["store"]),
    ]  # fmt: skip
    for prompts in ("chatty", "all"):
        r = invoke(*args, "--prompts", prompts)
        assert r.exit_code == 2
        text = " ".join(r.output.split())
        assert "prompt template 'chatty' applies a chat template, but checkpoint 'local/" in text
        assert "has a tokenizer without one" in text and "raw_fallback: true" in text
        assert not env["store"].exists()
    # a template that falls back to a raw prompt works, and the raw text is what was sent
    r = invoke(*args, "--prompts", "fallback,no_template")
    assert r.exit_code == 0, r.output
    store = Store(env["store"])
    prompts = {g.template_id: g.prompt for u in store.units() for g in store.read_generations(u.key)}
    question = json.loads((DATA / "math500.jsonl").read_text().splitlines()[0])["problem"]
    assert prompts["fallback"] == f"Be brief.\n\nQ: {question}"
    assert prompts["no_template"] == question
