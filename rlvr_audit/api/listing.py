"""``rlvr-audit ls`` and ``rlvr-audit validate``: rows describing what is configured and stored."""

from __future__ import annotations

import re

from ..analysis.claims_tables import listing_legend, listing_rows
from ..core.errors import UnknownNameError, UsageError
from ..core.prompts import available_prompts, load_prompt
from ..core.store import Store
from ..core.tasks import available_tasks, load_task
from ..generation.engines import available_backends
from ..grading import GRADERS, get_grader
from ..importers import FORMATS
from .options import Locations, load_registry


def validate(loc: Locations) -> list[str]:
    """Load and validate every task, prompt and the registry; return a line per file checked."""
    lines = []
    for name in available_tasks(loc.config_dir):
        load_task(name, loc.config_dir)
        lines.append(f"task {name}: ok")
    prompts = available_prompts(loc.config_dir)
    for name in prompts:
        load_prompt(name, loc.config_dir)
        lines.append(f"prompt {name}: ok")
    reg = load_registry(loc)
    lines.append(
        f"registry {loc.registry_path}: ok ({len(reg.checkpoints)} checkpoints"
        + (f", {len(reg.ledger)} claims" if len(reg.ledger) else "")
        + ")"
    )
    if not lines[:-1]:
        raise UsageError(f"{loc.config_dir} has no tasks/ or prompts/ folder")
    return lines


_REST_ROLE = re.compile(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_REST_LITERAL = re.compile(r"``([^`]+)``|`([^`]+)`_?")


def plain_text(doc: str) -> str:
    """A docstring paragraph as a terminal shows it: reST roles (``:func:`x```), literals
    (````x````) and links stripped to their text, lines joined with single spaces."""
    text = _REST_ROLE.sub(r"\1", doc)
    text = _REST_LITERAL.sub(lambda m: m.group(1) or m.group(2), text)
    return " ".join(text.split())


LISTABLE = ("tasks", "prompts", "checkpoints", "units", "graders", "backends", "formats", "claims")
"""What ``rlvr-audit ls`` lists."""


def listing(kind: str, loc: Locations, filters: dict[str, str | None] | None = None) -> list[dict[str, str]]:
    """Rows describing the tasks, prompts, checkpoints, stored units, graders, backends, import
    formats or claims. ``filters`` (claims only): ``kind``, ``model``, ``benchmark``, ``source``."""
    given = {k: v for k, v in (filters or {}).items() if v is not None}
    if kind == "claims":
        return listing_rows(load_registry(loc).ledger, **given)
    if given:
        raise UsageError(f"--{', --'.join(given)} only filter `ls claims`, not `ls {kind}`")

    if kind == "tasks":
        rows = []
        for name in available_tasks(loc.config_dir):
            t = load_task(name, loc.config_dir)
            p = t.default_protocol()
            rows.append(
                {
                    "task": name,
                    "name": t.settings.display_name,
                    "dataset": t.dataset_path
                    if t.settings.generator is None
                    else f"generated (arithmetic v{t.settings.generator.version}, seed {t.settings.generator.seed})",
                    "problems": str(t.settings.expected_size or "?"),
                    "protocol": f"n={p.n}, T={p.temperature:g}, {p.max_new_tokens} tokens",
                }
            )
        return rows
    if kind == "prompts":
        rows = []
        for name in available_prompts(loc.config_dir):
            tmpl = load_prompt(name, loc.config_dir)
            rows.append(
                {
                    "prompt": name,
                    "chat": "yes" if tmpl.chat else "no",
                    "hash": tmpl.template_hash,
                    "description": tmpl.description,
                }
            )
        return rows
    if kind == "checkpoints":
        reg = load_registry(loc)
        return [
            {
                "checkpoint": c.checkpoint_id,
                "model": c.model,
                "base": c.base or "-",
                "reward": c.reward or "-",
                "step": "-" if c.step is None else str(c.step),
                "prompt": c.prompt,
            }
            for c in reg.checkpoints.values()
        ]
    if kind == "units":
        store = Store(loc.store)
        rows = []
        good, broken = store.scan()
        for u in good:
            s = u.spec
            rows.append(
                {
                    "unit": u.key,
                    "checkpoint": s.checkpoint.checkpoint_id,
                    "task": s.task,
                    "prompt": s.template_id,
                    "n": str(s.protocol.n),
                    "T": f"{s.protocol.temperature:g}",
                    "tokens": str(s.protocol.max_new_tokens),
                    "backend": s.backend + (f" ({u.imported.label})" if u.imported is not None else ""),
                    "generated": str(len(store.read_generations(u.key))),
                    "graders": ", ".join(store.graders(u.key)) or "-",
                }
            )
        columns = ("task", "prompt", "n", "T", "tokens", "backend", "generated", "graders")
        for b in broken:  # listed with the file that is wrong, instead of failing the whole listing
            rows.append({"unit": b.key, "checkpoint": f"BROKEN: {b.line()}", **dict.fromkeys(columns, "-")})
        return rows
    if kind == "graders":
        return [
            {
                "grader": g,
                "version": get_grader(g).version,
                "description": plain_text((get_grader(g).__doc__ or "").strip().split("\n\n")[0]),
            }
            for g in GRADERS
        ]
    if kind == "backends":
        return [{"backend": b} for b in available_backends()]
    if kind == "formats":
        return [
            {
                "format": f.name,
                "default max new tokens": str(f.default_max_new_tokens)
                if f.default_max_new_tokens is not None
                else "none: from the file, else --max-new-tokens",
                "description": f.description,
            }
            for f in FORMATS.values()
        ]
    raise UnknownNameError("listing", kind, LISTABLE)


def listing_notes(kind: str, rows: list[dict[str, str]]) -> list[str]:
    """Lines printed under an ``ls`` table: what the marks in its cells mean (``ls claims``:
    ``78.2*`` is derived as baseline + gain); empty when nothing needs explaining."""
    return listing_legend(rows) if kind == "claims" else []
