"""One call in a child forked from the user's process: the export of a live model that should not leave
its imports and allocations behind (the ONNX exporter, a trace's graph) nor take the user's process
down if it crashes. The child shares the model copy-on-write, runs the call, sends its JSON result (or
the error's reason) back on a pipe, length first, and leaves with os._exit (no atexit handler of the
parent's runs twice: the shared worker it knows of is the parent's). It dies with the parent (the
parent-death signal from the main thread, lifeline's watchdog from any other), and the parent kills it
when it is interrupted (Ctrl-C) or fails while waiting, or when it lingers after its reply.

Only where fork is safe: Linux, and the caller says when (no CUDA context; see ExportContext.forks).
A fork the system refuses (memory, process limits) raises ForkRefused: the caller runs the call here."""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import struct
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

from model_navigator.core.logging import LOGGER
from model_navigator.core.serialization import to_plain
from model_navigator.steps.lifeline import die_with_parent

_LENGTH = struct.Struct("<Q")
# After its reply the child only flushes and exits; one that takes longer is stuck (a lock another
# thread held at the fork) and is killed: the reply is complete.
EXIT_GRACE_S = 5.0


class ForkedCallFailed(Exception):
    """The call raised in the child (`reason` is what short_reason made of it there) or the child died
    (`reason` says how); `child_traceback` is the child's, when it had one."""

    def __init__(self, reason: str, child_traceback: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.child_traceback = child_traceback


class ForkRefused(Exception):
    """The system refused the fork (ENOMEM, EAGAIN): nothing ran, the call may run in this process."""


def fork_supported() -> bool:
    """Whether this platform can run a call in a forked child (Linux: fork, the parent-death signal)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def run_forked(
    call: Callable[[], Any],
    describe_error: Callable[[BaseException], str],
    after_fork: Optional[Callable[[], None]],
) -> Any:
    """`call()` in a forked child, its result (made plain: JSON types) back here. An exception in the
    child raises ForkedCallFailed with `describe_error(exception)`, made there; a child that dies
    (a signal, out of memory) raises it with how it died. `after_fork` runs first in the child."""
    read_fd, write_fd = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # what this process printed goes out once, not again from the child
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    parent = os.getpid()
    from_main_thread = threading.current_thread() is threading.main_thread()
    pid = _fork(read_fd, write_fd)
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _child(call, describe_error, after_fork, write_fd, parent, from_main_thread)
    os.close(write_fd)
    try:
        data = _read_reply(read_fd)
        wait_status = _reap(pid, EXIT_GRACE_S if data is not None else None)
    except BaseException:  # Ctrl-C or any failure while waiting: the child goes too
        _kill(pid)
        raise
    finally:
        os.close(read_fd)
    if data is None:
        raise ForkedCallFailed(_how_it_died(wait_status))
    try:
        reply = json.loads(data.decode("utf-8"))
    except ValueError:
        raise ForkedCallFailed(_how_it_died(wait_status)) from None
    if "error" in reply:
        raise ForkedCallFailed(reply["error"], reply.get("traceback", ""))
    return reply["result"]


def _fork(read_fd: int, write_fd: int) -> int:
    """os.fork with no other thread inside a log write and the collector's objects frozen out of the
    child (its walks would copy every page the child shares with this process)."""
    freeze = gc.get_freeze_count() == 0  # a process that freezes objects itself keeps doing so
    if freeze:
        gc.freeze()
    handlers = _log_handlers()
    for handler in handlers:  # the worker's log relay thread is not mid-write when the child starts
        handler.acquire()
    pid = -1
    try:
        pid = os.fork()
    except OSError as e:
        os.close(read_fd)
        os.close(write_fd)
        raise ForkRefused(str(e)) from e
    finally:
        if pid != 0:  # in the child, logging's own fork hook has made every handler's lock anew
            for handler in reversed(handlers):
                handler.release()
            if freeze:
                gc.unfreeze()
    return pid


def _log_handlers() -> List[logging.Handler]:
    """model_navigator's log handlers and its ancestors' (the terminal, navigator.log, format.log)."""
    handlers: List[logging.Handler] = []
    logger: Optional[logging.Logger] = LOGGER
    while logger is not None:
        handlers += [h for h in logger.handlers if h not in handlers]
        logger = logger.parent if logger.propagate else None
    return handlers


def _child(
    call: Callable[[], Any],
    describe_error: Callable[[BaseException], str],
    after_fork: Optional[Callable[[], None]],
    write_fd: int,
    parent: int,
    from_main_thread: bool,
) -> None:
    code = 0
    try:
        die_with_parent(parent, from_main_thread)
        if after_fork is not None:
            after_fork()
        reply: Dict[str, Any] = {"result": to_plain(call())}
    except BaseException as e:  # noqa: BLE001 - everything goes back to the parent, KeyboardInterrupt too
        try:
            reply = {"error": describe_error(e), "traceback": traceback.format_exc()}
        except BaseException:  # noqa: BLE001
            reply = {"error": f"{type(e).__name__}: (its message could not be read)"}
    try:
        data = json.dumps(reply, default=str).encode("utf-8")
        view = memoryview(_LENGTH.pack(len(data)) + data)
        while view:
            view = view[os.write(write_fd, view) :]
    except BaseException:  # noqa: BLE001 - the parent sees no reply and says how the child ended
        code = 1
    for stream in (sys.stdout, sys.stderr):  # what the export printed
        try:
            if stream is not None:
                stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    os._exit(code)


def _read_reply(fd: int) -> Optional[bytes]:
    """The child's reply, or None when the pipe closed before a whole one came (the child died)."""
    header = _read_exactly(fd, _LENGTH.size)
    if header is None:
        return None
    return _read_exactly(fd, _LENGTH.unpack(header)[0])


def _read_exactly(fd: int, n: int) -> Optional[bytes]:
    chunks: List[bytes] = []
    got = 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _reap(pid: int, grace_s: Optional[float]) -> int:
    """Wait for the child's exit status; after `grace_s` (it replied and should be gone) kill it. 0 when
    someone else reaped it (a SIGCHLD handler, SIG_IGN): its reply, if any, is what counts."""
    deadline = None if grace_s is None else time.monotonic() + grace_s
    try:
        while True:
            done, status = os.waitpid(pid, 0 if deadline is None else os.WNOHANG)
            if done:
                return status
            if deadline is not None and time.monotonic() > deadline:
                _kill(pid)
                return 0
            time.sleep(0.01)
    except ChildProcessError:
        return 0


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (OSError, ChildProcessError):
        pass


def _how_it_died(wait_status: int) -> str:
    if os.WIFSIGNALED(wait_status):
        number = os.WTERMSIG(wait_status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        cause = " (out of memory?)" if number == signal.SIGKILL else ""
        return f"the export process was killed by {name}{cause}"
    return f"the export process ended without a result (exit code {os.WEXITSTATUS(wait_status)})"
