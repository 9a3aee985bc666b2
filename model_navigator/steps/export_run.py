"""An export run after validation, shared by every framework: lock the workdir, create the
workspace, save the samples, write status.yaml and run the pipeline over every path."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from model_navigator.core.config import ExportConfig
from model_navigator.core.enums import Format, StepStatus
from model_navigator.core.environment import environment_info, git_info
from model_navigator.core.logging import LOGGER, Progress, debug_console, log_to_file
from model_navigator.core.samples import CALIBRATION_SET, SampleSet, save_sample
from model_navigator.core.status import CorrectnessResult, NavigatorStatus, PathStatus
from model_navigator.core.tensor import TensorMetadata
from model_navigator.core.workspace import OUTPUT_DIR, SAMPLE_SETS, Workspace
from model_navigator.paths.base import PathSpec
from model_navigator.paths.base import ExportContext
from model_navigator.steps.execution import Run
from model_navigator.steps.pipeline import Pipeline


def navigator_version() -> str:
    from model_navigator import __version__

    return __version__


@dataclass
class ExportJob:
    """What an export run needs: the validated config, the samples and the source model's outputs on
    them, the path declarations, and the framework's export context (paths.base.ExportContext)."""

    config: ExportConfig
    workdir: Path
    override_workdir: bool
    sample_set: SampleSet
    outputs: Dict[int, Dict[str, np.ndarray]]
    inputs_meta: List[TensorMetadata]
    outputs_meta: List[TensorMetadata]
    specs: List[PathSpec]
    source_format: Format
    source_model: Any
    export_context: ExportContext
    source_problem: Optional[str] = None  # why no path can be checked (NaN/inf in the source outputs)


def save_samples(
    workspace: Workspace, sample_set: SampleSet, outputs: Dict[int, Dict[str, np.ndarray]], with_outputs: bool = True
) -> Dict[str, List[str]]:
    """Write model_input/<set>/<i>.npz and model_output/<set>/<i>.npz (left empty without
    `with_outputs`: outputs no path may be checked against); return the files per set."""
    files: Dict[str, List[str]] = {}
    for name in SAMPLE_SETS:
        files[name] = []
        for i, index in enumerate(sample_set.selected[name]):
            save_sample(workspace.input_dir(name) / f"{i}.npz", sample_set.samples[index])
            if with_outputs:
                save_sample(workspace.output_dir(name) / f"{i}.npz", outputs[index])
            files[name].append(f"{i}.npz")
    calibration = sample_set.selected.get(CALIBRATION_SET)
    if calibration is not None:  # inputs only: static int8 calibrates on them (converters/onnx_precision.py)
        files[CALIBRATION_SET] = []
        for i, index in enumerate(calibration):
            save_sample(workspace.input_dir(CALIBRATION_SET) / f"{i}.npz", sample_set.samples[index])
            files[CALIBRATION_SET].append(f"{i}.npz")
    if not with_outputs:
        (workspace.root / OUTPUT_DIR).mkdir(exist_ok=True)
    return files


def check_samples_fit(workspace: Workspace, sample_set: SampleSet, outputs: Dict[int, Dict[str, np.ndarray]]) -> None:
    """Refuse, before writing any, samples that the workdir's disk cannot hold."""
    from model_navigator.core.diskspace import space_problem
    from model_navigator.core.errors import UserInputError

    indices = {i for name in SAMPLE_SETS for i in sample_set.selected[name]}
    total = sum(
        int(np.asarray(a).nbytes) for i in indices for a in (*sample_set.samples[i].values(), *outputs[i].values())
    )
    problem = space_problem(workspace.root, total, "saving the samples")
    if problem is not None:
        raise UserInputError(f"Cannot export: {problem}.")


def new_status(job: ExportJob) -> NavigatorStatus:
    """status.yaml of a new export: the config, this machine, the samples' shapes and the source path."""
    config, sample_set = job.config, job.sample_set
    status = NavigatorStatus(
        model_name=config.model_name,
        framework=config.framework.value,
        navigator_version=navigator_version(),
        config=config,
        environment=environment_info(),
        git=None if config.disable_git_info else git_info(),
        dataloader={
            "length": sample_set.dataloader_len,
            "batch_size": sample_set.dataloader_batch_size,
            "sample_count": len(sample_set.samples),
            # [dataloader item, position in its batch] of each correctness sample, for messages
            "correctness_items": [
                list(sample_set.origins[i])
                for i in sample_set.selected.get("correctness", [])
                if i < len(sample_set.origins)
            ],
        },
        inputs=job.inputs_meta,
        outputs=job.outputs_meta,
    )
    source = PathStatus(
        key=job.source_format.value,
        format=job.source_format,
        status=StepStatus.OK,
        reason="source model (the reference for correctness)",
    )
    status.paths[source.key] = source
    return status


def run_export(job: ExportJob, verbose: bool = True, debug: bool = False) -> Tuple[NavigatorStatus, Path]:
    """Lock the workdir, create the workspace, save samples and run every path, recording the run
    (finished or not) in status.yaml; return the status and the workspace's folder."""
    from model_navigator.core.runs import recorded_run
    from model_navigator.core.workdir_lock import takeover_message, workdir_lock
    from model_navigator.steps.executor import make_executor

    start = time.perf_counter()
    config = job.config
    progress = Progress(enabled=verbose)
    with workdir_lock(job.workdir, "export") as previous_holder:  # before override_workdir deletes anything
        workspace = Workspace.create(job.workdir, job.override_workdir)
        with log_to_file(workspace.log_file), debug_console(debug):
            if previous_holder is not None:
                progress.note(takeover_message(workspace.root, previous_holder))  # printed and logged
            LOGGER.info(
                "model-navigator %s: exporting %s (%s)", navigator_version(), config.model_name, config.framework.value
            )
            # no worker when nothing can be checked (NaN/inf in the source outputs)
            executor = make_executor(config, workspace.root) if job.source_problem is None else None
            try:
                status = new_status(job)
                # status.yaml first, with this run marked unfinished: a run killed from here on says so
                with recorded_run(status, lambda: status.save(workspace.root), "export") as record:
                    check_samples_fit(workspace, job.sample_set, job.outputs)
                    status.samples = save_samples(
                        workspace, job.sample_set, job.outputs, with_outputs=job.source_problem is None
                    )
                    status.save(workspace.root)
                    progress.note(f"model-navigator: {config.model_name} -> {workspace.root}")
                    if job.source_problem is not None:
                        _record_unchecked(job, status, record, progress)
                        status.save(workspace.root)
                        return status, workspace.root
                    pipeline = Pipeline.create(
                        Run(workspace, status, config),
                        job.specs,
                        executor,
                        progress,
                        export_context=job.export_context,
                        source_model=job.source_model,
                    )
                    run_paths(pipeline, executor)
            finally:
                if executor is not None:
                    executor.close()
            LOGGER.info("export finished in %.2f s", time.perf_counter() - start)
    return status, workspace.root


def _record_unchecked(job: ExportJob, status: NavigatorStatus, record: Any, progress: Progress) -> None:
    """The source model's outputs cannot be checked against: record every requested path as not
    produced with that reason, the source as failed, and the run as failed, and say so."""
    from model_navigator.core.runs import finish_run
    from model_navigator.steps.scope import requested

    problem = job.source_problem
    assert problem is not None  # called only for a source whose outputs were refused
    warnings.warn(f"Nothing exported: {problem}", UserWarning, stacklevel=4)  # on the terminal, verbose or not
    progress.note(f"Nothing exported: {problem}")
    short = problem.split(":", 1)[0]  # which output, which sample; the whole text is the source's reason
    source = status.paths[job.source_format.value]
    source.status, source.reason = StepStatus.FAILED, problem
    for spec in job.specs:
        if requested(spec, job.config):
            status.paths[spec.key] = PathStatus(
                key=spec.key,
                format=spec.format,
                status=StepStatus.FAILED,
                jit_type=spec.jit_type,
                precision=spec.precision,
                selectors=spec.selector_dict,
                parent=spec.parent,
                reason=f"not produced: {short}; allow_nonfinite_outputs=True accepts it",
            )
    finish_run(record, "failed", problem)


def run_paths(pipeline: Pipeline, executor: Any) -> None:
    """Exports, then per path conversion, correctness and profiling; on Ctrl-C stop the step in flight
    and record what did not run."""
    status, profile = pipeline.status, pipeline.config.run_profiling
    try:
        pipeline.run_exports()
        if profile:  # in this process, once the worker has started (2 cores)
            executor.wait_ready()
            pipeline.profile_source()
        pipeline.run_checks(profile=profile)
        pipeline.check_source_runtimes(profile=profile)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (core.runs.Terminated)
        from model_navigator.core.runs import interruption

        getattr(executor, "shutdown", executor.close)()  # stop a step that may still run
        reason = f"interrupted ({interruption(e)})"
        for path in status.paths.values():
            if path.status == StepStatus.NOT_RUN:
                path.reason = reason
            for result in path.runtimes.values():  # the step in flight when Ctrl-C came
                if result.unchecked and not path.is_source:
                    result.correctness = CorrectnessResult(status=StepStatus.NOT_RUN, reason=reason)
        pipeline.save()
        pipeline.recorder.progress.note("Interrupted: status.yaml holds the steps finished so far.")
        raise
    pipeline.save()
