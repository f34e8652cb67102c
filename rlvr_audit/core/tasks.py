"""Benchmarks: the task YAMLs in ``tasks/`` and the problems they load.

A task YAML is a valid lm-evaluation-harness task (``lm_eval --include_path tasks --tasks
math500`` runs it, loading the Hub dataset; offline, ``rlvr-audit task export`` writes tasks that
read local files: :mod:`rlvr_audit.generation.task_export`), so lm-eval users can reuse it.
rlvr-audit reads the same file and takes:

- the dataset (``dataset_path``, ``dataset_name``, ``test_split``, revision in
  ``dataset_kwargs.revision``),
- the default sampling protocol from lm-eval's own keys (``repeats`` = samples per problem,
  ``generation_kwargs.temperature`` / ``top_p`` / ``max_gen_toks``),
- its own settings under ``metadata.rlvr_audit`` (which fields hold the id, question and
  answer; which extra fields to keep; the local file name for ``--data-dir``).

Problems come from the Hugging Face Hub through ``datasets`` or, with ``--data-dir DIR``
(or ``$RLVR_AUDIT_DATA_DIR``), from ``DIR/<task>.jsonl``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import Field

from .configfile import StrictModel, load_yaml_model, yaml_files
from .errors import ConfigError, UnknownNameError, UsageError
from .records import Problem, SamplingProtocol, stable_hash
from .synthetic import SynthConfig, generate_rows

DATA_DIR_ENV = "RLVR_AUDIT_DATA_DIR"
"""Environment variable: a directory of ``<task>.jsonl`` files used instead of the Hub."""


class GenerationKwargs(StrictModel):
    """lm-eval ``generation_kwargs`` of a task (the keys rlvr-audit understands)."""

    until: list[str] = Field(default_factory=list)
    """Stop strings for lm-eval users; rlvr-audit takes stop strings from the prompt template."""
    do_sample: bool = False
    """Whether to sample; must agree with ``temperature`` (> 0 iff sampling)."""
    temperature: float = Field(default=0.0, ge=0.0)
    """Sampling temperature of the default protocol (0 = greedy)."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus mass of the default protocol."""
    max_gen_toks: int = Field(default=3072, ge=1)
    """New-token limit of the default protocol."""


class TaskSettings(StrictModel):
    """rlvr-audit's own settings for a task, under ``metadata.rlvr_audit``."""

    display_name: str
    """Name shown in reports, e.g. ``MATH-500``."""
    id_field: str | list[str]
    """Field(s) holding the problem id; the first one present in a row is used."""
    question_field: str | list[str] = "problem"
    """Field(s) holding the problem statement."""
    answer_field: str | list[str] = "answer"
    """Field(s) holding the gold answer."""
    keep_fields: list[str] = Field(default_factory=list)
    """Other fields copied into :attr:`Problem.metadata` when present."""
    expected_size: int | None = Field(default=None, ge=1)
    """Number of problems the benchmark has; a data source of another size is refused."""
    metric: str = "avg@k"
    """Headline metric of the protocol as the literature reports it (documentation only)."""
    generator: SynthConfig | None = None
    """For a synthetic task: the generator settings (see :mod:`rlvr_audit.core.synthetic`); its problems
    are generated from them (same settings, same problems) instead of read from a file or the Hub."""


class TaskMetadata(StrictModel):
    """lm-eval ``metadata`` of a task."""

    version: float = 1.0
    """lm-eval task version."""
    rlvr_audit: TaskSettings
    """rlvr-audit's settings."""


class TaskSpec(StrictModel):
    """A task YAML: a subset of lm-eval's TaskConfig keys, validated strictly."""

    task: str
    """Task id; must equal the file name without ``.yaml``."""
    dataset_path: str
    """Hugging Face dataset id."""
    dataset_name: str | None = None
    """Dataset configuration name."""
    dataset_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra ``datasets.load_dataset`` arguments; ``revision`` pins the dataset version."""
    test_split: str = "test"
    """Split that holds the problems."""
    output_type: str = "generate_until"
    """lm-eval output type; always ``generate_until`` here."""
    doc_to_text: str
    """lm-eval prompt (a Jinja string over the row); rlvr-audit renders its own templates."""
    doc_to_target: str
    """lm-eval target (the answer field)."""
    repeats: int = Field(default=1, ge=1)
    """Samples per problem in the default protocol (avg@k's k)."""
    generation_kwargs: GenerationKwargs = Field(default_factory=GenerationKwargs)
    """Default decoding settings."""
    filter_list: list[dict[str, Any]] | None = None
    """lm-eval answer filters (used by lm-eval only)."""
    metric_list: list[dict[str, Any]] | None = None
    """lm-eval metrics (used by lm-eval only)."""
    metadata: TaskMetadata
    """Task metadata, with rlvr-audit's settings."""

    @property
    def settings(self) -> TaskSettings:
        """rlvr-audit's settings."""
        return self.metadata.rlvr_audit

    @property
    def revision(self) -> str | None:
        """Pinned dataset revision, if any."""
        rev = self.dataset_kwargs.get("revision")
        return str(rev) if rev is not None else None

    def default_protocol(self, *, seed: int = 0) -> SamplingProtocol:
        """The sampling protocol this task is evaluated with by default."""
        g = self.generation_kwargs
        return SamplingProtocol(
            n=self.repeats,
            temperature=g.temperature if g.do_sample else 0.0,
            top_p=g.top_p,
            max_new_tokens=g.max_gen_toks,
            seed=seed,
        )


def tasks_dir(config_dir: Path) -> Path:
    """The ``tasks/`` folder of a configuration directory."""
    return config_dir / "tasks"


def available_tasks(config_dir: Path) -> dict[str, Path]:
    """Task id -> YAML path, for every ``tasks/*.yaml``."""
    return yaml_files(tasks_dir(config_dir))


def load_task(name: str, config_dir: Path) -> TaskSpec:
    """Load and validate the task ``name``; an unknown name lists the valid ones."""
    found = available_tasks(config_dir)
    if name not in found:
        raise UnknownNameError("task", name, found)
    path = found[name]
    spec = load_yaml_model(path, TaskSpec)
    if spec.task != name:
        raise ConfigError(path, f"must equal the file name {name!r} (got {spec.task!r})", key="task")
    g = spec.generation_kwargs
    if g.do_sample != (g.temperature > 0):
        raise ConfigError(
            path,
            f"do_sample={g.do_sample} contradicts temperature={g.temperature} "
            "(sampling needs temperature > 0, greedy needs do_sample: false)",
            key="generation_kwargs.do_sample",
        )
    return spec


def _pick(row: dict[str, Any], fields: str | list[str], what: str, source: str) -> Any:
    names = [fields] if isinstance(fields, str) else fields
    for name in names:
        if name in row and row[name] is not None:
            return row[name]
    raise UsageError(f"{source}: a row has none of the {what} fields {names}; its fields: {sorted(row)}")


def rows_to_problems(spec: TaskSpec, rows: list[dict[str, Any]], source: str) -> list[Problem]:
    """Map dataset rows to :class:`Problem` records using the task's field mapping."""
    s = spec.settings
    problems: list[Problem] = []
    seen: set[str] = set()
    for row in rows:
        pid = str(_pick(row, s.id_field, "id", source))
        if pid in seen:
            raise UsageError(f"{source}: duplicate problem id {pid!r}")
        seen.add(pid)
        meta = {k: row[k] for k in s.keep_fields if k in row}
        problems.append(
            Problem(
                task=spec.task,
                problem_id=pid,
                question=str(_pick(row, s.question_field, "question", source)),
                answer=str(_pick(row, s.answer_field, "answer", source)),
                metadata=meta,
            )
        )
    if not problems:
        raise UsageError(f"{source}: no problems found")
    if s.expected_size is not None and len(problems) != s.expected_size:
        raise UsageError(
            f"{source}: {len(problems)} problems, but task {spec.task!r} has {s.expected_size}; is this the right file?"
        )
    return problems


def read_jsonl_rows(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file of objects, naming the line of any malformed row."""
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise UsageError(f"{path}:{lineno}: expected a JSON object per line")
            rows.append(row)
    return rows


def resolve_data_dir(data_dir: Path | None) -> Path | None:
    """``data_dir`` if given, else ``$RLVR_AUDIT_DATA_DIR``, else ``None`` (use the Hub)."""
    if data_dir is not None:
        return data_dir
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def load_problems(spec: TaskSpec, *, data_dir: Path | None = None) -> list[Problem]:
    """All problems of a task, in dataset order.

    A synthetic task (``metadata.rlvr_audit.generator``) generates its problems. Otherwise from
    ``data_dir/<task>.jsonl`` when a data directory is given (argument or
    ``$RLVR_AUDIT_DATA_DIR``), else from the Hugging Face Hub with ``datasets``.
    """
    if spec.settings.generator is not None:  # synthetic: generated, never read
        return rows_to_problems(spec, generate_rows(spec.settings.generator), f"generator of task {spec.task!r}")
    data_dir = resolve_data_dir(data_dir)
    if data_dir is not None:
        path = data_dir / f"{spec.task}.jsonl"
        if not path.is_file():
            have = sorted(p.stem for p in data_dir.glob("*.jsonl")) if data_dir.is_dir() else []
            raise UsageError(
                f"no data file for task {spec.task!r}: {path} does not exist"
                + (f" (files there: {', '.join(have)})" if have else "")
            )
        return rows_to_problems(spec, read_jsonl_rows(path), str(path))
    return rows_to_problems(spec, _load_hub_rows(spec), f"{spec.dataset_path}[{spec.test_split}]")


HUB_PROBE_SECONDS = 3.0
"""How long :func:`hub_unreachable` waits for the Hub to answer before calling it unreachable."""

_HUB_OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
"""Set to 1, these make ``datasets`` read its local cache only: then the Hub is not probed."""

_hub_probe: dict[str, str | None] = {}
""":func:`hub_unreachable`'s answer per endpoint, so a run over many tasks probes once."""


def hub_endpoint() -> str:
    """The Hub ``datasets`` talks to: ``$HF_ENDPOINT``, else https://huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or "https://huggingface.co"


def hub_unreachable(endpoint: str | None = None, *, timeout: float = HUB_PROBE_SECONDS) -> str | None:
    """Why the Hub at ``endpoint`` (default :func:`hub_endpoint`) cannot be reached, or ``None``.

    One HEAD request with a ``timeout``-second limit (proxy variables are honoured): any HTTP
    answer, an error status included, means reachable. Offline, ``datasets`` instead retries
    for half a minute and prints each warning twice before failing; this answers in seconds."""
    endpoint = endpoint or hub_endpoint()
    if endpoint in _hub_probe:
        return _hub_probe[endpoint]
    reason: str | None = None
    try:
        with urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout):
            pass
    except urllib.error.HTTPError:  # it answered
        pass
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, no DNS, timed out, bad URL
        cause = getattr(exc, "reason", exc)
        reason = str(cause) or type(cause).__name__
    _hub_probe[endpoint] = reason
    return reason


def _offline_mode() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in _HUB_OFFLINE_ENV)


def _load_hub_rows(spec: TaskSpec) -> list[dict[str, Any]]:
    """Rows of the task's Hub dataset (imports ``datasets`` lazily).

    Unless ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` asks for the local cache, the Hub is probed
    first (:func:`hub_unreachable`): offline, the command fails at once with one hint."""
    if not _offline_mode():
        reason = hub_unreachable()
        if reason is not None:
            raise UsageError(
                f"task {spec.task!r} is read from the Hugging Face Hub ({spec.dataset_path}), but "
                f"{hub_endpoint()} cannot be reached ({reason}). Offline: give --data-dir DIR with "
                f"{spec.task}.jsonl in it (or set {DATA_DIR_ENV}); to use datasets' own cache, set HF_HUB_OFFLINE=1."
            )
    import datasets  # heavy; only when the Hub is used

    kwargs = dict(spec.dataset_kwargs)
    try:
        ds = datasets.load_dataset(spec.dataset_path, spec.dataset_name, split=spec.test_split, **kwargs)
    except Exception as exc:  # datasets raises many types (connection, missing, auth)
        raise UsageError(
            f"cannot load dataset {spec.dataset_path!r} (split {spec.test_split!r}) for task "
            f"{spec.task!r}: {exc}. Offline? Use --data-dir DIR with {spec.task}.jsonl in it."
        ) from exc
    return [dict(r) for r in ds]


def data_hash(problems: list[Problem]) -> str:
    """Hash of a task's full problem list: ids, questions and answers, in order."""
    return stable_hash([[p.problem_id, p.question, p.answer] for p in problems])
