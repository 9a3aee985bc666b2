"""Correctness step: run a path's runner on the saved correctness samples and compare every output
with the source model's saved output, at batch size 1 and at larger rebuilt batches."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from model_navigator.core.batching import default_check_batch_sizes
from model_navigator.core.budget import judge
from model_navigator.core.enums import REDUCED_PRECISIONS, Framework, RuntimeProvider
from model_navigator.core.samples import build_batch, load_sample_dir
from model_navigator.core.status import CorrectnessResult, NavigatorStatus, OutputError, PathStatus
from model_navigator.core.tolerance import (
    DEFAULT_TOLERANCES,
    Tolerance,
    UserTolerance,
    default_tolerance_name,
    resolve_tolerance,
)
from model_navigator.core.workspace import Workspace
from model_navigator.runners.registry import make_runner
from model_navigator.steps.base import base_parser, short_reason
from model_navigator.steps.compare import OutputMismatch, compare_outputs

BATCHED_SAMPLES = 3
DEFAULT_BATCH_HINT = "mark the batch axis dynamic"


class BatchSizeError(RuntimeError):
    """A path works at one batch size and not at another."""


def export_batch_of(framework: Framework) -> Tuple[Optional[int], str]:
    """The batch size the framework's exports trace with and what to do about an export specialised
    to it, as exporters/<framework>.py declares them (EXPORT_BATCH_SIZE, BATCH_HINT); (None, the
    default hint) for a framework whose exports are not made from an example batch."""
    import importlib

    module = importlib.import_module(f"model_navigator.exporters.{framework.value}")
    return getattr(module, "EXPORT_BATCH_SIZE", None), getattr(module, "BATCH_HINT", DEFAULT_BATCH_HINT)


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser(__doc__)
    parser.add_argument("--runtime", required=True, choices=[r.value for r in RuntimeProvider])
    parser.add_argument(
        "--atol",
        type=_tolerance_arg,
        default=None,
        help="a number, or JSON {output: number}; default: the path's default tolerance",
    )
    parser.add_argument("--rtol", type=_tolerance_arg, default=None, help="as --atol")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="*", default=None, help="extra batch sizes (> 1) to check with rebuilt batches"
    )
    parser.add_argument(
        "--task-metric",
        default=None,
        metavar="MODULE:FUNCTION",
        help="the task metric that judges a reduced-precision path (the one recorded in "
        "status.yaml is never run from there)",
    )
    return parser


def _tolerance_arg(text: str) -> UserTolerance:
    value = json.loads(text) if text.lstrip().startswith("{") else float(text)
    return {k: float(v) for k, v in value.items()} if isinstance(value, dict) else value


def tolerance_argv(atol: UserTolerance, rtol: UserTolerance) -> List[str]:
    """The --atol/--rtol arguments of the correctness step for the user's tolerances."""
    argv: List[str] = []
    for flag, value in (("--atol", atol), ("--rtol", rtol)):
        if value is not None:
            argv += [flag, json.dumps(value) if isinstance(value, dict) else repr(float(value))]
    return argv


def output_tolerances(
    path: PathStatus, runtime: RuntimeProvider, output_names: List[str], atol: UserTolerance, rtol: UserTolerance
) -> Tuple[str, Dict[str, Tolerance]]:
    """(the default's name, the tolerance of every output) for a path checked on `runtime`."""
    name = default_tolerance_name(path.format, path.precision, runtime)
    default = DEFAULT_TOLERANCES[name]
    return name, {n: resolve_tolerance(atol, rtol, n, default) for n in output_names}


def constant_output_warnings(outputs: List[Dict[str, np.ndarray]], output_names: List[str]) -> List[str]:
    """Outputs of the source model that are all zero, or the same for every correctness sample: a
    check on them proves little, whatever the errors say (random-init heads, a saturated softmax)."""
    warnings = []
    for name in output_names:
        values = [np.asarray(o[name]) for o in outputs if name in o]
        if not values or values[0].dtype.kind not in "fciub":
            continue
        if all(not v.any() for v in values):
            warnings.append(
                f"output {name!r} of the source model is all zero on every correctness sample: the "
                f"check cannot tell a right export from a wrong one; use samples that exercise the model"
            )
        elif len(values) > 1 and all(
            v.shape == values[0].shape and np.array_equal(v, values[0], equal_nan=True) for v in values[1:]
        ):
            warnings.append(
                f"output {name!r} of the source model is the same for all {len(values)} correctness "
                f"samples: the samples do not exercise the model, so the check proves little"
            )
    return warnings


def _repeat_output(output: Dict[str, np.ndarray], batch: int, batch_dim: int) -> Dict[str, np.ndarray]:
    return {k: np.repeat(v, batch, axis=batch_dim) if v.ndim > batch_dim else v for k, v in output.items()}


def _works_at(
    runner: Any,
    pair: Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]],
    batch: int,
    batch_dim: int,
    output_names: List[str],
) -> bool:
    """Does the runner give the right outputs for this sample rebuilt at `batch`?"""
    sample, expected = pair
    try:
        actual = runner.infer(build_batch(sample, batch, batch_dim), check_inputs=False)
        compare_outputs(_repeat_output(expected, batch, batch_dim), actual, output_names, {}, {}, "")
        return True
    except Exception:
        return False


def check_correctness(
    runner: Any,
    inputs: List[Dict[str, np.ndarray]],
    outputs: List[Dict[str, np.ndarray]],
    output_names: List[str],
    batch_dim: Optional[int],
    batch_sizes: List[int],
    tolerances: Dict[str, Tolerance],
    items: Optional[List[Any]] = None,
    export_batch: Optional[int] = None,
    batch_hint: str = DEFAULT_BATCH_HINT,
    collected: Optional[List[Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]]] = None,
) -> CorrectnessResult:
    """Compare the runner with the reference outputs, judging each output by its tolerance; the
    runner must be active. `export_batch`: the batch size the exports were traced with (a path
    failing at batch 1 is tried there, to tell a specialised export from a broken one); `batch_hint`:
    what to do about a specialised one (both from export_batch_of). `collected` gets the (reference,
    actual) outputs of every run, batched ones included."""
    errors: Dict[str, Tuple[float, float]] = {}
    failure: Optional[str] = None
    checked: List[int] = []
    for batch in [1] + [b for b in batch_sizes if b > 1]:
        pairs = list(zip(inputs, outputs, strict=True))
        pairs = pairs if batch == 1 else pairs[:BATCHED_SAMPLES]
        for index, (sample, expected) in enumerate(pairs):
            context = f"at batch size {batch} ({_sample_name(index, items, batch_dim)})"
            if batch > 1:
                sample = build_batch(sample, batch, batch_dim)
                assert batch_dim is not None  # build_batch refuses a batch > 1 without one
                expected = _repeat_output(expected, batch, batch_dim)
            try:
                actual = runner.infer(sample, check_inputs=False)
                reason = compare_outputs(expected, actual, output_names, errors, tolerances, context)
                if collected is not None:  # every batch size: a budget judges the batched runs too
                    collected.append((expected, dict(actual)))
            except Exception as e:
                error = None
                if batch_dim is not None:
                    error = _specialised(
                        e, runner, pairs[index], batch, checked, export_batch, batch_dim, output_names, batch_hint
                    )
                if error is None:
                    raise
                raise error from e
            failure = failure or reason
        checked.append(batch)
    return CorrectnessResult.judged(
        failure,
        per_output={n: _output_error(a, r, tolerances.get(n)) for n, (a, r) in errors.items()},
        batch_sizes=checked,
        sample_count=len(inputs),
        warnings=constant_output_warnings(outputs, output_names),
    )


def _specialised(
    e: Exception,
    runner: Any,
    pair: Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]],
    batch: int,
    checked: List[int],
    export_batch: Optional[int],
    batch_dim: int,
    output_names: List[str],
    batch_hint: str,
) -> Optional[BatchSizeError]:
    """The error for a run that failed at `batch` while the export works at another batch size (the
    ones `checked`, or the size it was made with when batch 1 fails), or None: broken at every size."""
    if not checked:  # batch 1 fails: specialised to another batch size, or broken?
        if (
            export_batch is None
            or batch == export_batch
            or not _works_at(runner, pair, export_batch, batch_dim, output_names)
        ):
            return None
        checked = [export_batch]
    works = f" while batch size {', '.join(map(str, checked))} works"
    message = e if isinstance(e, OutputMismatch) else short_reason(e)
    made = f" (exports are made from a batch of {export_batch})" if export_batch else ""
    return BatchSizeError(
        f"fails at batch size {batch}{works}: {message}. The export is likely specialised to the "
        f"batch size it was made with{made}; {batch_hint}."
    )


def _output_error(max_abs: float, max_rel: float, tolerance: Optional[Tolerance]) -> OutputError:
    """One output's largest errors and the tolerance that judged them (None: measured, not judged)."""
    return OutputError(
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        atol=tolerance.atol if tolerance is not None else None,
        rtol=tolerance.rtol if tolerance is not None else None,
    )


def apply_budget(
    result: CorrectnessResult,
    path: PathStatus,
    status: NavigatorStatus,
    pairs: List[Any],
    task_metric: Optional[str] = None,
) -> None:
    """Judge a reduced-precision result by its accuracy budget or the task metric this run was given
    (core/budget.judge) and record every measure per output. A task metric status.yaml records but this
    run was not given is not run (a re-test of a package runs no code the package names): said in a warning."""
    assert path.precision is not None
    config = status.config
    if config.task_metric and not task_metric:
        result.warnings.append(
            f"the task metric {config.task_metric} recorded by the export was not run: a re-test runs no code that "
            f"status.yaml names; the {path.precision.value} budget judged this result (export again with "
            f"task_metric=... to have the metric decide)"
        )
    verdict = judge(
        path.precision.value,
        pairs,
        [m.name for m in status.outputs],
        config.batch_dim,
        config.accuracy_budget,
        task_metric,
    )
    for name, measures in verdict.measures.items():
        error = result.per_output.get(name)
        if error is not None:
            error.rel_l2, error.cosine, error.top1 = measures["rel_l2"], measures["cosine"], measures.get("top1")
            error.atol = error.rtol = None
            error.budget = verdict.limits.get(name) or None
    result.atol = result.rtol = None
    result.task_metric = verdict.metric
    result.tolerance = verdict.decided_by
    if verdict.failure:
        result.fail(verdict.failure)


def _sample_name(index: int, items: Optional[List[Any]], batch_dim: Optional[int]) -> str:
    """Correctness sample `index` as the user finds it: its dataloader item and position in that batch
    (`items`, from status.yaml's dataloader record; older workspaces have none)."""
    try:
        item, position = (int(v) for v in items[index])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return f"sample {index}"
    where = f", position {position} in its batch" if batch_dim is not None else ""
    return f"sample {index}: dataloader item {item}{where}"


def correctness_with_runner(
    runner: Any,
    status: NavigatorStatus,
    workspace: Workspace,
    path: PathStatus,
    runtime: RuntimeProvider,
    atol: UserTolerance,
    rtol: UserTolerance,
    batch_sizes: Optional[List[int]] = None,
    task_metric: Optional[str] = None,
) -> CorrectnessResult:
    """Check an inactive runner of `path` on `runtime` against the workspace's correctness samples
    (what `run` does for a path; also used in the user's process for runtimes that need the source
    model, e.g. torch.compile). Outputs are judged by the user's atol/rtol, else the path's default."""
    start = time.perf_counter()
    inputs = load_sample_dir(workspace.input_dir("correctness"))
    outputs = load_sample_dir(workspace.output_dir("correctness"))
    if not inputs or len(inputs) != len(outputs):
        raise FileNotFoundError(
            f"correctness samples missing or incomplete in {workspace.input_dir('correctness')} "
            f"(saved without data?); correctness cannot be checked"
        )
    batch_sizes = batch_sizes if batch_sizes is not None else default_check_batch_sizes(status)
    output_names = [m.name for m in status.outputs]
    default_name, tolerances = output_tolerances(path, runtime, output_names, atol, rtol)
    reduced = path.precision in REDUCED_PRECISIONS  # judged by its accuracy budget, not element-wise
    pairs: Optional[List[Any]] = [] if reduced else None
    with runner:
        export_batch, batch_hint = export_batch_of(status.config.framework)
        result = check_correctness(
            runner,
            inputs,
            outputs,
            output_names,
            status.config.batch_dim,
            batch_sizes,
            {} if reduced else tolerances,
            items=(status.dataloader or {}).get("correctness_items"),
            export_batch=export_batch,
            batch_hint=batch_hint,
            collected=pairs,
        )
        result.warnings += [w for w in [getattr(runner, "precision_warning", None)] if w]
    result.atol, result.rtol = atol, rtol
    result.tolerance = "user" if atol is not None or rtol is not None else f"default {default_name}"
    if reduced and pairs is not None:
        apply_budget(result, path, status, pairs, task_metric)
    result.duration_s = time.perf_counter() - start
    return result


def run(args: argparse.Namespace, base_dir: Path) -> CorrectnessResult:
    workspace = Workspace(base_dir / args.workdir)
    status = NavigatorStatus.load(workspace.root)
    path = status.paths[args.path]
    runtime = RuntimeProvider(args.runtime)
    runner = make_runner(workspace.root, status, path, runtime)
    return correctness_with_runner(
        runner, status, workspace, path, runtime, args.atol, args.rtol, args.batch_sizes, args.task_metric
    )
