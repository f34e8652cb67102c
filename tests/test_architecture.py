"""What ``lint-imports`` cannot check: imports inside functions are for heavy or optional
dependencies only (README "Architecture").

An import inside a function hides a module's dependencies and dodges the layer contracts'
cycle checks, so every one must name its reason: either the package imported is in
:data:`LAZY_PACKAGES` (heavy or optional; the reason is the dict's value), or the import
carries ``# lazy: <reason>``, on a line of the statement or as a comment line above it (which
covers the run of consecutive imports below it).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rlvr_audit"

LAZY_PACKAGES = {
    "torch": "heavy (seconds): only when a model runs",
    "transformers": "heavy (seconds): only when a model or tokenizer is loaded",
    "vllm": "the vllm extra (GPU machines), heavy: only when the vllm engine runs",
    "lm_eval": "heavy (about a second): only when an engine is created or engines are listed",
    "verl": "the train extra, installed in its own environment: only in the training commands",
    "hydra": "verl's config composition (the train extra): only in the training commands",
    "omegaconf": "verl's config objects (the train extra): only in the training commands",
    "ray": "the ray extra: only on a Ray cluster (--ray-address, train launch)",
    "matplotlib": "heavy (about 0.5 s): only when a figure is drawn",
    "pygments": "lexers load on demand: only when the sample browser highlights code",
    "rouge_score": "heavy (nltk, scipy.stats): only when the contamination probe scores",
    "datasets": "heavy (seconds): only when the Hugging Face Hub is read",
    "pyarrow": "heavy: only when a parquet file is read",
    "math_verify": "sympy and the ANTLR parser (about a second): only in grading worker processes",
    "latex2sympy2_extended": "sympy and the ANTLR parser: only in grading worker processes",
    "sympy": "heavy (about a second): only in grading worker processes",
    "antlr4": "math-verify's parser runtime: only in grading worker processes",
}
"""Packages a function may import without a ``# lazy:`` comment, each with its reason."""

LAZY_MARK = re.compile(r"#.*\blazy: *\S")
"""The comment that justifies any other import inside a function: ``# lazy: <reason>``."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The absolute names ``node`` imports (``from .. import api`` in ``rlvr_audit.cli.common``
    imports ``rlvr_audit.api``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        return [node.module or ""]
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    if node.module:
        return [".".join([*base, node.module])]
    return [".".join([*base, alias.name]) for alias in node.names]


def unjustified_local_imports(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every import inside a function of ``source`` that is
    neither of a :data:`LAZY_PACKAGES` package nor marked ``# lazy: <reason>`` (on a line of the
    statement, or a comment line above it that also covers the consecutive imports below it)."""
    lines = source.splitlines()
    found: list[tuple[int, str]] = []

    def marked(node: ast.stmt) -> tuple[bool, bool]:
        """(a mark on a line of the statement, a comment line above it holding a mark)"""
        first, last = node.lineno, node.end_lineno or node.lineno
        above = lines[first - 2] if first >= 2 else ""
        inline = any(LAZY_MARK.search(line) for line in lines[first - 1 : last])
        return inline, above.lstrip().startswith("#") and bool(LAZY_MARK.search(above))

    def visit(node: ast.AST, in_function: bool) -> None:
        inside = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for _field, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            run_marked = False  # a mark on an earlier import of the same run of imports
            for child in children:
                if not isinstance(child, ast.AST):
                    continue
                if not isinstance(child, ast.Import | ast.ImportFrom):
                    run_marked = False
                    visit(child, inside)
                    continue
                inline, above = marked(child)
                run_marked = run_marked or above
                if inside and not (inline or run_marked):
                    names = _imported(child, module, is_package)
                    found.extend((child.lineno, n) for n in names if n.split(".")[0] not in LAZY_PACKAGES)

    visit(ast.parse(source), False)
    return found


def test_the_checker_finds_unjustified_imports_and_accepts_justified_ones() -> None:
    source = (
        "import json\n"
        "def f():\n"
        "    import os\n"
        "    import torch\n"
        "    from .plan import plan  # heavy\n"
        "    from ..core.ui import console  # lazy: keeps --help fast\n"
        "    # lazy: a cycle through the grading package\n"
        "    from .. import grading\n"
        "    def g():\n"
        "        from sympy import simplify\n"
        "        import pandas as pd\n"
        "class C:\n"
        "    def m(self):\n"
        "        from . import (\n"
        "            spec,  # lazy: the multi-line form\n"
        "        )\n"
        "        from rich.table import Table\n"
        "        # lazy: one mark above a run of imports\n"
        "        import requests\n"
        "        from requests.adapters import HTTPAdapter\n"
        "        x = 1\n"
        "        import urllib3\n"
    )
    assert unjustified_local_imports(source, "rlvr_audit.train.cli") == [
        (3, "os"),
        (5, "rlvr_audit.train.plan"),
        (11, "pandas"),
        (17, "rich.table"),
        (22, "urllib3"),
    ]
    assert unjustified_local_imports("def f():\n    from . import x\n", "rlvr_audit.core", is_package=True) == [
        (2, "rlvr_audit.core.x")
    ]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_inside_functions_are_heavy_or_say_why(path: Path) -> None:
    found = unjustified_local_imports(
        path.read_text(encoding="utf-8"), _module_name(path), is_package=path.name == "__init__.py"
    )
    assert not found, (
        f"{path.relative_to(ROOT)}: imports inside functions without a reason: "
        + ", ".join(f"line {line} {name}" for line, name in found)
        + " (import at module level, or add '# lazy: <reason>')"
    )


HELP_MUST_NOT_IMPORT = ("rlvr_audit.api", "rlvr_audit.grading", "rlvr_audit.train.plan", "pandas", "numpy")
"""What the ``# lazy:`` imports of ``cli/common.py`` and ``train/cli.py`` keep out of ``--help``."""


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["train", "plan", "--help"]])
def test_help_imports_no_stage(args: list[str]) -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from rlvr_audit.cli import app; "
        f"r = CliRunner().invoke(app, {args!r}); assert r.exit_code == 0, r.output; "
        f"print(*[m for m in {HELP_MUST_NOT_IMPORT!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == []


LONG_MODULE_LINES = 800


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_over_800_lines_says_why_it_is_one_concept(path: Path) -> None:
    """Issue 18: no module above 800 lines unless its docstring says why it is one concept."""
    source = path.read_text(encoding="utf-8")
    if source.count("\n") <= LONG_MODULE_LINES:
        return
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert "One module, one concept" in docstring, (
        f"{path.relative_to(ROOT)} has {source.count(chr(10))} lines: split it, or say in its docstring "
        "why it is one concept ('One module, one concept (over 800 lines): ...')"
    )
