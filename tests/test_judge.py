"""The LLM judge: its fixed prompt, its strict verdict parser, and its client against a real
local HTTP server process speaking the chat-completions protocol (tests/judge_server.py)."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlvr_audit.core.errors import UsageError
from rlvr_audit.grading.judge import (
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    TAIL_CHARS,
    USER_TEMPLATE,
    JudgeClient,
    JudgeReplyError,
    JudgeSettings,
    judge_messages,
    parse_verdict,
)

SERVER = Path(__file__).resolve().parent / "judge_server.py"


class JudgeServer:
    """A running tests/judge_server.py process: its URL and the requests it logged."""

    def __init__(self, tmp: Path, script: dict[str, Any]) -> None:
        self.log = tmp / "requests.jsonl"
        self.log.touch()
        (tmp / "script.json").write_text(json.dumps(script))
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), str(tmp / "script.json"), str(self.log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), line
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/v1"

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.log.read_text().splitlines()]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[Any]:
    servers: list[JudgeServer] = []

    def start(script: dict[str, Any]) -> JudgeServer:
        folder = tmp_path / f"server{len(servers)}"
        folder.mkdir()
        server = JudgeServer(folder, script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def settings(url: str, **kw: Any) -> JudgeSettings:
    return JudgeSettings(endpoint=url, model="judge-model", **{"backoff": 0.01, "timeout": 5.0, **kw})


ASK = {"problem": "What is 1+1?", "gold": "2", "response": "1+1 is two, so the answer is 2."}


# --- the prompt ----------------------------------------------------------------------------


def test_prompt_changes_need_a_new_version() -> None:
    # The prompt is part of every stored judgement's key: changing its text, its tail length or
    # its reply format without bumping PROMPT_VERSION would silently mix two judges in one cache.
    digest = hashlib.sha256(f"{SYSTEM_PROMPT}\x00{USER_TEMPLATE}\x00{TAIL_CHARS}".encode()).hexdigest()[:16]
    assert {PROMPT_VERSION: digest} == {"1": "a3d24f65ad4d0d8e"}


def test_messages_hold_problem_gold_and_the_response_tail() -> None:
    long = "line of early work\n" * 400 + "So the answer is $\\boxed{42}$."
    system, user = judge_messages(problem="Find x.", gold="42", response=long)
    assert system["role"] == "system" and "JSON object" in system["content"]
    text = user["content"]
    assert "Find x." in text and "Reference answer:\n42" in text
    assert text.endswith("So the answer is $\\boxed{42}$.") and "the beginning is cut" in text
    assert len(text) < TAIL_CHARS + 300 and text.count("line of early work") < 400
    _, short = judge_messages(problem="p", gold="g", response="short answer 3")
    assert "(complete)" in short["content"]


# --- strict verdicts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"verdict": "correct", "final_answer": "2"}', ("correct", "2")),
        ('  {"verdict": "incorrect", "final_answer": null}\n', ("incorrect", None)),
        ('{"verdict": "incorrect"}', ("incorrect", None)),
        ('```json\n{"verdict": "correct", "final_answer": "x=5"}\n```', ("correct", "x=5")),
        ('{"verdict": "correct", "final_answer": 7}', ("correct", "7")),
    ],
)
def test_parse_accepts_exactly_the_verdict_object(reply: str, expected: tuple[str, str | None]) -> None:
    assert parse_verdict(reply) == expected


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("correct", "not JSON"),
        ('The verdict is {"verdict": "correct"}', "not JSON"),
        ('{"verdict": "correct"} because the answer matches', "not JSON"),
        ('{"verdict": "partially correct"}', "is not one of correct, incorrect"),
        ('{"verdict": "Correct"}', "is not one of"),
        ('{"final_answer": "2"}', "None is not one of"),
        ('{"verdict": "correct", "confidence": 0.9}', "unexpected keys"),
        ('["correct"]', "not an object"),
        ("", "not JSON"),
    ],
)
def test_parse_refuses_anything_else(reply: str, why: str) -> None:
    with pytest.raises(JudgeReplyError, match=why):
        parse_verdict(reply)


def test_settings_are_validated() -> None:
    with pytest.raises(UsageError, match="must be an http"):
        JudgeSettings(endpoint="localhost:8000", model="m")
    with pytest.raises(UsageError, match="--judge-model"):
        JudgeSettings(endpoint="http://localhost:8000/v1", model=" ")
    with pytest.raises(UsageError, match="--judge-timeout"):
        JudgeSettings(endpoint="http://localhost:8000/v1", model="m", timeout=0)
    with pytest.raises(UsageError, match="--judge-retries"):
        JudgeSettings(endpoint="http://localhost:8000/v1", model="m", retries=-1)
    assert JudgeSettings(endpoint="http://h/v1", model="org/m").version == f"p{PROMPT_VERSION}:org/m"


# --- the client against a real server process ---------------------------------------------


def test_a_verdict_comes_back_with_the_request_the_protocol_wants(serve: Any) -> None:
    server = serve({"default": {"verdict": "correct", "final_answer": "2"}})
    result = JudgeClient(settings(server.url)).judge(**ASK)
    assert (result.verdict, result.final_answer, result.error) == ("correct", "2", None)
    (request,) = server.requests()
    assert request["path"] == "/v1/chat/completions" and request["model"] == "judge-model"
    assert "What is 1+1?" in request["message"] and "so the answer is 2." in request["message"]


def test_server_errors_are_retried_then_succeed(serve: Any) -> None:
    server = serve({"rules": [{"match": "1+1", "then": [{"status": 503}, {"status": 500}, {"verdict": "incorrect"}]}]})
    result = JudgeClient(settings(server.url, retries=2)).judge(**ASK)
    assert result.verdict == "incorrect"
    assert len(server.requests()) == 3  # two failures, then the answer


def test_retries_run_out_into_a_judge_error(serve: Any) -> None:
    server = serve({"default": {"status": 502}})
    result = JudgeClient(settings(server.url, retries=1)).judge(**ASK)
    assert result.verdict is None and (result.error or "").startswith("HTTP 502 (2 tries)")
    assert len(server.requests()) == 2


def test_client_errors_are_not_retried(serve: Any) -> None:
    server = serve({"default": {"status": 400, "body": '{"error": {"message": "model not found"}}'}})
    result = JudgeClient(settings(server.url, retries=3)).judge(**ASK)
    assert result.verdict is None and result.error is not None and result.error.startswith("HTTP 400")
    assert "model not found" in result.error
    assert len(server.requests()) == 1


def test_a_slow_judge_times_out_after_its_retries(serve: Any) -> None:
    server = serve({"default": {"sleep": 1.5, "verdict": "correct"}})
    started = time.monotonic()
    result = JudgeClient(settings(server.url, timeout=0.3, retries=1)).judge(**ASK)
    assert result.verdict is None and result.error is not None
    assert result.error == "no reply within 0.3 s (2 tries)"
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while len(server.requests()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.requests()) == 2  # the first try and one retry


@pytest.mark.parametrize(
    ("behaviour", "why"),
    [
        ({"body": "this is not json"}, "not a chat-completions reply"),
        ({"body": '{"choices": []}'}, "not a chat-completions reply"),
        ({"content": "I think it is correct."}, "not JSON"),
        ({"content": '{"verdict": "maybe"}'}, "not one of"),
    ],
)
def test_malformed_answers_are_judge_errors(serve: Any, behaviour: dict[str, Any], why: str) -> None:
    server = serve({"default": behaviour})
    result = JudgeClient(settings(server.url)).judge(**ASK)
    assert result.verdict is None and why in (result.error or "")
    assert len(server.requests()) == 1  # a malformed reply is not retried


def test_an_unreachable_endpoint_is_a_judge_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = JudgeClient(settings(f"http://127.0.0.1:{port}/v1", retries=1)).judge(**ASK)
    assert result.verdict is None and result.error is not None
    assert result.error.startswith("cannot reach http://127.0.0.1:") and "(2 tries)" in result.error


def test_the_api_key_is_sent_from_the_named_variable(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve({"default": {"verdict": "correct"}})
    monkeypatch.setenv("RLVR_TEST_JUDGE_KEY", "sk-test")
    client = JudgeClient(settings(server.url, api_key_env="RLVR_TEST_JUDGE_KEY"))
    assert client._session().headers["Authorization"] == "Bearer sk-test"
    assert client.judge(**ASK).verdict == "correct"
