"""One call in a child forked from the user's process: the export of a live model that should not leave
its imports and allocations behind (torch.export's ~100 MiB of torch._dynamo, a trace's graph) nor take
the user's process down if it crashes. The child shares the model copy-on-write, runs the call, sends
its JSON result (or the error's reason) back on a pipe and leaves with os._exit (no atexit handler of
the parent's runs twice: the shared worker it knows of is the parent's). It dies with the parent, and
the parent kills it when it is interrupted (Ctrl-C) or fails while waiting.

Only where fork is safe: Linux, and the caller says when (no CUDA context; see ExportContext.forks)."""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import threading
import traceback
from typing import Any, Callable, Dict, List, Optional

from model_navigator.core.logging import LOGGER
from model_navigator.core.serialization import to_plain
from model_navigator.steps.lifeline import set_parent_death_signal


class ForkedCallFailed(Exception):
    """The call raised in the child (`reason` is what short_reason made of it there) or the child died
    (`reason` says how); `traceback` is the child's, when it had one."""

    def __init__(self, reason: str, child_traceback: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.child_traceback = child_traceback


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
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    from_main_thread = threading.current_thread() is threading.main_thread()
    # The collector's walks over every object would copy each page the child shares with this process
    # (its bookkeeping writes to them): what exists now is frozen out of them, in the child.
    gc.freeze()
    handlers = _log_handlers()
    for handler in handlers:  # no other thread (the worker's log relay) is inside a write at the fork
        handler.acquire()
    pid = -1
    try:
        pid = os.fork()
    finally:
        if pid != 0:  # in the child, logging's own fork hook has made every handler's lock anew
            for handler in reversed(handlers):
                handler.release()
            gc.unfreeze()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        _child(call, describe_error, after_fork, write_fd, parent, from_main_thread)
    os.close(write_fd)
    try:
        data = _read_all(read_fd)
        _, wait_status = os.waitpid(pid, 0)
    except BaseException:  # Ctrl-C or any failure while waiting: the child goes too
        _kill(pid)
        raise
    finally:
        os.close(read_fd)
    if not data:
        raise ForkedCallFailed(_how_it_died(wait_status))
    reply = json.loads(data.decode("utf-8"))
    if "error" in reply:
        raise ForkedCallFailed(reply["error"], reply.get("traceback", ""))
    return reply["result"]


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
        # the signal follows the thread that forked: only the main thread lives as long as the process
        if from_main_thread:
            set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)
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
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - the parent sees an empty reply and says how the child ended
        code = 1
    os._exit(code)


def _read_all(fd: int) -> bytes:
    chunks: List[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


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
