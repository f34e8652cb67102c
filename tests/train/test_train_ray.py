"""verl's reward-loop worker scoring a ``DataProto`` batch with our reward (every reward kind, and
as a Ray actor); and, on a real local Ray cluster (``ray start --head``, 2 CPUs and one *declared*
GPU, started and stopped by this module), ``train launch --ray-address``: the probe job, the
pinned interpreter, the run directory as working directory, and refusals that name what is missing.

The cluster runs verl 0.9.1 as installed; only the successful submission runs a stand-in for
verl's trainer (``fake_verl`` on the job's ``PYTHONPATH``, passed with ``--ray-env``), because a
real run needs GPUs and vLLM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_verl import write_fake_verl

from rlvr_audit.core.errors import UsageError
from rlvr_audit.train.launch import launch
from rlvr_audit.train.plan import plan
from rlvr_audit.train.rewards import compute_score


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster(verl: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A one-node Ray cluster on this machine (loopback only), ended by pid when the module is done."""
    import psutil
    from ray.job_submission import JobSubmissionClient

    temp = tmp_path_factory.mktemp("ray")
    gcs, dashboard = free_port(), free_port()
    command = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={gcs}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        "--num-cpus=2",
        "--num-gpus=1",
        "--include-dashboard=true",
        "--disable-usage-stats",
        f"--temp-dir={temp}",
    ]
    log = (temp / "ray-start.log").open("wb")
    # Ray turns token authentication on when RAY_AUTH_MODE is unset and ~/.ray/auth_token exists
    # (another Ray user of this machine may have made one): this test cluster and its clients run without
    saved_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{dashboard}"
    deadline = time.monotonic() + 240
    try:
        while True:
            if head.poll() is not None:
                pytest.fail(f"ray start exited {head.returncode}: {(temp / 'ray-start.log').read_text()[-2000:]}")
            try:
                JobSubmissionClient(url).list_jobs()
                break
            except Exception:
                if time.monotonic() > deadline:
                    pytest.fail(f"the Ray dashboard did not come up at {url}")
                time.sleep(1.0)
        yield {"address": f"127.0.0.1:{gcs}", "dashboard": url}
    finally:
        try:
            procs = [psutil.Process(head.pid), *psutil.Process(head.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        _, left = psutil.wait_procs(procs, timeout=10)
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        log.close()
        if saved_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved_mode


# --- the reward, in verl's reward-loop worker as a Ray actor -----------------------------------

REWARDS: list[dict[str, Any]] = [
    {"name": "ground_truth"},
    {"name": "ground_truth", "grader": "math_verify"},
    {"name": "majority_vote"},
    {"name": "incorrect"},
    {"name": "format_boxed"},
    {"name": "random", "gamma": 0.5, "seed": 3},
    {"name": "python"},
    {"name": "no_repetition"},
    {"name": "compound", "rewards": [{"name": "ground_truth"}, {"name": "python", "negate": True}]},
]
RESPONSES = [
    "Adding the parts, the final answer is $\\boxed{\\frac{1}{2}}$.",
    "Simplifying, we get $\\boxed{0.5}$.",
    "I will use Python: print(1/2). So $\\boxed{\\frac12}$.",
    "The answer is $\\boxed{3}$.",
    "Let me check again. " * 40,
    "",
]
LABEL = "\\frac{1}{2}"


def batch(tokenizer: Any) -> Any:
    """A DataProto of every response to one prompt, right-padded, as verl's rollout hands it over."""
    import numpy as np
    import torch
    from verl import DataProto

    ids = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in RESPONSES]
    width = max(len(i) for i in ids) + 2
    responses = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros(len(ids), 5 + width, dtype=torch.long)
    for row, toks in enumerate(ids):
        responses[row, : len(toks)] = torch.tensor(toks, dtype=torch.long)
        mask[row, : 5 + len(toks)] = 1
    n = len(ids)
    return DataProto.from_dict(
        tensors={"prompts": torch.ones(n, 5, dtype=torch.long), "responses": responses, "attention_mask": mask},
        non_tensors={
            "data_source": np.array(["rlvr_audit"] * n, dtype=object),
            "reward_model": np.array([{"ground_truth": LABEL}] * n, dtype=object),
            "extra_info": np.array([{"question": "What is 1/2?", "index": 0}] * n, dtype=object),
        },
    )


def reward_configs(tmp_path: Path, make_spec, tokenizer: Path) -> list[Any]:  # type: ignore[no-untyped-def]
    """The composed verl config of a run with each reward of :data:`REWARDS`."""
    from conftest import INCORRECT

    from rlvr_audit.train.verl_config import compose

    configs = []
    for i, reward in enumerate(REWARDS):
        data: dict[str, Any] = {"labels": "ground_truth"}
        if reward["name"] == "majority_vote":
            data = {"labels": "majority_vote"}
        if reward["name"] == "incorrect":
            data = {"path": str(INCORRECT), "labels": "incorrect"}
        changes = {f"data.{k}": v for k, v in data.items()}
        run = tmp_path / f"run{i}"
        plan(make_spec(reward=reward, model={"path": str(tokenizer)}, **changes), run, progress=False)
        configs.append(compose((run / "verl_overrides.txt").read_text().splitlines()))
    return configs


def here(reward: dict[str, Any]) -> list[float]:
    info = {"question": "What is 1/2?", "index": 0}
    return [compute_score("rlvr_audit", r, LABEL, info, reward=reward) for r in RESPONSES]


def test_verls_reward_loop_worker_scores_every_reward_kind(
    verl: str, tmp_path: Path, make_spec, tiny_tokenizer: Path
) -> None:  # type: ignore[no-untyped-def]
    """verl's ``RewardLoopWorker`` built from each run's composed config (its tokenizer, its
    reward manager, our ``compute_score`` with the run's ``reward_kwargs``) scores a batch: the
    same scores as calling the function here, and the label rewards right. In this process; the
    next test runs it as the Ray actor verl starts."""
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    data = batch(AutoTokenizer.from_pretrained(str(tiny_tokenizer)))
    scores = {}
    for reward, cfg in zip(REWARDS, reward_configs(tmp_path, make_spec, tiny_tokenizer), strict=True):
        worker = RewardLoopWorker(cfg, None)
        got = [float(o["reward_score"]) for o in worker.loop.run_until_complete(worker.compute_score_batch(data))]
        assert got == here(reward), (reward, got)
        scores[reward["name"] + reward.get("grader", "")] = got
    assert scores["ground_truth"] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # the paper grader: 0.5 == 1/2
    assert scores["python"] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert scores["compound"] == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert scores["no_repetition"][4] == 0.0 and scores["format_boxed"][:4] == [1.0] * 4


def test_verls_reward_loop_worker_as_a_ray_actor(
    verl: str, ray_cluster: dict[str, str], tmp_path: Path, make_spec, tiny_tokenizer: Path
) -> None:  # type: ignore[no-untyped-def]
    """``ray.remote(RewardLoopWorker)`` as ``RewardLoopManager`` starts it, in a Ray worker process
    of the cluster: the rewards whose machinery differs there (the paper grader's and
    math-verify's grading process pools inside a Ray worker, the random reward's hash in another
    process) give the scores they give here."""
    import ray
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    data = batch(AutoTokenizer.from_pretrained(str(tiny_tokenizer)))
    chosen = [0, 1, 5]  # ground_truth (paper), ground_truth (math_verify), random
    configs = reward_configs(tmp_path, make_spec, tiny_tokenizer)
    ray.init(address=ray_cluster["address"], logging_level="ERROR", log_to_driver=False)
    try:
        workers = [ray.remote(RewardLoopWorker).options(num_cpus=0).remote(configs[i], None) for i in chosen]
        outputs = ray.get([w.compute_score_batch.remote(data) for w in workers], timeout=600)
        for w in workers:
            ray.kill(w)
    finally:
        ray.shutdown()
    for i, out in zip(chosen, outputs, strict=True):
        assert [float(o["reward_score"]) for o in out] == here(REWARDS[i]), REWARDS[i]


# --- train launch --ray-address ----------------------------------------------------------------

FAKE_TRAINER = """
import json, os, sys
print("RLVR_FAKE_TRAINER " + json.dumps({"cwd": os.getcwd(), "python": sys.executable, "argv": sys.argv[1:]}))
"""


def job_logs(dashboard: str, job_id: str, timeout: float = 300) -> tuple[str, str]:
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(dashboard)
    deadline = time.monotonic() + timeout
    while client.get_job_status(job_id) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        assert time.monotonic() < deadline, f"job {job_id} did not finish"
        time.sleep(1.0)
    return str(client.get_job_status(job_id).value), client.get_job_logs(job_id)


@pytest.fixture
def ray_run(tmp_path: Path, make_spec) -> Path:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    plan(make_spec(**{"resources.gpus_per_node": 1, "hyperparameters.micro_batch_per_gpu": 4}), run, progress=False)
    return run


def test_ray_job_runs_the_pinned_python_from_the_run_directory(
    ray_cluster: dict[str, str], ray_run: Path, tmp_path: Path
) -> None:
    fake = write_fake_verl(tmp_path / "fake", FAKE_TRAINER)
    result = launch(ray_run, ray_address=ray_cluster["dashboard"], ray_env={"PYTHONPATH": str(fake)}, progress=False)
    assert result.runtime_env == {"py_executable": sys.executable, "env_vars": {"PYTHONPATH": str(fake)}}
    status, logs = job_logs(ray_cluster["dashboard"], result.submission_id)
    assert status == "SUCCEEDED", logs
    (line,) = [x for x in logs.splitlines() if x.startswith("RLVR_FAKE_TRAINER ")]
    seen = json.loads(line.removeprefix("RLVR_FAKE_TRAINER "))
    assert seen["cwd"] == str(ray_run) and seen["python"] == sys.executable
    assert seen["argv"] == (ray_run / "verl_overrides.txt").read_text().splitlines()
    record = json.loads((ray_run / "launches.jsonl").read_text().splitlines()[-1])
    assert record["mode"] == "ray" and record["submission_id"] == result.submission_id
    assert record["versions"]["rlvr-audit"] and record["cluster_gpus"] == 1.0 and record["gpu_worker"]
    # the probe ran first, as its own job, and passed on the GPU worker too
    status, logs = job_logs(ray_cluster["dashboard"], f"{result.submission_id}-preflight")
    assert status == "SUCCEEDED" and '"gpu_task": {' in logs


def test_ray_job_is_refused_where_the_cluster_lacks_the_rollout_engine(
    ray_cluster: dict[str, str], ray_run: Path
) -> None:
    """The real verl on the cluster, no vLLM: refused before the job, naming what is missing."""
    with pytest.raises(UsageError, match=r"cannot launch on the cluster at .*: vllm missing .*python "):
        launch(ray_run, ray_address=ray_cluster["dashboard"], progress=False)
    assert not (ray_run / "launches.jsonl").exists()


def test_ray_job_is_refused_for_a_python_without_verl(
    ray_cluster: dict[str, str], ray_run: Path, tmp_path: Path
) -> None:
    """What a bare ``python3`` on the cluster gets (issue 17: the job ran without verl)."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = str(bare / "bin" / "python")
    pattern = r"could not run .*bare/bin/python -m rlvr_audit.train.preflight \(job .*FAILED\): .*No module named"
    with pytest.raises(UsageError, match=pattern):
        launch(ray_run, ray_address=ray_cluster["dashboard"], ray_python=python, progress=False)
    assert not (ray_run / "launches.jsonl").exists()
