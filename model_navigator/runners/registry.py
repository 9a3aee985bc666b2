"""Build the runner for a path and runtime from status.yaml: the one place runners are chosen, by
the factories the formats declare (core/formats.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from model_navigator.core.enums import RuntimeProvider
from model_navigator.core.errors import UserInputError
from model_navigator.core.formats import format_spec, load_function, runtime_spec
from model_navigator.core.status import NavigatorStatus, PathStatus
from model_navigator.runners.base import NavigatorRunner, RunnerArgs


def runtime_device(runtime: RuntimeProvider) -> str:
    return "cpu" if runtime_spec(runtime).on_cpu else "cuda"


def make_runner(
    workdir: Path,
    status: NavigatorStatus,
    path: PathStatus,
    runtime: RuntimeProvider,
    source_model: Optional[Any] = None,
) -> NavigatorRunner:
    """A new, inactive runner for `path` on `runtime` (use it as a context manager)."""
    spec = format_spec(path.format)
    factory = spec.runner_for(runtime)
    if spec.is_source:
        if source_model is None:
            raise UserInputError(
                f"The source {path.format.value} model is not part of a workspace or package; its runner exists "
                f"only in the process that called export()."
            )
        if factory is None:
            raise UserInputError(f"No source runner for {path.format.value} yet.")
        model: Any = source_model
    else:
        if path.model_path is None:
            raise UserInputError(
                f"Path {path.key!r} has no model ({path.status.value}): {path.reason or 'not exported'}."
            )
        if factory is None:
            raise UserInputError(f"No runner for format {path.format.value!r}.")
        model = Path(workdir) / path.model_path
    return load_function(factory)(model, runner_args(status, path, runtime))


def runner_args(status: NavigatorStatus, path: PathStatus, runtime: RuntimeProvider) -> RunnerArgs:
    """What status.yaml says about running `path` on `runtime`."""
    kw_names = tuple(status.config.forward_kw_names or ()) or None  # forward's names, in input order
    device = runtime_device(runtime)
    target = status.config.target_device
    if device == "cuda" and target.startswith("cuda"):
        device = target  # 'cuda:1' stays device 1, where the source model and the exports live
    return RunnerArgs(
        inputs=status.inputs,
        outputs=status.outputs,
        device=device,
        target=target,
        keyword=bool(kw_names),
        kw_names=kw_names,
        name=f"{path.key}:{runtime.value}",
        runtime=runtime,
        reported=path.reported,
    )
