"""An OpenAI-compatible completions server that replays recorded responses, run as a separate process.

Usage: ``python tests/replay_server.py REPLIES.json`` binds 127.0.0.1 on a free port, prints
``PORT <n>`` on stdout, and serves ``POST /v1/completions`` until killed. ``REPLIES.json`` maps a
prompt string to the completion to return for it, so lm-eval's ``local-completions`` model sends
real prompts and gets real (published) responses back. A prompt not in the map is answered with
HTTP 400 naming it: a test fails loudly rather than grading an empty answer. ``prompt`` may be one
string or a list (one choice per prompt, in order).
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def make_handler(replies: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            try:
                request = json.loads(self.rfile.read(length).decode("utf-8"))
                prompts = request["prompt"]
            except (ValueError, KeyError, TypeError):
                self._send(400, {"error": {"message": "bad request"}})
                return
            prompts = [prompts] if isinstance(prompts, str) else prompts
            missing = [p for p in prompts if p not in replies]
            if missing:
                self._send(400, {"error": {"message": f"no recorded reply for prompt {missing[0][:80]!r}"}})
                return
            choices = [{"index": i, "text": replies[p], "finish_reason": "stop"} for i, p in enumerate(prompts)]
            self._send(200, {"id": "replay", "object": "text_completion", "model": "replay", "choices": choices})

    return Handler


def main() -> None:
    replies = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(replies))
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
