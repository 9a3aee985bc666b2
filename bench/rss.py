"""Peak memory of a process tree, sampled from /proc: the largest sum of RSS over the tree and the
largest RSS of any one process in it (the figure that says which process holds too much)."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Sequence, Tuple


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


def _rss_kib(pid: int) -> Tuple[int, int]:
    """(VmRSS, RssAnon) of pid in KiB; RssAnon is its private memory, VmRSS adds the file pages
    (shared libraries) it maps, which vary with what the page cache holds at the time."""
    rss = anon = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
    except OSError:
        pass
    return rss, anon


def _pss_kib(pid: int) -> int:
    """Pss of pid in KiB: its pages, each shared one divided among the processes that map it (a forked
    child's copy-on-write pages count once over the tree, where VmRSS counts them in every process)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid: int) -> Tuple[int, Dict[int, Tuple[int, int]]]:
    """(sum of VmRSS over pid and its descendants, pid -> (VmRSS, RssAnon) of each), in KiB."""
    children = _children()
    each: Dict[int, Tuple[int, int]] = {}
    stack = [pid]
    while stack:
        p = stack.pop()
        each[p] = _rss_kib(p)
        stack.extend(children.get(p, []))
    return sum(rss for rss, _ in each.values()), each


def run_measured(argv: Sequence[str], cwd: str, env: Dict[str, str], interval_s: float = 0.01) -> Dict[str, Any]:
    """Run argv to completion and measure it: wall_s, cpu_s (user + system of the tree, steadier
    than wall on a shared machine), peak_tree_mib (largest sum of VmRSS), peak_tree_pss_mib (largest sum
    of Pss, sampled every third time: memory the tree holds, shared pages once), peak_process_mib (largest
    VmRSS of one process), peak_main_mib / peak_child_mib (the process started / its largest
    descendant), peak_anon_mib (largest RssAnon of one process: private memory only), load_1min (the
    machine's 1-minute load average before and after), stdout.
    Output goes to files (a full pipe would stall the child); a failure raises RuntimeError."""
    peaks = {"tree": 0, "tree_pss": 0, "process": 0, "main": 0, "child": 0, "anon": 0}
    samples = 0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        cpu_before = children_cpu_s()
        load_before = round(os.getloadavg()[0], 2)  # the machine's load average, before and after (shared machine)
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=err)
        while proc.poll() is None:
            total, each = tree_rss_kib(proc.pid)
            peaks["tree"] = max(peaks["tree"], total)
            if samples % 3 == 0:  # smaps_rollup walks the page tables: every third sample
                peaks["tree_pss"] = max(peaks["tree_pss"], sum(_pss_kib(p) for p in each))
            samples += 1
            for pid, (rss, anon) in each.items():
                peaks["process"] = max(peaks["process"], rss)
                peaks["anon"] = max(peaks["anon"], anon)
                role = "main" if pid == proc.pid else "child"
                peaks[role] = max(peaks[role], rss)
            time.sleep(interval_s)
        wall = time.perf_counter() - start
        cpu = children_cpu_s() - cpu_before
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark child {list(argv)} failed:\n{err.read().decode()[-3000:]}")
        result: Dict[str, Any] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "load_1min": [load_before, round(os.getloadavg()[0], 2)],
        }
        result.update({f"peak_{k}_mib": round(v / 1024) for k, v in peaks.items()})
        result["stdout"] = out.read().decode()
        return result


def children_cpu_s() -> float:
    """User + system CPU seconds of every waited-for child so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
