"""Reports of a package or workspace: a self-contained HTML page and its Markdown twin, with the
status table, correctness per output and latency/throughput plots against batch size.

    from model_navigator.report import write_report
    write_report("model.nav", "model_report")   # or a workspace folder, or a PackageDescriptor

`model-navigator report PACKAGE_OR_WORKDIR -o DIR` is the same call. Plots need matplotlib
(`pip install 'model-navigator[report]'`); without it the pages are written without plots and a
warning says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Union

from model_navigator.report.data import ReportData, build_report_data, load_status

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"


@dataclass
class ReportFiles:
    """What write_report wrote, and the failures the report lists."""

    html: Path
    markdown: Path
    images: Dict[str, Path] = field(default_factory=dict)
    failures: List[str] = field(default_factory=list)
    plots_missing: bool = False  # profiling results exist but matplotlib is not installed


def _write_atomic(path: Path, data: bytes) -> None:
    """Write then rename (a reader never sees half a page); the file gets the umask's permissions."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_report(source: Union[Any, str, Path], output_dir: Union[str, Path]) -> ReportFiles:
    """Write report.html (self-contained: plots embedded as PNG data) and report.md with
    latency.png and throughput.png beside it into `output_dir` (created if needed; these files are
    replaced, nothing else in it is touched). `source`: a PackageDescriptor, a NavigatorStatus, a
    .nav package (validated, read without unpacking) or a workspace folder (locked meanwhile: not
    read while another process writes it)."""
    from model_navigator.core.workdir_lock import source_lock

    with source_lock(source, "report"):
        return _write_report(source, output_dir)


def _write_report(source: Union[Any, str, Path], output_dir: Union[str, Path]) -> ReportFiles:
    from model_navigator.core.errors import UserInputError
    from model_navigator.core.logging import LOGGER
    from model_navigator.report.html import render_html
    from model_navigator.report.markdown import render_markdown
    from model_navigator.report.plots import PLOTS, render_plots

    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"report output {str(out)!r} exists and is not a folder.")
    data = build_report_data(source)  # reads and validates before anything is written
    plots = render_plots(data)
    out.mkdir(parents=True, exist_ok=True)
    images: Dict[str, Path] = {}
    for name in PLOTS:
        target = out / f"{name}.png"
        if plots and name in plots:
            _write_atomic(target, plots[name])
            images[name] = target
        elif target.is_file():  # a stale plot of an earlier report must not pass for this one
            target.unlink()
    html_file, md_file = out / HTML_FILE, out / MARKDOWN_FILE
    _write_atomic(html_file, render_html(data, plots).encode("utf-8"))
    _write_atomic(
        md_file,
        render_markdown(data, None if plots is None else {n: p.name for n, p in images.items()}).encode("utf-8"),
    )
    if plots is None:
        LOGGER.warning("matplotlib is not installed: the report has no plots (pip install 'model-navigator[report]')")
    return ReportFiles(
        html=html_file, markdown=md_file, images=images, failures=list(data.failures), plots_missing=plots is None
    )


__all__ = [
    "HTML_FILE",
    "MARKDOWN_FILE",
    "ReportData",
    "ReportFiles",
    "build_report_data",
    "load_status",
    "write_report",
]
