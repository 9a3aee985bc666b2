"""Executing one step of one path and returning what it made: an export here, in the user's process
(through the framework's export context, built in memory by exporters/<framework>.py), a conversion,
correctness check or profiling in the executor (this process or the worker) with its reproduce
script, and the source model's checks here, where the model is. Recording the outcome is the
pipeline's (steps/pipeline.py) and its recorder's (steps/recording.py)."""

from __future__ import annotations

import errno
import json
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from model_navigator.core.config import ExportConfig
from model_navigator.core.diskspace import mentions_no_space
from model_navigator.core.enums import RuntimeProvider, StepStatus
from model_navigator.core.logging import LOGGER, capture_warnings
from model_navigator.core.status import CorrectnessResult, NavigatorStatus, PathStatus, PerformanceResult
from model_navigator.core.workspace import Workspace
from model_navigator.paths.base import PathSpec, ProduceRequest, produce
from model_navigator.steps.base import reproduce_hint, short_reason, write_reproduce
from model_navigator.steps.recording import Recorder


# Exports of models up to this size run in a forked child where the framework allows it (steps/forked.py).
FORK_MAX_MODEL_BYTES = 2**30


@dataclass
class Run:
    """What the parts of one run share: the workspace, its status (what is recorded) and the configuration."""

    workspace: Workspace
    status: NavigatorStatus
    config: ExportConfig
    # The user's task metric (config.task_metric) runs only in the run that was given it; a re-test of a
    # workspace or package runs no code its status.yaml names (the budget judges, with a warning).
    run_task_metric: bool = True


class StepRunner:
    """Runs single steps. `export_context`: what the framework's export producers take (None: export
    paths cannot run, as in a loaded package); `source_model`: the user's model, for its own runtimes."""

    def __init__(
        self, run: Run, recorder: Recorder, executor: Any, export_context: Any = None, source_model: Any = None
    ):
        from model_navigator.core.diskspace import model_parameter_bytes

        self.run = run
        self.recorder = recorder
        self.executor = executor
        self.export_context = export_context
        self.source_model = source_model
        self.model_bytes = model_parameter_bytes(source_model)  # what an export needs at least

    @property
    def can_export(self) -> bool:
        return self.export_context is not None

    # Exports and conversions: fill in the path ------------------------------------------------
    def produce(self, spec: PathSpec, path: PathStatus) -> None:
        """Export or convert `spec` into `path` (status, artifact, what the producer reported or why it failed)."""
        start = time.perf_counter()
        if spec.is_export:
            self._export(spec, path)
        else:
            self._convert(spec, path)
        path.duration_s = time.perf_counter() - start

    def _export(self, spec: PathSpec, path: PathStatus) -> None:
        """Export from the user's model: in a forked child where the framework allows it (see
        steps/forked.py: what the exporter imports and allocates stays out of the user's process, and
        its crash fails the path only), else here."""
        from model_navigator.core.diskspace import remove_stale_partials
        from model_navigator.steps.forked import ForkedCallFailed, ForkRefused, run_forked

        workspace, context = self.run.workspace, self.export_context
        if not (workspace.path_dir(spec.key) / "reproduce_export.py").exists():
            # an export's workspace starts empty; a re-export (convert --model) keeps the script the
            # README asks the user to complete with their get_model()
            context.write_reproduce(workspace, spec)
        outcome: Optional[Dict[str, Any]] = None
        if self._forks(spec):
            try:
                outcome = run_forked(lambda: self._export_outcome(spec), short_reason, context.after_fork)
            except ForkRefused as e:  # no child (memory, process limits): the export runs here
                LOGGER.warning("could not fork for the export of %s (%s); exporting in this process", spec.key, e)
            except ForkedCallFailed as e:  # the child died (a crash, out of memory)
                LOGGER.error("export of %s failed: %s\n%s", spec.key, e.reason, e.child_traceback)
                remove_stale_partials(workspace.path_dir(spec.key))  # what the dead child was writing
                outcome = {"reason": e.reason}
        if outcome is None:
            outcome = self._export_outcome(spec)
        path.warnings = list(outcome.get("warnings", []))
        if outcome.get("model_path"):
            path.status, path.model_path = StepStatus.OK, outcome["model_path"]
            path.record_reported(outcome.get("reported") or {})
        else:
            path.status, path.reason = StepStatus.FAILED, outcome["reason"]

    def _forks(self, spec: PathSpec) -> bool:
        """Whether the export of `spec` runs in a forked child: a forkable path of a model whose tensors
        (parameters and buffers) take up to FORK_MAX_MODEL_BYTES (the child runs one intra-op thread: a
        large model's traced forward would be slow there, and its weights, not the exporter, are what its
        process holds), unless isolation is off."""
        from model_navigator.core.diskspace import model_parameter_bytes
        from model_navigator.steps.forked import fork_supported

        # `convert --model` gives the export context a model but no source model to run
        model_bytes = self.model_bytes or model_parameter_bytes(getattr(self.export_context, "model", None))
        return (
            spec.forkable
            and model_bytes <= FORK_MAX_MODEL_BYTES
            and getattr(self.executor, "mode", "auto") != "off"
            and fork_supported()
            and self.export_context.forks()
        )

    def _export_outcome(self, spec: PathSpec) -> Dict[str, Any]:
        """Run the path's exporter: {"model_path", "reported"} or {"reason"} (with a hint), and the
        graph warnings; plain data, as it comes back from a forked child."""
        workspace, context = self.run.workspace, self.export_context
        out_path = workspace.path_dir(spec.key) / spec.artifact
        graph_warnings: List[str] = []
        try:
            with capture_warnings() as graph_warnings, context.scope():
                reported = produce(ProduceRequest(spec, out_path, workspace, self.run.status, context=context))
            return {"model_path": workspace.relative(out_path), "reported": reported, "warnings": graph_warnings}
        except Exception as e:
            LOGGER.exception("export of %s failed", spec.key)
            reason = self.failure_reason(spec, e)
            hint = context.failure_hint(spec, reason)
            if hint:
                reason += f"\nHint: {hint}"
            return {"reason": reason, "warnings": graph_warnings}

    def _convert(self, spec: PathSpec, path: PathStatus) -> None:
        argv = ["--workdir", ".", "--path", spec.key]
        reply, sh = self._in_executor("conversion", spec.key, spec.format.value, argv)
        result = reply.result
        if reply.ok:
            path.status, path.model_path = StepStatus.OK, result.model_path
            path.record_reported(result.reported)
            return
        path.status = StepStatus.FAILED
        reason = result.reason
        if mentions_no_space(reason or ""):  # the worker's write ran out of space
            reason = self.failure_reason(spec, OSError(errno.ENOSPC, reason))
        path.reason = f"{reason} {reproduce_hint(self.run.workspace.relative(sh))}"
        LOGGER.error("conversion of %s failed: %s\n%s", spec.key, result.reason, reply.traceback or "")

    # Correctness and profiling of an artifact, in the executor --------------------------------
    def check(self, path: PathStatus, runtime: RuntimeProvider) -> Tuple[CorrectnessResult, float]:
        from model_navigator.steps.correctness import tolerance_argv

        argv = _step_argv(path, runtime) + tolerance_argv(self.run.config.atol, self.run.config.rtol)
        if self.run.run_task_metric and self.run.config.task_metric:
            argv += ["--task-metric", self.run.config.task_metric]
        start = time.perf_counter()
        with self.recorder.running(path.key, "correctness"):
            reply, sh = self._in_executor("correctness", path.key, path.format.value, argv, path)
        result = reply.result
        if not reply.ok:
            LOGGER.error(
                "correctness of %s on %s failed: %s\n%s", path.key, runtime.value, result.reason, reply.traceback or ""
            )
            result.reason = f"{result.reason} {reproduce_hint(self.run.workspace.relative(sh), runtime.value)}"
        return result, time.perf_counter() - start

    def profile(self, path: PathStatus, runtime: RuntimeProvider) -> Tuple[PerformanceResult, float]:
        argv = _step_argv(path, runtime) + ["--profiler-config", json.dumps(self.run.config.profiler_config.to_dict())]
        start = time.perf_counter()
        with self.recorder.running(path.key, "profiling"):
            reply, sh = self._in_executor("profiling", path.key, path.format.value, argv, path)
        result = reply.result
        if result.status != StepStatus.OK:
            result.reason = f"{result.reason} {reproduce_hint(self.run.workspace.relative(sh), runtime.value)}"
        return result, time.perf_counter() - start

    def _in_executor(
        self, step: str, key: str, format: str, argv: List[str], path: Optional[PathStatus] = None
    ) -> Tuple[Any, Any]:
        """Write the step's reproduce script, then run the step (here or in the worker): (reply, script).
        A step run per runtime (`path` given) gets one script for every runtime of the path: it takes the
        runtime, the path's first by default."""
        root = self.run.workspace.root
        first = path.default_runtime if path is not None else None
        sh = write_reproduce(root, key, step, argv, default_runtime=first.value if first is not None else None)
        return self.executor.run(step, argv, root, self.run.config.step_timeout_s, format=format), sh

    # The source model's runtimes, here --------------------------------------------------------
    def check_here(self, path: PathStatus, runtime: RuntimeProvider) -> Tuple[CorrectnessResult, float]:
        from model_navigator.steps.correctness import correctness_with_runner

        start = time.perf_counter()
        try:
            runner = self._runner_here(path, runtime)
            with self.recorder.running(path.key, "correctness"):
                result = correctness_with_runner(
                    runner,
                    self.run.status,
                    self.run.workspace,
                    path,
                    runtime,
                    self.run.config.atol,
                    self.run.config.rtol,
                )
        except Exception as e:
            LOGGER.exception("correctness of %s on %s failed", path.key, runtime.value)
            result = CorrectnessResult(
                status=StepStatus.FAILED, reason=short_reason(e), duration_s=time.perf_counter() - start
            )
        return result, time.perf_counter() - start

    def profile_here(self, path: PathStatus, runtime: RuntimeProvider) -> Tuple[PerformanceResult, float]:
        from model_navigator.steps.profiling import profile_with_runner, report_batch

        start = time.perf_counter()
        try:
            runner = self._runner_here(path, runtime)
            with self.recorder.running(path.key, "profiling"):
                result = profile_with_runner(
                    runner,
                    self.run.status,
                    self.run.workspace,
                    self.run.config.profiler_config,
                    on_result=report_batch(path.key, runtime.value),
                )
        except Exception as e:
            result = PerformanceResult(status=StepStatus.FAILED, reason=short_reason(e))
        return result, time.perf_counter() - start

    def _runner_here(self, path: PathStatus, runtime: RuntimeProvider) -> Any:
        from model_navigator.runners.registry import make_runner

        return make_runner(self.run.workspace.root, self.run.status, path, runtime, source_model=self.source_model)

    # Disk space ---------------------------------------------------------------------------------
    def space_shortage(self, spec: PathSpec) -> Optional[str]:
        """Why the path's artifact would not fit on the disk (see core/diskspace.py), or None: an
        export needs the model's parameter bytes, a conversion about its parent's artifact."""
        from model_navigator.core.diskspace import space_problem

        return space_problem(self.run.workspace.path_dir(spec.key), self._expected_bytes(spec), "the artifact")

    def failure_reason(self, spec: PathSpec, error: BaseException) -> str:
        """A failed step's reason; a write that ran out of space says where, what is free and needed."""
        from model_navigator.core.diskspace import InsufficientSpace, is_no_space, no_space_reason

        if isinstance(error, InsufficientSpace):
            return str(error)
        if is_no_space(error):
            return no_space_reason(self.run.workspace.path_dir(spec.key), self._expected_bytes(spec), "the artifact")
        return short_reason(error)

    def _expected_bytes(self, spec: PathSpec) -> int:
        """About how large the path's artifact is: the model's tensors for an export, its parent's artifact
        for a conversion."""
        from model_navigator.core.diskspace import path_bytes

        expected = self.model_bytes
        parent = self.run.status.paths.get(spec.parent) if spec.parent else None
        if parent is not None and parent.model_path:
            expected = max(expected if spec.is_export else 0, path_bytes(self.run.workspace.root / parent.model_path))
        return expected


def _step_argv(path: PathStatus, runtime: RuntimeProvider) -> List[str]:
    return ["--workdir", ".", "--path", path.key, "--runtime", runtime.value]
