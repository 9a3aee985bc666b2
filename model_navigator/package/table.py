"""The status table printed after export and load and by `model-navigator inspect`, and the
verdict on a status (find_failures), shared by the CLI and the report."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from model_navigator.core.enums import StepStatus
from model_navigator.core.formats import GPU_FORMATS
from model_navigator.core.runs import unfinished_runs
from model_navigator.core.status import NavigatorStatus
from model_navigator.steps.base import headline


def status_rows(status: NavigatorStatus) -> List[Dict[str, Any]]:
    """One row per path and runtime (one per path when it has no runtime results)."""
    rows: List[Dict[str, Any]] = []
    for key, path in status.paths.items():
        base = {
            "path": key,
            "format": path.format.value,
            "status": path.status.value,
            "reason": path.reason,
            "precision": path.precision.value if path.precision else None,
        }
        if not path.runtimes:
            rows.append(
                {
                    **base,
                    "runtime": None,
                    "outcome": path.outcome(),
                    "correctness": None,
                    "errors": {},
                    "performance": [],
                    "verified": False,
                    "warnings": list(path.warnings),
                }
            )
            continue
        for runtime, result in path.runtimes.items():
            corr = result.correctness
            perf = result.performance
            rows.append(
                {
                    **base,
                    "runtime": runtime.value,
                    "outcome": path.outcome(runtime),
                    "correctness": "reference" if path.is_reference(runtime) else (corr.status.value if corr else None),
                    "correctness_reason": corr.reason if corr else None,
                    "errors": {
                        n: [e.max_abs_error, e.max_rel_error] for n, e in (corr.per_output if corr else {}).items()
                    },
                    # reduced precision: the whole-output measures its budget judged (core/budget.py)
                    "measures": {
                        n: {"rel_l2": e.rel_l2, "cosine": e.cosine, "top1": e.top1}
                        for n, e in (corr.per_output if corr else {}).items()
                        if e.rel_l2 is not None
                    },
                    "performance": [
                        {
                            "batch_size": r.batch_size,
                            "p50_ms": r.p50_ms,
                            "p99_ms": r.p99_ms,
                            "throughput": r.throughput,
                            "stable": r.stable,
                        }
                        for r in (perf.results if perf else [])
                    ],
                    "performance_status": perf.status.value if perf else None,
                    "verified": result.is_verified,
                    "tolerance": corr.tolerance if corr else None,
                    "warnings": list(path.warnings) + list(corr.warnings if corr else []),
                }
            )
    return rows


def find_failures(status: NavigatorStatus, keys: Optional[List[str]] = None) -> List[str]:
    """Why the status is not all ok: one line per failed path, correctness check or profiling run.

    Skipped paths (not available here) are not failures. A path that never ran (not_run, e.g.
    interrupted) is one, and so is a recorded run that did not finish (killed, interrupted).
    """
    failures = unfinished_runs(status) if keys is None else []
    for key, path in status.paths.items():
        if keys is not None and key not in keys:
            continue
        if path.status == StepStatus.SKIPPED:
            continue
        if not path.ok:
            failures.append(f"{key}: {path.status.value}" + (f" ({headline(path.reason, 300)})" if path.reason else ""))
        failures += path.runtime_failures()
    return failures


def _gpu_only(status: NavigatorStatus, key: str) -> bool:
    """A skipped path of the TensorRT family (skipped runtimes, "path on X", keep their own line)."""
    path = status.paths.get(key)
    return path is not None and path.format in GPU_FORMATS


def tolerances_text(labels: List[str]) -> str:
    """The tolerances used, in one line: "the default fp32 tolerance (atol=0.0001, rtol=0.001), user's"."""
    from model_navigator.core.budget import describe_budget
    from model_navigator.core.tolerance import DEFAULT_TOLERANCES, describe

    parts = []
    for label in labels:
        name = label.partition("default ")[2]
        if label.endswith(" budget") or label.startswith("task metric"):
            parts.append(describe_budget(label))
        else:
            parts.append(
                f"the default {name} tolerance ({describe(DEFAULT_TOLERANCES[name])})"
                if name in DEFAULT_TOLERANCES
                else "your atol/rtol"
            )
    return ", ".join(parts)


def print_status_table(status: NavigatorStatus, console: Any = None, best: Any = None) -> None:
    """Render the rows as a rich table; skipped paths are listed under it with their reasons.

    `best` (a model_navigator.selection.Selection) marks the winning path and runtime with a star
    and explains the choice under the table."""
    from rich.markup import escape
    from rich.table import Table

    from model_navigator.core.logging import console as default_console

    table = Table(title=f"{escape(status.model_name)} ({status.framework})")
    for col in ("Path", "Runtime", "Status", "Max abs / rel error", "p50 ms (batch)", "Throughput /s", "Verified"):
        table.add_column(col, no_wrap=col in ("Path", "Runtime"))
    skipped = []
    shown = []
    for row in status_rows(status):
        skip = _skipped_entry(row)
        if skip is not None:
            skipped.append(skip)
        else:
            shown.append(row)
    common = shared_warnings(shown)
    for row in shown:
        table.add_row(*_row_cells({**row, "warnings": [w for w in row["warnings"] if w not in common]}, best))
    out = console or default_console()
    out.print(table)
    for warning in common:  # said once, not in every row
        out.print(f"[yellow]⚠ {escape(warning)}[/] [dim](every checked path)[/]")
    _print_skipped(out, status, skipped)
    _print_notes(out, status, best)


def shared_warnings(rows: List[Dict[str, Any]]) -> List[str]:
    """The warnings every one of several checked rows carries (e.g. the source model's outputs being
    the same for every correctness sample, which holds for every path), in the first row's order;
    the source model's own row is not checked, so it does not count."""
    checked = [row for row in rows if row.get("correctness") not in (None, "reference")]
    if len(checked) < 2:
        return []
    return [w for w in dict.fromkeys(checked[0]["warnings"]) if all(w in row["warnings"] for row in checked[1:])]


def _skipped_entry(row: Dict[str, Any]) -> Optional[Tuple[str, Optional[str]]]:
    """(what, reason) for a row listed under the table instead of in it: a skipped path, or a
    runtime that is not installed here; None for a row of the table."""
    if row["status"] == StepStatus.SKIPPED.value:
        return (row["path"], row["reason"])
    if row.get("correctness") == StepStatus.SKIPPED.value:  # a runtime that is not installed here
        return (f"{row['path']} on {row['runtime'].replace('ExecutionProvider', '')}", row["correctness_reason"])
    return None


def _status_cell(row: Dict[str, Any]) -> str:
    """The Status cell: the verdict in colour, then the reason's headline, its hint and the warnings."""
    from rich.markup import escape

    st = row.get("outcome") or row["status"]
    color = "green" if st == "ok" else ("yellow" if st == "not_run" else "red")
    reason = row.get("correctness_reason") or row.get("reason")
    status_text = f"[{color}]{st}[/]" + (f"\n[dim]{escape(headline(reason))}[/]" if reason and st != "ok" else "")
    hint = reason.partition("\nHint: ")[2] if reason and st != "ok" else ""
    status_text += f"\n[cyan]Hint: {escape(hint)}[/]" if hint else ""
    status_text += "".join(f"\n[yellow]⚠ {escape(w[:160])}[/]" for w in row.get("warnings", []))
    return status_text


def _row_cells(row: Dict[str, Any], best: Any) -> Tuple[str, ...]:
    """The seven cells of a table row; the path of `best` (when given) gets a star."""
    from rich.markup import escape

    errors = "\n".join(
        f"{n}: {a:.2e} / {r:.2e}" + _measures_text(row.get("measures", {}).get(n))
        for n, (a, r) in row["errors"].items()
    )
    if row.get("correctness") == "reference":
        errors = "reference"
    perf = row["performance"]
    p50 = "\n".join(f"{p['p50_ms']:.3f} ({p['batch_size']}){'' if p['stable'] else ' ~'}" for p in perf)
    thr = "\n".join(f"{p['throughput']:.0f}" for p in perf)
    runtime = (row["runtime"] or "-").replace("ExecutionProvider", "")
    runtime += f" {row['precision']}" if row.get("precision") in ("int8", "bf16") else ""
    star = best is not None and row["path"] == best.path and row["runtime"] == best.runtime.value
    return (
        escape(row["path"]) + (" [bold yellow]★[/]" if star else ""),
        runtime,
        _status_cell(row),
        escape(errors) or "-",
        p50 or "-",
        thr or "-",
        "yes" if row["verified"] else "",
    )


def _measures_text(measures: Optional[Dict[str, Any]]) -> str:
    """A reduced-precision output's whole-output measures: " (rel L2 0.52%, cos 0.99998, top1 100%)"."""
    if not measures:
        return ""
    parts = [f"rel L2 {measures['rel_l2']:.2%}", f"cos {measures['cosine']:.5f}"]
    parts += [f"top1 {measures['top1']:.0%}"] if measures.get("top1") is not None else []
    return f" ({', '.join(parts)})"


def _print_skipped(out: Any, status: NavigatorStatus, skipped: List[Tuple[str, Optional[str]]]) -> None:
    """One line per skip reason; the skipped TensorRT family shares one "GPU only" line."""
    from rich.markup import escape

    by_reason: Dict[str, List[str]] = {}
    gpu_keys: List[str] = []
    gpu_reasons: List[str] = []
    for key, reason in skipped:
        if _gpu_only(status, key):  # the GPU family, in one line
            gpu_keys.append(key)
            if reason and reason not in gpu_reasons:
                gpu_reasons.append(reason)
        else:
            by_reason.setdefault(reason or "", []).append(key)
    for reason, keys in by_reason.items():
        out.print(f"[yellow]Skipped[/] {escape(', '.join(keys))}: {escape(reason)}")
    if gpu_keys:
        out.print(f"[yellow]Skipped[/] GPU only: {escape(', '.join(gpu_keys))} ({escape('; '.join(gpu_reasons))})")


def _print_notes(out: Any, status: NavigatorStatus, best: Any) -> None:
    """The notes under the table: tolerances used, the unstable-measurement mark, and why `best` won."""
    from rich.markup import escape

    tolerances = sorted({row["tolerance"] for row in status_rows(status) if row.get("tolerance")})
    if tolerances:
        out.print(
            f"[dim]Correctness judged by {escape(tolerances_text(tolerances))}; an element fails when it "
            f"exceeds both its atol and rtol"
            + ("; a budget judges each whole output" if any(t.endswith(" budget") for t in tolerances) else "")
            + "[/]"
        )
    if any(not p["stable"] for row in status_rows(status) for p in row["performance"]):
        out.print("[dim]~ unstable measurement: the last windows differed more than stability_percentage[/]")
    if best is not None:
        out.print(f"[bold yellow]★[/] best: {escape(best.summary())}")
        for rejection in best.rejected:
            if rejection.runtime is not None:  # skipped and failed paths are listed above already
                out.print(f"[dim]  {escape(str(rejection))}[/]")
