"""The observer of a run: what the pipeline reports as it walks (a path produced or skipped, a
runtime checked or profiled) becomes a progress line and status.yaml on disk. status.yaml is
written after every event that changed it, atomically, so a run killed at any point leaves the
steps finished so far; an event that changed nothing writes nothing."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

from model_navigator.core.enums import RuntimeProvider, StepStatus
from model_navigator.core.logging import LOGGER, Progress
from model_navigator.core.serialization import atomic_write_text, to_plain, yaml_text
from model_navigator.core.status import STATUS_FILE, CorrectnessResult, NavigatorStatus, PathStatus, PerformanceResult
from model_navigator.steps.profiling import profile_summary
from model_navigator.steps.scope import correctness_summary


class Recorder:
    """Prints the progress of one run and keeps its status.yaml current."""

    def __init__(self, status: NavigatorStatus, root: Path, progress: Progress):
        self.status = status
        self.root = Path(root)
        self.progress = progress
        self._written: Optional[str] = None  # the text last written: an unchanged status is not written again
        self._gpu_skips: List[str] = []

    def save(self) -> None:
        """Write status.yaml (atomically) when the status differs from what this recorder last wrote."""
        text = yaml_text(to_plain(self.status))
        if text != self._written:
            atomic_write_text(self.root / STATUS_FILE, text)
            self._written = text

    @contextmanager
    def running(self, key: str, step: str) -> Iterator[None]:
        """A step in flight: "still running" lines while it lasts."""
        with self.progress.running(key, step):
            yield

    # Paths ------------------------------------------------------------------------------------
    def path_skipped(self, key: str, reason: str, for_gpu: bool) -> None:
        """A path that cannot run here; the GPU-only ones are said together (gpu_skips_done)."""
        if for_gpu:
            self._gpu_skips.append(key)
            LOGGER.info("%s skipped: %s", key, reason)
        else:
            self.progress.line(None, key, "skipped", reason)
        self.save()

    def path_not_started(self, path: PathStatus, step: str) -> None:
        """A path refused before any of its files was written (no room on the disk)."""
        LOGGER.error("%s of %s not started: %s", step, path.key, path.reason)
        self.progress.line(False, path.key, step, str(path.reason))
        self.save()

    def path_done(self, path: PathStatus, step: str) -> None:
        """An export or conversion that ran: its outcome, with the first of its warnings."""
        detail = "ok" if path.ok else (path.reason or "failed")
        if path.warnings:
            more = f" (+{len(path.warnings) - 1} more)" if len(path.warnings) > 1 else ""
            detail += f"; warning: {path.warnings[0]}{more}"
        self.progress.line(path.ok, path.key, step, detail, path.duration_s)
        self.save()

    def gpu_skips_done(self) -> None:
        """One line for the GPU-only paths skipped on a machine without a GPU (reasons in the table)."""
        if self._gpu_skips:
            self.progress.line(None, "GPU paths", "skipped", f"no GPU here: {', '.join(self._gpu_skips)}")
            self._gpu_skips = []

    # Runtimes ---------------------------------------------------------------------------------
    def runtime_skipped(self, key: str, runtime: RuntimeProvider, reason: str) -> None:
        self.progress.line(None, key, "skipped", f"{runtime.value}: {reason}")
        self.save()

    def checked(self, key: str, runtime: RuntimeProvider, result: CorrectnessResult, seconds: float) -> None:
        ok = result.status == StepStatus.OK
        detail = correctness_summary(result) if ok else str(result.reason)
        self.progress.line(ok, key, "correctness", f"{runtime.value}: {detail}", seconds)
        self.save()

    def profiled(self, key: str, runtime: RuntimeProvider, result: PerformanceResult, seconds: float) -> None:
        ok = result.status == StepStatus.OK
        detail = profile_summary(result.results) if ok else str(result.reason)
        self.progress.line(ok, key, "profiling", f"{runtime.value}: {detail}", seconds)
        self.save()

    def profiling_skipped(self, key: str, runtime: RuntimeProvider, reason: str) -> None:
        self.progress.line(None, key, "profiling", f"{runtime.value}: skipped, {reason}")
        self.save()
