"""Which units a report folder shows, so that ``rlvr-audit run`` adds to a report instead of
replacing it.

Every ``run`` writes ``reports/<name>/`` (default ``reports/audit/``). Reporting only that run's
units made the units of an earlier run vanish from the report although they are still in the
store. Each report therefore records its units in :data:`UNITS_FILE` in the report folder, and a
``run`` into the same folder reports the earlier units (those still in the same store) together
with its own. ``rlvr-audit report`` reports exactly what it selects and records it likewise.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.store import Store, atomic_write

UNITS_FILE = ".rlvr-audit-units.json"
"""In a report folder: ``{"store": <the store's absolute path>, "units": [<unit key>, ...]}``."""


def earlier_units(report_dir: Path, store: Store) -> list[str]:
    """The units the report in ``report_dir`` showed, if it was made from ``store``, in order,
    leaving out any no longer stored; ``[]`` without a (readable) record."""
    path = Path(report_dir) / UNITS_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        same_store = Path(record["store"]) == store.root.resolve()
        keys = [str(k) for k in record["units"]]
    except (OSError, ValueError, KeyError, TypeError):  # no report yet, or a record this code did not write
        return []
    if not same_store:
        return []
    stored = set(store.unit_keys())
    return [k for k in keys if k in stored]


def record_units(report_dir: Path, store: Store, unit_keys: list[str]) -> None:
    """Record in ``report_dir`` that its report shows ``unit_keys`` of ``store``."""
    data = {"store": str(store.root.resolve()), "units": list(dict.fromkeys(unit_keys))}
    atomic_write(Path(report_dir) / UNITS_FILE, json.dumps(data, indent=1) + "\n")
