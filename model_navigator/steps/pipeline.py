"""The walk over the path graph: which paths run, in which order, what is skipped and why. Each step
is executed by a StepRunner (steps/execution.py); each outcome is reported to the Recorder
(steps/recording.py), which prints it and keeps status.yaml current."""

from __future__ import annotations

from typing import Any, List, Optional

import yaml

from model_navigator.core.enums import RuntimeProvider, StepStatus
from model_navigator.core.environment import gpu_present
from model_navigator.core.logging import Progress, log_to_file
from model_navigator.core.serialization import to_plain
from model_navigator.core.status import CorrectnessResult, PathStatus, PerformanceResult, RuntimeResult
from model_navigator.core.workspace import PATH_CONFIG_FILE, PATH_LOG_FILE
from model_navigator.paths.base import PathSpec
from model_navigator.steps.execution import Run, StepRunner
from model_navigator.steps.recording import Recorder
from model_navigator.steps.scope import requested, runtime_unavailable_reason, selected_runtimes, source_runtimes


class Pipeline:
    """Runs every requested path; a failing path is recorded and the others go on."""

    def __init__(self, run: Run, specs: List[PathSpec], steps: StepRunner, recorder: Recorder):
        self.run = run
        self.specs = specs
        self.steps = steps
        self.recorder = recorder
        # A CUDA target was validated to have a GPU; on a CPU target, look (for the skip reasons).
        self.gpu_present = run.config.target_device != "cpu" or gpu_present()

    @classmethod
    def create(
        cls,
        run: Run,
        specs: List[PathSpec],
        executor: Any,
        progress: Progress,
        export_context: Any = None,
        source_model: Any = None,
    ) -> "Pipeline":
        recorder = Recorder(run.status, run.workspace.root, progress)
        return cls(run, specs, StepRunner(run, recorder, executor, export_context, source_model), recorder)

    @property
    def status(self) -> Any:
        return self.run.status

    @property
    def config(self) -> Any:
        return self.run.config

    def save(self) -> None:
        self.recorder.save()

    # The walk ---------------------------------------------------------------------------------
    def run_exports(self) -> None:
        """Exports first: they need the user's model, in this process, while the worker starts and
        imports its framework in parallel."""
        for spec in self.specs:
            if spec.is_export and requested(spec, self.config):
                self.produce_path(spec)

    def run_checks(self, profile: bool) -> None:
        """Then per path: conversion, correctness and profiling per runtime."""
        for spec in [s for s in self.specs if requested(s, self.config)]:
            if not spec.is_export:
                self.produce_path(spec)
            path = self.status.paths[spec.key]
            if path.ok:
                with log_to_file(self.run.workspace.path_dir(spec.key) / PATH_LOG_FILE):
                    for runtime in selected_runtimes(spec, self.config):
                        self.check_and_profile(path, runtime, profile)
        self.recorder.gpu_skips_done()

    def produce_path(self, spec: PathSpec) -> PathStatus:
        """Export or convert one path, or record why it is skipped."""
        path = PathStatus(
            key=spec.key,
            format=spec.format,
            status=StepStatus.NOT_RUN,
            jit_type=spec.jit_type,
            precision=spec.precision,
            selectors=spec.selector_dict,
            parent=spec.parent,
        )
        self.status.paths[spec.key] = path
        reason = self._skip_reason(spec)
        if reason is not None:
            path.status, path.reason = StepStatus.SKIPPED, reason
            self.recorder.path_skipped(spec.key, reason, for_gpu=spec.requires_gpu and not self.gpu_present)
            return path
        step = "export" if spec.is_export else "conversion"
        shortage = self.steps.space_shortage(spec)
        if shortage is not None:  # before any of the path's files is written
            path.status, path.reason = StepStatus.FAILED, shortage
            self.recorder.path_not_started(path, step)
            return path
        from model_navigator.core.diskspace import remove_stale_partials

        folder = self.run.workspace.path_dir(spec.key)
        remove_stale_partials(folder)  # what a killed run of this path left
        self._write_path_config(spec)
        with log_to_file(folder / PATH_LOG_FILE), self.recorder.running(spec.key, step):
            self.steps.produce(spec, path)
            self.recorder.path_done(path, step)
        return path

    def _skip_reason(self, spec: PathSpec) -> Optional[str]:
        """Why the path cannot run here (a missing library or GPU, a parent that did not succeed), or None."""
        reason = spec.unavailable_reason(self.config.target_device, self.gpu_present)
        if reason is None and spec.parent is not None:
            parent = self.status.paths.get(spec.parent)
            if parent is None or not parent.ok:
                reason = f"parent path {spec.parent!r} {parent.status.value if parent else 'was not requested'}"
        return reason

    def _write_path_config(self, spec: PathSpec) -> None:
        folder = self.run.workspace.path_dir(spec.key)
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "path": spec.key,
            "format": spec.format.value,
            "jit_type": spec.jit_type.value if spec.jit_type else None,
            "precision": spec.precision.value if spec.precision else None,
            "parent": spec.parent,
            "artifact": spec.artifact,
            "selectors": to_plain(spec.selector_dict),
            "export_config": self.config.to_dict(),
        }
        (folder / PATH_CONFIG_FILE).write_text(yaml.safe_dump(data, sort_keys=False))

    def check_and_profile(self, path: PathStatus, runtime: RuntimeProvider, profile: bool, check: bool = True) -> None:
        """Correctness (unless `check` is False: keep the recorded one), then, only when it passed,
        profiling of one path on one runtime: nothing unchecked is ever profiled or recommended."""
        result = path.runtimes.setdefault(runtime, RuntimeResult())
        reason = runtime_unavailable_reason(path.format, runtime)
        if reason is not None:
            if check:
                result.correctness = CorrectnessResult(status=StepStatus.SKIPPED, reason=reason)
            if profile:
                result.performance = PerformanceResult(status=StepStatus.SKIPPED, reason=reason)
            self.recorder.runtime_skipped(path.key, runtime, reason)
            return
        if check:
            result.correctness, seconds = self.steps.check(path, runtime)
            self.recorder.checked(path.key, runtime, result.correctness, seconds)
        if not profile:
            return
        corr = result.correctness
        if result.passed:
            result.performance, seconds = self.steps.profile(path, runtime)
            self.recorder.profiled(path.key, runtime, result.performance, seconds)
        else:
            reason = (
                f"correctness {corr.status.value}"
                if corr is not None
                else "correctness was never checked on this runtime (re-test with the saved samples first)"
            )
            result.performance = PerformanceResult(status=StepStatus.SKIPPED, reason=reason)
            self.recorder.profiling_skipped(path.key, runtime, reason)

    # The source model: a path like the others, but its runners run here, where the model is ---------
    @property
    def source_path(self) -> Optional[PathStatus]:
        return next((p for p in self.status.paths.values() if p.is_source), None)

    def profile_source(self) -> None:
        """Profile the user's own model on its framework (in this process, with the same profiler as
        the artifacts); it is the reference, so it is not checked against itself."""
        source = self.source_path
        if source is None or self.steps.source_model is None:
            return
        runtime = RuntimeProvider.CPU if self.config.target_device == "cpu" else RuntimeProvider.CUDA
        result = source.runtimes.setdefault(runtime, RuntimeResult())
        result.performance, seconds = self.steps.profile_here(source, runtime)
        self.recorder.profiled(source.key, runtime, result.performance, seconds)

    def check_source_runtimes(self, profile: bool) -> None:
        """Correctness, then profiling, of the source model's opt-in runtimes (torch.compile), in this
        process: they need the model. A failure (no compiler, an unsupported op) is recorded as that
        runtime's result with the framework's reason; it never stops the export."""
        source = self.source_path
        if source is None or self.steps.source_model is None:
            return
        for runtime in source_runtimes(self.config, source.format):
            result = source.runtimes.setdefault(runtime, RuntimeResult())
            result.correctness, seconds = self.steps.check_here(source, runtime)
            self.recorder.checked(source.key, runtime, result.correctness, seconds)
            if not profile:
                continue
            if not result.passed:
                result.performance = PerformanceResult(status=StepStatus.SKIPPED, reason="correctness failed")
                self.recorder.save()
            else:
                result.performance, seconds = self.steps.profile_here(source, runtime)
                self.recorder.profiled(source.key, runtime, result.performance, seconds)
