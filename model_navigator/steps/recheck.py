"""Re-running a workspace's steps: conversions and correctness against the saved outputs (retest)
and profiling, for nav.load, nav.profile and `model-navigator convert`, through the export's pipeline."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional

from model_navigator.core.config import ExportConfig
from model_navigator.core.enums import StepStatus
from model_navigator.core.logging import Progress, log_to_file
from model_navigator.core.status import NavigatorStatus, PerformanceResult, RunRecord, RuntimeResult
from model_navigator.core.workdir_lock import takeover_message, workdir_lock
from model_navigator.core.workspace import Workspace
from model_navigator.steps.execution import Run
from model_navigator.steps.pipeline import Pipeline
from model_navigator.steps.scope import selected_runtimes

NOT_REPROFILED = (
    "not re-profiled: the source model is not part of a package; its figures from the export were "
    "dropped so that no comparison mixes two profiles"
)


def recheck(
    status: NavigatorStatus,
    workdir: Path,
    retest: bool,
    profile: bool,
    has_data: bool,
    verbose: bool,
    source_model: Any = None,
    config: Optional[ExportConfig] = None,
    only: Optional[str] = None,
    reconvert: bool = True,
    operation: str = "recheck",
    user_model: Any = None,
    record: Optional[RunRecord] = None,
) -> None:
    """Re-run conversions and correctness (retest) and profiling (profile) through the export
    pipeline, for every path or `only` one; `config` defaults to the one in status.yaml. The
    workdir is locked meanwhile (`operation` names this run to a process that finds it locked).
    With a `user_model` (see cli/user_model.py) export paths are exported again too, with the settings
    status.yaml records;
    `record` continues a run the caller already marked (nav.load) instead of recording a new one."""
    from model_navigator.core.runs import recorded_run
    from model_navigator.paths.registry import paths_for
    from model_navigator.steps.executor import make_executor

    config = config or status.config
    workspace = Workspace(workdir)
    progress = Progress(enabled=verbose)
    specs = [s for s in paths_for(config.framework) if (s.key in status.paths if only is None else s.key == only)]
    with workdir_lock(workspace.root, operation) as previous_holder, log_to_file(workspace.log_file):
        _refuse_unfinished_load(status, workspace.root, record)
        if previous_holder is not None:
            progress.note(takeover_message(workspace.root, previous_holder))  # printed and logged
        retest = _fit_to_machine(status, config, progress, retest, has_data)
        executor = make_executor(config, workspace.root)
        try:
            run = Run(workspace, status, config, run_task_metric=False)  # runs no code status.yaml names
            pipeline = Pipeline.create(
                run,
                specs,
                executor,
                progress,
                export_context=_export_context(user_model, workspace, status),
                source_model=source_model,
            )
            # saved at once (the steps read status.yaml: a re-targeted device must be on disk first),
            # with this run marked unfinished until it ends
            with recorded_run(status, pipeline.save, operation, record=record):
                if profile:
                    executor.wait_ready()  # measure only once the worker no longer competes for the CPU
                if profile and only is None:
                    _reprofile_source(pipeline)
                for spec in specs:
                    _recheck_path(pipeline, spec, retest, profile, has_data, reconvert)
                pipeline.recorder.gpu_skips_done()
        finally:
            executor.close()


def _fit_to_machine(
    status: NavigatorStatus, config: ExportConfig, progress: Progress, retest: bool, has_data: bool
) -> bool:
    """Re-target a package made for a GPU to this machine's CPU when it has none, and re-test only with the
    samples there; say both. Returns whether to re-test."""
    from model_navigator.core.environment import gpu_present

    if config.target_device != "cpu" and not gpu_present():
        progress.note(
            f"This package was made for target_device={config.target_device!r} and this machine has "
            f"no GPU: re-testing on the CPU."
        )
        config.target_device = status.config.target_device = "cpu"
    if retest and not has_data:
        progress.note("This package was saved without data (save_data=False): correctness cannot be re-tested.")
        return False
    return retest


def _export_context(user_model: Any, workspace: Workspace, status: NavigatorStatus) -> Any:
    """The export context of the user's model (None without one), from status.yaml as it now stands:
    a device re-targeted to this machine included."""
    if user_model is None:
        return None
    from model_navigator.exporters.reproduce import context_from_status

    return context_from_status(status.config.framework, user_model, workspace, status)


def _refuse_unfinished_load(status: NavigatorStatus, root: Path, record: Optional[RunRecord]) -> None:
    """A workspace whose load did not finish lacks files: it is loaded again, never re-checked or profiled."""
    from model_navigator.core.errors import PackageError
    from model_navigator.core.runs import last_load, unfinished_load

    why = unfinished_load(status)
    if why is not None and (record is None or last_load(status) is not record):
        raise PackageError(
            f"workspace {str(root)!r} is incomplete: {why}; load the package into it again "
            f"(nav.load(..., override_workdir=True)) before profiling or converting it."
        )


def _reprofile_source(pipeline: Pipeline) -> None:
    """The source model is profiled again when this process has it (torch.compile checked too);
    otherwise its old figures are dropped: they came from another profile, maybe another machine."""
    source = pipeline.source_path
    if source is None:
        return
    if pipeline.steps.source_model is not None:
        pipeline.profile_source()
        pipeline.check_source_runtimes(profile=True)
        return
    for result in source.runtimes.values():
        if result.performance is not None:
            result.performance = PerformanceResult(status=StepStatus.SKIPPED, reason=NOT_REPROFILED)


def _recheck_path(pipeline: Pipeline, spec: Any, retest: bool, profile: bool, has_data: bool, reconvert: bool) -> None:
    """One path: produced again (when asked and possible: an export needs the user's model, an
    exporter), then checked and profiled on each of its runtimes here. A verified mark follows its
    result (settle_verified): kept when the new check passed, dropped with a warning when it failed."""
    path = pipeline.status.paths.get(spec.key)
    marks = {rt: r.verified for rt, r in path.runtimes.items() if r.verified} if path else {}
    if retest and reconvert and (not spec.is_export or pipeline.steps.can_export):
        path = pipeline.produce_path(spec)
    if path is None:
        return
    checked = []
    if path.ok:
        for runtime in selected_runtimes(spec, pipeline.config):
            if retest or profile:
                # a runtime never checked here (installed after the package was made) is checked before
                # it is profiled, when the samples are in the package
                recorded = path.runtimes.get(runtime)
                check = retest or ((recorded is None or recorded.unchecked) and has_data)
                if runtime in marks:  # before the check, so that a mark is never lost with its old result
                    path.runtimes.setdefault(runtime, RuntimeResult()).verified = True
                pipeline.check_and_profile(path, runtime, profile=profile, check=check)
                if check:
                    checked.append(runtime)
    for runtime in marks:  # marked runtimes not run here keep their mark (on no result, it counts for nothing)
        path.runtimes.setdefault(runtime, RuntimeResult()).verified = True
    _report_marks(pipeline, path, checked)


def _report_marks(pipeline: Pipeline, path: Any, checked: Any) -> None:
    """Say what each re-check did to a verified mark, and name a verified runtime that can no longer
    compete (only verified ones qualify, so nothing unverified takes its place)."""
    from model_navigator.core.logging import LOGGER

    progress = pipeline.recorder.progress
    for runtime in checked:
        result = path.runtimes[runtime]
        what = result.settle_verified()
        if what is None:
            continue
        text = f"{path.key} on {runtime.value}: {what}"
        if result.verified:
            progress.note(text)
        else:
            text += "; set_verified again once it is right"
            LOGGER.warning(text)
            if progress.enabled:
                progress.line(
                    False, path.key, "verified", f"{runtime.value}: {what}; set_verified again once it is right"
                )
            else:
                warnings.warn(text, UserWarning, stacklevel=2)  # on the terminal, verbose or not
        pipeline.save()
    for runtime, result in path.runtimes.items():
        if result.is_verified and path.deployable(runtime) and not result.profiled:
            progress.note(
                f"{path.key} on {runtime.value} is verified and not profiled since its check: only verified paths "
                f"qualify, so none is chosen until it is profiled "
                f"(model-navigator profile {pipeline.run.workspace.root})"
            )
        elif result.verified and not result.failed and not path.deployable(runtime):
            text = (
                f"{path.key} on {runtime.value} is verified but cannot be deployed from here "
                f"({path.unfit(runtime)}): only verified paths qualify, so none is chosen until it passes here"
            )
            LOGGER.warning(text)
            progress.note(text)
