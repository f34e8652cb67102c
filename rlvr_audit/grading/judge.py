"""An LLM judge for the samples the rule-based graders disagree on.

Any OpenAI-compatible chat-completions server (vLLM's or SGLang's ``serve``, a hosted API)
answers one fixed, versioned prompt per sample: the problem, the gold answer and the final
part of the response (:data:`TAIL_CHARS` characters, cut at a line start). The reply must be
a JSON object, and nothing else, of the form ``{"verdict": "correct" | "incorrect",
"final_answer": "..." | null}`` (one fenced ```` ```json ```` block around it is tolerated);
anything else is a *judge error* for that sample, as is an unreachable endpoint, a timeout or
an HTTP error that outlives the retries. A judge error is never a verdict: the caller counts
it and the sample stays unjudged, so a later run asks again.

HTTP goes through ``requests`` with ``urllib3``'s ``Retry``: connection errors, read timeouts
and the statuses in :data:`RETRY_STATUSES` are retried ``retries`` times with exponential
backoff (a ``Retry-After`` header is honoured); ``POST`` is retried because asking a judge
twice changes nothing. The API key, if the server needs one, is read from the environment
variable the settings name (``OPENAI_API_KEY`` by default) and sent as a bearer token;
nothing is sent anywhere unless a judge endpoint is configured.

Decoding is greedy (``temperature`` 0) with a small ``max_tokens``: the verdict, not an
essay. The prompt, the tail length and the reply format together are :data:`PROMPT_VERSION`;
change any of them and bump it, since stored judgements are keyed by it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import UsageError

PROMPT_VERSION = "1"
"""Version of :data:`SYSTEM_PROMPT`, :data:`USER_TEMPLATE`, :data:`TAIL_CHARS` and the reply format."""

TAIL_CHARS = 4000
"""Characters of the response's end shown to the judge."""

JUDGE_VERDICTS: tuple[str, ...] = ("correct", "incorrect")
"""The verdicts a judge may reply with."""

RETRY_STATUSES: tuple[int, ...] = (408, 429, 500, 502, 503, 504)
"""HTTP statuses retried (timeouts, rate limits, server errors); others fail at once."""

SYSTEM_PROMPT = """\
You grade answers to math problems. You are given a problem, its reference answer, and the \
final part of a response written by a model (its beginning may be cut). Decide whether the \
response's final answer is mathematically equivalent to the reference answer.

Rules:
- Judge only the final answer the response commits to, not its reasoning or its style.
- Equivalent forms are correct: a different order of a set, an unreduced fraction, a \
decimal for a fraction, units or words around the number, "x = 5" for 5, a choice letter \
with or without its text.
- An answer the response states as its result and never takes back counts, boxed or not, \
even if the text is cut off later while re-checking.
- The response is incorrect if it never commits to a final answer (it stops mid-derivation, \
loops, or ends on an unresolved contradiction), whatever numbers it mentions, or if it \
answers a different question, or if the problem asks to simplify and the answer is not \
simplified.

Reply with a JSON object and nothing else:
{"verdict": "correct" or "incorrect", "final_answer": the response's final answer as a \
string, or null if it has none}"""
"""The judge's system message (part of :data:`PROMPT_VERSION`)."""

USER_TEMPLATE = """\
Problem:
{problem}

Reference answer:
{gold}

Response ({which}):
{response}"""
"""The judge's user message (part of :data:`PROMPT_VERSION`)."""


def response_tail(completion: str, n: int = TAIL_CHARS) -> tuple[str, bool]:
    """The last ``n`` characters of ``completion``, starting at a line if one starts near the
    cut, and whether anything was cut."""
    if len(completion) <= n:
        return completion, False
    tail = completion[-n:]
    newline = tail.find("\n")
    if 0 <= newline < 200:
        tail = tail[newline + 1 :]
    return tail, True


def judge_messages(*, problem: str, gold: str, response: str) -> list[dict[str, str]]:
    """The chat messages sent for one sample (the fixed prompt of :data:`PROMPT_VERSION`)."""
    tail, cut = response_tail(response)
    which = "its final part; the beginning is cut" if cut else "complete"
    user = USER_TEMPLATE.format(problem=problem, gold=gold, which=which, response=tail)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


_FENCED = re.compile(r"\A```(?:json)?\s*\n(?P<body>.*)\n\s*```\Z", re.DOTALL)


class JudgeReplyError(ValueError):
    """A reply that is not a strict verdict (the message says what is wrong)."""


def parse_verdict(content: str) -> tuple[str, str | None]:
    """``(verdict, final_answer)`` from a judge's reply; :class:`JudgeReplyError` otherwise.

    Strict: the whole reply (stripped, optionally inside one ```` ```json ```` fence) is one
    JSON object with ``verdict`` in :data:`JUDGE_VERDICTS` and optionally ``final_answer``
    (a string or null); any other key, or any text around the object, is an error.
    """
    text = content.strip()
    fenced = _FENCED.match(text)
    if fenced is not None:
        text = fenced.group("body").strip()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise JudgeReplyError(f"reply is not JSON: {shown!r}") from None
    if not isinstance(obj, dict):
        raise JudgeReplyError(f"reply is JSON but not an object: {type(obj).__name__}")
    extra = sorted(set(obj) - {"verdict", "final_answer"})
    if extra:
        raise JudgeReplyError(f"reply has unexpected keys {extra}; expected verdict and final_answer")
    verdict = obj.get("verdict")
    if verdict not in JUDGE_VERDICTS:
        raise JudgeReplyError(f"verdict {verdict!r} is not one of {', '.join(JUDGE_VERDICTS)}")
    answer = obj.get("final_answer")
    if answer is not None and not isinstance(answer, str):
        answer = json.dumps(answer)
    return str(verdict), answer


@dataclass(frozen=True)
class JudgeSettings:
    """Where and how to ask (``grade --judge-endpoint URL --judge-model NAME``)."""

    endpoint: str
    """Base URL of the OpenAI-compatible API, e.g. ``http://localhost:8000/v1``; requests go to
    ``<endpoint>/chat/completions``."""
    model: str
    """Model name as the server knows it (part of every stored judgement's key)."""
    timeout: float = 60.0
    """Seconds to wait for one reply (and for the connection)."""
    retries: int = 2
    """Retries after a connection error, a read timeout or a :data:`RETRY_STATUSES` status."""
    backoff: float = 0.5
    """Backoff factor between retries (``urllib3.Retry``: about ``backoff * 2**(n-1)`` seconds)."""
    max_tokens: int = 256
    """Token limit of the reply."""
    concurrency: int = 4
    """Requests in flight at once."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding an API key (sent as a bearer token when set)."""

    def __post_init__(self) -> None:
        if not re.match(r"^https?://[^\s/]+", self.endpoint):
            raise UsageError(
                f"--judge-endpoint must be an http(s) URL such as http://localhost:8000/v1, got {self.endpoint!r}"
            )
        if not self.model.strip():
            raise UsageError("--judge-model must name the model served at the endpoint")
        if not 0 < self.timeout < float("inf"):
            raise UsageError(f"--judge-timeout must be > 0 seconds, got {self.timeout}")
        if self.retries < 0:
            raise UsageError(f"--judge-retries must be >= 0, got {self.retries}")
        if self.concurrency < 1:
            raise UsageError(f"--judge-concurrency must be >= 1, got {self.concurrency}")
        if self.max_tokens < 1 or self.backoff < 0:
            raise UsageError("judge max_tokens must be >= 1 and backoff >= 0")

    @property
    def version(self) -> str:
        """The ``judge`` grader's version: prompt version and model, e.g. ``p1:Qwen/Qwen2.5-7B-Instruct``."""
        return f"p{PROMPT_VERSION}:{self.model}"


@dataclass(frozen=True)
class JudgeResult:
    """The judge's answer about one sample: a verdict, or why there is none."""

    verdict: str | None
    """``correct`` / ``incorrect``, or ``None`` for a judge error."""
    final_answer: str | None = None
    """The final answer the judge read in the response (``None``: none, or an error)."""
    error: str | None = None
    """Why there is no verdict (unreachable, timeout, HTTP status, malformed reply)."""
    raw: str | None = field(default=None, repr=False)
    """The reply's message content, when one came."""


class JudgeClient:
    """Asks one judge about samples; thread-safe (one ``requests`` session per thread)."""

    def __init__(self, settings: JudgeSettings) -> None:
        self.settings = settings
        self._local = threading.local()
        self.url = settings.endpoint.rstrip("/") + "/chat/completions"

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            # lazy: requests and urllib3 take 0.1-0.8 s to import; only when a judge is asked
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            retry = Retry(
                total=self.settings.retries,
                connect=self.settings.retries,
                read=self.settings.retries,
                status=self.settings.retries,
                other=0,
                backoff_factor=self.settings.backoff,
                status_forcelist=RETRY_STATUSES,
                allowed_methods=frozenset({"POST"}),
                raise_on_status=False,
                respect_retry_after_header=True,
            )
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            key = os.environ.get(self.settings.api_key_env)
            if key:
                session.headers["Authorization"] = f"Bearer {key}"
            self._local.session = session
        return session

    def judge(self, *, problem: str, gold: str, response: str) -> JudgeResult:
        """Ask about one sample. Never raises for a server or network failure: those are results."""
        import requests  # lazy: 0.1-0.8 s to import; only when a judge is asked

        body = {
            "model": self.settings.model,
            "messages": judge_messages(problem=problem, gold=gold, response=response),
            "temperature": 0,
            "max_tokens": self.settings.max_tokens,
        }
        tries = f"{self.settings.retries + 1} tries"
        try:
            reply = self._session().post(self.url, json=body, timeout=self.settings.timeout)
        except requests.exceptions.RequestException as exc:
            causes = _causes(exc)
            names = {type(c).__name__ for c in causes}
            if names & {"ReadTimeoutError", "ReadTimeout", "ConnectTimeoutError", "ConnectTimeout", "TimeoutError"}:
                return JudgeResult(None, error=f"no reply within {self.settings.timeout:g} s ({tries})")
            if isinstance(exc, requests.exceptions.ConnectionError):
                return JudgeResult(None, error=f"cannot reach {self.url} ({tries}): {_innermost(causes)}")
            return JudgeResult(None, error=f"request failed ({tries}): {_innermost(causes)}")
        if reply.status_code != 200:
            retried = f" ({tries})" if reply.status_code in RETRY_STATUSES else ""
            return JudgeResult(None, error=f"HTTP {reply.status_code}{retried}: {reply.text[:120]!r}")
        try:
            payload = reply.json()
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return JudgeResult(None, error=f"not a chat-completions reply: {reply.text[:120]!r}")
        if not isinstance(content, str):
            return JudgeResult(None, error="the reply's message has no text content")
        try:
            verdict, answer = parse_verdict(content)
        except JudgeReplyError as exc:
            return JudgeResult(None, error=str(exc), raw=content)
        return JudgeResult(verdict, final_answer=answer, raw=content)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors it wraps (``requests`` wraps ``urllib3`` wraps ``socket``)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        nested = getattr(current, "reason", None)
        if not isinstance(nested, BaseException):
            args = getattr(current, "args", ())
            nested = args[0] if args and isinstance(args[0], BaseException) else current.__cause__
        current = nested
    return chain


def _innermost(chain: list[BaseException]) -> str:
    """The innermost error's message, one line, without urllib3's object addresses."""
    inner = chain[-1]
    text = str(inner).splitlines()[0] if str(inner) else type(inner).__name__
    text = re.sub(r"<[^>]* at 0x[0-9a-f]+>: ", "", text)
    return text[:160]


__all__ = [
    "JUDGE_VERDICTS",
    "PROMPT_VERSION",
    "RETRY_STATUSES",
    "SYSTEM_PROMPT",
    "TAIL_CHARS",
    "USER_TEMPLATE",
    "JudgeClient",
    "JudgeReplyError",
    "JudgeResult",
    "JudgeSettings",
    "judge_messages",
    "parse_verdict",
    "response_tail",
]
