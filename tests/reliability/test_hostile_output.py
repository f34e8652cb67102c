"""Hostile model output: random and adversarial text (huge numbers, deep nesting, 1 MB
responses, NUL bytes, lone surrogates, invalid UTF-8 in imported files, HTML/JS payloads)
through the graders, the code-reasoning detector and behaviour flags, the importers and the
HTML report: no crash, no hang past the grading timeout, nothing executed, output escaped.

The graders' own property tests (gold answers, random LaTeX-like text, the first hostile
inputs through the pool) are in ``tests/graders/test_properties.py``; the inputs here are the
ones it does not try. A watchdog (``faulthandler``) turns a hang into a failure with a
traceback instead of a stuck CI job; no test asserts a duration.
"""

from __future__ import annotations

import ast
import faulthandler
import json
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reliability_helpers import DATA, ROOT, needs_data, one_line, write_registry
from typer.testing import CliRunner

from rlvr_audit.analysis import behaviour
from rlvr_audit.cli import app
from rlvr_audit.core.records import VERDICTS
from rlvr_audit.core.store import Store
from rlvr_audit.grading import GRADERS
from rlvr_audit.grading.engine import grade_many
from rlvr_audit.grading.paper import should_allow_eval
from rlvr_audit.grading.pool import GradeTask
from rlvr_audit.report.browser import render_response
from rlvr_audit.report.html import json_script, markdown_to_html
from rlvr_audit.report.markdown import code_span, escape

MB = 1 << 20

# ---- text strategies ------------------------------------------------------------------------

_HOSTILE_ATOMS = [
    "\x00",
    "\ud800",
    "\udfff",
    "\ufffd",
    "\u202e",
    "\r",
    "\n",
    "\t",
    "```",
    "```python\n",
    "```\n",
    "def f(x):",
    "    return x",
    "print(",
    "import os",
    ">>> ",
    "<script>alert(1)</script>",
    "</script>",
    "<!--",
    "]]>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "javascript:alert(1)",
    "[x](javascript:alert(1))",
    "<br>",
    "&amp;",
    "&#x3C;",
    "|",
    "\\boxed{",
    "\\boxed{5}",
    "}",
    "{",
    "$",
    "\\frac{",
    "9" * 50,
    "10^{10^{10}}",
    "the answer is ",
    "Let me repeat. ",
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(_HOSTILE_ATOMS), st.text(st.characters(exclude_categories=()), max_size=20)),
    max_size=40,
).map("".join)
"""Text mixing arbitrary code points (surrogates and NUL included) with code, markup and LaTeX."""

_FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    """A hang becomes a failure with every thread's traceback (after 5 minutes), not a stuck job."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def big_inputs() -> dict[str, str]:
    """Responses of about 1 MB that are worst cases for line, fence and repetition scanning."""
    return {
        "one_long_line": "x" * MB,
        "many_short_lines": "a\n" * (MB // 2),
        "unclosed_fence": "```python\n" + "print(1)\n" * (MB // 9),
        "many_fences": "```\n" * (MB // 4),
        "repetition": "The answer is 5. " * (MB // 17),
        "near_repetition": "".join(f"step {i % 997} then " for i in range(MB // 16)),
        "nul_bytes": "\x00" * MB,
        "surrogates": "\ud800" * (MB // 4),
        "braces": "{" * (MB // 2) + "}" * (MB // 2),
        "html": "<script>alert(1)</script>" * (MB // 25),
    }


# ---- the code-reasoning detector and behaviour flags ------------------------------------------


def _check_behaviour(text: str) -> None:
    evidence = behaviour.detect_code(text)
    for name in behaviour.CODE_DEFINITIONS:
        assert behaviour.is_code_reasoning(text, name) == evidence.fired(name)
    flags = behaviour.flag_completion(text, finish_reason="length", n_tokens=len(text))
    assert flags == behaviour.flag_completion(text, finish_reason="length", n_tokens=len(text))  # deterministic
    behaviour.find_repetition(text)


@_FAST
@given(text=hostile_text)
def test_code_detector_and_flags_take_any_text(text: str) -> None:
    _check_behaviour(text)


# what the detector and flags must still say about a megabyte response (None: no expectation)
BIG_EXPECTED: dict[str, tuple[bool | None, bool | None]] = {  # name -> (code_lines, repetition)
    "repetition": (False, True),
    "unclosed_fence": (True, True),
    "html": (False, True),
    "nul_bytes": (False, None),
    "one_long_line": (False, None),
}


@pytest.mark.parametrize("name", list(big_inputs()))
def test_code_detector_and_flags_finish_on_megabyte_responses(name: str) -> None:
    text = big_inputs()[name]
    _check_behaviour(text)
    code, repetition = BIG_EXPECTED.get(name, (None, None))
    flags = behaviour.flag_completion(text, finish_reason="length", n_tokens=len(text))
    assert flags.truncated and not flags.empty and flags.boxed_nothing
    if code is not None:
        assert behaviour.is_code_reasoning(text, "code_lines") is code
    if repetition is not None:
        assert flags.repetition is repetition


# ---- graders: inputs the graders' own property tests do not try -------------------------------

GRADER_HOSTILE: dict[str, str] = {
    "nul_bytes_in_prose": "\x00" * 1000 + "So the answer is $\\boxed{5}$." + "\x00" * 1000,
    "nul_in_answer": "So the answer is $\\boxed{5\x00}$.",
    "lone_surrogate_answer": "So the answer is $\\boxed{\ud800}$.",
    "hundred_thousand_digits": "So the answer is $\\boxed{" + "7" * 100_000 + "}$.",
    "deep_fractions": "$\\boxed{" + "\\frac{1}{" * 3000 + "2" + "}" * 3000 + "}$",
    "deep_parentheses": "The answer is " + "(" * 50_000 + "5" + ")" * 50_000,
    "script_payload": "So the answer is $\\boxed{<script>alert(1)</script>}$.",
    "unclosed_box_megabyte": "$\\boxed{" + "1 + " * (MB // 4),
    "power_tower_plain": "The answer is 9^9^9^9^9.",
    "huge_factorial": "The answer is $\\boxed{100000000!}$.",
}
"""Completions graded against the gold answer 5."""
MAY_BE_CORRECT = {"nul_bytes_in_prose", "nul_in_answer"}
"""The answer is 5 with NUL bytes around it: a grader may see through them."""


@pytest.mark.parametrize("grader_id", list(GRADERS))
def test_graders_survive_nul_surrogates_huge_numbers_and_payloads(grader_id: str) -> None:
    tasks = [GradeTask((name, 0), text, "5", False) for name, text in GRADER_HOSTILE.items()]
    tasks.append(GradeTask(("huge_gold", 0), "$\\boxed{" + "7" * 100_000 + "}$", "7" * 100_000, False))
    tasks.append(GradeTask(("last", 0), "So the answer is $\\boxed{5}$.", "5", False))
    outcomes = grade_many(tasks, grader_id=grader_id, workers=2, timeout=3.0)
    verdicts = {task.key[0]: outcome for task, outcome in zip(tasks, outcomes, strict=True)}
    assert verdicts.pop("last").verdict == "correct"  # the run goes on after them
    for name, outcome in verdicts.items():
        assert outcome.verdict in VERDICTS, name
        if name not in MAY_BE_CORRECT and name != "huge_gold":
            assert outcome.verdict != "correct", (name, outcome)
        if outcome.extracted is not None:
            json.dumps(outcome.extracted)  # storable


# ---- nothing evaluates model text --------------------------------------------------------------

FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "sympify", "parse_expr", "S"}
"""Callees (plain names or attribute names) that can run or evaluate text as code."""

ALLOWED: dict[tuple[str, str, str], str] = {
    ("rlvr_audit/grading/minerva.py", "load_lm_eval_minerva", "compile"): (
        "compiles function definitions taken from lm-eval's installed source file (trusted package "
        "code, selected by name from its AST); no model text"
    ),
    ("rlvr_audit/grading/minerva.py", "load_lm_eval_minerva", "exec"): (
        "runs those compiled lm-eval definitions once to define them; no model text"
    ),
    ("rlvr_audit/grading/paper.py", "_sympy_namespace", "exec"): (
        "the constant statement 'from sympy import *' (builds the allowed-name table); no model text"
    ),
    ("rlvr_audit/grading/paper.py", "sympy_equal", "parse_expr"): (
        "the paper's PRM800K grader hands normalised answers to sympy's parse_expr, as the original "
        "does; only behind should_allow_eval, whose tokenizer check admits numbers, lower-case names of "
        "at most two distinct letters and + - * / ^ ( ) , (no attribute, subscript, string or keyword), "
        "with a builtins-free namespace, in a worker process under the wall-clock limit; "
        "test_paper_guard_admits_only_arithmetic checks the guard independently with Python's parser"
    ),
}
"""Calls that are not on model text (or are, behind a guard), each with its justification.

Outside rlvr_audit: math-verify itself calls sympy's ``parse_expr`` in ``extract_expr`` on text
its regular expression admits (digits, ``.``, spaces and ``+ - * × / ^ ( ) ÷``: arithmetic only)."""


def _calls(path: Path) -> Iterator[tuple[str, str, int]]:
    """(enclosing function, callee name, line) of every call to a forbidden name in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    stack: list[str] = []

    class Visitor(ast.NodeVisitor):
        def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
            stack.append(node.name)
            self.generic_visit(node)
            stack.pop()

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Call(self, node: ast.Call) -> None:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            is_regex = name == "compile" and owner in {"re", "regex"}
            if name in FORBIDDEN_CALLS and not is_regex:
                found.append((stack[-1] if stack else "<module>", name, node.lineno))
            self.generic_visit(node)

    found: list[tuple[str, str, int]] = []
    Visitor().visit(tree)
    yield from found


def test_no_module_evaluates_text_outside_the_allow_list() -> None:
    seen: set[tuple[str, str, str]] = set()
    offenders = []
    for path in sorted((ROOT / "rlvr_audit").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for function, name, line in _calls(path):
            entry = (rel, function, name)
            if entry in ALLOWED:
                seen.add(entry)
            else:
                offenders.append(f"{rel}:{line}: {name}() in {function}")
    assert not offenders, "calls that may evaluate text: " + "; ".join(offenders)
    assert seen == set(ALLOWED), f"allow-list entries that no longer match a call: {set(ALLOWED) - seen}"


def test_the_static_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The walker is not vacuous: it reports each kind of call it forbids."""
    module = tmp_path / "m.py"
    module.write_text(
        "import re, sympy\nfrom sympy.parsing.sympy_parser import parse_expr\n"
        "def grade(text):\n    eval(text)\n    exec(text)\n    sympy.sympify(text)\n    parse_expr(text)\n"
        "    re.compile(text)\n    __import__(text)\n",
        encoding="utf-8",
    )
    assert sorted(name for _, name, _ in _calls(module)) == ["__import__", "eval", "exec", "parse_expr", "sympify"]


_SAFE_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Call,
    ast.Tuple,
    ast.operator,
    ast.unaryop,
)


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(
            [
                "1",
                "23",
                "4.5",
                "x",
                "pi",
                "oo",
                "re",
                "im",
                "e",
                "(",
                ")",
                "+",
                "-",
                "*",
                "/",
                "^",
                ",",
                " ",
                ".",
                "[",
                "]",
                "_",
                "'",
                '"',
                "lambda",
                ":",
                "=",
                "!",
                "~",
                "@",
                "%",
                "&",
                "|",
                "<",
                ">",
                ";",
                "__class__",
                "os",
                "ff",
                "rf",
                "exec",
                "\\",
                "\n",
                "#",
                "{",
                "}",
                "0x1f",
                "1e5",
                "1j",
            ]
        ),
        max_size=12,
    ).map("".join)
)
def test_paper_guard_admits_only_arithmetic(text: str) -> None:
    """What passes the paper grader's guard parses (by Python's own parser) to numbers, names,
    arithmetic, calls of plain names and tuples only: nothing that reaches an attribute,
    subscript, string, lambda or comparison."""
    expr = f"(5)-({text})"
    if not should_allow_eval(expr):
        return
    try:
        tree = ast.parse(expr.replace("^", "**"), mode="eval")
    except SyntaxError:
        return  # parse_expr fails the same way; the grader then says "not equal"
    for node in ast.walk(tree):
        assert isinstance(node, _SAFE_NODES), (text, ast.dump(node))
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name) and not node.keywords, text
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int | float | complex), text


# ---- HTML: escaping at the function level -----------------------------------------------------


class _Scan(HTMLParser):
    """Collects what a browser would act on: tags, event-handler attributes, script contents."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.handlers: list[str] = []
        self.urls: list[str] = []
        self.scripts: list[tuple[str, str]] = []
        self._script_type: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}={value}")
            if name in ("href", "src", "action", "formaction") and value:
                self.urls.append(value)
        if tag == "script":
            self._script_type = dict(attrs).get("type") or "text/javascript"

    def handle_data(self, data: str) -> None:
        if self._script_type is not None:
            self.scripts.append((self._script_type, data))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script_type = None


def _text_of(html: str) -> list[str]:
    """The text nodes of a page (what a reader sees)."""

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.chunks: list[str] = []

        def handle_data(self, data: str) -> None:
            self.chunks.append(data)

    parser = Text()
    parser.feed(html)
    parser.close()
    return parser.chunks


def scan(html: str) -> _Scan:
    parser = _Scan()
    parser.feed(html)
    parser.close()
    return parser


def _no_active_content(found: _Scan, allowed_tags: set[str]) -> None:
    assert set(found.tags) <= allowed_tags, set(found.tags) - allowed_tags
    assert not found.handlers, found.handlers
    for url in found.urls:
        assert not url.strip().lower().startswith(("javascript:", "vbscript:", "data:text/html")), url


@_FAST
@given(text=hostile_text)
def test_model_text_in_markdown_cells_renders_as_text(text: str) -> None:
    """Report Markdown quotes response tails and answers in table cells; none of it becomes markup."""
    row = f"| {escape(text)} | {code_span(text, in_table=True)} | x<br>y |"
    body, _ = markdown_to_html(f"## Examples\n\n| response | answer | n |\n|---|---|---|\n{row}\n")
    found = scan(body)
    _no_active_content(
        found,
        {
            "h2",
            "table",
            "thead",
            "tbody",
            "tr",
            "th",
            "td",
            "br",
            "div",
            "p",
            "code",
            "em",
            "strong",
            "a",
            "span",
            "del",
            "s",
        },
    )
    assert not found.scripts
    assert found.tags.count("tr") == 2 and found.tags.count("td") == 3  # the row stays one row


@_FAST
@given(text=hostile_text)
def test_responses_render_escaped(text: str) -> None:
    found = scan(f"<pre>{render_response(text)}</pre>")
    _no_active_content(found, {"pre", "span", "code"})
    assert not found.scripts


storable_text = hostile_text.map(lambda t: "".join(c for c in t if not 0xD800 <= ord(c) <= 0xDFFF))
"""Hostile text as the store can hold it (no lone surrogates: engines and importers replace them)."""


@_FAST
@given(
    data=st.recursive(
        storable_text,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(storable_text, inner, max_size=4),
        max_leaves=12,
    )
)
def test_embedded_json_cannot_end_its_script_element(data: Any) -> None:
    element = json_script("samples", data)
    found = scan(element)
    assert found.tags == ["script"] and len(found.scripts) <= 1
    content = found.scripts[0][1] if found.scripts else ""
    assert "</" not in content and "<!--" not in content
    assert json.loads(content) == json.loads(json.dumps(data))


# ---- importers and the whole report on hostile files -----------------------------------------

PAYLOADS = [
    "<script>alert('PWNED-1')</script> so $\\boxed{5}$",
    "</pre></td><img src=x onerror=alert('PWNED-2')>",
    '"><svg onload=alert("PWNED-3")>',
    "</script><script>alert('PWNED-4')</script><!--",
    "[click](javascript:alert('PWNED-5')) | cell | <br> ]]>",
    "```html\n<script>alert('PWNED-6')</script>\n```\nThe answer is $\\boxed{5}$.",
    "NUL\x00bytes\x00PWNED-7",
    "lone surrogate \ud800 PWNED-8",
    "PWNED-9 " + "long response. " * (MB // 15),
]
"""Completions of the hostile import: markup, script breakouts, NUL bytes, a lone surrogate
(written as the JSON escape ``\\ud800``), a 1 MB response; each carries a marker."""


def _spurious(path: Path, problems: list[dict[str, Any]], outputs: list[list[str]], **top: Any) -> Path:
    meta = [
        {
            "prompt": f"<|im_start|>user\n{p['problem']}<|im_end|>\n<|im_start|>assistant\n",
            "label": p["answer"],
            "index": i,
            "outputs": out,
        }
        for i, (p, out) in enumerate(zip(problems, outputs, strict=True))
    ]
    obj = {"avg@1": 0.5, "dataset": "MATH-500", "model": "m", "temperature": 0.0, "rollouts": 1, "metadata": meta}
    obj.update(top)
    path.write_text(json.dumps(obj), encoding="utf-8")  # ensure_ascii: a lone surrogate as \ud800
    return path


def _problems(n: int) -> list[dict[str, Any]]:
    lines = (DATA / "math500.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(line) for line in lines]


def _import_args(tmp: Path, path: Path) -> list[str]:
    return [
        "import",
        "spurious-rewards-json",
        str(path),
        "--checkpoint",
        "toy/rl",
        "--quiet",
        "--store",
        str(tmp / "store"),
        "--config-dir",
        str(ROOT),
        "--registry",
        str(tmp / "checkpoints.yaml"),
        "--data-dir",
        str(DATA),
    ]


def _replace_at(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


BAD_FILES: dict[str, tuple[Any, str]] = {
    "invalid-utf8": (lambda t: t.encode("utf-8").replace(b"Working", b"W\xffrking"), "not UTF-8 text (byte"),
    "nested-too-deeply": (
        lambda t: _replace_at(t, '"rollouts": 1', '"rollouts": ' + "[" * 200_000 + "]" * 200_000),
        "nested too deeply",
    ),
    "integer-of-5000-digits": (
        lambda t: _replace_at(t, '"rollouts": 1', '"rollouts": ' + "9" * 5000),
        "cannot be read (Exceeds the limit",
    ),
    "infinite-accuracy": (lambda t: _replace_at(t, '"avg@1": 0.5', '"avg@1": 1e999'), "must be a number, got inf"),
    "nan-accuracy": (lambda t: _replace_at(t, '"avg@1": 0.5', '"avg@1": NaN'), "must be a number, got nan"),
    "truncated-json": (lambda t: t[: len(t) // 2], "not valid JSON"),
    "outputs-not-strings": (
        lambda t: _replace_at(t, '"outputs": ["Working', '"outputs": [{"a": 1}, "Working'),
        "outputs",
    ),
}


@needs_data
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_unreadable_import_files_exit_2_with_one_line_and_store_nothing(tmp_path: Path, name: str) -> None:
    write_registry(tmp_path)
    path = _spurious(tmp_path / "out.json", _problems(2), [["Working. $\\boxed{1}$"], ["Working. $\\boxed{2}$"]])
    change, message = BAD_FILES[name]
    changed = change(path.read_text(encoding="utf-8"))
    path.write_bytes(changed if isinstance(changed, bytes) else changed.encode("utf-8"))
    r = CliRunner().invoke(app, _import_args(tmp_path, path), catch_exceptions=False)
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and message in one_line(r.output), r.output
    assert not (tmp_path / "store").exists()


@needs_data
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(outputs=st.lists(hostile_text, min_size=3, max_size=3))
@example(outputs=["", "lone \ud800 high", "\ud800\udfff"])  # a lone surrogate, and a pair that JSON joins
def test_imported_hostile_text_is_stored_as_given(tmp_path_factory: pytest.TempPathFactory, outputs: list[str]) -> None:
    """Any text a published file holds is stored exactly (a lone surrogate, which no UTF-8 file
    can hold, as U+FFFD) and reads back; nothing crashes."""
    tmp = tmp_path_factory.mktemp("imp")
    write_registry(tmp)
    path = _spurious(tmp / "out.json", _problems(3), [[o] for o in outputs])
    r = CliRunner().invoke(app, _import_args(tmp, path), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    store = Store(tmp / "store")
    (key,) = store.unit_keys()
    stored = sorted(g.completion for g in store.read_generations(key))
    # the file holds JSON text: an escaped high + low surrogate pair IS one character there (JSON's
    # own rule), so compare with what the file means, lone surrogates then replaced
    meant = [json.loads(json.dumps(o)) for o in outputs]
    expected = sorted("".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in o) for o in meant)
    assert stored == expected
    shutil.rmtree(tmp)


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hostile completions imported, graded by two graders, reported with the per-sample browser."""
    if not DATA.is_dir():
        pytest.skip("../shared/data/benchmarks is not beside the project")
    tmp = tmp_path_factory.mktemp("hostile-report")
    write_registry(tmp)
    problems = _problems(len(PAYLOADS))
    path = _spurious(tmp / "out.json", problems, [[p] for p in PAYLOADS])
    runner = CliRunner()
    r = runner.invoke(app, _import_args(tmp, path), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "lone UTF-16 surrogate" in one_line(r.output)
    common = ["--store", str(tmp / "store"), "--config-dir", str(ROOT), "--quiet"]
    r = runner.invoke(app, ["grade", "--graders", "math_verify,boxed_strict", "--workers", "2", *common])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "report",
            "--resamples",
            "200",
            "--report-dir",
            str(tmp / "report"),
            "--registry",
            str(tmp / "checkpoints.yaml"),
            *common,
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    return tmp / "report"


def test_report_pages_show_hostile_text_escaped(hostile_report: Path) -> None:
    pages = sorted(hostile_report.rglob("*.html"))
    assert len(pages) >= 2  # the report and at least one page of the per-sample browser
    shown: set[str] = set()
    for page in pages:
        html = page.read_text(encoding="utf-8")
        found = scan(html)
        assert not found.handlers, (page, found.handlers)
        for url in found.urls:
            assert not url.lower().startswith("javascript:"), (page, url)
        for kind, content in found.scripts:
            assert "PWNED" not in content or kind == "application/json", (page, content[:200])
            if kind == "application/json":
                json.loads(content)
        chunks = _text_of(html)
        shown |= {f"PWNED-{i}" for i in range(1, 10) if any(f"PWNED-{i}" in c for c in chunks)}
    # every payload is on some page, as text
    assert shown == {f"PWNED-{i}" for i in range(1, 10)}, shown


@needs_data
def test_engine_text_with_lone_surrogates_and_nul_bytes_is_stored(tmp_path: Path) -> None:
    """An engine that decodes JSON can return a lone surrogate (here a script file; in practice a
    server cutting an emoji in two): the run must store it (as U+FFFD), not stop at the append."""
    write_registry(tmp_path)
    problems = _problems(3)
    texts = ["cut emoji \ud83d here $\\boxed{1}$", "NUL\x00inside $\\boxed{2}$", PAYLOADS[0]]
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"*": {p["id"]: t for p, t in zip(problems, texts, strict=True)}}))
    r = CliRunner().invoke(
        app,
        [
            "run",
            "--backend",
            "scripted",
            "--model-args",
            f"script={script}",
            "--checkpoints",
            "toy/base",
            "--tasks",
            "math500",
            "--limit",
            "3",
            "--quiet",
            "--no-browser",
            "--resamples",
            "200",
            "--store",
            str(tmp_path / "store"),
            "--report-dir",
            str(tmp_path / "report"),
            "--config-dir",
            str(ROOT),
            "--registry",
            str(tmp_path / "checkpoints.yaml"),
            "--data-dir",
            str(DATA),
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert "lone UTF-16 surrogate" in one_line(r.output)
    store = Store(tmp_path / "store")
    (key,) = store.unit_keys()
    stored = {g.problem_id: g.completion for g in store.read_generations(key)}
    assert stored[problems[0]["id"]] == "cut emoji \ufffd here $\\boxed{1}$"
    assert stored[problems[1]["id"]] == texts[1] and stored[problems[2]["id"]] == texts[2]
