"""Logs for people: one progress line per step on the terminal (rich), full detail in
navigator.log and each path's format.log."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Iterator, Optional

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


@contextlib.contextmanager
def capture_warnings(logger: logging.Logger = LOGGER) -> Iterator[None]:
    """Route warnings raised inside the block (e.g. by exporters) to the log, not the terminal."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                logger.warning("%s: %s (%s:%s)", w.category.__name__, w.message, w.filename, w.lineno)


class Progress:
    """Prints one line per finished step: mark, path, step, outcome, time."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def line(self, ok: Optional[bool], path: str, step: str, detail: str, seconds: Optional[float] = None) -> None:
        mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[yellow]-[/]"}[ok]
        timing = f" [dim]({seconds:.2f} s)[/]" if seconds is not None else ""
        from rich.markup import escape

        text = f"{mark} {escape(path):<24} {step:<12} {escape(detail)}{timing}"
        plain = f"{path} {step}: {detail}"
        LOGGER.info(plain)
        if self.enabled:
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
