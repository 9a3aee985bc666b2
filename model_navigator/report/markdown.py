"""The Markdown twin of the HTML report; its plots are PNG files written beside it."""

from __future__ import annotations

import html
import re
from typing import Dict, List, Optional

from model_navigator.report.data import (
    MEASUREMENT_COLUMNS,
    STATUS_COLUMNS,
    SELECTION_NOTE,
    SKEW_MARK,
    STAR,
    STAR_NOTE,
    THROUGHPUT_NOTE,
    ReportData,
    fmt_error,
    fmt_ms,
    fmt_shape,
    fmt_throughput,
    fmt_tolerance,
    heavy_tail,
    mean_off,
    no_pick_reason,
    p50_lines,
    pick_sentences,
    row_status,
    runtime_label,
    skew_flags,
    throughput_lines,
)
from model_navigator.report.plots import PLOTS

_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md(value: object) -> str:
    """Text from status.yaml as inert Markdown: HTML escaped, Markdown punctuation and table pipes
    backslashed, on one line."""
    text = " ".join(str("" if value is None else value).split())
    return _SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def prose(text: str) -> str:
    """The report's own sentences: `backticks` kept as code spans, the rest escaped like md()."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code at all
        return md(text)

    def escaped(part: str) -> str:  # md() trims; the spaces around a code span stay
        return (" " if part[:1].isspace() else "") + md(part) + (" " if part[-1:].isspace() else "")

    return "".join(f"`{part}`" if i % 2 else escaped(part) for i, part in enumerate(parts))


def _table(headers: List[str], rows: List[List[str]], numeric: tuple = ()) -> str:
    """`rows` hold cells that are already escaped Markdown."""
    align = ["---:" if i in numeric else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _skew_mark(data: ReportData, row: dict, batch_size: int) -> str:
    """' !' after a status-table figure whose measurement has a p99 or mean far from its p50."""
    point = data.point(row["path"], row["runtime"], batch_size)
    return f" {SKEW_MARK}" if point is not None and skew_flags(point) else ""


def _header(data: ReportData) -> List[str]:
    """The title and the line naming the version, framework, date and failure count."""
    status = data.status
    return [
        f"# {md(status.model_name)}",
        "",
        f"model-navigator {md(status.navigator_version)} report · framework {md(status.framework)} · "
        f"created {md(status.created_at)} · "
        + (f"**{len(data.failures)} failure(s)**" if data.failures else "no failures"),
        "",
    ]


def _pick_section(data: ReportData) -> List[str]:
    """'Which format to deploy': the picks and why the others lost, or why nothing was picked."""
    out = ["## Which format to deploy", ""]
    sentences = pick_sentences(data)
    if sentences:
        out += [f"- **{md(h)}**: {md(s)}" for h, s in sentences]
        if data.verified:
            out.append("- Verified by you: " + md(", ".join(f"{p} on {runtime_label(r)}" for p, r in data.verified)))
        out += ["", prose(SELECTION_NOTE), ""]
        if data.rejected:
            out += ["Why not the others (lowest latency):", ""] + [f"- {md(r)}" for r in data.rejected] + [""]
    else:
        out += [prose(no_pick_reason(data)), ""] + [f"- {md(r)}" for r in data.rejected] + [""]
    return out


def _status_row(data: ReportData, row: dict) -> List[str]:
    """One path and runtime of the status table: its status and warnings, errors, p50s and throughputs."""
    st, reason = row_status(row)
    status_text = md(st) if st == "ok" or not reason else f"**{md(st)}**: {md(reason[:400])}"
    status_text += "".join(f"<br>⚠ {md(w[:400])}" for w in row.get("warnings", []))
    if row.get("correctness") == "reference":
        errors = "reference"
    else:
        errors = "<br>".join(f"{md(n)}: {fmt_error(a)} / {fmt_error(r)}" for n, (a, r) in row["errors"].items())
    p50 = "<br>".join(p50_lines(row, lambda batch: _skew_mark(data, row, batch)))
    thr = "<br>".join(throughput_lines(row))
    star = f" {STAR}" if data.is_pick(row["path"], row["runtime"]) else ""
    return [
        md(row["path"]) + star,
        md(runtime_label(row["runtime"])),
        status_text,
        errors or "-",
        p50 or "-",
        thr or "-",
        "yes" if row["verified"] else "",
    ]


def _status_notes(data: ReportData) -> List[str]:
    """The notes under the status table: the star, unstable and skewed measurements, skipped paths, failures."""
    out: List[str] = []
    if data.latency_pick is not None:
        out += [prose(STAR_NOTE), ""]
    if data.unstable:
        out += ["~ unstable measurement: the last windows differed more than `stability_percentage`.", ""]
    out += [prose(THROUGHPUT_NOTE), ""]
    if data.skewed:
        out += [
            f"**Read with care**: {len(data.skewed)} measurement(s) with a p99 or mean far from p50 (a busy "
            f"machine, or a runtime with stalls); profile again on a quiet machine.",
            "",
        ]
        out += [
            f"- {SKEW_MARK} {md(s.path)} on {md(runtime_label(s.runtime))}, batch size {p.batch_size}: "
            f"{md('; '.join(flags))}"
            for s, p, flags in data.skewed
        ] + [""]
    for reason, keys in data.skipped:
        out += [f"Skipped {md(', '.join(keys))}: {md(reason)}", ""]
    if data.failures:
        out += [f"**{len(data.failures)} failure(s)**", ""] + [f"- {md(f)}" for f in data.failures] + [""]
    return out


def _status_section(data: ReportData) -> List[str]:
    """'Status': one row per path and runtime, then its notes."""
    rows = [_status_row(data, row) for row in data.rows]
    return [
        "## Status",
        "",
        _table(
            list(STATUS_COLUMNS),
            rows,
            numeric=(4, 5),
        ),
        "",
    ] + _status_notes(data)


def _performance_section(data: ReportData, images: Optional[Dict[str, str]]) -> List[str]:
    """'Latency and throughput': the plots (or why not) and every profiled point."""
    out = ["## Latency and throughput", ""]
    if not data.has_performance:
        return out + [prose(no_pick_reason(data)), ""]
    if images is None:
        out += ["Plots need matplotlib: pip install 'model-navigator\\[report\\]'.", ""]
    else:
        out += [f"![{md(title)}]({images[name]})" for name, (title, _) in PLOTS.items()] + [""]
    mark = f" {SKEW_MARK}"
    rows = [
        [
            md(s.path),
            md(runtime_label(s.runtime)),
            str(p.batch_size),
            fmt_ms(p.p50_ms),
            fmt_ms(p.p90_ms),
            fmt_ms(p.p95_ms),
            fmt_ms(p.p99_ms) + (mark if heavy_tail(p) else ""),
            f"{fmt_ms(p.mean_ms)} ± {fmt_ms(p.std_ms)}" + (mark if mean_off(p) else ""),
            fmt_throughput(p.throughput),
            str(p.windows),
            "yes" if p.stable else "no",
        ]
        for s in data.series
        for p in s.points
    ]
    return out + [
        _table(
            list(MEASUREMENT_COLUMNS),
            rows,
            numeric=tuple(range(2, 10)),
        ),
        "",
        prose(THROUGHPUT_NOTE),
        "",
    ]


def _correctness_section(data: ReportData) -> List[str]:
    """'Correctness per output': errors against tolerance per path, runtime and output."""
    out = ["## Correctness per output", ""]
    if not data.correctness:
        return out + ["No exported path was checked.", ""]
    rows = [
        [
            md(c.path),
            md(runtime_label(c.runtime)),
            md(c.output or "-"),
            md(c.status) if c.status == "ok" or not c.reason else f"**{md(c.status)}**: {md(c.reason[:400])}",
            fmt_error(c.max_abs_error),
            fmt_error(c.max_rel_error),
            md(fmt_tolerance(c.atol, c.rtol, c.tolerance, c.measures)),
            md(", ".join(str(b) for b in c.batch_sizes) or "-"),
            str(c.sample_count),
        ]
        for c in data.correctness
    ]
    return out + [
        _table(
            [
                "Path",
                "Runtime",
                "Output",
                "Status",
                "Max abs error",
                "Max rel error",
                "Tolerance",
                "Batch sizes",
                "Samples",
            ],
            rows,
            numeric=(4, 5, 8),
        ),
        "",
    ]


def _model_sections(data: ReportData) -> List[str]:
    """'Inputs and outputs' and 'Environment': the model's tensors and where it was run."""
    status = data.status
    rows = [
        [md(m.name), kind, md(fmt_shape(m.shape)), md(m.dtype)]
        for kind, items in (("input", status.inputs), ("output", status.outputs))
        for m in items
    ]
    out = ["## Inputs and outputs", "", _table(["Name", "Kind", "Shape (? = dynamic)", "Dtype"], rows), ""]
    env = dict(status.environment or {})
    packages = env.pop("packages", None) or {}
    rows = [[md(k), md(v)] for k, v in list(env.items()) + list(packages.items()) if v is not None]
    return out + ["## Environment", "", _table(["Item", "Value"], rows), ""]


def render_markdown(data: ReportData, images: Optional[Dict[str, str]]) -> str:
    """The Markdown page. `images`: plot name -> file name beside the page ({} when nothing was
    profiled, None when matplotlib is missing)."""
    out = (
        _header(data)
        + _pick_section(data)
        + _status_section(data)
        + _performance_section(data, images)
        + _correctness_section(data)
        + _model_sections(data)
    )
    return "\n".join(out)
