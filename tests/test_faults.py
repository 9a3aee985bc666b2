"""Faults leave nothing behind: the worker dies with the user's process, one export owns a workdir,
a full disk or a read-only folder is a clear error, unfinished runs are marked (issue 21)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List, Optional

import pytest

from model_navigator.steps.worker import FAULT_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (here PID 1 may never reap an orphan's corpse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _children(pid: int, needle: str) -> List[int]:
    """Pids of the live children of `pid` whose command line holds `needle`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in status and needle in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _wait_for(predicate, timeout_s: float, what: str):
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _env(**extra: str) -> dict:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


EXPORT_SCRIPT = """
import sys, threading, torch, model_navigator as nav
def export():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 7).eval()
    nav.torch.export(model, [torch.randn(2, 5) for _ in range(3)], workdir={workdir!r}, override_workdir=True,
                     target_formats=("torchscript", "onnx"), jit_options=("trace",), verbose=False)
if {in_thread!r}:
    t = threading.Thread(target=export); t.start(); t.join()
else:
    export()
"""


def _start_export(tmp_path: Path, workdir: Path, fault: Optional[str] = None, in_thread: bool = False,
                  name: str = "run.py") -> subprocess.Popen:
    script = tmp_path / name
    script.write_text(textwrap.dedent(EXPORT_SCRIPT.format(workdir=str(workdir), in_thread=in_thread)))
    extra = {FAULT_ENV: fault} if fault else {}
    return subprocess.Popen([sys.executable, str(script)], env=_env(**extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _hanging_worker(proc: subprocess.Popen, workdir: Path) -> int:
    """The pid of `proc`'s worker once it hangs in the injected fault (its stderr is in navigator.log)."""
    log = workdir / "navigator.log"

    def hanging() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the export ended early: {proc.communicate()[1].decode()[-2000:]}")
        return log.is_file() and "test fault injection: hang" in log.read_text(errors="replace")

    _wait_for(hanging, 180, "the worker to hang in its step")
    workers = _children(proc.pid, "model_navigator.steps.worker")
    assert len(workers) == 1, workers
    return workers[0]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("in_thread", [False, True], ids=["main-thread", "other-thread"])
def test_worker_dies_with_the_users_process_mid_step(tmp_path, in_thread):
    """kill -9 of the user's process while the worker runs a (hanging) step: the worker is gone
    within seconds, by the parent-death signal (export from the main thread) or the watchdog
    (export from another thread, where the signal would fire when that thread ends)."""
    workdir = tmp_path / "w"
    proc = _start_export(tmp_path, workdir, fault="correctness:onnx:hang", in_thread=in_thread)
    try:
        worker = _hanging_worker(proc, workdir)
        assert _alive(worker)
        proc.kill()  # SIGKILL: no atexit, no finally, nothing of ours runs in the user's process
        proc.wait(timeout=30)
        start = time.monotonic()
        _wait_for(lambda: not _alive(worker), 5, f"worker {worker} to die with its parent")
        print(f"worker gone {time.monotonic() - start:.3f} s after kill -9 of its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
