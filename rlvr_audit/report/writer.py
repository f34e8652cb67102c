"""Write a report folder from a :class:`~rlvr_audit.core.section.Document`, from nothing else.

Writes::

    index.md          every section, rendered by :mod:`rlvr_audit.report.markdown`
    tables/*.csv      every section's machine-readable tables (and the document's), without index
    figures/*.png     every section's figures, each drawn by its own function
    index.html        the same sections, self-contained (figures embedded, sortable tables; see
                      :mod:`rlvr_audit.report.html`), linking the per-sample browser
    samples/<unit>/   the per-sample browser (see :mod:`rlvr_audit.report.browser`), when asked

What the sections hold is decided by the analyses and assembled by :mod:`rlvr_audit.api`; the
tables and sections of a full report are listed in the README. Files are written to a
temporary folder and moved into place, so a failed report never leaves a half-written one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core.section import Document
from ..core.ui import make_progress
from .browser import BrowserSource, browser_section, write_browser
from .html import HtmlOptions, render_report
from .markdown import render_document

__all__ = ["ReportPaths", "building_report_dir", "write_html", "write_report"]


@dataclass
class ReportPaths:
    """Where a report was written."""

    root: Path
    """The report folder."""
    index_md: Path
    """The Markdown report."""
    tables: list[Path]
    """The CSV tables, in the order the sections hold them."""


def write_report(
    doc: Document, out_dir: Path, *, html: HtmlOptions | None = None, browser: BrowserSource | None = None
) -> ReportPaths:
    """Write the report folder atomically (build in a temporary folder, then replace): every
    section's tables and figures, ``index.md``, then ``index.html`` rendered from it and, with
    ``browser`` (and ``html.browser``), the per-sample browser."""
    out_dir = Path(out_dir)
    tables = {**{name: frame for s in doc.sections for name, frame in s.tables.items()}, **doc.tables}
    with building_report_dir(out_dir) as tmp:
        (tmp / "tables").mkdir()
        for file_name, frame in tables.items():
            frame.to_csv(tmp / "tables" / file_name, index=False)
        for section in doc.sections:
            for figure in section.figures:
                (tmp / "figures").mkdir(exist_ok=True)
                figure.draw(tmp / "figures" / figure.file)
        (tmp / "index.md").write_text(render_document(doc), encoding="utf-8")
        write_html(tmp, browser=browser, options=html)
    return ReportPaths(root=out_dir, index_md=out_dir / "index.md", tables=[out_dir / "tables" / n for n in tables])


def write_html(report_dir: Path, *, browser: BrowserSource | None = None, options: HtmlOptions | None = None) -> Path:
    """Write ``report_dir/index.html`` from ``report_dir/index.md`` (and, with ``browser`` and
    ``options.browser``, the per-sample browser under ``report_dir/samples/``, linked from the
    report). Returns the path of ``index.html``.

    Meant to run inside the report's temporary build folder (see :func:`building_report_dir`),
    after ``index.md`` and the figures are written. Raises
    :class:`~rlvr_audit.core.errors.UsageError` for a bad page size, FileNotFoundError when
    ``index.md`` is missing.
    """
    options = options or HtmlOptions()
    options.check()
    report_dir = Path(report_dir)
    markdown_text = (report_dir / "index.md").read_text(encoding="utf-8")
    section = ""
    if options.browser and browser is not None:
        with make_progress(options.progress) as progress:
            units = write_browser(
                browser.store,
                browser.results,
                report_dir / "samples",
                page_size=options.page_size,
                progress=progress,
                grader_version=browser.grader_version,
                is_code=browser.is_code,
            )
        section = browser_section(units)
    out = report_dir / "index.html"
    out.write_text(render_report(markdown_text, root=report_dir, extra_section=section), encoding="utf-8")
    return out


def _remove_stale_builds(out_dir: Path) -> None:
    """Delete the temporary folders of builds of ``out_dir`` whose process is gone (a report
    killed while being written leaves ``.<name>.build-<pid>-*``; a live process's is kept)."""
    for path in out_dir.parent.glob(f".{out_dir.name}.build-*-*"):
        pid = path.name[len(out_dir.name) + len(".build-") + 1 :].split("-", 1)[0]
        if not pid.isdigit() or not path.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive but not ours to signal (another user's process): leave it
            continue


@contextmanager
def building_report_dir(out_dir: Path) -> Iterator[Path]:
    """Build a report folder atomically: yields an empty temporary sibling folder to write into;
    on success it replaces ``out_dir`` (the old one is removed only after the new one is in
    place), on any error it is deleted and ``out_dir`` is left as it was."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(out_dir)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.build-{os.getpid()}-"))
    try:
        yield tmp
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
