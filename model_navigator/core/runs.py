"""The run records of status.yaml: every export, load, profile or convert marks itself started, then
finished, interrupted or failed, so a workspace left by a run that was killed says so."""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import socket
import threading
import uuid
from typing import Any, Callable, Iterator, List, Optional

from model_navigator.core.status import NavigatorStatus, RunRecord

MAX_RUNS = 20  # the first (the export) and the latest ones are kept


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def start_run(status: NavigatorStatus, operation: str) -> RunRecord:
    """Append an unfinished record of `operation` by this process to `status.runs`."""
    record = RunRecord(
        id=uuid.uuid4().hex[:12], operation=operation, pid=os.getpid(), host=socket.gethostname(), started_at=_now()
    )
    runs = list(status.runs or [])
    runs.append(record)
    if len(runs) > MAX_RUNS:
        runs = runs[:1] + runs[-(MAX_RUNS - 1) :]
    status.runs = runs
    return record


def finish_run(record: RunRecord, outcome: str, reason: Any = None) -> None:
    """Mark `record` done: outcome 'finished', 'interrupted' or 'failed' (with the reason)."""
    record.finished_at = _now()
    record.outcome = outcome
    text = str(reason).strip() if reason is not None else ""
    record.reason = text.splitlines()[0][:500] if text else None


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during a recorded run: it stops like Ctrl-C (steps in flight stopped, the run
    marked interrupted) instead of ending the process with the run left `running`."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated in the main thread, unless the user installed a
    handler of their own (theirs is kept) or this is another thread (signals go to the main one)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def terminated(signum: int, frame: Any) -> None:
        raise Terminated("SIGTERM")

    signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def interruption(error: KeyboardInterrupt) -> str:
    """What stopped a run: SIGTERM or Ctrl-C."""
    return "SIGTERM" if isinstance(error, Terminated) else "Ctrl-C"


@contextlib.contextmanager
def recorded_run(
    status: NavigatorStatus, save: Callable[[], None], operation: str, record: Optional[RunRecord] = None
) -> Iterator[RunRecord]:
    """Record `operation` in `status` and `save` it, then mark how the block ended and save again
    (a kill -9 leaves the record unfinished, which is the point). With `record` (already in
    `status.runs`: nav.load marks itself before it unpacks) that run is continued, not a new one."""
    if record is None or all(r is not record for r in status.runs or []):
        record = start_run(status, operation)
    save()
    try:
        with sigterm_as_interrupt():
            yield record
    except KeyboardInterrupt as e:
        finish_run(record, "interrupted", interruption(e))
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
    """One line per run that did not finish among the export that made the workspace and the latest
    load into it (their results are incomplete whatever ran after them: a killed load leaves files
    missing) and the latest run (an interrupted re-profile), each saying how it ended; earlier
    re-checks followed by another run are not flagged."""
    runs = list(status.runs or [])
    export = next((r for r in runs if r.operation == "export"), None)
    ends: List[RunRecord] = []
    for record in (export, last_load(status), runs[-1] if runs else None):
        if record is not None and all(record is not e for e in ends):
            ends.append(record)
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


def last_load(status: NavigatorStatus) -> Optional[RunRecord]:
    """The record of the load that unpacked this workspace (the latest one), if any."""
    return next((r for r in reversed(status.runs or []) if r.operation == "load"), None)


def unfinished_load(status: NavigatorStatus) -> Optional[str]:
    """Why the workspace is incomplete when the load that unpacked it did not finish, else None."""
    record = last_load(status)
    if record is None or record.outcome == "finished":
        return None
    how = "was killed or crashed" if not record.finished else record.outcome
    return (
        f"the load that unpacked it (run {record.id}, pid {record.pid} on {record.host}, started "
        f"{record.started_at}) {how}, so files may be missing"
    )
