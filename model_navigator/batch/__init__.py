"""nav.batch.run and `model-navigator batch`: many models or packages, each job in its own process.

Local by default (`max_parallel` jobs at a time on this machine); on a Ray cluster with `ray`
(an address or "auto"): each job a Ray task with its resources. A failing job is recorded with its
reason and the others go on; a rerun skips the jobs already done unless `rerun=True`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from model_navigator.batch.jobs import Job, Run, expand_runs, load_jobs
from model_navigator.batch.summary import INDEX_FILE, SUMMARY_FILE, print_table, write_summary
from model_navigator.batch.worker import RESULT_FILE
from model_navigator.core.errors import UserInputError

__all__ = ["BatchResult", "Job", "load_jobs", "run"]


@dataclass
class BatchResult:
    """What nav.batch.run returns: one record per run (job x resources entry) and the files written."""

    jobs: List[Dict[str, Any]]
    summary_file: Path
    index_file: Path

    @property
    def ok(self) -> bool:
        return all(r.get("status") == "ok" for r in self.jobs)

    def __getitem__(self, run_id: str) -> Dict[str, Any]:
        return next(r for r in self.jobs if r["run_id"] == run_id)


def _progress(verbose: bool, total: int):
    done = {"n": 0}

    def report(event: str, run: Run, result: Dict[str, Any]) -> None:
        if not verbose:
            return
        if event in ("started", "submitted"):
            line = f"job {run.run_id}: {event}" + (" to Ray" if event == "submitted" else "")
        else:
            done["n"] += 1
            best = result.get("best")
            what = (
                f"best {best['path']} on {best['runtime']}, p50 {best['p50_ms']:.3f} ms"
                if best
                else result.get("reason") or ""
            )
            line = f"job {run.run_id}: {result.get('status')} in {result.get('wall_s', 0):.1f} s ({done['n']}/{total})"
            line += f": {what}" if what else ""
        print(line, file=sys.stderr, flush=True)

    return report


def _done_before(run: Run, jobs_dir: Path) -> Optional[Dict[str, Any]]:
    """The earlier result of this very run when it finished ok and its package is still there."""
    result_file = jobs_dir / run.run_id / RESULT_FILE
    try:
        result = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if result.get("status") != "ok" or result.get("fingerprint") != run.fingerprint():
        return None
    if not (jobs_dir / run.run_id / str(result.get("package", ""))).is_file():
        return None
    return {**result, "reused": True}


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserInputError(f"output {str(out)!r} exists and is not a folder.")
    if out.is_dir() and any(out.iterdir()) and not (out / SUMMARY_FILE).is_file() and not (out / "jobs").is_dir():
        raise UserInputError(
            f"output {str(out)!r} is a folder with other files in it (no {SUMMARY_FILE}): give an "
            f"empty or new folder, or the OUT of an earlier batch to continue it."
        )


def run(
    jobs: Union[str, Path, List[Any], Dict[str, Any]],
    out: Union[str, Path],
    *,
    ray: Optional[str] = None,
    max_parallel: int = 1,
    rerun: bool = False,
    verbose: bool = True,
    table: bool = True,
) -> BatchResult:
    """Run every job (a jobs file, or its structure as Python lists and dicts) and write OUT/summary.json,
    OUT/index.html and OUT/jobs/<job>/ (the .nav, its report, the job's log). `ray`: a cluster address or
    "auto" (default: local processes, `max_parallel` at a time). Ctrl-C stops what runs, records it and the
    queued jobs as cancelled, writes the summary and raises KeyboardInterrupt."""
    if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
        raise UserInputError(f"`max_parallel` must be a whole number >= 1, got {max_parallel!r}.")
    runs = expand_runs(load_jobs(jobs))  # every job checked before any starts
    out = Path(out).absolute()
    _check_out(out)
    disconnect = None
    if ray is not None:
        from model_navigator.batch.ray_runner import connect

        disconnect = connect(ray)  # a missing extra or an unreachable cluster: an error before anything is written
    try:
        return _run(runs, out, ray, max_parallel, rerun, verbose, table)
    finally:
        if disconnect is not None:
            disconnect()


def _run(
    runs: List[Run], out: Path, ray: Optional[str], max_parallel: int, rerun: bool, verbose: bool, table: bool
) -> BatchResult:
    jobs_dir = out / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    records: Dict[str, Dict[str, Any]] = {}
    pending = []
    for r in runs:
        earlier = None if rerun else _done_before(r, jobs_dir)
        if earlier is not None:
            records[r.run_id] = earlier
        else:
            pending.append(r)
    if verbose:
        print(
            f"batch: {len(runs)} job(s), {len(runs) - len(pending)} done before, "
            + (f"on Ray ({ray})" if ray is not None else f"local, {max_parallel} at a time"),
            file=sys.stderr,
        )
    start = time.perf_counter()
    interrupted = None
    try:
        records.update(_execute(pending, jobs_dir, ray, max_parallel, _progress(verbose, len(pending))))
    except KeyboardInterrupt as e:
        interrupted = e
        records.update(getattr(e, "partial", {}))
    result = _finish(runs, records, out, ray, max_parallel, time.perf_counter() - start, table and verbose)
    if interrupted is not None:
        raise KeyboardInterrupt("batch interrupted; finished results are in " + str(result.summary_file))
    return result


def _execute(pending: List[Run], jobs_dir: Path, ray: Optional[str], max_parallel: int, progress: Any) -> Dict:
    if not pending:
        return {}
    if ray is not None:
        from model_navigator.batch.ray_runner import run_ray

        return run_ray(pending, jobs_dir, progress)
    from model_navigator.batch.local import run_local

    return run_local(pending, jobs_dir, max_parallel, progress)


def _finish(
    runs: List[Run],
    records: Dict[str, Dict],
    out: Path,
    ray: Optional[str],
    max_parallel: int,
    wall_s: float,
    show_table: bool,
) -> BatchResult:
    ordered = []
    for r in runs:
        record = records.get(r.run_id) or {"status": "cancelled", "reason": "interrupted (Ctrl-C) before it finished"}
        record = {
            **record,
            "run_id": r.run_id,
            "name": r.job.name,
            "kind": record.get("kind") or r.resources.kind,
            "resources": vars(r.resources),
            "fingerprint": r.fingerprint(),
        }
        ordered.append(record)
        if not record.get("reused") and (out / "jobs" / r.run_id).is_dir():
            from model_navigator.batch.worker import write_json

            write_json(out / "jobs" / r.run_id / RESULT_FILE, record)  # what a rerun reads
    meta = {"runner": f"ray ({ray})" if ray is not None else f"local (max_parallel={max_parallel})", "wall_s": wall_s}
    write_summary(out, ordered, meta)
    if show_table:
        print_table(ordered)
    return BatchResult(ordered, out / SUMMARY_FILE, out / INDEX_FILE)
