"""Loading YAML configuration files into validated pydantic models.

One place turns YAML syntax errors and pydantic validation errors into a
:class:`~rlvr_audit.core.errors.ConfigError` that names the file, the key and what was expected,
so every configuration file (tasks, prompts, checkpoints, later train specs and claims)
fails the same clear way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)

CONFIG_DIR_ENV = "RLVR_AUDIT_CONFIG_DIR"
"""Environment variable naming the directory that holds ``tasks/``, ``prompts/`` and
``checkpoints.yaml`` (overridden by ``--config-dir``)."""


class StrictModel(BaseModel):
    """Base for configuration models: unknown keys are errors, docstrings are descriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe loader when built (10x faster on the claims ledger), refusing a key given
    twice in one mapping (plain YAML keeps the last one silently)."""


def _mapping_without_duplicates(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in first and key != "<<":
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first given at line {first[key]})",
                    key_node.start_mark,
                )
            first.setdefault(key, key_node.start_mark.line + 1)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, raising :class:`ConfigError` with the line on a syntax error or a key
    given twice in one mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, f"cannot read file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, f"invalid YAML{where}: {problem}") from exc


def describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """The first error of ``exc`` as ``(dotted key, what is expected)``."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return key, "unknown key"
    if kind == "missing":
        return key, "required key is missing"
    given = err.get("input")
    shown = repr(given) if not isinstance(given, dict | list) else type(given).__name__
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return key, f"{err.get('msg', 'invalid value')} (got {shown})"


def validate(model: type[M], data: Any, path: Path, *, prefix: str = "") -> M:
    """Validate ``data`` as ``model``; on failure raise :class:`ConfigError` naming the key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        key, expected = describe_validation_error(exc)
        if key.startswith("(top level)") and prefix:
            key = prefix
        elif prefix:
            key = f"{prefix}.{key}"
        extra = ""
        if expected == "unknown key":
            fields = ", ".join(sorted(_allowed_keys(model, key.split(".")[len(prefix.split(".")) if prefix else 0 :])))
            if fields:
                extra = f"; valid keys here: {fields}"
        raise ConfigError(path, expected + extra, key=key) from exc


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Field names valid at the parent of ``loc`` (best effort, for error messages)."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if fields is None:
            return []
        if part in fields:
            current = _model_of(fields[part].annotation)
        # dict values / list items: stay on the value model
        elif current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []


def _model_of(annotation: Any) -> Any:
    """Find a BaseModel class inside an annotation such as ``dict[str, X]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read ``path`` and validate it as ``model`` (see :func:`validate`)."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping at the top level, got {type(data).__name__}")
    return validate(model, data, path)


def default_config_dir() -> Path:
    """Where ``tasks/``, ``prompts/`` and ``checkpoints.yaml`` are looked up.

    In order: ``$RLVR_AUDIT_CONFIG_DIR``; the current directory if it has a ``tasks/`` folder;
    the source checkout the package was installed from (``pip install -e .``).
    """
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    cwd = Path.cwd()
    if (cwd / "tasks").is_dir() and (cwd / "prompts").is_dir():
        return cwd
    return Path(__file__).resolve().parents[2]


def yaml_files(folder: Path) -> dict[str, Path]:
    """Name (file stem) -> path for every ``*.yaml`` in ``folder`` (empty if it is missing)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}
