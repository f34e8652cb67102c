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

Only a missing or empty folder, or an earlier report (a folder carrying :data:`REPORT_MARKER`),
is ever replaced, and never one that is or holds the store, the configuration or the current
directory (:func:`check_report_target`); a report name is one folder name
(:func:`check_report_name`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..core.errors import UsageError
from ..core.section import Document
from ..core.ui import make_progress
from .browser import BrowserSource, browser_section, write_browser
from .html import HtmlOptions, render_report
from .markdown import render_document

__all__ = [
    "REPORT_MARKER",
    "ReportPaths",
    "building_report_dir",
    "check_report_name",
    "check_report_target",
    "write_html",
    "write_report",
]


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
    doc: Document,
    out_dir: Path,
    *,
    html: HtmlOptions | None = None,
    browser: BrowserSource | None = None,
    protected: Sequence[tuple[str, Path]] = (),
) -> ReportPaths:
    """Write the report folder atomically (build in a temporary folder, then replace): every
    section's tables and figures, ``index.md``, then ``index.html`` rendered from it and, with
    ``browser`` (and ``html.browser``), the per-sample browser. ``protected``: ``(what, path)``
    pairs the report folder must not be or contain (the store), see :func:`check_report_target`."""
    out_dir = Path(out_dir)
    tables = {**{name: frame for s in doc.sections for name, frame in s.tables.items()}, **doc.tables}
    with building_report_dir(out_dir, protected=protected) as tmp:
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
                units=options.units,
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


REPORT_MARKER = ".rlvr-audit-report"
"""File rlvr-audit writes into every report folder it builds. An existing folder is replaced
only when it carries this marker (see :func:`check_report_target`)."""


def check_report_name(name: str) -> None:
    """Refuse a report name that is not one safe path component (``reports/<name>``): empty,
    ``.``, ``..``, or containing a path separator or NUL would put the report elsewhere, or
    make it replace other reports."""
    bad = (
        "it is empty"
        if not name.strip()
        else "it is '.' or '..'"
        if name.strip() in {".", ".."}
        else "it contains a path separator"
        if "/" in name or "\\" in name or os.sep in name
        else "it contains a NUL byte"
        if "\0" in name
        else ""
    )
    if bad:
        raise UsageError(
            f"--name {name!r} is not a valid report name ({bad}): give one folder name such as 'qwen-math'; "
            "use --report-dir to write the report elsewhere"
        )


def _contains(outer: Path, inner: Path) -> bool:
    """Whether ``inner`` is ``outer`` or lies inside it (both resolved)."""
    return inner == outer or outer in inner.parents


def check_report_target(out_dir: Path, *, protected: Sequence[tuple[str, Path]] = ()) -> None:
    """Refuse to build a report in ``out_dir`` when that would destroy anything but an earlier
    rlvr-audit report.

    ``out_dir`` may be missing, an empty folder, or a folder carrying :data:`REPORT_MARKER`.
    Anything else is refused with one line: a file or link, a folder without the marker (a
    store, a checkout, someone's data, a folder of other reports), and any folder that is or
    contains one of ``protected`` (``(what, path)`` pairs such as the store root and the current
    directory), marker or not."""
    out_dir = Path(out_dir)
    resolved = out_dir.resolve()
    for what, path in protected:
        if _contains(resolved, Path(path).resolve()):
            raise UsageError(
                f"refusing to write the report into {out_dir}: it is or contains {what} {path}; "
                "choose another --name or --report-dir"
            )
    if out_dir.is_symlink():
        raise UsageError(f"refusing to replace {out_dir}: it is a symbolic link; choose another --name or --report-dir")
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UsageError(f"refusing to replace {out_dir}: it is a file, not a report folder")
    marker = out_dir / REPORT_MARKER
    if marker.is_file() and not marker.is_symlink():
        return
    entries = [p.name for p in out_dir.iterdir()]
    if not entries:
        return
    looks = (
        "a git checkout"
        if ".git" in entries
        else "a store"
        if "units" in entries or "runs" in entries
        else "a folder of reports"
        if any((out_dir / e / REPORT_MARKER).is_file() for e in entries)
        else "a non-empty folder"
    )
    raise UsageError(
        f"refusing to replace {out_dir}: it is {looks} that rlvr-audit did not write (no {REPORT_MARKER} "
        "marker); choose another --name or --report-dir, or remove it yourself"
    )


def _write_marker(folder: Path) -> None:
    try:
        version = metadata.version("rlvr-audit")
    except metadata.PackageNotFoundError:  # running from a source tree
        version = "unknown"
    (folder / REPORT_MARKER).write_text(
        "This folder is a report written by rlvr-audit " + version + ". rlvr-audit replaces a report\n"
        "folder only when it holds this file; do not put anything else here.\n",
        encoding="utf-8",
    )


@contextmanager
def building_report_dir(out_dir: Path, *, protected: Sequence[tuple[str, Path]] = ()) -> Iterator[Path]:
    """Build a report folder atomically: yields an empty temporary sibling folder to write into;
    on success it replaces ``out_dir`` (the old one is removed only after the new one is in
    place), on any error it is deleted and ``out_dir`` is left as it was.

    ``out_dir`` is checked first (:func:`check_report_target`, with the current directory added
    to ``protected``): only a missing or empty folder or an earlier rlvr-audit report is ever
    replaced. The new folder carries :data:`REPORT_MARKER`."""
    out_dir = Path(out_dir)
    check_report_target(out_dir, protected=[*protected, ("the current directory", Path.cwd())])
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(out_dir)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.build-{os.getpid()}-"))
    _follow_umask(tmp)
    try:
        yield tmp
        _write_marker(tmp)
        check_report_target(out_dir, protected=[*protected, ("the current directory", Path.cwd())])
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old-{os.getpid()}-"))
            old.rmdir()
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _follow_umask(folder: Path) -> None:
    """``mkdtemp`` creates mode 0700; a report is shared like any folder the user makes, so give
    it the mode ``mkdir`` would (0777 minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    folder.chmod(0o777 & ~mask)
