"""``rlvr-audit ls`` read at an 80-column terminal: one line per row, the left-out columns named,
``--wide`` and ``--format tsv`` in full, plain text (no reST), marks explained, the store named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testbed import DATA, ROOT, TOY_REGISTRY
from typer.testing import CliRunner

from rlvr_audit.cli import app
from rlvr_audit.cli.listing_table import fitted_columns

NARROW = {"COLUMNS": "80", "NO_COLOR": "1"}


def ls(*args: str, env: dict[str, str] | None = None) -> str:
    r = CliRunner().invoke(app, ["ls", *args], env=env or NARROW, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def claims_json(*args: str) -> list[dict[str, str]]:
    return json.loads(ls("claims", "--format", "json", "--config-dir", str(ROOT), *args))  # type: ignore[no-any-return]


def test_ls_claims_fits_80_columns_one_line_per_claim() -> None:
    claims = claims_json()
    out = ls("claims", "--config-dir", str(ROOT)).splitlines()
    assert max(len(line) for line in out) <= 80, max(out, key=len)
    header, rule, *body = out
    assert header.split()[0] == "id" and set(rule) <= {"-", " "}
    assert len(body) >= len(claims)
    for claim, line in zip(claims, body, strict=False):  # one line each, in order, id first
        shown = line.split()[0]
        assert claim["id"].startswith(shown.rstrip("…")), (claim["id"], line)
        assert claim["value"] in line
    notes = " ".join(body[len(claims) :])
    assert "not shown at 80 columns" in notes and "--wide" in notes and "tsv" in notes
    hidden = notes.split("not shown at 80 columns: ")[1].split(" (")[0].split(", ")
    assert set(hidden) and set(hidden) < set(claims[0]) and not set(hidden) & set(header.split())


def test_ls_claims_wide_and_tsv_show_every_column_in_full() -> None:
    claims = claims_json()
    wide = ls("claims", "--wide", "--config-dir", str(ROOT)).splitlines()
    assert wide[0].split() == list(claims[0])
    assert "…" not in "\n".join(wide) and "not shown" not in "\n".join(wide)
    for claim, line in zip(claims, wide[2:], strict=False):
        assert line.startswith(claim["id"] + " ")
    assert ls("claims", "-w", "--config-dir", str(ROOT)).splitlines()[0] == wide[0]
    tsv = ls("claims", "--format", "tsv", "--config-dir", str(ROOT)).splitlines()
    assert tsv[0].split("\t") == list(claims[0])
    assert [line.split("\t") for line in tsv[1:]] == [list(c.values()) for c in claims]
    helptext = CliRunner().invoke(app, ["ls", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"}).output
    assert "--wide" in helptext and "-w" in helptext
    assert "tsv (tab-separated" in helptext


def test_ls_graders_shows_no_rest_markup() -> None:
    out = ls("graders", env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert "``" not in out and ":func:" not in out and ":class:" not in out
    assert "math_verify.parse + math_verify.verify" in out
    rows = json.loads(ls("graders", "--format", "json"))
    assert all("`" not in r["description"] and r["description"] for r in rows)


def test_derived_values_are_explained_where_they_are_shown() -> None:
    claims = claims_json()
    out = ls("claims", "--config-dir", str(ROOT))
    assert any(c["value"].endswith("*") for c in claims)
    assert "*  value not printed in the source: derived as baseline + gain" in out
    # a listing whose values carry no mark has no legend line
    plain = [c for c in claims if not c["value"].endswith("*") and "±" not in c["value"]]
    sources = {c["source"] for c in plain} - {c["source"] for c in claims if c not in plain}
    assert sources, "the ledger should have a source without derived values"
    out = ls("claims", "--source", sorted(sources)[0], "--config-dir", str(ROOT))
    assert "derived as baseline + gain" not in out and "standard deviation" not in out
    rows = claims_json("--source", sorted(sources)[0])
    assert len(out.splitlines()) >= len(rows) + 2


def test_ls_units_names_the_store_it_looked_in(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    out = ls("units", "--store", str(missing))
    assert str(missing.resolve()) in out.replace("\n", "") and "no store" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    out = ls("units", "--store", str(empty))
    assert "no units in the store" in out and str(empty.resolve()) in out.replace("\n", "")
    assert "--store" in out and "RLVR_AUDIT_STORE" in out


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/benchmarks is not beside the project")
def test_ls_units_fits_80_columns(tmp_path: Path) -> None:
    (tmp_path / "checkpoints.yaml").write_text(TOY_REGISTRY)
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"toy/base": {}, "toy/rl": {}}))
    store = tmp_path / "store"
    gen = CliRunner().invoke(
        app,
        [
            "generate",
            *("--backend", "scripted", "--model-args", f"script={script}", "--checkpoints", "toy/rl"),
            *("--tasks", "math500", "--limit", "2", "--quiet", "--config-dir", str(ROOT)),
            *("--registry", str(tmp_path / "checkpoints.yaml"), "--data-dir", str(DATA), "--store", str(store)),
        ],
        catch_exceptions=False,
    )
    assert gen.exit_code == 0, gen.output
    units = json.loads(ls("units", "--format", "json", "--store", str(store)))
    out = ls("units", "--store", str(store)).splitlines()
    assert len(units) == 2 and max(len(line) for line in out) <= 80
    assert {line.split()[0] for line in out[2:4]} == {u["unit"] for u in units}  # unit keys shown whole


@pytest.mark.parametrize("width", [40, 60, 80, 100, 160])
def test_fitted_columns_never_exceed_the_width(width: int) -> None:
    rows = [{"id": "x" * 50, "a": "y" * 40, "b": "z", "c": "w" * 12}] * 3
    widths = fitted_columns(rows, "claims", width)
    assert next(iter(widths)) == "id"
    assert sum(widths.values()) + 2 * (len(widths) - 1) <= width
    assert all(w >= 1 for w in widths.values())
