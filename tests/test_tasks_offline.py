"""Offline without ``--data-dir``: the Hub is probed once, briefly, and the command fails with one
hint instead of half a minute of ``datasets`` retries and doubled warnings (issue 21)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from testbed import ROOT, TOY_REGISTRY

from rlvr_audit.core import tasks
from rlvr_audit.core.errors import UsageError


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "_hub_probe", {})
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", tasks.DATA_DIR_ENV):
        monkeypatch.delenv(var, raising=False)


def test_offline_without_data_dir_fails_at_once_with_one_hint(tmp_path: Path) -> None:
    (tmp_path / "checkpoints.yaml").write_text(TOY_REGISTRY)
    (tmp_path / "script.json").write_text("{}")
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "RLVR_AUDIT_DATA_DIR")
    }
    env |= {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "COLUMNS": "200", "NO_COLOR": "1"}
    r = subprocess.run(
        [
            *(sys.executable, "-m", "rlvr_audit.cli", "generate", "--backend", "scripted"),
            *("--model-args", "script=script.json", "--checkpoints", "toy/rl", "--tasks", "math500,aime24"),
            *("--limit", "2", "--quiet", "--config-dir", str(ROOT), "--registry", "checkpoints.yaml"),
            *("--store", "store"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert out.count("--data-dir") == 1 and out.count("cannot be reached") == 1, out
    assert env["HF_ENDPOINT"] in out and "math500.jsonl" in out and "HF_HUB_OFFLINE=1" in out
    assert "Traceback" not in out and "Retrying" not in out and "Warning" not in out
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.jsonl"))


class _Answer(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # http.server's name
        self.send_response(404)  # an error status is still an answer: the Hub is reachable
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def answering_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_probe_tells_an_answering_endpoint_from_a_refusing_or_silent_one(answering_server: str) -> None:
    assert tasks.hub_unreachable(answering_server) is None
    refused = tasks.hub_unreachable(f"http://127.0.0.1:{closed_port()}")
    assert refused is not None and "refused" in refused.lower()
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        reason = tasks.hub_unreachable(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3)
    assert reason is not None and "timed out" in reason.lower()


def test_the_probe_runs_once_per_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}/")
    spec = tasks.load_task("math500", ROOT)
    calls = []
    real = tasks.hub_unreachable

    def counting(*args: object, **kw: float) -> str | None:
        calls.append(args)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(tasks, "hub_unreachable", counting)
    for name in ("math500", "aime24"):
        with pytest.raises(UsageError, match="cannot be reached"):
            tasks.load_problems(tasks.load_task(name, ROOT))
    assert len(calls) == 2 and len(tasks._hub_probe) == 1  # asked twice, probed once
    assert tasks.hub_endpoint() == os.environ["HF_ENDPOINT"].rstrip("/")
    assert spec.task == "math500"


def test_hf_offline_mode_skips_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """With HF_HUB_OFFLINE/HF_DATASETS_OFFLINE the user asks for datasets' cache: no probe."""
    loaded: list[str] = []

    def load_dataset(path: str, *args: object, **kw: object) -> list[dict[str, str]]:
        loaded.append(path)
        return [{"problem": "1+1", "answer": "2"}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    spec = tasks.load_task("math500", ROOT)
    with pytest.raises(UsageError, match="cannot be reached"):
        tasks._load_hub_rows(spec)
    assert loaded == []  # failed before datasets was asked
    for var, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "true")):
        with monkeypatch.context() as m:
            m.setenv(var, value)
            m.setattr(tasks, "hub_unreachable", lambda *a, **k: pytest.fail("probed in offline mode"))
            assert tasks._load_hub_rows(spec) == [{"problem": "1+1", "answer": "2"}]
    assert loaded == [spec.dataset_path] * 2
