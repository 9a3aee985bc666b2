"""The local runner: each job a separate process on this machine, `max_parallel` at a time."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Callable, Dict, List

from model_navigator.batch.jobs import Run
from model_navigator.batch.process import Children, prepare_job_dir, run_job_process

Progress = Callable[[str, Run, Dict], None]


def run_local(runs: List[Run], jobs_dir: Path, max_parallel: int, progress: Progress) -> Dict[str, Dict]:
    """Results by run id. Ctrl-C kills the running jobs, drops the queued ones (both recorded as
    cancelled, by the caller) and is raised again once the finished results are returned in `partial`."""
    children = Children()
    results: Dict[str, Dict] = {}

    def one(run: Run) -> Dict:
        if children.stopping:
            return {"status": "cancelled", "reason": "interrupted (Ctrl-C) before it started"}
        job_dir = jobs_dir / run.run_id
        prepare_job_dir(job_dir)
        progress("started", run, {})
        result = run_job_process(run.spec(), job_dir, run.job.timeout_s, run.job.retries, children)
        result["node"] = result.get("node") or "local"
        progress("finished", run, result)
        return result

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="batch-job")
    futures = {pool.submit(one, run): run for run in runs}
    try:
        for future in concurrent.futures.as_completed(futures):
            results[futures[future].run_id] = future.result()
    except KeyboardInterrupt:
        children.kill_all()
        pool.shutdown(wait=True, cancel_futures=True)
        for future, run in futures.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                results.setdefault(run.run_id, future.result())
        raise Interrupted(results) from None
    pool.shutdown(wait=True)
    return results


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a batch; `partial` holds the results of the runs that finished (or were stopped)."""

    def __init__(self, partial: Dict[str, Dict]):
        super().__init__("interrupted")
        self.partial = partial
