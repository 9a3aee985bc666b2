"""The HTML report: one self-contained page (inline styles, plots as base64 PNGs, no scripts, no
external assets). Every piece of text that comes from status.yaml is escaped."""

from __future__ import annotations

import base64
import functools
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

_CODE = re.compile(r"`([^`]+)`")

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0;
       color: #1d2330; background: #f6f7f9; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; border-bottom: 1px solid #d9dde3; padding-bottom: 4px; }
.sub { color: #5b6473; font-size: 13px; }
table { border-collapse: collapse; background: #fff; font-size: 13px; margin: 6px 0 10px; }
th, td { border: 1px solid #d9dde3; padding: 5px 9px; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.key { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; white-space: nowrap; }
.ok { color: #137333; font-weight: 600; }
.failed { color: #b3261e; font-weight: 600; }
.skipped, .not_run, .reference { color: #6b7280; font-weight: 600; }
.reason { color: #5b6473; font-size: 12px; max-width: 520px; }
.warning { color: #8a5a00; font-size: 12px; max-width: 520px; }
.cards { display: flex; flex-wrap: wrap; gap: 14px; }
.card { background: #fff; border: 1px solid #d9dde3; border-left: 5px solid #137333; border-radius: 6px;
        padding: 12px 16px; min-width: 320px; flex: 1; }
.card.none { border-left-color: #b3261e; }
.card h3 { margin: 0 0 6px; font-size: 14px; color: #5b6473; text-transform: uppercase; letter-spacing: .04em; }
.card p { margin: 0; font-size: 15px; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 14px; }
.plots img { background: #fff; border: 1px solid #d9dde3; width: 100%; height: auto; box-sizing: border-box; }
.note { background: #fff8e1; border: 1px solid #f0d98c; padding: 8px 12px; border-radius: 4px; font-size: 13px; }
ul.failures { color: #b3261e; font-size: 13px; }
details { margin: 8px 0; } summary { cursor: pointer; font-size: 13px; color: #334; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; background: #eef1f5;
       padding: 0 3px; border-radius: 3px; }
.star { color: #b7791f; }
.skew { color: #b3261e; font-weight: 600; }
footer { color: #8a93a3; font-size: 12px; margin-top: 40px; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _prose(text: str) -> str:
    """The report's own sentences: escaped, with `backticks` shown as <code>, never literally."""
    return _CODE.sub(r"<code>\1</code>", _e(text))


def _status_cell(text: str, reason: Optional[str] = None, warnings: Optional[List[str]] = None) -> str:
    css = text if text in ("ok", "failed", "skipped", "not_run", "reference") else "failed"
    cell = f'<span class="{css}">{_e(text)}</span>'
    if reason and text != "ok":
        cell += f'<div class="reason">{_e(reason[:400])}</div>'
    cell += "".join(f'<div class="warning">&#9888; {_e(w[:400])}</div>' for w in warnings or [])
    return cell


def _table(headers: List[str], rows: List[List[str]], numeric: tuple = ()) -> str:
    """`rows` hold cells that are already escaped HTML."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            css = ' class="num"' if i in numeric else (' class="key"' if i == 0 else "")
            cells.append(f"<td{css}>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _deploy(data: ReportData) -> str:
    sentences = pick_sentences(data)
    if not sentences:
        items = "".join(f"<li>{_e(r)}</li>" for r in data.rejected)
        return (
            '<div class="cards"><div class="card none"><h3>Nothing to deploy yet</h3>'
            f"<p>{_prose(no_pick_reason(data))}</p></div></div>" + (f'<ul class="sub">{items}</ul>' if items else "")
        )
    cards = "".join(f'<div class="card"><h3>{_e(h)}</h3><p>{_e(s)}</p></div>' for h, s in sentences)
    notes = []
    if data.verified:
        notes.append(_e("Verified by you: " + ", ".join(f"{p} on {runtime_label(r)}" for p, r in data.verified) + "."))
    notes.append(_prose(SELECTION_NOTE))
    out = f'<div class="cards">{cards}</div><p class="sub">{" ".join(notes)}</p>'
    if data.rejected:
        items = "".join(f"<li>{_e(r)}</li>" for r in data.rejected)
        out += f'<details><summary>Why not the others (lowest latency)</summary><ul class="sub">{items}</ul></details>'
    return out


def _status_section(data: ReportData) -> str:
    rows = []
    for row in data.rows:
        st, reason = row_status(row)
        if row.get("correctness") == "reference":
            errors = '<span class="reference">reference</span>'
        else:
            errors = "<br>".join(f"{_e(n)}: {fmt_error(a)} / {fmt_error(r)}" for n, (a, r) in row["errors"].items())
        p50 = "<br>".join(p50_lines(row, functools.partial(_skew_mark, data, row)))
        thr = "<br>".join(throughput_lines(row))
        picked = data.is_pick(row["path"], row["runtime"])
        star = f' <span class="star" title="recommended">{STAR}</span>' if picked else ""
        rows.append(
            [
                _e(row["path"]) + star,
                _e(runtime_label(row["runtime"])),
                _status_cell(st, reason, row.get("warnings")),
                errors or "-",
                p50 or "-",
                thr or "-",
                "yes" if row["verified"] else "",
            ]
        )
    out = [
        _table(
            list(STATUS_COLUMNS),
            rows,
            numeric=(4, 5),
        )
    ]
    if data.latency_pick is not None:
        star_note = _prose(STAR_NOTE).replace(STAR, f'<span class="star">{STAR}</span>', 1)
        out.append(f'<p class="sub">{star_note}</p>')
    if data.unstable:
        out.append(
            '<p class="sub">~ unstable measurement: the last windows differed more than '
            "<code>stability_percentage</code>.</p>"
        )
    out.append(f'<p class="sub">{_prose(THROUGHPUT_NOTE)}</p>')
    if data.skewed:
        items = "".join(
            f'<li><span class="skew">{SKEW_MARK}</span> {_e(s.path)} on {_e(runtime_label(s.runtime))}, '
            f"batch size {p.batch_size}: {_e('; '.join(flags))}</li>"
            for s, p, flags in data.skewed
        )
        out.append(
            f'<p><b class="failed">Read with care</b>: {len(data.skewed)} measurement(s) with a p99 or mean far '
            f"from p50 (a busy machine, or a runtime with stalls); profile again on a quiet machine.</p>"
            f'<ul class="failures">{items}</ul>'
        )
    for reason, keys in data.skipped:
        out.append(f'<p class="sub"><span class="skipped">Skipped</span> {_e(", ".join(keys))}: {_e(reason)}</p>')
    if data.failures:
        items = "".join(f"<li>{_e(f)}</li>" for f in data.failures)
        out.append(f'<p><b class="failed">{len(data.failures)} failure(s)</b></p><ul class="failures">{items}</ul>')
    return "\n".join(out)


def _skew_mark(data: ReportData, row: Dict, batch_size: int) -> str:
    """' !' after a status-table figure whose measurement has a p99 or mean far from its p50."""
    point = data.point(row["path"], row["runtime"], batch_size)
    return f' <span class="skew">{SKEW_MARK}</span>' if point is not None and skew_flags(point) else ""


def _performance_section(data: ReportData, plots: Optional[Dict[str, bytes]]) -> str:
    if not data.has_performance:
        return f'<p class="note">{_prose(no_pick_reason(data))}</p>'
    out = []
    if plots is None:
        out.append("<p class=\"note\">Plots need matplotlib: pip install 'model-navigator[report]'.</p>")
    else:
        images = []
        for name, (title, _) in PLOTS.items():
            encoded = base64.b64encode(plots[name]).decode("ascii")
            images.append(f'<img id="plot-{name}" alt="{_e(title)}" src="data:image/png;base64,{encoded}">')
        out.append(f'<div class="plots">{"".join(images)}</div>')
    rows = []
    mark = f' <span class="skew">{SKEW_MARK}</span>'
    for s in data.series:
        for p in s.points:
            tail = mark if heavy_tail(p) else ""
            mean = mark if mean_off(p) else ""
            rows.append(
                [
                    _e(s.path),
                    _e(runtime_label(s.runtime)),
                    str(p.batch_size),
                    fmt_ms(p.p50_ms),
                    fmt_ms(p.p90_ms),
                    fmt_ms(p.p95_ms),
                    fmt_ms(p.p99_ms) + tail,
                    f"{fmt_ms(p.mean_ms)} ± {fmt_ms(p.std_ms)}{mean}",
                    fmt_throughput(p.throughput),
                    str(p.windows),
                    "yes" if p.stable else "no",
                ]
            )
    table = _table(
        list(MEASUREMENT_COLUMNS),
        rows,
        numeric=tuple(range(2, 10)),
    )
    out.append(
        f"<details open><summary>All measurements</summary>{table}"
        f'<p class="sub">{_prose(THROUGHPUT_NOTE)}</p></details>'
    )
    return "\n".join(out)


def _correctness_section(data: ReportData) -> str:
    if not data.correctness:
        return '<p class="sub">No exported path was checked.</p>'
    rows = []
    for c in data.correctness:
        rows.append(
            [
                _e(c.path),
                _e(runtime_label(c.runtime)),
                _e(c.output or "-"),
                _status_cell(c.status, c.reason),
                fmt_error(c.max_abs_error),
                fmt_error(c.max_rel_error),
                _e(fmt_tolerance(c.atol, c.rtol, c.tolerance, c.measures)),
                _e(", ".join(str(b) for b in c.batch_sizes) or "-"),
                str(c.sample_count),
            ]
        )
    return _table(
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
    ) + (
        '<p class="sub">Errors against the source model on the saved correctness samples: max |a - b| and '
        "max |a - b| / |b| (b = source output, b = 0 ignored).</p>"
    )


def _model_section(data: ReportData) -> str:
    status = data.status
    rows = [[_e(m.name), "input", _e(fmt_shape(m.shape)), _e(m.dtype)] for m in status.inputs]
    rows += [[_e(m.name), "output", _e(fmt_shape(m.shape)), _e(m.dtype)] for m in status.outputs]
    return _table(["Name", "Kind", "Shape (? = dynamic)", "Dtype"], rows)


def _environment_section(data: ReportData) -> str:
    status = data.status
    env = dict(status.environment or {})
    packages = env.pop("packages", None) or {}
    rows = [[_e(k), _e(v)] for k, v in env.items() if v is not None]
    rows += [[_e(k), _e(v)] for k, v in packages.items()]
    from model_navigator.core.serialization import to_plain

    config = status.config
    for key in ("target_formats", "opset", "batch_dim", "sample_count", "atol", "rtol", "target_device"):
        rows.append([_e(f"config.{key}"), _e(to_plain(getattr(config, key)))])
    profiler = config.profiler_config.to_dict()
    if profiler:
        rows.append(["config.profiler_config", _e(", ".join(f"{k}={v}" for k, v in profiler.items() if v is not None))])
    if status.git:
        rows.append(["git", _e(", ".join(f"{k}={v}" for k, v in status.git.items()))])
    return _table(["Item", "Value"], rows)


def render_html(data: ReportData, plots: Optional[Dict[str, bytes]]) -> str:
    """The whole page. `plots`: {"latency": png, "throughput": png}, {} (nothing profiled) or None
    (matplotlib missing)."""
    status = data.status
    verdict = (
        f'<span class="failed">{len(data.failures)} failure(s)</span>'
        if data.failures
        else '<span class="ok">no failures</span>'
    )
    sections = [
        ("deploy", "Which format to deploy", _deploy(data)),
        ("status", "Status", _status_section(data)),
        ("performance", "Latency and throughput", _performance_section(data, plots)),
        ("correctness", "Correctness per output", _correctness_section(data)),
        ("model", "Inputs and outputs", _model_section(data)),
        ("environment", "Environment and configuration", _environment_section(data)),
    ]
    body = "\n".join(
        f'<section id="{sid}"><h2>{_e(title)}</h2>\n{content}\n</section>' for sid, title, content in sections
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(data.title)}: model-navigator report</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>{_e(status.model_name)}</h1>
<div class="sub">model-navigator {_e(status.navigator_version)} report &middot; framework {_e(status.framework)}
&middot; created {_e(status.created_at)} &middot; {verdict}</div>
{body}
<footer>Generated by model-navigator from status.yaml (format_version {_e(status.format_version)}).</footer>
</main>
</body>
</html>
"""
