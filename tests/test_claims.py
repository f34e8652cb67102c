"""The claims ledger: it loads, it matches the reference, bad entries are named, and the
baseline-correction and resolution analyses, ``ls claims`` and ``run --claims-only`` give the
numbers users rely on (cited and measured kept apart)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rlvr_audit.analysis import claim_stats, stats
from rlvr_audit.analysis import claims as cl
from rlvr_audit.api import Locations, load_registry
from rlvr_audit.cli import app
from rlvr_audit.core import claims as schema
from rlvr_audit.core.errors import AuditError, ConfigError, UnknownNameError
from rlvr_audit.core.registry import Registry
from rlvr_audit.report import writer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference" / "claims.yaml"
DATA = SHARED / "data" / "benchmarks"

FAMILY = {
    "Qwen2.5-Math-7B": "qwen2.5-math-7b",
    "Qwen2.5-7B": "qwen2.5-7b",
    "Llama-3.1-8B-Instruct": "llama-3.1-8b-instruct",
    "OLMo-2-1124-7B": "olmo-2-1124-7b",
}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(Locations(config_dir=ROOT))


@pytest.fixture(scope="module")
def ledger(registry: Registry) -> schema.Ledger:
    return registry.ledger


@pytest.fixture(scope="module")
def catalog(ledger: schema.Ledger) -> dict[str, schema.BenchmarkInfo]:
    return ledger.catalog(schema.task_catalog(ROOT))


@pytest.fixture(scope="module")
def reference() -> dict[str, dict]:
    if not REFERENCE.is_file():
        pytest.skip("../shared/reference/claims.yaml is not beside the project")
    return {c["id"]: c for c in yaml.safe_load(REFERENCE.read_text())["claims"]}


# ---------------------------------------------------------------------------------- the ledger


def test_ledger_loads_typed_with_every_kind(ledger: schema.Ledger) -> None:
    assert len(ledger) >= 131  # the reference's 131 entries, some split (one per model, reward or version)
    assert {c.kind for c in ledger.claims} == set(schema.KINDS)
    assert len({c.id for c in ledger.claims}) == len(ledger)
    for c in ledger.claims:  # every reference resolves
        assert c.source in ledger.sources
        if getattr(c, "model", None) is not None:
            assert c.model in ledger.families
        if hasattr(c, "protocol") and c.protocol is not None:
            assert ledger.protocol(c) is not None


def test_figure1_gains_match_the_reference_per_version(ledger: schema.Ledger, reference: dict[str, dict]) -> None:
    """Every Figure 1 / abstract gain of the reference is in the ledger with the same numbers,
    under its own paper version and step (versions are never mixed)."""
    checked = 0
    for rid, ref in reference.items():
        if not rid.startswith(("pre.fig1.", "v1.fig1.", "v2.abstract.")) or ref["after_rlvr"] is None:
            continue
        matches = [
            c
            for c in ledger.query(kind="rlvr_gain", model=FAMILY[ref["model"]], benchmark="math500")
            if c.source == ref["paper_version"] and c.reward == ref["reward"] and c.step == ref["training_step"]
        ]
        assert len(matches) == 1, rid
        (c,) = matches
        assert isinstance(c, schema.RlvrGain)
        assert (c.baseline, c.value, c.gain) == (ref["baseline"], ref["after_rlvr"], ref["gain"]), rid
        checked += 1
    assert checked == 46


def test_independent_evaluations_match_the_reference(ledger: schema.Ledger, reference: dict[str, dict]) -> None:
    def value(entry_id: str) -> float:
        e = ledger.get(entry_id)
        assert isinstance(e, schema.Evaluation)
        return e.value

    assert value("critique.qwen2.5-math-7b") == reference["crit.Qwen2.5-Math-7B"]["critique_corrected_baseline"]
    assert value("critique.qwen2.5-7b") == reference["crit.Qwen2.5-7B"]["critique_corrected_baseline"]
    sober = reference["sober.table3_baselines"]["values"]["Qwen2.5-Math-7B"]
    assert f"{value('sober.table3.qwen2.5-math-7b.math500')}+/-0.5" == sober["MATH500"]
    contam = reference["contam.partial_answer_acc_MATH500"]["values"]["Qwen2.5-Math-7B"]
    assert value("contam.qwen2.5-math-7b.greedy_no_template") == contam["greedy_no_template"][0] == 72.2
    assert value("v1.table5.qwen2.5-math-7b.lipsum") == reference["v1.table5.Spurious (lipsum)"]["accuracy"] == 68.8
    alpha = reference["repro.alphaxiv"]["values"]["base"]
    assert value("alphaxiv.qwen2.5-math-7b.base.aime24") == pytest.approx(100 * alpha["AIME-2024_avg@8"])
    assert ledger.get("sober.table3.qwen2.5-math-7b.amc23").benchmark == "amc23"  # 40 problems, not task amc


def test_public_checkpoints_are_linked_to_their_claims(ledger: schema.Ledger) -> None:
    linked = {
        c.id: c.checkpoint for c in ledger.query(kind="rlvr_gain") if isinstance(c, schema.RlvrGain) and c.checkpoint
    }
    assert linked == {
        "pre.fig1.qwen2.5-math-7b.ground_truth": "qwen2.5-math-7b/ground_truth-step150",
        "pre.fig1.qwen2.5-math-7b.incorrect": "qwen2.5-math-7b/incorrect-step150",
    }


# ---------------------------------------------------------------------------------- bad ledgers

HEAD = """\
families:
  toy:
    display_name: Toy
    checkpoints:
      base: {model: org/toy, prompt: no_template}
      rl: {model: org/toy-rl, base: toy/base, reward: random, step: 50, prompt: no_template}
sources:
  P1: {title: A paper, url: https://example.org/p1, claimant: true}
protocols:
  greedy: {n: 1, temperature: 0.0, max_new_tokens: 100}
claims:
"""
GAIN = (
    "{id: toy.gain, kind: rlvr_gain, source: P1, model: toy, reward: random, benchmark: math500, "
    "protocol: greedy, baseline: 40, value: 50, gain: 10, exactness: exact, read_from: table"
)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (GAIN.replace("gain: 10", "gain: 12"), "(id 'toy.gain'): gain 12 != value - baseline = 50 - 40 = 10.00"),
        (
            GAIN.replace("model: toy", "model: tiy"),
            "(id 'toy.gain').model: unknown model family 'tiy'; valid families: toy",
        ),
        (GAIN + ", bogus: 1", "(id 'toy.gain').bogus: unknown key; valid keys here: id, source"),
        (
            GAIN.replace("kind: rlvr_gain", "kind: gainz"),
            "(id 'toy.gain').kind: unknown kind 'gainz'; valid kinds: rlvr_gain",
        ),
        (GAIN.replace("reward: random", "reward: magic"), "(id 'toy.gain'): unknown reward 'magic'; valid rewards:"),
        (GAIN.replace("source: P1", "source: P9"), "(id 'toy.gain').source: unknown source 'P9'; valid sources: P1"),
        (GAIN.replace("protocol: greedy", "protocol: sampled"), "(id 'toy.gain').protocol: unknown protocol 'sampled'"),
        (GAIN.replace("gain: 10", "gain: lots"), "(id 'toy.gain').gain: Input should be a valid number"),
        (GAIN.replace(", exactness: exact", ""), "(id 'toy.gain').exactness: required key is missing"),
        (
            GAIN.replace("model: toy,", "model: toy, checkpoint: toy/rl,").replace(
                "reward: random", "reward: incorrect"
            ),
            "(id 'toy.gain').checkpoint: checkpoint 'toy/rl' was trained with reward 'random', not 'incorrect'",
        ),
        (GAIN.replace("model: toy,", "model: toy, checkpoint: toy/nope,"), "unknown checkpoint 'toy/nope'"),
        (GAIN.replace("reward: random", "rewards: [random]"), "'rewards' needs at least two rewards"),
        (GAIN + ", gain_range: [1, 2]", "give 'gain' or 'gain_range', not both"),
        (GAIN + "}\n  - " + GAIN, "claims[1] (id 'toy.gain').id: duplicate id (first used by claims[0])"),
    ],
)
def test_bad_entry_is_named(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "checkpoints.yaml"
    path.write_text(HEAD + "  - " + entry + ("" if entry.endswith("}") else "}") + "\n")
    with pytest.raises(ConfigError) as err:
        Registry.load(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (GAIN.replace("math500", "gsm8k"), "(id 'toy.gain').benchmark: unknown benchmark 'gsm8k'; valid: the tasks"),
        (GAIN + ", prompt: fancy", "(id 'toy.gain').prompt: unknown prompt template 'fancy'; valid: code_forcing"),
    ],
)
def test_benchmark_and_prompt_are_checked_against_the_config(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "checkpoints.yaml"
    path.write_text(HEAD + "  - " + entry + "}\n")
    Registry.load(path)  # the file itself is consistent
    with pytest.raises(ConfigError, match="claims") as err:
        load_registry(Locations(config_dir=ROOT, registry=path))
    assert message in str(err.value)


def test_a_good_small_ledger_loads_and_a_registry_without_claims_has_an_empty_one(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.yaml"
    path.write_text(HEAD + "  - " + GAIN + ", mismatch_note: printed as is}\n")
    reg = load_registry(Locations(config_dir=ROOT, registry=path))
    (c,) = reg.ledger.claims
    assert isinstance(c, schema.RlvrGain) and c.value == 50 and reg.ledger.prompt(c) == "no_template"
    path.write_text(HEAD.split("sources:")[0])
    assert len(Registry.load(path).ledger) == 0
    with pytest.raises(UnknownNameError, match="valid claims: "):
        reg.ledger.get("nope")


# ---------------------------------------------------------------------------------- analyses


# The verdict rule itself (every branch, its error rate by simulation): tests/test_claims_verdicts.py


def _group(groups: list[cl.CorrectionGroup], model: str, source: str, step: int | None) -> cl.CorrectionGroup:
    (g,) = [g for g in groups if (g.model, g.benchmark, g.source, g.step) == (model, "math500", source, step)]
    return g


def test_qwen_math_500_corrected_from_49_4_to_64_3_per_reward_and_version(
    ledger: schema.Ledger, catalog: dict[str, schema.BenchmarkInfo]
) -> None:
    groups = cl.baseline_correction(ledger, catalog)
    assert all(len({c.source for c in g.claims}) == 1 for g in groups)  # versions never mixed
    pre = _group(groups, "qwen2.5-math-7b", "SR-preprint", 150)
    v1 = _group(groups, "qwen2.5-math-7b", "SR-v1", 300)
    rewards = ["ground_truth", "majority_vote", "one_shot", "format_boxed", "incorrect", "random"]
    for g in (pre, v1):
        assert g.claimed_baselines == (49.4,)
        assert [c.reward for c in g.claims] == rewards
        refs = {b.ref for b in g.baselines}
        assert "critique.qwen2.5-math-7b" not in refs  # the same figure as Sober's 64.3: shown once
        assert {"contam.qwen2.5-math-7b.greedy_no_template"} <= refs
        assert {"v1.table5.qwen2.5-math-7b.lipsum", "sober.table3.qwen2.5-math-7b.math500"} <= refs
        assert all(b.kind == "cited" for b in g.baselines)
        assert "alphaxiv.qwen2.5-math-7b.base.math500" in {e.id for e in g.reproductions}  # 49.4: not a correction
    critique = "sober.table3.qwen2.5-math-7b.math500"  # = critique.qwen2.5-math-7b (same_as)
    vs_critique = {r.claim.reward: r for r in pre.rows if r.baseline.ref == critique}
    # the critique's implied net gains (reference: crit.implied_net_gains): +13.9 / +11.6 / +9.7 / +6.5
    assert {k: vs_critique[k].adjusted_gain for k in ("ground_truth", "majority_vote", "incorrect", "random")} == (
        pytest.approx({"ground_truth": 13.9, "majority_vote": 11.6, "incorrect": 9.7, "random": 6.5})
    )
    gt = vs_critique["ground_truth"]
    assert gt.adjusted_ci is not None and gt.adjusted_ci[0] > 0 and gt.adjusted_ci[1] < 28.8
    assert gt.verdict == "shrinks"  # the interval excludes 0 and falls short of the claimed +28.8
    fb = vs_critique["format_boxed"]
    assert fb.adjusted_ci is not None and fb.adjusted_ci[0] < 0 < fb.adjusted_ci[1]
    assert fb.verdict == "within noise"  # +1.5, its interval covers 0
    v1_random = {r.baseline.ref: r for r in v1.rows if r.claim.reward == "random"}
    assert v1_random[critique].adjusted_gain == pytest.approx(70.8 - 64.3)
    assert v1_random["contam.qwen2.5-math-7b.greedy_no_template"].adjusted_gain == pytest.approx(70.8 - 72.2)
    assert v1_random["contam.qwen2.5-math-7b.greedy_no_template"].verdict == "within noise"  # -1.4, covers 0
    mde = v1_random[critique].mde
    assert mde == pytest.approx(100 * claim_stats.exact_mcnemar_mde(n_problems=500, accuracy=0.643), abs=1e-3)
    assert v1_random[critique].mde_test == "exact McNemar"


def test_pass_at_8_is_never_a_corrected_baseline_for_avg_at_8(ledger: schema.Ledger) -> None:
    assert schema.metrics_compatible("pass@1", "avg@3") and schema.metrics_compatible("avg@8", "avg@16")
    assert not schema.metrics_compatible("avg@8", "pass@8")
    repro = [e.id for e in cl._cited_baselines(ledger, "qwen2.5-math-7b", "aime24", "avg@8")]
    assert "alphaxiv.qwen2.5-math-7b.base.aime24" in repro
    assert "alphaxiv.qwen2.5-math-7b.base.aime24.pass8" not in repro


def test_aime_claims_are_flagged_below_the_minimum_detectable_effect(
    ledger: schema.Ledger, catalog: dict[str, schema.BenchmarkInfo]
) -> None:
    rows = {r.claim.id: r for r in cl.resolution(ledger, catalog)}
    aime24 = {cid: r for cid, r in rows.items() if r.claim.benchmark == "aime24"}
    assert len(aime24) == 8
    expected_mde = 100 * stats.minimum_detectable_effect(n_problems=30, k=8, accuracy=0.121)
    for cid, r in aime24.items():
        assert (r.n_problems, r.k, r.accuracy_from) == (30, 8, "alphaxiv.qwen2.5-math-7b.base.aime24")
        assert r.mde == pytest.approx(expected_mde, abs=1e-3)
        assert r.flag == ("powered" if abs(r.gains[0]) >= expected_mde else "underpowered"), cid
    assert [cid for cid, r in aime24.items() if r.flag == "powered"] == ["v1.aime24.qwen2.5-math-7b.ground_truth"]
    assert rows["v1.aime25.qwen2.5-math-7b.non_ground_truth"].gains == (-0.4, 4.5)
    assert rows["v1.aime25.qwen2.5-math-7b.non_ground_truth"].flag == "underpowered"
    big = rows["pre.fig1.qwen2.5-math-7b.ground_truth"]
    assert (big.n_problems, big.k, big.flag) == (500, 1, "powered")
    assert big.mde == pytest.approx(100 * claim_stats.exact_mcnemar_mde(n_problems=500, accuracy=0.494), abs=1e-3)
    assert big.gain_ci is not None and big.noise == "significant" and big.gain_ci[0] > 0
    assert big.ci_half_width == pytest.approx(100 * stats.ci_half_width(n_problems=500, accuracy=0.494), abs=1e-3)
    assert rows["pre.fig1.olmo-2-1124-7b.format_boxed"].flag == "underpowered"  # a claimed +0.0


# ---------------------------------------------------------------------------------- CLI


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_ls_claims_filters_and_formats() -> None:
    r = invoke("ls", "claims", "--format", "json", "--config-dir", str(ROOT), "--model", "qwen2.5-math-7b")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert list(rows[0]) == [
        "id",
        "kind",
        "source",
        "model",
        "reward",
        "benchmark",
        "metric",
        "baseline",
        "value",
        "gain",
        "exactness",
    ]
    assert all(row["model"].startswith("qwen2.5-math-7b") for row in rows)
    by_id = {row["id"]: row for row in rows}
    assert by_id["v1.fig1.qwen2.5-math-7b.random"] == {
        "id": "v1.fig1.qwen2.5-math-7b.random",
        "kind": "rlvr_gain",
        "source": "SR-v1",
        "model": "qwen2.5-math-7b",
        "reward": "random",
        "benchmark": "math500",
        "metric": "pass@1",
        "baseline": "49.4",
        "value": "70.8*",
        "gain": "+21.4",
        "exactness": "exact",
    }
    r = invoke(
        "ls", "claims", "--format", "tsv", "--config-dir", str(ROOT), "--benchmark", "aime24", "--kind", "rlvr_gain"
    )
    lines = r.output.splitlines()
    assert lines[0].split("\t")[0] == "id" and len(lines) == 1 + 8
    bad = invoke("ls", "claims", "--config-dir", str(ROOT), "--model", "gpt-5")
    assert bad.exit_code == 2 and "unknown model 'gpt-5'; valid models: " in " ".join(bad.output.split())
    misplaced = invoke("ls", "tasks", "--config-dir", str(ROOT), "--model", "qwen2.5-math-7b")
    assert misplaced.exit_code == 2 and "--model only filter `ls claims`" in misplaced.output


def test_run_claims_only_writes_the_report_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = invoke("run", "--claims-only", "--name", "claims", "--config-dir", str(ROOT))
    assert r.exit_code == 0, r.output
    out = tmp_path / "reports" / "claims"
    assert sorted(p.name for p in (out / "tables").iterdir()) == [
        "baseline_correction.csv",
        "claims.csv",
        "cross_family.csv",
        "resolution.csv",
    ]
    # claimed cross-family grids: one per benchmark and paper version, never mixing versions
    grid = pd.read_csv(out / "tables" / "cross_family.csv")
    assert set(grid.kind) == {"claimed"}
    v1 = grid[(grid.task == "math500") & (grid.version == "SR-v1") & (grid.reward == "random")].set_index("family")
    assert v1.loc["olmo-2-1124-7b", "gain"] == pytest.approx(-8.3)
    assert (out / "figures" / "cross_family_math500_claimed_SR-v1.png").is_file()
    assert (out / "figures" / "cross_family_math500_claimed_SR-preprint.png").is_file()
    md = (out / "index.md").read_text()
    assert "## Baseline correction" in md and "## Statistical resolution" in md
    assert "### Qwen2.5-Math-7B · MATH-500 · SR-preprint, step 150" in md
    assert "### Qwen2.5-Math-7B · MATH-500 · SR-v1, step 300" in md
    assert "ground_truth<br>49.4 → 78.2 (+28.8)" in md and re.search(r"\+13\.9 \[\+[0-9.]+, \+[0-9.]+\] · shrinks", md)
    assert "No store at" in md and "**measured**" not in md.split("## Baseline correction")[1].split("|---")[1]
    corr = pd.read_csv(out / "tables" / "baseline_correction.csv")
    assert list(corr.columns) == cl.CORRECTION_COLUMNS and set(corr.baseline_kind) == {"cited"}
    row = corr[
        (corr.claim == "v1.fig1.qwen2.5-math-7b.ground_truth")
        & (corr.baseline_ref == "sober.table3.qwen2.5-math-7b.math500")
    ]
    assert row[["claimed_baseline", "claimed_value", "baseline_value", "adjusted_gain", "verdict"]].values.tolist() == [
        [49.4, 78.5, 64.3, pytest.approx(14.2), "shrinks"]
    ]
    res = pd.read_csv(out / "tables" / "resolution.csv")
    flagged = res[res.benchmark == "aime24"].set_index("claim").flag
    assert flagged["pre.aime24.qwen2.5-math-7b.random"] == "underpowered"
    assert len(pd.read_csv(out / "tables" / "claims.csv")) == len(load_registry(Locations(config_dir=ROOT)).ledger)
    assert not list((tmp_path / "reports").glob(".claims*"))  # no temporary folder left


def test_claims_only_refuses_model_options_and_keeps_old_report_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = invoke("run", "--claims-only", "--checkpoints", "qwen2.5-math-7b/base", "--config-dir", str(ROOT))
    assert r.exit_code == 2 and "--claims-only runs no model; drop --checkpoints" in r.output
    assert not (tmp_path / "reports").exists()
    assert invoke("run", "--claims-only", "--config-dir", str(ROOT)).exit_code == 0
    index = tmp_path / "reports" / "audit" / "index.md"
    before = index.read_text()

    def broken(*args: object, **kwargs: object) -> str:
        raise AuditError("disk full")

    monkeypatch.setattr(writer, "render_document", broken)
    assert invoke("run", "--claims-only", "--config-dir", str(ROOT)).exit_code == 1
    assert index.read_text() == before
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["audit"]


# ---------------------------------------------------------------------------------- measured


def _first_math500(n: int) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (DATA / "math500.jsonl").read_text().splitlines()[:n]]
    return [(r["id"], r["answer"]) for r in rows]


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")
def test_measured_baselines_from_the_store_appear_beside_cited_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An imported base unit (6/10 correct) and the paper's incorrect-reward checkpoint (8/10).

    Imported, not scripted: units of the ``scripted`` backend are synthetic and never count as
    measurements of a real model (tests/reliability/test_synthetic_units.py)."""
    monkeypatch.chdir(tmp_path)
    problems = _first_math500(10)
    questions = [json.loads(line)["problem"] for line in (DATA / "math500.jsonl").read_text().splitlines()[:10]]
    common = ["--config-dir", str(ROOT), "--store", str(tmp_path / "store")]
    for checkpoint, n_right in (("qwen2.5-math-7b/base", 6), ("qwen2.5-math-7b/incorrect-step150", 8)):
        items = [
            {
                "prompt": f"Question: {q}\nAnswer:",
                "label": a,
                "index": i,
                "outputs": [f"\\boxed{{{a if i < n_right else '999999'}}}"],
            }
            for i, ((_pid, a), q) in enumerate(zip(problems, questions, strict=True))
        ]
        source = {"dataset": "MATH-500", "model": checkpoint, "temperature": 0.0, "rollouts": 1}
        source |= {"avg@1": n_right / 10, "pass@1": n_right / 10, "metadata": items}
        path = tmp_path / f"{checkpoint.replace('/', '_')}_MATH-500.json"
        path.write_text(json.dumps(source))
        imp = invoke(
            "import", "spurious-rewards-json", str(path), "--checkpoint", checkpoint, "--data-dir", str(DATA),
            "--allow-unmatched", "--quiet", *common,
        )  # fmt: skip
        assert imp.exit_code == 0, imp.output
    assert invoke("grade", "--quiet", *common).exit_code == 0
    r = invoke("report", "--resamples", "1000", "--quiet", *common)
    assert r.exit_code == 0, r.output
    normal = (tmp_path / "reports" / "audit" / "index.md").read_text()
    assert "## Baseline correction" in normal  # the normal report appends it for claimed models
    assert (tmp_path / "reports" / "audit" / "tables" / "baseline_correction.csv").is_file()

    r = invoke("run", "--claims-only", "--name", "claims", "--resamples", "1000", *common)
    assert r.exit_code == 0, r.output
    corr = pd.read_csv(tmp_path / "reports" / "claims" / "tables" / "baseline_correction.csv")
    # the base was measured on 10 of the 500 problems: another problem set, shown but excluded
    assert set(corr.baseline_kind) == {"cited"}
    md = (tmp_path / "reports" / "claims" / "index.md").read_text()
    assert "| **measured** | ~~60.0 [" in md and "_n=10/500_" in md
    assert "**excluded**: measured on 10 of 500 problems: another problem set" in md


def test_only_the_family_base_checkpoint_is_a_measured_baseline(ledger: schema.Ledger) -> None:
    from rlvr_audit.analysis.estimates import Analysis
    from rlvr_audit.core.records import CheckpointRef, Estimate, SamplingProtocol, UnitSpec
    from rlvr_audit.core.store import UnitInfo

    def unit(cid: str, model: str) -> UnitInfo:
        spec = UnitSpec(
            checkpoint=CheckpointRef(checkpoint_id=cid, model=model),
            task="math500",
            data_hash="d" * 16,
            template_id="qwen_math_default",
            template_hash="t" * 16,
            protocol=SamplingProtocol(n=1, temperature=0.0, max_new_tokens=3072),
            backend="vllm",
        )
        return UnitInfo(key=spec.key, spec=spec, family="qwen2.5-math-7b")

    base_id, base_model = ledger.family_bases["qwen2.5-math-7b"]
    units = [
        unit(base_id, base_model),
        unit("qwen2.5-math-7b/base-rerun", base_model),  # same weights under another id (e.g. imported)
        unit("qwen2.5-math-7b/random-x", "someone/random-rlvr"),  # an RLVR checkpoint stored without --base
    ]
    estimates = [
        Estimate(
            unit_key=u.key,
            checkpoint_id=u.spec.checkpoint.checkpoint_id,
            task="math500",
            template_id="qwen_math_default",
            grader_id="math_verify",
            metric="avg@1",
            value=0.6,
            ci_low=0.55,
            ci_high=0.65,
            level=0.95,
            method="bootstrap",
            n_problems=500,
            n_samples=1,
            seed=0,
        )
        for u in units
    ]
    analysis = Analysis(units=units, matrices={}, estimates=estimates, comparisons=[], graders=["math_verify"])
    catalog = ledger.catalog(schema.task_catalog(ROOT))
    found = cl.measured_baselines(
        analysis, "qwen2.5-math-7b", "math500", catalog, base=ledger.family_bases["qwen2.5-math-7b"]
    )
    assert sorted(u.spec.checkpoint.checkpoint_id for _, u, _ in found) == [base_id, "qwen2.5-math-7b/base-rerun"]
