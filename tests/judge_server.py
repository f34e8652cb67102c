"""A scripted OpenAI-compatible chat-completions server, run as a separate process by the tests.

Usage: ``python tests/judge_server.py SCRIPT.json LOG.jsonl`` binds 127.0.0.1 on a free port,
prints ``PORT <n>`` on stdout, and serves ``POST /v1/chat/completions`` until killed.

The script is a JSON object::

    {"default": BEHAVIOUR, "rules": [{"match": "text", "then": [BEHAVIOUR, ...]}, ...]}

A request is handled by the first rule whose ``match`` occurs in its last message's content;
the rule's behaviours are used one per request, the last one repeating (so
``[{"status": 503}, {"verdict": "correct"}]`` fails once, then answers). A behaviour:

- ``{"verdict": V, "final_answer": A}``: a well-formed reply whose content is that JSON;
- ``{"content": TEXT}``: a well-formed reply with this message content (malformed verdicts);
- ``{"body": TEXT}``: status 200 with this raw body (not a chat-completions reply);
- ``{"status": N, "body": TEXT}``: that HTTP status;
- ``"sleep": SECONDS`` in any behaviour: wait that long first (to provoke client timeouts).

Every request is appended to the log (one JSON line: path, model, last message, the time) before
it is answered, so tests can count what the client sent, including retries.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Script:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.default = spec.get("default", {"verdict": "correct", "final_answer": None})
        self.rules = [(r["match"], list(r["then"])) for r in spec.get("rules", [])]
        self.used: dict[int, int] = {}
        self.lock = threading.Lock()

    def behaviour(self, text: str) -> dict[str, Any]:
        with self.lock:
            for i, (match, then) in enumerate(self.rules):
                if match in text:
                    n = self.used.get(i, 0)
                    self.used[i] = n + 1
                    return then[min(n, len(then) - 1)]
        return self.default


def make_handler(script: Script, log: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: str, content_type: str = "application/json") -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode("utf-8")
            try:
                request = json.loads(raw)
                text = request["messages"][-1]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                self._send(400, json.dumps({"error": {"message": "bad request"}}))
                return
            with lock, log.open("a", encoding="utf-8") as f:
                entry = {"path": self.path, "model": request.get("model"), "message": text, "time": time.time()}
                f.write(json.dumps(entry) + "\n")
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}))
                return
            b = script.behaviour(text)
            time.sleep(float(b.get("sleep", 0)))
            if "status" in b:
                self._send(int(b["status"]), b.get("body", json.dumps({"error": {"message": "scripted failure"}})))
            elif "body" in b:
                self._send(200, b["body"], "text/plain")
            else:
                content = (
                    b["content"]
                    if "content" in b
                    else json.dumps({"verdict": b["verdict"], "final_answer": b.get("final_answer")})
                )
                reply = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": request.get("model"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
                self._send(200, json.dumps(reply))

    return Handler


def main(argv: list[str]) -> None:
    script = Script(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script, Path(argv[1])))
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
