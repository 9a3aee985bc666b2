"""Logs for people: one progress line per step on the terminal (rich), full detail in
navigator.log and each path's format.log."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

LOGGER = logging.getLogger("model_navigator")
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
_console = None


def console():
    """The rich console for progress lines (stderr, so stdout stays the user's)."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True, highlight=False)
        if not _console.is_terminal:  # logs and CI: wide enough for the status table
            _console = Console(stderr=True, highlight=False, width=140)
    return _console


@contextlib.contextmanager
def log_to_file(path: Path, level: int = logging.DEBUG) -> Iterator[logging.Handler]:
    """Send model_navigator logs (and Python warnings) to `path` while the block runs."""
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(_FORMAT)
    handler.setLevel(level)
    previous = LOGGER.level
    LOGGER.addHandler(handler)
    if LOGGER.level == logging.NOTSET or LOGGER.level > level:
        LOGGER.setLevel(level)
    try:
        yield handler
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(previous)
        handler.close()


# Warnings that say the exported graph may not compute what the model computes: recorded beside
# the path's result (status.yaml, the table), not only in format.log.
_GRAPH_WARNING_CATEGORIES = ("TracerWarning",)
_GRAPH_WARNING_PHRASES = (
    "might cause the trace to be incorrect",
    "might be incorrect",
    "treated as a constant",
    "registered as constants",
    "specialized",
    "specialised",
    "will not be traced",
    "not be recorded",
    "constant folding",
)


def is_graph_warning(category: str, message: str) -> bool:
    """Does this exporter warning mean "the graph may be wrong" (a traced branch, a baked-in shape)?"""
    text = message.lower()
    return category in _GRAPH_WARNING_CATEGORIES or any(p in text for p in _GRAPH_WARNING_PHRASES)


@contextlib.contextmanager
def capture_warnings(logger: logging.Logger = LOGGER) -> Iterator[List[str]]:
    """Route warnings raised inside the block (e.g. by exporters) to the log, not the terminal, once
    each with a count; the block gets a list that receives the graph warnings (is_graph_warning),
    each as "Category: message (file:line)"."""
    graph: List[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield graph
        finally:
            counts: Dict[Tuple[str, str, str, int], int] = {}
            for w in caught:
                key = (w.category.__name__, str(w.message), str(w.filename), int(w.lineno or 0))
                counts[key] = counts.get(key, 0) + 1
            for (category, message, filename, lineno), count in counts.items():
                repeat = f" [{count} times]" if count > 1 else ""
                logger.warning("%s: %s (%s:%s)%s", category, message, filename, lineno, repeat)
                if is_graph_warning(category, message):
                    first = " ".join(message.split())
                    first = first if len(first) <= 300 else first[:297] + "..."
                    graph.append(f"{category}: {first} ({Path(filename).name}:{lineno}){repeat}")


# Progress from inside a step (a profiled batch size): the pipeline's sink prints it; in the worker
# it travels to the parent as one marked stderr line (model_navigator.steps.worker turns it back).
PROGRESS_MARK = "@@model-navigator-progress "
HEARTBEAT_S = 10.0
_progress_sink: Optional[Callable[[str, str, str], None]] = None
_in_worker = False
_terminal_muted = 0  # > 0 while stderr is redirected into a capture (tensorflow_utils.tf_quiet)


@contextlib.contextmanager
def muted_terminal() -> Iterator[None]:
    """Progress lines go to the log only while the block runs: stderr is being captured, and a
    heartbeat printed into the capture would be lost to the user and pollute what was captured."""
    global _terminal_muted
    _terminal_muted += 1
    try:
        yield
    finally:
        _terminal_muted -= 1


def mark_worker_process() -> None:
    """Called by the worker at start: report_progress then writes to stderr for the parent."""
    global _in_worker
    _in_worker = True


@contextlib.contextmanager
def progress_sink(sink: Callable[[str, str, str], None]) -> Iterator[None]:
    """While the block runs, report_progress(path, step, detail) calls `sink`."""
    global _progress_sink
    previous, _progress_sink = _progress_sink, sink
    try:
        yield
    finally:
        _progress_sink = previous


def report_progress(path: str, step: str, detail: str) -> None:
    """A progress line from inside a step, wherever the step runs (here or in the worker)."""
    if _progress_sink is not None:
        _progress_sink(path, step, detail)
    elif _in_worker:
        sys.stderr.write(PROGRESS_MARK + json.dumps([path, step, detail]) + "\n")
        sys.stderr.flush()
    else:
        LOGGER.info("%s %s: %s", path, step, detail)


def relay_progress(line: str) -> bool:
    """In the parent: turn a worker's marked stderr line back into report_progress; False for others."""
    if not line.startswith(PROGRESS_MARK):
        return False
    try:
        path, step, detail = json.loads(line[len(PROGRESS_MARK) :])
    except (ValueError, TypeError):
        return False
    report_progress(str(path), str(step), str(detail))
    return True


class Progress:
    """Prints one line per finished step: mark, path, step, outcome, time; and, while a step runs
    longer than HEARTBEAT_S, a line saying it still runs (nothing is silent for long)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    @contextlib.contextmanager
    def running(self, path: str, step: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
        """A heartbeat line every `every_s` seconds while the block runs, and progress reported
        from inside the step (report_progress) printed as lines of this path."""
        done = threading.Event()
        start = time.monotonic()

        def beat() -> None:
            while not done.wait(every_s):
                self.line(None, path, step, f"still running ({time.monotonic() - start:.0f} s)")

        thread = threading.Thread(target=beat, name=f"heartbeat {path} {step}", daemon=True)
        thread.start()
        try:
            with progress_sink(lambda p, s, d: self.line(None, p, s, d)):
                yield
        finally:
            done.set()
            thread.join()

    def line(self, ok: Optional[bool], path: str, step: str, detail: str, seconds: Optional[float] = None) -> None:
        mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[yellow]-[/]"}[ok]
        timing = f" [dim]({seconds:.2f} s)[/]" if seconds is not None else ""
        from rich.markup import escape

        text = f"{mark} {escape(path):<24} {step:<12} {escape(detail)}{timing}"
        plain = f"{path} {step}: {detail}"
        LOGGER.info(plain)
        if self.enabled and not _terminal_muted:
            console().print(text, markup=True, soft_wrap=True)

    def note(self, text: str) -> None:
        LOGGER.info(text)
        if self.enabled:
            from rich.markup import escape

            console().print(f"[bold]{escape(text)}[/]", markup=True)


@contextlib.contextmanager
def debug_console(enabled: bool = True) -> Iterator[None]:
    """With `enabled` (the `debug=True` of export/load/profile), also print model_navigator's logs
    down to DEBUG (worker output included) on the terminal (stderr) while the block runs."""
    if not enabled:
        yield
        return
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FORMAT)
    handler.setLevel(logging.DEBUG)
    previous = LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(previous)
        handler.close()
