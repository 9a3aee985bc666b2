"""Crash isolation: a long-lived worker process per framework runs the stand-alone steps.

The worker imports the framework once and then runs step after step, so isolation does not pay
an interpreter start per step. If it dies (signal, abort, exit, out of memory) or overruns the
step timeout, the step is recorded as failed with the cause and the tail of the worker's output,
and a fresh worker is started for the next step.

Protocol: one JSON request per line on stdin ({"step", "argv", "base_dir"}), one JSON result per
line on the worker's original stdout; everything the frameworks print goes to stderr, which the
parent keeps a tail of and writes to navigator.log.

The worker never outlives the user's process: it dies with it at any moment, mid-step included
(parent-death signal and a watchdog, see lifeline.py); Ctrl-C mid-step kills it from the parent.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Deque, Dict, Optional, Sequence, Tuple

from model_navigator.core.logging import LOGGER, mark_worker_process, relay_progress
from model_navigator.steps.base import StepReply
from model_navigator.steps.lifeline import die_with_parent, lifeline_args, parse_lifeline

# For tests only (tests/test_faults.py, tests/test_isolation.py): "<step>:<path>:<crash|hang|exit>"
# makes the worker crash, hang or exit in that step of that path. Read once when a worker starts.
FAULT_ENV = "MODEL_NAVIGATOR_TEST_FAULT"
READY_TIMEOUT_S = 300.0
TAIL_LINES = 30
# Written on stderr by the worker just before each reply: stderr and the reply travel on two pipes,
# so the parent waits for this mark to have relayed every progress line of the step (in order)
# before the step's result is taken and the next line is printed.
STEP_DONE_MARK = "@@model-navigator-step-done"
STEP_DONE_WAIT_S = 5.0


class _StderrDrain:
    """The worker's stderr as the parent reads it: a tail for failure reasons, progress lines
    relayed, and a count of the step-done marks seen (so a reply waits for its step's lines)."""

    def __init__(self) -> None:
        self.tail: Deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.done = 0
        self.closed = False
        self._changed = threading.Condition()

    def read(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        try:
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                if line == STEP_DONE_MARK:
                    with self._changed:
                        self.done += 1
                        self._changed.notify_all()
                    continue
                if relay_progress(line):  # a step's progress line (a profiled batch size)
                    continue
                self.tail.append(line)
                LOGGER.debug("[worker %d] %s", proc.pid, line)
        finally:
            with self._changed:
                self.closed = True
                self._changed.notify_all()

    def wait_done(self, count: int, timeout_s: float = STEP_DONE_WAIT_S) -> None:
        """Until `count` steps have their done mark read (or stderr closed, or the timeout)."""
        with self._changed:
            self._changed.wait_for(lambda: self.done >= count or self.closed, timeout_s)


def preload_modules(kind: str) -> Tuple[str, ...]:
    """The modules a worker imports before it reports ready, from the format declarations
    (core/formats.py `preload`). kind 'runtimes' (isolation 'auto'): the worker runs foreign
    runtimes and converters only, i.e. the formats no framework checks in its own process; a
    framework (isolation 'full'): also the formats of its paths and its source format's converters."""
    from model_navigator.core.formats import FORMATS
    from model_navigator.paths.registry import formats_of

    sources = {str(spec.source_of): (spec, spec.source_of) for spec in FORMATS.values() if spec.source_of is not None}
    if kind != "runtimes" and kind not in sources:
        return ("numpy",)
    specs = [spec for spec in FORMATS.values() if not spec.is_source and not spec.local_checks]
    if kind != "runtimes":
        source, framework = sources[kind]
        specs += [FORMATS[fmt] for fmt in formats_of(framework)] + [source]
    return tuple(dict.fromkeys(["numpy"] + [m for spec in specs for m in spec.preload]))


class WorkerExecutor:
    """Runs steps in a reusable worker process; restarts it after a crash or timeout."""

    def __init__(self, framework: str, root: Optional[Path] = None):
        self.framework = framework
        self.root = Path(root) if root is not None else Path.cwd()
        self._lock = threading.Lock()
        self._proc: Optional[subprocess.Popen] = None
        self._stderr = _StderrDrain()
        self._requests = 0
        self._ready = False
        self._start()

    # Process management ------------------------------------------------------------------------
    def _start(self) -> None:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # The worker runs TensorFlow beside ONNX Runtime / TensorRT on one GPU: TensorFlow must grow
        # its GPU memory rather than take all of it at start-up (a no-op without a GPU).
        env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        from_main = threading.current_thread() is threading.main_thread()
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "model_navigator.steps.worker",
                self.framework,
                *lifeline_args(os.getpid(), from_main),
            ],  # the worker dies with this process (lifeline.py)
            cwd=package_root,
            env=env,  # requests carry absolute paths; the caller's cwd may vanish
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._ready = False
        self._stderr = _StderrDrain()
        self._requests = 0
        threading.Thread(target=self._stderr.read, args=(self._proc,), daemon=True).start()

    def _read_line(self, timeout_s: Optional[float]) -> Optional[bytes]:
        """One line from the worker's protocol pipe; b"" at EOF (the worker died), None on timeout.
        (The pipeline prints heartbeats while it waits: core.logging.Progress.running.)"""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout
        readable, _, _ = select.select([fd], [], [], timeout_s)
        return fd.readline() if readable else None

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()

    def _failure(self, step: str, cause: str) -> StepReply:
        tail = "\n".join(list(self._stderr.tail)[-12:])
        reason = f"worker process {cause} during {step}" + (f"; last output:\n{tail}" if tail else "")
        LOGGER.error(reason)
        return StepReply.failed(step, reason)

    # Executor interface ------------------------------------------------------------------------
    def run(self, step: str, argv: Sequence[str], root: Path, timeout_s: Optional[float] = None) -> StepReply:
        with self._lock:
            try:
                return self._run(step, argv, root, timeout_s)
            except BaseException:  # Ctrl-C mid-step: the worker's state is unknown, never reuse it
                self._kill()
                raise

    def wait_ready(self) -> None:
        """Block until the worker has imported its modules (so it no longer competes for the CPU)."""
        with self._lock:
            if self._proc is None or self._ready:
                return
            line = self._read_line(READY_TIMEOUT_S)
            if line:
                self._ready = True

    def _run(self, step: str, argv: Sequence[str], root: Path, timeout_s: Optional[float]) -> StepReply:
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._start()
        assert self._proc is not None and self._proc.stdin is not None
        if not self._ready:
            line = self._read_line(READY_TIMEOUT_S)
            if not line:
                if line is None:
                    self._kill()
                    return self._failure(step, f"did not start within {READY_TIMEOUT_S:.0f} s")
                return self._crashed(step, "did not start")
            self._ready = True
        request = {"step": step, "argv": list(argv), "base_dir": str(Path(root).absolute())}
        try:
            self._proc.stdin.write((json.dumps(request) + "\n").encode())
            self._proc.stdin.flush()
        except BrokenPipeError:
            return self._crashed(step, "exited")
        self._requests += 1
        line = self._read_line(timeout_s)
        if line is None:
            self._kill()
            return self._failure(step, f"timed out after {timeout_s:.0f} s (step_timeout_s) and was stopped")
        if not line:
            return self._crashed(step, "exited")
        self._stderr.wait_done(self._requests)  # the step's progress lines are printed before its result
        try:
            return StepReply.from_plain(json.loads(line))
        except (ValueError, KeyError, TypeError) as e:
            return StepReply.failed(step, f"the worker's reply could not be read ({type(e).__name__}: {e})")

    def _crashed(self, step: str, what: str) -> StepReply:
        proc = self._proc
        code = proc.wait() if proc is not None else None
        time.sleep(0.05)  # let the stderr thread take the last lines
        if code is not None and code < 0:
            try:
                cause = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                cause = f"was killed by signal {-code}"
        else:
            cause = f"{what} with exit code {code}"
        self._kill()
        return self._failure(step, cause)

    def close(self) -> None:
        """Keep the shared worker for the next call (see shutdown_workers); private ones stop."""
        if _WORKERS.get(self.framework) is not self:
            self.shutdown()

    def shutdown(self) -> None:
        """Stop the worker process now."""
        proc = self._proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()


_WORKERS: Dict[str, WorkerExecutor] = {}


def shared_worker(framework: str) -> WorkerExecutor:
    """The framework's worker for this process, started on first use and reused by every later
    export, load and profile call (importing a framework costs seconds); stopped at exit."""
    worker = _WORKERS.get(framework)
    if worker is None:
        worker = _WORKERS[framework] = WorkerExecutor(framework)
    elif worker._proc is None or worker._proc.poll() is not None:
        worker._kill()
        worker._start()
    return worker


@atexit.register
def shutdown_workers() -> None:
    """Stop every shared worker process (also run at interpreter exit)."""
    while _WORKERS:
        _, worker = _WORKERS.popitem()
        worker.shutdown()


# Worker side -----------------------------------------------------------------------------------
def _test_fault() -> Optional[Tuple[str, str, str]]:
    """(step, path, kind) from FAULT_ENV, set by tests only; None (no check per step) otherwise."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    step, path, kind = spec.split(":")
    return step, path, kind


def _inject_test_fault(fault: Tuple[str, str, str], step: str, argv: Sequence[str]) -> None:
    """Test only: crash, hang or exit in the step and path `fault` names (see FAULT_ENV)."""
    fault_step, fault_path, kind = fault
    path = argv[list(argv).index("--path") + 1] if "--path" in argv else None
    if fault_step != step or fault_path != path:
        return
    print(f"test fault injection: {kind} in {step} of {path}", file=sys.stderr, flush=True)
    if kind == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == "hang":
        time.sleep(3600)
    elif kind == "exit":
        os._exit(3)


def worker_main(framework: str, parent_pid: Optional[int] = None, from_main_thread: bool = False) -> int:
    """Serve step requests from stdin until it closes; dies with `parent_pid` (see lifeline.py)."""
    die_with_parent(os.getppid() if parent_pid is None else parent_pid, from_main_thread)
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever frameworks print goes to stderr, never into the protocol
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    mark_worker_process()
    import importlib

    for module in preload_modules(framework):
        try:
            if module == "openvino":  # without its telemetry, which forks (see import_openvino)
                from model_navigator.runners.openvino import import_openvino

                import_openvino()
            else:
                importlib.import_module(module)
        except ImportError:
            pass
    from model_navigator.steps.base import run_step

    fault = _test_fault()  # None unless a test set FAULT_ENV
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if fault is not None:
            _inject_test_fault(fault, request["step"], request["argv"])
        reply = run_step(request["step"], request["argv"], base_dir=Path(request["base_dir"]))
        try:
            line = json.dumps(reply.to_plain())
        except (TypeError, ValueError) as e:
            line = json.dumps(StepReply.failed(reply.step, f"step result is not JSON: {e}").to_plain())
        sys.stderr.write(STEP_DONE_MARK + "\n")
        sys.stderr.flush()
        protocol.write(line + "\n")
    return 0


if __name__ == "__main__":
    _parent, _from_main = parse_lifeline(sys.argv[2:])
    sys.exit(worker_main(sys.argv[1] if len(sys.argv) > 1 else "torch", _parent, _from_main))
