"""The worker process dies with the user's process, at any moment, mid-step included.

Two mechanisms, set up first thing in the worker:

- Linux: the parent-death signal (`prctl(PR_SET_PDEATHSIG, SIGKILL)` through ctypes). The kernel
  sends it when the *thread* that started the worker exits, so it is used only when the worker was
  started from the user's main thread (whose exit is the process's); a worker started from another
  thread relies on the watchdog below, or it would die with that thread.
- Everywhere: a watchdog thread that looks at getppid() every WATCHDOG_S; once the parent is gone
  (the worker was re-parented to init or a subreaper), it kills the worker's process group, which
  holds the worker and anything it started. It needs the GIL, so a step stuck in C code that holds
  the GIL is covered by the parent-death signal only.

A parent that died before any of this was set up is noticed by the same getppid() check.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Sequence, Tuple

WATCHDOG_S = 0.5
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def lifeline_args(parent_pid: int, from_main_thread: bool) -> Tuple[str, str]:
    """The worker's command-line arguments that tell it whom to die with (see parse_lifeline)."""
    return str(parent_pid), "main" if from_main_thread else "thread"


def parse_lifeline(argv: Sequence[str]) -> Tuple[int, bool]:
    """(parent pid, started from the parent's main thread) from lifeline_args; the current parent
    and no signal when the arguments are absent (a worker started by hand)."""
    if len(argv) >= 2 and argv[0].isdigit():
        return int(argv[0]), argv[1] == "main"
    return os.getppid(), False


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send `sig` to this process when its parent thread exits; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _kill_own_group() -> None:
    """SIGKILL this process's group when it leads one (the worker runs in its own session: itself and
    what it started), else this process alone."""
    try:
        if os.getpgid(0) == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def _watch(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            _kill_own_group()
        time.sleep(WATCHDOG_S)


def die_with_parent(parent_pid: int, from_main_thread: bool) -> None:
    """Tie this worker's life to `parent_pid`: parent-death signal where it is safe, watchdog always."""
    if from_main_thread:
        set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        _kill_own_group()
    threading.Thread(target=_watch, args=(parent_pid,), name="model-navigator-lifeline", daemon=True).start()
