"""The export flow after validation, shared by every framework: workspace, samples, status, pipeline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

from model_navigator.core.config import ExportConfig
from model_navigator.core.diskspace import model_parameter_bytes
from model_navigator.core.enums import SOURCE_FORMATS, Format, RuntimeProvider, StepStatus
from model_navigator.core.environment import environment_info, git_info
from model_navigator.core.logging import LOGGER, Progress, debug_console, log_to_file
from model_navigator.core.samples import SampleSet, save_sample
from model_navigator.core.status import (
    CorrectnessResult,
    NavigatorStatus,
    PathStatus,
    RuntimeResult,
)
from model_navigator.core.tensor import TensorMetadata
from model_navigator.core.workspace import SAMPLE_SETS, Workspace
from model_navigator.paths.base import PathSpec
from model_navigator.steps.pipeline import Pipeline


def navigator_version() -> str:
    from model_navigator import __version__

    return __version__


def save_samples(workspace: Workspace, sample_set: SampleSet, outputs: Dict[int, Dict[str, np.ndarray]]) -> Dict[str, List[str]]:
    """Write model_input/<set>/<i>.npz and model_output/<set>/<i>.npz; return the files per set."""
    files: Dict[str, List[str]] = {}
    for name in SAMPLE_SETS:
        files[name] = []
        for i, index in enumerate(sample_set.selected[name]):
            save_sample(workspace.input_dir(name) / f"{i}.npz", sample_set.samples[index])
            save_sample(workspace.output_dir(name) / f"{i}.npz", outputs[index])
            files[name].append(f"{i}.npz")
    return files


def check_samples_fit(workspace: Workspace, sample_set: SampleSet, outputs: Dict[int, Dict[str, np.ndarray]]) -> None:
    """Refuse, before writing any, samples that the workdir's disk cannot hold."""
    from model_navigator.core.diskspace import space_problem
    from model_navigator.core.errors import UserInputError

    indices = {i for name in SAMPLE_SETS for i in sample_set.selected[name]}
    total = sum(int(np.asarray(a).nbytes) for i in indices for a in (*sample_set.samples[i].values(),
                                                                     *outputs[i].values()))
    problem = space_problem(workspace.root, total, "saving the samples")
    if problem is not None:
        raise UserInputError(f"Cannot export: {problem}.")


def run_export(
    *,
    config: ExportConfig,
    workdir: Path,
    override_workdir: bool,
    sample_set: SampleSet,
    outputs: Dict[int, Dict[str, np.ndarray]],
    inputs_meta: List[TensorMetadata],
    outputs_meta: List[TensorMetadata],
    specs: List[PathSpec],
    source_format: Format,
    source_model: Any,
    exporter_factory: Callable[[Workspace, NavigatorStatus], Any],
    export_reproduce_factory: Callable[[Workspace], Any],
    verbose: bool = True,
    debug: bool = False,
):
    """Lock the workdir, create the workspace, save samples and run every path, recording the run
    (finished or not) in status.yaml; return the PackageDescriptor."""
    from model_navigator.core.runs import recorded_run
    from model_navigator.core.workdir_lock import takeover_message, workdir_lock
    from model_navigator.steps.executor import make_executor

    start = time.perf_counter()
    progress = Progress(enabled=verbose)
    with workdir_lock(workdir, "export") as previous_holder:  # before override_workdir deletes anything
        workspace = Workspace.create(workdir, override_workdir)
        with log_to_file(workspace.log_file), debug_console(debug):
            if previous_holder is not None:
                progress.note(takeover_message(workspace.root, previous_holder))  # printed and logged
            LOGGER.info("model-navigator %s: exporting %s (%s)", navigator_version(), config.model_name,
                        config.framework.value)
            executor = make_executor(config, workspace.root)
            try:
                status = NavigatorStatus(
                    model_name=config.model_name,
                    framework=config.framework.value,
                    navigator_version=navigator_version(),
                    config=config.to_dict(),
                    environment=environment_info(),
                    git=None if config.disable_git_info else git_info(),
                    dataloader={
                        "length": sample_set.dataloader_len,
                        "batch_size": sample_set.dataloader_batch_size,
                        "sample_count": len(sample_set.samples),
                    },
                    inputs=inputs_meta,
                    outputs=outputs_meta,
                )
                source = PathStatus(key=source_format.value, format=source_format, status=StepStatus.OK,
                                    reason="source model (the reference for correctness)")
                status.paths[source.key] = source
                # status.yaml first, with this run marked unfinished: a run killed from here on says so
                with recorded_run(status, lambda: status.save(workspace.root), "export"):
                    check_samples_fit(workspace, sample_set, outputs)
                    status.samples = save_samples(workspace, sample_set, outputs)
                    status.save(workspace.root)
                    progress.note(f"model-navigator: {config.model_name} -> {workspace.root}")
                    descriptor = _run_paths(config, workspace, status, specs, executor, progress, source,
                                            source_model, exporter_factory, export_reproduce_factory)
            finally:
                executor.close()
            LOGGER.info("export finished in %.2f s", time.perf_counter() - start)
    if verbose:
        from model_navigator.package.table import print_status_table

        print_status_table(descriptor.status)
    return descriptor


def _run_paths(config: ExportConfig, workspace: Workspace, status: NavigatorStatus, specs: List[PathSpec],
               executor: Any, progress: Progress, source: PathStatus, source_model: Any,
               exporter_factory: Callable[[Workspace, NavigatorStatus], Any],
               export_reproduce_factory: Callable[[Workspace], Any]) -> Any:
    """Exports, then per path conversion, correctness and profiling; on Ctrl-C stop the step in flight
    and record what did not run."""
    from model_navigator.package.descriptor import PackageDescriptor

    pipeline = Pipeline(workspace, status, config, specs, executor, progress,
                        exporter=exporter_factory(workspace, status),
                        export_reproduce=export_reproduce_factory(workspace),
                        model_bytes=model_parameter_bytes(source_model))
    try:
        descriptor = PackageDescriptor(status, workspace.root, source_model=source_model)
        pipeline.run_exports()
        if config.run_profiling:  # in this process, once the worker has started (2 cores)
            executor.wait_ready()
            profile_source(descriptor, pipeline, source)
        pipeline.run_checks(profile=config.run_profiling)
        check_source_runtimes(descriptor, pipeline, source, profile=config.run_profiling)
    except KeyboardInterrupt:
        getattr(executor, "shutdown", executor.close)()  # stop a step that may still run
        for path in status.paths.values():
            if path.status == StepStatus.NOT_RUN:
                path.reason = "interrupted (Ctrl-C)"
            for result in path.runtimes.values():  # the step in flight when Ctrl-C came
                if result.correctness is None and path.format not in SOURCE_FORMATS:
                    result.correctness = CorrectnessResult(status=StepStatus.NOT_RUN, reason="interrupted (Ctrl-C)")
        status.save(workspace.root)
        progress.note("Interrupted: status.yaml holds the steps finished so far.")
        raise
    status.save(workspace.root)
    return descriptor


def profile_source(descriptor: Any, pipeline: Pipeline, source: PathStatus) -> None:
    """Profile the user's own model in this process with the same profiler as the artifacts."""
    from model_navigator.core.status import PerformanceResult
    from model_navigator.steps.base import short_reason
    from model_navigator.steps.profiling import profile_with_runner, report_batch

    for runtime in (RuntimeProvider.CPU if pipeline.config.target_device == "cpu" else RuntimeProvider.CUDA,):
        start = time.perf_counter()
        result = source.runtimes.setdefault(runtime, RuntimeResult())
        try:
            runner = descriptor.get_runner(format=source.format, runtime=runtime)
            with pipeline.progress.running(source.key, "profiling"):
                result.performance = profile_with_runner(runner, pipeline.status, pipeline.workspace,
                                                         pipeline.config.profiler_config,
                                                         on_result=report_batch(source.key, runtime.value))
        except Exception as e:
            result.performance = PerformanceResult(status=StepStatus.FAILED, reason=short_reason(e))
        pipeline._report_profiling(source.key, runtime, result.performance, time.perf_counter() - start)
        pipeline.save()


def source_runtimes(config: Any, source_format: Format) -> List[RuntimeProvider]:
    """Opt-in runtimes of the source model named in `runtimes=` (torch.compile for a torch model)."""
    from model_navigator.core.enums import OPT_IN_RUNTIMES

    wanted = [r for r in (config.runtimes or ()) if r in OPT_IN_RUNTIMES]
    if wanted and source_format != Format.TORCH:
        LOGGER.warning("runtimes %s apply to PyTorch models only; ignored for %s", [r.value for r in wanted],
                       source_format.value)
        return []
    return wanted


def check_source_runtimes(descriptor: Any, pipeline: Pipeline, source: PathStatus, profile: bool) -> None:
    """Correctness, then profiling, of the source model's opt-in runtimes (torch.compile), in this
    process: they need the model. A failure (no compiler, an unsupported op) is recorded as that
    runtime's result with the framework's reason; it never stops the export."""
    from model_navigator.core.status import PerformanceResult
    from model_navigator.steps.base import short_reason
    from model_navigator.steps.correctness import correctness_with_runner
    from model_navigator.steps.pipeline import correctness_summary
    from model_navigator.steps.profiling import profile_with_runner, report_batch

    config = pipeline.config
    for runtime in source_runtimes(config, source.format):
        result = source.runtimes.setdefault(runtime, RuntimeResult())
        start = time.perf_counter()
        try:
            runner = descriptor.get_runner(format=source.format, runtime=runtime)
            with pipeline.progress.running(source.key, "correctness"):
                result.correctness = correctness_with_runner(runner, pipeline.status, pipeline.workspace, source,
                                                             runtime, config.atol, config.rtol)
        except Exception as e:
            LOGGER.exception("correctness of %s on %s failed", source.key, runtime.value)
            result.correctness = CorrectnessResult(status=StepStatus.FAILED, reason=short_reason(e),
                                                   duration_s=time.perf_counter() - start)
        ok = result.correctness.status == StepStatus.OK
        detail = correctness_summary(result.correctness) if ok else str(result.correctness.reason)
        pipeline.progress.line(ok, source.key, "correctness", f"{runtime.value}: {detail}",
                               time.perf_counter() - start)
        pipeline.save()
        if not profile:
            continue
        start = time.perf_counter()
        if not ok:
            result.performance = PerformanceResult(status=StepStatus.SKIPPED, reason="correctness failed")
        else:
            try:
                runner = descriptor.get_runner(format=source.format, runtime=runtime)
                with pipeline.progress.running(source.key, "profiling"):
                    result.performance = profile_with_runner(runner, pipeline.status, pipeline.workspace,
                                                             config.profiler_config,
                                                             on_result=report_batch(source.key, runtime.value))
            except Exception as e:
                result.performance = PerformanceResult(status=StepStatus.FAILED, reason=short_reason(e))
            pipeline._report_profiling(source.key, runtime, result.performance, time.perf_counter() - start)
        pipeline.save()
