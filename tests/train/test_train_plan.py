"""plan (no verl needed), launch --dry-run, the CLI's errors."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import EXPERIMENTS, INCORRECT
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.core.errors import ConfigError, UsageError
from rlvr_audit.train.launch import LAUNCHES_FILE, launch
from rlvr_audit.train.plan import plan
from rlvr_audit.train.preflight import Closure


def cli(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_plan_writes_a_run_directory_in_verls_format(tmp_path: Path, make_spec) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    result = plan(make_spec(), run, progress=False)
    assert result.train_rows == 512 and result.val_rows == 0
    assert sorted(p.name for p in run.iterdir()) == [
        "data",
        "launch.sh",
        "plan.json",
        "spec.yaml",
        "verl_overrides.txt",
    ]
    df = pd.read_parquet(run / "data" / "train.parquet")
    assert list(df.columns) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    first = df.iloc[0]
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert first["prompt"][0]["content"].endswith("\\boxed{}.")
    assert first["reward_model"]["ground_truth"] == "166"
    assert first["extra_info"]["problem_id"] == "deepscaler-l3-0"
    assert first["extra_info"]["question"] == first["prompt"][1]["content"]
    record = json.loads((run / "plan.json").read_text())
    assert record["spec_hash"] == result.spec_hash and record["optimizer_steps_per_batch"] == 8
    # the versions it was planned with (verl: None in an environment without it)
    from importlib import metadata

    try:
        verl_version: str | None = metadata.version("verl")
    except metadata.PackageNotFoundError:
        verl_version = None
    assert record["rlvr_audit_version"] == metadata.version("rlvr-audit") and record["verl_version"] == verl_version
    assert record["verl_requirement"] == "verl==0.9.1"
    overrides = (run / "verl_overrides.txt").read_text().splitlines()
    assert f"data.train_files={run / 'data' / 'train.parquet'}" in overrides
    assert "reward.custom_reward_function.path=pkg://rlvr_audit.train.rewards" in overrides
    assert not any(o.startswith("custom_reward_function") for o in overrides)  # never the legacy keys
    assert "trainer.total_epochs=3" in overrides  # 20 steps of 64 prompts from 8 batches per epoch
    assert "train.log" in (run / "launch.sh").read_text()


def test_plan_again_is_idempotent_and_refuses_a_different_spec(tmp_path: Path, make_spec) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    first = plan(make_spec(), run, progress=False)
    again = plan(make_spec(), run, progress=False)
    assert again.reused and again.spec_hash == first.spec_hash
    before = (run / "verl_overrides.txt").read_bytes()
    with pytest.raises(UsageError, match="already holds a different spec"):
        plan(make_spec(steps=30), run, progress=False)
    assert (run / "verl_overrides.txt").read_bytes() == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    with pytest.raises(UsageError, match="not a run directory"):
        plan(make_spec(), tmp_path / "other", progress=False)


def test_a_bad_spec_writes_nothing(tmp_path: Path, make_spec) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    with pytest.raises(ConfigError):
        plan(make_spec(**{"hyperparameters.prompts_per_step": 1000}), run, progress=False)  # 512 rows < 1000
    with pytest.raises(ConfigError):
        plan(make_spec(**{"data.problem_field": "question"}), run, progress=False)
    assert not run.exists()
    assert list(tmp_path.glob(".run.plan-*")) == []


def test_label_transforms(tmp_path: Path, make_spec) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "incorrect"
    plan(
        make_spec(reward={"name": "incorrect"}, data={"path": str(INCORRECT), "labels": "incorrect"}),
        run,
        progress=False,
    )
    df = pd.read_parquet(run / "data" / "train.parquet")
    assert len(df) == 96 and df.iloc[1]["reward_model"]["ground_truth"] == "\\frac{3}{4}"  # 4 empty labels dropped

    # incorrect labels with a gold field: rows whose label is right are dropped
    rows = [
        {"id": "a", "problem": "p1", "mv": "5", "gold": "5"},
        {"id": "b", "problem": "p2", "mv": "0.5", "gold": "\\frac{1}{2}"},
        {"id": "c", "problem": "p3", "mv": "7", "gold": "8"},
    ] * 1
    data = tmp_path / "mv.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    spec = make_spec(
        reward={"name": "incorrect"},
        data={"path": str(data), "labels": "incorrect", "answer_field": "mv", "gold_field": "gold"},
        **{
            "hyperparameters.prompts_per_step": 1,
            "hyperparameters.mini_batch_samples": 16,
            "resources.gpus_per_node": 1,
        },
    )
    plan(spec, tmp_path / "mv", progress=False)
    df = pd.read_parquet(tmp_path / "mv" / "data" / "train.parquet")
    assert [e["problem_id"] for e in df["extra_info"]] == ["c"]

    # one-shot: one example repeated
    spec = make_spec(
        data={"path": str(INCORRECT), "labels": "ground_truth", "one_shot": {"id": "deepscaler-7488", "copies": 64}}
    )
    plan(spec, tmp_path / "one", progress=False)
    df = pd.read_parquet(tmp_path / "one" / "data" / "train.parquet")
    assert len(df) == 64 and {p[1]["content"] for p in df["prompt"]} == {df.iloc[0]["prompt"][1]["content"]}


def test_launch_dry_run_prints_the_exact_command(tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = cli("train", "plan", str(EXPERIMENTS / "qwen2.5-math-7b-random.yaml"), "--run-dir", str(run), "-q")
    assert r.exit_code == 0, r.output
    r = cli("train", "launch", str(run), "--dry-run")
    assert r.exit_code == 0, r.output
    command = shlex.split(r.stdout.strip())
    overrides = (run / "verl_overrides.txt").read_text().splitlines()
    assert command == [sys.executable, "-m", "verl.trainer.main_ppo", *overrides]
    assert not (run / "logs").exists() and not (run / LAUNCHES_FILE).exists()
    r = cli("train", "launch", str(run), "--dry-run", "--ray-address", "http://head:8265", "--ray-env", "A=b c")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("ray job qwen2.5-math-7b-random-") and lines[0].endswith(" at http://head:8265")
    entrypoint = shlex.split(lines[1].removeprefix("entrypoint: "))
    assert entrypoint == ["cd", str(run), "&&", "exec", sys.executable, "-m", "verl.trainer.main_ppo", *overrides]
    runtime_env = json.loads(lines[2].removeprefix("runtime_env: "))
    assert runtime_env == {"py_executable": sys.executable, "env_vars": {"A": "b c"}}
    r = cli("train", "launch", str(run), "--dry-run", "--ray-address", "http://head:8265", "--ray-env", "novalue")
    assert r.exit_code == 2 and "KEY=VALUE" in r.output


def test_launch_refuses_a_run_launched_with_another_spec(tmp_path: Path, make_spec) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    plan(make_spec(), run, progress=False)
    (run / LAUNCHES_FILE).write_text(json.dumps({"spec_hash": "0123456789abcdef"}) + "\n")
    with pytest.raises(UsageError, match="launched with a different spec"):
        launch(run, dry_run=True)
    spec_yaml = run / "spec.yaml"
    (run / LAUNCHES_FILE).unlink()
    spec_yaml.write_text(spec_yaml.read_text().replace("steps: 20", "steps: 21"))
    with pytest.raises(UsageError, match="edited after planning"):
        launch(run, dry_run=True)


def test_cli_errors_exit_2_with_the_key(tmp_path: Path, make_spec) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(reward={"name": "lucky"})
    r = cli("train", "plan", str(spec), "--run-dir", str(tmp_path / "run"))
    assert r.exit_code == 2
    assert f"{spec}: reward:" in " ".join(r.output.split()) and "lucky" in r.output
    assert not (tmp_path / "run").exists()
    r = cli("train", "validate", str(tmp_path / "nowhere"))
    assert r.exit_code == 2 and "not a planned run directory" in " ".join(r.output.split())
    r = cli("train", "--help")
    assert r.exit_code == 0 and all(c in r.output for c in ("plan", "validate", "launch", "register", "merge"))


def test_validate_without_verl_points_to_the_training_environment(
    tmp_path: Path, make_spec, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Not `pip install -e '.[train]'` into this environment: verl's ANTLR pin would change
    math-verify's verdicts in the evaluation environment (README, Install)."""
    run = tmp_path / "run"
    plan(make_spec(), run, progress=False)
    monkeypatch.setitem(sys.modules, "verl", None)  # import verl -> ImportError
    r = cli("train", "validate", str(run))
    assert r.exit_code == 2
    message = " ".join(r.output.split())
    assert "training environment" in message and ".venv-train/bin/rlvr-audit train" in message, message
    assert "Do not add verl to the evaluation environment" in message
    assert "pip install -e '.[train]'" not in message


def test_local_launch_logs_and_records(tmp_path: Path, make_spec, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The launch mechanics with a stand-in for verl (a real run needs GPUs)."""
    import rlvr_audit.train.launch as launch_module
    from rlvr_audit.core.errors import AuditError

    run = tmp_path / "run"
    plan(make_spec(), run, progress=False)
    script = "import sys; print('step 1 done'); sys.exit(int(sys.argv[1]))"
    monkeypatch.setattr(launch_module, "_check_here", lambda spec, progress: Closure(sys.executable, "vllm"))
    monkeypatch.setattr(launch_module, "local_command", lambda run_dir: [sys.executable, "-c", script, "0"])
    result = launch(run, progress=False)
    assert result.returncode == 0 and "step 1 done" in (run / "logs" / "train.log").read_text()
    record = json.loads((run / LAUNCHES_FILE).read_text().splitlines()[0])
    assert record["mode"] == "local" and record["spec_hash"] == json.loads((run / "plan.json").read_text())["spec_hash"]
    monkeypatch.setattr(launch_module, "local_command", lambda run_dir: [sys.executable, "-c", script, "3"])
    with pytest.raises(AuditError, match="exited with status 3.*step 1 done"):
        launch(run, progress=False)
    assert len((run / LAUNCHES_FILE).read_text().splitlines()) == 2
