"""The run records of status.yaml: every export, load, profile or convert marks itself started, then
finished, interrupted or failed, so a workspace left by a run that was killed says so."""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import uuid
from typing import Any, Callable, Iterator, List

from model_navigator.core.status import NavigatorStatus, RunRecord

MAX_RUNS = 20  # the first (the export) and the latest ones are kept


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def start_run(status: NavigatorStatus, operation: str) -> RunRecord:
    """Append an unfinished record of `operation` by this process to `status.runs`."""
    record = RunRecord(id=uuid.uuid4().hex[:12], operation=operation, pid=os.getpid(), host=socket.gethostname(),
                       started_at=_now())
    runs = list(status.runs or [])
    runs.append(record)
    if len(runs) > MAX_RUNS:
        runs = runs[:1] + runs[-(MAX_RUNS - 1):]
    status.runs = runs
    return record


def finish_run(record: RunRecord, outcome: str, reason: Any = None) -> None:
    """Mark `record` done: outcome 'finished', 'interrupted' or 'failed' (with the reason)."""
    record.finished_at = _now()
    record.outcome = outcome
    text = str(reason).strip() if reason is not None else ""
    record.reason = text.splitlines()[0][:500] if text else None


@contextlib.contextmanager
def recorded_run(status: NavigatorStatus, save: Callable[[], None], operation: str) -> Iterator[RunRecord]:
    """Record `operation` in `status` and `save` it, then mark how the block ended and save again
    (a kill -9 leaves the record unfinished, which is the point)."""
    record = start_run(status, operation)
    save()
    try:
        yield record
    except KeyboardInterrupt:
        finish_run(record, "interrupted", "Ctrl-C")
        _save_quietly(save)
        raise
    except BaseException as e:
        finish_run(record, "failed", f"{type(e).__name__}: {e}")
        _save_quietly(save)
        raise
    if not record.finished:  # the block may have marked it failed itself (nothing could be checked)
        finish_run(record, "finished")
    save()


def _save_quietly(save: Callable[[], None]) -> None:
    """Save on the way out of a failure; a second error (a full disk) must not hide the first."""
    try:
        save()
    except Exception:  # noqa: BLE001
        pass


def unfinished_runs(status: NavigatorStatus) -> List[str]:
    """One line per run that did not finish among the export that made the workspace (its results
    are incomplete whatever ran after it) and the latest run (an interrupted re-profile), each
    saying how it ended; earlier re-checks followed by another run are not flagged."""
    runs = list(status.runs or [])
    export = next((r for r in runs if r.operation == "export"), None)
    ends = [r for r in (export, runs[-1] if runs else None) if r is not None]
    if len(ends) == 2 and ends[0] is ends[1]:
        ends = ends[:1]
    lines = []
    for record in ends:
        if record.finished and record.outcome == "finished":
            continue
        who = f"{record.operation} run {record.id} (pid {record.pid} on {record.host}, started {record.started_at})"
        if not record.finished:
            lines.append(f"{who} did not finish: it was killed or crashed, or it is still running")
        else:
            lines.append(f"{who} did not finish: {record.outcome}" + (f" ({record.reason})" if record.reason else ""))
    return lines
