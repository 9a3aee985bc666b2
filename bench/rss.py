"""Peak memory of a process tree, sampled from /proc: the largest sum of RSS over the tree and the
largest RSS of any one process in it (the figure that says which process holds too much)."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from typing import Dict, List, Sequence, Tuple


def _children() -> Dict[int, List[int]]:
    """ppid -> pids of every process now running."""
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return children


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid: int) -> Tuple[int, Dict[int, int]]:
    """(sum of VmRSS over pid and its descendants, pid -> VmRSS of each), in KiB."""
    children = _children()
    each: Dict[int, int] = {}
    stack = [pid]
    while stack:
        p = stack.pop()
        each[p] = _rss_kib(p)
        stack.extend(children.get(p, []))
    return sum(each.values()), each


def run_measured(argv: Sequence[str], cwd: str, env: Dict[str, str], interval_s: float = 0.01
                 ) -> Tuple[float, float, float, str, float]:
    """Run argv to completion; (wall s, peak tree RSS MiB, peak single-process RSS MiB, stdout, CPU s
    of the tree: user + system, steadier than wall on a shared machine).
    Output goes to files (a full pipe would stall the child); a failure raises RuntimeError with
    the child's stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        cpu_before = children_cpu_s()
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=err)
        peak_tree = peak_one = 0
        while proc.poll() is None:
            total, each = tree_rss_kib(proc.pid)
            peak_tree = max(peak_tree, total)
            peak_one = max(peak_one, max(each.values(), default=0))
            time.sleep(interval_s)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark child {list(argv)} failed:\n{err.read().decode()[-3000:]}")
        return wall, peak_tree / 1024, peak_one / 1024, out.read().decode(), children_cpu_s() - cpu_before


def children_cpu_s() -> float:
    """User + system CPU seconds of every waited-for child so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
