"""Text from data or configuration is text in the Markdown report, never markup (issue 13, item 12).

Names come from files: an imported file's ``model`` field, checkpoint ids from the registry, the
claims ledger's source titles and dates. Before the report was assembled from sections, they went
into ``index.md`` as they were: a ``model`` field ``[click me](https://...)`` became a link,
a checkpoint named ``**measured**`` restyled its row as measured, and a claims ``date`` holding a
newline and ``# heading`` added a heading. Every text is now escaped for Markdown by one routine
(:func:`rlvr_audit.report.markdown.escape`); these tests check the reports a user gets, and the
routine itself against markdown-it on arbitrary text.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from reliability_helpers import DATA, ROOT, cli, needs_data, one_line, run_cli

from rlvr_audit.report.markdown import code_span, escape

LINK = "[click me](https://evil.example/steal)"
HEADING = "# injected heading"

REGISTRY = """\
families:
  toy:
    display_name: Toy
    checkpoints:
      base:
        model: org/toy-base
        prompt: no_template
      '**measured**':
        model: org/toy-rl
        base: toy/base
        reward: random
        step: 50
        prompt: no_template
"""

CLAIMS = """\
sources:
  P1:
    title: 'A paper [see here](https://evil.example/title)'
    date: "2025-01-01\\n# injected heading"
    url: https://example.org/p1
    claimant: true
protocols:
  greedy: {n: 1, temperature: 0.0, max_new_tokens: 100}
claims:
  - {id: toy.gain, kind: rlvr_gain, source: P1, model: toy, reward: random, benchmark: math500,
     protocol: greedy, baseline: 40, value: 50, gain: 10, exactness: exact, read_from: table}
"""


def _markdown() -> MarkdownIt:
    """A renderer with GitHub's strikethrough as well as CommonMark and tables."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _spurious_file(path: Path, problems: list[dict[str, str]], model: str) -> Path:
    """An eval_checkpoint.py output (the Spurious Rewards paper's format) with the given ``model``."""
    meta = [
        {
            "prompt": f"<|im_start|>user\n{r['problem']}<|im_end|>\n<|im_start|>assistant\n",
            "label": r["answer"],
            "index": i,
            "outputs": [f"So the answer is $\\boxed{{{r['answer'] if i % 2 == 0 else '999'}}}$."],
        }
        for i, r in enumerate(problems)
    ]
    obj = {"avg@1": 0.5, "pass@1": 0.5, "dataset": "MATH-500", "model": model, "temperature": 0.0}
    obj.update({"rollouts": 1, "metadata": meta})
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A report and a claims report built from hostile names, through the command line."""
    work = tmp_path_factory.mktemp("md-injection")
    (work / "checkpoints.yaml").write_text(REGISTRY, encoding="utf-8")
    (work / "claims.yaml").write_text(CLAIMS, encoding="utf-8")
    common = ["--config-dir", str(ROOT), "--registry", "checkpoints.yaml", "--store", "store"]
    run = run_cli(
        cli(
            "run",
            "--backend",
            "scripted",
            "--model-args",
            "accuracy=0.5",
            "--checkpoints",
            "toy/base,toy/**measured**",
            "--tasks",
            "math500",
            "--limit",
            "4",
            "--data-dir",
            str(DATA),
            "--no-browser",
            "--quiet",
            "--report-dir",
            "first",
            *common,
        ),
        work,
    )
    assert run.returncode == 0, run.stderr
    problems = [json.loads(line) for line in (DATA / "math500.jsonl").read_text().splitlines()[:4]]
    source = _spurious_file(work / "out_MATH-500.json", problems, model=LINK)
    imported = run_cli(
        cli(
            "import",
            "spurious-rewards-json",
            str(source),
            "--checkpoint",
            "toy/imported",
            "--base",
            "toy/base",
            "--data-dir",
            str(DATA),
            *common,
        ),
        work,
    )
    assert imported.returncode == 0, imported.stderr
    graded = run_cli(cli("grade", "--store", "store"), work)
    assert graded.returncode == 0, one_line(graded.stderr)
    done = run_cli(cli("report", "--no-browser", "--report-dir", "report", *common), work)
    assert done.returncode == 0, one_line(done.stderr)
    claims = run_cli(cli("run", "--claims-only", "--report-dir", "claims", *common), work)
    assert claims.returncode == 0, one_line(claims.stderr)
    return {"report": work / "report", "claims": work / "claims"}


def _rendered(folder: Path) -> tuple[str, str]:
    md = (folder / "index.md").read_text(encoding="utf-8")
    return md, _markdown().render(md)


@needs_data
def test_an_imported_model_field_is_not_a_link(reports: dict[str, Path]) -> None:
    md, rendered = _rendered(reports["report"])
    assert "(model [click me\\](https://evil.example/steal))" in md  # shown as written, the link syntax broken
    assert "(model [click me](https://evil.example/steal))" in _text_of(rendered)
    assert 'href="https://evil.example' not in rendered
    page = (reports["report"] / "index.html").read_text(encoding="utf-8")
    assert 'href="https://evil.example' not in page and html.escape(LINK, quote=False) in page


@needs_data
def test_a_checkpoint_named_measured_does_not_restyle_its_row(reports: dict[str, Path]) -> None:
    md, rendered = _rendered(reports["report"])
    # the scripted backend ran no model: the row says so (synthetic units, issue 13)
    assert "| \\*\\*measured\\*\\* (random, step 50, synthetic: scripted, no model) |" in md
    rows = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", rendered, re.DOTALL) if "**measured**" in r]
    assert rows, "the checkpoint's rows are in the report, its name shown as written"
    assert all("<strong>" not in r for r in rows)
    page = (reports["report"] / "index.html").read_text(encoding="utf-8")
    for row in re.findall(r"<tr[^>]*>(?:(?!</tr>).)*\*\*measured\*\*(?:(?!</tr>).)*</tr>", page, re.DOTALL):
        assert 'class="measured"' not in row and "kind measured" not in row


@needs_data
def test_a_claims_date_with_a_newline_adds_no_heading(reports: dict[str, Path]) -> None:
    md, rendered = _rendered(reports["claims"])
    assert not any(line.lstrip().startswith(HEADING) for line in md.splitlines())
    assert "(2025-01-01 # injected heading)" in md  # one line: the heading marker is mid-line text
    assert "injected heading</h" not in rendered
    assert 'href="https://evil.example' not in rendered  # the title's link is text too
    assert "A paper [see here\\](https://evil.example/title)" in md
    page = (reports["claims"] / "index.html").read_text(encoding="utf-8")
    assert "injected heading</h" not in page and 'href="https://evil.example' not in page


def _text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


@given(text=st.text(alphabet=st.sampled_from(list("ab1 _*`~[]()<>#|&!\\:-+=.\n\t")) | st.characters(), max_size=30))
@settings(max_examples=400, deadline=None)
def test_escaped_text_renders_as_exactly_that_text(text: str) -> None:
    """Whatever the text, markdown-it renders the escaped form as that text (whitespace runs
    aside): no tag, in a paragraph, a table cell, a list item or a heading; and a code span holds it."""
    md = _markdown()
    # CommonMark replaces NUL with U+FFFD; line breaks are spaces in one line of text
    expected = " ".join(text.replace("\x00", "\ufffd").replace("\r", " ").replace("\n", " ").split())
    cases = {
        "paragraph": (escape(text, line_start=True), r"<p>(.*)</p>"),
        "cell": ("| a |\n|---|\n| " + escape(text) + " |", r"<td>(.*)</td>"),
        "item": ("- " + escape(text, line_start=True), r"<li>(.*)</li>"),
        "heading": ("## " + escape(text, heading=True), r"<h2>(.*)</h2>"),
    }
    for name, (source, pattern) in cases.items():
        out = md.render(source)
        match = re.search(pattern, out, re.DOTALL)
        if match is None:
            assert not expected, (name, source, out)
            continue
        assert "<" not in match.group(1), (name, source, out)
        assert _text_of(match.group(1)) == expected, (name, source, out)
    if not text.strip():
        return  # no code span of nothing
    cell = md.render("| a |\n|---|\n| " + code_span(text, in_table=True) + " |")
    code = re.search(r"<td><code>(.*)</code></td>", cell, re.DOTALL)
    shown = re.sub(r"\r\n|\r|\n", " ", text.replace("\x00", "\ufffd"))  # a line ending (CRLF too) is one space
    assert code is not None and html.unescape(code.group(1)).strip() == shown.strip()
