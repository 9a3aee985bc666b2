"""The orchestration: walk the path graph, and for each path produce its artifact, check
correctness per runtime and profile it, recording every outcome in status.yaml as it happens."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import yaml

from model_navigator.core.config import ExportConfig, ProfilerConfig
from model_navigator.core.environment import gpu_present
from model_navigator.core.enums import RuntimeProvider, StepStatus
from model_navigator.core.formats import SOURCE_FORMATS
from model_navigator.core.logging import LOGGER, Progress, capture_warnings, log_to_file
from model_navigator.core.serialization import to_plain
from model_navigator.core.status import (
    CorrectnessResult,
    NavigatorStatus,
    PathStatus,
    PerformanceResult,
    RuntimeResult,
)
from model_navigator.core.workspace import PATH_CONFIG_FILE, PATH_LOG_FILE, Workspace
from model_navigator.paths.base import PathSpec
from model_navigator.steps.base import failure_hint, short_reason, write_reproduce
from model_navigator.steps.profiling import profile_summary
from model_navigator.steps.scope import (
    correctness_summary,
    requested,
    runtime_unavailable_reason,
    selected_runtimes,
    source_runtimes,
)

# An exporter gets (spec, out_path) and returns what the producer reported; it runs in the user's process.
Exporter = Callable[[PathSpec, Path], Dict[str, Any]]


class Pipeline:
    """Runs every requested path; a failing path is recorded and the others go on."""

    def __init__(
        self,
        workspace: Workspace,
        status: NavigatorStatus,
        config: ExportConfig,
        specs: List[PathSpec],
        executor: Any,
        progress: Progress,
        exporter: Optional[Exporter] = None,
        export_reproduce: Optional[Callable[[PathSpec], List[str]]] = None,
        model_bytes: int = 0,
        source_model: Any = None,
    ):
        self.workspace = workspace
        self.status = status
        self.config = config
        self.specs = specs
        self.executor = executor
        self.progress = progress
        self.exporter = exporter
        self.export_reproduce = export_reproduce
        self.model_bytes = model_bytes  # the source model's parameters: what an export needs at least
        self.source_model = source_model  # the user's model: its path runs in this process
        # A CUDA target was validated to have a GPU; on a CPU target, look (for the skip reasons).
        self.gpu_present = config.target_device != "cpu" or gpu_present()
        self._gpu_skips: List[str] = []

    # ------------------------------------------------------------------------------------------
    def save(self) -> None:
        self.status.save(self.workspace.root)

    def run(self, profile: bool) -> None:
        self.run_exports()
        self.run_checks(profile)

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
                with log_to_file(self.workspace.path_dir(spec.key) / PATH_LOG_FILE):
                    for runtime in selected_runtimes(spec, self.config):
                        self.check_and_profile(path, runtime, profile)
        self.report_gpu_skips()

    def report_gpu_skips(self) -> None:
        """One line for the GPU-only paths skipped on a machine without a GPU (reasons in the table)."""
        if self._gpu_skips:
            self.progress.line(None, "GPU paths", "skipped", f"no GPU here: {', '.join(self._gpu_skips)}")
            self._gpu_skips = []

    def _write_path_config(self, spec: PathSpec) -> None:
        folder = self.workspace.path_dir(spec.key)
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "path": spec.key,
            "format": spec.format.value,
            "jit_type": spec.jit_type.value if spec.jit_type else None,
            "precision": spec.precision.value if spec.precision else None,
            "parent": spec.parent,
            "artifact": spec.artifact,
            "flags": to_plain(spec.selector_dict),
            "export_config": self.config.to_dict(),
        }
        (folder / PATH_CONFIG_FILE).write_text(yaml.safe_dump(data, sort_keys=False))

    def produce_path(self, spec: PathSpec) -> PathStatus:
        """Export or convert one path, or record why it is skipped."""
        path = PathStatus(key=spec.key, format=spec.format, status=StepStatus.NOT_RUN, jit_type=spec.jit_type,
                          precision=spec.precision, flags=spec.selector_dict, parent=spec.parent)
        self.status.paths[spec.key] = path
        reason = spec.unavailable_reason(self.config.target_device, self.gpu_present)
        if reason is None and spec.parent is not None:
            parent = self.status.paths.get(spec.parent)
            if parent is None or not parent.ok:
                reason = f"parent path {spec.parent!r} {parent.status.value if parent else 'was not requested'}"
        if reason is not None:
            path.status, path.reason = StepStatus.SKIPPED, reason
            if spec.requires_gpu and not self.gpu_present:  # said once, in run_checks
                self._gpu_skips.append(spec.key)
                LOGGER.info("%s skipped: %s", spec.key, reason)
            else:
                self.progress.line(None, spec.key, "skipped", reason)
            self.save()
            return path
        shortage = self._space_shortage(spec)
        if shortage is not None:  # before any of the path's files is written
            step = "export" if spec.is_export else "conversion"
            path.status, path.reason = StepStatus.FAILED, shortage
            LOGGER.error("%s of %s not started: %s", step, spec.key, shortage)
            self.progress.line(False, spec.key, step, shortage)
            self.save()
            return path
        from model_navigator.core.diskspace import remove_stale_partials

        remove_stale_partials(self.workspace.path_dir(spec.key))  # what a killed run of this path left
        self._write_path_config(spec)
        with log_to_file(self.workspace.path_dir(spec.key) / PATH_LOG_FILE), \
                self.progress.running(spec.key, "export" if spec.is_export else "conversion"):
            self._produce(spec, path)
        self.save()
        return path

    def _produce(self, spec: PathSpec, path: PathStatus) -> None:
        folder = self.workspace.path_dir(spec.key)
        out_path = folder / spec.artifact
        start = time.perf_counter()
        if spec.is_export:
            step = "export"
            if self.export_reproduce is not None:
                self.export_reproduce(spec)
            graph_warnings: List[str] = []
            try:
                with capture_warnings() as graph_warnings:
                    reported = self.exporter(spec, out_path) if self.exporter else {}
                path.status, path.model_path = StepStatus.OK, self.workspace.relative(out_path)
                path.record_reported(reported or {})
            except Exception as e:
                LOGGER.exception("export of %s failed", spec.key)
                path.status, path.reason = StepStatus.FAILED, self._failure_reason(spec, e)
                hint = failure_hint(spec.key, path.reason) if not self.config.onnx_dynamo else None
                if hint:
                    path.reason += f"\nHint: {hint}"
            path.warnings = graph_warnings
        else:
            step = "conversion"
            argv = ["--workdir", ".", "--path", spec.key]
            sh = write_reproduce(self.workspace.root, spec.key, step, argv)
            reply = self.executor.run(step, argv, self.workspace.root, self.config.step_timeout_s,
                                      format=spec.format.value)
            result = reply.result
            if reply.ok:
                path.status, path.model_path = StepStatus.OK, result.model_path
                path.record_reported(result.flags)
            else:
                path.status = StepStatus.FAILED
                reason = result.reason
                if "[Errno 28]" in (reason or ""):  # the worker's write ran out of space
                    reason = self._failure_reason(spec, OSError(28, reason))
                path.reason = f"{reason} (reproduce: bash {self.workspace.relative(sh)})"
                LOGGER.error("conversion of %s failed: %s\n%s", spec.key, result.reason, reply.traceback or "")
        path.duration_s = time.perf_counter() - start
        detail = "ok" if path.ok else (path.reason or "failed")
        if path.warnings:
            more = f" (+{len(path.warnings) - 1} more)" if len(path.warnings) > 1 else ""
            detail += f"; warning: {path.warnings[0]}{more}"
        self.progress.line(path.ok, spec.key, step, detail, path.duration_s)

    def _failure_reason(self, spec: PathSpec, error: BaseException) -> str:
        """A failed export's reason; a write that ran out of space says where, what is free and needed."""
        from model_navigator.core.diskspace import InsufficientSpace, is_no_space, no_space_reason

        if isinstance(error, InsufficientSpace):
            return str(error)
        if is_no_space(error):
            return no_space_reason(self.workspace.path_dir(spec.key), self._expected_bytes(spec), "the artifact")
        return short_reason(error)

    def _expected_bytes(self, spec: PathSpec) -> int:
        """About how large the path's artifact is: the model's tensors for an export, its parent's artifact
        for a conversion."""
        from model_navigator.core.diskspace import path_bytes

        expected = self.model_bytes
        parent = self.status.paths.get(spec.parent) if spec.parent else None
        if parent is not None and parent.model_path:
            expected = max(expected if spec.is_export else 0, path_bytes(self.workspace.root / parent.model_path))
        return expected

    def _space_shortage(self, spec: PathSpec) -> Optional[str]:
        """Why the path's artifact would not fit on the disk (see core/diskspace.py), or None: an
        export needs the model's parameter bytes, a conversion about its parent's artifact."""
        from model_navigator.core.diskspace import space_problem

        return space_problem(self.workspace.path_dir(spec.key), self._expected_bytes(spec), "the artifact")

    def check_and_profile(self, path: PathStatus, runtime: RuntimeProvider, profile: bool,
                          check: bool = True) -> None:
        """Correctness (unless `check` is False: keep the recorded one), then, only when it passed,
        profiling of one path on one runtime: nothing unchecked is ever profiled or recommended."""
        result = path.runtimes.setdefault(runtime, RuntimeResult())
        reason = runtime_unavailable_reason(path.format, runtime)
        if reason is not None:
            if check:
                result.correctness = CorrectnessResult(status=StepStatus.SKIPPED, reason=reason)
            if profile:
                result.performance = PerformanceResult(status=StepStatus.SKIPPED, reason=reason)
            self.progress.line(None, path.key, "skipped", f"{runtime.value}: {reason}")
            self.save()
            return
        if check:
            result.correctness = self.run_correctness(path, runtime)
            self.save()
        if profile:
            corr = result.correctness
            if corr is not None and corr.status == StepStatus.OK:
                result.performance = self.run_profiling(path, runtime, self.config.profiler_config)
            else:
                reason = f"correctness {corr.status.value}" if corr is not None else \
                    "correctness was never checked on this runtime (re-test with the saved samples first)"
                result.performance = PerformanceResult(status=StepStatus.SKIPPED, reason=reason)
                self.progress.line(None, path.key, "profiling", f"{runtime.value}: skipped, {reason}")
            self.save()

    def _step_argv(self, path: PathStatus, runtime: RuntimeProvider) -> List[str]:
        return ["--workdir", ".", "--path", path.key, "--runtime", runtime.value]

    def run_correctness(self, path: PathStatus, runtime: RuntimeProvider) -> CorrectnessResult:
        from model_navigator.steps.correctness import tolerance_argv

        argv = self._step_argv(path, runtime) + tolerance_argv(self.config.atol, self.config.rtol)
        sh = write_reproduce(self.workspace.root, path.key, "correctness", argv)
        start = time.perf_counter()
        with self.progress.running(path.key, "correctness"):
            reply = self.executor.run("correctness", argv, self.workspace.root, self.config.step_timeout_s,
                                      format=path.format.value)
        result = reply.result
        if not reply.ok:
            LOGGER.error("correctness of %s on %s failed: %s\n%s", path.key, runtime.value, result.reason,
                         reply.traceback or "")
            result.reason = f"{result.reason} (reproduce: bash {self.workspace.relative(sh)})"
        ok = result.status == StepStatus.OK
        summary = correctness_summary(result) if ok else str(result.reason)
        self.progress.line(ok, path.key, "correctness", f"{runtime.value}: {summary}", time.perf_counter() - start)
        return result

    def run_profiling(self, path: PathStatus, runtime: RuntimeProvider, config: ProfilerConfig) -> PerformanceResult:
        argv = self._step_argv(path, runtime) + ["--profiler-config", json.dumps(config.to_dict())]
        sh = write_reproduce(self.workspace.root, path.key, "profiling", argv)
        start = time.perf_counter()
        with self.progress.running(path.key, "profiling"):
            reply = self.executor.run("profiling", argv, self.workspace.root, self.config.step_timeout_s,
                                      format=path.format.value)
        result = reply.result
        self._report_profiling(path.key, runtime, result, time.perf_counter() - start, sh)
        return result

    # The source model: a path like the others, but its runners run here, where the model is ---------
    @property
    def source_path(self) -> Optional[PathStatus]:
        return next((p for p in self.status.paths.values() if p.format in SOURCE_FORMATS), None)

    def profile_source(self) -> None:
        """Profile the user's own model on its framework (in this process, with the same profiler as
        the artifacts); it is the reference, so it is not checked against itself."""
        source = self.source_path
        if source is None or self.source_model is None:
            return
        runtime = RuntimeProvider.CPU if self.config.target_device == "cpu" else RuntimeProvider.CUDA
        result = source.runtimes.setdefault(runtime, RuntimeResult())
        result.performance = self._profile_here(source, runtime)
        self.save()

    def check_source_runtimes(self, profile: bool) -> None:
        """Correctness, then profiling, of the source model's opt-in runtimes (torch.compile), in this
        process: they need the model. A failure (no compiler, an unsupported op) is recorded as that
        runtime's result with the framework's reason; it never stops the export."""
        source = self.source_path
        if source is None or self.source_model is None:
            return
        for runtime in source_runtimes(self.config, source.format):
            result = source.runtimes.setdefault(runtime, RuntimeResult())
            result.correctness = self._check_here(source, runtime)
            self.save()
            if not profile:
                continue
            if result.correctness.status != StepStatus.OK:
                result.performance = PerformanceResult(status=StepStatus.SKIPPED, reason="correctness failed")
            else:
                result.performance = self._profile_here(source, runtime)
            self.save()

    def _runner_here(self, path: PathStatus, runtime: RuntimeProvider) -> Any:
        from model_navigator.runners.registry import make_runner

        return make_runner(self.workspace.root, self.status, path, runtime, source_model=self.source_model)

    def _check_here(self, path: PathStatus, runtime: RuntimeProvider) -> CorrectnessResult:
        from model_navigator.steps.correctness import correctness_with_runner

        start = time.perf_counter()
        try:
            runner = self._runner_here(path, runtime)
            with self.progress.running(path.key, "correctness"):
                result = correctness_with_runner(runner, self.status, self.workspace, path, runtime,
                                                 self.config.atol, self.config.rtol)
        except Exception as e:
            LOGGER.exception("correctness of %s on %s failed", path.key, runtime.value)
            result = CorrectnessResult(status=StepStatus.FAILED, reason=short_reason(e),
                                       duration_s=time.perf_counter() - start)
        ok = result.status == StepStatus.OK
        detail = correctness_summary(result) if ok else str(result.reason)
        self.progress.line(ok, path.key, "correctness", f"{runtime.value}: {detail}", time.perf_counter() - start)
        return result

    def _profile_here(self, path: PathStatus, runtime: RuntimeProvider) -> PerformanceResult:
        from model_navigator.steps.profiling import profile_with_runner, report_batch

        start = time.perf_counter()
        try:
            runner = self._runner_here(path, runtime)
            with self.progress.running(path.key, "profiling"):
                result = profile_with_runner(runner, self.status, self.workspace, self.config.profiler_config,
                                             on_result=report_batch(path.key, runtime.value))
        except Exception as e:
            result = PerformanceResult(status=StepStatus.FAILED, reason=short_reason(e))
        self._report_profiling(path.key, runtime, result, time.perf_counter() - start)
        return result

    def _report_profiling(self, key: str, runtime: RuntimeProvider, result: PerformanceResult, seconds: float,
                          sh: Optional[Path] = None) -> None:
        ok = result.status == StepStatus.OK
        if not ok and sh is not None:
            result.reason = f"{result.reason} (reproduce: bash {self.workspace.relative(sh)})"
        detail = f"{runtime.value}: " + (profile_summary(result.results) if ok else str(result.reason))
        self.progress.line(ok, key, "profiling", detail, seconds)
