"""The HTML report and the per-sample browser: escaping, paging and filter data without a
browser, then the real pages in headless Chromium (skipped when no Chromium is installed).

The Chromium tests drive the browser over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages ended by NUL on file descriptors 3 and 4), so they
need no Python package beyond the standard library. Set ``RLVR_AUDIT_CHROMIUM`` to a binary to
use another Chromium build, and ``RLVR_AUDIT_TEST_ARTIFACTS`` to a folder to keep the screenshots
the tests take (they are always written under the test's ``tmp_path``).
"""

from __future__ import annotations

import base64
import contextlib
import html as htmllib
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from testbed import DATA, ROOT, needs_data
from testbed import TOY_REGISTRY as REGISTRY
from typer.testing import CliRunner

from rlvr_audit.analysis.estimates import Analysis
from rlvr_audit.cli import app
from rlvr_audit.core.errors import UsageError
from rlvr_audit.core.records import CheckpointRef, Generation, Grade, Problem, SamplingProtocol, UnitSpec
from rlvr_audit.core.store import Store, UnitInfo
from rlvr_audit.report.browser import (
    collect_samples,
    flip_code,
    page_file,
    paginate,
    render_response,
    sample_anchor,
    split_fences,
    write_browser,
)
from rlvr_audit.report.html import (
    CITED_HOOK,
    CSP,
    MEASURED_HOOK,
    HtmlOptions,
    content_security_policy,
    document,
    json_script,
    markdown_to_html,
)
from rlvr_audit.report.writer import write_html

PAYLOAD = (
    'Look: <script>document.title="PWNED";window.pwned=1</script></textarea>'
    '<img src=x onerror="window.pwned=2"> [click](javascript:window.pwned=3) '
    '<a href="javascript:window.pwned=4" onclick="window.pwned=5">link</a> '
    "<!-- comment --> <style>body{display:none}</style> So the answer is $\\boxed{999999}$."
)
"""A response that would run script, break out of a textarea, add a javascript: link and an
event-handler attribute, hide the page, if it were not escaped. It is a wrong answer."""

CODE_RESPONSE = (
    "Let me compute it with code.\n```python\nimport math\nprint(math.sqrt(16))  # </script>\n```\n"
    "The output is 4, and \\frac{{8}}{{2}} = 4. So the answer is $\\boxed{{{answer}}}$."
)


# --------------------------------------------------------------------------------------
# Markdown -> HTML without a browser
# --------------------------------------------------------------------------------------


def test_json_script_cannot_end_its_element_and_round_trips() -> None:
    data = {"text": "</script><script>alert(1)</script><!-- x -->&amp;\u2028", "n": [1, 2]}
    out = json_script("d", data)
    inner = out[len('<script type="application/json" id="d">') : -len("</script>")]
    assert "<" not in inner and ">" not in inner and "&" not in inner
    assert out.count("</script>") == 1
    assert json.loads(inner) == data


def test_markdown_raw_html_is_shown_as_text_except_line_breaks() -> None:
    md = (
        "| a | b |\n|---|---|\n"
        "| x<br>y | <script>alert(1)</script> <img src=x onerror=alert(2)> [l](javascript:alert(3)) |\n\n"
        "<div onclick=alert(4)>block</div>\n\n<!-- a note --> <script>alert(5)</script>\n\n<!-- dropped -->\n"
    )
    body, _ = markdown_to_html(md)
    assert "&lt;!-- a note --&gt; &lt;script&gt;alert(5)" in body and "dropped" not in body
    assert "x<br>y" in body
    assert "<script" not in body and "<img" not in body and "<div onclick" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "&lt;div onclick=alert(4)&gt;" in body
    assert "&lt;img src=x onerror=alert(2)&gt;" in body
    assert 'href="javascript' not in body.lower()


def test_markdown_tables_are_sortable_and_hooks_mark_measured_and_cited_tables() -> None:
    md = (
        f"{MEASURED_HOOK}\n\n| A | B |\n|---|---|\n| 1 | 2 |\n\n"
        f"{CITED_HOOK}\n\n| C |\n|---|\n| 3 |\n\n"
        "| Baseline | Kind | Value |\n|---|---|---|\n| x | cited | 49.4 |\n| y | **measured** | 64.0 [60.0, 68.0] |\n\n"
        f"{MEASURED_HOOK}\n\nnot a table\n\n| D |\n|---|\n| 4 |\n"
    )
    body, _ = markdown_to_html(md)
    tables = re.findall(r"<table[^>]*>", body)
    assert tables == [
        '<table class="sortable measured">',
        '<table class="sortable cited">',
        '<table class="sortable">',
        '<table class="sortable">',  # a hook applies only to a table right after it
    ]
    assert re.search(r'<tr class="cited">\s*<td>x</td>\s*<td><span class="kind cited">cited</span>', body)
    assert re.search(r'<tr class="measured">\s*<td>y</td>\s*<td><strong class="kind measured">measured</strong>', body)
    assert "rlvr-audit:" not in body  # hooks leave no trace


def test_figures_are_embedded_only_from_inside_the_report(tmp_path: Path) -> None:
    report = tmp_path / "report"
    (report / "figures").mkdir(parents=True)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    (report / "figures" / "a.png").write_bytes(png)
    (tmp_path / "secret.png").write_bytes(png)
    md = (
        "![inside](figures/a.png)\n\n![outside](../secret.png)\n\n![remote](https://example.com/x.png)\n\n"
        "![missing](figures/none.png)\n"
    )
    body, _ = markdown_to_html(md, root=report)
    assert body.count("<img") == 1
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in body
    assert "example.com" not in body.split("[figure not embedded")[0]
    assert body.count("figure not embedded") == 3


def test_headings_get_ids_and_the_toc_lists_level_two() -> None:
    body, toc = markdown_to_html("# T\n\n## Reproduction table: grader `a`\n\n## Settings\n\n## Settings\n")
    assert toc == [
        ("reproduction-table-grader-a", "Reproduction table: grader a"),
        ("settings", "Settings"),
        ("settings-2", "Settings"),
    ]
    assert '<h2 id="settings">' in body


# --------------------------------------------------------------------------------------
# Responses, paging, flips
# --------------------------------------------------------------------------------------


def test_response_is_escaped_and_code_blocks_highlighted() -> None:
    out = render_response(PAYLOAD + "\n" + CODE_RESPONSE.format(answer=4))
    assert "<script" not in out and "<img" not in out and "<a " not in out and "<style" not in out
    assert "&lt;/textarea&gt;" in out and "&lt;script&gt;" in out
    assert '<code class="hl lang-python">' in out
    assert "\\frac{8}{2}" in out  # LaTeX as text
    assert re.search(r'<span class="[a-z0-9]+">import</span>', out)
    assert "&lt;/script&gt;" in out  # inside the highlighted code too


_ALLOWED_TAG = re.compile(r'</?span(?: class="[^"<>]*")?>|<code class="hl lang-[a-z0-9+#-]+">|</code>')


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab <>&\"'`~\n/=:;pythonscript{}\\$")), max_size=200))
def test_any_response_renders_without_raw_markup(text: str) -> None:
    assert "".join(segment for _, _, segment in split_fences(text)) == text
    out = _ALLOWED_TAG.sub("", render_response(text))
    assert "<" not in out and ">" not in out
    assert htmllib.unescape(out) == text


def test_split_fences_marks_open_close_and_unclosed_blocks() -> None:
    text = "a\n```py\nx = 1\n```\nb\n~~~\nunclosed\n"
    kinds = [(k, lang) for k, lang, _ in split_fences(text)]
    assert kinds == [
        ("text", ""),
        ("fence", ""),
        ("code", "py"),
        ("fence", ""),
        ("text", ""),
        ("fence", ""),
        ("code", ""),
    ]


def test_paginate_splits_and_refuses_bad_page_sizes() -> None:
    assert [list(r) for r in paginate(5, 2)] == [[0, 1], [2, 3], [4]]
    assert paginate(0, 10) == []
    assert len(paginate(100_000, 500)) == 200
    for bad in (0, -1, 1.5, True):
        with pytest.raises(UsageError, match="page size"):
            paginate(3, bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="page size"):
        HtmlOptions(page_size=0).check()
    assert page_file(0) == "page-0001.html" and page_file(41) == "page-0042.html"


def test_flip_code() -> None:
    assert flip_code(1.0, 0.0) == "+"
    assert flip_code(0.25, 0.5) == "-"
    assert flip_code(0.5, 0.5) == "="
    assert flip_code(None, 0.5) == "?" and flip_code(0.5, None) == "?"


# --------------------------------------------------------------------------------------
# A store made of records: paging a large unit, flips with k samples
# --------------------------------------------------------------------------------------

GRADER = "toy_grader"  # not a registered grader: every stored grade counts


def _unit(store: Store, checkpoint: str, problems: list[Problem], *, n: int, base: str | None = None) -> UnitInfo:
    spec = UnitSpec(
        checkpoint=CheckpointRef(checkpoint_id=checkpoint, model=f"org/{checkpoint}"),
        task="toy",
        data_hash="d" * 16,
        template_id="no_template",
        template_hash="t" * 16,
        protocol=SamplingProtocol(n=n, temperature=0.6 if n > 1 else 0.0, max_new_tokens=64),
        backend="scripted",
    )
    info = UnitInfo(key=spec.key, spec=spec, family="toy", base=base, n_problems_total=len(problems))
    store.ensure_unit(info)
    store.save_problems(spec.data_hash, problems)
    return info


def _fill(
    store: Store, info: UnitInfo, correct: dict[tuple[str, int], bool], *, length: frozenset[str] = frozenset()
) -> None:
    gens, grades = [], []
    for (pid, i), ok in correct.items():
        gens.append(
            Generation(
                unit_key=info.key,
                checkpoint_id=info.spec.checkpoint.checkpoint_id,
                task="toy",
                problem_id=pid,
                template_id="no_template",
                sample_idx=i,
                seed=i,
                prompt=f"Q {pid}",
                prompt_hash="h",
                completion=f"answer {'right' if ok else 'wrong'} <b>{pid}</b>",
                finish_reason="length" if pid in length else "stop",
                backend="scripted",
            )
        )
        grades.append(
            Grade(
                unit_key=info.key,
                problem_id=pid,
                sample_idx=i,
                grader_id=GRADER,
                grader_version="1",
                extracted="1" if ok else "2",
                verdict="correct" if ok else "incorrect",
            )
        )
    store.append_generations(info.key, reversed(gens))  # stored out of order on purpose
    store.append_grades(info.key, GRADER, grades)


def test_a_large_unit_is_split_into_bounded_pages(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    problems = [Problem(task="toy", problem_id=f"p{i:04d}", question=f"What is {i}?", answer="1") for i in range(401)]
    info = _unit(store, "toy/big", problems, n=3)
    _fill(store, info, {(p.problem_id, i): (j + i) % 3 == 0 for j, p in enumerate(problems) for i in range(3)})
    analysis = Analysis(units=[info], matrices={}, estimates=[], comparisons=[], graders=[GRADER])
    [pages] = write_browser(store, analysis, tmp_path / "samples", page_size=100)
    assert (pages.n_samples, pages.n_pages) == (1203, 13)
    files = sorted(p.name for p in (tmp_path / "samples" / info.key).iterdir())
    assert files == ["index.html", *(page_file(i) for i in range(13))]
    sizes = []
    for i in range(13):
        text = (tmp_path / "samples" / info.key / page_file(i)).read_text()
        assert text.count('<article class="sample"') == (100 if i < 12 else 3)
        sizes.append(len(text))
    assert max(sizes) < 2.5 * min(s for s in sizes[:-1])  # pages grow with page size, not with the store
    first = (tmp_path / "samples" / info.key / page_file(0)).read_text()
    # task order, then sample index, whatever the order in the store
    ids = re.findall(r'<article class="sample" id="([^"]+)"', first)
    assert ids[:4] == [sample_anchor(0, 0), sample_anchor(0, 1), sample_anchor(0, 2), sample_anchor(1, 0)]
    index = (tmp_path / "samples" / info.key / "index.html").read_text()
    data = json.loads(re.search(r'<script type="application/json" id="index-data">(.*?)</script>', index).group(1))
    assert len(data["samples"]) == 1203 and len(data["problems"]) == 401
    assert data["samples"][0] == [0, 0, 0, "c", "", 0, 0]
    assert data["samples"][1202][:3] == [400, 2, 12]
    assert "&lt;b&gt;p0000&lt;/b&gt;" in first and "<b>" not in first


def test_flips_compare_problem_accuracy_with_the_base(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    problems = [Problem(task="toy", problem_id=p, question=f"q {p}", answer="1") for p in ("a", "b", "c", "d")]
    base = _unit(store, "toy/base", problems, n=2)
    rl = _unit(store, "toy/rl", problems, n=2, base="toy/base")
    _fill(
        store, base, {("a", 0): False, ("a", 1): False, ("b", 0): True, ("b", 1): True, ("c", 0): True, ("c", 1): False}
    )
    _fill(
        store,
        rl,
        {
            ("a", 0): True,
            ("a", 1): False,
            ("b", 0): True,
            ("b", 1): False,
            ("c", 0): False,
            ("c", 1): True,
            ("d", 0): True,
        },
        length=frozenset({"d"}),
    )
    samples = collect_samples(store, rl, [GRADER], base=base)
    flips = {(s.problem_id, s.sample_idx): s.flips for s in samples}
    assert flips == {
        ("a", 0): "+",
        ("a", 1): "+",
        ("b", 0): "-",
        ("b", 1): "-",
        ("c", 0): "=",
        ("c", 1): "=",
        ("d", 0): "?",
    }
    assert [s.truncated for s in samples] == [False] * 6 + [True]
    assert collect_samples(store, base, [GRADER])[0].flips == ""  # no base: no flip codes


# --------------------------------------------------------------------------------------
# The report of a scripted store: two checkpoints, two graders
# --------------------------------------------------------------------------------------


def _first(task: str, n: int) -> list[dict[str, str]]:
    return [json.loads(line) for line in (DATA / f"{task}.jsonl").read_text().splitlines()[:n]]


def _boxed(answer: str) -> str:
    return f"So the answer is $\\boxed{{{answer}}}$."


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """toy/base and toy/rl on 8 MATH-500 problems, graded by math_verify and boxed_strict.

    base: p0-p2 right, p3 p4 wrong, p5 right answer without a box (math_verify finds it,
    boxed_strict does not: a disagreement), p6 right, p7 wrong.
    rl: p0-p5 right, p6 the script-injection payload (wrong), p7 code reasoning, right.
    """
    if not DATA.is_dir():
        pytest.skip("../shared/data/benchmarks is not beside the project")
    tmp = tmp_path_factory.mktemp("html-report")
    rows = _first("math500", 8)
    base = {r["id"]: _boxed(r["answer"] if i in (0, 1, 2, 6) else "999999") for i, r in enumerate(rows)}
    base[rows[5]["id"]] = f"I think it is {rows[5]['answer']}, but I will not box it."
    rl = {r["id"]: _boxed(r["answer"]) for r in rows}
    rl[rows[6]["id"]] = PAYLOAD
    rl[rows[7]["id"]] = CODE_RESPONSE.format(answer=rows[7]["answer"])
    (tmp / "script.json").write_text(json.dumps({"toy/base": base, "toy/rl": rl}))
    (tmp / "checkpoints.yaml").write_text(REGISTRY)
    args = ["--config-dir", str(ROOT), "--registry", str(tmp / "checkpoints.yaml"), "--store", str(tmp / "store")]
    r = CliRunner().invoke(
        app,
        [
            "run",
            "--backend",
            "scripted",
            "--model-args",
            f"script={tmp / 'script.json'}",
            "--checkpoints",
            "toy/rl",
            "--tasks",
            "math500",
            "--limit",
            "8",
            "--graders",
            "math_verify,boxed_strict",
            "--resamples",
            "1000",
            "--report-dir",
            str(tmp / "report"),
            "--quiet",
            "--data-dir",
            str(DATA),
            *args,
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    store = Store(tmp / "store")
    units = {u.spec.checkpoint.checkpoint_id: u for u in store.units()}
    return {"dir": tmp / "report", "store": store, "units": units, "rows": rows, "tmp": tmp, "args": args}


def _page(report: dict[str, Any], checkpoint: str) -> Path:
    return report["dir"] / "samples" / report["units"][checkpoint].key / page_file(0)


@needs_data
def test_report_html_is_self_contained_and_links_every_unit(report: dict[str, Any]) -> None:
    text = (report["dir"] / "index.html").read_text()
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', text).group(1)
    script = re.search(r"<script>(.*?)</script>", text, re.DOTALL).group(1)
    assert htmllib.unescape(policy) == content_security_policy([script])
    assert htmllib.unescape(policy).startswith(CSP + "; script-src 'sha256-")
    assert not re.search(r'\b(?:src|href)="(?:https?:)?//', text)  # nothing remote
    assert not re.search(r'<link rel="stylesheet"|<script src=', text)
    imgs = re.findall(r'<img src="([^"]+)"', text)
    assert len(imgs) >= 3 and all(src.startswith("data:image/png;base64,") for src in imgs)
    for unit in report["units"].values():
        assert f'href="samples/{unit.key}/index.html"' in text
        assert (report["dir"] / "samples" / unit.key / "page-0001.html").is_file()
    # sections in the Markdown's order, the browser just before the settings, manifest last
    order = [m.group(1) for m in re.finditer(r'<h2 id="([^"]+)"', text)]
    assert order.index("per-sample-browser") == order.index("settings") - 1
    assert order[-1].startswith("runs")
    assert '<table class="sortable measured">' in text
    for png in ("accuracy_math_verify.png", "gains_boxed_strict.png"):
        assert (report["dir"] / "figures" / png).is_file()


@needs_data
def test_model_output_is_escaped_in_the_sample_pages(report: dict[str, Any]) -> None:
    page = _page(report, "toy/rl").read_text()
    assert "window.pwned" in page  # the payload is there, as text
    assert "<script>document.title" not in page and "</textarea>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;document.title=&quot;PWNED&quot;" in page
    assert 'href="javascript' not in page.lower() and 'onerror="window' not in page
    assert page.count("<script>") == 1  # the page's own filter script only


@needs_data
def test_filter_data_matches_the_stored_grades(report: dict[str, Any]) -> None:
    rows = report["rows"]
    page = _page(report, "toy/rl").read_text()
    graders = re.findall(r'<option value="(\d)">([a-z_]+)</option>', page)
    order = [g for _, g in graders]
    assert sorted(order) == ["boxed_strict", "math_verify"]
    articles = dict(
        re.findall(r'<article class="sample" id="(p\d+-s0)" (data-v="[^"]*" data-f="[^"]*" data-code="\d")', page)
    )
    bs = order.index("boxed_strict")
    flips_bs = {a: re.search(r'data-f="([^"]*)"', attrs).group(1)[bs] for a, attrs in articles.items()}
    # gained under boxed_strict: p3 p4 (base wrong), p5 (base unboxed), p7 (base wrong); lost: p6 (payload)
    assert sorted(a for a, f in flips_bs.items() if f == "+") == ["p3-s0", "p4-s0", "p5-s0", "p7-s0"]
    assert [a for a, f in flips_bs.items() if f == "-"] == ["p6-s0"]
    assert [a for a, attrs in articles.items() if 'data-code="1"' in attrs] == ["p7-s0"]
    base_page = _page(report, "toy/base").read_text()
    assert re.search(r'id="p5-s0" data-v="(nc|cn)"', base_page)  # the disagreement
    assert rows[5]["id"] in base_page


@needs_data
def test_no_browser_option_and_page_size(report: dict[str, Any]) -> None:
    tmp = report["tmp"]

    def run_report(*extra: str) -> Any:
        return CliRunner().invoke(
            app, ["report", "--resamples", "200", "--report-dir", str(tmp / "r2"), *extra, *report["args"]]
        )

    r = run_report("--no-browser")
    assert r.exit_code == 0, r.output
    assert (tmp / "r2" / "index.html").is_file() and not (tmp / "r2" / "samples").exists()
    assert "per-sample-browser" not in (tmp / "r2" / "index.html").read_text()
    r = run_report("--browser-page-size", "3")
    assert r.exit_code == 0, r.output
    pages = sorted(p.name for p in (tmp / "r2" / "samples" / report["units"]["toy/rl"].key).glob("page-*.html"))
    assert pages == ["page-0001.html", "page-0002.html", "page-0003.html"]
    r = run_report("--browser-page-size", "0")
    assert r.exit_code == 2 and "--browser-page-size" in r.output
    assert len(list((tmp / "r2" / "samples").iterdir())) == 2  # the previous report is untouched


def test_claims_only_report_writes_html_with_cited_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["run", "--claims-only", "--name", "claims", "--config-dir", str(ROOT)])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "reports" / "claims" / "index.html").read_text()
    assert '<table class="sortable cited">' in text  # the statistical resolution table
    assert '<tr class="cited">' in text
    assert "data:image/png;base64," in text or "figure not embedded" not in text


def test_write_html_needs_index_md(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_html(tmp_path)


# --------------------------------------------------------------------------------------
# Headless Chromium over the DevTools protocol (pipe transport)
# --------------------------------------------------------------------------------------


def chromium_binary() -> str | None:
    """The Chromium to test with: ``RLVR_AUDIT_CHROMIUM``, else ``chromium`` (Debian) or a
    ``chromium-browser`` / ``google-chrome`` on the PATH."""
    given_binary = os.environ.get("RLVR_AUDIT_CHROMIUM")
    if given_binary:
        return given_binary
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Chromium:
    """A headless Chromium driven over ``--remote-debugging-pipe`` (one page, one session)."""

    def __init__(self, binary: str, profile: Path) -> None:
        import fcntl

        to_child_r, self._write = os.pipe()
        self._read, from_child_w = os.pipe()
        # move the child's ends above 4 so that dup2 onto 3 and 4 cannot clobber them
        high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 100)
        high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 100)
        os.close(to_child_r)
        os.close(from_child_w)

        def child_pipes() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--window-size=1280,1600",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_pipes,
            close_fds=False,
        )
        os.close(high_r)
        os.close(high_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=self.session)

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._read], [], [], left)
            if ready:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe (exit code {self.proc.poll()})")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> Any:
        """Send a DevTools command and return its result (events that arrive meanwhile are kept)."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 30
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _load(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=self.session)
        deadline = time.monotonic() + 30
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._message(deadline))

    def open(self, path: Path, fragment: str = "") -> None:
        """Load a file afresh (by way of ``about:blank``, so that a new fragment reloads the page)
        and wait for its load event; the collected events start empty."""
        self._load("about:blank")
        self._load(path.resolve().as_uri() + fragment)

    def js(self, expression: str) -> Any:
        """Evaluate JavaScript in the page and return its (JSON) value; a thrown error fails."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=self.session)
        if "exceptionDetails" in result:
            raise AssertionError(f"JavaScript error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and browser log errors (CSP
        violations, failed loads) since the page was opened."""
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params['exceptionDetails'].get('text')} {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                out.append(f"log {params['entry'].get('source')}: {params['entry'].get('text')}")
        return out

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the viewport at ``path`` (the test's artifact), and a copy in the folder
        ``RLVR_AUDIT_TEST_ARTIFACTS`` names, if set (for CI to keep)."""
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"]
        path.write_bytes(base64.b64decode(data))
        keep = os.environ.get("RLVR_AUDIT_TEST_ARTIFACTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, Path(keep) / path.name)
        return path

    def close(self) -> None:
        """Close the browser (kill it if it does not exit)."""
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._read, self._write):
            os.close(fd)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    binary = chromium_binary()
    if binary is None:
        message = "no Chromium found (install Debian's chromium package, or set RLVR_AUDIT_CHROMIUM)"
        if os.environ.get("RLVR_AUDIT_REQUIRE_CHROMIUM") == "1":
            pytest.fail(message + "; RLVR_AUDIT_REQUIRE_CHROMIUM=1 forbids skipping the browser tests")
        pytest.skip(message)
    if os.name != "posix":
        pytest.skip("the DevTools pipe transport needs POSIX file descriptors")
    chrome = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    yield chrome
    chrome.close()


VISIBLE = "Array.from(document.querySelectorAll('article.sample')).filter(a => !a.hidden).map(a => a.id)"


def _choose(chrome: Chromium, **values: str) -> list[str]:
    """Set filter fields (``grader`` by name) and return the ids of the visible samples."""
    for key, value in values.items():
        if key == "grader":
            options = "Array.from(document.querySelectorAll('#f-grader option'))"
            value = str(chrome.js(f"{options}.find(o => o.textContent === {json.dumps(value)}).value"))
        event = "input" if key == "search" else "change"
        chrome.js(
            f"(() => {{ const e = document.getElementById('f-{key}'); e.value = {json.dumps(value)};"
            f" e.dispatchEvent(new Event('{event}')); }})()"
        )
    visible: list[str] = chrome.js(VISIBLE)
    return visible


@needs_data
def test_report_opens_with_no_console_error_a_figure_and_sortable_tables(
    browser: Chromium, report: dict[str, Any], tmp_path: Path
) -> None:
    browser.open(report["dir"] / "index.html")
    assert browser.problems() == []
    assert browser.js("document.title") == "rlvr-audit report: audit"
    sizes = browser.js(
        "Array.from(document.querySelectorAll('figure img')).map(i => [i.naturalWidth, i.naturalHeight])"
    )
    assert len(sizes) >= 3 and all(w > 100 and h > 100 for w, h in sizes)
    # sort the gains table by its gain column, both ways
    gains = (
        "Array.from(document.querySelectorAll('table.sortable'))"
        ".find(t => t.tHead.textContent.includes('Gain (points)'))"
    )
    col = browser.js(f"Array.from({gains}.tHead.rows[0].cells).findIndex(c => c.textContent === 'Gain (points)')")
    cells = f"Array.from({gains}.tBodies[0].rows).map(r => parseFloat(r.cells[{col}].textContent))"
    browser.js(f"{gains}.tHead.rows[0].cells[{col}].click()")
    ascending = browser.js(cells)
    assert ascending == sorted(ascending) and len(ascending) == 2
    browser.js(f"{gains}.tHead.rows[0].cells[{col}].click()")
    assert browser.js(cells) == sorted(ascending, reverse=True)
    assert browser.js(f"{gains}.tHead.rows[0].cells[{col}].getAttribute('aria-sort')") == "descending"
    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert browser.problems() == []


@needs_data
def test_filters_change_the_visible_samples(browser: Chromium, report: dict[str, Any], tmp_path: Path) -> None:
    browser.open(_page(report, "toy/rl"))
    assert browser.problems() == []
    everything = [f"p{i}-s0" for i in range(8)]
    assert browser.js(VISIBLE) == everything
    assert _choose(browser, grader="boxed_strict", verdict="correct") == [f"p{i}-s0" for i in (0, 1, 2, 3, 4, 5, 7)]
    assert _choose(browser, verdict="wrong") == ["p6-s0"]
    assert _choose(browser, verdict="", flip="+") == ["p3-s0", "p4-s0", "p5-s0", "p7-s0"]
    assert _choose(browser, flip="-") == ["p6-s0"]
    assert _choose(browser, flip="", style="code") == ["p7-s0"]
    assert _choose(browser, style="language", search="PWNED") == []  # the search reads problem text only
    question_word = report["rows"][3]["problem"].split()[-1].lower()
    assert "p3-s0" in _choose(browser, style="", search=question_word.upper())
    assert browser.js("document.getElementById('count').textContent").endswith("samples on this page")
    # the state travels in the fragment: the page links carry it, and a page opened with it applies it
    assert _choose(browser, search="", verdict="wrong") == ["p6-s0"]
    link = browser.js("document.querySelector('a.keep[data-href=\"index.html\"]').getAttribute('href')")
    assert link.startswith("index.html#") and "verdict=wrong" in link
    browser.open(_page(report, "toy/rl"), "#verdict=wrong&grader=0")
    assert browser.js(VISIBLE) == ["p6-s0"]
    browser.screenshot(tmp_path / "filtered.png")
    # the base's page: grader disagreement on p5 (unboxed right answer)
    browser.open(_page(report, "toy/base"))
    assert _choose(browser, agree="disagree") == ["p5-s0"]
    assert browser.js("document.getElementById('f-flip').disabled") is True
    assert browser.problems() == []


@needs_data
def test_unit_index_filters_and_searches_all_samples(browser: Chromium, report: dict[str, Any]) -> None:
    browser.open(report["dir"] / "samples" / report["units"]["toy/rl"].key / "index.html")
    assert browser.problems() == []
    rows = "document.querySelectorAll('#results tbody tr').length"
    assert browser.js(rows) == 8
    _choose(browser, grader="boxed_strict", flip="+")
    assert browser.js(rows) == 4
    assert browser.js("document.querySelector('#page-counts a').getAttribute('href')").startswith("page-0001.html#")
    href = browser.js("document.querySelector('#results tbody a').getAttribute('href')")
    assert href == "page-0001.html#p3-s0"
    _choose(browser, flip="", search=report["rows"][6]["id"])
    assert browser.js(rows) == 1
    assert browser.problems() == []


@needs_data
def test_injected_script_does_not_run_and_shows_as_text(browser: Chromium, report: dict[str, Any]) -> None:
    browser.open(_page(report, "toy/rl"), "#p6-s0")
    assert browser.problems() == []
    assert browser.js("document.title").startswith("toy/rl")
    assert browser.js("typeof window.pwned") == "undefined"
    response = browser.js("document.querySelector('#p6-s0 pre.response').textContent")
    assert '<script>document.title="PWNED";window.pwned=1</script></textarea>' in response
    assert (
        browser.js(
            "document.querySelectorAll('#samples script, #samples img, #samples style, #samples textarea').length"
        )
        == 0
    )
    assert browser.js("Array.from(document.links).filter(a => a.protocol === 'javascript:').length") == 0
    assert browser.js("document.querySelectorAll('[onerror], [onclick]').length") == 0
    # clicking what looks like a link does nothing either
    browser.js("document.querySelector('#p6-s0 pre.response').click()")
    assert browser.js("typeof window.pwned") == "undefined"
    assert browser.js("getComputedStyle(document.body).display") != "none"


def test_the_policy_blocks_scripts_that_are_not_the_pages_own(browser: Chromium, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    injected = '<script>window.pwned = 1</script><img src="data:," onerror="window.pwned = 2">'
    page.write_text(document("t", injected, script="window.own = 1;"))
    browser.open(page)
    assert browser.js("window.own") == 1
    assert browser.js("typeof window.pwned") == "undefined"
    assert any("Content Security Policy" in p for p in browser.problems())  # refused, and said so
