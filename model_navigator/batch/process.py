"""Run one job's worker as a child process with a timeout and retries (the local runner and each Ray task use it)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional, Set

from model_navigator.batch.worker import RESULT_FILE, write_json

LOG_FILE = "job.log"
SPEC_FILE = "job.json"


class Children:
    """The worker processes running now, so that Ctrl-C (or a cancelled Ray task) can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: Set[subprocess.Popen] = set()
        self.stopping = False

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.add(proc)

    def discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        with self._lock:
            self.stopping = True
            for proc in self._procs:
                kill_group(proc)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the worker and everything it started (it leads its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def prepare_job_dir(job_dir: Path) -> None:
    """An empty folder for the run (a rerun replaces what an earlier, unfinished or failed run left there)."""
    if job_dir.exists():
        shutil.rmtree(job_dir)
    job_dir.mkdir(parents=True)


def _attempt(spec: Dict[str, Any], job_dir: Path, timeout_s: Optional[float], children: Children) -> Dict[str, Any]:
    from model_navigator.steps.lifeline import lifeline_args

    (job_dir / RESULT_FILE).unlink(missing_ok=True)
    (job_dir / SPEC_FILE).write_text(json.dumps(spec, indent=2), encoding="utf-8")
    main_thread = threading.current_thread() is threading.main_thread()
    with open(job_dir / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "model_navigator.batch.worker",
                str(job_dir / SPEC_FILE),
                str(job_dir),
                *lifeline_args(os.getpid(), main_thread),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=job_dir,
        )
    children.add(proc)
    try:
        if children.stopping:
            kill_group(proc)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            proc.wait()
            return {
                "status": "failed",
                "reason": f"timed out after {timeout_s:g} s (timeout_s); the job was killed",
                "retryable": True,
            }
        except BaseException:  # interrupted while waiting (a cancelled Ray task): the job goes with us
            kill_group(proc)
            raise
    finally:
        children.discard(proc)
    result_file = job_dir / RESULT_FILE
    if result_file.is_file():
        return json.loads(result_file.read_text(encoding="utf-8"))
    if children.stopping:
        return {"status": "cancelled", "reason": "interrupted (Ctrl-C) while running"}
    how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
    return {
        "status": "failed",
        "reason": f"the job's process {how} without a result (see {LOG_FILE})",
        "retryable": True,
    }


def run_job_process(
    spec: Dict[str, Any], job_dir: Path, timeout_s: Optional[float], retries: int, children: Children
) -> Dict[str, Any]:
    """The job's result; a timeout or a crashed process is retried up to `retries` times."""
    start = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        result = _attempt(spec, job_dir, timeout_s, children)
        if not result.pop("retryable", False) or attempts > retries or children.stopping:
            break
        with open(job_dir / LOG_FILE, "a", encoding="utf-8") as log:
            log.write(f"\n--- attempt {attempts} failed: {result['reason']}; retrying\n")
    result.setdefault("run_id", spec["run_id"])
    result.setdefault("name", spec["name"])
    result.setdefault("kind", spec.get("kind"))
    result["attempts"] = attempts
    result["wall_s"] = time.perf_counter() - start
    write_json(job_dir / RESULT_FILE, result)
    return result
