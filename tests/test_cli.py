"""The CLI end to end with the scripted backend: exact numbers, bad input, resume after a kill."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from testbed import DATA, ROOT
from testbed import TOY_REGISTRY as REGISTRY
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.store import Store

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")


def first_ids(task: str, n: int) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (DATA / f"{task}.jsonl").read_text().splitlines()[:n]]
    return [(r["id"], r["answer"]) for r in rows]


def boxed(answer: str) -> str:
    return f"So the answer is $\\boxed{{{answer}}}$."


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints.yaml").write_text(REGISTRY)
    math = first_ids("math500", 5)
    aime = first_ids("aime24", 3)
    # base: math500 problems 0,1 correct; rl: 0,1,2,3 correct. aime24 with 2 samples:
    # base: p0 [right, wrong], p1 [wrong, wrong], p2 [right, right]; rl: all right except p1 sample 1.
    script = {
        "toy/base": {
            **{pid: boxed(ans if i < 2 else "999999") for i, (pid, ans) in enumerate(math)},
            aime[0][0]: [boxed(aime[0][1]), boxed("1")],
            aime[1][0]: [boxed("1"), "no idea"],
            aime[2][0]: [boxed(aime[2][1]), boxed(aime[2][1])],
        },
        "toy/rl": {
            **{pid: boxed(ans if i < 4 else "999999") for i, (pid, ans) in enumerate(math)},
            aime[0][0]: [boxed(aime[0][1]), boxed(aime[0][1])],
            aime[1][0]: [boxed(aime[1][1]), boxed("3")],
            aime[2][0]: [boxed(aime[2][1]), boxed(aime[2][1])],
        },
    }
    (tmp_path / "script.json").write_text(json.dumps(script))
    return {"tmp": tmp_path, "registry": tmp_path / "checkpoints.yaml", "script": tmp_path / "script.json"}


def base_args(env: dict[str, Path]) -> list[str]:
    return [
        "--config-dir",
        str(ROOT),
        "--registry",
        str(env["registry"]),
        "--data-dir",
        str(DATA),
        "--store",
        str(env["tmp"] / "store"),
    ]


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def scripted_intervals() -> tuple[dict[int, object], tuple[float, float]]:
    """The default (wilson) intervals of the scripted run on 5 problems, computed independently.

    With one sample per problem the Wilson interval with a cluster design effect is the plain
    Wilson score interval, scipy's ``binomtest(x, n).proportion_ci(method="wilson")``: base 2/5
    correct, rl 4/5. The gain: base [1,1,0,0,0], rl [1,1,1,1,0]; MOVER (Newcombe's method 10)
    from the two Wilson intervals and the correlation r of the paired outcomes.
    """
    wilson = {x: scipy.stats.binomtest(x, 5).proportion_ci(method="wilson") for x in (2, 4)}
    r = float(np.corrcoef([1, 1, 0, 0, 0], [1, 1, 1, 1, 0])[0, 1])
    (lb, ub), (lt, ut) = (wilson[2].low, wilson[2].high), (wilson[4].low, wilson[4].high)
    low = 0.4 - math.sqrt((0.8 - lt) ** 2 + (ub - 0.4) ** 2 - 2 * r * (0.8 - lt) * (ub - 0.4))
    high = 0.4 + math.sqrt((ut - 0.8) ** 2 + (0.4 - lb) ** 2 - 2 * r * (ut - 0.8) * (0.4 - lb))
    return wilson, (low, high)


def test_run_gives_hand_computed_accuracies_intervals_and_gains(env: dict[str, Path]) -> None:
    r = invoke(
        "run",
        "--backend",
        "scripted",
        "--model-args",
        f"script={env['script']}",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500",
        "--limit",
        "5",
        "--quiet",
        *base_args(env),
    )
    assert r.exit_code == 0, r.output
    est = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "estimates.csv").set_index("checkpoint")
    assert list(est.columns[:9]) == [
        "task",
        "prompt",
        "grader",
        "metric",
        "n_problems",
        "n_samples",
        "value",
        "ci_low",
        "ci_high",
    ]
    wilson, (low, high) = scripted_intervals()
    assert est.loc["toy/base", ["value", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [0.4, wilson[2].low, wilson[2].high]
    )
    assert est.loc["toy/rl", ["value", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [0.8, wilson[4].low, wilson[4].high]
    )
    assert est.loc["toy/rl", "metric"] == "avg@1" and est.loc["toy/rl", "n_problems"] == 5
    assert est.loc["toy/rl", "method"] == "wilson-cluster(problems)"
    assert est.loc["toy/rl", "interval_flags"] == "few-informative"  # one problem wrong: 1 informative problem
    comp = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "comparisons.csv")
    row = comp.iloc[0]
    assert (row.checkpoint, row.base, row.task, row.grader) == ("toy/rl", "toy/base", "math500", "math_verify")
    assert [row.delta, row.ci_low, row.ci_high] == pytest.approx([0.4, low, high])
    assert row.p_value == pytest.approx(0.5)  # exact sign-flip test: 2 of 4 flips as extreme
    assert row.interval_flags == "few-discordant"  # both agree: not significant
    md = (env["tmp"] / "reports" / "audit" / "index.md").read_text()
    cell = f"40.0 [{100 * wilson[2].low:.1f}, {100 * wilson[2].high:.1f}] ⚠ few-informative"
    gain = f"+40.0 [{100 * low:+.1f}, {100 * high:+.1f}] vs base ⚠ few-discordant"
    assert cell in md and gain in md and "_n=5/500_" in md
    assert "Wilson score interval over problems" in md and "`--ci-method wilson`, the default" in md


def test_avg_and_pass_at_k_with_samples(env: dict[str, Path]) -> None:
    r = invoke(
        "run",
        "--backend",
        "scripted",
        "--model-args",
        f"script={env['script']}",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "aime24",
        "--limit",
        "3",
        "--samples",
        "2",
        "--quiet",
        *base_args(env),
    )
    assert r.exit_code == 0, r.output
    est = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "estimates.csv")
    got = {(e.checkpoint, e.metric): e.value for e in est.itertuples()}
    assert got[("toy/base", "avg@2")] == pytest.approx((0.5 + 0 + 1) / 3)
    assert got[("toy/base", "pass@2")] == pytest.approx(2 / 3)
    assert got[("toy/rl", "avg@2")] == pytest.approx((1 + 0.5 + 1) / 3)
    assert got[("toy/rl", "pass@2")] == pytest.approx(1.0)
    comp = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "comparisons.csv")
    assert comp.delta.tolist() == pytest.approx([(1 + 0.5 + 1) / 3 - 0.5])


def test_rerun_reuses_and_a_changed_setting_makes_a_new_unit(env: dict[str, Path]) -> None:
    args = [
        "--backend",
        "scripted",
        "--model-args",
        f"script={env['script']}",
        "--checkpoints",
        "toy/base",
        "--tasks",
        "math500",
        "--limit",
        "3",
        "--quiet",
        *base_args(env),
    ]
    assert invoke("run", *args).exit_code == 0
    r = invoke("run", *args)
    assert "0 samples generated, 3 reused" in r.output
    r = invoke("run", *args, "--max-new-tokens", "100")
    assert "3 samples generated, 0 reused" in r.output
    assert len(Store(env["tmp"] / "store").unit_keys()) == 2
    r = invoke("run", *[a if a != "3" else "4" for a in args])
    assert "1 samples generated, 3 reused" in r.output  # --limit grows the same unit


def test_grade_and_report_commands_work_from_the_store_alone(env: dict[str, Path]) -> None:
    gen = invoke(
        "generate",
        "--backend",
        "scripted",
        "--model-args",
        f"script={env['script']}",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500",
        "--limit",
        "5",
        "--quiet",
        *base_args(env),
    )
    assert gen.exit_code == 0 and "10 samples generated" in gen.output
    store = ["--store", str(env["tmp"] / "store")]
    assert invoke("grade", "--quiet", *store).exit_code == 0
    r = invoke("report", "--name", "again", "--registry", str(env["registry"]), *store)
    assert r.exit_code == 0, r.output
    assert (env["tmp"] / "reports" / "again" / "tables" / "comparisons.csv").is_file()
    rows = json.loads(invoke("ls", "units", "--format", "json", *store).output)
    assert {(r["checkpoint"], r["generated"], r["graders"]) for r in rows} == {
        ("toy/rl", "5", "math_verify"),
        ("toy/base", "5", "math_verify"),
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tasks", "gsm8k"], "unknown task 'gsm8k'; valid tasks: aime24, aime25, amc, math500, synth_arith"),
        (["--prompts", "fancy"], "unknown prompt 'fancy'; valid prompts: all, code_forcing"),
        (["--checkpoints", "toy/nope"], "unknown checkpoint 'toy/nope'; valid checkpoints: toy/base, toy/rl"),
        (["--graders", "vibes"], "unknown grader 'vibes'; valid graders: "),
        (["--backend", "hal9000"], "unknown backend 'hal9000'; valid backends: "),
        (["--limit", "0"], "--limit must be a positive number"),
        (["--workers", "0"], "--workers must be >= 1"),
        (["--level", "95"], "--level must be in (0, 1)"),
        (["--model-args", "dtype"], "'dtype' is not key=value"),
        # names that look like rich markup are printed as typed, not swallowed as styles
        (["--tasks", "[bold]math"], "unknown task '[bold]math'"),
    ],
)
def test_bad_names_exit_2_and_write_nothing(env: dict[str, Path], extra: list[str], message: str) -> None:
    args = [
        "run",
        "--backend",
        "scripted",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500",
        "--limit",
        "2",
        *base_args(env),
    ]
    for i in range(0, len(extra), 2):
        flag = extra[i]
        if flag in args:
            args[args.index(flag) + 1] = extra[i + 1]
        else:
            args += extra[i : i + 2]
    r = invoke(*args)
    assert r.exit_code == 2
    assert message in " ".join(r.output.split())
    assert not (env["tmp"] / "store").exists() and not (env["tmp"] / "reports").exists()


def test_broken_yaml_names_file_and_key(env: dict[str, Path]) -> None:
    env["registry"].write_text(REGISTRY.replace("reward: random", "reward: random\n        lr: 1e-6"))
    r = invoke("run", "--backend", "scripted", "--checkpoints", "toy/rl", "--tasks", "math500", *base_args(env))
    assert r.exit_code == 2
    assert "checkpoints.yaml: families.toy.checkpoints.rl.lr: unknown key" in " ".join(r.output.split())


def test_model_directory_that_does_not_load(env: dict[str, Path]) -> None:
    bad = env["tmp"] / "broken-model"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "qwen2"}')
    r = invoke(
        "run",
        "--backend",
        "hf",
        "--checkpoints",
        str(bad),
        "--tasks",
        "math500",
        "--limit",
        "1",
        "--prompts",
        "no_template",
        *base_args(env),
    )
    assert r.exit_code == 2
    assert "cannot load model" in r.output and "broken-model" in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "with backend 'hf'" in errors[0], r.output  # one line: model, backend, cause
    assert not (env["tmp"] / "store").exists()  # nothing left behind: no unit, no problems, no run manifest


def test_every_command_explains_itself_with_an_example() -> None:
    for command in ("run", "generate", "grade", "report", "ls", "validate"):
        r = CliRunner().invoke(app, [command, "--help"])
        assert r.exit_code == 0 and "Example:" in r.output, command


def test_help_does_not_import_torch_or_vllm() -> None:
    code = (
        "import sys; from rlvr_audit.cli import app; from typer.testing import CliRunner; "
        "CliRunner().invoke(app, ['run', '--help']); print('torch' in sys.modules, 'vllm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_validate_and_ls(env: dict[str, Path]) -> None:
    r = invoke("validate", "--config-dir", str(ROOT))
    assert r.exit_code == 0 and "all 15 files valid" in r.output
    for what, expect in [
        ("tasks", "math500"),
        ("prompts", "lipsum"),
        ("graders", "math_verify"),
        ("checkpoints", "qwen2.5-math-7b/base"),
    ]:
        r = invoke("ls", what, "--format", "tsv", "--config-dir", str(ROOT))
        assert r.exit_code == 0 and expect in r.output.split(), what
    assert invoke("ls", "everything", "--config-dir", str(ROOT)).exit_code == 2


def test_killed_run_resumes_without_loss_or_regeneration(env: dict[str, Path]) -> None:
    """SIGKILL a run mid-generation; the rerun generates exactly the missing samples."""
    store = env["tmp"] / "store"
    cmd = [
        sys.executable,
        "-m",
        "rlvr_audit.cli",
        "generate",
        "--backend",
        "scripted",
        "--model-args",
        "accuracy=0.5,delay=0.02",
        "--checkpoints",
        "toy/base",
        "--tasks",
        "math500",
        "--limit",
        "120",
        "--save-every",
        "10",
        "--quiet",
        *base_args(env),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=env["tmp"])
    gens = None
    deadline = time.time() + 60
    while time.time() < deadline:
        files = list(store.glob("units/*/generations.jsonl"))
        if files and len(files[0].read_text().splitlines()) >= 30:
            gens = files[0]
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert gens is not None, "the run stored nothing before the deadline"
    before = [json.loads(line) for line in gens.read_text().splitlines() if line.endswith("}")]
    assert 30 <= len(before) < 120
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=env["tmp"])
    assert done.returncode == 0, done.stdout + done.stderr
    after = Store(store).read_generations(gens.parent.name)
    assert len(after) == 120 and len({(g.problem_id, g.sample_idx) for g in after}) == 120
    kept = {(g["problem_id"], g["completion"]) for g in before}
    assert kept <= {(g.problem_id, g.completion) for g in after}
    raw_lines = [line for line in gens.read_text().splitlines() if line]
    assert len(raw_lines) == 120  # nothing generated twice
    assert f"{120 - len(before)} samples generated, {len(before)} reused" in " ".join(done.stderr.split())


def test_ctrl_c_keeps_the_work_and_marks_the_run_interrupted(env: dict[str, Path]) -> None:
    """SIGINT mid-generation: exit 130, manifest says interrupted, the rerun resumes."""
    store = env["tmp"] / "store"
    cmd = [
        sys.executable,
        "-m",
        "rlvr_audit.cli",
        "run",
        "--backend",
        "scripted",
        "--model-args",
        "accuracy=0.5,delay=0.02",
        "--checkpoints",
        "toy/base",
        "--tasks",
        "math500",
        "--limit",
        "100",
        "--save-every",
        "10",
        "--quiet",
        *base_args(env),
    ]
    # A job started in the background by a non-interactive shell (CI: no terminal, no stdin)
    # inherits SIGINT ignored, as POSIX asks, and Python keeps it ignored: restore the default in
    # the child so that the signal this test sends is delivered as a user's Ctrl-C would be.
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=env["tmp"],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        files = list(store.glob("units/*/generations.jsonl"))
        if files and len(files[0].read_text().splitlines()) >= 20:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in " ".join(err.split())
    (manifest,) = [json.loads(p.read_text()) for p in (store / "runs").glob("*.json")]
    assert manifest["status"] == "interrupted" and manifest["finished_at"]
    kept = len(Store(store).read_generations(Store(store).unit_keys()[0]))
    assert 20 <= kept < 100
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=env["tmp"])
    assert done.returncode == 0, done.stderr
    assert f"{100 - kept} samples generated, {kept} reused" in " ".join(done.stderr.split())


def test_report_has_cross_family_grid_and_heatmap(env: dict[str, Path]) -> None:
    r = invoke(
        "run",
        "--backend",
        "scripted",
        "--model-args",
        f"script={env['script']}",
        "--checkpoints",
        "toy/rl",
        "--tasks",
        "math500",
        "--limit",
        "5",
        "--quiet",
        *base_args(env),
    )
    assert r.exit_code == 0, r.output
    report = env["tmp"] / "reports" / "audit"
    grid = pd.read_csv(report / "tables" / "cross_family.csv")
    [row] = grid.itertuples()
    assert (row.family, row.reward, row.kind) == ("toy", "random", "measured")
    assert (row.checkpoint, row.base) == ("toy/rl", "toy/base")
    _, (low, high) = scripted_intervals()  # the default interval of the gain
    assert [row.gain, row.ci_low, row.ci_high] == pytest.approx([40.0, 100 * low, 100 * high])
    assert row.p_holm == pytest.approx(row.p_value)  # one cell: Holm changes nothing
    png = report / "figures" / "cross_family_math500_math_verify_avgat1.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    md = (report / "index.md").read_text()
    assert "## Cross-family gains" in md and f"| Toy | **+40.0** [{100 * low:+.1f}, {100 * high:+.1f}] |" in md


def test_bca_intervals_and_unknown_ci_method(env: dict[str, Path]) -> None:
    common = ["--backend", "scripted", "--model-args", f"script={env['script']}", "--checkpoints", "toy/rl"]
    common += ["--tasks", "math500", "--limit", "5", "--quiet", *base_args(env)]
    r = invoke("run", *common, "--ci-method", "student")
    assert r.exit_code == 2 and "unknown --ci-method 'student'; valid: wilson, percentile, bca" in r.output
    assert not (env["tmp"] / "store").exists()  # refused before anything was generated
    r = invoke("run", *common, "--ci-method", "bca")
    assert r.exit_code == 0, r.output
    est = pd.read_csv(env["tmp"] / "reports" / "audit" / "tables" / "estimates.csv")
    assert set(est.method) == {"bootstrap-bca(problems)"}


def test_seed_to_seed_spread_of_runs_differing_only_in_seed(env: dict[str, Path]) -> None:
    common = ["--backend", "scripted", "--model-args", "accuracy=0.5", "--checkpoints", "toy/base"]
    common += ["--tasks", "aime24", "--limit", "10", "--samples", "2", "--quiet", *base_args(env)]
    for seed in ("0", "1", "2"):
        assert invoke("run", *common, "--seed", seed).exit_code == 0
    r = invoke("report", *[a for a in base_args(env) if a not in ("--data-dir", str(DATA))])
    assert r.exit_code == 0, r.output
    report = env["tmp"] / "reports" / "audit"
    est = pd.read_csv(report / "tables" / "estimates.csv")
    avg = est[est.metric == "avg@2"].sort_values("value").value.tolist()
    assert len(avg) == 3
    spread = pd.read_csv(report / "tables" / "seed_spread.csv").set_index("metric").loc["avg@2"]
    assert spread.seeds == "0 1 2" and spread.n_seeds == 3
    assert [spread["min"], spread["max"]] == pytest.approx([avg[0], avg[-1]])
    assert spread["sd"] == pytest.approx(float(pd.Series(avg).std()))
    assert "## Seed-to-seed spread" in (report / "index.md").read_text()
