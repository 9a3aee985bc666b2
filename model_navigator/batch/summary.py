"""The batch's one summary: OUT/summary.json, a terminal table, and OUT/index.html linking each job's report."""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from model_navigator.batch.worker import write_json

SUMMARY_FILE = "summary.json"
INDEX_FILE = "index.html"
COLUMNS = ("job", "kind", "status", "best path and runtime", "p50 ms", "samples/s", "speedup", "wall s", "node")


def _num(value: Optional[float], digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def row_cells(r: Dict[str, Any]) -> List[str]:
    """A run's cells, in COLUMNS order (p50 and throughput of the best path at its batch size, 1 when profiled)."""
    best = r.get("best") or {}
    where = f"{best['path']} on {best['runtime']}" if best else (r.get("no_best") or "-")
    if best and best.get("batch_size", 1) != 1:
        where += f" (batch {best['batch_size']})"
    status = r.get("status", "?") + (" (done before)" if r.get("reused") else "")
    speedup = r.get("speedup")
    return [
        r.get("name", r["run_id"]),
        r.get("kind") or "-",
        status,
        where,
        _num(best.get("p50_ms"), 3),
        _num(best.get("throughput"), 0),
        "-" if speedup is None else f"{speedup:.2f}x",
        _num(r.get("wall_s"), 1),
        str(r.get("node") or "-"),
    ]


def comparisons(records: List[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """Jobs run on several kinds of machine: per kind, its correctness, best path, p50 and throughput."""
    by_job: Dict[str, List[Dict[str, Any]]] = {}
    for r in records:
        by_job.setdefault(r["name"], []).append(r)
    return {
        name: [
            {
                "kind": r.get("kind"),
                "status": r.get("status"),
                "correct": r.get("correct", []),
                "failures": r.get("failures", []),
                "best": r.get("best"),
                "paths": r.get("paths", {}),
                "node": r.get("node"),
            }
            for r in rs
        ]
        for name, rs in by_job.items()
        if len(rs) > 1
    }


def _side_cell(entry: Optional[Dict[str, Any]]) -> str:
    if entry is None:
        return "-"
    text = str(entry.get("correctness"))
    if entry.get("p50_ms") is not None:
        text += f", p50 {entry['p50_ms']:.3f} ms, {entry['throughput']:.0f}/s"
        if entry.get("batch_size", 1) != 1:
            text += f" (batch {entry['batch_size']})"
    return text


def side_by_side(entries: List[Dict[str, Any]]) -> Tuple[List[str], List[List[str]]]:
    """One compared job as a table: a row per path and runtime, a column per kind (its correctness,
    p50 and throughput there), then the best path of each kind and the run's status."""
    keys: List[str] = []
    for entry in entries:
        keys += [k for k in entry.get("paths", {}) if k not in keys]
    rows = [[key] + [_side_cell(e.get("paths", {}).get(key)) for e in entries] for key in keys]
    best = [f"{b['path']} on {b['runtime']}" if (b := e.get("best")) else "-" for e in entries]
    rows.append(["best path and runtime"] + best)
    rows.append(["status"] + [str(e.get("status")) for e in entries])
    return ["path and runtime"] + [str(e.get("kind")) for e in entries], rows


def write_summary(out: Path, records: List[Dict[str, Any]], meta: Dict[str, Any]) -> Dict[str, Any]:
    counts: Dict[str, int] = {}
    for r in records:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    summary = {**meta, "counts": counts, "jobs": records, "comparisons": comparisons(records)}
    write_json(out / SUMMARY_FILE, summary)
    (out / INDEX_FILE).write_text(render_index(summary), encoding="utf-8")
    return summary


def render_index(summary: Dict[str, Any]) -> str:
    """A static page: the table, each job's report and package linked, the reason of each failure."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS) + "<th>files</th><th>reason</th>"
    rows = []
    for r in summary["jobs"]:
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in row_cells(r))
        base = f"jobs/{r['run_id']}/"
        links = [
            f'<a href="{html.escape(base + r[k])}">{label}</a>'
            for k, label in (("report", "report"), ("package", ".nav"))
            if r.get(k)
        ]
        links.append(f'<a href="{html.escape(base)}job.log">log</a>')
        rows.append(
            f'<tr class="{html.escape(r.get("status", ""))}">{cells}<td>{" ".join(links)}</td>'
            f"<td>{html.escape(r.get('reason') or '')}</td></tr>"
        )
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary["counts"].items()))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>model-navigator batch</title><style>"
        "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px}"
        "tr.failed td{background:#fdd}tr.cancelled td{background:#eee}</style></head><body>"
        f"<h1>model-navigator batch</h1><p>{html.escape(counts)}; runner: {html.escape(str(summary.get('runner')))}"
        f"</p><table><tr>{head}</tr>{''.join(rows)}</table>{_comparisons_html(summary)}</body></html>\n"
    )


def _comparisons_html(summary: Dict[str, Any]) -> str:
    """Each job run on several kinds of machine, side by side (side_by_side's table)."""
    parts = []
    for name, entries in summary.get("comparisons", {}).items():
        columns, rows = side_by_side(entries)
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        parts.append(f"<h2>{html.escape(name)}: side by side</h2><table><tr>{head}</tr>{body}</table>")
    return "".join(parts)


def print_table(records: List[Dict[str, Any]], file: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*COLUMNS, title="model-navigator batch")
    for r in records:
        style = {"failed": "red", "cancelled": "yellow"}.get(r.get("status", ""))
        table.add_row(*row_cells(r), style=style)
    console = Console(file=file or sys.stdout, highlight=False, width=None if (file or sys.stdout).isatty() else 200)
    console.print(table)
    for r in records:
        if r.get("status") != "ok" and r.get("reason"):
            console.print(f"{r['run_id']}: {r['status']}: {r['reason']}", markup=False, highlight=False)
    for name, entries in comparisons(records).items():
        columns, rows = side_by_side(entries)
        side = Table(*columns, title=f"{name}: side by side")
        for row in rows:
            side.add_row(*row)
        console.print(side)
