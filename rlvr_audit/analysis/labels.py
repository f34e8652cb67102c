"""What a table's rows and columns are called: one place, so every table names the same things.

A **row** of a report table is a unit (or a checkpoint's units): it names

- its checkpoint by its full id (which carries its family: two imported ``base`` checkpoints of
  two families are ``qwen/base`` and ``llama/base``, never two rows reading ``base``; inside the
  block of its own family, whose heading names the family, ``<family>/<name>`` reads ``<name>``
  where no other row's checkpoint shortens to the same name), its reward and training step;
- and, where the table holds other units of the same checkpoint, task and prompt, what tells
  them apart (:data:`ATTRIBUTES`: token limit, decoding, samples, seed, engine and its arguments,
  import source, task or template version, synthetic), e.g. ``sky-t1/correct-14b · 4096 tokens``.
  Units that differ in any of these are distinct rows, never one merged row.

A row sits in the block of its family, and a descendant in the block of its base's family
(:func:`family_blocks`), so a trained step imported under another family id sits with the base
it is compared against.

A **column** of numbers names its metric (``avg@8``: the metric of *its* cells, never of the
task's first unit; when the cells of one column differ, each cell names its own), the grader and
the interval (``95% Wilson``) (:func:`metric_header`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..core.records import natural_key
from ..core.store import UnitInfo

__all__ = [
    "ATTRIBUTES",
    "FamilyBlock",
    "column_protocols",
    "describe",
    "differing",
    "family_blocks",
    "interval_name",
    "metric_header",
    "protocol_label",
    "row_name",
    "unit_name",
    "unit_variants",
]


def protocol_label(u: UnitInfo) -> str:
    """The sampling protocol of a unit in words (decoding, samples, token limit, seed)."""
    p = u.spec.protocol
    return f"{_decoding(u)}, {p.n} sample{'s' if p.n > 1 else ''}, {p.max_new_tokens} tokens, seed {p.seed}"


def _decoding(u: UnitInfo) -> str:
    p = u.spec.protocol
    if p.temperature == 0:
        return "greedy"
    return f"T={p.temperature:g}" + (f", top-p {p.top_p:g}" if p.top_p < 1 else "")


def _engine(u: UnitInfo) -> str:
    s = u.spec
    args = {k: v for k, v in s.engine_args.items() if k != "source_sha256"}  # imports: the source says it
    return s.backend + (" (" + ", ".join(f"{k}={v}" for k, v in sorted(args.items())) + ")" if args else "")


def _source(u: UnitInfo) -> str:
    return f"source {u.imported.label}" if u.imported is not None else "generated"


ATTRIBUTES: dict[str, Callable[[UnitInfo], str]] = {
    "tokens": lambda u: f"{u.spec.protocol.max_new_tokens} tokens",
    "decoding": _decoding,
    "samples": lambda u: f"{u.spec.protocol.n} sample{'s' if u.spec.protocol.n > 1 else ''}",
    "seed": lambda u: f"seed {u.spec.protocol.seed}",
    "engine": _engine,
    "source": _source,
    "synthetic": lambda u: f"synthetic: {u.spec.backend}, no model" if u.spec.synthetic else "",
    "task version": lambda u: f"task version {u.spec.data_hash[:8]}",
    "template version": lambda u: f"template {u.spec.template_hash[:8]}",
}
"""What can tell two units of one checkpoint, task and prompt apart, in the order labels name it;
each maps a unit to its value in words."""


def differing(units: Iterable[UnitInfo]) -> list[str]:
    """The :data:`ATTRIBUTES` (names) on which ``units`` do not all agree, in label order."""
    group = list(units)
    return [name for name, value in ATTRIBUTES.items() if len({value(u) for u in group}) > 1]


def describe(u: UnitInfo, attributes: Sequence[str]) -> str:
    """``u``'s values of ``attributes`` in words (``"4096 tokens, vllm"``); empty values left out."""
    return ", ".join(v for v in (ATTRIBUTES[a](u) for a in attributes) if v)


def unit_variants(units: Sequence[UnitInfo], group: Callable[[UnitInfo], object] | None = None) -> dict[str, str]:
    """Unit key -> what distinguishes the unit from the other units of its group in ``units``
    (default group: checkpoint, task and prompt template): the values of the attributes on which
    the group's units differ; ``""`` for a unit alone in its group. Units that differ in none of
    :data:`ATTRIBUTES` are told apart by their keys."""
    key = group or (lambda u: (u.spec.checkpoint.checkpoint_id, u.spec.task, u.spec.template_id))
    groups: dict[object, dict[str, UnitInfo]] = {}
    for u in units:
        groups.setdefault(key(u), {})[u.key] = u
    out: dict[str, str] = {}
    for members in groups.values():
        if len(members) == 1:
            out.update(dict.fromkeys(members, ""))
            continue
        attrs = differing(members.values())
        for k, u in members.items():
            out[k] = describe(u, attrs) if attrs else f"unit {k}"
    return out


def row_name(u: UnitInfo, variant: str = "", *, block: str | None = None, short: bool = True) -> str:
    """A unit's row label: its checkpoint, then reward, step and ``variant`` in parentheses.

    The checkpoint is its full id, which names its family; inside the table block of family
    ``block``, an id ``<block>/<name>`` may be shortened to ``<name>`` (the block's heading names
    the family) unless ``short`` is false (the short name is taken by another checkpoint)."""
    cid = u.spec.checkpoint.checkpoint_id
    name = cid.split("/", 1)[1] if short and block is not None and cid.startswith(f"{block}/") else cid
    extras = [x for x in (u.reward, f"step {u.step}" if u.step else None, variant) if x]
    return name + (f" ({', '.join(extras)})" if extras else "")


def unit_name(u: UnitInfo, variant: str = "") -> str:
    """A unit in a table of units (one row per unit): its checkpoint id, and in parentheses what
    tells it apart from the table's other units of that checkpoint, task and prompt
    (:func:`unit_variants`), e.g. ``sky-t1/correct-14b (4096 tokens)``."""
    return u.spec.checkpoint.checkpoint_id + (f" ({variant})" if variant else "")


@dataclass
class FamilyBlock:
    """The rows of one family in a table: its base checkpoints first, then their descendants."""

    family: str
    """Family id."""
    display: str
    """Family display name (the block's heading)."""
    units: list[UnitInfo]
    """Its units: bases first, then by reward, step (as a number), checkpoint id, prompt, token
    limit, engine and source (so a checkpoint's rows come in one order whatever the store's)."""


def family_blocks(units: Sequence[UnitInfo]) -> list[FamilyBlock]:
    """``units`` in family blocks, in order of first appearance. A unit sits in the block of its
    base's family (followed up the chain of bases among ``units``), else of its own family."""
    own = {u.spec.checkpoint.checkpoint_id: (u.family, u.family_display) for u in units}
    base_of = {u.spec.checkpoint.checkpoint_id: u.base for u in units if u.base}

    def home(u: UnitInfo) -> tuple[str, str]:
        cid, seen = u.spec.checkpoint.checkpoint_id, set()
        while cid in base_of and base_of[cid] in own and cid not in seen:
            seen.add(cid)
            cid = base_of[cid]
        return own.get(cid, (u.family, u.family_display))

    blocks: dict[tuple[str, str], FamilyBlock] = {}
    for u in units:
        fam = home(u)
        blocks.setdefault(fam, FamilyBlock(fam[0], fam[1], [])).units.append(u)
    for b in blocks.values():
        b.units.sort(
            key=lambda x: (
                x.base is not None,
                x.reward or "",
                -1 if x.step is None else x.step,
                natural_key(x.spec.checkpoint.checkpoint_id),
                x.spec.template_id,
                x.spec.protocol.max_new_tokens,
                _engine(x),
                _source(x),
                x.key,
            )
        )
    return list(blocks.values())


def column_protocols(units: Sequence[UnitInfo], protocol: Callable[[UnitInfo], str]) -> dict[str, str | None]:
    """Unit key -> the protocol its column is split by: ``protocol(u)`` where the units of its
    task were run under several protocols, else ``None`` (one column for the task)."""
    per_task: dict[str, set[str]] = {}
    for u in units:
        per_task.setdefault(u.spec.task, set()).add(protocol(u))
    return {u.key: protocol(u) if len(per_task[u.spec.task]) > 1 else None for u in units}


def interval_name(method: str, level: float) -> str:
    """An interval method in words: ``95% Wilson``, ``95% percentile bootstrap``."""
    names = {"wilson": "Wilson", "percentile": "percentile bootstrap", "bca": "BCa bootstrap"}
    return f"{level * 100:g}% {names.get(method, method)}"


def metric_header(metrics: Iterable[str]) -> str:
    """The metric of a column header: the one metric of its cells (``avg@8``), or ``"metric per
    cell"`` when its cells hold several (each cell then names its own)."""
    found = sorted(set(metrics), key=natural_key)
    return found[0] if len(found) == 1 else "metric per cell"
